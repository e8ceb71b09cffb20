//! TorchScript archives as users share them (torch.jit.script / torch.jit.trace, saved by
//! torch.jit.save) are safe once their code is verified; hand-written code that reaches files,
//! processes, the network or native code, or names classes the archive does not define, is
//! not. Fixtures: `scripts/fixtures/make_torchscript.py` (tests/fixtures/formats/torchscript/).

use airlock::{Rule, Scanner, Verdict};

fn each_fixture(prefix: &str) -> Vec<(String, Vec<u8>)> {
    let dir = crate::fixtures("formats/torchscript");
    let mut found: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".pt"))
        })
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    found.sort();
    found
}

#[test]
fn scripted_and_traced_models_are_safe() {
    let benign = each_fixture("benign_");
    assert_eq!(benign.len(), 5);
    for (name, bytes) in benign {
        let report = Scanner::default().scan_bytes(&name, &bytes);
        assert_eq!(report.format, "torchscript", "{name}");
        assert_eq!(
            report.verdict,
            Verdict::Safe,
            "{name}: {:?}",
            report.findings
        );
        assert!(
            report.findings.iter().any(|f| f.rule == Rule::TorchScript),
            "{name}: PT004 still notes the program"
        );
    }
}

#[test]
fn code_outside_the_allowlist_is_never_safe() {
    let malicious = each_fixture("malicious_PT008_");
    assert_eq!(malicious.len(), 14);
    for (name, bytes) in malicious {
        let report = Scanner::default().scan_bytes(&name, &bytes);
        assert_eq!(
            report.verdict,
            Verdict::Suspicious,
            "{name}: {:?}",
            report.findings
        );
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.rule == Rule::TorchScriptUnverified),
            "{name}: {:?}",
            report.findings
        );
    }
}

#[test]
fn host_calls_stay_dangerous_and_quantized_models_stay_unverified() {
    let [(name, bytes)] = &each_fixture("malicious_PT006_")[..] else {
        panic!("one PT006 fixture")
    };
    let report = Scanner::default().scan_bytes(name, bytes);
    assert_eq!(report.verdict, Verdict::Dangerous, "{:?}", report.findings);
    // By design: `ops.quantized.*` needs the quantized backend's native kernels and the
    // packed parameters are a custom class (`__torch__.torch.classes.quantized...`) that no
    // code file defines (PT007, PT008).
    let [(name, bytes)] = &each_fixture("bydesign_quantized")[..] else {
        panic!("one quantized fixture")
    };
    let report = Scanner::default().scan_bytes(name, bytes);
    assert_eq!(report.verdict, Verdict::Suspicious, "{:?}", report.findings);
}
