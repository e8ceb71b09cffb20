//! ONNX ModelProto walk, external-data references and identification. Any bytes must produce a report without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let scanner = airlock::Scanner::default();
    let _ = airlock::formats::onnx::external_data_refs(data);
    let _ = airlock::formats::onnx::is_onnx_model(data);
    common::check_report(&scanner.scan_with("model.onnx", data, airlock::formats::onnx::scan_onnx));
});
