//! Integration tests of the `airlock` binary: one test binary, one module per subcommand.
//!
//! Inputs are built in a temporary folder by each test. The "malicious" pickle is a handful
//! of bytes written by the test and only ever read by airlock; nothing here unpickles it.

mod convert;
mod explain;
mod outcome;
mod rules;
mod safety;
mod sarif;
mod scan;

use std::path::Path;
use std::process::Command;

use insta_cmd::get_cargo_bin;

/// An inert pickle of an empty `collections.OrderedDict` (protocol 2).
pub const ORDERED_DICT_PICKLE: &[u8] = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01.";

/// A protocol-0 pickle that would call `os.system("echo hi")` if unpickled. Never unpickled.
pub const OS_SYSTEM_PICKLE: &[u8] = b"cos\nsystem\n(S'echo hi'\ntR.";

/// A temporary folder of inputs and a way to run `airlock` inside it.
pub struct Fixture {
    dir: tempfile::TempDir,
}

impl Default for Fixture {
    fn default() -> Fixture {
        Fixture::new()
    }
}

impl Fixture {
    pub fn new() -> Fixture {
        Fixture {
            dir: tempfile::tempdir().expect("temporary folder"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `bytes` to `name` (creating folders), relative to the fixture.
    pub fn write(&self, name: &str, bytes: &[u8]) -> &Fixture {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create folder");
        }
        std::fs::write(path, bytes).expect("write fixture");
        self
    }

    /// The four small inputs most tests use.
    pub fn with_samples(self) -> Fixture {
        self.write("notes.txt", b"hello\n")
            .write("empty.bin", b"")
            .write("ordered_dict.pkl", ORDERED_DICT_PICKLE)
            .write("os_system.pkl", OS_SYSTEM_PICKLE);
        self
    }

    /// `airlock ARGS...` run inside the fixture, colour off, no progress bar.
    pub fn airlock(&self, args: &[&str]) -> Command {
        let mut command = Command::new(get_cargo_bin("airlock"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env_remove("CLICOLOR_FORCE");
        command
    }
}

/// A stored (uncompressed) zip of `members`, as `torch.save` writes them.
pub fn stored_zip(members: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in members {
        zip.start_file(*name, stored).expect("zip member");
        zip.write_all(bytes).expect("zip data");
    }
    zip.finish().expect("zip").into_inner()
}

/// Filters that make snapshots stable: timings, the tool version, the temporary folder.
pub fn stable_filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"\d+ ms\b", "[TIME]"),
        (r"\d+\.\d+ s\b", "[TIME]"),
        (
            r#""elapsed_ms": [0-9.eE+-]+"#,
            r#""elapsed_ms": "[ELAPSED]""#,
        ),
        (r#""version": "\d+\.\d+\.\d+""#, r#""version": "[VERSION]""#),
        (
            r#""semanticVersion": "\d+\.\d+\.\d+""#,
            r#""semanticVersion": "[VERSION]""#,
        ),
        // No filter hides temporary file names: none may appear in any message.
        (r"\(os error \d+\)", "(os error [N])"),
    ]
}

/// Runs `body` with [`stable_filters`] applied to every snapshot in it.
#[macro_export]
macro_rules! with_filters {
    ($body:block) => {
        insta::with_settings!({ filters => $crate::stable_filters() }, $body)
    };
}
