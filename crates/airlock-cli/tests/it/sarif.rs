//! SARIF output is valid against the official SARIF 2.1.0 schema (vendored in fixtures/).

use serde_json::Value;

use crate::{Fixture, ORDERED_DICT_PICKLE, OS_SYSTEM_PICKLE, stored_zip};

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
    assert!(rule.get("helpUri").is_none(), "no link without --docs-url");
    assert!(
        rule["help"]["markdown"]
            .as_str()
            .unwrap()
            .starts_with("# PKL001")
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

#[test]
fn archive_members_become_nested_artifacts() {
    let fixture = Fixture::new();
    fixture.write(
        "model.pt",
        &stored_zip(&[
            ("archive/data.pkl", ORDERED_DICT_PICKLE),
            ("archive/extra.pkl", OS_SYSTEM_PICKLE),
        ]),
    );
    let output = fixture
        .airlock(&["scan", "--format", "sarif", "model.pt"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let log: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_valid(&log);
    let run = &log["runs"][0];
    let result = run["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ruleId"] == "PKL001")
        .expect("the os.system import is a result");
    assert_eq!(result["level"], "error");
    assert_eq!(result["analysisTarget"]["uri"], "model.pt");
    assert_eq!(result["properties"]["airlock/member"], "archive/extra.pkl");
    let location = &result["locations"][0]["physicalLocation"];
    assert_eq!(location["region"]["byteOffset"], 0);
    let index = location["artifactLocation"]["index"].as_u64().unwrap() as usize;
    let artifact = &run["artifacts"][index];
    assert_eq!(artifact["location"]["uri"], "archive/extra.pkl");
    let parent = artifact["parentIndex"].as_u64().unwrap() as usize;
    assert_eq!(run["artifacts"][parent]["location"]["uri"], "model.pt");
}
