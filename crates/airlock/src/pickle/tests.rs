//! Engine tests: one group per opcode family and per rule, on pickles built byte by byte.

use crate::report::{FileReport, Verdict};
use crate::rules::{Rule, Severity};
use crate::{Limits, Policy, Scanner};

fn scan(data: &[u8]) -> FileReport {
    Scanner::default().scan_bytes("test.pkl", data)
}

fn rules(report: &FileReport) -> Vec<Rule> {
    report.findings.iter().map(|f| f.rule).collect()
}

fn imports(report: &FileReport) -> Vec<String> {
    report.imports.iter().map(|i| i.qualified()).collect()
}

/// `SHORT_BINUNICODE` of `s`.
fn u(s: &str) -> Vec<u8> {
    let mut out = vec![0x8c, s.len() as u8];
    out.extend_from_slice(s.as_bytes());
    out
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[test]
fn memoize_indexes_by_memo_size_not_by_last_index() {
    // PUT 5, then MEMOIZE stores at index 1 (the memo has one entry), so GET 1 finds "os".
    let data = cat(&[
        b"\x80\x04",
        &u("x"),
        b"q\x05",
        b"0",
        &u("os"),
        b"\x94",
        b"0",
        &u("system"),
        b"\x94", // index 2
        b"0",
        b"h\x01h\x02\x93",
        &u("ls"),
        b"\x85R.",
    ]);
    let r = scan(&data);
    assert_eq!(imports(&r), ["os.system"]);
    assert_eq!(r.verdict, Verdict::Dangerous);
}

#[test]
fn memo_get_variants_and_missing_keys() {
    let ok = cat(&[
        b"\x80\x02",
        &u("a"),
        b"r\x00\x01\x00\x00j\x00\x01\x00\x00\x86.",
    ]);
    assert_eq!(scan(&ok).verdict, Verdict::Safe);
    // keyerror-exploit: os.system runs, then a GET of a missing key makes the load fail.
    let data = cat(&[
        b"\x80\x04cos\nsystem\n",
        &u("echo"),
        b"\x85R0",
        &u("os"),
        b"\x94h\x03",
    ]);
    let r = scan(&data);
    assert_eq!(r.verdict, Verdict::Dangerous);
    assert!(rules(&r).contains(&Rule::MalformedPickle));
    assert_eq!(imports(&r), ["os.system"]);
}

#[test]
fn marks_fence_the_stack_and_pop_pops_a_mark() {
    // MARK POP is stack-neutral.
    let r = scan(b"\x80\x02K\x01(0\x85.");
    assert_eq!(r.verdict, Verdict::Safe, "{:?}", r.findings);
    // Values below a mark are out of reach: TUPLE1 right after MARK underflows.
    let r = scan(b"\x80\x02K\x01(\x85.");
    assert!(rules(&r).contains(&Rule::MalformedPickle));
    // POP_MARK discards to the mark.
    let r = scan(b"\x80\x02K\x01(K\x02K\x031.");
    assert_eq!(r.verdict, Verdict::Safe);
}

#[test]
fn stack_global_accepts_every_string_encoding() {
    type Encoder = Box<dyn Fn(&str) -> Vec<u8>>;
    let encodings: Vec<Encoder> = vec![
        Box::new(|s| format!("S'{s}'\n").into_bytes()),
        Box::new(|s| cat(&[b"T", &(s.len() as u32).to_le_bytes(), s.as_bytes()])),
        Box::new(|s| cat(&[b"U", &[s.len() as u8], s.as_bytes()])),
        Box::new(|s| format!("V{s}\n").into_bytes()),
        Box::new(|s| cat(&[b"X", &(s.len() as u32).to_le_bytes(), s.as_bytes()])),
        Box::new(u),
        Box::new(|s| cat(&[b"\x8d", &(s.len() as u64).to_le_bytes(), s.as_bytes()])),
    ];
    for (i, enc) in encodings.iter().enumerate() {
        let data = cat(&[&enc("os"), &enc("system"), b"\x93", &enc("ls"), b"\x85R."]);
        let r = scan(&data);
        assert_eq!(imports(&r), ["os.system"], "encoding {i}");
        assert_eq!(r.verdict, Verdict::Dangerous, "encoding {i}");
    }
}

#[test]
fn stack_global_with_computed_operands_is_dangerous() {
    // module name produced by a call (builtins.str is not allowlisted, but the point is the
    // STACK_GLOBAL: its operand is not a literal).
    let data = cat(&[
        b"\x80\x04cbuiltins\nstr\n",
        &u("os"),
        b"\x85R",
        &u("system"),
        b"\x93.",
    ]);
    let r = scan(&data);
    assert!(rules(&r).contains(&Rule::DynamicGlobal));
    assert_eq!(r.verdict, Verdict::Dangerous);
}

#[test]
fn stack_global_with_bytes_operands_fails_like_the_loader() {
    let data = b"\x80\x04C\x02osC\x06system\x93.";
    let r = scan(data);
    assert!(imports(&r).is_empty());
    assert!(rules(&r).contains(&Rule::MalformedPickle));
}

#[test]
fn inst_finds_its_mark_before_importing() {
    // With a mark: os.system is imported and called.
    let r = scan(b"(S'ls'\nios\nsystem\n.");
    assert_eq!(imports(&r), ["os.system"]);
    // Without a mark the C unpickler raises before find_class.
    let r = scan(b"ios\nsystem\n.");
    assert!(imports(&r).is_empty());
}

#[test]
fn obj_newobj_and_newobj_ex_are_calls() {
    let obj = scan(b"\x80\x02(cos\nsystem\nS'ls'\no.");
    assert_eq!(obj.verdict, Verdict::Dangerous);
    let newobj = scan(b"\x80\x02csubprocess\nPopen\nS'ls'\n\x85\x81.");
    assert_eq!(newobj.verdict, Verdict::Dangerous);
    let newobj_ex = scan(b"\x80\x04csubprocess\nPopen\n)}\x92.");
    assert_eq!(newobj_ex.verdict, Verdict::Dangerous);
}

#[test]
fn reduce_needs_a_tuple() {
    let r = scan(b"\x80\x02ccollections\nOrderedDict\nK\x01R.");
    assert!(rules(&r).contains(&Rule::MalformedPickle));
}

#[test]
fn build_on_an_imported_object_is_dangerous() {
    // sys_module_override shape: BUILD on `torch._utils` (a module) with a state dict.
    let data = cat(&[
        b"\x80\x04",
        &u("torch"),
        &u("_utils"),
        b"\x93}",
        &u("_rebuild_tensor"),
        &u("builtins"),
        b"sb.",
    ]);
    let r = scan(&data);
    assert!(rules(&r).contains(&Rule::BuildOnNonClass));
    assert_eq!(r.verdict, Verdict::Dangerous);
}

#[test]
fn setitems_on_a_tensor_is_dangerous_and_on_an_ordered_dict_is_fine() {
    let ordered = cat(&[
        b"\x80\x02ccollections\nOrderedDict\n)R(",
        &u("a"),
        b"K\x01u.",
    ]);
    assert_eq!(scan(&ordered).verdict, Verdict::Safe);
    let tensor = cat(&[
        b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n",
        b"((",
        &u("storage"),
        b"ctorch\nFloatStorage\n",
        &u("0"),
        &u("cpu"),
        b"K\x04tQK\x00K\x04\x85K\x01\x85\x89ccollections\nOrderedDict\n)Rt",
        b"R",
        b"K\x00K\x07s.",
    ]);
    let r = scan(&tensor);
    let finding = r
        .findings
        .iter()
        .find(|f| f.rule == Rule::MutationTarget)
        .expect("PKL007");
    assert_eq!(finding.severity, Severity::Dangerous);
}

#[test]
fn append_on_a_non_list_is_reported() {
    let r = scan(b"\x80\x02K\x01K\x02a.");
    assert!(rules(&r).contains(&Rule::MutationTarget));
    let ok = scan(b"\x80\x02]K\x01a(K\x02K\x03e.");
    assert_eq!(ok.verdict, Verdict::Safe);
}

#[test]
fn persistent_ids_must_be_storage_tuples() {
    let r = scan(b"\x80\x02S'whatever'\nQ.");
    assert!(rules(&r).contains(&Rule::PersistentId));
    let r = scan(b"\x80\x02(S'storage'\nctorch\nFloatStorage\nS'0'\nS'cpu'\nK\x01tQ.");
    assert!(!rules(&r).contains(&Rule::PersistentId));
    assert_eq!(r.verdict, Verdict::Safe);
}

#[test]
fn repeated_proto_is_reported() {
    let r = scan(b"\x80\x02\x80\x02K\x01.");
    assert!(rules(&r).contains(&Rule::RepeatedProto));
}

#[test]
fn unsupported_protocol_fails() {
    // Where bytes are known to be a pickle (an object array's data), the loader's error is
    // reported; on its own the stream is not a pickle at all (formats::pickle_stream).
    let r = Scanner::default().scan_with("t", b"\x80\x06K\x01.", |ctx, d| {
        crate::formats::pickle_stream::scan_pickles(ctx, d)
    });
    assert!(rules(&r).contains(&Rule::MalformedPickle));
    assert_eq!(scan(b"\x80\x06K\x01.").format, "binary");
}

#[test]
fn memo_expansion_is_reported_without_blowing_up() {
    // [x, x] doubled 40 times through the memo: 2^40 logical items from ~200 bytes.
    let mut data = b"\x80\x02]q\x00".to_vec();
    for i in 0..40u8 {
        data.extend_from_slice(&[b'h', i, b'h', i, 0x86, b'q', i + 1]);
    }
    data.push(b'.');
    let r = scan(&data);
    assert!(rules(&r).contains(&Rule::MemoExpansion), "{:?}", r.findings);
}

#[test]
fn an_opcode_crossing_its_frame_is_a_violation() {
    // FRAME of 2 bytes, then a 4-byte SHORT_BINUNICODE that crosses the boundary.
    let data = cat(&[
        b"\x80\x04\x95\x02\x00\x00\x00\x00\x00\x00\x00",
        &u("ab"),
        b".",
    ]);
    let r = scan(&data);
    assert!(rules(&r).contains(&Rule::FrameViolation));
    // A well-formed frame is fine.
    let ok = cat(&[
        b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00",
        &u("ab"),
        b".",
    ]);
    assert!(!rules(&scan(&ok)).contains(&Rule::FrameViolation));
    // A frame opened before the previous one ends.
    let nested = cat(&[
        b"\x80\x04\x95\x0c\x00\x00\x00\x00\x00\x00\x00",
        b"\x95\x01\x00\x00\x00\x00\x00\x00\x00",
        b"K\x01",
        b".",
    ]);
    assert!(rules(&scan(&nested)).contains(&Rule::FrameViolation));
}

#[test]
fn limits_make_the_file_unscannable_never_safe() {
    let limits = Limits {
        max_opcodes: 10,
        ..Limits::default()
    };
    let scanner = Scanner::new(Policy::default(), limits);
    let data = cat(&[b"\x80\x02", &b"K\x010".repeat(20), b"N."]);
    let r = scanner.scan_bytes("t", &data);
    assert!(rules(&r).contains(&Rule::LimitReached));
    assert_eq!(r.verdict, Verdict::Unscannable);
}

#[test]
fn stack_depth_limit() {
    let limits = Limits {
        max_stack_depth: 100,
        ..Limits::default()
    };
    let scanner = Scanner::new(Policy::default(), limits);
    let data = cat(&[b"\x80\x02", &b"(".repeat(500), b"."]);
    assert_eq!(scanner.scan_bytes("t", &data).verdict, Verdict::Unscannable);
}

#[test]
fn extension_codes_are_reported() {
    let r = scan(b"\x80\x02\x82\x01)R.");
    assert!(rules(&r).contains(&Rule::ExtensionCode));
    let r = scan(b"\x80\x02\x84\x00\x00\x00\x00.");
    assert!(
        rules(&r).contains(&Rule::MalformedPickle),
        "EXT code 0 is refused"
    );
}

#[test]
fn nested_pickle_literals_are_scanned() {
    let inner = b"cos\nsystem\n(S'id'\ntR.";
    let data = cat(&[
        b"\x80\x04c_pickle\nloads\nC",
        &[inner.len() as u8],
        inner,
        b"\x85R.",
    ]);
    let r = scan(&data);
    assert!(rules(&r).contains(&Rule::NestedPickle));
    let nested = r
        .imports
        .iter()
        .find(|i| i.qualified() == "os.system")
        .expect("inner import");
    assert!(
        nested
            .member
            .as_deref()
            .unwrap_or("")
            .starts_with("<nested")
    );
    assert_eq!(r.verdict, Verdict::Dangerous);
}

#[test]
fn next_buffer_fails_like_the_loader() {
    let r = scan(b"\x80\x05\x97.");
    assert!(rules(&r).contains(&Rule::MalformedPickle));
}

#[test]
fn dunder_names_are_dangerous() {
    let r = scan(b"\x80\x04cbuiltins\neval.__call__\n.");
    assert_eq!(r.verdict, Verdict::Dangerous);
}

#[test]
fn large_and_text_integers() {
    // LONG line, INT line, LONG4 and a float line all decode; nothing is imported.
    let r = scan(b"L12345678901234567890123L\nI0x10\n\x8b\x02\x00\x00\x00\x01\x02F1.5\n\x87.");
    assert_eq!(r.verdict, Verdict::Safe, "{:?}", r.findings);
}

// ---- PyTorch legacy ----------------------------------------------------------------------

/// A legacy file: magic, protocol 1001, sys_info, a main pickle with one FloatStorage of
/// `numel` elements, the key list, then the raw storage.
fn legacy(numel: u64, data_elements: u64, magic: &[u8]) -> Vec<u8> {
    let main = cat(&[
        b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n(",
        b"(",
        &u("storage"),
        b"ctorch\nFloatStorage\n",
        &u("k0"),
        &u("cpu"),
        b"K",
        &[numel as u8],
        b"NtQK\x00K",
        &[numel as u8],
        b"\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtR.",
    ]);
    cat(&[
        magic,
        b"\x80\x02M\xe9\x03.",
        b"\x80\x02}(X\x0d\x00\x00\x00little_endian\x88u.",
        &main,
        b"\x80\x02]X\x02\x00\x00\x00k0a.",
        &data_elements.to_le_bytes(),
        &vec![0u8; 4 * data_elements as usize],
    ])
}

const MAGIC: &[u8] = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.";

#[test]
fn legacy_torch_files_are_read_to_their_end() {
    let r = scan(&legacy(4, 4, MAGIC));
    assert_eq!(r.format, "pytorch-legacy");
    assert_eq!(r.verdict, Verdict::Safe, "{:?}", r.findings);
    assert!(imports(&r).contains(&"torch._utils._rebuild_tensor_v2".to_string()));
}

#[test]
fn legacy_torch_trailing_or_missing_bytes_are_reported() {
    let mut data = legacy(4, 4, MAGIC);
    data.extend_from_slice(b"cos\nsystem\n.");
    let r = scan(&data);
    assert!(rules(&r).contains(&Rule::TorchLayout));
    let r = scan(&legacy(4, 1000, MAGIC));
    assert!(rules(&r).contains(&Rule::TorchLayout));
}

#[test]
fn dynamic_magic_number_is_dangerous() {
    let magic = cat(&[
        b"\x80\x02c__builtin__\neval\n",
        &u("0x1950A86A20F9469CFC6C"),
        b"\x85R.",
    ]);
    let r = scan(&legacy(4, 4, &magic));
    assert!(rules(&r).contains(&Rule::TorchLegacyMagic));
    assert_eq!(r.verdict, Verdict::Dangerous);
}

/// The same trick through an innocuous constructor (`int(' ' * 70000 + '0x1950...', 16)`):
/// over 64 KiB and data-only, the first pickle is one the fast pass takes, which keeps no
/// value to compare with the magic number; it must still be judged.
#[test]
fn dynamic_magic_number_in_a_large_first_pickle_is_found() {
    let text = format!("{}0x1950A86A20F9469CFC6C", " ".repeat(70_000));
    let len = (text.len() as u32).to_le_bytes();
    let magic = cat(&[
        b"\x80\x02cbuiltins\nint\n(X",
        &len,
        text.as_bytes(),
        b"K\x10tR.",
    ]);
    let r = scan(&legacy(4, 4, &magic));
    assert!(
        rules(&r).contains(&Rule::TorchLegacyMagic),
        "{:?}",
        r.findings
    );
}

/// A legacy file with 9,000 storages: its key list is over 64 KiB, and its values are read
/// (the fast pass would take it and keep none).
#[test]
fn legacy_files_with_thousands_of_storages_are_read() {
    let specs: Vec<_> = (0..9000)
        .map(|i| crate::convert::testkit::TensorSpec {
            name: format!("layers.{i}"),
            storage_class: "HalfStorage",
            element_size: 2,
            storage: vec![1, 2],
            offset: 0,
            shape: vec![1],
            strides: vec![1],
        })
        .collect();
    let r = scan(&crate::convert::testkit::legacy_checkpoint(&specs));
    assert_eq!(r.format, "pytorch-legacy");
    assert_eq!(r.verdict, Verdict::Safe, "{:?}", r.findings);
}

// ---- joblib ------------------------------------------------------------------------------

/// A joblib-style pickle: a NumpyArrayWrapper for an int16 array of 3 elements, followed by
/// a padding byte, padding and the raw array, then the rest of the pickle.
fn joblib_pickle(array_bytes: &[u8], after: &[u8]) -> Vec<u8> {
    cat(&[
        b"\x80\x04",
        &u("joblib.numpy_pickle"),
        &u("NumpyArrayWrapper"),
        b"\x93)\x81}(",
        &u("subclass"),
        &u("numpy"),
        &u("ndarray"),
        b"\x93",
        &u("shape"),
        b"K\x03\x85",
        &u("order"),
        &u("C"),
        &u("dtype"),
        &u("numpy"),
        &u("dtype"),
        b"\x93",
        &u("i2"),
        b"\x89\x88\x87R(K\x03",
        &u("<"),
        b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb",
        &u("allow_mmap"),
        b"\x88",
        &u("numpy_array_alignment_bytes"),
        b"K\x10ub",
        array_bytes,
        after,
    ])
}

#[test]
fn joblib_array_bytes_are_stepped_over() {
    // padding length 2, two 0xff, then 6 bytes of int16 data that are not opcodes.
    let r = scan(&joblib_pickle(
        b"\x02\xff\xff\xff\xff\xff\xff\xff\xff",
        b".",
    ));
    assert_eq!(r.format, "joblib");
    assert!(
        !rules(&r).contains(&Rule::MalformedPickle),
        "{:?}",
        r.findings
    );
    assert!(!rules(&r).contains(&Rule::JoblibArrayData));
}

#[test]
fn joblib_opcodes_after_the_array_are_still_scanned() {
    let r = scan(&joblib_pickle(
        b"\x00\x01\x00\x02\x00\x03\x00",
        b"0cos\nsystem\n.",
    ));
    assert_eq!(imports(&r).last().map(String::as_str), Some("os.system"));
    assert_eq!(r.verdict, Verdict::Dangerous);
}

#[test]
fn joblib_array_past_the_end_is_unscannable() {
    let r = scan(&joblib_pickle(b"\x00\x01", b""));
    assert!(rules(&r).contains(&Rule::JoblibArrayData));
    assert_eq!(r.verdict, Verdict::Unscannable);
}

// ---- the fast pass -----------------------------------------------------------------------

/// A data-only pickle of about `n` list items (well over the fast-pass threshold), with
/// `tail` inserted before the final STOP.
fn big_data_pickle(n: usize, tail: &[u8]) -> Vec<u8> {
    let mut data = b"\x80\x04]\x94(".to_vec();
    for i in 0..n {
        data.extend_from_slice(&u(&format!("item{i}")));
        data.extend_from_slice(b"\x94K\x07}\x94h\x01K\x01s\x87");
    }
    data.extend_from_slice(b"e");
    data.extend_from_slice(tail);
    data.push(b'.');
    data
}

/// [`big_data_pickle`]'s items in FRAMEs of about `frame` bytes, each frame declared
/// `shift` bytes longer than the items it holds (0: well formed; otherwise the next FRAME
/// opens inside it), the last one exact.
fn framed_data_pickle(n: usize, frame: usize, shift: usize) -> Vec<u8> {
    let mut body: Vec<u8> = b"]\x94(".to_vec();
    let mut out = b"\x80\x04".to_vec();
    let flush = |body: &mut Vec<u8>, out: &mut Vec<u8>, shift: usize| {
        out.push(0x95);
        out.extend_from_slice(&((body.len() + shift) as u64).to_le_bytes());
        out.append(body);
    };
    for i in 0..n {
        body.extend_from_slice(&u(&format!("item{i}")));
        body.extend_from_slice(b"\x94K\x07}\x94h\x01K\x01s\x87");
        if body.len() >= frame {
            flush(&mut body, &mut out, shift);
        }
    }
    body.extend_from_slice(b"e.");
    flush(&mut body, &mut out, 0);
    out
}

/// What a report says that the fast pass and the full machine must agree on: the verdict,
/// every import (name, offset, rating) and every finding (rule, severity, offset, member).
#[allow(clippy::type_complexity)]
fn comparable(
    r: &FileReport,
) -> (
    Verdict,
    Vec<(String, u64, crate::report::Rating)>,
    Vec<(Rule, Severity, Option<u64>, Option<String>)>,
) {
    let imports = r
        .imports
        .iter()
        .map(|i| (i.qualified(), i.offset, i.rating))
        .collect();
    let findings = r
        .findings
        .iter()
        .map(|f| (f.rule, f.severity, f.offset, f.member.clone()))
        .collect();
    (r.verdict, imports, findings)
}

/// Scans `data` twice, as pickles: as a scan does (the fast pass where it applies), and with
/// the full machine for every pickle. Panics unless the first pickle really takes the fast
/// pass (otherwise both sides would run the same code) and both reports agree.
fn assert_fast_and_full_agree(label: &str, data: &[u8]) {
    use crate::formats::pickle_stream::{scan_pickles, scan_pickles_full_machine};
    let scanner = Scanner::default();
    let mut took_fast_pass = false;
    scanner.scan_with("t", data, |ctx, data| {
        took_fast_pass = super::machine::run(ctx, data, 0).fast_pass;
        "pickle"
    });
    assert!(took_fast_pass, "{label}: the fast pass did not run");
    let fast = scanner.scan_with("t", data, scan_pickles);
    let full = scanner.scan_with("t", data, scan_pickles_full_machine);
    assert_eq!(
        comparable(&fast),
        comparable(&full),
        "{label}: fast pass (left) and full machine (right) disagree"
    );
}

/// The fast pass against the full machine on whole reports. (This comparison once took the
/// "full" side from an ordinary scan, which takes the fast pass too: it compared the fast
/// pass with itself.)
#[test]
fn fast_pass_agrees_with_the_full_machine() {
    use super::{lite, machine};
    let scanner = Scanner::default();
    let innocuous_call = cat(&[b"0", &u("collections"), &u("OrderedDict"), b"\x93)R"]);
    let cases = [
        framed_data_pickle(20_000, 65_536, 0),
        framed_data_pickle(20_000, 65_536, 3), // an opcode crosses a frame's end
        big_data_pickle(20_000, b""),
        big_data_pickle(20_000, b"h\xff"), // missing memo key
        big_data_pickle(20_000, b"00000"), // stack underflow
        big_data_pickle(20_000, b"(K\x01K\x02K\x03d"), // odd DICT
        big_data_pickle(20_000, b"K\x01K\x02a"), // APPEND on an int
        big_data_pickle(20_000, b"\x80\x02"), // repeated PROTO
        big_data_pickle(20_000, b"g999999\n0"), // text GET of a missing memo index
        big_data_pickle(20_000, b"Np999999\n0g999999\n0"), // text PUT and GET
        big_data_pickle(20_000, &innocuous_call), // an import the fast pass keeps
        big_list_call_pickle(20_000, b""),
        torch_state_dict_pickle(3_000, |i| vec![b'K', (i % 256) as u8]),
        // Two pickles: the second is read after the first (and the first again, in full).
        cat(&[
            &big_data_pickle(20_000, b""),
            &big_list_call_pickle(20_000, b""),
        ]),
    ];
    let limits = lite::LiteLimits {
        max_opcodes: u64::MAX,
        max_stack_depth: usize::MAX,
        max_memo_entries: 1 << 30,
    };
    for (i, data) in cases.iter().enumerate() {
        assert!(data.len() > 100_000);
        assert_fast_and_full_agree(&format!("case {i}"), data);
        let lite::LiteResult::Done(fast) = lite::run(data, 0, limits, scanner.policy()) else {
            panic!("case {i} needs full")
        };
        let mut ctx = scanner.new_ctx(std::time::Instant::now());
        let full = machine::run_full(&mut ctx, data, 0);
        assert_eq!(fast.end, full.end, "case {i}: end");
        assert_eq!(fast.stopped, full.stopped, "case {i}: stopped");
        assert_eq!(
            fast.error.as_ref().map(|e| e.0),
            full.error.as_ref().map(|e| e.0),
            "case {i}: error offset"
        );
        // The framed cases: well formed, then with an opcode across a frame's end.
        if i < 2 {
            let fast_rules: Vec<Rule> = fast.findings.iter().map(|f| f.rule).collect();
            assert_eq!(
                fast_rules.contains(&Rule::FrameViolation),
                i == 1,
                "case {i}"
            );
            assert!(fast.stopped, "case {i}");
        }
    }
}

#[test]
fn fast_pass_counts_growth_through_every_reference() {
    use super::lite;
    // A list grown after DUP (through the top copy), then (L, L) referenced 150 times: 15 M
    // values from 100 KB. Counted through only one copy it would be 7.5 M, under the 10 M
    // threshold, so this fails if DUP stops sharing the list's size.
    let mut dup = b"\x80\x04]2(".to_vec();
    dup.extend(b"K\x01".repeat(50_000));
    dup.extend(b"e\x86\x94(");
    dup.extend(b"h\x00".repeat(150));
    dup.extend(b"t.");
    // The same through the memo: a memoized list grown afterwards, then fetched 250 times.
    let mut memo = b"\x80\x04]\x94(".to_vec();
    memo.extend(b"K\x01".repeat(50_000));
    memo.extend(b"e0(");
    memo.extend(b"h\x00".repeat(250));
    memo.extend(b"t.");
    let scanner = Scanner::default();
    let limits = lite::LiteLimits {
        max_opcodes: u64::MAX,
        max_stack_depth: usize::MAX,
        max_memo_entries: 1 << 30,
    };
    for (name, data) in [("dup", &dup), ("memo", &memo)] {
        let lite::LiteResult::Done(fast) = lite::run(data, 0, limits, scanner.policy()) else {
            panic!("{name}: needs full")
        };
        assert!(fast.stopped, "{name}");
        assert!(
            fast.findings.iter().any(|f| f.rule == Rule::MemoExpansion),
            "{name}: {:?}",
            fast.findings
        );
        assert!(rules(&scan(data)).contains(&Rule::MemoExpansion), "{name}");
        assert_fast_and_full_agree(name, data);
    }
}

#[test]
fn fast_pass_gives_way_to_the_full_machine_on_any_import() {
    let data = big_data_pickle(20_000, b"0cos\nsystem\n");
    let r = scan(&data);
    assert_eq!(imports(&r), ["os.system"]);
    assert_eq!(r.verdict, Verdict::Dangerous);
}

#[test]
fn names_that_cannot_be_imported_stop_the_load() {
    // A requirements.txt decodes as GLOBAL "ertifi==2024.2.2" "charset-normalizer==3.3".
    let r = scan(b"certifi==2024.2.2\ncharset-normalizer==3.3\n");
    assert!(r.imports.is_empty());
    assert_eq!(r.verdict, Verdict::Safe);
    assert_eq!(r.format, "text");
    // Dotted identifier paths, including non-ASCII letters, are imports.
    let r = scan(b"cos.path\njoin\n.");
    assert_eq!(imports(&r), ["os.path.join"]);
    let r = scan(b"\x80\x04\x8c\x02os\x8c\x0esystem; rm -rf\x93.");
    assert!(r.imports.is_empty());
    assert!(rules(&r).contains(&Rule::MalformedPickle));
}

/// `builtins.list()` filled by APPENDS with `n` small tuples, as bench/data/pickle500 is.
fn big_list_call_pickle(n: usize, tail: &[u8]) -> Vec<u8> {
    let mut data = cat(&[b"\x80\x04", &u("builtins"), &u("list"), b"\x93)R"]);
    for chunk in 0..n / 100 {
        data.push(b'(');
        for i in 0..100 {
            data.extend_from_slice(&u(&format!("k{chunk}_{i}")));
            data.extend_from_slice(b"K\x07G?\xf0\x00\x00\x00\x00\x00\x00\x87");
        }
        data.push(b'e');
    }
    data.extend_from_slice(tail);
    data.push(b'.');
    data
}

#[test]
fn fast_pass_accepts_innocuous_imports_and_their_calls() {
    use super::lite;
    let scanner = Scanner::default();
    let data = big_list_call_pickle(20_000, b"");
    let limits = lite::LiteLimits {
        max_opcodes: u64::MAX,
        max_stack_depth: usize::MAX,
        max_memo_entries: 1 << 30,
    };
    let lite::LiteResult::Done(fast) = lite::run(&data, 0, limits, scanner.policy()) else {
        panic!("an allowlisted constructor should stay in the fast pass");
    };
    assert!(fast.stopped);
    assert_eq!(fast.imports.len(), 1);
    assert_eq!(fast.calls, 1);
    let r = scan(&data);
    assert_eq!(imports(&r), ["builtins.list"]);
    assert_eq!(r.verdict, Verdict::Safe, "{:?}", r.findings);
}

#[test]
fn fast_pass_gives_way_on_build_on_a_global_or_odd_mutations() {
    use super::lite;
    let scanner = Scanner::default();
    let limits = lite::LiteLimits {
        max_opcodes: u64::MAX,
        max_stack_depth: usize::MAX,
        max_memo_entries: 1 << 30,
    };
    // BUILD on the imported class itself (after the data): the full machine reports PKL006.
    let tail = cat(&[b"0", &u("collections"), &u("OrderedDict"), b"\x93}b"]);
    let data = big_list_call_pickle(20_000, &tail);
    assert!(matches!(
        lite::run(&data, 0, limits, scanner.policy()),
        lite::LiteResult::NeedsFull
    ));
    assert!(rules(&scan(&data)).contains(&Rule::BuildOnNonClass));
    // SETITEMS on a list() result is not a dict mutation: the full machine judges it.
    let data = big_list_call_pickle(20_000, b"(K\x01K\x02u");
    assert!(matches!(
        lite::run(&data, 0, limits, scanner.policy()),
        lite::LiteResult::NeedsFull
    ));
    assert!(rules(&scan(&data)).contains(&Rule::MutationTarget));
    // Any import the policy does not rate innocuous: full machine.
    let tail = cat(&[b"0", &u("os"), &u("system"), b"\x93"]);
    let data = big_list_call_pickle(20_000, &tail);
    assert!(matches!(
        lite::run(&data, 0, limits, scanner.policy()),
        lite::LiteResult::NeedsFull
    ));
    assert_eq!(scan(&data).verdict, Verdict::Dangerous);
}

/// A state dict of `n` tensors as `torch.save` (protocol 2) writes `data.pkl`: memoized
/// names, one `('storage', torch.<Type>Storage, key, 'cpu', numel)` persistent id per tensor
/// (BINPERSID after TUPLE and BINPUT), `_rebuild_tensor_v2` with an empty OrderedDict.
/// `numel(i)` gives each storage's element count as its opcode bytes (K, M, J or LONG1).
pub(crate) fn torch_state_dict_pickle(n: usize, numel: impl Fn(usize) -> Vec<u8>) -> Vec<u8> {
    let mut memo = 0u32;
    let mut put = |out: &mut Vec<u8>| {
        out.push(b'r'); // LONG_BINPUT
        out.extend_from_slice(&memo.to_le_bytes());
        memo += 1;
        memo - 1
    };
    let get = |out: &mut Vec<u8>, index: u32| {
        out.push(b'j'); // LONG_BINGET
        out.extend_from_slice(&index.to_le_bytes());
    };
    let bin_unicode = |s: &str| {
        let mut out = vec![b'X'];
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        out
    };
    let mut out = b"\x80\x02}".to_vec();
    put(&mut out);
    out.push(b'(');
    let (mut rebuild, mut storage_word, mut classes, mut cpu, mut ordered) =
        (None, None, [None, None], None, None);
    for i in 0..n {
        out.extend(bin_unicode(&format!("layers.{i}.weight")));
        put(&mut out);
        match rebuild {
            Some(m) => get(&mut out, m),
            None => {
                out.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n");
                rebuild = Some(put(&mut out));
            }
        }
        out.extend_from_slice(b"((");
        match storage_word {
            Some(m) => get(&mut out, m),
            None => {
                out.extend(bin_unicode("storage"));
                storage_word = Some(put(&mut out));
            }
        }
        let class = i % 2;
        match classes[class] {
            Some(m) => get(&mut out, m),
            None => {
                let name = ["FloatStorage", "HalfStorage"][class];
                out.extend_from_slice(format!("ctorch\n{name}\n").as_bytes());
                classes[class] = Some(put(&mut out));
            }
        }
        out.extend(bin_unicode(&i.to_string()));
        put(&mut out);
        match cpu {
            Some(m) => get(&mut out, m),
            None => {
                out.extend(bin_unicode("cpu"));
                cpu = Some(put(&mut out));
            }
        }
        out.extend(numel(i));
        out.push(b't');
        put(&mut out);
        out.push(b'Q'); // BINPERSID
        out.extend_from_slice(b"K\x00K\x04\x85"); // offset 0, size (4,)
        put(&mut out);
        out.extend_from_slice(b"K\x01\x85\x89"); // stride (1,), requires_grad False
        put(&mut out);
        match ordered {
            Some(m) => get(&mut out, m),
            None => {
                out.extend_from_slice(b"ccollections\nOrderedDict\n");
                ordered = Some(put(&mut out));
            }
        }
        out.extend_from_slice(b")R");
        put(&mut out);
        out.push(b't');
        put(&mut out);
        out.push(b'R');
        put(&mut out);
    }
    out.extend_from_slice(b"u.");
    out
}

/// Storage references as the full machine decodes them.
fn full_machine_storages(data: &[u8]) -> Vec<super::persistent::StorageRef> {
    let scanner = Scanner::default();
    let mut ctx = scanner.new_ctx(std::time::Instant::now());
    let full = super::machine::run_full(&mut ctx, data, 0);
    assert!(full.stopped, "{:?}", full.error);
    super::persistent::storage_refs(&full)
}

const UNLIMITED: super::lite::LiteLimits = super::lite::LiteLimits {
    max_opcodes: u64::MAX,
    max_stack_depth: usize::MAX,
    max_memo_entries: 1 << 30,
};

#[test]
fn fast_pass_reads_torch_storage_ids_as_the_full_machine_does() {
    use super::lite;
    // Element counts in every int encoding the pass decodes: BININT1, BININT2, BININT and
    // LONG1 (8 bytes, past 2^31, as torch writes counts over 2 G elements).
    let numel = |i: usize| match i % 4 {
        0 => vec![b'K', (i % 256) as u8],
        1 => cat(&[b"M", &(i as u16).to_le_bytes()]),
        2 => cat(&[b"J", &(70_000 + i as i32).to_le_bytes()]),
        _ => cat(&[b"\x8a\x08", &((3u64 << 31) + i as u64).to_le_bytes()]),
    };
    let data = torch_state_dict_pickle(3_000, numel);
    assert!(data.len() > 100_000);
    let scanner = Scanner::default();
    let lite::LiteResult::Done(fast) = lite::run(&data, 0, UNLIMITED, scanner.policy()) else {
        panic!("a torch state dict should stay in the fast pass");
    };
    assert!(fast.stopped, "{:?}", fast.error);
    assert!(fast.findings.is_empty(), "{:?}", fast.findings);
    let full = full_machine_storages(&data);
    assert_eq!(full.len(), 3_000);
    assert_eq!(fast.storages, full);
    assert_eq!(fast.storages[3].numel, (3u64 << 31) + 3);
    assert_eq!(fast.storages[2].numel, 70_002);
    assert_eq!(fast.storages[1].storage_type.class, "HalfStorage");
    // The scan takes the fast pass and reports what the machine would.
    let r = scan(&data);
    assert_eq!(r.verdict, Verdict::Safe, "{:?}", r.findings);
    let mut seen = imports(&r);
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen,
        [
            "collections.OrderedDict",
            "torch.FloatStorage",
            "torch.HalfStorage",
            "torch._utils._rebuild_tensor_v2"
        ]
    );
}

#[test]
fn fast_pass_gives_way_on_persistent_ids_it_cannot_decode() {
    use super::lite;
    let scanner = Scanner::default();
    let needs_full = |data: &[u8]| {
        matches!(
            lite::run(data, 0, UNLIMITED, scanner.policy()),
            lite::LiteResult::NeedsFull
        )
    };
    let state_dict = |tail: &[u8]| {
        let mut data = torch_state_dict_pickle(2_000, |_| b"K\x04".to_vec());
        data.truncate(data.len() - 2); // before SETITEMS, STOP
        data.extend_from_slice(tail);
        data.extend_from_slice(b"u.");
        data
    };
    assert!(!needs_full(&state_dict(b"")));
    // Not a storage id: an int (legacy), a 4-tuple, a string first item that is not
    // "storage" (the machine reports PKL persistent-id findings for some of these).
    for tail in [
        &b"X\x01\x00\x00\x00aK\x05Q"[..],
        b"X\x01\x00\x00\x00a(X\x07\x00\x00\x00storageK\x01K\x02K\x03tQ",
        b"X\x01\x00\x00\x00a(X\x07\x00\x00\x00storeddK\x01K\x02K\x03K\x04tQ",
        // A key the pass would have to decode (STRING), and a negative element count.
        b"X\x01\x00\x00\x00a(X\x07\x00\x00\x00storagej\x04\x00\x00\x00S'k'\nX\x03\x00\x00\x00cpuK\x01tQ",
        b"X\x01\x00\x00\x00a(X\x07\x00\x00\x00storagej\x04\x00\x00\x00X\x01\x00\x00\x00kX\x03\x00\x00\x00cpuJ\xff\xff\xff\xfftQ",
        // A storage id fetched from the memo after another 5-tuple was built.
        b"X\x01\x00\x00\x00a(K\x01K\x02K\x03K\x04K\x05t0j\x07\x00\x00\x00Q",
    ] {
        let data = state_dict(tail);
        assert!(needs_full(&data), "{tail:?}");
        // The full machine then judges it, to the end of the pickle.
        let r = scan(&data);
        assert!(
            r.findings.iter().all(|f| f.rule != Rule::MalformedPickle),
            "{tail:?}: {:?}",
            r.findings
        );
    }
}

#[test]
fn fast_pass_counts_frozenset_sizes_like_the_full_machine() {
    use super::lite;
    // A frozenset of a 50,000-item tuple, memoized and referenced 250 times: 12.5 M values
    // from 100 KB, over the 10 M threshold only if the frozenset's size is kept.
    let mut data = b"\x80\x04((".to_vec();
    data.extend(b"K\x01".repeat(50_000));
    data.extend(b"t\x91\x94(");
    data.extend(b"h\x00".repeat(250));
    data.extend(b"t.");
    let scanner = Scanner::default();
    let lite::LiteResult::Done(fast) = lite::run(&data, 0, UNLIMITED, scanner.policy()) else {
        panic!("needs full")
    };
    assert!(fast.stopped, "{:?}", fast.error);
    let fast_flags = fast.findings.iter().any(|f| f.rule == Rule::MemoExpansion);
    let full_report = scan(&data);
    assert!(rules(&full_report).contains(&Rule::MemoExpansion));
    assert!(fast_flags, "{:?}", fast.findings);
}

/// Inputs the `pickle_engine` fuzz target found too slow (tests/fixtures/fuzz/README.md):
/// each is read to the same report as before the fix, which is now quick to reach.
#[test]
fn fuzz_regressions_scan_to_their_reports() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/fuzz/pickle_engine");
    let path = dir.join("timeout-856a016165f71d873ec13830be06917cbfc07ee5");
    let data = std::fs::read(&path).expect("reproducer");
    // `argparse` and a 29 KB dotted name of thousands of components, then a bad byte.
    let report = scan(&data);
    assert_eq!(report.verdict, Verdict::Suspicious, "{report:?}");
    assert_eq!(report.imports.len(), 1);
    assert!(report.imports[0].name.len() > 29_000);
    let rules = rules(&report);
    assert!(rules.contains(&Rule::UnknownImport), "{rules:?}");
    assert!(rules.contains(&Rule::MalformedPickle), "{rules:?}");
}

/// A small pickle at the start of a large input reserves nothing for the rest of it: the
/// machine reserved capacity for the whole input after the start before every pickle, so a
/// stream of thousands of small pickles mapped and unmapped tens of megabytes per pickle
/// (4 MB of 5-byte pickles: 75 s in a release build). A pickle that proves large still gets
/// its reservation.
#[test]
fn a_small_pickle_in_a_large_input_reserves_nothing_for_the_rest() {
    let scanner = Scanner::default();
    let stream = b"\x80\x02K\x01.".repeat(800_000);
    scanner.with_ctx(|ctx| {
        for start in [0, 5, stream.len() / 2] {
            let outcome = super::machine::run_full(ctx, &stream, start);
            assert!(outcome.stopped);
            assert!(
                outcome.arena.capacity() <= super::machine::FIRST_RESERVE_INPUT / 4,
                "start {start}: room for {} nodes",
                outcome.arena.capacity()
            );
            assert!(
                outcome.persistent_ids.capacity() <= super::machine::FIRST_RESERVE_INPUT / 4,
                "start {start}"
            );
        }
        // A large pickle: a list of 100,000 one-item tuples (a node each), 1,000 per APPENDS.
        let mut large = b"\x80\x02]".to_vec();
        for _ in 0..100 {
            large.push(b'(');
            large.extend_from_slice(&b"K\x01\x85".repeat(1_000));
            large.push(b'e');
        }
        large.push(b'.');
        let outcome = super::machine::run_full(ctx, &large, 0);
        assert!(outcome.stopped);
        assert!(outcome.arena.capacity() >= large.len() / 6);
    });
}
