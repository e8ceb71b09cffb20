//! What a scan produces: per-file verdicts, the imports a loader would perform, and findings.
//!
//! These types are the data model behind every output format (text, JSON, SARIF). They are
//! `Serialize` so the JSON report is a direct rendering of them; the JSON schema is versioned
//! by [`SCHEMA_VERSION`] and documented in `docs/json-schema.md`.

use serde::Serialize;

use crate::rules::{Rule, Severity};

/// Version of the JSON report schema. Bump the major part on any incompatible change.
pub const SCHEMA_VERSION: &str = "1.0";

/// How an import is rated, in the Hugging Face Hub's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Rating {
    /// On an enabled allowlist profile: what legitimate artifacts need.
    Innocuous,
    /// Not on any allowlist, not known to be harmful.
    Suspicious,
    /// Known gadget, resolver, dunder access, or otherwise able to run code.
    Dangerous,
}

impl Rating {
    pub fn as_str(self) -> &'static str {
        match self {
            Rating::Innocuous => "innocuous",
            Rating::Suspicious => "suspicious",
            Rating::Dangerous => "dangerous",
        }
    }
}

/// The overall judgement on one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every import is allowlisted and nothing suspicious was found; the whole file was read.
    Safe,
    /// Something outside the allowlist, not known to be harmful.
    Suspicious,
    /// Part of the file could not be read; never reported as safe.
    Unscannable,
    /// Known to run code, touch the host or evade scanners.
    Dangerous,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Safe => "safe",
            Verdict::Suspicious => "suspicious",
            Verdict::Unscannable => "unscannable",
            Verdict::Dangerous => "dangerous",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One global a loader would import (`module.name`), where it sits and how it is rated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Import {
    pub module: String,
    pub name: String,
    pub rating: Rating,
    /// Byte offset of the opcode that performs the import, within the pickle stream's
    /// container (the file, or the archive member named by `member`).
    pub offset: u64,
    /// Path of the archive member holding the pickle, `/`-joined through nested archives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// Why it got its rating: the profile that allows it or the reason it is dangerous.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Import {
    /// `module.name`, as the Hub lists it.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.module, self.name)
    }
}

/// One reported problem or observation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: Rule,
    /// The rule's short name, repeated so JSON consumers need no table.
    pub name: &'static str,
    pub severity: Severity,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
}

impl Finding {
    pub fn new(rule: Rule, message: impl Into<String>) -> Self {
        Finding {
            rule,
            name: rule.name(),
            severity: rule.default_severity(),
            message: message.into(),
            offset: None,
            member: None,
        }
    }

    pub fn at(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
    }

    pub fn with_severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    /// True when this finding means the file was not read completely.
    pub fn is_incomplete(&self) -> bool {
        self.rule.marks_incomplete()
    }
}

/// The result of scanning one file (with everything inside it, for archives).
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub path: String,
    /// The outer format, e.g. `pytorch-zip`, `pickle`, `zip`, `not-a-model`.
    pub format: String,
    pub size: u64,
    pub verdict: Verdict,
    pub imports: Vec<Import>,
    pub findings: Vec<Finding>,
    /// Archive members that were opened, with their detected formats.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<MemberSummary>,
    /// One line saying what was checked ("pickle: 3 imports, 1 pickle, 2.1 KB").
    pub summary: String,
    /// Wall-clock time spent on this file, in milliseconds.
    pub elapsed_ms: f64,
}

/// An archive member that was looked at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberSummary {
    pub path: String,
    pub format: String,
    pub size: u64,
}

impl FileReport {
    /// The highest severity among findings, if any.
    pub fn max_severity(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    pub fn is_incomplete(&self) -> bool {
        self.findings.iter().any(Finding::is_incomplete)
    }
}

/// Derives a verdict from findings: dangerous beats unscannable beats suspicious beats safe.
pub fn verdict_of(findings: &[Finding]) -> Verdict {
    let max = findings.iter().map(|f| f.severity).max();
    if max == Some(Severity::Dangerous) {
        Verdict::Dangerous
    } else if findings.iter().any(Finding::is_incomplete) {
        Verdict::Unscannable
    } else if max == Some(Severity::Suspicious) {
        Verdict::Suspicious
    } else {
        Verdict::Safe
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_ordering_of_findings() {
        assert_eq!(verdict_of(&[]), Verdict::Safe);
        assert_eq!(
            verdict_of(&[Finding::new(Rule::NotAModel, "x")]),
            Verdict::Safe
        );
        assert_eq!(
            verdict_of(&[Finding::new(Rule::UnknownImport, "x")]),
            Verdict::Suspicious
        );
        let incomplete = Finding::new(Rule::ArchiveEncrypted, "x");
        assert_eq!(
            verdict_of(&[Finding::new(Rule::UnknownImport, "x"), incomplete.clone()]),
            Verdict::Unscannable
        );
        assert_eq!(
            verdict_of(&[incomplete, Finding::new(Rule::DangerousImport, "x")]),
            Verdict::Dangerous
        );
    }
}
