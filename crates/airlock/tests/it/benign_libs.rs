//! Artifacts saved by the libraries the generated profiles cover (`tests/fixtures/benign-libs/`,
//! made by `scripts/policy/gen_library_profiles.py fixtures`; `manifest.json` lists each file's
//! library and the globals it imports). Each must scan safe with its globals among the imports,
//! and must turn dangerous once a dangerous global is added to the same pickle: the profiles
//! allow what these artifacts need, not whatever shares their file.

use airlock::{Scanner, Verdict};
use serde_json::Value;

use crate::{finding_codes, fixtures};

/// (file name, library, globals) from `manifest.json`.
fn manifest() -> Vec<(String, String, Vec<String>)> {
    let path = fixtures("benign-libs/manifest.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text).expect("manifest.json is JSON");
    let files = doc["files"].as_object().expect("`files` is an object");
    files
        .iter()
        .map(|(name, entry)| {
            let library = entry["library"].as_str().expect("a library").to_string();
            let globals = entry["key_globals"]
                .as_array()
                .expect("`key_globals` is a list")
                .iter()
                .map(|g| g.as_str().expect("a global is a string").to_string())
                .collect();
            (name.clone(), library, globals)
        })
        .collect()
}

fn describe(report: &airlock::FileReport) -> String {
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

#[test]
fn manifest_lists_every_fixture_and_every_library() {
    let files = manifest();
    let mut on_disk: Vec<String> = std::fs::read_dir(fixtures("benign-libs"))
        .expect("benign-libs fixtures folder")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name != "README.md" && name != "manifest.json")
        .collect();
    on_disk.sort();
    let listed: Vec<String> = files.iter().map(|(name, _, _)| name.clone()).collect();
    assert_eq!(listed, on_disk);
    for library in [
        "pandas",
        "xgboost",
        "lightgbm",
        "catboost",
        "omegaconf",
        "statsmodels",
        "gensim",
        "dill",
        "sklearn",
    ] {
        assert!(
            files.iter().any(|(_, l, _)| l == library),
            "no {library} artifact"
        );
    }
}

#[test]
fn every_library_artifact_is_safe_with_its_globals() {
    let scanner = Scanner::default();
    let mut failures = Vec::new();
    let files = manifest();
    for (name, _library, key_globals) in &files {
        let report = scanner.scan_path(&fixtures("benign-libs").join(name));
        if report.verdict != Verdict::Safe {
            failures.push(format!("{name}: expected safe, got {}", describe(&report)));
        }
        let imports: Vec<String> = report.imports.iter().map(|i| i.qualified()).collect();
        for global in key_globals {
            if !imports.contains(global) {
                failures.push(format!(
                    "{name}: `{global}` not among [{}]",
                    imports.join(", ")
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n{} problems over {} files",
        failures.join("\n"),
        failures.len(),
        files.len()
    );
}

/// The artifact with its final STOP replaced by POP and a protocol-0 `os.system('id')` call:
/// the unpickler builds the artifact, drops it, then runs the call.
fn with_payload(bytes: &[u8]) -> Vec<u8> {
    assert_eq!(bytes.last(), Some(&b'.'), "a pickle ends with STOP");
    let mut out = bytes[..bytes.len() - 1].to_vec();
    out.extend_from_slice(b"0cos\nsystem\n(S'id'\ntR.");
    out
}

#[test]
fn a_dangerous_global_in_the_same_pickle_is_still_caught() {
    let scanner = Scanner::default();
    let mut missed = Vec::new();
    // Pickle and joblib streams; the Lightning `.ckpt` is a zip (its data.pkl is covered by
    // the torch-zip tests).
    let streams = manifest()
        .into_iter()
        .filter(|(name, _, _)| name.ends_with(".pkl") || name.ends_with(".joblib"));
    for (name, _, _) in streams {
        let bytes = std::fs::read(fixtures("benign-libs").join(&name)).unwrap();
        let report = scanner.scan_bytes(&name, &with_payload(&bytes));
        if report.verdict != Verdict::Dangerous {
            missed.push(format!("{name}: {}", describe(&report)));
        }
    }
    assert!(missed.is_empty(), "{}", missed.join("\n"));
}

// ---- helpers rated by their arguments, names through aliases ---------------------------

fn verdict(bytes: &[u8]) -> Verdict {
    Scanner::default().scan_bytes("t.pkl", bytes).verdict
}

#[test]
fn torchscript_list_builders_are_rated_by_their_arguments() {
    // build_intlist([1, 2]) and restore_type_tag([1], 'List[int]'): data only.
    let data = b"\x80\x02ctorch.jit._pickle\nbuild_intlist\n]q\x00(K\x01K\x02e\x85R.";
    assert_eq!(verdict(data), Verdict::Safe);
    let tagged =
        b"\x80\x02ctorch.jit._pickle\nrestore_type_tag\n]K\x01aX\t\x00\x00\x00List[int]\x86R.";
    assert_eq!(verdict(tagged), Verdict::Safe);
    // build_intlist(os.system('id')): the smuggled callable is imported, and rated.
    let smuggled =
        b"\x80\x02ctorch.jit._pickle\nbuild_intlist\ncos\nsystem\nX\x02\x00\x00\x00id\x85R\x85R.";
    assert_eq!(verdict(smuggled), Verdict::Dangerous);
    let passed = b"\x80\x02ctorch.jit._pickle\nbuild_tensorlist\ncbuiltins\neval\n\x85R.";
    assert_eq!(verdict(passed), Verdict::Dangerous);
}

#[test]
fn dill_create_array_is_rated_by_its_arguments() {
    let safe = std::fs::read(fixtures("benign-libs/dill_arrays.pkl")).unwrap();
    assert_eq!(verdict(&safe), Verdict::Safe);
    // _create_array(os.system, ('id',), None, {}): copyreg._reconstructor's shape.
    let smuggled =
        b"\x80\x02cdill._dill\n_create_array\ncos\nsystem\nX\x02\x00\x00\x00id\x85N}\x87R.";
    assert_eq!(verdict(smuggled), Verdict::Dangerous);
}

#[test]
fn names_through_module_aliases_are_dangerous_in_a_pickle() {
    // STACK_GLOBAL('random', '_os.system')('id'): find_class walks `random._os`, which is `os`.
    let mut p = b"\x80\x04\x8c\x06random\x8c\x0a_os.system\x93\x8c\x02id\x85R.".to_vec();
    assert_eq!(verdict(&p), Verdict::Dangerous);
    p = b"\x80\x04\x8c\x04enum\x8c\x0abltns.eval\x93\x8c\x011\x85R.".to_vec();
    assert_eq!(verdict(&p), Verdict::Dangerous);
    // The same shape through a name the table does not know is only suspicious.
    p = b"\x80\x04\x8c\x06random\x8c\x0a_xx.system\x93\x8c\x02id\x85R.".to_vec();
    assert_eq!(verdict(&p), Verdict::Suspicious);
}
