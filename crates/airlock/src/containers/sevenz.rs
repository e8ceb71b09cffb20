//! 7z archives, read with the pure-Rust `sevenz-rust2` crate (Apache-2.0, actively
//! maintained, the decoder behind several Rust archivers). Malicious models have been shipped
//! as 7z-packed PyTorch checkpoints (the "nullifAI" models), which scanners that skip 7z call
//! clean.
//!
//! Members are decoded one at a time through the crate's streaming callback, so a solid block
//! is never held whole in memory; each member's output is bounded by the file's budgets and
//! by the compression ratio against its own block's packed size. AES
//! encryption support is not compiled in: an encrypted archive or member is ARC004.

use std::io::Cursor;

use sevenz_rust2::{ArchiveReader, Error, Password};

use crate::containers::compressed::MAX_LZMA_DICT_KIB;
use crate::containers::{ReadEnd, duplicates, read_bounded, unsafe_path};
use crate::ctx::Ctx;
use crate::format::Format;
use crate::report::Finding;
use crate::rules::Rule;

const LZMA2_ID: &[u8] = &[0x21];

/// Scans every file in a 7z archive. Returns "7z".
pub fn scan(ctx: &mut Ctx, data: &[u8]) -> Format {
    let mut reader = match ArchiveReader::new(Cursor::new(data), Password::empty()) {
        Ok(reader) => reader,
        Err(e) => {
            report_error(ctx, "the archive's header", &e);
            return Format::SevenZip;
        }
    };
    reader.set_thread_count(1);
    if !check_archive(ctx, reader.archive()) {
        return Format::SevenZip;
    }
    let mut scanned = 0usize;
    // Packed bytes of the block being decoded: the crate gives them to the block's first
    // file (`compressed_size`) and 0 to the others; entries come block by block. A member's
    // ratio is taken against its own block, never against the whole archive (whose other
    // blocks would otherwise lend it their size). The header's claim is capped by the file.
    let mut block_packed = 0u64;
    let result = reader.for_each_entries(|entry, member| {
        if entry.is_directory() || !entry.has_stream() {
            return Ok(true);
        }
        if entry.compressed_size > 0 {
            block_packed = entry.compressed_size.min(data.len() as u64);
        }
        let name = entry.name().to_string();
        let (out, end) = read_bounded(ctx, &format!("`{name}`"), member, block_packed);
        match end {
            ReadEnd::Failed(why) => {
                ctx.report(Finding::new(
                    Rule::ArchiveCorrupt,
                    format!("`{name}` could not be decoded to its end: {why}"),
                ));
            }
            ReadEnd::Limited => {
                ctx.scan_member(&name, &out);
                return Ok(false);
            }
            ReadEnd::Complete => {}
        }
        ctx.scan_member(&name, &out);
        scanned += 1;
        Ok(!ctx.check_timeout())
    });
    if let Err(e) = result {
        report_error(ctx, "a member", &e);
    }
    ctx.note(format!("{scanned} members"));
    Format::SevenZip
}

/// Reports names and the decoder memory the archive asks for. Returns false when the
/// archive must not be decoded at all.
fn check_archive(ctx: &mut Ctx, archive: &sevenz_rust2::Archive) -> bool {
    let names = archive.files.iter().map(|f| f.name());
    for name in names.clone() {
        if let Some(why) = unsafe_path(name) {
            ctx.report(Finding::new(
                Rule::ArchivePathTraversal,
                format!("`{name}`: {why}"),
            ));
        }
    }
    for dup in duplicates(names) {
        ctx.report(Finding::new(
            Rule::ArchiveDuplicate,
            format!("`{dup}` appears more than once"),
        ));
    }
    for block in &archive.blocks {
        for coder in &block.coders {
            if let Some((what, kib)) =
                decoder_memory_kib(coder).filter(|&(_, k)| k > MAX_LZMA_DICT_KIB)
            {
                ctx.report(Finding::new(
                    Rule::ArchiveLimit,
                    format!(
                        "a 7z block asks for {kib} KiB of {what}, over the {MAX_LZMA_DICT_KIB} \
                         KiB limit; not decoded"
                    ),
                ));
                return false;
            }
        }
    }
    true
}

const LZMA_ID: &[u8] = &[0x03, 0x01, 0x01];
const PPMD_ID: &[u8] = &[0x03, 0x04, 0x01];

/// The memory a coder's decoder allocates (and zero-fills) before decoding anything, in KiB,
/// with what it is: an LZMA2 or LZMA dictionary, or a PPMd model. `sevenz-rust2` sets no
/// memory limit (LZMA up to 4 GiB, PPMd up to 4 GiB), so it is checked first and held to the
/// same 64 MiB as the stream formats ([`MAX_LZMA_DICT_KIB`]; 7-Zip's ultra LZMA level uses
/// 64 MiB). The crate keeps coder properties private; its `Debug` output is the only way to
/// see them.
fn decoder_memory_kib(coder: &sevenz_rust2::Coder) -> Option<(&'static str, u32)> {
    let id = coder.encoder_method_id();
    if id == LZMA2_ID {
        return lzma2_dictionary_kib(coder).map(|k| ("LZMA2 dictionary", k));
    }
    let what = match id {
        LZMA_ID => "LZMA dictionary",
        PPMD_ID => "PPMd model memory",
        _ => return None,
    };
    // LZMA: a properties byte, then the dictionary size; PPMd: the order, then the memory
    // size; both little-endian u32 in bytes.
    let props = coder_properties(coder)?;
    let size = u32::from_le_bytes(props.get(1..5)?.try_into().ok()?);
    Some((what, size.div_ceil(1024)))
}

/// A coder's property bytes, from its `Debug` output.
fn coder_properties(coder: &sevenz_rust2::Coder) -> Option<Vec<u8>> {
    let debug = format!("{coder:?}");
    let props = debug.split("properties: [").nth(1)?.split(']').next()?;
    props
        .split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| p.trim().parse::<u8>().ok())
        .collect()
}

/// The LZMA2 dictionary size a coder declares, in KiB (up to 4 GiB).
fn lzma2_dictionary_kib(coder: &sevenz_rust2::Coder) -> Option<u32> {
    let first = *coder_properties(coder)?.first()?;
    let bits = u32::from(first & 0x3f);
    if bits >= 40 {
        return Some(u32::MAX);
    }
    let bytes = (2u64 | u64::from(bits & 1)) << (bits / 2 + 11);
    Some(u32::try_from(bytes / 1024).unwrap_or(u32::MAX))
}

fn report_error(ctx: &mut Ctx, what: &str, error: &Error) {
    let message = match rule_for(error) {
        Rule::ArchiveEncrypted => format!("7z: {what} is encrypted; contents not inspected"),
        Rule::ArchiveUnsupported => {
            format!("7z: {what} uses a compression method that is not decoded ({error})")
        }
        _ => format!("7z: {what} could not be read: {error}"),
    };
    ctx.report(Finding::new(rule_for(error), message));
}

/// The rule for a decoding error. AES support is not compiled in, so an AES coder surfaces as
/// an unsupported method named `AES256_SHA256`: that is encryption.
fn rule_for(error: &Error) -> Rule {
    match error {
        Error::PasswordRequired | Error::MaybeBadPassword(_) => Rule::ArchiveEncrypted,
        Error::UnsupportedCompressionMethod(m) if m.contains("AES") => Rule::ArchiveEncrypted,
        Error::UnsupportedCompressionMethod(_) | Error::ExternalUnsupported => {
            Rule::ArchiveUnsupported
        }
        Error::MaxMemLimited { .. } => Rule::ArchiveLimit,
        _ => Rule::ArchiveCorrupt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::FileReport;
    use crate::{Scanner, Verdict};
    use sevenz_rust2::{ArchiveEntry, ArchiveWriter};

    const PICKLE: &[u8] = b"\x80\x02cos\nsystem\nq\x00.";

    fn build(members: &[(&str, &[u8])], solid: bool, password: Option<&str>) -> Vec<u8> {
        let mut w = ArchiveWriter::new(Cursor::new(Vec::new())).unwrap();
        if let Some(p) = password {
            w.set_content_methods(vec![
                sevenz_rust2::encoder_options::AesEncoderOptions::new(p.into()).into(),
                sevenz_rust2::EncoderMethod::LZMA2.into(),
            ]);
        }
        let entries: Vec<_> = members
            .iter()
            .map(|(n, d)| (ArchiveEntry::new_file(n), *d))
            .collect();
        if solid {
            let (es, rs): (Vec<_>, Vec<_>) = entries.into_iter().unzip();
            w.push_archive_entries(es, rs.into_iter().map(|d| d.into()).collect())
                .unwrap();
        } else {
            for (e, d) in entries {
                w.push_archive_entry(e, Some(d)).unwrap();
            }
        }
        w.finish().unwrap().into_inner()
    }

    fn scan(bytes: &[u8]) -> FileReport {
        Scanner::default().scan_bytes("t.7z", bytes)
    }

    fn codes(r: &FileReport) -> Vec<&'static str> {
        r.findings.iter().map(|f| f.rule.code()).collect()
    }

    #[test]
    fn members_are_decoded_and_scanned() {
        for solid in [false, true] {
            let z = build(
                &[("archive/data.pkl", PICKLE), ("b.txt", b"hi")],
                solid,
                None,
            );
            let report = scan(&z);
            assert_eq!(report.format, "7z");
            let paths: Vec<_> = report.members.iter().map(|m| m.path.as_str()).collect();
            assert_eq!(paths, ["archive/data.pkl", "b.txt"], "solid={solid}");
            assert!(!codes(&report).iter().any(|c| c.starts_with("ARC")));
        }
    }

    #[test]
    fn encrypted_archive_is_unscannable() {
        let z = build(&[("a.pkl", PICKLE)], false, Some("secret"));
        let report = scan(&z);
        assert!(codes(&report).contains(&"ARC004"), "{:?}", report.findings);
        assert_eq!(report.verdict, Verdict::Unscannable);
    }

    #[test]
    fn aes_without_the_aes_feature_is_encryption() {
        let aes = Error::UnsupportedCompressionMethod("AES256_SHA256".into());
        assert_eq!(rule_for(&aes), Rule::ArchiveEncrypted);
        let other = Error::UnsupportedCompressionMethod("LIZARD".into());
        assert_eq!(rule_for(&other), Rule::ArchiveUnsupported);
        assert_eq!(rule_for(&Error::PasswordRequired), Rule::ArchiveEncrypted);
    }

    #[test]
    fn traversal_and_duplicates_are_reported() {
        let z = build(
            &[("../x.pkl", PICKLE), ("d", b"1"), ("d", b"2")],
            false,
            None,
        );
        let c = codes(&scan(&z));
        assert!(c.contains(&"ARC005"));
        assert!(c.contains(&"ARC008"));
    }

    #[test]
    fn corrupt_and_truncated_archives_are_incomplete() {
        let z = build(&[("a", &[7u8; 5000][..]), ("b", PICKLE)], true, None);
        for cut in (6..z.len()).step_by(23) {
            let report = scan(&z[..cut]);
            assert_ne!(report.verdict, Verdict::Safe, "cut at {cut}");
        }
        for i in (6..z.len()).step_by(7) {
            let mut bad = z.clone();
            bad[i] ^= 0x55;
            let _ = scan(&bad);
        }
    }

    #[test]
    fn ppmd_and_lzma_memory_is_read_from_their_coders() {
        let mut w = ArchiveWriter::new(Cursor::new(Vec::new())).unwrap();
        w.set_content_methods(vec![sevenz_rust2::EncoderMethod::PPMD.into()]);
        w.push_archive_entry(ArchiveEntry::new_file("a"), Some(PICKLE))
            .unwrap();
        let z = w.finish().unwrap().into_inner();
        let reader = ArchiveReader::new(Cursor::new(&z[..]), Password::empty()).unwrap();
        let coder = &reader.archive().blocks[0].coders[0];
        let (what, kib) = decoder_memory_kib(coder).unwrap();
        assert_eq!(what, "PPMd model memory");
        assert!(kib > 0 && kib <= MAX_LZMA_DICT_KIB, "{kib}");
        assert!(
            scan(&z)
                .findings
                .iter()
                .all(|f| f.rule != Rule::ArchiveLimit)
        );

        // A model of 80 MiB (7-Zip's PPMd at -mx=9 asks for 192 MiB): refused undecoded.
        let options =
            sevenz_rust2::encoder_options::PpmdOptions::from_order_memory_size(6, 80 << 20);
        let mut w = ArchiveWriter::new(Cursor::new(Vec::new())).unwrap();
        w.set_content_methods(vec![options.into()]);
        w.push_archive_entry(ArchiveEntry::new_file("a"), Some(PICKLE))
            .unwrap();
        let big = scan(&w.finish().unwrap().into_inner());
        assert!(codes(&big).contains(&"ARC007"), "{:?}", big.findings);
        assert!(big.members.is_empty());
    }

    #[test]
    fn dictionary_size_is_read_from_lzma2_coders() {
        let z = build(&[("a", PICKLE)], false, None);
        let reader = ArchiveReader::new(Cursor::new(&z[..]), Password::empty()).unwrap();
        let kibs: Vec<_> = reader
            .archive()
            .blocks
            .iter()
            .flat_map(|b| &b.coders)
            .filter(|c| c.encoder_method_id() == LZMA2_ID)
            .filter_map(lzma2_dictionary_kib)
            .collect();
        assert!(!kibs.is_empty());
        assert!(kibs.iter().all(|&k| k > 0 && k <= MAX_LZMA_DICT_KIB));
    }
}
