//! Every truncation is never safe (issue 20, item 3): for every format Airlock reads, a valid
//! file made by the real library (or, where the repository has none, built here the way the
//! library writes it) is cut at every offset (a dense sample for large files) and each cut is
//! scanned. No cut may be reported safe, and none dangerous: a cut of a benign file is
//! unscannable (GEN006 or the format's own "cut" finding), since nothing read from it proves
//! anything dangerous (issue 21: GGUF lengths running past the end, cut TorchScript zips).
//!
//! The one kind of exception, asserted narrowly rather than skipped: a cut so short that what
//! is left no longer carries the format's identifying bytes (its magic, or for pickles and
//! protobufs, the first field or opcode). Those bytes are indistinguishable from any other
//! short text or binary file; no loader deserializes anything from them, and Airlock
//! reports them "not a model" (GEN001, format `empty`, `text` or `binary`). Each format says
//! how short such a cut can be ([`Source::unidentifiable_below`]); a safe verdict on a longer
//! cut, or on a cut reported as anything but "not a model", fails the test.
//!
//! No cut in any fixture is accepted by the reference loader (each needs its whole file:
//! safetensors and GGUF check the data length, NumPy the array size, zip readers the
//! central directory at the end, pickles their final STOP), so no other exception exists.
//!
//! The test prints a table: format, files, cuts scanned, cuts of each verdict.

use std::collections::BTreeMap;

use airlock::{FileReport, Scanner, Verdict};

use crate::{finding_codes, fixtures};

/// One valid file to truncate.
struct Source {
    /// The format's row in the table.
    format: &'static str,
    /// File name given to the scanner (the route for `keras_metadata.pb` uses it).
    name: String,
    data: Vec<u8>,
    /// Cuts shorter than this may be "not a model" (see the module docs).
    unidentifiable_below: usize,
}

/// The cuts a reference loader accepts too, each for a reason its own code states:
/// - GGUF: llama.cpp (`llama_model_loader`) checks every tensor's `offset + nbytes` against the
///   file's size, and gguf-py's reader maps exactly `nbytes` per tensor: the padding ggml's
///   writer adds after the last tensor is read by neither, so a file may end where the last
///   tensor's data does.
/// - Protobuf (ONNX, SavedModel, CoreML, `keras_metadata.pb`): the wire format has no end
///   marker, so a cut at a top-level field boundary leaves a complete message with fewer
///   fields, which `ParseFromString` accepts (what is left is still scanned as such).
fn loader_accepts(source: &Source, cut: usize) -> bool {
    match source.format {
        "gguf" => cut as u64 >= gguf_data_end(&source.data),
        "onnx" | "savedmodel" | "keras_metadata.pb" | "coreml" => {
            top_level_field_ends(&source.data).contains(&cut)
        }
        _ => false,
    }
}

/// Where a GGUF file's last tensor data ends; only the alignment padding (under 32 bytes for
/// ggml's default alignment) may follow it, or the exception would cover real data.
fn gguf_data_end(data: &[u8]) -> u64 {
    let end = airlock::formats::gguf::parse(data).data_end;
    let len = data.len() as u64;
    assert!(
        end <= len && len - end < 32 && end > 0,
        "GGUF data end {end} of a {len}-byte file"
    );
    end
}

/// Offsets at which a top-level protobuf field ends (0 included: the empty message).
fn top_level_field_ends(data: &[u8]) -> Vec<usize> {
    let mut ends = vec![0];
    let mut fields = airlock::formats::protobuf::fields(data);
    while let Some(Ok(_)) = fields.next() {
        ends.push(fields.position());
    }
    ends
}

/// Every offset of files up to this size is cut; larger files get a dense sample.
const EVERY_OFFSET_UP_TO: usize = 16 * 1024;

/// Offsets to cut a file of `len` bytes at: all of them for small files; else every offset in
/// the first and last 4 KiB and about 2000 spread over the rest.
fn cuts(len: usize) -> Vec<usize> {
    if len <= EVERY_OFFSET_UP_TO {
        return (0..len).collect();
    }
    let edge = 4096;
    let mut out: Vec<usize> = (0..edge).chain(len - edge..len).collect();
    let step = ((len - 2 * edge) / 2000).max(1);
    out.extend((edge..len - edge).step_by(step));
    out.sort_unstable();
    out.dedup();
    out
}

fn read_fixture(rel: &str) -> Vec<u8> {
    let path = fixtures(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The fixture files in `dir` whose names pass `keep`, sorted.
fn files_in(dir: &str, keep: impl Fn(&str) -> bool) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures(dir))
        .unwrap_or_else(|e| panic!("cannot list {dir}: {e}"))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| keep(n))
        .collect();
    names.sort();
    names.into_iter().map(|n| format!("{dir}/{n}")).collect()
}

fn from_fixtures(format: &'static str, paths: Vec<String>, magic: usize) -> Vec<Source> {
    assert!(!paths.is_empty(), "no fixtures for {format}");
    paths
        .into_iter()
        .map(|rel| Source {
            format,
            name: rel.rsplit('/').next().unwrap_or(&rel).to_string(),
            data: read_fixture(&rel),
            unidentifiable_below: magic,
        })
        .collect()
}

fn is_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04")
}

/// Every valid file of every format.
fn sources() -> Vec<Source> {
    let ends = |suffix: &'static str| move |n: &str| n.ends_with(suffix);
    let mut out = Vec::new();
    // safetensors: 8-byte length and `{`.
    let mut st = files_in("formats/safetensors", |n| {
        n.starts_with("benign_") && n.ends_with(".safetensors")
    });
    st.extend(files_in("convert", ends(".safetensors")));
    st.extend(files_in("convert/sharded/expected", ends(".safetensors")));
    out.extend(from_fixtures("safetensors", st, 9));
    // Larger than EVERY_OFFSET_UP_TO, so that the dense sample is exercised too.
    out.push(Source {
        format: "safetensors",
        name: "large.safetensors".into(),
        data: large_safetensors(),
        unidentifiable_below: 9,
    });
    out.extend(from_fixtures(
        "gguf",
        files_in("formats/gguf", |n| n.starts_with("benign_")),
        4,
    ));
    out.extend(from_fixtures(
        "hdf5 (keras .h5)",
        vec!["formats/keras/benign.h5".into()],
        8,
    ));
    out.extend(from_fixtures(
        "keras (.keras zip)",
        vec!["formats/keras/benign.keras".into()],
        4,
    ));
    out.extend(from_fixtures(
        "onnx",
        files_in("formats/onnx", ends(".onnx"))
            .into_iter()
            .filter(|p| !p.contains("malicious"))
            .collect(),
        2,
    ));
    out.extend(from_fixtures(
        "savedmodel",
        vec!["formats/savedmodel/benign/saved_model.pb".into()],
        2,
    ));
    out.push(Source {
        format: "keras_metadata.pb",
        name: "keras_metadata.pb".into(),
        data: keras_metadata(&read_fixture("formats/keras/benign.config.json")),
        unidentifiable_below: 2,
    });
    out.extend(from_fixtures(
        "numpy .npy",
        files_in("benign", ends(".npy")),
        6,
    ));
    out.push(Source {
        format: "numpy .npy",
        name: "large.npy".into(),
        data: large_npy(),
        unidentifiable_below: 6,
    });
    out.extend(from_fixtures(
        "numpy .npz",
        files_in("benign", ends(".npz")),
        4,
    ));
    out.extend(from_fixtures("pickle", files_in("benign", ends(".pkl")), 2));
    let joblib = files_in("benign", ends(".joblib"));
    let (plain, compressed): (Vec<_>, Vec<_>) = joblib
        .into_iter()
        .partition(|p| read_fixture(p).starts_with(b"\x80"));
    out.extend(from_fixtures("joblib", plain, 2));
    // joblib tells xz by a 5-byte prefix (`_XZ_PREFIX`), the other compressors by at most 4.
    let mut compressed = from_fixtures("joblib (compressed)", compressed, 4);
    for source in &mut compressed {
        if source.data.starts_with(b"\xfd7zXZ") {
            source.unidentifiable_below = 5;
        }
    }
    out.extend(compressed);
    let mut torch = files_in("benign", |n| n.starts_with("torch_"));
    torch.extend(files_in("convert", |n| {
        (n.ends_with(".pt") || n.ends_with(".ckpt"))
            && !matches!(n, "dangerous.pt" | "bad_size.pt" | "undecoded_member.pt")
    }));
    torch.extend(files_in("convert/sharded", ends(".bin")));
    let (zips, legacy): (Vec<_>, Vec<_>) =
        torch.into_iter().partition(|p| is_zip(&read_fixture(p)));
    out.extend(from_fixtures("torch zip", zips, 4));
    // The tar-based legacy format (`legacy_tar.pt`) is left out: the fixture itself is
    // flagged (PKL009), so its cuts would prove nothing.
    let pickled: Vec<_> = legacy
        .into_iter()
        .filter(|p| read_fixture(p).get(257..262) != Some(b"ustar"))
        .collect();
    out.extend(from_fixtures("torch legacy", pickled, 2));
    out.push(Source {
        format: "torchscript",
        name: "script.pt".into(),
        data: torchscript_archive(),
        unidentifiable_below: 4,
    });
    out.extend(from_fixtures(
        "tflite",
        vec!["formats/misc/model.tflite".into()],
        8,
    ));
    out.push(Source {
        format: "coreml",
        name: "model.mlmodel".into(),
        data: coreml_model(),
        unidentifiable_below: 2,
    });
    // Shorter than the first key (`\x81\xa6params`), the bytes have no Flax shape.
    out.push(Source {
        format: "flax msgpack",
        name: "flax_model.msgpack".into(),
        data: flax_checkpoint(),
        unidentifiable_below: 8,
    });
    out
}

/// The verdict on a whole, valid file: safe (a TorchScript archive whose code is verified
/// too), except the formats Airlock identifies without verifying (EXE003, unscannable by
/// design).
fn whole_file_verdict(format: &str) -> Verdict {
    match format {
        "tflite" | "coreml" | "flax msgpack" => Verdict::Unscannable,
        _ => Verdict::Safe,
    }
}

/// What one format's cuts came to.
#[derive(Default)]
struct Tally {
    files: usize,
    cuts: usize,
    verdicts: BTreeMap<Verdict, usize>,
    /// Safe cuts, every one an exception the module docs allow (else the test fails).
    allowed_safe: usize,
}

/// `Some(problem)` when a cut's report breaks the rule.
fn check_cut(source: &Source, cut: usize, report: &FileReport) -> Option<String> {
    if report.verdict == Verdict::Dangerous {
        // Every source is benign: nothing read from a prefix of it proves anything dangerous,
        // so a cut is unscannable (truncated), never "malformed" (issue 20's rule).
        return Some(format!(
            "{} ({}) cut at {cut} of {}: dangerous as `{}` ({})",
            source.name,
            source.format,
            source.data.len(),
            report.format,
            finding_codes(report),
        ));
    }
    if report.verdict != Verdict::Safe {
        return None;
    }
    let not_a_model = matches!(report.format.as_str(), "empty" | "text" | "binary");
    if not_a_model && cut < source.unidentifiable_below {
        return None;
    }
    if loader_accepts(source, cut) {
        return None;
    }
    Some(format!(
        "{} ({}) cut at {cut} of {}: safe as `{}` ({}); {}",
        source.name,
        source.format,
        source.data.len(),
        report.format,
        finding_codes(report),
        report.summary
    ))
}

/// Formats whose truncation is the compression containers' (gzip, bz2, xz, lzma, lz4, zlib
/// streams around a joblib pickle): swept by [`compressed_joblib_truncations_are_never_safe`].
const COMPRESSED: &str = "joblib (compressed)";

#[test]
fn no_truncation_of_any_format_is_safe() {
    let sources: Vec<Source> = sources()
        .into_iter()
        .filter(|s| s.format != COMPRESSED)
        .collect();
    sweep_all(&sources);
}

/// The compression containers around joblib files: a stream cut before its end mark must not
/// be safe either (issue 20 names lz4).
#[test]
fn compressed_joblib_truncations_are_never_safe() {
    let sources: Vec<Source> = sources()
        .into_iter()
        .filter(|s| s.format == COMPRESSED)
        .collect();
    sweep_all(&sources);
}

/// Sweeps every source on its own thread, prints the table and fails on any safe cut.
fn sweep_all(sources: &[Source]) {
    let scanner = Scanner::default();
    let results: Vec<(Tally, Vec<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = sources
            .iter()
            .map(|source| {
                let scanner = &scanner;
                s.spawn(move || sweep(scanner, source))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("sweep thread"))
            .collect()
    });
    let mut table: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut failures = Vec::new();
    for (source, (tally, problems)) in sources.iter().zip(results) {
        let row = table.entry(source.format).or_default();
        row.files += 1;
        row.cuts += tally.cuts;
        row.allowed_safe += tally.allowed_safe;
        for (v, n) in tally.verdicts {
            *row.verdicts.entry(v).or_default() += n;
        }
        failures.extend(problems);
    }
    print_table(&table);
    // A few examples per file, so one bad format does not hide the others.
    let mut shown: BTreeMap<&str, usize> = BTreeMap::new();
    let examples: Vec<&String> = failures
        .iter()
        .filter(|f| {
            let file = f.split(' ').next().unwrap_or("");
            let n = shown.entry(file).or_default();
            *n += 1;
            *n <= 4
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} truncations reported safe; examples:\n{}",
        failures.len(),
        examples
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Scans every cut of one source.
fn sweep(scanner: &Scanner, source: &Source) -> (Tally, Vec<String>) {
    let mut tally = Tally::default();
    let mut problems = Vec::new();
    // The whole file is the baseline: it must get its format's verdict, or the sweep proves
    // nothing.
    let whole = scanner.scan_bytes(&source.name, &source.data);
    let expected = whole_file_verdict(source.format);
    if whole.verdict != expected {
        problems.push(format!(
            "{} ({}): the whole file is {} ({}), not {expected}",
            source.name,
            source.format,
            whole.verdict,
            finding_codes(&whole)
        ));
    }
    for cut in cuts(source.data.len()) {
        let report = scanner.scan_bytes(&source.name, &source.data[..cut]);
        tally.cuts += 1;
        *tally.verdicts.entry(report.verdict).or_default() += 1;
        if report.verdict == Verdict::Safe {
            tally.allowed_safe += 1;
        }
        problems.extend(check_cut(source, cut, &report));
    }
    (tally, problems)
}

fn print_table(table: &BTreeMap<&str, Tally>) {
    println!(
        "{:<22} {:>5} {:>7} {:>7} {:>10} {:>11} {:>9}",
        "format", "files", "cuts", "safe*", "suspicious", "unscannable", "dangerous"
    );
    println!("* safe: only the exceptions the module docs allow (a failing cut fails the test)");
    for (format, t) in table {
        let n = |v| t.verdicts.get(&v).copied().unwrap_or(0);
        println!(
            "{format:<22} {:>5} {:>7} {:>7} {:>10} {:>11} {:>9}",
            t.files,
            t.cuts,
            t.allowed_safe,
            n(Verdict::Suspicious),
            n(Verdict::Unscannable),
            n(Verdict::Dangerous),
        );
    }
}

// ---- Files built here, the way their libraries write them ----------------------------------

/// Protobuf length-delimited field `number` holding `bytes`.
fn pb_bytes(number: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = varint(u64::from(number) << 3 | 2);
    out.extend(varint(bytes.len() as u64));
    out.extend_from_slice(bytes);
    out
}

fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// `keras_metadata.pb` as TF-Keras writes it: `SavedMetadata{nodes: [SavedObject{version,
/// node_path, identifier, metadata}]}` with the model's config JSON as metadata.
fn keras_metadata(config: &[u8]) -> Vec<u8> {
    let mut node = pb_bytes(3, b"root");
    node.extend(pb_bytes(4, b"_tf_keras_model"));
    node.extend(pb_bytes(5, config));
    pb_bytes(1, &node)
}

/// A stored (uncompressed) zip of `members`, as torch's writer lays it out (no data
/// descriptors, 64-byte-aligned data is not needed by any reader).
fn stored_zip(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in members {
        let offset = out.len() as u32;
        let crc = crc32fast::hash(data);
        let mut header = Vec::new();
        header.extend_from_slice(&20u16.to_le_bytes()); // version needed
        header.extend_from_slice(&0u16.to_le_bytes()); // flags
        header.extend_from_slice(&0u16.to_le_bytes()); // stored
        header.extend_from_slice(&0u32.to_le_bytes()); // time, date
        header.extend_from_slice(&crc.to_le_bytes());
        header.extend_from_slice(&(data.len() as u32).to_le_bytes());
        header.extend_from_slice(&(data.len() as u32).to_le_bytes());
        header.extend_from_slice(&(name.len() as u16).to_le_bytes());
        header.extend_from_slice(&0u16.to_le_bytes()); // extra length
        out.extend_from_slice(b"PK\x03\x04");
        out.extend_from_slice(&header);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        central.extend_from_slice(b"PK\x01\x02");
        central.extend_from_slice(&20u16.to_le_bytes()); // version made by
        central.extend_from_slice(&header);
        central.extend_from_slice(&[0; 6]); // comment length, disk, internal attributes
        central.extend_from_slice(&0u32.to_le_bytes()); // external attributes
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let directory_at = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    let count = (members.len() as u16).to_le_bytes();
    out.extend_from_slice(&count);
    out.extend_from_slice(&count);
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&directory_at.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// A TorchScript archive as `torch.jit.save` lays out a module with no tensors: `data.pkl`
/// (the module object), `constants.pkl`, `code/__torch__.py`, `version`.
fn torchscript_archive() -> Vec<u8> {
    let data_pkl: &[u8] =
        b"\x80\x02c__torch__\nM\nq\x00)\x81q\x01}q\x02X\x08\x00\x00\x00trainingq\x03\x88sb.";
    let code: &[u8] = b"class M(Module):\n  __parameters__ = []\n  __buffers__ = []\n  training : bool\n  def forward(self: __torch__.M,\n    x: Tensor) -> Tensor:\n    return torch.relu(x)\n";
    stored_zip(&[
        ("archive/data.pkl", data_pkl),
        ("archive/code/__torch__.py", code),
        ("archive/constants.pkl", b"\x80\x02).".as_slice()),
        ("archive/version", b"3\n".as_slice()),
    ])
}

/// Elements of the large files below (200 KB of f32).
const LARGE_ELEMENTS: usize = 50_000;

/// A safetensors file as the `safetensors` library writes it: one F32 tensor, header padded
/// with spaces to a multiple of 8.
fn large_safetensors() -> Vec<u8> {
    let bytes = LARGE_ELEMENTS * 4;
    let mut header = format!(
        r#"{{"w":{{"dtype":"F32","shape":[{LARGE_ELEMENTS}],"data_offsets":[0,{bytes}]}}}}"#
    );
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend((0..bytes).map(|i| (i % 251) as u8));
    out
}

/// A version 1.0 `.npy` file as `numpy.save` writes it: the header dict padded with spaces
/// and a newline so that the data starts at a multiple of 64.
fn large_npy() -> Vec<u8> {
    let mut header =
        format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({LARGE_ELEMENTS},), }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend((0..LARGE_ELEMENTS * 4).map(|i| (i % 251) as u8));
    out
}

/// A CoreML `Model` protobuf: specificationVersion 4, a description, and a neural network.
fn coreml_model() -> Vec<u8> {
    let mut out = vec![0x08, 0x04];
    out.extend(pb_bytes(2, &pb_bytes(1, &pb_bytes(1, b"input"))));
    out.extend(pb_bytes(500, &pb_bytes(1, &pb_bytes(1, b"layer"))));
    out
}

/// A Flax msgpack checkpoint: `{"params": {"dense": {"kernel": <ext tensor>}}}`.
fn flax_checkpoint() -> Vec<u8> {
    let mut out = vec![0x81, 0xa6];
    out.extend_from_slice(b"params");
    out.extend_from_slice(&[0x81, 0xa5]);
    out.extend_from_slice(b"dense");
    out.extend_from_slice(&[0x81, 0xa6]);
    out.extend_from_slice(b"kernel");
    // ext 8 with a 16-byte payload (flax's ndarray extension, type 1).
    out.extend_from_slice(&[0xc7, 16, 1]);
    out.extend_from_slice(&[0u8; 16]);
    out
}
