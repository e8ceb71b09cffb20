//! The one policy loader behind `scan`, `explain` and `convert`: `--policy FILE` or a
//! discovered `airlock.toml`, then `--allow` and `--allow-llamafile`. A file is rated the
//! same way by every subcommand because they all come through here.

use std::path::{Path, PathBuf};

use airlock::Policy;
use anyhow::{Context, Result};

use crate::args::PolicyArgs;
use crate::output::escape::escaped;

/// The policy in force and the file it came from (if any).
pub struct Loaded {
    pub policy: Policy,
    pub file: Option<PathBuf>,
}

/// `--policy FILE`, or `airlock.toml` discovered from `start` (a folder, or a file's folder)
/// upward; then `--allow` entries and `--allow-llamafile`. With `verbose`, names the file used
/// on stderr.
pub fn load(args: &PolicyArgs, start: Option<&Path>, verbose: bool) -> Result<Loaded> {
    let file = match &args.policy {
        Some(path) => Some(path.clone()),
        None => start.and_then(discover_from),
    };
    let mut policy = match &file {
        Some(path) => Policy::from_file(path).context("cannot use the policy file")?,
        None => Policy::default(),
    };
    if verbose {
        match &file {
            Some(path) => anstream::eprintln!("policy: {}", escaped(&path.display().to_string())),
            None => anstream::eprintln!("policy: none found; built-in profiles only"),
        }
    }
    for name in &args.allow {
        policy
            .allow(name)
            .with_context(|| format!("cannot use --allow {name}"))?;
    }
    if args.allow_llamafile {
        policy.allow_llamafile(true);
    }
    Ok(Loaded { policy, file })
}

/// `airlock.toml` from `start` upward. `-` (standard input) starts in the working folder.
fn discover_from(start: &Path) -> Option<PathBuf> {
    if start == Path::new("-") {
        return Policy::discover(Path::new("."));
    }
    Policy::discover(start)
}
