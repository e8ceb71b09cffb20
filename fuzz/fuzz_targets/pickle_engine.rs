//! Pickle engine target: any bytes run through the full symbolic machine, the fast pass and
//! the disassembler without panicking, and a file is never reported safe when the engine
//! stopped at a limit.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let scanner = airlock::Scanner::default();
    let report = scanner.scan_with("fuzz.pkl", data, airlock::formats::pickle_stream::scan_pickles);
    if report.findings.iter().any(|f| f.rule == airlock::Rule::LimitReached) {
        assert_ne!(report.verdict, airlock::Verdict::Safe);
    }
    let limits = airlock::pickle::lite::LiteLimits {
        max_opcodes: 1_000_000,
        max_stack_depth: 100_000,
        max_memo_entries: 1_000_000,
    };
    let _ = airlock::pickle::lite::run(data, 0, limits, scanner.policy());
    let _ = airlock::pickle::disassemble(data);
});
