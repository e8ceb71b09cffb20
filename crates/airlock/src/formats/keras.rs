//! Keras model configs: `.keras` v3 `config.json` / `metadata.json`, the legacy `.h5`
//! `model_config` attribute and Keras objects in `keras_metadata.pb`.
//!
//! Keras rebuilds a model by deserializing every `{"module", "class_name", "config",
//! "registered_name"}` object in its config, wherever it sits (layers, nested models,
//! activations, initializers, losses, dtype policies). So the whole JSON tree is walked, not
//! only `layers`, and every object is judged:
//! - Lambda layers (KER001): Keras 3 `{"class_name": "__lambda__", "config": {"code": base64}}`
//!   or legacy `[b64code, defaults, closure]` with `function_type: "lambda"`; the base64 is
//!   decoded and the marshal'd code object summarised (see [`super::marshal`]).
//! - `module` outside `keras` / `keras.*` (KER002); Keras-ecosystem packages (`keras_hub`,
//!   `keras_nlp`, `keras_cv`, `tf_keras`) are rated as custom objects (KER006) instead: they
//!   are real libraries the loader imports, but Airlock cannot vouch for their classes.
//! - `class_name: "function"` whose module is outside Keras (KER003, CVE-2025-1550).
//! - References to `enable_unsafe_deserialization`, `load_model` or `get_file` (KER004,
//!   CVE-2025-8747, CVE-2025-9906).
//! - `TFSMLayer` (KER005, CVE-2026-1462).
//! - Custom objects: a `registered_name` with a `package>Name` shape, or no module (KER006).
//!
//! JSON is parsed with serde_json, whose recursion limit (128) is kept; a config that does
//! not parse is reported incomplete (KER007).

use serde_json::Value;

use super::marshal::{self, CodeSummary};
use crate::ctx::Ctx;
use crate::report::Finding;
use crate::rules::Rule;

/// Keras-ecosystem packages: imported by the loader, rated as custom code rather than foreign.
const ECOSYSTEM_MODULES: &[&str] = &["keras_hub", "keras_nlp", "keras_cv", "tf_keras"];
/// Callables that switch safe mode off, load other models or fetch files.
const UNSAFE_CALLS: &[&str] = &["enable_unsafe_deserialization", "load_model", "get_file"];
use crate::limits::caps::keras::MAX_WALK_DEPTH;

/// True when the member names of a zip are those of a Keras v3 archive, as
/// `keras.saving.load_model` decides: `saving_lib._load_model_from_fileobj` opens the zip,
/// reads `config.json` and builds the model from it (deserializing, so importing, every
/// object) *before* it looks for `model.weights.h5` / `.npz` (and only then raises for their
/// absence); `metadata.json` is never required. So a top-level `config.json` is what makes a
/// zip a `.keras` archive to the loader. A zip whose `config.json` is not Keras JSON costs
/// nothing: only objects with a `class_name` are judged.
pub fn is_keras_archive(member_names: &[&str]) -> bool {
    member_names.contains(&"config.json")
}

/// Analyses a `.keras` archive's `config.json` (or `metadata.json`) bytes.
pub fn scan_keras_config(ctx: &mut Ctx, config_json: &[u8]) {
    scan_keras_json(ctx, config_json, "config.json");
}

/// Analyses any Keras JSON document; `source` names it in messages and in the summary.
pub fn scan_keras_json(ctx: &mut Ctx, json: &[u8], source: &str) {
    let Some(tally) = analyse_keras_json(ctx, json, source) else {
        return;
    };
    if let Some(version) = &tally.keras_version {
        ctx.note(format!("{source}: keras {version}"));
    }
    ctx.note(format!("{source}: {}", tally.describe()));
}

/// What [`analyse_keras_json`] counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KerasTally {
    /// Objects with a `class_name` judged.
    pub objects: usize,
    /// Findings reported.
    pub flagged: usize,
    pub keras_version: Option<String>,
}

impl KerasTally {
    /// "7 Keras objects checked, no code".
    pub fn describe(&self) -> String {
        format!(
            "{} Keras objects checked, {}",
            self.objects,
            match self.flagged {
                0 => "no code".to_string(),
                n => format!("{n} finding(s)"),
            }
        )
    }
}

/// Reports everything wrong in one Keras JSON document without adding summary phrases;
/// `None` when it is not JSON (reported as KER007).
pub fn analyse_keras_json(ctx: &mut Ctx, json: &[u8], source: &str) -> Option<KerasTally> {
    let value: Value = match serde_json::from_slice(json) {
        Ok(v) => v,
        Err(e) => {
            ctx.report(Finding::new(
                Rule::KerasConfigMalformed,
                format!("{source} is not valid JSON Keras can read: {e}"),
            ));
            return None;
        }
    };
    let mut walk = Walk {
        ctx,
        path: Vec::new(),
        objects: 0,
        flagged: 0,
    };
    walk.value(&value, 0);
    Some(KerasTally {
        objects: walk.objects,
        flagged: walk.flagged,
        keras_version: value
            .get("keras_version")
            .and_then(Value::as_str)
            .map(|v| v.chars().take(40).collect()),
    })
}

struct Walk<'c, 's> {
    ctx: &'c mut Ctx<'s>,
    /// Names of the enclosing layers/models, for "layer path" in messages.
    path: Vec<String>,
    objects: usize,
    flagged: usize,
}

impl Walk<'_, '_> {
    fn report(&mut self, rule: Rule, what: String) {
        self.flagged += 1;
        let at = if self.path.is_empty() {
            "the config root".to_string()
        } else {
            format!("layer `{}`", self.path.join("/"))
        };
        self.ctx
            .report(Finding::new(rule, format!("{what} (at {at})")));
    }

    fn value(&mut self, value: &Value, depth: usize) {
        if depth > MAX_WALK_DEPTH {
            self.ctx.report(Finding::new(
                Rule::KerasConfigMalformed,
                "config nested too deeply; the rest was not checked",
            ));
            return;
        }
        match value {
            Value::Array(items) => items.iter().for_each(|v| self.value(v, depth + 1)),
            Value::Object(map) => {
                let named = map
                    .get("class_name")
                    .is_some()
                    .then(|| object_name(value))
                    .flatten();
                if let Some(name) = &named {
                    self.path.push(name.clone());
                }
                if map.contains_key("class_name") {
                    self.objects += 1;
                    self.keras_object(value);
                }
                map.values().for_each(|v| self.value(v, depth + 1));
                if named.is_some() {
                    self.path.pop();
                }
            }
            Value::String(s) => {
                self.unsafe_call(s);
                self.host_path(s);
            }
            _ => {}
        }
    }

    fn unsafe_call(&mut self, s: &str) {
        let last = s.rsplit(['.', ':']).next().unwrap_or(s);
        if UNSAFE_CALLS.contains(&last) {
            self.report(Rule::KerasUnsafeCall, format!("references `{s}`"));
        }
    }

    fn host_path(&mut self, s: &str) {
        if let Some(kind) = host_reference(s) {
            let shown: String = s.chars().take(120).collect();
            self.report(
                Rule::KerasHostPath,
                format!(
                    "argument `{}` is {kind}: the loader reads it while building the model",
                    shown.escape_debug()
                ),
            );
        }
    }

    /// Judges one serialized Keras object (anything with a `class_name`).
    fn keras_object(&mut self, obj: &Value) {
        let class = obj
            .get("class_name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let module = obj.get("module").and_then(Value::as_str);
        let foreign = module.filter(|m| !is_keras_module(m));
        match (class, foreign) {
            ("Lambda", _) => self.lambda(obj),
            ("TFSMLayer", _) => self.report(
                Rule::KerasTfsmLayer,
                "TFSMLayer loads an external SavedModel".into(),
            ),
            ("function", Some(m)) => {
                let target = obj.get("config").and_then(Value::as_str).unwrap_or("?");
                self.report(
                    Rule::KerasFunctionObject,
                    format!("function object resolves `{m}.{target}`"),
                );
            }
            (_, Some(m)) if is_ecosystem_module(m) => {
                self.report(
                    Rule::KerasCustomObject,
                    format!("`{m}.{class}` comes from a Keras add-on package"),
                );
            }
            (_, Some(m)) => self.report(Rule::KerasForeignModule, format!("imports `{m}.{class}`")),
            (_, None) => self.custom_object(obj, class, module),
        }
    }

    fn custom_object(&mut self, obj: &Value, class: &str, module: Option<&str>) {
        let registered = obj.get("registered_name").and_then(Value::as_str);
        let custom = match registered {
            Some(r) => r.contains('>') || (module.is_none() && class != "function"),
            None => false,
        };
        if custom {
            self.report(
                Rule::KerasCustomObject,
                format!(
                    "custom object `{}` needs code registered by the loading program",
                    registered.unwrap_or(class)
                ),
            );
        }
    }

    fn lambda(&mut self, layer: &Value) {
        let config = layer.get("config");
        let function = config.and_then(|c| c.get("function"));
        let payload = match function {
            // Keras 3: {"class_name": "__lambda__", "config": {"code": ...}}
            Some(f @ Value::Object(_)) => f
                .get("config")
                .and_then(|c| c.get("code"))
                .and_then(Value::as_str),
            // Legacy: [b64code, defaults, closure] with function_type "lambda".
            Some(Value::Array(parts)) => parts.first().and_then(Value::as_str),
            _ => None,
        };
        let detail = match (payload, function) {
            (Some(code), _) => describe_payload(code),
            (None, Some(Value::String(name))) => format!("calls the Python function `{name}`"),
            _ => "its function could not be located".to_string(),
        };
        self.report(Rule::KerasLambda, format!("Lambda layer: {detail}"));
    }
}

/// URL schemes `tf.io.gfile` / `keras.utils.get_file` / fsspec open from a config argument.
const URL_SCHEMES: &[&str] = &[
    "http://",
    "https://",
    "ftp://",
    "file://",
    "gs://",
    "s3://",
    "hdfs://",
    "viewfs://",
];

/// What a config string points at outside the model, if anything: a URL, or a host path
/// (absolute, home-relative, a Windows drive or share, or climbing with `..`). Keras layers
/// that take a file (`StringLookup`/`IntegerLookup`/`TextVectorization` `vocabulary`,
/// `TFSMLayer` `filepath`, any custom layer's argument) open such a string at build time,
/// with safe mode on (CVE-2025-12058). A `.keras` archive stores vocabularies inline or in
/// its own assets, so a saved model never needs one. A lone `/` or `~` is not a path.
pub fn host_reference(s: &str) -> Option<&'static str> {
    let lower = s.trim_start().to_ascii_lowercase();
    let bytes = lower.as_bytes();
    if URL_SCHEMES.iter().any(|scheme| lower.starts_with(scheme)) {
        return Some("a URL");
    }
    let absolute = matches!(bytes, [b'/', c, ..] if c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
        || matches!(bytes, [b'~', b'/' | b'\\', _, ..])
        || matches!(bytes, [d, b':', b'/' | b'\\', ..] if d.is_ascii_alphabetic())
        || lower.starts_with("\\\\");
    if absolute {
        return Some("an absolute host path");
    }
    let climbs = lower.len() > 2 && lower.split(['/', '\\']).any(|part| part == "..");
    climbs.then_some("a path climbing out with `..`")
}

/// The `name` of a layer or model object (`config.name`, else `name`).
fn object_name(obj: &Value) -> Option<String> {
    obj.get("config")
        .and_then(|c| c.get("name"))
        .or_else(|| obj.get("name"))
        .and_then(Value::as_str)
        .map(|s| s.chars().take(100).collect())
}

fn is_keras_module(module: &str) -> bool {
    module == "keras" || module.starts_with("keras.")
}

fn is_ecosystem_module(module: &str) -> bool {
    let root = module.split('.').next().unwrap_or(module);
    ECOSYSTEM_MODULES.contains(&root)
}

/// Decodes a Lambda's base64 payload and summarises the code object it holds.
fn describe_payload(code: &str) -> String {
    let raw = decode_base64(code);
    match marshal::summarize_code(&raw) {
        Ok(summary) => describe_code(&summary),
        Err(e) => format!(
            "{} bytes of marshal data that could not be read as a code object ({e})",
            raw.len()
        ),
    }
}

fn describe_code(s: &CodeSummary) -> String {
    let list = |v: &[String]| {
        let shown: Vec<_> = v.iter().take(12).map(|n| format!("`{n}`")).collect();
        if shown.is_empty() {
            "none".to_string()
        } else {
            shown.join(", ")
        }
    };
    format!(
        "{}-byte Python code object ({} code object(s)) referencing names {}; string constants {}",
        s.bytecode_len,
        s.code_objects,
        list(&s.names),
        list(&s.strings)
    )
}

/// Decodes base64 the way Python's `codecs.decode(..., "base64")` (binascii, non-strict)
/// does, which is how Keras reads Lambda code: characters outside the alphabet (newlines) are
/// skipped and decoding stops at padding. Hand-written for that parity; a strict decoder
/// would reject payloads Keras accepts.
pub fn decode_base64(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0u32;
    for byte in text.bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{FileReport, Verdict};

    #[test]
    fn host_paths_and_urls_are_recognised_narrowly() {
        for s in [
            "/etc/passwd",
            "~/.ssh/id_rsa",
            "C:\\Users\\x\\vocab.txt",
            "\\\\server\\share\\v.txt",
            "../../secrets.txt",
            "assets/../../x",
            "file:///etc/shadow",
            "HTTPS://attacker.example/v.txt",
            "gs://bucket/vocab",
            "s3://bucket/vocab",
            "hdfs://nn/vocab",
        ] {
            assert!(host_reference(s).is_some(), "{s}");
        }
        for s in [
            "/",
            "~",
            "float32",
            "mixed_float16",
            "lower_and_strip_punctuation",
            "whitespace",
            "[UNK]",
            "a/b",
            "..",
            "relu",
            "channels_last",
        ] {
            assert_eq!(host_reference(s), None, "{s}");
        }
    }

    /// `.keras` archives holding only `config.json`: Keras builds the config before it looks
    /// for weights, so they are Keras archives (they were plain zips, their config unread).
    #[test]
    fn config_only_archives_are_keras_and_host_reads_are_flagged() {
        let report = crate::Scanner::default()
            .scan_bytes("config_only.keras", &fixture("config_only.keras"));
        assert_eq!(
            (report.format.as_str(), report.verdict),
            ("keras", Verdict::Safe),
            "{:?}",
            report.findings
        );
        assert!(
            report.summary.contains("Keras objects checked"),
            "{}",
            report.summary
        );
        for name in ["vocabulary_host_path.keras", "vocabulary_url.keras"] {
            let report = crate::Scanner::default().scan_bytes(name, &fixture(name));
            assert_eq!(report.format, "keras", "{name}");
            assert_eq!(report.verdict, Verdict::Dangerous, "{name}");
            assert!(
                report
                    .findings
                    .iter()
                    .any(|f| f.rule == Rule::KerasHostPath && f.message.contains("string_lookup")),
                "{name}: {:?}",
                report.findings
            );
        }
    }

    fn fixture(name: &str) -> Vec<u8> {
        crate::testkit::fixture("formats/keras", name)
    }

    /// Runs the config analysis through the scanner's context.
    pub(crate) fn scan_config(data: &[u8]) -> FileReport {
        crate::scan::Scanner::default().scan_with("config.json", data, |ctx, d| {
            scan_keras_config(ctx, d);
            crate::format::Format::KerasConfig
        })
    }

    fn rules(report: &FileReport) -> Vec<Rule> {
        report.findings.iter().map(|f| f.rule).collect()
    }

    #[test]
    fn benign_config_is_safe() {
        let report = scan_config(&fixture("benign.config.json"));
        assert_eq!(report.verdict, Verdict::Safe, "{:?}", report.findings);
        assert!(
            report.summary.contains("Keras objects checked, no code"),
            "{}",
            report.summary
        );
    }

    #[test]
    fn lambda_layer_reports_its_names_and_layer_path() {
        let report = scan_config(&fixture("lambda.config.json"));
        assert_eq!(report.verdict, Verdict::Dangerous);
        let f = report
            .findings
            .iter()
            .find(|f| f.rule == Rule::KerasLambda)
            .unwrap();
        assert!(
            f.message.contains("`__import__`, `system`"),
            "{}",
            f.message
        );
        assert!(f.message.contains("layer `m/evil`"), "{}", f.message);
    }

    #[test]
    fn each_malicious_config_gets_its_rule() {
        for (file, rule) in [
            ("module_os.config.json", Rule::KerasForeignModule),
            ("function_class.config.json", Rule::KerasFunctionObject),
            ("tfsmlayer.config.json", Rule::KerasTfsmLayer),
            ("unsafe_call.config.json", Rule::KerasUnsafeCall),
            ("custom_object.config.json", Rule::KerasCustomObject),
        ] {
            let report = scan_config(&fixture(file));
            assert!(
                rules(&report).contains(&rule),
                "{file}: {:?}",
                report.findings
            );
            let expected = if rule == Rule::KerasCustomObject {
                Verdict::Suspicious
            } else {
                Verdict::Dangerous
            };
            assert_eq!(report.verdict, expected, "{file}");
        }
    }

    #[test]
    fn legacy_lambda_list_form_is_decoded() {
        let config = br#"{"class_name": "Sequential", "config": {"name": "s", "layers": [
            {"class_name": "Lambda", "config": {"name": "l", "function_type": "lambda",
             "function": ["4wEAAAAAAAAAAAAAAAMAAAATAAAA80oAAACXAHQBAAAAAAAAAAAAAGQBpgEAAKsBAAAAAAAAAACgAQAAAAAAAAAAAAAAAAAAAAAAAAAAZAKmAQAAqwEAAAAAAAAAAHABfABTACkDTtoCb3PaAmlkKQLaCl9faW1wb3J0X1/aBnN5c3RlbSkB2gF0cwEAAAAg+j0vd29yay93dC9mbXQtYi9zY3JpcHRzL2ZpeHR1cmVzL21ha2VfZm9ybWF0c19rZXJhc190Zl9vbm54LnB5+gg8bGFtYmRhPvo1a2VyYXNfZml4dHVyZXMuPGxvY2Fscz4uc21hbGxfbW9kZWwuPGxvY2Fscz4uPGxhbWJkYT4+AAAAcyEAAACAAK1quBTRLj7ULj7XLkXSLkXAZNEuS9QuS9AuUMhxgADzAAAAAA==", null, null]}}]}}"#;
        let report = scan_config(config);
        let f = report
            .findings
            .iter()
            .find(|f| f.rule == Rule::KerasLambda)
            .unwrap();
        assert!(
            f.message.contains("`system`") && f.message.contains("layer `s/l`"),
            "{}",
            f.message
        );
    }

    #[test]
    fn keras_activation_functions_are_not_flagged() {
        let config = br#"{"module": "keras.layers", "class_name": "Dense", "config": {"name": "d",
            "activation": {"module": "keras.activations", "class_name": "function", "config": "relu", "registered_name": "relu"}}}"#;
        assert_eq!(scan_config(config).verdict, Verdict::Safe);
    }

    #[test]
    fn invalid_or_too_deep_json_is_unscannable() {
        assert_eq!(
            scan_config(b"{\"class_name\": ").verdict,
            Verdict::Unscannable
        );
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(scan_config(deep.as_bytes()).verdict, Verdict::Unscannable);
    }

    #[test]
    fn keras_archive_members_are_recognised() {
        assert!(is_keras_archive(&[
            "metadata.json",
            "config.json",
            "model.weights.h5"
        ]));
        // keras.saving.load_model reads config.json alone before anything else.
        assert!(is_keras_archive(&["config.json"]));
        assert!(is_keras_archive(&["data.pkl", "config.json"]));
        assert!(!is_keras_archive(&["metadata.json", "model.weights.h5"]));
        assert!(!is_keras_archive(&["sub/config.json"]));
    }

    #[test]
    fn keras_archives_are_named_and_their_configs_analysed() {
        let scanner = crate::scan::Scanner::default();
        let benign = scanner.scan_bytes("m.keras", &fixture("benign.keras"));
        assert_eq!(benign.format, "keras");
        assert_eq!(benign.verdict, Verdict::Safe, "{:?}", benign.findings);
        assert_eq!(
            benign.summary,
            "keras: keras 3.15.1, config.json: 7 Keras objects checked, no code, \
             weights `model.weights.h5` scanned as hdf5, 3 members"
        );
        let formats: Vec<_> = benign
            .members
            .iter()
            .map(|m| (m.path.as_str(), m.format.as_str()))
            .collect();
        assert!(
            formats.contains(&("config.json", "keras-config")),
            "{formats:?}"
        );
        assert!(formats.contains(&("metadata.json", "keras-metadata")));
        assert!(
            formats.contains(&("model.weights.h5", "hdf5")),
            "weights scanned by content: {formats:?}"
        );
        let evil = scanner.scan_bytes("m.keras", &fixture("lambda.keras"));
        assert_eq!(evil.verdict, Verdict::Dangerous);
        let lambda = evil
            .findings
            .iter()
            .find(|f| f.rule == Rule::KerasLambda)
            .unwrap();
        assert_eq!(lambda.member.as_deref(), Some("config.json"));
    }

    #[test]
    fn a_pickle_inside_a_keras_archive_is_still_scanned() {
        use crate::containers::zip::testzip::{build, member};
        let config = fixture("benign.config.json");
        let zip = build(&[
            member("config.json", &config),
            member("metadata.json", br#"{"keras_version": "3.6.0"}"#),
            member("assets/extra.pkl", b"cos\nsystem\n(S'id'\ntR."),
        ]);
        let report = crate::scan::Scanner::default().scan_bytes("m.keras", &zip);
        assert_eq!(report.format, "keras");
        assert_eq!(report.verdict, Verdict::Dangerous);
        assert!(report.imports.iter().any(
            |i| i.qualified() == "os.system" && i.member.as_deref() == Some("assets/extra.pkl")
        ));
        // A pickle posing as config.json is unreadable JSON to Keras and a pickle by content.
        let zip = build(&[
            member("config.json", b"cos\nsystem\n(S'id'\ntR."),
            member("metadata.json", b"{}"),
        ]);
        let report = crate::scan::Scanner::default().scan_bytes("m.keras", &zip);
        let rules = rules(&report);
        assert!(rules.contains(&Rule::KerasConfigMalformed), "{rules:?}");
        assert!(report.imports.iter().any(|i| i.qualified() == "os.system"));
        assert_eq!(report.verdict, Verdict::Dangerous);
    }

    #[test]
    fn base64_skips_newlines_like_binascii() {
        assert_eq!(decode_base64("aGVs\nbG8=\n"), b"hello");
        assert_eq!(decode_base64(""), b"");
    }
}
