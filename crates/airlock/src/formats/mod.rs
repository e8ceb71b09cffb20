//! Routing by content: decides what a byte slice is the way the loaders do, and hands it to
//! the module for that format.
//!
//! Rules (from torch.load, numpy.load and joblib.load):
//! - `PK\x03\x04` in the first four bytes is a zip (torch's only test); bytes prepended to a
//!   zip make it *not* a zip, and torch unpickles it instead.
//! - Everything that is not a recognised container is tried as a pickle stream, because
//!   torch.load, pickle.load and joblib.load all unpickle whatever they are given. Only when
//!   that fails at the very first opcodes, with no import reached, is the file called
//!   "not a model".
//!
//! Extensions are never consulted.

pub mod gguf;
pub mod hdf5;
pub mod identify;
pub mod joblib;
pub mod keras;
pub mod marshal;
pub mod numpy;
pub mod onnx;
pub mod pickle_stream;
pub mod protobuf;
pub mod safetensors;
pub mod savedmodel;
pub mod torch;
pub mod torch_zip;

use crate::report::Finding;
use crate::rules::Rule;
use crate::scan::Ctx;

/// What the first bytes of a slice say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    Empty,
    Zip,
    Npy,
    SevenZip,
    Tar,
    Gzip,
    Bzip2,
    Xz,
    Lz4,
    Zstd,
    /// joblib's compressed formats: legacy `ZF` zlib, or a raw zlib stream.
    JoblibZlib,
    /// Raw LZMA ("alone") stream, as joblib writes with compress='lzma'.
    Lzma,
    Safetensors,
    /// GGUF (llama.cpp): magic `GGUF`.
    Gguf,
    /// HDF5 (legacy Keras `.h5`): signature at offset 0, 512, 1024, ...
    Hdf5,
    /// ONNX ModelProto (strict protobuf check).
    Onnx,
    /// TensorFlow SavedModel `saved_model.pb` (strict protobuf check).
    SavedModel,
    /// Executables, scripts, TFLite: identified, not parsed as models.
    Identified(identify::Identified),
    /// Anything else: tried as a pickle stream.
    Other,
}

/// Identifies a slice by its leading bytes.
pub fn sniff(data: &[u8]) -> Sniffed {
    let starts = |magic: &[u8]| data.starts_with(magic);
    if data.is_empty() {
        Sniffed::Empty
    } else if starts(b"PK\x03\x04") {
        Sniffed::Zip
    } else if starts(b"\x93NUMPY") {
        Sniffed::Npy
    } else if starts(b"7z\xbc\xaf\x27\x1c") {
        Sniffed::SevenZip
    } else if starts(b"\x1f\x8b") {
        Sniffed::Gzip
    } else if starts(b"BZh") {
        Sniffed::Bzip2
    } else if starts(b"\xfd7zXZ\x00") {
        Sniffed::Xz
    } else if starts(b"\x04\x22\x4d\x18") {
        Sniffed::Lz4
    } else if starts(b"\x28\xb5\x2f\xfd") {
        Sniffed::Zstd
    } else if starts(b"ZF") || is_zlib_header(data) {
        Sniffed::JoblibZlib
    } else if starts(b"\x5d\x00\x00") {
        Sniffed::Lzma
    } else if data.get(257..262) == Some(b"ustar") {
        Sniffed::Tar
    } else if starts(b"GGUF") {
        Sniffed::Gguf
    } else if looks_like_safetensors(data) {
        Sniffed::Safetensors
    } else if hdf5::find_superblock(data).is_some() {
        Sniffed::Hdf5
    } else if let Some(kind) = identify::identify(data) {
        Sniffed::Identified(kind)
    } else if onnx::is_onnx_model(data) {
        Sniffed::Onnx
    } else if savedmodel::is_saved_model(data) {
        Sniffed::SavedModel
    } else {
        Sniffed::Other
    }
}

/// A zlib stream header (CMF/FLG with a valid check value and deflate method), as joblib's
/// zlib compressor writes it. `x` (0x78) is also no pickle opcode CPython reads at the start of a
/// stream, so this cannot hide a pickle.
fn is_zlib_header(data: &[u8]) -> bool {
    match data {
        [cmf, flg, ..] => {
            *cmf == 0x78 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0 && flg & 0x20 == 0
        }
        _ => false,
    }
}

/// An 8-byte length followed by a JSON object (after optional whitespace, which the
/// reference reader accepts). The length is not bounded here: an oversized or truncated
/// header is still a safetensors file, and the safetensors module reports it (and also scans
/// the bytes as a pickle, since they are not a valid safetensors file).
fn looks_like_safetensors(data: &[u8]) -> bool {
    let Some(len) = data.get(..8) else {
        return false;
    };
    let len = u64::from_le_bytes(len.try_into().unwrap_or_default());
    let first = data
        .iter()
        .skip(8)
        .take(64)
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    len > 1 && first == Some(&b'{')
}

/// Scans `data` by its content and returns the name of the format found.
pub fn route(ctx: &mut Ctx, data: &[u8]) -> &'static str {
    match sniff(data) {
        Sniffed::Empty => {
            ctx.report(Finding::new(Rule::NotAModel, "empty file"));
            "empty"
        }
        Sniffed::Safetensors => safetensors::scan(ctx, data),
        Sniffed::Gguf => gguf::scan(ctx, data),
        Sniffed::Hdf5 => hdf5::scan_hdf5(ctx, data),
        Sniffed::Onnx => onnx::scan_onnx(ctx, data),
        Sniffed::SavedModel => savedmodel::scan_saved_model(ctx, data),
        Sniffed::Identified(kind) => identify::scan_identified(ctx, data, kind),
        Sniffed::Other => pickle_stream::scan_or_classify(ctx, data),
        Sniffed::Zip => crate::containers::zip::scan(ctx, data),
        Sniffed::Npy => numpy::scan(ctx, data),
        Sniffed::SevenZip => crate::containers::sevenz::scan(ctx, data),
        Sniffed::Tar => crate::containers::tar::scan(ctx, data),
        Sniffed::Gzip
        | Sniffed::Bzip2
        | Sniffed::Xz
        | Sniffed::Lz4
        | Sniffed::Zstd
        | Sniffed::JoblibZlib
        | Sniffed::Lzma => crate::containers::compressed::scan(ctx, data),
    }
}

/// Names what a slice is when it is not a model: text, an image, or unknown binary.
pub fn classify_non_model(data: &[u8]) -> &'static str {
    const IMAGES: &[&[u8]] = &[b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"RIFF", b"BM"];
    if IMAGES.iter().any(|m| data.starts_with(m)) {
        "image"
    } else if std::str::from_utf8(&data[..data.len().min(4096)]).is_ok_and(|s| !s.contains('\0')) {
        "text"
    } else {
        "binary"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_by_content_only() {
        assert_eq!(sniff(b"PK\x03\x04rest"), Sniffed::Zip);
        assert_eq!(
            sniff(b"xxPK\x03\x04"),
            Sniffed::Other,
            "prepended bytes: not a zip to torch"
        );
        assert_eq!(sniff(b"\x93NUMPY\x01\x00"), Sniffed::Npy);
        assert_eq!(sniff(b"\x80\x02}q\x00."), Sniffed::Other);
        assert_eq!(sniff(b"\x78\x9c\x01\x02"), Sniffed::JoblibZlib);
        assert_eq!(sniff(b""), Sniffed::Empty);
    }

    #[test]
    fn safetensors_needs_a_consistent_header_length() {
        let mut st = 2u64.to_le_bytes().to_vec();
        st.extend_from_slice(b"{}");
        assert_eq!(sniff(&st), Sniffed::Safetensors);
        // A header running past the end is a truncated safetensors file, reported as such.
        let mut truncated = 99u64.to_le_bytes().to_vec();
        truncated.extend_from_slice(b"{}");
        assert_eq!(sniff(&truncated), Sniffed::Safetensors);
        let mut spaced = 4u64.to_le_bytes().to_vec();
        spaced.extend_from_slice(b"  {}");
        assert_eq!(sniff(&spaced), Sniffed::Safetensors);
        assert_eq!(sniff(b"\x80\x02}q\x00(X\x01\x00\x00\x00a."), Sniffed::Other);
    }
}
