//! skops archives (`.skops`, a zip): `schema.json` lists every type the loader will
//! construct, and each is rated by the policy like a pickle import. A zip is claimed as skops
//! in [`super::zipped`].

use serde_json::Value;

use crate::ctx::Ctx;
use crate::report::Finding;
use crate::rules::Rule;

/// Checks a skops archive's `schema.json`: every `__module__`/`__class__` pair it will
/// construct is rated by the policy like a pickle import.
pub fn check_skops_schema(ctx: &mut Ctx, schema_json: &[u8]) {
    let value: Value = match serde_json::from_slice(schema_json) {
        Ok(v) => v,
        Err(e) => {
            ctx.report(Finding::new(
                Rule::KerasConfigMalformed,
                format!("skops schema.json is not valid JSON: {e}"),
            ));
            return;
        }
    };
    let mut types = Vec::new();
    collect_skops_types(&value, &mut types, 0);
    let count = types.len();
    for (module, name) in types {
        let assessment = ctx.policy().assess(&module, &name);
        ctx.import(&module, &name, 0, &assessment);
    }
    ctx.note(format!(
        "skops schema: {count} type(s) it will construct, each rated by the policy"
    ));
}

/// skops loaders that build plain containers and JSON values themselves, whatever type the
/// node names (skops `_general.py`): their `builtins.dict`/`list`/... is not an import.
const SKOPS_CONTAINER_LOADERS: &[&str] =
    &["DictNode", "ListNode", "SetNode", "TupleNode", "JsonNode"];

fn collect_skops_types(value: &Value, into: &mut Vec<(String, String)>, depth: usize) {
    if depth > 200 {
        return;
    }
    match value {
        Value::Object(map) => {
            let loader = map
                .get("__loader__")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if let (Some(Value::String(m)), Some(Value::String(c))) =
                (map.get("__module__"), map.get("__class__"))
                && !SKOPS_CONTAINER_LOADERS.contains(&loader)
            {
                let pair = (m.clone(), c.clone());
                if !into.contains(&pair) {
                    into.push(pair);
                }
            }
            map.values()
                .for_each(|v| collect_skops_types(v, into, depth + 1));
        }
        Value::Array(items) => items
            .iter()
            .for_each(|v| collect_skops_types(v, into, depth + 1)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Rating, Verdict};
    use crate::scan::Scanner;

    fn fixture(name: &str) -> Vec<u8> {
        crate::testkit::fixture("formats/misc", name)
    }

    #[test]
    fn a_zip_with_schema_json_is_a_skops_file() {
        use crate::containers::zip::testzip::{build, member};
        let zip = build(&[
            member("schema.json", &fixture("skops_schema_malicious.json")),
            member("extra.pkl", b"cos\nsystem\n(S'id'\ntR."),
        ]);
        let report = Scanner::default().scan_bytes("m.skops", &zip);
        assert_eq!(report.format, "skops");
        assert_eq!(report.verdict, Verdict::Dangerous);
        let has = |q: &str, member: &str| {
            report
                .imports
                .iter()
                .any(|i| i.qualified() == q && i.member.as_deref() == Some(member))
        };
        assert!(has("subprocess.Popen", "schema.json"));
        assert!(has("os.system", "extra.pkl"), "members still scanned");
        assert!(
            report.summary.contains("skops schema:"),
            "{}",
            report.summary
        );
        let benign = build(&[member("schema.json", &fixture("skops_schema_benign.json"))]);
        let report = Scanner::default().scan_bytes("m.skops", &benign);
        assert_eq!(report.format, "skops");
        assert!(!report.findings.iter().any(|f| f.rule == Rule::NotAModel));
    }

    #[test]
    fn skops_schema_types_are_rated_by_the_policy() {
        let scan = |name: &str| {
            let data = fixture(name);
            Scanner::default().scan_with("schema.json", &data, |ctx, d| {
                check_skops_schema(ctx, d);
                crate::format::Format::Skops
            })
        };
        let bad = scan("skops_schema_malicious.json");
        assert_eq!(bad.verdict, Verdict::Dangerous);
        assert!(
            bad.imports
                .iter()
                .any(|i| i.qualified() == "subprocess.Popen" && i.rating == Rating::Dangerous)
        );
        assert!(bad.imports.iter().any(|i| i.qualified() == "os.system"));
        let good = scan("skops_schema_benign.json");
        assert!(
            good.imports
                .iter()
                .any(|i| i.qualified() == "sklearn.linear_model._logistic.LogisticRegression")
        );
        assert_ne!(good.verdict, Verdict::Dangerous);
    }
}
