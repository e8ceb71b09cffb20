//! `airlock convert`: PyTorch checkpoints to safetensors without executing them.
//!
//! The checkpoint's pickle is run by Airlock's symbolic machine ([`crate::pickle::machine`]),
//! never by Python. Only the tensor-rebuild vocabulary is understood (`_rebuild_tensor*`,
//! `_rebuild_parameter*`, `_rebuild_from_type_v2` around plain tensors, `dict`/`OrderedDict`
//! state dicts); anything else stops the conversion with an error naming the key path and
//! the byte offset in the pickle. Tensor bytes are copied from the checkpoint to the output
//! through bounded buffers, so memory stays small
//! whatever the checkpoint's size.
//!
//! Steps: [`Scanner`] scans the input (a dangerous or unscannable file is refused) →
//! [`source`] finds the pickle and the storage records (zip, legacy stacked pickles, pre-1.0
//! tar) → [`interpret`] turns the pickle's values into tensor descriptions → [`plan`] removes
//! exact aliases (tied weights) and keeps every other view → [`write`] gathers each view in
//! row-major order into a temporary file, re-reads and validates it, and renames it into
//! place. [`folder`] does the same for model folders and
//! sharded checkpoints.
//!
//! ```no_run
//! use airlock::convert::{Options, convert_file};
//! let summary = convert_file(
//!     std::path::Path::new("pytorch_model.bin"),
//!     std::path::Path::new("model.safetensors"),
//!     &Options::default(),
//! )?;
//! println!("{} tensors, {} bytes", summary.tensors, summary.bytes);
//! # Ok::<(), airlock::convert::ConvertError>(())
//! ```

pub mod folder;
pub mod interpret;
pub mod layout;
pub mod plan;
pub mod source;
#[doc(hidden)]
pub mod testkit;
pub mod write;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use crate::report::Verdict;
use crate::scan::Scanner;

pub use folder::{FolderSummary, Progress, convert_folder, plan_folder, safetensors_name};
pub use plan::{Plan, PlannedTensor, SharedGroup};
pub use write::Summary;

/// Top-level keys that wrap a state dict (Lightning's `state_dict`, and others), tried in
/// this order when `--key` is not given.
pub const WRAPPER_KEYS: &[&str] = &["state_dict", "model_state_dict", "model", "module"];

/// How to convert.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Take the state dict from this top-level key (otherwise from one of [`WRAPPER_KEYS`]
    /// when the top level has it, else the top level itself).
    pub key: Option<String>,
    /// Flatten nested dicts into `.`-joined names instead of refusing them.
    pub flatten: bool,
    /// Drop plain non-tensor values (numbers, strings, None) instead of refusing them.
    pub skip_non_tensors: bool,
    /// Keep every tensor as its own copy instead of removing exact aliases (tied weights).
    pub no_dedup: bool,
    /// Replace an existing output file.
    pub force: bool,
    /// After writing, compare every tensor's bytes with the source.
    pub verify: bool,
    /// Do not fsync the output before renaming it into place (faster; a crash soon after
    /// can leave an empty or partial file under the final name on some filesystems).
    pub no_sync: bool,
    /// The scanner used to vet the input (default policy and limits when `None`).
    pub scanner: Option<Scanner>,
}

impl Options {
    fn scanner(&self) -> Scanner {
        self.scanner.clone().unwrap_or_default()
    }
}

/// Why a conversion stopped. Every message names the file and, where there is one, the key
/// path and the byte offset.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: refused: the scanner rates it {verdict}: {reasons}")]
    Refused {
        path: PathBuf,
        verdict: Verdict,
        reasons: String,
    },
    #[error("{path}: not a PyTorch checkpoint Airlock can convert: {why}")]
    NotACheckpoint { path: PathBuf, why: String },
    #[error("{path}: {why}")]
    Unsupported { path: PathBuf, why: String },
    #[error("{path}: storage layout is inconsistent: {why}")]
    Layout { path: PathBuf, why: String },
    #[error("{path} already exists (use --force to replace it)")]
    Exists { path: PathBuf },
    #[error("{path}: the written file does not validate: {why}")]
    InvalidOutput { path: PathBuf, why: String },
    #[error("{path}: verification failed: {why}")]
    VerifyFailed { path: PathBuf, why: String },
}

impl ConvertError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        ConvertError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Scans `input`, reads it and plans the conversion without writing anything
/// (`airlock convert --check`).
pub fn plan_file(input: &Path, options: &Options) -> Result<Plan, ConvertError> {
    let checkpoint = open_vetted(input, options)?;
    plan::plan(&checkpoint, options)
}

/// Converts one checkpoint to one safetensors file.
pub fn convert_file(
    input: &Path,
    output: &Path,
    options: &Options,
) -> Result<Summary, ConvertError> {
    let checkpoint = open_vetted(input, options)?;
    let plan = plan::plan(&checkpoint, options)?;
    write::write(&checkpoint, &plan, output, options)
}

/// Scans the file, refuses it unless the scanner could read all of it and found nothing
/// dangerous, and reads its layout.
///
/// *Unscannable* is refused as *dangerous* is: a part Airlock could not read (an encrypted
/// or undecodable member, a limit or the timeout reached) may hide what would have made the
/// file dangerous, and converting it would launder it into a "safe" safetensors file.
/// *Suspicious* is converted: the output holds only the state dict's tensor bytes, names,
/// dtypes and shapes, and whatever made the file suspicious (an unknown class among the
/// hyper-parameters of a Lightning checkpoint, say) is either outside the state dict, never
/// looked at, or inside it, where conversion refuses anything outside torch's
/// tensor-rebuild vocabulary.
fn open_vetted(input: &Path, options: &Options) -> Result<source::Checkpoint, ConvertError> {
    let scanner = options.scanner();
    let report = scanner.scan_path(input);
    if refuses(report.verdict) {
        return Err(refusal(input, &report));
    }
    let checkpoint = source::Checkpoint::open(input, &scanner)?;
    // The pickle about to be interpreted is scanned on its own as well, whatever the
    // container scanner made of the file around it.
    let pickle_report = scanner.scan_bytes(&input.display().to_string(), checkpoint.pickle());
    if refuses(pickle_report.verdict) {
        return Err(refusal(input, &pickle_report));
    }
    Ok(checkpoint)
}

/// The verdicts `convert` refuses (see [`open_vetted`]).
fn refuses(verdict: Verdict) -> bool {
    matches!(verdict, Verdict::Dangerous | Verdict::Unscannable)
}

/// The refusal, naming the findings behind the verdict: the dangerous ones, and those that
/// left part of the file unread.
fn refusal(input: &Path, report: &crate::report::FileReport) -> ConvertError {
    let reasons: Vec<String> = report
        .findings
        .iter()
        .filter(|f| f.severity == crate::rules::Severity::Dangerous || f.is_incomplete())
        .map(|f| match &f.member {
            Some(member) => format!("{} {} (in {member})", f.rule.code(), f.message),
            None => format!("{} {}", f.rule.code(), f.message),
        })
        .collect();
    ConvertError::Refused {
        path: input.to_path_buf(),
        verdict: report.verdict,
        reasons: reasons.join("; "),
    }
}
