//! Chat-template analysis: decides whether a Jinja template reaches Python internals when an
//! unsandboxed renderer (llama-cpp-python before 0.2.72, CVE-2024-34359; SGLang,
//! CVE-2026-5760) renders it.
//!
//! Two passes over the template, both with `minijinja`'s own machinery (feature
//! `unstable_machinery`), never rendering anything:
//! 1. `machinery::parse` builds the template's syntax tree; a template that does not parse is
//!    reported, since what Jinja2 would make of it is unknown.
//! 2. `machinery::tokenize` yields the token stream, and the checks run on tokens in
//!    expression context. Every way to reach interpreter internals in Jinja needs a dunder
//!    name (`__class__`, `__globals__`, `_TemplateReference__context`, …) spelled as an
//!    identifier or a string, or a walk from one of Jinja's global objects (`lipsum`,
//!    `cycler`, …), or a host-touching name (`os`, `popen`, `eval`). Those are all single
//!    tokens or short token sequences, wherever they sit in the expression tree, so a token
//!    scan finds them at any nesting depth without depending on the AST's layout, which
//!    minijinja marks unstable between releases. String literals joined by `~` or `+` are
//!    folded first, so `'__cla' ~ 'ss__'` is seen as `__class__`.
//!
//! Legitimate templates (loops over `messages`, `raise_exception`, `namespace(...)` calls,
//! filters such as `trim` and `tojson`) use none of these.

use minijinja::machinery::{Span, Token, parse, tokenize};
use minijinja::syntax::SyntaxConfig;

/// One offending expression of a template, with every reason it was flagged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hazard {
    /// What it reaches, e.g. "accesses dunder `__globals__`; reaches `.popen`".
    pub reason: String,
    /// False only when all it does is spell a dunder inside a plain string (which reaches
    /// nothing by itself, but is how split names are assembled).
    pub dangerous: bool,
    /// The enclosing `{{ … }}` / `{% … %}` text (shortened).
    pub expression: String,
    /// Byte offset of the offending token in the template.
    pub offset: usize,
}

/// What [`analyse`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Analysis {
    pub parse_error: Option<String>,
    pub hazards: Vec<Hazard>,
}

impl Analysis {
    pub fn is_clean(&self) -> bool {
        self.parse_error.is_none() && self.hazards.is_empty()
    }
}

/// Jinja/Flask globals whose attributes lead to Python function globals.
const WALKABLE_GLOBALS: &[&str] = &[
    "lipsum",
    "cycler",
    "joiner",
    "namespace",
    "self",
    "config",
    "request",
    "url_for",
    "get_flashed_messages",
    "range",
    "dict",
];

/// Names that touch the host wherever they are reached.
const HOST_NAMES: &[&str] = &[
    "os",
    "subprocess",
    "popen",
    "Popen",
    "posix",
    "pty",
    "socket",
];

/// Names that are dangerous as an attribute, an item or a call.
const SINK_NAMES: &[&str] = &[
    "system",
    "popen",
    "eval",
    "exec",
    "execfile",
    "compile",
    "import_module",
    "getattr",
    "setattr",
    "globals",
    "locals",
    "builtins",
    "modules",
    "check_output",
    "check_call",
    "spawn",
    "spawnv",
    "execv",
    "execve",
    "fork",
    "load_module",
    "f_globals",
    "f_back",
    "gi_frame",
    "tb_frame",
    "func_globals",
    "co_code",
    "_module",
];

/// At most this many hazards are reported per template.
const MAX_HAZARDS: usize = 32;

/// Parses and scans one template.
pub fn analyse(source: &str) -> Analysis {
    let mut out = Analysis::default();
    if let Err(e) = parse(source, "<chat_template>", SyntaxConfig::default()) {
        out.parse_error = Some(e.to_string());
    }
    let tokens = lex(source);
    // One hazard per enclosing expression, keyed by where that expression starts.
    let mut by_block: Vec<usize> = Vec::new();
    for i in 0..tokens.len() {
        let Some((reason, dangerous, offset)) = hazard_at(&tokens, i) else {
            continue;
        };
        let (start, expression) = enclosing_expression(source, offset);
        if let Some(k) = by_block.iter().position(|&b| b == start) {
            if let Some(h) = out.hazards.get_mut(k)
                && !h.reason.contains(&reason)
            {
                h.reason.push_str("; ");
                h.reason.push_str(&reason);
                h.dangerous |= dangerous;
            }
        } else if out.hazards.len() < MAX_HAZARDS {
            by_block.push(start);
            out.hazards.push(Hazard {
                reason,
                dangerous,
                expression,
                offset,
            });
        }
    }
    out
}

/// A token reduced to what the checks need, with adjacent string literals folded.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Dot,
    LBracket,
    LParen,
    Pipe,
    Other,
}

fn lex(source: &str) -> Vec<(Tok, usize)> {
    let mut out: Vec<(Tok, usize)> = Vec::new();
    let mut pending_concat = false;
    for item in tokenize(source, false, SyntaxConfig::default()) {
        let Ok((token, span)) = item else { break };
        let at = offset(&span);
        let tok = match token {
            Token::Ident(s) => Tok::Ident(s.to_string()),
            Token::Str(s) => Tok::Str(s.to_string()),
            Token::String(s) => Tok::Str(s.to_string()),
            Token::Dot => Tok::Dot,
            Token::BracketOpen => Tok::LBracket,
            Token::ParenOpen => Tok::LParen,
            Token::Pipe => Tok::Pipe,
            Token::Tilde | Token::Plus => {
                if matches!(out.last(), Some((Tok::Str(_), _))) {
                    pending_concat = true;
                    continue;
                }
                Tok::Other
            }
            Token::TemplateData(_) => continue,
            _ => Tok::Other,
        };
        if pending_concat {
            pending_concat = false;
            if let (Tok::Str(next), Some((Tok::Str(prev), _))) = (&tok, out.last_mut()) {
                prev.push_str(next);
                continue;
            }
            out.push((Tok::Other, at));
        }
        out.push((tok, at));
    }
    out
}

fn offset(span: &Span) -> usize {
    span.start_offset as usize
}

fn is_dunder_like(s: &str) -> bool {
    // `__class__`, `__globals__`, and name-mangled `_TemplateReference__context`.
    s.contains("__")
}

/// The hazard that token `i` starts, if any: reason, whether dangerous, offset.
fn hazard_at(tokens: &[(Tok, usize)], i: usize) -> Option<(String, bool, usize)> {
    let (tok, at) = tokens.get(i)?;
    let prev = i.checked_sub(1).and_then(|p| tokens.get(p)).map(|t| &t.0);
    let next = tokens.get(i + 1).map(|t| &t.0);
    let after_dot = prev == Some(&Tok::Dot);
    let reason = match tok {
        Tok::Ident(name) if is_dunder_like(name) => format!("accesses dunder `{name}`"),
        Tok::Str(s) if is_dunder_like(s) => {
            let via = match prev {
                Some(Tok::LBracket) => "as an item",
                Some(Tok::LParen) => "as an argument (e.g. the `attr` filter)",
                _ => {
                    let reason = format!("spells dunder `{}` in a string", shorten(s, 40));
                    return Some((reason, false, *at));
                }
            };
            format!("names dunder `{}` {via}", shorten(s, 40))
        }
        Tok::Ident(name) if !after_dot && HOST_NAMES.contains(&name.as_str()) => {
            format!("references `{name}`")
        }
        Tok::Ident(name)
            if !after_dot
                && WALKABLE_GLOBALS.contains(&name.as_str())
                && matches!(next, Some(Tok::Dot | Tok::LBracket)) =>
        {
            format!("walks the `{name}` global's attributes")
        }
        Tok::Ident(name)
            if after_dot
                && (SINK_NAMES.contains(&name.as_str()) || HOST_NAMES.contains(&name.as_str())) =>
        {
            format!("reaches `.{name}`")
        }
        Tok::Ident(name)
            if !after_dot
                && matches!(name.as_str(), "eval" | "exec" | "compile" | "getattr")
                && next == Some(&Tok::LParen) =>
        {
            format!("calls `{name}`")
        }
        Tok::Str(s)
            if prev == Some(&Tok::LBracket)
                && (SINK_NAMES.contains(&s.as_str()) || HOST_NAMES.contains(&s.as_str())) =>
        {
            format!("reaches `['{s}']`")
        }
        _ => return None,
    };
    Some((reason, true, *at))
}

/// The `{{ … }}` or `{% … %}` block around `offset`, shortened for a report.
fn enclosing_expression(source: &str, offset: usize) -> (usize, String) {
    let before = source.get(..offset).unwrap_or("");
    let start = ["{{", "{%"]
        .iter()
        .filter_map(|m| before.rfind(m))
        .max()
        .unwrap_or(offset);
    let after = source.get(offset..).unwrap_or("");
    let end = ["}}", "%}"]
        .iter()
        .filter_map(|m| after.find(m).map(|e| offset + e + 2))
        .min()
        .unwrap_or(source.len());
    let text = source.get(start..end).unwrap_or("");
    (start, shorten(text, 200))
}

fn shorten(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &s[..cut])
}

#[cfg(test)]
mod tests {
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
    fn hazards_carry_expression_and_offset() {
        let src = "hello {{ lipsum.__globals__ }} world";
        let a = analyse(src);
        let h = &a.hazards[0];
        assert_eq!(h.expression, "{{ lipsum.__globals__ }}");
        assert_eq!(&src[h.offset..h.offset + 6], "lipsum");
    }

    #[test]
    fn one_hazard_per_expression_and_plain_strings_are_suspicious() {
        let a = analyse("{{ cycler.__init__.__globals__.os.popen('id') }}");
        assert_eq!(a.hazards.len(), 1);
        assert!(
            a.hazards[0].reason.contains("__globals__") && a.hazards[0].reason.contains(".popen")
        );
        let a = analyse("{{ 'if __name__ == \"__main__\":' }}");
        assert_eq!(a.hazards.len(), 1);
        assert!(!a.hazards[0].dangerous);
    }

    #[test]
    fn unparseable_template_is_reported() {
        let a = analyse("{% for m in messages %}{{ m }");
        assert!(a.parse_error.is_some());
        assert!(a.hazards.is_empty());
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let src = format!("{{{{ {}1{} }}}}", "(".repeat(50_000), ")".repeat(50_000));
        let a = analyse(&src);
        assert!(a.parse_error.is_some());
    }
}
