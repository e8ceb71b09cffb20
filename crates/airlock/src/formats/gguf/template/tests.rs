use super::*;

fn dangerous(src: &str) -> bool {
    analyse(src).hazards.iter().any(|h| h.dangerous)
}

#[test]
fn usual_templates_are_clean() {
    let chatml = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
    assert!(analyse(chatml).is_clean(), "{:?}", analyse(chatml));
    let ns = "{%- set ns = namespace(found=false) -%}{%- for m in messages -%}{%- if m.role == 'system' -%}{%- set ns.found = true -%}{%- endif -%}{%- endfor -%}{{ messages | tojson }}{{ raise_exception('x') }}";
    assert!(analyse(ns).is_clean(), "{:?}", analyse(ns));
}

#[test]
fn names_that_used_to_be_false_alarms_are_clean() {
    for src in [
        "{% set ns = namespace(system='') %}{% for m in messages %}{% if m.role == 'system' %}{% set ns.system = m.content %}{% endif %}{% endfor %}{{ ns.system }}",
        "{{ message['system'] }}{{ messages[0].system }}{{ tools | map(attribute='function') | list | tojson }}",
        "{% for m in messages %}{{ m.content | replace('<image>', '<__media__>') }}{% endfor %}",
        "{{ 'if __name__ == \"__main__\":' }}",
        "{% for k, v in tool.parameters.properties | items %}{{ k }}: {{ v['type'] }}{{ tool.parameters.properties[k].description }}{% endfor %}",
        "{% for m in messages %}{% generation %}{{ m.content }}{% endgeneration %}{%- generation -%}x{%- endgeneration -%}{% if loop.last %}{% break %}{% endif %}{% continue %}{% endfor %}",
        "{{ messages[loop.index0 + 1] if loop is defined else messages[messages|length - 1] }}{{ strftime_now('%d %b %Y') }}",
        "{% set r = 'model' if m.role == 'assistant' else m.role %}{{ roles[r] }}",
    ] {
        assert!(analyse(src).is_clean(), "{src}: {:?}", analyse(src));
    }
}

#[test]
fn cve_2024_34359_shapes_are_dangerous() {
    for src in [
        "{% for x in ().__class__.__base__.__subclasses__() %}{% if \"warning\" in x.__name__ %}{{ x()._module.__builtins__['__import__']('os').popen('id').read() }}{% endif %}{% endfor %}",
        "{{ lipsum.__globals__['os'].popen('id').read() }}",
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{{ self.__init__.__globals__.__builtins__ }}",
        "{{ joiner.__init__.__globals__ }}",
        "{{ namespace.__init__.__globals__.os }}",
        "{{ ()|attr('__cla' ~ 'ss__') }}",
        "{{ x[('__glo' + 'bals__')] }}",
        "{{ self._TemplateReference__context }}",
        "{{ config.items() }}",
        "{{ request.application }}",
    ] {
        assert!(dangerous(src), "{src}");
    }
}

#[test]
fn every_folding_route_is_dangerous() {
    for src in [
        "{{ x|attr('_' * 2 ~ 'class' ~ '_' * 2) }}",
        "{% set u = '__' %}{{ x|attr(u ~ 'class' ~ u) }}",
        "{% set n %}__cla{{ 'ss' }}__{% endset %}{{ x|attr(n) }}",
        "{{ x|attr('{}{}class{}{}'.format('_', '_', '_', '_')) }}",
        "{{ x|attr(['_', '_', 'class', '_', '_']|join) }}",
        "{{ x|attr('XXclassXX'|replace('X', '_')) }}",
        "{{ x|attr('%c%cclass%c%c' % (95, 95, 95, 95)) }}",
        "{{ x|attr('%c'|format(95) * 2 ~ 'class__') }}",
        "{{ x|attr('__ssalc__'|reverse) }}",
        "{{ x|attr('__SUBCLASSES__'|lower) }}",
        "{{ x|attr(('_x'|list|first) * 2 ~ 'class__') }}",
        "{{ x|attr('__class__xyz'[:9]) }}",
        "{{ x|attr('__ssalc__'[::-1]) }}",
        "{{ x.get('__globals__') }}",
        "{{ messages|map(attribute='__class__')|list }}",
        "{{ messages|map('attr', '__class__')|list }}",
        "{{ messages|selectattr('__class__')|list }}",
        "{% set ns = namespace(n='') %}{% for c in ['__', 'class', '__'] %}{% set ns.n = ns.n ~ c %}{% endfor %}{{ x|attr(ns.n) }}",
        "{% macro m(a, b) %}{{ a }}{{ b }}{% endmacro %}{{ x|attr(m('__cla', 'ss__')) }}",
        "{{ '{0.__class__.__init__.__globals__}'.format(cycler) }}",
        "{% set f = '{0.' ~ 'x}' %}{{ f.format(cycler) }}",
        "{{ x|attr(dict(__class__=1)|list|first) }}",
        "{{ x|attr(('__class__'|tojson)[1:-1]) }}",
        "{% set ns = namespace(n='') %}{% for m in messages %}{% set ns.n = ns.n ~ '_' %}{% endfor %}{{ x[ns.n ~ 'class__'] }}",
        "{% set c = cycler %}{{ c.next }}",
        "{{ (lipsum|attr('__glo' ~ 'bals__')).os }}",
        "{{ eval('1') }}",
        "{{ x|attr('\\U0000005f\\U0000005fclass\\x5f\\137') }}",
        "{{ x|attr('\\N{LOW LINE}\\N{LOW LINE}class\\N{LOW LINE}\\N{LOW LINE}') }}",
        "{{ x|attr('\\u005f\\u005fclass__') }}",
        "{% set f = '{0.__class__}'|attr('format') %}{{ f(x) }}",
        "{{ messages|join(',', '__class__') }}",
        "{{ messages|sort(false, false, '__class__') }}",
        "{% set l = [] %}{% do l.append('__cla') %}{% do l.append('ss__') %}{{ x|attr(l|join) }}",
        "{% set l = [] %}{% set a = l %}{{ (a|attr('append'))('__class__') }}{{ x|attr(l|first) }}",
        "{% set ns = namespace(n='') %}{% set al = ns %}{% set al.n = '__class__' %}{{ x|attr(ns.n) }}",
        "{% set ns = namespace(n='') %}{% set l = [ns] %}{% set al = l[0] %}{% set al.n = '__class__' %}{{ x|attr(ns.n) }}",
        "{% macro m() %}{{ x|attr(varargs|join) }}{% endmacro %}{{ m('__cla', 'ss__') }}",
        "{% macro m() %}{{ x|attr(kwargs.a) }}{% endmacro %}{{ m(a='__class__') }}",
        "{% macro m() %}{{ x|attr(caller()) }}{% endmacro %}{% call m() %}__class__{% endcall %}",
        "{{ x|attr('class'|center(9)|replace(' ', '_')) }}",
        "{% set n = '__class__' %}{% for i in [1] %}{% set n = 'x' %}{% endfor %}{{ ''|attr(n) }}",
        "{% set n = '__class__' %}{% with %}{% set n = 'x' %}{% endwith %}{{ ''|attr(n) }}",
        "{{ x|attr('ss'|wordwrap(1, true, 'cla')) }}",
    ] {
        assert!(dangerous(src), "{src}: {:?}", analyse(src));
    }
}

#[test]
fn loops_with_break_are_not_unrolled() {
    let src = "{% set ns = namespace(n='') %}{% for c in ['__class__', 'x'] %}{% set ns.n = c %}{% break %}{% endfor %}{{ y|attr(ns.n) }}";
    assert!(dangerous(src), "{:?}", analyse(src));
}

#[test]
fn macro_mutating_a_namespace_is_seen() {
    let src = "{% set ns = namespace(n='') %}{% macro m() %}{% set ns.n = '__class__' %}{% endmacro %}{{ m() }}{{ y|attr(ns.n) }}";
    assert!(dangerous(src), "{:?}", analyse(src));
}

#[test]
fn hazards_carry_expression_and_offset() {
    let src = "hello {{ lipsum.__globals__ }} world";
    let a = analyse(src);
    let h = &a.hazards[0];
    assert_eq!(h.expression, "{{ lipsum.__globals__ }}");
    assert_eq!(&src[h.offset..h.offset + 6], "lipsum");
}

#[test]
fn one_hazard_per_expression() {
    let a = analyse("{{ cycler.__init__.__globals__.os.popen('id') }}");
    assert_eq!(a.hazards.len(), 1);
    assert!(
        a.hazards[0].reason.contains("__globals__"),
        "{:?}",
        a.hazards
    );
}

#[test]
fn unparseable_template_is_reported() {
    let a = analyse("{% for m in messages %}{{ m }");
    assert!(a.parse_error.is_some());
    assert!(a.hazards.is_empty());
    // An unknown tag (not one transformers adds) is not silently accepted.
    assert!(analyse("{% frobnicate %}").parse_error.is_some());
}

#[test]
fn deep_nesting_is_bounded() {
    let src = format!("{{{{ {}1{} }}}}", "(".repeat(50_000), ")".repeat(50_000));
    let a = analyse(&src);
    assert!(a.parse_error.is_some());
}

#[test]
fn work_is_bounded() {
    // Nested unrollable loops: 64^4 iterations if nothing bounded them.
    let l = format!("[{}]", vec!["1"; 64].join(","));
    let src = format!(
        "{{% for a in {l} %}}{{% for b in {l} %}}{{% for c in {l} %}}{{% for d in {l} %}}{{{{ a }}}}{{% endfor %}}{{% endfor %}}{{% endfor %}}{{% endfor %}}"
    );
    let a = analyse(&src);
    assert!(a.parse_error.is_some(), "{a:?}");
    // Values copied many times cost steps in proportion to their size.
    let refs = vec!["a"; 200_000].join(",");
    let src = format!("{{% set a = 'x' * 4000 %}}{{{{ [{refs}] }}}}");
    let started = std::time::Instant::now();
    assert!(analyse(&src).parse_error.is_some());
    assert!(started.elapsed().as_secs() < 20);
    let nested = "{{ [[['x' * 4000] * 4000] * 4000] * 4000 }}";
    assert!(analyse(nested).is_clean());
    // Huge repetitions are not materialised.
    assert!(dangerous("{{ x|attr('_' * 1000000000 ~ 'class__') }}"));
}

#[test]
fn jinja2_syntax_real_templates_use_parses() {
    for src in [
        "{% if loop.index is divisibleby 2 %}{% endif %}{{ x is sameas false }}",
        "{{ x | default(none, true) }}{% for a, b in x.items() %}{{ a }}{% endfor %}",
        "{%- set x = namespace(a=[]) -%}{%- set x.a = x.a + [1] -%}{{ x.a }}",
        "{{ 'a' 'b' }}{{ '%.2f'|format(x) }}{% filter upper %}x{% endfilter %}",
        "{% autoescape false %}{{ x|e }}{% endautoescape %}{{ 1_000 }}",
        "{%- macro m(a, b=none) -%}{{ a }}{%- endmacro -%}{{ m(1) }}{{ messages[-1]['content'][:10] }}",
        "{% for m in messages if m.role != 'system' recursive %}{{ loop(m.children) }}{% else %}none{% endfor %}",
        "{% raw %}{{ not parsed }}{% endraw %}{# comment #}{%+ if x %}{% endif %}",
        "{{ x.0 }}{{ (x or y)|length }}{{ not x is none }}{{ -1 * 2 ** 3 // 4 % 5 }}",
    ] {
        let a = analyse(src);
        assert!(a.is_clean(), "{src}: {a:?}");
    }
    // Adjacent literals are concatenated as Jinja2 does.
    assert!(dangerous("{{ x|attr('__cla' 'ss__') }}"));
}

#[test]
fn odd_inputs_do_not_panic() {
    for src in [
        "{%}",
        "{%}{% generation %}",
        "{%-%}",
        "{{ range(-9223372036854775807, 9223372036854775807, 3) }}",
        "{{ 'abc'[::9223372036854775807] }}{{ 'abc'[-9223372036854775807:9223372036854775807:-9223372036854775807] }}",
        "{{ 9223372036854775807 + 1 }}{{ -(-9223372036854775807 - 1) }}{{ 2 ** 99 }}{{ 7 // 0 }}{{ 7 % 0 }}",
        "{{ '{' .format(1) }}{{ '{0[}'.format(1) }}{{ '%c' % 99999999 }}{{ '%' % 1 }}",
    ] {
        let _ = analyse(src);
    }
}
