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

/// The `--help` heading of the options every subcommand accepts, listed after its own.
const GLOBAL_OPTIONS: &str = "Global options";

/// Options every subcommand accepts. Their help is worded for every subcommand, since clap
/// shows it under each one (`airlock rules --help` lists `--quiet` too).
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// When to colour the output. `auto` colours only a terminal and respects `NO_COLOR`.
    #[arg(long, value_enum, default_value_t = ColorWhen::Auto, global = true,
          help_heading = GLOBAL_OPTIONS)]
    pub color: ColorWhen,

    /// Print less: no warnings, summary or progress bar (`scan` lists only files that are not
    /// safe).
    #[arg(short, long, global = true, conflicts_with = "verbose", help_heading = GLOBAL_OPTIONS)]
    pub quiet: bool,

    /// Print more: the policy file in use, on stderr (`scan` also lists the imports and notes
    /// of safe files).
    #[arg(short, long, global = true, help_heading = GLOBAL_OPTIONS)]
    pub verbose: bool,
}

/// How imports are rated: shared by `scan`, `explain` and `convert`, and loaded by one
/// function ([`crate::policy::load`]), so the three rate a file the same way.
#[derive(Debug, Clone, Default, Args)]
pub struct PolicyArgs {
    /// Policy file (TOML) adding allowed globals. Without it, `airlock.toml` is looked for in
    /// the (first) input's folder, or the input itself when it is a folder, and its ancestors.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,

    /// Allow one more global, as `module.name` (or `module:name`). Repeatable.
    #[arg(long, value_name = "MODULE.NAME")]
    pub allow: Vec<String>,

    /// Vouch for llamafiles (models shipped as executables): report their program part as
    /// allowed instead of dangerous. Their embedded model files are still scanned.
    #[arg(long)]
    pub allow_llamafile: bool,
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
    /// and git-ignored files included: a scanner must see every file). `-` reads standard
    /// input; a FIFO, `/dev/stdin`, `<(...)` or device named here is read as a stream.
    #[arg(value_name = "PATH", default_value = ".")]
    pub paths: Vec<PathBuf>,

    /// Report format written to stdout (or to `--output`).
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Write the report to FILE instead of stdout (atomically: a temporary file in the same
    /// folder, renamed into place). FILE must be a regular file or new, and not a scanned
    /// input; `-` is stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Lowest severity that makes the command exit 1. A dangerous file always exits 1.
    #[arg(long, value_enum, default_value_t = FailOn::Suspicious, value_name = "LEVEL")]
    pub fail_on: FailOn,

    #[command(flatten)]
    pub policy: PolicyArgs,

    /// Report only these rules: codes (`PKL001`), code prefixes (`PKL`) or names, comma
    /// separated or repeated. Dangerous findings and findings that mean a file was not read
    /// completely are always reported.
    #[arg(long, value_name = "RULE", value_delimiter = ',')]
    pub select: Vec<String>,

    /// Do not report these rules (codes, prefixes or names), with the same exceptions as
    /// `--select`; the exit status follows what is reported.
    #[arg(long, value_name = "RULE", value_delimiter = ',')]
    pub ignore: Vec<String>,

    /// SARIF: also list info-level notes (GEN001 "not a model", ...) as results.
    #[arg(long)]
    pub include_info: bool,

    /// SARIF: link each rule to `URL/<CODE>.md` (`helpUri`). Without it no link is written;
    /// each rule's page is embedded as `help.markdown` either way.
    #[arg(long, value_name = "URL", env = "AIRLOCK_DOCS_URL")]
    pub docs_url: Option<String>,

    /// Skip files and folders matching GLOB. A glob is matched against the path as shown and
    /// against the file or folder name. Repeatable.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,

    /// Number of files scanned at once (default: one per CPU).
    #[arg(long, short = 'j', value_name = "N")]
    pub threads: Option<usize>,

    /// Do not scan files larger than SIZE (e.g. 500M, 10G); they are reported unscannable.
    /// Also caps what is read from a stream (`-`, a FIFO); streams default to 8G.
    #[arg(long, value_name = "SIZE", value_parser = crate::size::parse_size)]
    pub max_file_size: Option<u64>,

    /// Give up on a file after SECS seconds; it is reported unscannable.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..),
          default_value_t = DEFAULT_TIMEOUT_SECS)]
    pub timeout: u64,

    /// Never show a progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

/// `--timeout`'s default: [`airlock::Limits`]'s (a test checks they agree).
pub const DEFAULT_TIMEOUT_SECS: u64 = 300;

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The pickle file (or PyTorch zip) to disassemble. `-` reads standard input.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    #[command(flatten)]
    pub policy: PolicyArgs,
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

/// `--fail-on`: the command-line face of [`airlock::FailOn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// Exit 1 only for dangerous findings.
    Dangerous,
    /// Exit 1 for suspicious or dangerous findings (the stance of torch's `weights_only=True`).
    Suspicious,
}

impl From<FailOn> for airlock::FailOn {
    fn from(value: FailOn) -> Self {
        match value {
            FailOn::Dangerous => airlock::FailOn::Dangerous,
            FailOn::Suspicious => airlock::FailOn::Suspicious,
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

    /// docs/cli.md names every subcommand and every long option of each (it once left
    /// `convert` out).
    #[test]
    fn docs_cli_md_documents_every_subcommand_and_option() {
        let doc = include_str!("../../../docs/cli.md");
        let mut missing = Vec::new();
        for sub in Cli::command().get_subcommands() {
            if !doc.contains(&format!("## `airlock {}", sub.get_name())) {
                missing.push(format!("airlock {}", sub.get_name()));
            }
            for arg in sub.get_arguments() {
                if let Some(long) = arg.get_long()
                    && !doc.contains(&format!("--{long}"))
                    && long != "help"
                    && long != "version"
                {
                    missing.push(format!("{} --{long}", sub.get_name()));
                }
            }
        }
        assert!(missing.is_empty(), "not in docs/cli.md: {missing:?}");
    }

    #[test]
    fn timeout_default_is_the_core_default() {
        assert_eq!(
            std::time::Duration::from_secs(DEFAULT_TIMEOUT_SECS),
            airlock::Limits::default().timeout
        );
    }
}
