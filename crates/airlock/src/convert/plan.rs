//! What will be written: tensor names, dtypes, shapes and sizes in output order, the
//! exact aliases removed, and the `__metadata__`.
//!
//! A name is removed only when it is an *exact alias* of a name that is kept: same storage,
//! dtype, storage offset, shape and strides, so `torch.load` gives both names equal values
//! (tied weights). The lexicographically first name of each such group is kept and the others
//! are recorded as `{removed: kept}` in the metadata, next to `"format": "pt"`, as the Hugging
//! Face converter records them (so `transformers` reties them). Every other tensor that
//! shares a storage (a transpose, a slice, an overlapping or expanding view) is written as its
//! own tensor, gathered in row-major order from the storage.
//!
//! This departs on purpose from the Hub's converter (`safetensors.torch._remove_duplicate_names`),
//! which drops every tensor whose bytes overlap one that covers the whole storage, different
//! views included: a transposed or sliced view then disappears from its output, and a loader
//! that reties `{removed: kept}` gets the wrong values for it.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use safetensors::Dtype;

use super::interpret::{self, StateDict, TensorRef};
use super::layout::{DATA_ALIGNMENT, MAX_GATHER_SPAN, is_contiguous, view_span};
use super::source::{Checkpoint, Source};
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

/// Names that are exact aliases of each other (see the module docs): the one written and the
/// ones removed, recorded as `{removed: kept}` in the metadata.
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
        shared = shared_groups(&tensors);
        for group in &shared {
            for name in &group.removed {
                // A name the metadata already holds (`format`) could not be recorded as an
                // alias: it is written as its own copy instead of being lost.
                if !metadata.contains_key(name) {
                    metadata.insert(name.clone(), group.kept.clone());
                    removed.insert(name.clone());
                }
            }
        }
    }
    for group in &mut shared {
        group.removed.retain(|name| removed.contains(name));
    }
    shared.retain(|group| !group.removed.is_empty());
    let mut planned = Vec::with_capacity(tensors.len());
    for t in tensors.into_iter().filter(|t| !removed.contains(&t.name)) {
        check_gather(checkpoint, &t, MAX_GATHER_SPAN)?;
        planned.push(planned_tensor(&checkpoint.path, t)?);
    }
    check_amplification(checkpoint, &planned, options.scanner().limits())?;
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

/// A strided view of a deflated record is gathered in memory when it spans at most
/// `max_span` ([`MAX_GATHER_SPAN`]) bytes of its storage. A larger one would have to be inflated again
/// from the record's start for every run of it (time quadratic in the storage size), so it
/// is refused; `torch.save` never deflates records, only a re-zipped checkpoint has them.
pub(crate) fn check_gather(
    checkpoint: &Checkpoint,
    t: &TensorRef,
    max_span: u64,
) -> Result<(), ConvertError> {
    let deflated = checkpoint
        .record(&t.storage)
        .is_some_and(|r| matches!(r.source, Source::Deflated { .. }));
    let span = view_span(t).map_or(u64::MAX, |(start, end)| end - start);
    if deflated && !is_contiguous(t) && t.numel() > 0 && span > max_span {
        return Err(unsupported(
            &checkpoint.path,
            &t.name,
            &format!(
                "a strided view spanning {span} bytes of a deflated record (over {max_span}); re-zip the checkpoint with stored records"
            ),
        ));
    }
    Ok(())
}

/// Views that read storage bytes more than once (an `expand`, an overlapping `as_strided`,
/// several different views of one storage) are written out whole, so the output can be far
/// larger than the checkpoint: a few bytes of storage expanded to terabytes. The bytes
/// written beyond the storage bytes the tensors read are held to the scanner's
/// decompression limits: at most `max_inflated_bytes`, and at most `max_compression_ratio`
/// times the storage bytes once past 1 MiB (the scanner's bomb rule for archive members).
fn check_amplification(
    checkpoint: &Checkpoint,
    planned: &[PlannedTensor],
    limits: &crate::Limits,
) -> Result<(), ConvertError> {
    let mut storages: BTreeMap<&str, u64> = BTreeMap::new();
    for t in planned {
        storages.insert(t.source.storage.as_str(), t.source.storage_len);
    }
    let stored: u64 = storages.values().sum();
    let written: u64 = planned.iter().map(|t| t.nbytes).sum();
    let extra = written.saturating_sub(stored);
    let over_ratio = written > stored.saturating_mul(limits.max_compression_ratio);
    if extra > AMPLIFICATION_FLOOR && (extra > limits.max_inflated_bytes || over_ratio) {
        return Err(ConvertError::Unsupported {
            path: checkpoint.path.clone(),
            why: format!(
                "its views would write {written} bytes from {stored} bytes of storage, over the limits (ratio {}, {} bytes)",
                limits.max_compression_ratio, limits.max_inflated_bytes
            ),
        });
    }
    Ok(())
}

/// Bytes of amplification always allowed (the scanner's ratio check starts at 1 MiB too).
const AMPLIFICATION_FLOOR: u64 = 1 << 20;

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

/// What makes two tensors the same tensor: one storage read through one view. Two names
/// with equal keys load as the same values; any other pair sharing a storage (a transpose, a
/// slice, an `as_strided`, an expansion) holds different values and is written twice.
type AliasKey<'t> = (&'t str, Dtype, u64, &'t [u64], &'t [u64]);

fn alias_key(t: &TensorRef) -> AliasKey<'_> {
    (
        t.storage.as_str(),
        t.dtype,
        t.offset,
        t.shape.as_slice(),
        t.strides.as_slice(),
    )
}

/// Groups of exact aliases: names whose tensors have the same storage, dtype, storage offset,
/// shape and strides. In each group of two or more the lexicographically first name is kept
/// (the one the Hub's converter keeps for tied weights) and the others are removed. Tensors
/// of an empty storage hold no bytes and are left alone.
pub fn shared_groups(tensors: &[TensorRef]) -> Vec<SharedGroup> {
    let mut classes: Vec<Vec<&str>> = Vec::new();
    let mut index: BTreeMap<AliasKey<'_>, usize> = BTreeMap::new();
    for t in tensors.iter().filter(|t| t.storage_len != 0) {
        let slot = *index.entry(alias_key(t)).or_insert_with(|| {
            classes.push(Vec::new());
            classes.len() - 1
        });
        if let Some(names) = classes.get_mut(slot) {
            names.push(t.name.as_str());
        }
    }
    let mut groups: Vec<SharedGroup> = classes
        .into_iter()
        .filter(|names| names.len() > 1)
        .map(|mut names| {
            names.sort_unstable();
            SharedGroup {
                kept: names[0].to_string(),
                removed: names[1..].iter().map(|n| n.to_string()).collect(),
            }
        })
        .collect();
    groups.sort_by(|a, b| a.kept.cmp(&b.kept));
    groups
}
