//! Abstract values of the template evaluator and the string operations Jinja2 offers on
//! them, folded exactly where every operand is a known constant.
//!
//! A value is either a constant (string, integer, list, mapping, `namespace()` object) or
//! one of four summaries: `Num` (some number or boolean: harmless as a name), `Data` (comes
//! from the render context — messages, tools — which the template's author does not
//! choose), `Opaque` (built by the template from pieces this module could not fold: it may
//! be any string the author wants) and `Internal` (an object from which Python internals are
//! one attribute away: Jinja's globals and the results of walks from them).

pub use crate::limits::caps::gguf_template::MAX_FOLD;
use crate::limits::caps::gguf_template::MAX_REPEAT_WEIGHT;

#[derive(Debug, Clone, PartialEq)]
pub enum Av {
    Str(String),
    Int(i64),
    Num,
    None,
    List(Vec<Av>),
    Map(Vec<(String, Av)>),
    /// A `namespace(...)` object, with what is known of its attributes.
    Ns(Vec<(String, Av)>),
    /// A macro defined by the template (index into the evaluator's macro table).
    Macro(usize),
    Data,
    Opaque,
    Internal(String),
}

/// True for names that reach Python internals as an attribute or item: dunders
/// (`__class__`), private and name-mangled names (`_TemplateReference__context`).
pub fn is_private(name: &str) -> bool {
    name.starts_with('_') || name.contains("__")
}

impl Av {
    pub fn from_const(v: &minijinja::Value) -> Av {
        use minijinja::value::ValueKind;
        match v.kind() {
            ValueKind::String => python_escapes(v.as_str().unwrap_or_default()),
            ValueKind::Number => match v.as_i64() {
                Some(i) if v.to_string() == i.to_string() => Av::Int(i),
                _ => Av::Num,
            },
            ValueKind::Bool => Av::Int(i64::from(v.is_true())),
            ValueKind::None | ValueKind::Undefined => Av::None,
            ValueKind::Seq => match v.try_iter() {
                Ok(it) => Av::List(it.take(MAX_FOLD).map(|x| Av::from_const(&x)).collect()),
                Err(_) => Av::Opaque,
            },
            _ => Av::Opaque,
        }
    }

    /// Derived only from render data and harmless constants: as a name it reaches nothing
    /// the author chose.
    pub fn is_pure(&self) -> bool {
        match self {
            Av::Str(s) => !is_private(s),
            Av::Int(_) | Av::Num | Av::None | Av::Data => true,
            // A namespace prints its attributes; a macro prints its name.
            Av::Ns(fields) => fields.iter().all(|(k, v)| !is_private(k) && v.is_pure()),
            Av::Macro(_) => false,
            Av::List(v) => v.iter().all(Av::is_pure),
            Av::Map(m) => m.iter().all(|(k, v)| !is_private(k) && v.is_pure()),
            Av::Opaque | Av::Internal(_) => false,
        }
    }

    /// Approximate bytes held, stopping early past [`MAX_FOLD`] squared.
    pub fn weight(&self) -> usize {
        let items = |it: &mut dyn Iterator<Item = usize>| {
            it.fold(8usize, |acc, w| acc.saturating_add(w + 8))
        };
        match self {
            Av::Str(s) => s.len() + 8,
            Av::List(v) => items(&mut v.iter().map(Av::weight)),
            Av::Map(m) | Av::Ns(m) => items(&mut m.iter().map(|(k, v)| k.len() + v.weight())),
            Av::Internal(w) => w.len() + 8,
            _ => 8,
        }
    }

    pub fn is_numeric(&self) -> bool {
        matches!(self, Av::Int(_) | Av::Num)
    }

    pub fn is_const(&self) -> bool {
        match self {
            Av::Str(_) | Av::Int(_) | Av::None => true,
            Av::List(v) => v.iter().all(Av::is_const),
            Av::Map(m) => m.iter().all(|(_, v)| v.is_const()),
            _ => false,
        }
    }

    /// Truthiness when known.
    pub fn truth(&self) -> Option<bool> {
        match self {
            Av::Str(s) => Some(!s.is_empty()),
            Av::Int(i) => Some(*i != 0),
            Av::None => Some(false),
            Av::List(v) => Some(!v.is_empty()),
            Av::Map(m) => Some(!m.is_empty()),
            Av::Ns(_) | Av::Macro(_) | Av::Internal(_) => Some(true),
            _ => None,
        }
    }

    /// What `x|string` (and `~`) gives, when known.
    pub fn to_str(&self) -> Option<String> {
        match self {
            Av::Str(s) => Some(s.clone()),
            Av::Int(i) => Some(i.to_string()),
            Av::None => Some("None".into()),
            Av::List(v) => {
                let parts: Option<Vec<String>> = v.iter().map(Av::repr).collect();
                Some(format!("[{}]", parts?.join(", ")))
            }
            Av::Map(m) => {
                let parts: Option<Vec<String>> = m
                    .iter()
                    .map(|(k, v)| Some(format!("{}: {}", py_repr(k), v.repr()?)))
                    .collect();
                Some(format!("{{{}}}", parts?.join(", ")))
            }
            _ => None,
        }
    }

    fn repr(&self) -> Option<String> {
        match self {
            Av::Str(s) => Some(py_repr(s)),
            other => other.to_str(),
        }
    }

    /// The value as a sequence of items (`|list`, loops), when known.
    pub fn items(&self) -> Option<Vec<Av>> {
        match self {
            Av::Str(s) => Some(s.chars().map(|c| Av::Str(c.to_string())).collect()),
            Av::List(v) => Some(v.clone()),
            Av::Map(m) => Some(m.iter().map(|(k, _)| Av::Str(k.clone())).collect()),
            _ => None,
        }
    }

    /// A summary of what iterating this value yields, when the items are not known.
    pub fn item_summary(&self) -> Av {
        match self {
            Av::Internal(w) => Av::Internal(format!("an item of {w}")),
            Av::Data | Av::Num => Av::Data,
            Av::Ns(_) | Av::Macro(_) => Av::Opaque,
            other => match other.items() {
                Some(items) => join_all(items),
                None => Av::Opaque,
            },
        }
    }
}

/// A string literal as Jinja2 reads it. minijinja decodes `\x`, `\u` and octal escapes
/// like Python but leaves `\U0000005f` and `\N{LOW LINE}` as text, which Jinja2 (Python's
/// `unicode-escape`) turns into `_`: the first is decoded here, a literal holding the second
/// is `Opaque`.
fn python_escapes(s: &str) -> Av {
    if !s.contains('\\') {
        return Av::Str(s.to_string());
    }
    if s.contains("\\N{") {
        return Av::Opaque;
    }
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("\\U") {
        out.push_str(&rest[..i]);
        let hex = rest.get(i + 2..i + 10).unwrap_or("");
        match u32::from_str_radix(hex, 16).ok().and_then(char::from_u32) {
            Some(c) if hex.len() == 8 => {
                out.push(c);
                rest = &rest[i + 10..];
            }
            _ => return Av::Opaque,
        }
    }
    out.push_str(rest);
    Av::Str(out)
}

/// Python's `repr` of a string (close enough for folding `|string` of lists).
fn py_repr(s: &str) -> String {
    if s.contains('\'') && !s.contains('"') {
        format!("\"{s}\"")
    } else {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

/// A string result, or `Opaque` when it would exceed the folding limit.
pub fn fold_str(s: String) -> Av {
    if s.len() > MAX_FOLD {
        Av::Opaque
    } else {
        Av::Str(s)
    }
}

/// The result of mixing operands that are not all constants.
pub fn mix(parts: &[&Av]) -> Av {
    if parts.iter().all(|p| p.is_numeric()) {
        Av::Num
    } else if parts.iter().all(|p| p.is_pure()) {
        Av::Data
    } else {
        Av::Opaque
    }
}

/// What a variable may hold after two control paths meet.
pub fn join(a: &Av, b: &Av) -> Av {
    if a == b {
        return a.clone();
    }
    match (a, b) {
        (Av::Internal(w), _) | (_, Av::Internal(w)) => Av::Internal(w.clone()),
        (Av::Ns(x), Av::Ns(y)) => {
            let mut out = x.clone();
            for (k, v) in &mut out {
                let other = y.iter().find(|(n, _)| n == k).map(|(_, v)| v);
                *v = other.map_or(Av::Data, |o| join(v, o));
            }
            for (k, _) in y {
                if !out.iter().any(|(n, _)| n == k) {
                    out.push((k.clone(), Av::Data));
                }
            }
            Av::Ns(out)
        }
        _ => mix(&[a, b]),
    }
}

pub fn join_all(items: Vec<Av>) -> Av {
    let mut it = items.into_iter();
    let Some(first) = it.next() else {
        return Av::None;
    };
    it.fold(first, |acc, x| join(&acc, &x))
}

/// `a ~ b`.
pub fn concat(a: &Av, b: &Av) -> Av {
    match (a.to_str(), b.to_str()) {
        (Some(x), Some(y)) => fold_str(x + &y),
        _ => match mix(&[a, b]) {
            Av::Num => Av::Data,
            other => other,
        },
    }
}

/// `a + b`.
pub fn add(a: &Av, b: &Av) -> Av {
    match (a, b) {
        (Av::Int(x), Av::Int(y)) => x.checked_add(*y).map_or(Av::Num, Av::Int),
        (Av::Str(x), Av::Str(y)) => fold_str(format!("{x}{y}")),
        (Av::List(x), Av::List(y))
            if x.len() + y.len() <= MAX_FOLD
                && a.weight().saturating_add(b.weight()) <= MAX_REPEAT_WEIGHT =>
        {
            Av::List(x.iter().chain(y).cloned().collect())
        }
        _ => mix(&[a, b]),
    }
}

/// `a * b`, including string and list repetition.
pub fn mul(a: &Av, b: &Av) -> Av {
    let repeat = |n: i64, item: &Av| -> Av {
        let n = usize::try_from(n).unwrap_or(0);
        match item {
            Av::Str(s) if s.len().saturating_mul(n) <= MAX_FOLD => Av::Str(s.repeat(n)),
            Av::List(v)
                if v.len().saturating_mul(n) <= MAX_FOLD
                    && item.weight().saturating_mul(n) <= MAX_REPEAT_WEIGHT =>
            {
                Av::List(v.iter().cloned().cycle().take(v.len() * n).collect())
            }
            other => mix(&[other]),
        }
    };
    match (a, b) {
        (Av::Int(x), Av::Int(y)) => x.checked_mul(*y).map_or(Av::Num, Av::Int),
        (Av::Int(n), s @ (Av::Str(_) | Av::List(_)))
        | (s @ (Av::Str(_) | Av::List(_)), Av::Int(n)) => repeat(*n, s),
        _ => mix(&[a, b]),
    }
}

/// Arithmetic that yields numbers (`-`, `/`, `//`, `**`).
pub fn arith(a: &Av, b: &Av, op: fn(i64, i64) -> Option<i64>) -> Av {
    match (a, b) {
        (Av::Int(x), Av::Int(y)) => op(*x, *y).map_or(Av::Num, Av::Int),
        _ => Av::Num,
    }
}

/// Python's `%` formatting of a known format string (`'%c%c' % (95, 95)`, `|format`).
/// Returns `None` when the format uses something not folded here.
pub fn percent_format(fmt: &str, args: &Av) -> Option<String> {
    let args: Vec<Av> = match args {
        Av::List(v) => v.clone(),
        other => vec![other.clone()],
    };
    let mut args = args.into_iter();
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            '%' => out.push('%'),
            's' | 'r' | 'a' => out.push_str(&args.next()?.to_str()?),
            'd' | 'i' | 'u' => match args.next()? {
                Av::Int(i) => out.push_str(&i.to_string()),
                _ => return None,
            },
            'c' => match args.next()? {
                Av::Int(i) => out.push(char::from_u32(u32::try_from(i).ok()?)?),
                Av::Str(s) if s.chars().count() == 1 => out.push_str(&s),
                _ => return None,
            },
            'x' => match args.next()? {
                Av::Int(i) => out.push_str(&format!("{i:x}")),
                _ => return None,
            },
            'o' => match args.next()? {
                Av::Int(i) => out.push_str(&format!("{i:o}")),
                _ => return None,
            },
            // Width, flags, precision, mapping keys: not folded.
            _ => return None,
        }
        if out.len() > MAX_FOLD {
            return None;
        }
    }
    Some(out)
}

/// One replacement field of a `str.format` string.
pub struct FormatField {
    /// `0`, `name` or empty (automatic numbering).
    pub arg: String,
    /// Attribute and item names after the argument (`{0.__class__[x]}` gives `__class__`, `x`).
    pub walk: Vec<String>,
    /// A conversion (`!r`) or format spec (`:_^9`) is present.
    pub spec: bool,
}

/// Splits a `str.format` string into literal text and fields; `None` when malformed.
pub fn format_fields(fmt: &str) -> Option<Vec<Result<String, FormatField>>> {
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                lit.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                lit.push('}');
            }
            '{' => {
                let mut field = String::new();
                let mut depth = 1;
                for d in chars.by_ref() {
                    match d {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        _ => {}
                    }
                    if depth == 0 {
                        break;
                    }
                    field.push(d);
                }
                if depth != 0 {
                    return None;
                }
                out.push(Ok(std::mem::take(&mut lit)));
                out.push(Err(parse_field(&field)));
            }
            '}' => return None,
            other => lit.push(other),
        }
    }
    out.push(Ok(lit));
    Some(out)
}

fn parse_field(field: &str) -> FormatField {
    let name_end = field.find(['!', ':']).unwrap_or(field.len());
    let (name, rest) = field.split_at(name_end);
    let arg_end = name.find(['.', '[']).unwrap_or(name.len());
    let (arg, mut path) = name.split_at(arg_end);
    let mut walk = Vec::new();
    while !path.is_empty() {
        let body = &path[1..];
        let end = body.find(['.', '[']).unwrap_or(body.len());
        walk.push(body[..end].trim_end_matches(']').to_string());
        path = &body[end..];
    }
    FormatField {
        arg: arg.to_string(),
        walk,
        spec: !rest.is_empty(),
    }
}

/// Python slicing of a known sequence.
pub fn slice<T: Clone>(
    items: &[T],
    start: Option<i64>,
    stop: Option<i64>,
    step: Option<i64>,
) -> Option<Vec<T>> {
    let len = i64::try_from(items.len()).ok()?;
    let step = step.unwrap_or(1);
    if step == 0 {
        return None;
    }
    let norm = |i: i64, lo: i64, hi: i64| {
        let i = if i < 0 { i + len } else { i };
        i.clamp(lo, hi)
    };
    let mut out = Vec::new();
    if step > 0 {
        let (mut i, end) = (
            norm(start.unwrap_or(0), 0, len),
            norm(stop.unwrap_or(len), 0, len),
        );
        while i < end {
            out.push(items[usize::try_from(i).ok()?].clone());
            i = i.saturating_add(step);
        }
    } else {
        let mut i = start.map_or(len - 1, |s| norm(s, -1, len - 1));
        let end = stop.map_or(-1, |s| norm(s, -1, len - 1));
        while i > end {
            out.push(items[usize::try_from(i).ok()?].clone());
            i = i.saturating_add(step);
        }
    }
    Some(out)
}
