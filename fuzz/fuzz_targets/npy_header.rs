//! NumPy header target: any bytes after the magic parse or fail cleanly, never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut npy = b"\x93NUMPY".to_vec();
    npy.extend_from_slice(data);
    if let Ok(header) = airlock::formats::numpy::parse_header(&npy) {
        let _ = header.data_len();
    }
    let _ = airlock::formats::numpy::literal::parse(&String::from_utf8_lossy(data), true);
});
