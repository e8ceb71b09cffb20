//! Files saved by the real libraries (`tests/fixtures/benign/`, made by
//! `scripts/fixtures/make_benign.py`; `manifest.json` lists each file's key globals and the
//! library versions). Every one must be reported safe, with its key globals among the imports:
//! these are the false positives users complain about most.

use airlock::{Scanner, Verdict};
use serde_json::Value;

use crate::{finding_codes, fixtures};

/// One entry of a benign folder's `manifest.json` (`tests/fixtures/benign/` and
/// `tests/fixtures/benign-libs/` share the layout: `files` maps a file name to its
/// `key_globals` and, in `benign-libs`, its `library`).
pub(crate) struct Entry {
    pub name: String,
    pub library: Option<String>,
    pub key_globals: Vec<String>,
}

/// The entries of `tests/fixtures/<folder>/manifest.json`, sorted by file name.
pub(crate) fn manifest(folder: &str) -> Vec<Entry> {
    let path = fixtures(folder).join("manifest.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text).expect("manifest.json is JSON");
    let files = doc["files"].as_object().expect("`files` is an object");
    files
        .iter()
        .map(|(name, entry)| Entry {
            name: name.clone(),
            library: entry["library"].as_str().map(str::to_string),
            key_globals: entry["key_globals"]
                .as_array()
                .expect("`key_globals` is a list")
                .iter()
                .map(|g| g.as_str().expect("a global is a string").to_string())
                .collect(),
        })
        .collect()
}

/// The fixture files of `tests/fixtures/<folder>` (all but `README.md` and `manifest.json`),
/// sorted.
pub(crate) fn files_on_disk(folder: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures(folder))
        .unwrap_or_else(|e| panic!("fixtures folder {folder}: {e}"))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name != "README.md" && name != "manifest.json")
        .collect();
    names.sort();
    names
}

/// A report's verdict, codes, format and messages, for failure messages.
pub(crate) fn describe(report: &airlock::FileReport) -> String {
    let flagged: Vec<String> = report
        .findings
        .iter()
        .map(|f| format!("{} {}", f.rule.code(), f.message))
        .collect();
    format!(
        "{} ({}; format {}): {}",
        report.verdict,
        finding_codes(report),
        report.format,
        flagged.join(" | ")
    )
}

/// Scans every manifest entry of `tests/fixtures/<folder>` and panics, listing every problem,
/// unless each is safe with its key globals among the imports.
pub(crate) fn assert_safe_with_key_globals(folder: &str) {
    let scanner = Scanner::default();
    let entries = manifest(folder);
    let mut failures = Vec::new();
    for entry in &entries {
        let report = scanner.scan_path(&fixtures(folder).join(&entry.name));
        if report.verdict != Verdict::Safe {
            failures.push(format!(
                "{}: expected safe, got {}",
                entry.name,
                describe(&report)
            ));
        }
        let imports: Vec<String> = report.imports.iter().map(|i| i.qualified()).collect();
        for global in &entry.key_globals {
            if !imports.contains(global) {
                failures.push(format!(
                    "{}: `{global}` not among imports [{}]",
                    entry.name,
                    imports.join(", ")
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n{} problems over {} files in {folder}",
        failures.join("\n"),
        failures.len(),
        entries.len()
    );
}

#[test]
fn manifest_lists_every_fixture() {
    let listed: Vec<String> = manifest("benign").into_iter().map(|e| e.name).collect();
    assert_eq!(listed, files_on_disk("benign"));
    assert!(listed.len() >= 20, "only {} benign fixtures", listed.len());
}

#[test]
fn every_benign_file_is_safe_with_its_key_globals() {
    assert_safe_with_key_globals("benign");
}

/// `scan_path` reads small files into memory and maps larger ones; either way the report is
/// the one `scan_bytes` gives for the same bytes (every benign fixture, and a 300 KB pickle
/// on each side of the 256 KiB boundary).
#[test]
fn read_and_mapped_files_report_as_their_bytes() {
    let comparable = |report: &airlock::FileReport| {
        let mut v = serde_json::to_value(report).expect("a report serialises");
        v.as_object_mut().expect("an object").remove("elapsed_ms");
        v
    };
    let scanner = Scanner::default();
    let dir = tempfile::tempdir().unwrap();
    let mut paths: Vec<_> = manifest("benign")
        .into_iter()
        .map(|e| fixtures("benign").join(e.name))
        .collect();
    for appends in [80_000, 150_000] {
        // A list of BININT1 appends: 2 bytes each, data only.
        let mut pickle = b"\x80\x02](".to_vec();
        for i in 0..appends {
            pickle.extend_from_slice(&[b'K', (i % 251) as u8]);
        }
        pickle.extend_from_slice(b"e.");
        let path = dir.path().join(format!("list{appends}.pkl"));
        std::fs::write(&path, &pickle).unwrap();
        paths.push(path);
    }
    for path in &paths {
        let bytes = std::fs::read(path).unwrap();
        let display = path.display().to_string();
        assert_eq!(
            comparable(&scanner.scan_path(path)),
            comparable(&scanner.scan_bytes(&display, &bytes)),
            "{display}"
        );
    }
}
