//! Allowlist verification of a TorchScript archive's `code/` files, read as `torch.jit.load`'s
//! compiler (torch/csrc/jit/serialization/import_source.cpp) resolves their names.
//!
//! The printer that `torch.jit.save` uses writes every call in one of a few spellings, and the
//! importer resolves a name only through a closed environment:
//! - `torch.<name>` (and `torch.autograd.<name>`): the operator `aten::<name>`;
//! - `ops.<ns>.<name>`: the operator `<ns>::<name>`;
//! - `__torch__.<path>.<Name>`: a class or function compiled from `code/__torch__/<path>.py`
//!   (a `class Name` / `def Name` at the top of that file, `___torch_mangle_N` included);
//! - `CONSTANTS.cN`, the special forms (`fork`, `annotate`, `unchecked_cast`,
//!   `uninitialized`, ...), Python's builtins that TorchScript implements (`getattr`, `len`,
//!   `int`, `range`, ...), type names, and the code's own locals, parameters and attributes.
//!
//! A file is *verified* when every name it references is one of those and every operator it
//! reaches is `allowed` in `operators.tsv` (generated from torch's operator registry by
//! `scripts/policy/gen_torchscript_ops.py`, which also records why each denied operator is
//! denied: files, processes, network, native code). Anything else — an unknown name, a
//! namespace outside `aten`/`prim`, a denied operator (also as a method call), a `__torch__`
//! name no code file defines, a string literal that does not end on its line, an `import` —
//! is an [`Issue`]. Over-approximations all go the cautious way: a name assigned anywhere in a
//! file counts as a local of the whole file (a local cannot reach anything: the importer
//! looks locals up first), except the names that would be dangerous builtins, which are
//! issues wherever they appear.

use std::sync::LazyLock;

use crate::hash::{HashMap, HashSet, HashSetExt};

/// The reviewed operator table (`<ns>::<name>\t<allowed|denied>\t<reason>`).
const OPERATORS_TSV: &str = include_str!("operators.tsv");

/// `aten`/`prim` operator name → `None` if allowed, `Some(reason)` if denied.
static OPERATORS: LazyLock<HashMap<&'static str, Option<&'static str>>> = LazyLock::new(|| {
    OPERATORS_TSV
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut cols = l.split('\t');
            let name = cols.next()?;
            let status = cols.next()?;
            let reason = cols.next().unwrap_or_default();
            Some((name, (status != "allowed").then_some(reason)))
        })
        .collect()
});

/// Method-call names of denied operators (`x.save(...)` resolves to `aten::save` too).
static DENIED_METHODS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    OPERATORS
        .iter()
        .filter(|(_, denied)| denied.is_some())
        .filter_map(|(name, _)| name.split("::").nth(1))
        .collect()
});

/// Names the importer resolves without the code defining them (import_source.cpp's
/// environment, ir_emitter.cpp's builtins, the printer's type names, Python keywords).
const KNOWN_NAMES: &[&str] = &[
    // keywords and constants
    "def",
    "class",
    "if",
    "else",
    "elif",
    "for",
    "while",
    "in",
    "not",
    "and",
    "or",
    "is",
    "return",
    "pass",
    "break",
    "continue",
    "with",
    "as",
    "assert",
    "raise",
    "del",
    "None",
    "True",
    "False",
    "inf",
    "nan",
    "infj",
    "nanj",
    "self",
    // special forms and builtins the compiler implements
    "fork",
    "awaitable",
    "annotate",
    "unchecked_cast",
    "uninitialized",
    "print",
    "tuple",
    "float",
    "complex",
    "int",
    "bool",
    "str",
    "getattr",
    "hasattr",
    "isinstance",
    "_to_tensor",
    "len",
    "hex",
    "oct",
    "round",
    "hash",
    "id",
    "min",
    "max",
    "abs",
    "all",
    "any",
    "divmod",
    "sum",
    "list",
    "dict",
    "ord",
    "chr",
    "bin",
    "pow",
    "range",
    "zip",
    "enumerate",
    "rangelist",
    "sorted",
    "AssertionError",
    "CONSTANTS",
    // type names the printer writes
    "Tensor",
    "List",
    "Dict",
    "Tuple",
    "Optional",
    "Union",
    "NoneType",
    "Final",
    "Any",
    "Future",
    "Await",
    "RRef",
    "Device",
    "Stream",
    "Generator",
    "Storage",
    "Layout",
    "ScalarType",
    "MemoryFormat",
    "QScheme",
    "number",
    "Scalar",
    "SymInt",
    "SymFloat",
    "SymBool",
    "Module",
    "Enum",
    "NamedTuple",
    "Interface",
    "Callable",
    // class-body declarations
    "__parameters__",
    "__buffers__",
    "__annotations__",
    "__constants__",
];

/// Bare names that are dangerous builtins wherever they appear (distributed RPC).
const DENIED_NAMES: &[&str] = &["rpc_async", "rpc_sync", "remote", "import", "from"];

pub use crate::limits::caps::torchscript::MAX_ISSUES;
pub use crate::limits::caps::torchscript::MAX_NAMES;
pub use crate::limits::caps::torchscript::MAX_TOKENS;

/// Why part of the code could not be verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Member path of the code file.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    pub what: String,
}

/// What one code file defines and references, before the whole archive is known.
#[derive(Debug, Default)]
pub struct Verifier {
    /// Qualified names (`__torch__.a.b.C`) defined by `class`/`def` at the top of a file.
    defined: HashSet<String>,
    /// Distinct `__torch__` references, checked once every file is read: dotted name →
    /// (index in `files`, line) of its first use.
    torch_refs: HashMap<String, (usize, usize)>,
    /// Paths of the files read, for the references' messages.
    files: Vec<String>,
    /// Set once a [`MAX_NAMES`] cap has been reported.
    names_capped: bool,
    issues: Vec<Issue>,
    issue_count: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok<'a> {
    Ident(&'a str),
    Dot,
    Assign,
    Colon,
    Comma,
    Open,
    Close,
    Other,
    /// A string literal that does not end where Python would end it.
    OpenString,
}

impl Verifier {
    /// Reads one code file. `path` is its member name, `qualifier` its module path
    /// (`__torch__.a.b` for `code/__torch__/a/b.py`).
    pub fn add_file(&mut self, path: &str, qualifier: &str, code: &[u8]) {
        let Ok(text) = std::str::from_utf8(code) else {
            self.issue(
                path,
                1,
                "the file is not UTF-8 (the importer refuses it)".into(),
            );
            return;
        };
        for line in text.lines() {
            let def = line
                .strip_prefix("class ")
                .or_else(|| line.strip_prefix("def "));
            if let Some(rest) = def {
                let name: String = rest.chars().take_while(|c| is_ident(*c)).collect();
                if !name.is_empty() && !self.over_names_cap(path) {
                    self.defined.insert(format!("{qualifier}.{name}"));
                }
            }
        }
        let Some(tokens) = lex(text) else {
            self.issue(
                path,
                1,
                format!("more than {MAX_TOKENS} tokens: too large to verify"),
            );
            return;
        };
        self.files.push(path.to_string());
        let locals = locals_of(&tokens);
        let mut i = 0;
        while i < tokens.len() {
            let (line, tok) = &tokens[i];
            let after_dot = i > 0 && tokens[i - 1].1 == Tok::Dot;
            match tok {
                Tok::OpenString => self.issue(
                    path,
                    *line,
                    "a string literal does not end on its line".into(),
                ),
                Tok::Ident(name) if after_dot && DENIED_METHODS.contains(name) => {
                    self.issue(path, *line, format!("method `{name}` is a denied operator"));
                }
                Tok::Ident(_) if !after_dot => {
                    let chain = chain_at(&tokens, i);
                    self.check_chain(path, *line, &chain, &locals);
                    i += chain.len() * 2 - 1;
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
    }

    fn check_chain(&mut self, path: &str, line: usize, chain: &[&str], locals: &HashSet<&str>) {
        let root = chain[0];
        let denied_method = chain[1..].iter().find(|c| DENIED_METHODS.contains(*c));
        if let Some(method) = denied_method.filter(|_| root != "torch" && root != "ops") {
            self.issue(
                path,
                line,
                format!("method `{method}` is a denied operator"),
            );
        }
        let problem = match root {
            "torch" | "ops" if chain.len() == 1 => Some(format!(
                "`{root}` used as a value (only direct operator calls are verified)"
            )),
            // `torch.autograd.<name>` is `aten::<name>` too (the printer writes
            // `torch.autograd.grad`); any other chain is `torch.<name>` and stops there.
            "torch" if chain.get(1) == Some(&"autograd") => {
                operator_problem("aten", chain.get(2).copied(), chain.len() - 1)
            }
            "torch" => operator_problem("aten", chain.get(1).copied(), chain.len()),
            "ops" => match chain.get(1) {
                Some(ns @ (&"aten" | &"prim")) => {
                    operator_problem(ns, chain.get(2).copied(), chain.len() - 1)
                }
                Some(ns) => Some(format!(
                    "`ops.{ns}`: operator namespace outside aten/prim (needs a native library)"
                )),
                None => Some("bare `ops`".into()),
            },
            "__torch__" => {
                let name = chain.join(".");
                if !self.torch_refs.contains_key(&name) && !self.over_names_cap(path) {
                    self.torch_refs.insert(name, (self.files.len() - 1, line));
                }
                None
            }
            _ if DENIED_NAMES.contains(&root) => Some(format!("`{root}` is not allowed")),
            _ if KNOWN_NAMES.contains(&root) || locals.contains(root) => None,
            _ => Some(format!(
                "name `{root}` is neither defined by the code nor built in"
            )),
        };
        if let Some(what) = problem {
            self.issue(path, line, what);
        }
    }

    /// Records that `file` could not be verified at all.
    pub fn unverified(&mut self, file: &str, why: &str) {
        self.issue(file, 1, why.into());
    }

    /// Whether a [`MAX_NAMES`] cap is reached (reported once, as an issue).
    fn over_names_cap(&mut self, path: &str) -> bool {
        let over = self.defined.len() >= MAX_NAMES || self.torch_refs.len() >= MAX_NAMES;
        if over && !self.names_capped {
            self.names_capped = true;
            self.issue(
                path,
                1,
                format!("more than {MAX_NAMES} distinct `__torch__` names: too many to verify"),
            );
        }
        over
    }

    fn issue(&mut self, file: &str, line: usize, what: String) {
        self.issue_count += 1;
        if self.issues.len() < MAX_ISSUES {
            self.issues.push(Issue {
                file: file.to_string(),
                line,
                what,
            });
        }
    }

    /// The qualified names the archive's code defines (for the pickles' `__torch__` globals).
    pub fn defined(&self) -> &HashSet<String> {
        &self.defined
    }

    /// Checks the `__torch__` references against every file's definitions and returns the
    /// issues (at most [`MAX_ISSUES`]) with the total count.
    pub fn finish(mut self) -> (Vec<Issue>, usize) {
        let mut refs: Vec<_> = std::mem::take(&mut self.torch_refs).into_iter().collect();
        // By place, then by name: two references on one line would otherwise come out in the
        // hash map's (per-process seeded) order, and the report would differ between runs.
        refs.sort_unstable_by(|(a, at_a), (b, at_b)| at_a.cmp(at_b).then_with(|| a.cmp(b)));
        for (name, (file, line)) in refs {
            let file = self.files.get(file).cloned().unwrap_or_default();
            if name.starts_with(CUSTOM_CLASS_PREFIX) {
                self.issue(
                    &file,
                    line,
                    format!("`{name}` is a custom class registered by native code"),
                );
            } else if !defines_prefix(&self.defined, &name) {
                self.issue(
                    &file,
                    line,
                    format!("`{name}` is not defined by any code file of the archive"),
                );
            }
        }
        (self.issues, self.issue_count)
    }
}

/// Prefix of custom classes: `torch.jit.load`'s importer asks the process's registry
/// (`getCustomClass`) before it reads the archive's code, so a class under it is whatever
/// native class the loading process registered (e.g. c10d's process groups), whatever the
/// archive's own code says. Never "defined by the archive".
pub const CUSTOM_CLASS_PREFIX: &str = "__torch__.torch.classes.";

/// Whether `name` or one of its dotted prefixes (a class, then its attribute) is defined.
pub fn defines_prefix(defined: &HashSet<String>, name: &str) -> bool {
    if name.starts_with(CUSTOM_CLASS_PREFIX) {
        return false;
    }
    let mut prefix = name;
    loop {
        if defined.contains(prefix) {
            return true;
        }
        match prefix.rfind('.') {
            Some(at) => prefix = &prefix[..at],
            None => return false,
        }
    }
}

/// `None` when `<ns>::<name>` is an allowed operator and the chain (`chain_len` names from
/// the namespace on) stops at it.
fn operator_problem(ns: &str, name: Option<&str>, chain_len: usize) -> Option<String> {
    let Some(name) = name else {
        return Some(format!(
            "the `{ns}` operator namespace used as a value (only direct calls are verified)"
        ));
    };
    let qualified = format!("{ns}::{name}");
    match OPERATORS.get(qualified.as_str()) {
        Some(None) if chain_len <= 2 => None,
        Some(None) => Some(format!("attribute of operator `{qualified}`")),
        Some(Some(reason)) => Some(format!("operator `{qualified}` is denied: {reason}")),
        None => Some(format!(
            "`{qualified}` is not a registered aten/prim operator"
        )),
    }
}

/// The dotted name starting at token `i` (an identifier): `a`, `a.b`, `a.b.c`, ...
fn chain_at<'a>(tokens: &[(usize, Tok<'a>)], i: usize) -> Vec<&'a str> {
    let mut chain = Vec::new();
    let mut j = i;
    while let Some((_, Tok::Ident(name))) = tokens.get(j) {
        chain.push(*name);
        if tokens.get(j + 1).map(|t| &t.1) != Some(&Tok::Dot) {
            break;
        }
        j += 2;
    }
    chain
}

/// Names the file binds: assignment and keyword targets (`x =`, `a, b =`, `f(dim=1)`), parameters and
/// annotated attributes (`x: T`, `x : T` outside brackets is a declaration), `def`/`class`
/// names, `for` targets and `as` names.
fn locals_of<'a>(tokens: &[(usize, Tok<'a>)]) -> HashSet<&'a str> {
    let mut locals = HashSet::new();
    let mut in_for = false;
    for (i, (_, tok)) in tokens.iter().enumerate() {
        if *tok == Tok::Assign {
            bind_target_list(tokens, i, &mut locals);
        }
        if *tok == Tok::Ident("def") {
            bind_parameters(tokens, i, &mut locals);
        }
        let Tok::Ident(name) = tok else { continue };
        let after_dot = i > 0 && tokens[i - 1].1 == Tok::Dot;
        let previous = i.checked_sub(1).map(|p| &tokens[p].1);
        match *name {
            "for" => in_for = true,
            "in" => in_for = false,
            _ if after_dot => {}
            _ if in_for => {
                locals.insert(*name);
            }
            _ => {
                let binds = matches!(previous, Some(Tok::Ident("def" | "class" | "as")))
                    || matches!(tokens.get(i + 1), Some((_, Tok::Colon)));
                if binds {
                    locals.insert(*name);
                }
            }
        }
    }
    locals
}

/// Binds the names of the target list before the `=` at `assign`: `a = `, `a, b = `,
/// `a, b, = ` (the printer's trailing comma). Attribute and item targets bind nothing.
fn bind_target_list<'a>(tokens: &[(usize, Tok<'a>)], assign: usize, locals: &mut HashSet<&'a str>) {
    let mut end = assign;
    if end > 0 && tokens[end - 1].1 == Tok::Comma {
        end -= 1;
    }
    while let Some(at) = end.checked_sub(1) {
        let Tok::Ident(name) = tokens[at].1 else {
            break;
        };
        if at > 0 && tokens[at - 1].1 == Tok::Dot {
            break;
        }
        locals.insert(name);
        match at.checked_sub(1) {
            Some(comma) if tokens[comma].1 == Tok::Comma => end = comma,
            _ => break,
        }
    }
}

/// Binds the parameters of the `def` at `def`: the names that open each comma-separated
/// item of its parenthesised list (annotated or not).
fn bind_parameters<'a>(tokens: &[(usize, Tok<'a>)], def: usize, locals: &mut HashSet<&'a str>) {
    if tokens.get(def + 2).map(|t| &t.1) != Some(&Tok::Open) {
        return;
    }
    let mut depth = 0usize;
    for at in def + 2..tokens.len() {
        match &tokens[at].1 {
            Tok::Open => depth += 1,
            Tok::Close if depth <= 1 => return,
            Tok::Close => depth -= 1,
            Tok::Ident(name)
                if depth == 1 && matches!(tokens[at - 1].1, Tok::Open | Tok::Comma) =>
            {
                locals.insert(name);
            }
            _ => {}
        }
    }
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Tokens with their 1-based line. Comments and whitespace are skipped; string literals
/// (single or triple quoted, with escapes) become `Other`.
fn lex(text: &str) -> Option<Vec<(usize, Tok<'_>)>> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut at = 0;
    while at < bytes.len() {
        if tokens.len() >= MAX_TOKENS {
            return None;
        }
        let c = bytes[at];
        match c {
            b'\n' => {
                line += 1;
                at += 1;
            }
            b'#' => {
                while at < bytes.len() && bytes[at] != b'\n' {
                    at += 1;
                }
            }
            b'"' | b'\'' => {
                let start_line = line;
                let (end, lines, closed) = string_end(bytes, at);
                tokens.push((
                    start_line,
                    if closed { Tok::Other } else { Tok::OpenString },
                ));
                line += lines;
                at = end;
            }
            b'.' if !bytes.get(at + 1).is_some_and(u8::is_ascii_digit) => {
                tokens.push((line, Tok::Dot));
                at += 1;
            }
            b'=' if bytes.get(at + 1) != Some(&b'=') => {
                let compound = at > 0 && b"=!<>+-*/%&|^@:".contains(&bytes[at - 1]);
                tokens.push((line, if compound { Tok::Other } else { Tok::Assign }));
                at += 1;
            }
            b'=' => {
                tokens.push((line, Tok::Other));
                at += 2;
            }
            b':' | b',' => {
                tokens.push((line, if c == b':' { Tok::Colon } else { Tok::Comma }));
                at += 1;
            }
            _ if c.is_ascii_digit() => {
                while at < bytes.len() && (bytes[at].is_ascii_alphanumeric() || bytes[at] == b'.') {
                    at += 1;
                }
                tokens.push((line, Tok::Other));
            }
            _ if c == b'_' || c.is_ascii_alphabetic() || c >= 0x80 => {
                let start = at;
                while at < bytes.len()
                    && (bytes[at] == b'_' || bytes[at].is_ascii_alphanumeric() || bytes[at] >= 0x80)
                {
                    at += 1;
                }
                tokens.push((line, Tok::Ident(&text[start..at])));
            }
            _ if c.is_ascii_whitespace() || c == b'\\' => at += 1,
            b'(' | b'[' | b'{' => {
                tokens.push((line, Tok::Open));
                at += 1;
            }
            b')' | b']' | b'}' => {
                tokens.push((line, Tok::Close));
                at += 1;
            }
            _ => {
                tokens.push((line, Tok::Other));
                at += 1;
            }
        }
    }
    Some(tokens)
}

/// End of the string literal starting at `at`, the newlines it spans, and whether it closed
/// as Python closes it (a single-quoted literal must end on its line).
fn string_end(bytes: &[u8], at: usize) -> (usize, usize, bool) {
    let quote = bytes[at];
    let triple = bytes.get(at..at + 3) == Some(&[quote; 3][..]);
    let mut i = at + if triple { 3 } else { 1 };
    let mut lines = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                lines += usize::from(bytes.get(i + 1) == Some(&b'\n'));
                i += 2;
                continue;
            }
            b'\n' if !triple => return (i, lines, false),
            b'\n' => lines += 1,
            q if q == quote && !triple => return (i + 1, lines, true),
            q if q == quote && bytes.get(i..i + 3) == Some(&[quote; 3][..]) => {
                return (i + 3, lines, true);
            }
            _ => {}
        }
        i += 1;
    }
    (bytes.len(), lines, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issues_of(code: &str) -> Vec<String> {
        let mut verifier = Verifier::default();
        verifier.add_file("code/__torch__/m.py", "__torch__.m", code.as_bytes());
        let (issues, _) = verifier.finish();
        issues
            .into_iter()
            .map(|i| format!("{}: {}", i.line, i.what))
            .collect()
    }

    #[test]
    fn printed_code_verifies() {
        let code = "class Net(Module):\n  __parameters__ = [\"w\", ]\n  w : Tensor\n  def forward(self: __torch__.m.Net,\n    x: Tensor,\n    h: Optional[Tuple[Tensor, Tensor]]=None) -> Tensor:\n    _0 = __torch__.m.helper\n    a, b, = (self).pair(x, )\n    if torch.__is__(h, None):\n      ops.prim.RaiseException(\"os.system\", \"builtins.ValueError\")\n    for i in range(torch.len([a, b])):\n      c = torch.add(a, CONSTANTS.c0, alpha=1)\n    return torch.autograd.grad([a], [b])\ndef helper(x: int) -> int:\n  return x  # torch.from_file in a comment\n";
        assert_eq!(issues_of(code), Vec::<String>::new());
    }

    #[test]
    fn spellings_of_a_denied_operator_are_found() {
        for code in [
            "def f(x):\n  return torch.from_file(\"/etc/passwd\")\n",
            "def f(x):\n  return (torch\n    . from_file)(\"/etc/passwd\")\n",
            "def f(x):\n  return ops.aten.from_file(\"/etc/passwd\")\n",
            "def f(x):\n  return (x).save(\"/tmp/p\")\n",
        ] {
            let issues = issues_of(code);
            assert_eq!(issues.len(), 1, "{code}: {issues:?}");
            assert!(issues[0].contains("from_file") || issues[0].contains("save"));
        }
    }

    #[test]
    fn names_outside_the_environment_are_issues() {
        assert_eq!(
            issues_of("def f(x):\n  return loader(x)\n"),
            ["2: name `loader` is neither defined by the code nor built in"]
        );
        assert_eq!(
            issues_of("def f(x):\n  rpc_async = 1\n  return rpc_async(x)\n").len(),
            2,
            "a dangerous builtin stays an issue even when also bound"
        );
        assert_eq!(
            issues_of("def f(x):\n  return ops.my_ext.run(x)\n"),
            ["2: `ops.my_ext`: operator namespace outside aten/prim (needs a native library)"]
        );
        assert_eq!(
            issues_of("def f(x):\n  return __torch__.m.g(x)\n"),
            ["2: `__torch__.m.g` is not defined by any code file of the archive"]
        );
        assert_eq!(
            issues_of("def f(x):\n  return torch.jit.load(x)\n"),
            ["2: `aten::jit` is not a registered aten/prim operator"]
        );
        assert_eq!(
            issues_of("def f(x):\n  return torch.cuda.current_stream(x)\n"),
            ["2: attribute of operator `aten::cuda`"]
        );
    }

    #[test]
    fn strings_are_lexed_as_python_lexes_them() {
        assert_eq!(
            issues_of("def f(x):\n  return \"a\\\"b torch.from_file(\"\n"),
            Vec::<String>::new()
        );
        assert_eq!(
            issues_of("def f(x):\n  y = '''x\nloader(1)'''\n  return y\n"),
            Vec::<String>::new()
        );
        assert_eq!(
            issues_of("def f(x):\n  y = \"open\n  return y\n"),
            ["2: a string literal does not end on its line"]
        );
    }

    #[test]
    fn hostile_bytes_never_panic_and_work_is_bounded() {
        let code = "class Net(Module):\n  def forward(self: __torch__.m.Net, x: Tensor) -> Tensor:\n    _0, _1, = (self).f(\"a\\\"é\", '''b''')\n    return torch.add(x, 1)  # é\n";
        let bytes = code.as_bytes();
        for cut in 0..=bytes.len() {
            let _ = issues_of(&String::from_utf8_lossy(&bytes[..cut]));
            for value in [
                b'"', b'\'', b'\\', b'\n', b'.', b'=', b',', b'(', b')', 0xc3,
            ] {
                let mut mutated = bytes.to_vec();
                if let Some(b) = mutated.get_mut(cut) {
                    *b = value;
                }
                let mut verifier = Verifier::default();
                verifier.add_file("code/__torch__/m.py", "__torch__.m", &mutated);
                let _ = verifier.finish();
            }
        }
        let many = "(".repeat(MAX_TOKENS + 1);
        assert_eq!(
            issues_of(&many),
            [format!(
                "1: more than {MAX_TOKENS} tokens: too large to verify"
            )]
        );
        let mut refs = String::from("def f(x):\n");
        for i in 0..=MAX_NAMES {
            refs.push_str(&format!("  __torch__.m.f{i}\n"));
        }
        let mut verifier = Verifier::default();
        verifier.add_file("code/__torch__/m.py", "__torch__.m", refs.as_bytes());
        let (issues, count) = verifier.finish();
        assert!(count > MAX_NAMES, "every kept reference is undefined");
        assert!(
            issues.iter().any(|i| i.what.contains("too many to verify")),
            "{issues:?}"
        );
    }

    #[test]
    fn definitions_include_mangled_classes_and_functions() {
        let mut verifier = Verifier::default();
        verifier.add_file(
            "code/__torch__/a/___torch_mangle_3.py",
            "__torch__.a.___torch_mangle_3",
            b"class Linear(Module):\n  def forward(self: __torch__.a.___torch_mangle_3.Linear) -> int:\n    return 1\ndef g() -> int:\n  return 2\n",
        );
        assert!(
            verifier
                .defined()
                .contains("__torch__.a.___torch_mangle_3.Linear")
        );
        assert!(
            verifier
                .defined()
                .contains("__torch__.a.___torch_mangle_3.g")
        );
        assert!(
            !verifier
                .defined()
                .contains("__torch__.a.___torch_mangle_3.forward")
        );
        assert_eq!(verifier.finish().1, 0);
        // A custom class is the process's, even when a code file "defines" it.
        let mut verifier = Verifier::default();
        verifier.add_file(
            "code/__torch__/torch/classes/c10d.py",
            "__torch__.torch.classes.c10d",
            b"class ProcessGroup(Module):\n  def f(self: __torch__.torch.classes.c10d.ProcessGroup) -> int:\n    return 1\n",
        );
        assert_eq!(verifier.finish().1, 1);
        assert!(OPERATORS.get("aten::add") == Some(&None));
        assert!(
            OPERATORS
                .get("aten::from_file")
                .is_some_and(Option::is_some)
        );
    }
}
