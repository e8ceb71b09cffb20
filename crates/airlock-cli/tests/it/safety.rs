//! Issue 20's surface checks: every named path is read (stdin, FIFOs, process substitution),
//! names cannot steer the terminal, `-o` never harms a file that is not a report, and every
//! subcommand rates a file under the same policy.

use std::io::Write;
use std::process::Stdio;

use serde_json::Value;

use crate::{Fixture, ORDERED_DICT_PICKLE, OS_SYSTEM_PICKLE, stored_zip};

fn stdout_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `airlock ARGS` with `input` on standard input.
fn with_stdin(fixture: &Fixture, args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = fixture
        .airlock(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // The child may stop reading early (a cap); a broken pipe here is fine.
    let _ = stdin.write_all(input);
    drop(stdin);
    child.wait_with_output().unwrap()
}

// ---- Every named path is scanned ------------------------------------------------------------

#[test]
fn dash_reads_standard_input() {
    let fixture = Fixture::new();
    fixture.write("-", ORDERED_DICT_PICKLE); // a file called `-` must not be read instead
    let output = with_stdin(
        &fixture,
        &["scan", "-", "--format", "json"],
        OS_SYSTEM_PICKLE,
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["files"][0]["path"], "-");
    assert_eq!(report["files"][0]["verdict"], "dangerous");
    assert_eq!(report["files"][0]["size"], OS_SYSTEM_PICKLE.len());
}

#[test]
fn a_stream_over_max_file_size_is_unscannable() {
    let fixture = Fixture::new();
    let output = with_stdin(
        &fixture,
        &["scan", "-", "--max-file-size", "10"],
        OS_SYSTEM_PICKLE,
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    let text = stdout_of(&output);
    assert!(text.starts_with("unscannable  -"), "{text}");
    assert!(text.contains("GEN003"), "{text}");
}

#[cfg(unix)]
#[test]
fn dev_stdin_and_process_substitution_are_read() {
    let fixture = Fixture::new();
    fixture.write("evil.pkl", OS_SYSTEM_PICKLE);
    let bin = insta_cmd::get_cargo_bin("airlock");
    // `/dev/stdin` from a pipe (a FIFO, not a regular file), and bash's `<(...)`.
    for script in [
        r#"cat evil.pkl | "$0" scan /dev/stdin"#,
        r#""$0" scan <(cat evil.pkl)"#,
    ] {
        let output = std::process::Command::new("bash")
            .arg("-c")
            .arg(script)
            .arg(&bin)
            .current_dir(fixture.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{script}: {output:?}");
        assert!(stdout_of(&output).starts_with("dangerous"), "{output:?}");
    }
}

#[cfg(unix)]
#[test]
fn a_named_fifo_is_read_and_one_in_a_folder_is_skipped_with_a_warning() {
    let fixture = Fixture::new();
    fixture.write("models/ok.pkl", ORDERED_DICT_PICKLE);
    let fifo = fixture.path().join("models/pipe.pkl");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let writer = std::thread::spawn(move || std::fs::write(fifo, OS_SYSTEM_PICKLE).unwrap());
    let named = fixture
        .airlock(&["scan", "models/pipe.pkl"])
        .output()
        .unwrap();
    writer.join().unwrap();
    assert_eq!(named.status.code(), Some(1), "{named:?}");
    assert!(stdout_of(&named).starts_with("dangerous    models/pipe.pkl"));

    let walked = fixture.airlock(&["scan", "models"]).output().unwrap();
    assert_eq!(walked.status.code(), Some(0), "{walked:?}");
    assert!(
        stderr_of(&walked).contains("models/pipe.pkl: not a regular file"),
        "{walked:?}"
    );
    assert!(stdout_of(&walked).contains("1 file scanned"), "{walked:?}");
}

// ---- Names cannot steer the terminal ----------------------------------------------------

#[cfg(unix)]
#[test]
fn escape_sequences_in_names_are_shown_escaped() {
    let fixture = Fixture::new();
    let title = "evil\u{1b}]0;owned\u{7}\r\u{1b}[2K.pkl";
    fixture.write(title, OS_SYSTEM_PICKLE);
    let member = "archive/\u{1b}[1Adata.pkl";
    fixture.write("model.pt", &stored_zip(&[(member, OS_SYSTEM_PICKLE)]));
    let output = fixture.airlock(&["scan", "-v"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        !output
            .stdout
            .iter()
            .any(|b| *b == 0x1b || *b == b'\r' || *b == 7),
        "raw control bytes reach the terminal: {:?}",
        stdout_of(&output)
    );
    let text = stdout_of(&output);
    assert!(
        text.contains(r"evil\x1b]0;owned\x07\r\x1b[2K.pkl"),
        "{text}"
    );
    assert!(text.contains(r"archive/\x1b[1Adata.pkl"), "{text}");
    // JSON keeps the exact name (its own escaping is safe).
    let json = fixture
        .airlock(&["scan", "--format", "json", title])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["files"][0]["path"], title);
    // explain too.
    let explain = fixture.airlock(&["explain", "model.pt"]).output().unwrap();
    assert!(!explain.stdout.contains(&0x1b), "{:?}", stdout_of(&explain));
}

// ---- -o never harms a file that is not a report ------------------------------------------

#[cfg(unix)]
#[test]
fn output_refuses_links_fifos_devices_and_inputs() {
    let fixture = Fixture::new();
    fixture.write("evil.pkl", OS_SYSTEM_PICKLE);
    fixture.write("victim.txt", b"keep me\n");
    std::os::unix::fs::symlink("victim.txt", fixture.path().join("link.txt")).unwrap();
    std::os::unix::fs::symlink("evil.pkl", fixture.path().join("evil-link.pkl")).unwrap();
    std::fs::hard_link(
        fixture.path().join("evil.pkl"),
        fixture.path().join("hard.pkl"),
    )
    .unwrap();
    assert!(
        std::process::Command::new("mkfifo")
            .arg(fixture.path().join("fifo"))
            .status()
            .unwrap()
            .success()
    );
    let cases = [
        ("link.txt", "symbolic link"),
        ("fifo", "not a regular file"),
        ("/dev/null", "not a regular file"),
        ("evil.pkl", "one of the scanned inputs"),
        ("hard.pkl", "one of the scanned inputs"),
    ];
    for (target, why) in cases {
        let output = fixture
            .airlock(&["scan", "evil-link.pkl", "-o", target])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{target}: {output:?}");
        let stderr = stderr_of(&output);
        assert!(stderr.contains(why), "{target}: {stderr}");
        assert!(!stderr.contains(".partial"), "{stderr}");
    }
    assert_eq!(
        std::fs::read(fixture.path().join("evil.pkl")).unwrap(),
        OS_SYSTEM_PICKLE,
        "the input is untouched"
    );
    assert_eq!(
        std::fs::read(fixture.path().join("victim.txt")).unwrap(),
        b"keep me\n"
    );
    assert!(
        std::fs::symlink_metadata(fixture.path().join("link.txt"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    // `-o -` is stdout.
    let output = fixture
        .airlock(&["scan", "evil.pkl", "-o", "-"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout_of(&output).starts_with("dangerous"));
    // A folder scan that includes an earlier report of its own refuses it, unless excluded.
    fixture.write("report.txt", b"old\n");
    let output = fixture
        .airlock(&["scan", ".", "-o", "report.txt"])
        .output()
        .unwrap();
    assert!(stderr_of(&output).contains("scanned inputs"), "{output:?}");
    let output = fixture
        .airlock(&[
            "scan",
            ".",
            "-o",
            "report.txt",
            "--exclude",
            "report.txt",
            "--exclude",
            "fifo",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let names: Vec<String> = std::fs::read_dir(fixture.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".partial"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

// ---- --select / --ignore -------------------------------------------------------------------

#[test]
fn ignore_hides_suspicious_rules_but_never_danger_or_unread_files() {
    let fixture = Fixture::new();
    fixture
        .write("unknown.pkl", b"\x80\x02cmypkg\nModel\n)R.")
        .write("evil.pkl", OS_SYSTEM_PICKLE)
        .write("bad.gguf", &crate::outcome::dangerous_incomplete_gguf());
    let status = |args: &[&str]| fixture.airlock(args).output().unwrap().status.code();
    assert_eq!(status(&["scan", "unknown.pkl"]), Some(1));
    assert_eq!(
        status(&["scan", "unknown.pkl", "--ignore", "PKL002"]),
        Some(0)
    );
    assert_eq!(status(&["scan", "unknown.pkl", "--ignore", "pkl"]), Some(0));
    assert_eq!(
        status(&["scan", "unknown.pkl", "--select", "GEN,ARC"]),
        Some(0)
    );
    assert_eq!(status(&["scan", "evil.pkl", "--ignore", "PKL001"]), Some(1));
    assert_eq!(status(&["scan", "bad.gguf", "--ignore", "GGUF"]), Some(1));
    assert_eq!(status(&["scan", "missing.pkl", "--ignore", "GEN"]), Some(2));
    let typo = fixture
        .airlock(&["scan", "evil.pkl", "--ignore", "PLK"])
        .output()
        .unwrap();
    assert_eq!(typo.status.code(), Some(2));
    assert!(
        stderr_of(&typo).contains("`PLK` matches no rule"),
        "{typo:?}"
    );
    // The JSON report shows what is reported, under the same rule.
    let json = fixture
        .airlock(&["scan", "unknown.pkl", "--ignore", "PKL002", "-f", "json"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["files"][0]["verdict"], "safe");
    assert_eq!(report["summary"]["exit_code"], 0);
}

// ---- SARIF ---------------------------------------------------------------------------------

#[test]
fn sarif_leaves_info_notes_out_and_links_no_placeholder() {
    let fixture = Fixture::new();
    fixture
        .write("notes.txt", b"hello\n")
        .write("evil.pkl", OS_SYSTEM_PICKLE);
    let sarif = |args: &[&str], env: Option<&str>| {
        let mut command = fixture.airlock(args);
        command.env_remove("AIRLOCK_DOCS_URL");
        if let Some(url) = env {
            command.env("AIRLOCK_DOCS_URL", url);
        }
        let output = command.output().unwrap();
        serde_json::from_slice::<Value>(&output.stdout).unwrap()
    };
    let log = sarif(&["scan", "-f", "sarif"], None);
    let text = log.to_string();
    assert!(
        !text.contains("example.invalid/airlock"),
        "the package's placeholder repository leaks"
    );
    let run = &log["runs"][0];
    let ids: Vec<&str> = run["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ruleId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["PKL001"], "no GEN001 note for notes.txt");
    let rule = &run["tool"]["driver"]["rules"][0];
    assert!(rule.get("helpUri").is_none());
    assert!(
        rule["help"]["markdown"]
            .as_str()
            .unwrap()
            .contains("PKL001")
    );
    assert_eq!(run["tool"]["driver"]["version"], env!("CARGO_PKG_VERSION"));

    let with_info = sarif(&["scan", "-f", "sarif", "--include-info"], None);
    assert!(
        with_info["runs"][0]["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["ruleId"] == "GEN001")
    );
    let linked = sarif(
        &["scan", "-f", "sarif"],
        Some("https://airlock.example.org/rules"),
    );
    assert_eq!(
        linked["runs"][0]["tool"]["driver"]["rules"][0]["helpUri"],
        "https://airlock.example.org/rules/PKL001.md"
    );
}

// ---- Every subcommand rates under the same policy ------------------------------------------

#[test]
fn explain_honours_airlock_toml_and_allow() {
    let fixture = Fixture::new();
    fixture.write("models/user.pkl", b"\x80\x02cmypkg\nModel\n)R.");
    let rating = |args: &[&str]| stdout_of(&fixture.airlock(args).output().unwrap());
    assert!(rating(&["explain", "models/user.pkl"]).contains("import mypkg.Model (suspicious)"));
    assert!(
        rating(&["explain", "models/user.pkl", "--allow", "mypkg.Model"])
            .contains("import mypkg.Model (innocuous)")
    );
    fixture.write("airlock.toml", b"allow = [\"mypkg.Model\"]\n");
    let discovered = rating(&["explain", "models/user.pkl"]);
    assert!(
        discovered.contains("import mypkg.Model (innocuous)"),
        "{discovered}"
    );
    assert!(
        discovered.starts_with("models/user.pkl  safe"),
        "{discovered}"
    );
}

#[test]
fn convert_uses_the_discovered_policy() {
    let fixture = Fixture::new();
    let checkpoint = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/convert/params.pt"
    ))
    .unwrap();
    fixture.write("m/pytorch_model.bin", &checkpoint);
    fixture.write("airlock.toml", b"allow = [\"os.system\"]\n");
    let output = fixture
        .airlock(&["convert", "m/pytorch_model.bin", "--check"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        stderr_of(&output).contains("cannot use the policy file"),
        "{output:?}"
    );
    std::fs::remove_file(fixture.path().join("airlock.toml")).unwrap();
    let output = fixture
        .airlock(&[
            "convert",
            "m/pytorch_model.bin",
            "--check",
            "--allow",
            "mypkg.Model",
            "-v",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(
        stderr_of(&output).contains("policy: none found"),
        "{output:?}"
    );
}

// ---- Help ----------------------------------------------------------------------------------

#[test]
fn help_shows_defaults_and_global_flags_read_right_everywhere() {
    let fixture = Fixture::new();
    let help = |sub: &str| stdout_of(&fixture.airlock(&[sub, "--help"]).output().unwrap());
    let scan = help("scan");
    assert!(scan.contains("[default: 300]"), "{scan}");
    for sub in ["explain", "rules", "convert"] {
        let text = help(sub);
        assert!(text.contains("--quiet"), "{sub}: {text}");
        assert!(
            !text.contains("only files that are not safe; no summary"),
            "scan-only wording under {sub}: {text}"
        );
    }
    for sub in ["explain", "convert"] {
        let text = help(sub);
        for flag in ["--policy", "--allow ", "--allow-llamafile"] {
            assert!(text.contains(flag), "{sub} lacks {flag}: {text}");
        }
    }
}

#[test]
fn explain_reads_standard_input() {
    let fixture = Fixture::new();
    let output = with_stdin(&fixture, &["explain", "-"], OS_SYSTEM_PICKLE);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let text = stdout_of(&output);
    assert!(text.starts_with("-  dangerous"), "{text}");
    assert!(text.contains("import os.system (dangerous)"), "{text}");
}
