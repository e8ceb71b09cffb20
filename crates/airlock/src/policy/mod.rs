//! Decides how an imported global is rated: allowlist profiles first, a denylist only to label.
//!
//! A global is *innocuous* only when an enabled profile lists it (classes, not packages);
//! *dangerous* when it is a known gadget, a universal resolver, a loader of nested pickles, a
//! scanner, or has a dunder component; *suspicious* otherwise.
//!
//! Names are normalised first, the way CPython's unpickler resolves them: Python-2 and C
//! aliases (`__builtin__`, `_operator`, `posix`, ...) map to their public module.

use crate::report::Rating;
use crate::rules::Rule;

/// The rating of one global, with the rule to report and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    pub rating: Rating,
    /// The rule a finding should carry; `None` for innocuous imports.
    pub rule: Option<Rule>,
    pub reason: String,
    /// The global deserialises bytes it is given (pickle.loads, torch.load, marshal.loads...):
    /// literal bytes passed to it are scanned as a nested pickle.
    pub loads_nested: bool,
}

/// The set of allowlist profiles and user additions in force for a scan.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    user_allowed: Vec<(String, String)>,
}

/// Maps a module name to the public module the unpickler really imports.
pub fn normalize_module(module: &str) -> &str {
    match module {
        "__builtin__" | "__builtins__" => "builtins",
        "copy_reg" => "copyreg",
        "_operator" => "operator",
        "_io" => "io",
        "_pickle" | "cPickle" => "pickle",
        "posix" | "nt" => "os",
        "_codecs" => "codecs",
        "_functools" => "functools",
        "_collections" => "collections",
        "commands" => "subprocess",
        "httplib" => "http.client",
        "urllib2" => "urllib.request",
        other => other,
    }
}

const TORCH_WEIGHTS_ONLY: &[&str] = &[
    "collections.OrderedDict",
    "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor_v3",
    "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state",
    "torch._tensor._rebuild_from_type_v2",
    "torch.FloatStorage",
    "torch.HalfStorage",
    "torch.BFloat16Storage",
    "torch.DoubleStorage",
    "torch.LongStorage",
    "torch.IntStorage",
    "torch.ShortStorage",
    "torch.CharStorage",
    "torch.ByteStorage",
    "torch.BoolStorage",
    "torch.UntypedStorage",
];

const DANGEROUS_MODULES: &[&str] = &[
    "os",
    "subprocess",
    "sys",
    "builtins",
    "runpy",
    "pty",
    "socket",
    "shutil",
    "pickle",
    "marshal",
    "importlib",
    "ctypes",
    "webbrowser",
    "requests",
    "urllib",
    "http",
    "asyncio",
];

/// Why a policy file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy file {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("invalid policy file {path}: {message}")]
    Invalid {
        path: std::path::PathBuf,
        message: String,
    },
}

/// The file name looked for upward from a scanned path.
pub const POLICY_FILE_NAME: &str = "airlock.toml";

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    allow: Vec<String>,
}

impl Policy {
    /// Loads a TOML policy file (`allow = ["module.name", ...]`).
    pub fn from_file(path: &std::path::Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let file: PolicyFile = toml::from_str(&text).map_err(|e| PolicyError::Invalid {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let mut policy = Policy::default();
        for name in &file.allow {
            policy.allow(name);
        }
        Ok(policy)
    }

    /// Finds `airlock.toml` in `start` (or its folder, for a file) or the nearest ancestor.
    pub fn discover(start: &std::path::Path) -> Option<std::path::PathBuf> {
        let start = if start.is_dir() {
            start
        } else {
            start.parent()?
        };
        start
            .ancestors()
            .map(|dir| dir.join(POLICY_FILE_NAME))
            .find(|p| p.is_file())
    }

    /// Adds `module.name` (or `module:name`) as an allowed global.
    pub fn allow(&mut self, qualified: &str) {
        let (module, name) = split_qualified(qualified);
        self.user_allowed
            .push((module.to_string(), name.to_string()));
    }

    /// Rates one global as a loader would import it.
    pub fn assess(&self, module: &str, name: &str) -> Assessment {
        let module = normalize_module(module);
        if module.split('.').chain(name.split('.')).any(is_dunder) {
            return Assessment {
                rating: Rating::Dangerous,
                rule: Some(Rule::DunderName),
                reason: "dunder component".into(),
                loads_nested: false,
            };
        }
        let qualified = format!("{module}.{name}");
        if TORCH_WEIGHTS_ONLY.contains(&qualified.as_str())
            || self
                .user_allowed
                .iter()
                .any(|(m, n)| m == module && n == name)
        {
            return Assessment {
                rating: Rating::Innocuous,
                rule: None,
                reason: "pytorch".into(),
                loads_nested: false,
            };
        }
        let root = module.split('.').next().unwrap_or(module);
        if DANGEROUS_MODULES.contains(&root) {
            let loads_nested = matches!(
                qualified.as_str(),
                "pickle.loads" | "pickle.load" | "marshal.loads" | "torch.load"
            );
            return Assessment {
                rating: Rating::Dangerous,
                rule: Some(Rule::DangerousImport),
                reason: format!("`{root}` can run code or touch the host"),
                loads_nested,
            };
        }
        Assessment {
            rating: Rating::Suspicious,
            rule: Some(Rule::UnknownImport),
            reason: "not on any enabled allowlist".into(),
            loads_nested: false,
        }
    }
}

/// Normalises `module.name` (split at the last dot) to the module the unpickler imports.
pub fn normalize_qualified(qualified: &str) -> String {
    let (module, name) = split_qualified(qualified);
    format!("{}.{name}", normalize_module(module))
}

/// Splits `a.b.c` at the last dot, or `a.b:c` at the colon.
pub fn split_qualified(qualified: &str) -> (&str, &str) {
    if let Some((m, n)) = qualified.split_once(':') {
        return (m, n);
    }
    qualified.rsplit_once('.').unwrap_or(("", qualified))
}

fn is_dunder(part: &str) -> bool {
    part.len() > 4 && part.starts_with("__") && part.ends_with("__")
}
