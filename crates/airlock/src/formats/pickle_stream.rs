//! Files that a loader would unpickle directly: plain pickles, several pickles in a row,
//! legacy PyTorch files (five pickles followed by raw storage bytes), joblib files, and
//! anything unrecognised (torch.load unpickles whatever is not a zip).
//!
//! Every pickle in the stream is scanned, each with a fresh memo, as successive
//! `pickle.load` calls on one file would read them.

use crate::pickle::machine::{self, Outcome};
use crate::report::Finding;
use crate::rules::Rule;
use crate::scan::Ctx;

use super::torch;

/// Scans `data` as a stream of pickles; when it is not a pickle at all, reports what it is.
pub fn scan_or_classify(ctx: &mut Ctx, data: &[u8]) -> &'static str {
    scan_stream(ctx, data, false)
}

/// Scans `data` as pickle bytes that a loader is known to unpickle (a NumPy object array's
/// data, a nested pickle): it is reported as a pickle even when malformed.
pub fn scan_pickles(ctx: &mut Ctx, data: &[u8]) -> &'static str {
    scan_stream(ctx, data, true)
}

fn scan_stream(ctx: &mut Ctx, data: &[u8], known_pickle: bool) -> &'static str {
    let probe = ctx.checkpoint();
    let mut first = machine::run(ctx, data, 0);
    if first.fast_pass && first.end < data.len() {
        // More bytes follow: torch's legacy loader compares this pickle's *value* with its
        // magic number, which the fast pass does not keep. Read it again with the full machine.
        ctx.rollback(probe);
        first = machine::run_full(ctx, data, 0);
    }
    if !known_pickle && first.is_not_a_pickle() && !data.starts_with(b"\x80") {
        // The loader fails at the first instruction, before importing or building anything:
        // loading it runs nothing. Report what the bytes are instead.
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
        let probe = ctx.checkpoint();
        let next = if outcomes_needed_for_legacy.len() == torch::LEGACY_PICKLES - 1 {
            // A legacy file's storage keys: their values are needed (the fast pass keeps
            // none, and takes any list of 64 KiB or more).
            machine::run_full(ctx, data, next_start)
        } else {
            machine::run(ctx, data, next_start)
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
        "pytorch-legacy"
    } else if stats.joblib {
        "joblib"
    } else {
        "pickle"
    }
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
}
