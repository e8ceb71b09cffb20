//! The JSON report: `{schema_version, tool, files, summary}`, documented in docs/json-schema.md.
//!
//! `files` are [`airlock::FileReport`]s serialised as the core crate defines them; the schema
//! version is [`airlock::report::SCHEMA_VERSION`]. Keep docs/json-schema.md true when either
//! changes.

use std::io::Write;

use airlock::FileReport;
use serde::Serialize;

use super::{Summary, TOOL_NAME, TOOL_VERSION};

#[derive(Serialize)]
struct Report<'a> {
    schema_version: &'static str,
    tool: Tool,
    files: &'a [FileReport],
    summary: &'a Summary,
}

#[derive(Serialize)]
struct Tool {
    name: &'static str,
    version: &'static str,
}

/// Writes the report as pretty-printed JSON followed by a newline.
pub fn write(
    out: &mut dyn Write,
    reports: &[FileReport],
    summary: &Summary,
) -> std::io::Result<()> {
    let report = Report {
        schema_version: airlock::report::SCHEMA_VERSION,
        tool: Tool {
            name: TOOL_NAME,
            version: TOOL_VERSION,
        },
        files: reports,
        summary,
    };
    serde_json::to_writer_pretty(&mut *out, &report)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::VerdictCounts;
    use airlock::report::{MemberSummary, verdict_of};
    use airlock::{Finding, Import, Rating, Rule};
    use serde_json::Value;

    /// A report that uses every optional field.
    fn full_report() -> FileReport {
        let mut finding = Finding::new(Rule::DangerousImport, "imports `os.system`").at(2);
        finding.member = Some("archive/data.pkl".into());
        let findings = vec![finding];
        FileReport {
            path: "model.pt".into(),
            format: "pytorch-zip".into(),
            size: 10,
            verdict: verdict_of(&findings),
            imports: vec![Import {
                module: "os".into(),
                name: "system".into(),
                rating: Rating::Dangerous,
                offset: 2,
                member: Some("archive/data.pkl".into()),
                reason: Some("`os` can run code".into()),
            }],
            findings,
            members: vec![MemberSummary {
                path: "archive/data.pkl".into(),
                format: "pickle".into(),
                size: 5,
            }],
            summary: "pytorch-zip".into(),
            elapsed_ms: 1.0,
        }
    }

    /// `a.b[].c` paths of every field in `value`.
    fn field_paths(value: &Value, prefix: &str, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    field_paths(child, &path, out);
                    out.push(path);
                }
            }
            Value::Array(items) => {
                for item in items {
                    field_paths(item, &format!("{prefix}[]"), out);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn every_field_is_documented_in_json_schema_md() {
        let reports = [full_report()];
        let summary = Summary {
            files: 1,
            verdicts: VerdictCounts::of(&reports),
            fail_on: "suspicious",
            exit_code: 1,
            policy_file: Some("airlock.toml".into()),
            elapsed_ms: 1.0,
        };
        let mut out = Vec::new();
        write(&mut out, &reports, &summary).unwrap();
        let value: Value = serde_json::from_slice(&out).unwrap();
        let mut paths = Vec::new();
        field_paths(&value, "", &mut paths);
        let doc = include_str!("../../../../docs/json-schema.md");
        let undocumented: Vec<_> = paths
            .iter()
            .filter(|p| !doc.contains(&format!("| `{p}` |")))
            .collect();
        assert!(
            undocumented.is_empty(),
            "not in docs/json-schema.md: {undocumented:?}"
        );
        assert_eq!(value["schema_version"], airlock::report::SCHEMA_VERSION);
    }
}
