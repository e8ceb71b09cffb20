//! Pickle engine target: any bytes run through the full symbolic machine, the fast pass and
//! the disassembler without panicking, and a file is never reported safe when the engine
//! stopped at a limit. Where the fast pass reads a pickle to its end, it must agree with the
//! full machine on where the pickle ends, whether it stopped, and the storage references its
//! persistent ids make (torch's `data.pkl` takes the fast pass; the converter trusts the
//! machine). The fast pass's structure-only decoder reads every instruction exactly as the
//! full decoder does: same opcode and end, or the same error.
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
    let fast = airlock::pickle::lite::run(data, 0, limits, scanner.policy());
    if let airlock::pickle::lite::LiteResult::Done(fast) = fast
        && !fast.limited
    {
        let mut full = None;
        scanner.scan_with("fuzz.pkl", data, |ctx, data| {
            let outcome = airlock::pickle::machine::run_full(ctx, data, 0);
            full = Some((
                outcome.end,
                outcome.stopped,
                outcome.limited,
                airlock::formats::torch::storage_refs(&outcome),
            ));
            "pickle"
        });
        let (end, stopped, limited, storages) = full.expect("the machine ran");
        if !limited {
            assert_eq!(fast.end, end, "end offset");
            assert_eq!(fast.stopped, stopped, "stopped");
            assert_eq!(fast.storages, storages, "storage references");
        }
    }
    let _ = airlock::pickle::disassemble(data);

    let mut raw = airlock::pickle::reader::Reader::new(data, 0);
    let mut full = airlock::pickle::reader::Reader::new(data, 0);
    for _ in 0..100_000 {
        match (raw.next_raw(), full.next_instr()) {
            (Ok(a), Ok(b)) => assert_eq!((a.op, a.offset, a.end), (b.op, b.offset, b.end)),
            (Err(a), Err(b)) => {
                assert_eq!(a, b, "decode error");
                break;
            }
            (a, b) => panic!("next_raw gave {a:?}, next_instr {b:?}"),
        }
    }
});
