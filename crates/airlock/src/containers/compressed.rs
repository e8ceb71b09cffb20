//! Single-stream compression wrappers: gzip (multi-member), bz2 (multi-stream), xz, raw LZMA
//! ("alone"), lz4 frames, zstd, zlib, and joblib's legacy `ZF` format. joblib writes its
//! compressed dumps in exactly these, and a scanner that does not decompress them reports a
//! malicious pickle as clean.
//!
//! Each stream is decoded with a pure-Rust crate under the file's budgets (see
//! [`super::read_bounded`]); the decoded bytes are scanned as a member named after the format
//! in angle brackets (`<gzip>`), routed by content. A stream that cannot be decoded to its
//! end is ARC009 (incomplete), and what was decoded before the break is still scanned.

use crate::containers::{Inflated, ReadEnd, read_bounded};
use crate::ctx::Ctx;
use crate::format::Format;
use crate::report::Finding;
use crate::rules::Rule;

pub use crate::limits::caps::compressed::MAX_LZMA_DICT_KIB;

/// joblib's legacy zlib container: `ZF`, then the uncompressed length as a hex string padded
/// with spaces to 19 characters (`len(hex(2**64))`), an optional extra space, then zlib data
/// (`joblib/numpy_pickle_compat.py`, `read_zfile`).
const ZF_PREFIX: &[u8] = b"ZF";
const ZF_LEN_FIELD: usize = 19;

/// The compression a stream's first bytes name, as its format (named "gzip", "bz2", "xz",
/// "lz4", "zstd", "joblib-zf", "zlib" or "lzma"), tested in the order the router tests them
/// (see [`crate::formats::sniff`], which also keeps a safetensors header that reads as a
/// zlib header away from here).
pub fn compression(data: &[u8]) -> Option<Format> {
    let starts = |magic: &[u8]| data.starts_with(magic);
    Some(if starts(b"\x1f\x8b") {
        Format::Gzip
    } else if starts(b"BZh") {
        Format::Bzip2
    } else if starts(b"\xfd7zXZ") {
        // joblib's `_XZ_PREFIX` is these five bytes (the sixth, 0x00, is not checked), so a
        // file cut after them is an xz stream to joblib.load, and reported incomplete here.
        Format::Xz
    } else if starts(b"\x04\x22\x4d\x18") {
        Format::Lz4
    } else if starts(b"\x28\xb5\x2f\xfd") {
        Format::Zstd
    } else if starts(ZF_PREFIX) {
        Format::JoblibZf
    } else if is_zlib_header(data) {
        Format::Zlib
    } else if starts(b"\x5d\x00\x00") {
        Format::Lzma
    } else {
        return None;
    })
}

/// A zlib stream header (CMF/FLG with a valid check value and deflate method), as joblib's
/// zlib compressor writes it. `x` (0x78) is also no pickle opcode CPython reads at the start of a
/// stream, so this cannot hide a pickle.
pub fn is_zlib_header(data: &[u8]) -> bool {
    match data {
        [cmf, flg, ..] => {
            *cmf == 0x78 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0 && flg & 0x20 == 0
        }
        _ => false,
    }
}

/// Decompresses `data` (a stream [`compression`] names) and scans the result. Returns the
/// format name [`compression`] gives.
pub fn scan(ctx: &mut Ctx, data: &[u8]) -> Format {
    let Some(format) = compression(data) else {
        ctx.report(Finding::new(
            Rule::ArchiveUnsupported,
            "not a compressed stream".to_string(),
        ));
        return Format::Unknown;
    };
    let (out, end) = decode(ctx, format, data);
    if let ReadEnd::Failed(why) = &end {
        ctx.report(Finding::new(
            Rule::ArchiveCorrupt,
            format!(
                "{format} stream could not be decoded to its end ({why}); the {} bytes decoded \
                 before that were scanned",
                out.len()
            ),
        ));
    }
    ctx.note(format!("{} bytes decompressed", out.len()));
    ctx.scan_member(&format!("<{format}>"), &out);
    format
}

fn decode(ctx: &mut Ctx, format: Format, data: &[u8]) -> (Inflated, ReadEnd) {
    let what = format!("{format} stream");
    let len = data.len() as u64;
    match format {
        Format::Gzip => read_bounded(ctx, &what, flate2::read::MultiGzDecoder::new(data), len),
        Format::Bzip2 => read_bounded(ctx, &what, bzip2::read::MultiBzDecoder::new(data), len),
        Format::Xz => match xz_dictionary_kib(data) {
            Some(kib) if kib > MAX_LZMA_DICT_KIB => dictionary_too_large(ctx, format, kib),
            _ => read_bounded(ctx, &what, lzma_rust2::XzReader::new(data, true), len),
        },
        Format::Lzma => decode_lzma_alone(ctx, &what, data),
        Format::Lz4 => {
            match read_bounded(ctx, &what, lz4_flex::frame::FrameDecoder::new(data), len) {
                (out, ReadEnd::Complete) => match lz4_frames_end(data) {
                    Ok(()) => (out, ReadEnd::Complete),
                    Err(why) => (out, ReadEnd::Failed(why)),
                },
                other => other,
            }
        }
        Format::Zstd => match zstd_window_kib(data) {
            Some(kib) if kib > MAX_ZSTD_WINDOW_KIB => window_too_large(ctx, kib),
            _ => decode_zstd(ctx, &what, data),
        },
        Format::JoblibZf => decode_zf(ctx, data),
        _ => read_bounded(ctx, &what, flate2::read::ZlibDecoder::new(data), len),
    }
}

fn decode_zstd(ctx: &mut Ctx, what: &str, data: &[u8]) -> (Inflated, ReadEnd) {
    match ruzstd::decoding::StreamingDecoder::new(data) {
        Ok(reader) => read_bounded(ctx, what, reader, data.len() as u64),
        Err(e) => (
            Inflated::empty(ctx.inflated_memory()),
            ReadEnd::Failed(e.to_string()),
        ),
    }
}

pub use crate::limits::caps::compressed::MAX_ZSTD_WINDOW_KIB;

/// The window size the first zstd frame declares, in KiB (RFC 8878, section 3.1.1.1): from
/// its window descriptor, or, for a single-segment frame, its content size.
fn zstd_window_kib(data: &[u8]) -> Option<u64> {
    let descriptor = *data.get(4)?;
    let single_segment = descriptor & 0x20 != 0;
    if !single_segment {
        let window = *data.get(5)?;
        let log = 10 + u32::from(window >> 3);
        let base = 1u64 << log;
        let size = base + (base / 8) * u64::from(window & 7);
        return Some(size / 1024);
    }
    let dictionary_len = [0usize, 1, 2, 4][usize::from(descriptor & 3)];
    let content_len = [1usize, 2, 4, 8][usize::from(descriptor >> 6)];
    let at = 5 + dictionary_len;
    let field = data.get(at..at + content_len)?;
    let mut bytes = [0u8; 8];
    bytes[..content_len].copy_from_slice(field);
    let size = u64::from_le_bytes(bytes) + if content_len == 2 { 256 } else { 0 };
    Some(size / 1024)
}

fn window_too_large(ctx: &mut Ctx, kib: u64) -> (Inflated, ReadEnd) {
    ctx.report(Finding::new(
        Rule::ArchiveLimit,
        format!(
            "zstd stream asks for a {kib} KiB window, over the {MAX_ZSTD_WINDOW_KIB} KiB limit; \
             not decoded"
        ),
    ));
    (Inflated::empty(ctx.inflated_memory()), ReadEnd::Limited)
}

/// Decodes a raw LZMA ("alone") stream, and fails it when the decoder ran out of input.
/// `lzma_rust2`'s range decoder reads a missing byte as 1 rather than failing (for speed), so
/// a stream cut in its last bytes can still "finish" its end marker; liblzma (Python's `lzma`,
/// joblib) raises "Compressed data ended before the end-of-stream marker was reached".
fn decode_lzma_alone(ctx: &mut Ctx, what: &str, data: &[u8]) -> (Inflated, ReadEnd) {
    let ran_out = std::cell::Cell::new(false);
    let input = EofWatch {
        rest: data,
        ran_out: &ran_out,
    };
    let (out, end) =
        match lzma_rust2::LzmaReader::new_mem_limit(input, MAX_LZMA_DICT_KIB + 64, None) {
            Ok(reader) => read_bounded(ctx, what, reader, data.len() as u64),
            Err(e) => (
                Inflated::empty(ctx.inflated_memory()),
                ReadEnd::Failed(e.to_string()),
            ),
        };
    if end == ReadEnd::Complete && ran_out.get() {
        let why = "the stream ends before its end-of-stream marker".to_string();
        return (out, ReadEnd::Failed(why));
    }
    (out, end)
}

/// Checks that `data` is a sequence of whole LZ4 frames, each ending with its end mark (and
/// content checksum when its flags announce one). `lz4_flex` ends the output silently when
/// the input stops at a block boundary or inside a frame header; Python's `lz4.frame` (joblib's
/// `.lz4`) raises "Compressed file ended before the end-of-stream marker was reached". Layout
/// from the LZ4 frame format specification 1.6.x: magic, FLG, BD, optional content size (8)
/// and dictionary id (4), header checksum; blocks of a 4-byte size (high bit: stored), their
/// data and optional checksum (4); a zero size is the end mark. Skippable frames are a magic
/// `0x184D2A5?` and a 4-byte length.
fn lz4_frames_end(data: &[u8]) -> Result<(), String> {
    let le32 = |at: usize| {
        data.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let cut = |at: usize| format!("the lz4 frame at offset {at} ends before its end mark");
    let mut at = 0usize;
    while at < data.len() {
        let frame = at;
        let magic = le32(at).ok_or_else(|| cut(frame))?;
        if magic & 0xFFFF_FFF0 == 0x184D_2A50 {
            let len = le32(at + 4).ok_or_else(|| cut(frame))? as usize;
            at = at.saturating_add(8).saturating_add(len);
            if at > data.len() {
                return Err(cut(frame));
            }
            continue;
        }
        let flags = *data.get(at + 4).ok_or_else(|| cut(frame))?;
        let block_checksum = flags & 0x10 != 0;
        let content_checksum = flags & 0x04 != 0;
        at += 4 + 2 + 1;
        at += if flags & 0x08 != 0 { 8 } else { 0 };
        at += if flags & 0x01 != 0 { 4 } else { 0 };
        loop {
            let size = le32(at).ok_or_else(|| cut(frame))?;
            at += 4;
            if size == 0 {
                break;
            }
            at = at.saturating_add((size & 0x7FFF_FFFF) as usize);
            at += if block_checksum { 4 } else { 0 };
        }
        at += if content_checksum { 4 } else { 0 };
        if at > data.len() {
            return Err(cut(frame));
        }
    }
    Ok(())
}

/// A slice reader that remembers whether it was asked for bytes after its end.
struct EofWatch<'a> {
    rest: &'a [u8],
    ran_out: &'a std::cell::Cell<bool>,
}

impl std::io::Read for EofWatch<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.rest.is_empty() && !buf.is_empty() {
            self.ran_out.set(true);
        }
        self.rest.read(buf)
    }
}

fn dictionary_too_large(ctx: &mut Ctx, format: Format, kib: u32) -> (Inflated, ReadEnd) {
    ctx.report(Finding::new(
        Rule::ArchiveLimit,
        format!(
            "{format} stream asks for a {kib} KiB dictionary, over the {MAX_LZMA_DICT_KIB} KiB \
             limit; not decoded"
        ),
    ));
    (Inflated::empty(ctx.inflated_memory()), ReadEnd::Limited)
}

/// Reads joblib's `ZF` container as `read_zfile` does, and checks the declared length.
fn decode_zf(ctx: &mut Ctx, data: &[u8]) -> (Inflated, ReadEnd) {
    let header = ZF_PREFIX.len() + ZF_LEN_FIELD;
    let Some(declared) = data
        .get(ZF_PREFIX.len()..header)
        .and_then(|field| std::str::from_utf8(field).ok())
        .and_then(parse_python_hex)
    else {
        return (
            Inflated::empty(ctx.inflated_memory()),
            ReadEnd::Failed("the ZF header's length field is not a hex number".into()),
        );
    };
    let body_start = if data.get(header) == Some(&b' ') {
        header + 1
    } else {
        header
    };
    let body = data.get(body_start..).unwrap_or_default();
    let decoder = flate2::read::ZlibDecoder::new(body);
    let (out, end) = read_bounded(ctx, "joblib ZF stream", decoder, body.len() as u64);
    if end == ReadEnd::Complete && out.len() as u64 != declared {
        let why = format!("declares {declared} bytes but holds {}", out.len());
        return (out, ReadEnd::Failed(why));
    }
    (out, end)
}

/// `int(s, 16)` for the strings joblib writes: optional whitespace, optional `0x`.
fn parse_python_hex(field: &str) -> Option<u64> {
    let s = field.trim();
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    u64::from_str_radix(&s.replace('_', ""), 16).ok()
}

/// Dictionary size of the first block's LZMA2 filter in an xz stream, in KiB, when the block
/// header can be read (xz file format 1.0.4, sections 2.1 and 3.1; LZMA2 property byte
/// encoding from section 5.3.1).
fn xz_dictionary_kib(data: &[u8]) -> Option<u32> {
    const STREAM_HEADER: usize = 12;
    let header_size = (usize::from(*data.get(STREAM_HEADER)?) + 1) * 4;
    let header = data.get(STREAM_HEADER..STREAM_HEADER + header_size)?;
    let flags = *header.get(1)?;
    let filters = usize::from(flags & 3) + 1;
    let mut at = 2;
    for present in [flags & 0x40 != 0, flags & 0x80 != 0] {
        if present {
            at += varint(header.get(at..)?)?.1;
        }
    }
    for _ in 0..filters {
        let (id, n) = varint(header.get(at..)?)?;
        at += n;
        let (props_len, n) = varint(header.get(at..)?)?;
        at += n;
        if id == 0x21 {
            let bits = u32::from(*header.get(at)? & 0x3f);
            if bits > 40 {
                return Some(u32::MAX);
            }
            let bytes = (2u64 | u64::from(bits & 1)) << (bits / 2 + 11);
            return u32::try_from(bytes / 1024).ok().or(Some(u32::MAX));
        }
        at += usize::try_from(props_len).ok()?;
    }
    None
}

/// An xz multibyte integer: value and encoded length (at most 9 bytes).
fn varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, b) in bytes.iter().take(9).enumerate() {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Reads a whole reader; used by tests to produce compressed fixtures.
#[cfg(test)]
fn read_all(mut r: impl std::io::Read) -> Vec<u8> {
    let mut v = Vec::new();
    r.read_to_end(&mut v).unwrap();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::FileReport;
    use crate::{Scanner, Verdict};
    use std::io::Write;

    const PICKLE: &[u8] = b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01.";

    fn scan(bytes: &[u8]) -> FileReport {
        Scanner::default().scan_bytes("t", bytes)
    }

    fn codes(r: &FileReport) -> Vec<&'static str> {
        r.findings.iter().map(|f| f.rule.code()).collect()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), Default::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), Default::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn bz2(data: &[u8]) -> Vec<u8> {
        read_all(bzip2::read::BzEncoder::new(
            data,
            bzip2::Compression::fast(),
        ))
    }

    fn xz(data: &[u8]) -> Vec<u8> {
        let mut w =
            lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::with_preset(3)).unwrap();
        w.write_all(data).unwrap();
        w.finish().unwrap()
    }

    fn lzma_alone(data: &[u8]) -> Vec<u8> {
        let opts = lzma_rust2::LzmaOptions::with_preset(3);
        let mut w = lzma_rust2::LzmaWriter::new_use_header(Vec::new(), &opts, None).unwrap();
        w.write_all(data).unwrap();
        w.finish().unwrap()
    }

    fn lz4(data: &[u8]) -> Vec<u8> {
        let mut w = lz4_flex::frame::FrameEncoder::new(Vec::new());
        w.write_all(data).unwrap();
        w.finish().unwrap()
    }

    fn zstd(data: &[u8]) -> Vec<u8> {
        ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
    }

    fn zf(data: &[u8]) -> Vec<u8> {
        let mut out = b"ZF".to_vec();
        out.extend_from_slice(format!("{:<19}", format!("{:#x}", data.len())).as_bytes());
        out.extend_from_slice(&zlib(data));
        out
    }

    type Maker = fn(&[u8]) -> Vec<u8>;
    const MAKERS: &[(&str, Maker)] = &[
        ("gzip", gzip),
        ("zlib", zlib),
        ("bz2", bz2),
        ("xz", xz),
        ("lzma", lzma_alone),
        ("lz4", lz4),
        ("zstd", zstd),
        ("joblib-zf", zf),
    ];

    #[test]
    fn every_format_is_decompressed_and_its_content_scanned() {
        for (name, make) in MAKERS {
            let packed = make(PICKLE);
            let report = scan(&packed);
            assert_eq!(report.format, *name);
            assert_eq!(report.members.len(), 1, "{name}");
            assert_eq!(report.members[0].path, format!("<{name}>"));
            assert_eq!(report.members[0].size, PICKLE.len() as u64, "{name}");
            assert!(
                !codes(&report).contains(&"ARC009"),
                "{name}: {:?}",
                report.findings
            );
        }
    }

    #[test]
    fn truncated_streams_are_incomplete_but_partly_scanned() {
        let body: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
        for (name, make) in MAKERS {
            let packed = make(&body);
            let cut = &packed[..packed.len() * 3 / 4];
            let report = scan(cut);
            assert_eq!(report.format, *name);
            assert!(
                codes(&report).contains(&"ARC009"),
                "{name}: {:?}",
                report.findings
            );
            assert_eq!(report.verdict, Verdict::Unscannable, "{name}");
            for cut in [0, 1, 5, 13, 21, 30] {
                let _ = scan(&packed[..cut.min(packed.len())]);
            }
        }
    }

    #[test]
    fn multi_member_gzip_is_read_whole() {
        let mut two = gzip(b"\x80\x02K\x01.");
        two.extend(gzip(b"\x80\x02K\x02."));
        let report = scan(&two);
        assert_eq!(report.members[0].size, 10);
    }

    #[test]
    fn compression_bombs_stop_at_the_ratio() {
        let limits = crate::Limits {
            max_compression_ratio: 50,
            ..Default::default()
        };
        let scanner = Scanner::new(crate::Policy::default(), limits);
        let zeros = vec![0u8; 4 << 20];
        for (name, make) in MAKERS {
            let report = scanner.scan_bytes("bomb", &make(&zeros));
            assert!(codes(&report).contains(&"ARC007"), "{name}");
            assert_eq!(report.verdict, Verdict::Unscannable);
            assert!(report.members[0].size < 4 << 20);
        }
    }

    #[test]
    fn the_inflated_budget_is_shared() {
        let limits = crate::Limits {
            max_inflated_bytes: 1000,
            ..Default::default()
        };
        let scanner = Scanner::new(crate::Policy::default(), limits);
        let report = scanner.scan_bytes("big", &gzip(&[1u8; 5000]));
        assert!(codes(&report).contains(&"ARC007"));
    }

    #[test]
    fn zf_length_must_match() {
        let mut bad = b"ZF".to_vec();
        bad.extend_from_slice(format!("{:<19}", "0x99").as_bytes());
        bad.extend_from_slice(&zlib(PICKLE));
        assert!(codes(&scan(&bad)).contains(&"ARC009"));
        // joblib <= 0.8.4 wrote one more space
        let mut old = b"ZF".to_vec();
        old.extend_from_slice(format!("{:<20}", format!("{:#x}", PICKLE.len())).as_bytes());
        old.extend_from_slice(&zlib(PICKLE));
        let report = scan(&old);
        assert_eq!(report.members[0].size, PICKLE.len() as u64);
        assert!(!codes(&report).contains(&"ARC009"));
        assert_eq!(parse_python_hex(" 0x1f  "), Some(31));
        assert_eq!(parse_python_hex("zz"), None);
    }

    #[test]
    fn huge_zstd_windows_are_refused() {
        let packed = zstd(PICKLE);
        assert!(zstd_window_kib(&packed).is_some_and(|k| k <= MAX_ZSTD_WINDOW_KIB));
        // Window descriptor: exponent 21 (2 GiB), as `zstd --long=31` writes.
        let mut large = packed.clone();
        large[4] &= !0x20;
        large.insert(5, 21 << 3);
        assert_eq!(zstd_window_kib(&large), Some(2 << 20));
        let report = scan(&large);
        assert!(codes(&report).contains(&"ARC007"), "{:?}", report.findings);
        assert_eq!(report.verdict, Verdict::Unscannable);
    }

    #[test]
    fn huge_lzma_dictionaries_are_refused() {
        let mut alone = lzma_alone(PICKLE);
        alone[1..5].copy_from_slice(&0xff00_0000u32.to_le_bytes());
        let report = scan(&alone);
        assert!(codes(&report).contains(&"ARC009"), "{:?}", report.findings);
        let packed = xz(PICKLE);
        assert!(xz_dictionary_kib(&packed).is_some_and(|k| k <= MAX_LZMA_DICT_KIB));
    }
}
