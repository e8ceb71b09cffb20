//! Round-trip target: a state dict described by the input (dtypes, shapes, strides, offsets,
//! storage bytes, and which tensors are views of an earlier tensor's storage) is written as a
//! torch-style checkpoint, converted, and every name must get the view computed element by
//! element: written, or removed as an exact alias (same storage, offset, shape, strides) of a
//! name that is written.
#![no_main]
use airlock::convert::{
    Options, convert_file,
    testkit::{self, StorageSpec, ViewSpec},
};
use libfuzzer_sys::fuzz_target;

const CLASSES: &[(&str, u64)] = &[
    ("FloatStorage", 4),
    ("HalfStorage", 2),
    ("BFloat16Storage", 2),
    ("LongStorage", 8),
    ("ByteStorage", 1),
    ("BoolStorage", 1),
    ("ComplexFloatStorage", 8),
];

/// Elements from `offset` to the last element a view reaches, plus one (`offset` if empty).
fn reach(offset: u64, shape: &[u64], strides: &[u64]) -> u64 {
    if shape.contains(&0) {
        return offset;
    }
    offset
        + shape
            .iter()
            .zip(strides)
            .map(|(d, s)| (d - 1) * s)
            .sum::<u64>()
        + 1
}

/// Reads one tensor description from the front of `data`: a view of a new storage sized to
/// hold it, or (when the first byte is odd) a view of an earlier storage, flattened to stride
/// 0 (or emptied) when it would not fit there.
fn tensor(data: &mut &[u8], storages: &mut Vec<StorageSpec>, index: usize) -> Option<ViewSpec> {
    let mut take = || {
        let (&b, rest) = data.split_first()?;
        *data = rest;
        Some(u64::from(b))
    };
    let kind = take()?;
    let rank = (take()? % 4) as usize;
    let mut shape = Vec::new();
    let mut strides = Vec::new();
    for _ in 0..rank {
        shape.push(take()? % 6);
        strides.push(take()? % 12);
    }
    let mut offset = take()? % 8;
    let extra = take()? % 3;
    let seed = take()? as u8;
    let storage = if kind % 2 == 1 && !storages.is_empty() {
        let storage = (kind / 2) as usize % storages.len();
        let s = &storages[storage];
        let elements = s.bytes.len() as u64 / s.element_size;
        if reach(offset, &shape, &strides) > elements {
            if elements == 0 {
                // Only an empty view fits an empty storage (a 0-d one holds one element).
                shape = vec![0];
                strides = vec![1];
            } else {
                offset = 0;
                strides.iter_mut().for_each(|s| *s = 0);
            }
        }
        storage
    } else {
        let (storage_class, element_size) = CLASSES[(kind / 2) as usize % CLASSES.len()];
        let elements = reach(offset, &shape, &strides) + extra;
        let bytes = (0..elements * element_size)
            .map(|i| seed.wrapping_add(i as u8))
            .collect();
        storages.push(StorageSpec {
            storage_class,
            element_size,
            bytes,
        });
        storages.len() - 1
    };
    Some(ViewSpec {
        name: format!("t{index}"),
        storage,
        offset,
        shape,
        strides,
    })
}

fuzz_target!(|data: &[u8]| {
    let mut data = data;
    let mut storages = Vec::new();
    let mut views = Vec::new();
    while views.len() < 8 {
        match tensor(&mut data, &mut storages, views.len()) {
            Some(v) => views.push(v),
            None => break,
        }
    }
    if views.is_empty() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("in.pt");
    let output = dir.path().join("out.safetensors");
    std::fs::write(&input, testkit::shared_checkpoint(&storages, &views)).expect("write input");
    let options = Options {
        verify: true,
        no_sync: true,
        ..Options::default()
    };
    convert_file(&input, &output, &options).expect("a well-formed checkpoint converts");
    let bytes = std::fs::read(&output).expect("read output");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("output validates");
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).expect("header");
    let metadata = meta.metadata().clone().unwrap_or_default();
    for v in &views {
        let written = match st.tensor(&v.name) {
            Ok(t) => t,
            Err(_) => {
                let kept = metadata
                    .get(&v.name)
                    .expect("a missing name is recorded as an alias");
                let k = views
                    .iter()
                    .find(|k| &k.name == kept)
                    .expect("the alias names a tensor");
                let same = |v: &ViewSpec| (v.storage, v.offset, v.shape.clone(), v.strides.clone());
                assert_eq!(
                    same(k),
                    same(v),
                    "{} removed as an alias of another view",
                    v.name
                );
                st.tensor(kept).expect("the kept name is written")
            }
        };
        let expected = testkit::expected_view_bytes(&storages[v.storage], v);
        assert_eq!(written.data(), expected.as_slice(), "{}", v.name);
    }
});
