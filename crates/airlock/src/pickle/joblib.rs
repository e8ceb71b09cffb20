//! joblib's pickles: a `NumpyArrayWrapper` is followed by the raw bytes of its array, which
//! joblib's own unpickler reads (`NumpyArrayWrapper.read_array`) before it reads the next
//! opcode. This module computes how many bytes that is, from the wrapper's state, exactly as
//! joblib does, so the pickle engine can step over them (or, for object arrays, scan the
//! nested pickle joblib loads there).
//!
//! Decision: a file holding a `NumpyArrayWrapper` is read the way `joblib.load` reads it.
//! `pickle.load` on such a file would take the array bytes for opcodes and fail at once on
//! real array data; a payload hidden there for `pickle.load` would have to survive as valid
//! float data for joblib, and is out of scope (documented in docs/formats.md).

use super::value::{Arena, Value};

/// The global joblib pickles for each array.
pub const NUMPY_ARRAY_WRAPPER: &str = "joblib.numpy_pickle.NumpyArrayWrapper";

/// What follows a wrapper's BUILD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrayData {
    /// Raw bytes to step over: padding byte, padding, then the array.
    Raw { skip: usize },
    /// An object array: a nested pickle follows.
    Pickle,
}

/// Works out the bytes that follow a wrapper whose BUILD state is `state`; `rest` is the data
/// after the BUILD opcode.
pub fn array_data(arena: &Arena<'_>, state: Value, rest: &[u8]) -> Result<ArrayData, String> {
    let field = |key: &str| arena.dict_get(state, key);
    let dtype = field("dtype").ok_or("the wrapper's state has no dtype")?;
    let (itemsize, has_object) = dtype_layout(arena, dtype)?;
    if has_object {
        return Ok(ArrayData::Pickle);
    }
    let shape = field("shape").ok_or("the wrapper's state has no shape")?;
    let dims = arena.seq_of(shape).ok_or("the shape is not a tuple")?;
    let mut count: u64 = 1;
    for dim in dims {
        let dim = arena
            .int_of(*dim)
            .ok_or("a shape entry is not an integer")?;
        let dim = u64::try_from(dim).map_err(|_| "a shape entry is negative".to_string())?;
        count = count
            .checked_mul(dim)
            .ok_or("the element count overflows")?;
    }
    let bytes = count
        .checked_mul(itemsize)
        .ok_or("the array size overflows")?;
    let mut skip = 0u64;
    let aligned = field("numpy_array_alignment_bytes").is_some_and(|v| v != Value::None);
    if aligned {
        let padding = *rest.first().ok_or("the padding byte is missing")?;
        skip = 1 + u64::from(padding);
    }
    let total = skip.checked_add(bytes).ok_or("the array size overflows")?;
    if total > rest.len() as u64 {
        return Err(format!(
            "the array needs {total} bytes but only {} remain",
            rest.len()
        ));
    }
    Ok(ArrayData::Raw {
        skip: total as usize,
    })
}

/// `(itemsize, hasobject)` of a pickled `numpy.dtype` (REDUCE of `numpy.dtype` with a type
/// string such as `'f8'`, then BUILD with numpy's state tuple).
fn dtype_layout(arena: &Arena<'_>, dtype: Value) -> Result<(u64, bool), String> {
    let call = arena
        .call_of(dtype)
        .ok_or("the dtype is not a reconstructed numpy.dtype")?;
    let callee = arena.callee_name(dtype).unwrap_or_default();
    if !matches!(
        callee.as_str(),
        "numpy.dtype" | "numpy.core.multiarray.dtype"
    ) {
        return Err(format!("the dtype is made by `{callee}`, not numpy.dtype"));
    }
    let type_str = arena
        .seq_of(call.args)
        .and_then(|args| args.first())
        .and_then(|v| arena.str_of(*v))
        .ok_or("the dtype has no type string")?;
    // numpy's state: (version, byteorder, subarray, names, fields, elsize, alignment, flags, ...)
    let state = call
        .built()
        .last()
        .and_then(|s| arena.seq_of(*s))
        .unwrap_or(&[]);
    let elsize = state
        .get(5)
        .and_then(|v| arena.int_of(*v))
        .filter(|n| *n > 0);
    let flags = state.get(7).and_then(|v| arena.int_of(*v)).unwrap_or(0);
    let has_object_fields = flags & 1 != 0; // NPY_ITEM_REFCOUNT
    let trimmed = type_str.trim_start_matches(['<', '>', '|', '=']);
    let kind = trimmed.chars().next().ok_or("empty dtype string")?;
    let number: Option<u64> = trimmed[kind.len_utf8()..]
        .split('[')
        .next()
        .and_then(|n| n.parse().ok());
    if kind == 'O' || has_object_fields {
        return Ok((8, true));
    }
    let size = match (kind, elsize, number) {
        (_, Some(e), _) => u64::try_from(e).map_err(|_| "bad element size".to_string())?,
        ('U', None, Some(n)) => n.checked_mul(4).ok_or("bad element size")?,
        ('M' | 'm', None, _) => 8,
        ('b' | 'i' | 'u' | 'f' | 'c' | 'S' | 'a' | 'V', None, Some(n)) => n,
        ('?', None, _) => 1,
        _ => return Err(format!("unsupported dtype `{type_str}`")),
    };
    Ok((size, false))
}
