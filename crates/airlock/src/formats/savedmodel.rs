//! TensorFlow SavedModel (`saved_model.pb`) and Keras `keras_metadata.pb`: walks every node of
//! every meta-graph and of the function library, and reports ops that touch the host.
//!
//! "TensorFlow models are programs" (TF's SECURITY.md): loading a SavedModel and calling it runs
//! its graph. Ops that read or write files, run Python, or emit data elsewhere are reported
//! with the node name, op and the function they sit in.
//!
//! Checkpoint ops (`SaveV2`, `RestoreV2`, `MergeV2Checkpoints`, ...) are how every SavedModel
//! saves and restores its variables, so they are accepted only where TensorFlow itself puts
//! them: inside the functions `tf.saved_model.save` traces for checkpointing
//! (`__inference__traced_save_<n>` / `__inference__traced_restore_<n>`, fed by the
//! `saver_filename` placeholder) and, for TF1 graphs, under the `save/` (or `save_<n>/`) name
//! scope that `tf.compat.v1.train.Saver` creates. Anywhere else they are a file write or read
//! with a path the model chooses.
//!
//! Protobuf: read with the zero-copy wire reader in [`super::protobuf`] (field numbers from
//! tensorflow/core/protobuf/{saved_model,meta_graph}.proto and framework/{graph,function,
//! node_def,op_def}.proto).

use super::protobuf::{self, WireError, fields, last_bytes, offset_in, repeated_bytes};
use crate::ctx::Ctx;
use crate::format::Format;
use crate::report::Finding;
use crate::rules::Rule;

/// Ops that read or write files, run Python, or send data out of the process.
const HOST_OPS: &[&str] = &[
    "ReadFile",
    "WriteFile",
    "PrintV2",
    "PyFunc",
    "PyFuncStateless",
    "EagerPyFunc",
    "MatchingFiles",
    "ImmutableConst",
    "DebugIdentity",
    "DebugIdentityV2",
    "DebugIdentityV3",
    "DebugNanCount",
    "DebugNumericSummary",
    "DebugNumericSummaryV2",
    "WholeFileReader",
    "WholeFileReaderV2",
    "TextLineReader",
    "TextLineReaderV2",
    "TFRecordReader",
    "TFRecordReaderV2",
    "FixedLengthRecordReader",
    "FixedLengthRecordReaderV2",
    "TFRecordDataset",
    "TFRecordDatasetV2",
    "TextLineDataset",
    "FixedLengthRecordDataset",
    "FixedLengthRecordDatasetV2",
    "MatchingFilesDataset",
    "ExperimentalMatchingFilesDataset",
    "CSVDataset",
    "CSVDatasetV2",
    "ExperimentalCSVDataset",
    "SqlDataset",
    "ExperimentalSqlDataset",
    "LMDBDataset",
    "ExperimentalLMDBDataset",
    "SaveDataset",
    "SaveDatasetV2",
    "LoadDataset",
    "SnapshotDataset",
    "SnapshotDatasetV2",
    "DataServiceDataset",
    "DataServiceDatasetV2",
    "DataServiceDatasetV3",
    "DataServiceDatasetV4",
    "CreateSummaryFileWriter",
    "WriteSummary",
    "WriteRawProtoSummary",
    "ImportEvent",
    "Rpc",
    "TryRpc",
    "RpcClient",
    "RpcCall",
];

/// Checkpoint ops: legitimate only inside TensorFlow's own saver functions.
const CHECKPOINT_OPS: &[&str] = &[
    "Save",
    "SaveV2",
    "SaveSlices",
    "Restore",
    "RestoreV2",
    "RestoreSlice",
    "MergeV2Checkpoints",
];

/// Identifies a SavedModel by content: every top-level field is `saved_model_schema_version`
/// (1, varint) or `meta_graphs` (2), and at least one meta-graph has tags and a graph_def.
pub fn is_saved_model(data: &[u8]) -> bool {
    if !matches!(data.first(), Some(0x08 | 0x12)) {
        return false;
    }
    let mut usable_meta_graph = false;
    for field in fields(data) {
        let Ok(field) = field else { return false };
        match (field.number, field.bytes()) {
            (1, None) => {}
            (2, Some(meta_graph)) => usable_meta_graph |= has_tags_and_graph(meta_graph),
            _ => return false,
        }
    }
    usable_meta_graph
}

fn has_tags_and_graph(meta_graph: &[u8]) -> bool {
    let tags = last_bytes(meta_graph, 1)
        .ok()
        .flatten()
        .and_then(|info| repeated_bytes(info, 4).ok())
        .is_some_and(|tags| {
            !tags.is_empty() && tags.iter().all(|t| std::str::from_utf8(t).is_ok())
        });
    let graph = last_bytes(meta_graph, 2)
        .ok()
        .flatten()
        .is_some_and(|g| fields(g).all(|f| f.is_ok()));
    tags && graph
}

/// What the walk found, for the summary line.
#[derive(Default)]
struct Tally {
    meta_graphs: usize,
    nodes: usize,
    functions: usize,
    flagged: usize,
}

/// Scans a `saved_model.pb`. Returns the format name.
pub fn scan_saved_model(ctx: &mut Ctx, data: &[u8]) -> Format {
    let mut tally = Tally::default();
    if let Err(e) = walk_saved_model(ctx, data, &mut tally) {
        ctx.report(
            Finding::new(Rule::TfMalformed, format!("saved_model.pb: {e}")).at(e.offset as u64),
        );
    }
    ctx.note(format!(
        "{} meta-graph(s), {} nodes, {} functions, {}",
        tally.meta_graphs,
        tally.nodes,
        tally.functions,
        match tally.flagged {
            0 => "no host-touching ops".to_string(),
            n => format!("{n} host-touching op(s)"),
        }
    ));
    Format::TensorflowSavedmodel
}

fn walk_saved_model(ctx: &mut Ctx, data: &[u8], tally: &mut Tally) -> Result<(), WireError> {
    for meta_graph in repeated_bytes(data, 2)? {
        tally.meta_graphs += 1;
        let at = |e: WireError| relocate(e, data, meta_graph);
        let Some(graph) = last_bytes(meta_graph, 2).map_err(at)? else {
            continue;
        };
        walk_graph(ctx, data, graph, tally).map_err(|e| relocate(e, data, graph))?;
    }
    Ok(())
}

/// Makes an error offset relative to the whole file.
fn relocate(mut e: WireError, file: &[u8], inner: &[u8]) -> WireError {
    e.offset = e.offset.saturating_add(offset_in(file, inner) as usize);
    e
}

fn walk_graph(
    ctx: &mut Ctx,
    file: &[u8],
    graph: &[u8],
    tally: &mut Tally,
) -> Result<(), WireError> {
    for node in repeated_bytes(graph, 1)? {
        check_node(ctx, file, node, None, tally)?;
    }
    if let Some(library) = last_bytes(graph, 2)? {
        for function in repeated_bytes(library, 1).map_err(|e| relocate(e, graph, library))? {
            tally.functions += 1;
            let name = function_name(function).map_err(|e| relocate(e, graph, function))?;
            for node in repeated_bytes(function, 3).map_err(|e| relocate(e, graph, function))? {
                check_node(ctx, file, node, Some(&name), tally)?;
            }
        }
    }
    Ok(())
}

/// `FunctionDef.signature` (an OpDef) `.name`.
fn function_name(function: &[u8]) -> Result<String, WireError> {
    let signature = last_bytes(function, 1)?.unwrap_or_default();
    let name = last_bytes(signature, 1)?.unwrap_or_default();
    Ok(String::from_utf8_lossy(name).into_owned())
}

fn check_node(
    ctx: &mut Ctx,
    file: &[u8],
    node: &[u8],
    function: Option<&str>,
    tally: &mut Tally,
) -> Result<(), WireError> {
    tally.nodes += 1;
    if tally.nodes % 4096 == 0 && ctx.check_timeout() {
        return Err(WireError {
            offset: offset_in(file, node) as usize,
            what: "time limit reached while walking the graph",
        });
    }
    let name = last_bytes(node, 1)?.unwrap_or_default();
    let op = last_bytes(node, 2)?.unwrap_or_default();
    let op = String::from_utf8_lossy(op);
    let name = String::from_utf8_lossy(name);
    let rule = if HOST_OPS.contains(&op.as_ref()) {
        Rule::TfHostOp
    } else if CHECKPOINT_OPS.contains(&op.as_ref()) && !in_saver(&name, function) {
        Rule::TfCheckpointOp
    } else {
        return Ok(());
    };
    tally.flagged += 1;
    let place = function.map_or_else(
        || "the main graph".to_string(),
        |f| format!("function `{f}`"),
    );
    ctx.report(
        Finding::new(rule, format!("op `{op}` (node `{name}`) in {place}"))
            .at(offset_in(file, node)),
    );
    Ok(())
}

/// True where TensorFlow's own savers put checkpoint ops (see the module docs).
fn in_saver(node_name: &str, function: Option<&str>) -> bool {
    match function {
        Some(f) => is_traced_saver_function(f),
        None => {
            let scope = node_name.split('/').next().unwrap_or_default();
            node_name.contains('/')
                && (scope == "save"
                    || scope
                        .strip_prefix("save_")
                        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())))
        }
    }
}

fn is_traced_saver_function(name: &str) -> bool {
    ["__inference__traced_save_", "__inference__traced_restore_"]
        .iter()
        .any(|prefix| {
            name.strip_prefix(prefix)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
}

/// True when `data` parses as a `SavedMetadata` message: only `nodes` (field 1) at the top
/// level, each a `SavedObject` that parses, and at least one with non-empty `metadata`
/// (field 5). Used only for files named `keras_metadata.pb` (see [`super::route`]): the
/// message has no magic, so a content test alone would match random bytes.
pub fn is_keras_metadata(data: &[u8]) -> bool {
    let mut with_metadata = false;
    for field in fields(data) {
        let Ok(field) = field else { return false };
        let Some(node) = field.bytes().filter(|_| field.number == 1) else {
            return false;
        };
        match protobuf::last_bytes(node, 5) {
            Ok(Some(m)) => with_metadata |= !m.is_empty(),
            Ok(None) => {}
            Err(_) => return false,
        }
    }
    with_metadata
}

/// Scans a Keras `keras_metadata.pb` (`SavedMetadata{nodes=1: SavedObject{node_path=3,
/// identifier=4, metadata=5}}`): each node's metadata JSON is analysed like a Keras config.
pub fn scan_keras_metadata(ctx: &mut Ctx, data: &[u8]) -> Format {
    let nodes = match repeated_bytes(data, 1) {
        Ok(nodes) => nodes,
        Err(e) => {
            ctx.report(
                Finding::new(Rule::TfMalformed, format!("keras_metadata.pb: {e}"))
                    .at(e.offset as u64),
            );
            return Format::KerasMetadata;
        }
    };
    let mut count = 0usize;
    let mut total = super::keras::KerasTally::default();
    for node in nodes {
        let metadata = match protobuf::last_bytes(node, 5) {
            Ok(Some(m)) if !m.is_empty() => m,
            Ok(_) => continue,
            Err(e) => {
                let e = relocate(e, data, node);
                ctx.report(
                    Finding::new(Rule::TfMalformed, format!("keras_metadata.pb: {e}"))
                        .at(e.offset as u64),
                );
                break;
            }
        };
        count += 1;
        if let Some(t) = super::keras::analyse_keras_json(ctx, metadata, "keras_metadata.pb") {
            total.objects += t.objects;
            total.flagged += t.flagged;
            total.keras_version = total.keras_version.or(t.keras_version);
        }
    }
    if let Some(version) = &total.keras_version {
        ctx.note(format!("keras {version}"));
    }
    ctx.note(format!(
        "keras_metadata.pb: {count} object(s) analysed, {}",
        total.describe()
    ));
    Format::KerasMetadata
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Verdict;
    use crate::scan::Scanner;

    fn fixture(name: &str) -> Vec<u8> {
        crate::testkit::fixture("formats/savedmodel", name)
    }

    #[test]
    fn benign_saved_model_is_safe_and_its_saver_is_accepted() {
        let data = fixture("benign/saved_model.pb");
        assert!(is_saved_model(&data));
        let report = Scanner::default().scan_bytes("saved_model.pb", &data);
        assert_eq!(report.format, "tensorflow-savedmodel");
        assert_eq!(report.verdict, Verdict::Safe, "{:?}", report.findings);
        assert!(
            report.summary.contains("no host-touching ops"),
            "{}",
            report.summary
        );
    }

    #[test]
    fn host_ops_in_functions_and_stray_checkpoint_ops_are_dangerous() {
        let report =
            Scanner::default().scan_bytes("saved_model.pb", &fixture("malicious/saved_model.pb"));
        assert_eq!(report.verdict, Verdict::Dangerous);
        let messages: Vec<_> = report
            .findings
            .iter()
            .map(|f| (f.rule, f.message.as_str()))
            .collect();
        for op in ["ReadFile", "WriteFile", "PyFunc"] {
            assert!(
                messages.iter().any(|(r, m)| *r == Rule::TfHostOp
                    && m.contains(&format!("`{op}`"))
                    && m.contains("__inference_serve_11")),
                "{op}: {messages:?}"
            );
        }
        assert!(
            messages
                .iter()
                .any(|(r, m)| *r == Rule::TfCheckpointOp && m.contains("`steal`"))
        );
        assert!(
            !messages.iter().any(|(_, m)| m.contains("traced_save")),
            "{messages:?}"
        );
    }

    #[test]
    fn saver_scopes_are_recognised_narrowly() {
        assert!(in_saver("save/SaveV2", None));
        assert!(in_saver("save_3/RestoreV2", None));
        assert!(!in_saver("save", None));
        assert!(!in_saver("saved/SaveV2", None));
        assert!(!in_saver("x", Some("__inference__traced_save_x")));
        assert!(in_saver("x", Some("__inference__traced_restore_12")));
    }

    #[test]
    fn random_and_truncated_bytes_are_not_saved_models() {
        assert!(!is_saved_model(b"\x08\x01"));
        assert!(!is_saved_model(b"\x08\x01\x12\x02\x0a\x00"));
        assert!(!is_saved_model(b"\x80\x04\x95"));
        let data = fixture("benign/saved_model.pb");
        assert!(!is_saved_model(&data[..data.len() - 3]));
    }

    #[test]
    fn malformed_node_inside_a_valid_envelope_is_unscannable() {
        // SavedModel{meta_graphs: [{meta_info_def{tags:"serve"}, graph_def{node: <truncated>}}]}
        let data = b"\x12\x11\x0a\x07\x22\x05serve\x12\x06\x0a\x04\x0a\x05ab";
        assert!(is_saved_model(data));
        let report = Scanner::default().scan_bytes("x", data);
        assert_eq!(
            report.verdict,
            Verdict::Unscannable,
            "{:?}",
            report.findings
        );
        assert!(report.findings.iter().any(|f| f.rule == Rule::TfMalformed));
    }

    #[test]
    fn keras_metadata_is_routed_by_its_name_and_still_by_content() {
        let data = fixture("malicious/keras_metadata.pb");
        assert!(is_keras_metadata(&data));
        let named = Scanner::default().scan_bytes("dir/keras_metadata.pb", &data);
        assert_eq!(named.format, "keras-metadata");
        assert!(named.findings.iter().any(|f| f.rule == Rule::KerasLambda));
        assert!(
            !named.findings.iter().any(|f| f.rule == Rule::NotAModel),
            "{:?}",
            named.findings
        );
        // Under another name the same bytes are only routed by content.
        let other = Scanner::default().scan_bytes("dir/metadata.pb", &data);
        assert!(!other.findings.iter().any(|f| f.rule == Rule::KerasLambda));
        // A pickle named keras_metadata.pb does not parse as metadata and is scanned as a pickle.
        let pickle =
            Scanner::default().scan_bytes("keras_metadata.pb", b"cos\nsystem\n(S'id'\ntR.");
        assert_eq!(pickle.verdict, Verdict::Dangerous);
        // Random bytes under the name are not Keras metadata.
        assert!(!is_keras_metadata(b"\x80\x04\x95"));
        assert!(!is_keras_metadata(b"\x0a\x00"), "a node without metadata");
        assert!(
            !is_keras_metadata(b"\x12\x02\x2a\x00"),
            "field 2 at the top level"
        );
    }

    #[test]
    fn keras_metadata_inside_an_archive_is_found_by_its_base_name() {
        use crate::containers::zip::testzip::{build, member};
        let data = fixture("malicious/keras_metadata.pb");
        let zip = build(&[member("model/keras_metadata.pb", &data)]);
        let report = Scanner::default().scan_bytes("m.zip", &zip);
        let lambda = report
            .findings
            .iter()
            .find(|f| f.rule == Rule::KerasLambda)
            .unwrap();
        assert_eq!(lambda.member.as_deref(), Some("model/keras_metadata.pb"));
        assert!(
            report.members.iter().any(|m| m.format == "keras-metadata"),
            "{:?}",
            report.members
        );
    }

    #[test]
    fn keras_metadata_objects_are_analysed() {
        let data = fixture("malicious/keras_metadata.pb");
        let report = Scanner::default().scan_with("keras_metadata.pb", &data, scan_keras_metadata);
        assert_eq!(report.verdict, Verdict::Dangerous, "{:?}", report.findings);
        let lambda = report
            .findings
            .iter()
            .find(|f| f.rule == Rule::KerasLambda)
            .unwrap();
        assert!(lambda.message.contains("`system`"), "{}", lambda.message);
        assert!(
            report.summary.contains("2 object(s) analysed"),
            "{}",
            report.summary
        );
    }
}
