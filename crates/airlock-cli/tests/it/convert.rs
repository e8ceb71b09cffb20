//! `airlock convert`: checkpoints made by real torch (tests/fixtures/convert) to safetensors.

use std::path::PathBuf;

use crate::Fixture;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/convert")
        .join(name)
}

fn copy(f: &Fixture, name: &str, as_name: &str) {
    f.write(as_name, &std::fs::read(fixture(name)).unwrap());
}

#[test]
fn converts_beside_the_input_and_refuses_to_overwrite() {
    let f = Fixture::new();
    copy(&f, "params.pt", "pytorch_model.bin");
    let first = f
        .airlock(&["convert", "pytorch_model.bin", "--verify"])
        .output()
        .unwrap();
    assert_eq!(first.status.code(), Some(0), "{first:?}");
    let stdout = String::from_utf8(first.stdout).unwrap();
    assert!(stdout.contains("model.safetensors: 3 tensors"), "{stdout}");
    assert!(stdout.contains("verified"), "{stdout}");
    assert_eq!(
        std::fs::read(f.path().join("model.safetensors")).unwrap(),
        std::fs::read(fixture("params.safetensors")).unwrap(),
        "same bytes as safetensors.torch.save_file"
    );
    let again = f
        .airlock(&["convert", "pytorch_model.bin"])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let forced = f
        .airlock(&["convert", "pytorch_model.bin", "--force"])
        .output()
        .unwrap();
    assert_eq!(forced.status.code(), Some(0));
}

#[test]
fn check_prints_the_plan_and_writes_nothing() {
    let f = Fixture::new();
    copy(&f, "tied.pt", "tied.pt");
    let output = f
        .airlock(&["convert", "--check", "tied.pt"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("lm_head.weight"), "{stdout}");
    assert!(
        stdout.contains("shared: lm_head.weight kept; model.embed.weight removed"),
        "{stdout}"
    );
    assert!(!f.path().join("tied.safetensors").exists());
}

#[test]
fn dangerous_and_non_tensor_inputs_fail_with_status_2() {
    let f = Fixture::new();
    copy(&f, "dangerous.pt", "dangerous.pt");
    copy(&f, "mixed.pt", "mixed.pt");
    let refused = f.airlock(&["convert", "dangerous.pt"]).output().unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("refused"));
    let mixed = f.airlock(&["convert", "mixed.pt"]).output().unwrap();
    assert_eq!(mixed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&mixed.stderr).contains("--skip-non-tensors"));
    let skipped = f
        .airlock(&[
            "convert",
            "mixed.pt",
            "--skip-non-tensors",
            "-o",
            "w.safetensors",
        ])
        .output()
        .unwrap();
    assert_eq!(skipped.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&skipped.stdout).contains("skipped step, name, lr"));
    let leftovers: Vec<_> = std::fs::read_dir(f.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".partial") || n == "dangerous.safetensors")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn converts_a_sharded_folder() {
    let f = Fixture::new();
    for name in [
        "pytorch_model-00001-of-00002.bin",
        "pytorch_model-00002-of-00002.bin",
        "pytorch_model.bin.index.json",
    ] {
        copy(&f, &format!("sharded/{name}"), &format!("model/{name}"));
    }
    let output = f
        .airlock(&["convert", "model", "--no-progress"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    for name in [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
    ] {
        assert!(f.path().join("model").join(name).is_file(), "{name}");
    }
}

/// Views of shared storages (transposes, slices, `as_strided`, an expansion) are written as
/// their own tensors; only exact aliases are recorded in the metadata.
#[test]
fn views_are_written_and_exact_aliases_recorded() {
    let f = Fixture::new();
    copy(&f, "shared_views.pt", "shared_views.pt");
    let check = f
        .airlock(&["convert", "--check", "shared_views.pt"])
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(0), "{check:?}");
    let plan = String::from_utf8(check.stdout).unwrap();
    for line in [
        "18 tensors",
        "shared: decoder.weight kept; embed.weight removed",
        "shared: part.x kept; part.y removed",
    ] {
        assert!(plan.contains(line), "{line}: {plan}");
    }
    let transposed = plan.lines().find(|l| l.contains("base.t ")).unwrap();
    assert!(transposed.contains("(view, made contiguous)"), "{plan}");
    let output = f
        .airlock(&["convert", "shared_views.pt", "--verify"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("18 tensors"), "{stdout}");
    assert!(stdout.contains("2 shared aliases recorded"), "{stdout}");
    assert!(stdout.contains("verified"), "{stdout}");
}

/// A checkpoint `scan` rates unscannable (a record Airlock cannot decode) is refused with
/// status 2 and the finding named, and nothing is written.
#[test]
fn unscannable_inputs_fail_with_status_2() {
    let f = Fixture::new();
    copy(&f, "undecoded_member.pt", "model.pt");
    let refused = f.airlock(&["convert", "model.pt"]).output().unwrap();
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("refused") && stderr.contains("unscannable"),
        "{stderr}"
    );
    assert!(stderr.contains("ARC010"), "{stderr}");
    assert!(!f.path().join("model.safetensors").exists());
}
