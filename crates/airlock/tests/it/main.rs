//! Airlock's integration tests: one binary (to keep link time low), one module per fixture set.
//!
//! - [`oracle`]: the differential oracle — thousands of hand-written pickles that do the same
//!   thing written in different ways, each of which must get the same verdict.
//! - [`benign`]: files saved by real torch, NumPy, joblib and scikit-learn, all of which must be
//!   reported safe with the globals those libraries need.
//! - [`benign_gadgets`]: files in which real libraries call a resolver gadget (`getattr`, dill's
//!   `_load_type`, ...) with constants: resolved, safe; dangerous once a constant is changed.
//! - [`containers_truncation`]: every container cut at every offset is never safe; the bomb
//!   classes stay within their limits.
//! - [`evasions`]: issue 21's evasion classes (names, code-executing callables, templates, zip
//!   methods, NumPy headers, TorchScript and dill helpers, Keras, SavedModel), all dangerous.
//! - [`truncation`]: every format's valid files cut at every offset, none of which may be
//!   reported safe.
//!
//! Fixtures live in `tests/fixtures/` at the repository root and are made by the scripts in
//! `scripts/fixtures/` (see the README there).

mod benign;
mod benign_gadgets;
mod benign_libs;
mod containers_truncation;
mod evasions;
mod oracle;
mod torchscript;
mod truncation;
mod zip_methods;

use std::path::PathBuf;

/// `tests/fixtures/<name>` at the repository root.
pub fn fixtures(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

/// The rule codes of a report's findings, for failure messages.
pub fn finding_codes(report: &airlock::FileReport) -> String {
    let codes: Vec<&str> = report.findings.iter().map(|f| f.rule.code()).collect();
    if codes.is_empty() {
        "no findings".to_string()
    } else {
        codes.join(",")
    }
}
