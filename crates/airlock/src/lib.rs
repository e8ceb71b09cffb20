//! Airlock's core: parses model files without executing them and decides whether they are
//! safe to load.
//!
//! The crate does no network I/O, no async and no terminal output. Adapters (the `airlock`
//! command, the service, the Python bindings) call [`Scanner`] and render [`FileReport`]s.
//!
//! ```
//! use airlock::{Scanner, Verdict};
//! let scanner = Scanner::default();
//! let report = scanner.scan_bytes("hello.txt", b"hello world\n");
//! assert_eq!(report.verdict, Verdict::Safe);
//! assert_eq!(report.format, "text");
//! ```
//!
//! Where things live:
//! - [`ctx`]: the per-file scan context every format and container reports into.
//! - [`pickle`]: the pickle engine (opcode reader, symbolic machine, disassembler).
//! - [`policy`]: allowlist profiles and the denylist that labels what they reject.
//! - [`formats`]: routing by content, and one module per model format.
//! - [`checks`]: the stage of checks over every file, after parsing.
//! - [`containers`]: zip, tar, 7z and compression readers.
//! - [`rules`]: every finding's stable code; [`report`]: the report data model.
//! - [`outcome`]: the one rule from verdicts to pass/fail/unscannable and the exit status.

pub mod bytes;
pub mod checks;
pub mod containers;
pub mod convert;
pub mod ctx;
pub mod format;
pub mod formats;
pub(crate) mod hash;
pub mod limits;
pub mod outcome;
pub mod pickle;
pub mod policy;
pub mod report;
pub mod rules;
pub mod scan;
pub mod source;
#[cfg(test)]
pub(crate) mod testkit;
pub mod text;

pub use ctx::Ctx;
pub use limits::Limits;
pub use outcome::{FailOn, Outcome};
pub use policy::Policy;
pub use report::{FileReport, Finding, Import, Rating, Verdict};
pub use rules::{Rule, Severity};
pub use scan::Scanner;
