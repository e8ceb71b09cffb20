//! Builds small torch-style zip checkpoints byte by byte, for round-trip tests and the fuzz
//! targets: a protocol-2 `data.pkl` in the layout `torch.save` writes (a dict of
//! `_rebuild_tensor_v2` calls on `('storage', torch.<Type>Storage, key, 'cpu', numel)`
//! persistent ids) and stored records, with no torch involved.

/// One tensor to write: its storage class, raw little-endian storage bytes and view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    pub name: String,
    /// `FloatStorage`, `HalfStorage`, ... (a class of [`crate::formats::torch::STORAGE_TYPES`]).
    pub storage_class: &'static str,
    pub element_size: u64,
    pub storage: Vec<u8>,
    pub offset: u64,
    pub shape: Vec<u64>,
    pub strides: Vec<u64>,
}

/// The pickle `torch.save` would write for a dict of these tensors (storage key = index).
pub fn state_dict_pickle(tensors: &[TensorSpec]) -> Vec<u8> {
    let views: Vec<Rebuild<'_>> = tensors
        .iter()
        .enumerate()
        .map(|(key, t)| Rebuild {
            name: &t.name,
            storage_class: t.storage_class,
            key,
            numel: t.storage.len() as u64 / t.element_size.max(1),
            offset: t.offset,
            shape: &t.shape,
            strides: &t.strides,
        })
        .collect();
    rebuild_pickle(&views)
}

/// One `_rebuild_tensor_v2` call of a state dict.
struct Rebuild<'a> {
    name: &'a str,
    storage_class: &'static str,
    key: usize,
    numel: u64,
    offset: u64,
    shape: &'a [u64],
    strides: &'a [u64],
}

fn rebuild_pickle(views: &[Rebuild<'_>]) -> Vec<u8> {
    let mut p = vec![0x80, 2, b'}', b'('];
    for t in views {
        unicode(&mut p, t.name);
        p.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n(");
        p.push(b'(');
        unicode(&mut p, "storage");
        p.extend_from_slice(format!("ctorch\n{}\n", t.storage_class).as_bytes());
        unicode(&mut p, &t.key.to_string());
        unicode(&mut p, "cpu");
        int(&mut p, t.numel);
        p.extend_from_slice(b"tQ");
        int(&mut p, t.offset);
        tuple(&mut p, t.shape);
        tuple(&mut p, t.strides);
        p.extend_from_slice(b"\x89ccollections\nOrderedDict\n)RtR");
    }
    p.extend_from_slice(b"u.");
    p
}

/// A storage that several views share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageSpec {
    pub storage_class: &'static str,
    pub element_size: u64,
    pub bytes: Vec<u8>,
}

/// A named view of the storage at index `storage` of a [`shared_checkpoint`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewSpec {
    pub name: String,
    pub storage: usize,
    pub offset: u64,
    pub shape: Vec<u64>,
    pub strides: Vec<u64>,
}

/// A torch-style checkpoint whose tensors are views of shared storages (storage key = its
/// index; each view must name an existing storage).
pub fn shared_checkpoint(storages: &[StorageSpec], views: &[ViewSpec]) -> Vec<u8> {
    let rebuilds: Vec<Rebuild<'_>> = views
        .iter()
        .map(|v| {
            let s = &storages[v.storage];
            Rebuild {
                name: &v.name,
                storage_class: s.storage_class,
                key: v.storage,
                numel: s.bytes.len() as u64 / s.element_size.max(1),
                offset: v.offset,
                shape: &v.shape,
                strides: &v.strides,
            }
        })
        .collect();
    let mut records = vec![
        ("archive/data.pkl".to_string(), rebuild_pickle(&rebuilds)),
        ("archive/byteorder".to_string(), b"little".to_vec()),
    ];
    for (key, s) in storages.iter().enumerate() {
        records.push((format!("archive/data/{key}"), s.bytes.clone()));
    }
    records.push(("archive/version".to_string(), b"3\n".to_vec()));
    stored_zip(&records)
}

/// The bytes a contiguous copy of `view` of `storage` holds, element by element.
pub fn expected_view_bytes(storage: &StorageSpec, view: &ViewSpec) -> Vec<u8> {
    expected_bytes(&TensorSpec {
        name: view.name.clone(),
        storage_class: storage.storage_class,
        element_size: storage.element_size,
        storage: storage.bytes.clone(),
        offset: view.offset,
        shape: view.shape.clone(),
        strides: view.strides.clone(),
    })
}

fn unicode(p: &mut Vec<u8>, s: &str) {
    p.push(b'X');
    p.extend_from_slice(&(s.len() as u32).to_le_bytes());
    p.extend_from_slice(s.as_bytes());
}

/// An int as CPython's `save_long` writes it at protocol 2: BININT1, BININT2 or BININT while
/// it fits a signed 32-bit int, else LONG1 with the fewest two's-complement bytes.
fn int(p: &mut Vec<u8>, v: u64) {
    if v < 0x100 {
        p.extend_from_slice(&[b'K', v as u8]);
    } else if v < 0x1_0000 {
        p.push(b'M');
        p.extend_from_slice(&(v as u16).to_le_bytes());
    } else if v < 0x8000_0000 {
        p.push(b'J');
        p.extend_from_slice(&(v as u32).to_le_bytes());
    } else {
        let mut bytes = v.to_le_bytes().to_vec();
        while bytes.len() > 1 && bytes[bytes.len() - 1] == 0 && bytes[bytes.len() - 2] < 0x80 {
            bytes.pop();
        }
        if bytes[bytes.len() - 1] >= 0x80 {
            bytes.push(0); // keep it positive
        }
        p.extend_from_slice(&[0x8a, bytes.len() as u8]);
        p.extend_from_slice(&bytes);
    }
}

fn tuple(p: &mut Vec<u8>, items: &[u64]) {
    p.push(b'(');
    for &i in items {
        int(p, i);
    }
    p.push(b't');
}

/// A stored zip of `(name, bytes)` records, as a minimal writer lays it out.
pub fn stored_zip(records: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in records {
        let offset = out.len() as u32;
        let crc = crc32(data);
        let fixed = |sig: &[u8], buf: &mut Vec<u8>| {
            buf.extend_from_slice(sig);
            buf.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            buf.extend_from_slice(&crc.to_le_bytes());
            buf.extend_from_slice(&(data.len() as u32).to_le_bytes());
            buf.extend_from_slice(&(data.len() as u32).to_le_bytes());
            buf.extend_from_slice(&(name.len() as u16).to_le_bytes());
            buf.extend_from_slice(&[0, 0]);
        };
        fixed(b"PK\x03\x04", &mut out);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        central.extend_from_slice(b"PK\x01\x02\x14\x00");
        let mut entry = Vec::new();
        fixed(b"", &mut entry);
        central.extend_from_slice(&entry);
        central.extend_from_slice(&[0; 10]);
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let dir_offset = out.len() as u32;
    let count = records.len() as u16;
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&dir_offset.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(data);
    crc.sum()
}

/// A complete torch-style checkpoint holding `tensors`.
pub fn checkpoint(tensors: &[TensorSpec]) -> Vec<u8> {
    let mut records = vec![
        ("archive/data.pkl".to_string(), state_dict_pickle(tensors)),
        ("archive/byteorder".to_string(), b"little".to_vec()),
    ];
    for (key, t) in tensors.iter().enumerate() {
        records.push((format!("archive/data/{key}"), t.storage.clone()));
    }
    records.push(("archive/version".to_string(), b"3\n".to_vec()));
    stored_zip(&records)
}

/// The bytes a contiguous copy of the view holds, computed element by element.
pub fn expected_bytes(t: &TensorSpec) -> Vec<u8> {
    let numel: u64 = t.shape.iter().product();
    let es = t.element_size as usize;
    let mut out = Vec::new();
    let mut idx = vec![0u64; t.shape.len()];
    for _ in 0..numel {
        let elem = t.offset + idx.iter().zip(&t.strides).map(|(i, s)| i * s).sum::<u64>();
        let at = elem as usize * es;
        out.extend_from_slice(t.storage.get(at..at + es).unwrap_or_default());
        for d in (0..idx.len()).rev() {
            idx[d] += 1;
            if idx[d] < t.shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    out
}

/// A legacy (pre-1.6, `_use_new_zipfile_serialization=False`) checkpoint holding `tensors`:
/// the magic number, protocol version and sys_info pickles, the state dict pickle, the list
/// of storage keys, then each storage as an int64 element count and its bytes.
pub fn legacy_checkpoint(tensors: &[TensorSpec]) -> Vec<u8> {
    // LONG1 of torch.serialization.MAGIC_NUMBER (0x1950a86a20f9469cfc6c), little-endian.
    let mut out = vec![0x80, 2, 0x8a, 10];
    out.extend_from_slice(&0x1950a86a20f9469cfc6c_u128.to_le_bytes()[..10]);
    out.push(b'.');
    out.extend_from_slice(b"\x80\x02M\xe9\x03."); // protocol version 1001
    out.extend_from_slice(b"\x80\x02}."); // sys_info (an empty dict)
    out.extend_from_slice(&state_dict_pickle(tensors));
    out.extend_from_slice(b"\x80\x02](");
    for key in 0..tensors.len() {
        unicode(&mut out, &key.to_string());
    }
    out.extend_from_slice(b"e.");
    for t in tensors {
        out.extend_from_slice(&(t.storage.len() as u64 / t.element_size.max(1)).to_le_bytes());
        out.extend_from_slice(&t.storage);
    }
    out
}
