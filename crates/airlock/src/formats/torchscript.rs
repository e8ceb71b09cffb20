//! TorchScript `code/` files: a bounded hit list of the calls that matter, per line, and an
//! allowlist verification of the whole program ([`verify`], PT008).
//!
//! Decision (issue 21): a TorchScript archive is a program (PT004, now *info*), and it is safe
//! when its code is verified: every code file read whole, every name built in or bound by the
//! code, every operator `allowed` in the table generated from torch's own registry
//! (`scripts/policy/gen_torchscript_ops.py`), every `__torch__` class defined by a code file.
//! Anything else is PT008 (suspicious); the hit list below keeps PT006 (dangerous) and PT007.
//!
//! A TorchScript archive (`<root>/constants.pkl` plus `<root>/code/**.py`) is compiled and run
//! by `torch.jit.load`. Its code files are Python-like source that torch's serializer prints;
//! each `.py` under `code/` is searched, line by line, for:
//! - `torch.ops.<ns>.` or `ops.<ns>.` with `<ns>` outside `aten` and `prim` (PT007, suspicious:
//!   a custom operator needs a native library registered by the loading program; this includes
//!   `quantized`, which the issue's list does not exempt);
//! - `open(`, `os.`, `subprocess`, `builtins.`, `__import__`, `eval(`, `exec(` (PT006,
//!   dangerous: file, process and dynamic-code access have no place in a model's forward pass).
//!
//! Limitations, by design: this is a hit list, not a Python parser. Matches are on identifier
//! boundaries, outside single-line string literals (torch's printer writes
//! `ops.prim.RaiseException(_0, "builtins.RuntimeError")` in ordinary models), but inside
//! comments and multi-line strings (a false positive is possible there; a call spelled through
//! `getattr` with a computed name is not seen). Each file is read up to
//! [`MAX_CODE_BYTES`], all files together up to [`MAX_TOTAL_CODE_BYTES`]; what is cut off is
//! said in the report, and at most [`MAX_HITS_PER_FILE`] hits per file are listed.

mod verify;

pub use verify::{Issue, MAX_ISSUES, Verifier};

use crate::ctx::Ctx;
use crate::hash::HashSet;
use crate::policy::Assessment;
use crate::report::{Finding, Rating};
use crate::rules::Rule;

/// The pickles of a TorchScript archive that `torch.jit.load` reads with its own C++
/// unpickler (paths after `<root>`).
pub const JIT_PICKLES: &[&str] = &["/data.pkl", "/constants.pkl", "/bytecode.pkl"];

/// Helpers of `torch.jit._pickle` that the C++ unpickler implements itself.
const JIT_PICKLE_BUILTINS: &[&str] = &[
    "build_intlist",
    "build_tensorlist",
    "build_doublelist",
    "build_boollist",
    "build_tensor_from_id",
    "restore_type_tag",
];

/// How `torch.jit`'s unpickler resolves globals, for [`Ctx::in_jit_pickle`]: its built-ins and
/// the classes `defined` by the archive's code ([`assess_jit_global`]).
pub fn jit_resolver(defined: HashSet<String>) -> crate::ctx::Resolver {
    std::sync::Arc::new(move |module, name| assess_jit_global(module, name, &defined))
}

/// How `torch.jit`'s C++ unpickler (torch/csrc/jit/serialization/unpickler.cpp) resolves a
/// global in the pickles of a TorchScript archive, where it differs from a Python import:
/// - `__torch__.<path>.<Class>` names a TorchScript class compiled from the archive's `code/`
///   (the type resolver looks it up; Python never imports it). When a code file defines it
///   (`defined`, from [`Verifier::defined`]) it is innocuous: its methods are code the
///   verifier reads (PT008 when it cannot vouch for them, PT006/PT007 for the hit list).
///   Undefined, torch.jit.load fails or resolves it elsewhere (a custom class registered by
///   a native library): suspicious (PT008), instead of a dunder import.
/// - the `torch.jit._pickle` list builders are built into the unpickler: innocuous.
///
/// Anything else (`None`) is rated by the policy as a Python import would be: the C++
/// unpickler refuses most such globals, and rating them as Python would is the cautious
/// reading. A `__torch__` path with another dunder component is left to the policy too.
pub fn assess_jit_global(
    module: &str,
    name: &str,
    defined: &HashSet<String>,
) -> Option<Assessment> {
    if module == "torch.jit._pickle" && JIT_PICKLE_BUILTINS.contains(&name) {
        return Some(Assessment {
            rating: Rating::Innocuous,
            rule: None,
            reason: "built into torch.jit's unpickler".into(),
            loads_nested: false,
            allowed_by: Some("torchscript"),
            args_must_be_allowed: false,
        });
    }
    let rest = module
        .strip_prefix("__torch__")
        .filter(|r| r.is_empty() || r.starts_with('.'))?;
    let dunder = rest
        .split('.')
        .chain(std::iter::once(name))
        .any(|c| c.len() > 4 && c.starts_with("__") && c.ends_with("__"));
    if dunder {
        return None;
    }
    let qualified = format!("{module}.{name}");
    let is_defined =
        !qualified.starts_with(verify::CUSTOM_CLASS_PREFIX) && defined.contains(&qualified);
    Some(Assessment {
        rating: if is_defined {
            Rating::Innocuous
        } else {
            Rating::Suspicious
        },
        rule: (!is_defined).then_some(Rule::TorchScriptUnverified),
        reason: if is_defined {
            "TorchScript class defined by the archive's code/ (compiled by torch.jit, not imported)"
        } else {
            "TorchScript class that no code/ file of the archive defines"
        }
        .into(),
        loads_nested: false,
        allowed_by: is_defined.then_some("torchscript"),
        args_must_be_allowed: false,
    })
}

pub use crate::limits::caps::torchscript::MAX_CODE_BYTES;
pub use crate::limits::caps::torchscript::MAX_HITS_PER_FILE;
pub use crate::limits::caps::torchscript::MAX_TOTAL_CODE_BYTES;
/// `torch.ops` namespaces built into torch.
const BUILTIN_OP_NAMESPACES: &[&str] = &["aten", "prim"];
/// Calls that reach the host, and how they are named in messages.
const HOST_CALLS: &[(&str, &str)] = &[
    ("open(", "opens a file"),
    ("os.", "uses the `os` module"),
    ("subprocess", "uses `subprocess`"),
    ("builtins.", "reaches `builtins`"),
    ("__import__", "imports a module dynamically"),
    ("eval(", "evaluates code"),
    ("exec(", "executes code"),
];

/// One line of a code file that calls something that matters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeHit {
    /// 1-based line number.
    pub line: usize,
    pub rule: Rule,
    /// What was found, e.g. "uses the `os` module" or "custom operator namespace `evil`".
    pub what: String,
    /// The line, trimmed and shortened.
    pub excerpt: String,
}

/// Searches `code` (at most [`MAX_CODE_BYTES`] of it) line by line. Pure: no context needed.
pub fn code_hits(code: &[u8]) -> Vec<CodeHit> {
    let code = code.get(..MAX_CODE_BYTES).unwrap_or(code);
    let text = String::from_utf8_lossy(code);
    let mut hits = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let excerpt = || line.trim().chars().take(160).collect::<String>();
        let code = mask_strings(line);
        let line = code.as_str();
        for (needle, what) in HOST_CALLS {
            if find_word(line, needle).is_some() {
                hits.push(CodeHit {
                    line: index + 1,
                    rule: Rule::TorchScriptHostCall,
                    what: format!("{what} (`{}`)", needle.trim_end_matches(['(', '.'])),
                    excerpt: excerpt(),
                });
            }
        }
        for ns in custom_op_namespaces(line) {
            hits.push(CodeHit {
                line: index + 1,
                rule: Rule::TorchScriptCustomOp,
                what: format!("custom operator namespace `{ns}`"),
                excerpt: excerpt(),
            });
        }
    }
    hits
}

/// The line with the contents of its `"…"` and `'…'` literals blanked (quotes kept, escapes
/// honoured), so text inside strings is not taken for calls.
fn mask_strings(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in line.chars() {
        match quote {
            None => {
                if c == '"' || c == '\'' {
                    quote = Some(c);
                }
                out.push(c);
            }
            Some(q) => {
                if escaped {
                    escaped = false;
                    out.push(' ');
                } else if c == '\\' {
                    escaped = true;
                    out.push(' ');
                } else if c == q {
                    quote = None;
                    out.push(c);
                } else {
                    out.push(' ');
                }
            }
        }
    }
    out
}

/// Byte position of `needle` in `line` where it starts an identifier (not preceded by an
/// identifier character or a dot), so `torch.ops.` does not match `os.`, nor `reopen(` `open(`.
fn find_word(line: &str, needle: &str) -> Option<usize> {
    line.match_indices(needle).map(|(at, _)| at).find(|&at| {
        let before = line.get(..at).and_then(|b| b.chars().next_back());
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.')
    })
}

/// Namespaces of `ops.<ns>.` / `torch.ops.<ns>.` calls on the line that are not built in.
fn custom_op_namespaces(line: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for (at, _) in line.match_indices("ops.") {
        let before = line.get(..at).and_then(|b| b.chars().next_back());
        let qualified = line.get(..at).is_some_and(|b| b.ends_with("torch."));
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') && !qualified {
            continue;
        }
        let rest = line.get(at + 4..).unwrap_or_default();
        let ns: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .take(100)
            .collect();
        let dotted = rest.get(ns.len()..).is_some_and(|r| r.starts_with('.'));
        if !ns.is_empty()
            && dotted
            && !BUILTIN_OP_NAMESPACES.contains(&ns.as_str())
            && !found.contains(&ns)
        {
            found.push(ns);
        }
    }
    found
}

/// Running totals over one archive's code files, for the caps and the summary note.
#[derive(Debug, Default)]
pub struct CodeScan {
    pub files: usize,
    pub bytes_read: usize,
    pub hits: usize,
    /// Files (or parts of files) not searched because a cap was reached.
    pub cut: usize,
}

impl CodeScan {
    /// Searches one code file (`ctx` is inside its member) and reports each hit. Returns
    /// whether the whole file was searched.
    pub fn scan_file(&mut self, ctx: &mut Ctx, code: &[u8]) -> bool {
        self.files += 1;
        let room = MAX_TOTAL_CODE_BYTES.saturating_sub(self.bytes_read);
        let limit = room.min(MAX_CODE_BYTES);
        let searched = code.get(..limit).unwrap_or(code);
        if searched.len() < code.len() {
            self.cut += 1;
            ctx.report(Finding::new(
                Rule::ArchiveLimit,
                format!(
                    "only the first {} of {} bytes of this TorchScript code file were searched \
                     (cap per file {MAX_CODE_BYTES}, per archive {MAX_TOTAL_CODE_BYTES})",
                    searched.len(),
                    code.len()
                ),
            ));
        }
        self.bytes_read += searched.len();
        let hits = code_hits(searched);
        self.hits += hits.len();
        for hit in hits.iter().take(MAX_HITS_PER_FILE) {
            ctx.report(Finding::new(
                hit.rule,
                format!("line {}: {}: `{}`", hit.line, hit.what, hit.excerpt),
            ));
        }
        if hits.len() > MAX_HITS_PER_FILE {
            ctx.report(Finding::new(
                hits.iter()
                    .skip(MAX_HITS_PER_FILE)
                    .map(|h| h.rule)
                    .max()
                    .unwrap_or(Rule::TorchScriptCustomOp),
                format!(
                    "{} more hits in this file not listed",
                    hits.len() - MAX_HITS_PER_FILE
                ),
            ));
        }
        searched.len() == code.len()
    }

    /// The phrase for the summary line.
    pub fn describe(&self, code_files: usize) -> String {
        let cut = if self.cut > 0 {
            format!(", {} cut at the byte cap", self.cut)
        } else {
            String::new()
        };
        format!(
            "code/: {code_files} files, {} .py searched ({} bytes), {} calls flagged{cut}",
            self.files, self.bytes_read, self.hits
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules_on(code: &str) -> Vec<(usize, Rule, String)> {
        code_hits(code.as_bytes())
            .into_iter()
            .map(|h| (h.line, h.rule, h.what))
            .collect()
    }

    #[test]
    fn generated_forward_code_has_no_hits() {
        let code = "class Net(Module):\n  __parameters__ = [\"weight\", ]\n  def forward(self: __torch__.Net, x: Tensor) -> Tensor:\n    _0 = torch.linear(x, self.weight)\n    _1 = ops.prim.NumToTensor(torch.size(x, 0))\n    return torch.add(_0, torch.ops.aten.relu(_1))\n";
        assert_eq!(rules_on(code), []);
    }

    #[test]
    fn host_calls_are_found_with_their_line() {
        let code = "def f(x):\n  os.system(\"id\")\n  y = open(\"/etc/passwd\")\n  subprocess.run([\"id\"])\n  builtins.eval(\"1\")\n  exec(\"print(1)\")\n";
        let hits = rules_on(code);
        assert!(hits.contains(&(
            2,
            Rule::TorchScriptHostCall,
            "uses the `os` module (`os`)".into()
        )));
        assert!(
            hits.iter()
                .any(|(l, r, _)| *l == 3 && *r == Rule::TorchScriptHostCall)
        );
        assert!(
            hits.iter()
                .any(|(l, _, w)| *l == 4 && w.contains("subprocess"))
        );
        assert!(
            hits.iter()
                .any(|(l, _, w)| *l == 5 && w.contains("builtins"))
        );
        assert!(
            hits.iter()
                .any(|(l, _, w)| *l == 6 && w.contains("executes"))
        );
    }

    #[test]
    fn text_inside_string_literals_is_not_a_call() {
        // Written by torch's printer for every `raise RuntimeError(...)` in a scripted module.
        let code = "    ops.prim.RaiseException(_0, \"builtins.RuntimeError\")\n    _1 = 'os.system(\\'x\\')'\n";
        assert_eq!(rules_on(code), []);
        assert_eq!(
            mask_strings(r#"a("x\"y", 'z') + os."#),
            r#"a("    ", ' ') + os."#
        );
        assert_eq!(rules_on("  x = \"a\" + eval(y)\n").len(), 1);
    }

    #[test]
    fn identifier_boundaries_avoid_false_hits() {
        let code =
            "  _pos.x = reopen(a)\n  torch.ops.aten.add(a)\n  photos.os_thing = 1\n  evaluate(x)\n";
        assert_eq!(rules_on(code), []);
    }

    #[test]
    fn custom_op_namespaces_are_suspicious() {
        let code = "  _0 = ops.my_ext.launch(x)\n  _1 = torch.ops.quantized.linear(x)\n  _2 = ops.my_ext.again(x)\n";
        let hits = rules_on(code);
        assert_eq!(
            hits,
            [
                (
                    1,
                    Rule::TorchScriptCustomOp,
                    "custom operator namespace `my_ext`".into()
                ),
                (
                    2,
                    Rule::TorchScriptCustomOp,
                    "custom operator namespace `quantized`".into()
                ),
                (
                    3,
                    Rule::TorchScriptCustomOp,
                    "custom operator namespace `my_ext`".into()
                ),
            ]
        );
    }

    #[test]
    fn reading_is_bounded() {
        let big = "x = 1\n".repeat(MAX_CODE_BYTES / 6 + 10) + "os.system('id')\n";
        assert_eq!(rules_on(&big), [], "past the per-file cap");
        assert_eq!(
            code_hits(b"\xff\xfe os.system(1)\n").len(),
            1,
            "lossy UTF-8"
        );
    }
}
