//! Pickle engine target: any bytes run through the pickle stream scan, the full symbolic
//! machine, the fast pass and the disassembler without panicking, and every report passes
//! the verdict invariants (`common::check_report`: incomplete ⇒ never safe, dangerous ⇒
//! dangerous).
//!
//! Differentials:
//! - fast pass against full machine, on whole reports (verdict, imports, findings): the input
//!   is run behind a 64 KiB BINBYTES+POP prefix, so that the stream is large enough for the
//!   fast pass to start (inputs are capped at 64 KiB, where it starts), and scanned twice,
//!   with `scan_pickles` (the fast pass where it applies) and `scan_pickles_full_machine`;
//! - where the fast pass reads the bare input to its end, it agrees with the full machine on
//!   where the pickle ends, whether it stopped, and the storage references its persistent ids
//!   make (torch's `data.pkl` takes the fast pass; the converter trusts the machine);
//! - the fast pass's structure-only decoder reads every instruction exactly as the full
//!   decoder does: same opcode and end, or the same error.
//!
//! Bad-input modes (first byte % 4, see `common`): truncation (every prefix cut inside a
//! pickle, rather than at the end of one, is never safe: the loader raises there),
//! gzip/zip wrappers, and concatenation (a dangerous stream repeated stays dangerous).
#![no_main]
use airlock::formats::pickle_stream::{scan_pickles, scan_pickles_full_machine};
use airlock::{FileReport, Scanner, Verdict};
use libfuzzer_sys::fuzz_target;

mod common;

/// A stack-neutral 64 KiB prefix: BINBYTES of 65,536 bytes, then POP. Two opcodes, so it
/// costs nothing to scan, and it makes the pickle long enough for the fast pass.
fn fast_pass_prefix() -> Vec<u8> {
    let mut prefix = vec![b'B'];
    prefix.extend_from_slice(&65_536u32.to_le_bytes());
    prefix.resize(prefix.len() + 65_536, b'x');
    prefix.push(b'0');
    prefix
}

/// What the fast pass and the full machine must agree on.
#[allow(clippy::type_complexity)]
fn comparable(
    r: &FileReport,
) -> (
    Verdict,
    Vec<(String, u64, airlock::Rating)>,
    Vec<(
        airlock::Rule,
        airlock::Severity,
        Option<u64>,
        Option<String>,
    )>,
) {
    let imports = r
        .imports
        .iter()
        .map(|i| (i.qualified(), i.offset, i.rating))
        .collect();
    let findings = r
        .findings
        .iter()
        .map(|f| (f.rule, f.severity, f.offset, f.member.clone()))
        .collect();
    (r.verdict, imports, findings)
}

/// The offsets just past each STOP of the stream the full machine reads from the start.
fn pickle_ends(scanner: &Scanner, data: &[u8]) -> Vec<usize> {
    let mut ends = Vec::new();
    scanner.scan_with("fuzz.pkl", data, |ctx, data| {
        let mut start = 0;
        while start < data.len() && ends.len() < 1_000 {
            let outcome = airlock::pickle::machine::run_full(ctx, data, start);
            if !outcome.stopped {
                break;
            }
            ends.push(outcome.end);
            start = outcome.end;
        }
        airlock::format::Format::Pickle
    });
    ends
}

fuzz_target!(|data: &[u8]| {
    let scanner = Scanner::default();
    let scan = |bytes: &[u8]| scanner.scan_with("fuzz.pkl", bytes, scan_pickles);
    let report = scan(data);
    common::check_report(&report);

    // Fast pass against full machine, on inputs large enough for the fast pass.
    let padded = [fast_pass_prefix(), data.to_vec()].concat();
    let fast = scanner.scan_with("fuzz.pkl", &padded, scan_pickles);
    let full = scanner.scan_with("fuzz.pkl", &padded, scan_pickles_full_machine);
    common::check_report(&fast);
    common::check_report(&full);
    assert_eq!(
        comparable(&fast),
        comparable(&full),
        "fast pass (left) and full machine (right)"
    );

    // Bad-input modes. Wrapped bytes are a gzip stream or a zip, not a pickle: the bomb mode
    // routes by content, bare and wrapped, as a scan of the file would.
    let mode = common::mode_of(data);
    let prefixes = if mode == common::Mode::Bomb {
        let routed = |bytes: &[u8]| scanner.scan_bytes("fuzz", bytes);
        common::bad_input(mode, data, &routed(data), routed)
    } else {
        common::bad_input(mode, data, &report, scan)
    };
    if !prefixes.is_empty() {
        let ends = pickle_ends(&scanner, data);
        for (cut, prefix) in &prefixes {
            // A cut at the end of a pickle leaves whole pickles (a shorter stream the loader
            // reads); anywhere else the loader raises on the cut pickle.
            if !ends.contains(cut) {
                assert_ne!(
                    prefix.verdict,
                    Verdict::Safe,
                    "cut at {cut} (pickle ends {ends:?}): safe"
                );
            }
        }
    }
    if common::mode_of(data) == common::Mode::Concatenate && report.verdict == Verdict::Dangerous {
        let repeated = scan(&common::concatenation(data));
        assert_eq!(
            repeated.verdict,
            Verdict::Dangerous,
            "a dangerous stream repeated"
        );
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
            airlock::format::Format::Pickle
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
