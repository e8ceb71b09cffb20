//! A small, zero-copy protobuf wire-format reader for the few messages Airlock inspects
//! (TensorFlow SavedModel, ONNX ModelProto).
//!
//! Why not `prost`: prost decodes whole messages into owned structs, so an ONNX initializer's
//! `raw_data` (hundreds of MB) would be copied just to learn its length, and unknown fields are
//! dropped silently. Reading the wire format directly costs ~100 lines, borrows every
//! length-delimited field from the input (nothing is copied, nothing allocated per field), and
//! lets each caller walk only the fields it needs. Every length is checked against the bytes
//! left before slicing; malformed input is an `Err` with the byte offset, never a panic.

use crate::bytes::{ByteReader, ReadError, ReadErrorKind};

/// A wire-format error: what went wrong and where (offset within the message being read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    pub offset: usize,
    pub what: &'static str,
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (at offset {:#x})", self.what, self.offset)
    }
}

/// The value of one field as it appears on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// One field: its number, its value, and the offset of its tag within the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    pub number: u32,
    pub value: Value<'a>,
    pub offset: usize,
}

impl<'a> Field<'a> {
    /// The payload of a length-delimited field (sub-message, string, bytes).
    pub fn bytes(&self) -> Option<&'a [u8]> {
        match self.value {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The payload as UTF-8 text, lossily (names in reports only).
    pub fn text(&self) -> Option<String> {
        self.bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }

    pub fn varint(&self) -> Option<u64> {
        match self.value {
            Value::Varint(v) => Some(v),
            _ => None,
        }
    }
}

/// Where a message is cut short: its top-level fields read cleanly, at least `min_fields` of
/// them whole, until one runs past the end of the bytes (a truncated varint or a length
/// larger than what is left). `None` for a complete message or any other wire error.
///
/// Protobuf has no end marker, so a cut at a field boundary leaves a complete, shorter
/// message that the protobuf parser itself accepts; only a cut inside a field is visible.
pub fn cut_short(data: &[u8], min_fields: usize) -> Option<WireError> {
    let mut whole = 0;
    for field in fields(data) {
        match field {
            Ok(_) => whole += 1,
            Err(e) if whole >= min_fields && e.is_truncation() => return Some(e),
            Err(_) => return None,
        }
    }
    None
}

impl WireError {
    /// True when the error is the message ending inside a field.
    pub fn is_truncation(&self) -> bool {
        matches!(self.what, TRUNCATED_VARINT | RUNS_PAST_END)
    }
}

const TRUNCATED_VARINT: &str = "truncated varint";
const RUNS_PAST_END: &str = "field runs past the end of its message";

/// Iterates over the fields of one message. Yields `Err` once and then stops.
pub struct Fields<'a> {
    reader: ByteReader<'a>,
    failed: bool,
}

/// Reads the fields of the message encoded in `data`.
pub fn fields(data: &[u8]) -> Fields<'_> {
    Fields {
        reader: ByteReader::new(data),
        failed: false,
    }
}

/// The wire format's words for a varint that failed to read.
#[cold]
fn varint_error(err: ReadError) -> WireError {
    WireError {
        offset: err.offset as usize,
        what: match err.kind {
            ReadErrorKind::VarintTooLong => "varint longer than 10 bytes",
            _ => TRUNCATED_VARINT,
        },
    }
}

/// The wire format's words for a field whose bytes run past the end.
#[cold]
fn past_end(err: ReadError) -> WireError {
    WireError {
        offset: err.offset as usize,
        what: RUNS_PAST_END,
    }
}

impl<'a> Fields<'a> {
    /// Offset of the next field to read (the end of the last one read).
    pub fn position(&self) -> usize {
        self.reader.position()
    }

    fn varint(&mut self) -> Result<u64, WireError> {
        self.reader.read_var_u64().map_err(varint_error)
    }

    fn next_field(&mut self) -> Result<Field<'a>, WireError> {
        let offset = self.reader.position();
        let key = self.varint()?;
        let number = u32::try_from(key >> 3)
            .ok()
            .filter(|&n| n != 0 && n < 1 << 29)
            .ok_or(WireError {
                offset,
                what: "invalid field number",
            })?;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => Value::Fixed64(self.reader.read_u64_le().map_err(past_end)?),
            2 => {
                let len = self.varint()?;
                Value::Bytes(self.reader.read_bytes_u64(len).map_err(past_end)?)
            }
            5 => Value::Fixed32(self.reader.read_u32_le().map_err(past_end)?),
            _ => {
                return Err(WireError {
                    offset,
                    what: "unsupported wire type (groups or invalid)",
                });
            }
        };
        Ok(Field {
            number,
            value,
            offset,
        })
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.reader.is_at_end() {
            return None;
        }
        let field = self.next_field();
        self.failed = field.is_err();
        Some(field)
    }
}

/// Collects the payloads of every length-delimited occurrence of field `number`.
pub fn repeated_bytes(data: &[u8], number: u32) -> Result<Vec<&[u8]>, WireError> {
    let mut out = Vec::new();
    for field in fields(data) {
        let field = field?;
        if field.number == number
            && let Some(b) = field.bytes()
        {
            out.push(b);
        }
    }
    Ok(out)
}

/// The last occurrence of length-delimited field `number` (protobuf's "last one wins").
pub fn last_bytes(data: &[u8], number: u32) -> Result<Option<&[u8]>, WireError> {
    Ok(repeated_bytes(data, number)?.pop())
}

/// The last occurrence of varint field `number`.
pub fn last_varint(data: &[u8], number: u32) -> Result<Option<u64>, WireError> {
    let mut out = None;
    for field in fields(data) {
        let field = field?;
        if field.number == number
            && let Some(v) = field.varint()
        {
            out = Some(v);
        }
    }
    Ok(out)
}

/// Where `inner` (a sub-slice borrowed from `outer`) starts within `outer`, for reporting.
pub fn offset_in(outer: &[u8], inner: &[u8]) -> u64 {
    (inner.as_ptr() as usize).saturating_sub(outer.as_ptr() as usize) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_varints_strings_and_nested_messages() {
        // field 1 varint 150, field 2 "hi", field 3 fixed32, field 4 fixed64
        let msg = b"\x08\x96\x01\x12\x02hi\x1d\x01\x00\x00\x00\x21\x02\x00\x00\x00\x00\x00\x00\x00";
        let got: Vec<_> = fields(msg).collect::<Result<_, _>>().unwrap();
        assert_eq!(got[0].value, Value::Varint(150));
        assert_eq!(got[1].bytes(), Some(&b"hi"[..]));
        assert_eq!(got[2].value, Value::Fixed32(1));
        assert_eq!(got[3].value, Value::Fixed64(2));
        assert_eq!(last_varint(msg, 1).unwrap(), Some(150));
    }

    #[test]
    fn rejects_lengths_past_the_end_and_bad_keys() {
        assert!(fields(b"\x12\x05hi").any(|f| f.is_err()));
        assert!(fields(b"\x0b").any(|f| f.is_err()), "group wire type");
        assert!(fields(b"\x00\x01").any(|f| f.is_err()), "field number 0");
        assert!(fields(b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01").any(|f| f.is_err()));
        let huge = b"\x12\xff\xff\xff\xff\xff\xff\xff\xff\x7f";
        assert!(fields(huge).any(|f| f.is_err()));
    }
}
