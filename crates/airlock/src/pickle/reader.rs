//! Decodes one pickle instruction at a time, byte for byte as CPython's C unpickler
//! (`Modules/_pickle.c`, the implementation behind `pickle.load` and `torch.load`) reads it.
//!
//! Hand-written on purpose: loader parity is the point. Where the C and pure-Python
//! unpicklers disagree (FRAME boundaries), this follows the C reader, which reads linearly and
//! only checks that a frame's bytes are present; the machine flags frame violations separately.
//! Nothing here allocates in proportion to a declared length: lengths are checked against the
//! bytes that remain before anything is sliced.

use std::borrow::Cow;

use super::opcodes::{ArgKind, Opcode, RAW_BY_OPCODE};

/// The low `width` bytes of a little-endian word, by width (0, 1, 2, 4 or 8).
const WIDTH_MASK: [u64; 16] = {
    let mut masks = [0u64; 16];
    masks[1] = 0xff;
    masks[2] = 0xffff;
    masks[4] = 0xffff_ffff;
    masks[8] = u64::MAX;
    masks
};

/// A decoded integer: small enough for `i128`, or only known by its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Long {
    Small(i128),
    /// Larger than 128 bits; the byte length of its encoding is kept for display.
    Big(usize),
}

/// An instruction's decoded argument, borrowing from the input where possible.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg<'a> {
    None,
    /// U1, U2, U4, U8 and I4 arguments (memo indices, protocol, frame size, EXT codes, BININT*).
    Int(i64),
    /// `FRAME` length (u64).
    Size(u64),
    Float(f64),
    Bool(bool),
    Long(Long),
    /// Text, decoded as the unpickler decodes it (STRING family with the loader's encoding).
    Str(Cow<'a, str>),
    Bytes(&'a [u8]),
    ByteArray(&'a [u8]),
    /// `PERSID`'s raw line.
    Line(&'a [u8]),
    /// `GLOBAL` / `INST` module and name.
    Pair(Cow<'a, str>, Cow<'a, str>),
}

/// One decoded instruction.
#[derive(Debug, Clone, PartialEq)]
pub struct Instr<'a> {
    pub op: Opcode,
    /// Offset of the opcode byte in the input.
    pub offset: u64,
    pub arg: Arg<'a>,
    /// Offset just past the instruction.
    pub end: u64,
}

/// An instruction decoded for structure only (see [`Reader::next_raw`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawInstr {
    pub op: Opcode,
    pub offset: u64,
    pub end: u64,
    /// The argument of U1/U4 opcodes, the memo index of text GET/PUT and FRAME's size; 0 for
    /// every other opcode.
    pub int: i64,
}

/// Why an instruction could not be decoded. The loader raises at the same place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub offset: u64,
    pub message: String,
}

impl DecodeError {
    #[cold]
    fn new(offset: usize, message: impl Into<String>) -> Self {
        DecodeError {
            offset: offset as u64,
            message: message.into(),
        }
    }
}

/// A cursor over pickle bytes.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8], pos: usize) -> Self {
        Reader {
            data,
            pos: pos.min(data.len()),
        }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn set_position(&mut self, pos: usize) {
        self.pos = pos.min(self.data.len());
    }

    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Decodes the instruction at the cursor and advances past it.
    pub fn next_instr(&mut self) -> Result<Instr<'a>, DecodeError> {
        let start = self.pos;
        let Some(&byte) = self.data.get(start) else {
            return Err(DecodeError::new(
                start,
                "pickle data was truncated (no STOP opcode)",
            ));
        };
        let Some(op) = Opcode::from_byte(byte) else {
            return Err(DecodeError::new(
                start,
                format!("invalid load key, '\\x{byte:02x}'"),
            ));
        };
        self.pos += 1;
        let arg = match self.read_arg(op) {
            Ok(arg) => arg,
            Err(e) => {
                self.pos = start;
                return Err(DecodeError {
                    offset: start as u64,
                    message: format!("{}: {}", op.name(), e.message),
                });
            }
        };
        Ok(Instr {
            op,
            offset: start as u64,
            arg,
            end: self.pos as u64,
        })
    }

    /// Decodes the instruction at the cursor without building its argument: the opcode, its
    /// offset and end, and the integer argument of U1/U4 opcodes, text GET/PUT and FRAME
    /// (memo indices, PROTO, EXT1, frame sizes). Text arguments are validated exactly as
    /// [`Reader::next_instr`] does. The fast pass dispatches on the opcode byte itself and
    /// calls [`Reader::raw_like`] from the arm; this is the same for any byte.
    pub fn next_raw(&mut self) -> Result<RawInstr, DecodeError> {
        match self.data.get(self.pos).and_then(|&b| Opcode::decode(b)) {
            Some((op, _)) => self.raw_like(op, op),
            None => self.next_raw_full(),
        }
    }

    /// [`Reader::next_raw`] for the opcode `op` at the cursor, decoded with the argument
    /// layout of `like`, which must read its argument exactly as `op` does.
    ///
    /// The fast pass calls it from inside its `match` on the opcode's action (one jump
    /// table, [`super::semantics`]) with a constant `like` in every arm or sub-arm (the
    /// opcode, or one of a group that reads alike): the
    /// `RawShape` lookup then folds away and each arm gets its own decoder, so an
    /// instruction costs one jump on its opcode instead of a jump on its argument kind
    /// followed by another on its opcode (those two jumps' mispredictions were the hottest
    /// spots of the fast pass on a pickle of many small objects). One 8-byte load after the
    /// opcode holds every fixed-width argument and length prefix. Everything else
    /// (line-based opcodes, FRAME, the last 8 bytes of the input, anything malformed) goes
    /// through [`Reader::next_instr`], which gives the same instruction or the loader's
    /// error.
    #[inline(always)]
    pub fn raw_like(&mut self, op: Opcode, like: Opcode) -> Result<RawInstr, DecodeError> {
        debug_assert_eq!(
            RAW_BY_OPCODE[op as usize], RAW_BY_OPCODE[like as usize],
            "{op:?} does not read its argument like {like:?}"
        );
        let start = self.pos;
        let Some(shape) = RAW_BY_OPCODE[like as usize] else {
            return self.next_raw_full();
        };
        let arg = start + 1;
        let Some(word) = self.data.get(arg..arg + 8) else {
            return self.next_raw_full();
        };
        let word = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
        let width = usize::from(shape.width);
        let value = word & WIDTH_MASK[width & 15];
        let (len, int) = if shape.prefixed {
            let body_start = arg + width;
            let body = usize::try_from(value)
                .ok()
                .and_then(|n| self.data.get(body_start..body_start.checked_add(n)?));
            let Some(body) = body else {
                return self.next_raw_full();
            };
            if shape.text && !body.is_ascii() && std::str::from_utf8(body).is_err() {
                // surrogatepass, or the loader's error
                return self.next_raw_full();
            }
            (width + body.len(), 0)
        } else {
            (width, if shape.int { value as i64 } else { 0 })
        };
        self.pos = arg + len;
        Ok(RawInstr {
            op,
            offset: start as u64,
            end: self.pos as u64,
            int,
        })
    }

    /// [`Reader::next_raw`] through the full decoder. Inlined, with the work in a cold
    /// function that takes the bytes and position by value: no call receives the reader's
    /// address, so the fast pass keeps its reader in registers (when its address reached the
    /// slow path, every instruction loaded and stored the position in memory).
    #[inline(always)]
    fn next_raw_full(&mut self) -> Result<RawInstr, DecodeError> {
        let result = raw_full_at(self.data, self.pos);
        if let Ok(instr) = &result {
            self.pos = instr.end as usize;
        }
        result
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        match self.data.get(self.pos..).and_then(|rest| rest.get(..n)) {
            Some(slice) => {
                self.pos += n;
                Ok(slice)
            }
            None => Err(DecodeError::new(
                self.pos,
                format!(
                    "pickle data was truncated ({n} bytes needed, {} left)",
                    self.remaining()
                ),
            )),
        }
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let slice = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    /// A `\n`-terminated line, without the newline.
    fn line(&mut self) -> Result<&'a [u8], DecodeError> {
        let rest = &self.data[self.pos..];
        match memchr_newline(rest) {
            Some(i) => {
                self.pos += i + 1;
                Ok(&rest[..i])
            }
            None => Err(DecodeError::new(
                self.pos,
                "pickle data was truncated (unterminated line)",
            )),
        }
    }

    fn len_prefixed(&mut self, kind: ArgKind) -> Result<&'a [u8], DecodeError> {
        let at = self.pos;
        let len: u64 = match kind {
            ArgKind::Len1 => u64::from(self.take_array::<1>()?[0]),
            ArgKind::LenU4 => u64::from(u32::from_le_bytes(self.take_array()?)),
            ArgKind::LenI4 => {
                let n = i32::from_le_bytes(self.take_array()?);
                if n < 0 {
                    return Err(DecodeError::new(
                        at,
                        "BINSTRING pickle has negative byte count",
                    ));
                }
                n as u64
            }
            _ => u64::from_le_bytes(self.take_array()?),
        };
        let len = usize::try_from(len)
            .map_err(|_| DecodeError::new(at, "length exceeds the system's maximum size"))?;
        self.take(len)
    }

    fn read_arg(&mut self, op: Opcode) -> Result<Arg<'a>, DecodeError> {
        let at = self.pos;
        Ok(match op.arg_kind() {
            ArgKind::None => Arg::None,
            ArgKind::U1 => Arg::Int(i64::from(self.take_array::<1>()?[0])),
            ArgKind::U2 => Arg::Int(i64::from(u16::from_le_bytes(self.take_array()?))),
            ArgKind::I4 => Arg::Int(i64::from(i32::from_le_bytes(self.take_array()?))),
            ArgKind::U4 => Arg::Int(i64::from(u32::from_le_bytes(self.take_array()?))),
            ArgKind::U8 => {
                let size = u64::from_le_bytes(self.take_array()?);
                if op == Opcode::FRAME {
                    // The C unpickler reads the whole frame ahead, then rewinds: a frame longer
                    // than the data left fails to load.
                    let fits = usize::try_from(size).is_ok_and(|n| n <= self.remaining());
                    if !fits {
                        return Err(DecodeError::new(
                            at,
                            format!("FRAME of {size} bytes runs past the end of the data"),
                        ));
                    }
                }
                Arg::Size(size)
            }
            ArgKind::F8 => Arg::Float(f64::from_be_bytes(self.take_array()?)),
            ArgKind::DecimalLine => {
                let line = self.line()?;
                if op == Opcode::INT {
                    match line {
                        b"00" => Arg::Bool(false),
                        b"01" => Arg::Bool(true),
                        _ => Arg::Long(parse_python_int(line, true).ok_or_else(|| {
                            DecodeError::new(at, "invalid literal for int() in INT")
                        })?),
                    }
                } else {
                    // GET / PUT: base-10 memo index.
                    match parse_python_int(line, false) {
                        Some(Long::Small(n)) => Arg::Int(i64::try_from(n).unwrap_or(i64::MAX)),
                        Some(Long::Big(_)) => Arg::Int(i64::MAX),
                        None => {
                            return Err(DecodeError::new(
                                at,
                                format!("invalid memo index in {}", op.name()),
                            ));
                        }
                    }
                }
            }
            ArgKind::LongLine => {
                let mut line = self.line()?;
                if let [head @ .., b'L'] = line {
                    line = head;
                }
                Arg::Long(
                    parse_python_int(line, true)
                        .ok_or_else(|| DecodeError::new(at, "invalid literal for int() in LONG"))?,
                )
            }
            ArgKind::FloatLine => {
                let line = self.line()?;
                let text = std::str::from_utf8(line).unwrap_or("").trim();
                let value = text
                    .parse::<f64>()
                    .map_err(|_| DecodeError::new(at, "could not convert string to float"))?;
                Arg::Float(value)
            }
            ArgKind::QuotedLine => {
                let line = self.line()?;
                let inner = match line {
                    [q, inner @ .., q2] if q == q2 && (*q == b'\'' || *q == b'"') => inner,
                    _ => {
                        return Err(DecodeError::new(
                            at,
                            "the STRING opcode argument must be quoted",
                        ));
                    }
                };
                let bytes = decode_escapes(inner)
                    .ok_or_else(|| DecodeError::new(at, "invalid \\x escape in STRING"))?;
                Arg::Str(Cow::Owned(bytes_to_text(&bytes).into_owned()))
            }
            ArgKind::UnicodeLine => {
                let line = self.line()?;
                Arg::Str(Cow::Owned(decode_raw_unicode_escape(line).ok_or_else(
                    || DecodeError::new(at, "truncated \\uXXXX escape in UNICODE"),
                )?))
            }
            ArgKind::RawLine => Arg::Line(self.line()?),
            ArgKind::TwoLines => {
                let module = self.line()?;
                let name = self.line()?;
                let decode = |b: &'a [u8]| {
                    std::str::from_utf8(b).map(Cow::Borrowed).map_err(|_| {
                        DecodeError::new(at, format!("{} module or name is not UTF-8", op.name()))
                    })
                };
                Arg::Pair(decode(module)?, decode(name)?)
            }
            kind @ (ArgKind::Len1 | ArgKind::LenI4 | ArgKind::LenU4 | ArgKind::Len8) => {
                let bytes = self.len_prefixed(kind)?;
                match op {
                    Opcode::SHORT_BINBYTES | Opcode::BINBYTES | Opcode::BINBYTES8 => {
                        Arg::Bytes(bytes)
                    }
                    Opcode::BYTEARRAY8 => Arg::ByteArray(bytes),
                    Opcode::SHORT_BINSTRING | Opcode::BINSTRING => Arg::Str(bytes_to_text(bytes)),
                    _ => Arg::Str(decode_utf8_surrogatepass(bytes).ok_or_else(|| {
                        DecodeError::new(at, format!("{} is not valid UTF-8", op.name()))
                    })?),
                }
            }
            ArgKind::Long1 => {
                let n = self.take_array::<1>()?[0] as usize;
                Arg::Long(decode_long(self.take(n)?))
            }
            ArgKind::Long4 => {
                let n = i32::from_le_bytes(self.take_array()?);
                if n < 0 {
                    return Err(DecodeError::new(at, "LONG pickle has negative byte count"));
                }
                Arg::Long(decode_long(self.take(n as usize)?))
            }
        })
    }
}

fn memchr_newline(data: &[u8]) -> Option<usize> {
    data.iter().position(|&b| b == b'\n')
}

/// Little-endian two's complement, as `LONG1`/`LONG4` encode it.
pub fn decode_long(bytes: &[u8]) -> Long {
    if bytes.is_empty() {
        return Long::Small(0);
    }
    if bytes.len() > 16 {
        return Long::Big(bytes.len());
    }
    let negative = bytes[bytes.len() - 1] & 0x80 != 0;
    let mut buf = if negative { [0xffu8; 16] } else { [0u8; 16] };
    buf[..bytes.len()].copy_from_slice(bytes);
    Long::Small(i128::from_le_bytes(buf))
}

/// Parses an integer literal the way `int(text, 0)` (or base 10) does: surrounding
/// whitespace, a sign, `0x`/`0o`/`0b` prefixes when `base0`, single underscores between digits.
pub fn parse_python_int(line: &[u8], base0: bool) -> Option<Long> {
    let text = std::str::from_utf8(line).ok()?.trim();
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body) = if base0 && lower.starts_with("0x") {
        (16, &digits[2..])
    } else if base0 && lower.starts_with("0o") {
        (8, &digits[2..])
    } else if base0 && lower.starts_with("0b") {
        (2, &digits[2..])
    } else {
        (10, digits)
    };
    let body = body
        .strip_prefix('_')
        .filter(|_| radix != 10)
        .unwrap_or(body);
    if body.is_empty() || body.starts_with('_') || body.ends_with('_') || body.contains("__") {
        return None;
    }
    // int(x, 0) rejects leading zeros in non-zero decimal literals ("010").
    if base0
        && radix == 10
        && body.len() > 1
        && body.starts_with('0')
        && !body.trim_start_matches(['0', '_']).is_empty()
    {
        return None;
    }
    let mut value: i128 = 0;
    let mut overflow = false;
    for c in body.chars().filter(|&c| c != '_') {
        let d = c.to_digit(radix)?;
        match value
            .checked_mul(i128::from(radix))
            .and_then(|v| v.checked_add(i128::from(d)))
        {
            Some(v) => value = v,
            None => overflow = true,
        }
    }
    Some(if overflow {
        Long::Big(body.len())
    } else {
        Long::Small(if negative { -value } else { value })
    })
}

/// `PyBytes_DecodeEscape`: Python bytes-literal escapes. Unknown escapes are kept verbatim;
/// a malformed `\x` escape is an error.
pub fn decode_escapes(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        i += 1;
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let Some(&e) = s.get(i) else {
            return None; // trailing backslash: "\\ at end of string"
        };
        i += 1;
        match e {
            b'\n' => {}
            b'\\' => out.push(b'\\'),
            b'\'' => out.push(b'\''),
            b'"' => out.push(b'"'),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b't' => out.push(b'\t'),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b'v' => out.push(11),
            b'a' => out.push(7),
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match s.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push((v & 0xff) as u8);
            }
            b'x' => {
                let hex = s.get(i..i + 2)?;
                let v = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                out.push(v);
                i += 2;
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Some(out)
}

/// `raw-unicode-escape`: only `\uXXXX` and `\UXXXXXXXX` are escapes; other bytes are Latin-1.
pub fn decode_raw_unicode_escape(s: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c == b'\\' {
            // An odd run of backslashes followed by u/U starts an escape.
            let width = match s.get(i + 1) {
                Some(b'u') => 4,
                Some(b'U') => 8,
                _ => 0,
            };
            if width > 0 {
                let hex = s.get(i + 2..i + 2 + width)?;
                let v = u32::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                out.push(char::from_u32(v).unwrap_or(char::REPLACEMENT_CHARACTER));
                i += 2 + width;
                continue;
            }
        }
        out.push(char::from(c));
        i += 1;
    }
    Some(out)
}

/// UTF-8 with Python's `surrogatepass`: encoded surrogates are accepted (shown as U+FFFD).
fn decode_utf8_surrogatepass(bytes: &[u8]) -> Option<Cow<'_, str>> {
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Some(Cow::Borrowed(s));
    }
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                break;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(valid).ok()?);
                // A surrogate is ED A0..BF 80..BF.
                match after {
                    [0xed, b, c, ..] if (0xa0..=0xbf).contains(b) && (0x80..=0xbf).contains(c) => {
                        out.push(char::REPLACEMENT_CHARACTER);
                        rest = &after[3..];
                    }
                    _ => return None,
                }
            }
        }
    }
    Some(Cow::Owned(out))
}

/// Text from the STRING family: the loader decodes with its `encoding` (ASCII by default,
/// UTF-8 in torch.load, Latin-1 in numpy). UTF-8 where valid, Latin-1 otherwise, so every
/// loader's reading of an ASCII name is the same.
fn bytes_to_text(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()),
    }
}

/// The instruction at `pos` as [`Reader::next_raw`] gives it, through the full decoder
/// (which leaves a failed read where it started).
#[cold]
#[inline(never)]
fn raw_full_at(data: &[u8], pos: usize) -> Result<RawInstr, DecodeError> {
    let instr = Reader::new(data, pos).next_instr()?;
    let int = match (instr.arg, instr.op.arg_kind()) {
        (Arg::Int(i), ArgKind::U1 | ArgKind::U4 | ArgKind::DecimalLine) => i,
        (Arg::Size(n), _) => i64::try_from(n).unwrap_or(i64::MAX),
        _ => 0,
    };
    Ok(RawInstr {
        op: instr.op,
        offset: instr.offset,
        end: instr.end,
        int,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bytes: &[u8]) -> Result<Instr<'_>, DecodeError> {
        Reader::new(bytes, 0).next_instr()
    }

    #[test]
    fn fixed_width_arguments() {
        assert_eq!(one(b"K\xff").unwrap().arg, Arg::Int(255));
        assert_eq!(one(b"M\x01\x02").unwrap().arg, Arg::Int(0x0201));
        assert_eq!(one(b"J\xff\xff\xff\xff").unwrap().arg, Arg::Int(-1));
        assert_eq!(
            one(b"j\xff\xff\xff\xff").unwrap().arg,
            Arg::Int(0xffff_ffff)
        );
        assert_eq!(
            one(b"G?\xf0\x00\x00\x00\x00\x00\x00").unwrap().arg,
            Arg::Float(1.0)
        );
        assert!(one(b"J\x01\x02").is_err(), "truncated BININT");
    }

    #[test]
    fn text_opcodes_follow_cpython() {
        assert_eq!(one(b"I01\n").unwrap().arg, Arg::Bool(true));
        assert_eq!(one(b"I-12\n").unwrap().arg, Arg::Long(Long::Small(-12)));
        assert_eq!(one(b"I0x10\n").unwrap().arg, Arg::Long(Long::Small(16)));
        assert_eq!(one(b"L123L\n").unwrap().arg, Arg::Long(Long::Small(123)));
        assert_eq!(one(b"F1.5\n").unwrap().arg, Arg::Float(1.5));
        assert_eq!(one(b"S'os'\n").unwrap().arg, Arg::Str("os".into()));
        assert_eq!(
            one(b"S\"a\\x41\\n\"\n").unwrap().arg,
            Arg::Str("aA\n".into())
        );
        assert!(one(b"Sos\n").is_err(), "unquoted STRING");
        assert_eq!(one(b"Vab\\u0041\n").unwrap().arg, Arg::Str("abA".into()));
        assert_eq!(one(b"g7\n").unwrap().arg, Arg::Int(7));
        assert!(one(b"gx\n").is_err());
        assert_eq!(
            one(b"cos\nsystem\n").unwrap().arg,
            Arg::Pair("os".into(), "system".into())
        );
        assert!(one(b"cos\nsystem").is_err(), "unterminated line");
    }

    #[test]
    fn length_prefixed_are_bounds_checked() {
        assert_eq!(one(b"U\x02os").unwrap().arg, Arg::Str("os".into()));
        assert_eq!(one(b"C\x02os").unwrap().arg, Arg::Bytes(b"os"));
        assert_eq!(
            one(b"X\x02\x00\x00\x00os").unwrap().arg,
            Arg::Str("os".into())
        );
        assert!(one(b"X\xff\xff\xff\x7fos").is_err());
        assert!(one(b"\x8d\xff\xff\xff\xff\xff\xff\xff\xffab").is_err());
        assert!(
            one(b"T\xff\xff\xff\xffab").is_err(),
            "negative BINSTRING length"
        );
        assert!(one(b"X\x01\x00\x00\x00\xff").is_err(), "invalid UTF-8");
        assert_eq!(
            one(b"X\x03\x00\x00\x00\xed\xa0\x80").unwrap().arg,
            Arg::Str("\u{fffd}".into()),
            "surrogatepass"
        );
    }

    #[test]
    fn longs() {
        assert_eq!(one(b"\x8a\x00").unwrap().arg, Arg::Long(Long::Small(0)));
        assert_eq!(
            one(b"\x8a\x01\xff").unwrap().arg,
            Arg::Long(Long::Small(-1))
        );
        assert_eq!(
            one(b"\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19")
                .unwrap()
                .arg,
            Arg::Long(Long::Small(0x1950a86a20f9469cfc6c))
        );
        assert!(one(b"\x8b\xff\xff\xff\xff").is_err());
    }

    #[test]
    fn frame_must_fit_in_the_data() {
        assert_eq!(
            one(b"\x95\x01\x00\x00\x00\x00\x00\x00\x00.").unwrap().arg,
            Arg::Size(1)
        );
        assert!(one(b"\x95\x09\x00\x00\x00\x00\x00\x00\x00.").is_err());
    }

    #[test]
    fn invalid_opcode() {
        let e = one(b"\xff").unwrap_err();
        assert_eq!(e.offset, 0);
        assert!(e.message.contains("invalid load key"));
    }

    /// What `next_raw` must give for the instruction at the start of `bytes`: the full
    /// decoder's opcode, offset and end (or its error), and the integer of U1/U4 opcodes,
    /// text GET/PUT and FRAME.
    fn expected_raw(bytes: &[u8]) -> Result<RawInstr, DecodeError> {
        let instr = Reader::new(bytes, 0).next_instr()?;
        let int = match (instr.arg, instr.op.arg_kind()) {
            (Arg::Int(i), ArgKind::U1 | ArgKind::U4 | ArgKind::DecimalLine) => i,
            (Arg::Size(n), ArgKind::U8) => n as i64,
            _ => 0,
        };
        Ok(RawInstr {
            op: instr.op,
            offset: 0,
            end: instr.end,
            int,
        })
    }

    #[test]
    fn raw_decoding_matches_the_full_decoder_for_every_opcode() {
        // Arguments of every shape: none, short, length prefixes that fit, overrun or are
        // huge, bodies that are not UTF-8 or hold surrogates, lines; each followed by
        // nothing, a few bytes, or enough to take the decoder's 8-byte load.
        let args: Vec<Vec<u8>> = vec![
            vec![],
            vec![0],
            vec![3, b'a', b'b', b'c'],
            vec![3, 0, 0, 0, b'a', b'b', b'c'],
            vec![3, 0, 0, 0, 0, 0, 0, 0, b'a', b'b', b'c'],
            vec![2, 0xff, 0xfe],
            vec![3, 0xed, 0xa0, 0x80],
            vec![2, 0xc3, 0xa9],
            vec![9, b'x'],
            vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            vec![0xff, 0xff, 0xff, 0x7f, 1],
            b"12\n".to_vec(),
            b"os\nsystem\n".to_vec(),
            b"'abc'\n".to_vec(),
            vec![1, 2, 3, 4, 5, 6, 7, 8, 9],
        ];
        let tails: [&[u8]; 3] = [b"", b".", b"........................"];
        let mut checked = 0;
        for byte in 0..=255u8 {
            for arg in &args {
                for tail in tails {
                    let bytes = [&[byte][..], arg, tail].concat();
                    let got = Reader::new(&bytes, 0).next_raw();
                    assert_eq!(got, expected_raw(&bytes), "{bytes:?}");
                    if let Ok(raw) = got {
                        // The cursor moved to the end, and from an offset other than 0 too.
                        let mut reader = Reader::new(&bytes, 0);
                        reader.next_raw().unwrap();
                        assert_eq!(reader.position() as u64, raw.end);
                        let shifted = [b"N".as_slice(), &bytes].concat();
                        let mut reader = Reader::new(&shifted, 1);
                        let again = reader.next_raw().unwrap();
                        assert_eq!(
                            (again.op, again.offset, again.end),
                            (raw.op, 1, raw.end + 1)
                        );
                    }
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 256 * args.len() * tails.len());
    }

    #[test]
    fn raw_decoding_reports_the_full_decoders_errors() {
        // Truncated fixed arguments and bodies, and an invalid byte, near the end of the
        // input (where the 8-byte load does not fit) and far from it.
        let far = b"................";
        for bytes in [
            &b"K"[..],
            b"J\x01\x02",
            b"X\x05\x00\x00\x00ab",
            b"\x8c\x02\xff\xfe",
            b"\xff",
        ] {
            let error = Reader::new(bytes, 0).next_raw().unwrap_err();
            assert_eq!(Err(error), expected_raw(bytes), "{bytes:?}");
        }
        for bytes in [
            &b"X\xff\xff\xff\x7f"[..],
            b"\x8c\x02\xff\xfe",
            b"\xff",
            b"\x8d\xff\xff\xff\xff\xff\xff\xff\xff",
        ] {
            let bytes = [bytes, far].concat();
            let error = Reader::new(&bytes, 0).next_raw().unwrap_err();
            assert_eq!(Err(error), expected_raw(&bytes), "{bytes:?}");
        }
    }
}
