//! Shared by the fuzz targets (each includes it with `mod common;`; not a target itself).
//!
//! - [`check_report`]: the invariants every target that reaches a verdict asserts (issue 20:
//!   "incomplete ⇒ never safe", "dangerous ⇒ dangerous", one rule decides, and the exit status from `airlock::outcome`).
//! - [`bad_input`]: the bad-input classes, chosen by the input's first byte and run on top of
//!   the target's own scan: a truncation mode (the input, then prefixes of it), a bomb mode
//!   (the input inside nested gzip and zip wrappers, optionally repeated before compression)
//!   and a concatenation mode (the input repeated).
#![allow(dead_code)] // each target uses a part

use std::io::Write;

use airlock::outcome::{self, FailOn};
use airlock::{FileReport, Severity, Verdict};

/// The invariants of one report:
/// - its verdict is the one [`airlock::report::verdict_of`] derives from its findings (one
///   rule decides);
/// - a finding that marks the file incomplete ⇒ the verdict is never `Safe`;
/// - a finding of dangerous severity ⇒ the verdict is `Dangerous`.
pub fn check_report(report: &FileReport) {
    assert_eq!(
        report.verdict,
        airlock::report::verdict_of(&report.findings),
        "the verdict is not the one its findings give"
    );
    if report.findings.iter().any(|f| f.is_incomplete()) {
        assert_ne!(
            report.verdict,
            Verdict::Safe,
            "incomplete but safe: {:?}",
            report.findings
        );
    }
    if report
        .findings
        .iter()
        .any(|f| f.severity == Severity::Dangerous)
    {
        assert_eq!(
            report.verdict,
            Verdict::Dangerous,
            "a dangerous finding but {}",
            report.verdict
        );
    }
    // One rule decides the exit status too (issue 20, item 1): whatever `--fail-on` says, a
    // dangerous verdict exits 1 and an incomplete report never exits 0.
    for fail_on in [FailOn::Suspicious, FailOn::Dangerous] {
        let outcome = outcome::of_file(report, fail_on);
        if report.verdict == Verdict::Dangerous {
            assert_eq!(outcome.exit_code(), 1, "dangerous but {outcome:?}");
        }
        if report.is_incomplete() {
            assert_ne!(outcome.exit_code(), 0, "incomplete but {outcome:?}");
        }
        assert_eq!(outcome::of_run(std::slice::from_ref(report), fail_on), outcome);
    }
}

/// Which bad-input class an input exercises: its first byte, modulo 4 (the input itself is
/// used whole, first byte included, so committed seeds keep their meaning).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Truncate,
    Bomb,
    Concatenate,
    /// Only the target's own checks.
    Plain,
}

pub fn mode_of(data: &[u8]) -> Mode {
    match data.first().map(|b| b % 4) {
        Some(0) => Mode::Truncate,
        Some(1) => Mode::Bomb,
        Some(2) => Mode::Concatenate,
        _ => Mode::Plain,
    }
}

/// The byte at `i`, or 0.
fn byte(data: &[u8], i: usize) -> usize {
    data.get(i).copied().map_or(0, usize::from)
}

/// Up to eight cut points strictly inside `data`: the last byte off, the middle, and
/// offsets the input's bytes 1..6 choose.
pub fn cut_points(data: &[u8]) -> Vec<usize> {
    let len = data.len();
    if len < 2 {
        return Vec::new();
    }
    let mut cuts = vec![len - 1, len / 2];
    for i in 1..7 {
        cuts.push(1 + (byte(data, i) * 257 + byte(data, i + 6)) * (len - 1) / 65_792);
    }
    cuts.retain(|&c| c > 0 && c < len);
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).expect("in memory");
    encoder.finish().expect("in memory")
}

pub fn zip(name: &str, data: &[u8]) -> Vec<u8> {
    airlock::convert::testkit::stored_zip(&[(name.to_string(), data.to_vec())])
}

/// Most bytes a bomb's innermost layer holds (it inflates to this): large enough to cross
/// the ratio check's 1 MiB floor, small enough to keep a run fast.
const BOMB_INFLATED: usize = 2 << 20;
/// Most bytes a concatenation builds.
const CONCATENATED: usize = 1 << 20;

/// The input inside 1 to 12 layers (the default nesting limit is 8), each gzip or a stored
/// zip as byte 1's bits say; when byte 2 is odd, the input is first repeated up to
/// [`BOMB_INFLATED`] bytes (a ratio bomb once gzipped). Returns the wrapped bytes and whether
/// the innermost layer holds the input exactly once.
pub fn bomb(data: &[u8]) -> (Vec<u8>, bool) {
    let layers = 1 + byte(data, 1) % 12;
    let kinds = byte(data, 1) * 31 + byte(data, 3);
    let repeat = if byte(data, 2) % 2 == 1 && !data.is_empty() {
        (BOMB_INFLATED / data.len()).clamp(1, 1 + byte(data, 2) * 64)
    } else {
        1
    };
    let mut out = data.repeat(repeat);
    for layer in 0..layers {
        out = if (kinds >> (layer % 10)) & 1 == 0 {
            gzip(&out)
        } else {
            zip(&format!("layer{layer}/payload"), &out)
        };
    }
    (out, repeat == 1)
}

/// The input repeated 2 to 17 times (at most [`CONCATENATED`] bytes).
pub fn concatenation(data: &[u8]) -> Vec<u8> {
    let copies = (2 + byte(data, 1) % 16).min((CONCATENATED / data.len().max(1)).max(1));
    data.repeat(copies)
}

/// Runs bad-input `mode` on `data` with `scan`, after the target scanned it whole (`whole`):
/// every report must pass [`check_report`], and
/// - bomb: wrapping never makes a file safer (a dangerous input stays dangerous, or is
///   unscannable when a nesting or inflation limit stopped the scan; a flagged one is never
///   safe);
/// - concatenation: only the report invariants here (what a repeated input means depends on
///   the format; the pickle target asserts more).
///
/// Returns the prefix reports of the truncation mode (cut, report) for target-specific
/// checks; empty in the other modes.
pub fn bad_input(
    mode: Mode,
    data: &[u8],
    whole: &FileReport,
    scan: impl Fn(&[u8]) -> FileReport,
) -> Vec<(usize, FileReport)> {
    check_report(whole);
    match mode {
        Mode::Truncate => cut_points(data)
            .into_iter()
            .map(|cut| {
                let report = scan(&data[..cut]);
                check_report(&report);
                (cut, report)
            })
            .collect(),
        Mode::Bomb => {
            let (wrapped, exact) = bomb(data);
            let report = scan(&wrapped);
            check_report(&report);
            if exact && whole.verdict != Verdict::Safe {
                assert_ne!(
                    report.verdict,
                    Verdict::Safe,
                    "wrapping made a {} file safe",
                    whole.verdict
                );
            }
            if exact && whole.verdict == Verdict::Dangerous {
                assert!(
                    matches!(report.verdict, Verdict::Dangerous | Verdict::Unscannable),
                    "wrapping made a dangerous file {}",
                    report.verdict
                );
            }
            Vec::new()
        }
        Mode::Concatenate => {
            let report = scan(&concatenation(data));
            check_report(&report);
            Vec::new()
        }
        Mode::Plain => Vec::new(),
    }
}
