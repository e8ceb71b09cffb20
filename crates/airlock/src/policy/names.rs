//! Name normalisation: maps a `(module, name)` pair to the object CPython's unpickler returns.
//!
//! Two kinds of renaming happen before Airlock looks a global up:
//! - CPython's `_compat_pickle` tables (`IMPORT_MAPPING`, `NAME_MAPPING`), which
//!   `Unpickler.find_class` applies to protocol < 3 pickles so Python-2 names (`__builtin__`,
//!   `copy_reg`, `cPickle`, `urllib2`, `exceptions.ValueError`, ...) load in Python 3;
//! - C accelerator modules that hold the very objects their public module re-exports
//!   (`_operator.attrgetter` *is* `operator.attrgetter`, `posix.system` *is* `os.system`).
//!
//! The compat tables are applied whatever the protocol: a protocol-3+ pickle naming a Python-2
//! module fails to import it, so mapping it can only make the rating describe what a protocol-2
//! loader would run. Keys of `IMPORT_MAPPING` that are also Python-3 modules (`dbm`) map within
//! the same package, so the denylist label is unchanged.

/// A `(module, name)` pair.
type Global = (&'static str, &'static str);

/// `_compat_pickle.NAME_MAPPING` (CPython 3.11+), including the generated `exceptions.*`
/// and `multiprocessing.*` entries. Sorted by `(module, name)` for binary search.
const NAME_MAPPING: &[(Global, Global)] = &[
    (
        ("UserDict", "IterableUserDict"),
        ("collections", "UserDict"),
    ),
    (("UserDict", "UserDict"), ("collections", "UserDict")),
    (("UserList", "UserList"), ("collections", "UserList")),
    (("UserString", "UserString"), ("collections", "UserString")),
    (("__builtin__", "basestring"), ("builtins", "str")),
    (("__builtin__", "intern"), ("sys", "intern")),
    (("__builtin__", "long"), ("builtins", "int")),
    (("__builtin__", "reduce"), ("functools", "reduce")),
    (("__builtin__", "unichr"), ("builtins", "chr")),
    (("__builtin__", "unicode"), ("builtins", "str")),
    (("__builtin__", "xrange"), ("builtins", "range")),
    (
        ("_multiprocessing", "Connection"),
        ("multiprocessing.connection", "Connection"),
    ),
    (("_socket", "fromfd"), ("socket", "fromfd")),
    (("exceptions", "StandardError"), ("builtins", "Exception")),
    (("itertools", "ifilter"), ("builtins", "filter")),
    (("itertools", "ifilterfalse"), ("itertools", "filterfalse")),
    (("itertools", "imap"), ("builtins", "map")),
    (("itertools", "izip"), ("builtins", "zip")),
    (("itertools", "izip_longest"), ("itertools", "zip_longest")),
    (
        ("multiprocessing", "AuthenticationError"),
        ("multiprocessing.context", "AuthenticationError"),
    ),
    (
        ("multiprocessing", "BufferTooShort"),
        ("multiprocessing.context", "BufferTooShort"),
    ),
    (
        ("multiprocessing", "ProcessError"),
        ("multiprocessing.context", "ProcessError"),
    ),
    (
        ("multiprocessing", "TimeoutError"),
        ("multiprocessing.context", "TimeoutError"),
    ),
    (
        ("multiprocessing.forking", "Popen"),
        ("multiprocessing.popen_fork", "Popen"),
    ),
    (
        ("multiprocessing.process", "Process"),
        ("multiprocessing.context", "Process"),
    ),
    (("socket", "_socketobject"), ("socket", "SocketType")),
    (
        ("urllib", "ContentTooShortError"),
        ("urllib.error", "ContentTooShortError"),
    ),
    (("urllib", "getproxies"), ("urllib.request", "getproxies")),
    (
        ("urllib", "pathname2url"),
        ("urllib.request", "pathname2url"),
    ),
    (("urllib", "quote"), ("urllib.parse", "quote")),
    (("urllib", "quote_plus"), ("urllib.parse", "quote_plus")),
    (("urllib", "unquote"), ("urllib.parse", "unquote")),
    (("urllib", "unquote_plus"), ("urllib.parse", "unquote_plus")),
    (
        ("urllib", "url2pathname"),
        ("urllib.request", "url2pathname"),
    ),
    (("urllib", "urlcleanup"), ("urllib.request", "urlcleanup")),
    (("urllib", "urlencode"), ("urllib.parse", "urlencode")),
    (("urllib", "urlopen"), ("urllib.request", "urlopen")),
    (("urllib", "urlretrieve"), ("urllib.request", "urlretrieve")),
    (("urllib2", "HTTPError"), ("urllib.error", "HTTPError")),
    (("urllib2", "URLError"), ("urllib.error", "URLError")),
    (("whichdb", "whichdb"), ("dbm", "whichdb")),
];

/// `_compat_pickle.PYTHON2_EXCEPTIONS` (plus `WindowsError`, added on Windows): each
/// `exceptions.<Name>` maps to `builtins.<Name>`. Sorted for binary search.
const PYTHON2_EXCEPTIONS: &[&str] = &[
    "ArithmeticError",
    "AssertionError",
    "AttributeError",
    "BaseException",
    "BufferError",
    "BytesWarning",
    "DeprecationWarning",
    "EOFError",
    "EnvironmentError",
    "Exception",
    "FloatingPointError",
    "FutureWarning",
    "GeneratorExit",
    "IOError",
    "ImportError",
    "ImportWarning",
    "IndentationError",
    "IndexError",
    "KeyError",
    "KeyboardInterrupt",
    "LookupError",
    "MemoryError",
    "NameError",
    "NotImplementedError",
    "OSError",
    "OverflowError",
    "PendingDeprecationWarning",
    "ReferenceError",
    "RuntimeError",
    "RuntimeWarning",
    "StopIteration",
    "SyntaxError",
    "SyntaxWarning",
    "SystemError",
    "SystemExit",
    "TabError",
    "TargetScopeError",
    "TypeError",
    "UnboundLocalError",
    "UnicodeDecodeError",
    "UnicodeEncodeError",
    "UnicodeError",
    "UnicodeTranslateError",
    "UnicodeWarning",
    "UserWarning",
    "ValueError",
    "Warning",
    "WindowsError",
    "ZeroDivisionError",
];

/// Module renames: `_compat_pickle.IMPORT_MAPPING` (with its non-mutual additions) and the C
/// accelerator modules whose objects are the public module's objects. Sorted for binary search.
const MODULE_ALIASES: &[(&str, &str)] = &[
    ("BaseHTTPServer", "http.server"),
    ("CGIHTTPServer", "http.server"),
    ("ConfigParser", "configparser"),
    ("Cookie", "http.cookies"),
    ("Dialog", "tkinter.dialog"),
    ("DocXMLRPCServer", "xmlrpc.server"),
    ("FileDialog", "tkinter.filedialog"),
    ("HTMLParser", "html.parser"),
    ("Queue", "queue"),
    ("ScrolledText", "tkinter.scrolledtext"),
    ("SimpleDialog", "tkinter.simpledialog"),
    ("SimpleHTTPServer", "http.server"),
    ("SimpleXMLRPCServer", "xmlrpc.server"),
    ("SocketServer", "socketserver"),
    ("StringIO", "io"),
    ("Tix", "tkinter.tix"),
    ("Tkconstants", "tkinter.constants"),
    ("Tkdnd", "tkinter.dnd"),
    ("Tkinter", "tkinter"),
    ("UserDict", "collections"),
    ("UserList", "collections"),
    ("UserString", "collections"),
    ("__builtin__", "builtins"),
    ("_abcoll", "collections.abc"),
    ("_asyncio", "asyncio"),
    ("_bz2", "bz2"),
    ("_codecs", "codecs"),
    ("_collections", "collections"),
    ("_collections_abc", "collections.abc"),
    ("_datetime", "datetime"),
    ("_decimal", "decimal"),
    ("_elementtree", "xml.etree.ElementTree"),
    ("_functools", "functools"),
    ("_io", "io"),
    ("_json", "json"),
    ("_lzma", "lzma"),
    ("_operator", "operator"),
    ("_pickle", "pickle"),
    ("_posixsubprocess", "subprocess"),
    ("_pydecimal", "decimal"),
    ("_socket", "socket"),
    ("_sre", "re"),
    ("_ssl", "ssl"),
    ("_struct", "struct"),
    ("_weakref", "weakref"),
    ("_winreg", "winreg"),
    ("anydbm", "dbm"),
    ("cPickle", "pickle"),
    ("cStringIO", "io"),
    ("commands", "subprocess"),
    ("cookielib", "http.cookiejar"),
    ("copy_reg", "copyreg"),
    ("dbhash", "dbm.bsd"),
    ("dbm", "dbm.ndbm"),
    ("dumbdbm", "dbm.dumb"),
    ("dummy_thread", "_dummy_thread"),
    ("gdbm", "dbm.gnu"),
    ("htmlentitydefs", "html.entities"),
    ("httplib", "http.client"),
    ("markupbase", "_markupbase"),
    ("nt", "os"),
    ("posix", "os"),
    ("repr", "reprlib"),
    ("robotparser", "urllib.robotparser"),
    ("test.test_support", "test.support"),
    ("thread", "_thread"),
    ("tkColorChooser", "tkinter.colorchooser"),
    ("tkCommonDialog", "tkinter.commondialog"),
    ("tkFileDialog", "tkinter.filedialog"),
    ("tkFont", "tkinter.font"),
    ("tkMessageBox", "tkinter.messagebox"),
    ("tkSimpleDialog", "tkinter.simpledialog"),
    ("ttk", "tkinter.ttk"),
    ("urllib2", "urllib.request"),
    ("urlparse", "urllib.parse"),
    ("whichdb", "dbm"),
    ("xmlrpclib", "xmlrpc.client"),
];

/// Maps a module name to the public module whose objects the unpickler really returns
/// (`posix` → `os`, `__builtin__` → `builtins`, `_operator` → `operator`, `urllib2` →
/// `urllib.request`). Unknown modules are returned unchanged.
pub fn normalize_module(module: &str) -> &str {
    match MODULE_ALIASES.binary_search_by(|(alias, _)| (*alias).cmp(module)) {
        Ok(i) => MODULE_ALIASES.get(i).map_or(module, |(_, public)| public),
        Err(_) => module,
    }
}

/// Normalises a `(module, name)` pair: `NAME_MAPPING` first (as `find_class` does), then the
/// module aliases. `exceptions.X` becomes `builtins.X`.
pub fn normalize<'a>(module: &'a str, name: &'a str) -> (&'a str, &'a str) {
    if let Ok(i) = NAME_MAPPING.binary_search_by(|(key, _)| (*key).cmp(&(module, name))) {
        if let Some((_, target)) = NAME_MAPPING.get(i) {
            return *target;
        }
    }
    if module == "exceptions" && PYTHON2_EXCEPTIONS.binary_search(&name).is_ok() {
        return ("builtins", name);
    }
    (normalize_module(module), name)
}

/// Splits `a.b.c` at the last dot, or `a.b:c` at the colon (the `pkgutil.resolve_name` form,
/// needed for dotted names such as `module:Outer.Inner`). Without a separator the whole string
/// is the name and the module is empty.
pub fn split_qualified(qualified: &str) -> (&str, &str) {
    if let Some((module, name)) = qualified.split_once(':') {
        return (module, name);
    }
    qualified.rsplit_once('.').unwrap_or(("", qualified))
}

/// True for a `__dunder__` component: the names that reach interpreter internals
/// (`__globals__`, `__builtins__`, `__subclasses__`, `__getattribute__`, ...).
/// Cython's `__pyx_unpickle_X` helpers start with `__` but are not dunders.
pub fn is_dunder(component: &str) -> bool {
    component.len() > 4 && component.starts_with("__") && component.ends_with("__")
}

/// The first dunder component of a normalised global, if any. A top-level `__main__` module
/// is a module like any other (classes defined in a training script live there); only an
/// attribute or submodule component can reach interpreter internals.
pub fn dunder_component<'a>(module: &'a str, name: &'a str) -> Option<&'a str> {
    components(module, name)
        .enumerate()
        .find(|&(i, c)| is_dunder(c) && !(i == 0 && c == "__main__"))
        .map(|(_, c)| c)
}

/// Every dotted component of a module and a name, in order.
pub fn components<'a>(module: &'a str, name: &'a str) -> impl Iterator<Item = &'a str> {
    module.split('.').chain(name.split('.'))
}

/// Every leading run of a dotted path, shortest first: `a`, `a.b`, `a.b.c`.
pub fn leading_runs(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('.')
        .map(|(i, _)| i)
        .chain(std::iter::once(path.len()))
        .filter_map(move |end| path.get(..end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_and_unique() {
        assert!(MODULE_ALIASES.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(NAME_MAPPING.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(PYTHON2_EXCEPTIONS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn c_aliases_map_to_public_modules() {
        for (alias, public) in [
            ("__builtin__", "builtins"),
            ("copy_reg", "copyreg"),
            ("_operator", "operator"),
            ("_io", "io"),
            ("_pickle", "pickle"),
            ("cPickle", "pickle"),
            ("posix", "os"),
            ("nt", "os"),
            ("_codecs", "codecs"),
            ("_functools", "functools"),
            ("_collections", "collections"),
            ("thread", "_thread"),
            ("_socket", "socket"),
            ("_posixsubprocess", "subprocess"),
            ("commands", "subprocess"),
            ("httplib", "http.client"),
            ("urllib2", "urllib.request"),
        ] {
            assert_eq!(normalize_module(alias), public, "{alias}");
        }
        assert_eq!(normalize_module("torch"), "torch");
        assert_eq!(normalize_module(""), "");
    }

    #[test]
    fn name_mapping_applies_before_module_aliases() {
        assert_eq!(normalize("__builtin__", "xrange"), ("builtins", "range"));
        assert_eq!(normalize("__builtin__", "reduce"), ("functools", "reduce"));
        assert_eq!(normalize("__builtin__", "intern"), ("sys", "intern"));
        assert_eq!(normalize("__builtin__", "set"), ("builtins", "set"));
        assert_eq!(
            normalize("urllib", "urlopen"),
            ("urllib.request", "urlopen")
        );
        assert_eq!(
            normalize("exceptions", "ValueError"),
            ("builtins", "ValueError")
        );
        assert_eq!(
            normalize("exceptions", "StandardError"),
            ("builtins", "Exception")
        );
        assert_eq!(normalize("itertools", "izip"), ("builtins", "zip"));
        assert_eq!(normalize("exceptions", "set"), ("exceptions", "set"));
    }

    #[test]
    fn split_qualified_forms() {
        assert_eq!(
            split_qualified("torch._utils._rebuild_tensor"),
            ("torch._utils", "_rebuild_tensor")
        );
        assert_eq!(split_qualified("a.b:C.D"), ("a.b", "C.D"));
        assert_eq!(split_qualified("os"), ("", "os"));
    }

    #[test]
    fn leading_runs_shortest_first() {
        let runs: Vec<_> = leading_runs("a.b.c").collect();
        assert_eq!(runs, ["a", "a.b", "a.b.c"]);
    }

    #[test]
    fn dunder_detection() {
        assert!(is_dunder("__globals__"));
        assert!(is_dunder("__builtins__"));
        assert!(!is_dunder("__pyx_unpickle_Tree"));
        assert!(!is_dunder("____"));
        assert!(!is_dunder("_rebuild"));
    }
}
