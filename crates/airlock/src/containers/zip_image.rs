//! Sparse images of PyTorch zips, so that scanning a multi-gigabyte checkpoint costs memory
//! and time in proportion to its metadata, not its tensors.
//!
//! Scanning a PyTorch zip reads the end records, the central directory, every local header
//! along the chain from offset 0, and the members that are not storage records
//! ([`crate::formats::torch_zip`] never reads storage records). Through a memory map of the
//! file, the kernel maps whole page-cache folios (up to 2 MiB) around each header touched, so a
//! 1 GB checkpoint cost 70–250 MB of resident memory, and unmapping them afterwards (with TLB
//! shootdowns when several threads scan) cost more time than the parsing. Instead, this module
//! `pread`s those bytes (plus up to `HEADER_READ` bytes after each local header, read with
//! it) into a few heap buffers and records where each range sits in the file: a
//! [`SparseFile`]. The zip reader reads it through [`super::zip::ZipBytes`] as it would read
//! the file: a few allocations instead of a page fault per record.
//!
//! What to read is planned from the central directory's raw records, read by the same code
//! the archive parser uses (`zip::CentralRecords`), so the plan and the scan cannot
//! read the directory differently. Every local header the directory points at is read up
//! front, in one window per record covering the data descriptor before it and the names after
//! it; with `threads > 1` the windows are split between threads (the reads are independent,
//! and on a checkpoint with hundreds of records they are most of the scan). The walk along
//! the chain then finds its headers already present and reads only what the directory did
//! not predict.
//!
//! The image is only used when the prefetch is provably complete: the archive is a PyTorch
//! zip, no member defers its sizes to a data descriptor without the central directory
//! knowing them, the chain of local headers walked from offset 0 visits every
//! central-directory entry and ends exactly at the central directory, and the bytes to read
//! stay under [`MAX_IMAGE_BYTES`]. Otherwise the caller falls back to mapping the whole file.
//! Tests check that scanning the image and scanning the whole file give the same report.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::zip::{CentralRecords, FLAG_DATA_DESCRIPTOR, SHORT_TAIL, ZipBytes};

/// Zips at least this large are scanned through a sparse image when they are PyTorch zips.
/// Smaller files are mapped whole: their few headers sit in a handful of pages.
pub const MIN_IMAGE_SIZE: u64 = 1 << 20;
pub use crate::limits::caps::zip::MAX_IMAGE_BYTES;
/// How far back from the end the end-of-central-directory record can sit, plus the ZIP64
/// locator and record before it.
const TAIL: u64 = 22 + 0xFFFF + 20 + 56;
const LOCAL_LEN: u64 = 30;
/// A data descriptor (signature, CRC, two 64-bit sizes) and the next local signature.
const DESCRIPTOR_AND_SIGNATURE: u64 = 4 + 4 + 16 + 4;
/// Bytes read after a local header in the same call: torch's names and its 64-byte alignment
/// padding fit in it (about 80 bytes in practice); longer ones take a second read.
const HEADER_READ: u64 = 192;

/// Fewest directory records for which the header windows are read by more than one thread.
/// A header read costs about 0.8 us and starting a reader thread about 0.5 ms on the bench
/// VM: a 878-record checkpoint scanned 0.25 ms slower with two threads than with one
/// (medians of 201 alternating runs), so only archives with thousands of records split.
const PARALLEL_MIN_RECORDS: usize = 4096;

/// Bytes of a file at their file offsets, of which only some ranges are present.
#[derive(Debug)]
pub struct SparseFile {
    len: u64,
    /// Present ranges, sorted by start; they may overlap.
    segments: Vec<Segment>,
    /// The bytes: one chunk for single reads ([`SparseFile::fill`]), one per prefetch.
    chunks: Vec<Vec<u8>>,
    /// The chunk single reads go to.
    fill_chunk: usize,
    /// Bytes held in all chunks.
    held: u64,
    /// How many threads read the last prefetch's windows.
    prefetch_threads: usize,
    /// Index of the segment the last lookup found: the zip reader reads a header field by
    /// field, so the next lookup almost always lands in the same segment.
    last: AtomicUsize,
}

#[derive(Debug, Clone, Copy)]
struct Segment {
    start: u64,
    end: u64,
    /// Which chunk holds the segment's bytes, and where they start in it.
    chunk: usize,
    at: usize,
}

impl SparseFile {
    fn new(len: u64) -> Self {
        SparseFile {
            len,
            segments: Vec::new(),
            chunks: vec![Vec::new()],
            fill_chunk: 0,
            held: 0,
            prefetch_threads: 0,
            last: AtomicUsize::new(0),
        }
    }

    /// The file's length.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes of `range` when one present segment holds all of them (an empty range inside
    /// the file always succeeds, as slicing does).
    pub fn get(&self, range: Range<usize>) -> Option<&[u8]> {
        let (start, end) = (range.start as u64, range.end as u64);
        if start > end || end > self.len {
            return None;
        }
        if start == end {
            return Some(&[]);
        }
        self.holding(start, end)
            .and_then(|s| self.slice(s, start, end))
    }

    /// The present bytes from `start` to the end of the segment that holds it.
    pub fn get_from(&self, start: usize) -> Option<&[u8]> {
        let start = start as u64;
        if start == self.len {
            return Some(&[]);
        }
        // Not through the cache: the answer's length depends on which segment is chosen, and
        // the nearest one by start is the longest run from `start` that a read put there.
        let segment = self.nearest_holding(start, start + 1)?.1;
        self.slice(segment, start, segment.end)
    }

    /// The segment holding `start..end`. Overlaps only happen between a few neighbours (a
    /// header window and the record data after it), so only those are looked at.
    fn holding(&self, start: u64, end: u64) -> Option<Segment> {
        let last = self.last.load(Ordering::Relaxed);
        // The last segment found, or the one after it: walks go forward through the file.
        for index in [last, last + 1] {
            if let Some(s) = self.segments.get(index)
                && s.start <= start
                && s.end >= end
            {
                if index != last {
                    self.last.store(index, Ordering::Relaxed);
                }
                return Some(*s);
            }
        }
        let (index, segment) = self.nearest_holding(start, end)?;
        self.last.store(index, Ordering::Relaxed);
        Some(segment)
    }

    /// Of the segments starting at or before `start`, the nearest that reaches `end`.
    fn nearest_holding(&self, start: u64, end: u64) -> Option<(usize, Segment)> {
        let after = self.segments.partition_point(|s| s.start <= start);
        self.segments[..after]
            .iter()
            .enumerate()
            .rev()
            .take(4)
            .find(|(_, s)| s.end >= end)
            .map(|(index, s)| (index, *s))
    }

    fn slice(&self, s: Segment, start: u64, end: u64) -> Option<&[u8]> {
        let from = s.at + usize::try_from(start - s.start).ok()?;
        self.chunks
            .get(s.chunk)?
            .get(from..from + usize::try_from(end - start).ok()?)
    }

    /// Reads `len` bytes at `start` (clipped to the file) unless they are already present.
    fn fill(&mut self, file: &File, start: u64, len: u64) -> Option<()> {
        let end = start.checked_add(len)?.min(self.len);
        if start >= end || self.holding(start, end).is_some() {
            return Some(());
        }
        let size = usize::try_from(end - start).ok()?;
        self.held = self.held.saturating_add(size as u64);
        if self.held > MAX_IMAGE_BYTES {
            return None;
        }
        let chunk = self.fill_chunk;
        let bytes = &mut self.chunks[chunk];
        let at = bytes.len();
        bytes.resize(at + size, 0);
        file.read_exact_at(&mut bytes[at..], start).ok()?;
        let index = self.segments.partition_point(|s| s.start <= start);
        self.segments.insert(
            index,
            Segment {
                start,
                end,
                chunk,
                at,
            },
        );
        Some(())
    }

    /// Reads every `(start, len)` window (sorted by start; clipped to the file) into one new
    /// chunk, split between `threads` threads, each filling its own part of it. `None` when a
    /// read fails or the image would grow past [`MAX_IMAGE_BYTES`].
    fn prefetch(&mut self, file: &File, windows: &[(u64, u64)], threads: usize) -> Option<()> {
        // Clipped, without the ones already present (the end records' tail can hold the
        // last headers of a small file), and overlapping windows merged into one read: the
        // segments of a prefetch never overlap, so the lookup's few nearest candidates always
        // include the one that holds a range.
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(windows.len());
        self.segments.reserve(windows.len());
        for &(start, len) in windows {
            let end = start.saturating_add(len).min(self.len);
            if start >= end || self.nearest_holding(start, end).is_some() {
                continue;
            }
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        let windows = merged;
        let total = windows
            .iter()
            .fold(0u64, |a, (s, e)| a.saturating_add(e - s));
        self.held = self.held.saturating_add(total);
        if self.held > MAX_IMAGE_BYTES {
            return None;
        }
        // One buffer, allocated here: a thread that allocated its own would make glibc set
        // up a new malloc arena for it (a fresh mapping and its page faults), which cost more
        // than the thread saved.
        let mut bytes = vec![0u8; usize::try_from(total).ok()?];
        let parts = threads.clamp(1, windows.len().max(1));
        let per_part = windows.len().div_ceil(parts).max(1);
        let mut groups: Vec<ReadPart> = Vec::with_capacity(parts);
        let mut rest = bytes.as_mut_slice();
        for group in windows.chunks(per_part) {
            let len = group.iter().map(|(s, e)| (e - s) as usize).sum::<usize>();
            let (part, tail) = rest.split_at_mut(len);
            groups.push((group, part));
            rest = tail;
        }
        let ok = match groups.split_first_mut() {
            None => true,
            Some((first, others)) if !others.is_empty() => std::thread::scope(|scope| {
                let handles: Vec<_> = others
                    .iter_mut()
                    .map(|(group, part)| {
                        std::thread::Builder::new()
                            .stack_size(READ_THREAD_STACK)
                            .spawn_scoped(scope, || read_windows(file, group, part))
                    })
                    .collect();
                let mut ok = read_windows(file, first.0, first.1);
                // A read thread cannot panic (it only reads into its own part); a spawn or
                // join error is treated as a failed read all the same.
                for handle in handles {
                    ok &= handle.is_ok_and(|h| h.join().unwrap_or(false));
                }
                ok
            }),
            Some((first, _)) => read_windows(file, first.0, first.1),
        };
        if !ok {
            return None;
        }
        self.prefetch_threads = groups.len();
        let chunk = self.chunks.len();
        let mut at = 0usize;
        for &(start, end) in &windows {
            self.segments.push(Segment {
                start,
                end,
                chunk,
                at,
            });
            at += (end - start) as usize;
        }
        self.chunks.push(bytes);
        self.segments.sort_by_key(|s| s.start);
        Some(())
    }

    /// Sends the single reads from now on to a new chunk of `capacity` bytes: growing the
    /// current one past its capacity would copy everything it holds.
    fn start_fill_chunk(&mut self, capacity: usize) {
        self.chunks.push(Vec::with_capacity(capacity));
        self.fill_chunk = self.chunks.len() - 1;
    }

    fn u32_at(&self, at: u64) -> Option<u32> {
        let at = usize::try_from(at).ok()?;
        let b = self.get(at..at + 4)?;
        Some(u32::from_le_bytes(b.try_into().ok()?))
    }

    fn u64_at(&self, at: u64) -> Option<u64> {
        let at = usize::try_from(at).ok()?;
        let b = self.get(at..at + 8)?;
        Some(u64::from_le_bytes(b.try_into().ok()?))
    }
}

/// One thread's share of a prefetch: its windows and the part of the buffer they fill.
type ReadPart<'w, 'b> = (&'w [(u64, u64)], &'b mut [u8]);

/// Stack of a prefetch thread: it only calls `pread`.
const READ_THREAD_STACK: usize = 64 << 10;

/// Reads `windows` (clipped, non-empty, in order) back to back into `into`, which is exactly
/// their total length; false when a read fails.
fn read_windows(file: &File, windows: &[(u64, u64)], into: &mut [u8]) -> bool {
    let mut at = 0usize;
    for &(start, end) in windows {
        let len = (end - start) as usize;
        let Some(part) = into.get_mut(at..at + len) else {
            return false;
        };
        if file.read_exact_at(part, start).is_err() {
            return false;
        }
        at += len;
    }
    true
}

/// Builds the sparse image of `file` (`size` bytes), or `None` when the file is not a
/// PyTorch zip whose reads can be predicted exactly. The header windows are read by up to
/// `threads` threads (`None`: one per CPU) when there are [`PARALLEL_MIN_RECORDS`] of them.
pub fn torch_zip_image(file: &File, size: u64, threads: Option<usize>) -> Option<SparseFile> {
    let mut image = SparseFile::new(size);
    // The end records sit in the last few kilobytes unless the archive has a long comment.
    let short = SHORT_TAIL as u64;
    image.fill(file, size.saturating_sub(short), short)?;
    let cd_offset = match directory(&image, size.saturating_sub(short)) {
        Some(found) => found,
        None => {
            image.fill(file, size.saturating_sub(TAIL), TAIL)?;
            directory(&image, size.saturating_sub(TAIL))?
        }
    };
    // The reader takes as many entries as the end record counts, whatever size it declares,
    // so everything from the directory to the end of the file is read (for a real archive,
    // the directory and the end records; a directory offset pointing far back makes the image
    // too large, and the file is mapped instead).
    image.fill(file, cd_offset, size - cd_offset)?;

    let headers = plan_headers(ZipBytes::Sparse(&image))?;
    // Every header the directory points at, read up front: a window from the data
    // descriptor that may precede it to the names after it. The members that are not
    // storages are read by the walk into a chunk of their own, reserved for them here.
    let members: u64 = headers.iter().fold(0, |a, h| a.saturating_add(h.read));
    let windows: Vec<(u64, u64)> = headers
        .iter()
        .map(|h| h.offset)
        .filter(|&h| h < cd_offset)
        .map(|h| {
            let start = h.saturating_sub(DESCRIPTOR_AND_SIGNATURE);
            (start, h - start + LOCAL_LEN + HEADER_READ)
        })
        .collect();
    image.start_fill_chunk(usize::try_from(members.min(MAX_IMAGE_BYTES)).ok()?);
    let records: usize = headers.iter().map(|h| h.records).sum();
    let threads = if records >= PARALLEL_MIN_RECORDS {
        threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
    } else {
        1
    };
    image.prefetch(file, &windows, threads)?;

    // The chain of local headers, walked as the zip reader walks it: sizes from the central
    // directory where it lists the record, data descriptors stepped over. The walk ends where
    // no local header follows, as the reader's does.
    let mut visited = vec![false; headers.len()];
    let mut walked = 0usize;
    let mut at = 0u64;
    while at < cd_offset {
        walked += 1;
        if walked > headers.len() + 1_001 {
            return None;
        }
        // A header and the names after it usually arrive in one read, and a data descriptor
        // with the next header in another.
        image.fill(file, at, LOCAL_LEN + HEADER_READ)?;
        let header = image.get(at as usize..(at + LOCAL_LEN) as usize)?;
        if !header.starts_with(b"PK\x03\x04") {
            break;
        }
        let names = u64::from(u16::from_le_bytes([header[26], header[27]]))
            + u64::from(u16::from_le_bytes([header[28], header[29]]));
        image.fill(file, at, LOCAL_LEN + names)?;
        let local = super::zip::local_extent(ZipBytes::Sparse(&image), usize::try_from(at).ok()?)?;
        let (data_offset, local_size) = (local.data_offset as u64, local.compressed_size);
        let deferred = local.flags & FLAG_DATA_DESCRIPTOR != 0 && local_size == 0;
        let known = headers.binary_search_by_key(&at, |h| h.offset).ok();
        let data_size = match known.map(|i| (i, &headers[i])) {
            // A local header giving other sizes than the directory makes the reader scan the
            // local reading as well, which can run over storage bytes the image does not hold.
            Some((_, h)) if !deferred && (h.low != local_size || h.high != h.low) => {
                return None;
            }
            Some((i, h)) => {
                if h.read > 0 {
                    image.fill(file, data_offset, h.read)?;
                }
                visited[i] = true;
                h.size
            }
            // A record only the local headers know: its own sizes must be usable, and it is
            // scanned by content.
            None if !deferred => {
                image.fill(file, data_offset, local_size)?;
                local_size
            }
            None => return None,
        };
        let next = data_offset.checked_add(data_size)?;
        // What `skip_descriptor` looks at; the header after it is read at the top of the loop.
        image.fill(file, next, DESCRIPTOR_AND_SIGNATURE)?;
        at = super::zip::skip_descriptor(ZipBytes::Sparse(&image), usize::try_from(next).ok()?)
            as u64;
        if at == next
            && image.get(next as usize..next as usize + 4) != Some(b"PK\x03\x04".as_slice())
        {
            break;
        }
    }
    visited.iter().all(|&v| v).then_some(image)
}

/// One local-header offset the central directory points at, with what its entries (several
/// can share a header) say about it.
struct PlannedHeader {
    offset: u64,
    /// Entries pointing here.
    records: usize,
    /// Smallest and largest compressed size they give.
    low: u64,
    high: u64,
    /// The size the zip reader's walk steps by: the last entry's, in directory order.
    size: u64,
    /// Bytes of data the scan reads here: the largest size among the entries that are not
    /// storage records (0 when all are).
    read: u64,
}

/// The local headers of a PyTorch zip's central directory, sorted by offset; `None` when the
/// directory is missing or the archive is not a PyTorch zip.
///
/// Read from the same records as [`ZipArchive`] reads, with the names compared as bytes.
/// [`zip_flavour`] compares the decoded names, and decoding (lossy UTF-8) keeps every `/` and
/// maps equal bytes to equal text, so a root and a `<root>/data.pkl` found here are found
/// there too, and an entry under `<root>/data/` here is a storage record there too (the
/// other way round, an entry is at worst read into the image needlessly).
fn plan_headers(data: ZipBytes<'_>) -> Option<Vec<PlannedHeader>> {
    let records = CentralRecords::of(data)?;
    // Reserved for the count the directory claims (capped, since it is the file's claim).
    let mut headers = Vec::with_capacity(usize::try_from(records.left().min(1 << 16)).ok()?);
    let mut records = records.peekable();
    let first = records.peek()?.name;
    let root = first.split(|&b| b == b'/').next().unwrap_or(first);
    let under_root = |name: &[u8], rest: &[u8]| {
        name.len() == root.len() + rest.len() && name.starts_with(root) && name.ends_with(rest)
    };
    let is_storage = |name: &[u8]| {
        name.strip_prefix(root)
            .is_some_and(|rest| rest.starts_with(b"/data/"))
    };
    // One row per record, in directory order, then sorted by offset and merged per header.
    let mut has_pickle = false;
    headers.extend(records.map(|r| {
        has_pickle |= under_root(r.name, b"/data.pkl");
        let size = r.compressed_size;
        PlannedHeader {
            offset: r.header_offset,
            records: 1,
            low: size,
            high: size,
            size,
            read: if is_storage(r.name) { 0 } else { size },
        }
    }));
    if !has_pickle {
        return None;
    }
    // Stable: entries sharing a header stay in directory order, so the last one merged is
    // the reader's.
    headers.sort_by_key(|h| h.offset);
    headers.dedup_by(|later, kept| {
        let same = later.offset == kept.offset;
        if same {
            kept.records += later.records;
            kept.low = kept.low.min(later.low);
            kept.high = kept.high.max(later.high);
            kept.size = later.size;
            kept.read = kept.read.max(later.read);
        }
        same
    });
    Some(headers)
}

/// The central directory's offset, from the end records in the tail read at `tail_start`,
/// when the directory it declares fits in the file.
fn directory(image: &SparseFile, tail_start: u64) -> Option<u64> {
    let size = image.len();
    let tail = image.get(usize::try_from(tail_start).ok()?..usize::try_from(size).ok()?)?;
    let eocd = tail_start + tail.windows(4).rposition(|w| w == b"PK\x05\x06")? as u64;
    if eocd + 22 > size {
        return None;
    }
    let mut cd_size = u64::from(image.u32_at(eocd + 12)?);
    let mut cd_offset = u64::from(image.u32_at(eocd + 16)?);
    if cd_size == u64::from(u32::MAX) || cd_offset == u64::from(u32::MAX) {
        let locator = eocd.checked_sub(20)?;
        if image.u32_at(locator)? != u32::from_le_bytes(*b"PK\x06\x07") {
            return None;
        }
        let record = image.u64_at(locator + 8)?;
        if record < tail_start || image.u32_at(record)? != u32::from_le_bytes(*b"PK\x06\x06") {
            return None;
        }
        cd_size = image.u64_at(record + 40)?;
        cd_offset = image.u64_at(record + 48)?;
    }
    (cd_offset.checked_add(cd_size)? <= size).then_some(cd_offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scanner;
    use crate::containers::zip::testzip::{Member, build, member};

    fn image_of(bytes: &[u8]) -> Option<SparseFile> {
        let mut file = tempfile::tempfile().expect("temp file");
        std::io::Write::write_all(&mut file, bytes).expect("write");
        torch_zip_image(&file, bytes.len() as u64, Some(1))
    }

    fn scan_image(scanner: &Scanner, image: &SparseFile) -> crate::FileReport {
        scanner.scan_zip_image("t", image)
    }

    fn summary(report: &crate::FileReport) -> String {
        format!(
            "{} {} {:?} {:?} {:?}",
            report.verdict, report.format, report.imports, report.findings, report.members
        )
    }

    const DATA_PKL: &[u8] = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x02tQK\x00K\x02\x85K\x01\x85\x89h\x00)RtRs.";

    #[test]
    fn scanning_the_image_gives_the_same_report_as_the_file() {
        let cases = [
            build(&[
                member("m/data.pkl", DATA_PKL),
                member("m/data/0", &[7u8; 8]),
                member("m/version", b"3\n"),
            ]),
            // A storage record too small for its declared size: PT002 either way.
            build(&[
                member("m/data.pkl", DATA_PKL),
                member("m/data/0", &[7u8; 4]),
            ]),
            // A pickle hidden in a member that is not a storage record.
            build(&[
                member("m/data.pkl", DATA_PKL),
                member("m/data/0", &[7u8; 8]),
                member("m/notes.txt", b"cos\nsystem\n(S'id'\ntR."),
            ]),
            // Every kind of header the reader distinguishes, in a PyTorch zip.
            build(&[
                Member {
                    deflate: true,
                    ..member("m/data.pkl", DATA_PKL)
                },
                Member {
                    zip64: true,
                    ..member("m/data/0", &[7u8; 8])
                },
                Member {
                    local_name: Some("m/other".into()),
                    crc: Some(1),
                    flags: 0x21,
                    ..member("m/version", b"3\n")
                },
                Member {
                    in_central: false,
                    ..member("m/hidden.pkl", b"cos\nsystem\n(S'id'\ntR.")
                },
                Member {
                    unix_mode: Some(0o120777),
                    ..member("m/../../link", b"/etc/passwd")
                },
                member("m/constants.pkl", b"\x80\x02)."),
            ]),
        ];
        for (i, bytes) in cases.iter().enumerate() {
            let image = image_of(bytes).unwrap_or_else(|| panic!("case {i}: no image"));
            let scanner = Scanner::default();
            assert_eq!(
                summary(&scan_image(&scanner, &image)),
                summary(&scanner.scan_bytes("t", bytes)),
                "case {i}"
            );
        }
    }

    /// Inputs the `zip_image` fuzz target found scanning differently through the image.
    #[test]
    fn fuzz_regressions_scan_the_same_through_the_image() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/fuzz/zip_image");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).expect("regression folder") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "md") {
                continue;
            }
            let mut bytes = b"PK\x03\x04".to_vec();
            bytes.extend(std::fs::read(&path).expect("reproducer"));
            let scanner = Scanner::default();
            if let Some(image) = image_of(&bytes) {
                assert_eq!(
                    summary(&scan_image(&scanner, &image)),
                    summary(&scanner.scan_bytes("t", &bytes)),
                    "{path:?}"
                );
            }
            seen += 1;
        }
        assert!(seen > 0);
    }

    #[test]
    fn headers_read_by_several_threads_give_the_same_report() {
        // Enough records for the parallel prefetch; storages far apart (one window each) and
        // tiny (windows merged into one read).
        for storage_len in [1_000usize, 8] {
            let mut members = vec![member("m/data.pkl", DATA_PKL)];
            for i in 0..PARALLEL_MIN_RECORDS * 2 {
                members.push(member(&format!("m/data/{i}"), &vec![7u8; storage_len]));
            }
            members.push(member("m/version", b"3\n"));
            let bytes = build(&members);
            let mut file = tempfile::tempfile().expect("temp file");
            std::io::Write::write_all(&mut file, &bytes).expect("write");
            let size = bytes.len() as u64;
            let serial = torch_zip_image(&file, size, Some(1)).expect("image");
            let parallel = torch_zip_image(&file, size, Some(3)).expect("image");
            // Far-apart headers are split between threads; adjacent ones merge into one read.
            assert_eq!(serial.prefetch_threads, 1);
            let expected = if storage_len > 250 { 3 } else { 1 };
            assert_eq!(parallel.prefetch_threads, expected, "{storage_len}");
            let scanner = Scanner::default();
            let whole = summary(&scanner.scan_bytes("t", &bytes));
            assert_eq!(summary(&scan_image(&scanner, &serial)), whole);
            assert_eq!(summary(&scan_image(&scanner, &parallel)), whole);
        }
    }

    /// The image is planned from the names' bytes, the scan reads their decoded (lossy UTF-8)
    /// text: names that are not UTF-8 must not make the two disagree.
    #[test]
    fn names_that_are_not_utf8_plan_what_the_scan_reads() {
        // Same-length placeholders, patched into invalid UTF-8 in both headers of each name.
        let patch = |zip: Vec<u8>, from: &[u8], to: &[u8]| {
            let mut out = zip.clone();
            for at in 0..zip.len().saturating_sub(from.len()) {
                if &zip[at..at + from.len()] == from {
                    out[at..at + from.len()].copy_from_slice(to);
                }
            }
            out
        };
        let torch = |root_pkl: &str, root_storage: &str| {
            build(&[
                member(&format!("{root_pkl}/data.pkl"), DATA_PKL),
                member(&format!("{root_storage}/data/0"), &[7u8; 8]),
                member(
                    &format!("{root_pkl}/notes.txt"),
                    b"cos\nsystem\n(S'id'\ntR.",
                ),
            ])
        };
        // One invalid root throughout: the same archive to both readers.
        let same_root = patch(torch("QQ", "QQ"), b"QQ/", b"\xff\xfe/");
        // Two roots that differ as bytes but decode to the same text: the scan counts the
        // storage as a record of the archive; the plan reads it into the image as if it were
        // not one, which only costs the read.
        let lossy_alike = patch(
            patch(torch("QQ", "RR"), b"QQ/", b"\xff\xfe/"),
            b"RR/",
            b"\xfe\xff/",
        );
        let scanner = Scanner::default();
        for (i, bytes) in [same_root, lossy_alike].iter().enumerate() {
            let image = image_of(bytes).unwrap_or_else(|| panic!("case {i}: no image"));
            let report = scan_image(&scanner, &image);
            assert_eq!(
                summary(&report),
                summary(&scanner.scan_bytes("t", bytes)),
                "case {i}"
            );
            assert_eq!(report.format, "pytorch-zip", "case {i}");
        }
        // `data.pkl` under a root that differs as bytes from the first record's: the plan
        // does not take it for a PyTorch zip, and the file is mapped instead.
        let other_root = patch(
            patch(
                build(&[
                    member("QQ/version", b"3\n"),
                    member("RR/data.pkl", DATA_PKL),
                ]),
                b"QQ/",
                b"\xff\xfe/",
            ),
            b"RR/",
            b"\xfe\xff/",
        );
        assert!(image_of(&other_root).is_none());
    }

    #[test]
    fn end_records_behind_a_long_comment_are_found() {
        let mut bytes = build(&[
            member("m/data.pkl", DATA_PKL),
            member("m/data/0", &[7u8; 8]),
        ]);
        let comment = 10_000u16;
        let len = bytes.len();
        bytes[len - 2..].copy_from_slice(&comment.to_le_bytes());
        bytes.resize(len + usize::from(comment), b'#');
        let image = image_of(&bytes).expect("image");
        let scanner = Scanner::default();
        let report = scan_image(&scanner, &image);
        assert_eq!(summary(&report), summary(&scanner.scan_bytes("t", &bytes)));
        assert_eq!(report.format, "pytorch-zip");
    }

    #[test]
    fn real_torch_checkpoints_give_the_same_report_through_the_image() {
        // torch.save output (data descriptors after every record, 64-byte alignment padding).
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
        let files = [
            "benign/torch_tensors.pt",
            "benign/torch_module_state_dict.pt",
            "benign/torch_optimizer.pt",
        ];
        for name in files {
            let bytes = std::fs::read(dir.join(name)).expect("fixture");
            let image = image_of(&bytes).unwrap_or_else(|| panic!("{name}: no image"));
            let scanner = Scanner::default();
            assert_eq!(
                summary(&scan_image(&scanner, &image)),
                summary(&scanner.scan_bytes("t", &bytes)),
                "{name}"
            );
        }
    }

    #[test]
    fn storage_records_are_not_read_into_the_image() {
        // Larger than the tail read from the end, so its first bytes are only read if asked for.
        let storage = vec![7u8; 200_000];
        let bytes = build(&[
            member("m/data.pkl", DATA_PKL),
            member("m/data/0", &storage),
            member("m/version", b"3\n"),
        ]);
        let image = image_of(&bytes).expect("image");
        // The first bytes after a header may come along with it (one read per header);
        // the storage itself is not read.
        let at = bytes
            .windows(8)
            .position(|w| w == [7u8; 8])
            .expect("storage bytes")
            + 4096;
        assert_eq!(image.get(at..at + 8), None);
        let scanner = Scanner::default();
        assert_eq!(
            summary(&scan_image(&scanner, &image)),
            summary(&scanner.scan_bytes("t", &bytes))
        );
    }

    #[test]
    fn other_zips_fall_back_to_the_file() {
        assert!(image_of(&build(&[member("a.txt", b"hello")])).is_none());
        // A record only the local headers know, deferring its sizes: unpredictable.
        let mut hidden = member("m/hidden.pkl", DATA_PKL);
        hidden.flags = FLAG_DATA_DESCRIPTOR;
        hidden.in_central = false;
        let mut zip = build(&[member("m/data.pkl", DATA_PKL), hidden]);
        // Flag 0x8 with the local sizes still filled in is walked by those sizes, by the
        // reader and the image alike.
        let image = image_of(&zip).expect("sizes are known");
        let scanner = Scanner::default();
        assert_eq!(
            summary(&scan_image(&scanner, &image)),
            summary(&scanner.scan_bytes("t", &zip))
        );
        // With the sizes left to the data descriptor, the record's end is unknown.
        // The record is not in the central directory, so its name appears once, after its
        // 30-byte local header.
        let name = b"m/hidden.pkl";
        let header = zip
            .windows(name.len())
            .position(|w| w == name)
            .expect("local header")
            - 30;
        zip[header + 18..header + 26].fill(0);
        assert!(image_of(&zip).is_none());
    }
}
