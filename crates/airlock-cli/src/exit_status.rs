//! The command's exit status (ruff's `ExitStatus` shape) and how a scan's reports map to it.

use airlock::{FileReport, Severity, Verdict};

/// What the process tells its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExitStatus {
    /// Nothing at or above `--fail-on`, and every file was read completely.
    Success = 0,
    /// At least one finding at or above `--fail-on`.
    Failure = 1,
    /// A usage error, or files that could not be scanned completely and nothing worse.
    Error = 2,
}

impl ExitStatus {
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The status a scan ends with. A finding at or above `threshold` wins over unscannable
    /// files (a dangerous file gives 1 even if other files had errors); findings that only say
    /// part of a file was not read (read errors, limits, timeouts) count as "unscannable", not
    /// as findings at or above the threshold.
    pub fn of_scan(reports: &[FileReport], threshold: Severity) -> ExitStatus {
        let fails = reports.iter().any(|report| {
            report
                .findings
                .iter()
                .any(|f| !f.is_incomplete() && f.severity >= threshold)
        });
        if fails {
            ExitStatus::Failure
        } else if reports.iter().any(|r| r.verdict == Verdict::Unscannable) {
            ExitStatus::Error
        } else {
            ExitStatus::Success
        }
    }
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(status: ExitStatus) -> Self {
        std::process::ExitCode::from(status as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock::report::verdict_of;
    use airlock::{Finding, Rule};

    fn report(findings: Vec<Finding>) -> FileReport {
        FileReport {
            path: "f".into(),
            format: "pickle".into(),
            size: 1,
            verdict: verdict_of(&findings),
            imports: Vec::new(),
            findings,
            members: Vec::new(),
            summary: String::new(),
            elapsed_ms: 0.0,
        }
    }

    fn dangerous() -> FileReport {
        report(vec![Finding::new(Rule::DangerousImport, "os.system")])
    }
    fn suspicious() -> FileReport {
        report(vec![Finding::new(Rule::UnknownImport, "x.y")])
    }
    fn unscannable() -> FileReport {
        report(vec![Finding::new(Rule::ReadError, "cannot open")])
    }
    fn safe() -> FileReport {
        report(vec![Finding::new(Rule::NotAModel, "text data")])
    }

    #[test]
    fn nothing_or_info_only_is_success() {
        assert_eq!(
            ExitStatus::of_scan(&[], Severity::Suspicious),
            ExitStatus::Success
        );
        assert_eq!(
            ExitStatus::of_scan(&[safe()], Severity::Suspicious),
            ExitStatus::Success
        );
    }

    #[test]
    fn fail_on_threshold_decides_suspicious_files() {
        assert_eq!(
            ExitStatus::of_scan(&[suspicious()], Severity::Suspicious),
            ExitStatus::Failure
        );
        assert_eq!(
            ExitStatus::of_scan(&[suspicious()], Severity::Dangerous),
            ExitStatus::Success
        );
        assert_eq!(
            ExitStatus::of_scan(&[dangerous()], Severity::Dangerous),
            ExitStatus::Failure
        );
    }

    #[test]
    fn unscannable_is_an_error_unless_something_fails() {
        assert_eq!(
            ExitStatus::of_scan(&[unscannable()], Severity::Suspicious),
            ExitStatus::Error
        );
        assert_eq!(
            ExitStatus::of_scan(&[unscannable(), safe()], Severity::Dangerous),
            ExitStatus::Error
        );
        assert_eq!(
            ExitStatus::of_scan(&[unscannable(), dangerous()], Severity::Dangerous),
            ExitStatus::Failure,
            "a dangerous file gives 1 even if other files had errors"
        );
        assert_eq!(
            ExitStatus::of_scan(&[suspicious(), unscannable()], Severity::Dangerous),
            ExitStatus::Error
        );
    }

    #[test]
    fn incomplete_findings_do_not_count_as_failures() {
        // A limit reached (suspicious, incomplete) alone is "could not scan", not "found".
        let limit = report(vec![Finding::new(Rule::LimitReached, "opcodes")]);
        assert_eq!(
            ExitStatus::of_scan(&[limit], Severity::Suspicious),
            ExitStatus::Error
        );
        // ...but a real finding in the same file still fails.
        let both = report(vec![
            Finding::new(Rule::LimitReached, "opcodes"),
            Finding::new(Rule::UnknownImport, "x.y"),
        ]);
        assert_eq!(
            ExitStatus::of_scan(&[both], Severity::Suspicious),
            ExitStatus::Failure
        );
    }
}
