//! Content tests without magic (CoreML protobuf shape, Flax msgpack shape), the TorchScript
//! code search and verifier, and Keras metadata recognition. Any bytes must produce an answer without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let _ = airlock::formats::coreml::identify(data);
    let _ = airlock::formats::flax::identify(data);
    let _ = airlock::formats::identify::identify(data);
    let _ = airlock::formats::torchscript::code_hits(data);
    // The allowlist verifier (PT008) on the same bytes as a code file.
    let mut verifier = airlock::formats::torchscript::Verifier::default();
    verifier.add_file("m/code/__torch__/m.py", "__torch__.m", data);
    let (issues, count) = verifier.finish();
    assert!(issues.len() <= airlock::formats::torchscript::MAX_ISSUES && issues.len() <= count);
    let _ = airlock::formats::savedmodel::is_keras_metadata(data);
    // The name route and the layout routes, through the scanner.
    let scanner = airlock::Scanner::default();
    common::check_report(&scanner.scan_bytes("keras_metadata.pb", data));
});
