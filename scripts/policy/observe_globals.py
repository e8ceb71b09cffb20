"""Lists the globals real ML artifacts import, and generates Airlock's generated profiles.

Run through `scripts/policy/gen-profiles.sh` (it makes or reuses a virtualenv). Everything
pickled here is created by this script from the libraries' own objects; nothing is loaded.

    python observe_globals.py observe OUT.txt  # globals ordinary artifacts import, for tests
    python observe_globals.py pytorch OUT.rs   # torch's weights_only allowlist as a profile
    python observe_globals.py sklearn OUT.rs   # sklearn estimators + helper classes seen
"""

import collections
import importlib
import inspect
import io
import pickle
import pickletools
import sys
import warnings

STRING_OPS = {
    "STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE",
    "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8",
}


def globals_in(data):
    """(module, name) pairs a pickle imports, via GLOBAL or STACK_GLOBAL with literal operands."""
    found, memo, strings = [], {}, []
    try:
        for op, arg, _pos in pickletools.genops(io.BytesIO(data)):
            _track(op, arg, found, memo, strings)
    except ValueError:
        pass  # joblib writes raw array bytes after NumpyArrayWrapper; stop there
    return found


def _track(op, arg, found, memo, strings):
    """Follows string literals through the memo far enough to name STACK_GLOBAL operands."""
    if op.name in ("GLOBAL", "INST"):
        module, name = arg.split(" ", 1)
        found.append((module, name))
    elif op.name in STRING_OPS:
        strings.append(arg)
    elif op.name == "MEMOIZE":
        memo[len(memo)] = strings[-1] if strings else None
    elif op.name in ("PUT", "BINPUT", "LONG_BINPUT"):
        memo[arg] = strings[-1] if strings else None
    elif op.name in ("GET", "BINGET", "LONG_BINGET"):
        if memo.get(arg) is not None:
            strings.append(memo[arg])
    elif op.name == "STACK_GLOBAL":
        found.append((strings[-2], strings[-1]))
    if op.name not in STRING_OPS and op.name not in ("GET", "BINGET", "LONG_BINGET",
                                                    "MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT"):
        strings.clear()


def pickled_globals(obj):
    seen = set()
    for proto in (2, 4, 5):
        seen.update(globals_in(pickle.dumps(obj, protocol=proto)))
    return seen


def sklearn_models():
    """Every estimator all_estimators() lists that fits with defaults on a tiny data set."""
    import numpy as np
    from sklearn.utils import all_estimators

    rng = np.random.RandomState(0)
    X = np.abs(rng.rand(40, 4)) + 0.1
    y_cls = np.array([0, 1] * 20)
    y_reg = rng.rand(40)
    for name, cls in all_estimators():
        try:
            est = cls()
        except Exception:
            continue
        for y in (y_cls, y_reg, None):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    est.fit(X) if y is None else est.fit(X, y)
                yield name, est
                break
            except Exception:
                continue


def composite_models():
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.compose import ColumnTransformer

    rng = np.random.RandomState(0)
    X = rng.rand(60, 4)
    y = np.array([0, 1, 2] * 20)
    yield "Pipeline", Pipeline([("scale", StandardScaler()), ("lr", LogisticRegression())]).fit(X, y)
    yield "RandomForest", RandomForestClassifier(n_estimators=3).fit(X, y)
    yield "HistGB", HistGradientBoostingClassifier(max_iter=3).fit(X, y)
    yield "make_pipeline", make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    ct = ColumnTransformer([("oh", OneHotEncoder(), [0]), ("sc", StandardScaler(), [1, 2])])
    yield "ColumnTransformer", ct.fit(np.c_[np.array([0, 1] * 30), X[:, :2]])


# Functions fitted models reference, reviewed one by one: numeric routines stored as parameters
# (score functions, k-means kernels) and the constructor helpers Cython generates for
# extension types (`newObj(cls)` is `cls.__new__(cls)`; `__pyx_unpickle_X` checks a checksum and
# calls `X.__new__`). None of them runs code, opens files or resolves names.
REVIEWED_FUNCTIONS = {
    ("sklearn.cluster._kmeans", "_kmeans_single_elkan"),
    ("sklearn.cluster._kmeans", "_kmeans_single_lloyd"),
    ("sklearn.feature_selection._mutual_info", "mutual_info_classif"),
    ("sklearn.feature_selection._mutual_info", "mutual_info_regression"),
    ("sklearn.feature_selection._univariate_selection", "chi2"),
    ("sklearn.feature_selection._univariate_selection", "f_classif"),
    ("sklearn.feature_selection._univariate_selection", "f_oneway"),
    ("sklearn.feature_selection._univariate_selection", "f_regression"),
    ("sklearn.feature_selection._univariate_selection", "r_regression"),
    ("sklearn.metrics._dist_metrics", "newObj"),
    ("sklearn.neighbors._ball_tree", "newObj"),
    ("sklearn.neighbors._kd_tree", "newObj"),
}

# Classes from other packages that fitted sklearn models hold (sparse matrices from text
# vectorisers, B-splines from SplineTransformer), in their current and pre-1.8 scipy spellings.
SCIPY_CLASSES = [
    (f"scipy.sparse.{prefix}{fmt}", f"{fmt}_{kind}")
    for fmt in ("bsr", "coo", "csc", "csr", "dia", "dok", "lil")
    for prefix in ("_", "")
    for kind in ("matrix", "array")
    if not (prefix == "" and kind == "array")
] + [("scipy.interpolate._bsplines", "BSpline")]


def sklearn_helpers():
    """Helper classes and functions fitted models and search objects hold that
    `all_estimators()` does not list: CV splitters, Gaussian-process kernels, `Bunch`, scorer
    classes, and the metric functions scorers wrap (each computes a number from arrays)."""
    import sklearn.metrics
    from sklearn.metrics import _scorer

    def classes_in(module_name):
        module = importlib.import_module(module_name)
        return {(c.__module__, c.__qualname__) for c in vars(module).values()
                if inspect.isclass(c) and c.__module__ == module_name
                and not issubclass(c, Exception)}

    pairs = set()
    for module_name in ("sklearn.model_selection._split", "sklearn.gaussian_process.kernels",
                        "sklearn.metrics._scorer", "sklearn.utils._bunch"):
        pairs |= classes_in(module_name)
    for scorer in _scorer._SCORERS.values():
        func = getattr(scorer, "_score_func", None)
        if inspect.isfunction(func):
            pairs.add((func.__module__, func.__qualname__))
    for name in sklearn.metrics.__all__:
        func = getattr(sklearn.metrics, name)
        if inspect.isfunction(func) and name.endswith(("_score", "_error", "_loss")):
            pairs.add((func.__module__, func.__qualname__))
    return pairs


def sklearn_globals():
    by_global = collections.defaultdict(set)
    for label, model in list(sklearn_models()) + list(composite_models()):
        try:
            for g in pickled_globals(model):
                by_global[g].add(label)
        except Exception as exc:
            print(f"# {label}: cannot pickle: {exc}", file=sys.stderr)
    return by_global


def resolve(module, name):
    import importlib
    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def write_profile(path, header, pairs):
    with open(path, "w") as out:
        out.write(header)
        out.write("#[rustfmt::skip]\npub const ENTRIES: &[(&str, &str)] = &[\n")
        for module, name in sorted(set(pairs)):
            out.write(f'    ("{module}", "{name}"),\n')
        out.write("];\n")


def gen_sklearn(path):
    import sklearn
    from sklearn.utils import all_estimators

    pairs = {(c.__module__, c.__qualname__) for _n, c in all_estimators()}
    pairs.update(REVIEWED_FUNCTIONS)
    pairs.update(SCIPY_CLASSES)
    pairs.update(sklearn_helpers())
    for (module, name), users in sorted(sklearn_globals().items()):
        if not module.startswith("sklearn"):
            print(f"# non-sklearn global {module}.{name} used by {len(users)} models", file=sys.stderr)
            continue
        obj = resolve(module, name)
        if inspect.isclass(obj) or (module, name) in REVIEWED_FUNCTIONS or name.startswith("__pyx_unpickle_"):
            pairs.add((module, name))
        else:
            print(f"# REJECTED sklearn function {module}.{name} ({sorted(users)[:3]})", file=sys.stderr)
    header = (
        "//! The scikit-learn profile: estimator classes and the helper classes fitted models pickle.\n"
        "//!\n"
        f"//! GENERATED by scripts/policy/gen-profiles.sh from scikit-learn {sklearn.__version__}:\n"
        "//! every class `sklearn.utils.all_estimators()` returns, plus every *class* the script saw\n"
        "//! in pickles of fitted estimators (trees, losses, binners, ...), the reviewed functions\n"
        "//! and Cython constructor helpers in `REVIEWED_FUNCTIONS` (other functions it saw are left\n"
        "//! out on purpose), scipy's sparse-matrix and B-spline classes fitted models hold, and\n"
        "//! `sklearn_helpers()`: CV splitters, Gaussian-process kernels, `Bunch`, scorer classes\n"
        "//! and the metric functions scorers wrap.\n"
        "//! Do not edit by hand; rerun the script.\n\n"
    )
    write_profile(path, header, pairs)
    print(f"{len(pairs)} sklearn entries", file=sys.stderr)


def gen_pytorch(path):
    import torch
    from torch._weights_only_unpickler import _get_allowed_globals

    pairs = set()
    for full in _get_allowed_globals():
        module, name = full.rsplit(".", 1)
        # Airlock stores names normalised: `_codecs.encode` is `codecs.encode`.
        pairs.add(({"_codecs": "codecs"}.get(module, module), name))
    # TorchScript pickles rebuild typed lists with these; each returns its argument
    # (torch/jit/_pickle.py), so anything callable inside it is a global rated on its own.
    for name in ("build_boollist", "build_doublelist", "build_intlist", "build_tensor_from_id",
                 "build_tensorlist", "restore_type_tag"):
        pairs.add(("torch.jit._pickle", name))
    # torch.save writes storage classes by their public alias (torch.UntypedStorage ...).
    for ts in torch._storage_classes:
        if hasattr(torch, ts.__name__):
            pairs.add(("torch", ts.__name__))
    header = (
        "//! The PyTorch profile: what `torch.load(weights_only=True)` accepts.\n"
        "//!\n"
        f"//! GENERATED by scripts/policy/gen-profiles.sh from torch {torch.__version__}'s own\n"
        "//! `torch._weights_only_unpickler._get_allowed_globals()` (dtypes, tensor and storage\n"
        "//! classes, qschemes, `_rebuild_*` functions, `_codecs.encode`, `builtins.set/complex/\n"
        "//! bytearray`, `collections.OrderedDict/Counter`), plus the `torch.<Name>` spelling of each\n"
        "//! storage class, and `torch.jit._pickle`'s list builders (they return their argument).\n"
        "//! Do not edit by hand; rerun the script.\n\n"
    )
    write_profile(path, header, pairs)
    print(f"{len(pairs)} pytorch entries", file=sys.stderr)


def observed_samples():
    """(label, object) pairs of ordinary artifacts, pickled the way their libraries do."""
    import numpy as np

    yield "numpy array", np.arange(6).reshape(2, 3)
    yield "numpy scalar", np.float32(1.5)
    yield "numpy object array", np.array([1, "a"], dtype=object)
    yield "numpy structured", np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8")])
    yield "numpy masked", np.ma.masked_array([1, 2], mask=[0, 1])
    yield "numpy RandomState", np.random.RandomState(0)
    yield "numpy Generator", np.random.default_rng(0)
    yield "numpy datetime", np.array(["2020-01-01"], dtype="datetime64[D]")
    yield from composite_models()


def torch_samples():
    import torch

    yield "torch state_dict", {"w": torch.zeros(2), "p": torch.nn.Parameter(torch.ones(1))}
    yield "torch dtypes", {str(t): torch.zeros(1, dtype=t) for t in (torch.bfloat16, torch.int8, torch.bool)}
    yield "torch size+device", {"size": torch.Size([2, 3]), "device": torch.device("cpu")}


def torch_globals(obj):
    import zipfile

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    with zipfile.ZipFile(buf) as zf:
        data = zf.read(next(n for n in zf.namelist() if n.endswith("data.pkl")))
    return set(globals_in(data))


def joblib_globals(obj):
    import joblib

    buf = io.BytesIO()
    joblib.dump(obj, buf)
    return set(globals_in(buf.getvalue()))


def observe(path):
    """Writes `label<TAB>module<TAB>name` for every global the sample artifacts import."""
    import numpy as np

    rows = set()
    for label, obj in observed_samples():
        rows.update((label, m, n) for m, n in pickled_globals(obj))
    for label, obj in torch_samples():
        rows.update((label, m, n) for m, n in torch_globals(obj))
    rows.update(("joblib dump", m, n) for m, n in joblib_globals({"a": np.arange(5)}))
    with open(path, "w") as out:
        out.write("# Globals ordinary artifacts import (scripts/policy/observe_globals.py observe).\n")
        for row in sorted(rows):
            out.write("\t".join(row) + "\n")
    print(f"{len(rows)} observed globals", file=sys.stderr)


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "observe"
    {"observe": lambda: observe(sys.argv[2]), "sklearn": lambda: gen_sklearn(sys.argv[2]),
     "pytorch": lambda: gen_pytorch(sys.argv[2])}[command]()
