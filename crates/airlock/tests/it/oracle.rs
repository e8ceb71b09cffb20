//! The differential oracle (`tests/fixtures/oracle/cases.jsonl`, made by
//! `scripts/fixtures/make_oracle.py`): each case is one payload written with one string
//! encoding, stack-neutral gap, memo variant and import style, in one container. The way the
//! bytes are written never changes what the loader runs, so it must never change the verdict.
//!
//! Every failing case is printed (not only the first), followed by counts per payload and per
//! variant dimension so a pattern ("every BINSTRING case", "every gzip case") is easy to spot.

use std::collections::BTreeMap;

use airlock::{Scanner, Verdict};
use base64::Engine;
use serde_json::Value;

use crate::{finding_codes, fixtures};

/// One row of the manifest.
struct Case {
    id: String,
    fields: BTreeMap<&'static str, String>,
    expected: Verdict,
    sink: Option<(String, String)>,
    data: Vec<u8>,
}

const DIMENSIONS: [&str; 6] = ["payload", "container", "encoding", "gap", "memo", "style"];

fn load_cases() -> Vec<Case> {
    let path = fixtures("oracle/cases.jsonl");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .enumerate()
        .map(|(n, line)| parse_case(line).unwrap_or_else(|e| panic!("line {}: {e}", n + 1)))
        .collect()
}

fn parse_case(line: &str) -> Result<Case, String> {
    let row: Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let text = |key: &str| -> Result<String, String> {
        row[key]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("missing `{key}`"))
    };
    let expected = match text("expected")?.as_str() {
        "safe" => Verdict::Safe,
        "suspicious" => Verdict::Suspicious,
        "dangerous" => Verdict::Dangerous,
        other => return Err(format!("unknown verdict `{other}`")),
    };
    let sink = match (row["sink_module"].as_str(), row["sink_name"].as_str()) {
        (Some(m), Some(n)) => Some((m.to_string(), n.to_string())),
        _ => None,
    };
    let data = base64::engine::general_purpose::STANDARD
        .decode(text("data")?)
        .map_err(|e| e.to_string())?;
    let mut fields = BTreeMap::new();
    for key in DIMENSIONS {
        fields.insert(key, text(key)?);
    }
    Ok(Case {
        id: text("id")?,
        fields,
        expected,
        sink,
        data,
    })
}

/// Fails with every mismatch, then how the mismatches spread over each dimension.
fn fail_with(what: &str, total: usize, mismatches: &[(String, &Case)]) {
    if mismatches.is_empty() {
        return;
    }
    let mut text = String::new();
    for (line, _) in mismatches {
        text.push_str(line);
        text.push('\n');
    }
    for dim in DIMENSIONS {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, case) in mismatches {
            *counts.entry(case.fields[dim].as_str()).or_default() += 1;
        }
        let spread: Vec<String> = counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
        text.push_str(&format!("by {dim}: {}\n", spread.join(" ")));
    }
    panic!("{text}{} of {total} oracle cases {what}", mismatches.len());
}

#[test]
fn manifest_covers_the_whole_matrix() {
    let cases = load_cases();
    assert!(cases.len() > 5000, "only {} cases", cases.len());
    let values = |dim: &str| -> std::collections::BTreeSet<String> {
        cases.iter().map(|c| c.fields[dim].clone()).collect()
    };
    assert_eq!(values("encoding").len(), 7, "{:?}", values("encoding"));
    assert_eq!(values("gap").len(), 4, "{:?}", values("gap"));
    assert_eq!(values("memo").len(), 13, "{:?}", values("memo"));
    assert_eq!(values("style").len(), 4, "{:?}", values("style"));
    assert_eq!(values("container").len(), 5, "{:?}", values("container"));
    for verdict in [Verdict::Safe, Verdict::Suspicious, Verdict::Dangerous] {
        assert!(
            cases.iter().any(|c| c.expected == verdict),
            "no {verdict} case"
        );
    }
    let ids: std::collections::HashSet<&str> = cases.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), cases.len(), "duplicate ids");
}

#[test]
fn every_case_gets_its_verdict() {
    let cases = load_cases();
    let scanner = Scanner::default();
    let mut mismatches = Vec::new();
    for case in &cases {
        let report = scanner.scan_bytes(&case.id, &case.data);
        if report.verdict != case.expected {
            let line = format!(
                "{}: expected {}, got {} ({})",
                case.id,
                case.expected,
                report.verdict,
                finding_codes(&report)
            );
            mismatches.push((line, case));
        }
    }
    fail_with("got the wrong verdict", cases.len(), &mismatches);
}

#[test]
fn every_flagged_case_lists_its_sink() {
    let cases = load_cases();
    let scanner = Scanner::default();
    let mut mismatches = Vec::new();
    for case in &cases {
        let Some((module, name)) = &case.sink else {
            continue;
        };
        let report = scanner.scan_bytes(&case.id, &case.data);
        let listed = report
            .imports
            .iter()
            .any(|i| &i.module == module && &i.name == name);
        if !listed {
            let imports: Vec<String> = report.imports.iter().map(|i| i.qualified()).collect();
            let line = format!(
                "{}: `{module}.{name}` not among imports [{}]",
                case.id,
                imports.join(", ")
            );
            mismatches.push((line, case));
        }
    }
    fail_with("do not list their sink", cases.len(), &mismatches);
}
