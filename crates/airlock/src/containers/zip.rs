//! A zip reader as lenient as PyTorch's, written by hand for loader parity.
//!
//! Why not the `zip` crate: `torch.load` reads zips with miniz, which ignores CRC-32 and the
//! general-purpose flag bits, takes names, sizes and methods from the central directory only,
//! and happily reads records that Python's `zipfile` (and the `zip` crate) refuse. Published
//! scanner bypasses live exactly in that gap (bad CRC, flag bits 0x1/0x20/0x40, a local-header
//! name different from the central one). A scanner must therefore read what miniz reads, and
//! also see the local headers, so it can report every place where the two readings disagree
//! and scan both. This module does that, zero-copy over the input slice.
//!
//! Reading model, following miniz (`mz_zip_reader_*`):
//! - the end-of-central-directory record is searched backwards over the last 64 KiB + 22
//!   bytes; a ZIP64 locator right before it points at the ZIP64 record, whose counts win;
//! - each central entry gives name, method, flags, CRC, sizes (ZIP64 extra field when a field
//!   is `0xFFFFFFFF`) and the local-header offset;
//! - the data starts after the *local* header's name and extra fields and is as long as the
//!   *central* compressed size.
//!
//! The local headers are also walked from the start of the file, so records that only a
//! streaming reader would see (not listed in the central directory) are found and scanned.
//!
//! The reader works on [`ZipBytes`]: a slice of the whole file, or the sparse image of a large
//! PyTorch zip ([`super::zip_image`]) that holds only the ranges this reader will ask for.

use crate::hash::{HashMap, HashMapExt};
use std::borrow::Cow;
use std::ops::Range;

use crate::containers::zip_image::SparseFile;
use crate::containers::{Inflated, ReadEnd, duplicates, read_bounded, unsafe_path};
use crate::ctx::Ctx;
use crate::format::Format;
use crate::limits::caps::zip::{MAX_COMMENT, MAX_CRC_CHECKED, MAX_RESERVED_ENTRIES};
use crate::report::Finding;
use crate::rules::Rule;

const LOCAL_SIG: &[u8] = b"PK\x03\x04";
const CENTRAL_SIG: &[u8] = b"PK\x01\x02";
const EOCD_SIG: &[u8] = b"PK\x05\x06";
const EOCD64_SIG: &[u8] = b"PK\x06\x06";
const LOCATOR_SIG: &[u8] = b"PK\x06\x07";
const DESCRIPTOR_SIG: &[u8] = b"PK\x07\x08";
const LOCAL_LEN: usize = 30;
const CENTRAL_LEN: usize = 46;
const EOCD_LEN: usize = 22;

/// General-purpose flag bits that Python's `zipfile` rejects or treats specially.
pub const FLAG_ENCRYPTED: u16 = 0x1;
pub const FLAG_DATA_DESCRIPTOR: u16 = 0x8;
pub const FLAG_PATCHED: u16 = 0x20;
pub const FLAG_STRONG_ENCRYPTION: u16 = 0x40;

/// Compression methods this reader decodes: the ones CPython's `zipfile` decodes (stored,
/// deflate, bzip2, LZMA), so every member a `zipfile`-based loader (`numpy.load` of an `.npz`,
/// Keras, pickle-in-zip loaders) can read is read here too. torch's own reader takes only
/// stored and deflate; decoding more than it does only ever adds to what is scanned.
pub const METHOD_STORED: u16 = 0;
pub const METHOD_DEFLATE: u16 = 8;
pub const METHOD_BZIP2: u16 = 12;
pub const METHOD_LZMA: u16 = 14;

/// One member, as the central directory and its local header describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipEntry<'a> {
    /// The name torch/miniz and Python's `zipfile` use: the central directory's (or, for a
    /// record found only by walking local headers, the local one).
    pub name: Cow<'a, str>,
    /// The local header's name, when the local header could be read.
    pub local_name: Option<Cow<'a, str>>,
    /// False for a record found only by walking local headers.
    pub in_central: bool,
    pub method: u16,
    pub local_method: Option<u16>,
    pub flags: u16,
    pub local_flags: Option<u16>,
    pub crc: u32,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    /// Sizes the local header declares (zero when deferred to a data descriptor).
    pub local_compressed_size: Option<u64>,
    pub local_uncompressed_size: Option<u64>,
    /// Where the local header starts.
    pub header_offset: u64,
    /// Where the member's data starts (after the local header), when the header is readable.
    pub data_offset: Option<usize>,
    /// Unix mode bits from the external attributes, when the archive was made on Unix.
    pub unix_mode: Option<u32>,
    /// The member's bytes (local header to end of data) overlap another central member's
    /// ([`Rule::ArchiveOverlap`]); such a member is never inflated.
    pub overlaps: bool,
}

impl ZipEntry<'_> {
    pub fn is_symlink(&self) -> bool {
        self.unix_mode.is_some_and(|m| m & 0o170000 == 0o120000)
    }

    pub fn is_dir(&self) -> bool {
        self.name.ends_with('/') || self.unix_mode.is_some_and(|m| m & 0o170000 == 0o040000)
    }

    /// Whether the local header tells a streaming reader something different from the
    /// central directory (name, method, or sizes when the local header carries them).
    pub fn local_disagrees(&self) -> bool {
        let name = self.local_name.as_ref().is_some_and(|n| *n != self.name);
        let method = self.local_method.is_some_and(|m| m != self.method);
        let deferred = self.local_flags.unwrap_or(self.flags) & FLAG_DATA_DESCRIPTOR != 0;
        let sizes = !deferred
            && (self
                .local_compressed_size
                .is_some_and(|s| s != self.compressed_size)
                || self
                    .local_uncompressed_size
                    .is_some_and(|s| s != self.uncompressed_size));
        name || method || sizes
    }
}

/// A member's bytes and whether they were read to the end of the member.
#[derive(Debug, PartialEq, Eq)]
pub struct MemberData<'a> {
    /// Borrowed from the archive for stored members, inflated for deflated ones.
    pub bytes: MemberBytes<'a>,
    /// False when the data ran past the end of the file or the decoder stopped early.
    pub complete: bool,
}

/// A member's bytes: borrowed from the archive (stored) or decompressed ([`Inflated`]).
#[derive(Debug, Eq)]
pub enum MemberBytes<'a> {
    Borrowed(&'a [u8]),
    Inflated(Inflated),
}

impl std::ops::Deref for MemberBytes<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            MemberBytes::Borrowed(bytes) => bytes,
            MemberBytes::Inflated(bytes) => bytes,
        }
    }
}

impl AsRef<[u8]> for MemberBytes<'_> {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl PartialEq for MemberBytes<'_> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

/// Which kind of zip a loader would take this for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZipFlavour {
    /// `torch.save` archive: `<root>/data.pkl`, with `<root>` taken from the first record.
    TorchZip,
    /// `numpy.savez`: every file member is a `.npy`.
    Npz,
    Generic,
}

/// The bytes a zip is read from: the whole file, or a sparse image of it.
#[derive(Debug, Clone, Copy)]
pub enum ZipBytes<'a> {
    Whole(&'a [u8]),
    /// Only some ranges are present; asking for any other range is answered like asking
    /// past the end of a slice (`None`).
    Sparse(&'a SparseFile),
}

impl<'a> ZipBytes<'a> {
    pub fn len(self) -> usize {
        match self {
            ZipBytes::Whole(data) => data.len(),
            ZipBytes::Sparse(image) => usize::try_from(image.len()).unwrap_or(usize::MAX),
        }
    }

    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    pub fn get(self, range: Range<usize>) -> Option<&'a [u8]> {
        match self {
            ZipBytes::Whole(data) => data.get(range),
            ZipBytes::Sparse(image) => image.get(range),
        }
    }

    /// The bytes from `start` on (for a sparse image: to the end of the range present there).
    pub fn get_from(self, start: usize) -> Option<&'a [u8]> {
        match self {
            ZipBytes::Whole(data) => data.get(start..),
            ZipBytes::Sparse(image) => image.get_from(start),
        }
    }
}

impl<'a> From<&'a [u8]> for ZipBytes<'a> {
    fn from(data: &'a [u8]) -> Self {
        ZipBytes::Whole(data)
    }
}

impl<'a> From<&'a Vec<u8>> for ZipBytes<'a> {
    fn from(data: &'a Vec<u8>) -> Self {
        ZipBytes::Whole(data)
    }
}

/// A parsed zip archive. Parsing never fails: what could not be read is listed in
/// [`ZipArchive::problems`] (reported as ARC009) and whatever could be read is kept.
#[derive(Debug)]
pub struct ZipArchive<'a> {
    data: ZipBytes<'a>,
    entries: Vec<ZipEntry<'a>>,
    problems: Vec<String>,
    /// Whether an end-of-central-directory record was found.
    has_directory: bool,
}

/// Where the central directory is and how many entries it claims.
struct Directory {
    offset: u64,
    size: u64,
    count: u64,
}

impl<'a> ZipArchive<'a> {
    /// Reads the central directory, each entry's local header, and the chain of local headers
    /// from the start of the file.
    pub fn parse(data: impl Into<ZipBytes<'a>>) -> ZipArchive<'a> {
        let mut archive = Self::read_directory(data.into());
        archive.walk_local_headers();
        archive
    }

    /// Reads the central directory and each entry's local header.
    fn read_directory(data: ZipBytes<'a>) -> ZipArchive<'a> {
        let mut archive = ZipArchive {
            data,
            entries: Vec::new(),
            problems: Vec::new(),
            has_directory: false,
        };
        match find_directory(data) {
            Ok(dir) => {
                archive.has_directory = true;
                archive.read_central(&dir);
                archive.mark_overlaps();
            }
            Err(problem) => archive.problems.push(problem),
        }
        archive
    }

    /// Central entries first (in directory order), then records found only in local headers.
    pub fn entries(&self) -> &[ZipEntry<'a>] {
        &self.entries
    }

    /// Whether a central directory was found (a file that merely ends in zip-like bytes has
    /// none).
    pub fn has_directory(&self) -> bool {
        self.has_directory
    }

    /// Structural problems: missing or truncated directory, unreadable local headers.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// The member's bytes as torch would read them (central method and compressed size).
    /// Stored data is borrowed; deflated data is inflated under the file's budgets. Returns
    /// `None` (after reporting why) when nothing can be read; a partial inflate reports ARC009
    /// or ARC007 and returns what was decoded.
    pub fn read(&self, entry: &ZipEntry<'a>, ctx: &mut Ctx) -> Option<MemberData<'a>> {
        self.read_as(entry, entry.method, entry.compressed_size, ctx)
    }

    /// The member's bytes as a streaming reader would take them from the local header, when
    /// that differs from [`ZipArchive::read`].
    pub fn read_local(&self, entry: &ZipEntry<'a>, ctx: &mut Ctx) -> Option<MemberData<'a>> {
        let method = entry.local_method?;
        let size = entry.local_compressed_size?;
        if entry.local_flags.unwrap_or(0) & FLAG_DATA_DESCRIPTOR != 0 && size == 0 {
            return None;
        }
        self.read_as(entry, method, size, ctx)
    }

    fn read_as(
        &self,
        entry: &ZipEntry<'a>,
        method: u16,
        size: u64,
        ctx: &mut Ctx,
    ) -> Option<MemberData<'a>> {
        let name = &entry.name;
        if entry.overlaps {
            // Reported once for the archive (`report_anomalies`); never inflated.
            return None;
        }
        let Some(start) = entry.data_offset else {
            ctx.report(Finding::new(
                Rule::ArchiveCorrupt,
                format!("`{name}`: local header missing or truncated; member not read"),
            ));
            return None;
        };
        let end = usize::try_from(size)
            .ok()
            .and_then(|s| start.checked_add(s))
            .filter(|&end| end <= self.data.len());
        let raw = match end {
            Some(end) => self.data.get(start..end).unwrap_or_default(),
            None => {
                ctx.report(
                    Finding::new(
                        Rule::ArchiveCorrupt,
                        format!("`{name}`: {size} bytes of data run past the end of the file"),
                    )
                    .at(start as u64),
                );
                self.data.get_from(start).unwrap_or_default()
            }
        };
        match method {
            METHOD_STORED => Some(MemberData {
                complete: end.is_some(),
                bytes: MemberBytes::Borrowed(raw),
            }),
            METHOD_DEFLATE => {
                let decoder = flate2::read::DeflateDecoder::new(raw);
                Some(inflate_member(ctx, name, "deflate", decoder, size, start))
            }
            METHOD_BZIP2 => {
                // zipfile: one `bz2.BZ2Decompressor` stream per member.
                let decoder = bzip2::read::BzDecoder::new(raw);
                Some(inflate_member(ctx, name, "bzip2", decoder, size, start))
            }
            METHOD_LZMA => match lzma_member_decoder(raw, entry.uncompressed_size) {
                Ok(decoder) => Some(inflate_member(ctx, name, "LZMA", decoder, size, start)),
                Err(why) => {
                    ctx.report(
                        Finding::new(
                            Rule::ArchiveCorrupt,
                            format!("`{name}`: LZMA member not decoded: {why}"),
                        )
                        .at(start as u64),
                    );
                    None
                }
            },
            other => {
                ctx.report(Finding::new(
                    Rule::ArchiveUnsupported,
                    format!("`{name}`: compression method {other} is not decoded; not inspected"),
                ));
                None
            }
        }
    }

    /// Reports what is wrong with the archive's structure and headers: ARC009 problems,
    /// local/central disagreement and local-only records (ARC001), flag bits (ARC003, for
    /// members whose content turns out readable the flag is reported by [`scan`]), unsafe
    /// paths (ARC005), links (ARC006) and duplicate names (ARC008). CRC and encryption need
    /// the member's bytes and are checked by [`check_content`].
    pub fn report_anomalies(&self, ctx: &mut Ctx) {
        for problem in &self.problems {
            ctx.report(Finding::new(Rule::ArchiveCorrupt, problem.clone()));
        }
        self.report_overlaps(ctx);
        for entry in &self.entries {
            report_entry_anomalies(entry, self.has_directory, ctx);
        }
        let central = self.entries.iter().filter(|e| e.in_central);
        for name in duplicates(central.map(|e| e.name.as_ref())) {
            ctx.report(Finding::new(
                Rule::ArchiveDuplicate,
                format!("`{name}` appears more than once in the central directory"),
            ));
        }
    }

    /// One ARC011 finding for all overlapping members, naming the first pair.
    fn report_overlaps(&self, ctx: &mut Ctx) {
        let mut overlapping = self.entries.iter().filter(|e| e.overlaps);
        let Some(first) = overlapping.next() else {
            return;
        };
        let count = 1 + overlapping.count();
        let central = self.entries.iter().filter(|e| e.in_central).count();
        ctx.report(
            Finding::new(
                Rule::ArchiveOverlap,
                format!(
                    "{count} of {central} members overlap another member's bytes (the first is \
                     `{}` at offset {}); they are not inflated (a non-recursive zip bomb \
                     shares one compressed kernel this way)",
                    first.name, first.header_offset
                ),
            )
            .at(first.header_offset),
        );
    }

    fn read_central(&mut self, dir: &Directory) {
        let data = self.data;
        let Some(mut records) = CentralRecords::new(data, dir) else {
            self.problems.push(format!(
                "central directory offset {} is past the end of the file",
                dir.offset
            ));
            return;
        };
        let room = data.len().saturating_sub(records.at) as u64;
        if dir.count.saturating_mul(CENTRAL_LEN as u64) > room {
            self.problems.push(format!(
                "central directory claims {} entries but only {room} bytes follow it",
                dir.count
            ));
        }
        if dir.size > room {
            self.problems.push(format!(
                "central directory claims {} bytes but only {room} remain",
                dir.size
            ));
        }
        // Reserved up front: growing by doubling copies the entries into fresh pages, which
        // on a checkpoint with hundreds of records costs more than parsing them. Capped, since
        // the count is the file's claim.
        self.entries
            .reserve(usize::try_from(records.left.min(MAX_RESERVED_ENTRIES)).unwrap_or(0));
        for record in records.by_ref() {
            self.entries.push(record.into_entry(data));
        }
        if records.left > 0 {
            let index = records.read;
            self.problems.push(format!(
                "central directory entry {index} at offset {} is malformed; {index} of {} entries read",
                records.at, dir.count
            ));
        }
    }

    /// Marks the central members whose byte ranges (local header through the end of the data
    /// the central directory declares) overlap another's. Only offsets and sizes are used, so
    /// a non-recursive bomb (Fifield's overlapping or fully shared kernels) is known before
    /// anything is inflated. The directory is normally in offset order, so sorting is skipped
    /// when it already is.
    fn mark_overlaps(&mut self) {
        let extent = |e: &ZipEntry| {
            let start = e.header_offset;
            let data = e
                .data_offset
                .map_or(start.saturating_add(LOCAL_LEN as u64), |d| d as u64);
            (start, data.saturating_add(e.compressed_size))
        };
        let mut order: Vec<usize> = (0..self.entries.len()).collect();
        if !self
            .entries
            .windows(2)
            .all(|w| w[0].header_offset < w[1].header_offset)
        {
            order.sort_by_key(|&i| self.entries[i].header_offset);
        }
        // The member reaching furthest so far: each member starting before its end overlaps it.
        let mut furthest: Option<(usize, u64)> = None;
        for index in order {
            let (start, end) = extent(&self.entries[index]);
            if let Some((other, other_end)) = furthest {
                if start < other_end {
                    self.entries[index].overlaps = true;
                    self.entries[other].overlaps = true;
                }
                if end <= other_end {
                    continue;
                }
            }
            furthest = Some((index, end));
        }
    }

    /// Walks local headers from offset 0, as a streaming reader would, adding records the
    /// central directory does not list.
    fn walk_local_headers(&mut self) {
        let data = self.data;
        // Offset -> the last directory entry whose header sits there (its size is the one
        // the walk steps by when several entries share a header).
        let mut by_offset: HashMap<u64, usize> = HashMap::with_capacity(self.entries.len());
        for (index, e) in self.entries.iter().enumerate() {
            by_offset.insert(e.header_offset, index);
        }
        // From the start of the file, or, when something else comes first (a self-extracting
        // archive, a llamafile's executable), from the first record the directory names.
        let mut at = if parse_local(data, 0).is_some() {
            0
        } else {
            let first = self.entries.iter().map(|e| e.header_offset).min();
            first.and_then(|o| usize::try_from(o).ok()).unwrap_or(0)
        };
        loop {
            let offset = at as u64;
            let next = match by_offset.get(&offset).map(|&i| &self.entries[i]) {
                // The directory entry already read this very header (`parse_central` with its
                // local header): the same bytes, so the same reading; only where the data
                // starts is needed to step past it.
                Some(ZipEntry {
                    data_offset: Some(start),
                    compressed_size,
                    ..
                }) => Some((*start, *compressed_size)),
                known => {
                    let Some(local) = parse_local(data, at) else {
                        return;
                    };
                    let deferred =
                        local.flags & FLAG_DATA_DESCRIPTOR != 0 && local.compressed_size == 0;
                    let size = match known {
                        Some(e) => e.compressed_size,
                        None if deferred => {
                            self.add_local_only(offset, &local);
                            self.problems.push(format!(
                                "local header at offset {offset} (`{}`) defers its sizes to a \
                                 data descriptor and is not in the central directory; the \
                                 records after it were not walked",
                                local.name
                            ));
                            return;
                        }
                        None => {
                            self.add_local_only(offset, &local);
                            local.compressed_size
                        }
                    };
                    Some((local.data_offset, size))
                }
            };
            let Some(next) = next.and_then(|(start, size)| {
                usize::try_from(size)
                    .ok()
                    .and_then(|s| start.checked_add(s))
            }) else {
                return;
            };
            at = skip_descriptor(data, next);
        }
    }

    fn add_local_only(&mut self, offset: u64, local: &LocalHeader<'a>) {
        let deferred = local.flags & FLAG_DATA_DESCRIPTOR != 0 && local.compressed_size == 0;
        // Sizes deferred to a data descriptor: a deflate stream finds its own end, so it is
        // given the rest of the file.
        let compressed_size = if deferred && local.method == METHOD_DEFLATE {
            self.data.len().saturating_sub(local.data_offset) as u64
        } else {
            local.compressed_size
        };
        self.entries.push(ZipEntry {
            name: local.name.clone(),
            local_name: Some(local.name.clone()),
            in_central: false,
            method: local.method,
            local_method: Some(local.method),
            flags: local.flags,
            local_flags: Some(local.flags),
            crc: local.crc,
            compressed_size,
            uncompressed_size: local.uncompressed_size,
            local_compressed_size: Some(local.compressed_size),
            local_uncompressed_size: Some(local.uncompressed_size),
            header_offset: offset,
            data_offset: Some(local.data_offset),
            unix_mode: None,
            overlaps: false,
        });
    }
}

/// Decides the flavour the way the loaders would: torch looks for `<root>/data.pkl` with the
/// root taken from the first record's name; an archive of `.npy` members only is an `.npz`.
pub fn zip_flavour(archive: &ZipArchive) -> ZipFlavour {
    let central: Vec<&ZipEntry> = archive.entries().iter().filter(|e| e.in_central).collect();
    if let Some(first) = central.first() {
        let root = first.name.split('/').next().unwrap_or_default();
        let wanted = format!("{root}/data.pkl");
        if central.iter().any(|e| e.name == wanted) {
            return ZipFlavour::TorchZip;
        }
    }
    let mut files = central.iter().filter(|e| !e.is_dir()).peekable();
    if files.peek().is_some() && files.all(|e| e.name.ends_with(".npy")) {
        ZipFlavour::Npz
    } else {
        ZipFlavour::Generic
    }
}

/// Scans one member by content as torch reads it, and the local-header reading where it
/// differs.
pub fn scan_entry<'a>(archive: &ZipArchive<'a>, entry: &ZipEntry<'a>, ctx: &mut Ctx) {
    scan_entry_with(archive, entry, ctx, |ctx, data| ctx.route(data));
}

/// Like [`scan_entry`], with `scan` in place of the content route (for members the archive's
/// layout identifies; `scan` is expected to run the content route too, see
/// [`crate::formats::route_besides`]).
pub fn scan_entry_with<'a>(
    archive: &ZipArchive<'a>,
    entry: &ZipEntry<'a>,
    ctx: &mut Ctx,
    mut scan: impl FnMut(&mut Ctx, &[u8]) -> Format,
) {
    let Some(member) = archive.read(entry, ctx) else {
        return;
    };
    if check_content(entry, &member, ctx) {
        ctx.scan_member_with(&entry.name, &member.bytes, &mut scan);
    }
    if entry.in_central && entry.local_disagrees() {
        let same_reading = entry.local_method == Some(entry.method)
            && entry.local_compressed_size == Some(entry.compressed_size);
        if !same_reading && let Some(other) = archive.read_local(entry, ctx) {
            let name = entry.local_name.as_deref().unwrap_or(&entry.name);
            ctx.scan_member_with(&format!("{name} (local header)"), &other.bytes, &mut scan);
        }
    }
}

/// Checks the member's bytes against its CRC and flags. Returns false for a member that is
/// really encrypted (flag 0x1 and content that neither matches its CRC nor looks like
/// anything a loader reads), which is reported as ARC004 and not scanned.
pub fn check_content(entry: &ZipEntry, member: &MemberData, ctx: &mut Ctx) -> bool {
    let name = &entry.name;
    let bytes = member.bytes.as_ref();
    let flags = entry.flags | entry.local_flags.unwrap_or(0);
    let encryption_flag = flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION) != 0;
    let crc = (encryption_flag || bytes.len() <= MAX_CRC_CHECKED).then(|| crc32fast::hash(bytes));
    let crc_ok = crc.is_none_or(|crc| crc == entry.crc);
    let readable = crc_ok || looks_loadable(bytes, ctx);
    if encryption_flag && !readable {
        ctx.report(Finding::new(
            Rule::ArchiveEncrypted,
            format!("`{name}` is encrypted (flags {flags:#06x}); its content cannot be inspected"),
        ));
        return false;
    }
    let odd = flags & (FLAG_ENCRYPTED | FLAG_PATCHED | FLAG_STRONG_ENCRYPTION);
    if odd != 0 {
        ctx.report(Finding::new(
            Rule::ArchiveFlags,
            format!(
                "`{name}` sets flag bits {odd:#06x} but its data is readable as plain; \
                 Python's zipfile refuses it, torch reads it"
            ),
        ));
    }
    // A partial read was already reported (ARC009/ARC007); its CRC says nothing more.
    if let Some(crc) = crc
        && crc != entry.crc
        && member.complete
    {
        ctx.report(Finding::new(
            Rule::ArchiveChecksum,
            format!(
                "`{name}`: CRC-32 is {crc:#010x}, the header says {:#010x}; Python's zipfile \
                 refuses it, torch reads it",
                entry.crc
            ),
        ));
    }
    true
}

/// True when the bytes look like something a loader deserializes: a known container or a
/// pickle starting with PROTO. Encrypted data looks like noise and matches neither.
fn looks_loadable(bytes: &[u8], ctx: &Ctx) -> bool {
    let pickle = matches!(bytes, [0x80, proto, ..] if *proto <= 5);
    pickle || ctx.recognises(bytes)
}

fn report_entry_anomalies(entry: &ZipEntry, has_directory: bool, ctx: &mut Ctx) {
    let name = &entry.name;
    if !entry.in_central && has_directory {
        ctx.report(
            Finding::new(
                Rule::ArchiveHeaderMismatch,
                format!(
                    "local header `{name}` is not listed in the central directory: torch does \
                     not see it, streaming readers do (scanned)"
                ),
            )
            .at(entry.header_offset),
        );
    } else if entry.local_disagrees() {
        ctx.report(
            Finding::new(Rule::ArchiveHeaderMismatch, describe_disagreement(entry))
                .at(entry.header_offset),
        );
    }
    let local = entry.local_name.as_deref().filter(|l| *l != name.as_ref());
    for path in std::iter::once(name.as_ref()).chain(local) {
        if let Some(why) = unsafe_path(path) {
            ctx.report(Finding::new(
                Rule::ArchivePathTraversal,
                format!("`{path}`: {why}"),
            ));
        }
    }
    if entry.is_symlink() {
        ctx.report(Finding::new(
            Rule::ArchiveLink,
            format!("`{name}` is a symbolic link"),
        ));
    }
}

fn describe_disagreement(entry: &ZipEntry) -> String {
    let mut parts = Vec::new();
    if let Some(local) = entry.local_name.as_ref().filter(|l| **l != entry.name) {
        parts.push(format!("local name `{local}`"));
    }
    if let Some(m) = entry.local_method.filter(|m| *m != entry.method) {
        parts.push(format!("local method {m} vs central {}", entry.method));
    }
    if let Some(s) = entry
        .local_compressed_size
        .filter(|s| *s != entry.compressed_size)
    {
        parts.push(format!(
            "local compressed size {s} vs central {}",
            entry.compressed_size
        ));
    }
    if let Some(s) = entry
        .local_uncompressed_size
        .filter(|s| *s != entry.uncompressed_size)
    {
        parts.push(format!(
            "local size {s} vs central {}",
            entry.uncompressed_size
        ));
    }
    format!(
        "central entry `{}` disagrees with its local header: {}",
        entry.name,
        parts.join(", ")
    )
}

/// Finds the end-of-central-directory record (and its ZIP64 form) the way miniz does.
fn find_directory(data: ZipBytes) -> Result<Directory, String> {
    let pos = last_eocd_signature(data, SHORT_TAIL)
        .or_else(|| last_eocd_signature(data, MAX_COMMENT + EOCD_LEN))
        .filter(|&p| p + EOCD_LEN <= data.len())
        .ok_or("no end-of-central-directory record: the archive is truncated or not a zip")?;
    let mut dir = Directory {
        count: u64::from(le16(data, pos + 10).unwrap_or(0)),
        size: u64::from(le32(data, pos + 12).unwrap_or(0)),
        offset: u64::from(le32(data, pos + 16).unwrap_or(0)),
    };
    if let Some(locator) = pos.checked_sub(20)
        && data.get(locator..locator + 4) == Some(LOCATOR_SIG)
    {
        let at = le64(data, locator + 8)
            .and_then(|o| usize::try_from(o).ok())
            .filter(|&o| data.get(o..o + 4) == Some(EOCD64_SIG))
            .ok_or("ZIP64 locator points at no ZIP64 end-of-central-directory record")?;
        dir = Directory {
            count: le64(data, at + 32).ok_or("truncated ZIP64 record")?,
            size: le64(data, at + 40).ok_or("truncated ZIP64 record")?,
            offset: le64(data, at + 48).ok_or("truncated ZIP64 record")?,
        };
    }
    Ok(dir)
}

/// Bytes at the end searched first for the end record: an archive without a long comment has
/// it there, and a sparse image then needs only that much of the tail.
pub(crate) const SHORT_TAIL: usize = 4096;

/// Where the last `PK\x05\x06` in the final `window` bytes starts. Searching a shorter window
/// first finds the same signature whenever it finds one, since the last one is wanted.
fn last_eocd_signature(data: ZipBytes, window: usize) -> Option<usize> {
    let start = data.len().saturating_sub(window);
    let tail = data.get(start..data.len())?;
    tail.windows(4)
        .rposition(|w| w == EOCD_SIG)
        .map(|p| p + start)
}

/// The central directory's records in order, read as [`ZipArchive`] reads them: as many as
/// the end record counts and the bytes after the directory's offset can hold, up to the first
/// malformed one. The sparse image of [`super::zip_image`] is planned from the same reading,
/// so it holds exactly what the archive will ask for.
pub(crate) struct CentralRecords<'a> {
    data: ZipBytes<'a>,
    /// Where the next record starts (after a malformed one: where it starts).
    at: usize,
    /// Records still to read.
    left: u64,
    /// Records read so far.
    read: u64,
}

impl<'a> CentralRecords<'a> {
    /// `None` when the directory's offset is past the end of `data`.
    fn new(data: ZipBytes<'a>, dir: &Directory) -> Option<Self> {
        let at = usize::try_from(dir.offset)
            .ok()
            .filter(|&o| o <= data.len())?;
        let fits = data.len().saturating_sub(at) as u64 / CENTRAL_LEN as u64;
        Some(CentralRecords {
            data,
            at,
            left: dir.count.min(fits),
            read: 0,
        })
    }

    /// The records of the directory the end records of `data` point at, or `None` when
    /// there is no such directory.
    pub(crate) fn of(data: ZipBytes<'a>) -> Option<Self> {
        CentralRecords::new(data, &find_directory(data).ok()?)
    }

    /// How many records are left to read if none is malformed (the end record's count,
    /// bounded by the bytes that follow the directory's offset).
    pub(crate) fn left(&self) -> u64 {
        self.left
    }
}

impl<'a> Iterator for CentralRecords<'a> {
    type Item = CentralRecord<'a>;

    fn next(&mut self) -> Option<CentralRecord<'a>> {
        if self.left == 0 {
            return None;
        }
        let record = read_central_record(self.data, self.at)?;
        self.at = record.next;
        self.left -= 1;
        self.read += 1;
        Some(record)
    }
}

/// A central-directory record's fields as stored, before its name is decoded.
pub(crate) struct CentralRecord<'a> {
    made_by_host: u8,
    flags: u16,
    method: u16,
    crc: u32,
    pub(crate) compressed_size: u64,
    uncompressed_size: u64,
    pub(crate) name: &'a [u8],
    external: u32,
    pub(crate) header_offset: u64,
    /// Where the next record starts.
    next: usize,
}

fn read_central_record(data: ZipBytes<'_>, at: usize) -> Option<CentralRecord<'_>> {
    // Every field read below lies in the fixed part: fetch it once (a sparse image looks
    // each request up).
    let h = data.get(at..at.checked_add(CENTRAL_LEN)?)?;
    if h.get(..4)? != CENTRAL_SIG {
        return None;
    }
    let mut compressed = u64::from(le32(h, 20)?);
    let mut uncompressed = u64::from(le32(h, 24)?);
    let name_len = usize::from(le16(h, 28)?);
    let extra_len = usize::from(le16(h, 30)?);
    let comment_len = usize::from(le16(h, 32)?);
    let mut offset = u64::from(le32(h, 42)?);
    let name_start = at + CENTRAL_LEN;
    let names = data.get(name_start..name_start + name_len + extra_len)?;
    let (name, extra) = names.split_at(name_len);
    let next = name_start + name_len + extra_len + comment_len;
    if next > data.len() {
        return None;
    }
    if let Some(mut z64) = zip64_extra(extra) {
        for field in [&mut uncompressed, &mut compressed, &mut offset] {
            if *field == 0xFFFF_FFFF {
                *field = z64.next()?;
            }
        }
    }
    Some(CentralRecord {
        made_by_host: *h.get(5)?,
        flags: le16(h, 8)?,
        method: le16(h, 10)?,
        crc: le32(h, 16)?,
        compressed_size: compressed,
        uncompressed_size: uncompressed,
        name,
        external: le32(h, 38)?,
        header_offset: offset,
        next,
    })
}

impl<'a> CentralRecord<'a> {
    /// The entry, with its local header read from `data`.
    fn into_entry(self, data: ZipBytes<'a>) -> ZipEntry<'a> {
        let local = usize::try_from(self.header_offset)
            .ok()
            .and_then(|o| read_local_record(data, o));
        let name = lossy_name(self.name);
        // The same bytes decode to the same text: decoded once when the names agree (as
        // they do in every archive a real writer made).
        let local_name = local.as_ref().map(|(_, bytes)| {
            if *bytes == self.name {
                name.clone()
            } else {
                lossy_name(bytes)
            }
        });
        let local = local.map(|(header, _)| header);
        ZipEntry {
            name,
            local_name,
            in_central: true,
            method: self.method,
            local_method: local.as_ref().map(|l| l.method),
            flags: self.flags,
            local_flags: local.as_ref().map(|l| l.flags),
            crc: self.crc,
            compressed_size: self.compressed_size,
            uncompressed_size: self.uncompressed_size,
            local_compressed_size: local.as_ref().map(|l| l.compressed_size),
            local_uncompressed_size: local.as_ref().map(|l| l.uncompressed_size),
            header_offset: self.header_offset,
            data_offset: local.as_ref().map(|l| l.data_offset),
            unix_mode: (self.made_by_host == 3).then_some(self.external >> 16),
            overlaps: false,
        }
    }
}

pub(crate) struct LocalHeader<'a> {
    pub(crate) name: Cow<'a, str>,
    pub(crate) method: u16,
    pub(crate) flags: u16,
    pub(crate) crc: u32,
    pub(crate) compressed_size: u64,
    pub(crate) uncompressed_size: u64,
    pub(crate) data_offset: usize,
}

pub(crate) fn parse_local(data: ZipBytes<'_>, at: usize) -> Option<LocalHeader<'_>> {
    let (raw, name) = read_local_record(data, at)?;
    Some(LocalHeader {
        name: lossy_name(name),
        method: raw.method,
        flags: raw.flags,
        crc: raw.crc,
        compressed_size: raw.compressed_size,
        uncompressed_size: raw.uncompressed_size,
        data_offset: raw.data_offset,
    })
}

/// A local header as [`parse_local`] reads it, without its name (the sparse image's walk
/// needs only where the data starts and how long it says it is).
pub(crate) fn local_extent(data: ZipBytes<'_>, at: usize) -> Option<LocalHeader<'static>> {
    read_local_record(data, at).map(|(header, _)| header)
}

/// The local header at `at` (with an empty name) and its name's bytes.
fn read_local_record(data: ZipBytes<'_>, at: usize) -> Option<(LocalHeader<'static>, &[u8])> {
    let h = data.get(at..at.checked_add(LOCAL_LEN)?)?;
    if h.get(..4)? != LOCAL_SIG {
        return None;
    }
    let name_len = usize::from(le16(h, 26)?);
    let extra_len = usize::from(le16(h, 28)?);
    let name_start = at + LOCAL_LEN;
    // Name and extra field in one request.
    let names = data.get(name_start..name_start + name_len + extra_len)?;
    let (name, extra) = names.split_at(name_len);
    let mut uncompressed = u64::from(le32(h, 22)?);
    let mut compressed = u64::from(le32(h, 18)?);
    if let Some(mut z64) = zip64_extra(extra) {
        for field in [&mut uncompressed, &mut compressed] {
            if *field == 0xFFFF_FFFF {
                *field = z64.next().unwrap_or(*field);
            }
        }
    }
    let header = LocalHeader {
        name: Cow::Borrowed(""),
        flags: le16(h, 6)?,
        method: le16(h, 8)?,
        crc: le32(h, 14)?,
        compressed_size: compressed,
        uncompressed_size: uncompressed,
        data_offset: name_start + name_len + extra_len,
    };
    Some((header, name))
}

/// The 8-byte values of the ZIP64 extended-information extra field (id 0x0001), in order.
fn zip64_extra(mut extra: &[u8]) -> Option<impl Iterator<Item = u64> + '_> {
    while extra.len() >= 4 {
        let id = le16(extra, 0)?;
        let len = usize::from(le16(extra, 2)?);
        let body = extra.get(4..4 + len)?;
        if id == 1 {
            return Some(body.chunks_exact(8).filter_map(|c| le64(c, 0)));
        }
        extra = extra.get(4 + len..)?;
    }
    None
}

/// Skips a data descriptor (with or without its signature, 32- or 64-bit sizes) if the next
/// local header is not right at `at`.
/// Where the next local header starts after a member's data ending at `at`: right there, or
/// after a data descriptor (with or without its signature, 32- or 64-bit sizes).
pub(crate) fn skip_descriptor(data: ZipBytes, at: usize) -> usize {
    let is_local = |o: usize| data.get(o..o + 4) == Some(LOCAL_SIG);
    if is_local(at) {
        return at;
    }
    let sig = usize::from(data.get(at..at + 4) == Some(DESCRIPTOR_SIG)) * 4;
    [12, 20]
        .into_iter()
        .map(|len| at + sig + len)
        .find(|&o| is_local(o))
        .unwrap_or(at)
}

fn le16<'a>(data: impl Into<ZipBytes<'a>>, at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        data.into().get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn le32<'a>(data: impl Into<ZipBytes<'a>>, at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        data.into().get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn le64<'a>(data: impl Into<ZipBytes<'a>>, at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        data.into().get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// A member name as text: borrowed when it is valid UTF-8 (checked with `str::from_utf8`, far
/// cheaper than the lossy decoder's chunk walk), else with U+FFFD replacements.
fn lossy_name(name: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(name) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(name),
    }
}

/// Decodes one compressed member under the file's budgets; a stream that breaks is ARC009
/// and what came out before the break is still scanned.
fn inflate_member<'a>(
    ctx: &mut Ctx,
    name: &str,
    method: &str,
    decoder: impl std::io::Read,
    compressed: u64,
    start: usize,
) -> MemberData<'a> {
    let (out, end) = read_bounded(ctx, &format!("`{name}`"), decoder, compressed);
    let complete = end == ReadEnd::Complete;
    if let ReadEnd::Failed(why) = end {
        ctx.report(
            Finding::new(
                Rule::ArchiveCorrupt,
                format!(
                    "`{name}`: {method} stream broken after {} bytes: {why}",
                    out.len()
                ),
            )
            .at(start as u64),
        );
    }
    MemberData {
        bytes: MemberBytes::Inflated(out),
        complete,
    }
}

/// A zip LZMA member as `zipfile` reads it (`LZMADecompressor`, APPNOTE 5.8.8): a 2-byte
/// version, a 2-byte length of the properties, 5 bytes of LZMA1 properties (lc/lp/pb and the
/// dictionary size), then raw LZMA1 data, read up to the member's declared size as
/// `ZipExtFile` does. Dictionaries over [`MAX_LZMA_DICT_KIB`] are refused: the decoder
/// allocates the whole dictionary first.
fn lzma_member_decoder(
    raw: &[u8],
    uncompressed: u64,
) -> Result<lzma_rust2::LzmaReader<&[u8]>, String> {
    use crate::containers::compressed::MAX_LZMA_DICT_KIB;
    let header = raw.get(..4).ok_or("shorter than its 4-byte header")?;
    let props_len = usize::from(u16::from_le_bytes([header[2], header[3]]));
    if props_len != 5 {
        return Err(format!("{props_len}-byte properties (LZMA1 has 5)"));
    }
    let props = raw.get(4..9).ok_or("its properties are cut")?;
    let dict_size = u32::from_le_bytes([props[1], props[2], props[3], props[4]]);
    if dict_size / 1024 > MAX_LZMA_DICT_KIB {
        return Err(format!(
            "a {} KiB dictionary is over the {MAX_LZMA_DICT_KIB} KiB limit",
            dict_size / 1024
        ));
    }
    let data = raw.get(9..).unwrap_or_default();
    lzma_rust2::LzmaReader::new_with_props(data, uncompressed, props[0], dict_size, None)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
pub(crate) mod testzip {
    //! A tiny zip writer for tests: every field can be made wrong on purpose.

    use std::io::Write;

    #[derive(Clone)]
    pub struct Member {
        pub name: String,
        pub local_name: Option<String>,
        pub data: Vec<u8>,
        pub deflate: bool,
        pub flags: u16,
        pub crc: Option<u32>,
        pub unix_mode: Option<u32>,
        pub zip64: bool,
        pub in_central: bool,
    }

    pub fn member(name: &str, data: &[u8]) -> Member {
        Member {
            name: name.into(),
            local_name: None,
            data: data.to_vec(),
            deflate: false,
            flags: 0,
            crc: None,
            unix_mode: None,
            zip64: false,
            in_central: true,
        }
    }

    pub fn build(members: &[Member]) -> Vec<u8> {
        build_after(&[], members)
    }

    /// A zip appended to `prefix` with offsets counted from the start of the whole file, as
    /// self-extracting archives and llamafiles are laid out.
    pub fn build_after(prefix: &[u8], members: &[Member]) -> Vec<u8> {
        let mut out = prefix.to_vec();
        let mut central = Vec::new();
        let mut count = 0u16;
        for m in members {
            let payload = if m.deflate {
                let mut e = flate2::write::DeflateEncoder::new(Vec::new(), Default::default());
                e.write_all(&m.data).unwrap();
                e.finish().unwrap()
            } else {
                m.data.clone()
            };
            let crc = m.crc.unwrap_or_else(|| crc32fast::hash(&m.data));
            let method: u16 = if m.deflate { 8 } else { 0 };
            let offset = out.len() as u32;
            let local_name = m.local_name.as_deref().unwrap_or(&m.name);
            let (csize, usize_, extra) = sizes(m, payload.len() as u64, false);
            header(
                &mut out,
                b"PK\x03\x04",
                None,
                m.flags,
                method,
                crc,
                csize,
                usize_,
            );
            out.extend_from_slice(&(local_name.len() as u16).to_le_bytes());
            out.extend_from_slice(&(extra.len() as u16).to_le_bytes());
            out.extend_from_slice(local_name.as_bytes());
            out.extend_from_slice(&extra);
            out.extend_from_slice(&payload);
            if !m.in_central {
                continue;
            }
            count += 1;
            let (csize, usize_, extra) = sizes(m, payload.len() as u64, true);
            let host = if m.unix_mode.is_some() { 3u8 } else { 0 };
            header(
                &mut central,
                b"PK\x01\x02",
                Some(host),
                m.flags,
                method,
                crc,
                csize,
                usize_,
            );
            central.extend_from_slice(&(m.name.len() as u16).to_le_bytes());
            central.extend_from_slice(&(extra.len() as u16).to_le_bytes());
            central.extend_from_slice(&[0; 6]); // comment len, disk, internal attrs
            central.extend_from_slice(&(m.unix_mode.unwrap_or(0) << 16).to_le_bytes());
            let off = if m.zip64 { u32::MAX } else { offset };
            central.extend_from_slice(&off.to_le_bytes());
            central.extend_from_slice(m.name.as_bytes());
            central.extend_from_slice(&extra);
            if m.zip64 {
                // The offset is the third zip64 value; patch it in.
                let at = central.len() - 8;
                central[at..].copy_from_slice(&u64::from(offset).to_le_bytes());
            }
        }
        let cd_offset = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out
    }

    /// Sizes for a header, with a zip64 extra field when asked (central also holds the offset).
    fn sizes(m: &Member, csize: u64, central: bool) -> (u32, u32, Vec<u8>) {
        if !m.zip64 {
            return (csize as u32, m.data.len() as u32, Vec::new());
        }
        let mut extra = vec![1, 0];
        let values = if central { 3 } else { 2 };
        extra.extend_from_slice(&(values * 8u16).to_le_bytes());
        extra.extend_from_slice(&(m.data.len() as u64).to_le_bytes());
        extra.extend_from_slice(&csize.to_le_bytes());
        if central {
            extra.extend_from_slice(&0u64.to_le_bytes());
        }
        (u32::MAX, u32::MAX, extra)
    }

    #[allow(clippy::too_many_arguments)]
    fn header(
        out: &mut Vec<u8>,
        sig: &[u8],
        host: Option<u8>,
        flags: u16,
        method: u16,
        crc: u32,
        csize: u32,
        usize_: u32,
    ) {
        out.extend_from_slice(sig);
        if let Some(host) = host {
            out.extend_from_slice(&[20, host]);
        }
        out.extend_from_slice(&20u16.to_le_bytes());
        out.extend_from_slice(&flags.to_le_bytes());
        out.extend_from_slice(&method.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&csize.to_le_bytes());
        out.extend_from_slice(&usize_.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::testzip::{build, member};
    use super::*;
    use crate::report::FileReport;
    use crate::{Scanner, Verdict};

    fn scan_zip(bytes: &[u8]) -> FileReport {
        Scanner::default().scan_bytes("t.zip", bytes)
    }

    fn codes(report: &FileReport) -> Vec<&'static str> {
        report.findings.iter().map(|f| f.rule.code()).collect()
    }

    fn member_paths(report: &FileReport) -> Vec<&str> {
        report.members.iter().map(|m| m.path.as_str()).collect()
    }

    const PICKLE: &[u8] = b"\x80\x02cos\nsystem\nq\x00.";

    #[test]
    fn plain_archive_members_are_scanned_by_content() {
        let zip = build(&[member("a/data.txt", PICKLE), member("a/notes", b"hello")]);
        let archive = ZipArchive::parse(&zip);
        assert!(archive.problems().is_empty());
        assert_eq!(archive.entries().len(), 2);
        let report = scan_zip(&zip);
        assert_eq!(report.format, "zip");
        assert_eq!(member_paths(&report), ["a/data.txt", "a/notes"]);
        assert!(codes(&report).iter().all(|c| !c.starts_with("ARC")));
    }

    #[test]
    fn torch_and_npz_flavours() {
        let torch = build(&[
            member("archive/data.pkl", PICKLE),
            member("archive/data/0", &[0; 16]),
        ]);
        assert_eq!(
            zip_flavour(&ZipArchive::parse(&torch)),
            ZipFlavour::TorchZip
        );
        assert_eq!(scan_zip(&torch).format, "pytorch-zip");
        let nested = build(&[member("x/y/data.pkl", PICKLE)]);
        assert_eq!(
            zip_flavour(&ZipArchive::parse(&nested)),
            ZipFlavour::Generic
        );
        let npz = build(&[member("a.npy", b"\x93NUMPY"), member("b.npy", b"\x93NUMPY")]);
        assert_eq!(zip_flavour(&ZipArchive::parse(&npz)), ZipFlavour::Npz);
        assert_eq!(scan_zip(&npz).format, "npz");
    }

    #[test]
    fn crc_mismatch_is_reported_and_member_still_scanned() {
        let mut m = member("archive/data.pkl", PICKLE);
        m.crc = Some(0xdead_beef);
        let report = scan_zip(&build(&[m]));
        assert!(codes(&report).contains(&"ARC002"));
        assert_eq!(member_paths(&report), ["archive/data.pkl"]);
    }

    #[test]
    fn flag_bits_on_readable_data_are_reported_not_treated_as_encryption() {
        for flag in [FLAG_ENCRYPTED, FLAG_PATCHED, FLAG_STRONG_ENCRYPTION] {
            let mut m = member("archive/data.pkl", PICKLE);
            m.flags = flag;
            let report = scan_zip(&build(&[m]));
            assert!(codes(&report).contains(&"ARC003"), "flag {flag:#x}");
            assert!(!codes(&report).contains(&"ARC004"));
            assert_eq!(member_paths(&report), ["archive/data.pkl"]);
        }
    }

    #[test]
    fn truly_encrypted_member_is_unscannable() {
        let mut m = member(
            "secret.bin",
            &[0x5a, 0x13, 0xf7, 0x01, 0x99, 0x42, 0x00, 0xee],
        );
        m.flags = FLAG_ENCRYPTED;
        m.crc = Some(0x1234_5678);
        let report = scan_zip(&build(&[m]));
        assert!(codes(&report).contains(&"ARC004"));
        assert!(report.members.is_empty());
        assert_eq!(report.verdict, Verdict::Unscannable);
    }

    #[test]
    fn local_and_central_names_disagree_both_readings_scanned() {
        let mut m = member("archive/data.pkl", PICKLE);
        m.local_name = Some("archive/harmless".into());
        let zip = build(&[m]);
        let archive = ZipArchive::parse(&zip);
        let entry = &archive.entries()[0];
        assert_eq!(entry.name, "archive/data.pkl");
        assert_eq!(entry.local_name.as_deref(), Some("archive/harmless"));
        let report = scan_zip(&zip);
        assert!(codes(&report).contains(&"ARC001"));
        assert_eq!(report.verdict, Verdict::Dangerous);
        // Same bytes under both names: scanned once.
        assert_eq!(member_paths(&report), ["archive/data.pkl"]);
    }

    #[test]
    fn local_method_disagreement_scans_the_other_reading() {
        let mut m = member("x.pkl", PICKLE);
        m.deflate = true;
        let mut zip = build(&[m]);
        // Make the local header claim "stored": a streaming reader sees the deflate bytes raw.
        zip[8] = 0;
        let report = scan_zip(&zip);
        assert!(codes(&report).contains(&"ARC001"));
        assert_eq!(member_paths(&report), ["x.pkl", "x.pkl (local header)"]);
    }

    #[test]
    fn deflated_members_are_inflated() {
        let mut m = member("archive/data.pkl", &PICKLE.repeat(100));
        m.deflate = true;
        let zip = build(&[m]);
        let report = scan_zip(&zip);
        let pickle = report
            .members
            .iter()
            .find(|m| m.path == "archive/data.pkl")
            .expect("member");
        assert_eq!(pickle.size, PICKLE.len() as u64 * 100);
        assert!(!codes(&report).contains(&"ARC002"));
    }

    #[test]
    fn zip64_sizes_and_offsets_are_read() {
        let mut m = member("archive/data.pkl", PICKLE);
        m.zip64 = true;
        let zip = build(&[member("archive/version", b"3"), m]);
        let archive = ZipArchive::parse(&zip);
        assert!(archive.problems().is_empty(), "{:?}", archive.problems());
        let e = &archive.entries()[1];
        assert_eq!(e.compressed_size, PICKLE.len() as u64);
        assert_eq!(e.local_compressed_size, Some(PICKLE.len() as u64));
        assert!(!e.local_disagrees());
        assert_eq!(scan_zip(&zip).members.len(), 2);
    }

    #[test]
    fn zip64_end_record_is_followed() {
        let mut zip = build(&[member("a", b"1"), member("b", b"2")]);
        let eocd = zip.len() - 22;
        let cd_offset = u32::from_le_bytes(zip[eocd + 16..eocd + 20].try_into().unwrap());
        let cd_size = u32::from_le_bytes(zip[eocd + 12..eocd + 16].try_into().unwrap());
        let old_eocd = zip.split_off(eocd);
        let eocd64_at = zip.len() as u64;
        zip.extend_from_slice(b"PK\x06\x06");
        zip.extend_from_slice(&44u64.to_le_bytes());
        zip.extend_from_slice(&[45, 0, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        zip.extend_from_slice(&2u64.to_le_bytes());
        zip.extend_from_slice(&2u64.to_le_bytes());
        zip.extend_from_slice(&u64::from(cd_size).to_le_bytes());
        zip.extend_from_slice(&u64::from(cd_offset).to_le_bytes());
        zip.extend_from_slice(b"PK\x06\x07\0\0\0\0");
        zip.extend_from_slice(&eocd64_at.to_le_bytes());
        zip.extend_from_slice(&1u32.to_le_bytes());
        let mut eocd_rec = old_eocd;
        eocd_rec[10..12].copy_from_slice(&[0xff, 0xff]);
        eocd_rec[16..20].copy_from_slice(&[0xff; 4]);
        zip.extend_from_slice(&eocd_rec);
        let archive = ZipArchive::parse(&zip);
        assert!(archive.problems().is_empty(), "{:?}", archive.problems());
        assert_eq!(archive.entries().len(), 2);
    }

    #[test]
    fn traversal_symlink_and_duplicates() {
        let mut link = member("link", b"/etc/passwd");
        link.unix_mode = Some(0o120777);
        let zip = build(&[
            member("../evil.pkl", PICKLE),
            member("C:\\x", b"1"),
            link,
            member("dup", b"1"),
            member("dup", b"2"),
        ]);
        let archive = ZipArchive::parse(&zip);
        assert!(archive.entries()[2].is_symlink());
        let report = scan_zip(&zip);
        let c = codes(&report);
        assert_eq!(c.iter().filter(|c| **c == "ARC005").count(), 2);
        assert!(c.contains(&"ARC006"));
        assert_eq!(c.iter().filter(|c| **c == "ARC008").count(), 1);
        assert_eq!(report.members.len(), 5, "duplicates are both scanned");
    }

    #[test]
    fn records_outside_the_central_directory_are_found() {
        let mut hidden = member("hidden.pkl", PICKLE);
        hidden.in_central = false;
        let zip = build(&[member("a", b"1"), hidden, member("b", b"2")]);
        let archive = ZipArchive::parse(&zip);
        let local_only: Vec<_> = archive.entries().iter().filter(|e| !e.in_central).collect();
        assert_eq!(local_only.len(), 1);
        assert_eq!(local_only[0].name, "hidden.pkl");
        let report = scan_zip(&zip);
        assert!(codes(&report).contains(&"ARC001"));
        assert!(member_paths(&report).contains(&"hidden.pkl"));
    }

    #[test]
    fn truncated_archive_still_scans_what_it_can() {
        let zip = build(&[member("a.pkl", PICKLE), member("b", &[7; 100])]);
        let cut = &zip[..60];
        let report = scan_zip(cut);
        assert!(codes(&report).contains(&"ARC009"));
        // The member that could be read imports os.system: dangerous beats unscannable.
        assert_eq!(report.verdict, Verdict::Dangerous);
        assert!(member_paths(&report).contains(&"a.pkl"));
    }

    #[test]
    fn streamed_member_without_directory_is_inflated() {
        let mut m = member("s.pkl", &PICKLE.repeat(10));
        m.deflate = true;
        m.flags = FLAG_DATA_DESCRIPTOR;
        let mut zip = build(&[m]);
        // Zero the local sizes (deferred to a descriptor) and drop the central directory.
        zip[18..26].fill(0);
        let cd = zip.windows(4).position(|w| w == CENTRAL_SIG).unwrap();
        zip.truncate(cd);
        let report = scan_zip(&zip);
        assert!(codes(&report).contains(&"ARC009"));
        assert_eq!(report.members[0].size, PICKLE.len() as u64 * 10);
    }

    #[test]
    fn bogus_counts_do_not_allocate_or_panic() {
        let mut zip = build(&[member("a", b"1")]);
        let eocd = zip.len() - 22;
        zip[eocd + 10..eocd + 12].copy_from_slice(&[0xff, 0xff]);
        let report = scan_zip(&zip);
        assert!(codes(&report).contains(&"ARC009"));
        let mut zip = build(&[member("a", b"1")]);
        let eocd = zip.len() - 22;
        zip[eocd + 16..eocd + 20].copy_from_slice(&[0xff, 0xff, 0xff, 0x7f]);
        assert!(codes(&scan_zip(&zip)).contains(&"ARC009"));
    }

    #[test]
    fn deflate_bomb_is_stopped() {
        let mut m = member("bomb", &vec![0u8; 4 << 20]);
        m.deflate = true;
        let zip = build(&[m]);
        let limits = crate::Limits {
            max_compression_ratio: 100,
            ..Default::default()
        };
        let report = Scanner::new(crate::Policy::default(), limits).scan_bytes("b.zip", &zip);
        assert!(codes(&report).contains(&"ARC007"));
        assert_eq!(report.verdict, Verdict::Unscannable);
    }

    #[test]
    fn unknown_method_is_unsupported() {
        let mut zip = build(&[member("a", b"data")]);
        // method 99 (WinZip's AES marker; neither zipfile nor Airlock decodes it) in both
        // headers. bzip2 (12) and LZMA (14) are decoded, as zipfile does.
        zip[8] = 99;
        let cd = zip.len() - 22 - 46 - 1;
        zip[cd + 10] = 99;
        let report = scan_zip(&zip);
        assert!(codes(&report).contains(&"ARC010"));
    }

    #[test]
    fn every_prefix_and_corruption_is_handled_without_panic() {
        let mut m = member("archive/data.pkl", &PICKLE.repeat(20));
        m.deflate = true;
        let mut z = member("archive/z", b"abc");
        z.zip64 = true;
        let zip = build(&[m, z, member("archive/version", b"3")]);
        for cut in 0..zip.len() {
            let _ = scan_zip(&zip[..cut]);
        }
        for i in 0..zip.len() {
            let mut bad = zip.clone();
            bad[i] ^= 0xff;
            let _ = scan_zip(&bad);
        }
    }
}
