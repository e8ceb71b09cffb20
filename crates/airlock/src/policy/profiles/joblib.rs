//! The joblib profile: the array wrappers `joblib.dump` writes.
//!
//! Source: `joblib/numpy_pickle.py` (joblib 0.10 – 1.x). `NumpyArrayWrapper` is a plain
//! record (subclass, shape, order, dtype, allow_mmap); joblib's own unpickler replaces it with
//! the array whose raw bytes follow the pickle inline (the pickle engine delimits them). The
//! pre-0.23 copy vendored in scikit-learn (`sklearn.externals.joblib`) writes the same class
//! under that path.
//!
//! Not here on purpose: the joblib < 0.10 `NDArrayWrapper` / `ZNDArrayWrapper` in
//! `numpy_pickle_compat`. They make `joblib.load` open a side file whose name the pickle
//! chooses (an absolute path wins over the pickle's folder) and `numpy.load` it with
//! `allow_pickle=True`; the denylist rates them suspicious with that reason, and a user may
//! allow them in `airlock.toml` for old dumps whose side files are scanned too.

pub const ENTRIES: &[(&str, &str)] = &[
    ("joblib.numpy_pickle", "NumpyArrayWrapper"),
    ("sklearn.externals.joblib.numpy_pickle", "NumpyArrayWrapper"),
];
