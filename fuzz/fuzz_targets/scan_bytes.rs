//! Whole-scanner target: any bytes, routed by content, must produce a report without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let scanner = airlock::Scanner::default();
    let report = scanner.scan_bytes("fuzz", data);
    common::bad_input(common::mode_of(data), data, &report, |bytes| {
        scanner.scan_bytes("fuzz", bytes)
    });
});
