//! Tests of the converter against fixtures made by real torch (`scripts/fixtures/make_convert.py`):
//! each output must hold the values `torch.load` gives every name: the expected file, written
//! by `safetensors.torch.save_file` from `{name: tensor.contiguous().clone()}`, holds every
//! name, and its metadata says which names are exact aliases that the output records as
//! `{removed: kept}` instead of writing them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::SafeTensors;

use super::*;

fn fixture(name: &str) -> PathBuf {
    crate::testkit::fixture_path("convert", name)
}

/// Asserts that `actual` (Airlock's output) gives every name of `expected` its values (dtype,
/// shape, bytes): directly, or for a removed alias through the name it is recorded under.
/// The metadata must be the same, and nothing else may be written.
fn assert_same(actual: &Path, expected: &Path) {
    let a = std::fs::read(actual).unwrap();
    let e = std::fs::read(expected).unwrap();
    let (_, a_meta) = SafeTensors::read_metadata(&a).unwrap();
    let (_, e_meta) = SafeTensors::read_metadata(&e).unwrap();
    let metadata = e_meta.metadata().clone().unwrap_or_default();
    assert_eq!(
        a_meta.metadata().clone().unwrap_or_default(),
        metadata,
        "metadata of {actual:?}"
    );
    let a = SafeTensors::deserialize(&a).unwrap();
    let e = SafeTensors::deserialize(&e).unwrap();
    let mut written = 0;
    for name in e.names() {
        let stored_as = match a.tensor(name) {
            Ok(_) => {
                written += 1;
                name
            }
            Err(_) => metadata
                .get(name)
                .filter(|_| name != "format")
                .unwrap_or_else(|| panic!("{name} is neither written nor recorded as an alias")),
        };
        let (at, et) = (a.tensor(stored_as).unwrap(), e.tensor(name).unwrap());
        assert_eq!(at.dtype(), et.dtype(), "{name}");
        assert_eq!(at.shape(), et.shape(), "{name}");
        assert_eq!(at.data(), et.data(), "bytes of {name}");
    }
    assert_eq!(
        a.len(),
        written,
        "only expected names are written in {actual:?}"
    );
}

fn convert_fixture(name: &str, options: &Options) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.safetensors");
    convert_file(&fixture(name), &out, options).unwrap();
    (dir, out)
}

fn check_pair(input: &str, options: &Options) {
    let (_dir, out) = convert_fixture(input, options);
    let expected = fixture(&safetensors_name(input));
    assert_same(&out, &expected);
    // Verification re-reads every element from the source.
    let verified = Options {
        verify: true,
        ..options.clone()
    };
    let (_dir2, out2) = convert_fixture(input, &verified);
    assert_same(&out2, &expected);
}

#[test]
fn every_dtype_matches_save_file() {
    check_pair("dtypes.pt", &Options::default());
}

#[test]
fn unsynced_output_is_the_same_file() {
    check_pair(
        "dtypes.pt",
        &Options {
            no_sync: true,
            ..Options::default()
        },
    );
}

#[test]
fn legacy_format_matches_save_file() {
    check_pair("dtypes_legacy.pt", &Options::default());
}

#[test]
fn views_are_materialised_contiguous() {
    check_pair("views.pt", &Options::default());
}

#[test]
fn tied_weights_keep_the_first_name() {
    check_pair("tied.pt", &Options::default());
    let plan = plan_file(&fixture("tied.pt"), &Options::default()).unwrap();
    assert_eq!(
        plan.shared,
        [SharedGroup {
            kept: "lm_head.weight".into(),
            removed: vec!["model.embed.weight".into()],
        }]
    );
    // A tail slice of a saved tensor is another tensor: written, not recorded as an alias.
    let names: Vec<&str> = plan.tensors.iter().map(|t| t.name.as_str()).collect();
    assert!(names.contains(&"b.tail"), "{names:?}");
    assert_eq!(plan.metadata.get("b.tail"), None);
    assert!(names.contains(&"c.halfA") && names.contains(&"c.halfB"));
}

/// Transposes, slices, strided and overlapping `as_strided` views, an expansion and a
/// diagonal of saved tensors are each written with the values torch.load gives them; only
/// exact aliases (same storage, dtype, offset, shape, strides) are recorded instead.
#[test]
fn views_of_shared_storages_round_trip() {
    for input in [
        "shared_views.pt",
        "shared_views_legacy.pt",
        "shared_views_deflated.pt",
    ] {
        check_pair(input, &Options::default());
        let plan = plan_file(&fixture(input), &Options::default()).unwrap();
        assert_eq!(
            plan.shared,
            [
                SharedGroup {
                    kept: "decoder.weight".into(),
                    removed: vec!["embed.weight".into()],
                },
                SharedGroup {
                    kept: "part.x".into(),
                    removed: vec!["part.y".into()],
                },
            ],
            "{input}"
        );
        // `format` is an exact alias too, but its name is the metadata's own key: written.
        assert!(plan.tensors.iter().any(|t| t.name == "format"), "{input}");
        assert_eq!(plan.tensors.len(), 18, "{input}");
    }
}

#[test]
fn no_dedup_writes_every_name() {
    let options = Options {
        no_dedup: true,
        ..Options::default()
    };
    let (_dir, out) = convert_fixture("tied.pt", &options);
    let bytes = std::fs::read(&out).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.len(), 6);
    assert_eq!(
        st.tensor("model.embed.weight").unwrap().data(),
        st.tensor("lm_head.weight").unwrap().data()
    );
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    assert_eq!(
        meta.metadata().clone().unwrap(),
        HashMap::from([("format".to_string(), "pt".to_string())])
    );
}

#[test]
fn parameters_match_save_file() {
    check_pair("params.pt", &Options::default());
}

#[test]
fn deflated_records_are_read() {
    check_pair("deflated.pt", &Options::default());
}

#[test]
fn big_endian_storages_are_swapped() {
    check_pair("bigendian.pt", &Options::default());
}

#[test]
fn lightning_checkpoint_unwraps_state_dict() {
    check_pair("lightning.ckpt", &Options::default());
    let explicit = Options {
        key: Some("state_dict".into()),
        ..Options::default()
    };
    check_pair("lightning.ckpt", &explicit);
}

#[test]
fn missing_key_is_an_error() {
    let options = Options {
        key: Some("model_ema".into()),
        ..Options::default()
    };
    let err = plan_file(&fixture("lightning.ckpt"), &options).unwrap_err();
    assert!(
        err.to_string().contains("no top-level key `model_ema`"),
        "{err}"
    );
}

#[test]
fn nested_dicts_need_flatten() {
    let err = plan_file(&fixture("nested.pt"), &Options::default()).unwrap_err();
    assert!(err.to_string().contains("`encoder`"), "{err}");
    assert!(err.to_string().contains("--flatten"), "{err}");
    let options = Options {
        flatten: true,
        ..Options::default()
    };
    check_pair("nested.pt", &options);
}

#[test]
fn non_tensor_values_are_refused_or_skipped() {
    let err = plan_file(&fixture("mixed.pt"), &Options::default()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("is not a tensor"), "{text}");
    let options = Options {
        skip_non_tensors: true,
        ..Options::default()
    };
    check_pair("mixed.pt", &options);
    let plan = plan_file(&fixture("mixed.pt"), &options).unwrap();
    let skipped: Vec<&str> = plan.skipped.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(skipped, ["step", "name", "lr"]);
}

#[test]
fn storage_size_mismatch_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.safetensors");
    // The scanner already rates it dangerous (PT002)...
    let err = convert_file(&fixture("bad_size.pt"), &out, &Options::default()).unwrap_err();
    assert!(matches!(err, ConvertError::Refused { .. }), "{err}");
    assert!(err.to_string().contains("PT002"), "{err}");
    assert!(!out.exists());
    // ...and the converter's own check stops it too.
    let checkpoint =
        source::Checkpoint::open(&fixture("bad_size.pt"), &Scanner::default()).unwrap();
    let err = plan::plan(&checkpoint, &Options::default()).unwrap_err();
    assert!(matches!(err, ConvertError::Layout { .. }), "{err}");
    assert!(err.to_string().contains("CVE-2026-24747"), "{err}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no partial output"
    );
}

#[test]
fn dangerous_pickle_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.safetensors");
    let err = convert_file(&fixture("dangerous.pt"), &out, &Options::default()).unwrap_err();
    assert!(matches!(err, ConvertError::Refused { .. }), "{err}");
    assert!(err.to_string().contains("dangerous"), "{err}");
    // A bare pickle (torch's legacy path) calling os.system: refused by the first scan.
    let bare = dir.path().join("evil.bin");
    std::fs::write(&bare, b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R.").unwrap();
    let err = convert_file(&bare, &out, &Options::default()).unwrap_err();
    assert!(matches!(err, ConvertError::Refused { .. }), "{err}");
    assert!(!out.exists());
}

#[test]
fn existing_output_is_kept_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.safetensors");
    std::fs::write(&out, b"precious").unwrap();
    let err = convert_file(&fixture("params.pt"), &out, &Options::default()).unwrap_err();
    assert!(matches!(err, ConvertError::Exists { .. }), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let force = Options {
        force: true,
        ..Options::default()
    };
    convert_file(&fixture("params.pt"), &out, &force).unwrap();
    assert_same(&out, &fixture("params.safetensors"));
}

#[test]
fn not_a_checkpoint_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.bin");
    std::fs::write(&text, b"just some text\n").unwrap();
    let err = plan_file(&text, &Options::default()).unwrap_err();
    assert!(matches!(err, ConvertError::NotACheckpoint { .. }), "{err}");
}

#[test]
fn sharded_folder_converts_with_index() {
    let out = tempfile::tempdir().unwrap();
    let mut events = Vec::new();
    let summary = convert_folder(
        &fixture("sharded"),
        Some(out.path()),
        &Options::default(),
        &mut |p| {
            if let Progress::Done { index, total, .. } = p {
                events.push((index, total));
            }
        },
    )
    .unwrap();
    assert_eq!(events, [(1, 2), (2, 2)]);
    assert_eq!(summary.converted.len(), 2);
    let expected = fixture("sharded/expected");
    for name in [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ] {
        assert_same(&out.path().join(name), &expected.join(name));
    }
    let read = |p: PathBuf| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    assert_eq!(
        read(out.path().join("model.safetensors.index.json")),
        read(expected.join("model.safetensors.index.json"))
    );
    // Running again refuses to overwrite.
    let again = convert_folder(
        &fixture("sharded"),
        Some(out.path()),
        &Options::default(),
        &mut |_| {},
    );
    assert!(matches!(again, Err(ConvertError::Exists { .. })));
}

#[test]
fn shard_names_must_stay_in_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("pytorch_model.bin.index.json"),
        r#"{"weight_map": {"w": "../../etc/passwd"}}"#,
    )
    .unwrap();
    let err = convert_folder(dir.path(), None, &Options::default(), &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("not a plain file name"), "{err}");
}

#[test]
fn safetensors_names_follow_the_hub() {
    assert_eq!(
        safetensors_name("pytorch_model-00001-of-00002.bin"),
        "model-00001-of-00002.safetensors"
    );
    assert_eq!(safetensors_name("last.ckpt"), "last.safetensors");
    assert_eq!(safetensors_name("weights"), "weights.safetensors");
}

#[test]
fn check_reports_the_plan() {
    let plan = plan_file(&fixture("views.pt"), &Options::default()).unwrap();
    assert_eq!(plan.format, "zip");
    let scalar = plan.tensors.iter().find(|t| t.name == "scalar").unwrap();
    assert!(scalar.shape.is_empty());
    assert_eq!(scalar.nbytes, 4);
    let transposed = plan
        .tensors
        .iter()
        .find(|t| t.name == "transposed")
        .unwrap();
    assert!(!transposed.is_contiguous());
    assert_eq!(transposed.shape, [6, 4]);
    assert_eq!(
        plan.data_bytes(),
        plan.tensors.iter().map(|t| t.nbytes).sum::<u64>()
    );
}

/// A small deterministic generator (xorshift) for the round-trip test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn random_tensor(rng: &mut Rng, name: String) -> testkit::TensorSpec {
    const CLASSES: &[(&str, u64)] = &[
        ("FloatStorage", 4),
        ("HalfStorage", 2),
        ("LongStorage", 8),
        ("ByteStorage", 1),
        ("ComplexFloatStorage", 8),
    ];
    let (storage_class, element_size) = CLASSES[rng.below(CLASSES.len() as u64) as usize];
    let rank = rng.below(4) as usize;
    let shape: Vec<u64> = (0..rank).map(|_| rng.below(5)).collect();
    // Contiguous strides, then perhaps a transpose or a step.
    let mut strides = vec![0u64; rank];
    let mut acc = 1;
    for d in (0..rank).rev() {
        strides[d] = acc;
        acc *= shape[d].max(1) * if rng.below(3) == 0 { 2 } else { 1 };
    }
    if rank >= 2 && rng.below(2) == 0 {
        strides.swap(0, rank - 1);
    }
    let offset = rng.below(4);
    let numel: u64 = shape.iter().product();
    let reach = if numel == 0 {
        offset
    } else {
        offset
            + shape
                .iter()
                .zip(&strides)
                .map(|(d, s)| (d - 1) * s)
                .sum::<u64>()
            + 1
    };
    let elements = reach + rng.below(3);
    let storage = (0..elements * element_size)
        .map(|_| rng.next() as u8)
        .collect();
    testkit::TensorSpec {
        name,
        storage_class,
        element_size,
        storage,
        offset,
        shape,
        strides,
    }
}

#[test]
fn round_trip_of_generated_checkpoints() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let dir = tempfile::tempdir().unwrap();
    for case in 0..60 {
        let count = 1 + rng.below(6);
        let specs: Vec<testkit::TensorSpec> = (0..count)
            .map(|i| random_tensor(&mut rng, format!("t{case}.{i}")))
            .collect();
        let input = dir.path().join(format!("case{case}.pt"));
        std::fs::write(&input, testkit::checkpoint(&specs)).unwrap();
        let output = dir.path().join(format!("case{case}.safetensors"));
        let options = Options {
            verify: true,
            ..Options::default()
        };
        convert_file(&input, &output, &options).unwrap_or_else(|e| panic!("case {case}: {e}"));
        let bytes = std::fs::read(&output).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.len(), specs.len());
        for spec in &specs {
            let t = st.tensor(&spec.name).unwrap();
            let shape: Vec<usize> = spec.shape.iter().map(|&d| d as usize).collect();
            assert_eq!(t.shape(), shape, "case {case} {}", spec.name);
            assert_eq!(
                t.data(),
                testkit::expected_bytes(spec),
                "case {case} {}",
                spec.name
            );
        }
    }
}

#[test]
fn deflated_records_are_held_to_the_bomb_limits() {
    let checkpoint = std::fs::read(fixture("deflated.pt")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("deflated.pt");
    std::fs::write(&input, checkpoint).unwrap();
    let tight = Scanner::new(
        crate::Policy::default(),
        crate::Limits {
            max_inflated_bytes: 16,
            ..crate::Limits::default()
        },
    );
    let err = match source::Checkpoint::open(&input, &tight) {
        Err(e) => e,
        Ok(_) => panic!("the budget must stop it"),
    };
    assert!(err.to_string().contains("decompression budget"), "{err}");
}

#[test]
fn legacy_tar_format_matches_torch() {
    check_pair("legacy_tar.pt", &Options::default());
    let plan = plan_file(&fixture("legacy_tar.pt"), &Options::default()).unwrap();
    assert_eq!(plan.format, "tar");
}

/// A checkpoint over the sparse-image threshold is parsed without mapping it, and its tensors
/// (a whole 64 MiB storage, a strided view into it, a small one) still come out byte for byte.
#[cfg(unix)]
#[test]
fn large_checkpoints_are_read_through_a_sparse_image() {
    let big: Vec<u8> = (0..crate::containers::zip_image::MIN_IMAGE_SIZE as usize)
        .map(|i| (i % 251) as u8 ^ (i >> 16) as u8)
        .collect();
    let elements = big.len() as u64 / 2;
    let specs = vec![
        testkit::TensorSpec {
            name: "embed.weight".into(),
            storage_class: "HalfStorage",
            element_size: 2,
            storage: big,
            offset: 0,
            shape: vec![elements / 1024, 1024],
            strides: vec![1024, 1],
        },
        testkit::TensorSpec {
            name: "small".into(),
            storage_class: "FloatStorage",
            element_size: 4,
            storage: (0..64u8).collect(),
            offset: 2,
            shape: vec![3, 2],
            strides: vec![4, 2],
        },
    ];
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.pt");
    std::fs::write(&input, testkit::checkpoint(&specs)).unwrap();
    let checkpoint = source::Checkpoint::open(&input, &Scanner::default()).unwrap();
    assert!(checkpoint.is_sparse());
    drop(checkpoint);

    let output = dir.path().join("big.safetensors");
    let options = Options {
        verify: true,
        ..Options::default()
    };
    convert_file(&input, &output, &options).unwrap();
    let bytes = std::fs::read(&output).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.tensor("embed.weight").unwrap().data(), specs[0].storage);
    assert_eq!(
        st.tensor("small").unwrap().data(),
        testkit::expected_bytes(&specs[1])
    );
}

fn spec(name: &str, class: &'static str, element_size: u64, elements: u64) -> testkit::TensorSpec {
    testkit::TensorSpec {
        name: name.into(),
        storage_class: class,
        element_size,
        storage: (0..elements * element_size)
            .map(|i| (i % 253) as u8)
            .collect(),
        offset: 0,
        shape: vec![elements],
        strides: vec![1],
    }
}

/// Converts `specs` and returns the output's bytes.
fn convert_specs(specs: &[testkit::TensorSpec]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.pt");
    std::fs::write(&input, testkit::checkpoint(specs)).unwrap();
    let output = dir.path().join("out.safetensors");
    convert_file(&input, &output, &Options::default()).unwrap();
    std::fs::read(&output).unwrap()
}

/// The data of a large output starts on a page, the page-sized tensors come first and stay on
/// pages, and every tensor still starts at a multiple of its element size.
#[test]
fn large_outputs_keep_page_sized_tensors_on_pages() {
    let specs = vec![
        spec("a.norm", "FloatStorage", 4, 3),
        spec("b.weight", "HalfStorage", 2, 1 << 19),
        spec("c.bias", "HalfStorage", 2, 5),
        spec("d.weight", "FloatStorage", 4, 1 << 18),
        spec("e.weight", "BFloat16Storage", 2, 4096),
        spec("f.scale", "DoubleStorage", 8, 1),
    ];
    let bytes = convert_specs(&specs);
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let data_start = 8 + header_len;
    assert_eq!(
        data_start % layout::DATA_ALIGNMENT,
        0,
        "data starts on a page"
    );
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut by_offset: Vec<_> = st.tensors();
    by_offset.sort_by_key(|(_, t)| t.data().as_ptr() as usize);
    let order: Vec<&str> = by_offset.iter().map(|(n, _)| n.as_str()).collect();
    // Page-sized first (descending dtype, then name), then the rest the same way.
    let (mut page_sized, mut rest): (Vec<_>, Vec<_>) = specs
        .iter()
        .partition(|s| s.storage.len() % layout::DATA_ALIGNMENT == 0);
    let key = |s: &&testkit::TensorSpec| {
        let t = st.tensor(&s.name).unwrap();
        (std::cmp::Reverse(t.dtype()), s.name.clone())
    };
    page_sized.sort_by_key(key);
    rest.sort_by_key(key);
    let expected: Vec<&str> = page_sized
        .iter()
        .chain(&rest)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(order, expected);
    let base = bytes.as_ptr() as usize;
    for (name, t) in &by_offset {
        let at = t.data().as_ptr() as usize - base;
        let spec = specs.iter().find(|s| &s.name == name).unwrap();
        assert_eq!(at % spec.element_size as usize, 0, "{name} element-aligned");
        if spec.storage.len() % layout::DATA_ALIGNMENT == 0 {
            assert_eq!(at % layout::DATA_ALIGNMENT, 0, "{name} on a page");
        }
        assert_eq!(t.data(), spec.storage.as_slice(), "bytes of {name}");
    }
}

/// A small output is padded as the safetensors writer pads it: to 8 bytes, no further.
#[test]
fn small_outputs_pad_the_header_to_eight_bytes_only() {
    let bytes = convert_specs(&[
        spec("w", "FloatStorage", 4, 16),
        spec("b", "FloatStorage", 4, 3),
    ]);
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    assert_eq!(header_len % 8, 0);
    let json_len = std::str::from_utf8(&bytes[8..8 + header_len])
        .unwrap()
        .trim_end()
        .len();
    assert!(
        header_len - json_len < 8,
        "{header_len} bytes for {json_len} of JSON"
    );
}

/// 700 small tensors: the state dict pickle is over 64 KiB, the size from which the scanner
/// reads data-only pickles with its fast pass, which keeps no values. Conversion must read
/// them with the full machine in both formats (a 5 GB bench checkpoint with 2,312 tensors
/// was refused as "stops at a scanning limit" before).
#[test]
fn pickles_over_the_fast_pass_threshold_convert() {
    let specs: Vec<testkit::TensorSpec> = (0..700)
        .map(|i| spec(&format!("layers.{i}.weight"), "HalfStorage", 2, 3 + i % 5))
        .collect();
    assert!(testkit::state_dict_pickle(&specs).len() > 64 * 1024);
    let dir = tempfile::tempdir().unwrap();
    for (format, bytes) in [
        ("zip", testkit::checkpoint(&specs)),
        ("legacy", testkit::legacy_checkpoint(&specs)),
    ] {
        let input = dir.path().join(format!("{format}.pt"));
        std::fs::write(&input, bytes).unwrap();
        let output = dir.path().join(format!("{format}.safetensors"));
        let options = Options {
            verify: true,
            ..Options::default()
        };
        convert_file(&input, &output, &options).unwrap_or_else(|e| panic!("{format}: {e}"));
        let written = std::fs::read(&output).unwrap();
        let st = SafeTensors::deserialize(&written).unwrap();
        assert_eq!(st.len(), specs.len(), "{format}");
        for s in &specs {
            let t = st.tensor(&s.name).unwrap();
            assert_eq!(t.data(), testkit::expected_bytes(s), "{format} {}", s.name);
        }
    }
}

/// An output (and a sharded folder's index) gets the mode any new file gets here, 0666 less
/// the umask, not the temporary file's private 0600.
#[cfg(unix)]
#[test]
fn outputs_get_an_ordinary_file_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let ordinary = dir.path().join("ordinary");
    std::fs::write(&ordinary, b"").unwrap();
    let input = dir.path().join("in.pt");
    std::fs::write(
        &input,
        testkit::checkpoint(&[spec("w", "FloatStorage", 4, 2)]),
    )
    .unwrap();
    let output = dir.path().join("out.safetensors");
    convert_file(&input, &output, &Options::default()).unwrap();
    // (Under a umask of 077 both are 0600 and this cannot tell; CI's 022 can.)
    assert_eq!(mode(&output), mode(&ordinary));
}

/// Stored tensors are copied through one buffer of `CHUNK` bytes: a tensor spanning several
/// fills of it, starting at an offset into its storage that is not chunk-aligned, and the
/// tensors after it come out byte for byte.
#[test]
fn stored_tensors_larger_than_the_copy_buffer_come_out_whole() {
    let elements = (2 * source::CHUNK + source::CHUNK / 2 + 6) as u64 / 2;
    let specs = vec![
        spec("a.first", "FloatStorage", 4, 10),
        testkit::TensorSpec {
            offset: 7,
            shape: vec![elements - 7],
            ..spec("b.big", "HalfStorage", 2, elements)
        },
        testkit::TensorSpec {
            offset: 1,
            shape: vec![2],
            ..spec("c.after", "HalfStorage", 2, 3)
        },
    ];
    let bytes = convert_specs(&specs);
    let st = SafeTensors::deserialize(&bytes).unwrap();
    for spec in &specs {
        let data = st.tensor(&spec.name).unwrap().data();
        let expected = testkit::expected_bytes(spec);
        assert_eq!(data.len(), expected.len(), "{}", spec.name);
        assert!(data == expected, "bytes of {}", spec.name);
    }
    assert!(specs[1].storage.len() > 2 * source::CHUNK);
}

/// `undecoded_member.pt` holds one record with compression method 99, which Airlock does not
/// decode: `scan` rates it unscannable. Conversion needs only the other records, but must
/// refuse it all the same.
#[test]
fn unscannable_inputs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("undecoded_member.pt");
    let report = Scanner::default().scan_path(&input);
    assert_eq!(report.verdict, crate::Verdict::Unscannable, "{report:?}");
    let out = dir.path().join("out.safetensors");
    let err = convert_file(&input, &out, &Options::default()).unwrap_err();
    assert!(matches!(err, ConvertError::Refused { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("unscannable") && text.contains("ARC010"),
        "{text}"
    );
    assert!(plan_file(&input, &Options::default()).is_err());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing written"
    );

    // A limit reached makes any file unscannable: a file over `max_file_size`.
    let small = Scanner::new(
        crate::Policy::default(),
        crate::Limits {
            max_file_size: Some(64),
            ..crate::Limits::default()
        },
    );
    let options = Options {
        scanner: Some(small),
        ..Options::default()
    };
    let err = convert_file(&fixture("params.pt"), &out, &options).unwrap_err();
    assert!(err.to_string().contains("GEN003"), "{err}");
    assert!(!out.exists());
}

/// Suspicious inputs are converted (see `open_vetted`): a Lightning checkpoint whose
/// hyper-parameters import an unknown class.
#[test]
fn suspicious_inputs_are_converted() {
    let specs = [spec("layer.weight", "FloatStorage", 4, 4)];
    let state_dict = testkit::state_dict_pickle(&specs);
    // {"hyper_parameters": mymodule.Config(), "state_dict": {...}}
    let mut pickle = b"\x80\x02}(X\x10\x00\x00\x00hyper_parameterscmymodule\nConfig\n)RX\x0a\x00\x00\x00state_dict".to_vec();
    pickle.extend_from_slice(&state_dict[2..state_dict.len() - 1]);
    pickle.extend_from_slice(b"u.");
    let records = vec![
        ("archive/byteorder".to_string(), b"little".to_vec()),
        ("archive/data.pkl".to_string(), pickle),
        ("archive/data/0".to_string(), specs[0].storage.clone()),
        ("archive/version".to_string(), b"3\n".to_vec()),
    ];
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("last.ckpt");
    std::fs::write(&input, testkit::stored_zip(&records)).unwrap();
    let report = Scanner::default().scan_path(&input);
    assert_eq!(report.verdict, crate::Verdict::Suspicious, "{report:?}");
    let out = dir.path().join("out.safetensors");
    let summary = convert_file(&input, &out, &Options::default()).unwrap();
    assert_eq!(summary.tensors, 1);
}

/// A view whose strides or offset reach past its storage is malformed and refused before
/// anything is read or written.
#[test]
fn views_reaching_past_their_storage_are_refused() {
    let storage = testkit::StorageSpec {
        storage_class: "FloatStorage",
        element_size: 4,
        bytes: vec![0; 4 * 12],
    };
    let view = |offset, shape: &[u64], strides: &[u64]| testkit::ViewSpec {
        name: "v".into(),
        storage: 0,
        offset,
        shape: shape.to_vec(),
        strides: strides.to_vec(),
    };
    let dir = tempfile::tempdir().unwrap();
    for (case, v) in [
        ("stride", view(0, &[3, 4], &[4, 2])),
        ("offset", view(12, &[1], &[1])),
        ("transpose", view(1, &[4, 3], &[1, 4])),
        ("overflow", view(0, &[2, 2], &[u64::MAX / 2, 1])),
        ("huge shape", view(0, &[1 << 40, 1 << 40], &[0, 0])),
    ] {
        let input = dir.path().join(format!("{case}.pt"));
        std::fs::write(
            &input,
            testkit::shared_checkpoint(std::slice::from_ref(&storage), &[v]),
        )
        .unwrap();
        let err = plan_file(&input, &Options::default()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("reaches past its storage") || text.contains("overflows"),
            "{case}: {text}"
        );
    }
}

/// An expansion (stride 0) is materialised, but not without bound: a few bytes of storage
/// expanded to 64 MiB is refused (by the decompression ratio limit), a modest one converted.
#[test]
fn expansions_are_held_to_the_inflation_limits() {
    let storage = testkit::StorageSpec {
        storage_class: "FloatStorage",
        element_size: 4,
        bytes: 1.5f32.to_le_bytes().to_vec(),
    };
    let expand = |rows: u64| testkit::ViewSpec {
        name: "e".into(),
        storage: 0,
        offset: 0,
        shape: vec![rows, 1024],
        strides: vec![0, 0],
    };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("bomb.pt");
    let storages = std::slice::from_ref(&storage);
    std::fs::write(
        &input,
        testkit::shared_checkpoint(storages, &[expand(1 << 14)]),
    )
    .unwrap();
    let err = plan_file(&input, &Options::default()).unwrap_err();
    assert!(err.to_string().contains("over the limits"), "{err}");
    let input = dir.path().join("small.pt");
    std::fs::write(&input, testkit::shared_checkpoint(storages, &[expand(3)])).unwrap();
    let out = dir.path().join("small.safetensors");
    convert_file(&input, &out, &Options::default()).unwrap();
    let bytes = std::fs::read(&out).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(
        st.tensor("e").unwrap().data(),
        1.5f32.to_le_bytes().repeat(3 * 1024)
    );
}

/// A strided view of a deflated record is gathered in memory up to the gather span; past
/// it, it is refused rather than inflated again for every run.
#[test]
fn wide_strided_views_of_deflated_records_are_refused() {
    let checkpoint =
        source::Checkpoint::open(&fixture("shared_views_deflated.pt"), &Scanner::default())
            .unwrap();
    let tensors = interpret::state_dict(&checkpoint, &Options::default())
        .unwrap()
        .tensors;
    let t = tensors.iter().find(|t| t.name == "base.t").unwrap();
    plan::check_gather(&checkpoint, t, layout::MAX_GATHER_SPAN).unwrap();
    let err = plan::check_gather(&checkpoint, t, 16).unwrap_err();
    assert!(err.to_string().contains("deflated record"), "{err}");
    let contiguous = tensors.iter().find(|t| t.name == "base.rows").unwrap();
    plan::check_gather(&checkpoint, contiguous, 0).unwrap();
}

/// Random views of shared storages (transposes, steps, overlapping and expanding strides,
/// offsets, exact duplicates) against a naive element-by-element gather: every name gives
/// its values, and only exact duplicates are recorded as aliases.
#[test]
fn generated_views_of_shared_storages_round_trip() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let dir = tempfile::tempdir().unwrap();
    for case in 0..40 {
        let storages: Vec<testkit::StorageSpec> = (0..1 + rng.below(2))
            .map(|_| {
                let (storage_class, element_size) =
                    [("FloatStorage", 4), ("HalfStorage", 2), ("ByteStorage", 1)]
                        [rng.below(3) as usize];
                let elements = 1 + rng.below(60);
                testkit::StorageSpec {
                    storage_class,
                    element_size,
                    bytes: (0..elements * element_size)
                        .map(|_| rng.next() as u8)
                        .collect(),
                }
            })
            .collect();
        let mut views: Vec<testkit::ViewSpec> = Vec::new();
        for i in 0..2 + rng.below(5) {
            let name = format!("v{i}");
            if !views.is_empty() && rng.below(4) == 0 {
                let original = views[rng.below(views.len() as u64) as usize].clone();
                views.push(testkit::ViewSpec { name, ..original });
                continue;
            }
            let storage = rng.below(storages.len() as u64) as usize;
            let s = &storages[storage];
            views.push(random_view(
                &mut rng,
                name,
                storage,
                s.bytes.len() as u64 / s.element_size,
            ));
        }
        let input = dir.path().join(format!("case{case}.pt"));
        std::fs::write(&input, testkit::shared_checkpoint(&storages, &views)).unwrap();
        let output = dir.path().join(format!("case{case}.safetensors"));
        let options = Options {
            verify: true,
            ..Options::default()
        };
        let summary =
            convert_file(&input, &output, &options).unwrap_or_else(|e| panic!("case {case}: {e}"));
        let bytes = std::fs::read(&output).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
        let metadata = meta.metadata().clone().unwrap_or_default();
        let removed: usize = summary.shared.iter().map(|g| g.removed.len()).sum();
        assert_eq!(st.len() + removed, views.len(), "case {case}");
        for v in &views {
            let written = match st.tensor(&v.name) {
                Ok(t) => t,
                Err(_) => {
                    let kept = &metadata[&v.name];
                    let k = views.iter().find(|k| &k.name == kept).unwrap();
                    assert_eq!(
                        (k.storage, k.offset, &k.shape, &k.strides),
                        (v.storage, v.offset, &v.shape, &v.strides),
                        "case {case}: {} recorded as an alias of a different view",
                        v.name
                    );
                    st.tensor(kept).unwrap()
                }
            };
            let shape: Vec<usize> = v.shape.iter().map(|&d| d as usize).collect();
            assert_eq!(written.shape(), shape, "case {case} {}", v.name);
            let expected = testkit::expected_view_bytes(&storages[v.storage], v);
            assert_eq!(written.data(), expected, "case {case} {}", v.name);
        }
    }
}

/// A view of `elements` elements: random rank, sizes, strides (zero, overlapping, gapped or
/// permuted) and offset, shrunk until it fits the storage.
fn random_view(rng: &mut Rng, name: String, storage: usize, elements: u64) -> testkit::ViewSpec {
    let rank = rng.below(4) as usize;
    let mut shape: Vec<u64> = (0..rank).map(|_| rng.below(5)).collect();
    let strides: Vec<u64> = (0..rank).map(|_| rng.below(9)).collect();
    let mut offset = rng.below(elements);
    let reach = |shape: &[u64], offset: u64| {
        offset
            + shape
                .iter()
                .zip(&strides)
                .map(|(d, s)| d.saturating_sub(1) * s)
                .sum::<u64>()
    };
    while shape.iter().all(|&d| d > 0) && reach(&shape, offset) >= elements {
        match shape.iter().position(|&d| d > 1) {
            Some(d) => shape[d] -= 1,
            None => offset = 0,
        }
    }
    testkit::ViewSpec {
        name,
        storage,
        offset,
        shape,
        strides,
    }
}
