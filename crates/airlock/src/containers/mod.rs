//! Archive and compression readers: zip (read as leniently as torch's reader), tar, 7z, and
//! the single-stream compressors (gzip, bz2, xz, lzma, lz4, zstd, zlib). Each reader takes
//! untrusted bytes and enforces the limits in [`crate::limits::Limits`].
//!
//! Every reader hands the bytes a loader would see to [`Ctx::scan_member`], which routes them
//! by content (a pickle named `data.txt` is still a pickle). What is shared lives here: the
//! bounded decompression loop ([`read_bounded`], whose output is held as [`inflated`]
//! describes) and the member-path checks ([`unsafe_path`]).
//!
//! Bombs are bounded three ways (numbers in `docs/limits.md`): each member's output is held
//! to `max_compression_ratio` times its own compressed size (past a 1 MiB grace); everything
//! decompressed for one file, across all nesting levels, is held to
//! [`crate::Limits::inflated_budget`] (the same ratio times the top-level file's size, with a
//! floor), so nesting cannot multiply the ratio; and zip members whose bytes overlap (the
//! non-recursive bomb) are reported from the directory and never inflated.

pub mod compressed;
pub mod inflated;
pub mod sevenz;
pub mod tar;
pub mod zip;
#[cfg(unix)]
pub mod zip_image;

use std::io::Read;

use crate::ctx::Ctx;
pub use inflated::Inflated;
use inflated::Sink;

/// Bytes decompressed before the compression ratio is checked (small files legitimately
/// compress very well).
pub const RATIO_GRACE_BYTES: u64 = 1 << 20;

/// Size of one read from a decoder; the budgets are charged per chunk.
const CHUNK: usize = 64 * 1024;

/// How a bounded read ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadEnd {
    /// The decoder reached the end of its stream.
    Complete,
    /// The decoder failed; the message says why. The bytes before the failure are kept.
    Failed(String),
    /// A budget (inflated bytes, ratio, time) stopped the read; a finding was already recorded.
    Limited,
}

/// Reads `reader` to its end under the file's budgets: every chunk is charged to
/// [`Ctx::charge_inflated`] (the file's total, see [`crate::Limits::inflated_budget`]), the
/// time budget is checked, and once more than [`RATIO_GRACE_BYTES`] came out the output may
/// be at most `max_compression_ratio` times `compressed_len` (the member's own compressed
/// size). The output is held as [`inflated`] describes: in memory within the file's
/// in-memory budget, in a mapped temporary file beyond it. Returns what was decoded and how
/// the read ended.
pub fn read_bounded(
    ctx: &mut Ctx,
    what: &str,
    mut reader: impl Read,
    compressed_len: u64,
) -> (Inflated, ReadEnd) {
    let ratio = ctx.limits().max_compression_ratio;
    let ceiling = compressed_len.max(1).saturating_mul(ratio);
    let mut sink = Sink::new(ctx.inflated_memory());
    let mut chunk = vec![0u8; CHUNK];
    let end = loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => break ReadEnd::Complete,
            Ok(n) => n.min(chunk.len()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => break ReadEnd::Failed(e.to_string()),
        };
        if !ctx.charge_inflated(n as u64) || ctx.check_timeout() {
            break ReadEnd::Limited;
        }
        if let Err(e) = sink.push(chunk.get(..n).unwrap_or_default()) {
            break ReadEnd::Failed(format!("cannot hold the output in a temporary file: {e}"));
        }
        let produced = sink.len();
        if produced > RATIO_GRACE_BYTES && produced > ceiling {
            ctx.report(crate::report::Finding::new(
                crate::rules::Rule::ArchiveLimit,
                format!(
                    "{what}: {compressed_len} compressed bytes inflate past {produced} bytes, more \
                     than {ratio} times their size (decompression bomb); the rest was not read"
                ),
            ));
            break ReadEnd::Limited;
        }
    };
    match sink.finish() {
        Ok(out) => (out, end),
        Err(e) => (
            Inflated::empty(ctx.inflated_memory()),
            ReadEnd::Failed(format!(
                "cannot map the temporary file holding the output: {e}"
            )),
        ),
    }
}

/// Why a member path would land outside the extraction folder, if it would: absolute paths,
/// `..` components and Windows drive letters (both `/` and `\` count as separators, as on
/// Windows).
pub fn unsafe_path(name: &str) -> Option<&'static str> {
    let bytes = name.as_bytes();
    if name.starts_with('/') || name.starts_with('\\') {
        Some("absolute path")
    } else if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        Some("drive-letter path")
    } else if bytes.windows(2).any(|pair| pair == b"..")
        && name.split(['/', '\\']).any(|part| part == "..")
    {
        Some("`..` climbs out of the extraction folder")
    } else {
        None
    }
}

/// Names that occur more than once, each reported once, in first-seen order.
pub fn duplicates<'n>(names: impl IntoIterator<Item = &'n str>) -> Vec<&'n str> {
    let names = names.into_iter();
    let mut seen = crate::hash::HashSet::default();
    // Sized from the iterator's hint (a directory's entry count): growing by rehashing
    // costs more than the inserts on an archive with hundreds of members.
    let (low, high) = names.size_hint();
    seen.reserve(high.unwrap_or(low).min(1 << 16));
    let mut reported = crate::hash::HashSet::default();
    let mut dups = Vec::new();
    for name in names {
        if !seen.insert(name) && reported.insert(name) {
            dups.push(name);
        }
    }
    dups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_paths_are_named() {
        assert_eq!(unsafe_path("archive/data.pkl"), None);
        assert_eq!(unsafe_path("a/..b/c"), None);
        assert!(unsafe_path("/etc/passwd").is_some());
        assert!(unsafe_path("\\share\\x").is_some());
        assert!(unsafe_path("C:evil").is_some());
        assert!(unsafe_path("a/../../x").is_some());
        assert!(unsafe_path("a\\..\\x").is_some());
    }

    #[test]
    fn duplicates_are_listed_once() {
        assert_eq!(duplicates(["a", "b", "a", "a", "c", "b"]), vec!["a", "b"]);
    }
}
