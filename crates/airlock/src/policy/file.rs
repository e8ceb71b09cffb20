//! Policy files: `airlock.toml`, found next to the scanned files or in an ancestor folder.
//!
//! ```toml
//! allow = ["mypackage.models.MyNet", "functools.partial"]  # exact globals
//! deny = ["mypackage.unsafe"]                                # labelled dangerous
//! allow_llamafile = true                                     # vouch for llamafiles
//!
//! [profiles]
//! sklearn = false                                            # profile switched off
//! ```
//!
//! Entries that can never be allowed (see [`super::Policy::allow`]) and unknown profile names
//! make the whole file invalid: a policy that silently drops a line is worse than none.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Policy, PolicyError};

/// The file name looked for upward from a scanned path.
pub const POLICY_FILE_NAME: &str = "airlock.toml";

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
    #[serde(default)]
    profiles: BTreeMap<String, bool>,
    #[serde(default)]
    allow_llamafile: bool,
}

/// Reads and validates a policy file.
pub fn load(path: &Path) -> Result<Policy, PolicyError> {
    let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text).map_err(|message| PolicyError::Invalid {
        path: path.to_path_buf(),
        message,
    })
}

/// Builds a policy from the text of a policy file; the error is a message for the user.
pub fn parse(text: &str) -> Result<Policy, String> {
    let file: PolicyFile = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut policy = Policy::default();
    for (name, enabled) in &file.profiles {
        policy
            .set_profile_by_name(name, *enabled)
            .map_err(|e| format!("[profiles]: {e}"))?;
    }
    for entry in &file.allow {
        policy.allow(entry).map_err(|e| format!("allow: {e}"))?;
    }
    for entry in &file.deny {
        policy.deny(entry).map_err(|e| format!("deny: {e}"))?;
    }
    policy.allow_llamafile(file.allow_llamafile);
    Ok(policy)
}

/// Finds `airlock.toml` in `start` (or its folder, for a file) or the nearest ancestor.
pub fn discover(start: &Path) -> Option<PathBuf> {
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
