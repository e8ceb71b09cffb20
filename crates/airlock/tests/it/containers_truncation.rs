//! Every container Airlock opens, cut at every offset (a dense sample for the larger ones):
//! no cut may be reported safe. Each fixture is built here, scans safe whole, and every
//! exception is a cut the reference loader accepts too, justified where it is allowed.
//!
//! Also here: the bomb classes of issue 20 (each rejected within its limits, quickly) and
//! `--timeout` in the container loops.

use std::io::Write;
use std::time::{Duration, Instant};

use airlock::{FileReport, Limits, Policy, Scanner, Verdict};

use crate::finding_codes;

/// A benign pickle (protocol 4): a dict of a few hundred ints and strings. Big enough that
/// compressed streams span several blocks, small enough to cut at every offset.
fn benign_pickle() -> Vec<u8> {
    let mut body = b"\x80\x04}\x94(".to_vec();
    for i in 0..300u32 {
        let key = format!("key{i}");
        body.push(b'\x8c'); // SHORT_BINUNICODE
        body.push(key.len() as u8);
        body.extend_from_slice(key.as_bytes());
        body.push(b'J'); // BININT
        body.extend_from_slice(&(i.wrapping_mul(2_654_435_761)).to_le_bytes());
    }
    body.extend_from_slice(b"u.");
    body
}

fn scan(bytes: &[u8]) -> FileReport {
    Scanner::default().scan_bytes("t", bytes)
}

/// Offsets to cut at: every one up to `dense`, then a sample of about 1500 more.
fn cuts(len: usize, dense: usize) -> impl Iterator<Item = usize> {
    let step = (len.saturating_sub(dense) / 1500).max(1);
    (0..len.min(dense)).chain((dense.min(len)..len).step_by(step))
}

/// Cuts `whole` everywhere (except where `accepted` says the loader takes the shorter file
/// too) and asserts no cut is safe. `whole` itself must be safe, so the test can fail.
fn assert_no_cut_is_safe(what: &str, whole: &[u8], accepted: impl Fn(usize) -> bool) -> usize {
    let report = scan(whole);
    assert_eq!(
        report.verdict,
        Verdict::Safe,
        "{what}: the whole fixture must be safe ({})",
        finding_codes(&report)
    );
    let mut checked = 0;
    for cut in cuts(whole.len(), 4096) {
        if accepted(cut) {
            continue;
        }
        let report = scan(&whole[..cut]);
        assert_ne!(
            report.verdict,
            Verdict::Safe,
            "{what} cut at {cut} of {} is called safe ({}, format {})",
            whole.len(),
            finding_codes(&report),
            report.format
        );
        // A prefix of a benign container proves nothing dangerous: truncated, not malformed.
        assert_ne!(
            report.verdict,
            Verdict::Dangerous,
            "{what} cut at {cut} of {} is called dangerous ({}, format {})",
            whole.len(),
            finding_codes(&report),
            report.format
        );
        checked += 1;
    }
    checked
}

/// Cuts that leave too few bytes to identify the container: what is left is not that
/// container any more (and no loader accepts it). Those bytes are routed by content like any
/// file and rated by the formats' own rules, which do not belong to this sweep.
fn shorter_than_magic(magic_len: usize) -> impl Fn(usize) -> bool {
    move |cut| cut < magic_len
}

// ---- single-stream compressors ----------------------------------------------------------

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn bz2(data: &[u8]) -> Vec<u8> {
    let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
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

/// joblib's legacy `ZF` container (`numpy_pickle_compat.write_zfile`).
fn joblib_zf(data: &[u8]) -> Vec<u8> {
    let mut out = b"ZF".to_vec();
    out.extend_from_slice(format!("{:<19}", format!("{:#x}", data.len())).as_bytes());
    out.extend_from_slice(&zlib(data));
    out
}

#[test]
fn compressed_streams_cut_anywhere_are_never_safe() {
    let pickle = benign_pickle();
    type Maker = fn(&[u8]) -> Vec<u8>;
    // Magic lengths as `formats::sniff` needs them; Python's readers raise EOFError
    // ("Compressed file ended before the end-of-stream marker was reached") or zlib.error on
    // every cut below the full length, so no other cut is accepted.
    let makers: [(&str, Maker, usize); 8] = [
        ("gzip", gzip, 3),
        ("zlib", zlib, 2),
        ("bz2", bz2, 4),
        ("xz", xz, 6),
        ("lzma", lzma_alone, 13),
        ("lz4", lz4, 4),
        ("zstd", zstd, 4),
        ("joblib-zf", joblib_zf, 3),
    ];
    for (name, make, magic) in makers {
        let whole = make(&pickle);
        assert_eq!(scan(&whole).format, name);
        let checked = assert_no_cut_is_safe(name, &whole, shorter_than_magic(magic));
        assert!(checked > 100, "{name}: {checked} cuts");
    }
}

// ---- tar ----------------------------------------------------------------------------------

fn tar_of(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn tar_cut_anywhere_is_never_safe_unless_tarfile_reads_it_whole() {
    let pickle = benign_pickle();
    let whole = tar_of(&[("pickle", &pickle), ("tensors", b"\x80\x02K\x01.")]);
    // Where the last member's padding ends: from there on only the end-of-archive blocks
    // (1024 zero bytes) follow.
    let members_end = whole.len() - 1024;
    assert!(whole[members_end..].iter().all(|&b| b == 0));
    // Python's tarfile (which torch.load uses for legacy tars) stops without an error at
    // the first header block that is missing, short or all zeros once a member was read
    // (`TarFile.next`: EmptyHeaderError, TruncatedHeaderError and EOFHeaderError end the
    // listing when offset != 0). So a tar cut anywhere inside its end-of-archive blocks, or
    // missing them altogether, lists exactly the same members: those cuts are accepted.
    // A cut inside a member's data or padding is not: the next `next()` finds the byte at
    // `offset - 1` missing and raises ReadError("unexpected end of data").
    //
    // The same holds for a cut right after any member's padding (the next header block
    // missing): `tarfile` lists the members before it and stops, so Airlock scans exactly
    // what the loader sees. Cuts shorter than the `ustar` magic (offset 257) no longer
    // identify a tar (see `shorter_than_magic`).
    let boundaries = [512 + pickle.len().div_ceil(512) * 512];
    let accepted = |cut: usize| {
        cut >= members_end || boundaries.contains(&cut) || shorter_than_magic(262)(cut)
    };
    let checked = assert_no_cut_is_safe("tar", &whole, accepted);
    assert!(checked > 1000);
    // Cuts on a block boundary are read whole: same members, no finding. (A cut inside a
    // zero block is called unscannable: stricter than tarfile, never safe.)
    for cut in [members_end, members_end + 512] {
        let report = scan(&whole[..cut]);
        assert_eq!(
            report.verdict,
            Verdict::Safe,
            "cut {cut}: {}",
            finding_codes(&report)
        );
        assert_eq!(report.members.len(), 2);
    }
}

#[test]
fn tar_cut_inside_the_padding_after_a_member_is_unscannable() {
    let whole = tar_of(&[("a.pkl", b"\x80\x02K\x01."), ("b", b"x")]);
    // header (512) + 5 data bytes + 507 padding: cut after the data, inside the padding
    for cut in [512 + 5, 512 + 300, 1023] {
        let report = scan(&whole[..cut]);
        assert_eq!(
            report.verdict,
            Verdict::Unscannable,
            "cut {cut}: {}",
            finding_codes(&report)
        );
    }
}

// ---- zip ----------------------------------------------------------------------------------

/// A minimal zip writer (stored or deflated members, central directory, end record), as
/// Python's `zipfile` writes them.
fn zip_of(members: &[(&str, &[u8], bool)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data, deflate) in members {
        let packed = if *deflate {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), Default::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        } else {
            data.to_vec()
        };
        let method: u16 = if *deflate { 8 } else { 0 };
        let crc = crc32fast::hash(data);
        let offset = out.len() as u32;
        let fields = |sig: &[u8], central: bool| {
            let mut h = sig.to_vec();
            if central {
                h.extend_from_slice(&20u16.to_le_bytes());
            }
            h.extend_from_slice(&20u16.to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes());
            h.extend_from_slice(&method.to_le_bytes());
            h.extend_from_slice(&[0; 4]);
            h.extend_from_slice(&crc.to_le_bytes());
            h.extend_from_slice(&(packed.len() as u32).to_le_bytes());
            h.extend_from_slice(&(data.len() as u32).to_le_bytes());
            h.extend_from_slice(&(name.len() as u16).to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes());
            if central {
                h.extend_from_slice(&[0; 6]);
                h.extend_from_slice(&0u32.to_le_bytes());
                h.extend_from_slice(&offset.to_le_bytes());
            }
            h.extend_from_slice(name.as_bytes());
            h
        };
        out.extend(fields(b"PK\x03\x04", false));
        out.extend_from_slice(&packed);
        central.extend(fields(b"PK\x01\x02", true));
    }
    let dir_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    let count = (members.len() as u16).to_le_bytes();
    out.extend_from_slice(&count);
    out.extend_from_slice(&count);
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&dir_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

#[test]
fn zip_cut_anywhere_is_never_safe() {
    let pickle = benign_pickle();
    let whole = zip_of(&[
        ("stored.pkl", &pickle, false),
        ("deflated.pkl", &pickle, true),
        ("notes.txt", b"hello", false),
    ]);
    // Every reader finds a zip by its end record, the last 22 bytes: no shorter file is
    // the same archive to any of them.
    let checked = assert_no_cut_is_safe("zip", &whole, shorter_than_magic(4));
    assert!(checked > 1000);
}

// ---- 7z -----------------------------------------------------------------------------------

fn sevenz_of(members: &[(&str, &[u8])], solid: bool) -> Vec<u8> {
    use sevenz_rust2::{ArchiveEntry, ArchiveWriter};
    let mut w = ArchiveWriter::new(std::io::Cursor::new(Vec::new())).unwrap();
    if solid {
        let (entries, readers): (Vec<_>, Vec<_>) = members
            .iter()
            .map(|(n, d)| (ArchiveEntry::new_file(n), (*d).into()))
            .unzip();
        w.push_archive_entries(entries, readers).unwrap();
    } else {
        for (n, d) in members {
            w.push_archive_entry(ArchiveEntry::new_file(n), Some(*d))
                .unwrap();
        }
    }
    w.finish().unwrap().into_inner()
}

#[test]
fn sevenz_cut_anywhere_is_never_safe() {
    let pickle = benign_pickle();
    for solid in [false, true] {
        let whole = sevenz_of(&[("a.pkl", &pickle), ("b.txt", b"hello")], solid);
        // py7zr and 7-Zip read the header at the end the start header points at: every cut
        // loses it or part of a packed stream.
        let checked = assert_no_cut_is_safe("7z", &whole, shorter_than_magic(6));
        assert!(checked > 500);
    }
}

// ---- bombs --------------------------------------------------------------------------------

/// Generous for a debug build on a loaded CI machine; the release build's numbers are in
/// docs/limits.md.
const BOMB_TIME: Duration = Duration::from_secs(5);

fn assert_rejected_quickly(what: &str, bytes: &[u8], expected: Verdict, rule: &str) {
    let started = Instant::now();
    let report = scan(bytes);
    let took = started.elapsed();
    assert_eq!(
        report.verdict,
        expected,
        "{what}: {}",
        finding_codes(&report)
    );
    assert!(
        report.findings.iter().any(|f| f.rule.code() == rule),
        "{what}: {}",
        finding_codes(&report)
    );
    assert!(took < BOMB_TIME, "{what} took {took:?}");
}

/// gzip of gzip of ... of `zeros` zero bytes, `levels` deep.
fn nested_gzip(zeros: usize, levels: usize) -> Vec<u8> {
    let mut data = gzip(&vec![0u8; zeros]);
    for _ in 1..levels {
        data = gzip(&data);
    }
    data
}

#[test]
fn nested_gzip_is_stopped_by_the_files_budget_not_per_level() {
    // Each level stays under the per-member ratio; together they are a bomb (the issue's
    // 268-byte file inflated to 1 GB). 256 MiB of zeros, gzipped three times: a few hundred
    // bytes.
    let bomb = nested_gzip(256 << 20, 3);
    assert!(bomb.len() < 2048, "{}", bomb.len());
    assert_rejected_quickly("nested gzip", &bomb, Verdict::Unscannable, "ARC007");
    // Every level together stays within the file's budget (its 64 MiB floor here); per
    // level, the innermost alone would reach the ratio's 250+ MiB.
    let report = scan(&bomb);
    let inflated: u64 = report.members.iter().map(|m| m.size).sum();
    let budget = Limits::default().inflated_budget(bomb.len() as u64);
    assert!(
        inflated <= budget,
        "{inflated} bytes inflated, budget {budget}"
    );
}

#[test]
fn a_stream_far_over_the_ratio_is_stopped_at_it() {
    let bomb = gzip(&vec![0u8; 64 << 20]);
    assert_rejected_quickly("gzip ratio", &bomb, Verdict::Unscannable, "ARC007");
}

/// Fifield's non-recursive bomb, "quoted overlap" variant simplified to full overlap: one
/// deflated kernel, and many central entries pointing at the same local header.
fn overlapping_zip(kernel_zeros: usize, entries: usize) -> Vec<u8> {
    let one = zip_of(&[("0", &vec![0u8; kernel_zeros], true)]);
    let eocd = one.len() - 22;
    let dir_offset = u32::from_le_bytes(one[eocd + 16..eocd + 20].try_into().unwrap()) as usize;
    let record = &one[dir_offset..eocd];
    let mut out = one[..dir_offset].to_vec();
    let mut central = Vec::new();
    for i in 0..entries {
        let mut r = record.to_vec();
        // same name length (1 byte): name `0`..`9` cycling, made unique by the index below
        r[46] = b'0' + (i % 10) as u8;
        central.extend_from_slice(&r);
    }
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    out.extend_from_slice(&(entries as u16).to_le_bytes());
    out.extend_from_slice(&(entries as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&(dir_offset as u32).to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

#[test]
fn overlapping_zip_members_are_reported_and_never_inflated() {
    // 1,000 entries sharing one kernel of 1 MiB of zeros (~1 KiB deflated): 1 GB if each
    // were inflated, every one under the ratio limit.
    let bomb = overlapping_zip(1 << 20, 1000);
    assert!(bomb.len() < 64 * 1024);
    assert_rejected_quickly("overlapping zip", &bomb, Verdict::Dangerous, "ARC011");
    let report = scan(&bomb);
    assert!(report.members.is_empty(), "nothing may be inflated");
}

#[test]
fn zips_nested_like_42_zip_are_stopped_quickly() {
    // 42.zip's shape: 16 members per level, each a zip of the level below; the leaves are
    // 4 MiB of zeros each (4 GiB across 4 levels of 16).
    let mut level = zip_of(&[("leaf.bin", &vec![0u8; 4 << 20], true)]);
    for depth in 0..3 {
        let names: Vec<String> = (0..16).map(|i| format!("{depth}-{i}.zip")).collect();
        let members: Vec<(&str, &[u8], bool)> = names
            .iter()
            .map(|n| (n.as_str(), &level[..], true))
            .collect();
        level = zip_of(&members);
    }
    assert!(level.len() < 1 << 20, "{}", level.len());
    assert_rejected_quickly("42.zip-style", &level, Verdict::Unscannable, "ARC007");
}

#[test]
fn sevenz_ratio_is_per_block_not_per_archive() {
    // A large incompressible member lends the archive its size; the bomb member, in a block
    // of its own, must still be held to its own block's size.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..2 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let zeros = vec![0u8; 16 << 20];
    let archive = sevenz_of(&[("noise.bin", &noise), ("zeros.bin", &zeros)], false);
    let limits = Limits {
        max_compression_ratio: 50,
        ..Limits::default()
    };
    let report = Scanner::new(Policy::default(), limits).scan_bytes("t.7z", &archive);
    assert!(
        report.findings.iter().any(|f| f.rule.code() == "ARC007"
            && f.member.is_none()
            && f.message.contains("zeros.bin")),
        "{:?}",
        report.findings
    );
}

// ---- --timeout ----------------------------------------------------------------------------

#[test]
fn the_timeout_stops_decompression_loops() {
    // A stream that takes seconds to inflate, with every size budget lifted: 4,096 gzip
    // members of 1 MiB of zeros each (a multi-member gzip is read whole, as Python does).
    let limits = Limits {
        timeout: Duration::from_millis(300),
        max_compression_ratio: u64::MAX / 2,
        min_inflated_budget: u64::MAX / 2,
        max_inflated_bytes: u64::MAX,
        ..Limits::default()
    };
    let bomb = gzip(&vec![0u8; 1 << 20]).repeat(4096);
    let started = Instant::now();
    let report = Scanner::new(Policy::default(), limits).scan_bytes("slow.gz", &bomb);
    let took = started.elapsed();
    assert!(
        report.findings.iter().any(|f| f.rule.code() == "GEN005"),
        "{}",
        finding_codes(&report)
    );
    assert_eq!(report.verdict, Verdict::Unscannable);
    // Inflating it all takes tens of seconds in a debug build. The 10 % target is measured
    // on the release build (docs/limits.md); here, on a loaded CI machine, only that the loop
    // stops soon after the deadline.
    assert!(took < Duration::from_millis(300 + 3000), "{took:?}");
}
