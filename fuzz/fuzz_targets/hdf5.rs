//! HDF5 reader: superblock, object headers, attributes, global heap. Any bytes must produce a report without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let scanner = airlock::Scanner::default();
    common::check_report(&scanner.scan_with("model.h5", data, airlock::formats::hdf5::scan_hdf5));
});
