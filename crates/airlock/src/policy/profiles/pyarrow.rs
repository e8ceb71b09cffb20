//! The pyarrow profile: the functions pyarrow's own `__reduce__` methods name, and nothing else.
//!
//! Reviewed by hand against pyarrow 26's `pyarrow/lib` sources (`array.pxi`, `io.pxi`,
//! `types.pxi`, `table.pxi`, `scalar.pxi`): `Array.__reduce__` → `_restore_array(data)`,
//! `Buffer.__reduce__` → `py_buffer(bytes or PickleBuffer)`, `DataType.__reduce__` →
//! `type_for_alias(name)` (a fixed table of names), the parametrised types → their
//! constructor (`list_`, `large_list`, `map_`, `struct`, `dictionary`, `timestamp`, ...),
//! `Field` → `field`, `Schema` → `schema`, `ChunkedArray` → `chunked_array`, `Table` /
//! `RecordBatch` → `_reconstruct_table` / `_reconstruct_record_batch`, scalars → `scalar`.
//! Each builds an in-memory value from its arguments. Not listed: anything that reads or
//! opens (`pyarrow.fs`, `pyarrow.ipc`, `pyarrow.parquet`, `pyarrow.lib.ipc`, memory maps,
//! `input_stream`, ...), extension-type registration and `PyExtensionType` (whose
//! deserialisation unpickled arbitrary data, CVE-2023-47248), and no module wildcard.
//! Seen in: pandas 3 frames with pyarrow-backed strings, `pickle.dumps(pa.table(...))`.

#[rustfmt::skip]
pub const ENTRIES: &[(&str, &str)] = &[
    ("pyarrow.lib", "_reconstruct_record_batch"),
    ("pyarrow.lib", "_reconstruct_table"),
    ("pyarrow.lib", "_restore_array"),
    ("pyarrow.lib", "binary"),
    ("pyarrow.lib", "chunked_array"),
    ("pyarrow.lib", "decimal128"),
    ("pyarrow.lib", "decimal256"),
    ("pyarrow.lib", "dictionary"),
    ("pyarrow.lib", "duration"),
    ("pyarrow.lib", "field"),
    ("pyarrow.lib", "large_list"),
    ("pyarrow.lib", "list_"),
    ("pyarrow.lib", "map_"),
    ("pyarrow.lib", "py_buffer"),
    ("pyarrow.lib", "scalar"),
    ("pyarrow.lib", "schema"),
    ("pyarrow.lib", "struct"),
    ("pyarrow.lib", "time32"),
    ("pyarrow.lib", "time64"),
    ("pyarrow.lib", "timestamp"),
    ("pyarrow.lib", "type_for_alias"),
];
