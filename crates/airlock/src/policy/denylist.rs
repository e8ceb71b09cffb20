//! Denylist labels: why a global the allowlists rejected is *dangerous* rather than unknown.
//!
//! The denylist never decides whether a global is accepted (profiles do); it only labels
//! severity and reason, so a missing entry degrades "dangerous" to "suspicious", never to
//! "safe". Entries are dotted paths; an entry matches a global when it equals any leading run
//! of the global's components, so `asyncio` labels `asyncio.unix_events._UnixSubprocessTransport`
//! and `torch.hub` labels `torch.hub.load`. Sources: pickle-threats.md §2.5–2.7 and §2.9
//! (picklescan, modelscan, fickling and ModelAudit advisories).

use std::collections::HashMap;
use std::sync::LazyLock;

/// What a denylisted global can do; decides the reason text, the rule, and whether a user
/// allowance may override it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// Runs shell commands or starts processes.
    Shell,
    /// Evaluates, compiles or runs Python code.
    CodeExecution,
    /// Turns a name or attribute string into any object (getattr, import_module, attrgetter).
    Resolver,
    /// Deserialises bytes it is given: the payload may be a nested pickle.
    NestedLoader,
    /// Deserialisation machinery that can run a nested payload in more than one step.
    Deserializer,
    /// Changes the interpreter itself: import system, modules, signals, exit hooks, GC.
    Interpreter,
    /// Loads native code.
    NativeCode,
    /// Opens network connections or resolves names over the network.
    Network,
    /// Writes, moves or deletes files, or opens files by name.
    FileSystem,
    /// Calls or wraps callables it is given (partial, reduce, callbacks, schedulers).
    CallableWrapper,
    /// A model scanner: importing it is an attack on the scanner.
    Scanner,
    /// joblib < 0.10 array wrappers: `joblib.load` opens and unpickles a side file whose
    /// name the pickle chooses (absolute paths included).
    SideFileLoader,
}

impl Category {
    /// The reason shown next to the import.
    pub fn reason(self) -> &'static str {
        match self {
            Category::Shell => "runs shell commands or starts processes",
            Category::CodeExecution => "evaluates, compiles or runs Python code",
            Category::Resolver => "universal resolver: turns any name into any callable",
            Category::NestedLoader => "loads nested serialized data",
            Category::Deserializer => "deserialization machinery that can run a nested payload",
            Category::Interpreter => {
                "changes the interpreter (imports, modules, signals, exit hooks)"
            }
            Category::NativeCode => "loads native code",
            Category::Network => "network access",
            Category::FileSystem => "file system write or open by name",
            Category::CallableWrapper => "calls or wraps arbitrary callables",
            Category::Scanner => "scanner import: an attack on the model scanner itself",
            Category::SideFileLoader => {
                "makes joblib.load unpickle a side file named by the pickle (legacy joblib format)"
            }
        }
    }

    /// True when the label says the global is dangerous (all but the side-file loaders,
    /// which are suspicious: they are legitimate in joblib < 0.10 dumps).
    pub fn is_dangerous(self) -> bool {
        self != Category::SideFileLoader
    }

    /// True when a user's `allow` entry may override this label. Anything that executes
    /// code, resolves names, loads nested payloads or alters the interpreter can never be
    /// allowed; network, file and callable wrappers can, at the user's risk.
    pub fn user_may_allow(self) -> bool {
        matches!(
            self,
            Category::Network
                | Category::FileSystem
                | Category::CallableWrapper
                | Category::SideFileLoader
        )
    }
}

/// The denylist, grouped by category. Paths are in normalised form (see `names`): `os`,
/// not `posix`; `operator`, not `_operator`.
const GROUPS: &[(Category, &[&str])] = &[
    (
        Category::Shell,
        &[
            "_osx_support",
            "_aix_support",
            "asyncio",
            "commands",
            "distutils.spawn",
            "imaplib.IMAP4_stream",
            "mailcap.findmatch",
            "multiprocessing",
            "os",
            "pty",
            "pydoc.pipepager",
            "pydoc.tempfilepager",
            "pydoc.pager",
            "_pyrepl.pager",
            "setuptools._distutils.spawn",
            "subprocess",
            "uuid._get_command_stdout",
            "webbrowser",
            "platform._syscmd_file",
            "platform._syscmd_ver",
            "platform.popen",
            "pip",
            "ensurepip",
            "venv",
            "torch.utils.collect_env",
        ],
    ),
    (
        Category::CodeExecution,
        &[
            "torch.fx.graph_module",
            "torch.fx._graph_pickler",
            "pandas.eval",
            "pandas.core.computation",
            "pandas.DataFrame.eval",
            "pandas.DataFrame.query",
            "pandas.core.frame.DataFrame.eval",
            "pandas.core.frame.DataFrame.query",
            "patsy.eval",
            "dill._dill._create_code",
            "dill._dill._create_function",
            "unittest.main",
            "unittest.TestProgram",
            "bdb",
            "builtins.breakpoint",
            "builtins.compile",
            "builtins.eval",
            "builtins.exec",
            "builtins.execfile",
            "builtins.help",
            "builtins.input",
            "cProfile",
            "code",
            "codeop",
            "dataclasses._create_fn",
            "doctest",
            "idlelib",
            "lib2to3.pgen2.pgen.ParserGenerator",
            "numpy.f2py",
            "numpy.testing._private.utils.runstring",
            "pdb",
            "profile",
            "runpy",
            "sched",
            "string.Formatter",
            "test",
            "timeit",
            "torch._dynamo",
            "torch._inductor",
            "torch.fx.experimental.symbolic_shapes",
            "torch.jit",
            "torch.utils.bottleneck",
            "trace",
            "types.CodeType",
            "types.FunctionType",
            "types.LambdaType",
            "types.MethodType",
            "typing._eval_type",
            "typing.get_type_hints",
            "typing.ForwardRef",
            "_tkinter",
            "tkinter",
            "collections.namedtuple",
            "unittest.mock",
            "sklearn.utils._testing",
            "numpy.distutils",
            "setuptools",
            "distutils",
        ],
    ),
    (
        Category::Resolver,
        &[
            "pydoc",
            "unittest.loader",
            "unittest.TestLoader",
            "unittest.defaultTestLoader",
            "hydra.utils",
            "hydra._internal",
            "torch.utils._import_utils",
            "torch._ops.import_module",
            "builtins.delattr",
            "builtins.getattr",
            "builtins.globals",
            "builtins.locals",
            "builtins.setattr",
            "builtins.vars",
            "builtins.__import__",
            "copyreg.add_extension",
            "gc",
            "importlib",
            "inspect",
            "operator",
            "pkgutil",
            "pydoc.locate",
            "pydoc.ErrorDuringImport",
            "torch.utils._config_module",
            "dill._dill._load_type",
            "dill._dill._import_module",
            // `__import__(module)` then `getattr`: the generated table has the `numpy.core`
            // spelling; NumPy 2 keeps the function under `numpy._core` too.
            "numpy._core._ufunc_reconstruct",
            "numpy.core._ufunc_reconstruct",
            "cloudpickle.cloudpickle.subimport",
            "cloudpickle.cloudpickle._builtin_type",
        ],
    ),
    (
        Category::NestedLoader,
        &[
            "cloudpickle.load",
            "cloudpickle.loads",
            "dill.load",
            "dill.loads",
            "dill._dill.load",
            "dill._dill.loads",
            "joblib.load",
            "joblib.numpy_pickle.load",
            "jsonpickle.decode",
            "lib2to3.pgen2.grammar.Grammar.loads",
            "marshal.load",
            "marshal.loads",
            "numpy.load",
            "numpy.lib.npyio.load",
            "numpy.lib._npyio_impl.load",
            "pandas.read_pickle",
            "pandas.io.pickle.read_pickle",
            "pickle.Unpickler",
            "pickle._Unpickler",
            "pickle._load",
            "pickle._loads",
            "pickle.load",
            "pickle.loads",
            "shelve",
            "torch.load",
            "torch.serialization.load",
            "torch.serialization._legacy_load",
            "torch.serialization._load",
            "torch.storage._load_from_bytes",
            "torch.utils.data.datapipes.utils.decoder",
            "yaml.load",
            "yaml.unsafe_load",
            "yaml.full_load",
            "yaml.UnsafeLoader",
            "yaml.Loader",
            "yaml.FullLoader",
            "keras.models.load_model",
            "tensorflow.keras.models.load_model",
        ],
    ),
    (
        Category::Deserializer,
        &[
            "cloudpickle",
            "dill",
            "marshal",
            "pickle",
            "torch.package",
            "yaml",
        ],
    ),
    (
        Category::Interpreter,
        &[
            "_imp",
            "_frozen_importlib",
            "_frozen_importlib_external",
            "_interpreters",
            "_xxsubinterpreters",
            "atexit",
            "builtins.exit",
            "builtins.quit",
            "faulthandler",
            "signal",
            "site",
            "sys",
            "sysconfig",
            "_thread",
            "threading",
            "weakref.finalize",
            "zipimport",
            "contextlib.ExitStack",
            "contextlib.AsyncExitStack",
        ],
    ),
    (
        Category::NativeCode,
        &[
            "ctypes",
            "_ctypes",
            "cffi",
            "numpy.ctypeslib",
            "torch.ops.load_library",
            "torch._ops.ops.load_library",
            "torch._ops._Ops.load_library",
            "torch.classes.load_library",
            "torch._classes.classes.load_library",
            "torch._classes._Classes.load_library",
            "torch.utils.cpp_extension",
            "torch.cuda.memory.CUDAPluggableAllocator",
            "torch.cuda.CUDAPluggableAllocator",
            "lightgbm.libpath",
            "xgboost.libpath",
            "llvmlite.binding",
        ],
    ),
    (
        Category::Network,
        &[
            "torch.utils.model_zoo",
            "torchvision.datasets.utils",
            "gensim.downloader",
            "sklearn.datasets",
            "pandas.io.common.urlopen",
            "smart_open",
            "fsspec",
            "aiohttp",
            "ftplib",
            "http",
            "httpx",
            "poplib",
            "requests",
            "smtplib",
            "socket",
            "socketserver",
            "ssl",
            "telnetlib",
            "urllib.request",
            "urllib3",
            "xmlrpc",
            "torch.hub",
            "huggingface_hub",
            "nntplib",
        ],
    ),
    (
        Category::FileSystem,
        &[
            "builtins.open",
            "io.open",
            "io.FileIO",
            "io.open_code",
            "codecs.open",
            "distutils.file_util",
            "fileinput",
            "glob",
            "logging.FileHandler",
            "logging.handlers",
            "logging.config",
            "pathlib.Path.write_bytes",
            "pathlib.Path.write_text",
            "pathlib.PosixPath.write_bytes",
            "pathlib.PosixPath.write_text",
            "pathlib.Path.unlink",
            "pathlib.PosixPath.unlink",
            "shutil",
            "tempfile",
            "zipfile",
            "tarfile",
            "dbm",
            "sqlite3",
            "mmap",
            "numpy.save",
            "numpy.savez",
            "numpy.memmap",
            "numpy.fromfile",
            "numpy.ndarray.tofile",
            "torch.save",
            "joblib.dump",
        ],
    ),
    (
        Category::CallableWrapper,
        &[
            "functools",
            "itertools.starmap",
            "builtins.apply",
            "builtins.map",
            "builtins.filter",
            "operator.call",
        ],
    ),
    (
        Category::Scanner,
        &[
            "fickling",
            "picklescan",
            "modelscan",
            "modelaudit",
            "airlock",
        ],
    ),
    (
        Category::SideFileLoader,
        &[
            "joblib.numpy_pickle.NDArrayWrapper",
            "joblib.numpy_pickle.ZNDArrayWrapper",
            "joblib.numpy_pickle_compat.NDArrayWrapper",
            "joblib.numpy_pickle_compat.ZNDArrayWrapper",
            "sklearn.externals.joblib.numpy_pickle.NDArrayWrapper",
            "sklearn.externals.joblib.numpy_pickle.ZNDArrayWrapper",
            "sklearn.externals.joblib.numpy_pickle_compat.NDArrayWrapper",
            "sklearn.externals.joblib.numpy_pickle_compat.ZNDArrayWrapper",
        ],
    ),
];

/// Callables `scripts/policy/walk_names.py dangerous` found by reading the source of the
/// standard library and the covered ML packages (`category<TAB>path`): each calls `exec`,
/// `eval`, `compile`, `__import__`, `import_module`, a native-library loader or a URL opener
/// with an operand its caller chooses. Labels only, like the hand-written groups above, which
/// win when both list a path.
const GENERATED: &str = include_str!("generated/dangerous.tsv");

/// The [`Category`] a generated row names.
fn category_named(name: &str) -> Option<Category> {
    Some(match name {
        "CodeExecution" => Category::CodeExecution,
        "Resolver" => Category::Resolver,
        "NativeCode" => Category::NativeCode,
        "Network" => Category::Network,
        _ => return None,
    })
}

/// The generated rows, `(path, category)`.
pub fn generated() -> impl Iterator<Item = (&'static str, Category)> {
    GENERATED
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (category, path) = l.split_once('\t')?;
            Some((path, category_named(category)?))
        })
}

static TABLE: LazyLock<HashMap<&'static str, Category>> = LazyLock::new(|| {
    let mut table = HashMap::new();
    for (path, category) in entries() {
        // A path listed twice keeps its first (more specific group order) label.
        table.entry(path).or_insert(category);
    }
    table
});

static LONGEST: LazyLock<usize> =
    LazyLock::new(|| TABLE.keys().map(|k| k.len()).max().unwrap_or(0));

/// Bytes in the longest entry: a leading run longer than this matches nothing, so lookups
/// stop there whatever the length of the name (a GLOBAL can name thousands of components).
pub fn longest_entry() -> usize {
    *LONGEST
}

/// The label of a dotted path, when some leading run of its components is denylisted.
/// The longest (most specific) matching entry wins: `torch.serialization.load` is a nested
/// loader even though `torch.serialization` is only deserialization machinery.
pub fn label_path(path: &str) -> Option<(&'static str, Category)> {
    super::names::leading_runs(path)
        .take_while(|run| run.len() <= longest_entry())
        .filter_map(|run| TABLE.get_key_value(run))
        .last()
        .map(|(entry, category)| (*entry, *category))
}

/// Every denylist entry with its category, hand-written groups first, then the generated
/// rows (for documentation and tests).
pub fn entries() -> impl Iterator<Item = (&'static str, Category)> {
    GROUPS
        .iter()
        .flat_map(|(category, paths)| paths.iter().map(move |p| (*p, *category)))
        .chain(generated())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_entry_is_listed_twice() {
        let mut seen = std::collections::HashSet::new();
        for (path, _) in GROUPS
            .iter()
            .flat_map(|(c, paths)| paths.iter().map(move |p| (*p, *c)))
        {
            assert!(seen.insert(path), "{path} listed twice");
        }
    }

    #[test]
    fn prefixes_match_submodules_not_lookalikes() {
        assert_eq!(
            label_path("asyncio.unix_events._UnixSubprocessTransport._start"),
            Some(("asyncio", Category::Shell))
        );
        assert_eq!(label_path("osmosis.run"), None);
        assert_eq!(label_path("os"), Some(("os", Category::Shell)));
    }

    #[test]
    fn longest_entry_wins() {
        assert_eq!(
            label_path("torch.serialization.load"),
            Some(("torch.serialization.load", Category::NestedLoader))
        );
        assert_eq!(
            label_path("pickle.dumps"),
            Some(("pickle", Category::Deserializer))
        );
    }
}
