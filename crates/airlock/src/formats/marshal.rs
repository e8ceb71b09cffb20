//! A bounded reader for CPython 3.x `marshal` data, just enough to describe a code object
//! without running it: its bytecode size, the names it references (`co_names`, recursively
//! through nested code objects in `co_consts`) and its string constants.
//!
//! Keras Lambda layers store `marshal.dumps(func.__code__)` (base64). Reporting *which* names a
//! payload references (`__import__`, `system`, `eval`) is what tells a reader what it would do.
//! Why a real reader and not a string grep: marshal strings are length-prefixed, interned and
//! back-referenced (`r` refs), so names shared with earlier objects appear only once in the
//! bytes; following the format is the only way to attribute them to `co_names`.
//!
//! Layouts handled (all put `co_names` as the third object after `co_code` and `co_consts`):
//! 3.0–3.7 (5 int32 header fields), 3.8–3.10 (6), 3.11+ (5). The reader tries each header width
//! and accepts the one followed by a bytes object. Limits: nesting depth, total objects, string
//! length kept; anything else is an `Err`, never a panic.

use std::rc::Rc;

use crate::bytes::{ByteReader, ReadError};

use crate::limits::caps::marshal::MAX_COLLECTED;
use crate::limits::caps::marshal::MAX_DEPTH;
use crate::limits::caps::marshal::MAX_KEPT_STRING;
use crate::limits::caps::marshal::MAX_KEPT_STRINGS;
use crate::limits::caps::marshal::MAX_OBJECTS;
const FLAG_REF: u8 = 0x80;

/// What a code object (and the code objects nested in it) contains.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CodeSummary {
    /// Total bytecode bytes across the code object and nested ones.
    pub bytecode_len: usize,
    /// Number of code objects (1 + nested functions, lambdas, comprehensions).
    pub code_objects: usize,
    /// `co_names` of every code object, in order, without duplicates.
    pub names: Vec<String>,
    /// String constants, without duplicates (truncated to 200 characters).
    pub strings: Vec<String>,
}

#[derive(Debug, Clone)]
enum Obj {
    Str(String),
    /// Shared, so a back-reference (`r`) to a large tuple costs nothing to copy.
    Tuple(Rc<[Obj]>),
    Code,
    Other,
}

struct Reader<'a> {
    bytes: ByteReader<'a>,
    refs: Vec<Obj>,
    objects: usize,
    last_bytes_len: usize,
    summary: CodeSummary,
}

/// Why marshal data could not be read as a code object. Its `Display` is the text the Keras
/// findings quote, so each message is spelled out here (the reports are compared byte for byte
/// by `scripts/identity.py`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarshalError {
    #[error("truncated marshal data")]
    Truncated,
    #[error("object runs past the end (at offset {at})")]
    PastEnd { at: usize },
    #[error("length overflow")]
    LengthOverflow,
    #[error("negative length")]
    NegativeLength,
    #[error("marshal data nested too deeply")]
    TooDeep,
    #[error("too many marshal objects")]
    TooManyObjects,
    #[error("the payload is not a code object")]
    NotCode,
    #[error("reference to an unknown object")]
    UnknownReference,
    #[error("unknown marshal type {:?} at offset {at}", char::from(*kind))]
    UnknownType { kind: u8, at: usize },
    #[error("sequence longer than the data left")]
    SequencePastEnd,
    #[error("code object header matches no known CPython 3 layout")]
    UnknownLayout,
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// Reads a marshal'd code object. Errors say what was wrong and where.
pub fn summarize_code(data: &[u8]) -> Result<CodeSummary, MarshalError> {
    let mut reader = Reader {
        bytes: ByteReader::new(data),
        refs: Vec::new(),
        objects: 0,
        last_bytes_len: 0,
        summary: CodeSummary::default(),
    };
    match reader.object(0)? {
        Obj::Code => Ok(reader.summary),
        _ => Err(MarshalError::NotCode),
    }
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, MarshalError> {
        self.bytes.read_u8().map_err(|_| MarshalError::Truncated)
    }

    fn take(&mut self, n: usize) -> Result<&[u8], MarshalError> {
        let at = self.bytes.position();
        at.checked_add(n).ok_or(MarshalError::LengthOverflow)?;
        self.bytes
            .read_bytes(n)
            .map_err(|_| MarshalError::PastEnd { at })
    }

    fn int32(&mut self) -> Result<i32, MarshalError> {
        let at = self.bytes.position();
        self.bytes
            .read_i32_le()
            .map_err(|_| MarshalError::PastEnd { at })
    }

    fn len32(&mut self) -> Result<usize, MarshalError> {
        usize::try_from(self.int32()?).map_err(|_| MarshalError::NegativeLength)
    }

    fn string(&mut self, n: usize) -> Result<Obj, MarshalError> {
        let bytes = self.take(n)?;
        let text = String::from_utf8_lossy(bytes);
        Ok(Obj::Str(text.chars().take(MAX_KEPT_STRING).collect()))
    }

    fn object(&mut self, depth: usize) -> Result<Obj, MarshalError> {
        if depth > MAX_DEPTH {
            return Err(MarshalError::TooDeep);
        }
        self.objects += 1;
        if self.objects > MAX_OBJECTS {
            return Err(MarshalError::TooManyObjects);
        }
        let code = self.byte()?;
        let slot = (code & FLAG_REF != 0).then(|| {
            self.refs.push(Obj::Other);
            self.refs.len() - 1
        });
        let obj = self.object_body(code & !FLAG_REF, depth)?;
        if let Some(slot) = slot
            && let Some(r) = self.refs.get_mut(slot)
        {
            *r = obj.clone();
        }
        Ok(obj)
    }

    fn object_body(&mut self, kind: u8, depth: usize) -> Result<Obj, MarshalError> {
        Ok(match kind {
            b'0' | b'N' | b'F' | b'T' | b'S' | b'.' => Obj::Other,
            b'i' => self.take(4).map(|_| Obj::Other)?,
            b'I' | b'g' => self.take(8).map(|_| Obj::Other)?,
            b'y' => self.take(16).map(|_| Obj::Other)?,
            b'f' => {
                let n = usize::from(self.byte()?);
                self.take(n).map(|_| Obj::Other)?
            }
            b'x' => {
                for _ in 0..2 {
                    let n = usize::from(self.byte()?);
                    self.take(n)?;
                }
                Obj::Other
            }
            b'l' => {
                let digits = self.int32()?.unsigned_abs() as usize;
                self.take(digits.checked_mul(2).ok_or(MarshalError::LengthOverflow)?)?;
                Obj::Other
            }
            b's' => {
                let n = self.len32()?;
                self.take(n)?;
                self.last_bytes_len = n;
                Obj::Other
            }
            b't' | b'u' | b'a' | b'A' => {
                let n = self.len32()?;
                self.string(n)?
            }
            b'z' | b'Z' => {
                let n = usize::from(self.byte()?);
                self.string(n)?
            }
            b'r' => {
                let index = self.len32()?;
                self.refs
                    .get(index)
                    .cloned()
                    .ok_or(MarshalError::UnknownReference)?
            }
            b'(' | b'[' | b'<' | b'>' => {
                let n = self.len32()?;
                self.sequence(n, depth)?
            }
            b')' => {
                let n = usize::from(self.byte()?);
                self.sequence(n, depth)?
            }
            b'{' => {
                loop {
                    if self.bytes.peek_u8() == Ok(b'0') {
                        self.bytes.skip(1)?;
                        break;
                    }
                    self.object(depth + 1)?;
                    self.object(depth + 1)?;
                }
                Obj::Other
            }
            b':' => {
                for _ in 0..3 {
                    self.object(depth + 1)?;
                }
                Obj::Other
            }
            b'c' => self.code(depth)?,
            other => {
                return Err(MarshalError::UnknownType {
                    kind: other,
                    at: self.bytes.position() - 1,
                });
            }
        })
    }

    fn sequence(&mut self, n: usize, depth: usize) -> Result<Obj, MarshalError> {
        if n > self.bytes.bytes_left() {
            return Err(MarshalError::SequencePastEnd);
        }
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.object(depth + 1)?);
        }
        Ok(Obj::Tuple(items.into()))
    }

    /// Skips the int32 header fields (their number depends on the Python version), then reads
    /// co_code, co_consts and co_names, then the remaining objects of whichever layout fits.
    fn code(&mut self, depth: usize) -> Result<Obj, MarshalError> {
        let start = self.bytes.position();
        let ints = [5usize, 6]
            .into_iter()
            .find(|n| {
                self.bytes
                    .data()
                    .get(start + 4 * n)
                    .is_some_and(|b| b & !FLAG_REF == b's')
            })
            .ok_or(MarshalError::UnknownLayout)?;
        self.take(4 * ints)?;
        self.last_bytes_len = 0;
        self.object(depth + 1)?;
        let code_len = self.last_bytes_len;
        self.summary.bytecode_len = self.summary.bytecode_len.saturating_add(code_len);
        self.summary.code_objects += 1;
        let consts = self.object(depth + 1)?;
        let names = self.object(depth + 1)?;
        let mut budget = MAX_COLLECTED;
        collect(&consts, &mut self.summary.strings, &mut budget);
        collect(&names, &mut self.summary.names, &mut budget);
        // Then 3.0-3.10: varnames, freevars, cellvars, filename, name, firstlineno (int32),
        // lnotab. 3.11+: localsplusnames, localspluskinds (bytes), filename, name, qualname,
        // firstlineno (int32), linetable, exceptiontable.
        self.object(depth + 1)?;
        let is_311 = ints == 5 && self.bytes.peek_u8().is_ok_and(|b| b & !FLAG_REF == b's');
        for _ in 0..4 {
            self.object(depth + 1)?;
        }
        self.int32()?;
        for _ in 0..if is_311 { 2 } else { 1 } {
            self.object(depth + 1)?;
        }
        Ok(Obj::Code)
    }
}

/// Gathers the strings in `obj`, visiting at most `budget` values (shared tuples can form a
/// DAG whose expansion is exponential) and keeping at most `MAX_KEPT_STRINGS` distinct ones.
fn collect(obj: &Obj, into: &mut Vec<String>, budget: &mut usize) {
    if *budget == 0 {
        return;
    }
    *budget -= 1;
    match obj {
        Obj::Str(s) => {
            if into.len() < MAX_KEPT_STRINGS && !into.contains(s) {
                into.push(s.clone());
            }
        }
        Obj::Tuple(items) => items.iter().for_each(|i| collect(i, into, budget)),
        Obj::Code | Obj::Other => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `marshal.dumps((lambda t: __import__("os").system("id") or t).__code__)` from CPython 3.11,
    /// as keras wrote it into tests/fixtures/formats/keras/lambda.config.json.
    const PY311_LAMBDA: &str = "4wEAAAAAAAAAAAAAAAMAAAATAAAA80oAAACXAHQBAAAAAAAAAAAAAGQBpgEAAKsBAAAAAAAAAACgAQAAAAAAAAAAAAAAAAAAAAAAAAAAZAKmAQAAqwEAAAAAAAAAAHABfABTACkDTtoCb3PaAmlkKQLaCl9faW1wb3J0X1/aBnN5c3RlbSkB2gF0cwEAAAAg+j0vd29yay93dC9mbXQtYi9zY3JpcHRzL2ZpeHR1cmVzL21ha2VfZm9ybWF0c19rZXJhc190Zl9vbm54LnB5+gg8bGFtYmRhPvo1a2VyYXNfZml4dHVyZXMuPGxvY2Fscz4uc21hbGxfbW9kZWwuPGxvY2Fscz4uPGxhbWJkYT4+AAAAcyEAAACAAK1quBTRLj7ULj7XLkXSLkXAZNEuS9QuS9AuUMhxgADzAAAAAA==";

    #[test]
    fn reads_names_and_constants_of_a_311_lambda() {
        let raw = crate::formats::keras::decode_base64(PY311_LAMBDA);
        let summary = summarize_code(&raw).unwrap();
        assert_eq!(summary.names, ["__import__", "system"]);
        assert!(summary.strings.contains(&"os".to_string()));
        assert!(summary.strings.contains(&"id".to_string()));
        assert_eq!(summary.bytecode_len, 74);
        assert_eq!(summary.code_objects, 1);
    }

    #[test]
    fn hostile_marshal_data_is_an_error_not_a_panic() {
        let raw = crate::formats::keras::decode_base64(PY311_LAMBDA);
        for cut in 0..raw.len() {
            let _ = summarize_code(&raw[..cut]);
        }
        assert!(summarize_code(b"N").is_err());
        // The words the Keras finding quotes, as they were before errors were typed.
        let text = |data: &[u8]| summarize_code(data).unwrap_err().to_string();
        assert_eq!(text(b"N"), "the payload is not a code object");
        assert_eq!(text(b""), "truncated marshal data");
        assert_eq!(text(b"q"), "unknown marshal type 'q' at offset 0");
        assert_eq!(text(b"i\x01"), "object runs past the end (at offset 1)");
        assert_eq!(text(&[b'r', 5, 0, 0, 0]), "reference to an unknown object");
        assert_eq!(text(b"{"), "truncated marshal data");
        assert!(summarize_code(&[b'(', 0xff, 0xff, 0xff, 0x7f]).is_err());
        assert!(summarize_code(&[b'r', 5, 0, 0, 0]).is_err());
        let deep = vec![b')'; 10_000]
            .into_iter()
            .flat_map(|b| [b, 1])
            .collect::<Vec<_>>();
        assert!(summarize_code(&deep).is_err());
    }
}
