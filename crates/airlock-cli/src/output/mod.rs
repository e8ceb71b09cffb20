//! Report printers: one module per output format, all rendering the same reports and summary.

pub mod escape;
pub mod json;
pub mod sarif;
pub mod text;

use airlock::{FileReport, Verdict};
use serde::Serialize;

/// Totals for one scan, shared by every format.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Number of files scanned (including ones that could not be read).
    pub files: usize,
    /// How many files got each verdict.
    pub verdicts: VerdictCounts,
    /// The `--fail-on` level in force.
    pub fail_on: &'static str,
    /// The process exit status the scan ends with (0, 1 or 2).
    pub exit_code: i32,
    /// The policy file that was used, if any.
    pub policy_file: Option<String>,
    /// Wall-clock time of the whole scan, in milliseconds.
    pub elapsed_ms: f64,
}

/// Files per verdict.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerdictCounts {
    pub safe: usize,
    pub suspicious: usize,
    pub unscannable: usize,
    pub dangerous: usize,
}

impl VerdictCounts {
    pub fn of(reports: &[FileReport]) -> VerdictCounts {
        let mut counts = VerdictCounts::default();
        for report in reports {
            *match report.verdict {
                Verdict::Safe => &mut counts.safe,
                Verdict::Suspicious => &mut counts.suspicious,
                Verdict::Unscannable => &mut counts.unscannable,
                Verdict::Dangerous => &mut counts.dangerous,
            } += 1;
        }
        counts
    }
}

/// The tool's name and version, as reports name it.
pub const TOOL_NAME: &str = "airlock";
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");
