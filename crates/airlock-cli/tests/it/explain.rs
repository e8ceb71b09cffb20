//! `airlock explain`: disassembly with imports and findings marked.

use insta_cmd::assert_cmd_snapshot;

use crate::{Fixture, ORDERED_DICT_PICKLE, OS_SYSTEM_PICKLE, stored_zip, with_filters};

#[test]
fn marks_the_dangerous_import() {
    let fixture = Fixture::new().with_samples();
    assert_cmd_snapshot!(fixture.airlock(&["explain", "os_system.pkl"]));
}

#[test]
fn lists_an_allowlisted_pickle_with_stack_depths() {
    let fixture = Fixture::new().with_samples();
    assert_cmd_snapshot!(fixture.airlock(&["explain", "ordered_dict.pkl"]));
}

#[test]
fn disassembles_every_pkl_member_of_a_zip() {
    let fixture = Fixture::new();
    let bytes = stored_zip(&[
        ("archive/data.pkl", ORDERED_DICT_PICKLE),
        ("archive/extra.pkl", OS_SYSTEM_PICKLE),
        ("archive/version", b"3\n".as_slice()),
    ]);
    fixture.write("model.pt", &bytes);
    let output = fixture.airlock(&["explain", "model.pt"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("== member archive/data.pkl"), "{text}");
    assert!(text.contains("== member archive/extra.pkl"), "{text}");
    assert!(!text.contains("== member archive/version"), "{text}");
    assert!(text.contains("import os.system (dangerous)"), "{text}");
    assert!(text.contains("^ PKL001 dangerous"), "{text}");
}

#[test]
fn a_missing_file_is_an_error() {
    let fixture = Fixture::new();
    with_filters!({
        assert_cmd_snapshot!(fixture.airlock(&["explain", "missing.pkl"]));
    });
}
