//! Command-line arguments: every subcommand and flag, with its help text (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Scan ML model files (pickle, PyTorch, NumPy, joblib, archives) without executing them.
///
/// Airlock reads the bytes the way the real loaders do and says, for every file, whether it is
/// safe, suspicious, dangerous or unscannable, listing every Python import the file would
/// perform when loaded.
#[derive(Debug, Parser)]
#[command(
    name = "airlock",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    #[command(flatten)]
    pub global: GlobalArgs,
}

/// Options every subcommand accepts.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// When to colour the output. `auto` colours only a terminal and respects `NO_COLOR`.
    #[arg(long, value_enum, default_value_t = ColorWhen::Auto, global = true)]
    pub color: ColorWhen,

    /// Print less: only files that are not safe; no summary, warnings or progress bar.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more: the policy file used (on stderr), and the imports and notes of safe files too.
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scan files and folders; exit 1 if anything reaches `--fail-on`.
    Scan(ScanArgs),
    /// Print the disassembly of a pickle (or of every pickle in a PyTorch zip), with findings marked.
    Explain(ExplainArgs),
    /// List the rules Airlock reports, or print one rule's documentation.
    Rules(RulesArgs),
    /// Convert PyTorch checkpoints to safetensors without executing them.
    Convert(crate::commands::convert::ConvertArgs),
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Files and folders to scan. Folders are walked recursively (symbolic links followed, hidden
    /// and git-ignored files included: a scanner must see every file).
    #[arg(value_name = "PATH", default_value = ".")]
    pub paths: Vec<PathBuf>,

    /// Report format written to stdout (or to `--output`).
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Write the report to FILE instead of stdout (atomically: a temporary file in the same
    /// folder, renamed into place).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Lowest verdict that makes the command exit 1.
    #[arg(long, value_enum, default_value_t = FailOn::Suspicious, value_name = "LEVEL")]
    pub fail_on: FailOn,

    /// Policy file (TOML) adding allowed globals. Without it, `airlock.toml` is looked for in
    /// the first PATH and its ancestors.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,

    /// Allow one more global, as `module.name` (or `module:name`). Repeatable.
    #[arg(long, value_name = "MODULE.NAME")]
    pub allow: Vec<String>,

    /// Vouch for llamafiles (models shipped as executables): report their program part as
    /// allowed instead of dangerous. Their embedded model files are still scanned.
    #[arg(long)]
    pub allow_llamafile: bool,

    /// Skip files and folders matching GLOB. A glob is matched against the path as shown and
    /// against the file or folder name. Repeatable.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,

    /// Number of files scanned at once (default: one per CPU).
    #[arg(long, short = 'j', value_name = "N")]
    pub threads: Option<usize>,

    /// Do not scan files larger than SIZE (e.g. 500M, 10G); they are reported unscannable.
    #[arg(long, value_name = "SIZE", value_parser = crate::size::parse_size)]
    pub max_file_size: Option<u64>,

    /// Give up on a file after SECS seconds; it is reported unscannable.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,

    /// Never show a progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The pickle file (or PyTorch zip) to disassemble.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Policy file used to rate imports when marking findings.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RulesArgs {
    /// A rule code (`PKL001`) or name (`dangerous-import`) whose documentation to print.
    #[arg(value_name = "CODE")]
    pub code: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One line per file, details for files that are not safe, and a summary.
    Text,
    /// The versioned JSON report described in docs/json-schema.md.
    Json,
    /// SARIF 2.1.0, for code-scanning dashboards.
    Sarif,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// Exit 1 only for dangerous findings.
    Dangerous,
    /// Exit 1 for suspicious or dangerous findings (the stance of torch's `weights_only=True`).
    Suspicious,
}

impl FailOn {
    pub fn as_str(self) -> &'static str {
        match self {
            FailOn::Dangerous => "dangerous",
            FailOn::Suspicious => "suspicious",
        }
    }

    pub fn threshold(self) -> airlock::Severity {
        match self {
            FailOn::Dangerous => airlock::Severity::Dangerous,
            FailOn::Suspicious => airlock::Severity::Suspicious,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
