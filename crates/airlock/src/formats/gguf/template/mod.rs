//! Chat-template analysis: decides whether a Jinja template reaches Python internals when an
//! unsandboxed renderer (llama-cpp-python before 0.2.72, CVE-2024-34359; SGLang,
//! CVE-2026-5760) renders it. Used for GGUF `tokenizer.chat_template*` metadata; it takes
//! plain template text, so `tokenizer_config.json` chat templates can use it as well.
//!
//! The template is parsed with `minijinja`'s own parser (feature `unstable_machinery`),
//! never rendered, and its syntax tree is evaluated abstractly ([`eval`]): every string
//! operation Jinja2 offers is folded where its operands are constants (`~`, `+`, `*`, `%`
//! with `%c`, `|format`, `|join`, `|replace`, `|reverse`, `|list|first`, slicing,
//! `str` methods, `str.format`), values are tracked through `{% set %}` statements and
//! blocks, namespace attributes, loops and macros. A finding is then any attribute or item
//! access — `.x`, `['x']`, `|attr(x)`, `.get(x)`, `|map(attribute=x)`, `selectattr(x)`,
//! `str.format` fields — whose name is a dunder or private name (`__class__`,
//! `_TemplateReference__context`) or is not proved harmless, and any walk from, or call of,
//! an object that leads to Python internals (Jinja's globals `lipsum`, `cycler`, `joiner`,
//! `namespace`, `range`, `dict`, `self`; Flask's `config`/`request`; results of such walks).
//!
//! What stays clean: plain names on template data (`message['role']`, `ns.system`,
//! `tool.function.name`), keys taken from the data itself (`param[key]` over `|items`),
//! calls such as `namespace(...)`, `raise_exception(...)`, `strftime_now(...)`, and dunders
//! that are only text (llama.cpp's `<__media__>` marker).
//!
//! Extensions of the serving stacks: transformers renders with `jinja2.ext.loopcontrols`
//! (parsed: minijinja's `loop_controls` feature) and its own `{% generation %}` block, which
//! only marks assistant text; its tags are blanked (same length, offsets kept) before
//! parsing. `{% do %}` parses natively.

mod eval;
pub mod value;

use minijinja::machinery::parse;
use minijinja::syntax::SyntaxConfig;

/// One offending expression of a template, with every reason it was flagged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hazard {
    /// What it reaches, e.g. "accesses private/dunder name `__globals__` as an attribute".
    pub reason: String,
    /// False only for findings that reach nothing by themselves (loading another template).
    pub dangerous: bool,
    /// The enclosing `{{ … }}` / `{% … %}` text (shortened).
    pub expression: String,
    /// Byte offset of the offending expression in the template.
    pub offset: usize,
}

/// What [`analyse`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Analysis {
    /// Why the template was not analysed (does not parse, or too complex).
    pub parse_error: Option<String>,
    pub hazards: Vec<Hazard>,
}

impl Analysis {
    pub fn is_clean(&self) -> bool {
        self.parse_error.is_none() && self.hazards.is_empty()
    }
}

use crate::limits::caps::gguf_template::MAX_HAZARDS;

/// Parses and analyses one template.
pub fn analyse(source: &str) -> Analysis {
    let mut out = Analysis::default();
    let prepared = blank_extension_tags(source);
    let ast = match parse(&prepared, "<chat_template>", SyntaxConfig::default()) {
        Ok(ast) => ast,
        Err(e) => {
            out.parse_error = Some(e.to_string());
            return out;
        }
    };
    let mut ev = eval::Evaluator::new();
    ev.run(std::slice::from_ref(&ast), &mut None);
    if ev.exhausted {
        out.parse_error = Some(format!(
            "too complex to analyse within {} evaluation steps",
            eval::MAX_STEPS
        ));
    }
    let mut hazards = ev.hazards;
    hazards.sort_by_key(|h| h.0);
    // One hazard per enclosing expression, keyed by where that expression starts.
    let mut by_block: Vec<usize> = Vec::new();
    for (offset, reason, dangerous) in hazards {
        let (start, expression) = enclosing_expression(source, offset);
        if let Some(k) = by_block.iter().position(|&b| b == start) {
            if let Some(h) = out.hazards.get_mut(k) {
                if !h.reason.contains(&reason) && h.reason.len() < 400 {
                    h.reason.push_str("; ");
                    h.reason.push_str(&reason);
                }
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

/// transformers' `{% generation %}` / `{% endgeneration %}` tags (AssistantTracker), with
/// any whitespace control, replaced by comments of the same length.
fn blank_extension_tags(source: &str) -> std::borrow::Cow<'_, str> {
    if !source.contains("generation") {
        return std::borrow::Cow::Borrowed(source);
    }
    let mut out = source.to_string();
    let bytes = source.as_bytes();
    let mut i = 0;
    while let Some(rel) = source.get(i..).and_then(|s| s.find("{%")) {
        let start = i + rel;
        let Some(end_rel) = source[start + 2..].find("%}") else {
            break;
        };
        let end = start + 2 + end_rel + 2;
        let inner = source[start + 2..end - 2]
            .trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace());
        if inner == "generation" || inner == "endgeneration" {
            let blank = format!("{{#{}#}}", " ".repeat(end - start - 4));
            out.replace_range(start..end, &blank);
        }
        i = end;
        if i >= bytes.len() {
            break;
        }
    }
    std::borrow::Cow::Owned(out)
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
mod tests;
