//! Flax msgpack checkpoints (`flax.serialization.to_bytes`): identification only.
//!
//! msgpack has no magic. Flax writes one msgpack value: a map of string keys whose values are
//! nested maps, and whose leaves are arrays packed as msgpack *ext* values (type 1 ndarray,
//! 2 native complex, 3 numpy scalar; `flax/serialization.py`), or plain numbers. The test here
//! is that shape, strictly: the whole file is exactly one msgpack value (no trailing bytes),
//! the top level is a non-empty map, every map key is a string, and at least one leaf is a
//! Flax ext value. Reading is bounded (nesting depth [`MAX_DEPTH`]; every element consumes at
//! least one byte, so the walk is linear in the file).
//!
//! No pickle that does anything can pass: `0x80` (PROTO) would have to be an empty map, which
//! is refused; `0x81`–`0x8f` are opcodes that fail on an empty stack at the first byte; map16/32
//! (`0xde`/`0xdf`) are not opcodes. And identified files still get the pickle probe.
//!
//! msgpack deserialisation in Flax builds only arrays and containers, but Airlock does not
//! verify the arrays: the file is "identified, not vouched for" (EXE003).

/// Maximum nesting of maps and arrays read.
pub const MAX_DEPTH: usize = 64;
/// Flax's ext type codes: ndarray, native complex, numpy scalar.
const FLAX_EXT_TYPES: &[i8] = &[1, 2, 3];

/// What the walk counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlaxSummary {
    /// Flax ext leaves (arrays and scalars).
    pub arrays: u64,
    /// Bytes held in them.
    pub array_bytes: u64,
    /// Maps, top level included.
    pub maps: u64,
}

/// Identifies a Flax msgpack checkpoint (see the module docs); `None` for anything else.
pub fn identify(data: &[u8]) -> Option<FlaxSummary> {
    if !matches!(data.first(), Some(0x81..=0x8f | 0xde | 0xdf)) {
        return None;
    }
    let mut reader = Reader {
        data,
        pos: 0,
        ..Reader::default()
    };
    reader.value(0, false)?;
    (reader.pos == data.len() && reader.summary.arrays > 0).then_some(reader.summary)
}

/// True for a Flax checkpoint cut short: the top level is a map, at least one key was read
/// whole, and every element read so far has Flax's shape until the bytes end inside one.
/// Such a prefix is no msgpack value at all (flax.serialization.from_bytes refuses it), but
/// it is the start of a checkpoint and must not pass as unknown bytes.
pub fn is_cut_short(data: &[u8]) -> bool {
    if !matches!(data.first(), Some(0x81..=0x8f | 0xde | 0xdf)) {
        return false;
    }
    let mut reader = Reader {
        data,
        pos: 0,
        ..Reader::default()
    };
    reader.value(0, false).is_none() && reader.ran_out && reader.keys > 0
}

#[derive(Default)]
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    summary: FlaxSummary,
    /// Map keys read whole.
    keys: u64,
    /// Set when a read wanted bytes past the end.
    ran_out: bool,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.pos.checked_add(n)?;
        let Some(bytes) = self.data.get(self.pos..end) else {
            self.ran_out = true;
            return None;
        };
        self.pos = end;
        Some(bytes)
    }

    fn uint(&mut self, width: usize) -> Option<usize> {
        let bytes = self.take(width)?;
        let v = bytes.iter().fold(0u64, |v, b| v << 8 | u64::from(*b));
        usize::try_from(v).ok()
    }

    /// Reads one value; `key` requires it to be a string.
    fn value(&mut self, depth: usize, key: bool) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        let tag = *self.take(1)?.first()?;
        let is_str = matches!(tag, 0xa0..=0xbf | 0xd9..=0xdb);
        if key && !is_str {
            return None;
        }
        match tag {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => Some(()),
            0x80..=0x8f => self.map(usize::from(tag & 0x0f), depth),
            0x90..=0x9f => self.array(usize::from(tag & 0x0f), depth),
            0xa0..=0xbf => self.take(usize::from(tag & 0x1f)).map(drop),
            0xc4..=0xc6 => {
                let n = self.uint(1 << (tag - 0xc4))?;
                self.take(n).map(drop)
            }
            0xc7..=0xc9 => {
                let n = self.uint(1 << (tag - 0xc7))?;
                self.ext(n)
            }
            0xca => self.take(4).map(drop),
            0xcb => self.take(8).map(drop),
            0xcc..=0xcf => self.take(1 << (tag - 0xcc)).map(drop),
            0xd0..=0xd3 => self.take(1 << (tag - 0xd0)).map(drop),
            0xd4..=0xd8 => self.ext(1 << (tag - 0xd4)),
            0xd9..=0xdb => {
                let n = self.uint(1 << (tag - 0xd9))?;
                self.take(n).map(drop)
            }
            0xdc | 0xdd => {
                let n = self.uint(2 << (tag - 0xdc))?;
                self.array(n, depth)
            }
            0xde | 0xdf => {
                let n = self.uint(2 << (tag - 0xde))?;
                self.map(n, depth)
            }
            // 0xc1 is never used.
            _ => None,
        }
    }

    fn map(&mut self, n: usize, depth: usize) -> Option<()> {
        if n == 0 && depth == 0 {
            return None;
        }
        self.summary.maps += 1;
        for _ in 0..n {
            self.value(depth + 1, true)?;
            self.keys += 1;
            self.value(depth + 1, false)?;
        }
        Some(())
    }

    fn array(&mut self, n: usize, depth: usize) -> Option<()> {
        if depth == 0 {
            return None;
        }
        (0..n).try_for_each(|_| self.value(depth + 1, false))
    }

    fn ext(&mut self, n: usize) -> Option<()> {
        let kind = *self.take(1)?.first()? as i8;
        self.take(n)?;
        if FLAX_EXT_TYPES.contains(&kind) {
            self.summary.arrays += 1;
            self.summary.array_bytes += n as u64;
        }
        Some(())
    }
}

/// The report's description of an identified checkpoint.
pub fn describe(summary: &FlaxSummary) -> String {
    format!(
        "Flax msgpack checkpoint: {} maps, {} arrays ({})",
        summary.maps,
        summary.arrays,
        super::safetensors::human_bytes(summary.array_bytes)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `{"params": {"dense": {"kernel": ext1(8 bytes), "bias": 0.0}}}`, as Flax writes it.
    fn checkpoint() -> Vec<u8> {
        let mut data = vec![0x81, 0xa6];
        data.extend(b"params");
        data.extend([0x81, 0xa5]);
        data.extend(b"dense");
        data.extend([0x82, 0xa6]);
        data.extend(b"kernel");
        data.extend([0xc7, 0x08, 0x01]);
        data.extend([0x93, 0x91, 0x02, 0xa3, b'f', b'3', b'2', 0x00]);
        data.extend([0xa4]);
        data.extend(b"bias");
        data.extend([0xcb, 0, 0, 0, 0, 0, 0, 0, 0]);
        data
    }

    #[test]
    fn a_flax_state_dict_is_identified() {
        let found = identify(&checkpoint()).unwrap();
        assert_eq!(
            found,
            FlaxSummary {
                arrays: 1,
                array_bytes: 8,
                maps: 3
            }
        );
        assert_eq!(
            describe(&found),
            "Flax msgpack checkpoint: 3 maps, 1 arrays (8 B)"
        );
    }

    #[test]
    fn cut_checkpoints_are_recognised_and_never_safe() {
        let data = checkpoint();
        assert!(!is_cut_short(&data), "the whole file is not cut");
        let first_key = 2 + usize::from(data[1] & 0x1f);
        for cut in 0..data.len() {
            assert_eq!(is_cut_short(&data[..cut]), cut >= first_key, "cut at {cut}");
        }
        let report = crate::Scanner::default().scan_bytes("m.msgpack", &data[..data.len() - 1]);
        assert_eq!(report.format, "flax-msgpack");
        assert_eq!(report.verdict, crate::Verdict::Unscannable);
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.rule == crate::Rule::Truncated)
        );
        // Not Flax's shape before the cut: not a cut checkpoint.
        assert!(!is_cut_short(b"\x81\x01\xd4"), "non-string key");
        assert!(!is_cut_short(b"\x80\x04\x95"), "a pickle's PROTO");
    }

    #[test]
    fn near_misses_are_refused() {
        let data = checkpoint();
        for cut in 0..data.len() {
            assert_eq!(identify(&data[..cut]), None, "truncated at {cut}");
        }
        assert_eq!(
            identify(&[&data[..], b"."].concat()),
            None,
            "trailing bytes"
        );
        assert_eq!(identify(b"\x80\x04\x95\x00"), None, "a pickle's PROTO");
        assert_eq!(identify(b"\x81\xa1a\x01"), None, "no array leaf");
        assert_eq!(identify(b"\x81\x01\xd4\x01\x00"), None, "non-string key");
        let mut deep: Vec<u8> = std::iter::repeat_n([0x81, 0xa1, b'a'], 100)
            .flatten()
            .collect();
        deep.extend([0xd4, 0x01, 0x00]);
        assert!(identify(&deep[3 * 40..]).is_some(), "60 levels are read");
        assert_eq!(identify(&deep), None, "too deep");
        assert_eq!(
            identify(b"\xdf\xff\xff\xff\xff"),
            None,
            "huge count, no bytes"
        );
    }
}
