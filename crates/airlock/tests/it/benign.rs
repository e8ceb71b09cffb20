//! Files saved by the real libraries (`tests/fixtures/benign/`, made by
//! `scripts/fixtures/make_benign.py`; `manifest.json` lists each file's key globals and the
//! library versions). Every one must be reported safe, with its key globals among the imports:
//! these are the false positives users complain about most.

use airlock::{Scanner, Verdict};
use serde_json::Value;

use crate::{finding_codes, fixtures};

/// (file name, key globals) from `manifest.json`.
fn manifest() -> Vec<(String, Vec<String>)> {
    let path = fixtures("benign/manifest.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text).expect("manifest.json is JSON");
    let files = doc["files"].as_object().expect("`files` is an object");
    files
        .iter()
        .map(|(name, entry)| {
            let globals = entry["key_globals"]
                .as_array()
                .expect("`key_globals` is a list")
                .iter()
                .map(|g| g.as_str().expect("a global is a string").to_string())
                .collect();
            (name.clone(), globals)
        })
        .collect()
}

#[test]
fn manifest_lists_every_fixture() {
    let listed: Vec<String> = manifest().into_iter().map(|(name, _)| name).collect();
    let dir = fixtures("benign");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .expect("benign fixtures folder")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name != "README.md" && name != "manifest.json")
        .collect();
    on_disk.sort();
    assert_eq!(listed, on_disk);
    assert!(listed.len() >= 20, "only {} benign fixtures", listed.len());
}

#[test]
fn every_benign_file_is_safe_with_its_key_globals() {
    let scanner = Scanner::default();
    let mut failures = Vec::new();
    let files = manifest();
    for (name, key_globals) in &files {
        let report = scanner.scan_path(&fixtures("benign").join(name));
        if report.verdict != Verdict::Safe {
            let flagged: Vec<String> = report
                .findings
                .iter()
                .map(|f| format!("{} {}", f.rule.code(), f.message))
                .collect();
            failures.push(format!(
                "{name}: expected safe, got {} ({}; format {}): {}",
                report.verdict,
                finding_codes(&report),
                report.format,
                flagged.join(" | ")
            ));
        }
        let imports: Vec<String> = report.imports.iter().map(|i| i.qualified()).collect();
        for global in key_globals {
            if !imports.contains(global) {
                failures.push(format!(
                    "{name}: `{global}` not among imports [{}]",
                    imports.join(", ")
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n{} problems over {} benign files",
        failures.join("\n"),
        failures.len(),
        files.len()
    );
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
    let mut paths: Vec<_> = manifest()
        .into_iter()
        .map(|(name, _)| fixtures("benign").join(name))
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
