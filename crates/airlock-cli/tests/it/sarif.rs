//! SARIF output is valid against the official SARIF 2.1.0 schema (vendored in fixtures/).

use serde_json::Value;

use crate::{Fixture, OS_SYSTEM_PICKLE};

fn sarif_validator() -> jsonschema::Validator {
    let text = include_str!("../fixtures/sarif-schema-2.1.0.json");
    let schema: Value = serde_json::from_str(text).expect("schema is JSON");
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("schema compiles")
}

fn assert_valid(log: &Value) {
    let validator = sarif_validator();
    let errors: Vec<String> = validator
        .iter_errors(log)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "invalid SARIF:\n{}", errors.join("\n"));
}

#[test]
fn scan_output_validates_against_the_sarif_schema() {
    let fixture = Fixture::new().with_samples();
    fixture.write("dir with space/naïve #1.pkl", OS_SYSTEM_PICKLE);
    let output = fixture
        .airlock(&[
            "scan",
            "--format",
            "sarif",
            ".",
            "missing.pkl",
            "--max-file-size",
            "5",
        ])
        .output()
        .unwrap();
    let log: Value = serde_json::from_slice(&output.stdout).expect("SARIF is JSON");
    assert_valid(&log);

    let run = &log["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    assert_eq!(
        rules.len(),
        airlock::Rule::ALL.len(),
        "every rule is listed"
    );
    let rule = rules.iter().find(|r| r["id"] == "PKL001").unwrap();
    assert_eq!(rule["defaultConfiguration"]["level"], "error");
    assert!(
        rule["helpUri"]
            .as_str()
            .unwrap()
            .ends_with("docs/rules/PKL001.md")
    );
    let results = run["results"].as_array().unwrap();
    assert!(
        results
            .iter()
            .any(|r| r["ruleId"] == "GEN002" && r["level"] == "warning"),
        "the missing file is a read error"
    );
    let uris: Vec<&str> = run["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["location"]["uri"].as_str())
        .collect();
    assert!(
        uris.contains(&"dir%20with%20space/na%C3%AFve%20%231.pkl"),
        "{uris:?}"
    );
}

#[test]
fn the_vendored_schema_rejects_a_broken_log() {
    let broken = serde_json::json!({ "version": "2.1.0", "runs": [{ "results": [] }] });
    assert!(
        !sarif_validator().is_valid(&broken),
        "a run without a tool is invalid"
    );
}
