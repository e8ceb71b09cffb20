//! safetensors header checks: any bytes (with and without a plausible length prefix) must be
//! checked without panicking, and the scanner must report them.
#![no_main]
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let _ = airlock::formats::safetensors::check_header(data);
    // Also as a header behind a correct length prefix, so the JSON checks get exercised.
    let mut file = (data.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(data);
    let _ = airlock::formats::safetensors::check_header(&file);
    common::check_report(&airlock::Scanner::default().scan_bytes("fuzz.safetensors", &file));
});
