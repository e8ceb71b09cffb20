//! HDF5 files (legacy Keras `.h5`, `model.weights.h5`): reads the root group's attributes
//! through the file's real structure and hands `model_config` / `training_config` to the Keras
//! analysis; `keras_version` and `backend` are noted.
//!
//! Why a hand-written reader: binding the C libhdf5 to parse hostile files is ruled out by its
//! CVE history, and the pure-Rust HDF5 crates on crates.io are young, pull in ndarray, rayon
//! and caches, and are not written to bound work on hostile input. What Keras needs is small:
//! superblock v0–v3, the root object header (v1, or v2 `OHDR` with `OCHK` continuation
//! blocks), attribute messages v1–v3, fixed-length strings, and variable-length strings
//! through the global heap (`GCOL`), which is how h5py stores `str` attributes. Every offset
//! is bounds-checked, loops over continuation blocks are capped and de-duplicated, nothing is
//! allocated from a declared size without checking it against the file. Dense attribute storage
//! (more than 8 attributes on a new-style group: a fractal heap indexed by a v2 B-tree) and
//! dense link storage (groups with many links, or `track_order`, in files h5py writes with
//! `libver="latest"`) are followed for the layouts h5py produces (see [`dense`]). Features this reader does not
//! follow (deeper B-trees, huge or filtered heap objects, shared datatypes) are reported as
//! KER008, which marks the file incomplete instead of guessing. Dataset contents (weights)
//! are never read.

use crate::ctx::Ctx;
use crate::format::Format;
use crate::report::Finding;
use crate::rules::Rule;

const SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";
use crate::limits::caps::hdf5::MAX_CHUNKS;
use crate::limits::caps::hdf5::MAX_MESSAGES;
/// Root attributes that hold Keras JSON.
const JSON_ATTRIBUTES: &[&str] = &["model_config", "training_config"];

type R<T> = Result<T, String>;

/// The offset of the superblock signature: 0, 512, 1024, 2048, ... within the data.
pub fn find_superblock(data: &[u8]) -> Option<usize> {
    let mut at = 0usize;
    while at < data.len() {
        if data.get(at..at + 8) == Some(SIGNATURE) {
            return Some(at);
        }
        at = if at == 0 { 512 } else { at.checked_mul(2)? };
    }
    None
}

/// One attribute of the root group, value decoded when it is a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub name: String,
    /// The string value(s), for string attributes; `None` for other types.
    pub text: Option<String>,
}

struct File<'a> {
    data: &'a [u8],
    base: u64,
    offset_size: usize,
    length_size: usize,
}

impl<'a> File<'a> {
    fn slice(&self, at: u64, len: u64) -> R<&'a [u8]> {
        let start = self.base.checked_add(at).ok_or("address overflow")?;
        let end = start.checked_add(len).ok_or("address overflow")?;
        let (start, end) = (
            usize::try_from(start).map_err(|_| "address too large")?,
            usize::try_from(end).map_err(|_| "address too large")?,
        );
        self.data
            .get(start..end)
            .ok_or_else(|| format!("structure at {start:#x}..{end:#x} lies outside the file"))
    }

    fn rest(&self, at: u64) -> R<&'a [u8]> {
        let start = usize::try_from(self.base.checked_add(at).ok_or("address overflow")?)
            .map_err(|_| "address too large")?;
        self.data
            .get(start..)
            .ok_or_else(|| format!("address {start:#x} lies outside the file"))
    }
}

/// Little-endian unsigned integer of `n` (1..=8) bytes at `at`. Wider fields (a fractal
/// heap may declare heap IDs over 64 bits) keep their low 64 bits, as before the byte reader.
fn uint(bytes: &[u8], at: usize, n: usize) -> R<u64> {
    at.checked_add(n).ok_or("overflow")?;
    let slice = crate::bytes::ByteReader::new(bytes)
        .at(at)
        .and_then(|mut field| field.read_bytes(n))
        .map_err(|_| "truncated field")?;
    Ok(slice
        .iter()
        .rev()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

fn undefined(addr: u64, size: usize) -> bool {
    size >= 8 && addr == u64::MAX || size < 8 && addr == (1u64 << (8 * size)) - 1
}

/// Reads the superblock and returns the file view and the root object header address.
fn open(data: &[u8]) -> R<(File<'_>, u64)> {
    let sb_at = find_superblock(data).ok_or("no HDF5 signature")?;
    let sb = data.get(sb_at..).unwrap_or_default();
    let version = *sb.get(8).ok_or("truncated superblock")?;
    let (offset_size, length_size, fields_at) = match version {
        0 | 1 => (
            usize::from(*sb.get(13).ok_or("truncated superblock")?),
            usize::from(*sb.get(14).ok_or("truncated superblock")?),
            if version == 0 { 24 } else { 28 },
        ),
        2 | 3 => (
            usize::from(*sb.get(9).ok_or("truncated superblock")?),
            usize::from(*sb.get(10).ok_or("truncated superblock")?),
            12,
        ),
        v => return Err(format!("superblock version {v} is not supported")),
    };
    if !matches!(offset_size, 2 | 4 | 8) || !matches!(length_size, 2 | 4 | 8) {
        return Err(format!(
            "invalid sizes of offsets/lengths ({offset_size}/{length_size})"
        ));
    }
    let o = offset_size;
    let base = uint(sb, fields_at, o)?;
    let root = match version {
        // base, free-space, end-of-file, driver, then the root symbol table entry
        // (link name offset, object header address, ...).
        0 | 1 => uint(sb, fields_at + 4 * o + o, o)?,
        // base, superblock extension, end-of-file, root object header.
        _ => uint(sb, fields_at + 3 * o, o)?,
    };
    // The base address is absolute; h5py writes it as the superblock's own offset.
    let base = if base == 0 { sb_at as u64 } else { base };
    Ok((
        File {
            data,
            base,
            offset_size,
            length_size,
        },
        root,
    ))
}

/// A raw header message: type and body.
struct Message<'a> {
    kind: u16,
    body: &'a [u8],
}

/// Collects the messages of the object header at `addr`, following continuation blocks.
fn header_messages<'a>(file: &File<'a>, addr: u64) -> R<Vec<Message<'a>>> {
    let head = file.rest(addr)?;
    let mut messages = Vec::new();
    let mut pending: Vec<(u64, u64, bool)> = Vec::new();
    let v2 = head.starts_with(b"OHDR");
    if v2 {
        let flags = *head.get(5).ok_or("truncated object header")?;
        let mut at =
            6 + if flags & 0x20 != 0 { 16 } else { 0 } + if flags & 0x10 != 0 { 4 } else { 0 };
        let size_len = 1usize << (flags & 3);
        let chunk_len = uint(head, at, size_len)?;
        at += size_len;
        let chunk = head
            .get(at..)
            .and_then(|c| c.get(..usize::try_from(chunk_len).ok()?))
            .ok_or("object header chunk runs past the end of the file")?;
        read_v2_messages(chunk, flags, &mut messages, &mut pending, file)?;
    } else {
        if head.first() != Some(&1) {
            return Err(format!(
                "object header version {:?} is not supported",
                head.first()
            ));
        }
        let size = uint(head, 8, 4)?;
        let chunk = file.slice(addr.checked_add(16).ok_or("overflow")?, size)?;
        read_v1_messages(chunk, &mut messages, &mut pending, file)?;
    }
    let mut seen = Vec::new();
    while let Some((at, len, is_v2)) = pending.pop() {
        if seen.contains(&at) || seen.len() >= MAX_CHUNKS {
            return Err("object header continuation blocks loop or are too many".into());
        }
        seen.push(at);
        let block = file.slice(at, len)?;
        if is_v2 {
            let body = block
                .strip_prefix(b"OCHK")
                .ok_or("continuation block without OCHK signature")?;
            let flags = *head.get(5).unwrap_or(&0);
            read_v2_messages(body, flags, &mut messages, &mut pending, file)?;
        } else {
            read_v1_messages(block, &mut messages, &mut pending, file)?;
        }
    }
    Ok(messages)
}

fn continuation(file: &File, body: &[u8]) -> R<(u64, u64)> {
    Ok((
        uint(body, 0, file.offset_size)?,
        uint(body, file.offset_size, file.length_size)?,
    ))
}

fn read_v1_messages<'a>(
    chunk: &'a [u8],
    out: &mut Vec<Message<'a>>,
    pending: &mut Vec<(u64, u64, bool)>,
    file: &File,
) -> R<()> {
    let mut at = 0usize;
    while at + 8 <= chunk.len() {
        let kind = uint(chunk, at, 2)? as u16;
        let size = uint(chunk, at + 2, 2)? as usize;
        let body = chunk
            .get(at + 8..at + 8 + size)
            .ok_or("header message runs past its block")?;
        push(out, pending, file, kind, body, false)?;
        at += 8 + size.next_multiple_of(8);
    }
    Ok(())
}

fn read_v2_messages<'a>(
    chunk: &'a [u8],
    flags: u8,
    out: &mut Vec<Message<'a>>,
    pending: &mut Vec<(u64, u64, bool)>,
    file: &File,
) -> R<()> {
    let header = if flags & 0x04 != 0 { 6 } else { 4 };
    let end = chunk.len().saturating_sub(4); // checksum
    let mut at = 0usize;
    while at + header <= end {
        let kind = u16::from(*chunk.get(at).ok_or("truncated message")?);
        let size = uint(chunk, at + 1, 2)? as usize;
        let body = chunk
            .get(at + header..at + header + size)
            .ok_or("header message runs past its block")?;
        push(out, pending, file, kind, body, true)?;
        at += header + size;
    }
    Ok(())
}

fn push<'a>(
    out: &mut Vec<Message<'a>>,
    pending: &mut Vec<(u64, u64, bool)>,
    file: &File,
    kind: u16,
    body: &'a [u8],
    v2: bool,
) -> R<()> {
    if out.len() >= MAX_MESSAGES {
        return Err("too many header messages".into());
    }
    if kind == 0x10 {
        let (at, len) = continuation(file, body)?;
        pending.push((at, len, v2));
    }
    out.push(Message { kind, body });
    Ok(())
}

/// Dense storage: attribute or link messages kept in a fractal heap, found through the
/// name-index v2 B-tree (as HDF5's attribute info and link info messages point to them).
/// Supported: a B-tree of depth 0 or 1 (up to about 2,000 names with HDF5's default node
/// size), managed or tiny heap objects, a root direct block or a root indirect block of direct
/// blocks, no I/O filters. Anything else is an error (reported, not guessed).
mod dense {
    use super::{File, R, uint, undefined};

    struct Heap {
        id_len: usize,
        offset_bytes: usize,
        length_bytes: usize,
        width: u64,
        start_block: u64,
        max_direct: u64,
        root: u64,
        rows: u64,
    }

    fn heap(file: &File, addr: u64) -> R<Heap> {
        let (o, l) = (file.offset_size, file.length_size);
        let h = file.slice(addr, (22 + 12 * l + 3 * o + 16) as u64)?;
        if !h.starts_with(b"FRHP") {
            return Err("fractal heap without FRHP signature".into());
        }
        let id_len = uint(h, 5, 2)? as usize;
        if uint(h, 7, 2)? != 0 {
            return Err("fractal heap with I/O filters".into());
        }
        let max_object = uint(h, 10, 4)?;
        let at = 14 + l + o + l + o + 8 * l;
        let width = uint(h, at, 2)?;
        let start_block = uint(h, at + 2, l)?;
        let max_direct = uint(h, at + 2 + l, l)?;
        let max_heap_bits = uint(h, at + 2 + 2 * l, 2)?;
        let root = uint(h, at + 6 + 2 * l, o)?;
        let rows = uint(h, at + 6 + 2 * l + o, 2)?;
        if width == 0
            || !start_block.is_power_of_two()
            || !max_direct.is_power_of_two()
            || max_direct < start_block
            || max_heap_bits > 64
        {
            return Err("fractal heap with an invalid doubling table".into());
        }
        let bits_for = |n: u64| (64 - n.leading_zeros() as usize).div_ceil(8).max(1);
        Ok(Heap {
            id_len,
            offset_bytes: (max_heap_bits as usize).div_ceil(8),
            length_bytes: bits_for(max_direct.min(max_object)),
            width,
            start_block,
            max_direct,
            root,
            rows,
        })
    }

    use crate::limits::caps::hdf5::MAX_NAMES;

    /// Records of a v2 B-tree name index, and where the heap ID sits in each.
    #[derive(Clone, Copy)]
    pub(super) enum NameIndex {
        /// Type 8, attribute names: heap ID, flags, creation order, hash.
        Attributes,
        /// Type 5, link names of an indexed group: hash, heap ID.
        Links,
    }

    impl NameIndex {
        fn record_type(self) -> u8 {
            match self {
                NameIndex::Attributes => 8,
                NameIndex::Links => 5,
            }
        }

        fn id_offset(self) -> usize {
            match self {
                NameIndex::Attributes => 0,
                NameIndex::Links => 4,
            }
        }
    }

    /// The messages (attribute or link messages) a dense-storage object keeps in its fractal
    /// heap, in name-index order.
    pub(super) fn messages<'a>(
        file: &File<'a>,
        heap_addr: u64,
        btree_addr: u64,
        index: NameIndex,
    ) -> R<Vec<&'a [u8]>> {
        let heap = heap(file, heap_addr)?;
        let mut out = Vec::new();
        for id in name_index_ids(file, btree_addr, heap.id_len, index)? {
            out.push(object(file, &heap, id)?);
        }
        Ok(out)
    }

    /// Heap IDs from a name-index v2 B-tree of depth 0 (one leaf) or 1 (a root internal node
    /// over leaves: about 2,000 links or attributes with HDF5's default 512-byte nodes).
    fn name_index_ids<'a>(
        file: &File<'a>,
        addr: u64,
        id_len: usize,
        index: NameIndex,
    ) -> R<Vec<&'a [u8]>> {
        if undefined(addr, file.offset_size) {
            return Err("dense storage without a name index".into());
        }
        let o = file.offset_size;
        let h = file.slice(addr, (16 + o + 2 + file.length_size) as u64)?;
        if !h.starts_with(b"BTHD") {
            return Err("v2 B-tree without BTHD signature".into());
        }
        if h.get(5) != Some(&index.record_type()) {
            return Err("v2 B-tree of another record type".into());
        }
        let node_size = uint(h, 6, 4)? as usize;
        let record_size = uint(h, 10, 2)? as usize;
        let depth = uint(h, 12, 2)?;
        let root = uint(h, 16, o)?;
        let count = uint(h, 16 + o, 2)? as usize;
        let id_at = index.id_offset();
        if record_size == 0 || record_size < id_at + id_len {
            return Err("v2 B-tree records shorter than a heap ID".into());
        }
        let mut records = Vec::new();
        match depth {
            0 => records.extend(node_records(file, root, b"BTLF", count, record_size)?.0),
            1 => {
                // HDF5 sizes a child's record count by the most records a leaf can hold
                // (node size less signature, version, type and checksum).
                let max_leaf = node_size.saturating_sub(10) / record_size;
                let nrec_bytes = (max_leaf.max(1).ilog2() / 8 + 1) as usize;
                let (own, after) = node_records(file, root, b"BTIN", count, record_size)?;
                records.extend(own);
                let pointers = file.slice(after, ((count + 1) * (o + nrec_bytes)) as u64)?;
                for pointer in pointers.chunks_exact(o + nrec_bytes) {
                    let child = uint(pointer, 0, o)?;
                    let nrec = uint(pointer, o, nrec_bytes)? as usize;
                    if nrec > max_leaf {
                        return Err("v2 B-tree leaf with more records than fit".into());
                    }
                    // Children may all point at one leaf: bound the records, not the nodes.
                    if records.len() + nrec > MAX_NAMES {
                        return Err("name index with more names than Airlock reads".into());
                    }
                    records.extend(node_records(file, child, b"BTLF", nrec, record_size)?.0);
                }
            }
            _ => return Err("name index deeper than two levels".into()),
        }
        Ok(records
            .into_iter()
            .filter_map(|r| r.get(id_at..id_at + id_len))
            .collect())
    }

    /// The `count` records of the node at `addr` (checked signature) and the address just
    /// past them.
    fn node_records<'a>(
        file: &File<'a>,
        addr: u64,
        signature: &[u8; 4],
        count: usize,
        record_size: usize,
    ) -> R<(Vec<&'a [u8]>, u64)> {
        let total = count.checked_mul(record_size).ok_or("overflow")?;
        let node = file.slice(addr, (6 + total) as u64)?;
        if !node.starts_with(signature) {
            return Err("v2 B-tree node without its signature".into());
        }
        let records = node
            .get(6..)
            .unwrap_or_default()
            .chunks_exact(record_size)
            .collect();
        Ok((records, addr + 6 + total as u64))
    }

    fn object<'a>(file: &File<'a>, heap: &Heap, id: &'a [u8]) -> R<&'a [u8]> {
        let first = *id.first().ok_or("empty heap ID")?;
        match (first >> 4) & 3 {
            0 => {}
            2 => {
                let len = usize::from(first & 0x0f) + 1;
                return id
                    .get(1..1 + len)
                    .ok_or_else(|| "tiny heap object longer than its ID".to_string());
            }
            _ => return Err("attribute stored as a huge heap object".into()),
        }
        let offset = uint(id, 1, heap.offset_bytes)?;
        let length = uint(id, 1 + heap.offset_bytes, heap.length_bytes)?;
        let (block, block_offset) = block_containing(file, heap, offset)?;
        file.slice(
            block.checked_add(offset - block_offset).ok_or("overflow")?,
            length,
        )
    }

    /// The direct block holding heap offset `offset`: its address and its first heap offset.
    fn block_containing(file: &File, heap: &Heap, offset: u64) -> R<(u64, u64)> {
        if heap.rows == 0 {
            return Ok((heap.root, 0));
        }
        let ib_header = 5 + file.offset_size + heap.offset_bytes;
        let direct_rows = u64::from(heap.max_direct.ilog2() - heap.start_block.ilog2()) + 2;
        let mut start = 0u64;
        for row in 0..heap.rows.min(direct_rows) {
            let size = if row < 2 {
                heap.start_block
            } else {
                heap.start_block
                    .checked_shl((row - 1) as u32)
                    .ok_or("overflow")?
            };
            for col in 0..heap.width {
                if start > offset {
                    break;
                }
                let end = start.checked_add(size).ok_or("overflow")?;
                if (start..end).contains(&offset) {
                    let entry = (row * heap.width + col) as usize * file.offset_size;
                    let at = heap
                        .root
                        .checked_add((ib_header + entry) as u64)
                        .ok_or("overflow")?;
                    let addr = uint(
                        file.slice(at, file.offset_size as u64)?,
                        0,
                        file.offset_size,
                    )?;
                    if file.slice(heap.root, 4)? != b"FHIB" || file.slice(addr, 4)? != b"FHDB" {
                        return Err("fractal heap block without its signature".into());
                    }
                    return Ok((addr, start));
                }
                start = end;
            }
        }
        Err("heap object lies in an indirect block Airlock does not follow".into())
    }
}

/// Counts of what the group tree holds, read from structure only (no dataset data).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Structure {
    pub groups: usize,
    pub datasets: usize,
    /// Up to 20 dataset paths, for the summary.
    pub sample: Vec<String>,
    /// Why the walk stopped early, if it did (dense link storage, limits, corrupt nodes).
    pub incomplete: Option<String>,
}

use crate::limits::caps::hdf5::MAX_GROUP_DEPTH;
use crate::limits::caps::hdf5::MAX_OBJECTS;

/// Walks the group tree from the root: old-style groups (symbol table: v1 B-tree of SNOD
/// nodes, names in a local heap) and new-style compact groups (link messages). Hard links
/// that loop are visited once.
pub fn structure(data: &[u8]) -> R<Structure> {
    let (file, root) = open(data)?;
    let mut walk = TreeWalk {
        file: &file,
        seen: std::collections::HashSet::new(),
        out: Structure::default(),
        links: 0,
    };
    if let Err(e) = walk.object(root, String::new(), 0) {
        walk.out.incomplete = Some(e);
    }
    Ok(walk.out)
}

use crate::limits::caps::hdf5::MAX_LINKS;

struct TreeWalk<'f, 'a> {
    file: &'f File<'a>,
    seen: std::collections::HashSet<u64>,
    out: Structure,
    links: usize,
}

impl TreeWalk<'_, '_> {
    fn object(&mut self, addr: u64, path: String, depth: usize) -> R<()> {
        if self.seen.contains(&addr) {
            return Ok(());
        }
        if self.seen.len() >= MAX_OBJECTS || depth > MAX_GROUP_DEPTH {
            return Err("group tree larger or deeper than Airlock walks".into());
        }
        self.seen.insert(addr);
        let messages = header_messages(self.file, addr)?;
        let mut children = Vec::new();
        let mut group = false;
        for m in &messages {
            match m.kind {
                0x11 => {
                    group = true;
                    let o = self.file.offset_size;
                    let (btree, heap) = (uint(m.body, 0, o)?, uint(m.body, o, o)?);
                    self.symbol_table(btree, heap, &mut children, 0)?;
                }
                0x06 => {
                    group = true;
                    if let Some(child) = self.link(m.body)? {
                        children.push(child);
                    }
                }
                0x02 => {
                    // Link info: a defined fractal heap address means the group's links are
                    // link messages in that heap, indexed by name (HDF5's dense storage).
                    group = true;
                    let o = self.file.offset_size;
                    let flags = *m.body.get(1).ok_or("truncated link info")?;
                    let at = 2 + if flags & 1 != 0 { 8 } else { 0 };
                    let heap = uint(m.body, at, o)?;
                    if !undefined(heap, o) {
                        let names = uint(m.body, at + o, o)?;
                        let index = dense::NameIndex::Links;
                        for body in dense::messages(self.file, heap, names, index)? {
                            if let Some(child) = self.link(body)? {
                                children.push(child);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        self.links += children.len();
        if self.links > MAX_LINKS {
            return Err("group tree with more links than Airlock walks".into());
        }
        if group {
            self.out.groups += 1;
        } else if messages.iter().any(|m| m.kind == 0x08) {
            self.out.datasets += 1;
            if self.out.sample.len() < 20 {
                self.out.sample.push(path.clone());
            }
        }
        for (name, child) in children {
            self.object(child, format!("{path}/{name}"), depth + 1)?;
        }
        Ok(())
    }

    /// A link message: (name, object address) for hard links; soft/external links skipped.
    fn link(&self, body: &[u8]) -> R<Option<(String, u64)>> {
        let flags = *body.get(1).ok_or("truncated link message")?;
        let mut at = 2;
        let kind = if flags & 0x08 != 0 {
            at += 1;
            *body.get(2).ok_or("truncated link message")?
        } else {
            0
        };
        at += if flags & 0x04 != 0 { 8 } else { 0 } + usize::from(flags & 0x10 != 0);
        let len_size = 1usize << (flags & 3);
        let len = usize::try_from(uint(body, at, len_size)?).map_err(|_| "too large")?;
        at += len_size;
        let name = body
            .get(at..at.checked_add(len).ok_or("overflow")?)
            .ok_or("link name runs past its message")?;
        let name = String::from_utf8_lossy(name).into_owned();
        if kind != 0 {
            return Ok(None);
        }
        Ok(Some((name, uint(body, at + len, self.file.offset_size)?)))
    }

    /// Reads a v1 group B-tree (node type 0) and its SNOD leaves; names from the local heap.
    fn symbol_table(
        &mut self,
        node: u64,
        heap: u64,
        into: &mut Vec<(String, u64)>,
        depth: usize,
    ) -> R<()> {
        let (o, l) = (self.file.offset_size, self.file.length_size);
        if depth > 16 || into.len() > MAX_OBJECTS {
            return Err("group B-tree too deep or too large".into());
        }
        let head = self.file.slice(node, (8 + 2 * o) as u64)?;
        if !head.starts_with(b"TREE") || head.get(4) != Some(&0) {
            return Err("group B-tree node without TREE signature".into());
        }
        let level = *head.get(5).ok_or("truncated B-tree node")?;
        let entries = uint(head, 6, 2)? as usize;
        let body = self.file.slice(
            node.checked_add((8 + 2 * o) as u64).ok_or("overflow")?,
            ((entries + 1) * l + entries * o) as u64,
        )?;
        for i in 0..entries {
            let child = uint(body, l + i * (l + o), o)?;
            if level > 0 {
                self.symbol_table(child, heap, into, depth + 1)?;
            } else {
                self.snod(child, heap, into)?;
            }
        }
        Ok(())
    }

    fn snod(&mut self, addr: u64, heap: u64, into: &mut Vec<(String, u64)>) -> R<()> {
        let o = self.file.offset_size;
        let head = self.file.slice(addr, 8)?;
        if !head.starts_with(b"SNOD") {
            return Err("symbol table node without SNOD signature".into());
        }
        let count = uint(head, 6, 2)? as usize;
        let entry = 2 * o + 24;
        let entries = self.file.slice(
            addr.checked_add(8).ok_or("overflow")?,
            (count * entry) as u64,
        )?;
        let names = self.local_heap(heap)?;
        for e in entries.chunks_exact(entry) {
            let name_at = usize::try_from(uint(e, 0, o)?).map_err(|_| "too large")?;
            let name = names
                .get(name_at..)
                .ok_or("link name outside the local heap")?;
            let name = name.split(|&b| b == 0).next().unwrap_or_default();
            into.push((String::from_utf8_lossy(name).into_owned(), uint(e, o, o)?));
        }
        Ok(())
    }

    fn local_heap(&self, addr: u64) -> R<&[u8]> {
        let (o, l) = (self.file.offset_size, self.file.length_size);
        let head = self.file.slice(addr, (8 + 2 * l + o) as u64)?;
        if !head.starts_with(b"HEAP") {
            return Err("local heap without HEAP signature".into());
        }
        let size = uint(head, 8, l)?;
        let data = uint(head, 8 + 2 * l, o)?;
        self.file.slice(data, size)
    }
}

/// Reads the root group's attributes.
pub fn root_attributes(data: &[u8]) -> R<Vec<Attribute>> {
    let (file, root) = open(data)?;
    let mut attributes = Vec::new();
    for message in header_messages(&file, root)? {
        match message.kind {
            0x0C => attributes.push(attribute(&file, message.body)?),
            0x15 => {
                // Attribute info: a defined fractal heap address means dense storage.
                let flags = *message.body.get(1).ok_or("truncated attribute info")?;
                let at = 2 + if flags & 1 != 0 { 2 } else { 0 };
                let heap = uint(message.body, at, file.offset_size)?;
                let names = uint(message.body, at + file.offset_size, file.offset_size)?;
                if !undefined(heap, file.offset_size) {
                    for body in dense::messages(&file, heap, names, dense::NameIndex::Attributes)? {
                        attributes.push(attribute(&file, body)?);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(attributes)
}

fn attribute(file: &File, body: &[u8]) -> R<Attribute> {
    let version = *body.first().ok_or("empty attribute message")?;
    let flags = *body.get(1).ok_or("truncated attribute message")?;
    if flags & 3 != 0 {
        return Err("attribute uses a shared datatype or dataspace".into());
    }
    let name_len = uint(body, 2, 2)? as usize;
    let type_len = uint(body, 4, 2)? as usize;
    let space_len = uint(body, 6, 2)? as usize;
    let (pad, mut at) = match version {
        1 => (true, 8),
        2 => (false, 8),
        3 => (false, 9),
        v => return Err(format!("attribute message version {v} is not supported")),
    };
    let padded = |n: usize| if pad { n.next_multiple_of(8) } else { n };
    let name = body
        .get(at..at + name_len)
        .ok_or("attribute name runs past its message")?;
    let name = String::from_utf8_lossy(name)
        .trim_end_matches('\0')
        .to_string();
    at += padded(name_len);
    let datatype = body
        .get(at..at + type_len)
        .ok_or("attribute datatype runs past its message")?;
    at += padded(type_len);
    let dataspace = body
        .get(at..at + space_len)
        .ok_or("attribute dataspace runs past its message")?;
    at += padded(space_len);
    let values = body.get(at..).unwrap_or_default();
    let count = elements(dataspace, file.length_size)?;
    let text = string_value(file, datatype, values, count)?;
    Ok(Attribute { name, text })
}

/// Number of elements a dataspace describes (scalar: 1, null: 0).
fn elements(space: &[u8], length_size: usize) -> R<u64> {
    let version = *space.first().ok_or("empty dataspace")?;
    let rank = usize::from(*space.get(1).ok_or("truncated dataspace")?);
    let (dims_at, null) = match version {
        1 => (8, false),
        2 => (4, *space.get(3).ok_or("truncated dataspace")? == 2),
        v => return Err(format!("dataspace version {v} is not supported")),
    };
    if null {
        return Ok(0);
    }
    (0..rank).try_fold(1u64, |n, i| {
        let dim = uint(space, dims_at + i * length_size, length_size)?;
        n.checked_mul(dim)
            .ok_or_else(|| "dataspace size overflows".to_string())
    })
}

/// Decodes a string attribute (fixed-length, class 3, or variable-length string, class 9),
/// joining several elements with newlines. Other classes give `None`.
fn string_value(file: &File, datatype: &[u8], values: &[u8], count: u64) -> R<Option<String>> {
    let class = datatype.first().ok_or("empty datatype")? & 0x0f;
    let size = uint(datatype, 4, 4)?;
    let mut out = Vec::new();
    match class {
        3 => {
            let total = size.checked_mul(count).ok_or("attribute size overflows")?;
            let bytes = values
                .get(..usize::try_from(total).map_err(|_| "too large")?)
                .ok_or("attribute data runs past its message")?;
            for element in bytes.chunks(usize::try_from(size.max(1)).unwrap_or(1)) {
                out.push(
                    String::from_utf8_lossy(element)
                        .trim_end_matches(['\0', ' '])
                        .to_string(),
                );
            }
        }
        9 if datatype.get(1).is_some_and(|b| b & 0x0f == 1) => {
            let element = 4 + file.offset_size + 4;
            let max = values.len() / element;
            if count > max as u64 {
                return Err("variable-length attribute has more elements than data".into());
            }
            for i in 0..count as usize {
                let at = i * element;
                let heap = uint(values, at + 4, file.offset_size)?;
                let index = uint(values, at + 4 + file.offset_size, 4)?;
                out.push(
                    String::from_utf8_lossy(global_heap_object(file, heap, index)?).into_owned(),
                );
            }
        }
        _ => return Ok(None),
    }
    Ok(Some(out.join("\n")))
}

/// Finds object `index` in the global heap collection at `addr`.
fn global_heap_object<'a>(file: &File<'a>, addr: u64, index: u64) -> R<&'a [u8]> {
    let head = file.slice(addr, 8 + file.length_size as u64)?;
    if !head.starts_with(b"GCOL") {
        return Err("global heap collection without GCOL signature".into());
    }
    let size = uint(head, 8, file.length_size)?;
    let collection = file.slice(addr, size)?;
    let mut at = 8 + file.length_size;
    let object_header = 8 + file.length_size;
    while at + object_header <= collection.len() {
        let id = uint(collection, at, 2)?;
        let len = uint(collection, at + 8, file.length_size)?;
        if id == 0 {
            break;
        }
        let len = usize::try_from(len).map_err(|_| "too large")?;
        let data = collection
            .get(at + object_header..)
            .and_then(|d| d.get(..len))
            .ok_or("global heap object runs past its collection")?;
        if id == index {
            return Ok(data);
        }
        at = at + object_header + len.next_multiple_of(8);
    }
    Err(format!("global heap object {index} not found"))
}

/// The file length the superblock declares: its base address plus its end-of-file address
/// (relative to the base). `None` when the superblock cannot be read or the address is
/// undefined.
pub fn declared_end(data: &[u8]) -> Option<u64> {
    let sb_at = find_superblock(data)?;
    let sb = data.get(sb_at..)?;
    let (o, fields_at) = match *sb.get(8)? {
        0 => (usize::from(*sb.get(13)?), 24),
        1 => (usize::from(*sb.get(13)?), 28),
        2 | 3 => (usize::from(*sb.get(9)?), 12),
        _ => return None,
    };
    if !matches!(o, 2 | 4 | 8) {
        return None;
    }
    let base = uint(sb, fields_at, o).ok()?;
    // Base, then (v0/1) the free-space address or (v2/3) the superblock extension, then EOF.
    let eof = uint(sb, fields_at + 2 * o, o).ok()?;
    if undefined(eof, o) {
        return None;
    }
    let base = if base == 0 { sb_at as u64 } else { base };
    base.checked_add(eof)
}

/// A file shorter than its superblock's end-of-file address was cut short: libhdf5 refuses
/// it ("truncated file"), and whatever lay past the cut was not read. Reported as KER008,
/// which marks the file incomplete.
fn check_declared_end(ctx: &mut Ctx, data: &[u8]) {
    if let Some(end) = declared_end(data)
        && (data.len() as u64) < end
    {
        ctx.report(Finding::new(
            Rule::Hdf5Malformed,
            format!(
                "the file is {} bytes but its superblock declares {end}: truncated, and libhdf5 refuses it",
                data.len()
            ),
        ));
    }
}

/// Scans an HDF5 file as Keras would load it. Returns the format name.
pub fn scan_hdf5(ctx: &mut Ctx, data: &[u8]) -> Format {
    check_declared_end(ctx, data);
    let attributes = match root_attributes(data) {
        Ok(a) => a,
        Err(e) => {
            ctx.report(Finding::new(
                Rule::Hdf5Malformed,
                format!("HDF5 root group: {e}"),
            ));
            return Format::Hdf5;
        }
    };
    let text_of = |name: &str| {
        attributes
            .iter()
            .find(|a| a.name == name)
            .and_then(|a| a.text.clone())
    };
    if let Some(v) = text_of("keras_version") {
        ctx.note(format!("keras {v}"));
    }
    if let Some(b) = text_of("backend") {
        ctx.note(format!("backend {b}"));
    }
    let mut configs = 0;
    for name in JSON_ATTRIBUTES {
        if let Some(json) = text_of(name) {
            configs += 1;
            super::keras::scan_keras_json(ctx, json.as_bytes(), name);
        }
    }
    let weights_only = if configs == 0 {
        ", no model_config (weights only)"
    } else {
        ""
    };
    ctx.note(format!(
        "{} root attribute(s){weights_only}",
        attributes.len()
    ));
    match structure(data) {
        Ok(tree) => {
            ctx.note(format!(
                "{} groups, {} datasets (structure only, contents not read)",
                tree.groups, tree.datasets
            ));
            // A group or dataset Airlock could not reach may hold anything: incomplete.
            if let Some(why) = tree.incomplete {
                ctx.report(Finding::new(
                    Rule::Hdf5Malformed,
                    format!("group tree not fully walked: {why}"),
                ));
            }
        }
        Err(e) => ctx.report(Finding::new(
            Rule::Hdf5Malformed,
            format!("group tree not walked: {e}"),
        )),
    }
    if configs > 0 {
        Format::KerasH5
    } else {
        Format::Hdf5
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Verdict;
    use crate::scan::Scanner;

    fn fixture(name: &str) -> Vec<u8> {
        crate::testkit::fixture("formats/keras", name)
    }

    #[test]
    fn reads_root_attributes_written_by_h5py() {
        let attrs = root_attributes(&fixture("benign.h5")).unwrap();
        let names: Vec<_> = attrs.iter().map(|a| a.name.as_str()).collect();
        assert!(
            names.contains(&"model_config") && names.contains(&"keras_version"),
            "{names:?}"
        );
        let config = attrs.iter().find(|a| a.name == "model_config").unwrap();
        assert!(
            config
                .text
                .as_deref()
                .unwrap()
                .starts_with("{\"class_name\": \"Functional\"")
        );
    }

    #[test]
    fn benign_h5_is_safe_and_lambda_h5_is_dangerous() {
        let report = Scanner::default().scan_bytes("m.h5", &fixture("benign.h5"));
        assert_eq!(
            (report.format.as_str(), report.verdict),
            ("keras-h5", Verdict::Safe),
            "{:?}",
            report.findings
        );
        assert!(report.summary.contains("keras 3."), "{}", report.summary);
        let report = Scanner::default().scan_bytes("m.h5", &fixture("lambda.h5"));
        assert_eq!(report.verdict, Verdict::Dangerous);
        let f = report
            .findings
            .iter()
            .find(|f| f.rule == Rule::KerasLambda)
            .unwrap();
        assert!(
            f.message.contains("`system`") && f.message.contains("m/evil"),
            "{}",
            f.message
        );
    }

    #[test]
    fn signature_is_found_after_a_user_block() {
        let mut data = vec![0u8; 512];
        data.extend_from_slice(&fixture("benign.h5"));
        assert_eq!(find_superblock(&data), Some(512));
        assert_eq!(find_superblock(b"\x89HDF\r\n"), None);
    }

    #[test]
    fn truncated_or_corrupted_files_are_unscannable_never_panics() {
        let data = fixture("lambda.h5");
        for cut in (8..data.len()).step_by(97) {
            let report = Scanner::default().scan_bytes("m.h5", &data[..cut]);
            assert_ne!(report.verdict, Verdict::Safe, "cut at {cut}: {report:?}");
        }
        let benign = fixture("benign.h5");
        assert_eq!(declared_end(&benign), Some(benign.len() as u64));
        for cut in (8..benign.len()).step_by(89) {
            let report = Scanner::default().scan_bytes("m.h5", &benign[..cut]);
            assert!(
                report
                    .findings
                    .iter()
                    .any(|f| f.rule == Rule::Hdf5Malformed),
                "cut at {cut}: {:?}",
                report.findings
            );
        }
        let mut corrupt = data.clone();
        corrupt[0x40..0x48].copy_from_slice(&[0xff; 8]);
        let report = Scanner::default().scan_bytes("m.h5", &corrupt);
        assert_eq!(
            report.verdict,
            Verdict::Unscannable,
            "{:?}",
            report.findings
        );
    }

    #[test]
    fn v3_superblock_and_fixed_length_strings_are_read() {
        for file in ["lambda_v3.h5", "lambda_fixed.h5"] {
            let report = Scanner::default().scan_bytes(file, &fixture(file));
            assert_eq!(
                report.verdict,
                Verdict::Dangerous,
                "{file}: {:?}",
                report.findings
            );
            assert!(
                report
                    .findings
                    .iter()
                    .any(|f| f.rule == Rule::KerasLambda && f.message.contains("`system`")),
                "{file}: {:?}",
                report.findings
            );
        }
    }

    #[test]
    fn dense_attribute_storage_is_followed() {
        let attrs = root_attributes(&fixture("lambda_dense.h5")).unwrap();
        assert_eq!(attrs.len(), 15, "{attrs:?}");
        let report = Scanner::default().scan_bytes("m.h5", &fixture("lambda_dense.h5"));
        assert_eq!(report.verdict, Verdict::Dangerous, "{:?}", report.findings);
        assert!(report.findings.iter().any(|f| f.rule == Rule::KerasLambda));
        let data = fixture("lambda_dense.h5");
        for cut in (0..data.len()).step_by(61) {
            let _ = root_attributes(&data[..cut]);
        }
    }

    /// Groups whose links h5py keeps in dense storage (fractal heap + v2 B-tree name index),
    /// one leaf or a root internal node over leaves, nested: walked whole, not KER008.
    #[test]
    fn dense_link_storage_is_walked() {
        for (name, groups, datasets) in [
            ("dense_links_leaf.h5", 2, 20),
            ("dense_links_two_levels.h5", 2, 60),
            ("dense_links_nested.h5", 11, 100),
        ] {
            let tree = structure(&fixture(name)).unwrap();
            assert_eq!(tree.incomplete, None, "{name}");
            assert_eq!((tree.groups, tree.datasets), (groups, datasets), "{name}");
            let report = Scanner::default().scan_bytes(name, &fixture(name));
            assert_eq!(
                report.verdict,
                Verdict::Safe,
                "{name}: {:?}",
                report.findings
            );
            let data = fixture(name);
            for cut in (0..data.len()).step_by(97) {
                let _ = structure(&data[..cut]);
            }
        }
    }

    #[test]
    fn dataset_structure_is_listed_for_old_and_new_style_groups() {
        let tree = structure(&fixture("lambda.h5")).unwrap();
        assert_eq!(tree.incomplete, None);
        assert!(tree.datasets >= 2, "{tree:?}");
        assert!(
            tree.sample
                .iter()
                .any(|p| p.starts_with("/model_weights/dense")),
            "{tree:?}"
        );
        let report = Scanner::default().scan_bytes("m.h5", &fixture("benign.h5"));
        assert!(
            report.summary.contains(" datasets (structure only"),
            "{}",
            report.summary
        );
        let data = fixture("lambda.h5");
        for cut in (0..data.len()).step_by(53) {
            let _ = structure(&data[..cut]);
        }
    }
}
