//! Paths that are not regular files but were named on the command line: `-` (standard input),
//! `/dev/stdin`, FIFOs, `<(...)` process substitutions, character devices.
//!
//! They can be read once, front to back, and have no size up front, while the scanner wants
//! random access to a file of known size. So the stream is copied ("spooled") into an
//! anonymous temporary file (`tempfile::tempfile`: unlinked from the start, so nothing is
//! left behind by a crash or a signal, and no other process can change it under the map),
//! at most the cap plus one byte, then mapped and scanned under the name the user gave.
//!
//! The cap is `--max-file-size`, or [`DEFAULT_STREAM_CAP`] without it: a stream has no size
//! to check first, and spooling an endless one (`/dev/zero`) would fill the disk. A stream
//! longer than the cap is reported unscannable (GEN003), as a large file is.

use std::io::Read;
use std::path::Path;
use std::time::Instant;

use airlock::{FileReport, Finding, Rule, Scanner};

use crate::walk::STDIN;

/// What a stream is cut at when `--max-file-size` is not given: 8 GiB, above the largest
/// single-file checkpoints commonly piped around (a 7B model in 16-bit is ~14 GB and comes as
/// shards), and below what a temporary folder can usually hold.
pub const DEFAULT_STREAM_CAP: u64 = 8 << 30;

/// Reads the stream at `path` (`-`: standard input) into a spool file and scans it.
pub fn scan(scanner: &Scanner, path: &Path, cap: u64) -> FileReport {
    let started = Instant::now();
    let display = path.display().to_string();
    let spooled = if path == Path::new(STDIN) {
        spool(std::io::stdin().lock(), cap)
    } else {
        std::fs::File::open(path).and_then(|file| spool(file, cap))
    };
    let mut report = match spooled {
        Err(error) => not_read(
            &display,
            Finding::new(Rule::ReadError, format!("cannot read: {error}")),
            0,
        ),
        Ok(Spooled::TooLong) => not_read(
            &display,
            Finding::new(
                Rule::FileTooLarge,
                format!(
                    "the stream is longer than {cap} bytes (--max-file-size; {DEFAULT_STREAM_CAP} \
                     for streams by default)"
                ),
            ),
            cap,
        ),
        Ok(Spooled::Done(file, 0)) => {
            drop(file);
            scanner.scan_bytes(&display, &[])
        }
        Ok(Spooled::Done(file, size)) => scan_spool(scanner, &display, &file, size),
    };
    report.elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    report
}

pub enum Spooled {
    /// The whole stream, and its length.
    Done(std::fs::File, u64),
    /// More than the cap.
    TooLong,
}

/// Copies `source` into an anonymous temporary file, reading at most `cap + 1` bytes.
pub fn spool(source: impl Read, cap: u64) -> std::io::Result<Spooled> {
    let mut file = tempfile::tempfile().map_err(crate::outfile::plain)?;
    let copied = std::io::copy(&mut source.take(cap.saturating_add(1)), &mut file)?;
    if copied > cap {
        return Ok(Spooled::TooLong);
    }
    Ok(Spooled::Done(file, copied))
}

fn scan_spool(scanner: &Scanner, display: &str, file: &std::fs::File, size: u64) -> FileReport {
    // SAFETY: a read-only map of an anonymous temporary file that this process created and
    // filled, and that has no name in any folder: no other process can truncate it while the
    // map lives, so the map cannot raise SIGBUS.
    #[allow(unsafe_code)]
    let map = unsafe { memmap2::Mmap::map(file) };
    match map {
        Ok(map) => scanner.scan_bytes(display, &map),
        Err(error) => not_read(
            display,
            Finding::new(
                Rule::ReadError,
                format!("cannot map the spooled stream: {error}"),
            ),
            size,
        ),
    }
}

/// The report of a stream that could not be read to the end: unscannable, never skipped.
pub fn not_read(display: &str, finding: Finding, size: u64) -> FileReport {
    let findings = vec![finding];
    FileReport {
        path: display.to_string(),
        format: "unknown".into(),
        size,
        verdict: airlock::report::verdict_of(&findings),
        imports: Vec::new(),
        findings,
        members: Vec::new(),
        summary: "not read".into(),
        elapsed_ms: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_over_the_cap_is_cut_and_reported() {
        let spooled = spool(&b"0123456789"[..], 9).unwrap();
        assert!(matches!(spooled, Spooled::TooLong));
        let spooled = spool(&b"0123456789"[..], 10).unwrap();
        assert!(matches!(spooled, Spooled::Done(_, 10)));
    }
}
