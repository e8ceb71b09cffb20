//! GGUF (llama.cpp / ggml): parses the header, metadata and tensor infos by the rules of
//! ggml's reference reader (`gguf.cpp`) and reports every departure with its byte offset,
//! then analyses chat templates (see [`template`]) and free-text metadata.
//!
//! Both byte orders are read. ggml reads fields in host order and rejects a file whose
//! version has its low 16 bits zero as "created with a different endianness"; Airlock uses
//! the same test to decide that a file is big-endian and then reads it as such.
//!
//! Parsing is bounded by the file: every declared length or count is checked against the
//! bytes left before anything is read or stored, nothing is allocated by a declared count,
//! and tensor data is never read (only its extent is checked against the file length).

pub mod template;

use std::collections::HashSet;

use crate::ctx::Ctx;
use crate::format::Format;
use crate::report::Finding;
use crate::rules::Rule;

/// ggml's caps: `GGUF_MAX_STRING_LENGTH`-style 1 GiB strings, 1 Gi array elements.
/// These and Airlock's own caps on declared counts live in [`crate::limits::caps::gguf`].
pub use crate::limits::caps::gguf::{
    MAX_ARRAY_LEN, MAX_DIMS, MAX_KV, MAX_NAME, MAX_STRING_LEN, MAX_TEMPLATE_LEN, MAX_TENSORS,
};
/// `GGUF_DEFAULT_ALIGNMENT`.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// ggml's type table as gguf-py's `GGML_QUANT_SIZES` lists it: `(id, name, block size, bytes
/// per block)`. Ids missing here (4, 5, 31–33, 36–38) were removed and have block size 0 in
/// ggml, which refuses them.
pub const GGML_TYPES: &[(u32, &str, u64, u64)] = &[
    (0, "F32", 1, 4),
    (1, "F16", 1, 2),
    (2, "Q4_0", 32, 18),
    (3, "Q4_1", 32, 20),
    (6, "Q5_0", 32, 22),
    (7, "Q5_1", 32, 24),
    (8, "Q8_0", 32, 34),
    (9, "Q8_1", 32, 40),
    (10, "Q2_K", 256, 84),
    (11, "Q3_K", 256, 110),
    (12, "Q4_K", 256, 144),
    (13, "Q5_K", 256, 176),
    (14, "Q6_K", 256, 210),
    (15, "Q8_K", 256, 292),
    (16, "IQ2_XXS", 256, 66),
    (17, "IQ2_XS", 256, 74),
    (18, "IQ3_XXS", 256, 98),
    (19, "IQ1_S", 256, 50),
    (20, "IQ4_NL", 32, 18),
    (21, "IQ3_S", 256, 110),
    (22, "IQ2_S", 256, 82),
    (23, "IQ4_XS", 256, 136),
    (24, "I8", 1, 1),
    (25, "I16", 1, 2),
    (26, "I32", 1, 4),
    (27, "I64", 1, 8),
    (28, "F64", 1, 8),
    (29, "IQ1_M", 256, 56),
    (30, "BF16", 1, 2),
    (34, "TQ1_0", 256, 54),
    (35, "TQ2_0", 256, 66),
    (39, "MXFP4", 32, 17),
    (40, "NVFP4", 64, 36),
    (41, "Q1_0", 128, 18),
];

/// `(block size, bytes per block)` of a ggml type id.
pub fn ggml_type(id: u32) -> Option<(&'static str, u64, u64)> {
    GGML_TYPES
        .iter()
        .find(|t| t.0 == id)
        .map(|&(_, n, b, s)| (n, b, s))
}

/// GGUF metadata value types.
const T_U8: u32 = 0;
const T_I8: u32 = 1;
const T_U16: u32 = 2;
const T_I16: u32 = 3;
const T_U32: u32 = 4;
const T_I32: u32 = 5;
const T_F32: u32 = 6;
const T_BOOL: u32 = 7;
const T_STRING: u32 = 8;
const T_ARRAY: u32 = 9;
const T_U64: u32 = 10;
const T_I64: u32 = 11;
const T_F64: u32 = 12;

fn fixed_size(ty: u32) -> Option<u64> {
    match ty {
        T_U8 | T_I8 | T_BOOL => Some(1),
        T_U16 | T_I16 => Some(2),
        T_U32 | T_I32 | T_F32 => Some(4),
        T_U64 | T_I64 | T_F64 => Some(8),
        _ => None,
    }
}

/// A reason parsing cannot go on, with the offending offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop {
    pub rule: Rule,
    pub offset: u64,
    pub message: String,
}

fn stop(rule: Rule, offset: usize, message: impl Into<String>) -> Stop {
    Stop {
        rule,
        offset: offset as u64,
        message: message.into(),
    }
}

use crate::bytes::{ByteReader, ReadError, ReadErrorKind};

/// A cursor over the file in one byte order: [`ByteReader`] with GGUF's messages (a read
/// past the end is a cut file: every declared length reaching it is within ggml's caps).
struct Reader<'a> {
    inner: ByteReader<'a>,
    big_endian: bool,
}

impl<'a> Reader<'a> {
    fn pos(&self) -> usize {
        self.inner.position()
    }

    fn left(&self) -> u64 {
        self.inner.bytes_left() as u64
    }

    /// GGUF's words for a read past the end.
    #[cold]
    fn truncated(err: ReadError, what: &str) -> Stop {
        let (needed, left) = match err.kind {
            ReadErrorKind::UnexpectedEnd { needed, left } => (needed, left),
            _ => (0, 0),
        };
        Stop {
            rule: Rule::Truncated,
            offset: err.offset,
            message: format!("{what} needs {needed} bytes but only {left} are left"),
        }
    }

    fn bytes(&mut self, n: u64, what: &str) -> Result<&'a [u8], Stop> {
        self.inner
            .read_bytes_u64(n)
            .map_err(|e| Self::truncated(e, what))
    }

    fn u32(&mut self, what: &str) -> Result<u32, Stop> {
        self.inner
            .read_u32(self.big_endian)
            .map_err(|e| Self::truncated(e, what))
    }

    fn u64(&mut self, what: &str) -> Result<u64, Stop> {
        self.inner
            .read_u64(self.big_endian)
            .map_err(|e| Self::truncated(e, what))
    }

    /// A GGUF string: u64 length then bytes, length ≤ 1 GiB and ≤ bytes left.
    fn string(&mut self, what: &str) -> Result<&'a [u8], Stop> {
        let at = self.pos();
        let len = self.u64(what)?;
        if len > MAX_STRING_LEN {
            return Err(stop(
                Rule::GgufOutOfBounds,
                at,
                format!("{what} declares {len} bytes, over ggml's 1 GiB string cap"),
            ));
        }
        self.bytes(len, what)
    }
}

/// One metadata string worth inspecting: key, the value's offset, the text.
#[derive(Debug, Clone)]
pub struct TextValue<'a> {
    pub key: String,
    pub offset: u64,
    pub text: &'a str,
}

/// One tensor info as ggml reads it.
#[derive(Debug, Clone)]
struct TensorInfo {
    name: String,
    offset_at: usize,
    ne: [i64; 4],
    ty: u32,
    data_offset: u64,
    /// Byte size per ggml_nbytes, when the type and shape are valid.
    nbytes: Option<u64>,
}

/// Everything the parse found: problems (non-fatal), an optional fatal stop, and summary facts.
#[derive(Debug, Default)]
pub struct Parsed<'a> {
    pub version: u32,
    pub big_endian: bool,
    pub n_tensors: u64,
    pub n_kv: u64,
    pub problems: Vec<Stop>,
    pub fatal: Option<Stop>,
    pub texts: Vec<TextValue<'a>>,
    pub data_bytes: u64,
    /// File offset just past the last byte of tensor data any tensor reads (0 when none
    /// could be placed). llama.cpp checks each tensor against the file's size, not the padded
    /// total, so a file may end here, before the last tensor's padding.
    pub data_end: u64,
}

/// Parses a GGUF file by ggml's rules. Never panics; never reads tensor data.
pub fn parse(data: &[u8]) -> Parsed<'_> {
    let mut p = Parsed::default();
    if let Err(s) = parse_into(data, &mut p) {
        p.fatal = Some(s);
    }
    p
}

fn parse_into<'a>(data: &'a [u8], p: &mut Parsed<'a>) -> Result<(), Stop> {
    let mut r = Reader {
        inner: ByteReader::new(data),
        big_endian: false,
    };
    let magic = r.bytes(4, "magic")?;
    if magic != b"GGUF" {
        return Err(stop(Rule::GgufVersion, 0, "magic is not `GGUF`"));
    }
    let raw = r.u32("version")?;
    // ggml: `(version & 0x0000FFFF) == 0` means the other byte order.
    p.big_endian = raw & 0xFFFF == 0 && raw != 0;
    p.version = if p.big_endian { raw.swap_bytes() } else { raw };
    r.big_endian = p.big_endian;
    match p.version {
        2 | 3 => {}
        1 => {
            return Err(stop(
                Rule::GgufVersion,
                4,
                "GGUF v1 is no longer supported by ggml",
            ));
        }
        v => {
            return Err(stop(
                Rule::GgufVersion,
                4,
                format!("GGUF version {v} is not supported"),
            ));
        }
    }
    let counts_at = r.pos();
    p.n_tensors = r.u64("tensor count")?;
    p.n_kv = r.u64("metadata count")?;
    // Each KV needs at least a key length and a type (12 bytes); each tensor info at least
    // name length, n_dims, type and offset (24 bytes). ggml also rejects counts past
    // INT64_MAX / sizeof(entry).
    let need = p
        .n_kv
        .checked_mul(12)
        .and_then(|a| p.n_tensors.checked_mul(24).and_then(|b| a.checked_add(b)));
    let implausible = need.is_none() || p.n_kv > MAX_KV || p.n_tensors > MAX_TENSORS;
    if need.is_none_or(|need| need > r.left()) || p.n_tensors > i64::MAX as u64 {
        // Counts no file could hold (their minimum size overflows, or over the limits) are
        // the heap-overflow shape; plausible counts the bytes left cannot hold are a cut.
        return Err(stop(
            if implausible {
                Rule::GgufOutOfBounds
            } else {
                Rule::Truncated
            },
            counts_at,
            format!(
                "{} tensors and {} metadata entries cannot fit in the {} bytes left",
                p.n_tensors,
                p.n_kv,
                r.left()
            ),
        ));
    }
    if p.n_kv > MAX_KV || p.n_tensors > MAX_TENSORS {
        return Err(stop(
            Rule::GgufLimit,
            counts_at,
            format!(
                "{} tensors and {} metadata entries: over Airlock's limits ({MAX_TENSORS} and {MAX_KV})",
                p.n_tensors, p.n_kv
            ),
        ));
    }
    let alignment = read_metadata(&mut r, p)?;
    let tensors = read_tensor_infos(&mut r, p)?;
    check_data_layout(data.len() as u64, r.pos() as u64, alignment, &tensors, p);
    Ok(())
}

/// Reads every KV pair; returns the alignment in force.
fn read_metadata<'a>(r: &mut Reader<'a>, p: &mut Parsed<'a>) -> Result<u64, Stop> {
    let mut keys: HashSet<&[u8]> = HashSet::new();
    let mut alignment = DEFAULT_ALIGNMENT;
    for _ in 0..p.n_kv {
        let key_at = r.pos();
        let key = r.string("metadata key")?;
        let shown = String::from_utf8_lossy(key).into_owned();
        if key.is_empty() {
            p.problems
                .push(stop(Rule::GgufBadKey, key_at, "metadata key is empty"));
        } else if !keys.insert(key) {
            p.problems.push(stop(
                Rule::GgufBadKey,
                key_at,
                format!("metadata key `{shown}` appears more than once"),
            ));
        }
        let type_at = r.pos();
        let ty = r.u32("value type")?;
        let value_at = r.pos();
        match ty {
            T_ARRAY => read_array(r, &shown)?,
            T_STRING => {
                let s = r.string(&format!("value of `{shown}`"))?;
                if let Ok(text) = std::str::from_utf8(s) {
                    p.texts.push(TextValue {
                        key: shown.clone(),
                        offset: value_at as u64,
                        text,
                    });
                }
            }
            t => {
                let Some(size) = fixed_size(t) else {
                    return Err(stop(
                        Rule::GgufBadValueType,
                        type_at,
                        format!("metadata `{shown}` has unknown value type {t}"),
                    ));
                };
                let bytes = r.bytes(size, &format!("value of `{shown}`"))?;
                if key == b"general.alignment" {
                    alignment = check_alignment(t, bytes, r.big_endian, value_at, p);
                }
            }
        }
        if key == b"general.alignment" && (ty == T_ARRAY || ty == T_STRING) {
            p.problems.push(stop(
                Rule::GgufBadAlignment,
                type_at,
                format!("`general.alignment` has type {ty}, not u32"),
            ));
        }
    }
    Ok(alignment)
}

/// `general.alignment` must be a u32, non-zero power of two. Returns the alignment to use.
fn check_alignment(ty: u32, bytes: &[u8], be: bool, at: usize, p: &mut Parsed) -> u64 {
    if ty != T_U32 {
        p.problems.push(stop(
            Rule::GgufBadAlignment,
            at,
            format!("`general.alignment` has type {ty}, not u32"),
        ));
        return DEFAULT_ALIGNMENT;
    }
    // `bytes` holds the value's 4 bytes (read by the caller); 0 if not, which is refused.
    let a = ByteReader::new(bytes).read_u32(be).unwrap_or(0);
    if a == 0 || !a.is_power_of_two() {
        p.problems.push(stop(
            Rule::GgufBadAlignment,
            at,
            format!("`general.alignment` is {a}, not a power of two"),
        ));
        return DEFAULT_ALIGNMENT;
    }
    u64::from(a)
}

/// An array value: element type (no nested arrays), count ≤ 1 Gi and fitting the bytes left.
fn read_array(r: &mut Reader, key: &str) -> Result<(), Stop> {
    let at = r.pos();
    let ty = r.u32("array element type")?;
    let count_at = r.pos();
    let count = r.u64("array count")?;
    if ty == T_ARRAY {
        return Err(stop(
            Rule::GgufBadValueType,
            at,
            format!("metadata `{key}` is an array of arrays"),
        ));
    }
    if count > MAX_ARRAY_LEN {
        return Err(stop(
            Rule::GgufOutOfBounds,
            count_at,
            format!("metadata `{key}` declares {count} elements, over ggml's 1 Gi cap"),
        ));
    }
    if ty == T_STRING {
        // Each string needs at least its 8-byte length.
        if count.saturating_mul(8) > r.left() {
            // Within ggml's cap (checked above): the file was cut.
            return Err(stop(
                Rule::Truncated,
                count_at,
                format!(
                    "metadata `{key}` declares {count} strings; only {} bytes left",
                    r.left()
                ),
            ));
        }
        for _ in 0..count {
            r.string(&format!("element of `{key}`"))?;
        }
        return Ok(());
    }
    let Some(size) = fixed_size(ty) else {
        return Err(stop(
            Rule::GgufBadValueType,
            at,
            format!("metadata `{key}` has unknown array element type {ty}"),
        ));
    };
    let total = count.saturating_mul(size);
    if total > r.left() {
        // Within ggml's cap (checked above): the file was cut.
        return Err(stop(
            Rule::Truncated,
            count_at,
            format!(
                "metadata `{key}` declares {count} elements ({total} bytes); only {} bytes left",
                r.left()
            ),
        ));
    }
    r.bytes(total, "array")?;
    Ok(())
}

/// Reads every tensor info and applies ggml's per-tensor checks.
fn read_tensor_infos(r: &mut Reader, p: &mut Parsed) -> Result<Vec<TensorInfo>, Stop> {
    let mut names: HashSet<Vec<u8>> = HashSet::new();
    let mut out = Vec::new();
    for _ in 0..p.n_tensors {
        let at = r.pos();
        let raw_name = r.string("tensor name")?;
        let name = String::from_utf8_lossy(raw_name).into_owned();
        if raw_name.len() >= MAX_NAME {
            p.problems.push(stop(
                Rule::GgufTensorName,
                at,
                format!(
                    "tensor name `{}` is {} bytes; ggml's limit is {}",
                    name.chars().take(40).collect::<String>(),
                    raw_name.len(),
                    MAX_NAME - 1
                ),
            ));
        }
        if !names.insert(raw_name.to_vec()) {
            p.problems.push(stop(
                Rule::GgufDuplicateTensor,
                at,
                format!("tensor `{name}` appears more than once"),
            ));
        }
        let dims_at = r.pos();
        let n_dims = r.u32("n_dims")?;
        if n_dims > MAX_DIMS {
            p.problems.push(stop(
                Rule::GgufBadShape,
                dims_at,
                format!("tensor `{name}` has {n_dims} dimensions; ggml allows {MAX_DIMS}"),
            ));
        }
        if u64::from(n_dims).saturating_mul(8) > r.left() {
            return Err(stop(
                if n_dims > MAX_DIMS {
                    Rule::GgufOutOfBounds
                } else {
                    Rule::Truncated
                },
                dims_at,
                format!(
                    "tensor `{name}` declares {n_dims} dimensions; only {} bytes left",
                    r.left()
                ),
            ));
        }
        let mut ne = [1i64; 4];
        let mut shape_ok = n_dims <= MAX_DIMS;
        for i in 0..n_dims as usize {
            let d = r.u64("dimension")? as i64;
            if d < 0 {
                shape_ok = false;
                p.problems.push(stop(
                    Rule::GgufBadShape,
                    dims_at,
                    format!("tensor `{name}` dimension {i} is negative ({d})"),
                ));
            }
            if let Some(slot) = ne.get_mut(i) {
                *slot = d;
            }
        }
        if shape_ok && ne[1..].contains(&0) {
            // gguf.cpp checks `INT64_MAX/ne[1] <= ne[0]` (and ne[2], ne[3]) before anything
            // else: a zero there is an integer division by zero (SIGFPE) in the loader.
            shape_ok = false;
            p.problems.push(stop(
                Rule::GgufBadShape,
                dims_at,
                format!(
                    "tensor `{name}` has a zero in dimensions 1-3 {ne:?}; ggml's element-count check divides by it"
                ),
            ));
        }
        let elements = ne
            .iter()
            .try_fold(1i64, |acc, &d| acc.checked_mul(d.max(0)));
        if shape_ok && elements.is_none() {
            shape_ok = false;
            p.problems.push(stop(
                Rule::GgufBadShape,
                dims_at,
                format!("tensor `{name}` element count {ne:?} overflows int64"),
            ));
        }
        let type_at = r.pos();
        let ty = r.u32("tensor type")?;
        let offset_at = r.pos();
        let data_offset = r.u64("tensor offset")?;
        let nbytes = tensor_nbytes(&name, ty, &ne, type_at, shape_ok, p).filter(|_| shape_ok);
        out.push(TensorInfo {
            name,
            offset_at,
            ne,
            ty,
            data_offset,
            nbytes,
        });
    }
    Ok(out)
}

/// ggml's type checks and `ggml_nbytes` for a contiguous tensor.
fn tensor_nbytes(
    name: &str,
    ty: u32,
    ne: &[i64; 4],
    at: usize,
    shape_ok: bool,
    p: &mut Parsed,
) -> Option<u64> {
    let Some((type_name, block, size)) = ggml_type(ty) else {
        p.problems.push(stop(
            Rule::GgufBadTensorType,
            at,
            format!("tensor `{name}` has ggml type {ty}, which ggml does not know or has removed"),
        ));
        return None;
    };
    let ne0 = ne[0].max(0) as u64;
    if ne0 % block != 0 {
        p.problems.push(stop(
            Rule::GgufBadTensorType,
            at,
            format!("tensor `{name}`: first dimension {ne0} is not a multiple of {type_name}'s block size {block}"),
        ));
        return None;
    }
    if ne.iter().any(|&d| d <= 0) {
        return Some(0);
    }
    let rows = ne[1..]
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64));
    let bytes = rows.and_then(|rows| (ne0 / block).checked_mul(size)?.checked_mul(rows));
    if bytes.is_none() && shape_ok {
        // The element count fits int64 but the byte strides ggml computes do not fit
        // size_t: they wrap, and ggml_nbytes comes out smaller than the data (heap overflow).
        p.problems.push(stop(
            Rule::GgufBadShape,
            at,
            format!("tensor `{name}` ({type_name} {ne:?}) has a byte size that overflows 64 bits"),
        ));
    }
    bytes
}

/// Offsets must equal the running padded total; data must lie inside the file.
fn check_data_layout(
    file_len: u64,
    infos_end: u64,
    alignment: u64,
    tensors: &[TensorInfo],
    p: &mut Parsed,
) {
    let pad = |x: u64| x.checked_add(alignment - 1).map(|v| v & !(alignment - 1));
    let Some(data_start) = pad(infos_end) else {
        return;
    };
    let mut running = 0u64;
    for t in tensors {
        let Some(nbytes) = t.nbytes else {
            // Size unknown: the offsets after this one cannot be checked.
            return;
        };
        if t.data_offset != running {
            p.problems.push(stop(
                Rule::GgufBadOffset,
                t.offset_at,
                format!(
                    "tensor `{}` ({} {:?}) has offset {}, expected {running}",
                    t.name,
                    ggml_type(t.ty).map_or("?", |x| x.0),
                    t.ne,
                    t.data_offset
                ),
            ));
        }
        let end = data_start
            .checked_add(t.data_offset)
            .and_then(|s| s.checked_add(nbytes));
        if let Some(e) = end {
            p.data_end = p.data_end.max(e);
        }
        if end.is_none_or(|e| e > file_len) {
            // Data placed where ggml's writer places it that merely runs past the end is a
            // cut file; an extent that overflows or a misplaced offset is not.
            let cut = end.is_some() && t.data_offset == running;
            p.problems.push(stop(
                if cut {
                    Rule::Truncated
                } else {
                    Rule::GgufDataOutsideFile
                },
                t.offset_at,
                format!(
                    "tensor `{}` data [{}, +{nbytes}) after the data start {data_start} runs past the {file_len}-byte file",
                    t.name, t.data_offset
                ),
            ));
        }
        let Some(next) = pad(nbytes).and_then(|n| running.checked_add(n)) else {
            return;
        };
        running = next;
    }
    p.data_bytes = running;
}

/// True for keys whose value is a chat template.
pub fn is_template_key(key: &str) -> bool {
    key == "tokenizer.chat_template" || key.starts_with("tokenizer.chat_template.")
}

/// Analyses one template and reports its hazards. Returns true when it is clean.
fn report_template(ctx: &mut Ctx, key: &str, offset: u64, text: &str) -> bool {
    if text.len() > MAX_TEMPLATE_LEN {
        ctx.report(
            Finding::new(
                Rule::GgufTemplateUnparsed,
                format!(
                    "template `{key}` is {} bytes, over the {MAX_TEMPLATE_LEN}-byte analysis limit; not analysed",
                    text.len()
                ),
            )
            .at(offset),
        );
        return false;
    }
    let analysis = template::analyse(text);
    let mut clean = true;
    if let Some(err) = &analysis.parse_error {
        clean = false;
        ctx.report(
            Finding::new(
                Rule::GgufTemplateUnparsed,
                format!("template `{key}` does not parse as Jinja: {err}"),
            )
            .at(offset),
        );
    }
    for h in &analysis.hazards {
        clean = false;
        let severity = if h.dangerous {
            crate::rules::Severity::Dangerous
        } else {
            crate::rules::Severity::Suspicious
        };
        ctx.report(
            Finding::new(
                Rule::GgufTemplateDangerous,
                format!("template `{key}` {}: `{}`", h.reason, h.expression),
            )
            .with_severity(severity)
            .at(offset + h.offset as u64),
        );
    }
    clean
}

/// Scans a GGUF file: reference checks, chat templates, metadata text, summary note.
pub fn scan(ctx: &mut Ctx, data: &[u8]) -> Format {
    let parsed = parse(data);
    for s in parsed.problems.iter().chain(parsed.fatal.iter()) {
        ctx.report(Finding::new(s.rule, s.message.clone()).at(s.offset));
    }
    let mut templates = 0;
    let mut templates_clean = true;
    let mut text_clean = true;
    for t in &parsed.texts {
        if is_template_key(&t.key) || t.text.contains("{%") || t.text.contains("{{") {
            templates += 1;
            templates_clean &= report_template(ctx, &t.key, t.offset + 8, t.text);
        } else {
            text_clean &= super::metadata_text::report_text_hazards(
                ctx,
                Rule::GgufMetadataCode,
                Rule::GgufMetadataUrl,
                Rule::GgufMetadataPickle,
                &format!("metadata `{}`", t.key),
                t.text,
                t.offset + 8,
            );
        }
    }
    let order = if parsed.big_endian {
        "big-endian"
    } else {
        "little-endian"
    };
    let cut_only = parsed
        .problems
        .iter()
        .chain(parsed.fatal.iter())
        .all(|s| s.rule == Rule::Truncated);
    let header = if cut_only && (parsed.fatal.is_some() || !parsed.problems.is_empty()) {
        "file cut short"
    } else if parsed.fatal.is_some() {
        "header unreadable"
    } else if parsed.problems.is_empty() {
        "header valid"
    } else {
        "header violates ggml's checks"
    };
    let tmpl = match (templates, templates_clean) {
        (0, _) => "no chat template".to_string(),
        (n, true) => format!("{n} chat template{} safe", if n == 1 { "" } else { "s" }),
        (n, false) => format!("{n} chat template{} flagged", if n == 1 { "" } else { "s" }),
    };
    ctx.note(format!(
        "v{} {order}, {header}, {}, {}, {}, {tmpl}{}",
        parsed.version,
        count(parsed.n_tensors, "tensor"),
        count(parsed.n_kv, "metadata key"),
        crate::text::human_bytes(parsed.data_bytes),
        if text_clean { "" } else { ", metadata flagged" }
    ));
    Format::Gguf
}

fn count(n: u64, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests;
