//! Keras config analysis (JSON walk, base64 and marshal decoding of Lambda payloads). Any bytes must produce a report without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let scanner = airlock::Scanner::default();
    let report = scanner.scan_with("config.json", data, |ctx, d| {
        airlock::formats::keras::scan_keras_config(ctx, d);
        airlock::format::Format::KerasConfig
    });
    common::check_report(&report);
});
