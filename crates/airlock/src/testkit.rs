//! Helpers for unit tests: the committed fixtures under `tests/fixtures/`, found from the
//! crate's manifest directory (so a test runs from any working directory).

use std::path::PathBuf;

/// The path of fixture `name` in `tests/fixtures/<dir>/`.
pub fn fixture_path(dir: &str, name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(dir)
        .join(name)
}

/// The bytes of fixture `name` in `tests/fixtures/<dir>/`; panics (failing the test) when it
/// cannot be read.
pub fn fixture(dir: &str, name: &str) -> Vec<u8> {
    let path = fixture_path(dir, name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}
