//! Zip members compressed with bzip2 (12) and LZMA (14), which CPython's `zipfile` decodes
//! (so `numpy.load`, Keras and pickle-in-zip loaders read them): decoded and scanned, not
//! reported as "not inspected". Fixtures: `scripts/fixtures/make_zip_methods.py`.

use airlock::{Scanner, Verdict};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(crate::fixtures(name)).unwrap()
}

#[test]
fn bzip2_and_lzma_members_are_decoded_and_scanned() {
    let scanner = Scanner::default();
    for method in ["bzip2", "lzma"] {
        let benign = fixture(&format!("formats/zip_methods/benign_{method}.zip"));
        let report = scanner.scan_bytes("benign.zip", &benign);
        assert_eq!(
            report.verdict,
            Verdict::Safe,
            "{method}: {:?}",
            report.findings
        );
        let malicious = fixture(&format!("formats/zip_methods/malicious_{method}.zip"));
        let report = scanner.scan_bytes("malicious.zip", &malicious);
        assert_eq!(
            report.verdict,
            Verdict::Dangerous,
            "{method}: {:?}",
            report.findings
        );
        assert!(
            report
                .imports
                .iter()
                .any(|i| i.qualified() == "posix.system" || i.qualified() == "os.system"),
            "{method}: {:?}",
            report.imports
        );
    }
}

#[test]
fn cut_bzip2_and_lzma_members_are_never_safe() {
    let scanner = Scanner::default();
    for method in ["bzip2", "lzma"] {
        let data = fixture(&format!("formats/zip_methods/benign_{method}.zip"));
        // Shorter than the local header's magic the bytes are not a zip to any reader.
        for cut in 4..data.len() {
            let report = scanner.scan_bytes("cut.zip", &data[..cut]);
            assert_ne!(
                report.verdict,
                Verdict::Safe,
                "{method} cut at {cut}: {:?}",
                report.findings
            );
        }
    }
}
