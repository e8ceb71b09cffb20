//! SavedModel and keras_metadata.pb protobuf walks, and SavedModel identification. Any bytes must produce a report without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let scanner = airlock::Scanner::default();
    let report = scanner.scan_with("saved_model.pb", data, |ctx, d| {
        let _ = airlock::formats::savedmodel::is_saved_model(d);
        airlock::formats::savedmodel::scan_keras_metadata(ctx, d);
        airlock::formats::savedmodel::scan_saved_model(ctx, d)
    });
    common::check_report(&report);
});
