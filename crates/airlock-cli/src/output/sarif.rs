//! SARIF 2.1.0 output: one run, every rule in `tool.driver.rules`, one result per finding.
//!
//! Levels: dangerous → `error`, suspicious → `warning`, info → `note`. Info-level findings
//! (GEN001 "not a model", format notes) are left out of `results` unless `--include-info`
//! asks for them: a code-scanning dashboard shows every result as an alert, and half of a
//! typical run's results were such notes about members of safe checkpoints.
//!
//! Rules. Every rule is listed with its documentation page (docs/rules/CODE.md, embedded at
//! build time) as `help.markdown` and its summary as `help.text`. `helpUri` is written only
//! when a documentation URL is configured (`--docs-url`, or `AIRLOCK_DOCS_URL`): the
//! package's `repository` field is not a place users can browse, and a dead link in every
//! alert is worse than none. The exit code of the invocation is the scan's, from
//! [`airlock::outcome`].
//!
//! Archive members. A finding's byte offset counts from the start of the *member* that holds
//! the pickle, not from the start of the archive on disk, so the region must sit on a location
//! that names the member. SARIF's own way to name a file inside another file is a nested
//! artifact (§3.24.3 `artifact.parentIndex`, used for files inside a .zip in the spec's
//! examples). So for a member, `physicalLocation.artifactLocation` is `{uri: <member path>,
//! index: <its run.artifacts entry>}`, and that entry's `parentIndex` points at the archive's
//! entry. Consumers that do not follow indices still see the archive itself in the result's
//! `analysisTarget` (§3.27.7: the file that was being analysed), and the member path in the
//! result's `properties` as `airlock/member`. A bare property on an archive-level location
//! would instead attach a member's byte offset to the wrong bytes.

use std::collections::HashMap;
use std::io::Write;

use airlock::{FileReport, Finding, Rule, Severity};
use serde_json::{Value, json};

use super::{Summary, TOOL_NAME, TOOL_VERSION};

/// What the SARIF log holds beyond the findings themselves.
#[derive(Debug, Clone, Default)]
pub struct SarifOptions {
    /// List info-level findings as results too.
    pub include_info: bool,
    /// Base URL of the rule pages: `helpUri` is `<docs_url>/<CODE>.md` when set.
    pub docs_url: Option<String>,
}

const SCHEMA_URI: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// Writes the SARIF log followed by a newline.
pub fn write(
    out: &mut dyn Write,
    reports: &[FileReport],
    summary: &Summary,
    options: &SarifOptions,
) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &log(reports, summary, options))?;
    writeln!(out)
}

/// Builds the SARIF log as a JSON value.
pub fn log(reports: &[FileReport], summary: &Summary, options: &SarifOptions) -> Value {
    let mut artifacts = Artifacts::default();
    let mut results = Vec::new();
    for report in reports {
        let file_index = artifacts.file(report);
        for finding in &report.findings {
            if finding.severity == Severity::Info && !options.include_info {
                continue;
            }
            results.push(result(report, file_index, finding, &mut artifacts));
        }
    }
    json!({
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": driver(options.docs_url.as_deref()) },
            "invocations": [{
                "executionSuccessful": summary.exit_code != 2,
                "exitCode": summary.exit_code,
            }],
            "artifacts": artifacts.list,
            "results": results,
        }],
    })
}

fn driver(docs_url: Option<&str>) -> Value {
    let rules: Vec<Value> = Rule::ALL
        .iter()
        .map(|rule| {
            let mut help = json!({ "text": rule.summary() });
            if let Some(page) = crate::commands::rules::page(*rule) {
                help["markdown"] = json!(page);
            }
            let mut descriptor = json!({
                "id": rule.code(),
                "name": rule.name(),
                "shortDescription": { "text": rule.summary() },
                "help": help,
                "defaultConfiguration": { "level": level(rule.default_severity()) },
                "properties": { "airlock/marksIncomplete": rule.marks_incomplete() },
            });
            if let Some(base) = docs_url.filter(|u| !u.is_empty()) {
                descriptor["helpUri"] =
                    json!(format!("{}/{}.md", base.trim_end_matches('/'), rule.code()));
            }
            descriptor
        })
        .collect();
    json!({
        "name": TOOL_NAME,
        "version": TOOL_VERSION,
        "semanticVersion": TOOL_VERSION,
        "rules": rules,
    })
}

fn result(
    report: &FileReport,
    file_index: usize,
    finding: &Finding,
    artifacts: &mut Artifacts,
) -> Value {
    let rule_index = Rule::ALL.iter().position(|r| *r == finding.rule);
    let file_location = json!({ "uri": path_to_uri(&report.path), "index": file_index });
    let artifact_location = match &finding.member {
        Some(member) => {
            let index = artifacts.member(report, file_index, member);
            json!({ "uri": path_to_uri(member), "index": index })
        }
        None => file_location.clone(),
    };
    let mut physical = json!({ "artifactLocation": artifact_location });
    if let Some(offset) = finding.offset {
        physical["region"] = json!({ "byteOffset": offset });
    }
    let mut result = json!({
        "ruleId": finding.rule.code(),
        "level": level(finding.severity),
        "message": { "text": finding.message },
        "locations": [{ "physicalLocation": physical }],
        "analysisTarget": file_location,
    });
    if let Some(index) = rule_index {
        result["ruleIndex"] = json!(index);
    }
    let mut properties = serde_json::Map::new();
    properties.insert("airlock/severity".into(), json!(finding.severity.as_str()));
    properties.insert("airlock/verdict".into(), json!(report.verdict.as_str()));
    if let Some(member) = &finding.member {
        properties.insert("airlock/member".into(), json!(member));
    }
    result["properties"] = Value::Object(properties);
    result
}

/// SARIF `level` for a severity.
pub fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Dangerous => "error",
        Severity::Suspicious => "warning",
        Severity::Info => "note",
    }
}

/// `run.artifacts`: every scanned file, plus archive members that carry results.
#[derive(Default)]
struct Artifacts {
    list: Vec<Value>,
    members: HashMap<(usize, String), usize>,
}

impl Artifacts {
    fn file(&mut self, report: &FileReport) -> usize {
        self.list.push(json!({
            "location": { "uri": path_to_uri(&report.path) },
            "length": report.size,
            "roles": ["analysisTarget"],
            "properties": { "airlock/format": report.format, "airlock/verdict": report.verdict.as_str() },
        }));
        self.list.len() - 1
    }

    fn member(&mut self, report: &FileReport, parent: usize, member: &str) -> usize {
        if let Some(index) = self.members.get(&(parent, member.to_string())) {
            return *index;
        }
        let mut artifact = json!({
            "location": { "uri": path_to_uri(member) },
            "parentIndex": parent,
        });
        if let Some(summary) = report.members.iter().find(|m| m.path == member) {
            artifact["length"] = json!(summary.size);
            artifact["properties"] = json!({ "airlock/format": summary.format });
        }
        self.list.push(artifact);
        let index = self.list.len() - 1;
        self.members.insert((parent, member.to_string()), index);
        index
    }
}

/// A relative URI reference for a path: `\` becomes `/`, and every byte outside the URI
/// unreserved set (and `/`) is percent-encoded, so spaces, `#` and non-ASCII names stay valid.
pub fn path_to_uri(path: &str) -> String {
    let path = path.replace('\\', "/");
    let mut uri = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            uri.push(char::from(byte));
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_percent_encoded() {
        assert_eq!(path_to_uri("a/b c#d.pkl"), "a/b%20c%23d.pkl");
        assert_eq!(path_to_uri("modèle.pt"), "mod%C3%A8le.pt");
        assert_eq!(path_to_uri(r"dir\x.pkl"), "dir/x.pkl");
    }

    fn archive_report() -> FileReport {
        let mut inner = Finding::new(Rule::DangerousImport, "imports `os.system`").at(2);
        inner.member = Some("archive/data.pkl".into());
        let mut second = Finding::new(Rule::UnknownImport, "imports `x.Y`").at(40);
        second.member = Some("archive/data.pkl".into());
        let outer = Finding::new(Rule::TorchLayout, "two root folders");
        let findings = vec![inner, second, outer];
        FileReport {
            path: "models/model.pt".into(),
            format: "pytorch-zip".into(),
            size: 1000,
            verdict: airlock::report::verdict_of(&findings),
            imports: Vec::new(),
            findings,
            members: vec![airlock::report::MemberSummary {
                path: "archive/data.pkl".into(),
                format: "pickle".into(),
                size: 120,
            }],
            summary: "pytorch-zip".into(),
            elapsed_ms: 1.0,
        }
    }

    fn summary() -> Summary {
        Summary {
            files: 1,
            verdicts: super::super::VerdictCounts::default(),
            fail_on: "suspicious",
            exit_code: 1,
            policy_file: None,
            elapsed_ms: 1.0,
        }
    }

    #[test]
    fn archive_members_are_nested_artifacts() {
        let log = log(&[archive_report()], &summary(), &SarifOptions::default());
        let run = &log["runs"][0];
        let artifacts = run["artifacts"].as_array().unwrap();
        assert_eq!(
            artifacts.len(),
            2,
            "the member is listed once: {artifacts:?}"
        );
        assert_eq!(artifacts[1]["location"]["uri"], "archive/data.pkl");
        assert_eq!(artifacts[1]["parentIndex"], 0);
        assert_eq!(artifacts[1]["length"], 120);
        let first = &run["results"][0];
        let location = &first["locations"][0]["physicalLocation"];
        assert_eq!(location["artifactLocation"]["index"], 1);
        assert_eq!(location["region"]["byteOffset"], 2);
        assert_eq!(first["analysisTarget"]["uri"], "models/model.pt");
        assert_eq!(first["properties"]["airlock/member"], "archive/data.pkl");
        let outer = &run["results"][2]["locations"][0]["physicalLocation"];
        assert_eq!(outer["artifactLocation"]["index"], 0);
        assert!(outer.get("region").is_none());
    }

    #[test]
    fn archive_log_is_valid_sarif() {
        let schema: Value =
            serde_json::from_str(include_str!("../../tests/fixtures/sarif-schema-2.1.0.json"))
                .unwrap();
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap();
        let options = SarifOptions {
            include_info: true,
            docs_url: Some("https://docs.example.org/rules/".into()),
        };
        let log = log(&[archive_report()], &summary(), &options);
        let errors: Vec<String> = validator.iter_errors(&log).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn rules_embed_their_page_and_link_only_a_configured_url() {
        let plain = driver(None);
        let rule = &plain["rules"][0];
        assert_eq!(rule["id"], "PKL001");
        assert!(rule.get("helpUri").is_none(), "{rule}");
        assert!(
            rule["help"]["markdown"]
                .as_str()
                .unwrap()
                .starts_with("# PKL001"),
            "{rule}"
        );
        let linked = driver(Some("https://docs.example.org/rules/"));
        assert_eq!(
            linked["rules"][0]["helpUri"],
            "https://docs.example.org/rules/PKL001.md"
        );
    }

    #[test]
    fn info_findings_are_results_only_when_asked_for() {
        let mut report = archive_report();
        report
            .findings
            .push(Finding::new(Rule::NotAModel, "text data"));
        let count = |include_info| {
            let options = SarifOptions {
                include_info,
                docs_url: None,
            };
            log(std::slice::from_ref(&report), &summary(), &options)["runs"][0]["results"]
                .as_array()
                .unwrap()
                .len()
        };
        assert_eq!(count(false), 3);
        assert_eq!(count(true), 4);
    }

    #[test]
    fn levels_follow_severity() {
        assert_eq!(level(Severity::Dangerous), "error");
        assert_eq!(level(Severity::Suspicious), "warning");
        assert_eq!(level(Severity::Info), "note");
    }
}
