//! One byte reader for every binary format: a bounds-checked cursor over a slice.
//!
//! Modelled on wasmparser's `BinaryReader`: the reader carries the absolute offset of its
//! slice in the file (`base`), so a reader over an archive member or a sub-slice reports
//! offsets a user can find with a hex editor; every read checks the bytes left; a declared
//! count or length is checked against a named limit *and* against the bytes left before
//! anything is allocated for it (goblin's rule, [`ByteReader::check_size`]); a declared
//! length can scope a sub-reader (rustls' `Reader::sub`), so a nested record cannot read
//! into its neighbour. Every failure is one [`ReadError`] carrying the absolute offset and a
//! reason, displayed as "… (at offset N)".
//!
//! Formats keep their own finding messages: a format maps a [`ReadError`]'s kind and offset
//! to the words its findings have always used (the reports are compared byte for byte by
//! `scripts/identity.py`). This module imports nothing but `std` (bottom floor).

use std::fmt;

/// Why a read failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadErrorKind {
    /// The read needed `needed` bytes but only `left` remained in the reader.
    UnexpectedEnd { needed: u64, left: u64 },
    /// A declared count or length was over a named limit.
    OverLimit {
        what: &'static str,
        declared: u64,
        limit: u64,
    },
    /// A declared count or length could not fit in the bytes left (each element needing at
    /// least `unit` bytes); checked before allocating for it.
    PastEnd {
        what: &'static str,
        declared: u64,
        unit: u64,
        left: u64,
    },
    /// A LEB128 / protobuf varint ran past its maximum width (10 bytes for 64 bits).
    VarintTooLong,
    /// Anything else a format decides is malformed.
    Invalid(&'static str),
}

/// A read failure: what went wrong and the absolute offset in the file where it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    /// Absolute offset (the reader's base plus its position) of the failed read.
    pub offset: u64,
    pub kind: ReadErrorKind,
}

impl ReadError {
    #[cold]
    pub fn new(offset: u64, kind: ReadErrorKind) -> Self {
        ReadError { offset, kind }
    }

    #[cold]
    pub fn invalid(offset: u64, message: &'static str) -> Self {
        ReadError::new(offset, ReadErrorKind::Invalid(message))
    }

    /// True when the input ended early (a cut file rather than a malformed one).
    pub fn is_unexpected_end(&self) -> bool {
        matches!(self.kind, ReadErrorKind::UnexpectedEnd { .. })
    }

    /// The reason without the offset.
    pub fn message(&self) -> String {
        match &self.kind {
            ReadErrorKind::UnexpectedEnd { needed, left } => {
                format!("unexpected end: {needed} bytes needed, {left} left")
            }
            ReadErrorKind::OverLimit {
                what,
                declared,
                limit,
            } => format!("{what}: {declared} is over the limit of {limit}"),
            ReadErrorKind::PastEnd {
                what,
                declared,
                unit,
                left,
            } => format!(
                "{what}: {declared} of {unit} bytes each cannot fit in the {left} bytes left"
            ),
            ReadErrorKind::VarintTooLong => "varint longer than 10 bytes".to_string(),
            ReadErrorKind::Invalid(message) => (*message).to_string(),
        }
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at offset {})", self.message(), self.offset)
    }
}

impl std::error::Error for ReadError {}

/// The result of a read.
pub type ReadResult<T> = Result<T, ReadError>;

/// A cursor over `data`, whose first byte is at absolute offset `base` in the file.
#[derive(Debug, Clone)]
pub struct ByteReader<'a> {
    data: &'a [u8],
    pos: usize,
    base: u64,
}

impl<'a> ByteReader<'a> {
    /// A reader over a whole file (offsets start at 0).
    pub fn new(data: &'a [u8]) -> Self {
        ByteReader::with_base(data, 0)
    }

    /// A reader over `data` found at absolute offset `base` (an archive member, a section).
    pub fn with_base(data: &'a [u8], base: u64) -> Self {
        ByteReader { data, pos: 0, base }
    }

    /// Position relative to the start of this reader's slice.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Absolute offset of the next byte to read.
    pub fn offset(&self) -> u64 {
        self.base.saturating_add(self.pos as u64)
    }

    /// Absolute offset of relative position `pos` (for reporting an earlier read).
    pub fn offset_of(&self, pos: usize) -> u64 {
        self.base.saturating_add(pos as u64)
    }

    /// Moves to relative position `pos` (at most the slice's length).
    pub fn seek(&mut self, pos: usize) -> ReadResult<()> {
        if pos > self.data.len() {
            return Err(self.end_error(pos.saturating_sub(self.pos) as u64));
        }
        self.pos = pos;
        Ok(())
    }

    /// A reader over the same slice positioned at relative `pos`, for formats read by
    /// offsets rather than in order (flatbuffers, HDF5 addresses).
    pub fn at(&self, pos: usize) -> ReadResult<ByteReader<'a>> {
        let mut reader = self.clone();
        reader.seek(pos)?;
        Ok(reader)
    }

    /// The whole slice this reader reads (independent of its position).
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The bytes not read yet.
    pub fn remaining(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or_default()
    }

    /// Number of bytes not read yet.
    pub fn bytes_left(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    /// True when every byte has been read.
    pub fn is_at_end(&self) -> bool {
        self.pos >= self.data.len()
    }

    #[cold]
    fn end_error(&self, needed: u64) -> ReadError {
        ReadError::new(
            self.offset(),
            ReadErrorKind::UnexpectedEnd {
                needed,
                left: self.bytes_left() as u64,
            },
        )
    }

    /// An error at the current position.
    #[cold]
    pub fn error(&self, message: &'static str) -> ReadError {
        ReadError::invalid(self.offset(), message)
    }

    /// The next `n` bytes, without copying.
    pub fn read_bytes(&mut self, n: usize) -> ReadResult<&'a [u8]> {
        let end = self.pos.checked_add(n);
        let Some(slice) = end.and_then(|end| self.data.get(self.pos..end)) else {
            return Err(self.end_error(n as u64));
        };
        self.pos += n;
        Ok(slice)
    }

    /// The next `n` bytes for a length declared as a `u64` (which may not fit a `usize`).
    pub fn read_bytes_u64(&mut self, n: u64) -> ReadResult<&'a [u8]> {
        match usize::try_from(n) {
            Ok(n) => self.read_bytes(n),
            Err(_) => Err(self.end_error(n)),
        }
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize) -> ReadResult<()> {
        self.read_bytes(n).map(|_| ())
    }

    /// The next `N` bytes as an array.
    pub fn read_array<const N: usize>(&mut self) -> ReadResult<[u8; N]> {
        let bytes = self.read_bytes(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub fn read_u8(&mut self) -> ReadResult<u8> {
        let Some(&b) = self.data.get(self.pos) else {
            return Err(self.end_error(1));
        };
        self.pos += 1;
        Ok(b)
    }

    /// The next byte without moving.
    pub fn peek_u8(&self) -> ReadResult<u8> {
        self.data
            .get(self.pos)
            .copied()
            .ok_or_else(|| self.end_error(1))
    }

    pub fn read_u16_le(&mut self) -> ReadResult<u16> {
        self.read_array().map(u16::from_le_bytes)
    }

    pub fn read_u32_le(&mut self) -> ReadResult<u32> {
        self.read_array().map(u32::from_le_bytes)
    }

    pub fn read_i32_le(&mut self) -> ReadResult<i32> {
        self.read_array().map(i32::from_le_bytes)
    }

    pub fn read_u64_le(&mut self) -> ReadResult<u64> {
        self.read_array().map(u64::from_le_bytes)
    }

    pub fn read_u16_be(&mut self) -> ReadResult<u16> {
        self.read_array().map(u16::from_be_bytes)
    }

    pub fn read_u32_be(&mut self) -> ReadResult<u32> {
        self.read_array().map(u32::from_be_bytes)
    }

    pub fn read_u64_be(&mut self) -> ReadResult<u64> {
        self.read_array().map(u64::from_be_bytes)
    }

    /// A `u32` in the given byte order.
    pub fn read_u32(&mut self, big_endian: bool) -> ReadResult<u32> {
        if big_endian {
            self.read_u32_be()
        } else {
            self.read_u32_le()
        }
    }

    /// A `u64` in the given byte order.
    pub fn read_u64(&mut self, big_endian: bool) -> ReadResult<u64> {
        if big_endian {
            self.read_u64_be()
        } else {
            self.read_u64_le()
        }
    }

    /// An unsigned LEB128 / protobuf varint of at most 10 bytes. As protobuf's decoders do,
    /// bits past the 64th in the tenth byte are dropped. Running out of bytes is
    /// [`ReadErrorKind::UnexpectedEnd`] at the missing byte; an eleventh byte is
    /// [`ReadErrorKind::VarintTooLong`] at the byte after the tenth.
    pub fn read_var_u64(&mut self) -> ReadResult<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.read_u8()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ReadError::new(self.offset(), ReadErrorKind::VarintTooLong))
    }

    /// Checks a declared count of elements of at least `unit` bytes each (`unit` 1 for a
    /// length in bytes) against `limit` and against the bytes left, *before* the caller
    /// allocates or loops for it. Returns the count as a `usize`. The error's offset is the
    /// current position (callers that read the count first report where it was).
    pub fn check_size(
        &self,
        declared: u64,
        unit: u64,
        limit: u64,
        what: &'static str,
    ) -> ReadResult<usize> {
        if declared > limit {
            return Err(ReadError::new(
                self.offset(),
                ReadErrorKind::OverLimit {
                    what,
                    declared,
                    limit,
                },
            ));
        }
        let left = self.bytes_left() as u64;
        let fits = declared.checked_mul(unit).is_some_and(|need| need <= left);
        match usize::try_from(declared) {
            Ok(n) if fits => Ok(n),
            _ => Err(ReadError::new(
                self.offset(),
                ReadErrorKind::PastEnd {
                    what,
                    declared,
                    unit,
                    left,
                },
            )),
        }
    }

    /// Reads a varint count (wasmparser's `read_size`) and checks it with
    /// [`check_size`](Self::check_size) for elements of at least one byte. The error's
    /// offset is that of the count.
    pub fn read_size(&mut self, limit: u64, what: &'static str) -> ReadResult<usize> {
        let at = self.pos;
        let declared = self.read_var_u64()?;
        self.check_size(declared, 1, limit, what).map_err(|mut e| {
            e.offset = self.offset_of(at);
            e
        })
    }

    /// A sub-reader over the next `len` bytes, whose offsets stay absolute; this reader
    /// moves past them. The sub-reader cannot read beyond them (rustls' `Reader::sub`).
    pub fn sub_reader(&mut self, len: usize) -> ReadResult<ByteReader<'a>> {
        let base = self.offset();
        let data = self.read_bytes(len)?;
        Ok(ByteReader::with_base(data, base))
    }

    /// Fails unless every byte was read (trailing data after a record).
    pub fn expect_end(&self, message: &'static str) -> ReadResult<()> {
        if self.is_at_end() {
            Ok(())
        } else {
            Err(self.error(message))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fixed_width_integers_in_both_orders() {
        let data = [1, 2, 3, 4, 5, 6, 7, 8, 9];
        let mut r = ByteReader::new(&data);
        assert_eq!(r.read_u8().unwrap(), 1);
        assert_eq!(r.read_u16_le().unwrap(), 0x0302);
        assert_eq!(r.read_u16_be().unwrap(), 0x0405);
        assert_eq!(r.read_u32_le().unwrap(), 0x0908_0706);
        assert!(r.is_at_end());
        let mut r = ByteReader::new(&data);
        assert_eq!(r.read_u32_be().unwrap(), 0x0102_0304);
        let mut r = ByteReader::new(&data);
        assert_eq!(r.read_u64_le().unwrap(), 0x0807_0605_0403_0201);
        let mut r = ByteReader::new(&data);
        assert_eq!(r.read_u64(true).unwrap(), 0x0102_0304_0506_0708);
        assert_eq!(r.read_u8().unwrap(), 9);
        let mut r = ByteReader::new(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(r.read_i32_le().unwrap(), -1);
    }

    #[test]
    fn reading_exactly_to_the_end_succeeds_and_one_more_byte_fails_without_moving() {
        let data = [0u8; 8];
        let mut r = ByteReader::new(&data);
        assert_eq!(r.read_bytes(8).unwrap().len(), 8);
        assert!(r.read_bytes(0).is_ok());
        let err = r.read_u8().unwrap_err();
        assert_eq!(
            err.kind,
            ReadErrorKind::UnexpectedEnd { needed: 1, left: 0 }
        );
        assert_eq!(err.offset, 8);
        let mut r = ByteReader::new(&data[..7]);
        let err = r.read_u64_le().unwrap_err();
        assert_eq!(
            err.kind,
            ReadErrorKind::UnexpectedEnd { needed: 8, left: 7 }
        );
        assert_eq!(r.position(), 0, "a failed read does not move the cursor");
    }

    #[test]
    fn lengths_that_overflow_fail_instead_of_wrapping() {
        let data = [0u8; 4];
        let mut r = ByteReader::new(&data);
        r.skip(2).unwrap();
        assert!(r.read_bytes(usize::MAX).is_err());
        assert!(r.read_bytes_u64(u64::MAX).is_err());
        assert_eq!(r.position(), 2);
    }

    #[test]
    fn offsets_are_absolute_for_readers_with_a_base_and_for_sub_readers() {
        let data = [0u8, 1, 2, 3, 4, 5];
        let mut r = ByteReader::with_base(&data, 1000);
        r.skip(2).unwrap();
        assert_eq!(r.offset(), 1002);
        let mut sub = r.sub_reader(3).unwrap();
        assert_eq!(r.offset(), 1005);
        assert_eq!(sub.offset(), 1002);
        assert_eq!(sub.read_bytes(3).unwrap(), &[2, 3, 4]);
        let err = sub.read_u8().unwrap_err();
        assert_eq!(
            err.offset, 1005,
            "the sub-reader stops at its declared length"
        );
        assert!(r.sub_reader(2).is_err(), "only one byte is left");
        assert_eq!(
            err.to_string(),
            "unexpected end: 1 bytes needed, 0 left (at offset 1005)"
        );
    }

    #[test]
    fn varints_read_up_to_ten_bytes() {
        let mut r = ByteReader::new(&[0x96, 0x01, 0x00]);
        assert_eq!(r.read_var_u64().unwrap(), 150);
        assert_eq!(r.read_var_u64().unwrap(), 0);
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(ByteReader::new(&max).read_var_u64().unwrap(), u64::MAX);
        let long = [0xffu8; 11];
        let err = ByteReader::new(&long).read_var_u64().unwrap_err();
        assert_eq!(err.kind, ReadErrorKind::VarintTooLong);
        assert_eq!(err.offset, 10);
        let err = ByteReader::new(&[0x80, 0x80]).read_var_u64().unwrap_err();
        assert!(err.is_unexpected_end());
        assert_eq!(err.offset, 2);
    }

    #[test]
    fn declared_sizes_are_checked_against_the_limit_and_the_bytes_left() {
        let data = [0u8; 16];
        let r = ByteReader::new(&data);
        assert_eq!(r.check_size(4, 4, 100, "items").unwrap(), 4);
        assert_eq!(
            r.check_size(16, 1, 16, "bytes").unwrap(),
            16,
            "exactly what is left"
        );
        let past = r.check_size(17, 1, 100, "bytes").unwrap_err();
        assert!(matches!(past.kind, ReadErrorKind::PastEnd { left: 16, .. }));
        let over = r.check_size(17, 1, 16, "bytes").unwrap_err();
        assert!(matches!(
            over.kind,
            ReadErrorKind::OverLimit { limit: 16, .. }
        ));
        let overflow = r.check_size(u64::MAX, 2, u64::MAX, "items").unwrap_err();
        assert!(matches!(overflow.kind, ReadErrorKind::PastEnd { .. }));
    }

    #[test]
    fn read_size_reports_the_offset_of_the_count() {
        let mut r = ByteReader::with_base(&[0, 5, 1, 2], 10);
        r.skip(1).unwrap();
        let err = r.read_size(100, "entries").unwrap_err();
        assert_eq!(err.offset, 11);
        let mut r = ByteReader::new(&[2, 7, 8]);
        assert_eq!(r.read_size(2, "entries").unwrap(), 2);
        let mut r = ByteReader::new(&[3, 7, 8, 9]);
        assert!(matches!(
            r.read_size(2, "entries").unwrap_err().kind,
            ReadErrorKind::OverLimit { .. }
        ));
    }

    #[test]
    fn seek_peek_and_expect_end_stay_in_bounds() {
        let data = [7u8, 8];
        let mut r = ByteReader::new(&data);
        assert_eq!(r.peek_u8().unwrap(), 7);
        assert_eq!(r.position(), 0);
        assert!(r.expect_end("trailing").is_err());
        r.seek(2).unwrap();
        assert!(r.expect_end("trailing").is_ok());
        assert!(r.seek(3).is_err());
        assert_eq!(r.remaining(), &[] as &[u8]);
        r.seek(1).unwrap();
        assert_eq!(r.remaining(), &[8]);
        assert_eq!(r.at(0).unwrap().read_u16_le().unwrap(), 0x0807);
        assert_eq!(r.position(), 1, "`at` leaves the reader where it was");
        assert!(r.at(3).is_err());
    }
}
