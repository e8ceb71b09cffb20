//! The format registry: one ordered table of what routing by content knows. Each entry names
//! a kind of bytes ([`Sniffed`]), the test that claims a slice by its first bytes, and the
//! scan for what it claims. [`super::sniff`] and [`super::route`] are both read from this one
//! table, so they cannot disagree.
//!
//! Order matters, and is the loaders' (see the notes on each entry and [`super`]'s docs): the
//! first entry whose test claims the bytes wins; bytes no entry claims are tried as a pickle
//! stream ([`Sniffed::Other`]), since torch.load, pickle.load and joblib.load unpickle
//! whatever they are given.
//!
//! To add a format: write its module (a claim test and a scan function), and insert one entry
//! here at the place its magic must be tested (see `docs/architecture.md`).

use super::{Sniffed, gguf, hdf5, identify, numpy, onnx, protobuf, safetensors, savedmodel};
use super::{looks_like_safetensors, report_cut_protobuf, zipped};
use crate::containers::compressed::{self, is_zlib_header};
use crate::containers::{sevenz, tar};
use crate::ctx::Ctx;
pub use crate::format::Format;
use crate::report::Finding;
use crate::rules::Rule;

/// One kind of bytes routing recognises.
pub struct Entry {
    /// What the entry claims.
    pub kind: Sniffed,
    /// True when the slice is this kind, tested only after every earlier entry declined it.
    pub claims: fn(&[u8]) -> bool,
    /// Scans a slice this entry claimed; returns the format name for the report.
    pub scan: fn(&mut Ctx, &[u8]) -> Format,
}

/// The routing table, in the order the entries are tried.
pub const ENTRIES: &[Entry] = &[
    Entry {
        kind: Sniffed::Empty,
        claims: <[u8]>::is_empty,
        scan: scan_empty,
    },
    // torch's only test for a zip: bytes prepended to it make it *not* a zip.
    Entry {
        kind: Sniffed::Zip,
        claims: |d| d.starts_with(b"PK\x03\x04"),
        scan: zipped::scan,
    },
    Entry {
        kind: Sniffed::Npy,
        claims: |d| d.starts_with(b"\x93NUMPY"),
        scan: numpy::scan,
    },
    Entry {
        kind: Sniffed::SevenZip,
        claims: |d| d.starts_with(b"7z\xbc\xaf\x27\x1c"),
        scan: sevenz::scan,
    },
    Entry {
        kind: Sniffed::Gzip,
        claims: |d| d.starts_with(b"\x1f\x8b"),
        scan: compressed::scan,
    },
    Entry {
        kind: Sniffed::Bzip2,
        claims: |d| d.starts_with(b"BZh"),
        scan: compressed::scan,
    },
    // joblib's `_XZ_PREFIX` is these five bytes (the sixth, 0x00, is not checked), so a file
    // cut after them is an xz stream to joblib.load, and reported incomplete here.
    Entry {
        kind: Sniffed::Xz,
        claims: |d| d.starts_with(b"\xfd7zXZ"),
        scan: compressed::scan,
    },
    Entry {
        kind: Sniffed::Lz4,
        claims: |d| d.starts_with(b"\x04\x22\x4d\x18"),
        scan: compressed::scan,
    },
    Entry {
        kind: Sniffed::Zstd,
        claims: |d| d.starts_with(b"\x28\xb5\x2f\xfd"),
        scan: compressed::scan,
    },
    // A safetensors header length such as 376 (0x178) starts `78 01`, a valid zlib header.
    // Such bytes cannot be a zlib stream joblib would inflate: the next byte opens a stored
    // deflate block whose LEN/NLEN pair is then the length's zero bytes, which zlib rejects.
    // So the safetensors reading wins (found by the broad benign set).
    Entry {
        kind: Sniffed::Safetensors,
        claims: |d| is_zlib_header(d) && looks_like_safetensors(d),
        scan: safetensors::scan,
    },
    Entry {
        kind: Sniffed::JoblibZlib,
        claims: |d| d.starts_with(b"ZF") || is_zlib_header(d),
        scan: compressed::scan,
    },
    Entry {
        kind: Sniffed::Lzma,
        claims: |d| d.starts_with(b"\x5d\x00\x00"),
        scan: compressed::scan,
    },
    Entry {
        kind: Sniffed::Tar,
        claims: |d| d.get(257..262) == Some(b"ustar"),
        scan: tar::scan,
    },
    Entry {
        kind: Sniffed::Gguf,
        claims: |d| d.starts_with(b"GGUF"),
        scan: gguf::scan,
    },
    Entry {
        kind: Sniffed::Safetensors,
        claims: looks_like_safetensors,
        scan: safetensors::scan,
    },
    Entry {
        kind: Sniffed::Hdf5,
        claims: |d| hdf5::find_superblock(d).is_some(),
        scan: hdf5::scan_hdf5,
    },
    Entry {
        kind: Sniffed::Identified,
        claims: |d| identify::identify(d).is_some(),
        scan: scan_identified,
    },
    Entry {
        kind: Sniffed::Onnx,
        claims: onnx::is_onnx_model,
        scan: onnx::scan_onnx,
    },
    Entry {
        kind: Sniffed::SavedModel,
        claims: savedmodel::is_saved_model,
        scan: savedmodel::scan_saved_model,
    },
    Entry {
        kind: Sniffed::CutProtobuf,
        claims: |d| d.first() == Some(&0x08) && protobuf::cut_short(d, 1).is_some(),
        scan: |ctx, d| report_cut_protobuf(ctx, d, "an ONNX, SavedModel or CoreML model"),
    },
];

/// The first entry that claims `data`; `None`: tried as a pickle stream.
pub fn claim(data: &[u8]) -> Option<&'static Entry> {
    ENTRIES.iter().find(|entry| (entry.claims)(data))
}

fn scan_empty(ctx: &mut Ctx, _: &[u8]) -> Format {
    ctx.report(Finding::new(Rule::NotAModel, "empty file"));
    Format::Empty
}

/// Executables, scripts, TFLite, CoreML, Flax msgpack: identified again (the claim test only
/// says yes), then scanned as what they are.
fn scan_identified(ctx: &mut Ctx, data: &[u8]) -> Format {
    match identify::identify(data) {
        Some(kind) => identify::scan_identified(ctx, data, kind),
        None => super::pickle_stream::scan_or_classify(ctx, data),
    }
}
