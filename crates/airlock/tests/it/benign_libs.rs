//! Artifacts saved by the libraries the generated profiles cover (`tests/fixtures/benign-libs/`,
//! made by `scripts/policy/gen_library_profiles.py fixtures`; `manifest.json` lists each file's
//! library and the globals it imports). Each must scan safe with its globals among the imports,
//! and must turn dangerous once a dangerous global is added to the same pickle: the profiles
//! allow what these artifacts need, not whatever shares their file.

use airlock::{Scanner, Verdict};

use crate::benign::{assert_safe_with_key_globals, describe, files_on_disk, manifest};
use crate::fixtures;

const FOLDER: &str = "benign-libs";

#[test]
fn manifest_lists_every_fixture_and_every_library() {
    let files = manifest(FOLDER);
    let listed: Vec<String> = files.iter().map(|e| e.name.clone()).collect();
    assert_eq!(listed, files_on_disk(FOLDER));
    for library in [
        "pandas",
        "xgboost",
        "lightgbm",
        "catboost",
        "omegaconf",
        "statsmodels",
        "gensim",
        "dill",
        "pillow",
        "sklearn",
    ] {
        assert!(
            files.iter().any(|e| e.library.as_deref() == Some(library)),
            "no {library} artifact"
        );
    }
}

#[test]
fn every_library_artifact_is_safe_with_its_globals() {
    assert_safe_with_key_globals(FOLDER);
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
    let streams = manifest(FOLDER)
        .into_iter()
        .map(|e| e.name)
        .filter(|name| name.ends_with(".pkl") || name.ends_with(".joblib"));
    for name in streams {
        let bytes = std::fs::read(fixtures(FOLDER).join(&name)).unwrap();
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

// ---- mutation targets and stored functions from the generated profiles -----------------

fn codes(bytes: &[u8]) -> (Verdict, String) {
    let report = Scanner::default().scan_bytes("t.pkl", bytes);
    (report.verdict, crate::finding_codes(&report))
}

/// `cls()` by NEWOBJ, then `op` with one item (`SETITEMS` takes a key and a value).
fn mutated(module: &str, name: &str, op: &[u8]) -> Vec<u8> {
    let mut p = format!("\x02c{module}\n{name}\n").into_bytes();
    p.insert(0, 0x80);
    p.extend_from_slice(b")\x81(");
    if op == b"u" {
        p.extend_from_slice(b"X\x01\x00\x00\x00a");
    }
    p.extend_from_slice(b"K\x01");
    p.extend_from_slice(op);
    p.push(b'.');
    p
}

#[test]
fn setitems_on_a_profiled_dict_subclass_is_data() {
    // statsmodels' Bunch and scipy's OptimizeResult subclass dict and keep dict.__setitem__:
    // pickled as NEWOBJ then SETITEMS (ARIMA and Holt-Winters results).
    for (module, name) in [
        ("statsmodels.tools.tools", "Bunch"),
        ("scipy.optimize._optimize", "OptimizeResult"),
    ] {
        assert_eq!(
            codes(&mutated(module, name, b"u")),
            (Verdict::Safe, "no findings".into()),
            "{module}.{name}"
        );
        // APPENDS would call a list method a dict does not have: still flagged.
        let (verdict, found) = codes(&mutated(module, name, b"e"));
        assert!(
            found.contains("PKL007"),
            "{module}.{name}: {verdict} {found}"
        );
    }
    // A profiled class that is not a dict subclass: SETITEMS runs its code.
    let (verdict, found) = codes(&mutated(
        "statsmodels.tsa.arima.params",
        "SARIMAXParams",
        b"u",
    ));
    assert_eq!(verdict, Verdict::Suspicious, "{found}");
    assert!(found.contains("PKL007"), "{found}");
}

#[test]
fn only_the_functions_gensim_models_store_are_allowed() {
    // TfidfModel's defaults (wlocal=utils.identity, wglobal=df2idf) are allowed ...
    let stored = b"\x80\x02cgensim.models.tfidfmodel\ndf2idf\ncgensim.utils\nidentity\n\x86.";
    assert_eq!(verdict(stored), Verdict::Safe);
    // ... other gensim functions (here one that unpickles a file) are not.
    let other = b"\x80\x02cgensim.utils\nunpickle\nX\x01\x00\x00\x00f\x85R.";
    assert_ne!(verdict(other), Verdict::Safe);
}
