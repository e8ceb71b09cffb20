//! Reads the values the symbolic machine built from a checkpoint's pickle as a state dict:
//! names mapped to tensor descriptions (storage, dtype, offset, shape, strides).
//!
//! Only torch's tensor-rebuild vocabulary is understood, with the argument layouts of
//! `torch/_utils.py`: `_rebuild_tensor(storage, offset, size, stride)`,
//! `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])`,
//! `_rebuild_tensor_v3(storage, offset, size, stride, requires_grad, hooks, dtype[, metadata])`,
//! `_rebuild_parameter(data, requires_grad, hooks)`,
//! `_rebuild_parameter_with_state(data, requires_grad, hooks, state)` and
//! `torch._tensor._rebuild_from_type_v2(func, new_type, args, state)` when `new_type` is a
//! plain tensor or parameter. Storages are `('storage', type, key, location, numel)`
//! persistent ids. Everything else is an error naming the key path and pickle offset.

use std::collections::HashMap;
use std::path::Path;

use safetensors::Dtype;

use super::source::Checkpoint;
use super::{ConvertError, Options, WRAPPER_KEYS};
use crate::formats::torch::{StorageType, storage_ref};
use crate::pickle::machine::Outcome;
use crate::pickle::value::{Arena, Node, Value};

use crate::limits::caps::convert::{MAX_NESTING, MAX_WRAPPING};

/// One tensor as the checkpoint describes it (offsets and strides in elements).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorRef {
    pub name: String,
    pub dtype: Dtype,
    /// Bytes per torch element (`float4_e2m1fn_x2` packs two values in one byte).
    pub element_size: u64,
    pub shape: Vec<u64>,
    pub strides: Vec<u64>,
    pub offset: u64,
    /// The storage's key (`data/<key>`).
    pub storage: String,
    /// Bytes in the storage.
    pub storage_len: u64,
    /// Byte-swap unit when the checkpoint is big-endian (1: nothing to swap).
    pub swap: u64,
    /// Offset of the rebuild call in the pickle.
    pub at: u64,
}

impl TensorRef {
    pub fn numel(&self) -> u64 {
        self.shape.iter().product()
    }

    pub fn nbytes(&self) -> u64 {
        self.numel() * self.element_size
    }
}

/// What the pickle holds: tensors in state-dict order, and dropped plain values.
#[derive(Debug, Clone, Default)]
pub struct StateDict {
    pub tensors: Vec<TensorRef>,
    /// `(name, description)` of values dropped by `--skip-non-tensors`.
    pub skipped: Vec<(String, String)>,
}

/// Interprets the checkpoint's object as a state dict.
pub fn state_dict(checkpoint: &Checkpoint, options: &Options) -> Result<StateDict, ConvertError> {
    let scanner = options.scanner();
    checkpoint.with_outcome(&scanner, |outcome| {
        let mut reader = Interpreter {
            checkpoint,
            arena: &outcome.arena,
            options,
            storages: HashMap::new(),
            out: StateDict::default(),
        };
        let root = reader.root(outcome)?;
        reader.walk(root, "", 0)?;
        Ok(reader.out)
    })
}

/// A storage as first loaded (torch caches storages by key; later references reuse it).
#[derive(Clone, Copy)]
struct Loaded {
    storage_type: &'static StorageType,
    len: u64,
}

struct Interpreter<'o, 'a> {
    checkpoint: &'o Checkpoint,
    arena: &'o Arena<'a>,
    options: &'o Options,
    storages: HashMap<String, Loaded>,
    out: StateDict,
}

impl<'a> Interpreter<'_, 'a> {
    fn path(&self) -> &Path {
        &self.checkpoint.path
    }

    fn fail(&self, name: &str, at: Option<u64>, why: impl std::fmt::Display) -> ConvertError {
        let place = match at {
            Some(at) => format!(" (offset {at} of {})", self.checkpoint.pickle_name()),
            None => String::new(),
        };
        let key = if name.is_empty() {
            "the top level".to_string()
        } else {
            format!("`{name}`")
        };
        ConvertError::Unsupported {
            path: self.path().to_path_buf(),
            why: format!("{key}{place}: {why}"),
        }
    }

    /// The mapping to convert: the pickle's object, or the wrapper key's value.
    fn root(&self, outcome: &Outcome<'a>) -> Result<Value, ConvertError> {
        let root = match (outcome.stopped, outcome.root, &outcome.error) {
            (true, Some(root), _) => root,
            (_, _, Some((at, msg))) => {
                return Err(self.fail("", Some(*at), format!("torch.load would fail here: {msg}")));
            }
            _ => return Err(self.fail("", None, "the pickle stops at a scanning limit")),
        };
        if self.mapping(root).is_none() {
            return Err(self.fail(
                "",
                None,
                format!("{} is not a dict of tensors", self.arena.describe(root)),
            ));
        }
        if let Some(key) = &self.options.key {
            let value = self
                .arena
                .dict_get(root, key)
                .ok_or_else(|| self.fail("", None, format!("no top-level key `{key}`")))?;
            if self.mapping(value).is_none() {
                return Err(self.fail(
                    key,
                    None,
                    format!("{} is not a dict", self.arena.describe(value)),
                ));
            }
            return Ok(value);
        }
        Ok(WRAPPER_KEYS
            .iter()
            .filter_map(|key| self.arena.dict_get(root, key))
            .find(|value| self.mapping(*value).is_some())
            .unwrap_or(root))
    }

    /// The items of a dict or OrderedDict, keys deduplicated the way a dict does (the last
    /// value wins, the first position stays).
    fn mapping(&self, value: Value) -> Option<Vec<(Value, Value)>> {
        let pairs: &[(Value, Value)] = match self.arena.node(value)? {
            Node::Dict(pairs) => pairs,
            Node::Call(call) => {
                let g = self.arena.global_of(call.callable)?;
                let empty_args = self
                    .arena
                    .seq_of(call.args)
                    .is_some_and(<[Value]>::is_empty);
                if g.module != "collections" || g.name != "OrderedDict" || !empty_args {
                    return None;
                }
                call.items()
            }
            _ => return None,
        };
        Some(dedup_pairs(self.arena, pairs.to_vec()))
    }

    fn walk(&mut self, dict: Value, prefix: &str, depth: usize) -> Result<(), ConvertError> {
        let items = self.mapping(dict).unwrap_or_default();
        for (k, v) in items {
            let Some(key) = self.arena.str_of(k) else {
                return Err(self.fail(
                    prefix,
                    None,
                    format!("a key is {}, not a string", self.arena.describe(k)),
                ));
            };
            let name = if prefix.is_empty() {
                key.to_string()
            } else {
                format!("{prefix}.{key}")
            };
            if let Some(tensor) = self.tensor(v, &name, 0)? {
                self.out.tensors.push(tensor);
            } else if self.mapping(v).is_some() {
                if !self.options.flatten {
                    return Err(self.fail(
                        &name,
                        None,
                        "a nested dict (use --flatten to convert it with `.`-joined names)",
                    ));
                }
                if depth >= MAX_NESTING {
                    return Err(self.fail(
                        &name,
                        None,
                        format!("dicts nested more than {MAX_NESTING} deep"),
                    ));
                }
                self.walk(v, &name, depth + 1)?;
            } else if self.is_plain(v) {
                if !self.options.skip_non_tensors {
                    return Err(self.fail(
                        &name,
                        None,
                        format!(
                            "{} is not a tensor (use --skip-non-tensors to drop plain values)",
                            self.arena.describe(v)
                        ),
                    ));
                }
                self.out.skipped.push((name, self.arena.describe(v)));
            } else {
                let at = self.arena.call_of(v).map(|c| c.offset);
                return Err(self.fail(
                    &name,
                    at,
                    format!(
                        "{} is outside the tensor vocabulary",
                        self.arena.describe(v)
                    ),
                ));
            }
        }
        Ok(())
    }

    fn is_plain(&self, v: Value) -> bool {
        match v {
            Value::Node(_) => matches!(self.arena.node(v), Some(Node::Long(_) | Node::Str(_))),
            Value::Bytes(_) => false,
            _ => true,
        }
    }

    /// A tensor description when `v` is a rebuild call; `Ok(None)` when it is not a call of
    /// a rebuild function at all; an error when it is one with arguments torch would reject
    /// or Airlock cannot convert.
    fn tensor(
        &mut self,
        v: Value,
        name: &str,
        wrapping: usize,
    ) -> Result<Option<TensorRef>, ConvertError> {
        if let Some(Node::PersistentLoad { pid, offset }) = self.arena.node(v) {
            return self.tar_tensor(name, *offset, *pid).map(Some);
        }
        let Some(call) = self.arena.call_of(v) else {
            return Ok(None);
        };
        let at = call.offset;
        let Some(callee) = self.arena.callee_name(v) else {
            return Ok(None);
        };
        if wrapping > MAX_WRAPPING {
            return Err(self.fail(name, Some(at), "rebuild calls nested too deep"));
        }
        if !call.items().is_empty() || !call.appended().is_empty() {
            return Err(self.fail(
                name,
                Some(at),
                "items are set on a tensor (SETITEM on a non-dict; CVE-2026-24747's shape)",
            ));
        }
        let args = self.arena.seq_of(call.args).unwrap_or_default().to_vec();
        match callee.as_str() {
            "torch._utils._rebuild_tensor" | "torch._utils._rebuild_tensor_v2" => {
                self.rebuild(name, at, &args, None).map(Some)
            }
            "torch._utils._rebuild_tensor_v3" => {
                let dtype = args.get(6).copied().and_then(|d| self.arena.global_of(d));
                let dtype = match dtype {
                    Some(g) if g.module == "torch" => torch_dtype(&g.name)
                        .ok_or_else(|| self.fail(name, Some(at), format!("dtype torch.{} has no safetensors equivalent", g.name)))?,
                    _ => return Err(self.fail(name, Some(at), "_rebuild_tensor_v3 without a torch dtype")),
                };
                self.rebuild(name, at, &args, Some(dtype)).map(Some)
            }
            "torch._utils._rebuild_parameter" | "torch._utils._rebuild_parameter_with_state" => {
                let data = args.first().copied().unwrap_or(Value::None);
                match self.tensor(data, name, wrapping + 1)? {
                    Some(t) => Ok(Some(t)),
                    None => Err(self.fail(name, Some(at), format!("a parameter wrapping {}", self.arena.describe(data)))),
                }
            }
            "torch._tensor._rebuild_from_type_v2" => self.rebuild_from_type(name, at, &args, wrapping).map(Some),
            other if other.starts_with("torch._utils._rebuild_") => {
                Err(self.fail(name, Some(at), format!("`{other}` (quantized, sparse, nested or device tensors) cannot be converted to safetensors")))
            }
            _ => Ok(None),
        }
    }

    fn rebuild_from_type(
        &mut self,
        name: &str,
        at: u64,
        args: &[Value],
        wrapping: usize,
    ) -> Result<TensorRef, ConvertError> {
        let new_type = args.get(1).and_then(|t| self.arena.global_of(*t));
        let plain = new_type.is_some_and(|g| {
            (g.module == "torch" && g.name == "Tensor")
                || (g.module == "torch.nn.parameter" && g.name == "Parameter")
        });
        if !plain {
            let what = new_type.map_or("an unknown type".to_string(), |g| {
                format!("{}.{}", g.module, g.name)
            });
            return Err(self.fail(name, Some(at), format!("a tensor subclass ({what})")));
        }
        let func = args.first().and_then(|f| self.arena.global_of(*f));
        let inner = args
            .get(2)
            .and_then(|a| self.arena.seq_of(*a))
            .unwrap_or_default()
            .to_vec();
        match func.map(|g| format!("{}.{}", g.module, g.name)).as_deref() {
            Some("torch._utils._rebuild_tensor" | "torch._utils._rebuild_tensor_v2") => {
                self.rebuild(name, at, &inner, None)
            }
            Some(
                "torch._utils._rebuild_parameter" | "torch._utils._rebuild_parameter_with_state",
            ) => {
                let data = inner.first().copied().unwrap_or(Value::None);
                self.tensor(data, name, wrapping + 1)?
                    .ok_or_else(|| self.fail(name, Some(at), "a parameter wrapping a non-tensor"))
            }
            Some(other) => Err(self.fail(
                name,
                Some(at),
                format!("_rebuild_from_type_v2 calling `{other}`"),
            )),
            None => Err(self.fail(
                name,
                Some(at),
                "_rebuild_from_type_v2 without a rebuild function",
            )),
        }
    }

    /// A tar-format tensor: the persistent id is the key of an entry of the `tensors` member.
    fn tar_tensor(&mut self, name: &str, at: u64, pid: Value) -> Result<TensorRef, ConvertError> {
        let key = self
            .arena
            .str_of(pid)
            .map(str::to_string)
            .or_else(|| self.arena.int_of(pid).map(|i| i.to_string()));
        let found = key.as_deref().and_then(|k| self.checkpoint.tar_tensor(k));
        let Some((t, storage_type)) = found else {
            return Err(self.fail(
                name,
                Some(at),
                "a persistent load that names no tensor of the `tensors` member",
            ));
        };
        let (dtype, element_size) = storage_dtype(storage_type).ok_or_else(|| {
            self.fail(
                name,
                Some(at),
                format!("torch.{} has no safetensors dtype", storage_type.class),
            )
        })?;
        let record = self.checkpoint.record(&t.storage).ok_or_else(|| {
            self.fail(
                name,
                Some(at),
                format!("storage `{}` is not in the `storages` member", t.storage),
            )
        })?;
        if t.shape.len() != t.strides.len() {
            return Err(self.fail(name, Some(at), "sizes and strides differ in length"));
        }
        let tensor = TensorRef {
            name: name.to_string(),
            dtype,
            element_size,
            shape: t.shape.clone(),
            strides: t.strides.clone(),
            offset: t.offset,
            storage: t.storage.clone(),
            storage_len: record.len,
            swap: 1,
            at,
        };
        self.check_bounds(&tensor)?;
        Ok(tensor)
    }

    /// `(storage, offset, size, stride, ...)` → a checked tensor description.
    fn rebuild(
        &mut self,
        name: &str,
        at: u64,
        args: &[Value],
        dtype: Option<(Dtype, u64)>,
    ) -> Result<TensorRef, ConvertError> {
        let [storage, offset, size, stride, ..] = args else {
            return Err(self.fail(
                name,
                Some(at),
                format!("a rebuild call with {} arguments", args.len()),
            ));
        };
        let (key, loaded) = self.storage(name, at, *storage)?;
        let offset = self
            .arena
            .int_of(*offset)
            .and_then(|o| u64::try_from(o).ok())
            .ok_or_else(|| {
                self.fail(
                    name,
                    Some(at),
                    "the storage offset is not a non-negative integer",
                )
            })?;
        let shape = self.ints(*size).ok_or_else(|| {
            self.fail(
                name,
                Some(at),
                "the size is not a tuple of non-negative integers",
            )
        })?;
        let strides = self.ints(*stride).ok_or_else(|| {
            self.fail(
                name,
                Some(at),
                "the stride is not a tuple of non-negative integers",
            )
        })?;
        if shape.len() != strides.len() {
            return Err(self.fail(
                name,
                Some(at),
                format!("{} sizes but {} strides", shape.len(), strides.len()),
            ));
        }
        let (dtype, element_size) = match dtype {
            Some(d) => d,
            None => storage_dtype(loaded.storage_type).ok_or_else(|| {
                self.fail(
                    name,
                    Some(at),
                    format!(
                        "torch.{} has no safetensors dtype",
                        loaded.storage_type.class
                    ),
                )
            })?,
        };
        let tensor = TensorRef {
            name: name.to_string(),
            dtype,
            element_size,
            shape,
            strides,
            offset,
            storage: key,
            storage_len: loaded.len,
            swap: swap_unit(self.checkpoint.big_endian, loaded.storage_type),
            at,
        };
        self.check_bounds(&tensor)?;
        Ok(tensor)
    }

    /// Checks that every element the view reaches lies inside its storage (torch's `set_`
    /// check), with overflow-checked arithmetic.
    fn check_bounds(&self, t: &TensorRef) -> Result<(), ConvertError> {
        let numel = t.shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
        let Some(numel) = numel.filter(|n| n.checked_mul(t.element_size).is_some()) else {
            return Err(self.fail(&t.name, Some(t.at), "the shape's element count overflows"));
        };
        if numel == 0 {
            return Ok(());
        }
        let last = last_index(t).and_then(|i| i.checked_add(1)?.checked_mul(t.element_size));
        match last {
            Some(end) if end <= t.storage_len => Ok(()),
            _ => Err(self.fail(&t.name, Some(t.at), format!(
                "the view (offset {}, size {:?}, stride {:?}) reaches past its storage `{}` of {} bytes",
                t.offset, t.shape, t.strides, t.storage, t.storage_len
            ))),
        }
    }

    /// Resolves a persistent-load argument to its storage, checking the record's size.
    fn storage(
        &mut self,
        name: &str,
        at: u64,
        value: Value,
    ) -> Result<(String, Loaded), ConvertError> {
        let pid = match self.arena.node(value) {
            Some(Node::PersistentLoad { pid, .. }) => *pid,
            _ => {
                return Err(self.fail(
                    name,
                    Some(at),
                    format!(
                        "the storage is {}, not a persistent load",
                        self.arena.describe(value)
                    ),
                ));
            }
        };
        let Some(r) = storage_ref(self.arena, pid) else {
            return Err(self.fail(
                name,
                Some(at),
                "a persistent id that is not a ('storage', type, key, location, numel) tuple",
            ));
        };
        if let Some(view) = self
            .arena
            .seq_of(pid)
            .and_then(|items| items.get(5))
            .filter(|v| **v != Value::None)
        {
            let _ = view;
            return Err(self.fail(
                name,
                Some(at),
                "a legacy storage view (view_metadata); not supported",
            ));
        }
        if let Some(loaded) = self.storages.get(&r.key) {
            return Ok((r.key, *loaded));
        }
        let record = self
            .checkpoint
            .record(&r.key)
            .ok_or_else(|| ConvertError::Layout {
                path: self.path().to_path_buf(),
                why: format!(
                    "`{name}`: storage `{}` has no record (data/{})",
                    r.key, r.key
                ),
            })?;
        let declared = r.numel.checked_mul(r.storage_type.element_size);
        if let Some(numel) = record.legacy_numel.filter(|&n| n != r.numel) {
            return Err(ConvertError::Layout {
                path: self.path().to_path_buf(),
                why: format!(
                    "`{name}`: storage `{}` holds {numel} elements but the pickle declares {}",
                    r.key, r.numel
                ),
            });
        }
        if declared != Some(record.len) {
            return Err(ConvertError::Layout {
                path: self.path().to_path_buf(),
                why: format!(
                    "`{name}` (offset {at}): storage `{}` declares {} × {} bytes but its record holds {} bytes (torch < 2.10 would read out of bounds: CVE-2026-24747)",
                    r.key, r.numel, r.storage_type.element_size, record.len
                ),
            });
        }
        let loaded = Loaded {
            storage_type: r.storage_type,
            len: record.len,
        };
        self.storages.insert(r.key.clone(), loaded);
        Ok((r.key, loaded))
    }

    /// A tuple (or `torch.Size(tuple)`) of non-negative integers.
    fn ints(&self, value: Value) -> Option<Vec<u64>> {
        let items = match self.arena.seq_of(value) {
            Some(items) => items,
            None => {
                let call = self.arena.call_of(value)?;
                let g = self.arena.global_of(call.callable)?;
                if g.module != "torch" || g.name != "Size" {
                    return None;
                }
                let inner = *self.arena.seq_of(call.args)?.first()?;
                self.arena.seq_of(inner)?
            }
        };
        items
            .iter()
            .map(|v| self.arena.int_of(*v).and_then(|i| u64::try_from(i).ok()))
            .collect()
    }
}

/// Keeps the last value of each string key at the key's first position (dict semantics).
fn dedup_pairs(arena: &Arena<'_>, pairs: Vec<(Value, Value)>) -> Vec<(Value, Value)> {
    let mut out: Vec<(Value, Value)> = Vec::with_capacity(pairs.len());
    let mut index: HashMap<String, usize> = HashMap::new();
    for (k, v) in pairs {
        match arena.str_of(k) {
            Some(key) => match index.get(key) {
                Some(&i) => {
                    if let Some(slot) = out.get_mut(i) {
                        slot.1 = v;
                    }
                }
                None => {
                    index.insert(key.to_string(), out.len());
                    out.push((k, v));
                }
            },
            None => out.push((k, v)),
        }
    }
    out
}

/// Index (in elements) of the last element a view reaches.
pub fn last_index(t: &TensorRef) -> Option<u64> {
    t.shape
        .iter()
        .zip(&t.strides)
        .try_fold(t.offset, |acc, (&d, &s)| {
            acc.checked_add(d.checked_sub(1)?.checked_mul(s)?)
        })
}

/// The safetensors dtype and element size of a typed storage class.
fn storage_dtype(t: &StorageType) -> Option<(Dtype, u64)> {
    let name = t.safetensors?;
    let dtype = serde_json::from_value(serde_json::Value::String(name.to_string())).ok()?;
    Some((dtype, t.element_size))
}

/// Byte-swap unit for a big-endian checkpoint, as torch's `byteswap(dtype)` does it: the
/// storage's element size, halved for complex types. Untyped storages load as bytes and are
/// not swapped by torch either.
fn swap_unit(big_endian: bool, t: &StorageType) -> u64 {
    if !big_endian {
        return 1;
    }
    match t.class {
        "ComplexFloatStorage" | "ComplexDoubleStorage" => t.element_size / 2,
        _ => t.element_size,
    }
}

/// A `torch.<dtype>` global → safetensors dtype and bytes per element.
pub fn torch_dtype(name: &str) -> Option<(Dtype, u64)> {
    Some(match name {
        "float64" | "double" => (Dtype::F64, 8),
        "float32" | "float" => (Dtype::F32, 4),
        "float16" | "half" => (Dtype::F16, 2),
        "bfloat16" => (Dtype::BF16, 2),
        "int64" | "long" => (Dtype::I64, 8),
        "int32" | "int" => (Dtype::I32, 4),
        "int16" | "short" => (Dtype::I16, 2),
        "int8" => (Dtype::I8, 1),
        "uint8" => (Dtype::U8, 1),
        "bool" => (Dtype::BOOL, 1),
        "complex64" | "cfloat" => (Dtype::C64, 8),
        "float8_e5m2" => (Dtype::F8_E5M2, 1),
        "float8_e4m3fn" => (Dtype::F8_E4M3, 1),
        "float8_e4m3fnuz" => (Dtype::F8_E4M3FNUZ, 1),
        "float8_e5m2fnuz" => (Dtype::F8_E5M2FNUZ, 1),
        "float8_e8m0fnu" => (Dtype::F8_E8M0, 1),
        "float4_e2m1fn_x2" => (Dtype::F4, 1),
        "uint16" => (Dtype::U16, 2),
        "uint32" => (Dtype::U32, 4),
        "uint64" => (Dtype::U64, 8),
        _ => return None,
    })
}
