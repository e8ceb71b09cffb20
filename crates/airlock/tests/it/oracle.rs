//! The differential oracle (`tests/fixtures/oracle/cases.jsonl`, made by
//! `scripts/fixtures/make_oracle.py`): each case is one payload written with one string
//! encoding, stack-neutral gap, memo variant and import style, in one container. The way the
//! bytes are written never changes what the loader runs, so it must never change the verdict.
//!
//! Every failing case is printed (not only the first), followed by counts per payload and per
//! variant dimension so a pattern ("every BINSTRING case", "every gzip case") is easy to spot.

use std::collections::BTreeMap;

use airlock::{Rating, Scanner, Verdict};
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

/// A flagged case must list its sink, and rate it as the payload says: a dangerous payload's
/// sink is itself rated dangerous (not merely "some dangerous rule somewhere in the file"),
/// a suspicious payload's sink suspicious.
#[test]
fn every_flagged_case_lists_its_sink_with_its_own_rating() {
    let cases = load_cases();
    let scanner = Scanner::default();
    let mut mismatches = Vec::new();
    for case in &cases {
        let Some((module, name)) = &case.sink else {
            continue;
        };
        let report = scanner.scan_bytes(&case.id, &case.data);
        // The payload's own rating, not the file's: a suspicious payload in the legacy
        // magic-number slot makes the *file* dangerous, not its import.
        let want = if suspicious_payload(case) {
            Rating::Suspicious
        } else {
            Rating::Dangerous
        };
        let listed: Vec<&airlock::Import> = report
            .imports
            .iter()
            .filter(|i| &i.module == module && &i.name == name)
            .collect();
        let problem = match listed.first() {
            None => {
                let imports: Vec<String> = report.imports.iter().map(|i| i.qualified()).collect();
                Some(format!("not among imports [{}]", imports.join(", ")))
            }
            Some(import) if import.rating != want => Some(format!(
                "rated {}, expected {} ({})",
                import.rating.as_str(),
                want.as_str(),
                import.reason.as_deref().unwrap_or("")
            )),
            Some(_) => None,
        };
        if let Some(problem) = problem {
            mismatches.push((format!("{}: `{module}.{name}` {problem}", case.id), case));
        }
    }
    fail_with(
        "do not list their sink with its rating",
        cases.len(),
        &mismatches,
    );
}

/// True for the payloads the manifest calls suspicious on their own (their verdict in a
/// `legacy_torch` container is dangerous, by design: see the README).
fn suspicious_payload(case: &Case) -> bool {
    SUSPICIOUS_PAYLOADS.contains(&case.fields["payload"].as_str())
}

const SUSPICIOUS_PAYLOADS: [&str; 3] = ["user_model", "main_net", "unknown_config"];

// ---- every case again, wrapped and truncated ----------------------------------------------

/// torch's legacy format around `pickle` as its main pickle: the magic number, the protocol
/// version and the system info before it, an empty storage-key list after it (the bytes
/// `pickle.dumps(..., protocol=2)` writes for each).
fn legacy_torch_around(pickle: &[u8]) -> Vec<u8> {
    const MAGIC: &str = "80028a0a6cfc9c46f9206aa850192e";
    const VERSION: &str = "80024de9032e";
    const SYS_INFO: &str = "80027d710028581000000070726f746f636f6c5f76657273696f6e71014de903580d0000006c6974746c655f656e6469616e710288580a000000747970655f73697a657371037d710428580500000073686f727471054b025803000000696e7471064b0458040000006c6f6e6771074b0475752e";
    const NO_KEYS: &str = "80025d71002e";
    let hex = |h: &str| -> Vec<u8> {
        (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).expect("hex"))
            .collect()
    };
    [
        hex(MAGIC),
        hex(VERSION),
        hex(SYS_INFO),
        pickle.to_vec(),
        hex(NO_KEYS),
    ]
    .concat()
}

fn gzip_of(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).expect("in memory");
    encoder.finish().expect("in memory")
}

fn zip_of(name: &str, data: &[u8]) -> Vec<u8> {
    airlock::convert::testkit::stored_zip(&[(name.to_string(), data.to_vec())])
}

/// Runs every case again inside `wrap` (which returns `None` for cases it does not apply
/// to) and expects the case's own verdict: a wrapper changes where the bytes sit, not what
/// loading them runs.
fn every_case_wrapped(what: &str, wrap: impl Fn(&Case) -> Option<Vec<u8>>) {
    let cases = load_cases();
    let scanner = Scanner::default();
    let mut mismatches = Vec::new();
    let mut run = 0;
    for case in &cases {
        let Some(data) = wrap(case) else { continue };
        run += 1;
        let report = scanner.scan_bytes(&case.id, &data);
        if report.verdict != case.expected {
            let line = format!(
                "{} in {what}: expected {}, got {} ({})",
                case.id,
                case.expected,
                report.verdict,
                finding_codes(&report)
            );
            mismatches.push((line, case));
        }
    }
    assert!(run > 1000, "only {run} cases wrapped in {what}");
    fail_with(
        &format!("wrapped in {what} got the wrong verdict"),
        run,
        &mismatches,
    );
}

#[test]
fn every_case_inside_a_zip_gets_its_verdict() {
    every_case_wrapped("a zip", |case| {
        Some(zip_of("wrapped/payload.bin", &case.data))
    });
}

#[test]
fn every_case_inside_gzip_gets_its_verdict() {
    every_case_wrapped("gzip", |case| Some(gzip_of(&case.data)));
}

/// Only the cases whose bytes are a bare pickle (`raw`): the other containers (a zip, a gzip
/// stream, a legacy file) are not pickles, and torch's legacy loader unpickles its main
/// pickle; it never opens an archive there. A payload in the main pickle keeps its own
/// verdict (the magic-number slot is what makes suspicious payloads dangerous, and it holds
/// the real magic number here).
#[test]
fn every_raw_case_as_a_legacy_torch_main_pickle_gets_its_verdict() {
    every_case_wrapped("a legacy torch file", |case| {
        (case.fields["container"] == "raw").then(|| legacy_torch_around(&case.data))
    });
}

/// Where a case is cut: just before its end, in the middle, and a quarter in.
fn cut_points(len: usize) -> Vec<usize> {
    let mut cuts = vec![len.saturating_sub(1), len / 2, len / 4];
    cuts.retain(|&c| c > 0);
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

/// A truncated case is never safe. The one allowance: a prefix that the report reads as
/// something other than a pickle (no import, a `GEN001` not-a-model finding). Such a prefix
/// is cut before anything the loader would import, the loader fails on it before running
/// anything, and no reader can tell it from text or data that was never a pickle.
#[test]
fn every_truncated_case_is_never_safe() {
    let cases = load_cases();
    let scanner = Scanner::default();
    let mut mismatches = Vec::new();
    let mut run = 0;
    for case in &cases {
        let legacy = (case.fields["container"] == "raw").then(|| legacy_torch_around(&case.data));
        let forms = [
            Some(("", case.data.clone())),
            legacy.map(|l| (" in legacy torch", l)),
        ];
        for (form, data) in forms.into_iter().flatten() {
            for cut in cut_points(data.len()) {
                run += 1;
                let report = scanner.scan_bytes(&case.id, &data[..cut]);
                let not_a_pickle = report.imports.is_empty()
                    && report
                        .findings
                        .iter()
                        .any(|f| f.rule == airlock::Rule::NotAModel);
                if report.verdict == Verdict::Safe && !not_a_pickle {
                    let line = format!(
                        "{}{form} cut at {cut} of {}: safe ({}; {})",
                        case.id,
                        data.len(),
                        report.format,
                        finding_codes(&report)
                    );
                    mismatches.push((line, case));
                }
            }
        }
    }
    fail_with("were called safe when truncated", run, &mismatches);
}
