//! The one rule that turns verdicts into an outcome and an exit status.
//!
//! Every surface (the command's exit status, the JSON summary's `exit_code`, the SARIF
//! invocation's `exitCode`, and later the service and the Python API) asks this module and
//! nothing else, so a file cannot pass in one place and fail in another.
//!
//! The rule, per file, given the `--fail-on` threshold:
//! 1. verdict *dangerous* → [`Outcome::Fail`], whatever the threshold and whether or not the
//!    dangerous finding also marks the file incomplete (a GGUF whose counts overflow is both
//!    dangerous and not read to the end: it still fails);
//! 2. a finding at or above the threshold that does not mark the file incomplete →
//!    [`Outcome::Fail`] (something was *found*);
//! 3. verdict *unscannable* → [`Outcome::Unscannable`] (Airlock could not read all of it);
//! 4. otherwise [`Outcome::Pass`].
//!
//! A run fails when any file fails; else it is unscannable when any file is; else it passes.
//! A failure wins over unscannable files: a dangerous file gives 1 even if others had errors.
//!
//! [`RuleFilter`] (`--select` / `--ignore`) narrows what is shown, before the outcome is
//! computed, under two guards that keep it from hiding danger or unread bytes: findings that
//! mark a file incomplete and findings of severity *dangerous* are never filtered out. To
//! accept a global, allow it in the policy (`--allow`, `airlock.toml`) instead: the policy
//! rates the import innocuous, which is a statement about the import, not about the output.

use serde::{Deserialize, Serialize};

use crate::Verdict;
use crate::report::{FileReport, Finding, verdict_of};
use crate::rules::{Rule, Severity};

/// The lowest severity that makes a run fail (`--fail-on`). Dangerous always fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailOn {
    /// Suspicious or dangerous findings fail (the stance of torch's `weights_only=True`).
    #[default]
    Suspicious,
    /// Only dangerous findings fail.
    Dangerous,
}

impl FailOn {
    pub fn as_str(self) -> &'static str {
        match self {
            FailOn::Suspicious => "suspicious",
            FailOn::Dangerous => "dangerous",
        }
    }

    /// The lowest finding severity that fails.
    pub fn threshold(self) -> Severity {
        match self {
            FailOn::Suspicious => Severity::Suspicious,
            FailOn::Dangerous => Severity::Dangerous,
        }
    }
}

/// What a file, or a whole run, amounts to. Ordered by precedence for a run:
/// `Pass < Unscannable < Fail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Read completely, nothing at or above the threshold.
    Pass,
    /// Not read completely, and nothing found that fails.
    Unscannable,
    /// Dangerous, or a finding at or above the threshold.
    Fail,
}

impl Outcome {
    /// The process exit status: 0 pass, 1 fail, 2 unscannable (2 is also what a usage error
    /// exits with; both mean "no answer").
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Pass => 0,
            Outcome::Fail => 1,
            Outcome::Unscannable => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Unscannable => "unscannable",
            Outcome::Fail => "fail",
        }
    }
}

/// The outcome of one file. See the module docs for the rule.
pub fn of_file(report: &FileReport, fail_on: FailOn) -> Outcome {
    let threshold = fail_on.threshold();
    let found = report
        .findings
        .iter()
        .any(|f| !f.is_incomplete() && f.severity >= threshold);
    if report.verdict == Verdict::Dangerous || found {
        Outcome::Fail
    } else if report.verdict == Verdict::Unscannable {
        Outcome::Unscannable
    } else {
        Outcome::Pass
    }
}

/// The outcome of a run: the worst file outcome (`Fail` over `Unscannable` over `Pass`).
pub fn of_run(reports: &[FileReport], fail_on: FailOn) -> Outcome {
    reports
        .iter()
        .map(|r| of_file(r, fail_on))
        .max()
        .unwrap_or(Outcome::Pass)
}

/// `--select` / `--ignore`: which rules' findings are kept, by code (`PKL001`), code prefix
/// (`PKL`, `GEN00`) or name (`dangerous-import`), case-insensitive, as ruff selects rules.
///
/// A rule is kept when it matches a `select` pattern (an empty `select` keeps every rule) and
/// no `ignore` pattern. Two kinds of finding are kept whatever the patterns say: those that
/// mark the file incomplete (hiding one would let an unread file pass as safe) and those of
/// severity dangerous (a dangerous file always exits 1; accept a global through the policy).
#[derive(Debug, Clone, Default)]
pub struct RuleFilter {
    select: Vec<String>,
    ignore: Vec<String>,
}

/// A `--select`/`--ignore` pattern that matches no rule (a typo would otherwise select nothing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` matches no rule code, code prefix or rule name (see `airlock rules`)")]
pub struct UnknownRulePattern(pub String);

impl RuleFilter {
    /// Builds a filter; every pattern must match at least one rule.
    pub fn new(select: &[String], ignore: &[String]) -> Result<RuleFilter, UnknownRulePattern> {
        for pattern in select.iter().chain(ignore) {
            if !Rule::ALL.iter().any(|rule| matches(pattern, *rule)) {
                return Err(UnknownRulePattern(pattern.clone()));
            }
        }
        Ok(RuleFilter {
            select: select.to_vec(),
            ignore: ignore.to_vec(),
        })
    }

    /// True when the filter keeps every finding.
    pub fn is_empty(&self) -> bool {
        self.select.is_empty() && self.ignore.is_empty()
    }

    /// Whether the patterns select `rule` (before the guards of [`RuleFilter::keeps`]).
    pub fn selects(&self, rule: Rule) -> bool {
        let selected = self.select.is_empty() || self.select.iter().any(|p| matches(p, rule));
        selected && !self.ignore.iter().any(|p| matches(p, rule))
    }

    /// Whether `finding` stays in the report.
    pub fn keeps(&self, finding: &Finding) -> bool {
        finding.is_incomplete()
            || finding.severity == Severity::Dangerous
            || self.selects(finding.rule)
    }

    /// The report with the findings the filter drops removed and its verdict derived again
    /// from what is left (which can only lower a suspicious verdict: see the guards).
    pub fn apply(&self, mut report: FileReport) -> FileReport {
        if self.is_empty() {
            return report;
        }
        report.findings.retain(|f| self.keeps(f));
        report.verdict = verdict_of(&report.findings);
        report
    }
}

/// Whether `pattern` names `rule`: its name, or a prefix of its code (case-insensitive).
fn matches(pattern: &str, rule: Rule) -> bool {
    let code = rule.code();
    rule.name() == pattern
        || (!pattern.is_empty()
            && code.len() >= pattern.len()
            && code[..pattern.len()].eq_ignore_ascii_case(pattern))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(findings: Vec<Finding>) -> FileReport {
        FileReport {
            path: "f".into(),
            format: "x".into(),
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
        file(vec![Finding::new(Rule::DangerousImport, "os.system")])
    }
    fn suspicious() -> FileReport {
        file(vec![Finding::new(Rule::UnknownImport, "x.y")])
    }
    fn unscannable() -> FileReport {
        file(vec![Finding::new(Rule::ReadError, "cannot open")])
    }
    fn safe() -> FileReport {
        file(vec![Finding::new(Rule::NotAModel, "text data")])
    }
    /// Dangerous and incomplete at once (GGUF002 today): the case that used to exit 0.
    fn dangerous_incomplete() -> FileReport {
        let finding =
            Finding::new(Rule::ReadError, "counts overflow").with_severity(Severity::Dangerous);
        assert!(finding.is_incomplete());
        file(vec![finding])
    }

    const BOTH: [FailOn; 2] = [FailOn::Suspicious, FailOn::Dangerous];

    #[test]
    fn dangerous_always_fails_even_when_incomplete() {
        for fail_on in BOTH {
            assert_eq!(of_file(&dangerous(), fail_on), Outcome::Fail);
            let report = dangerous_incomplete();
            assert_eq!(report.verdict, Verdict::Dangerous);
            assert_eq!(of_file(&report, fail_on), Outcome::Fail, "{fail_on:?}");
            assert_eq!(of_run(&[safe(), report], fail_on).exit_code(), 1);
        }
    }

    #[test]
    fn threshold_decides_suspicious_files() {
        assert_eq!(of_file(&suspicious(), FailOn::Suspicious), Outcome::Fail);
        assert_eq!(of_file(&suspicious(), FailOn::Dangerous), Outcome::Pass);
    }

    #[test]
    fn nothing_or_info_only_passes() {
        for fail_on in BOTH {
            assert_eq!(of_run(&[], fail_on), Outcome::Pass);
            assert_eq!(of_run(&[safe()], fail_on).exit_code(), 0);
        }
    }

    #[test]
    fn unscannable_is_2_unless_something_fails() {
        assert_eq!(of_run(&[unscannable()], FailOn::Suspicious).exit_code(), 2);
        assert_eq!(
            of_run(&[unscannable(), safe()], FailOn::Dangerous).exit_code(),
            2
        );
        assert_eq!(
            of_run(&[unscannable(), dangerous()], FailOn::Dangerous).exit_code(),
            1
        );
        assert_eq!(
            of_run(&[suspicious(), unscannable()], FailOn::Dangerous).exit_code(),
            2
        );
    }

    #[test]
    fn incomplete_suspicious_findings_are_not_failures() {
        let limit = file(vec![Finding::new(Rule::LimitReached, "opcodes")]);
        assert_eq!(of_file(&limit, FailOn::Suspicious), Outcome::Unscannable);
        let both = file(vec![
            Finding::new(Rule::LimitReached, "opcodes"),
            Finding::new(Rule::UnknownImport, "x.y"),
        ]);
        assert_eq!(of_file(&both, FailOn::Suspicious), Outcome::Fail);
    }

    #[test]
    fn patterns_match_codes_prefixes_and_names() {
        assert!(matches("PKL002", Rule::UnknownImport));
        assert!(matches("pkl", Rule::UnknownImport));
        assert!(matches("unknown-import", Rule::UnknownImport));
        assert!(!matches("PKL0020", Rule::UnknownImport));
        assert!(!matches("", Rule::UnknownImport));
        assert_eq!(
            RuleFilter::new(&["XYZ".into()], &[]).unwrap_err(),
            UnknownRulePattern("XYZ".into())
        );
    }

    #[test]
    fn ignoring_hides_suspicious_findings_only() {
        let filter = RuleFilter::new(&[], &["PKL".into(), "GEN".into()]).unwrap();
        let report = filter.apply(suspicious());
        assert_eq!(report.verdict, Verdict::Safe);
        assert_eq!(of_file(&report, FailOn::Suspicious), Outcome::Pass);
        // Dangerous findings and incomplete ones stay.
        let report = filter.apply(dangerous());
        assert_eq!(report.findings.len(), 1);
        assert_eq!(of_file(&report, FailOn::Dangerous), Outcome::Fail);
        let report = filter.apply(unscannable());
        assert_eq!(report.verdict, Verdict::Unscannable);
        assert_eq!(of_file(&report, FailOn::Suspicious), Outcome::Unscannable);
    }

    #[test]
    fn select_keeps_only_matching_rules() {
        let filter = RuleFilter::new(&["PKL001".into()], &[]).unwrap();
        let report = filter.apply(file(vec![
            Finding::new(Rule::UnknownImport, "x.y"),
            Finding::new(Rule::NotAModel, "text"),
        ]));
        assert!(report.findings.is_empty());
        assert_eq!(report.verdict, Verdict::Safe);
    }
}
