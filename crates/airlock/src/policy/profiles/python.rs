//! The Python profile: plain standard-library value types a model file may hold.
//!
//! Source: reviewed by hand. Each entry is a class whose constructor (or the `__reduce__`
//! CPython writes for it) only builds a value from its arguments: no I/O, no name lookup, no
//! call of an argument. `copyreg._reconstructor(cls, base, state)` is how protocol 0–1 pickles
//! and `copyreg`-registered classes rebuild instances; it calls `base.__new__(cls)` and
//! `base.__init__(obj, state)`, so the pickle engine must check that `cls` and `base` are
//! themselves allowlisted classes (`builtins.object` for plain classes).
//!
//! Left out on purpose: `functools.partial` (wraps any callable), `collections.namedtuple`
//! (builds a class with `eval`), `builtins.type` (builds classes), `builtins.getattr` and every
//! other attribute/import primitive, `builtins.map/filter/iter/next` (call arguments lazily),
//! `pathlib.Path`'s methods (only the path constructors are here), `io.BytesIO`, `typing.*`.

pub const ENTRIES: &[(&str, &str)] = &[
    ("argparse", "Namespace"),
    ("builtins", "Ellipsis"),
    ("builtins", "NotImplemented"),
    ("builtins", "bool"),
    ("builtins", "bytearray"),
    ("builtins", "bytes"),
    ("builtins", "complex"),
    ("builtins", "dict"),
    ("builtins", "float"),
    ("builtins", "frozenset"),
    ("builtins", "int"),
    ("builtins", "list"),
    ("builtins", "object"),
    ("builtins", "range"),
    ("builtins", "set"),
    ("builtins", "slice"),
    ("builtins", "str"),
    ("builtins", "tuple"),
    ("codecs", "encode"),
    ("collections", "Counter"),
    ("collections", "OrderedDict"),
    ("collections", "defaultdict"),
    ("collections", "deque"),
    ("copyreg", "_reconstructor"),
    ("datetime", "date"),
    ("datetime", "datetime"),
    ("datetime", "time"),
    ("datetime", "timedelta"),
    ("datetime", "timezone"),
    ("decimal", "Decimal"),
    ("fractions", "Fraction"),
    ("pathlib", "PosixPath"),
    ("pathlib", "PurePosixPath"),
    ("pathlib", "PureWindowsPath"),
    ("pathlib", "WindowsPath"),
    ("pathlib._local", "PosixPath"),
    ("pathlib._local", "PurePosixPath"),
    ("pathlib._local", "PureWindowsPath"),
    ("pathlib._local", "WindowsPath"),
    ("types", "SimpleNamespace"),
    ("uuid", "UUID"),
    // A time zone: `ZoneInfo(key)` and `ZoneInfo._unpickle(key, from_cache)` (what
    // `ZoneInfo.__reduce__` returns; pandas writes it as `getattr(ZoneInfo, '_unpickle')`, a
    // resolver call the engine resolves) only read TZif data for `key` from the tz database
    // or the `tzdata` package. A hostile key cannot leave them: `_tzpath.find_tzfile` runs
    // `_validate_tzfile_path` first (CPython 3.9+), which raises for absolute paths, keys that
    // normalise differently (`a/../b`) and keys reaching outside TZPATH; the `tzdata`
    // fallback only imports `tzdata.zoneinfo.*` resources. An invalid file fails to parse.
    ("zoneinfo", "ZoneInfo"),
    ("zoneinfo", "ZoneInfo._unpickle"),
];
