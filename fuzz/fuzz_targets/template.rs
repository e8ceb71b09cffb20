//! Chat-template analysis: any text must be parsed and abstractly evaluated without
//! panicking, in bounded time and memory; a template that does not parse or exhausts the
//! step budget is reported, never clean.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let a = airlock::formats::gguf::template::analyse(text);
    if a.parse_error.is_some() {
        assert!(!a.is_clean());
    }
});
