//! Zip reader target: any bytes parse into an archive and scan without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let archive = airlock::containers::zip::ZipArchive::parse(data);
    let _ = airlock::containers::zip::zip_flavour(&archive);
    let mut zip = b"PK\x03\x04".to_vec();
    zip.extend_from_slice(data);
    let scanner = airlock::Scanner::default();
    let report = scanner.scan_bytes("fuzz.zip", &zip);
    common::bad_input(common::mode_of(data), &zip, &report, |bytes| {
        scanner.scan_bytes("fuzz.zip", bytes)
    });
});
