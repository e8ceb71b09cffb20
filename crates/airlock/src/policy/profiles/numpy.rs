//! The NumPy profile: what pickled arrays, scalars, dtypes and random generators import.
//!
//! Source: the globals NumPy 1.x and 2.x write when arrays, scalars, masked arrays and random
//! generators are pickled (observed with `scripts/policy/observe_globals.py observe` on
//! NumPy 2.4; the `numpy.core` spellings are what NumPy < 2 writes, `numpy._core` what 2.x
//! writes), and `ndarray.__reduce__`/`dtype.__reduce__` in NumPy's C sources. The only
//! functions are the reconstruction helpers the format itself needs:
//! - `_reconstruct(subtype, shape, dtype)` and `_frombuffer(buf, dtype, shape, order)` build an
//!   array; `scalar(dtype, bytes)` builds a scalar;
//! - `numpy.ma.core._mareconstruct(subtype, baseclass, shape, basetype)` builds a masked array;
//! - `numpy.random._pickle.__bit_generator_ctor / __generator_ctor / __randomstate_ctor`
//!   instantiate a bit generator (by name from a fixed table, or the class passed in) and wrap
//!   it; `numpy.random.__RandomState_ctor` is the NumPy < 1.17 zero-argument spelling;
//!   `numpy.random.bit_generator.__pyx_unpickle_SeedSequence` is Cython's constructor helper.
//!
//! Several take a class or callable as an argument; the pickle engine must check that those
//! arguments are themselves allowlisted globals (see `CONSTRUCTORS_TAKING_CLASSES`).
//! `numpy.mean` is the one plain function: scikit-learn's `FeatureAgglomeration` stores it as
//! its default `pooling_func`. Scalar types appear when a dtype or scalar type is itself pickled
//! (`OneHotEncoder(dtype=np.float64)`).

pub const ENTRIES: &[(&str, &str)] = &[
    ("numpy", "bool"),
    ("numpy", "bool_"),
    ("numpy", "bytes_"),
    ("numpy", "clongdouble"),
    ("numpy", "complex128"),
    ("numpy", "complex64"),
    ("numpy", "datetime64"),
    ("numpy", "double"),
    ("numpy", "dtype"),
    ("numpy", "float16"),
    ("numpy", "float32"),
    ("numpy", "float64"),
    ("numpy", "half"),
    ("numpy", "int16"),
    ("numpy", "int32"),
    ("numpy", "int64"),
    ("numpy", "int8"),
    ("numpy", "intc"),
    ("numpy", "intp"),
    ("numpy", "longdouble"),
    ("numpy", "longlong"),
    ("numpy", "mean"),
    ("numpy", "ndarray"),
    ("numpy", "object_"),
    ("numpy", "single"),
    ("numpy", "str_"),
    ("numpy", "timedelta64"),
    ("numpy", "uint16"),
    ("numpy", "uint32"),
    ("numpy", "uint64"),
    ("numpy", "uint8"),
    ("numpy", "uintc"),
    ("numpy", "uintp"),
    ("numpy", "ulonglong"),
    ("numpy", "void"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy.ma", "MaskedArray"),
    ("numpy.ma.core", "MaskedArray"),
    ("numpy.ma.core", "_mareconstruct"),
    ("numpy.matrixlib.defmatrix", "matrix"),
    ("numpy.random", "__RandomState_ctor"),
    ("numpy.random._generator", "Generator"),
    ("numpy.random._mt19937", "MT19937"),
    ("numpy.random._pcg64", "PCG64"),
    ("numpy.random._pcg64", "PCG64DXSM"),
    ("numpy.random._philox", "Philox"),
    ("numpy.random._pickle", "__bit_generator_ctor"),
    ("numpy.random._pickle", "__generator_ctor"),
    ("numpy.random._pickle", "__randomstate_ctor"),
    ("numpy.random._sfc64", "SFC64"),
    ("numpy.random.bit_generator", "SeedSequence"),
    ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
    ("numpy.random.mtrand", "RandomState"),
];
