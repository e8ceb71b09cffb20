//! Sparse zip image target, differential: whenever a sparse image of the input can be built
//! (the scanner then reads only the prefetched ranges of a PyTorch zip), scanning it must give
//! exactly the report that scanning the whole file gives. A difference would let a file look
//! different to the scanner depending on its size.
#![no_main]
use std::io::Write;

use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let mut zip = b"PK\x03\x04".to_vec();
    zip.extend_from_slice(data);
    let Ok(mut file) = tempfile::tempfile() else {
        return;
    };
    if file.write_all(&zip).is_err() {
        return;
    }
    let Some(image) =
        airlock::containers::zip_image::torch_zip_image(&file, zip.len() as u64, Some(2))
    else {
        return;
    };
    let scanner = airlock::Scanner::default();
    let sparse = scanner.scan_zip_image("fuzz.pt", &image);
    let whole = scanner.scan_bytes("fuzz.pt", &zip);
    common::check_report(&sparse);
    common::check_report(&whole);
    assert_eq!(sparse.verdict, whole.verdict);
    assert_eq!(sparse.format, whole.format);
    assert_eq!(sparse.imports, whole.imports);
    assert_eq!(sparse.findings, whole.findings);
    assert_eq!(sparse.members, whole.members);
});
