//! Converter target: any bytes, as a checkpoint file or as the `data.pkl` of a torch-style
//! zip with a few storages, must either convert to a file the safetensors crate validates or
//! fail with an error, never panic; and nothing `scan` rates dangerous or unscannable converts.
#![no_main]
use std::path::Path;

use airlock::convert::{Options, convert_file, testkit};
use airlock::{Scanner, Verdict};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let file = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        // The rest is the pickle; storages 0..4 exist with 16 × (key+1) bytes each.
        let mut records = vec![("archive/data.pkl".to_string(), rest.to_vec())];
        for key in 0..4u8 {
            records.push((
                format!("archive/data/{key}"),
                vec![key; 16 * (key as usize + 1)],
            ));
        }
        testkit::stored_zip(&records)
    };
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let input = dir.path().join("input.pt");
    let output = dir.path().join("output.safetensors");
    if std::fs::write(&input, &file).is_err() {
        return;
    }
    let options = Options {
        verify: mode & 2 != 0,
        flatten: mode & 4 != 0,
        skip_non_tensors: mode & 8 != 0,
        no_dedup: mode & 16 != 0,
        no_sync: true,
        ..Options::default()
    };
    match convert_file(&input, &output, &options) {
        Ok(_) => {
            let bytes = std::fs::read(&output).expect("the output exists after success");
            safetensors::SafeTensors::deserialize(&bytes).expect("the output validates");
            let verdict = Scanner::default().scan_path(&input).verdict;
            assert!(
                !matches!(verdict, Verdict::Dangerous | Verdict::Unscannable),
                "a {verdict} input was converted"
            );
        }
        Err(_) => assert!(!Path::new(&output).exists(), "no output after an error"),
    }
});
