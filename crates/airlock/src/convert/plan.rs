//! What will be written: tensor names, dtypes, shapes and sizes in output order, the
//! shared-storage aliases removed, and the `__metadata__`.
//!
//! Shared storages are handled as the Hugging Face converter handles them
//! (`safetensors.torch._remove_duplicate_names`): tensors are grouped by storage, each group
//! is split into runs of overlapping byte ranges, and in every run of two or more the
//! lexicographically first name whose tensor covers the whole storage is kept; the others are
//! dropped and recorded as `{removed: kept}` in the metadata, next to `"format": "pt"`.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use safetensors::Dtype;

use super::interpret::{self, StateDict, TensorRef, last_index};
use super::source::Checkpoint;
use super::write::DATA_ALIGNMENT;
use super::{ConvertError, Options};

/// One tensor of the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedTensor {
    pub name: String,
    pub dtype: Dtype,
    /// The safetensors shape (for `F4`, the last dimension counts values, two per byte).
    pub shape: Vec<usize>,
    pub nbytes: u64,
    /// Where the bytes come from.
    pub source: TensorRef,
}

impl PlannedTensor {
    /// True when the bytes are one run of the storage in the output's byte order.
    pub fn is_contiguous(&self) -> bool {
        is_contiguous(&self.source)
    }
}

/// Names that shared one storage: the one written and the ones removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedGroup {
    pub kept: String,
    pub removed: Vec<String>,
}

/// The conversion plan of one checkpoint.
#[derive(Debug, Clone)]
pub struct Plan {
    pub input: PathBuf,
    /// `zip` or `legacy`.
    pub format: &'static str,
    pub big_endian: bool,
    /// In output order (see [`output_order`]).
    pub tensors: Vec<PlannedTensor>,
    pub shared: Vec<SharedGroup>,
    /// The `__metadata__` to write.
    pub metadata: BTreeMap<String, String>,
    /// Plain values dropped by `--skip-non-tensors`: (name, description).
    pub skipped: Vec<(String, String)>,
}

impl Plan {
    /// Bytes of tensor data.
    pub fn data_bytes(&self) -> u64 {
        self.tensors.iter().map(|t| t.nbytes).sum()
    }
}

/// Reads the checkpoint's state dict and decides what to write.
pub fn plan(checkpoint: &Checkpoint, options: &Options) -> Result<Plan, ConvertError> {
    let StateDict { tensors, skipped } = interpret::state_dict(checkpoint, options)?;
    check_names(&checkpoint.path, &tensors)?;
    let mut metadata = BTreeMap::from([("format".to_string(), "pt".to_string())]);
    let mut shared = Vec::new();
    let mut removed: HashSet<String> = HashSet::new();
    if !options.no_dedup {
        shared = shared_groups(&checkpoint.path, &tensors)?;
        for group in &shared {
            for name in &group.removed {
                metadata
                    .entry(name.clone())
                    .or_insert_with(|| group.kept.clone());
                removed.insert(name.clone());
            }
        }
    }
    let mut planned = Vec::with_capacity(tensors.len());
    for t in tensors.into_iter().filter(|t| !removed.contains(&t.name)) {
        planned.push(planned_tensor(&checkpoint.path, t)?);
    }
    planned.sort_by(|a, b| output_order(a).cmp(&output_order(b)));
    Ok(Plan {
        input: checkpoint.path.clone(),
        format: checkpoint.format.as_str(),
        big_endian: checkpoint.big_endian,
        tensors: planned,
        shared,
        metadata,
        skipped,
    })
}

/// Where a tensor goes in the output: first the tensors whose size is a whole number of
/// pages ([`DATA_ALIGNMENT`]), then the rest; within each, descending dtype, then name, as the
/// safetensors writer orders them. The writer sorts by dtype so that every tensor starts at a
/// multiple of its element size; this order keeps that (a page-sized tensor is a multiple of
/// any element size, so the second part starts 8-aligned) and also keeps the page-sized tensors,
/// nearly all of a model's bytes, on page boundaries when the data starts on one (see
/// [`super::write::header`]). The order carries no meaning for loaders, which look tensors up
/// by name.
fn output_order(t: &PlannedTensor) -> (bool, Reverse<Dtype>, &str) {
    (
        t.nbytes % DATA_ALIGNMENT as u64 != 0,
        Reverse(t.dtype),
        t.name.as_str(),
    )
}

fn planned_tensor(path: &Path, t: TensorRef) -> Result<PlannedTensor, ConvertError> {
    let mut shape: Vec<usize> = t
        .shape
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<_, _>>()
        .map_err(|_| unsupported(path, &t.name, "a dimension does not fit in memory sizes"))?;
    if t.dtype == Dtype::F4 {
        match shape.last_mut() {
            Some(last) => *last *= 2,
            None => return Err(unsupported(path, &t.name, "a 0-d float4_e2m1fn_x2 tensor")),
        }
    }
    Ok(PlannedTensor {
        name: t.name.clone(),
        dtype: t.dtype,
        shape,
        nbytes: t.nbytes(),
        source: t,
    })
}

/// Names must be unique (flattening can collide) and not the reserved `__metadata__`.
fn check_names(path: &Path, tensors: &[TensorRef]) -> Result<(), ConvertError> {
    let mut seen = HashSet::new();
    for t in tensors {
        if t.name == "__metadata__" {
            return Err(unsupported(
                path,
                &t.name,
                "a tensor named like safetensors' metadata key",
            ));
        }
        if !seen.insert(t.name.as_str()) {
            return Err(unsupported(
                path,
                &t.name,
                "two tensors get this name after flattening",
            ));
        }
    }
    Ok(())
}

fn unsupported(path: &Path, name: &str, why: &str) -> ConvertError {
    ConvertError::Unsupported {
        path: path.to_path_buf(),
        why: format!("`{name}`: {why}"),
    }
}

/// Byte range a tensor spans in its storage, as safetensors' `_end_ptr` measures it.
fn area(t: &TensorRef) -> (u64, u64) {
    let start = t.offset.saturating_mul(t.element_size);
    let stop = if t.numel() > 0 {
        last_index(t).map_or(u64::MAX, |i| (i + 1) * t.element_size)
    } else {
        start
    };
    (start, stop)
}

/// Whether a tensor covers its whole storage from the first byte (`_is_complete`).
fn is_complete(t: &TensorRef) -> bool {
    t.offset == 0 && t.nbytes() == t.storage_len
}

/// Groups of tensors whose bytes overlap in one storage, with the name to keep in each.
pub fn shared_groups(path: &Path, tensors: &[TensorRef]) -> Result<Vec<SharedGroup>, ConvertError> {
    let mut by_storage: Vec<(String, Vec<&TensorRef>)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for t in tensors.iter().filter(|t| t.storage_len != 0) {
        let slot = *index.entry(t.storage.as_str()).or_insert_with(|| {
            by_storage.push((t.storage.clone(), Vec::new()));
            by_storage.len() - 1
        });
        if let Some((_, members)) = by_storage.get_mut(slot) {
            members.push(t);
        }
    }
    let mut groups = Vec::new();
    for (_, members) in by_storage.into_iter().filter(|(_, m)| m.len() > 1) {
        for run in overlapping_runs(&members) {
            if run.len() < 2 {
                continue;
            }
            let mut complete: Vec<&str> = run
                .iter()
                .filter(|t| is_complete(t))
                .map(|t| t.name.as_str())
                .collect();
            complete.sort_unstable();
            let Some(kept) = complete.first().map(|s| s.to_string()) else {
                let mut names: Vec<&str> = run.iter().map(|t| t.name.as_str()).collect();
                names.sort_unstable();
                return Err(ConvertError::Unsupported {
                    path: path.to_path_buf(),
                    why: format!(
                        "tensors {names:?} share a storage but none covers all of it; the Hub's converter refuses this too (use --no-dedup to write each as its own copy)"
                    ),
                });
            };
            let mut removed: Vec<String> = run
                .iter()
                .map(|t| t.name.clone())
                .filter(|n| *n != kept)
                .collect();
            removed.sort_unstable();
            groups.push(SharedGroup { kept, removed });
        }
    }
    Ok(groups)
}

/// `_filter_shared_not_shared`: sort by (start, stop, name) and start a new run whenever a
/// tensor begins at or after the previous tensor's stop.
fn overlapping_runs<'t>(members: &[&'t TensorRef]) -> Vec<Vec<&'t TensorRef>> {
    let mut areas: Vec<(u64, u64, &str, &TensorRef)> = members
        .iter()
        .map(|t| {
            let (start, stop) = area(t);
            (start, stop, t.name.as_str(), *t)
        })
        .collect();
    areas.sort_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
    let mut runs: Vec<Vec<&TensorRef>> = Vec::new();
    let mut last_stop = 0;
    for (i, (start, stop, _, t)) in areas.into_iter().enumerate() {
        match runs.last_mut() {
            Some(run) if i > 0 && start < last_stop => run.push(t),
            _ => runs.push(vec![t]),
        }
        last_stop = stop;
    }
    runs
}

/// C-contiguous: each stride equals the product of the sizes after it (ignoring size-1
/// dimensions, whose stride never matters), so the bytes are one run.
pub fn is_contiguous(t: &TensorRef) -> bool {
    let mut expected = 1u64;
    for (&d, &s) in t.shape.iter().zip(&t.strides).rev() {
        if d != 1 && s != expected {
            return false;
        }
        expected = expected.saturating_mul(d);
    }
    true
}
