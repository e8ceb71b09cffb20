//! Decides how an imported global is rated: allowlist profiles first, a denylist only to label.
//!
//! A global is *innocuous* only when an enabled profile (or the user's `airlock.toml`) lists
//! the exact `(module, name)` pair; *dangerous* when it has a dunder component or the denylist
//! labels it (shell, code execution, universal resolver, nested loader, scanner, ...);
//! *suspicious* otherwise. Names are normalised first, the way CPython's unpickler resolves
//! them (`names`), and dotted names are split into components: an attribute chain that reaches
//! a denylisted module (`pathlib` + `os.system`) is labelled by what it reaches.
//!
//! See `docs/policy.md` for the profiles, the decisions, and what a user may override.

mod aliases;
pub mod denylist;
pub(crate) mod file;
mod names;
pub mod profiles;

use std::collections::{HashMap, HashSet};

pub use denylist::Category;
pub use file::POLICY_FILE_NAME;
pub use names::{normalize, normalize_module, split_qualified};
pub use profiles::Profile;

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
    /// The profile that allowed the global (`"pytorch"`, ...), or `"policy file"` for a user
    /// allowance; `None` unless innocuous.
    pub allowed_by: Option<&'static str>,
    /// The global is innocuous only when the classes or callables passed to it are themselves
    /// allowlisted globals (`copyreg._reconstructor`, `torch._tensor._rebuild_from_type_v2`,
    /// numpy's random-generator constructors, Cython `__pyx_unpickle_*` helpers). Holds today
    /// because every global a pickle passes them is rated on its own and no profile allows a
    /// global returning an arbitrary callable; the engine does not re-check the arguments
    /// (see docs/policy.md).
    pub args_must_be_allowed: bool,
}

impl Assessment {
    fn innocuous(allowed_by: &'static str, module: &str, name: &str) -> Self {
        Assessment {
            rating: Rating::Innocuous,
            rule: None,
            reason: format!("allowed by the {allowed_by} profile"),
            loads_nested: false,
            allowed_by: Some(allowed_by),
            args_must_be_allowed: profiles::takes_classes(module, name),
        }
    }

    fn flagged(rating: Rating, rule: Rule, reason: String) -> Self {
        Assessment {
            rating,
            rule: Some(rule),
            reason,
            loads_nested: false,
            allowed_by: None,
            args_must_be_allowed: false,
        }
    }
}

/// What `allowed_by` says for a global the user's policy file allowed.
pub const USER_ALLOWANCE: &str = "policy file";

/// Why a policy, or an entry of one, could not be used.
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
    /// A name that is not a usable `module.name` (empty component, wildcard, whitespace).
    #[error("`{entry}` is not a global name: {message}")]
    BadName { entry: String, message: String },
    /// A global Airlock never allows, whatever the policy says.
    #[error("`{entry}` can never be allowed: {reason}")]
    Forbidden { entry: String, reason: String },
    #[error("unknown profile `{name}` (known: {known})")]
    UnknownProfile { name: String, known: String },
}

/// The set of allowlist profiles and user additions in force for a scan.
#[derive(Debug, Clone)]
pub struct Policy {
    enabled: Vec<Profile>,
    /// Normalised module → names the user allowed.
    user_allowed: HashMap<String, HashSet<String>>,
    /// Dotted paths the user labelled dangerous (matching submodules and attributes).
    user_denied: HashSet<String>,
    /// Bytes in the longest of them (lookups stop at runs longer than this).
    user_denied_longest: usize,
    /// The user vouches for llamafiles (`allow_llamafile = true`, `--allow-llamafile`).
    llamafile_allowed: bool,
}

impl Default for Policy {
    /// Every shipped profile on, no user additions.
    fn default() -> Self {
        Policy {
            enabled: Profile::ALL.to_vec(),
            user_allowed: HashMap::new(),
            user_denied: HashSet::new(),
            user_denied_longest: 0,
            llamafile_allowed: false,
        }
    }
}

/// What labelled a global dangerous: the built-in denylist or the user's `deny` list.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Label {
    entry: String,
    category: Option<Category>,
    /// The entry was reached through attributes of another object (`pathlib` + `os.system`).
    via_attribute: bool,
    /// The path the alias table resolved the name to, when it was an alias
    /// (`random._os.system` → `os.system`).
    resolved: Option<String>,
}

impl Policy {
    /// Loads a TOML policy file; see [`file`] for the format.
    pub fn from_file(path: &std::path::Path) -> Result<Policy, PolicyError> {
        file::load(path)
    }

    /// Finds `airlock.toml` in `start` (or its folder, for a file) or the nearest ancestor.
    pub fn discover(start: &std::path::Path) -> Option<std::path::PathBuf> {
        file::discover(start)
    }

    /// The profiles in force, in lookup order.
    pub fn profiles(&self) -> &[Profile] {
        &self.enabled
    }

    /// Turns a profile on or off.
    pub fn set_profile(&mut self, profile: Profile, enabled: bool) {
        self.enabled.retain(|p| *p != profile);
        if enabled {
            self.enabled.push(profile);
            self.enabled
                .sort_by_key(|p| Profile::ALL.iter().position(|q| q == p));
        }
    }

    /// Turns a profile on or off by its name (`sklearn`, `pytorch`, ...).
    pub fn set_profile_by_name(&mut self, name: &str, enabled: bool) -> Result<(), PolicyError> {
        let profile = Profile::from_name(name).ok_or_else(|| PolicyError::UnknownProfile {
            name: name.to_string(),
            known: Profile::ALL
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
        self.set_profile(profile, enabled);
        Ok(())
    }

    /// Adds `module.name` (or `module:name`, for a dotted name) as an allowed global.
    ///
    /// Refuses names that can never be allowed: dunder components, and anything the denylist
    /// labels as running code, resolving names, loading nested payloads, changing the
    /// interpreter, loading native code, or being a scanner (`os`, `posix`, `nt`, `sys`,
    /// `subprocess`, `builtins.eval`/`exec`/`getattr`, `importlib`, `pickle.loads`, ...).
    /// Network, file-system and callable-wrapper labels (`functools.partial`) may be overridden.
    pub fn allow(&mut self, qualified: &str) -> Result<(), PolicyError> {
        let (raw_module, raw_name) = split_qualified(qualified);
        validate_name(qualified, raw_module, raw_name)?;
        let (module, name) = normalize(raw_module, raw_name);
        if let Some(dunder) = names::dunder_component(module, name) {
            return Err(PolicyError::Forbidden {
                entry: qualified.to_string(),
                reason: format!("dunder component `{dunder}` reaches interpreter internals"),
            });
        }
        if let Some(label) = builtin_label(module, name) {
            if let Some(category) = label.category.filter(|c| !c.user_may_allow()) {
                return Err(PolicyError::Forbidden {
                    entry: qualified.to_string(),
                    reason: format!("`{}` {}", label.entry, category.reason()),
                });
            }
        }
        self.user_allowed
            .entry(module.to_string())
            .or_default()
            .insert(name.to_string());
        Ok(())
    }

    /// Labels a dotted path (a module, a `module.name`, or a prefix of either) dangerous, over
    /// any profile that lists it.
    pub fn deny(&mut self, path: &str) -> Result<(), PolicyError> {
        if path.is_empty() || path.split('.').any(|c| c.is_empty() || !is_identifier(c)) {
            return Err(PolicyError::BadName {
                entry: path.to_string(),
                message: "expected a dotted path such as `package.module.Name`".into(),
            });
        }
        let (head, rest) = path
            .split_once('.')
            .map_or((path, None), |(h, r)| (h, Some(r)));
        let head = normalize_module(head);
        let entry = match rest {
            Some(rest) => format!("{head}.{rest}"),
            None => head.to_string(),
        };
        self.user_denied_longest = self.user_denied_longest.max(entry.len());
        self.user_denied.insert(entry);
        Ok(())
    }

    /// Vouches for llamafiles: their executable part is reported as allowed (EXE001 at
    /// `info`) instead of dangerous. Their embedded model files are scanned either way. No
    /// other kind of executable can be allowed: a model folder never needs an ELF, PE or
    /// Mach-O binary, while a llamafile is a model distributed as a program on purpose.
    pub fn allow_llamafile(&mut self, allowed: bool) {
        self.llamafile_allowed = allowed;
    }

    /// Whether [`Policy::allow_llamafile`] is in force.
    pub fn llamafile_allowed(&self) -> bool {
        self.llamafile_allowed
    }

    /// Rates one global as a loader would import it.
    pub fn assess(&self, module: &str, name: &str) -> Assessment {
        let (m, n) = normalize(module, name);
        if let Some(dunder) = names::dunder_component(m, n) {
            return Assessment::flagged(
                Rating::Dangerous,
                Rule::DunderName,
                format!("dunder component `{dunder}` reaches interpreter internals"),
            );
        }
        if let Some(label) = self.user_label(m, n) {
            return assessment_for_label(&label);
        }
        if let Some(profile) = self.enabled.iter().find(|p| p.contains(m, n)) {
            return Assessment::innocuous(profile.name(), m, n);
        }
        if self
            .user_allowed
            .get(m)
            .is_some_and(|names| names.contains(n))
        {
            let mut assessment = Assessment::innocuous(USER_ALLOWANCE, m, n);
            assessment.reason = "allowed by the policy file".into();
            // An allowed wrapper (`functools.partial`) is only as safe as what it wraps.
            let wraps_callables =
                builtin_label(m, n).is_some_and(|l| l.category == Some(Category::CallableWrapper));
            assessment.args_must_be_allowed |= wraps_callables;
            return assessment;
        }
        match builtin_label(m, n) {
            Some(label) => assessment_for_label(&label),
            None => Assessment::flagged(
                Rating::Suspicious,
                Rule::UnknownImport,
                "not on any enabled allowlist profile".into(),
            ),
        }
    }
}

/// `path` resolved through the generated alias table (`enum.bltns.getattr` →
/// `builtins.getattr`); `None` when no leading run of it is an alias.
pub(crate) fn resolve_alias(path: &str) -> Option<String> {
    aliases::resolve(path)
}

impl Policy {
    /// True when the user's `deny` list labels this global (as [`Policy::assess`] reads it).
    /// The pickle engine does not resolve a resolver gadget the user denied by name: a denied
    /// `builtins.getattr` stays dangerous whatever its arguments.
    pub fn user_denies(&self, module: &str, name: &str) -> bool {
        let (m, n) = normalize(module, name);
        self.user_label(m, n).is_some()
    }

    /// The user's `deny` entry matching a normalised global, if any.
    fn user_label(&self, m: &str, n: &str) -> Option<Label> {
        if self.user_denied.is_empty() {
            return None;
        }
        let longest = self.user_denied_longest;
        let lookup = |path: &str| {
            names::leading_runs(path)
                .take_while(|run| run.len() <= longest)
                .filter_map(|run| self.user_denied.get(run))
                .last()
                .map(|entry| (entry.as_str(), None))
        };
        label_with(m, n, longest, lookup)
    }
}

/// Normalises `module.name` (split like [`split_qualified`]) to the `module.name` the
/// unpickler resolves (`_codecs.encode` → `codecs.encode`, `__builtin__.xrange` →
/// `builtins.range`).
pub fn normalize_qualified(qualified: &str) -> String {
    let (module, name) = split_qualified(qualified);
    let (module, name) = normalize(module, name);
    if module.is_empty() {
        name.to_string()
    } else {
        format!("{module}.{name}")
    }
}

/// Checks that an `allow` entry names a global: a module and a name, identifier components.
fn validate_name(entry: &str, module: &str, name: &str) -> Result<(), PolicyError> {
    let bad = |message: &str| PolicyError::BadName {
        entry: entry.to_string(),
        message: message.to_string(),
    };
    if entry.contains('*') {
        return Err(bad("wildcards are not supported; list each global"));
    }
    if module.is_empty() || name.is_empty() {
        return Err(bad("expected `module.name` (or `module:Outer.Inner`)"));
    }
    if names::components(module, name).any(|c| !is_identifier(c)) {
        return Err(bad("every dotted component must be a Python identifier"));
    }
    Ok(())
}

/// A Python identifier as far as Airlock cares: non-empty, no separators or whitespace, not
/// starting with a digit.
fn is_identifier(component: &str) -> bool {
    let mut chars = component.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
}

fn builtin_label(module: &str, name: &str) -> Option<Label> {
    label_with(module, name, denylist::longest_entry(), |path| {
        denylist::label_path(path).map(|(entry, category)| (entry, Some(category)))
    })
}

/// Labels a normalised global with `lookup` (which maps a dotted path to the entry that
/// matches a leading run of it, and never matches a run longer than `longest` bytes): first
/// the full `module.name` path, then every attribute chain inside the name (`pathlib` +
/// `os.system` reaches `os.system`) of two or more components, with its head normalised
/// (`posix.system` → `os.system`). Each path is tried as written, then resolved through the
/// generated alias table (`random._os.system` is `os.system`; see `aliases`).
fn label_with<'e>(
    module: &str,
    name: &str,
    longest: usize,
    lookup: impl Fn(&str) -> Option<(&'e str, Option<Category>)>,
) -> Option<Label> {
    let full = if module.is_empty() {
        name.to_string()
    } else {
        format!("{module}.{name}")
    };
    let label = |path: &str, via_attribute: bool| {
        // What Python reaches wins over the spelling: `shutil.os.system` is `os.system`.
        let through_alias = aliases::resolve(path)
            .and_then(|r| lookup(&r).map(|(entry, category)| (entry, category, Some(r))));
        let (entry, category, resolved) = match through_alias {
            Some(found) => found,
            None => lookup(path).map(|(entry, category)| (entry, category, None))?,
        };
        Some(Label {
            entry: entry.to_string(),
            category,
            via_attribute,
            resolved,
        })
    };
    if let Some(found) = label(&full, false) {
        return Some(found);
    }
    let longest = longest.max(aliases::longest());
    attribute_chains(name, longest).find_map(|chain| label(&chain, true))
}

/// Every suffix of a dotted name with at least two components, head normalised, and cut
/// after the whole components of its rest that fit in `longest` bytes: no run longer than
/// that can match, and copying every whole suffix made a name of thousands of components
/// quadratic to label (a fuzzer's 29 KB GLOBAL took 15 s; see
/// `tests::attribute_chains_are_cut_to_the_longest_entry`).
fn attribute_chains(name: &str, longest: usize) -> impl Iterator<Item = String> + '_ {
    std::iter::once(0)
        .chain(name.match_indices('.').map(|(i, _)| i + 1))
        .filter_map(move |start| name.get(start..))
        .filter_map(move |suffix| {
            let (head, rest) = suffix.split_once('.')?;
            let head = normalize_module(head);
            Some(match leading_within(rest, longest) {
                "" => head.to_string(),
                rest => format!("{head}.{rest}"),
            })
        })
}

/// The longest leading run of whole components of `path` within `max` bytes ("" when even
/// the first component is longer). Not `names::leading_runs(..).take_while(..).last()`: that
/// scans on to the next `.` past `max`, the whole rest of the name when a huge component
/// follows, once per suffix.
fn leading_within(path: &str, max: usize) -> &str {
    if path.len() <= max {
        return path;
    }
    let end = path.as_bytes()[..=max]
        .iter()
        .rposition(|&b| b == b'.')
        .unwrap_or(0);
    &path[..end]
}

fn describe_reach(label: &Label) -> String {
    if let Some(resolved) = &label.resolved {
        format!(
            "is `{resolved}` (a module attribute re-exports it), `{}`: ",
            label.entry
        )
    } else if label.via_attribute {
        format!("reaches `{}` through attributes: ", label.entry)
    } else {
        format!("`{}`: ", label.entry)
    }
}

fn assessment_for_label(label: &Label) -> Assessment {
    let Some(category) = label.category else {
        let reason = format!("{}denied by the policy file", describe_reach(label));
        return Assessment::flagged(Rating::Dangerous, Rule::DangerousImport, reason);
    };
    let reason = format!("{}{}", describe_reach(label), category.reason());
    let (rating, rule) = match category {
        Category::Scanner => (Rating::Dangerous, Rule::ScannerImport),
        c if c.is_dangerous() => (Rating::Dangerous, Rule::DangerousImport),
        _ => (Rating::Suspicious, Rule::UnknownImport),
    };
    let mut assessment = Assessment::flagged(rating, rule, reason);
    assessment.loads_nested = category == Category::NestedLoader;
    assessment
}

#[cfg(test)]
mod tests;
