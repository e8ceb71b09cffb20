//! Reading a checkpoint's layout: where its pickle is and where each storage's bytes are.
//!
//! Routed by content as `torch.load` routes: `PK\x03\x04` is the zip format (`<root>/data.pkl`
//! plus one `<root>/data/<key>` record per storage, `<root>/byteorder`), anything else is
//! tried as the legacy format (five pickles, then per storage an int64 count and the raw
//! bytes); a tar (`ustar` at 257) is the pre-1.0 tar format. The file is memory-mapped only to parse the directory and the pickles; tensor
//! bytes are read with positioned reads, so their pages never count against memory.
//!
//! A large zip is not mapped at all: its headers, directory and pickle are read into the
//! same sparse image the scanner uses ([`crate::containers::zip_image`]), because touching a
//! header through a map makes the kernel map whole page-cache folios around it (a 5 GB
//! checkpoint with 2,300 records cost 178 MB of resident memory that way).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::ConvertError;
use crate::containers::zip::{ZipArchive, ZipBytes};
#[cfg(unix)]
use crate::containers::zip_image::SparseFile;
use crate::formats::torch::{self, StorageRef, StorageType};
use crate::pickle::machine::{self, Outcome};
use crate::pickle::value::Value;
use crate::scan::Scanner;

use crate::limits::caps::convert::MAX_INFLATED_PICKLE;
/// Chunk size of positioned reads (and of the buffer stored tensors are copied through):
/// large enough that a call moves many pages, small enough to stay in the CPU's caches
/// between the read and the write.
pub const CHUNK: usize = 1 << 20;

/// The one buffer a conversion copies stored tensors through, allocated on first use (a
/// checkpoint of only byte-swapped or strided tensors never needs it).
#[derive(Default)]
pub struct CopyBuffer(Vec<u8>);

impl CopyBuffer {
    fn get(&mut self) -> &mut [u8] {
        if self.0.is_empty() {
            self.0 = vec![0u8; CHUNK];
        }
        &mut self.0
    }
}

/// Which serialization the checkpoint uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Zip,
    Legacy,
    /// The pre-1.0 tar format: members `storages`, `tensors`, `pickle`.
    Tar,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Zip => "zip",
            Format::Legacy => "legacy",
            Format::Tar => "tar",
        }
    }
}

/// Where one storage's bytes are in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Stored bytes at `offset`.
    Stored { offset: u64 },
    /// A deflated zip record: `compressed` bytes at `offset`.
    Deflated { offset: u64, compressed: u64 },
}

/// One storage record: where its bytes are and how many there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageRecord {
    pub source: Source,
    pub len: u64,
    /// Legacy files also state an element count before the bytes.
    pub legacy_numel: Option<u64>,
}

/// An opened checkpoint: the mapped file, its pickle and its storage records.
pub struct Checkpoint {
    pub path: PathBuf,
    pub format: Format,
    /// True when storages hold big-endian elements (`byteorder` record says `big`).
    pub big_endian: bool,
    file: File,
    map: View,
    pickle: PickleBytes,
    records: HashMap<String, StorageRecord>,
    /// Tar format: tensors by key, described in the `tensors` member.
    tar_tensors: HashMap<String, TarTensor>,
    /// Tar format: each storage's class, from the `storages` member.
    tar_storage_types: HashMap<String, &'static StorageType>,
}

/// A tensor of the tar format's `tensors` member (offset, sizes, strides in elements).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarTensor {
    pub storage: String,
    pub offset: u64,
    pub shape: Vec<u64>,
    pub strides: Vec<u64>,
}

/// The checkpoint's bytes as the layout parser sees them.
enum View {
    /// The whole file, mapped read-only.
    Mapped(Mmap),
    /// A large PyTorch zip: only its headers, directory and non-storage records; storage
    /// bytes are never read from here.
    #[cfg(unix)]
    Sparse(SparseFile),
}

impl View {
    fn get(&self, range: Range<usize>) -> Option<&[u8]> {
        match self {
            View::Mapped(map) => map.get(range),
            #[cfg(unix)]
            View::Sparse(image) => image.get(range),
        }
    }

    fn len(&self) -> usize {
        self.zip().len()
    }

    fn zip(&self) -> ZipBytes<'_> {
        match self {
            View::Mapped(map) => ZipBytes::Whole(map),
            #[cfg(unix)]
            View::Sparse(image) => ZipBytes::Sparse(image),
        }
    }

    /// The whole file, for the legacy and tar formats; a sparse view is only ever made for a
    /// zip and has none.
    fn whole(&self) -> &[u8] {
        match self {
            View::Mapped(map) => map,
            #[cfg(unix)]
            View::Sparse(_) => &[],
        }
    }

    fn open(file: &File, len: u64) -> std::io::Result<View> {
        #[cfg(unix)]
        if len >= crate::containers::zip_image::MIN_IMAGE_SIZE && starts_with_zip(file) {
            // One checkpoint at a time: its header reads may use the machine's threads.
            if let Some(image) = crate::containers::zip_image::torch_zip_image(file, len, None) {
                return Ok(View::Sparse(image));
            }
        }
        // SAFETY: read-only map; only the directory and the pickles are touched through it.
        // A concurrent truncation raises SIGBUS, the accepted risk of every mmap reader.
        #[allow(unsafe_code)]
        let map = unsafe { Mmap::map(file) }?;
        Ok(View::Mapped(map))
    }
}

#[cfg(unix)]
fn starts_with_zip(file: &File) -> bool {
    use std::os::unix::fs::FileExt;
    let mut magic = [0u8; 4];
    file.read_exact_at(&mut magic, 0).is_ok() && &magic == b"PK\x03\x04"
}

enum PickleBytes {
    Mapped(Range<usize>),
    Inflated(Vec<u8>),
}

impl Checkpoint {
    /// Opens and maps `path` and reads its layout.
    pub fn open(path: &Path, scanner: &Scanner) -> Result<Checkpoint, ConvertError> {
        let file = File::open(path).map_err(|e| ConvertError::io(path, e))?;
        let len = file
            .metadata()
            .map_err(|e| ConvertError::io(path, e))?
            .len();
        if len == 0 {
            return Err(not_checkpoint(path, "the file is empty"));
        }
        let map = View::open(&file, len).map_err(|e| ConvertError::io(path, e))?;
        let mut checkpoint = Checkpoint {
            path: path.to_path_buf(),
            format: Format::Zip,
            big_endian: false,
            file,
            map,
            pickle: PickleBytes::Mapped(0..0),
            records: HashMap::new(),
            tar_tensors: HashMap::new(),
            tar_storage_types: HashMap::new(),
        };
        if checkpoint.map.get(0..4) == Some(b"PK\x03\x04") {
            checkpoint.read_zip(scanner.limits())?;
        } else if checkpoint.map.get(257..262) == Some(b"ustar") {
            checkpoint.format = Format::Tar;
            checkpoint.read_tar(scanner)?;
        } else {
            checkpoint.format = Format::Legacy;
            checkpoint.read_legacy(scanner)?;
        }
        Ok(checkpoint)
    }

    /// The bytes of the pickle that holds the checkpoint's object.
    pub fn pickle(&self) -> &[u8] {
        match &self.pickle {
            PickleBytes::Mapped(range) => self.map.get(range.clone()).unwrap_or_default(),
            PickleBytes::Inflated(bytes) => bytes,
        }
    }

    /// Runs the object pickle through the symbolic machine and hands the outcome to `f`.
    /// Offsets in the outcome are file offsets for legacy files and `data.pkl` offsets
    /// for zips.
    pub fn with_outcome<R>(&self, scanner: &Scanner, f: impl FnOnce(&Outcome<'_>) -> R) -> R {
        let (data, start): (&[u8], usize) = match &self.pickle {
            PickleBytes::Mapped(range) if self.format != Format::Zip => {
                (self.map.whole(), range.start)
            }
            _ => (self.pickle(), 0),
        };
        // The full machine, never the fast pass: conversion reads the values it builds (the
        // fast pass keeps only kinds, and takes every data-only pickle of 64 KiB or more).
        scanner.with_ctx(|ctx| {
            let outcome = machine::run_full(ctx, data, start);
            f(&outcome)
        })
    }

    /// Where the pickle lives, for messages.
    pub fn pickle_name(&self) -> &'static str {
        match self.format {
            Format::Zip => "data.pkl",
            Format::Legacy => "the main pickle",
            Format::Tar => "the `pickle` member",
        }
    }

    /// A tar-format tensor by the key its persistent id names, with its storage's class.
    pub fn tar_tensor(&self, key: &str) -> Option<(&TarTensor, &'static StorageType)> {
        let t = self.tar_tensors.get(key)?;
        Some((t, self.tar_storage_types.get(&t.storage)?))
    }

    /// The record of storage `key`.
    pub fn record(&self, key: &str) -> Option<StorageRecord> {
        self.records.get(key).copied()
    }

    /// True when the layout is read from a sparse image rather than a map of the file.
    #[cfg(test)]
    pub(crate) fn is_sparse(&self) -> bool {
        !matches!(self.map, View::Mapped(_))
    }

    /// Size of the input file.
    pub fn file_len(&self) -> u64 {
        self.map.len() as u64
    }

    /// Feeds `len` bytes of a storage, starting `start` bytes into it, to `sink` in chunks.
    pub fn read_range(
        &self,
        record: &StorageRecord,
        start: u64,
        len: u64,
        sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let end = start.checked_add(len).filter(|&e| e <= record.len);
        if end.is_none() {
            return Err(std::io::Error::other("read past the end of a storage"));
        }
        match record.source {
            Source::Stored { offset } => self.read_stored(offset + start, len, sink),
            Source::Deflated { offset, compressed } => {
                if offset
                    .checked_add(compressed)
                    .is_none_or(|end| end > self.file_len())
                {
                    return Err(std::io::Error::other("deflated record past end of file"));
                }
                // Read from the file, not the view: a sparse view holds no storage bytes.
                let mut file = &self.file;
                file.seek(SeekFrom::Start(offset))?;
                let raw = std::io::BufReader::with_capacity(CHUNK, file.take(compressed));
                let mut decoder = flate2::read::DeflateDecoder::new(raw);
                std::io::copy(&mut (&mut decoder).take(start), &mut std::io::sink())?;
                let mut buf = vec![0u8; CHUNK.min(usize::try_from(len).unwrap_or(CHUNK))];
                let mut left = len;
                while left > 0 {
                    let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let chunk = buf.get_mut(..want).unwrap_or_default();
                    decoder.read_exact(chunk)?;
                    sink(chunk)?;
                    left -= want as u64;
                }
                Ok(())
            }
        }
    }

    fn read_stored(
        &self,
        offset: u64,
        len: u64,
        sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let mut buf = vec![0u8; CHUNK.min(usize::try_from(len).unwrap_or(CHUNK))];
        self.read_stored_through(offset, len, &mut buf, sink)
    }

    /// Positioned reads of `len` stored bytes at `offset`, `buf.len()` at a time, each handed
    /// to `sink`.
    fn read_stored_through(
        &self,
        offset: u64,
        len: u64,
        buf: &mut [u8],
        sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let (mut at, end) = (offset, offset.saturating_add(len));
        while at < end {
            let want = buf
                .len()
                .min(usize::try_from(end - at).unwrap_or(usize::MAX));
            let chunk = &mut buf[..want];
            self.file.read_exact_at(chunk, at)?;
            sink(chunk)?;
            at += want as u64;
        }
        Ok(())
    }

    /// Copies stored bytes into `out` through `buffer` (positioned reads, sequential writes).
    ///
    /// Not `copy_file_range` (what `std::io::copy` does between files): the kernel's
    /// file-to-file copy goes page by page through a pipe, and is fast only when source and
    /// destination sit at the same offset within a page. A torch zip's storages are 64-byte
    /// aligned and safetensors packs tensors back to back, so almost every copy is
    /// misaligned. Measured on the 1 GB bench checkpoint, warm page cache: copy_file_range
    /// 0.36 s misaligned (0.25 s aligned) against 0.21 s through a 1 MiB buffer, aligned or
    /// not; see bench/RESULTS.md, 2026-12-04 22:00.
    pub fn copy_stored(
        &self,
        offset: u64,
        len: u64,
        out: &mut File,
        buffer: &mut CopyBuffer,
    ) -> std::io::Result<()> {
        self.read_stored_through(offset, len, buffer.get(), &mut |chunk| out.write_all(chunk))
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    std::io::Error::new(e.kind(), "the checkpoint ended inside a storage")
                } else {
                    e
                }
            })
    }

    fn read_zip(&mut self, limits: &crate::Limits) -> Result<(), ConvertError> {
        let path = self.path.clone();
        let records = zip_records(self.map.zip());
        // torch names the archive after its first record's folder, and refuses records
        // outside any folder.
        let first = records
            .first()
            .ok_or_else(|| not_checkpoint(&path, "the zip has no central directory records"))?;
        let root = match first.name.split_once('/') {
            Some((root, _)) => format!("{root}/"),
            None => return Err(not_checkpoint(&path, "the first record is not in a folder")),
        };
        let by_name: HashMap<&str, &ZipRecord> =
            records.iter().map(|r| (r.name.as_str(), r)).collect();
        if by_name.contains_key(format!("{root}constants.pkl").as_str()) {
            return Err(not_checkpoint(
                &path,
                "a TorchScript archive (constants.pkl): code, not a state dict",
            ));
        }
        let pickle = by_name
            .get(format!("{root}data.pkl").as_str())
            .copied()
            .ok_or_else(|| not_checkpoint(&path, &format!("no `{root}data.pkl` record")))?;
        self.pickle = self.read_pickle_record(pickle)?;
        if let Some(order) = by_name.get(format!("{root}byteorder").as_str()) {
            let bytes = self.small_record(order)?;
            self.big_endian = match bytes.as_slice() {
                b"little" => false,
                b"big" => true,
                other => {
                    return Err(ConvertError::Unsupported {
                        path,
                        why: format!(
                            "unknown byte order record {:?}",
                            String::from_utf8_lossy(other)
                        ),
                    });
                }
            };
        }
        check_inflation(&path, &records, limits)?;
        let prefix = format!("{root}data/");
        for record in &records {
            let Some(key) = record.name.strip_prefix(&prefix) else {
                continue;
            };
            let source = match record.method {
                0 => Source::Stored {
                    offset: record.data_offset,
                },
                8 => Source::Deflated {
                    offset: record.data_offset,
                    compressed: record.compressed_size,
                },
                other => {
                    return Err(ConvertError::Unsupported {
                        path,
                        why: format!("record `{}` uses compression method {other}", record.name),
                    });
                }
            };
            let len = match record.method {
                0 => record.compressed_size,
                _ => record.uncompressed_size,
            };
            let fits = record
                .data_offset
                .checked_add(record.compressed_size)
                .is_some_and(|end| end <= self.map.len() as u64);
            if !fits {
                return Err(layout(
                    &path,
                    format!("record `{}` runs past the end of the file", record.name),
                ));
            }
            self.records.insert(
                key.to_string(),
                StorageRecord {
                    source,
                    len,
                    legacy_numel: None,
                },
            );
        }
        Ok(())
    }

    fn read_pickle_record(&self, record: &ZipRecord) -> Result<PickleBytes, ConvertError> {
        match record.method {
            0 => to_range(record.data_offset, record.compressed_size)
                .filter(|r| r.end <= self.map.len())
                .map(PickleBytes::Mapped)
                .ok_or_else(|| layout(&self.path, "data.pkl runs past the end of the file".into())),
            _ => self.small_record(record).map(PickleBytes::Inflated),
        }
    }

    /// Reads a (possibly deflated) metadata record into memory, bounded.
    fn small_record(&self, record: &ZipRecord) -> Result<Vec<u8>, ConvertError> {
        let raw = to_range(record.data_offset, record.compressed_size)
            .and_then(|r| self.map.get(r))
            .ok_or_else(|| {
                layout(
                    &self.path,
                    format!("record `{}` runs past the end", record.name),
                )
            })?;
        match record.method {
            0 => Ok(raw.to_vec()),
            8 => {
                let mut out = Vec::new();
                flate2::read::DeflateDecoder::new(raw)
                    .take(MAX_INFLATED_PICKLE + 1)
                    .read_to_end(&mut out)
                    .map_err(|e| layout(&self.path, format!("`{}`: {e}", record.name)))?;
                if out.len() as u64 > MAX_INFLATED_PICKLE {
                    return Err(layout(
                        &self.path,
                        format!("`{}` inflates past 1 GiB", record.name),
                    ));
                }
                Ok(out)
            }
            m => Err(ConvertError::Unsupported {
                path: self.path.clone(),
                why: format!("record `{}` uses compression method {m}", record.name),
            }),
        }
    }

    /// Reads the tar format as torch's `legacy_load` does: the `storages` member (a count,
    /// then per storage a pickled `(key, location, storage_type)`, an int64 element count and
    /// the raw bytes, then a pickled list of storage views), the `tensors` member (a count,
    /// then per tensor a pickled `(key, storage_id, type)`, `<i` ndim, 4 pad bytes, sizes,
    /// strides and offset as `<q`), and the `pickle` member whose persistent ids are tensor keys.
    fn read_tar(&mut self, scanner: &Scanner) -> Result<(), ConvertError> {
        let path = self.path.clone();
        let members = tar_members(self.map.whole()).map_err(|why| not_checkpoint(&path, &why))?;
        let member = |name: &str| {
            members
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, r)| r.clone())
                .ok_or_else(|| not_checkpoint(&path, &format!("no `{name}` member")))
        };
        let (storages, tensors, pickle) =
            (member("storages")?, member("tensors")?, member("pickle")?);
        let data: &[u8] = self.map.whole();
        let parsed = scanner.with_ctx(|ctx| -> Result<_, String> {
            let mut records = HashMap::new();
            let mut types = HashMap::new();
            let mut run = |start: usize, end: usize, what: &str| -> Result<Unpickled, String> {
                let o = machine::run_full(ctx, data.get(..end).unwrap_or_default(), start);
                if !o.stopped {
                    return Err(format!("{what} does not unpickle"));
                }
                let root = o.root.unwrap_or(Value::None);
                let items = o.arena.seq_of(root).unwrap_or_default();
                let strs = items.iter().map(|v| key_text(&o.arena, *v)).collect();
                let ty = items.iter().find_map(|v| {
                    let g = o.arena.global_of(*v)?;
                    torch::storage_type(&g.module, &g.name)
                });
                let empty_list = o.arena.seq_of(root).is_some_and(<[Value]>::is_empty);
                let int = o.arena.int_of(root).or(empty_list.then_some(0));
                Ok(Unpickled {
                    keys: strs,
                    storage_type: ty,
                    int,
                    end: o.end,
                })
            };
            let Unpickled {
                int: count,
                end: mut pos,
                ..
            } = run(storages.start, storages.end, "the storage count")?;
            for i in 0..count.unwrap_or(-1).max(0) {
                let Unpickled {
                    keys: strs,
                    storage_type: ty,
                    end,
                    ..
                } = run(pos, storages.end, "a storage header")?;
                let key = strs
                    .first()
                    .cloned()
                    .flatten()
                    .ok_or(format!("storage {i} has no key"))?;
                let ty = ty.ok_or(format!("storage `{key}` has no storage class"))?;
                let numel =
                    u64_at(data, end as u64).ok_or(format!("storage `{key}` is cut off"))?;
                let len = numel
                    .checked_mul(ty.element_size)
                    .filter(|l| (end as u64 + 8).saturating_add(*l) <= storages.end as u64)
                    .ok_or(format!(
                        "storage `{key}` declares {numel} elements, more than the member holds"
                    ))?;
                records.insert(
                    key.clone(),
                    StorageRecord {
                        source: Source::Stored {
                            offset: end as u64 + 8,
                        },
                        len,
                        legacy_numel: None,
                    },
                );
                types.insert(key, ty);
                pos = (end as u64 + 8 + len) as usize;
            }
            let views = run(pos, storages.end, "the storage view list")?.int;
            if views != Some(0) {
                return Err("storage views (pre-1.0 shared storages) are not supported".into());
            }
            let Unpickled {
                int: count,
                end: mut pos,
                ..
            } = run(tensors.start, tensors.end, "the tensor count")?;
            let mut tensors_out = HashMap::new();
            for i in 0..count.unwrap_or(-1).max(0) {
                let Unpickled {
                    keys: strs, end, ..
                } = run(pos, tensors.end, "a tensor header")?;
                let (Some(Some(key)), Some(Some(storage))) =
                    (strs.first().cloned(), strs.get(1).cloned())
                else {
                    return Err(format!("tensor {i} has no key or storage id"));
                };
                let (tensor, next) = tar_tensor_body(data, end, tensors.end, storage)
                    .ok_or(format!("tensor `{key}` is cut off"))?;
                tensors_out.insert(key, tensor);
                pos = next;
            }
            Ok((records, types, tensors_out))
        });
        let (records, types, tensors) = parsed.map_err(|why| layout(&path, why))?;
        self.records = records;
        self.tar_storage_types = types;
        self.tar_tensors = tensors;
        self.pickle = PickleBytes::Mapped(pickle);
        Ok(())
    }

    /// Runs the five pickles of a legacy file and locates every storage after them.
    fn read_legacy(&mut self, scanner: &Scanner) -> Result<(), ConvertError> {
        let path = self.path.clone();
        let data: &[u8] = self.map.whole();
        let (main, storages_start, refs, keys) = scanner.with_ctx(|ctx| {
            let mut start = 0usize;
            let mut main = 0..0;
            let mut refs: Vec<StorageRef> = Vec::new();
            let mut keys: Vec<String> = Vec::new();
            for index in 0..torch::LEGACY_PICKLES {
                let outcome = machine::run_full(ctx, data, start);
                if !outcome.stopped {
                    let why = match &outcome.error {
                        Some((at, msg)) => {
                            format!("pickle {} fails at offset {at}: {msg}", index + 1)
                        }
                        None => format!("pickle {} stops at a scanning limit", index + 1),
                    };
                    return Err(not_checkpoint(&path, &why));
                }
                match index {
                    0 if !torch::is_legacy_magic(&outcome) => {
                        return Err(not_checkpoint(
                            &path,
                            "neither a zip nor a legacy PyTorch file (no magic number)",
                        ));
                    }
                    3 => {
                        main = start..outcome.end;
                        refs = outcome
                            .persistent_ids
                            .iter()
                            .filter_map(|(pid, _)| torch::storage_ref(&outcome.arena, *pid))
                            .collect();
                    }
                    4 => keys = key_list(&outcome),
                    _ => {}
                }
                start = outcome.end;
            }
            Ok((main, start, refs, keys))
        })?;
        self.pickle = PickleBytes::Mapped(main);
        let mut pos = storages_start as u64;
        for key in keys {
            let Some(storage) = refs.iter().find(|r| r.key == key) else {
                return Err(layout(
                    &path,
                    format!("storage `{key}` is listed but never referenced"),
                ));
            };
            let numel = u64_at(self.map.whole(), pos).ok_or_else(|| {
                layout(&path, format!("storage `{key}` is cut off at offset {pos}"))
            })?;
            let len = numel
                .checked_mul(storage.storage_type.element_size)
                .filter(|&len| pos + 8 + len <= self.map.len() as u64)
                .ok_or_else(|| {
                    layout(&path, format!("storage `{key}` at offset {pos} declares {numel} elements, more than the file holds"))
                })?;
            self.records.insert(
                key,
                StorageRecord {
                    source: Source::Stored { offset: pos + 8 },
                    len,
                    legacy_numel: Some(numel),
                },
            );
            pos += 8 + len;
        }
        Ok(())
    }
}

/// One record of the zip as torch's miniz reader sees it (central directory entries only).
#[derive(Debug, Clone)]
struct ZipRecord {
    name: String,
    method: u16,
    compressed_size: u64,
    uncompressed_size: u64,
    data_offset: u64,
}

fn zip_records(data: ZipBytes<'_>) -> Vec<ZipRecord> {
    let archive = ZipArchive::parse(data);
    archive
        .entries()
        .iter()
        .filter(|e| e.in_central)
        .map(|e| ZipRecord {
            name: e.name.to_string(),
            method: e.method,
            compressed_size: e.compressed_size,
            uncompressed_size: e.uncompressed_size,
            // An unreadable local header leaves the data nowhere: past the end, so any
            // use of the record fails its bounds check.
            data_offset: e.data_offset.map_or(u64::MAX, |o| o as u64),
        })
        .collect()
}

/// Deflated records are inflated as they are copied: their declared sizes are held to the
/// scanner's decompression budget (total bytes, and ratio for records over 1 MiB), so a
/// small file cannot make the converter write terabytes.
fn check_inflation(
    path: &Path,
    records: &[ZipRecord],
    limits: &crate::Limits,
) -> Result<(), ConvertError> {
    let mut total = 0u64;
    for r in records.iter().filter(|r| r.method != 0) {
        total = total.saturating_add(r.uncompressed_size);
        let ratio = r.uncompressed_size / r.compressed_size.max(1);
        if r.uncompressed_size > 1 << 20 && ratio > limits.max_compression_ratio {
            return Err(layout(
                path,
                format!(
                    "record `{}` inflates {ratio}:1, over the {}:1 limit (zip bomb)",
                    r.name, limits.max_compression_ratio
                ),
            ));
        }
    }
    if total > limits.max_inflated_bytes {
        return Err(layout(
            path,
            format!(
                "deflated records declare {total} bytes, over the {}-byte decompression budget",
                limits.max_inflated_bytes
            ),
        ));
    }
    Ok(())
}

/// What one small pickle of the tar format held: its items as keys, the storage class among
/// them, its value as an integer (an empty list counts as 0), and where it ended.
struct Unpickled {
    keys: Vec<Option<String>>,
    storage_type: Option<&'static StorageType>,
    int: Option<i128>,
    end: usize,
}

/// `(name, data range)` of each tar member, read with the `tar` crate (members are stored,
/// so their bytes are a range of the file).
fn tar_members(data: &[u8]) -> Result<Vec<(String, Range<usize>)>, String> {
    let mut archive = tar::Archive::new(std::io::Cursor::new(data));
    let mut out = Vec::new();
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let entry = entry.map_err(|e| e.to_string())?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let range = to_range(entry.raw_file_position(), entry.size())
            .filter(|r| r.end <= data.len())
            .ok_or(format!("member `{name}` runs past the end"))?;
        out.push((name, range));
    }
    Ok(out)
}

/// A storage or tensor key: a string, or an integer written in decimal (torch looks keys
/// up with `int(saved_id)`).
fn key_text(arena: &crate::pickle::value::Arena<'_>, v: Value) -> Option<String> {
    arena
        .str_of(v)
        .map(str::to_string)
        .or_else(|| arena.int_of(v).map(|i| i.to_string()))
}

/// The binary part of a `tensors` entry after its pickle; returns the tensor and where the
/// next entry starts.
fn tar_tensor_body(
    data: &[u8],
    at: usize,
    end: usize,
    storage: String,
) -> Option<(TarTensor, usize)> {
    let data = data.get(..end)?;
    let ndim = u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?) as usize;
    let mut pos = at + 8;
    let mut read = |n: usize| -> Option<Vec<u64>> {
        let bytes = data.get(pos..pos.checked_add(n.checked_mul(8)?)?)?;
        pos += n * 8;
        bytes
            .chunks_exact(8)
            .map(|c| u64::try_from(i64::from_le_bytes(c.try_into().ok()?)).ok())
            .collect()
    };
    let shape = read(ndim)?;
    let strides = read(ndim)?;
    let offset = *read(1)?.first()?;
    Some((
        TarTensor {
            storage,
            offset,
            shape,
            strides,
        },
        pos,
    ))
}

fn key_list(outcome: &Outcome<'_>) -> Vec<String> {
    let arena = &outcome.arena;
    outcome
        .root
        .and_then(|root| arena.seq_of(root))
        .map(|items| {
            items
                .iter()
                .filter_map(|v| arena.str_of(*v).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn u64_at(data: &[u8], at: u64) -> Option<u64> {
    let at = usize::try_from(at).ok()?;
    Some(u64::from_le_bytes(
        data.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

fn to_range(offset: u64, len: u64) -> Option<Range<usize>> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    Some(start..end)
}

fn not_checkpoint(path: &Path, why: &str) -> ConvertError {
    ConvertError::NotACheckpoint {
        path: path.to_path_buf(),
        why: why.to_string(),
    }
}

pub(crate) fn layout(path: &Path, why: String) -> ConvertError {
    ConvertError::Layout {
        path: path.to_path_buf(),
        why,
    }
}
