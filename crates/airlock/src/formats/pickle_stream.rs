//! Files that a loader would unpickle directly: plain pickles, several pickles in a row,
//! legacy PyTorch files (five pickles followed by raw storage bytes), joblib files, and
//! anything unrecognised (torch.load unpickles whatever is not a zip).
//!
//! Every pickle in the stream is scanned, each with a fresh memo, as successive
//! `pickle.load` calls on one file would read them.

use crate::ctx::Ctx;
use crate::format::Format;
use crate::pickle::machine::{self, Outcome};
use crate::report::Finding;
use crate::rules::Rule;

use super::torch;

/// Scans `data` as a stream of pickles; when it is not a pickle at all, reports what it is.
pub fn scan_or_classify(ctx: &mut Ctx, data: &[u8]) -> Format {
    scan_stream(ctx, data, false, Pass::FastWhereItApplies)
}

/// Scans `data` as pickle bytes that a loader is known to unpickle (a NumPy object array's
/// data, a nested pickle): it is reported as a pickle even when malformed.
pub fn scan_pickles(ctx: &mut Ctx, data: &[u8]) -> Format {
    scan_stream(ctx, data, true, Pass::FastWhereItApplies)
}

/// [`scan_pickles`] with the full machine for every pickle, never the fast pass: the other
/// side of the fast-versus-full comparisons (tests, the `pickle_engine` fuzz target), whose
/// reports must be the same.
pub fn scan_pickles_full_machine(ctx: &mut Ctx, data: &[u8]) -> Format {
    scan_stream(ctx, data, true, Pass::FullOnly)
}

/// Which engine reads each pickle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// [`machine::run`]: the fast pass for large data-only pickles, else the full machine.
    FastWhereItApplies,
    /// [`machine::run_full`] for every pickle.
    FullOnly,
}

impl Pass {
    fn run<'a>(self, ctx: &mut Ctx, data: &'a [u8], start: usize) -> Outcome<'a> {
        match self {
            Pass::FastWhereItApplies => machine::run(ctx, data, start),
            Pass::FullOnly => machine::run_full(ctx, data, start),
        }
    }
}

fn scan_stream(ctx: &mut Ctx, data: &[u8], known_pickle: bool, pass: Pass) -> Format {
    let probe = ctx.checkpoint();
    let mut first = pass.run(ctx, data, 0);
    if first.fast_pass && first.stopped && first.end < data.len() {
        // More bytes follow: torch's legacy loader compares this pickle's *value* with its
        // magic number, which the fast pass does not keep. Read it again with the full machine.
        // (Not when the pass stopped early: no pickle follows one that did not end.)
        ctx.rollback(probe);
        first = machine::run_full(ctx, data, 0);
    }
    if !known_pickle && loader_runs_nothing(data, &first) {
        // The loader fails before importing or calling anything: loading it runs nothing.
        // Report what the bytes are instead (see [`loader_runs_nothing`]).
        ctx.rollback(probe);
        let kind = super::classify_non_model(data);
        let reason = match &first.error {
            Some((offset, message)) => {
                format!("{kind} data; a pickle loader fails at offset {offset}: {message}")
            }
            None => format!("{kind} data"),
        };
        ctx.report(Finding::new(Rule::NotAModel, reason));
        return kind;
    }

    let mut stats = StreamStats::default();
    let legacy_magic = torch::is_legacy_magic(&first);
    stats.add(&first);
    let mut outcomes_needed_for_legacy: Vec<Outcome> = Vec::new();
    let mut current = first;
    loop {
        report_failure(ctx, &current);
        if !current.stopped {
            break;
        }
        let next_start = current.end;
        if legacy_magic {
            outcomes_needed_for_legacy.push(current);
            if outcomes_needed_for_legacy.len() == torch::LEGACY_PICKLES {
                torch::check_legacy_storages(ctx, data, next_start, &outcomes_needed_for_legacy);
                break;
            }
        } else {
            check_dynamic_magic(ctx, data, &current, stats.pickles);
        }
        if next_start >= data.len() {
            break;
        }
        // The machine checks the time every few thousand opcodes of one pickle; a stream of
        // many small pickles never reaches that count, so the stream checks it per pickle.
        if ctx.check_timeout() {
            break;
        }
        let probe = ctx.checkpoint();
        let next = if outcomes_needed_for_legacy.len() == torch::LEGACY_PICKLES - 1 {
            // A legacy file's storage keys: their values are needed (the fast pass keeps
            // none, and takes any list of 64 KiB or more).
            machine::run_full(ctx, data, next_start)
        } else {
            pass.run(ctx, data, next_start)
        };
        if next.is_not_a_pickle() {
            ctx.rollback(probe);
            let trailing = data.len() - next_start;
            ctx.report(
                Finding::new(
                    Rule::DataAfterStop,
                    format!("{trailing} bytes after the last STOP are not a pickle"),
                )
                .at(next_start as u64),
            );
            break;
        }
        stats.add(&next);
        current = next;
    }
    if legacy_magic && outcomes_needed_for_legacy.len() < torch::LEGACY_PICKLES {
        torch::report_short_legacy_header(ctx, outcomes_needed_for_legacy.len());
    }
    ctx.note(stats.describe());
    if legacy_magic {
        Format::PytorchLegacy
    } else if stats.joblib {
        Format::Joblib
    } else {
        Format::Pickle
    }
}

/// True when `pickle.load` on these bytes would raise before running anything the bytes
/// choose, so they are not a pickle to any loader (msgpack maps, raw weights that happen to
/// start with `0x80`). The rule, from CPython's C unpickler (`_pickle.c`):
/// - a run that reaches STOP, hits a scanning limit, or makes a call is a pickle;
/// - so is one that imports by name (GLOBAL, STACK_GLOBAL, INST) before it fails;
/// - EXT1/EXT2/EXT4 (`0x82`-`0x84`, every msgpack map of 2-4 entries) look their code up in
///   `copyreg._inverted_registry`, which CPython ships empty and no library we know fills:
///   `load_extension` raises "unregistered extension code" before importing. Even where a
///   program registered codes, the lookup reaches only names that program chose, never one
///   the file spells. So a run that fails with EXT lookups as its only imports, and no call,
///   runs nothing the file chose (a pickle that completes or calls keeps its PKL015);
/// - PROTO (`0x80`) with a protocol above 5 raises "unsupported pickle protocol" at once,
///   before any other opcode, and a lone `0x80` (an empty msgpack map) fails reading its
///   argument: not pickles. A stream whose PROTO the unpickler *accepts* (0-5) has got past
///   its first opcode, and stays a pickle whatever follows (PKL013 where it fails): from there
///   on, whether CPython would reach an import is the machine's reading of the rest, and a
///   disagreement between the two (a name CPython imports before failing, a cut that hides
///   the rest) must not turn into "not a model". Raw weights whose first two bytes happen to
///   be `0x80` and `0x00`-`0x05` are flagged for that reason; any other second byte is not.
pub(crate) fn loader_runs_nothing(data: &[u8], outcome: &Outcome) -> bool {
    if outcome.stopped || outcome.limited || outcome.calls > 0 {
        return false;
    }
    let Some((failed_at, _)) = &outcome.error else {
        return false;
    };
    if declares_supported_protocol(data, outcome.start) {
        return false;
    }
    outcome.imports == 0 || !imports_by_name(data, outcome.start, *failed_at)
}

/// The pickle at `start` opens with PROTO and a protocol the unpickler accepts.
fn declares_supported_protocol(data: &[u8], start: usize) -> bool {
    matches!(data.get(start..start.saturating_add(2)), Some([0x80, p]) if *p <= crate::pickle::opcodes::HIGHEST_PROTOCOL)
}

/// True when an instruction before `end` imports by name (GLOBAL, STACK_GLOBAL, INST).
fn imports_by_name(data: &[u8], start: usize, end: u64) -> bool {
    use crate::pickle::opcodes::Opcode as O;
    let mut reader = crate::pickle::reader::Reader::new(data, start);
    while (reader.position() as u64) < end {
        match reader.next_raw() {
            Ok(instr) if matches!(instr.op, O::GLOBAL | O::STACK_GLOBAL | O::INST) => return true,
            Ok(_) => {}
            // The machine read these bytes; a decode failure here would be a disagreement,
            // so fail closed.
            Err(_) => return true,
        }
    }
    false
}

/// A pickle that stopped early is a finding: the loader raises there, after running
/// everything before it.
pub(crate) fn report_failure(ctx: &mut Ctx, outcome: &Outcome) {
    if let Some((offset, message)) = &outcome.error {
        ctx.report(
            Finding::new(
                Rule::MalformedPickle,
                format!("the loader raises here: {message}; everything before this point would already have run"),
            )
            .at(*offset),
        );
    }
}

/// torch's legacy loader compares the *value* of the first pickle with its magic number: a
/// first pickle that computes it (a call) followed by more pickles is the dynamic-magic trick.
fn check_dynamic_magic(ctx: &mut Ctx, data: &[u8], first: &Outcome, pickles_before: usize) {
    if pickles_before != 1 || first.end >= data.len() {
        return;
    }
    let computed = first
        .root
        .is_some_and(|root| first.arena.call_of(root).is_some());
    if computed {
        ctx.report(
            Finding::new(
                Rule::TorchLegacyMagic,
                "the first pickle computes its value with a call and more pickles follow: torch's legacy loader runs it before checking the magic number",
            )
            .at(first.start as u64),
        );
    }
}

#[derive(Default)]
struct StreamStats {
    pickles: usize,
    opcodes: u64,
    imports: u32,
    calls: u32,
    joblib: bool,
    protocol: u8,
}

impl StreamStats {
    fn add(&mut self, outcome: &Outcome) {
        self.pickles += 1;
        self.opcodes += outcome.opcodes;
        self.imports += outcome.imports;
        self.calls += outcome.calls;
        self.protocol = self.protocol.max(outcome.protocol);
        self.joblib |= outcome.joblib_arrays > 0;
    }

    fn describe(&self) -> String {
        let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
        format!(
            "{}, protocol {}, {}, {}",
            plural(self.pickles, "pickle"),
            self.protocol,
            plural(self.opcodes as usize, "opcode"),
            plural(self.imports as usize, "import"),
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::{Scanner, Verdict};

    fn scan(data: &[u8]) -> crate::FileReport {
        Scanner::default().scan_bytes("t", data)
    }

    #[test]
    fn text_is_not_a_pickle() {
        for text in [
            &b"hello world\n"[..],
            b"# README\n",
            b"{\"a\": 1}",
            b"import torch\n",
        ] {
            let r = scan(text);
            assert_eq!(
                r.verdict,
                Verdict::Safe,
                "{:?}",
                String::from_utf8_lossy(text)
            );
            assert_eq!(r.format, "text");
            assert!(r.imports.is_empty());
        }
    }

    /// Bytes starting with 0x80-0x84 that `pickle.load` rejects before importing anything:
    /// msgpack maps (as `msgpack.packb` writes them) and raw weights. They were reported as
    /// malformed pickles (PKL013) or extension codes (PKL015).
    #[test]
    fn bytes_the_unpickler_rejects_at_once_are_not_pickles() {
        let cases: &[(&str, &[u8])] = &[
            ("msgpack {}", b"\x80"),
            ("raw bf16 weights", &[0x80, 0xbf, 0x00, 0x40]),
            ("PROTO 6: unsupported protocol", b"\x80\x06K\x01."),
            ("PROTO 0xff then GLOBAL", b"\x80\xffcos\nsystem\n."),
            (
                "msgpack {'a': 1}: NEWOBJ on an empty stack",
                b"\x81\xa1a\x01",
            ),
            (
                "msgpack {'ab': 1, 'c': 2}: EXT1 code 162",
                b"\x82\xa2ab\x01\xa1c\x02",
            ),
            ("msgpack 3 keys: EXT2", b"\x83\xa1a\x01\xa1b\x02\xa1c\x03"),
            (
                "msgpack 4 keys: EXT4",
                b"\x84\xa1a\x01\xa1b\x02\xa1c\x03\xa1d\x04",
            ),
            (
                "raw float32 weights",
                &[0x80, 0x3f, 0x00, 0x00, 0x00, 0x40, 0xcd, 0xcc],
            ),
        ];
        for (what, data) in cases {
            let r = scan(data);
            assert_eq!(r.verdict, Verdict::Safe, "{what}: {:?}", r.findings);
            assert!(
                matches!(r.format.as_str(), "binary" | "msgpack"),
                "{what}: {}",
                r.format
            );
            assert!(r.imports.is_empty(), "{what}");
        }
    }

    /// What could import stays a pickle: a name imported before the failure, a call, a
    /// supported protocol followed by anything, an EXT in a pickle that completes.
    #[test]
    fn what_could_run_anything_stays_a_pickle() {
        let cases: &[(&str, &[u8], Verdict)] = &[
            (
                "GLOBAL then junk",
                b"\x80\x02cos\nsystem\n\xff",
                Verdict::Dangerous,
            ),
            ("EXT1 then STOP", b"\x80\x02\x82\x01.", Verdict::Suspicious),
            ("EXT1 then REDUCE", b"\x82\x01)R\xff", Verdict::Suspicious),
            (
                "PROTO 2, cut short",
                b"\x80\x02}q\x00(K\x01",
                Verdict::Suspicious,
            ),
            ("PROTO 4, nothing else", b"\x80\x04", Verdict::Suspicious),
            (
                "PROTO 2, stack underflow",
                b"\x80\x02\x85.",
                Verdict::Suspicious,
            ),
        ];
        for (what, data, verdict) in cases {
            let r = scan(data);
            assert_eq!(r.format, "pickle", "{what}: {:?}", r.findings);
            assert!(
                r.verdict >= *verdict,
                "{what}: {:?} {:?}",
                r.verdict,
                r.findings
            );
        }
    }

    #[test]
    fn os_system_is_dangerous_in_every_protocol() {
        let cases: &[&[u8]] = &[
            b"cos\nsystem\n(S'ls'\ntR.",
            b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00ls\x85R.",
            b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x02ls\x85R.",
        ];
        for case in cases {
            let r = scan(case);
            assert_eq!(r.verdict, Verdict::Dangerous, "{case:?}");
            assert_eq!(r.imports.len(), 1);
            assert_eq!(r.format, "pickle");
        }
    }

    #[test]
    fn imports_before_a_parse_error_are_kept() {
        // GLOBAL builtins exec, then a BINUNICODE whose length runs past the end.
        let r = scan(b"cbuiltins\nexec\n(X\xff\xff\x00\x00abc");
        assert_eq!(r.verdict, Verdict::Dangerous);
        assert!(
            r.findings
                .iter()
                .any(|f| f.rule == crate::Rule::MalformedPickle)
        );
    }

    #[test]
    fn every_stacked_pickle_is_scanned() {
        let r = scan(b"K\x01.cos\nsystem\n.");
        assert_eq!(r.verdict, Verdict::Dangerous);
        assert!(r.summary.contains("2 pickles"), "{}", r.summary);
    }

    #[test]
    fn trailing_garbage_is_reported() {
        let r = scan(b"\x80\x02K\x01.\xff\xff");
        assert!(
            r.findings
                .iter()
                .any(|f| f.rule == crate::Rule::DataAfterStop)
        );
        assert_eq!(r.verdict, Verdict::Suspicious);
    }

    /// `bytes` worth of copies of `one` (a whole pickle each).
    fn stream_of(one: &[u8], bytes: usize) -> Vec<u8> {
        one.repeat(bytes / one.len())
    }

    /// A pickle of a small dict written at protocol 4 with memo entries (as `pickle.dumps`
    /// writes `{"a": [0, 1, ..., 99], "b": "x" * 50}`), 300-odd bytes.
    fn small_dict_pickle() -> Vec<u8> {
        let mut p = b"\x80\x04}\x94(\x8c\x01a\x94]\x94(".to_vec();
        for i in 0..100u8 {
            p.extend_from_slice(&[b'K', i]);
        }
        p.extend_from_slice(b"e\x8c\x01b\x94\x8c\x32");
        p.extend_from_slice(&[b'x'; 50]);
        p.extend_from_slice(b"\x94u.");
        p
    }

    /// Thousands of concatenated pickles took time that grew faster than their number: every
    /// pickle reserved capacity for the whole rest of the input (4 MB of 5-byte pickles: 75 s
    /// in the release CLI, 0.3 s now). How much that reservation costs depends on the
    /// allocator's state (the CLI scans on its main thread; a test thread's allocator arena
    /// hid most of it), so the test that fails without the fix is
    /// `a_small_pickle_in_a_large_input_reserves_nothing_for_the_rest` (pickle/tests.rs);
    /// this one bounds the time of the whole stream, generously for a debug build on a loaded
    /// machine.
    #[test]
    fn a_stream_of_thousands_of_pickles_scans_in_linear_time() {
        for (what, one) in [
            ("small dicts", small_dict_pickle()),
            ("ints", b"\x80\x02K\x01.".to_vec()),
        ] {
            let data = stream_of(&one, 4 << 20);
            let started = std::time::Instant::now();
            let r = scan(&data);
            let took = started.elapsed();
            let count = data.len() / one.len();
            assert_eq!(r.verdict, Verdict::Safe, "{what}: {:?}", r.findings);
            assert!(
                r.summary.contains(&format!("{count} pickles")),
                "{what}: {}",
                r.summary
            );
            let bound = if cfg!(debug_assertions) { 30.0 } else { 1.5 };
            assert!(
                took.as_secs_f64() < bound,
                "{what}: {count} pickles took {took:?} (bound {bound} s)"
            );
        }
    }

    fn scanner_with_timeout(timeout: std::time::Duration) -> crate::Scanner {
        let limits = crate::Limits {
            timeout,
            ..crate::Limits::default()
        };
        crate::Scanner::new(crate::Policy::default(), limits)
    }

    fn timed_out(r: &crate::FileReport) -> bool {
        r.findings.iter().any(|f| f.rule == crate::Rule::Timeout)
    }

    /// The machine checks the time every few thousand opcodes of one pickle: a stream of
    /// small pickles never got there, so `--timeout` was not honoured between them.
    #[test]
    fn the_timeout_stops_a_stream_of_small_pickles() {
        let data = stream_of(&small_dict_pickle(), 4 << 20);
        let timeout = std::time::Duration::from_millis(5);
        let r = scanner_with_timeout(timeout).scan_bytes("t", &data);
        assert!(timed_out(&r), "{:?} {}", r.findings, r.summary);
        assert_eq!(r.verdict, Verdict::Unscannable);
        assert!(r.elapsed_ms < 1_000.0, "took {} ms", r.elapsed_ms);
    }

    /// The fast pass (large data-only pickles) had no time check at all.
    #[test]
    fn the_timeout_stops_the_fast_pass() {
        // One list of 400,000 small ints, appended 1,000 at a time: data only, so the fast
        // pass reads it.
        let mut data = b"\x80\x04]".to_vec();
        for _ in 0..400 {
            data.push(b'(');
            data.extend_from_slice(&b"K\x07".repeat(1_000));
            data.push(b'e');
        }
        data.push(b'.');
        let r = scanner_with_timeout(std::time::Duration::ZERO).scan_bytes("t", &data);
        assert!(timed_out(&r), "{:?} {}", r.findings, r.summary);
        assert_eq!(r.verdict, Verdict::Unscannable);
        let r = scan(&data);
        assert_eq!(r.verdict, Verdict::Safe, "{:?}", r.findings);
    }

    /// torch's legacy format is five pickles, then the storages. A file cut after the first
    /// few whole pickles (the magic number alone, or the header) was reported safe.
    #[test]
    fn a_legacy_file_cut_between_its_pickles_is_never_safe() {
        let magic = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.";
        let version = b"\x80\x02M\xe9\x03.";
        let info = b"\x80\x02}q\x00.";
        let main = b"\x80\x02}q\x00.";
        for (count, data) in [
            (1, magic.to_vec()),
            (2, [&magic[..], version].concat()),
            (3, [&magic[..], version, info].concat()),
            (4, [&magic[..], version, info, main].concat()),
        ] {
            let r = scan(&data);
            assert_eq!(r.format, "pytorch-legacy", "{count} pickles");
            assert_ne!(
                r.verdict,
                Verdict::Safe,
                "{count} pickles: {:?}",
                r.findings
            );
            assert!(
                r.findings.iter().any(|f| f.rule == crate::Rule::Truncated),
                "{count} pickles"
            );
        }
    }

    /// A probe that timed out and was then forgotten (`Ctx::rollback`) dropped the timeout's
    /// finding while the timeout stayed in force: the file could come out safe.
    #[test]
    fn a_rollback_keeps_the_timeout() {
        let scanner = scanner_with_timeout(std::time::Duration::ZERO);
        let r = scanner.scan_with("t", b"", |ctx, _| {
            let probe = ctx.checkpoint();
            assert!(ctx.check_timeout());
            ctx.rollback(probe);
            assert!(ctx.check_timeout());
            crate::format::Format::Text
        });
        assert!(timed_out(&r), "{:?}", r.findings);
        assert_eq!(r.verdict, Verdict::Unscannable);
    }
}
