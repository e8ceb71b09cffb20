//! Benign files in which real libraries call a resolver gadget with constants
//! (`tests/fixtures/benign-gadgets/`, made by `scripts/fixtures/make_resolver_gadgets.py`):
//! pandas' `getattr(zoneinfo.ZoneInfo, '_unpickle')`, dill's `_load_type` / `_eval_repr`,
//! NumPy's old `numpy.core._ufunc_reconstruct`. Each must scan safe, listing the global the
//! gadget resolves to and not the gadget; and the same bytes with one constant changed so that
//! the call reaches something else must turn dangerous, naming the gadget or its new target.

use airlock::{Rating, Scanner, Verdict};

use crate::{finding_codes, fixtures};

/// Byte strings replaced, one for one, to make a gadget call reach something else.
type Edits = &'static [(&'static [u8], &'static [u8])];

/// (file, a global its gadget call resolves to, the gadget, (needle, replacement) making the
/// call dangerous, the import then reported dangerous).
const CASES: &[(&str, &str, &str, Edits, &str)] = &[
    (
        "pandas_tz_p2.pkl",
        "zoneinfo.ZoneInfo._unpickle",
        "getattr",
        &[(b"X\x09\x00\x00\x00_unpickle", b"X\x09\x00\x00\x00__class__")],
        "__builtin__.getattr",
    ),
    (
        "pandas_tz_p4.pkl",
        "zoneinfo.ZoneInfo._unpickle",
        "getattr",
        &[(b"\x8c\x09_unpickle", b"\x8c\x09__class__")],
        "builtins.getattr",
    ),
    (
        "pandas_tz_p5.pkl",
        "zoneinfo.ZoneInfo._unpickle",
        "getattr",
        &[(b"\x8c\x09_unpickle", b"\x8c\x09__class__")],
        "builtins.getattr",
    ),
    (
        "dill_types_and_singletons.pkl",
        "builtins.bytearray",
        "_load_type",
        &[(b"\x8c\x0erange(3, 9, 2)", b"\x8c\x0eexec('x=1')   ")],
        "dill._dill._eval_repr",
    ),
    (
        "numpy_ufuncs_legacy.pkl",
        "numpy.log1p",
        "_ufunc_reconstruct",
        &[
            (b"X\x05\x00\x00\x00numpy", b"X\x05\x00\x00\x00posix"),
            (b"X\x05\x00\x00\x00log1p", b"X\x05\x00\x00\x00execv"),
        ],
        "posix.execv",
    ),
];

fn read(name: &str) -> Vec<u8> {
    let path = fixtures(&format!("benign-gadgets/{name}"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn replace_once(data: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let at: Vec<usize> = data
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(at.len(), 1, "needle {needle:?} found {} times", at.len());
    let mut out = data.to_vec();
    out[at[0]..at[0] + needle.len()].copy_from_slice(with);
    out
}

#[test]
fn library_gadget_calls_are_resolved_and_safe() {
    let scanner = Scanner::default();
    for (name, resolved, gadget, _, _) in CASES {
        let report = scanner.scan_bytes(name, &read(name));
        let imports: Vec<String> = report.imports.iter().map(|i| i.qualified()).collect();
        assert_eq!(
            report.verdict,
            Verdict::Safe,
            "{name}: {} {imports:?}",
            finding_codes(&report)
        );
        assert!(imports.iter().any(|i| i == resolved), "{name}: {imports:?}");
        assert!(
            !imports.iter().any(|i| i.ends_with(gadget)),
            "{name}: the resolved gadget is still listed: {imports:?}"
        );
    }
    // dill's `_eval_repr('range(3, 9, 2)')` and numpy's first ufunc, through the memo.
    let dill = scanner.scan_bytes("d", &read("dill_types_and_singletons.pkl"));
    assert!(
        dill.imports
            .iter()
            .any(|i| i.qualified() == "builtins.range")
    );
    let numpy = scanner.scan_bytes("n", &read("numpy_ufuncs_legacy.pkl"));
    assert!(numpy.imports.iter().any(|i| i.qualified() == "numpy.add"));
}

#[test]
fn the_same_calls_reaching_something_else_are_dangerous() {
    let scanner = Scanner::default();
    for (name, _, _, edits, flagged) in CASES {
        let mut data = read(name);
        for (needle, with) in *edits {
            data = replace_once(&data, needle, with);
        }
        let report = scanner.scan_bytes(name, &data);
        assert_eq!(
            report.verdict,
            Verdict::Dangerous,
            "{name}: {}",
            finding_codes(&report)
        );
        let import = report
            .imports
            .iter()
            .find(|i| i.qualified() == *flagged)
            .unwrap_or_else(|| panic!("{name}: `{flagged}` not among the imports"));
        assert_eq!(
            import.rating,
            Rating::Dangerous,
            "{name}: {:?}",
            import.reason
        );
    }
}
