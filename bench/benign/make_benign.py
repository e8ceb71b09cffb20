#!/usr/bin/env python3
"""Make the broad benign set of issue 21 under bench/benign/out/ (seeded, small, benign).

Every artifact is written by the real library through the API its users call to save it
(`torch.save`, `joblib.dump`, `DataFrame.to_pickle`, `save_pretrained`, `nlp.to_disk`, ...),
with the default options and the common variants (pickle protocols, joblib compressors,
safe_serialization on/off, native vs pickled boosters). One folder per library:
out/<library>/<artifact>. A library that cannot be imported is skipped and named in
out/manifest.json; so is an artifact whose maker raised (with the error).

out/manifest.json maps every file to its library, what made it and, for the documented
by-design cases, why a scanner is allowed to call it not safe: a pickle that holds code by
construction (a whole pickled nn.Module, a class defined in `__main__`, a Keras custom or
Lambda layer, a cloudpickled / dilled function). Those are flagged HERE, by what was saved,
before any scan: the runner never decides after the fact what counts.

Nothing is downloaded: every model is built from a config with random weights, every
tokenizer is trained or built on a few sentences written below.

Run in the virtualenv of bench/benign/setup.sh: bench/benign/.venv/bin/python make_benign.py
"""

import argparse
import importlib.metadata
import json
import os
import pickle
import random
import shutil
import sys
import traceback
import warnings
from pathlib import Path

SEED = 20261207
HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "out"

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_DISABLED", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")
warnings.filterwarnings("ignore")

TEXT = [
    "the quick brown fox jumps over the lazy dog",
    "a model file is data until a loader runs it",
    "scanners read bytes and never execute them",
    "pickle imports globals and calls them",
    "safetensors stores a json header and raw bytes",
    "numpy arrays can hold python objects",
    "the tokenizer splits words into pieces",
    "gradient descent lowers the loss step by step",
] * 4


class Recorder:
    """Collects what each maker wrote: manifest entries, skipped libraries, failed artifacts."""

    def __init__(self, out):
        self.out = out
        self.files = {}
        self.skipped = {}
        self.failed = []
        self.versions = {}

    def lib_dir(self, lib):
        d = self.out / lib
        d.mkdir(parents=True, exist_ok=True)
        return d

    def record_tree(self, lib, before, what, by_design=None):
        """Record every file under out/lib that appeared since `before` (a set of paths)."""
        for p in sorted((self.out / lib).rglob("*")):
            if p.is_file() and p not in before:
                rel = str(p.relative_to(self.out))
                self.files[rel] = {"library": lib, "what": what, "by_design": by_design}

    def snapshot(self, lib):
        return {p for p in (self.out / lib).rglob("*") if p.is_file()}


def artifact(rec, lib, what, fn, by_design=None):
    """Run one maker; record the files it wrote or the error it raised."""
    before = rec.snapshot(lib)
    try:
        fn()
    except Exception as e:  # one failed artifact must not stop the set
        rec.failed.append({"library": lib, "what": what, "error": f"{type(e).__name__}: {e}"[:300]})
        traceback.print_exc(limit=2, file=sys.stderr)
    rec.record_tree(lib, before, what, by_design)


def seed_all():
    random.seed(SEED)
    try:
        import numpy as np

        np.random.seed(SEED)
    except ImportError:
        pass
    try:
        import torch

        torch.manual_seed(SEED)
    except ImportError:
        pass


# ----------------------------------------------------------------- plain Python / stdlib


def plain_data():
    import collections
    import datetime
    import decimal
    import fractions
    import uuid

    return {
        "ints": list(range(50)),
        "floats": [i / 7 for i in range(20)],
        "str": "héllo wörld",
        "bytes": b"\x00\x01binary",
        "bytearray": bytearray(b"abc"),
        "tuple": (1, "two", 3.0, None, True),
        "set": {1, 2, 3},
        "frozenset": frozenset({"a", "b"}),
        "nested": {"a": [{"b": (1, 2)}, {"c": {"d": [None]}}]},
        "complex": complex(1, 2),
        "big": 2**100,
        "od": collections.OrderedDict(x=1, y=2),
        "dd": collections.defaultdict(list, {"k": [1]}),
        "counter": collections.Counter("hello"),
        "deque": collections.deque([1, 2, 3]),
        "date": datetime.date(2026, 12, 7),
        "datetime": datetime.datetime(2026, 12, 7, 21, 0, tzinfo=datetime.timezone.utc),
        "timedelta": datetime.timedelta(days=1, seconds=3),
        "decimal": decimal.Decimal("3.14"),
        "fraction": fractions.Fraction(1, 3),
        "uuid": uuid.UUID(int=SEED),
        "range": range(3, 9, 2),
        "slice": slice(1, 5),
    }


def make_pickle(rec):
    lib = "pickle"
    d = rec.lib_dir(lib)
    data = plain_data()
    for proto in range(0, pickle.HIGHEST_PROTOCOL + 1):
        artifact(rec, lib, f"dict of stdlib types, protocol {proto}",
                 lambda p=proto: (d / f"data_p{p}.pkl").write_bytes(pickle.dumps(data, protocol=p)))
    for proto in (2, 4, 5):
        artifact(rec, lib, f"list of floats, protocol {proto}",
                 lambda p=proto: (d / f"floats_p{p}.pickle").write_bytes(
                     pickle.dumps([random.random() for _ in range(500)], protocol=p)))
    artifact(rec, lib, "two pickles in one file (pickle.dump twice)", lambda: _two_pickles(d / "two.pkl"))
    artifact(rec, lib, "vocab dict, protocol 3",
             lambda: (d / "vocab.pkl").write_bytes(pickle.dumps({w: i for i, w in enumerate(set(" ".join(TEXT).split()))}, protocol=3)))
    rec.versions["python"] = sys.version.split()[0]


def _two_pickles(path):
    with open(path, "wb") as f:
        pickle.dump({"header": 1}, f)
        pickle.dump(list(range(10)), f)


# ----------------------------------------------------------------- numpy / scipy


def make_numpy(rec):
    import numpy as np

    lib = "numpy"
    d = rec.lib_dir(lib)
    rng = np.random.default_rng(SEED)
    arrays = {
        "f32": rng.standard_normal((64, 32)).astype(np.float32),
        "f16": rng.standard_normal(100).astype(np.float16),
        "f64_fortran": np.asfortranarray(rng.standard_normal((8, 9))),
        "i64": np.arange(1000, dtype=np.int64),
        "u8": rng.integers(0, 255, (16, 16, 3), dtype=np.uint8),
        "bool": rng.random(50) > 0.5,
        "c128": rng.standard_normal(10) + 1j * rng.standard_normal(10),
        "dt64": np.arange("2026-01-01", "2026-02-01", dtype="datetime64[D]"),
        "td64": np.arange(10).astype("timedelta64[s]"),
        "unicode": np.array(["alpha", "beta", "gamma"]),
        "bytes": np.array([b"ab", b"cde"]),
        "structured": np.array([(1, 2.0, b"x"), (3, 4.0, b"y")], dtype=[("a", "<i4"), ("b", "<f8"), ("c", "S1")]),
        "scalar": np.array(3.5),
        "empty": np.zeros((0, 4), dtype=np.float32),
        "bigendian": np.arange(10, dtype=">i4"),
    }
    for name, a in arrays.items():
        artifact(rec, lib, f"np.save {name}", lambda n=name, a=a: np.save(d / f"{n}.npy", a))
    obj = np.array([{"a": 1}, [1, 2], "s", None, 3.5], dtype=object)
    artifact(rec, lib, "np.save object array (allow_pickle)", lambda: np.save(d / "object.npy", obj, allow_pickle=True))
    ragged = np.empty(3, dtype=object)
    ragged[:] = [np.arange(3), np.arange(5), np.arange(2)]
    artifact(rec, lib, "np.save ragged object array of arrays", lambda: np.save(d / "ragged.npy", ragged, allow_pickle=True))
    artifact(rec, lib, "np.savez", lambda: np.savez(d / "bundle.npz", **{k: v for k, v in arrays.items() if k != "scalar"}))
    artifact(rec, lib, "np.savez_compressed", lambda: np.savez_compressed(d / "bundle_compressed.npz", a=arrays["f32"], b=arrays["i64"]))
    artifact(rec, lib, "np.savez with object array", lambda: np.savez(d / "with_object.npz", x=arrays["f32"], meta=obj))
    artifact(rec, lib, "np.savez_compressed positional (arr_0...)", lambda: np.savez_compressed(d / "positional.npz", arrays["f32"], arrays["u8"]))

    def memmap():
        m = np.lib.format.open_memmap(d / "memmap.npy", mode="w+", dtype=np.float32, shape=(128, 64))
        m[:] = 1.5
        m.flush()
        del m
        raw = np.memmap(d / "raw_memmap.dat", dtype=np.int16, mode="w+", shape=(256,))
        raw[:] = np.arange(256)
        raw.flush()
        del raw

    artifact(rec, lib, "open_memmap .npy and raw np.memmap .dat", memmap)
    artifact(rec, lib, "ndarray.tofile raw", lambda: arrays["f32"].tofile(d / "weights.bin"))
    artifact(rec, lib, "np.savetxt", lambda: np.savetxt(d / "matrix.txt", arrays["f64_fortran"]))
    artifact(rec, lib, "pickle.dumps of ndarray protocol 2", lambda: (d / "array_p2.pkl").write_bytes(pickle.dumps(arrays["f32"], protocol=2)))
    artifact(rec, lib, "pickle.dumps of ndarray protocol 5", lambda: (d / "array_p5.pkl").write_bytes(pickle.dumps(arrays, protocol=5)))
    artifact(rec, lib, "pickle of RandomState / Generator state",
             lambda: (d / "rng_state.pkl").write_bytes(pickle.dumps({"rs": np.random.RandomState(1), "gen": np.random.default_rng(1), "state": np.random.get_state()})))
    artifact(rec, lib, "pickle of numpy scalars", lambda: (d / "scalars.pkl").write_bytes(pickle.dumps([np.float32(1.5), np.int64(3), np.bool_(True), np.dtype("f4")])))
    rec.versions["numpy"] = np.__version__


def make_scipy(rec):
    import numpy as np
    import scipy
    import scipy.io
    import scipy.sparse as sp

    lib = "scipy"
    d = rec.lib_dir(lib)
    rng = np.random.default_rng(SEED)
    m = sp.random(200, 100, density=0.05, format="csr", random_state=SEED)
    for fmt in ("csr", "csc", "coo", "bsr", "dia"):
        artifact(rec, lib, f"save_npz {fmt}", lambda f=fmt: sp.save_npz(d / f"sparse_{f}.npz", m.asformat(f)))
    artifact(rec, lib, "save_npz uncompressed", lambda: sp.save_npz(d / "sparse_plain.npz", m, compressed=False))
    artifact(rec, lib, "save_npz csr_array", lambda: sp.save_npz(d / "sparse_array.npz", sp.csr_array(m)))
    artifact(rec, lib, "savemat v5", lambda: scipy.io.savemat(d / "data.mat", {"x": rng.standard_normal((4, 4)), "label": "abc"}))
    artifact(rec, lib, "savemat compressed", lambda: scipy.io.savemat(d / "data_c.mat", {"x": np.arange(100.0)}, do_compression=True))
    artifact(rec, lib, "pickle of sparse matrix", lambda: (d / "sparse.pkl").write_bytes(pickle.dumps(m, protocol=4)))
    artifact(rec, lib, "mmwrite", lambda: scipy.io.mmwrite(str(d / "matrix.mtx"), m))
    rec.versions["scipy"] = scipy.__version__


# ----------------------------------------------------------------- torch family


def tiny_net():
    import torch.nn as nn

    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 30 * 30, 10))


def make_torch(rec):
    import torch
    import torch.nn as nn

    lib = "torch"
    d = rec.lib_dir(lib)
    net = tiny_net()
    x = torch.randn(2, 3, 32, 32)
    opt_adam = torch.optim.Adam(net.parameters(), lr=1e-3)
    opt_sgd = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    opt_adamw = torch.optim.AdamW(net.parameters(), lr=1e-3)
    for opt in (opt_adam, opt_sgd, opt_adamw):
        net(x).sum().backward()
        opt.step()
    sched = torch.optim.lr_scheduler.StepLR(opt_adam, step_size=3)
    sched.step()
    cos = torch.optim.lr_scheduler.CosineAnnealingLR(opt_sgd, T_max=10)
    onecycle = torch.optim.lr_scheduler.OneCycleLR(opt_adamw, max_lr=0.1, total_steps=10)
    sd = net.state_dict()
    artifact(rec, lib, "state_dict (default zip)", lambda: torch.save(sd, d / "model.pt"))
    artifact(rec, lib, "state_dict .pth", lambda: torch.save(sd, d / "model.pth"))
    artifact(rec, lib, "state_dict .bin", lambda: torch.save(sd, d / "pytorch_model.bin"))
    artifact(rec, lib, "state_dict legacy (non-zip)", lambda: torch.save(sd, d / "model_legacy.pt", _use_new_zipfile_serialization=False))
    for proto in (2, 4, 5):
        artifact(rec, lib, f"state_dict pickle_protocol={proto}", lambda p=proto: torch.save(sd, d / f"model_proto{p}.pt", pickle_protocol=p))
    artifact(rec, lib, "Adam optimizer state_dict", lambda: torch.save(opt_adam.state_dict(), d / "optimizer_adam.pt"))
    artifact(rec, lib, "SGD optimizer state_dict", lambda: torch.save(opt_sgd.state_dict(), d / "optimizer_sgd.pt"))
    artifact(rec, lib, "StepLR / Cosine / OneCycle scheduler state_dicts",
             lambda: torch.save({"step": sched.state_dict(), "cos": cos.state_dict(), "onecycle": onecycle.state_dict()}, d / "schedulers.pt"))
    ckpt = {
        "epoch": 7,
        "global_step": 1234,
        "model_state_dict": sd,
        "optimizer_state_dict": opt_adamw.state_dict(),
        "scheduler": sched.state_dict(),
        "loss": 0.123,
        "config": {"lr": 1e-3, "layers": [8, 10], "name": "tiny", "betas": (0.9, 0.999), "dropout": None},
        "best_metric": torch.tensor(0.91),
        "rng_state": torch.get_rng_state(),
        "numpy_rng": __import__("numpy").random.get_state(),
        "python_rng": random.getstate(),
    }
    artifact(rec, lib, "training checkpoint dict with config, rng states", lambda: torch.save(ckpt, d / "checkpoint.tar"))
    scaler = torch.amp.GradScaler("cpu")
    artifact(rec, lib, "GradScaler state", lambda: torch.save(scaler.state_dict(), d / "scaler.pt"))
    dtypes = {n: torch.randn(4, 4).to(t) for n, t in [("f16", torch.float16), ("bf16", torch.bfloat16), ("f64", torch.float64), ("i8", torch.int8), ("u8", torch.uint8), ("i32", torch.int32), ("bool", torch.bool), ("c64", torch.complex64)]}
    dtypes["f8e4m3"] = torch.randn(4, 4).to(torch.float8_e4m3fn)
    artifact(rec, lib, "tensors of many dtypes", lambda: torch.save(dtypes, d / "dtypes.pt"))
    artifact(rec, lib, "sparse COO / CSR tensors", lambda: torch.save({"coo": torch.eye(5).to_sparse(), "csr": torch.eye(5).to_sparse_csr()}, d / "sparse.pt"))
    artifact(rec, lib, "single tensor", lambda: torch.save(torch.arange(100), d / "tensor.pt"))
    artifact(rec, lib, "list of tensors sharing storage (views)", lambda: _views(torch, d / "views.pt"))
    artifact(rec, lib, "tensor with requires_grad and a Parameter", lambda: torch.save({"p": nn.Parameter(torch.ones(3)), "g": torch.ones(2, requires_grad=True)}, d / "params.pt"))
    artifact(rec, lib, "quantized tensor", lambda: torch.save(torch.quantize_per_tensor(torch.randn(8), 0.1, 0, torch.qint8), d / "quantized.pt"))
    artifact(rec, lib, "torch.Size / dtype / device objects", lambda: torch.save({"size": torch.Size([2, 3]), "dtype": torch.float16, "device": torch.device("cpu")}, d / "meta.pt"))
    artifact(rec, lib, "torch.jit.script save", lambda: torch.jit.save(torch.jit.script(net.eval()), d / "scripted.pt"))
    artifact(rec, lib, "torch.jit.trace save", lambda: torch.jit.save(torch.jit.trace(net.eval(), x), d / "traced.pt"))

    class _Ctl(nn.Module):
        def forward(self, x):
            parts = [x * 2, x + 1]
            return torch.cat(parts).sum(dim=0)

    artifact(rec, lib, "torch.jit.script with lists (build_intlist)", lambda: torch.jit.save(torch.jit.script(_Ctl()), d / "scripted_lists.pt"))
    artifact(rec, lib, "torch.export .pt2", lambda: torch.export.save(torch.export.export(net.eval(), (x,)), d / "exported.pt2"))
    artifact(rec, lib, "whole nn.Module (torch.save(model))", lambda: torch.save(net, d / "whole_model.pt"), by_design="whole pickled nn.Module")
    rec.versions["torch"] = torch.__version__


def _views(torch, path):
    base = torch.randn(10, 10)
    torch.save({"base": base, "row": base[2], "t": base.t(), "slice": base[:, 3:5]}, path)


def make_safetensors(rec):
    import numpy as np
    import safetensors
    import torch
    from safetensors.numpy import save_file as np_save
    from safetensors.torch import save_file, save_model

    lib = "safetensors"
    d = rec.lib_dir(lib)
    sd = {k: v.contiguous() for k, v in tiny_net().state_dict().items()}
    artifact(rec, lib, "torch save_file", lambda: save_file(sd, d / "model.safetensors"))
    artifact(rec, lib, "torch save_file with metadata", lambda: save_file(sd, d / "model_meta.safetensors", metadata={"format": "pt", "note": "benign"}))
    artifact(rec, lib, "save_model (shared tensors)", lambda: save_model(tiny_net(), d / "save_model.safetensors"))
    artifact(rec, lib, "bf16/f16/i64/bool tensors", lambda: save_file({"a": torch.ones(3, dtype=torch.bfloat16), "b": torch.ones(2, dtype=torch.float16), "c": torch.arange(4), "d": torch.ones(2, dtype=torch.bool)}, d / "dtypes.safetensors"))
    artifact(rec, lib, "numpy save_file", lambda: np_save({"x": np.arange(10, dtype=np.float32), "y": np.ones((2, 2), dtype=np.int32)}, str(d / "numpy.safetensors")))
    artifact(rec, lib, "empty dict", lambda: save_file({}, d / "empty.safetensors"))
    artifact(rec, lib, "sharded with index json", lambda: _sharded(save_file, sd, d))
    rec.versions["safetensors"] = safetensors.__version__


def _sharded(save_file, sd, d):
    keys = sorted(sd)
    half = len(keys) // 2
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    save_file({k: sd[k] for k in keys[:half]}, d / names[0], metadata={"format": "pt"})
    save_file({k: sd[k] for k in keys[half:]}, d / names[1], metadata={"format": "pt"})
    index = {"metadata": {"total_size": 0}, "weight_map": {k: names[0] if i < half else names[1] for i, k in enumerate(keys)}}
    (d / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))


# ----------------------------------------------------------------- scikit-learn / joblib


def sklearn_models():
    import numpy as np
    from sklearn import (calibration, cluster, compose, decomposition, ensemble, feature_extraction, feature_selection, gaussian_process,
                         impute, isotonic, linear_model, metrics, model_selection, naive_bayes, neighbors, neural_network, pipeline,
                         preprocessing, svm, tree)
    from sklearn.datasets import make_classification, make_regression, load_iris
    from sklearn.gaussian_process import kernels

    X, y = make_classification(n_samples=120, n_features=6, random_state=SEED % 1000)
    Xr, yr = make_regression(n_samples=120, n_features=5, random_state=1)
    rs = 0
    clf = {
        "logreg": linear_model.LogisticRegression(max_iter=200),
        "sgd": linear_model.SGDClassifier(random_state=rs),
        "ridgecv": linear_model.RidgeClassifierCV(),
        "svc": svm.SVC(probability=True, random_state=rs),
        "linearsvc": svm.LinearSVC(random_state=rs),
        "knn": neighbors.KNeighborsClassifier(),
        "gnb": naive_bayes.GaussianNB(),
        "tree": tree.DecisionTreeClassifier(random_state=rs),
        "rf": ensemble.RandomForestClassifier(n_estimators=10, random_state=rs),
        "extratrees": ensemble.ExtraTreesClassifier(n_estimators=10, random_state=rs),
        "gb": ensemble.GradientBoostingClassifier(n_estimators=10, random_state=rs),
        "hgb": ensemble.HistGradientBoostingClassifier(max_iter=10, random_state=rs),
        "adaboost": ensemble.AdaBoostClassifier(n_estimators=10, random_state=rs),
        "bagging": ensemble.BaggingClassifier(n_estimators=5, random_state=rs),
        "voting": ensemble.VotingClassifier([("lr", linear_model.LogisticRegression()), ("nb", naive_bayes.GaussianNB())], voting="soft"),
        "stacking": ensemble.StackingClassifier([("t", tree.DecisionTreeClassifier(random_state=rs)), ("nb", naive_bayes.GaussianNB())]),
        "mlp": neural_network.MLPClassifier(hidden_layer_sizes=(8,), max_iter=50, random_state=rs),
        "calibrated": calibration.CalibratedClassifierCV(linear_model.LogisticRegression(), cv=3),
        "gpc": gaussian_process.GaussianProcessClassifier(kernel=kernels.RBF() + kernels.WhiteKernel(), random_state=rs),
        "isoforest": ensemble.IsolationForest(n_estimators=10, random_state=rs),
        "pipeline_scaler_lr": pipeline.make_pipeline(preprocessing.StandardScaler(), linear_model.LogisticRegression()),
        "pipeline_poly_select": pipeline.Pipeline([("poly", preprocessing.PolynomialFeatures(2)), ("sel", feature_selection.SelectKBest(k=5)), ("svc", svm.SVC())]),
        "pipeline_functiontransformer_log1p": pipeline.make_pipeline(preprocessing.FunctionTransformer(np.abs), preprocessing.FunctionTransformer(np.log1p, inverse_func=np.expm1), linear_model.LogisticRegression()),
        "pipeline_functiontransformer_abs": pipeline.make_pipeline(preprocessing.FunctionTransformer(np.abs), tree.DecisionTreeClassifier()),
        "gridsearch": model_selection.GridSearchCV(linear_model.LogisticRegression(), {"C": [0.1, 1.0]}, cv=model_selection.StratifiedKFold(3)),
        "randomsearch": model_selection.RandomizedSearchCV(tree.DecisionTreeClassifier(), {"max_depth": [2, 3, 4]}, n_iter=2, cv=model_selection.KFold(3), random_state=rs, scoring="f1"),
    }
    reg = {
        "linreg": linear_model.LinearRegression(),
        "lasso": linear_model.Lasso(),
        "elasticnet": linear_model.ElasticNetCV(cv=3),
        "svr": svm.SVR(),
        "gpr": gaussian_process.GaussianProcessRegressor(kernel=kernels.ConstantKernel() * kernels.Matern(nu=1.5) + kernels.DotProduct(), random_state=rs),
        "rf_reg": ensemble.RandomForestRegressor(n_estimators=5, random_state=rs),
        "hgb_reg": ensemble.HistGradientBoostingRegressor(max_iter=10),
        "transformed_target": compose.TransformedTargetRegressor(regressor=linear_model.Ridge(), func=np.log1p, inverse_func=np.expm1),
        "isotonic": None,
    }
    fitted = {}
    for name, est in clf.items():
        fitted[name] = est.fit(X, y)
    for name, est in reg.items():
        if name == "isotonic":
            fitted[name] = isotonic.IsotonicRegression().fit(Xr[:, 0], yr)
        elif name == "transformed_target":
            fitted[name] = est.fit(Xr, np.abs(yr))
        else:
            fitted[name] = est.fit(Xr, yr)
    fitted["kmeans"] = cluster.KMeans(n_clusters=3, n_init=2, random_state=rs).fit(X)
    fitted["dbscan"] = cluster.DBSCAN().fit(X)
    fitted["pca"] = decomposition.PCA(3).fit(X)
    fitted["truncsvd"] = decomposition.TruncatedSVD(3).fit(X)
    fitted["nmf"] = decomposition.NMF(2, max_iter=50).fit(np.abs(X))
    fitted["scalers"] = [preprocessing.MinMaxScaler().fit(X), preprocessing.RobustScaler().fit(X), preprocessing.QuantileTransformer(n_quantiles=50).fit(X), preprocessing.PowerTransformer().fit(X)]
    fitted["imputer"] = impute.SimpleImputer(strategy="median").fit(X)
    fitted["knn_imputer"] = impute.KNNImputer().fit(X)
    texts = TEXT
    fitted["tfidf"] = feature_extraction.text.TfidfVectorizer().fit(texts)
    fitted["countvec_ngram"] = feature_extraction.text.CountVectorizer(ngram_range=(1, 2)).fit(texts)
    fitted["hashing"] = feature_extraction.text.HashingVectorizer(n_features=64)
    fitted["dictvec"] = feature_extraction.DictVectorizer().fit([{"a": 1, "b": "x"}, {"a": 2, "b": "y"}])
    cats = np.array([["red", "S"], ["blue", "M"], ["green", "L"]], dtype=object)
    fitted["onehot"] = preprocessing.OneHotEncoder(handle_unknown="ignore").fit(cats)
    fitted["ordinal"] = preprocessing.OrdinalEncoder().fit(cats)
    fitted["labelencoder"] = preprocessing.LabelEncoder().fit(["cat", "dog", "bird"])
    fitted["multilabel"] = preprocessing.MultiLabelBinarizer().fit([{"a", "b"}, {"c"}])
    fitted["column_transformer"] = compose.ColumnTransformer([("num", preprocessing.StandardScaler(), [0, 1]), ("cat", preprocessing.OneHotEncoder(), [2])], remainder="drop").fit(
        np.array([[1.0, 2.0, "a"], [3.0, 4.0, "b"]], dtype=object))
    fitted["tfidf_pipeline"] = pipeline.make_pipeline(feature_extraction.text.TfidfVectorizer(), naive_bayes.MultinomialNB()).fit(texts, [i % 2 for i in range(len(texts))])
    fitted["cv_results"] = fitted["gridsearch"].cv_results_
    fitted["scorers"] = {"f1": metrics.get_scorer("f1"), "custom": metrics.make_scorer(metrics.fbeta_score, beta=2), "rmse": metrics.get_scorer("neg_root_mean_squared_error")}
    fitted["splitters"] = [model_selection.KFold(5, shuffle=True, random_state=1), model_selection.StratifiedKFold(3), model_selection.TimeSeriesSplit(3), model_selection.GroupKFold(2), model_selection.ShuffleSplit(2, random_state=0)]
    fitted["bunch_iris"] = load_iris()
    fitted["confusion_report"] = {"cm": metrics.confusion_matrix(y, fitted["logreg"].predict(X)), "report": metrics.classification_report(y, fitted["logreg"].predict(X), output_dict=True)}
    fitted["kernels"] = [kernels.RBF(1.0), kernels.Matern(), kernels.RationalQuadratic(), kernels.ExpSineSquared(), kernels.ConstantKernel() * kernels.RBF() + kernels.WhiteKernel()]
    return fitted


def make_sklearn(rec):
    import joblib
    import sklearn

    lib = "sklearn"
    d = rec.lib_dir(lib)
    models = sklearn_models()
    for i, (name, m) in enumerate(models.items()):
        # What users do: most joblib.dump, many pickle.dump; a few with compression.
        if i % 3 == 0:
            artifact(rec, lib, f"pickle.dump {name}", lambda n=name, m=m: (d / f"{n}.pkl").write_bytes(pickle.dumps(m)))
        else:
            artifact(rec, lib, f"joblib.dump {name}", lambda n=name, m=m: joblib.dump(m, d / f"{n}.joblib"))
    artifact(rec, lib, "joblib.dump pipeline compress=3", lambda: joblib.dump(models["pipeline_scaler_lr"], d / "pipeline_c3.joblib", compress=3))
    artifact(rec, lib, "pickle protocol 2 random forest", lambda: (d / "rf_p2.pkl").write_bytes(pickle.dumps(models["rf"], protocol=2)))
    rec.versions["scikit-learn"] = sklearn.__version__


def make_joblib(rec):
    import joblib
    import numpy as np

    lib = "joblib"
    d = rec.lib_dir(lib)
    rng = np.random.default_rng(SEED)
    obj = {"weights": rng.standard_normal((200, 50)), "labels": np.arange(200), "names": ["a", "b"], "meta": {"v": 1}}
    artifact(rec, lib, "joblib.dump default", lambda: joblib.dump(obj, d / "data.joblib"))
    artifact(rec, lib, "joblib.dump .pkl name", lambda: joblib.dump(obj, d / "data.pkl"))
    for level in (1, 3, 9):
        artifact(rec, lib, f"compress={level} (zlib)", lambda lv=level: joblib.dump(obj, d / f"data_c{lv}.joblib", compress=lv))
    for method in ("zlib", "gzip", "bz2", "lzma", "xz", "lz4"):
        artifact(rec, lib, f"compress=('{method}', 3)", lambda m=method: joblib.dump(obj, d / f"data_{m}.joblib", compress=(m, 3)))
    artifact(rec, lib, "extension-inferred .gz", lambda: joblib.dump(obj, d / "data.joblib.gz"))
    artifact(rec, lib, "extension-inferred .xz", lambda: joblib.dump(obj, d / "data.joblib.xz"))
    for proto in (2, 3, 4, 5):
        artifact(rec, lib, f"protocol={proto}", lambda p=proto: joblib.dump(obj, d / f"data_p{p}.joblib", protocol=p))
    artifact(rec, lib, "object array inside", lambda: joblib.dump({"obj": np.array([{"k": 1}, "s"], dtype=object)}, d / "objects.joblib"))
    artifact(rec, lib, "plain list of strings", lambda: joblib.dump(["alpha", "beta"] * 10, d / "list.joblib"))
    rec.versions["joblib"] = joblib.__version__


# ----------------------------------------------------------------- pandas / arrow


def frames():
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(SEED)
    n = 50
    df = pd.DataFrame({
        "f64": rng.standard_normal(n),
        "f32": rng.standard_normal(n).astype("float32"),
        "i64": np.arange(n),
        "i8": np.arange(n, dtype="int8"),
        "u16": np.arange(n, dtype="uint16"),
        "bool": rng.random(n) > 0.5,
        "obj_str": [f"s{i}" for i in range(n)],
        "cat": pd.Categorical(rng.choice(["a", "b", "c"], n)),
        "ordered_cat": pd.Categorical(rng.choice(["lo", "hi"], n), categories=["lo", "hi"], ordered=True),
        "dt": pd.date_range("2026-01-01", periods=n, freq="h"),
        "dt_tz": pd.date_range("2026-01-01", periods=n, freq="D", tz="Europe/Paris"),
        "td": pd.to_timedelta(np.arange(n), unit="s"),
        "Int64": pd.array(list(range(n - 1)) + [None], dtype="Int64"),
        "boolean": pd.array([True, False, None] * 16 + [True, False], dtype="boolean"),
        "Float64": pd.array(rng.standard_normal(n), dtype="Float64"),
        "string": pd.array([f"t{i}" for i in range(n)], dtype="string"),
        "period": pd.period_range("2026-01", periods=n, freq="M"),
        "interval": pd.interval_range(0, n),
        "complex": rng.standard_normal(n) + 1j,
    })
    out = {"all_dtypes": df}
    out["multiindex"] = pd.DataFrame({"v": range(6)}, index=pd.MultiIndex.from_product([["a", "b"], [1, 2, 3]], names=["k", "n"]))
    out["datetimeindex_tz"] = pd.DataFrame({"v": range(5)}, index=pd.date_range("2026-01-01", periods=5, tz="UTC"))
    out["periodindex"] = pd.Series(range(4), index=pd.period_range("2026Q1", periods=4, freq="Q"))
    out["intervalindex"] = pd.Series(range(3), index=pd.IntervalIndex.from_breaks([0, 1, 2, 3]))
    out["categoricalindex"] = pd.Series(range(3), index=pd.CategoricalIndex(["x", "y", "x"]))
    out["timedeltaindex"] = pd.Series(range(3), index=pd.to_timedelta([1, 2, 3], unit="D"))
    out["rangeindex_series"] = pd.Series(rng.standard_normal(20), name="values")
    out["sparse"] = pd.DataFrame({"s": pd.arrays.SparseArray([0, 0, 1, 0, 2])})
    out["arrow_string"] = pd.DataFrame({"s": pd.array(["a", "b", None], dtype="string[pyarrow]")})
    out["pivot"] = df[["cat", "i64", "f64"]].pivot_table(index="cat", values="f64", aggfunc="mean", observed=False)
    out["groupby_agg"] = df.groupby("cat", observed=True).agg({"f64": ["mean", "std"], "i64": "sum"})
    out["attrs"] = df[["f64"]].copy()
    out["attrs"].attrs = {"source": "bench", "version": 2}
    return out


def make_pandas(rec):
    import pandas as pd

    lib = "pandas"
    d = rec.lib_dir(lib)
    fs = frames()
    for name, f in fs.items():
        artifact(rec, lib, f"to_pickle {name}", lambda n=name, f=f: f.to_pickle(d / f"{n}.pkl"))
    df = fs["all_dtypes"]
    for comp in ("gzip", "bz2", "xz", "zip", "zstd"):
        artifact(rec, lib, f"to_pickle compression={comp}", lambda c=comp: df.to_pickle(d / f"all_dtypes_{c}.pkl.{ {'gzip': 'gz', 'bz2': 'bz2', 'xz': 'xz', 'zip': 'zip', 'zstd': 'zst'}[c] }", compression=c))
    for proto in (2, 4):
        artifact(rec, lib, f"to_pickle protocol={proto}", lambda p=proto: df.to_pickle(d / f"all_dtypes_p{p}.pkl", protocol=p))
    artifact(rec, lib, "pickle.dumps of dict of frames", lambda: (d / "frames_dict.pkl").write_bytes(pickle.dumps({"a": fs["multiindex"], "b": fs["rangeindex_series"]})))
    simple = df[["f64", "i64", "bool", "obj_str", "cat", "dt", "dt_tz", "string"]]
    artifact(rec, lib, "to_parquet (pyarrow)", lambda: simple.to_parquet(d / "frame.parquet"))
    artifact(rec, lib, "to_feather", lambda: simple.reset_index(drop=True).to_feather(d / "frame.feather"))
    artifact(rec, lib, "to_csv", lambda: simple.to_csv(d / "frame.csv"))
    artifact(rec, lib, "to_json records", lambda: simple.to_json(d / "frame.json", orient="records"))
    rec.versions["pandas"] = pd.__version__


def make_pyarrow(rec):
    import numpy as np
    import pyarrow as pa
    import pyarrow.feather as feather
    import pyarrow.parquet as pq

    lib = "pyarrow"
    d = rec.lib_dir(lib)
    t = pa.table({"x": np.arange(100), "s": [f"r{i}" for i in range(100)], "l": [[i, i + 1] for i in range(100)]})
    artifact(rec, lib, "parquet snappy", lambda: pq.write_table(t, d / "t.parquet"))
    artifact(rec, lib, "parquet zstd", lambda: pq.write_table(t, d / "t_zstd.parquet", compression="zstd"))
    artifact(rec, lib, "feather v2 lz4", lambda: feather.write_feather(t, d / "t.feather"))
    artifact(rec, lib, "feather uncompressed", lambda: feather.write_feather(t, d / "t_plain.arrow", compression="uncompressed"))

    def ipc_stream():
        with pa.OSFile(str(d / "t.arrows"), "wb") as sink, pa.ipc.new_stream(sink, t.schema) as w:
            w.write_table(t)

    artifact(rec, lib, "IPC stream", ipc_stream)
    artifact(rec, lib, "pickle of Table", lambda: (d / "table.pkl").write_bytes(pickle.dumps(t, protocol=5)))
    rec.versions["pyarrow"] = pa.__version__


# ----------------------------------------------------------------- gradient boosting


def _xy():
    from sklearn.datasets import make_classification

    return make_classification(n_samples=200, n_features=8, random_state=3)


def make_xgboost(rec):
    import joblib
    import xgboost as xgb

    lib = "xgboost"
    d = rec.lib_dir(lib)
    X, y = _xy()
    clf = xgb.XGBClassifier(n_estimators=5, max_depth=3, random_state=0).fit(X, y)
    reg = xgb.XGBRegressor(n_estimators=5, random_state=0).fit(X, y.astype(float))
    booster = xgb.train({"max_depth": 2, "objective": "binary:logistic"}, xgb.DMatrix(X, label=y), num_boost_round=3)
    artifact(rec, lib, "XGBClassifier pickle", lambda: (d / "xgb_clf.pkl").write_bytes(pickle.dumps(clf)))
    artifact(rec, lib, "XGBRegressor joblib", lambda: joblib.dump(reg, d / "xgb_reg.joblib"))
    artifact(rec, lib, "Booster pickle", lambda: (d / "booster.pkl").write_bytes(pickle.dumps(booster)))
    artifact(rec, lib, "save_model json", lambda: clf.save_model(d / "xgb_clf.json"))
    artifact(rec, lib, "save_model ubj", lambda: booster.save_model(d / "booster.ubj"))
    artifact(rec, lib, "Booster.save_raw deprecated binary", lambda: (d / "booster.raw").write_bytes(bytes(booster.save_raw(raw_format="ubj"))))
    artifact(rec, lib, "sklearn pipeline with XGBClassifier joblib", lambda: _pipe_dump(clf, d / "xgb_pipeline.joblib"))
    rec.versions["xgboost"] = xgb.__version__


def _pipe_dump(est, path):
    import joblib
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _xy()
    joblib.dump(make_pipeline(StandardScaler(), est).fit(X, y), path)


def make_lightgbm(rec):
    import joblib
    import lightgbm as lgb

    lib = "lightgbm"
    d = rec.lib_dir(lib)
    X, y = _xy()
    clf = lgb.LGBMClassifier(n_estimators=5, num_leaves=4, verbose=-1, random_state=0).fit(X, y)
    reg = lgb.LGBMRegressor(n_estimators=5, verbose=-1).fit(X, y.astype(float))
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 4}, lgb.Dataset(X, label=y), num_boost_round=3)
    artifact(rec, lib, "LGBMClassifier pickle", lambda: (d / "lgbm_clf.pkl").write_bytes(pickle.dumps(clf)))
    artifact(rec, lib, "LGBMRegressor joblib", lambda: joblib.dump(reg, d / "lgbm_reg.joblib"))
    artifact(rec, lib, "Booster pickle", lambda: (d / "booster.pkl").write_bytes(pickle.dumps(booster)))
    artifact(rec, lib, "Booster.save_model txt", lambda: booster.save_model(str(d / "model.txt")))
    artifact(rec, lib, "booster_.save_model of sklearn API", lambda: clf.booster_.save_model(str(d / "lgbm_clf.txt")))
    artifact(rec, lib, "sklearn pipeline with LGBMClassifier joblib", lambda: _pipe_dump(clf, d / "lgbm_pipeline.joblib"))
    rec.versions["lightgbm"] = lgb.__version__


def make_catboost(rec):
    import catboost
    import joblib

    lib = "catboost"
    d = rec.lib_dir(lib)
    X, y = _xy()
    clf = catboost.CatBoostClassifier(iterations=5, depth=3, verbose=False, random_seed=0, allow_writing_files=False).fit(X, y)
    reg = catboost.CatBoostRegressor(iterations=5, depth=3, verbose=False, allow_writing_files=False).fit(X, y.astype(float))
    artifact(rec, lib, "CatBoostClassifier pickle", lambda: (d / "cb_clf.pkl").write_bytes(pickle.dumps(clf)))
    artifact(rec, lib, "CatBoostRegressor joblib", lambda: joblib.dump(reg, d / "cb_reg.joblib"))
    artifact(rec, lib, "save_model cbm", lambda: clf.save_model(str(d / "model.cbm")))
    artifact(rec, lib, "save_model json", lambda: clf.save_model(str(d / "model.json"), format="json"))
    artifact(rec, lib, "save_model onnx", lambda: clf.save_model(str(d / "model.onnx"), format="onnx"))
    rec.versions["catboost"] = catboost.__version__


# ----------------------------------------------------------------- statistics / NLP classics


def make_statsmodels(rec):
    import numpy as np
    import statsmodels
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    lib = "statsmodels"
    d = rec.lib_dir(lib)
    rng = np.random.default_rng(SEED)
    X = sm.add_constant(rng.standard_normal((100, 3)))
    y = X @ [1.0, 2.0, -1.0, 0.5] + rng.standard_normal(100)
    ols = sm.OLS(y, X).fit()
    artifact(rec, lib, "OLS results .save", lambda: ols.save(str(d / "ols.pickle")))
    artifact(rec, lib, "OLS results .save remove_data", lambda: ols.save(str(d / "ols_small.pickle"), remove_data=True))
    yb = (y > 0).astype(float)
    artifact(rec, lib, "Logit results .save", lambda: sm.Logit(yb, X).fit(disp=0).save(str(d / "logit.pickle")))
    artifact(rec, lib, "GLM Poisson .save", lambda: sm.GLM(np.abs(np.round(y)), X, family=sm.families.Poisson()).fit().save(str(d / "glm.pickle")))
    import pandas as pd

    df = pd.DataFrame({"y": y, "a": X[:, 1], "b": X[:, 2]})
    artifact(rec, lib, "formula OLS .save", lambda: smf.ols("y ~ a + b", df).fit().save(str(d / "formula_ols.pickle")))
    ts = np.cumsum(rng.standard_normal(120))
    artifact(rec, lib, "ARIMA results .save", lambda: sm.tsa.ARIMA(ts, order=(1, 1, 1)).fit().save(str(d / "arima.pickle")))
    artifact(rec, lib, "ExponentialSmoothing results pickle", lambda: (d / "ets.pkl").write_bytes(pickle.dumps(sm.tsa.ExponentialSmoothing(ts + 100, trend="add").fit())))
    rec.versions["statsmodels"] = statsmodels.__version__


def make_gensim(rec):
    import gensim
    from gensim.corpora import Dictionary
    from gensim.models import Doc2Vec, FastText, LdaModel, TfidfModel, Word2Vec
    from gensim.models.doc2vec import TaggedDocument

    lib = "gensim"
    d = rec.lib_dir(lib)
    sents = [s.split() for s in TEXT]
    w2v = Word2Vec(sents, vector_size=16, min_count=1, workers=1, seed=1, epochs=2)
    artifact(rec, lib, "Word2Vec.save", lambda: w2v.save(str(d / "word2vec.model")))
    artifact(rec, lib, "KeyedVectors.save", lambda: w2v.wv.save(str(d / "vectors.kv")))
    artifact(rec, lib, "save_word2vec_format binary", lambda: w2v.wv.save_word2vec_format(str(d / "vectors.bin"), binary=True))
    artifact(rec, lib, "save_word2vec_format text", lambda: w2v.wv.save_word2vec_format(str(d / "vectors.txt")))
    artifact(rec, lib, "FastText.save", lambda: FastText(sents, vector_size=8, min_count=1, workers=1, seed=1, epochs=1, bucket=100).save(str(d / "fasttext.model")))
    artifact(rec, lib, "Doc2Vec.save", lambda: Doc2Vec([TaggedDocument(s, [i]) for i, s in enumerate(sents)], vector_size=8, min_count=1, workers=1, seed=1, epochs=2).save(str(d / "doc2vec.model")))
    dct = Dictionary(sents)
    corpus = [dct.doc2bow(s) for s in sents]
    artifact(rec, lib, "Dictionary.save", lambda: dct.save(str(d / "dictionary.dict")))
    artifact(rec, lib, "LdaModel.save", lambda: LdaModel(corpus, id2word=dct, num_topics=2, random_state=1, passes=1).save(str(d / "lda.model")))
    artifact(rec, lib, "TfidfModel.save", lambda: TfidfModel(corpus).save(str(d / "tfidf.model")))
    big = Word2Vec(sents * 20, vector_size=64, min_count=1, workers=1, seed=1, epochs=1)
    artifact(rec, lib, "Word2Vec.save with separately stored arrays (sep_limit)", lambda: big.save(str(d / "word2vec_sep.model"), sep_limit=100))
    rec.versions["gensim"] = gensim.__version__


def make_omegaconf(rec):
    import omegaconf
    import torch
    from omegaconf import OmegaConf

    lib = "omegaconf"
    d = rec.lib_dir(lib)
    cfg = OmegaConf.create({"model": {"name": "tiny", "layers": [8, 16], "dropout": 0.1}, "trainer": {"max_epochs": 3, "precision": "bf16"}, "seed": 1, "paths": {"data": "${oc.env:HOME,/tmp}/data"}, "lr": "${model.dropout}"})
    lst = OmegaConf.create([1, {"a": 2}])
    artifact(rec, lib, "OmegaConf.save yaml", lambda: OmegaConf.save(cfg, d / "config.yaml"))
    artifact(rec, lib, "OmegaConf.save resolved", lambda: OmegaConf.save(OmegaConf.create({"a": 1, "b": "${a}"}), d / "resolved.yaml", resolve=True))
    artifact(rec, lib, "pickle DictConfig", lambda: (d / "config.pkl").write_bytes(pickle.dumps(cfg)))
    artifact(rec, lib, "pickle ListConfig", lambda: (d / "listconfig.pkl").write_bytes(pickle.dumps(lst)))
    artifact(rec, lib, "torch.save checkpoint with DictConfig hyper_parameters", lambda: torch.save({"state_dict": tiny_net().state_dict(), "hyper_parameters": cfg}, d / "hydra_ckpt.pt"))
    rec.versions["omegaconf"] = omegaconf.__version__


def make_dill_cloudpickle(rec):
    import cloudpickle
    import dill
    import numpy as np

    for lib, mod in (("dill", dill), ("cloudpickle", cloudpickle)):
        d = rec.lib_dir(lib)
        data = plain_data()
        artifact(rec, lib, "dump of plain data", lambda m=mod, d=d: (d / "data.pkl").write_bytes(m.dumps(data)))
        artifact(rec, lib, "dump of numpy arrays", lambda m=mod, d=d: (d / "arrays.pkl").write_bytes(m.dumps({"a": np.arange(10.0), "b": np.ones((3, 3), dtype=np.int32)})))
        artifact(rec, lib, "dump of a lambda", lambda m=mod, d=d: (d / "lambda.pkl").write_bytes(m.dumps(lambda v: v * 2)), by_design="pickled function (code by construction)")

        def fn(v, k=3):
            return [v] * k

        artifact(rec, lib, "dump of a local function", lambda m=mod, d=d: (d / "function.pkl").write_bytes(m.dumps(fn)), by_design="pickled function (code by construction)")
        rec.versions[lib] = mod.__version__
    d = rec.lib_dir("dill")
    artifact(rec, "dill", "dill.dump protocol 2 of dict", lambda: (d / "data_p2.pkl").write_bytes(dill.dumps({"k": [1, 2], "t": (3,)}, protocol=2)))
    artifact(rec, "dill", "dill.dump of a pandas-free numpy record", lambda: (d / "structured.pkl").write_bytes(dill.dumps(np.zeros(3, dtype=[("a", "i4"), ("b", "f8")]))))


def make_main_class(rec):
    """A class defined in __main__ pickled: the documented by-design case (code reference)."""
    lib = "pickle"
    d = rec.lib_dir(lib)
    artifact(rec, lib, "instance of a class defined in __main__", lambda: (d / "main_class.pkl").write_bytes(pickle.dumps(MainConfig(3))), by_design="class defined in __main__")


class MainConfig:
    def __init__(self, n):
        self.n = n


# ----------------------------------------------------------------- Hugging Face family


def tiny_bert():
    from transformers import BertConfig, BertForSequenceClassification

    cfg = BertConfig(vocab_size=120, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, max_position_embeddings=64, num_labels=2)
    return BertForSequenceClassification(cfg)


def tiny_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(TEXT, trainers.WordPieceTrainer(vocab_size=120, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]))
    return tok


def make_tokenizers(rec):
    import tokenizers
    from tokenizers import Tokenizer, models, trainers, pre_tokenizers

    lib = "tokenizers"
    d = rec.lib_dir(lib)
    artifact(rec, lib, "WordPiece Tokenizer.save", lambda: tiny_tokenizer().save(str(d / "wordpiece.json")))

    def bpe():
        tok = Tokenizer(models.BPE(unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel()
        tok.train_from_iterator(TEXT, trainers.BpeTrainer(vocab_size=200, special_tokens=["<unk>", "<s>", "</s>"]))
        tok.save(str(d / "bpe.json"))
        tok.model.save(str(d), "bpe")

    artifact(rec, lib, "BPE Tokenizer.save + model.save (vocab.json, merges.txt)", bpe)
    rec.versions["tokenizers"] = tokenizers.__version__


def make_transformers(rec):
    import torch
    import transformers
    from transformers import (BertTokenizerFast, GenerationConfig, GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast, Trainer,
                              TrainingArguments)

    lib = "transformers"
    d = rec.lib_dir(lib)
    model = tiny_bert()
    artifact(rec, lib, "save_pretrained safetensors (default)", lambda: model.save_pretrained(d / "bert_st"))
    artifact(rec, lib, "save_pretrained safe_serialization=False (pytorch_model.bin)", lambda: model.save_pretrained(d / "bert_bin", safe_serialization=False))
    gpt = GPT2LMHeadModel(GPT2Config(vocab_size=100, n_positions=32, n_embd=16, n_layer=1, n_head=2))
    artifact(rec, lib, "GPT2 save_pretrained sharded", lambda: gpt.save_pretrained(d / "gpt2_sharded", max_shard_size="20KB"))
    artifact(rec, lib, "GenerationConfig.save_pretrained", lambda: GenerationConfig(max_new_tokens=20, do_sample=True, top_p=0.9).save_pretrained(d / "gen"))

    def tok():
        t = tiny_tokenizer()
        fast = PreTrainedTokenizerFast(tokenizer_object=t, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
        fast.chat_template = "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}"
        fast.save_pretrained(d / "tokenizer")
        vocab = d / "vocab.txt"
        vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(set(" ".join(TEXT).split()))))
        BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(d / "bert_tokenizer")
        vocab.unlink()

    artifact(rec, lib, "tokenizer save_pretrained (tokenizer.json, tokenizer_config.json with chat_template)", tok)

    def trainer_ckpt():
        from datasets import Dataset

        ds = Dataset.from_dict({"input_ids": [[2, 7, 8, 3]] * 8, "attention_mask": [[1, 1, 1, 1]] * 8, "labels": [0, 1] * 4})
        args = TrainingArguments(output_dir=str(d / "trainer"), max_steps=2, save_steps=2, per_device_train_batch_size=4, report_to=[], use_cpu=True, logging_steps=1, seed=1)
        Trainer(model=tiny_bert(), args=args, train_dataset=ds).train()

    artifact(rec, lib, "Trainer checkpoint (optimizer.pt, scheduler.pt, rng_state.pth, training_args.bin, trainer_state.json)", trainer_ckpt)
    artifact(rec, lib, "torch.save(TrainingArguments) training_args.bin", lambda: torch.save(TrainingArguments(output_dir="out", report_to=[]), d / "training_args.bin"))
    rec.versions["transformers"] = transformers.__version__


def make_sentence_transformers(rec):
    import sentence_transformers
    from sentence_transformers import SentenceTransformer, models

    lib = "sentence_transformers"
    d = rec.lib_dir(lib)
    tiny_bert().bert.save_pretrained(d / "_base")
    tok_dir = d / "_base"
    vocab = tok_dir / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(set(" ".join(TEXT).split()))))
    from transformers import BertTokenizerFast

    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(tok_dir)

    def st():
        emb = models.Transformer(str(tok_dir), max_seq_length=32)
        pool = models.Pooling(emb.get_word_embedding_dimension(), pooling_mode="mean")
        SentenceTransformer(modules=[emb, pool, models.Normalize()], device="cpu").save(str(d / "model"))

    artifact(rec, lib, "SentenceTransformer.save (modules.json, pooling config, safetensors)", st)
    shutil.rmtree(tok_dir)
    rec.versions["sentence-transformers"] = sentence_transformers.__version__


def make_accelerate(rec):
    import accelerate
    import torch
    from accelerate import Accelerator

    lib = "accelerate"
    d = rec.lib_dir(lib)

    def state():
        acc = Accelerator(cpu=True)
        net = tiny_net()
        opt = torch.optim.AdamW(net.parameters())
        sched = torch.optim.lr_scheduler.LinearLR(opt)
        net, opt, sched = acc.prepare(net, opt, sched)
        acc.save_state(str(d / "state"))
        acc.save_state(str(d / "state_bin"), safe_serialization=False)
        acc.save_model(net, str(d / "saved_model"))

    artifact(rec, lib, "Accelerator.save_state (safetensors and .bin) + save_model", state)
    rec.versions["accelerate"] = accelerate.__version__


def make_peft(rec):
    import peft
    from peft import LoraConfig, get_peft_model

    lib = "peft"
    d = rec.lib_dir(lib)

    def lora(safe, name):
        m = get_peft_model(tiny_bert(), LoraConfig(r=2, lora_alpha=4, target_modules=["query", "value"], task_type="SEQ_CLS"))
        m.save_pretrained(d / name, safe_serialization=safe)

    artifact(rec, lib, "LoRA save_pretrained safetensors", lambda: lora(True, "lora"))
    artifact(rec, lib, "LoRA save_pretrained .bin", lambda: lora(False, "lora_bin"))
    rec.versions["peft"] = peft.__version__


def make_datasets(rec):
    import datasets
    from datasets import Dataset, DatasetDict

    lib = "datasets"
    d = rec.lib_dir(lib)
    ds = Dataset.from_dict({"text": TEXT, "label": [i % 2 for i in range(len(TEXT))]})
    artifact(rec, lib, "Dataset.save_to_disk", lambda: ds.save_to_disk(str(d / "ds")))
    artifact(rec, lib, "DatasetDict.save_to_disk", lambda: DatasetDict({"train": ds, "test": ds.select(range(4))}).save_to_disk(str(d / "dsdict")))
    artifact(rec, lib, "to_parquet / to_json", lambda: (ds.to_parquet(str(d / "ds.parquet")), ds.to_json(str(d / "ds.jsonl"))))
    rec.versions["datasets"] = datasets.__version__


def make_lightning(rec):
    import lightning as L
    import torch
    import torch.nn as nn

    lib = "lightning"
    d = rec.lib_dir(lib)

    def fit():
        module = LitTiny(hidden=8, lr=0.01, name="tiny")
        data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(16, 4), torch.randn(16, 1)), batch_size=8)
        trainer = L.Trainer(max_epochs=1, default_root_dir=str(d), logger=False, enable_progress_bar=False, enable_model_summary=False,
                            callbacks=[L.pytorch.callbacks.ModelCheckpoint(dirpath=str(d / "checkpoints"), save_last=True)], accelerator="cpu")
        trainer.fit(module, data)
        trainer.save_checkpoint(str(d / "manual.ckpt"))
        trainer.save_checkpoint(str(d / "weights_only.ckpt"), weights_only=True)

    # LitTiny is defined in this script (__main__): users' LightningModules live in their code, and
    # Lightning pickles only hyper-parameters (plain values here), not the module class.
    artifact(rec, lib, "Trainer checkpoints (ModelCheckpoint, save_checkpoint, weights_only)", fit)
    rec.versions["lightning"] = L.__version__


try:
    import lightning as _L

    class LitTiny(_L.LightningModule):
        def __init__(self, hidden, lr, name):
            super().__init__()
            self.save_hyperparameters()
            import torch.nn as nn

            self.net = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 1))

        def training_step(self, batch, _):
            import torch.nn.functional as F

            x, y = batch
            return F.mse_loss(self.net(x), y)

        def configure_optimizers(self):
            import torch

            opt = torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
            return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.StepLR(opt, 1)}
except Exception:  # lightning missing: make_lightning records the skip
    pass


def make_timm(rec):
    import timm
    import torch
    from safetensors.torch import save_file

    lib = "timm"
    d = rec.lib_dir(lib)
    m = timm.create_model("resnet10t", pretrained=False, num_classes=10)
    artifact(rec, lib, "state_dict torch.save", lambda: torch.save(m.state_dict(), d / "resnet10t.pth"))
    artifact(rec, lib, "safetensors", lambda: save_file(m.state_dict(), str(d / "resnet10t.safetensors")))
    artifact(rec, lib, "timm-style checkpoint (state_dict, arch, epoch, args namespace)",
              lambda: torch.save({"epoch": 1, "arch": "resnet10t", "state_dict": m.state_dict(), "args": __import__("argparse").Namespace(lr=0.1, model="resnet10t"), "version": 2}, d / "checkpoint-1.pth.tar"))
    artifact(rec, lib, "push_to_hub-style save (config.json + model.safetensors)", lambda: timm.models.save_for_hf(m, str(d / "hf"), model_config={"num_classes": 10}))
    rec.versions["timm"] = timm.__version__


def make_torchvision(rec):
    import torch
    import torchvision

    lib = "torchvision"
    d = rec.lib_dir(lib)
    m = torchvision.models.squeezenet1_1(weights=None, num_classes=10)
    artifact(rec, lib, "squeezenet state_dict", lambda: torch.save(m.state_dict(), d / "squeezenet.pth"))
    artifact(rec, lib, "transforms pipeline pickled", lambda: torch.save(torchvision.transforms.Compose([torchvision.transforms.Resize(32), torchvision.transforms.ToTensor()]), d / "transforms.pt"),
             by_design="whole pickled nn.Module (Resize is an nn.Module)")
    rec.versions["torchvision"] = torchvision.__version__


# ----------------------------------------------------------------- Keras / ONNX / GGUF / Flax / spaCy / h5py / PIL


def make_keras(rec):
    import keras
    import numpy as np

    lib = "keras"
    d = rec.lib_dir(lib)
    seq = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dropout(0.1), keras.layers.Dense(1)])
    seq.compile(optimizer="adam", loss="mse")
    seq.fit(np.random.rand(16, 8), np.random.rand(16, 1), epochs=1, verbose=0)
    inp = keras.Input((10,), dtype="int32")
    x = keras.layers.Embedding(50, 8)(inp)
    x = keras.layers.GlobalAveragePooling1D()(x)
    func = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(x))
    artifact(rec, lib, "Sequential model.save .keras", lambda: seq.save(d / "sequential.keras"))
    artifact(rec, lib, "functional model.save .keras", lambda: func.save(d / "functional.keras"))
    artifact(rec, lib, "model.save legacy .h5", lambda: seq.save(d / "sequential.h5"))
    artifact(rec, lib, "save_weights .weights.h5", lambda: seq.save_weights(d / "sequential.weights.h5"))
    cnn = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3), keras.layers.BatchNormalization(), keras.layers.MaxPooling2D(), keras.layers.Flatten(), keras.layers.Dense(3)])
    artifact(rec, lib, "CNN model.save .keras", lambda: cnn.save(d / "cnn.keras"))
    rnn = keras.Sequential([keras.Input((5, 3)), keras.layers.LSTM(4), keras.layers.Dense(1)])
    artifact(rec, lib, "LSTM model.save .keras", lambda: rnn.save(d / "lstm.keras"))
    def normalization():
        norm = keras.layers.Normalization()
        norm.adapt(np.random.default_rng(1).standard_normal((32, 4)).astype("float32"))
        keras.Sequential([keras.Input((4,)), norm, keras.layers.Dense(1)]).save(d / "normalization.keras")

    artifact(rec, lib, "adapted Normalization layer model .keras", normalization)
    artifact(rec, lib, "StringLookup with vocabulary .keras", lambda: keras.Sequential([keras.Input((1,), dtype="string"), keras.layers.StringLookup(vocabulary=["a", "b", "c"])]).save(d / "stringlookup.keras"))
    artifact(rec, lib, "model.to_json architecture", lambda: (d / "architecture.json").write_text(seq.to_json()))
    lam = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda t: t * 2.0), keras.layers.Dense(1)])
    artifact(rec, lib, "Lambda layer .keras", lambda: lam.save(d / "lambda.keras"), by_design="Keras Lambda layer (code by construction)")
    artifact(rec, lib, "custom layer .keras", lambda: keras.Sequential([keras.Input((4,)), ScaleLayer(), keras.layers.Dense(1)]).save(d / "custom_layer.keras"), by_design="Keras custom layer (registered class)")
    rec.versions["keras"] = keras.__version__


try:
    import keras as _keras

    @_keras.saving.register_keras_serializable(package="bench")
    class ScaleLayer(_keras.layers.Layer):
        def call(self, x):
            return x * 2.0
except Exception:
    pass


def make_onnx(rec):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    lib = "onnx"
    d = rec.lib_dir(lib)
    W = numpy_helper.from_array(np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32), "W")
    B = numpy_helper.from_array(np.zeros(3, dtype=np.float32), "B")
    graph = helper.make_graph([helper.make_node("MatMul", ["X", "W"], ["XW"]), helper.make_node("Add", ["XW", "B"], ["Y0"]), helper.make_node("Relu", ["Y0"], ["Y"])],
                              "tiny", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 4])], [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 3])], [W, B])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    artifact(rec, lib, "onnx.save", lambda: onnx.save(model, d / "model.onnx"))
    big = np.random.default_rng(2).standard_normal((64, 64)).astype(np.float32)
    g2 = helper.make_graph([helper.make_node("MatMul", ["X", "Wbig"], ["Y"])], "ext", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 64])],
                           [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 64])], [numpy_helper.from_array(big, "Wbig")])
    m2 = helper.make_model(g2, opset_imports=[helper.make_opsetid("", 17)])
    artifact(rec, lib, "onnx.save external data", lambda: onnx.save(m2, str(d / "ext.onnx"), save_as_external_data=True, location="ext.onnx.data", size_threshold=0))

    def torch_export():
        import torch

        torch.onnx.export(tiny_net().eval(), (torch.randn(1, 3, 32, 32),), str(d / "torch_export.onnx"), dynamo=False)

    artifact(rec, lib, "torch.onnx.export (TorchScript exporter)", torch_export)
    rec.versions["onnx"] = onnx.__version__


def make_gguf(rec):
    import gguf
    import numpy as np

    lib = "gguf"
    d = rec.lib_dir(lib)

    def write(name, arch, template):
        w = gguf.GGUFWriter(str(d / name), arch)
        w.add_name("tiny")
        w.add_context_length(64)
        w.add_embedding_length(16)
        w.add_block_count(1)
        w.add_tokenizer_model("llama")
        w.add_token_list([b"<unk>", b"<s>", b"</s>"] + [f"t{i}".encode() for i in range(29)])
        w.add_token_scores([0.0] * 32)
        w.add_token_types([2, 3, 3] + [1] * 29)
        if template:
            w.add_chat_template(template)
        rng = np.random.default_rng(3)
        w.add_tensor("token_embd.weight", rng.standard_normal((32, 16)).astype(np.float32))
        w.add_tensor("blk.0.attn_norm.weight", np.ones(16, dtype=np.float32))
        w.add_tensor("output.weight", rng.standard_normal((32, 16)).astype(np.float16))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()

    artifact(rec, lib, "GGUFWriter llama with ChatML template", lambda: write("tiny-llama.gguf", "llama",
             "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"))
    artifact(rec, lib, "GGUFWriter without template", lambda: write("tiny-plain.gguf", "llama", None))
    rec.versions["gguf"] = importlib.metadata.version("gguf")


def make_flax(rec):
    import flax
    import jax
    import jax.numpy as jnp
    from flax import serialization
    import flax.linen as nn

    lib = "flax"
    d = rec.lib_dir(lib)
    model = nn.Dense(4)
    params = model.init(jax.random.PRNGKey(0), jnp.ones((1, 8)))
    artifact(rec, lib, "serialization.to_bytes flax_model.msgpack", lambda: (d / "flax_model.msgpack").write_bytes(serialization.to_bytes(params)))
    artifact(rec, lib, "msgpack_serialize of state dict", lambda: (d / "state.msgpack").write_bytes(serialization.msgpack_serialize(serialization.to_state_dict(params))))
    rec.versions["flax"] = flax.__version__
    rec.versions["jax"] = jax.__version__


def make_msgpack(rec):
    import msgpack

    lib = "msgpack"
    d = rec.lib_dir(lib)
    artifact(rec, lib, "packb of dict", lambda: (d / "data.msgpack").write_bytes(msgpack.packb({"a": 1, "b": [1, 2, 3], "c": {"d": b"bytes"}})))
    artifact(rec, lib, "packb of small map (0x8N first byte)", lambda: (d / "small.bin").write_bytes(msgpack.packb({"x": 1})))
    artifact(rec, lib, "packb of list", lambda: (d / "list.msgpack").write_bytes(msgpack.packb(list(range(100)))))
    artifact(rec, lib, "packb of map with 16 keys (map16)", lambda: (d / "map16.msgpack").write_bytes(msgpack.packb({f"k{i}": i for i in range(20)})))
    rec.versions["msgpack"] = ".".join(map(str, msgpack.version))


def make_spacy(rec):
    import spacy
    from spacy.tokens import DocBin

    lib = "spacy"
    d = rec.lib_dir(lib)
    nlp = spacy.blank("en")
    artifact(rec, lib, "blank('en').to_disk", lambda: nlp.to_disk(d / "blank_en"))

    def with_pipes():
        n2 = spacy.blank("en")
        n2.add_pipe("sentencizer")
        tc = n2.add_pipe("textcat")
        tc.add_label("POS")
        tc.add_label("NEG")
        n2.initialize()
        n2.to_disk(d / "textcat_en")

    artifact(rec, lib, "pipeline with sentencizer + textcat to_disk", with_pipes)

    def docbin():
        db = DocBin(store_user_data=True)
        for t in TEXT[:8]:
            db.add(nlp(t))
        db.to_disk(d / "train.spacy")

    artifact(rec, lib, "DocBin.to_disk .spacy", docbin)
    artifact(rec, lib, "nlp.to_bytes", lambda: (d / "nlp.bin").write_bytes(nlp.to_bytes()))
    rec.versions["spacy"] = spacy.__version__


def make_h5py(rec):
    import h5py
    import numpy as np

    lib = "h5py"
    d = rec.lib_dir(lib)

    def write():
        with h5py.File(d / "data.h5", "w") as f:
            f.create_dataset("x", data=np.arange(100.0), compression="gzip")
            g = f.create_group("layer1")
            g.create_dataset("kernel", data=np.ones((4, 4), dtype=np.float32))
            g.attrs["name"] = "dense"
            f.attrs["config"] = json.dumps({"a": 1})
            f.create_dataset("strings", data=np.array([b"a", b"bc"]))
        with h5py.File(d / "data.hdf5", "w") as f:
            f.create_dataset("y", data=np.zeros((10, 10)), chunks=(5, 5), compression="lzf")

    artifact(rec, lib, "h5py.File datasets, groups, attrs, gzip/lzf", write)
    rec.versions["h5py"] = h5py.__version__


def make_pil(rec):
    import numpy as np
    import PIL
    from PIL import Image

    lib = "pillow"
    d = rec.lib_dir(lib)
    img = Image.fromarray(np.random.default_rng(1).integers(0, 255, (32, 32, 3), dtype=np.uint8))
    for ext in ("png", "jpg", "webp", "bmp", "gif", "tiff"):
        artifact(rec, lib, f"Image.save .{ext}", lambda e=ext: img.save(d / f"img.{e}"))
    artifact(rec, lib, "pickle of PIL Image", lambda: (d / "image.pkl").write_bytes(pickle.dumps(img)))
    rec.versions["pillow"] = PIL.__version__


MAKERS = [
    ("pickle", make_pickle), ("numpy", make_numpy), ("scipy", make_scipy), ("torch", make_torch), ("safetensors", make_safetensors),
    ("sklearn", make_sklearn), ("joblib", make_joblib), ("pandas", make_pandas), ("pyarrow", make_pyarrow), ("xgboost", make_xgboost),
    ("lightgbm", make_lightgbm), ("catboost", make_catboost), ("statsmodels", make_statsmodels), ("gensim", make_gensim),
    ("omegaconf", make_omegaconf), ("dill+cloudpickle", make_dill_cloudpickle), ("main_class", make_main_class), ("tokenizers", make_tokenizers),
    ("transformers", make_transformers), ("sentence_transformers", make_sentence_transformers), ("accelerate", make_accelerate),
    ("peft", make_peft), ("datasets", make_datasets), ("lightning", make_lightning), ("timm", make_timm), ("torchvision", make_torchvision),
    ("keras", make_keras), ("onnx", make_onnx), ("gguf", make_gguf), ("flax", make_flax), ("msgpack", make_msgpack), ("spacy", make_spacy),
    ("h5py", make_h5py), ("pillow", make_pil),
]


def main():
    if os.environ.get("PYTHONHASHSEED") != "0":
        # Set and dict-of-set orders (pickled sets, vocabularies, gensim and sklearn text
        # models) follow string hashes: fix them, or two runs write different bytes.
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"})
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--only", nargs="*", help="maker names to run (default: all)")
    args = ap.parse_args()
    if args.out.exists() and not args.only:
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    rec = Recorder(args.out)
    manifest_path = args.out / "manifest.json"
    if args.only and manifest_path.exists():
        old = json.loads(manifest_path.read_text())
        rec.files, rec.skipped, rec.failed, rec.versions = old["files"], old["skipped"], old["failed"], old["versions"]
        # A partial run replaces what it remakes; a full run (no --only) is the one to record.
        for name in args.only:
            rec.skipped.pop(name, None)
        rec.failed = [f for f in rec.failed if f["library"] not in args.only]
    os.chdir(args.out)  # libraries that drop files in the working directory drop them here
    for name, maker in MAKERS:
        if args.only and name not in args.only:
            continue
        seed_all()
        print(f"== {name}", file=sys.stderr, flush=True)
        try:
            maker(rec)
        except ImportError as e:
            rec.skipped[name] = f"not installed: {e}"
        except Exception as e:
            rec.skipped[name] = f"maker failed: {type(e).__name__}: {e}"[:300]
            traceback.print_exc(limit=3, file=sys.stderr)
    stray = [p for p in args.out.iterdir() if p.is_file() and p.name != "manifest.json"]
    for p in stray:
        p.unlink()
    manifest = {"seed": SEED, "versions": rec.versions, "skipped": rec.skipped, "failed": rec.failed, "files": rec.files}
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True, default=str))
    libs = {v["library"] for v in rec.files.values()}
    size = sum((args.out / f).stat().st_size for f in rec.files)
    print(f"{len(rec.files)} files from {len(libs)} libraries, {size / 1e6:.1f} MB; skipped: {sorted(rec.skipped)}; failed artifacts: {len(rec.failed)}")


if __name__ == "__main__":
    main()
