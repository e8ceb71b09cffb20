//! joblib's pickles: the arrays a `NumpyArrayWrapper` writes after its BUILD. The pickle
//! engine steps over them while it runs, so their reading lives in [`crate::pickle::joblib`]
//! (the engine imports nothing from `formats`); re-exported here for joblib's callers.

pub use crate::pickle::joblib::{ArrayData, NUMPY_ARRAY_WRAPPER, array_data};
