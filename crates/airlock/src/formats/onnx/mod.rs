//! ONNX `ModelProto`: operator domains and opsets, functions, initialisers (counted, never
//! copied) and external-data locations.
//!
//! Field numbers from onnx/onnx.in.proto. Read with the zero-copy wire reader in
//! [`super::protobuf`], so a 2 GB `raw_data` is measured, not loaded. Graphs nested in node
//! attributes (If/Loop/Scan bodies), training graphs and function bodies are walked too, with a
//! depth limit, because their tensors and nodes load just like the main graph's.
//!
//! External data: the pure checks the reference checker makes on `location` (empty, absolute,
//! `..` escaping after normalisation) are done here. Existence, size, symlinks and hard links
//! need the model's folder: [`external_data_refs`] lists the references, the filesystem facts
//! are gathered by [`folder`] (which never reads the files' bytes), and
//! [`check_external_file`] judges them here, as a pure function.

pub mod folder;

use super::protobuf::{WireError, fields, offset_in};
use crate::ctx::Ctx;
use crate::format::Format;
use crate::report::Finding;
use crate::rules::{Rule, Severity};

const STANDARD_DOMAINS: &[&str] = &[
    "",
    "ai.onnx",
    "ai.onnx.ml",
    "ai.onnx.training",
    "ai.onnx.preview.training",
];
use crate::limits::caps::onnx::MAX_GRAPH_DEPTH;
/// ModelProto field numbers onnx defines; identification refuses anything else.
const MODEL_FIELDS: &[u32] = &[1, 2, 3, 4, 5, 6, 7, 8, 14, 20, 25, 26];

/// One tensor whose data lives in another file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalRef {
    pub tensor: String,
    /// The `location` value as written (relative POSIX path expected).
    pub location: String,
    pub offset: Option<u64>,
    pub length: Option<u64>,
    /// Why the location is unacceptable on its own (before looking at the folder), if it is.
    pub problem: Option<&'static str>,
    /// Byte offset of the TensorProto in the model file.
    pub at: u64,
}

/// Identifies a ModelProto strictly: every top-level field is one onnx defines, `ir_version`
/// is present, and `graph` is present and parses.
pub fn is_onnx_model(data: &[u8]) -> bool {
    if data.first() != Some(&0x08) {
        return false;
    }
    let (mut ir_version, mut graph) = (false, false);
    for field in fields(data) {
        let Ok(field) = field else { return false };
        if !MODEL_FIELDS.contains(&field.number) {
            return false;
        }
        match field.number {
            1 => ir_version = field.varint().is_some_and(|v| (1..=64).contains(&v)),
            7 => graph = field.bytes().is_some_and(|g| fields(g).all(|f| f.is_ok())),
            _ => {}
        }
    }
    ir_version && graph
}

#[derive(Default)]
struct Tally {
    ir_version: u64,
    opsets: Vec<(String, u64)>,
    nodes: usize,
    functions: usize,
    initializers: usize,
    initializer_bytes: u64,
    refs: Vec<ExternalRef>,
    custom_domains: Vec<String>,
}

/// Scans an ONNX model. Returns the format name.
pub fn scan_onnx(ctx: &mut Ctx, data: &[u8]) -> Format {
    let mut tally = Tally::default();
    if let Err(e) = walk_model(ctx, data, &mut tally) {
        ctx.report(
            Finding::new(Rule::OnnxMalformed, format!("ModelProto: {e}")).at(e.offset as u64),
        );
    }
    for r in &tally.refs {
        if let Some(problem) = r.problem {
            ctx.report(
                Finding::new(
                    Rule::OnnxExternalPath,
                    format!(
                        "tensor `{}` reads external data from `{}`: {problem}",
                        r.tensor, r.location
                    ),
                )
                .at(r.at),
            );
        }
    }
    for domain in &tally.custom_domains {
        ctx.report(Finding::new(
            Rule::OnnxCustomDomain,
            format!("operator domain `{domain}` is not a standard ONNX domain; it needs a native library"),
        ));
    }
    let opsets: Vec<_> = tally
        .opsets
        .iter()
        .map(|(d, v)| format!("{}:{v}", if d.is_empty() { "ai.onnx" } else { d }))
        .collect();
    ctx.note(format!(
        "ir_version {}, opsets [{}], {} nodes, {} functions, {} initialisers ({} bytes inline), {} with external data",
        tally.ir_version,
        opsets.join(", "),
        tally.nodes,
        tally.functions,
        tally.initializers,
        tally.initializer_bytes,
        tally.refs.len()
    ));
    Format::Onnx
}

/// The external-data references of every tensor in the model, for folder-level checks
/// (existence, size, links). Malformed models yield the references read before the error.
pub fn external_data_refs(data: &[u8]) -> Vec<ExternalRef> {
    let mut tally = Tally::default();
    let mut sink = Sink::Collect;
    let _ = walk_model_into(&mut sink, data, &mut tally);
    tally.refs
}

/// Where nodes' domains go: reported through a context, or only collected.
enum Sink<'c, 's> {
    Ctx(&'c mut Ctx<'s>),
    Collect,
}

fn walk_model(ctx: &mut Ctx, data: &[u8], tally: &mut Tally) -> Result<(), WireError> {
    walk_model_into(&mut Sink::Ctx(ctx), data, tally)
}

fn walk_model_into(sink: &mut Sink, data: &[u8], tally: &mut Tally) -> Result<(), WireError> {
    for field in fields(data) {
        let field = field?;
        match (field.number, field.bytes()) {
            (1, _) => tally.ir_version = field.varint().unwrap_or_default(),
            (7, Some(graph)) => walk_graph(sink, data, graph, tally, 0)?,
            (8, Some(opset)) => {
                let (domain, version) = opset_id(opset).map_err(|e| relocate(e, data, opset))?;
                note_domain(tally, &domain);
                tally.opsets.push((domain, version));
            }
            (20, Some(training)) => {
                for f in fields(training) {
                    let f = f.map_err(|e| relocate(e, data, training))?;
                    if let (1 | 2, Some(graph)) = (f.number, f.bytes()) {
                        walk_graph(sink, data, graph, tally, 1)?;
                    }
                }
            }
            (25, Some(function)) => {
                tally.functions += 1;
                walk_function(sink, data, function, tally)?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn relocate(mut e: WireError, file: &[u8], inner: &[u8]) -> WireError {
    e.offset = e.offset.saturating_add(offset_in(file, inner) as usize);
    e
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).chars().take(200).collect()
}

fn opset_id(opset: &[u8]) -> Result<(String, u64), WireError> {
    let (mut domain, mut version) = (String::new(), 0);
    for f in fields(opset) {
        let f = f?;
        match f.number {
            1 => domain = f.bytes().map(text).unwrap_or_default(),
            2 => version = f.varint().unwrap_or_default(),
            _ => {}
        }
    }
    Ok((domain, version))
}

fn note_domain(tally: &mut Tally, domain: &str) {
    if !STANDARD_DOMAINS.contains(&domain) && !tally.custom_domains.iter().any(|d| d == domain) {
        tally.custom_domains.push(domain.to_string());
    }
}

fn walk_function(
    sink: &mut Sink,
    file: &[u8],
    function: &[u8],
    tally: &mut Tally,
) -> Result<(), WireError> {
    for f in fields(function) {
        let f = f.map_err(|e| relocate(e, file, function))?;
        match (f.number, f.bytes()) {
            (7, Some(node)) => walk_node(sink, file, node, tally, 1)?,
            (9, Some(opset)) => {
                let (domain, _) = opset_id(opset).map_err(|e| relocate(e, file, opset))?;
                note_domain(tally, &domain);
            }
            _ => {}
        }
    }
    Ok(())
}

fn walk_graph(
    sink: &mut Sink,
    file: &[u8],
    graph: &[u8],
    tally: &mut Tally,
    depth: usize,
) -> Result<(), WireError> {
    if depth > MAX_GRAPH_DEPTH {
        return Err(WireError {
            offset: offset_in(file, graph) as usize,
            what: "subgraphs nested too deeply",
        });
    }
    for f in fields(graph) {
        let f = f.map_err(|e| relocate(e, file, graph))?;
        match (f.number, f.bytes()) {
            (1, Some(node)) => walk_node(sink, file, node, tally, depth)?,
            (5, Some(tensor)) => {
                tally.initializers += 1;
                walk_tensor(file, tensor, tally)?;
            }
            (15, Some(sparse)) => {
                tally.initializers += 1;
                walk_sparse(file, sparse, tally)?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn walk_node(
    sink: &mut Sink,
    file: &[u8],
    node: &[u8],
    tally: &mut Tally,
    depth: usize,
) -> Result<(), WireError> {
    tally.nodes += 1;
    if tally.nodes % 4096 == 0
        && let Sink::Ctx(ctx) = sink
        && ctx.check_timeout()
    {
        return Err(WireError {
            offset: offset_in(file, node) as usize,
            what: "time limit reached",
        });
    }
    for f in fields(node) {
        let f = f.map_err(|e| relocate(e, file, node))?;
        match (f.number, f.bytes()) {
            (7, Some(domain)) => note_domain(tally, &text(domain)),
            (5, Some(attribute)) => walk_attribute(sink, file, attribute, tally, depth)?,
            _ => {}
        }
    }
    Ok(())
}

/// AttributeProto: t=5 (tensor), g=6 (graph), tensors=10, graphs=11, sparse_tensor=22,
/// sparse_tensors=23.
fn walk_attribute(
    sink: &mut Sink,
    file: &[u8],
    attr: &[u8],
    tally: &mut Tally,
    depth: usize,
) -> Result<(), WireError> {
    for f in fields(attr) {
        let f = f.map_err(|e| relocate(e, file, attr))?;
        match (f.number, f.bytes()) {
            (5 | 10, Some(tensor)) => walk_tensor(file, tensor, tally)?,
            (6 | 11, Some(graph)) => walk_graph(sink, file, graph, tally, depth + 1)?,
            (22 | 23, Some(sparse)) => walk_sparse(file, sparse, tally)?,
            _ => {}
        }
    }
    Ok(())
}

fn walk_sparse(file: &[u8], sparse: &[u8], tally: &mut Tally) -> Result<(), WireError> {
    for f in fields(sparse) {
        let f = f.map_err(|e| relocate(e, file, sparse))?;
        if let (1 | 2, Some(tensor)) = (f.number, f.bytes()) {
            walk_tensor(file, tensor, tally)?;
        }
    }
    Ok(())
}

/// TensorProto: name=8, raw_data=9 (length only), external_data=13, data_location=14.
fn walk_tensor(file: &[u8], tensor: &[u8], tally: &mut Tally) -> Result<(), WireError> {
    let (mut name, mut external, mut entries) = (String::new(), false, Vec::new());
    for f in fields(tensor) {
        let f = f.map_err(|e| relocate(e, file, tensor))?;
        match (f.number, f.bytes()) {
            (8, Some(n)) => name = text(n),
            (9, Some(raw)) => {
                tally.initializer_bytes = tally.initializer_bytes.saturating_add(raw.len() as u64)
            }
            (13, Some(entry)) => {
                entries.push(string_pair(entry).map_err(|e| relocate(e, file, entry))?)
            }
            (14, None) => external = f.varint() == Some(1),
            _ => {}
        }
    }
    if external || !entries.is_empty() {
        tally
            .refs
            .push(external_ref(name, &entries, offset_in(file, tensor)));
    }
    Ok(())
}

fn string_pair(entry: &[u8]) -> Result<(String, String), WireError> {
    let (mut key, mut value) = (String::new(), String::new());
    for f in fields(entry) {
        let f = f?;
        match (f.number, f.bytes()) {
            (1, Some(k)) => key = String::from_utf8_lossy(k).into_owned(),
            (2, Some(v)) => value = String::from_utf8_lossy(v).into_owned(),
            _ => {}
        }
    }
    Ok((key, value))
}

fn external_ref(tensor: String, entries: &[(String, String)], at: u64) -> ExternalRef {
    let get = |key: &str| {
        entries
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let location = get("location").unwrap_or_default().to_string();
    ExternalRef {
        tensor,
        problem: location_problem(&location),
        offset: get("offset").and_then(|v| v.parse().ok()),
        length: get("length").and_then(|v| v.parse().ok()),
        location,
        at,
    }
}

/// What the filesystem says about an external data file, gathered without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExternalFile {
    /// `symlink_metadata` failed (missing, permission denied, ...).
    Unreadable(String),
    Symlink,
    /// Not a regular file: what it is instead ("folder", "FIFO or device").
    NotRegular(&'static str),
    Regular {
        size: u64,
        /// Names the file has (1 unless hard-linked; always 1 where unknown).
        links: u64,
    },
}

/// A problem with one reference's file, as a finding's parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalProblem {
    pub rule: Rule,
    pub severity: Severity,
    pub message: String,
}

/// Judges one reference against its file. `inside_folder` is false when the file's canonical
/// path leaves the model folder. Returns the problems and the bytes of the reference's range
/// that were checked to lie inside a regular file (0 when they could not be).
///
/// Severities (see docs/rules/ONNX004.md): escaping the folder and symbolic links are
/// dangerous, because that is how a model reads host files into its tensors; a missing,
/// irregular, hard-linked or too-short file makes the model unloadable (the reference checker
/// or the reader refuses it) and is suspicious.
pub fn check_external_file(
    r: &ExternalRef,
    file: &ExternalFile,
    inside_folder: bool,
) -> (Vec<ExternalProblem>, u64) {
    let what = format!(
        "tensor `{}` reads external data from `{}`",
        r.tensor, r.location
    );
    let problem = |rule: Rule, severity: Severity, why: String| ExternalProblem {
        rule,
        severity,
        message: format!("{what}: {why}"),
    };
    let mut problems = Vec::new();
    if !inside_folder {
        problems.push(problem(
            Rule::OnnxExternalPath,
            Severity::Dangerous,
            "its real path (after following links) is outside the model folder".into(),
        ));
    }
    let mut checked = 0;
    match file {
        ExternalFile::Unreadable(why) => problems.push(problem(
            Rule::OnnxExternalFile,
            Severity::Suspicious,
            format!("the file cannot be found or read ({why}); the model cannot be loaded"),
        )),
        ExternalFile::Symlink => problems.push(problem(
            Rule::OnnxExternalFile,
            Severity::Dangerous,
            "the file is a symbolic link; the reference checker refuses it".into(),
        )),
        ExternalFile::NotRegular(kind) => problems.push(problem(
            Rule::OnnxExternalFile,
            Severity::Suspicious,
            format!("the location is a {kind}, not a regular file"),
        )),
        ExternalFile::Regular { size, links } => {
            if *links > 1 {
                problems.push(problem(
                    Rule::OnnxExternalFile,
                    Severity::Suspicious,
                    format!("the file is a hard link with {links} names; the reference checker refuses it"),
                ));
            }
            let offset = r.offset.unwrap_or(0);
            let end = match r.length {
                Some(length) => offset.checked_add(length),
                None => Some(offset.max(*size)),
            };
            match end.filter(|&end| end <= *size && offset <= *size) {
                Some(end) => checked = end - offset,
                None => problems.push(problem(
                    Rule::OnnxExternalFile,
                    Severity::Suspicious,
                    format!(
                        "offset {offset} + length {} runs past the file's {size} bytes",
                        r.length
                            .map_or("(rest of file)".to_string(), |l| l.to_string())
                    ),
                )),
            }
        }
    }
    (problems, checked)
}

/// The reference checker's pure checks on a location (before touching the filesystem).
pub fn location_problem(location: &str) -> Option<&'static str> {
    if location.is_empty() {
        return Some("empty location");
    }
    if location.contains('\0') {
        return Some("location contains a NUL byte");
    }
    let bytes = location.as_bytes();
    let drive = bytes.len() >= 2
        && bytes.first().is_some_and(u8::is_ascii_alphabetic)
        && bytes.get(1) == Some(&b':');
    if location.starts_with(['/', '\\']) || drive {
        return Some("absolute path");
    }
    let mut depth = 0usize;
    for part in location.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return Some("path escapes the model folder (`..`)"),
            },
            _ => depth += 1,
        }
    }
    if depth == 0 {
        return Some("location names the model folder itself");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Verdict;
    use crate::scan::Scanner;

    fn fixture(name: &str) -> Vec<u8> {
        crate::testkit::fixture("formats/onnx", name)
    }

    #[test]
    fn benign_model_is_safe_and_counted() {
        let data = fixture("benign.onnx");
        assert!(is_onnx_model(&data));
        let report = Scanner::default().scan_bytes("m.onnx", &data);
        assert_eq!(report.format, "onnx");
        assert_eq!(report.verdict, Verdict::Safe, "{:?}", report.findings);
        assert!(
            report.summary.contains("1 nodes")
                && report.summary.contains("1 initialisers (64 bytes inline)"),
            "{}",
            report.summary
        );
    }

    #[test]
    fn traversal_absolute_path_and_custom_domain_are_reported() {
        let report = Scanner::default().scan_bytes("m.onnx", &fixture("malicious.onnx"));
        assert_eq!(report.verdict, Verdict::Dangerous);
        let msgs: Vec<_> = report
            .findings
            .iter()
            .map(|f| (f.rule, f.message.as_str()))
            .collect();
        assert!(
            msgs.iter().any(|(r, m)| *r == Rule::OnnxExternalPath
                && m.contains("../../etc/passwd")
                && m.contains("escapes")),
            "{msgs:?}"
        );
        assert!(msgs.iter().any(|(r, m)| *r == Rule::OnnxExternalPath
            && m.contains("/etc/shadow")
            && m.contains("absolute")));
        assert!(
            msgs.iter()
                .any(|(r, m)| *r == Rule::OnnxCustomDomain && m.contains("com.attacker.native"))
        );
    }

    #[test]
    fn external_refs_are_exposed_for_the_folder_check() {
        let refs = external_data_refs(&fixture("external_ok.onnx"));
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].location, "weights.bin");
        assert_eq!(
            (refs[0].offset, refs[0].length, refs[0].problem),
            (Some(0), Some(64), None)
        );
        let report = Scanner::default().scan_bytes("m.onnx", &fixture("external_ok.onnx"));
        assert_eq!(report.verdict, Verdict::Safe, "{:?}", report.findings);
    }

    fn reference(offset: Option<u64>, length: Option<u64>) -> ExternalRef {
        ExternalRef {
            tensor: "w".into(),
            location: "w.bin".into(),
            offset,
            length,
            problem: None,
            at: 0,
        }
    }

    #[test]
    fn external_files_are_judged_without_the_filesystem() {
        let regular = ExternalFile::Regular {
            size: 100,
            links: 1,
        };
        let judge = |r: &ExternalRef, f: &ExternalFile, inside: bool| {
            let (problems, checked) = check_external_file(r, f, inside);
            let parts: Vec<_> = problems.iter().map(|p| (p.rule, p.severity)).collect();
            (parts, checked)
        };
        assert_eq!(
            judge(&reference(Some(10), Some(90)), &regular, true),
            (vec![], 90)
        );
        assert_eq!(judge(&reference(None, None), &regular, true), (vec![], 100));
        assert_eq!(
            judge(&reference(Some(100), None), &regular, true),
            (vec![], 0)
        );
        let short = (vec![(Rule::OnnxExternalFile, Severity::Suspicious)], 0);
        assert_eq!(judge(&reference(Some(10), Some(91)), &regular, true), short);
        assert_eq!(judge(&reference(Some(101), None), &regular, true), short);
        assert_eq!(
            judge(&reference(Some(u64::MAX), Some(2)), &regular, true),
            short,
            "overflow"
        );
        assert_eq!(
            judge(&reference(None, None), &ExternalFile::Symlink, true).0,
            [(Rule::OnnxExternalFile, Severity::Dangerous)]
        );
        assert_eq!(
            judge(&reference(None, None), &regular, false).0,
            [(Rule::OnnxExternalPath, Severity::Dangerous)]
        );
        let linked = ExternalFile::Regular {
            size: 100,
            links: 2,
        };
        assert_eq!(
            judge(&reference(None, Some(4)), &linked, true),
            (vec![(Rule::OnnxExternalFile, Severity::Suspicious)], 4)
        );
        let missing = ExternalFile::Unreadable("not found".into());
        let (problems, _) = check_external_file(&reference(None, None), &missing, true);
        assert!(
            problems[0].message.contains("cannot be loaded"),
            "{problems:?}"
        );
    }

    #[test]
    fn location_checks_follow_the_reference_checker() {
        assert_eq!(location_problem("w.bin"), None);
        assert_eq!(location_problem("sub/../w.bin"), None);
        assert!(location_problem("").is_some());
        assert!(location_problem("C:\\x").is_some());
        assert!(location_problem("a/../../x").is_some());
        assert!(location_problem("..\\x").is_some());
        assert!(location_problem(".").is_some());
    }

    #[test]
    fn identification_is_strict() {
        let data = fixture("benign.onnx");
        assert!(!is_onnx_model(&data[..data.len() - 1]));
        assert!(!is_onnx_model(b"\x08\x07"), "no graph");
        assert!(
            !is_onnx_model(b"\x08\x07\x3a\x00\x50\x01"),
            "unknown field 10"
        );
        assert!(is_onnx_model(b"\x08\x07\x3a\x00"));
    }
}
