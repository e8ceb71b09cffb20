//! `airlock scan`: text and JSON reports, exit codes, flags and usage errors.

use insta_cmd::assert_cmd_snapshot;

use crate::{Fixture, OS_SYSTEM_PICKLE, with_filters};

#[test]
fn folder_in_text_format() {
    let fixture = Fixture::new().with_samples();
    with_filters!({
        assert_cmd_snapshot!(fixture.airlock(&["scan"]));
    });
}

#[test]
fn quiet_lists_only_files_that_are_not_safe() {
    let fixture = Fixture::new().with_samples();
    with_filters!({
        assert_cmd_snapshot!(fixture.airlock(&["scan", "-q", "notes.txt", "missing.pkl"]));
    });
}

#[test]
fn text_file_and_empty_file_are_not_models() {
    let fixture = Fixture::new().with_samples();
    with_filters!({
        assert_cmd_snapshot!(fixture.airlock(&["scan", "notes.txt", "empty.bin"]));
    });
}

#[test]
fn pickles_in_json_format() {
    let fixture = Fixture::new().with_samples();
    with_filters!({
        assert_cmd_snapshot!(fixture.airlock(&[
            "scan",
            "--format",
            "json",
            "ordered_dict.pkl",
            "os_system.pkl"
        ]));
    });
}

#[test]
fn fail_on_dangerous() {
    let fixture = Fixture::new().with_samples();
    with_filters!({
        assert_cmd_snapshot!(fixture.airlock(&["scan", "--fail-on", "dangerous", "os_system.pkl"]));
    });
}

#[test]
fn a_missing_path_is_unscannable_and_exits_2() {
    let fixture = Fixture::new();
    with_filters!({
        assert_cmd_snapshot!(fixture.airlock(&["scan", "missing.pkl"]));
    });
}

#[test]
fn a_file_over_max_file_size_is_unscannable() {
    let fixture = Fixture::new().with_samples();
    with_filters!({
        assert_cmd_snapshot!(fixture.airlock(&["scan", "--max-file-size", "4", "notes.txt"]));
    });
}

#[test]
fn excluded_files_are_not_scanned() {
    let fixture = Fixture::new().with_samples();
    fixture.write("cache/blob.pkl", OS_SYSTEM_PICKLE);
    with_filters!({
        assert_cmd_snapshot!(fixture.airlock(&[
            "scan",
            "--exclude",
            "*.pkl",
            "--exclude",
            "cache",
            "-q",
            "--format",
            "json",
        ]));
    });
}

#[test]
fn output_file_is_written_and_stdout_stays_empty() {
    let fixture = Fixture::new().with_samples();
    with_filters!({
        assert_cmd_snapshot!(fixture.airlock(&[
            "scan",
            "--format",
            "json",
            "-o",
            "reports/scan.json",
            "notes.txt"
        ]), @r"
        success: false
        exit_code: 2
        ----- stdout -----

        ----- stderr -----
        error: cannot write the report to reports/scan.json
          caused by: cannot create a temporary file in reports
          caused by: No such file or directory (os error [N])
        ");
    });
    std::fs::create_dir(fixture.path().join("reports")).unwrap();
    let output = fixture
        .airlock(&[
            "scan",
            "--format",
            "json",
            "-o",
            "reports/scan.json",
            "notes.txt",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(output.stdout.is_empty());
    let written = std::fs::read_to_string(fixture.path().join("reports/scan.json")).unwrap();
    let report: serde_json::Value = serde_json::from_str(&written).unwrap();
    assert_eq!(report["files"][0]["path"], "notes.txt");
    assert_eq!(report["summary"]["files"], 1);
    let leftovers: Vec<_> = std::fs::read_dir(fixture.path().join("reports"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["scan.json"], "no temporary file left behind");
}

#[test]
fn policy_file_is_discovered_and_named_in_verbose_mode() {
    let fixture = Fixture::new().with_samples();
    fixture.write("airlock.toml", b"allow = [\"mypkg.Model\"]\n");
    let output = fixture
        .airlock(&["scan", "-v", "notes.txt"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("policy: ") && stderr.contains("airlock.toml"),
        "{stderr}"
    );
}

#[test]
fn colour_is_forced_with_always_and_absent_otherwise() {
    let fixture = Fixture::new().with_samples();
    let plain = fixture.airlock(&["scan", "notes.txt"]).output().unwrap();
    assert!(!plain.stdout.contains(&0x1b));
    let coloured = fixture
        .airlock(&["scan", "--color", "always", "notes.txt"])
        .output()
        .unwrap();
    assert!(coloured.stdout.contains(&0x1b));
}

#[test]
fn threads_flag_keeps_sorted_output() {
    let fixture = Fixture::new();
    for i in (0..30).rev() {
        fixture.write(&format!("f{i:02}.txt"), b"x\n");
    }
    let output = fixture
        .airlock(&["scan", "-j", "4", "-q", "--format", "json"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let paths: Vec<_> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths.len(), 30);
    assert_eq!(paths, sorted);
}

#[cfg(unix)]
#[test]
fn broken_pipe_exits_quietly() {
    use std::io::Read;
    use std::process::Stdio;
    let fixture = Fixture::new();
    for i in 0..400 {
        fixture.write(&format!("f{i:03}.txt"), b"x\n");
    }
    let mut child = fixture
        .airlock(&["scan", "--fail-on", "dangerous"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away before anything is written
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn usage_error_unknown_format() {
    let fixture = Fixture::new();
    assert_cmd_snapshot!(fixture.airlock(&["scan", "--format", "xml"]));
}

#[test]
fn usage_error_bad_size() {
    let fixture = Fixture::new();
    assert_cmd_snapshot!(fixture.airlock(&["scan", "--max-file-size", "10X"]));
}

#[test]
fn usage_error_missing_policy_file_prints_the_cause_chain() {
    let fixture = Fixture::new();
    with_filters!({
        assert_cmd_snapshot!(fixture.airlock(&["scan", "--policy", "nope.toml"]));
    });
}

#[test]
fn usage_error_bad_exclude_glob() {
    let fixture = Fixture::new();
    assert_cmd_snapshot!(fixture.airlock(&["scan", "--exclude", "a[b"]));
}

/// `mypkg.Model()`: a user's own class, on no allowlist.
const UNKNOWN_CLASS_PICKLE: &[u8] = b"\x80\x02cmypkg\nModel\n)R.";

#[test]
fn suspicious_file_passes_with_fail_on_dangerous() {
    let fixture = Fixture::new();
    fixture.write("user_model.pkl", UNKNOWN_CLASS_PICKLE);
    with_filters!({
        assert_cmd_snapshot!(fixture.airlock(&[
            "scan",
            "--fail-on",
            "dangerous",
            "user_model.pkl"
        ]));
    });
    let default = fixture
        .airlock(&["scan", "user_model.pkl"])
        .output()
        .unwrap();
    assert_eq!(
        default.status.code(),
        Some(1),
        "suspicious fails by default"
    );
}

#[test]
fn allow_flag_and_policy_file_make_a_class_safe() {
    let fixture = Fixture::new();
    fixture.write("models/user_model.pkl", UNKNOWN_CLASS_PICKLE);
    let allowed = fixture
        .airlock(&["scan", "--allow", "mypkg.Model", "models"])
        .output()
        .unwrap();
    assert_eq!(allowed.status.code(), Some(0), "{allowed:?}");

    fixture.write("airlock.toml", b"allow = [\"mypkg.Model\"]\n");
    let discovered = fixture.airlock(&["scan", "models"]).output().unwrap();
    assert_eq!(discovered.status.code(), Some(0), "{discovered:?}");

    let explicit = fixture
        .airlock(&[
            "scan",
            "--policy",
            "airlock.toml",
            "models/user_model.pkl",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&explicit.stdout).unwrap();
    assert_eq!(report["summary"]["policy_file"], "airlock.toml");
    assert_eq!(report["files"][0]["verdict"], "safe");
}

#[test]
fn allowing_a_forbidden_global_is_a_usage_error() {
    let fixture = Fixture::new().with_samples();
    let output = fixture
        .airlock(&["scan", "--allow", "os.system", "notes.txt"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.starts_with("error: cannot use --allow os.system"),
        "{stderr}"
    );
    assert!(stderr.contains("caused by:"), "{stderr}");
}

#[test]
fn verbose_shows_the_imports_of_safe_files() {
    let fixture = Fixture::new().with_samples();
    let output = fixture
        .airlock(&["scan", "-v", "ordered_dict.pkl"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains("import   collections.OrderedDict  innocuous  (offset 2)"),
        "{stdout}"
    );
    let quiet = fixture
        .airlock(&["scan", "ordered_dict.pkl"])
        .output()
        .unwrap();
    assert!(!String::from_utf8(quiet.stdout).unwrap().contains("import "));
}

#[test]
fn timeout_must_be_positive() {
    let output = Fixture::new()
        .airlock(&["scan", "--timeout", "0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

/// A fixture file from the repository's `tests/fixtures/formats/`.
fn format_fixture(path: &str) -> Vec<u8> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/formats/");
    std::fs::read(format!("{root}{path}")).expect("format fixture")
}

#[test]
fn each_model_format_says_what_it_is_and_what_was_checked() {
    let fixture = Fixture::new();
    let torchscript = crate::stored_zip(&[
        ("m/data.pkl", crate::ORDERED_DICT_PICKLE),
        ("m/constants.pkl", b"\x80\x02)."),
        (
            "m/code/__torch__.py",
            b"def forward(self, x):\n  return ops.my_ext.run(x)\n",
        ),
    ]);
    fixture
        .write(
            "model.safetensors",
            &format_fixture("safetensors/benign_small.safetensors"),
        )
        .write("model.gguf", &format_fixture("gguf/benign_chatml.gguf"))
        .write("model.keras", &format_fixture("keras/benign.keras"))
        .write("model.h5", &format_fixture("keras/benign.h5"))
        .write(
            "saved/saved_model.pb",
            &format_fixture("savedmodel/benign/saved_model.pb"),
        )
        .write(
            "saved/keras_metadata.pb",
            &format_fixture("savedmodel/malicious/keras_metadata.pb"),
        )
        .write("onnx/model.onnx", &format_fixture("onnx/external_ok.onnx"))
        .write("onnx/weights.bin", &[0u8; 64])
        .write("model.tflite", &format_fixture("misc/model.tflite"))
        .write("model.mlmodel", b"\x08\x04\x12\x00\xa2\x1f\x00")
        .write("flax_model.msgpack", b"\x81\xa1w\xd4\x01\x00")
        .write("script.pt", &torchscript);
    with_filters!({
        assert_cmd_snapshot!(fixture.airlock(&["scan"]));
    });
}
