//! GGUF parser and chat-template analysis: any bytes after the `GGUF` magic must be parsed
//! without panicking or allocating by declared counts; any text must be analysed.
#![no_main]
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let mut file = b"GGUF".to_vec();
    file.extend_from_slice(data);
    let _ = airlock::formats::gguf::parse(&file);
    common::check_report(&airlock::Scanner::default().scan_bytes("fuzz.gguf", &file));
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = airlock::formats::gguf::template::analyse(text);
    }
});
