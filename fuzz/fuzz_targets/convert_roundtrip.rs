//! Round-trip target: a state dict described by the input (dtypes, shapes, strides, offsets,
//! storage bytes) is written as a torch-style checkpoint, converted, and every tensor of the
//! output must equal the view computed element by element.
#![no_main]
use airlock::convert::{
    Options, convert_file,
    testkit::{self, TensorSpec},
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

/// Reads one tensor description from the front of `data`.
fn tensor(data: &mut &[u8], index: usize) -> Option<TensorSpec> {
    let mut take = || {
        let (&b, rest) = data.split_first()?;
        *data = rest;
        Some(u64::from(b))
    };
    let (storage_class, element_size) = CLASSES[(take()? as usize) % CLASSES.len()];
    let rank = (take()? % 4) as usize;
    let mut shape = Vec::new();
    let mut strides = Vec::new();
    for _ in 0..rank {
        shape.push(take()? % 6);
        strides.push(take()? % 12);
    }
    let offset = take()? % 8;
    let numel: u64 = shape.iter().product();
    let reach = if numel == 0 {
        offset
    } else {
        offset
            + shape
                .iter()
                .zip(&strides)
                .map(|(d, s)| (d - 1) * s)
                .sum::<u64>()
            + 1
    };
    let elements = reach + take()? % 3;
    let seed = take()? as u8;
    let storage = (0..elements * element_size)
        .map(|i| seed.wrapping_add(i as u8))
        .collect();
    Some(TensorSpec {
        name: format!("t{index}"),
        storage_class,
        element_size,
        storage,
        offset,
        shape,
        strides,
    })
}

fuzz_target!(|data: &[u8]| {
    let mut data = data;
    let mut specs = Vec::new();
    while specs.len() < 8 {
        match tensor(&mut data, specs.len()) {
            Some(t) => specs.push(t),
            None => break,
        }
    }
    if specs.is_empty() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("in.pt");
    let output = dir.path().join("out.safetensors");
    std::fs::write(&input, testkit::checkpoint(&specs)).expect("write input");
    let options = Options {
        verify: true,
        ..Options::default()
    };
    convert_file(&input, &output, &options).expect("a well-formed checkpoint converts");
    let bytes = std::fs::read(&output).expect("read output");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("output validates");
    for spec in &specs {
        let t = st.tensor(&spec.name).expect("every tensor is written");
        assert_eq!(
            t.data(),
            testkit::expected_bytes(spec).as_slice(),
            "{}",
            spec.name
        );
    }
});
