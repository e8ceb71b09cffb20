//! The exit-status matrix: verdict × `--fail-on` × output format × stdout closed or not.
//!
//! Every status comes from `airlock::outcome`; the JSON summary's `exit_code` and SARIF's
//! `exitCode` must equal the process status, and closing stdout before the report is written
//! (`airlock scan | head -0`) must not change it.

use std::process::Stdio;

use serde_json::Value;

use crate::{Fixture, ORDERED_DICT_PICKLE, OS_SYSTEM_PICKLE};

/// A pickle importing a class no profile allows: suspicious.
const UNKNOWN_CLASS_PICKLE: &[u8] = b"\x80\x02cmypkg\nModel\n)R.";

/// A GGUF header claiming 2^64-1 tensors in a 24-byte file: GGUF002, which is dangerous (the
/// counts target readers) and marks the file incomplete at the same time. It used to exit 0.
pub fn dangerous_incomplete_gguf() -> Vec<u8> {
    let mut bytes = b"GGUF".to_vec();
    bytes.extend_from_slice(&3u32.to_le_bytes());
    bytes.extend_from_slice(&u64::MAX.to_le_bytes());
    bytes.extend_from_slice(&1u64.to_le_bytes());
    bytes
}

struct Case {
    name: &'static str,
    verdict: &'static str,
    /// Expected status with `--fail-on suspicious`, then `--fail-on dangerous`.
    status: [i32; 2],
}

const CASES: &[Case] = &[
    Case {
        name: "safe.pkl",
        verdict: "safe",
        status: [0, 0],
    },
    Case {
        name: "suspicious.pkl",
        verdict: "suspicious",
        status: [1, 0],
    },
    Case {
        name: "dangerous.pkl",
        verdict: "dangerous",
        status: [1, 1],
    },
    Case {
        name: "dangerous_incomplete.gguf",
        verdict: "dangerous",
        status: [1, 1],
    },
    // Not there: read error (GEN002), unscannable.
    Case {
        name: "missing.pkl",
        verdict: "unscannable",
        status: [2, 2],
    },
];

fn fixture() -> Fixture {
    let fixture = Fixture::new();
    fixture
        .write("safe.pkl", ORDERED_DICT_PICKLE)
        .write("suspicious.pkl", UNKNOWN_CLASS_PICKLE)
        .write("dangerous.pkl", OS_SYSTEM_PICKLE)
        .write("dangerous_incomplete.gguf", &dangerous_incomplete_gguf());
    fixture
}

/// Runs airlock with stdout to a pipe that is read, or closed before anything is written.
fn run(fixture: &Fixture, args: &[&str], close_stdout: bool) -> (i32, Vec<u8>, String) {
    let mut child = fixture
        .airlock(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if close_stdout {
        drop(child.stdout.take());
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code().expect("exited"), output.stdout, stderr)
}

#[test]
fn exit_status_matrix() {
    let fixture = fixture();
    let mut checked = 0;
    for case in CASES {
        for (fail_on, expected) in ["suspicious", "dangerous"].into_iter().zip(case.status) {
            for format in ["text", "json", "sarif"] {
                for close_stdout in [false, true] {
                    let args = ["scan", case.name, "--fail-on", fail_on, "--format", format];
                    let (status, stdout, stderr) = run(&fixture, &args, close_stdout);
                    let what = format!("{args:?} close_stdout={close_stdout}: {stderr}");
                    assert_eq!(status, expected, "{what}");
                    assert!(
                        !stderr.contains("error"),
                        "a closed stdout is not an error: {what}"
                    );
                    if close_stdout {
                        continue;
                    }
                    match format {
                        "json" => {
                            let report: Value = serde_json::from_slice(&stdout).unwrap();
                            assert_eq!(report["summary"]["exit_code"], expected, "{what}");
                            assert_eq!(report["files"][0]["verdict"], case.verdict, "{what}");
                        }
                        "sarif" => {
                            let log: Value = serde_json::from_slice(&stdout).unwrap();
                            let invocation = &log["runs"][0]["invocations"][0];
                            assert_eq!(invocation["exitCode"], expected, "{what}");
                            assert_eq!(invocation["executionSuccessful"], expected != 2, "{what}");
                        }
                        _ => {
                            let text = String::from_utf8(stdout).unwrap();
                            assert!(text.starts_with(case.verdict), "{what}\n{text}");
                        }
                    }
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, CASES.len() * 2 * 3);
}

#[test]
fn a_folder_of_dangerous_incomplete_files_fails_the_gate() {
    let fixture = Fixture::new();
    fixture
        .write("models/a.gguf", &dangerous_incomplete_gguf())
        .write("models/b.gguf", &dangerous_incomplete_gguf());
    for fail_on in ["suspicious", "dangerous"] {
        let output = fixture
            .airlock(&["scan", "models", "--fail-on", fail_on])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{output:?}");
    }
}

#[test]
fn a_closed_stdout_with_many_files_keeps_the_status() {
    let fixture = Fixture::new();
    for i in 0..200 {
        fixture.write(&format!("f{i:03}.txt"), b"x\n");
    }
    fixture.write("zz_dangerous.pkl", OS_SYSTEM_PICKLE);
    for close_stdout in [false, true] {
        let (status, _, stderr) = run(&fixture, &["scan"], close_stdout);
        assert_eq!(status, 1, "close_stdout={close_stdout}: {stderr}");
    }
}
