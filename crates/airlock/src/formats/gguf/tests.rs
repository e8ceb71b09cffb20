//! Unit tests for the GGUF parser: hand-built files for each ggml check, plus the committed
//! fixtures under `tests/fixtures/formats/gguf`.

use super::*;
use crate::{Scanner, Verdict};

/// Builds a GGUF file field by field in either byte order.
struct Builder {
    out: Vec<u8>,
    be: bool,
}

impl Builder {
    fn new(version: u32, be: bool, n_tensors: u64, n_kv: u64) -> Self {
        let mut b = Builder {
            out: b"GGUF".to_vec(),
            be,
        };
        b.u32(version).u64(n_tensors).u64(n_kv);
        b
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        let bytes = if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.out.extend_from_slice(&bytes);
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        let bytes = if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.out.extend_from_slice(&bytes);
        self
    }
    fn str(&mut self, s: &str) -> &mut Self {
        self.u64(s.len() as u64);
        self.out.extend_from_slice(s.as_bytes());
        self
    }
    fn kv_str(&mut self, k: &str, v: &str) -> &mut Self {
        self.str(k).u32(T_STRING).str(v)
    }
    fn kv_u32(&mut self, k: &str, v: u32) -> &mut Self {
        self.str(k).u32(T_U32).u32(v)
    }
    /// A tensor info with the given dims, type and offset.
    fn tensor(&mut self, name: &str, dims: &[u64], ty: u32, offset: u64) -> &mut Self {
        self.str(name).u32(dims.len() as u32);
        for &d in dims {
            self.u64(d);
        }
        self.u32(ty).u64(offset)
    }
    /// Pads to 32 and appends `n` data bytes.
    fn data(&mut self, n: usize) -> Vec<u8> {
        let mut v = self.out.clone();
        while v.len() % 32 != 0 {
            v.push(0);
        }
        v.extend(std::iter::repeat_n(0u8, n));
        v
    }
}

fn rules_of(data: &[u8]) -> Vec<Rule> {
    let p = parse(data);
    p.problems
        .iter()
        .chain(p.fatal.iter())
        .map(|s| s.rule)
        .collect()
}

fn valid() -> Vec<u8> {
    Builder::new(3, false, 2, 2)
        .kv_str("general.architecture", "llama")
        .kv_u32("general.alignment", 32)
        .tensor("a", &[4, 2], 0, 0)
        .tensor("b", &[32], 8, 32)
        .data(32 + 34)
}

#[test]
fn valid_file_has_no_problems() {
    let f = valid();
    let p = parse(&f);
    assert!(p.fatal.is_none() && p.problems.is_empty(), "{p:?}");
    assert_eq!((p.version, p.n_tensors, p.n_kv), (3, 2, 2));
    assert_eq!(p.data_bytes, 32 + 64);
}

#[test]
fn big_endian_is_detected_and_read() {
    let f = Builder::new(3, true, 1, 1)
        .kv_str("general.architecture", "llama")
        .tensor("a", &[8], 0, 0)
        .data(32);
    let p = parse(&f);
    assert!(p.big_endian);
    assert!(p.fatal.is_none() && p.problems.is_empty(), "{p:?}");
}

#[test]
fn versions() {
    assert_eq!(
        rules_of(&Builder::new(1, false, 0, 0).out),
        vec![Rule::GgufVersion]
    );
    assert_eq!(
        rules_of(&Builder::new(4, false, 0, 0).out),
        vec![Rule::GgufVersion]
    );
    assert!(rules_of(&Builder::new(2, false, 0, 0).out).is_empty());
}

#[test]
fn bounds_checks() {
    // Huge counts.
    let f = Builder::new(3, false, u64::MAX, 1).out;
    assert_eq!(rules_of(&f), vec![Rule::GgufOutOfBounds]);
    // Plausible counts the bytes left cannot hold: a cut file.
    let f = Builder::new(3, false, 2, 7).out;
    assert_eq!(rules_of(&f), vec![Rule::Truncated]);
    // String within the cap but longer than the file: a cut file.
    let mut b = Builder::new(3, false, 0, 1);
    b.u64(1000).out.extend_from_slice(&[0; 16]);
    assert_eq!(rules_of(&b.out), vec![Rule::Truncated]);
    // String over the 1 GiB cap.
    let mut b = Builder::new(3, false, 0, 1);
    b.u64((1 << 30) + 1).out.extend_from_slice(&[0; 16]);
    assert_eq!(rules_of(&b.out), vec![Rule::GgufOutOfBounds]);
    // Array count within the cap that does not fit: a cut file.
    let mut b = Builder::new(3, false, 0, 1);
    b.str("k").u32(T_ARRAY).u32(T_U32).u64(1 << 29);
    assert_eq!(rules_of(&b.out), vec![Rule::Truncated]);
    // Array count over 1 Gi.
    let mut b = Builder::new(3, false, 0, 1);
    b.str("k").u32(T_ARRAY).u32(T_U8).u64((1 << 30) + 1);
    assert_eq!(rules_of(&b.out), vec![Rule::GgufOutOfBounds]);
}

#[test]
fn count_limits() {
    let mut b = Builder::new(3, false, 0, MAX_KV + 1);
    b.out
        .extend(std::iter::repeat_n(0u8, 12 * (MAX_KV as usize + 1)));
    assert_eq!(rules_of(&b.out), vec![Rule::GgufLimit]);
}

#[test]
fn value_type_checks() {
    let mut b = Builder::new(3, false, 0, 1);
    b.str("k").u32(T_ARRAY).u32(T_ARRAY).u64(1);
    assert_eq!(rules_of(&b.out), vec![Rule::GgufBadValueType]);
    let mut b = Builder::new(3, false, 0, 1);
    b.str("k").u32(13).u32(0);
    assert_eq!(rules_of(&b.out), vec![Rule::GgufBadValueType]);
}

#[test]
fn key_checks() {
    let f = Builder::new(3, false, 0, 3)
        .kv_str("", "x")
        .kv_str("a", "x")
        .kv_str("a", "y")
        .data(0);
    assert_eq!(rules_of(&f), vec![Rule::GgufBadKey, Rule::GgufBadKey]);
}

#[test]
fn alignment_checks() {
    let f = Builder::new(3, false, 0, 1)
        .kv_u32("general.alignment", 24)
        .data(0);
    assert_eq!(rules_of(&f), vec![Rule::GgufBadAlignment]);
    let f = Builder::new(3, false, 0, 1)
        .kv_u32("general.alignment", 0)
        .data(0);
    assert_eq!(rules_of(&f), vec![Rule::GgufBadAlignment]);
    let f = Builder::new(3, false, 0, 1)
        .kv_str("general.alignment", "32")
        .data(0);
    assert_eq!(rules_of(&f), vec![Rule::GgufBadAlignment]);
}

#[test]
fn tensor_checks() {
    let long = "x".repeat(64);
    let f = Builder::new(3, false, 1, 0)
        .tensor(&long, &[8], 0, 0)
        .data(32);
    assert_eq!(rules_of(&f), vec![Rule::GgufTensorName]);
    let f = Builder::new(3, false, 2, 0)
        .tensor("a", &[8], 0, 0)
        .tensor("a", &[8], 0, 32)
        .data(64);
    assert_eq!(rules_of(&f), vec![Rule::GgufDuplicateTensor]);
    let f = Builder::new(3, false, 1, 0)
        .tensor("a", &[1, 1, 1, 1, 1], 0, 0)
        .data(32);
    assert_eq!(rules_of(&f), vec![Rule::GgufBadShape]);
    let f = Builder::new(3, false, 1, 0)
        .tensor("a", &[u64::MAX], 0, 0)
        .data(32);
    assert_eq!(rules_of(&f), vec![Rule::GgufBadShape]);
    let f = Builder::new(3, false, 1, 0)
        .tensor("a", &[1 << 40, 1 << 40], 0, 0)
        .data(32);
    assert_eq!(rules_of(&f), vec![Rule::GgufBadShape]);
    let f = Builder::new(3, false, 1, 0)
        .tensor("a", &[8], 4, 0)
        .data(32);
    assert_eq!(rules_of(&f), vec![Rule::GgufBadTensorType]);
    let f = Builder::new(3, false, 1, 0)
        .tensor("a", &[8], 99, 0)
        .data(32);
    assert_eq!(rules_of(&f), vec![Rule::GgufBadTensorType]);
    let f = Builder::new(3, false, 1, 0)
        .tensor("a", &[33], 8, 0)
        .data(64);
    assert_eq!(rules_of(&f), vec![Rule::GgufBadTensorType]);
}

#[test]
fn offset_and_extent_checks() {
    let f = Builder::new(3, false, 2, 0)
        .tensor("a", &[8], 0, 0)
        .tensor("b", &[8], 0, 0)
        .data(64);
    assert_eq!(rules_of(&f), vec![Rule::GgufBadOffset]);
    // Data where the writer puts it, running past the end: a cut file.
    let f = Builder::new(3, false, 1, 0)
        .tensor("a", &[8], 0, 0)
        .data(16);
    assert_eq!(rules_of(&f), vec![Rule::Truncated]);
    // From a misplaced offset: not the shape of a cut.
    let f = Builder::new(3, false, 1, 0)
        .tensor("a", &[8], 0, 64)
        .data(32);
    assert_eq!(
        rules_of(&f),
        vec![Rule::GgufBadOffset, Rule::GgufDataOutsideFile]
    );
}

#[test]
fn scanner_reports_templates_and_summary() {
    let good = Builder::new(3, false, 0, 1)
        .kv_str(
            "tokenizer.chat_template",
            "{% for m in messages %}{{ m['content'] | trim }}{% endfor %}",
        )
        .data(0);
    let r = Scanner::default().scan_bytes("m.gguf", &good);
    assert_eq!(r.format, "gguf");
    assert_eq!(r.verdict, Verdict::Safe, "{:?}", r.findings);
    assert_eq!(
        r.summary,
        "gguf: v3 little-endian, header valid, 0 tensors, 1 metadata key, 0 B, 1 chat template safe"
    );
    let evil = Builder::new(3, false, 0, 1)
        .kv_str(
            "tokenizer.chat_template.tool_use",
            "{{ lipsum.__globals__['os'].popen('id').read() }}",
        )
        .data(0);
    let r = Scanner::default().scan_bytes("m.gguf", &evil);
    assert_eq!(r.verdict, Verdict::Dangerous);
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == Rule::GgufTemplateDangerous)
        .expect("template finding");
    assert!(
        f.message.contains("tokenizer.chat_template.tool_use"),
        "{}",
        f.message
    );
    assert!(f.message.contains("lipsum.__globals__"), "{}", f.message);
    // The offset points into the file at the offending token.
    let at = f.offset.expect("offset") as usize;
    assert_eq!(&evil[at..at + 6], b"lipsum");
}

#[test]
fn truncations_never_panic_and_are_never_safe() {
    let f = valid();
    for cut in 0..f.len() {
        let r = Scanner::default().scan_bytes("t.gguf", &f[..cut]);
        if cut >= 4 {
            assert_ne!(r.verdict, Verdict::Safe, "cut at {cut}");
        }
    }
}

/// Every committed fixture: benign ones are safe, the rest are not, and each malformed
/// fixture's name says which rule it must trigger.
#[test]
fn fixtures() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/formats/gguf");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("fixture dir") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("gguf") {
            continue;
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let data = std::fs::read(&path).expect("read");
        let r = Scanner::default().scan_bytes(&name, &data);
        assert_eq!(r.format, "gguf", "{name}");
        if name.starts_with("benign") {
            assert_eq!(r.verdict, Verdict::Safe, "{name}: {:?}", r.findings);
        } else {
            assert_ne!(r.verdict, Verdict::Safe, "{name}");
            if name.starts_with("truncated") {
                assert_eq!(r.verdict, Verdict::Unscannable, "{name}: {:?}", r.findings);
            }
            if let Some(code) = name
                .split(['_', '.'])
                .find(|p| p.starts_with("GGUF") || p.starts_with("GEN"))
            {
                assert!(
                    r.findings.iter().any(|f| f.rule.code() == code),
                    "{name}: expected {code}, got {:?}",
                    r.findings
                );
            }
            if name.starts_with("template") {
                assert_eq!(r.verdict, Verdict::Dangerous, "{name}");
            }
        }
        n += 1;
    }
    assert!(n >= 15, "only {n} fixtures found");
}

/// Reads every `*.jinja` fixture of `tests/fixtures/templates/<kind>`.
fn template_fixtures(kind: &str) -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/templates")
        .join(kind);
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("template fixture dir") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) == Some("jinja") {
            let name = path
                .file_stem()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let text = std::fs::read_to_string(&path).expect("read template");
            out.push((name.to_string(), text));
        }
    }
    out.sort();
    out
}

/// Published chat templates of well-known model families: all parse and none is flagged,
/// analysed alone and as a GGUF's `tokenizer.chat_template`.
#[test]
fn benign_family_templates_are_safe() {
    let fixtures = template_fixtures("benign");
    assert!(
        fixtures.len() >= 25,
        "only {} benign templates",
        fixtures.len()
    );
    let mut safe = 0;
    for (name, text) in &fixtures {
        let a = super::template::analyse(text);
        assert!(a.is_clean(), "{name}: {a:?}");
        let file = Builder::new(3, false, 0, 1)
            .kv_str("tokenizer.chat_template", text)
            .data(0);
        let r = Scanner::default().scan_bytes("m.gguf", &file);
        assert_eq!(r.verdict, Verdict::Safe, "{name}: {:?}", r.findings);
        safe += 1;
    }
    eprintln!("benign families: {safe} safe of {}", fixtures.len());
}

/// Injected variants, one per folding route: every one is dangerous (GGUF012).
#[test]
fn injected_templates_are_dangerous() {
    let fixtures = template_fixtures("malicious");
    assert!(
        fixtures.len() >= 40,
        "only {} injected templates",
        fixtures.len()
    );
    let mut flagged = 0;
    for (name, text) in &fixtures {
        let a = super::template::analyse(text);
        assert!(a.parse_error.is_none(), "{name}: {a:?}");
        assert!(a.hazards.iter().any(|h| h.dangerous), "{name}: {a:?}");
        let file = Builder::new(3, false, 0, 1)
            .kv_str("tokenizer.chat_template", text)
            .data(0);
        let r = Scanner::default().scan_bytes("m.gguf", &file);
        assert_eq!(r.verdict, Verdict::Dangerous, "{name}");
        assert!(
            r.findings
                .iter()
                .any(|f| f.rule == Rule::GgufTemplateDangerous),
            "{name}"
        );
        flagged += 1;
    }
    eprintln!("injected: {flagged} flagged of {}", fixtures.len());
}
