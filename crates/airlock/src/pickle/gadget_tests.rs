//! Resolver gadgets ([`super::gadgets`]) on pickles built byte by byte: each gadget resolved
//! from constant arguments (rated as what it yields) and left dangerous when it cannot be.

use crate::report::{FileReport, Rating, Verdict};
use crate::rules::Rule;
use crate::{Policy, Scanner};

fn scan(data: &[u8]) -> FileReport {
    Scanner::default().scan_bytes("test.pkl", data)
}

fn imports(report: &FileReport) -> Vec<String> {
    report.imports.iter().map(|i| i.qualified()).collect()
}

fn rating_of(report: &FileReport, qualified: &str) -> Option<Rating> {
    report
        .imports
        .iter()
        .find(|i| i.qualified() == qualified)
        .map(|i| i.rating)
}

/// Every finding's message, for assertion messages.
fn said(report: &FileReport) -> String {
    report
        .findings
        .iter()
        .map(|f| format!("{} {}", f.rule.code(), f.message))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// `GLOBAL module name` (protocol 0-2 spelling).
fn global(module: &str, name: &str) -> Vec<u8> {
    format!("c{module}\n{name}\n").into_bytes()
}

/// `SHORT_BINUNICODE s`.
fn u(s: &str) -> Vec<u8> {
    let mut out = vec![0x8c, s.len() as u8];
    out.extend_from_slice(s.as_bytes());
    out
}

/// `BINUNICODE s` (protocol 2 has no SHORT_BINUNICODE).
fn binunicode(s: &str) -> Vec<u8> {
    let mut out = vec![b'X'];
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    out
}

/// `getattr(module.name, attr)` pushed on the stack (protocol 2 opcodes, no memo).
fn getattr_of(module: &str, name: &str, attr: &str) -> Vec<u8> {
    [
        global("__builtin__", "getattr"),
        global(module, name),
        binunicode(attr),
        b"\x86R".to_vec(),
    ]
    .concat()
}

/// pandas' protocol-2 time-zone spelling: `getattr(zoneinfo.ZoneInfo, '_unpickle')('UTC', 1)`.
fn zoneinfo_p2() -> Vec<u8> {
    [
        b"\x80\x02".to_vec(),
        getattr_of("zoneinfo", "ZoneInfo", "_unpickle"),
        binunicode("Europe/Paris"),
        b"K\x01\x86R.".to_vec(),
    ]
    .concat()
}

#[test]
fn getattr_of_a_global_is_rated_as_the_global_it_yields() {
    let r = scan(&zoneinfo_p2());
    assert_eq!(r.verdict, Verdict::Safe, "{}", said(&r));
    assert_eq!(
        imports(&r),
        ["zoneinfo.ZoneInfo", "zoneinfo.ZoneInfo._unpickle"]
    );
    // Reported at the REDUCE that resolves it, saying through what.
    let resolved = &r.imports[1];
    assert_eq!(resolved.offset, 2 + 21 + 19 + 14 + 1);
    assert!(
        resolved
            .reason
            .as_deref()
            .is_some_and(|why| why.contains("resolved from a call of `__builtin__.getattr`")),
        "{:?}",
        resolved.reason
    );
}

#[test]
fn getattr_in_protocol_0_and_4_spellings_resolves_too() {
    // Protocol 0: MARK GLOBAL STRING TUPLE REDUCE.
    let p0 = b"c__builtin__\ngetattr\n(czoneinfo\nZoneInfo\nV_unpickle\ntR(VUTC\nI01\ntR.";
    // Protocol 4: STACK_GLOBAL, every value memoized, the gadget fetched from the memo twice.
    let p4 = [
        b"\x80\x04".to_vec(),
        u("builtins"),
        b"\x94".to_vec(),
        u("getattr"),
        b"\x94\x93\x94".to_vec(), // memo 2: getattr
        u("zoneinfo"),
        b"\x94".to_vec(),
        u("ZoneInfo"),
        b"\x94\x93\x94".to_vec(), // memo 5: ZoneInfo
        u("_unpickle"),
        b"\x94\x86\x94R\x94".to_vec(),
        u("UTC"),
        b"\x94\x88\x86\x94R\x94".to_vec(),
        // The same through the memo: h2 (getattr) h5 (ZoneInfo).
        b"h\x02h\x05".to_vec(),
        u("_unpickle"),
        b"\x86R".to_vec(),
        u("Asia/Tokyo"),
        b"\x88\x86R\x86.".to_vec(),
    ]
    .concat();
    for (label, data) in [("protocol 0", p0.to_vec()), ("protocol 4", p4)] {
        let r = scan(&data);
        assert_eq!(r.verdict, Verdict::Safe, "{label}: {}", said(&r));
        assert_eq!(
            rating_of(&r, "zoneinfo.ZoneInfo._unpickle"),
            Some(Rating::Innocuous),
            "{label}"
        );
        assert!(
            !imports(&r).iter().any(|i| i.ends_with("getattr")),
            "{label}: {:?}",
            imports(&r)
        );
    }
}

#[test]
fn getattr_reaching_a_dangerous_callable_is_dangerous_and_names_it() {
    // `random._os` is the `os` module: getattr(random._os, 'system')('id').
    let data = [
        b"\x80\x02".to_vec(),
        getattr_of("random", "_os", "system"),
        binunicode("id"),
        b"\x85R.".to_vec(),
    ]
    .concat();
    let r = scan(&data);
    assert_eq!(r.verdict, Verdict::Dangerous);
    assert_eq!(rating_of(&r, "random._os.system"), Some(Rating::Dangerous));
    let finding = r
        .findings
        .iter()
        .find(|f| f.message.contains("random._os.system"))
        .unwrap_or_else(|| panic!("no finding names the sink: {}", said(&r)));
    assert_eq!(finding.rule, Rule::DangerousImport);
    assert!(finding.message.contains("os.system"), "{}", finding.message);
    assert!(
        finding.message.contains("resolved from"),
        "{}",
        finding.message
    );
}

#[test]
fn chained_getattr_resolves_step_by_step() {
    // getattr(getattr(random._os, 'path'), 'os') then .system: random._os.path.os.system.
    let inner = getattr_of("random", "_os", "path");
    let data = [
        b"\x80\x02".to_vec(),
        global("__builtin__", "getattr"),
        global("__builtin__", "getattr"),
        inner,
        binunicode("os"),
        b"\x86R".to_vec(),
        binunicode("system"),
        b"\x86R".to_vec(),
        binunicode("id"),
        b"\x85R.".to_vec(),
    ]
    .concat();
    let r = scan(&data);
    assert_eq!(r.verdict, Verdict::Dangerous, "{}", said(&r));
    assert_eq!(
        rating_of(&r, "random._os.path.os.system"),
        Some(Rating::Dangerous),
        "{:?}",
        imports(&r)
    );
    // Every step resolved: no getattr import is left.
    assert!(!imports(&r).iter().any(|i| i.ends_with("getattr")));
    // A benign chain stays benign exactly when its end is allowlisted.
    let chain = [
        b"\x80\x02".to_vec(),
        global("__builtin__", "getattr"),
        getattr_of("zoneinfo", "ZoneInfo", "_unpickle"),
        binunicode("x"),
        b"\x86R.".to_vec(),
    ]
    .concat();
    let r = scan(&chain);
    assert_eq!(
        rating_of(&r, "zoneinfo.ZoneInfo._unpickle.x"),
        Some(Rating::Suspicious)
    );
}

/// Asserts that the getattr import itself is reported dangerous, saying why it was not
/// resolved (when `why` is given).
fn assert_getattr_kept_dangerous(label: &str, data: &[u8], why: Option<&str>) {
    let r = scan(data);
    assert_eq!(r.verdict, Verdict::Dangerous, "{label}: {}", said(&r));
    let finding = r
        .findings
        .iter()
        .find(|f| f.message.contains("getattr`"))
        .unwrap_or_else(|| panic!("{label}: getattr not reported: {}", said(&r)));
    assert_eq!(finding.rule, Rule::DangerousImport, "{label}");
    if let Some(why) = why {
        assert!(
            finding.message.contains(why),
            "{label}: {}",
            finding.message
        );
    }
}

#[test]
fn getattr_that_cannot_be_resolved_exactly_stays_dangerous() {
    let zoneinfo = global("zoneinfo", "ZoneInfo");
    let getattr = global("__builtin__", "getattr");
    let cases: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
        (
            "dunder name",
            getattr_of("zoneinfo", "ZoneInfo", "__init__"),
            Some("dunder or private"),
        ),
        (
            "private name",
            getattr_of("zoneinfo", "ZoneInfo", "__secret"),
            Some("dunder or private"),
        ),
        (
            "dotted name",
            getattr_of("zoneinfo", "ZoneInfo", "a.b"),
            Some("not an identifier"),
        ),
        (
            "name computed at load time",
            [
                getattr.clone(),
                zoneinfo.clone(),
                global("codecs", "encode"),
                binunicode("x"),
                b"\x85R\x86R".to_vec(),
            ]
            .concat(),
            Some("not a constant string"),
        ),
        (
            "object that is not a global",
            [
                getattr.clone(),
                binunicode("abc"),
                binunicode("upper"),
                b"\x86R".to_vec(),
            ]
            .concat(),
            Some("not an imported global"),
        ),
        (
            "default argument",
            [
                getattr.clone(),
                zoneinfo.clone(),
                binunicode("_unpickle"),
                b"N\x87R".to_vec(),
            ]
            .concat(),
            Some("3 arguments"),
        ),
        (
            "called as a class (NEWOBJ)",
            [
                getattr.clone(),
                zoneinfo.clone(),
                binunicode("_unpickle"),
                b"\x86\x81".to_vec(),
            ]
            .concat(),
            Some("NEWOBJ"),
        ),
        (
            "never called",
            [getattr.clone(), b"\x85".to_vec()].concat(),
            None,
        ),
        (
            "resolved once, also kept as data",
            [
                getattr.clone(),
                b"q\x00".to_vec(),
                zoneinfo.clone(),
                binunicode("_unpickle"),
                b"\x86R0h\x00\x85".to_vec(),
            ]
            .concat(),
            Some("also used"),
        ),
        (
            "resolved once, also called unresolved",
            [
                getattr.clone(),
                b"q\x00".to_vec(),
                zoneinfo.clone(),
                binunicode("_unpickle"),
                b"\x86R0h\x00".to_vec(),
                zoneinfo.clone(),
                binunicode("__init__"),
                b"\x86R".to_vec(),
            ]
            .concat(),
            Some("dunder or private"),
        ),
    ];
    for (label, body, why) in cases {
        let data = [b"\x80\x02".to_vec(), body, b".".to_vec()].concat();
        assert_getattr_kept_dangerous(label, &data, why);
    }
    // Two getattr globals in one pickle, the first resolved, the second not: the context
    // records a global once, and the unresolved one must be the one recorded.
    let data = [
        b"\x80\x02".to_vec(),
        getattr_of("zoneinfo", "ZoneInfo", "_unpickle"),
        getattr_of("zoneinfo", "ZoneInfo", "__init__"),
        b"\x86.".to_vec(),
    ]
    .concat();
    assert_getattr_kept_dangerous("two imports", &data, Some("dunder or private"));
    // A pickle that stops before its call: the import is still reported.
    let data = [
        b"\x80\x02".to_vec(),
        global("__builtin__", "getattr"),
        zoneinfo,
    ]
    .concat();
    assert_getattr_kept_dangerous("truncated", &data, None);
}

#[test]
fn ufunc_reconstruct_is_an_import_of_module_and_name() {
    for module in ["numpy.core", "numpy._core"] {
        let call = |m: &str, n: &str| {
            [
                b"\x80\x02".to_vec(),
                global(module, "_ufunc_reconstruct"),
                binunicode(m),
                binunicode(n),
                b"\x86R.".to_vec(),
            ]
            .concat()
        };
        let r = scan(&call("numpy", "add"));
        assert_eq!(r.verdict, Verdict::Safe, "{module}: {}", said(&r));
        assert_eq!(imports(&r), ["numpy.add"]);
        let r = scan(&call("os", "system"));
        assert_eq!(r.verdict, Verdict::Dangerous, "{module}");
        assert_eq!(rating_of(&r, "os.system"), Some(Rating::Dangerous));
        assert!(!imports(&r).iter().any(|i| i.contains("_ufunc_reconstruct")));
        // Not a dotted module name, or a dunder attribute: the gadget stays dangerous.
        for (m, n) in [("os system", "x"), ("builtins", "__import__")] {
            let r = scan(&call(m, n));
            assert_eq!(
                rating_of(&r, &format!("{module}._ufunc_reconstruct")),
                Some(Rating::Dangerous),
                "{module} {m} {n}: {:?}",
                imports(&r)
            );
        }
    }
}

/// `dill._dill._load_type(name)` called, its result called with `args` (protocol 4).
fn load_type_then_call(name: &str, args: &[u8]) -> Vec<u8> {
    [
        b"\x80\x04".to_vec(),
        u("dill._dill"),
        u("_load_type"),
        b"\x93".to_vec(),
        u(name),
        b"\x85R".to_vec(),
        args.to_vec(),
        b"R.".to_vec(),
    ]
    .concat()
}

#[test]
fn dill_load_type_resolves_through_dills_type_map() {
    let r = scan(&load_type_then_call("bytearray", b"C\x02ab\x85"));
    assert_eq!(r.verdict, Verdict::Safe, "{}", said(&r));
    assert_eq!(imports(&r), ["builtins.bytearray"]);
    // A dangerous type is rated as itself, with its sink.
    let r = scan(&load_type_then_call("CodeType", b")"));
    assert_eq!(r.verdict, Verdict::Dangerous);
    assert_eq!(rating_of(&r, "types.CodeType"), Some(Rating::Dangerous));
    let r = scan(&load_type_then_call("PartialType", b")"));
    assert_eq!(rating_of(&r, "functools.partial"), Some(Rating::Dangerous));
    // A name dill's map does not have: the gadget stays dangerous.
    let r = scan(&load_type_then_call("FileType", b")"));
    assert_eq!(r.verdict, Verdict::Dangerous);
    assert_eq!(
        rating_of(&r, "dill._dill._load_type"),
        Some(Rating::Dangerous)
    );
}

#[test]
fn dill_eval_repr_is_resolved_only_for_what_dill_writes() {
    let eval_repr = |text: &str| {
        [
            b"\x80\x04".to_vec(),
            u("dill._dill"),
            u("_eval_repr"),
            b"\x93".to_vec(),
            u(text),
            b"\x85R.".to_vec(),
        ]
        .concat()
    };
    for text in [
        "range(3, 9, 2)",
        "range(0, 5)",
        "Ellipsis",
        "NotImplemented",
    ] {
        let r = scan(&eval_repr(text));
        assert_eq!(r.verdict, Verdict::Safe, "{text}: {}", said(&r));
        assert_eq!(r.imports.len(), 1, "{text}: {:?}", imports(&r));
        assert!(imports(&r)[0].starts_with("builtins."), "{text}");
    }
    for text in [
        "__import__('os').system('id')",
        "range(1, 5) or exec('x')",
        "range(5)",
    ] {
        let r = scan(&eval_repr(text));
        assert_eq!(r.verdict, Verdict::Dangerous, "{text}");
        assert_eq!(imports(&r), ["dill._dill._eval_repr"], "{text}");
    }
    // Through the memo: the string fetched with a GET is still the constant.
    let data = [
        b"\x80\x04".to_vec(),
        u("range(1, 4)"),
        b"\x940".to_vec(),
        u("dill._dill"),
        u("_eval_repr"),
        b"\x93h\x00\x85R.".to_vec(),
    ]
    .concat();
    assert_eq!(scan(&data).verdict, Verdict::Safe);
}

#[test]
fn a_resolved_global_is_rated_by_the_users_policy_too() {
    // The resolved global goes through the same policy as an import: a user deny wins.
    let mut policy = Policy::default();
    policy.deny("zoneinfo").expect("deny");
    let r = Scanner::new(policy, crate::Limits::default()).scan_bytes("t.pkl", &zoneinfo_p2());
    assert_eq!(r.verdict, Verdict::Dangerous);
    assert_eq!(
        rating_of(&r, "zoneinfo.ZoneInfo._unpickle"),
        Some(Rating::Dangerous)
    );
}

#[test]
fn a_gadget_the_user_denied_is_not_resolved() {
    let mut policy = Policy::default();
    policy.deny("builtins.getattr").expect("deny");
    let r = Scanner::new(policy, crate::Limits::default()).scan_bytes("t.pkl", &zoneinfo_p2());
    assert_eq!(r.verdict, Verdict::Dangerous, "{}", said(&r));
    assert_eq!(
        rating_of(&r, "__builtin__.getattr"),
        Some(Rating::Dangerous)
    );
    assert!(
        said(&r).contains("denied by the policy file"),
        "{}",
        said(&r)
    );
}

/// The fast pass never accepts a gadget: it gives way, and a scan then reports what the full
/// machine reports.
#[test]
fn fast_pass_gives_way_on_gadgets_and_agrees_with_the_full_machine() {
    use super::lite;
    use crate::formats::pickle_stream::{scan_pickles, scan_pickles_full_machine};
    let scanner = Scanner::default();
    let limits = lite::LiteLimits {
        max_opcodes: u64::MAX,
        max_stack_depth: usize::MAX,
        max_memo_entries: 1 << 30,
    };
    // About 200 KB of list items before the gadget call.
    let mut items = b"\x80\x02]q\x00(".to_vec();
    for i in 0..20_000 {
        items.extend_from_slice(&binunicode(&format!("item{i}")));
    }
    items.push(b'e');
    let tails: [Vec<u8>; 3] = [
        [
            getattr_of("zoneinfo", "ZoneInfo", "_unpickle"),
            binunicode("UTC"),
            b"K\x01\x86R\x86.".to_vec(),
        ]
        .concat(),
        [
            getattr_of("random", "_os", "system"),
            binunicode("id"),
            b"\x85R\x86.".to_vec(),
        ]
        .concat(),
        [
            global("numpy.core", "_ufunc_reconstruct"),
            binunicode("numpy"),
            binunicode("add"),
            b"\x86R\x86.".to_vec(),
        ]
        .concat(),
    ];
    for (i, tail) in tails.iter().enumerate() {
        let data = [items.clone(), tail.clone()].concat();
        assert!(
            matches!(
                lite::run(&data, 0, limits, scanner.policy()),
                lite::LiteResult::NeedsFull
            ),
            "case {i}: the fast pass accepted a gadget"
        );
        let fast = scanner.scan_with("t", &data, scan_pickles);
        let full = scanner.scan_with("t", &data, scan_pickles_full_machine);
        assert_eq!(fast.verdict, full.verdict, "case {i}");
        assert_eq!(imports(&fast), imports(&full), "case {i}");
        assert_eq!(
            fast.verdict,
            if i == 1 {
                Verdict::Dangerous
            } else {
                Verdict::Safe
            },
            "case {i}: {}",
            said(&fast)
        );
    }
}
