//! Policy tests: profiles, normalisation, denylist categories, dotted and dunder names, files.

use super::*;

fn rating(policy: &Policy, module: &str, name: &str) -> (Rating, Option<Rule>) {
    let a = policy.assess(module, name);
    (a.rating, a.rule)
}

fn innocuous(module: &str, name: &str) -> Assessment {
    let a = Policy::default().assess(module, name);
    assert_eq!(a.rating, Rating::Innocuous, "{module}.{name}: {}", a.reason);
    a
}

fn dangerous(module: &str, name: &str) -> Assessment {
    let a = Policy::default().assess(module, name);
    assert_eq!(a.rating, Rating::Dangerous, "{module}.{name}: {}", a.reason);
    a
}

fn suspicious(module: &str, name: &str) -> Assessment {
    let a = Policy::default().assess(module, name);
    assert_eq!(
        a.rating,
        Rating::Suspicious,
        "{module}.{name}: {}",
        a.reason
    );
    assert_eq!(a.rule, Some(Rule::UnknownImport));
    a
}

// ---- profiles --------------------------------------------------------------------------

#[test]
fn pytorch_profile_allows_weights_only_globals() {
    for (m, n) in [
        ("torch._utils", "_rebuild_tensor_v2"),
        ("torch._utils", "_rebuild_parameter"),
        ("torch._utils", "_rebuild_qtensor"),
        ("torch._tensor", "_rebuild_from_type_v2"),
        ("torch.serialization", "_get_layout"),
        ("torch", "FloatStorage"),
        ("torch", "BFloat16Storage"),
        ("torch", "QInt8Storage"),
        ("torch", "UntypedStorage"),
        ("torch.storage", "UntypedStorage"),
        ("torch", "Size"),
        ("torch", "device"),
        ("torch", "Tensor"),
        ("torch.nn.parameter", "Parameter"),
        ("torch", "uint1"),
        ("torch", "int7"),
        ("torch", "float8_e4m3fn"),
        ("torch", "float4_e2m1fn_x2"),
        ("torch", "per_channel_affine_float_qparams"),
        ("collections", "OrderedDict"),
        ("_codecs", "encode"),
        ("builtins", "bytearray"),
    ] {
        innocuous(m, n);
    }
    assert_eq!(
        innocuous("torch", "FloatStorage").allowed_by,
        Some("pytorch")
    );
}

#[test]
fn pytorch_functions_outside_the_profile_are_rejected() {
    assert!(dangerous("torch", "load").loads_nested);
    assert!(dangerous("torch.serialization", "load").loads_nested);
    assert!(dangerous("torch.storage", "_load_from_bytes").loads_nested);
    dangerous("torch.hub", "load");
    dangerous("torch.jit.unsupported_tensor_ops", "execWrapper");
    dangerous("torch._inductor.codecache", "compile_file");
    dangerous("torch.utils.collect_env", "run");
    suspicious("torch", "zeros");
    suspicious("torch.nn.modules.linear", "Linear");
}

#[test]
fn numpy_profile_covers_both_core_spellings() {
    for (m, n) in [
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
        ("numpy", "float64"),
        ("numpy.random._pickle", "__randomstate_ctor"),
        ("numpy.random._mt19937", "MT19937"),
    ] {
        innocuous(m, n);
    }
    assert!(innocuous("numpy.core.multiarray", "_reconstruct").args_must_be_allowed);
    assert!(!innocuous("numpy", "dtype").args_must_be_allowed);
    assert!(dangerous("numpy", "load").loads_nested);
    dangerous("numpy.testing._private.utils", "runstring");
    dangerous("numpy.f2py.crackfortran", "getlincoef");
    suspicious("numpy", "frombuffer");
    suspicious("numpy.lib.format", "read_array");
}

#[test]
fn joblib_profile_allows_the_wrapper_only() {
    assert_eq!(
        innocuous("joblib.numpy_pickle", "NumpyArrayWrapper").allowed_by,
        Some("joblib")
    );
    assert!(dangerous("joblib", "load").loads_nested);
    let legacy = Policy::default().assess("joblib.numpy_pickle_compat", "NDArrayWrapper");
    assert_eq!(legacy.rating, Rating::Suspicious);
    assert!(legacy.reason.contains("side file"), "{}", legacy.reason);
    suspicious("joblib.numpy_pickle", "read_array");
}

#[test]
fn sklearn_profile_allows_estimators_and_helpers() {
    for (m, n) in [
        ("sklearn.linear_model._logistic", "LogisticRegression"),
        ("sklearn.ensemble._forest", "RandomForestClassifier"),
        ("sklearn.pipeline", "Pipeline"),
        ("sklearn.preprocessing._data", "StandardScaler"),
        ("sklearn.tree._tree", "Tree"),
        ("sklearn.tree._classes", "DecisionTreeClassifier"),
        ("sklearn._loss.loss", "HalfMultinomialLoss"),
        (
            "sklearn.ensemble._hist_gradient_boosting.binning",
            "_BinMapper",
        ),
        (
            "sklearn.feature_selection._univariate_selection",
            "f_classif",
        ),
        ("scipy.sparse._csr", "csr_matrix"),
    ] {
        innocuous(m, n);
    }
    assert!(innocuous("sklearn.neighbors._kd_tree", "newObj").args_must_be_allowed);
    // Functions of the same package stay outside the profile; the one known gadget is labelled.
    suspicious("sklearn.utils", "resample");
    suspicious("sklearn.base", "clone");
    dangerous(
        "sklearn.utils._testing",
        "assert_run_python_script_without_output",
    );
}

#[test]
fn huggingface_profile_allows_training_state_classes() {
    for (m, n) in [
        ("transformers.training_args", "TrainingArguments"),
        ("transformers.training_args", "OptimizerNames"),
        ("transformers.trainer_utils", "IntervalStrategy"),
        ("transformers.trainer_utils", "SchedulerType"),
        ("transformers.trainer_utils", "HubStrategy"),
        ("tokenizers", "Tokenizer"),
        ("tokenizers.models", "BPE"),
        ("accelerate.state", "PartialState"),
    ] {
        innocuous(m, n);
    }
    suspicious("transformers", "AutoModel");
    suspicious("transformers.trainer", "Trainer");
    suspicious(
        "transformers.dynamic_module_utils",
        "get_class_from_dynamic_module",
    );
}

#[test]
fn python_profile_allows_value_types_only() {
    for (m, n) in [
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "slice"),
        ("builtins", "range"),
        ("builtins", "object"),
        ("__builtin__", "set"),
        ("__builtin__", "bytes"),
        ("__builtin__", "xrange"),
        ("argparse", "Namespace"),
        ("datetime", "datetime"),
        ("decimal", "Decimal"),
        ("uuid", "UUID"),
        ("pathlib", "PosixPath"),
        ("collections", "defaultdict"),
        ("collections", "deque"),
        ("copy_reg", "_reconstructor"),
    ] {
        innocuous(m, n);
    }
    assert!(innocuous("copyreg", "_reconstructor").args_must_be_allowed);
    dangerous("functools", "partial");
    dangerous("_functools", "partial");
    dangerous("functools", "reduce");
    dangerous("collections", "namedtuple");
    suspicious("builtins", "type");
    dangerous("pathlib", "Path.write_text");
}

#[test]
fn disabled_profile_no_longer_allows() {
    let mut policy = Policy::default();
    policy.set_profile(Profile::Sklearn, false);
    assert_eq!(
        rating(&policy, "sklearn.pipeline", "Pipeline"),
        (Rating::Suspicious, Some(Rule::UnknownImport))
    );
    assert_eq!(rating(&policy, "torch", "Size").0, Rating::Innocuous);
    policy.set_profile(Profile::Sklearn, true);
    assert_eq!(
        rating(&policy, "sklearn.pipeline", "Pipeline").0,
        Rating::Innocuous
    );
    assert_eq!(policy.profiles(), Profile::ALL);
}

#[test]
fn no_profile_entry_is_denylisted() {
    // Reviewed exceptions: helpers inside a denylisted package that only rebuild data, rated
    // by what they are given (`profiles::takes_classes`): TorchScript's list builders return
    // their argument; dill's `_create_array` has `copyreg._reconstructor`'s shape.
    let reviewed = |m: &str, n: &str| {
        (m == "torch.jit._pickle" || (m, n) == ("dill._dill", "_create_array"))
            && profiles::takes_classes(m, n)
    };
    let mut clashes = Vec::new();
    for profile in Profile::ALL {
        for &(m, n) in profile.entries() {
            if builtin_label(m, n).is_some() && !reviewed(m, n) {
                clashes.push(format!("{}: {m}.{n}", profile.name()));
            }
        }
    }
    assert!(clashes.is_empty(), "{clashes:#?}");
}

// ---- normalisation ---------------------------------------------------------------------

#[test]
fn c_aliases_are_rated_as_their_public_module() {
    for (m, n) in [
        ("posix", "system"),
        ("nt", "system"),
        ("_posixsubprocess", "fork_exec"),
        ("commands", "getoutput"),
        ("__builtin__", "eval"),
        ("__builtin__", "getattr"),
        ("_operator", "attrgetter"),
        ("_pickle", "loads"),
        ("cPickle", "loads"),
        ("_io", "FileIO"),
        ("_socket", "socket"),
        ("httplib", "HTTPConnection"),
        ("urllib2", "urlopen"),
        ("urllib", "urlretrieve"),
        ("thread", "start_new_thread"),
    ] {
        dangerous(m, n);
    }
    assert!(dangerous("_pickle", "loads").loads_nested);
    assert!(dangerous("cPickle", "loads").loads_nested);
    assert!(
        dangerous("__builtin__", "eval")
            .reason
            .contains("builtins.eval")
    );
    // _compat_pickle NAME_MAPPING: __builtin__.reduce is functools.reduce.
    assert!(
        dangerous("__builtin__", "reduce")
            .reason
            .contains("functools")
    );
    assert!(dangerous("__builtin__", "intern").reason.contains("sys"));
}

// ---- denylist categories ---------------------------------------------------------------

fn reason_of(module: &str, name: &str) -> String {
    dangerous(module, name).reason
}

#[test]
fn each_category_labels_its_gadgets() {
    let cases = [
        ("os", "system", "shell"),
        ("subprocess", "Popen", "shell"),
        ("pty", "spawn", "shell"),
        ("asyncio.unix_events", "_UnixSubprocessTransport", "shell"),
        ("builtins", "exec", "Python code"),
        ("runpy", "run_path", "Python code"),
        ("code", "InteractiveInterpreter", "Python code"),
        ("timeit", "timeit", "Python code"),
        ("idlelib.pyshell", "ModifiedInterpreter", "Python code"),
        ("builtins", "getattr", "universal resolver"),
        ("importlib", "import_module", "universal resolver"),
        ("pkgutil", "resolve_name", "universal resolver"),
        ("pydoc", "locate", "universal resolver"),
        ("operator", "methodcaller", "universal resolver"),
        ("pickle", "loads", "nested"),
        ("marshal", "loads", "nested"),
        ("yaml", "load", "nested"),
        ("dill", "loads", "nested"),
        ("socket", "create_connection", "network"),
        ("requests.api", "get", "network"),
        ("ssl", "get_server_certificate", "network"),
        ("urllib.request", "urlopen", "network"),
        ("shutil", "rmtree", "file system"),
        ("builtins", "open", "file system"),
        ("logging", "FileHandler", "file system"),
        ("sys", "modules", "interpreter"),
        ("atexit", "register", "interpreter"),
        ("weakref", "finalize", "interpreter"),
        ("ctypes", "CDLL", "native code"),
        ("functools", "partial", "callable"),
    ];
    for (m, n, expected) in cases {
        let reason = reason_of(m, n);
        assert!(reason.contains(expected), "{m}.{n}: {reason}");
        assert_eq!(
            Policy::default().assess(m, n).rule,
            Some(Rule::DangerousImport)
        );
    }
}

#[test]
fn nested_loaders_are_marked_and_others_are_not() {
    for (m, n) in [
        ("pickle", "loads"),
        ("pickle", "load"),
        ("_pickle", "loads"),
        ("marshal", "loads"),
        ("torch", "load"),
        ("torch.serialization", "load"),
        ("torch.storage", "_load_from_bytes"),
        ("joblib", "load"),
        ("numpy", "load"),
        ("dill", "loads"),
        ("cloudpickle", "loads"),
        ("yaml", "load"),
        ("lib2to3.pgen2.grammar", "Grammar.loads"),
    ] {
        assert!(dangerous(m, n).loads_nested, "{m}.{n}");
    }
    assert!(!dangerous("pickle", "dumps").loads_nested);
    assert!(!dangerous("os", "system").loads_nested);
}

#[test]
fn scanner_imports_have_their_own_rule() {
    for (m, n) in [
        ("fickling.fickle", "Pickled"),
        ("picklescan.scanner", "scan_pickle_bytes"),
        ("modelscan", "ModelScan"),
        ("modelaudit.core", "scan_model_directory_or_file"),
    ] {
        assert_eq!(dangerous(m, n).rule, Some(Rule::ScannerImport), "{m}.{n}");
    }
}

#[test]
fn unknown_globals_are_suspicious() {
    suspicious("mypackage.models", "MyNet");
    suspicious("ultralytics.nn.tasks", "DetectionModel");
    suspicious("", "thing");
    suspicious("osmosis", "run");
    // Classes pickled from a training script live in `__main__`: unknown, not a dunder.
    suspicious("__main__", "MyModel");
}

// ---- dotted and dunder names (pickle-threats §2.4) -------------------------------------

#[test]
fn attribute_chains_reaching_denylisted_modules_are_dangerous() {
    // `pathlib.os` is an alias the generated table knows; `foo_pkg.os` is not, and the
    // attribute chain `os.system` labels it.
    let a = dangerous("pathlib", "os.system");
    assert!(a.reason.contains("`os.system`"), "{}", a.reason);
    let a = dangerous("foo_pkg", "os.system");
    assert!(a.reason.contains("through attributes"), "{}", a.reason);
    assert!(a.reason.contains("`os`"), "{}", a.reason);
    dangerous("numpy.core._internal", "sys.modules");
    dangerous("pathlib", "posix.system");
    dangerous("torch", "serialization.load");
    assert!(dangerous("torch", "serialization.load").loads_nested);
    dangerous("builtins", "eval.something");
}

/// `c0.c1.….cN` with `n` components.
fn dotted(n: usize) -> String {
    (0..n)
        .map(|i| format!("c{i}"))
        .collect::<Vec<_>>()
        .join(".")
}

#[test]
fn a_name_of_thousands_of_components_is_labelled_like_a_short_one() {
    // A gadget deep inside a long attribute chain, and a long tail after it.
    let (before, after) = (dotted(3_000), dotted(3_000));
    let a = dangerous("pathlib", &format!("{before}.posix.system.{after}"));
    assert!(
        a.reason.contains("reaches `os` through attributes"),
        "{}",
        a.reason
    );
    dangerous(&format!("os.{after}"), "x");
    suspicious("pathlib", &format!("{before}.{after}"));
    // The user's own entries too, however long they are.
    let mut policy = Policy::default();
    let denied = format!("mypkg.{}", dotted(50));
    policy.deny(&denied).expect("denied");
    let (rating, _) = rating(&policy, "pathlib", &format!("{before}.{denied}.{after}"));
    assert_eq!(rating, Rating::Dangerous);
}

#[test]
fn attribute_chains_are_cut_to_the_longest_entry() {
    // Every suffix of the name is a chain, but only the runs a lookup can match are copied:
    // copying whole suffixes made a 29 KB GLOBAL (a fuzzer's, in
    // tests/fixtures/fuzz/pickle_engine) take 15 s to rate.
    let name = dotted(5_000);
    let longest = denylist::longest_entry();
    let mut chains = 0;
    for chain in attribute_chains(&name, longest) {
        let (head, rest) = chain.split_once('.').unwrap_or((&chain, ""));
        assert!(rest.len() <= longest, "{} bytes after `{head}`", rest.len());
        assert!(name.contains(&chain), "{chain}");
        chains += 1;
    }
    assert_eq!(chains, 4_999);
    assert_eq!(leading_within("a.bb.ccc", 4), "a.bb");
    assert_eq!(leading_within("a.bb.ccc", 8), "a.bb.ccc");
    assert_eq!(leading_within("aaaa.b", 3), "");
}

#[test]
fn attribute_chains_are_innocuous_only_when_listed_exactly() {
    suspicious("torch", "nn.parameter.Parameter");
    suspicious("numpy", "core.multiarray._reconstruct");
    suspicious("collections", "OrderedDict.fromkeys");
    // `pathlib.os` *is* the `os` module (generated alias table): dangerous, not unknown.
    dangerous("pathlib", "os");
    suspicious("foo_pkg", "os");
    let mut policy = Policy::default();
    policy.allow("mypkg:Outer.Inner").expect("allowed");
    assert_eq!(rating(&policy, "mypkg", "Outer.Inner").0, Rating::Innocuous);
    assert_eq!(
        rating(&policy, "mypkg.Outer", "Inner").0,
        Rating::Suspicious
    );
}

#[test]
fn dunder_components_are_dangerous_anywhere() {
    for (m, n) in [
        ("builtins", "eval.__call__"),
        ("numpy", "__builtins__"),
        ("torch", "Tensor.__init__.__globals__"),
        ("builtins", "object.__subclasses__"),
        ("collections", "OrderedDict.__class__"),
        ("__builtins__", "eval"),
        ("builtins", "__import__"),
        ("os.__dict__", "system"),
        ("builtins", "type.__getattribute__"),
        ("__main__", "__builtins__"),
    ] {
        assert_eq!(dangerous(m, n).rule, Some(Rule::DunderName), "{m}.{n}");
    }
    // Cython unpickle helpers start with `__` but are not dunders.
    innocuous("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence");
}

// ---- user allowances -------------------------------------------------------------------

#[test]
fn user_allowances_extend_and_override_only_what_may_be_overridden() {
    let mut policy = Policy::default();
    policy.allow("mypackage.models.MyNet").expect("plain class");
    policy
        .allow("functools.partial")
        .expect("callable wrapper is overridable");
    policy
        .allow("_functools.reduce")
        .expect("normalised to functools.reduce");
    let a = policy.assess("mypackage.models", "MyNet");
    assert_eq!(a.rating, Rating::Innocuous);
    assert_eq!(a.allowed_by, Some(USER_ALLOWANCE));
    assert_eq!(rating(&policy, "functools", "partial").0, Rating::Innocuous);
    assert!(policy.assess("functools", "partial").args_must_be_allowed);
    assert!(
        !policy
            .assess("mypackage.models", "MyNet")
            .args_must_be_allowed
    );
    assert_eq!(rating(&policy, "functools", "reduce").0, Rating::Innocuous);
    assert_eq!(
        rating(&policy, "functools", "partialmethod").0,
        Rating::Dangerous
    );
}

#[test]
fn user_allowances_refuse_what_must_never_be_allowed() {
    let mut policy = Policy::default();
    for entry in [
        "os.system",
        "posix.system",
        "nt.system",
        "sys.modules",
        "subprocess.Popen",
        "builtins.eval",
        "__builtin__.exec",
        "builtins.compile",
        "builtins.getattr",
        "builtins.__import__",
        "importlib.import_module",
        "pickle.loads",
        "marshal.loads",
        "torch.load",
        "operator.attrgetter",
        "pkgutil.resolve_name",
        "fickling.fickle.Pickled",
        "numpy.__builtins__",
        "pathlib:os.system",
        "ctypes.CDLL",
    ] {
        let err = policy.allow(entry).expect_err(entry);
        assert!(
            matches!(err, PolicyError::Forbidden { .. }),
            "{entry}: {err}"
        );
    }
    assert_eq!(rating(&policy, "os", "system").0, Rating::Dangerous);
}

#[test]
fn user_allowances_reject_malformed_names() {
    let mut policy = Policy::default();
    for entry in ["os", "", "torch.*", "a..b", ".b", "a.b c", "1mod.X", "mod."] {
        let err = policy.allow(entry).expect_err(entry);
        assert!(matches!(err, PolicyError::BadName { .. }), "{entry}: {err}");
    }
}

#[test]
fn user_denials_win_over_profiles() {
    let mut policy = Policy::default();
    policy.deny("sklearn.pipeline").expect("valid path");
    policy.deny("posix").expect("valid path");
    let a = policy.assess("sklearn.pipeline", "Pipeline");
    assert_eq!(
        (a.rating, a.rule),
        (Rating::Dangerous, Some(Rule::DangerousImport))
    );
    assert!(a.reason.contains("policy file"), "{}", a.reason);
    assert_eq!(
        rating(
            &policy,
            "sklearn.linear_model._logistic",
            "LogisticRegression"
        )
        .0,
        Rating::Innocuous
    );
    assert!(policy.deny("a..b").is_err());
}

// ---- policy files ----------------------------------------------------------------------

#[test]
fn policy_file_parses_allow_deny_and_profiles() {
    let policy = file::parse(
        r#"
allow = ["mypackage.MyNet", "functools.partial"]
deny = ["transformers.training_args"]

[profiles]
sklearn = false
"#,
    )
    .expect("valid file");
    assert_eq!(rating(&policy, "mypackage", "MyNet").0, Rating::Innocuous);
    assert_eq!(rating(&policy, "functools", "partial").0, Rating::Innocuous);
    assert!(policy.assess("functools", "partial").args_must_be_allowed);
    assert!(
        !policy
            .assess("mypackage.models", "MyNet")
            .args_must_be_allowed
    );
    assert_eq!(
        rating(&policy, "sklearn.pipeline", "Pipeline").0,
        Rating::Suspicious
    );
    assert_eq!(
        rating(&policy, "transformers.training_args", "TrainingArguments").0,
        Rating::Dangerous
    );
}

#[test]
fn policy_file_errors_are_clear() {
    let cases = [
        ("allow = [\"os.system\"]", "can never be allowed"),
        ("allow = [\"builtins.eval\"]", "can never be allowed"),
        ("allow = [\"torch.*\"]", "wildcards"),
        ("allow = [\"justaname\"]", "module.name"),
        (
            "[profiles]\ntensorflow = false",
            "unknown profile `tensorflow`",
        ),
        ("allow = \"torch.Tensor\"", "invalid type"),
        ("allowed = []", "unknown field"),
        ("deny = [\"a..b\"]", "dotted path"),
        ("[profiles]\nsklearn = \"no\"", "invalid type"),
    ];
    for (text, expected) in cases {
        let err = file::parse(text).map(|_| ()).expect_err(text);
        assert!(err.contains(expected), "{text:?}: {err}");
    }
}

#[test]
fn from_file_reports_path_and_discover_walks_up() {
    let dir = std::env::temp_dir().join(format!("airlock-policy-test-{}", std::process::id()));
    let nested = dir.join("a").join("b");
    std::fs::create_dir_all(&nested).expect("temp dir");
    let file_path = dir.join(POLICY_FILE_NAME);
    std::fs::write(&file_path, "allow = [\"posix.system\"]\n").expect("write");
    assert_eq!(Policy::discover(&nested), Some(file_path.clone()));
    let err = Policy::from_file(&file_path).expect_err("forbidden entry");
    let message = err.to_string();
    assert!(
        message.contains(POLICY_FILE_NAME) && message.contains("never"),
        "{message}"
    );
    std::fs::write(&file_path, "allow = [\"mypkg.Net\"]\n").expect("write");
    let policy = Policy::from_file(&file_path).expect("valid");
    assert_eq!(rating(&policy, "mypkg", "Net").0, Rating::Innocuous);
    assert!(matches!(
        Policy::from_file(&dir.join("missing.toml")),
        Err(PolicyError::Read { .. })
    ));
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

// ---- real artifacts --------------------------------------------------------------------

#[test]
fn globals_of_ordinary_artifacts_are_innocuous() {
    // Written by scripts/policy/gen-profiles.sh from pickles of fitted sklearn pipelines,
    // forests and boosting models, numpy arrays/scalars/generators, torch.save and joblib.dump.
    let observed = include_str!("profiles/observed.tsv");
    let mut count = 0;
    for line in observed.lines().filter(|l| !l.starts_with('#')) {
        let mut fields = line.split('\t');
        let (Some(label), Some(module), Some(name)) = (fields.next(), fields.next(), fields.next())
        else {
            panic!("malformed line {line:?}");
        };
        let a = Policy::default().assess(module, name);
        assert_eq!(
            a.rating,
            Rating::Innocuous,
            "{label}: {module}.{name}: {}",
            a.reason
        );
        count += 1;
    }
    assert!(count > 50, "only {count} observed globals");
}

#[test]
fn assess_is_cheap_enough_to_run_per_import() {
    // Not a benchmark: a guard against accidental quadratic or allocation-heavy lookups.
    let policy = Policy::default();
    let names = [
        ("torch._utils", "_rebuild_tensor_v2"),
        ("sklearn.tree._tree", "Tree"),
        ("posix", "system"),
        ("pathlib", "os.system"),
        ("mypackage", "Thing"),
    ];
    let started = std::time::Instant::now();
    for _ in 0..20_000 {
        for (m, n) in names {
            std::hint::black_box(policy.assess(m, n));
        }
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

// ---- names resolved through module attributes (generated alias table) ------------------

#[test]
fn names_through_module_aliases_are_dangerous() {
    for (module, name, reaches) in [
        ("random", "_os.system", "os"),
        ("argparse", "_os.system", "os"),
        ("enum", "bltns.eval", "builtins.eval"),
        ("enum", "bltns.exec", "builtins.exec"),
        ("shutil", "os.system", "os"),
        ("scipy", "_importlib.import_module", "importlib"),
        ("random._os", "system", "os"),
    ] {
        let a = dangerous(module, name);
        assert_eq!(a.rule, Some(Rule::DangerousImport), "{module}.{name}");
        assert!(a.reason.contains(reaches), "{module}.{name}: {}", a.reason);
    }
    // The same names without the alias step are merely unknown.
    suspicious("random", "_inst.random");
    suspicious("argparse", "_os_unknown.system");
}

#[test]
fn an_alias_cannot_be_allowed_by_the_user() {
    let mut policy = Policy::default();
    assert!(matches!(
        policy.allow("random:_os.system"),
        Err(PolicyError::Forbidden { .. })
    ));
    assert!(matches!(
        policy.allow("enum:bltns.eval"),
        Err(PolicyError::Forbidden { .. })
    ));
}

#[test]
fn no_profile_entry_resolves_to_a_denylisted_name() {
    for profile in Profile::ALL {
        for &(module, name) in profile.entries() {
            let path = format!("{module}.{name}");
            if let Some(resolved) = aliases::resolve(&path) {
                assert!(
                    denylist::label_path(&resolved).is_none(),
                    "{}: {path} is {resolved}",
                    profile.name()
                );
            }
        }
    }
}

// ---- code-executing, native-loading, import-by-name and URL-loading callables ----------

#[test]
fn code_native_import_and_url_loaders_are_dangerous() {
    for (module, name) in [
        ("torch.fx.graph_module", "reduce_graph_module"),
        ("torch.fx.graph_module", "reduce_package_graph_module"),
        ("torch.fx.graph_module", "_forward_from_src"),
        ("torch", "ops.load_library"),
        ("torch._ops", "ops.load_library"),
        ("torch.utils.cpp_extension", "load_inline"),
        ("torch.utils.cpp_extension", "load"),
        ("numpy.ctypeslib", "load_library"),
        ("ctypes", "CDLL"),
        ("ctypes", "cdll.LoadLibrary"),
        ("pydoc", "importfile"),
        ("pydoc", "locate"),
        ("pydoc", "safeimport"),
        ("unittest", "defaultTestLoader.loadTestsFromName"),
        ("unittest.loader", "TestLoader"),
        ("importlib", "import_module"),
        ("torch.utils.model_zoo", "load_url"),
        ("torch.hub", "load"),
        ("torch.hub", "load_state_dict_from_url"),
        ("urllib.request", "urlopen"),
        ("numpy.core", "_ufunc_reconstruct"),
        ("torch._utils", "_import_dotted_name"),
        ("xgboost.core", "_load_lib"),
        ("dill._dill", "_create_code"),
        ("hydra.utils", "instantiate"),
        ("pandas", "eval"),
    ] {
        let a = dangerous(module, name);
        assert_eq!(a.rule, Some(Rule::DangerousImport), "{module}.{name}");
    }
}

#[test]
fn generated_denylist_rows_are_labelled_and_never_allowlisted() {
    let mut n = 0;
    for (path, category) in denylist::generated() {
        n += 1;
        assert!(category.is_dangerous(), "{path}");
        assert!(denylist::label_path(path).is_some(), "{path}");
        let (module, name) = path.rsplit_once('.').expect("a dotted path");
        assert!(
            !Profile::ALL.iter().any(|p| p.contains(module, name)),
            "{path} is on a profile"
        );
    }
    assert!(n >= 20, "only {n} generated rows");
}

// ---- generated library profiles --------------------------------------------------------

#[test]
fn library_profiles_allow_what_their_artifacts_need() {
    for (module, name) in [
        ("pandas", "DataFrame"),
        ("pandas.core.internals.managers", "BlockManager"),
        ("pandas._libs.internals", "_unpickle_block"),
        ("pandas.core.indexes.base", "_new_Index"),
        ("pandas.arrays", "DatetimeArray"),
        ("xgboost.sklearn", "XGBClassifier"),
        ("xgboost.core", "Booster"),
        ("lightgbm.basic", "Booster"),
        ("catboost.core", "CatBoostClassifier"),
        ("omegaconf.dictconfig", "DictConfig"),
        ("omegaconf.nodes", "AnyNode"),
        (
            "statsmodels.regression.linear_model",
            "RegressionResultsWrapper",
        ),
        ("gensim.models.word2vec", "Word2Vec"),
        ("sklearn.model_selection._split", "StratifiedKFold"),
        ("sklearn.gaussian_process.kernels", "RBF"),
        ("sklearn.utils._bunch", "Bunch"),
        ("sklearn.metrics._scorer", "_Scorer"),
        ("sklearn.metrics._classification", "f1_score"),
        ("numpy", "log1p"),
        ("numpy._core._multiarray_umath", "log1p"),
        ("numpy.core._multiarray_umath", "expm1"),
        ("numpy._core.umath", "sqrt"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.numeric", "_frombuffer"),
    ] {
        innocuous(module, name);
    }
    for (module, name) in [
        ("dill._dill", "_create_array"),
        ("torch.jit._pickle", "build_intlist"),
        ("pandas.core.indexes.base", "_new_Index"),
    ] {
        assert!(
            innocuous(module, name).args_must_be_allowed,
            "{module}.{name}"
        );
    }
}

#[test]
fn library_profiles_leave_out_io_and_code() {
    // Writers and stores open files when constructed; corpus readers open what they are given.
    suspicious("pandas", "ExcelWriter");
    suspicious("pandas", "HDFStore");
    suspicious("gensim.models.word2vec", "LineSentence");
    suspicious("pandas", "read_csv");
    dangerous("pandas", "eval");
    dangerous("pandas.core.frame", "DataFrame.eval");
    dangerous("dill._dill", "_create_function");
    dangerous("dill._dill", "_load_type");
    // NumPy 1.x's ufunc resolver imports any module by name.
    dangerous("numpy.core", "_ufunc_reconstruct");
    dangerous("torch.jit", "load");
}

// ---- pyarrow and pandas' Interval helper -------------------------------------------------

/// What pandas 3 frames with pyarrow-backed strings and `pickle.dumps(pa.table(...))` import
/// (seen in the benign set): pyarrow's `__reduce__` targets are allowed; pyarrow's readers,
/// file systems and extension-type machinery are not, and there is no module wildcard.
#[test]
fn pyarrow_profile_allows_reduce_targets_only() {
    for name in [
        "_restore_array",
        "py_buffer",
        "type_for_alias",
        "_reconstruct_table",
        "chunked_array",
        "field",
        "list_",
        "schema",
    ] {
        innocuous("pyarrow.lib", name);
    }
    for (module, name) in [
        ("pyarrow.lib", "ipc"),
        ("pyarrow.lib", "PyExtensionType"),
        ("pyarrow.lib", "register_extension_type"),
        ("pyarrow.lib", "memory_map"),
        ("pyarrow.lib", "input_stream"),
        ("pyarrow.lib", "Table"),
        ("pyarrow", "_restore_array"),
        ("pyarrow.ipc", "open_file"),
        ("pyarrow.parquet", "read_table"),
        ("pyarrow.fs", "LocalFileSystem"),
    ] {
        let a = Policy::default().assess(module, name);
        assert_ne!(a.rating, Rating::Innocuous, "{module}.{name}");
    }
    let mut policy = Policy::default();
    policy.set_profile(Profile::Pyarrow, false);
    assert_eq!(
        rating(&policy, "pyarrow.lib", "_restore_array"),
        (Rating::Suspicious, Some(Rule::UnknownImport))
    );
}

/// pandas' `Interval` pickles through Cython's `__pyx_unpickle_IntervalMixin(type, checksum,
/// state)`; like every `__pyx_unpickle_*` it takes a class, so it is flagged.
#[test]
fn pandas_interval_cython_helper_is_allowed_and_flagged() {
    let a = innocuous("pandas._libs.interval", "__pyx_unpickle_IntervalMixin");
    assert!(a.args_must_be_allowed);
    suspicious("pandas._libs.interval", "__pyx_unpickle_Interval");
}
