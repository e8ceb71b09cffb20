//! `airlock rules`: the catalogue and one rule's page.

use insta_cmd::assert_cmd_snapshot;

use crate::Fixture;

#[test]
fn lists_every_rule() {
    let output = Fixture::new().airlock(&["rules"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8(output.stdout).unwrap();
    for code in [
        "PKL001", "PKL004", "PT002", "ARC001", "NPY002", "JBL001", "GEN005",
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(code)),
            "{code} missing:\n{stdout}"
        );
    }
}

#[test]
fn prints_one_rules_page_by_code_or_name() {
    let by_code = Fixture::new()
        .airlock(&["rules", "pkl004"])
        .output()
        .unwrap();
    let by_name = Fixture::new()
        .airlock(&["rules", "dynamic-global"])
        .output()
        .unwrap();
    assert_eq!(by_code.status.code(), Some(0));
    assert_eq!(by_code.stdout, by_name.stdout);
    let page = String::from_utf8(by_code.stdout).unwrap();
    assert!(page.starts_with("# PKL004 "), "{page}");
    assert!(page.contains("## Why it matters"));
}

#[test]
fn unknown_rule_is_a_usage_error() {
    assert_cmd_snapshot!(Fixture::new().airlock(&["rules", "XYZ999"]));
}
