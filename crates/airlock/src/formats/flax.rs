//! msgpack files, and Flax msgpack checkpoints (`flax.serialization.to_bytes`) among them:
//! identified and verified as data.
//!
//! msgpack has no magic. Flax writes one msgpack value: a map of string keys whose values are
//! nested maps, and whose leaves are arrays packed as msgpack *ext* values (type 1 ndarray,
//! 2 native complex, 3 numpy scalar; `flax/serialization.py`), or plain numbers. The test here
//! is that shape, strictly: the whole file is exactly one msgpack value (no trailing bytes),
//! the top level is a non-empty map, every map key is a string, and at least one leaf is a
//! Flax ext value. Reading is bounded (nesting depth [`MAX_DEPTH`]; every element consumes at
//! least one byte, so a count larger than the bytes left is refused at once and the walk is
//! linear in the file).
//!
//! `flax.serialization.msgpack_restore` runs `msgpack.unpackb` with an ext hook that only
//! builds arrays: ext 1 and 3 hold `msgpack.packb((shape, dtype.name, buffer))` read back with
//! `np.frombuffer(buffer, np.dtype(name)).reshape(shape)`, ext 2 `packb((real, imag))`, and
//! any other ext code stays an inert `msgpack.ExtType`. msgpack itself builds only numbers,
//! strings, bytes, lists and dicts. So a checkpoint whose every Flax leaf decodes the way
//! Flax writes it (a 3-tuple with non-negative dimensions, a dtype whose item size is known,
//! and a buffer of exactly `prod(shape) * itemsize` bytes) is data and nothing else: safe. A
//! leaf that does not decode so is reported (the loader would raise or read something
//! Airlock did not verify), and a checkpoint cut short is never safe.
//!
//! No pickle that does anything can pass: see [`super::pickle_stream::loader_runs_nothing`]
//! (`0x80`-`0x84` fail before importing), and identified files still get the pickle probe.

/// Flax's ext type codes: ndarray, native complex, numpy scalar.
use crate::bytes::ByteReader;
pub use crate::limits::caps::flax::MAX_DEPTH;

const EXT_NDARRAY: i8 = 1;
const EXT_COMPLEX: i8 = 2;
const EXT_SCALAR: i8 = 3;

/// Item sizes of the dtype names Flax writes (`arr.dtype.name`; `bfloat16` and the narrow
/// types through JAX's ml_dtypes). Another name is reported, not trusted.
const DTYPE_SIZES: &[(&str, u64)] = &[
    ("bool", 1),
    ("int8", 1),
    ("uint8", 1),
    ("int16", 2),
    ("uint16", 2),
    ("float16", 2),
    ("bfloat16", 2),
    ("int32", 4),
    ("uint32", 4),
    ("float32", 4),
    ("int64", 8),
    ("uint64", 8),
    ("float64", 8),
    ("complex64", 8),
    ("complex128", 16),
    // ml_dtypes' narrow types (JAX quantisation), one byte per element in numpy.
    ("float8_e4m3fn", 1),
    ("float8_e5m2", 1),
    ("float8_e4m3fnuz", 1),
    ("float8_e5m2fnuz", 1),
    ("float8_e4m3b11fnuz", 1),
    ("float8_e3m4", 1),
    ("float8_e4m3", 1),
    ("float8_e8m0fnu", 1),
    ("int4", 1),
    ("uint4", 1),
    ("int2", 1),
    ("uint2", 1),
];

/// What the walk counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlaxSummary {
    /// Flax ext leaves (arrays and scalars).
    pub arrays: u64,
    /// Bytes held in them.
    pub array_bytes: u64,
    /// Maps, top level included.
    pub maps: u64,
    /// The first Flax leaf that does not decode as Flax writes it, if any.
    pub problem: Option<String>,
}

/// Identifies a Flax msgpack checkpoint (see the module docs); `None` for anything else.
pub fn identify(data: &[u8]) -> Option<FlaxSummary> {
    if !matches!(data.first(), Some(0x81..=0x8f | 0xde | 0xdf)) {
        return None;
    }
    let mut reader = Reader::new(data, true);
    reader.value(0, false)?;
    (reader.bytes.is_at_end() && reader.summary.arrays > 0).then_some(reader.summary)
}

/// True for a Flax checkpoint cut short: the top level is a map, at least one key was read
/// whole, and every element read so far has Flax's shape until the bytes end inside one.
/// Such a prefix is no msgpack value at all (flax.serialization.from_bytes refuses it), but
/// it is the start of a checkpoint and must not pass as unknown bytes.
pub fn is_cut_short(data: &[u8]) -> bool {
    if !matches!(data.first(), Some(0x81..=0x8f | 0xde | 0xdf)) {
        return false;
    }
    let mut reader = Reader::new(data, true);
    reader.value(0, false).is_none() && reader.ran_out && reader.keys > 0
}

/// True when `data` is exactly one non-empty msgpack map (any keys): what `msgpack.unpackb`
/// reads whole (spaCy pipelines, srsly, configs). Scalars and arrays alone are not claimed:
/// any byte below `0x80` is a scalar, and `\x93NUM` (a cut `.npy` magic) an array of three.
pub fn is_msgpack(data: &[u8]) -> bool {
    let nonempty_container = match data.first() {
        Some(0x81..=0x8f) => true,
        Some(0xde | 0xdf) => data.get(1..3).is_some_and(|n| n != [0, 0]),
        _ => false,
    };
    let mut reader = Reader::new(data, false);
    nonempty_container && reader.value(0, false).is_some() && reader.bytes.is_at_end()
}

/// Where a msgpack value that runs past the end of `data` was cut (any keys, any top-level
/// type): `None` when `data` is a whole value, or fails for another reason first.
pub fn cut_msgpack(data: &[u8]) -> Option<usize> {
    let mut reader = Reader::new(data, false);
    (reader.value(0, false).is_none() && reader.ran_out).then_some(reader.bytes.position())
}

struct Reader<'a> {
    bytes: ByteReader<'a>,
    /// Flax's shape: string keys, no top-level array.
    flax: bool,
    summary: FlaxSummary,
    /// Map keys read whole.
    keys: u64,
    /// Set when a read wanted bytes past the end.
    ran_out: bool,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8], flax: bool) -> Self {
        Reader {
            bytes: ByteReader::new(data),
            flax,
            summary: FlaxSummary::default(),
            keys: 0,
            ran_out: false,
        }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let read = self.bytes.read_bytes(n);
        self.ran_out |= read.is_err();
        read.ok()
    }

    /// A big-endian length of `width` (1, 2 or 4) bytes.
    fn uint(&mut self, width: usize) -> Option<usize> {
        let v = big_endian(self.take(width)?);
        usize::try_from(v).ok()
    }

    /// Each element takes at least one byte: a count beyond the bytes left cannot be read.
    fn count(&mut self, n: usize, per_item: usize) -> Option<usize> {
        let checked = self
            .bytes
            .check_size(n as u64, per_item as u64, u64::MAX, "msgpack items");
        self.ran_out |= checked.is_err();
        checked.ok()
    }

    /// Reads one value; `key` requires it to be a string (Flax only).
    fn value(&mut self, depth: usize, key: bool) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        let tag = *self.take(1)?.first()?;
        let is_str = matches!(tag, 0xa0..=0xbf | 0xd9..=0xdb);
        if key && self.flax && !is_str {
            return None;
        }
        match tag {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => Some(()),
            0x80..=0x8f => self.map(usize::from(tag & 0x0f), depth),
            0x90..=0x9f => self.array(usize::from(tag & 0x0f), depth),
            0xa0..=0xbf => self.take(usize::from(tag & 0x1f)).map(drop),
            0xc4..=0xc6 | 0xd9..=0xdb => {
                let width = if tag >= 0xd9 { tag - 0xd9 } else { tag - 0xc4 };
                let n = self.uint(1 << width)?;
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
        let n = self.count(n, 2)?;
        self.summary.maps += 1;
        for _ in 0..n {
            self.value(depth + 1, true)?;
            self.keys += 1;
            self.value(depth + 1, false)?;
        }
        Some(())
    }

    fn array(&mut self, n: usize, depth: usize) -> Option<()> {
        if depth == 0 && self.flax {
            return None;
        }
        let n = self.count(n, 1)?;
        (0..n).try_for_each(|_| self.value(depth + 1, false))
    }

    fn ext(&mut self, n: usize) -> Option<()> {
        let kind = *self.take(1)?.first()? as i8;
        let payload = self.take(n)?;
        if !matches!(kind, EXT_NDARRAY | EXT_COMPLEX | EXT_SCALAR) {
            return Some(());
        }
        self.summary.arrays += 1;
        self.summary.array_bytes += n as u64;
        if self.summary.problem.is_none()
            && let Err(why) = check_flax_leaf(kind, payload)
        {
            let index = self.summary.arrays;
            self.summary.problem = Some(format!("Flax leaf {index} (ext type {kind}): {why}"));
        }
        Some(())
    }
}

/// Checks one Flax ext payload the way `_msgpack_ext_unpack` reads it.
fn check_flax_leaf(kind: i8, payload: &[u8]) -> Result<(), String> {
    let mut p = Payload {
        bytes: ByteReader::new(payload),
    };
    if kind == EXT_COMPLEX {
        // packb((real, imag)): two floats (or ints, which complex() also takes).
        if p.array_len()? != 2 {
            return Err("a complex is not a (real, imag) pair".into());
        }
        p.number()?;
        p.number()?;
    } else {
        // packb((shape, dtype.name, buffer), use_bin_type=True).
        if p.array_len()? != 3 {
            return Err("not a (shape, dtype, buffer) triple".into());
        }
        let dims = p.array_len()?;
        let mut elements = 1u64;
        for _ in 0..dims {
            elements = elements
                .checked_mul(p.uint()?)
                .ok_or("the shape overflows")?;
        }
        let dtype = p.bytes()?;
        let dtype = std::str::from_utf8(dtype).map_err(|_| "dtype name is not UTF-8")?;
        let size = DTYPE_SIZES
            .iter()
            .find(|(name, _)| *name == dtype)
            .map(|(_, size)| *size)
            .ok_or_else(|| format!("dtype `{}` is not one Flax writes", dtype.escape_debug()))?;
        let buffer = p.bytes()?.len() as u64;
        let expected = elements.checked_mul(size).ok_or("the shape overflows")?;
        if buffer != expected {
            return Err(format!(
                "buffer holds {buffer} bytes, shape and dtype `{dtype}` need {expected}"
            ));
        }
    }
    if !p.bytes.is_at_end() {
        return Err("bytes follow the packed value".into());
    }
    Ok(())
}

/// A cursor over one ext payload (itself a msgpack value).
struct Payload<'a> {
    bytes: ByteReader<'a>,
}

/// The value of big-endian `bytes` (msgpack's lengths and dimensions; at most 8 bytes).
fn big_endian(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |v, b| v << 8 | u64::from(*b))
}

impl<'a> Payload<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        self.bytes
            .position()
            .checked_add(n)
            .ok_or("length overflows")?;
        self.bytes
            .read_bytes(n)
            .map_err(|_| "the payload ends inside a value".to_string())
    }

    fn tag(&mut self) -> Result<u8, String> {
        self.bytes
            .read_u8()
            .map_err(|_| "the payload ends inside a value".to_string())
    }

    fn be(&mut self, width: usize) -> Result<u64, String> {
        Ok(big_endian(self.take(width)?))
    }

    fn array_len(&mut self) -> Result<u64, String> {
        match self.tag()? {
            t @ 0x90..=0x9f => Ok(u64::from(t & 0x0f)),
            0xdc => self.be(2),
            0xdd => self.be(4),
            t => Err(format!("expected an array, found tag {t:#04x}")),
        }
    }

    fn uint(&mut self) -> Result<u64, String> {
        match self.tag()? {
            t @ 0x00..=0x7f => Ok(u64::from(t)),
            t @ 0xcc..=0xcf => self.be(1 << (t - 0xcc)),
            t => Err(format!("expected a dimension, found tag {t:#04x}")),
        }
    }

    fn number(&mut self) -> Result<(), String> {
        match self.tag()? {
            0x00..=0x7f | 0xe0..=0xff => Ok(()),
            0xca => self.take(4).map(drop),
            0xcb => self.take(8).map(drop),
            t @ 0xcc..=0xd3 => self.take(1 << (t & 0x03)).map(drop),
            t => Err(format!("expected a number, found tag {t:#04x}")),
        }
    }

    /// A str or bin (Flax reads both as bytes: `raw=True`).
    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = match self.tag()? {
            t @ 0xa0..=0xbf => u64::from(t & 0x1f),
            t @ (0xc4..=0xc6) => self.be(1 << (t - 0xc4))?,
            t @ (0xd9..=0xdb) => self.be(1 << (t - 0xd9))?,
            t => return Err(format!("expected bytes, found tag {t:#04x}")),
        };
        self.take(usize::try_from(n).map_err(|_| "length overflows")?)
    }
}

/// The report's description of an identified checkpoint.
pub fn describe(summary: &FlaxSummary) -> String {
    format!(
        "Flax msgpack checkpoint: {} maps, {} arrays ({})",
        summary.maps,
        summary.arrays,
        crate::text::human_bytes(summary.array_bytes)
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
        // ext8, 21 bytes, type 1: packb(((2,), "float32", 8 bytes))
        data.extend([0xc7, 21, 0x01]);
        data.extend([0x93, 0x91, 0x02, 0xa7]);
        data.extend(b"float32");
        data.extend([0xc4, 0x08]);
        data.extend([0; 8]);
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
                array_bytes: 21,
                maps: 3,
                problem: None
            }
        );
        assert_eq!(
            describe(&found),
            "Flax msgpack checkpoint: 3 maps, 1 arrays (21 B)"
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

    fn fixture(name: &str) -> Vec<u8> {
        crate::testkit::fixture("formats/msgpack", name)
    }

    /// Checkpoints written by flax.serialization itself (make_fixtures.py): ndarray, bfloat16,
    /// numpy scalar and complex leaves; two and three top-level keys (0x82 / 0x83, EXT1 / EXT2
    /// to a pickle reader). They were "identified, not vouched for" (unscannable).
    #[test]
    fn real_flax_checkpoints_are_verified_safe() {
        for name in ["flax_model.msgpack", "flax_scalars.msgpack"] {
            let data = fixture(name);
            let summary = identify(&data).unwrap();
            assert_eq!(summary.problem, None, "{name}");
            let report = crate::Scanner::default().scan_bytes(name, &data);
            assert_eq!(report.format, "flax-msgpack", "{name}");
            assert_eq!(
                report.verdict,
                crate::Verdict::Safe,
                "{name}: {:?}",
                report.findings
            );
            assert!(report.findings.is_empty(), "{name}: {:?}", report.findings);
        }
    }

    #[test]
    fn a_leaf_flax_would_not_decode_is_not_safe() {
        let good = checkpoint();
        // The dtype's item size no longer matches the buffer ("float32" -> "float64").
        let mut wide = good.clone();
        let at = wide.windows(7).position(|w| w == b"float32").unwrap();
        wide[at..at + 7].copy_from_slice(b"float64");
        // An object dtype, which np.frombuffer refuses.
        let mut object = good.clone();
        object[at..at + 7].copy_from_slice(b"object_");
        for (what, data) in [("float64", wide), ("object", object)] {
            let summary = identify(&data).unwrap();
            assert!(summary.problem.is_some(), "{what}");
            let report = crate::Scanner::default().scan_bytes("m.msgpack", &data);
            assert_ne!(report.verdict, crate::Verdict::Safe, "{what}");
        }
        assert_eq!(identify(&good).unwrap().problem, None);
    }

    /// Every cut of a real checkpoint: never safe once its first key is whole, and never
    /// safe at all under the name transformers loads it by.
    #[test]
    fn every_cut_of_a_real_checkpoint_is_never_safe() {
        let data = fixture("flax_model.msgpack");
        let first_key = 2 + usize::from(data[1] & 0x1f);
        for cut in 1..data.len() {
            let named = crate::Scanner::default().scan_bytes("flax_model.msgpack", &data[..cut]);
            assert_ne!(named.verdict, crate::Verdict::Safe, "named, cut at {cut}");
            if cut >= first_key {
                let r = crate::Scanner::default().scan_bytes("m.msgpack", &data[..cut]);
                assert_ne!(r.verdict, crate::Verdict::Safe, "cut at {cut}");
            }
        }
    }

    /// Hostile bytes: every single-byte change of a real checkpoint, read by every entry point
    /// without a panic.
    #[test]
    fn every_byte_flip_of_a_real_checkpoint_is_read_without_panic() {
        let data = fixture("flax_scalars.msgpack");
        for at in 0..data.len() {
            for value in [0x00, 0x7f, 0x80, 0xc1, 0xc7, 0xdd, 0xdf, 0xff] {
                let mut bad = data.clone();
                bad[at] = value;
                let _ = identify(&bad);
                let _ = is_cut_short(&bad);
                let _ = is_msgpack(&bad);
                let _ = cut_msgpack(&bad);
            }
        }
    }

    #[test]
    fn msgpack_maps_are_identified_as_data() {
        for name in ["map1", "map2", "map3", "map4", "map16"] {
            let data = fixture(&format!("{name}.msgpack"));
            assert!(is_msgpack(&data), "{name}");
            let report = crate::Scanner::default().scan_bytes(name, &data);
            assert_eq!(
                (report.format.as_str(), report.verdict),
                ("msgpack", crate::Verdict::Safe),
                "{name}: {:?}",
                report.findings
            );
        }
        assert!(!is_msgpack(b"\x80"), "an empty map is not claimed");
        assert!(!is_msgpack(b"\x05"), "nor is a scalar");
        assert!(!is_msgpack(b"\x93NUM"), "nor an array (a cut .npy magic)");
        assert!(!is_msgpack(b"\x81\xa1a"), "cut");
        assert_eq!(cut_msgpack(b"\x81\xa1a"), Some(3));
        assert_eq!(
            cut_msgpack(b"\xdf\xff\xff\xff\xff"),
            Some(5),
            "count past the bytes"
        );
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
