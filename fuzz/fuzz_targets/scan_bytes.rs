//! Whole-scanner target: any bytes, routed by content, must produce a report without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let scanner = airlock::Scanner::default();
    let _ = scanner.scan_bytes("fuzz", data);
});
