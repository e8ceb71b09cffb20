//! Embeds the rule pages (`docs/rules/<CODE>.md`) into the binary, so `airlock rules CODE`
//! works from an installed binary with no docs folder beside it.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let docs = manifest.join("../../docs/rules");
    println!("cargo:rerun-if-changed={}", docs.display());

    let mut pages: Vec<(String, PathBuf)> = std::fs::read_dir(&docs)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .filter_map(|path| {
            let stem = path.file_stem()?.to_str()?.to_string();
            (stem != "README").then_some((stem, path))
        })
        .collect();
    pages.sort();

    let mut table = String::from("/// `(code, page)` for every file in docs/rules.\n");
    table.push_str("pub static RULE_PAGES: &[(&str, &str)] = &[\n");
    for (code, path) in &pages {
        let path = path.canonicalize().unwrap_or_else(|_| path.clone());
        writeln!(
            table,
            "    ({code:?}, include_str!({:?})),",
            path.display().to_string()
        )
        .expect("writing to a String");
    }
    table.push_str("];\n");
    let out =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo")).join("rule_pages.rs");
    std::fs::write(out, table).expect("cannot write rule_pages.rs");
}
