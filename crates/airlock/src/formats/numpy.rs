//! NumPy `.npy` files, read exactly as numpy's `_read_array_header` (`lib/_format_impl.py`).
//!
//! Layout: `\x93NUMPY`, major, minor, header length (u16 LE for 1.0, u32 LE for 2.0 and 3.0),
//! the header (latin-1 for 1.0/2.0, UTF-8 for 3.0), then the data. numpy refuses a header
//! over 10,000 characters (`max_header_size`) *unless* `allow_pickle=True`, which sets
//! `max_header_size = 2**64` (`numpy.load` and `read_array`): the one load that unpickles an
//! object array's body also reads any header. So headers are read whatever their length, as
//! `numpy.load(allow_pickle=True)` reads them; one over the cap is still reported (NPY001,
//! dangerous: a length over the reader's cap), and an object array behind it is scanned. The header is a Python literal evaluated with
//! `ast.literal_eval`; here a small bounded literal parser reads the subset that can make a
//! valid header (dicts, tuples, lists, strings, ints, bools, None; depth-limited). numpy then
//! requires exactly the keys `descr`, `fortran_order`, `shape`: a tuple of ints, a bool, and a
//! dtype description (a string such as `'<f4'`, or a list of fields for structured dtypes).
//!
//! An object dtype (`'|O'`, or a structured dtype with an object field at any depth) means the
//! data is a pickle that `numpy.load(allow_pickle=True)` unpickles: it is reported (NPY002)
//! and scanned as pickle bytes. For other dtypes, data shorter than `prod(shape) × itemsize`
//! makes numpy raise (NPY001); bytes after the data are never read by numpy and are reported
//! as NPY003 (not scanned: no loader interprets them).

use crate::ctx::Ctx;
use crate::format::Format;
use crate::report::Finding;
use crate::rules::Rule;

const MAGIC: &[u8] = b"\x93NUMPY";
use crate::limits::caps::numpy::MAX_DEPTH;
pub use crate::limits::caps::numpy::MAX_HEADER_CHARS;

/// A parsed `.npy` header.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyHeader {
    pub version: (u8, u8),
    /// Offset of the first data byte.
    pub data_offset: usize,
    pub fortran_order: bool,
    /// The shape as numpy reads it (Python ints; bools count as 0/1, as in Python).
    pub shape: Vec<i128>,
    /// Whether the dtype holds Python objects (data is a pickle).
    pub has_object: bool,
    /// Bytes per element when the dtype is understood here.
    pub itemsize: Option<u64>,
    /// Characters in the decoded header (numpy's `len(header)`).
    pub header_chars: usize,
}

impl NpyHeader {
    /// Bytes of array data numpy reads: `prod(shape) × itemsize` (an empty shape is a scalar),
    /// `None` when the dtype's size is unknown or the product overflows.
    pub fn data_len(&self) -> Option<u64> {
        let count = self
            .shape
            .iter()
            .try_fold(1i128, |acc, &d| acc.checked_mul(d))?;
        let count = u64::try_from(count).ok()?;
        count.checked_mul(self.itemsize?)
    }
}

/// Why a header is not one numpy would load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyError(pub String);

impl std::fmt::Display for NpyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, NpyError> {
    Err(NpyError(msg.into()))
}

/// Scans a `.npy` file. Returns "npy".
pub fn scan(ctx: &mut Ctx, data: &[u8]) -> Format {
    let header = match parse_header(data) {
        Ok(header) => header,
        Err(e) => {
            let mut finding = Finding::new(
                Rule::NumpyHeader,
                format!("numpy.load would refuse this file: {e}"),
            );
            if is_over_cap(&e) {
                finding = finding.with_severity(crate::rules::Severity::Dangerous);
            }
            ctx.report(finding);
            if header_cut_short(data) {
                ctx.report(Finding::new(
                    Rule::Truncated,
                    format!("the {}-byte file ends inside its .npy header", data.len()),
                ));
            }
            return Format::Npy;
        }
    };
    if header.header_chars > MAX_HEADER_CHARS {
        ctx.report(
            Finding::new(
                Rule::NumpyHeader,
                format!(
                    "{}; numpy.load refuses it unless allow_pickle=True, which lifts the cap and reads it (as here)",
                    over_cap_message(header.header_chars)
                ),
            )
            .with_severity(crate::rules::Severity::Dangerous),
        );
    }
    let body = data.get(header.data_offset..).unwrap_or_default();
    ctx.note(format!("shape {:?}", header.shape));
    if header.has_object {
        ctx.report(
            Finding::new(
                Rule::NumpyObjectArray,
                "object dtype: the data is a pickle, unpickled by numpy.load(allow_pickle=True)",
            )
            .at(header.data_offset as u64),
        );
        crate::formats::pickle_stream::scan_pickles(ctx, body);
        return Format::Npy;
    }
    check_data_len(ctx, &header, body.len() as u64);
    Format::Npy
}

/// The error for a header over numpy's `max_header_size`.
fn over_cap_message(chars: usize) -> String {
    format!("header is {chars} characters, over numpy's {MAX_HEADER_CHARS}")
}

/// True when `e` is the header-size cap: numpy has it to keep `ast.literal_eval` from
/// spending unbounded time on a crafted header, so a file over it targets readers (dangerous).
fn is_over_cap(e: &NpyError) -> bool {
    e.0.starts_with("header is ") && e.0.contains(&format!("over numpy's {MAX_HEADER_CHARS}"))
}

/// True when a `.npy` file ends before the end of the header its first bytes declare (the
/// version, the header length, or the header itself is cut off).
fn header_cut_short(data: &[u8]) -> bool {
    let len_size = match data.get(6..8) {
        None => return true,
        Some([1, 0]) => 2,
        Some(_) => 4,
    };
    let Some(len_bytes) = data.get(8..8 + len_size) else {
        return true;
    };
    let header_len = len_bytes
        .iter()
        .rev()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    (data.len() as u64) < 8 + len_size as u64 + header_len
}

fn check_data_len(ctx: &mut Ctx, header: &NpyHeader, present: u64) {
    let Some(itemsize) = header.itemsize else {
        return;
    };
    match header.data_len() {
        // A size over any cap targets readers that allocate what the shape says.
        None => ctx.report(
            Finding::new(
                Rule::NumpyHeader,
                format!(
                    "shape {:?} × itemsize {itemsize} is negative or overflows; numpy.load would refuse it",
                    header.shape
                ),
            )
            .with_severity(crate::rules::Severity::Dangerous),
        ),
        Some(needed) if needed > present => {
            ctx.report(Finding::new(
                Rule::NumpyHeader,
                format!(
                    "the array needs {needed} bytes of data but only {present} follow the header"
                ),
            ));
            ctx.report(Finding::new(
                Rule::Truncated,
                format!("the file ends {present} bytes into {needed} bytes of array data"),
            ));
        }
        Some(needed) if needed < present => ctx.report(
            Finding::new(
                Rule::NumpyTrailingData,
                format!(
                    "{} bytes follow the {needed} bytes of array data; numpy.load never reads them",
                    present - needed
                ),
            )
            .at(header.data_offset as u64 + needed),
        ),
        Some(_) => {}
    }
}

/// Parses the magic, version and header dict exactly as numpy's `read_magic` and
/// `_read_array_header` do under `numpy.load(allow_pickle=True)`: the header length is not
/// capped there (see the module docs); [`NpyHeader::header_chars`] says how long it was.
pub fn parse_header(data: &[u8]) -> Result<NpyHeader, NpyError> {
    if data.get(..MAGIC.len()) != Some(MAGIC) {
        return err("the magic string is not \\x93NUMPY");
    }
    let (major, minor) = match data.get(6..8) {
        Some(&[major, minor]) => (major, minor),
        _ => return err("file ends inside the magic string"),
    };
    let (len_size, utf8) = match (major, minor) {
        (1, 0) => (2, false),
        (2, 0) | (3, 0) => (4, major == 3),
        _ => return err(format!("invalid version ({major}, {minor})")),
    };
    let len_bytes = data
        .get(8..8 + len_size)
        .ok_or(NpyError("file ends inside the header length".into()))?;
    let header_len = len_bytes
        .iter()
        .rev()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    let start = 8 + len_size;
    let raw = start
        .checked_add(header_len)
        .and_then(|end| data.get(start..end))
        .ok_or(NpyError(format!(
            "header of {header_len} bytes runs past the end of the file"
        )))?;
    let text: String = if utf8 {
        std::str::from_utf8(raw)
            .map_err(|_| NpyError("version 3.0 header is not UTF-8".into()))?
            .to_owned()
    } else {
        raw.iter().map(|&b| char::from(b)).collect()
    };
    let chars = text.chars().count();
    let over_cap = |e: String| {
        if chars > MAX_HEADER_CHARS {
            NpyError(format!("{}, and {e}", over_cap_message(chars)))
        } else {
            NpyError(e)
        }
    };
    let value = literal::parse(&text, major <= 2)
        .map_err(|e| over_cap(format!("cannot parse header: {e}")))?;
    let (descr, fortran_order, shape) = header_fields(value).map_err(|e| over_cap(e.0))?;
    let (has_object, itemsize) = describe_dtype(&descr, 0).map_err(|e| over_cap(e.0))?;
    Ok(NpyHeader {
        version: (major, minor),
        data_offset: start + header_len,
        fortran_order,
        shape,
        has_object,
        itemsize,
        header_chars: chars,
    })
}

use literal::Value;

/// Checks the dict's keys and value types the way `_read_array_header` does.
fn header_fields(value: Value) -> Result<(Value, bool, Vec<i128>), NpyError> {
    let Value::Dict(pairs) = value else {
        return err("header is not a dictionary");
    };
    // Python dict literal semantics: the last duplicate key wins.
    let get = |key: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| *k == Value::Str(key.into()))
            .map(|(_, v)| v.clone())
    };
    let mut keys: Vec<String> = pairs
        .iter()
        .map(|(k, _)| match k {
            Value::Str(s) => s.clone(),
            other => format!("{other:?}"),
        })
        .collect();
    keys.sort();
    keys.dedup();
    if keys != ["descr", "fortran_order", "shape"] {
        return err(format!(
            "header does not contain the correct keys: {keys:?}"
        ));
    }
    let shape = match get("shape") {
        Some(Value::Tuple(items)) => items
            .iter()
            .map(|v| match v {
                Value::Int(i) => Ok(*i),
                Value::Bool(b) => Ok(i128::from(*b)),
                _ => err("shape is not a tuple of ints"),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return err("shape is not a tuple of ints"),
    };
    let fortran_order = match get("fortran_order") {
        Some(Value::Bool(b)) => b,
        _ => return err("fortran_order is not a bool"),
    };
    let descr = get("descr").ok_or(NpyError("no descr".into()))?;
    Ok((descr, fortran_order, shape))
}

/// Whether a dtype description holds objects, and its itemsize when understood. Follows
/// `descr_to_dtype`: a string is `numpy.dtype(str)`; a tuple is `(descr, shape)`; a list holds
/// `(name, descr)` or `(name, descr, shape)` fields.
fn describe_dtype(descr: &Value, depth: usize) -> Result<(bool, Option<u64>), NpyError> {
    if depth > MAX_DEPTH {
        return err("dtype description nests too deeply");
    }
    match descr {
        Value::Str(s) => Ok(dtype_string(s)),
        Value::Tuple(items) => match items.as_slice() {
            [inner, shape] => {
                let (object, size) = describe_dtype(inner, depth + 1)?;
                Ok((
                    object,
                    size.and_then(|s| s.checked_mul(shape_count(shape)?)),
                ))
            }
            _ => err("descr tuple is not (dtype, shape)"),
        },
        Value::List(fields) => {
            let mut object = false;
            let mut total = Some(0u64);
            for field in fields {
                let (inner, shape) = match field {
                    Value::Tuple(parts) | Value::List(parts) => match parts.as_slice() {
                        [_name, inner] => (inner, None),
                        [_name, inner, shape] => (inner, Some(shape)),
                        _ => return err("descr field is not (name, dtype[, shape])"),
                    },
                    _ => return err("descr field is not a tuple"),
                };
                let (o, size) = describe_dtype(inner, depth + 1)?;
                object |= o;
                let size = match shape {
                    Some(shape) => size.and_then(|s| s.checked_mul(shape_count(shape)?)),
                    None => size,
                };
                total = total.zip(size).and_then(|(t, s)| t.checked_add(s));
            }
            Ok((object, total))
        }
        _ => err("descr is not a valid dtype descriptor"),
    }
}

/// Element count of a subarray shape (an int or a tuple of ints).
fn shape_count(shape: &Value) -> Option<u64> {
    match shape {
        Value::Int(i) => u64::try_from(*i).ok(),
        Value::Tuple(items) => items.iter().try_fold(1u64, |acc, v| match v {
            Value::Int(i) => acc.checked_mul(u64::try_from(*i).ok()?),
            _ => None,
        }),
        _ => None,
    }
}

/// `numpy.dtype(s)` for the strings `.npy` writers use: an optional byte order, a type code
/// and a size (`'<f4'`, `'|O'`, `'<U10'`, `'<M8[ns]'`), comma-separated lists (`'i4,O'`),
/// and type names. Anything not understood has no known itemsize; it is treated as holding
/// objects when it names the object type anywhere, so no pickle is skipped.
fn dtype_string(s: &str) -> (bool, Option<u64>) {
    if s.contains(',') {
        return s
            .split(',')
            .map(|part| dtype_string(part.trim()))
            .fold((false, Some(0)), |(o, total), (po, size)| {
                (o || po, total.zip(size).and_then(|(t, s)| t.checked_add(s)))
            });
    }
    let code = s.trim_start_matches(['<', '>', '|', '=']);
    if matches!(code, "O" | "O8" | "O4" | "object" | "object_" | "object0") {
        return (true, Some(8));
    }
    match simple_itemsize(code) {
        Some(size) => (false, Some(size)),
        None => (s.contains('O') || s.contains("object"), None),
    }
}

fn simple_itemsize(code: &str) -> Option<u64> {
    let code = code.split('[').next().unwrap_or(code);
    let mut chars = code.chars();
    let kind = chars.next()?;
    let digits = chars.as_str();
    let count = if digits.is_empty() {
        None
    } else {
        Some(digits.parse::<u64>().ok()?)
    };
    let fixed = |size: u64| match count {
        None => Some(size),
        Some(n) if n == size => Some(size),
        Some(_) => None,
    };
    match kind {
        '?' | 'b' | 'B' => fixed(1),
        'h' | 'H' | 'e' => fixed(2),
        'f' | 'F' if count.is_none() => Some(if kind == 'f' { 4 } else { 8 }),
        'd' | 'l' | 'L' | 'q' | 'Q' => fixed(8),
        'D' | 'g' => fixed(16),
        'G' => fixed(32),
        'i' | 'I' if count.is_none() => Some(4),
        'i' | 'u' | 'I' => count.filter(|n| [1, 2, 4, 8].contains(n)),
        'f' => count.filter(|n| [2, 4, 8, 16].contains(n)),
        'c' => count.filter(|n| [8, 16, 32].contains(n)),
        'F' => count.filter(|n| [8].contains(n)),
        'M' | 'm' => fixed(8),
        'S' | 'a' | 'V' => Some(count.unwrap_or(0)),
        'U' => count.unwrap_or(0).checked_mul(4),
        _ => None,
    }
}

/// A bounded parser for the Python literals `ast.literal_eval` accepts in a `.npy` header.
pub mod literal {
    /// A parsed literal. `Other` stands for literals numpy would evaluate (floats, sets,
    /// bytes, ...) but that can never be a valid header value.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Value {
        Dict(Vec<(Value, Value)>),
        Tuple(Vec<Value>),
        List(Vec<Value>),
        Str(String),
        Int(i128),
        Bool(bool),
        None,
        Other,
    }

    /// Parses `text` as one Python literal (leading spaces and tabs stripped, as
    /// `literal_eval` does; comments and surrounding whitespace allowed). `long_suffix` also
    /// accepts Python 2's `10L` integers, which numpy filters out for 1.0/2.0 headers.
    pub fn parse(text: &str, long_suffix: bool) -> Result<Value, String> {
        let mut p = Parser {
            s: text.trim_start_matches([' ', '\t']).as_bytes(),
            at: 0,
            long_suffix,
        };
        let v = p.value(0)?;
        p.skip_space();
        if p.at != p.s.len() {
            return Err(format!("unexpected text at offset {}", p.at));
        }
        Ok(v)
    }

    struct Parser<'a> {
        s: &'a [u8],
        at: usize,
        long_suffix: bool,
    }

    impl Parser<'_> {
        fn peek(&self) -> Option<u8> {
            self.s.get(self.at).copied()
        }

        fn skip_space(&mut self) {
            while let Some(c) = self.peek() {
                match c {
                    b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' => self.at += 1,
                    b'#' => {
                        while self.peek().is_some_and(|c| c != b'\n') {
                            self.at += 1;
                        }
                    }
                    b'\\' if self.s.get(self.at + 1) == Some(&b'\n') => self.at += 2,
                    _ => return,
                }
            }
        }

        fn eat(&mut self, c: u8) -> bool {
            self.skip_space();
            if self.peek() == Some(c) {
                self.at += 1;
                true
            } else {
                false
            }
        }

        fn value(&mut self, depth: usize) -> Result<Value, String> {
            if depth > super::MAX_DEPTH {
                return Err("nested too deeply".into());
            }
            self.skip_space();
            match self.peek().ok_or("unexpected end")? {
                b'{' => self.dict_or_set(depth),
                b'(' => self.paren(depth),
                b'[' => {
                    self.at += 1;
                    Ok(Value::List(self.items(b']', depth)?.0))
                }
                b'\'' | b'"' => self.strings(),
                b'-' | b'+' => {
                    let negative = self.peek() == Some(b'-');
                    self.at += 1;
                    match self.value(depth + 1)? {
                        Value::Int(i) if negative => Ok(Value::Int(-i)),
                        Value::Int(i) => Ok(Value::Int(i)),
                        Value::Bool(b) => {
                            Ok(Value::Int(i128::from(b) * if negative { -1 } else { 1 }))
                        }
                        Value::Other => Ok(Value::Other),
                        _ => Err("bad operand for unary sign".into()),
                    }
                }
                b'0'..=b'9' | b'.' => self.number(),
                c if c.is_ascii_alphabetic() || c == b'_' => self.word(),
                c => Err(format!("unexpected character {:?}", char::from(c))),
            }
        }

        /// Comma-separated values up to `close`; also says whether a comma was seen.
        fn items(&mut self, close: u8, depth: usize) -> Result<(Vec<Value>, bool), String> {
            let mut items = Vec::new();
            let mut comma = false;
            loop {
                if self.eat(close) {
                    return Ok((items, comma));
                }
                items.push(self.value(depth + 1)?);
                if self.eat(b',') {
                    comma = true;
                } else if self.eat(close) {
                    return Ok((items, comma));
                } else {
                    return Err(format!("expected ',' at offset {}", self.at));
                }
            }
        }

        fn paren(&mut self, depth: usize) -> Result<Value, String> {
            self.at += 1;
            let (mut items, comma) = self.items(b')', depth)?;
            if items.len() == 1 && !comma {
                Ok(items.remove(0))
            } else {
                Ok(Value::Tuple(items))
            }
        }

        fn dict_or_set(&mut self, depth: usize) -> Result<Value, String> {
            self.at += 1;
            let mut pairs = Vec::new();
            loop {
                if self.eat(b'}') {
                    return Ok(Value::Dict(pairs));
                }
                let key = self.value(depth + 1)?;
                if !self.eat(b':') {
                    if pairs.is_empty() {
                        // A set literal: valid Python, never a valid header.
                        self.skip_set_rest(depth)?;
                        return Ok(Value::Other);
                    }
                    return Err(format!("expected ':' at offset {}", self.at));
                }
                let value = self.value(depth + 1)?;
                pairs.push((key, value));
                if !self.eat(b',') {
                    if self.eat(b'}') {
                        return Ok(Value::Dict(pairs));
                    }
                    return Err(format!("expected ',' or '}}' at offset {}", self.at));
                }
            }
        }

        fn skip_set_rest(&mut self, depth: usize) -> Result<(), String> {
            if self.eat(b',') {
                self.items(b'}', depth)?;
                Ok(())
            } else if self.eat(b'}') {
                Ok(())
            } else {
                Err(format!("expected ',' or '}}' at offset {}", self.at))
            }
        }

        /// One or more adjacent string literals, concatenated as Python does.
        fn strings(&mut self) -> Result<Value, String> {
            let mut out = String::new();
            let mut raw = false;
            loop {
                out.push_str(&self.string(raw)?);
                self.skip_space();
                let next = self.s.get(self.at..).unwrap_or_default();
                (raw, self.at) = match next {
                    [b'\'' | b'"', ..] => (false, self.at),
                    [b'u' | b'U', b'\'' | b'"', ..] => (false, self.at + 1),
                    [b'r' | b'R', b'\'' | b'"', ..] => (true, self.at + 1),
                    _ => return Ok(Value::Str(out)),
                };
            }
        }

        fn string(&mut self, raw: bool) -> Result<String, String> {
            let quote = self.peek().ok_or("unexpected end")?;
            let triple = self.s.get(self.at..self.at + 3) == Some(&[quote; 3][..]);
            self.at += if triple { 3 } else { 1 };
            let mut out = Vec::new();
            loop {
                let c = self.peek().ok_or("unterminated string")?;
                if c == quote
                    && (!triple || self.s.get(self.at..self.at + 3) == Some(&[quote; 3][..]))
                {
                    self.at += if triple { 3 } else { 1 };
                    break;
                }
                if c == b'\n' && !triple {
                    return Err("newline in string".into());
                }
                self.at += 1;
                if c == b'\\' && !raw {
                    self.escape(&mut out)?;
                } else if c == b'\\' {
                    out.push(c);
                    if let Some(n) = self.peek() {
                        out.push(n);
                        self.at += 1;
                    }
                } else {
                    out.push(c);
                }
            }
            String::from_utf8(out).map_err(|_| "string is not UTF-8".into())
        }

        fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
            let c = self.peek().ok_or("unterminated escape")?;
            self.at += 1;
            let simple = match c {
                b'\n' => Some(None),
                b'\\' | b'\'' | b'"' => Some(Some(c)),
                b'n' => Some(Some(b'\n')),
                b't' => Some(Some(b'\t')),
                b'r' => Some(Some(b'\r')),
                b'0' => Some(Some(0)),
                _ => None,
            };
            if let Some(byte) = simple {
                out.extend(byte);
                return Ok(());
            }
            let hex_len = match c {
                b'x' => 2,
                b'u' => 4,
                b'U' => 8,
                _ => {
                    out.extend_from_slice(&[b'\\', c]);
                    return Ok(());
                }
            };
            let hex = self
                .s
                .get(self.at..self.at + hex_len)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .and_then(char::from_u32)
                .ok_or("bad escape")?;
            self.at += hex_len;
            let mut buf = [0; 4];
            out.extend_from_slice(hex.encode_utf8(&mut buf).as_bytes());
            Ok(())
        }

        fn number(&mut self) -> Result<Value, String> {
            let start = self.at;
            while self
                .peek()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.')
            {
                self.at += 1;
            }
            let mut text = std::str::from_utf8(self.s.get(start..self.at).unwrap_or_default())
                .map_err(|_| "bad number")?
                .replace('_', "");
            if self.long_suffix && (text.ends_with('L') || text.ends_with('l')) {
                text.pop();
            }
            let (digits, radix) = match text.get(..2) {
                Some("0x" | "0X") => (&text[2..], 16),
                Some("0o" | "0O") => (&text[2..], 8),
                Some("0b" | "0B") => (&text[2..], 2),
                _ => (text.as_str(), 10),
            };
            if let Ok(i) = i128::from_str_radix(digits, radix) {
                return Ok(Value::Int(i));
            }
            if radix == 10 && digits.bytes().all(|c| c.is_ascii_digit()) && !digits.is_empty() {
                // Larger than i128: a valid Python int, never a loadable shape.
                return Ok(Value::Int(i128::MAX));
            }
            if text.parse::<f64>().is_ok() || text.ends_with('j') {
                return Ok(Value::Other);
            }
            Err(format!("bad number {text:?}"))
        }

        fn word(&mut self) -> Result<Value, String> {
            let start = self.at;
            while self
                .peek()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
            {
                self.at += 1;
            }
            let word = self.s.get(start..self.at).unwrap_or_default();
            let is_quote = matches!(self.peek(), Some(b'\'' | b'"'));
            match word {
                b"True" => Ok(Value::Bool(true)),
                b"False" => Ok(Value::Bool(false)),
                b"None" => Ok(Value::None),
                b"u" | b"U" if is_quote => self.strings(),
                b"r" | b"R" if is_quote => Ok(Value::Str(self.string(true)?)),
                b"b" | b"B" | b"br" | b"rb" | b"Br" | b"bR" | b"BR" | b"RB" | b"Rb" | b"rB"
                    if is_quote =>
                {
                    self.string(word.len() == 2)?;
                    Ok(Value::Other)
                }
                _ => Err(format!(
                    "`{}` is not a literal",
                    String::from_utf8_lossy(word)
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::literal::{Value, parse};
    use super::*;
    use crate::report::FileReport;
    use crate::{Scanner, Verdict};

    fn npy(version: (u8, u8), header: &str, data: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[version.0, version.1]);
        let len_size = if version.0 == 1 { 2 } else { 4 };
        let unpadded = MAGIC.len() + 2 + len_size + header.len() + 1;
        let pad = (64 - unpadded % 64) % 64;
        let text = format!("{header}{}\n", " ".repeat(pad));
        let len = text.len() as u32;
        out.extend_from_slice(&len.to_le_bytes()[..len_size]);
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(data);
        out
    }

    fn scan(bytes: &[u8]) -> FileReport {
        Scanner::default().scan_bytes("t.npy", bytes)
    }

    fn codes(r: &FileReport) -> Vec<&'static str> {
        r.findings.iter().map(|f| f.rule.code()).collect()
    }

    const F4: &str = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";

    #[test]
    fn a_plain_array_is_clean() {
        let file = npy((1, 0), F4, &[0; 24]);
        let h = parse_header(&file).unwrap();
        assert_eq!(h.shape, vec![2, 3]);
        assert_eq!(h.itemsize, Some(4));
        assert_eq!(h.data_offset % 64, 0);
        assert!(!h.has_object);
        let report = scan(&file);
        assert_eq!(report.format, "npy");
        assert_eq!(report.verdict, Verdict::Safe);
        assert!(report.findings.is_empty(), "{:?}", report.findings);
    }

    #[test]
    fn versions_two_and_three() {
        assert!(parse_header(&npy((2, 0), F4, &[0; 24])).is_ok());
        let utf8 = "{'descr': [('é', '<i8')], 'fortran_order': True, 'shape': (1,)}";
        let h = parse_header(&npy((3, 0), utf8, &[0; 8])).unwrap();
        assert!(h.fortran_order);
        assert_eq!(h.itemsize, Some(8));
        assert!(parse_header(&npy((4, 0), F4, &[])).is_err());
        assert!(parse_header(&npy((1, 1), F4, &[])).is_err());
    }

    #[test]
    fn object_arrays_are_reported_and_their_pickle_scanned() {
        let pickle = b"\x80\x04\x95\x01\x00\x00\x00\x00\x00\x00\x00N.";
        for descr in [
            "'|O'",
            "'O'",
            "[('a', '<i4'), ('b', '|O')]",
            "[('n', [('x', 'O')])]",
            "('|O', (2,))",
            "'i4,O'",
            "'object'",
        ] {
            let header = format!("{{'descr': {descr}, 'fortran_order': False, 'shape': (1,), }}");
            let file = npy((1, 0), &header, pickle);
            assert!(parse_header(&file).unwrap().has_object, "{descr}");
            let report = scan(&file);
            assert!(codes(&report).contains(&"NPY002"), "{descr}");
        }
    }

    #[test]
    fn structured_and_subarray_itemsizes() {
        let h = "{'descr': [('a', '<f8', (2, 2)), ('', '|V4'), ('s', '<U3')], 'fortran_order': False, 'shape': (3,)}";
        let header = parse_header(&npy((1, 0), h, &[0; 3 * (32 + 4 + 12)])).unwrap();
        assert_eq!(header.itemsize, Some(32 + 4 + 12));
        assert_eq!(header.data_len(), Some(3 * 48));
        let report = scan(&npy((1, 0), h, &[0; 3 * 48]));
        assert!(report.findings.is_empty(), "{:?}", report.findings);
    }

    #[test]
    fn short_and_long_data() {
        let short = scan(&npy((1, 0), F4, &[0; 23]));
        assert!(codes(&short).contains(&"NPY001"));
        let long = scan(&npy((1, 0), F4, &[0; 30]));
        assert_eq!(codes(&long), ["NPY003"]);
        let scalar = "{'descr': '<i8', 'fortran_order': False, 'shape': ()}";
        assert!(scan(&npy((1, 0), scalar, &[0; 8])).findings.is_empty());
        let negative = "{'descr': '<i8', 'fortran_order': False, 'shape': (-1, 2)}";
        assert!(codes(&scan(&npy((1, 0), negative, &[0; 8]))).contains(&"NPY001"));
        let huge = "{'descr': '<i8', 'fortran_order': False, 'shape': (99999999999999999999, 99999999999999999999)}";
        assert!(codes(&scan(&npy((1, 0), huge, &[0; 8]))).contains(&"NPY001"));
    }

    #[test]
    fn malformed_headers_are_npy001() {
        let bad = [
            "{'descr': '<f4', 'fortran_order': False}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}",
            "{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': [2]}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2.0,)}",
            "['descr', 'fortran_order', 'shape']",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)",
            "{'descr': __import__('os'), 'fortran_order': False, 'shape': (2,)}",
            "{b'descr': '<f4', 'fortran_order': False, 'shape': (2,)}",
        ];
        for header in bad {
            let report = scan(&npy((1, 0), header, &[0; 8]));
            assert_eq!(codes(&report), ["NPY001"], "{header}");
        }
        let too_long = format!(
            "{{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}}{}",
            " ".repeat(10_000)
        );
        // Read as numpy.load(allow_pickle=True) reads it: the cap does not apply there.
        let header = parse_header(&npy((2, 0), &too_long, &[])).unwrap();
        assert!(header.header_chars > MAX_HEADER_CHARS);
    }

    /// numpy.load(allow_pickle=True) lifts the 10,000-character cap and unpickles an object
    /// array's body: the body's imports were never reported (the file stopped at NPY001).
    #[test]
    fn an_object_array_behind_an_oversized_header_is_unpickled_and_scanned() {
        let header = format!(
            "{{'descr': '|O', 'fortran_order': False, 'shape': (1,), }}{}",
            " ".repeat(MAX_HEADER_CHARS + 100)
        );
        let body = b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R.";
        let report = scan(&npy((2, 0), &header, body));
        assert_eq!(report.verdict, Verdict::Dangerous, "{:?}", report.findings);
        assert!(
            report
                .imports
                .iter()
                .any(|i| i.qualified() == "posix.system"),
            "{:?}",
            report.imports
        );
        assert!(
            codes(&report).contains(&"NPY001"),
            "the large header is still noted"
        );
        assert!(codes(&report).contains(&"NPY002"));
        // A benign object array behind a large header: NPY001 (dangerous per the malformed
        // rule: a length over the reader's cap), and its data-only pickle scanned.
        let benign = scan(&npy((2, 0), &header, b"\x80\x02]q\x00K\x01a."));
        assert!(benign.imports.is_empty());
        assert!(
            benign
                .findings
                .iter()
                .any(|f| f.rule == Rule::NumpyHeader && f.message.contains("allow_pickle=True")),
            "{:?}",
            benign.findings
        );
    }

    #[test]
    fn python_literal_details() {
        let v = |s| parse(s, true).unwrap();
        assert_eq!(v("(1)"), Value::Int(1));
        assert_eq!(v("(1,)"), Value::Tuple(vec![Value::Int(1)]));
        assert_eq!(
            v("(10L, 0x10)"),
            Value::Tuple(vec![Value::Int(10), Value::Int(16)])
        );
        assert_eq!(v("'a' \"b\" u'c'"), Value::Str("abc".into()));
        assert_eq!(v("'\\x41\\u00e9'"), Value::Str("Aé".into()));
        assert_eq!(v(" \t{1, 2}"), Value::Other);
        assert_eq!(v("{} # comment"), Value::Dict(vec![]));
        assert_eq!(v("-True"), Value::Int(-1));
        assert!(parse("10L", false).is_err());
        assert!(parse("'unterminated", true).is_err());
        let deep = format!("{}{}", "(".repeat(100), ")".repeat(100));
        assert!(parse(&deep, true).is_err());
        // Duplicate keys: the last one wins.
        let dup = "{'descr': '|O', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}";
        assert!(!parse_header(&npy((1, 0), dup, &[0; 4])).unwrap().has_object);
    }

    #[test]
    fn oversized_headers_and_sizes_are_dangerous_and_cuts_are_truncated() {
        let long = format!(
            "{{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': '{}'}}",
            "a".repeat(MAX_HEADER_CHARS)
        );
        let report = scan(&npy((2, 0), &long, &[0; 4]));
        assert_eq!(report.verdict, Verdict::Dangerous, "{:?}", report.findings);
        let overflow = "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }";
        let report = scan(&npy((1, 0), overflow, &[0; 8]));
        assert_eq!(report.verdict, Verdict::Dangerous, "{:?}", report.findings);
        let whole = npy((1, 0), F4, &[0; 24]);
        for cut in [9, 20, whole.len() - 1] {
            let report = scan(&whole[..cut]);
            assert_eq!(report.verdict, Verdict::Unscannable, "cut at {cut}");
            assert!(codes(&report).contains(&"GEN006"), "cut at {cut}");
        }
    }

    #[test]
    fn truncated_files_never_panic_and_are_never_safe() {
        let file = npy(
            (1, 0),
            "{'descr': [('a', '|O')], 'fortran_order': False, 'shape': (1,)}",
            b"\x80\x04N.",
        );
        assert_eq!(scan(&file).verdict, Verdict::Safe);
        // Below the 6-byte magic the bytes are not a .npy file at all ("not a model").
        for cut in 6..file.len() {
            let report = scan(&file[..cut]);
            assert_ne!(report.verdict, Verdict::Safe, "cut at {cut}: {report:?}");
        }
    }
}
