"""Generates Airlock's per-library allowlist profiles, and the benign fixtures that test them,
from the libraries themselves.

    python gen_library_profiles.py profiles OUT_DIR   # crates/airlock/src/policy/profiles
    python gen_library_profiles.py fixtures OUT_DIR   # tests/fixtures/benign-libs

Run through `scripts/policy/gen-library-profiles.sh` (a throwaway virtualenv with pandas,
xgboost, lightgbm, catboost, omegaconf, statsmodels, gensim, dill, numpy, scikit-learn).

Each profile is class-level, like the scikit-learn one: the classes the library's own objects
pickle (observed by pickling real objects the way users save them, protocols 2, 4 and 5, with
a recording `find_class` on the script's own pickles), plus the classes of a few namespaces
listed in `CLASS_NAMESPACES` (index types, dtypes, nodes, result classes...), plus the
reviewed reconstruction functions in `REVIEWED_FUNCTIONS`. Functions the script sees that are
not reviewed are printed and left out; classes from I/O modules (`.io.`: writers, stores) are
left out. Globals of other libraries (numpy, builtins) are kept only when they are classes
or reviewed functions, so a profile works with the other profiles disabled.

Two further rules, both decided by the script from the library's code, not by a list of names:

- Library functions stored in models (`stored_functions`): a module-level function of the
  library that one of the profile's classes takes as a *default argument value* of its
  constructor (gensim's `TfidfModel(wlocal=utils.identity, wglobal=df2idf)`) is what the
  library itself stores on the instance and calls later on the model's own numbers; pickles
  of the model import it by name. It is allowed when it is a plain Python function defined in
  the library and its code (nested code included) names nothing that does I/O, imports or
  runs code (`CODE_OR_IO_NAMES`). A function that fails the check is printed and left out.
- Containers (`dict_like` / `list_like`): a profiled class that subclasses `dict` (`list`)
  without overriding `__setitem__` (`append`/`extend`) receives SETITEMS (APPENDS) exactly as a
  dict (list) does: CPython's unpickler calls the inherited C slot, no library code. Such
  classes (`statsmodels.tools.tools.Bunch`, scipy's `OptimizeResult`) are written to the
  profile's `DICT_LIKE` / `LIST_LIKE`, which the pickle engine accepts as mutation targets
  (rule PKL007 stays for every other class).
"""

import _compat_pickle
import importlib
import inspect
import io
import json
import os
import pickle
import sys
import warnings

warnings.simplefilter("ignore")

# (module, name) -> why a function is harmless. Each only rebuilds a value from its arguments;
# the ones marked "class" instantiate a class passed as argument (`cls.__new__`/`cls(...)`),
# which Airlock's pickle engine sees as its own allowlisted (or not) global.
REVIEWED_FUNCTIONS = {
    ("pandas.core.indexes.base", "_new_Index"): "class: cls.__new__ / cls._simple_new(d)",
    ("pandas.core.indexes.interval", "_new_IntervalIndex"): "class: cls.from_arrays(**d)",
    ("pandas.core.indexes.timedeltas", "_new_TimedeltaIndex"): "class: cls._simple_new(**d)",
    ("pandas.core.indexes.period", "_new_PeriodIndex"): "class: cls(**d)",
    ("pandas.core.indexes.datetimes", "_new_DatetimeIndex"): "class: cls._simple_new(**d)",
    ("pandas._libs.internals", "_unpickle_block"): "new_block(values, placement, ndim)",
    ("pandas._libs.tslibs.timestamps", "_unpickle_timestamp"): "Timestamp from an int",
    ("pandas._libs.tslibs.timedeltas", "_timedelta_unpickle"): "Timedelta from an int",
    ("pandas._libs.tslibs.nattype", "_nat_unpickle"): "returns NaT",
    ("pandas", "NA"): "the pandas.NA singleton (a value)",
    ("pandas._libs.missing", "NA"): "the pandas.NA singleton (a value)",
    ("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"): "Cython constructor helper",
    ("pandas._libs.interval", "__pyx_unpickle_IntervalMixin"): "Cython constructor helper (Interval)",
    ("dill._dill", "_create_array"): "class: f(*args) then __setstate__ (copyreg shape)",
    ("gensim.utils", "call_on_class_only"): "raises AttributeError; stored as a method",
    ("builtins", "hash"): "hash(x) of a value (gensim's hashfxn)",
    ("numpy._core.multiarray", "_reconstruct"): "class: ndarray.__new__(subtype, ...)",
    ("numpy._core.multiarray", "scalar"): "scalar(dtype, bytes)",
    ("numpy._core.numeric", "_frombuffer"): "array from bytes",
    ("numpy.random._pickle", "__bit_generator_ctor"): "class: bit generator by name/class",
    ("numpy.random._pickle", "__randomstate_ctor"): "class: RandomState(bit generator)",
    ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"): "Cython helper",
    ("codecs", "encode"): "str -> bytes (protocol 2 bytes)",
    ("copyreg", "_reconstructor"): "class: base.__new__(cls)",
}

NEVER = ("builtins.eval", "builtins.exec", "builtins.getattr", "builtins.__import__")

# Names whose mention in a function's code disqualifies it from `stored_functions`: file and
# network I/O, importing by name, running code or processes, loading serialised objects,
# reaching attributes or callables by a computed name.
CODE_OR_IO_NAMES = frozenset((
    "open", "eval", "exec", "compile", "__import__", "import_module", "getattr", "setattr",
    "delattr", "globals", "locals", "vars", "system", "popen", "Popen", "spawn", "call", "run",
    "check_output", "urlopen", "load", "loads", "unpickle", "fromfile", "memmap", "read",
    "write", "remove", "unlink", "rmtree", "subprocess", "os", "sys", "importlib", "pickle",
    "ctypes", "builtins", "smart_open",
))


def code_names(code):
    """Every global, attribute and local-free name the code object and its nested code use."""
    names = set(code.co_names)
    for const in code.co_consts:
        if inspect.iscode(const):
            names |= code_names(const)
    return names


def stored_functions(pkg, classes):
    """Module-level functions of `pkg` that the classes take as constructor default values."""
    found = set()
    for cls in classes:
        try:
            parameters = inspect.signature(cls.__init__).parameters.values()
        except (TypeError, ValueError):
            continue  # a C constructor with no signature: no Python defaults
        for p in parameters:
            f = p.default
            if not inspect.isfunction(f) or not f.__module__.split(".")[0] == pkg:
                continue
            if f.__qualname__ != f.__name__ or getattr(
                    importlib.import_module(f.__module__), f.__name__, None) is not f:
                continue  # not reachable as `module.name`: pickle stores it by reference only
            bad = code_names(f.__code__) & CODE_OR_IO_NAMES
            if bad:
                print(f"# REJECTED stored function {f.__module__}.{f.__name__}: {sorted(bad)}",
                      file=sys.stderr)
                continue
            found.add((f.__module__, f.__name__))
    return found


# Stricter than `CODE_OR_IO_NAMES` (attribute names such as `read` or `call` are common in
# numeric code): what no constructor or `__setstate__` of an allowed class may mention.
UNPICKLE_DENY_NAMES = frozenset((
    "open", "eval", "exec", "compile", "__import__", "import_module", "system", "popen",
    "Popen", "urlopen", "check_output", "smart_open", "fromfile", "memmap",
))


def unpickling_code(cls):
    """The Python code the unpickler can run on `cls`: `__new__` (NEWOBJ), `__init__` (REDUCE,
    `cls(*args)`) and `__setstate__` (BUILD), wherever in the class's MRO they are defined.
    C and Cython methods have no code object and yield nothing."""
    for method in ("__new__", "__init__", "__setstate__"):
        f = inspect.getattr_static(cls, method, None)
        f = getattr(f, "__func__", f)
        if inspect.isfunction(f):
            yield f"{f.__qualname__}", f.__code__


def unpickling_does_io(cls):
    """Names from `UNPICKLE_DENY_NAMES` that `cls`'s unpickling code mentions (with its nested
    code); empty when none."""
    bad = set()
    for _where, code in unpickling_code(cls):
        bad |= code_names(code) & UNPICKLE_DENY_NAMES
    return sorted(bad)


def inherits(cls, base, methods):
    """True when `cls` subclasses `base` and takes each of `methods` from `base` unchanged."""
    return issubclass(cls, base) and all(getattr(cls, m) is getattr(base, m) for m in methods)


def recorded(data):
    found = set()

    class Recorder(pickle.Unpickler):
        def find_class(self, module, name):
            found.add((module, name))
            return super().find_class(module, name)

    Recorder(io.BytesIO(data)).load()  # the script's own benign pickle
    return found


def normalise(module, name):
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    module = _compat_pickle.IMPORT_MAPPING.get(module, module)
    return {"__builtin__": "builtins", "copy_reg": "copyreg", "_codecs": "codecs"}.get(module, module), name


def resolve(module, name):
    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


# ---- samples: real objects, saved the way users save them ------------------------------

def xy():
    import numpy as np
    rng = np.random.RandomState(0)
    X = rng.rand(40, 3)
    return X, (X[:, 0] > 0.5).astype(int), X[:, 1]


def pandas_samples():
    import pandas as pd
    df = pd.DataFrame({
        "a": [1, 2, 3], "b": [1.5, 2.5, None], "c": ["x", "y", "z"],
        "d": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03"]),
        "e": pd.Categorical(["u", "v", "u"]),
    })
    yield "pandas_dataframe", df
    yield "pandas_series", pd.Series([1.0, 2.0, 3.0], index=pd.Index(["a", "b", "c"]), name="s")
    yield "pandas_multiindex", pd.DataFrame(
        {"x": [1, 2]}, index=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)]))
    yield "pandas_index_types", {
        "range": pd.RangeIndex(5), "interval": pd.interval_range(0, 3),
        "period": pd.period_range("2020-01", periods=3, freq="M"),
        "timedelta": pd.to_timedelta([1, 2], unit="D"),
        "datetime": pd.date_range("2020-01-01", periods=3, freq="D"),
        "tz": pd.Series(pd.date_range("2020-01-01", periods=2, tz="UTC")),
        "timestamp": pd.Timestamp("2020-01-01"), "timedelta1": pd.Timedelta("1D"),
        "nat": pd.NaT,
        "int": pd.array([1, None], dtype="Int64"), "float": pd.array([1.5, None], dtype="Float64"),
        "str": pd.array(["a", None], dtype="string"), "bool": pd.array([True, None], dtype="boolean"),
        "sparse": pd.arrays.SparseArray([0, 1, 0]),
    }


def xgboost_samples():
    import xgboost as xgb
    X, y, r = xy()
    yield "xgboost_classifier", xgb.XGBClassifier(n_estimators=2, max_depth=2).fit(X, y)
    yield "xgboost_regressor", xgb.XGBRegressor(n_estimators=2, max_depth=2).fit(X, r)
    yield "xgboost_booster", xgb.train({"max_depth": 2}, xgb.DMatrix(X, y), 2)


def lightgbm_samples():
    import lightgbm as lgb
    X, y, r = xy()
    yield "lightgbm_classifier", lgb.LGBMClassifier(n_estimators=2, num_leaves=3, verbose=-1).fit(X, y)
    yield "lightgbm_regressor", lgb.LGBMRegressor(n_estimators=2, num_leaves=3, verbose=-1).fit(X, r)
    yield "lightgbm_booster", lgb.train({"verbose": -1, "num_leaves": 3}, lgb.Dataset(X, y), 2)


def catboost_samples():
    import catboost as cb
    X, y, r = xy()
    yield "catboost_classifier", cb.CatBoostClassifier(iterations=2, depth=2, verbose=0,
                                                       allow_writing_files=False).fit(X, y)
    yield "catboost_regressor", cb.CatBoostRegressor(iterations=2, depth=2, verbose=0,
                                                     allow_writing_files=False).fit(X, r)


def omegaconf_samples():
    from omegaconf import OmegaConf
    yield "omegaconf_dictconfig", OmegaConf.create({
        "model": {"lr": 0.1, "layers": [64, 32], "name": "mlp", "dropout": None},
        "trainer": {"max_epochs": 3, "precision": "16-mixed", "devices": 1}, "seed": 1,
        "data": {"path": "${oc.env:HOME}/data", "batch": "${trainer.devices}"},
    })
    yield "omegaconf_listconfig", OmegaConf.create([1, 2.5, "x", True, {"k": "v"}])


def lightning_checkpoint():
    """A Lightning-style checkpoint: `torch.save` of weights plus the Hydra/OmegaConf
    hyper-parameters (`hyper_parameters`) and loop state, as `Trainer.save_checkpoint` writes."""
    import torch
    from omegaconf import OmegaConf
    cfg = OmegaConf.create({"model": {"hidden": 8, "lr": 0.001}, "trainer": {"max_epochs": 2}})
    return {
        "epoch": 1, "global_step": 10, "pytorch-lightning_version": "2.5.0",
        "state_dict": {"layer.weight": torch.zeros(2, 3), "layer.bias": torch.zeros(2)},
        "hyper_parameters": cfg, "hparams_name": "cfg",
    }


def statsmodels_samples():
    import numpy as np
    import statsmodels.api as sm
    X, y, r = xy()
    exog = sm.add_constant(X[:, 1:])
    yield "statsmodels_ols", sm.OLS(r, exog).fit()
    yield "statsmodels_logit", sm.Logit(y, exog).fit(disp=0)
    yield "statsmodels_glm", sm.GLM(r, exog, family=sm.families.Gaussian()).fit()
    # Time-series results (state-space Kalman filter objects, optimizer results); a short
    # series keeps the pickles small.
    from statsmodels.tsa.arima.model import ARIMA
    from statsmodels.tsa.holtwinters import ExponentialSmoothing
    series = 10 + np.sin(np.arange(16.0)) + r[:16]
    yield "statsmodels_arima", ARIMA(series, order=(1, 0, 0)).fit()
    yield "statsmodels_ets", ExponentialSmoothing(series, trend="add").fit()


def gensim_samples():
    from gensim.models import Word2Vec
    w = Word2Vec([["a", "b", "c"], ["b", "c", "d"]], vector_size=4, min_count=1, epochs=1,
                 workers=1, seed=0)
    yield "gensim_word2vec", w
    yield "gensim_keyedvectors", w.wv
    yield "gensim_tfidf", gensim_tfidf()


def gensim_tfidf():
    from gensim.corpora import Dictionary
    from gensim.models import TfidfModel
    docs = [["a", "b", "c"], ["b", "c", "d"], ["a", "d"]]
    vocab = Dictionary(docs)
    return TfidfModel([vocab.doc2bow(d) for d in docs])


def pillow_samples():
    """Images as `pickle.dump(Image.new(...))` saves them: RGB, and palette mode (the palette
    travels in the state)."""
    from PIL import Image
    yield "pillow_image", Image.new("RGB", (4, 3), (10, 20, 30))
    palette = Image.new("P", (4, 3), 1)
    palette.putpalette([0, 0, 0, 255, 0, 0] * 2)
    yield "pillow_palette", palette


def dill_samples():
    import numpy as np
    yield "dill_arrays", {"a": np.arange(4, dtype="float32"), "b": np.ones((2, 2))}


def sklearn_helper_samples():
    import numpy as np
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score, get_scorer, make_scorer
    from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.utils import Bunch
    X, y, r = xy()
    yield "sklearn_function_transformer", FunctionTransformer(np.log1p, inverse_func=np.expm1).fit(X)
    yield "sklearn_grid_search", GridSearchCV(LogisticRegression(), {"C": [0.5, 1.0]}, cv=KFold(3),
                                              scoring="f1").fit(X, y)
    yield "sklearn_cv_and_scorers", {"cv": StratifiedKFold(3), "scorers": [
        make_scorer(f1_score), get_scorer("roc_auc"), get_scorer("neg_mean_squared_error")]}
    yield "sklearn_gaussian_process", GaussianProcessRegressor(
        kernel=ConstantKernel() * RBF() + WhiteKernel()).fit(X[:8], r[:8])
    yield "sklearn_bunch", Bunch(data=X[:2], target=y[:2], feature_names=["a", "b", "c"])


LIBRARIES = {
    "pandas": (pandas_samples, "pandas"),
    "xgboost": (xgboost_samples, "xgboost"),
    "lightgbm": (lightgbm_samples, "lightgbm"),
    "catboost": (catboost_samples, "catboost"),
    "omegaconf": (omegaconf_samples, "omegaconf"),
    "statsmodels": (statsmodels_samples, "statsmodels"),
    "gensim": (gensim_samples, "gensim"),
    "dill": (dill_samples, "dill"),
    "pillow": (pillow_samples, "PIL"),
}


# ---- class-level namespaces -------------------------------------------------------------

def classes_of(module_name, predicate=lambda c: True):
    module = importlib.import_module(module_name)
    for attr, value in sorted(vars(module).items()):
        if inspect.isclass(value) and not attr.startswith("__") and predicate(value):
            yield value.__module__, value.__qualname__


def from_io_module(cls):
    """Classes defined under a package's `io` folder (readers, writers, stores open files when
    constructed: `ExcelWriter`, `HDFStore`); pandas 3 sets their `__module__` to `pandas`."""
    files = {f.__code__.co_filename for f in vars(cls).values() if inspect.isfunction(f)}
    return any(f"{os.sep}io{os.sep}" in f for f in files) or ".io." in cls.__module__


# Corpus readers open the files they are given (when iterated, some when constructed).
GENSIM_READERS = ("Corpus", "Sentence", "Sentences", "LineDocument", "CoherenceModel")


def pandas_classes():
    import pandas as pd
    for ns in ("pandas", "pandas.arrays", "pandas.api.types", "pandas.tseries.offsets",
               "pandas.api.extensions"):
        yield from classes_of(ns, lambda c: not from_io_module(c)
                              and not issubclass(c, Warning) and not issubclass(c, Exception)
                              and c.__module__.startswith("pandas"))
    yield from classes_of("pandas.core.internals.managers")
    yield from classes_of("pandas.core.internals.blocks",
                          lambda c: c.__module__ == "pandas.core.internals.blocks")
    for cls in (pd.NA.__class__, pd.NaT.__class__):
        yield cls.__module__, cls.__qualname__


def model_classes(module_name, base_names):
    module = importlib.import_module(module_name)
    bases = tuple(getattr(module, b) for b in base_names)
    return classes_of(module_name, lambda c: c.__module__ == module_name and issubclass(c, bases))


def statsmodels_classes():
    import pkgutil
    import statsmodels
    from statsmodels.base.data import ModelData
    from statsmodels.base.model import Model, Results
    from statsmodels.base.wrapper import ResultsWrapper
    from statsmodels.tsa.arima.params import SARIMAXParams
    from statsmodels.tsa.arima.specification import SARIMAXSpecification
    from statsmodels.tsa.statespace.initialization import Initialization
    from statsmodels.tsa.statespace.representation import FrozenRepresentation, Representation
    # Models, results and their data; the state-space machinery a time-series result holds
    # (representations, filters and smoothers with their frozen results, initialisations) and
    # ARIMA's specification/parameter records. All hold arrays and numbers.
    bases = (Model, Results, ResultsWrapper, ModelData, Representation, FrozenRepresentation,
             Initialization, SARIMAXSpecification, SARIMAXParams)
    for info in pkgutil.walk_packages(statsmodels.__path__, "statsmodels."):
        if any(p in info.name.split(".") for p in ("tests", "sandbox", "examples", "conftest")):
            continue
        try:
            module = importlib.import_module(info.name)
        except Exception:
            continue
        compiled_statespace = info.name.startswith("statsmodels.tsa.statespace._") and \
            not module.__file__.endswith(".py")
        for _a, c in sorted(vars(module).items()):
            if not inspect.isclass(c) or c.__module__ != info.name:
                continue
            # The Cython extension types of the compiled state-space modules
            # (`_representation.dStatespace`, `_kalman_filter.zKalmanFilter`...): numeric
            # kernels over arrays, rebuilt by REDUCE(cls, (model, ints...)) then BUILD.
            if issubclass(c, bases) or (compiled_statespace and not issubclass(c, BaseException)):
                yield c.__module__, c.__qualname__
    for fam in ("Gaussian", "Binomial", "Poisson", "Gamma", "InverseGaussian", "NegativeBinomial",
                "Tweedie"):
        yield "statsmodels.genmod.families.family", fam
    for c in classes_of("statsmodels.genmod.families.links"):
        yield c
    for c in classes_of("statsmodels.genmod.families.varfuncs"):
        yield c


def pillow_classes():
    """`PIL.Image.Image`, which pickles as NEWOBJ + BUILD(`[info, mode, size, palette, data]`).
    `Image.__init__` takes no argument and `Image.__setstate__` only rebuilds pixels:
    `core.new(mode, size)` allocates the image, `putpalette(palette)` and `frombytes(data)` (the
    C "raw" decoder) fill it; no I/O, no import, no callable. The plugins' `ImageFile`
    subclasses (`PngImageFile`, what `Image.open` returns) are left out: called by REDUCE with a
    path, `ImageFile.__init__(fp)` opens and parses that file (`unpickling_does_io` rejects them
    too; a pickled opened image stays suspicious)."""
    return [("PIL.Image", "Image")]


CLASS_NAMESPACES = {
    "pandas": pandas_classes,
    "xgboost": lambda: list(model_classes("xgboost.sklearn", ["XGBModel"]))
    + [("xgboost.core", "Booster")],
    "lightgbm": lambda: list(model_classes("lightgbm.sklearn", ["LGBMModel"]))
    + [("lightgbm.basic", "Booster")],
    "catboost": lambda: model_classes("catboost.core", ["CatBoost"]),
    "omegaconf": lambda: [c for ns in ("omegaconf.nodes", "omegaconf.base", "omegaconf.dictconfig",
                                       "omegaconf.listconfig")
                          for c in classes_of(ns, lambda c, ns=ns: c.__module__ == ns
                                              and not issubclass(c, Exception))],
    "statsmodels": statsmodels_classes,
    "gensim": lambda: [c for ns in ("gensim.models.word2vec", "gensim.models.keyedvectors",
                                    "gensim.models.fasttext", "gensim.models.doc2vec",
                                    "gensim.models.ldamodel", "gensim.models.tfidfmodel",
                                    "gensim.corpora.dictionary")
                       for c in classes_of(ns, lambda c, ns=ns: c.__module__ == ns
                                           and not c.__name__.endswith(GENSIM_READERS)
                                           and not issubclass(c, Exception))],
    "dill": lambda: [],
    "pillow": pillow_classes,
}


def observed(library):
    samples, _pkg = LIBRARIES[library]
    dumps = __import__("dill").dumps if library == "dill" else pickle.dumps
    seen = set()
    for _label, obj in samples():
        for proto in (2, 4, 5):
            seen.update(recorded(dumps(obj, protocol=proto)))
    return {normalise(m, n) for m, n in seen}


def profile_pairs(library):
    pkg = LIBRARIES[library][1]
    pairs = set()
    for module, name in CLASS_NAMESPACES[library]():
        pairs.add(normalise(module, name))
    classes = [resolve(m, n) for m, n in pairs]
    pairs |= stored_functions(pkg, classes)
    for module, name in sorted(pairs):
        bad = unpickling_does_io(resolve(module, name))
        if bad:
            print(f"# {library}: REJECTED class {module}.{name}: its constructor or "
                  f"__setstate__ mentions {bad}", file=sys.stderr)
            pairs.discard((module, name))
    for module, name in REVIEWED_FUNCTIONS:
        if module.split(".")[0] == pkg:
            resolve(module, name)  # fails loudly when the library renamed it
            pairs.add((module, name))
    for module, name in sorted(observed(library)):
        full = f"{module}.{name}"
        if full in NEVER:
            raise SystemExit(f"{library} pickles {full}")
        obj = resolve(module, name)
        if (module, name) in pairs:
            continue  # a class of the namespaces, or a stored function
        if inspect.isclass(obj) and unpickling_does_io(obj):
            print(f"# {library}: REJECTED class {full}: {unpickling_does_io(obj)}",
                  file=sys.stderr)
            continue
        if (module, name) in REVIEWED_FUNCTIONS or inspect.isclass(obj):
            if not module.startswith(pkg) and inspect.isclass(obj) and module.split(".")[0] in (
                    "sklearn",):
                continue  # the sklearn profile lists it
            pairs.add((module, name))
        else:
            print(f"# {library}: REJECTED function {full}", file=sys.stderr)
    return {p for p in pairs if not any(c.startswith("__") and c.endswith("__")
                                        for c in (p[0] + "." + p[1]).split("."))}


def containers(pairs):
    """The listed classes that take SETITEMS / APPENDS as a dict / list does (see `inherits`)."""
    dicts, lists = [], []
    for module, name in sorted(pairs):
        cls = resolve(module, name)
        if not inspect.isclass(cls) or cls in (dict, list):
            continue
        if inherits(cls, dict, ("__setitem__",)):
            dicts.append((module, name))
        elif inherits(cls, list, ("append", "extend")):
            lists.append((module, name))
    return dicts, lists


def write_entries(out, const, doc, pairs):
    out.write(f"{doc}#[rustfmt::skip]\npub const {const}: &[(&str, &str)] = &[\n")
    for module, name in sorted(pairs):
        out.write(f'    ("{module}", "{name}"),\n')
    out.write("];\n")


def write_profile(path, library, pairs):
    mod = importlib.import_module(LIBRARIES[library][1])
    dicts, lists = containers(pairs)
    with open(path, "w") as out:
        out.write(
            f"//! The {library} profile: the classes {library} objects pickle, and the reviewed\n"
            "//! reconstruction functions they need.\n//!\n"
            f"//! GENERATED by scripts/policy/gen-library-profiles.sh from {library} "
            f"{mod.__version__}:\n"
            "//! classes seen in pickles of real objects (see `gen_library_profiles.py`), the\n"
            "//! classes of the namespaces in `CLASS_NAMESPACES`, the library functions its\n"
            "//! classes store (`stored_functions`), and `REVIEWED_FUNCTIONS`.\n"
            "//! Do not edit by hand; rerun the script.\n\n")
        write_entries(out, "ENTRIES", "", pairs)
        write_entries(out, "DICT_LIKE", "\n/// Listed `dict` subclasses that keep `dict.__setitem__`: "
                      "SETITEMS on them is plain data.\n", dicts)
        write_entries(out, "LIST_LIKE", "\n/// Listed `list` subclasses that keep `list.append`/`extend`: "
                      "APPENDS on them is plain data.\n", lists)
    print(f"{library}: {len(pairs)} entries", file=sys.stderr)


def numpy_ufuncs(path):
    """Every ufunc NumPy exports, under the module spellings pickles use for them."""
    import numpy as np
    names = sorted(n for n, v in vars(np).items() if isinstance(v, np.ufunc))
    modules = ("numpy", "numpy._core._multiarray_umath", "numpy.core._multiarray_umath",
               "numpy._core.umath", "numpy.core.umath")
    with open(path, "w") as out:
        out.write(
            "//! The numpy-ufuncs profile: NumPy's ufuncs (`numpy.log1p`, ...), which\n"
            "//! scikit-learn's `FunctionTransformer` and others store as parameters. A ufunc only\n"
            "//! computes elementwise on arrays. Listed under every module spelling NumPy 1.x and\n"
            "//! 2.x pickles use (`numpy`, `numpy[._]core._multiarray_umath`, `numpy[._]core.umath`).\n"
            f"//! GENERATED by scripts/policy/gen-library-profiles.sh from numpy {np.__version__};\n"
            "//! do not edit by hand.\n\n#[rustfmt::skip]\npub const ENTRIES: &[(&str, &str)] = &[\n")
        for module in sorted(modules):
            for name in names:
                out.write(f'    ("{module}", "{name}"),\n')
        out.write("];\n")


def profiles(out_dir):
    for library in LIBRARIES:
        write_profile(os.path.join(out_dir, f"{library}.rs"), library, profile_pairs(library))
    numpy_ufuncs(os.path.join(out_dir, "numpy_ufuncs.rs"))


# ---- fixtures ---------------------------------------------------------------------------

def fixtures(out_dir):
    import joblib
    os.makedirs(out_dir, exist_ok=True)
    manifest = {"versions": {"python": sys.version.split()[0]}, "files": {}}
    groups = dict(LIBRARIES)
    groups["sklearn"] = (sklearn_helper_samples, "sklearn")
    for library, (samples, pkg) in groups.items():
        manifest["versions"][pkg] = importlib.import_module(pkg).__version__
        for label, obj in samples():
            if library == "dill":
                data, name = __import__("dill").dumps(obj, protocol=4), f"{label}.pkl"
            elif library in ("sklearn", "xgboost", "lightgbm"):
                buf = io.BytesIO()
                joblib.dump(obj, buf)
                data, name = buf.getvalue(), f"{label}.joblib"
            else:
                data, name = pickle.dumps(obj, protocol=4), f"{label}.pkl"
            globals_ = sorted({".".join(normalise(m, n)) for m, n in recorded(data)}) \
                if not name.endswith(".joblib") else sorted(
                    {".".join(normalise(m, n)) for m, n in recorded(pickle.dumps(obj, protocol=4))
                     if "numpy" not in m})
            if len(data) > 64 * 1024:
                raise SystemExit(f"{name} is {len(data)} bytes; keep fixtures small")
            with open(os.path.join(out_dir, name), "wb") as f:
                f.write(data)
            manifest["files"][name] = {"library": library, "size": len(data),
                                       "key_globals": globals_}
    import torch
    buf = io.BytesIO()
    torch.save(lightning_checkpoint(), buf)
    name = "omegaconf_lightning.ckpt"
    with open(os.path.join(out_dir, name), "wb") as f:
        f.write(buf.getvalue())
    manifest["versions"]["torch"] = torch.__version__
    manifest["files"][name] = {"library": "omegaconf", "size": len(buf.getvalue()),
                               "key_globals": ["omegaconf.dictconfig.DictConfig",
                                               "torch._utils._rebuild_tensor_v2"]}
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    {"profiles": profiles, "fixtures": fixtures}[sys.argv[1]](sys.argv[2])
