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
//! Extensions are never consulted. The file *names* a loader opens by name are: TensorFlow
//! reads `saved_model.pb` from a SavedModel folder whatever its bytes, Keras reads
//! `keras_metadata.pb` beside it, and transformers reads `flax_model.msgpack` with
//! `flax.serialization.from_bytes`. Protobuf has no magic and msgpack none either, so those
//! names are parsed as their format even where the content test would not claim the bytes (a
//! `saved_model.pb` with no meta-graph tags, a Flax checkpoint cut short at its first key).
//! The name route only *adds* that analysis: the bytes still go through the content route,
//! so naming a pickle `keras_metadata.pb` or `saved_model.pb` hides nothing.

pub mod coreml;
pub mod flax;
pub mod gguf;
pub mod hdf5;
pub mod identify;
pub mod joblib;
pub mod keras;
pub mod marshal;
pub mod metadata_text;
pub mod numpy;
pub mod onnx;
pub mod pickle_stream;
pub mod protobuf;
pub mod registry;
pub mod safetensors;
pub mod savedmodel;
pub mod skops;
pub mod torch;
pub mod torch_zip;
pub mod torchscript;
pub mod zipped;

use crate::ctx::Ctx;
use crate::format::Format;
use crate::report::Finding;
use crate::rules::Rule;

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
    /// A protobuf whose first field is a varint (ONNX, SavedModel and CoreML all start with
    /// field 1 as one) and whose last field runs past the end: a protobuf model cut short.
    CutProtobuf,
    /// Executables, scripts, TFLite, CoreML, Flax msgpack: identified, not parsed as models
    /// ([`identify::identify`] says which).
    Identified,
    /// Anything else: tried as a pickle stream.
    Other,
}

/// Identifies a slice by its leading bytes: the kind of the first [`registry`] entry that
/// claims it, else [`Sniffed::Other`].
pub fn sniff(data: &[u8]) -> Sniffed {
    registry::claim(data).map_or(Sniffed::Other, |entry| entry.kind)
}

/// An 8-byte length followed by a JSON object (after optional whitespace, which the
/// reference reader accepts). The length is not bounded here: an oversized or truncated
/// header is still a safetensors file, and the safetensors module reports it (and also scans
/// the bytes as a pickle, since they are not a valid safetensors file).
pub(crate) fn looks_like_safetensors(data: &[u8]) -> bool {
    let Ok(len) = crate::bytes::ByteReader::new(data).read_u64_le() else {
        return false;
    };
    let first = data
        .iter()
        .skip(8)
        .take(64)
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    len > 1 && first == Some(&b'{')
}

/// The router the scanner hands to every [`Ctx`]: archive members are scanned through it.
pub const ROUTER: crate::ctx::Router = crate::ctx::Router {
    route,
    recognises: |data| !matches!(sniff(data), Sniffed::Other | Sniffed::Empty),
};

/// File names routing looks at (see the module docs).
pub const KERAS_METADATA_NAME: &str = "keras_metadata.pb";
pub const SAVED_MODEL_NAME: &str = "saved_model.pb";
pub const FLAX_MODEL_NAME: &str = "flax_model.msgpack";

/// Scans `data` by its content and returns the name of the format found. A file or member
/// named as a loader opens it (see the module docs) is also analysed as that format.
pub fn route(ctx: &mut Ctx, data: &[u8]) -> Format {
    let name = ctx.current_name();
    if name == SAVED_MODEL_NAME && !savedmodel::is_saved_model(data) {
        // TensorFlow parses it whatever the content test says: walk it as a SavedModel
        // (what does not parse is TF003), then route the bytes by content as well.
        savedmodel::scan_saved_model(ctx, data);
        return route_besides(ctx, data).unwrap_or(Format::TensorflowSavedmodel);
    }
    if name == FLAX_MODEL_NAME && flax::identify(data).is_none() && !flax::is_cut_short(data) {
        if let Some(at) = flax::cut_msgpack(data) {
            ctx.report(
                Finding::new(
                    Rule::Truncated,
                    format!("flax_model.msgpack ends inside a msgpack value (at offset {at}); flax.serialization.from_bytes refuses it"),
                )
                .at(at as u64),
            );
            return route_besides(ctx, data).unwrap_or(Format::Msgpack);
        }
    }
    if name == KERAS_METADATA_NAME {
        if savedmodel::is_keras_metadata(data) {
            savedmodel::scan_keras_metadata(ctx, data);
            return route_besides(ctx, data).unwrap_or(Format::KerasMetadata);
        }
        if protobuf::cut_short(data, 0).is_some() {
            report_cut_protobuf(ctx, data, "Keras metadata");
            return route_besides(ctx, data).unwrap_or(Format::KerasMetadata);
        }
    }
    route_by_content(ctx, data)
}

/// A protobuf model whose last top-level field runs past the end of the file (see
/// [`protobuf::cut_short`]): it was truncated, and what the cut field held was not read.
/// The bytes are still tried as a pickle by the polyglot probe, as for every identified format.
pub(crate) fn report_cut_protobuf(ctx: &mut Ctx, data: &[u8], what: &str) -> Format {
    let at = protobuf::cut_short(data, 0).map_or(0, |e| e.offset);
    ctx.report(
        Finding::new(
            Rule::Truncated,
            format!(
                "a protobuf message ({what}) is cut short: its field at offset {at} runs past the end of the {}-byte file",
                data.len()
            ),
        )
        .at(at as u64),
    );
    Format::Protobuf
}

/// The content route for bytes another reader already identified (a Keras JSON config, a
/// TorchScript code file, Keras metadata): magic-identified formats and pickles are scanned
/// and reported as usual; a bare "not a model" verdict is dropped, since the bytes are known
/// to be something. Returns the content format when it is a model format.
pub fn route_besides(ctx: &mut Ctx, data: &[u8]) -> Option<Format> {
    let before = ctx.checkpoint();
    let format = route_by_content(ctx, data);
    if matches!(
        format,
        Format::Text | Format::Binary | Format::Image | Format::Empty | Format::Msgpack
    ) {
        ctx.rollback(before);
        return None;
    }
    Some(format)
}

/// Routes by content only.
fn route_by_content(ctx: &mut Ctx, data: &[u8]) -> Format {
    let entry = registry::claim(data);
    let format = match entry {
        Some(entry) => (entry.scan)(ctx, data),
        None => pickle_stream::scan_or_classify(ctx, data),
    };
    let sniffed = entry.map_or(Sniffed::Other, |entry| entry.kind);
    if !matches!(sniffed, Sniffed::Other | Sniffed::Zip | Sniffed::Empty) {
        probe_polyglot(ctx, data);
    }
    format
}

/// `torch.load` unpickles whatever is not a zip, so bytes routed to another format are also
/// read as a pickle: if that reading imports or calls anything, it is reported too (a file
/// can be a valid GGUF or HDF5 and a working pickle at once).
fn probe_polyglot(ctx: &mut Ctx, data: &[u8]) {
    let probe = ctx.checkpoint();
    let outcome = crate::pickle::machine::run(ctx, data, 0);
    let runs_nothing = outcome.imports == 0 && outcome.calls == 0;
    if runs_nothing || pickle_stream::loader_runs_nothing(data, &outcome) {
        ctx.rollback(probe);
        return;
    }
    pickle_stream::report_failure(ctx, &outcome);
    ctx.note(format!("also a pickle with {} imports", outcome.imports));
}

/// Names what a slice is when it is not a model: an image, msgpack, text, or unknown binary.
///
/// Text is valid UTF-8 (a character cut at the end of the sample allowed) holding no NUL and
/// no other C0 control character except tab, line feed, carriage return and form feed, over
/// the whole sample looked at (the first [`TEXT_SAMPLE`] bytes). A protobuf of small fields is
/// valid UTF-8 with no NUL, but its tags and lengths are control bytes: binary, never text.
pub fn classify_non_model(data: &[u8]) -> Format {
    const IMAGES: &[&[u8]] = &[b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"RIFF", b"BM"];
    if IMAGES.iter().any(|m| data.starts_with(m)) {
        Format::Image
    } else if flax::is_msgpack(data) {
        Format::Msgpack
    } else if looks_like_text(&data[..data.len().min(TEXT_SAMPLE)]) {
        Format::Text
    } else {
        Format::Binary
    }
}

/// Bytes [`classify_non_model`] reads to call a slice text.
pub const TEXT_SAMPLE: usize = 4096;

fn looks_like_text(sample: &[u8]) -> bool {
    let valid = match std::str::from_utf8(sample) {
        Ok(s) => s,
        // Only a character cut by the end of the sample is forgiven.
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&sample[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    !valid.is_empty()
        && !valid
            .bytes()
            .any(|b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c)) || b == 0x7f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pickle_that_is_also_another_format_is_still_scanned() {
        // A protocol-0 pickle with 'ustar' at offset 257 sniffs as tar; torch.load would
        // unpickle it.
        let mut data = b"cos\nsystem\n(S'id'\ntR.".to_vec();
        data.resize(257, b' ');
        data.extend_from_slice(b"ustar\0");
        data.resize(1024, 0);
        let report = crate::Scanner::default().scan_bytes("t", &data);
        assert_eq!(
            report.verdict,
            crate::Verdict::Dangerous,
            "{:?}",
            report.findings
        );
        // An ordinary tar gains nothing from the probe.
        let mut tar = vec![0u8; 1024];
        tar[..4].copy_from_slice(b"a.tx");
        tar[257..263].copy_from_slice(b"ustar\0");
        let report = crate::Scanner::default().scan_bytes("t", &tar);
        assert!(report.imports.is_empty());
    }

    #[test]
    fn protobuf_models_cut_inside_a_field_are_truncated() {
        // ModelProto{ir_version: 7, producer_name: "pytorch", graph: {...}} cut in the graph.
        let mut onnx = b"\x08\x07\x12\x07pytorch\x3a\x10".to_vec();
        onnx.extend_from_slice(b"\x0a\x04node");
        assert_eq!(sniff(&onnx), Sniffed::CutProtobuf);
        let report = crate::Scanner::default().scan_bytes("m.onnx", &onnx);
        assert_eq!(report.format, "protobuf");
        assert_eq!(report.verdict, crate::Verdict::Unscannable);
        assert!(report.findings.iter().any(|f| f.rule == Rule::Truncated));
        // A cut between top-level fields is a complete message, and one varint is nothing.
        assert_eq!(sniff(&onnx[..11]), Sniffed::Other);
        assert_eq!(sniff(b"\x08"), Sniffed::Other);
        // A named keras_metadata.pb is recognised from its first byte.
        let report = crate::Scanner::default().scan_bytes("keras_metadata.pb", b"\x0a\x80\x01");
        assert!(report.findings.iter().any(|f| f.rule == Rule::Truncated));
    }

    fn msgpack_fixture(name: &str) -> Vec<u8> {
        crate::testkit::fixture("formats/msgpack", name)
    }

    /// A `saved_model.pb` with a PyFunc node and no meta-graph tags: the content test does not
    /// claim it, and it was called "text" and safe. TensorFlow reads it by name.
    #[test]
    fn saved_model_pb_is_parsed_by_its_name_and_binary_is_never_text() {
        let data = msgpack_fixture("saved_model.pb");
        let report = crate::Scanner::default().scan_bytes("m/saved_model.pb", &data);
        assert_eq!(report.format, "tensorflow-savedmodel");
        assert_eq!(
            report.verdict,
            crate::Verdict::Dangerous,
            "{:?}",
            report.findings
        );
        assert!(report.findings.iter().any(|f| f.rule == Rule::TfHostOp));
        // Under another name: not a model, but binary, never text.
        let report = crate::Scanner::default().scan_bytes("graph.pb", &data);
        assert_eq!(report.format, "binary");
        // The name only adds: a pickle named saved_model.pb is still read as a pickle.
        let report =
            crate::Scanner::default().scan_bytes("saved_model.pb", b"cos\nsystem\n(S'id'\ntR.");
        assert_eq!(report.verdict, crate::Verdict::Dangerous);
        assert!(report.imports.iter().any(|i| i.qualified() == "os.system"));
    }

    #[test]
    fn text_is_utf8_without_control_bytes_over_the_whole_sample() {
        assert_eq!(classify_non_model(b"hello\tworld\r\n\x0c"), Format::Text);
        assert_eq!(
            classify_non_model("caf\u{e9} \u{2014} ok".as_bytes()),
            Format::Text
        );
        assert_eq!(
            classify_non_model(b"\x08\x01\x12\x02ab"),
            Format::Binary,
            "protobuf"
        );
        assert_eq!(classify_non_model(b"ok\x1b[0m"), Format::Binary, "escape");
        assert_eq!(classify_non_model(b"a\x7f"), Format::Binary, "DEL");
        // A character cut by the end of the sample is forgiven; a bad one inside it is not.
        let mut cut = vec![b'a'; TEXT_SAMPLE - 1];
        cut.extend("\u{e9}".as_bytes());
        assert_eq!(classify_non_model(&cut), Format::Text);
        let mut late = vec![b'a'; TEXT_SAMPLE - 10];
        late.push(0x01);
        assert_eq!(
            classify_non_model(&late),
            Format::Binary,
            "control byte late in the sample"
        );
    }

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
        // A safetensors file whose header is 376 bytes long starts like a zlib stream.
        let mut st = 376u64.to_le_bytes().to_vec();
        st.extend_from_slice(b"{\"__metadata__\":{}}");
        st.resize(8 + 376, b' ');
        assert_eq!(sniff(&st), Sniffed::Safetensors);
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
