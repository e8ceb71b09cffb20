//! Sparse images of large PyTorch zips, so that scanning a multi-gigabyte checkpoint costs
//! memory and time in proportion to its metadata, not its tensors.
//!
//! Scanning a PyTorch zip reads the end records, the central directory, every local header
//! along the chain from offset 0, and the members that are not storage records
//! ([`crate::formats::torch_zip`] never reads storage records). Through a memory map of the
//! file, the kernel maps whole page-cache folios (up to 2 MiB) around each header touched, so a
//! 1 GB checkpoint cost 70–250 MB of resident memory. Instead, this module builds an
//! anonymous, zero-filled mapping the size of the file (untouched pages cost nothing) and
//! `pread`s into it those bytes (plus at most 512 bytes after each local header, read with it);
//! the scanner then reads the image as it would the file.
//!
//! The image is only used when the prefetch is provably complete: the archive is a PyTorch
//! zip, no member defers its sizes to a data descriptor, and the chain of local headers walked
//! from offset 0 visits every central-directory entry and ends exactly at the central
//! directory. Otherwise the caller falls back to mapping the whole file. A test checks that
//! scanning the image and scanning the whole file give the same report.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;

use memmap2::MmapMut;

use super::zip::{FLAG_DATA_DESCRIPTOR, ZipArchive, ZipFlavour, zip_flavour};

/// Files at least this large are scanned through a sparse image when they are PyTorch zips.
pub const MIN_IMAGE_SIZE: u64 = 64 << 20;
/// How far back from the end the end-of-central-directory record can sit, plus the ZIP64
/// locator and record before it.
const TAIL: u64 = 22 + 0xFFFF + 20 + 56;
const LOCAL_LEN: u64 = 30;
/// A data descriptor (signature, CRC, two 64-bit sizes) and the next local signature.
const DESCRIPTOR_AND_SIGNATURE: u64 = 4 + 4 + 16 + 4;
/// Bytes read after a local header in the same call: torch's names and 64-byte alignment
/// padding fit in it.
const HEADER_READ: u64 = 512;

/// Builds the sparse image of `file` (`size` bytes), or `None` when the file is not a
/// PyTorch zip whose reads can be predicted exactly.
pub fn torch_zip_image(file: &File, size: u64) -> Option<MmapMut> {
    let mut image = MmapMut::map_anon(usize::try_from(size).ok()?).ok()?;
    // With transparent huge pages, each scattered read would fault in 2 MiB.
    #[cfg(target_os = "linux")]
    let _ = image.advise(memmap2::Advice::NoHugePage);
    fill(file, &mut image, size.saturating_sub(TAIL), TAIL)?;
    let (cd_offset, cd_size) = directory(&image)?;
    fill(file, &mut image, cd_offset, cd_size)?;

    // Directory only: parsing local headers now would map zero pages that the reads below
    // then copy on write, three page faults per record instead of one.
    let archive = ZipArchive::parse_directory(&image);
    if zip_flavour(&archive) != ZipFlavour::TorchZip {
        return None;
    }
    let central: Vec<_> = archive.entries().iter().filter(|e| e.in_central).collect();
    let root = central.first()?.name.split('/').next()?.to_string();
    let storage_prefix = format!("{root}/data/");
    let sizes: HashMap<u64, u64> = central
        .iter()
        .map(|e| (e.header_offset, e.compressed_size))
        .collect();
    let storage_offsets: HashSet<u64> = central
        .iter()
        .filter(|e| e.name.starts_with(&storage_prefix))
        .map(|e| e.header_offset)
        .collect();
    let expected: HashSet<u64> = sizes.keys().copied().collect();
    drop(central);
    drop(archive);

    // The chain of local headers, walked as the zip reader walks it: sizes from the central
    // directory where it lists the record, data descriptors stepped over. The walk ends where
    // no local header follows, as the reader's does.
    let mut visited = HashSet::new();
    let mut at = 0u64;
    // The last range read: a header and the names after it usually arrive in one read, and
    // a data descriptor with the next header in another.
    let mut window = 0..0u64;
    while at < cd_offset {
        if visited.len() > expected.len() + 1_000 {
            return None;
        }
        if !(window.contains(&at) && window.end >= at + LOCAL_LEN) {
            window = at..at + LOCAL_LEN + HEADER_READ;
            fill(file, &mut image, window.start, LOCAL_LEN + HEADER_READ)?;
        }
        let header = image.get(at as usize..(at + LOCAL_LEN) as usize)?;
        if !header.starts_with(b"PK\x03\x04") {
            break;
        }
        let flags = u16::from_le_bytes([header[6], header[7]]);
        let local_size = u32::from_le_bytes([header[18], header[19], header[20], header[21]]);
        let names = u64::from(u16::from_le_bytes([header[26], header[27]]))
            + u64::from(u16::from_le_bytes([header[28], header[29]]));
        if at + LOCAL_LEN + names > window.end {
            fill(file, &mut image, at + LOCAL_LEN, names)?;
        }
        let data_offset = at + LOCAL_LEN + names;
        let data_size = match sizes.get(&at) {
            Some(&size) => size,
            // A record only the local headers know: its own sizes must be usable.
            None if flags & FLAG_DATA_DESCRIPTOR == 0 && local_size != u32::MAX => {
                u64::from(local_size)
            }
            None => return None,
        };
        if !storage_offsets.contains(&at) {
            fill(file, &mut image, data_offset, data_size)?;
        }
        visited.insert(at);
        let next = data_offset.checked_add(data_size)?;
        window = next..next + DESCRIPTOR_AND_SIGNATURE + LOCAL_LEN + HEADER_READ;
        fill(file, &mut image, window.start, window.end - window.start)?;
        at = super::zip::skip_descriptor(&image, usize::try_from(next).ok()?) as u64;
        if at == next
            && image.get(next as usize..next as usize + 4) != Some(b"PK\x03\x04".as_slice())
        {
            break;
        }
    }
    expected.is_subset(&visited).then_some(image)
}

/// Reads `len` bytes at `start` (clipped to the file) into the same place of the image.
fn fill(file: &File, image: &mut MmapMut, start: u64, len: u64) -> Option<()> {
    let end = start.checked_add(len)?.min(image.len() as u64);
    if start >= end {
        return Some(());
    }
    file.read_exact_at(&mut image[start as usize..end as usize], start)
        .ok()
}

/// The central directory's offset and size, from the end records in the image's tail.
fn directory(image: &[u8]) -> Option<(u64, u64)> {
    let size = image.len();
    let start = size.saturating_sub(TAIL as usize);
    let eocd = start
        + image[start..]
            .windows(4)
            .rposition(|w| w == b"PK\x05\x06")?;
    let u32_at = |at: usize| {
        image
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |at: usize| {
        image
            .get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
    };
    let mut cd_size = u64::from(u32_at(eocd + 12)?);
    let mut cd_offset = u64::from(u32_at(eocd + 16)?);
    if cd_size == u64::from(u32::MAX) || cd_offset == u64::from(u32::MAX) {
        let locator = eocd.checked_sub(20)?;
        if image.get(locator..locator + 4)? != b"PK\x06\x07" {
            return None;
        }
        let record = usize::try_from(u64_at(locator + 8)?).ok()?;
        if record < start || image.get(record..record + 4)? != b"PK\x06\x06" {
            return None;
        }
        cd_size = u64_at(record + 40)?;
        cd_offset = u64_at(record + 48)?;
    }
    (cd_offset.checked_add(cd_size)? <= size as u64).then_some((cd_offset, cd_size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scanner;
    use crate::containers::zip::testzip::{build, member};

    fn image_of(bytes: &[u8]) -> Option<MmapMut> {
        let mut file = tempfile::tempfile().expect("temp file");
        std::io::Write::write_all(&mut file, bytes).expect("write");
        torch_zip_image(&file, bytes.len() as u64)
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
        ];
        for (i, bytes) in cases.iter().enumerate() {
            let image = image_of(bytes).unwrap_or_else(|| panic!("case {i}: no image"));
            let scanner = Scanner::default();
            assert_eq!(
                summary(&scanner.scan_bytes("t", &image)),
                summary(&scanner.scan_bytes("t", bytes)),
                "case {i}"
            );
        }
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
                summary(&scanner.scan_bytes("t", &image)),
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
        assert_eq!(&image[at..at + 8], &[0u8; 8]);
        let scanner = Scanner::default();
        assert_eq!(
            summary(&scanner.scan_bytes("t", &image)),
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
        let zip = build(&[member("m/data.pkl", DATA_PKL), hidden]);
        assert!(image_of(&zip).is_none());
    }
}
