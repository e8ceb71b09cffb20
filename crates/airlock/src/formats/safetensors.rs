//! safetensors: validates the header by every rule of the reference reader (the `safetensors`
//! crate's `SafeTensors::read_metadata`), reports what that reader silently lets through, and
//! inspects `__metadata__` strings for code, shell commands, URLs and embedded pickles.
//!
//! Only the 8-byte length and the JSON header are read: the data region is checked by its
//! length alone, so a 10 GB file costs one header parse.
//!
//! The header is parsed with `serde_json` into an ordered list of raw entries (not a map) so
//! that duplicate keys, which the reference crate resolves silently (last one wins), stay
//! visible; each entry is then checked against the crate's `TensorInfo` shape by hand, in
//! the crate's order. [`reference_accepts`] says whether the crate would load the file; a test
//! holds it to the crate's own answer on every fixture.

use std::collections::HashSet;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::metadata_text::report_text_hazards;
use crate::ctx::Ctx;
use crate::format::Format;
use crate::report::Finding;
use crate::rules::Rule;
use crate::text::{human_bytes, short};

pub use crate::limits::caps::safetensors::MAX_HEADER_SIZE;

/// Bytes of the little-endian header-length prefix.
const N_LEN: u64 = 8;

/// Every dtype the reference crate knows, with its width in bits.
const DTYPES: &[(&str, u64)] = &[
    ("BOOL", 8),
    ("F4", 4),
    ("F6_E2M3", 6),
    ("F6_E3M2", 6),
    ("U8", 8),
    ("I8", 8),
    ("F8_E5M2", 8),
    ("F8_E4M3", 8),
    ("F8_E8M0", 8),
    ("F8_E4M3FNUZ", 8),
    ("F8_E5M2FNUZ", 8),
    ("I16", 16),
    ("U16", 16),
    ("F16", 16),
    ("BF16", 16),
    ("I32", 32),
    ("U32", 32),
    ("F32", 32),
    ("C64", 64),
    ("F64", 64),
    ("I64", 64),
    ("U64", 64),
];

/// Bit width of a dtype name, if the reference crate knows it.
pub fn dtype_bits(name: &str) -> Option<u64> {
    DTYPES.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

/// One tensor entry as the reference crate would deserialize it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TensorEntry {
    name: String,
    bits: u64,
    shape: Vec<u64>,
    begin: u64,
    end: u64,
}

/// The header's top-level entries in file order, keys and unparsed values.
struct Entries<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Entries<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Entries<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Entries<'a>, M::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, &'de RawValue>()? {
                    out.push((k, v));
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// Where one problem with the header sits, and whether the reference crate refuses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub rule: Rule,
    pub message: String,
    /// True when `SafeTensors::deserialize` returns an error for this reason.
    pub rejected: bool,
    /// True when the malformation targets readers (a length over the reference reader's cap,
    /// overlapping offsets, a size that overflows): reported dangerous.
    pub targets_readers: bool,
}

/// What [`check_header`] learned about a file.
#[derive(Debug, Default)]
pub struct HeaderCheck {
    pub problems: Vec<Problem>,
    /// `(key, value)` of every string in `__metadata__`.
    pub metadata: Vec<(String, String)>,
    pub tensors: usize,
    pub data_bytes: u64,
    /// Offset of the first byte after the last tensor's data (`8 + N + last end`).
    pub data_end: Option<u64>,
    /// True once the JSON was parsed, so the header's content could be inspected.
    pub header_read: bool,
}

impl HeaderCheck {
    fn problem(&mut self, rule: Rule, rejected: bool, message: impl Into<String>) {
        self.problems.push(Problem {
            rule,
            message: message.into(),
            rejected,
            targets_readers: false,
        });
    }

    /// Marks the last problem as one that targets readers (see [`Problem::targets_readers`]).
    fn targeting_readers(&mut self) {
        if let Some(p) = self.problems.last_mut() {
            p.targets_readers = true;
        }
    }

    /// True when the reference reader would load this file.
    pub fn reference_accepts(&self) -> bool {
        !self.problems.iter().any(|p| p.rejected)
    }
}

/// Runs every check of the reference reader on `data` (the whole file) plus Airlock's own.
pub fn check_header(data: &[u8]) -> HeaderCheck {
    let mut out = HeaderCheck::default();
    let Some(prefix) = data.get(..8) else {
        out.problem(
            Rule::StHeaderUnreadable,
            true,
            format!(
                "{} bytes: too short for the 8-byte header length",
                data.len()
            ),
        );
        out.problem(
            Rule::Truncated,
            true,
            "the file ends inside the 8-byte header length",
        );
        return out;
    };
    let mut len_bytes = [0u8; 8];
    len_bytes.copy_from_slice(prefix);
    let n = u64::from_le_bytes(len_bytes);
    if n > MAX_HEADER_SIZE {
        out.problem(
            Rule::StHeaderUnreadable,
            true,
            format!("header length {n} is over the reference reader's cap of {MAX_HEADER_SIZE}"),
        );
        out.targeting_readers();
        return out;
    }
    let header = usize::try_from(n)
        .ok()
        .and_then(|n| data.get(8..8 + n))
        .ok_or(());
    let Ok(header) = header else {
        out.problem(
            Rule::StHeaderUnreadable,
            true,
            format!(
                "header length {n} runs past the end of the {}-byte file",
                data.len()
            ),
        );
        out.problem(
            Rule::Truncated,
            true,
            format!(
                "the file ends {} bytes into a {n}-byte header",
                data.len() - 8
            ),
        );
        return out;
    };
    let text = match std::str::from_utf8(header) {
        Ok(t) => t,
        Err(e) => {
            out.problem(
                Rule::StHeaderUnreadable,
                true,
                format!("header is not UTF-8 at header byte {}", e.valid_up_to() + 8),
            );
            return out;
        }
    };
    let entries: Entries = match serde_json::from_str(text) {
        Ok(e) => e,
        Err(e) => {
            out.problem(
                Rule::StHeaderUnreadable,
                true,
                format!("header is not a JSON object: {e}"),
            );
            return out;
        }
    };
    out.header_read = true;
    if text.starts_with(|c: char| c.is_ascii_whitespace()) {
        out.problem(
            Rule::StNonstandardHeader,
            false,
            "whitespace before the header's `{`; no writer produces it",
        );
    }
    let mut tensors = check_entries(&mut out, entries.0);
    check_layout(&mut out, &mut tensors, n, data.len() as u64);
    out
}

/// Checks every entry's shape (dtype, shape, offsets, fields) and collects the tensors.
fn check_entries(out: &mut HeaderCheck, entries: Vec<(String, &RawValue)>) -> Vec<TensorEntry> {
    let mut seen = HashSet::new();
    let mut tensors: Vec<TensorEntry> = Vec::new();
    for (key, raw) in entries {
        let duplicate = !seen.insert(key.clone());
        if duplicate && key == "__metadata__" {
            // A named field of the crate's header struct: serde refuses it twice.
            out.problem(
                Rule::StHeaderRejected,
                true,
                "`__metadata__` appears more than once",
            );
            continue;
        }
        if duplicate {
            out.problem(
                Rule::StDuplicateKey,
                false,
                format!(
                    "key `{key}` appears more than once; the reference reader keeps the last, other readers may keep the first"
                ),
            );
            tensors.retain(|t| t.name != key);
        }
        if key == "__metadata__" {
            check_metadata(out, raw);
        } else if let Some(t) = check_tensor(out, &key, raw) {
            tensors.push(t);
        }
    }
    tensors
}

/// `__metadata__`: null or an object of strings; anything else is refused by the reference.
fn check_metadata(out: &mut HeaderCheck, raw: &RawValue) {
    let value: serde_json::Value = match serde_json::from_str(raw.get()) {
        Ok(v) => v,
        Err(e) => {
            out.problem(
                Rule::StHeaderRejected,
                true,
                format!("`__metadata__` is not valid: {e}"),
            );
            return;
        }
    };
    match value {
        serde_json::Value::Null => out.problem(
            Rule::StNonstandardHeader,
            false,
            "`__metadata__` is null; no writer produces it",
        ),
        serde_json::Value::Object(_) => {
            let Ok(Entries(items)) = serde_json::from_str::<Entries>(raw.get()) else {
                return;
            };
            let mut keys = HashSet::new();
            for (k, v) in items {
                if !keys.insert(k.clone()) {
                    out.problem(
                        Rule::StDuplicateKey,
                        false,
                        format!("`__metadata__` key `{k}` appears more than once"),
                    );
                }
                match serde_json::from_str::<String>(v.get()) {
                    Ok(s) => {
                        out.metadata.retain(|(key, _)| key != &k);
                        out.metadata.push((k, s));
                    }
                    Err(_) => out.problem(
                        Rule::StHeaderRejected,
                        true,
                        format!(
                            "`__metadata__` value for `{k}` is not a string: {}",
                            short(v.get())
                        ),
                    ),
                }
            }
        }
        other => out.problem(
            Rule::StHeaderRejected,
            true,
            format!(
                "`__metadata__` is not an object: {}",
                short(&other.to_string())
            ),
        ),
    }
}

/// One tensor entry: `{"dtype": .., "shape": [..], "data_offsets": [b, e]}`.
fn check_tensor(out: &mut HeaderCheck, name: &str, raw: &RawValue) -> Option<TensorEntry> {
    let Ok(Entries(fields)) = serde_json::from_str::<Entries>(raw.get()) else {
        out.problem(
            Rule::StHeaderRejected,
            true,
            format!("tensor `{name}` is not a JSON object: {}", short(raw.get())),
        );
        return None;
    };
    let mut dtype = None;
    let mut shape = None;
    let mut offsets = None;
    let mut ok = true;
    for (field, value) in fields {
        let slot_taken = match field.as_str() {
            "dtype" => dtype.replace(value).is_some(),
            "shape" => shape.replace(value).is_some(),
            "data_offsets" => offsets.replace(value).is_some(),
            _ => {
                out.problem(
                    Rule::StNonstandardHeader,
                    false,
                    format!("tensor `{name}` has an unknown field `{field}` (ignored by the reference reader)"),
                );
                false
            }
        };
        if slot_taken {
            ok = false;
            out.problem(
                Rule::StHeaderRejected,
                true,
                format!("tensor `{name}` has field `{field}` twice"),
            );
        }
    }
    let mut reject = |what: String| {
        out.problem(
            Rule::StHeaderRejected,
            true,
            format!("tensor `{name}`: {what}"),
        );
    };
    let bits = match dtype.map(|v| serde_json::from_str::<String>(v.get())) {
        None => {
            reject("missing `dtype`".into());
            None
        }
        Some(Ok(d)) => dtype_bits(&d).or_else(|| {
            reject(format!("unknown dtype `{}`", short(&d)));
            None
        }),
        Some(Err(_)) => {
            reject("`dtype` is not a string".into());
            None
        }
    };
    let shape = match shape.map(|v| serde_json::from_str::<Vec<u64>>(v.get())) {
        None => {
            reject("missing `shape`".into());
            None
        }
        Some(Ok(s)) => Some(s),
        Some(Err(_)) => {
            reject("`shape` is not a list of non-negative integers".into());
            None
        }
    };
    let offsets = match offsets.map(|v| serde_json::from_str::<(u64, u64)>(v.get())) {
        None => {
            reject("missing `data_offsets`".into());
            None
        }
        Some(Ok(o)) => Some(o),
        Some(Err(_)) => {
            reject("`data_offsets` is not exactly two non-negative integers".into());
            None
        }
    };
    match (ok, bits, shape, offsets) {
        (true, Some(bits), Some(shape), Some((begin, end))) => Some(TensorEntry {
            name: name.to_string(),
            bits,
            shape,
            begin,
            end,
        }),
        _ => None,
    }
}

/// Offsets contiguous from zero, sizes matching dtype × shape, and the file ending exactly
/// where the last tensor does. Checked in the reference reader's order (sorted by offsets).
fn check_layout(out: &mut HeaderCheck, tensors: &mut [TensorEntry], n: u64, file_len: u64) {
    if !out.reference_accepts() {
        return;
    }
    tensors.sort_by(|a, b| (a.begin, a.end, &a.name).cmp(&(b.begin, b.end, &b.name)));
    out.tensors = tensors.len();
    let mut running = 0u64;
    for t in tensors.iter() {
        if t.begin != running || t.end < t.begin {
            let what = if t.begin > running {
                "leaves a hole before it"
            } else if t.end < t.begin {
                "ends before it begins"
            } else {
                "overlaps the tensor before it"
            };
            out.problem(
                Rule::StHeaderRejected,
                true,
                format!(
                    "tensor `{}` data_offsets [{}, {}] {what} (expected to begin at {running})",
                    t.name, t.begin, t.end
                ),
            );
            if t.begin < running {
                // Two tensors reading the same bytes: readers that skip the check alias them.
                out.targeting_readers();
            }
            return;
        }
        running = t.end;
        let size = t
            .shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .and_then(|elements| elements.checked_mul(t.bits));
        let Some(bits) = size else {
            out.problem(
                Rule::StHeaderRejected,
                true,
                format!(
                    "tensor `{}` shape {:?} overflows the element/bit count",
                    t.name, t.shape
                ),
            );
            out.targeting_readers();
            return;
        };
        if bits % 8 != 0 {
            out.problem(
                Rule::StHeaderRejected,
                true,
                format!(
                    "tensor `{}` holds {bits} bits, not a whole number of bytes",
                    t.name
                ),
            );
            return;
        }
        if t.end - t.begin != bits / 8 {
            out.problem(
                Rule::StHeaderRejected,
                true,
                format!(
                    "tensor `{}` spans {} bytes but dtype and shape {:?} need {}",
                    t.name,
                    t.end - t.begin,
                    t.shape,
                    bits / 8
                ),
            );
            return;
        }
    }
    out.data_bytes = running;
    let end = running.checked_add(N_LEN + n);
    out.data_end = end;
    match end {
        Some(end) if end == file_len => {}
        Some(end) if end < file_len => out.problem(
            Rule::StHeaderRejected,
            true,
            format!(
                "{} bytes follow the last tensor's data at offset {end} (a polyglot or appended payload)",
                file_len - end
            ),
        ),
        _ => {
            let have = file_len.saturating_sub(N_LEN + n);
            out.problem(
                Rule::StHeaderRejected,
                true,
                format!("tensor data needs {running} bytes after the header but the file has {have}"),
            );
            out.problem(
                Rule::Truncated,
                true,
                format!("the file ends {have} bytes into {running} bytes of tensor data"),
            );
        }
    }
}

/// Scans a safetensors file: header checks, metadata inspection, summary note.
pub fn scan(ctx: &mut Ctx, data: &[u8]) -> Format {
    let check = check_header(data);
    for p in &check.problems {
        let offset = if p.rule == Rule::StHeaderRejected && p.message.contains("follow the last") {
            check.data_end.unwrap_or(8)
        } else if p.rule == Rule::Truncated {
            data.len() as u64
        } else {
            8
        };
        let mut finding = Finding::new(p.rule, p.message.clone()).at(offset);
        if p.targets_readers {
            // A length over the reader's cap, overlapping data or an overflowing size targets
            // readers that trust what the header says (see docs/rules/README.md).
            finding = finding.with_severity(crate::rules::Severity::Dangerous);
        }
        ctx.report(finding);
    }
    if !check.header_read {
        // Not a loadable safetensors file: a loader that unpickles whatever it is given
        // (torch.load) would treat these bytes as a pickle, so scan them as one too.
        super::pickle_stream::scan_or_classify(ctx, data);
    }
    let mut clean = true;
    for (key, value) in &check.metadata {
        clean &= report_text_hazards(
            ctx,
            Rule::StMetadataCode,
            Rule::StMetadataUrl,
            Rule::StMetadataPickle,
            &format!("`__metadata__` key `{key}`"),
            value,
            key_offset(data, key),
        );
    }
    if let Some(end) = check.data_end
        && let Some(trailing) = usize::try_from(end).ok().and_then(|e| data.get(e..))
        && !trailing.is_empty()
    {
        ctx.scan_member("<bytes after safetensors data>", trailing);
    }
    let header = if !check.header_read {
        "header unreadable"
    } else if check.reference_accepts() {
        "header valid"
    } else {
        "header rejected by the reference reader"
    };
    let metadata = if check.metadata.is_empty() {
        "no metadata"
    } else if clean {
        "metadata clean"
    } else {
        "metadata flagged"
    };
    let plural = if check.tensors == 1 { "" } else { "s" };
    ctx.note(format!(
        "{header}, {} tensor{plural}, {}, {metadata}",
        check.tensors,
        human_bytes(check.data_bytes)
    ));
    Format::Safetensors
}

/// File offset of a metadata key's JSON string in the header (8 when it cannot be found,
/// e.g. because the key is written with escapes).
fn key_offset(data: &[u8], key: &str) -> u64 {
    let Ok(quoted) = serde_json::to_string(key) else {
        return 8;
    };
    // Only the header is searched, never the data region.
    let n = data
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes)
        .min(MAX_HEADER_SIZE);
    let header_end = data.len().min(8 + n as usize);
    data.get(8..header_end)
        .and_then(|h| h.windows(quoted.len()).position(|w| w == quoted.as_bytes()))
        .map_or(8, |p| 8 + p as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Scanner, Verdict};

    fn file(header: &str, data_len: usize) -> Vec<u8> {
        let mut v = (header.len() as u64).to_le_bytes().to_vec();
        v.extend_from_slice(header.as_bytes());
        v.extend(std::iter::repeat_n(0u8, data_len));
        v
    }

    fn reference(data: &[u8]) -> bool {
        safetensors::SafeTensors::deserialize(data).is_ok()
    }

    fn rules(data: &[u8]) -> Vec<Rule> {
        check_header(data).problems.iter().map(|p| p.rule).collect()
    }

    #[test]
    fn valid_file_passes_and_matches_reference() {
        let f = file(
            r#"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"__metadata__":{"format":"pt"}}"#,
            16,
        );
        let c = check_header(&f);
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        assert!(reference(&f));
        assert_eq!(c.tensors, 1);
        assert_eq!(c.data_bytes, 16);
        assert_eq!(c.metadata, vec![("format".into(), "pt".into())]);
    }

    #[test]
    fn sub_byte_dtypes() {
        let ok = file(
            r#"{"a":{"dtype":"F4","shape":[4],"data_offsets":[0,2]}}"#,
            2,
        );
        assert!(check_header(&ok).reference_accepts());
        assert!(reference(&ok));
        let odd = file(
            r#"{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}"#,
            2,
        );
        assert!(!check_header(&odd).reference_accepts());
        assert!(!reference(&odd));
        let f6 = file(
            r#"{"a":{"dtype":"F6_E2M3","shape":[4],"data_offsets":[0,3]}}"#,
            3,
        );
        assert!(check_header(&f6).reference_accepts());
        assert!(reference(&f6));
    }

    #[test]
    fn lenient_cases_are_flagged_but_accepted() {
        let dup = file(
            r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"#,
            2,
        );
        assert!(reference(&dup));
        let c = check_header(&dup);
        assert!(c.reference_accepts());
        assert_eq!(rules(&dup), vec![Rule::StDuplicateKey]);
        assert_eq!(c.data_bytes, 2, "last duplicate wins, as in the reference");

        let ws = file(
            r#"  {"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1}}"#,
            1,
        );
        assert!(reference(&ws));
        assert_eq!(
            rules(&ws),
            vec![Rule::StNonstandardHeader, Rule::StNonstandardHeader]
        );
        let null = file(r#"{"__metadata__":null}"#, 0);
        assert!(reference(&null));
        assert_eq!(rules(&null), vec![Rule::StNonstandardHeader]);
    }

    #[test]
    fn rejections_match_reference() {
        let cases: Vec<Vec<u8>> = vec![
            vec![1, 2, 3],
            (MAX_HEADER_SIZE + 1).to_le_bytes().to_vec(),
            file(r#"{"a":1}"#, 0)[..10].to_vec(),
            file(r#"{"__metadata__":{"k":1}}"#, 0),
            file(r#"{"a":{"dtype":"X","shape":[1],"data_offsets":[0,1]}}"#, 1),
            file(
                r#"{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}"#,
                1,
            ),
            file(
                r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}}"#,
                1,
            ),
            file(
                r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#,
                2,
            ),
            file(
                r#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,1]}}"#,
                1,
            ),
            file(
                r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#,
                5,
            ),
            file(
                r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}} x"#,
                1,
            ),
            file(
                r#"{"a":{"dtype":"U64","shape":[4294967296,4294967296],"data_offsets":[0,1]}}"#,
                1,
            ),
            file(
                r#"{"a":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#,
                1,
            ),
            file(r#"[]"#, 0),
        ];
        for (i, f) in cases.iter().enumerate() {
            let c = check_header(f);
            assert!(!c.reference_accepts(), "case {i} should be rejected");
            assert!(!reference(f), "case {i}: reference accepts it");
        }
    }

    #[test]
    fn scanner_routes_and_summarises() {
        let f = file(
            r#"{"a":{"dtype":"F16","shape":[3],"data_offsets":[0,6]},"__metadata__":{"format":"pt"}}"#,
            6,
        );
        let r = Scanner::default().scan_bytes("x.safetensors", &f);
        assert_eq!(r.format, "safetensors");
        assert_eq!(r.verdict, Verdict::Safe, "{:?}", r.findings);
        assert_eq!(
            r.summary,
            "safetensors: header valid, 1 tensor, 6 B, metadata clean"
        );
        let evil = file(
            r#"{"__metadata__":{"note":"import os; os.system('id')"}}"#,
            0,
        );
        let r = Scanner::default().scan_bytes("x.safetensors", &evil);
        assert_eq!(r.verdict, Verdict::Dangerous);
        assert!(
            r.findings
                .iter()
                .any(|f| f.rule == Rule::StMetadataCode && f.message.contains("`note`"))
        );
    }

    /// Differential test: every single-byte substitution in a real header (written by the
    /// safetensors package) gets the same accept/reject answer from us and from the crate.
    #[test]
    fn mutated_headers_agree_with_reference_reader() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/formats/safetensors/benign_small.safetensors");
        let original = std::fs::read(path).expect("fixture");
        let n = u64::from_le_bytes(original[..8].try_into().expect("8 bytes")) as usize;
        let mut checked = 0;
        for i in 8..8 + n {
            for b in *b"0 9-\",}]{[:xF.\\e" {
                let mut f = original.clone();
                f[i] = b;
                assert_eq!(
                    check_header(&f).reference_accepts(),
                    reference(&f),
                    "byte {i} -> {:?}: {}",
                    b as char,
                    String::from_utf8_lossy(&f[8..8 + n])
                );
                checked += 1;
            }
        }
        for extra in [
            r#"{"__metadata__":{"a":"b"},"__metadata__":{"c":"d"}}"#,
            r#"{"__metadata__":{"a":"b"},"__metadata__":null}"#,
            r#"{"a":{"dtype":"U8","shape":[1e0],"data_offsets":[0,1]}}"#,
            r#"{"a":{"dtype":"U8","shape":[],"data_offsets":[0,1]}}"#,
            r#"{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}"#,
            r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[0],"data_offsets":[1,1]}}"#,
            r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,0]}}"#,
            r#"{"a":{"dtype":"u8","shape":[1],"data_offsets":[0,1]}}"#,
            r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"__metadata__":{}}"#,
            "{\"\\u0061\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
            r#"{}"#,
        ] {
            for data_len in [0, 1, 2] {
                let f = file(extra, data_len);
                assert_eq!(
                    check_header(&f).reference_accepts(),
                    reference(&f),
                    "{extra} + {data_len} data bytes"
                );
                checked += 1;
            }
        }
        assert!(checked > 1000);
    }

    /// Every committed fixture: our accept/reject agrees with the reference crate.
    #[test]
    fn fixtures_agree_with_reference_reader() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/formats/safetensors");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).expect("fixture dir") {
            let path = entry.expect("entry").path();
            if path.extension().and_then(|e| e.to_str()) != Some("safetensors") {
                continue;
            }
            let data = std::fs::read(&path).expect("read");
            let ours = check_header(&data).reference_accepts();
            assert_eq!(ours, reference(&data), "{}", path.display());
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if crate::formats::sniff(&data) != crate::formats::Sniffed::Safetensors {
                // Three bytes are nothing at all: not routed here, and rightly not flagged.
                assert!(
                    name.contains("too_short"),
                    "{name} is not routed as safetensors"
                );
                n += 1;
                continue;
            }
            let report = Scanner::default().scan_bytes(name, &data);
            assert_eq!(report.format, "safetensors", "{name}");
            if name.starts_with("benign") {
                assert_eq!(
                    report.verdict,
                    Verdict::Safe,
                    "{name}: {:?}",
                    report.findings
                );
            } else {
                assert_ne!(report.verdict, Verdict::Safe, "{name}");
            }
            if let Some(code) = name.split(['_', '.']).find(|p| p.starts_with("ST0")) {
                assert!(
                    report.findings.iter().any(|f| f.rule.code() == code),
                    "{name}: expected {code}, got {:?}",
                    report.findings
                );
            }
            n += 1;
        }
        assert!(n >= 15, "only {n} fixtures found");
    }
}
