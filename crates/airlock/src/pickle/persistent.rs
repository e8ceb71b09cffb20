//! Torch's persistent ids as the pickle engine decodes them: the storage classes torch
//! pickles and the `('storage', type, key, location, numel)` ids that refer to them. They
//! live with the engine (the fast pass decodes them without values), not with the torch
//! format, so that the engine imports nothing from `formats`; `formats::torch` re-exports them.

use super::machine::Outcome;
use super::value::{Arena, Value};

/// A storage class and what its elements are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageType {
    /// Class name under `torch` (e.g. `FloatStorage`).
    pub class: &'static str,
    /// Bytes per element.
    pub element_size: u64,
    /// The safetensors dtype, if safetensors can hold it.
    pub safetensors: Option<&'static str>,
}

/// Typed storage classes torch pickles (`torch.<Class>`); `UntypedStorage` counts bytes.
pub const STORAGE_TYPES: &[StorageType] = &[
    StorageType {
        class: "DoubleStorage",
        element_size: 8,
        safetensors: Some("F64"),
    },
    StorageType {
        class: "FloatStorage",
        element_size: 4,
        safetensors: Some("F32"),
    },
    StorageType {
        class: "HalfStorage",
        element_size: 2,
        safetensors: Some("F16"),
    },
    StorageType {
        class: "BFloat16Storage",
        element_size: 2,
        safetensors: Some("BF16"),
    },
    StorageType {
        class: "LongStorage",
        element_size: 8,
        safetensors: Some("I64"),
    },
    StorageType {
        class: "IntStorage",
        element_size: 4,
        safetensors: Some("I32"),
    },
    StorageType {
        class: "ShortStorage",
        element_size: 2,
        safetensors: Some("I16"),
    },
    StorageType {
        class: "CharStorage",
        element_size: 1,
        safetensors: Some("I8"),
    },
    StorageType {
        class: "ByteStorage",
        element_size: 1,
        safetensors: Some("U8"),
    },
    StorageType {
        class: "BoolStorage",
        element_size: 1,
        safetensors: Some("BOOL"),
    },
    StorageType {
        class: "ComplexFloatStorage",
        element_size: 8,
        safetensors: Some("C64"),
    },
    StorageType {
        class: "ComplexDoubleStorage",
        element_size: 16,
        safetensors: None,
    },
    StorageType {
        class: "QInt8Storage",
        element_size: 1,
        safetensors: None,
    },
    StorageType {
        class: "QUInt8Storage",
        element_size: 1,
        safetensors: None,
    },
    StorageType {
        class: "QInt32Storage",
        element_size: 4,
        safetensors: None,
    },
    StorageType {
        class: "QUInt4x2Storage",
        element_size: 1,
        safetensors: None,
    },
    StorageType {
        class: "QUInt2x4Storage",
        element_size: 1,
        safetensors: None,
    },
    StorageType {
        class: "UntypedStorage",
        element_size: 1,
        safetensors: Some("U8"),
    },
];

/// Looks a storage class up by its global (`torch.FloatStorage`, also under `torch.cuda`;
/// torch ≥ 2 pickles untyped storages as `torch.storage.UntypedStorage`).
pub fn storage_type(module: &str, name: &str) -> Option<&'static StorageType> {
    let untyped = module == "torch.storage" && name == "UntypedStorage";
    if module != "torch" && module != "torch.cuda" && !untyped {
        return None;
    }
    STORAGE_TYPES.iter().find(|t| t.class == name)
}

/// A `('storage', type, key, location, numel, ...)` persistent id, decoded (the location,
/// a device name torch maps the storage to, is not needed to check it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageRef {
    pub storage_type: &'static StorageType,
    pub key: String,
    pub numel: u64,
}

/// Decodes a persistent id; `None` when it is not a well-formed storage reference.
pub fn storage_ref(arena: &Arena<'_>, pid: Value) -> Option<StorageRef> {
    let items = arena.seq_of(pid)?;
    if arena.str_of(*items.first()?)? != "storage" {
        return None;
    }
    let global = arena.global_of(*items.get(1)?)?;
    let storage_type = storage_type(&global.module, &global.name)?;
    let key = arena.str_of(*items.get(2)?)?.to_string();
    let numel = u64::try_from(arena.int_of(*items.get(4)?)?).ok()?;
    Some(StorageRef {
        storage_type,
        key,
        numel,
    })
}

/// Every well-formed storage reference a pickle's persistent loads made, in order, from the
/// full machine's values or the fast pass's decoding, whichever ran.
pub fn storage_refs(outcome: &Outcome<'_>) -> Vec<StorageRef> {
    let decoded = outcome
        .persistent_ids
        .iter()
        .filter_map(|(pid, _)| storage_ref(&outcome.arena, *pid));
    decoded.chain(outcome.storages.iter().cloned()).collect()
}

/// [`storage_refs`], moving the references the fast pass kept out of `outcome` instead of
/// copying them (a checkpoint has hundreds, each with its key).
pub fn take_storage_refs(outcome: &mut Outcome<'_>) -> Vec<StorageRef> {
    let mut refs: Vec<StorageRef> = outcome
        .persistent_ids
        .iter()
        .filter_map(|(pid, _)| storage_ref(&outcome.arena, *pid))
        .collect();
    if refs.is_empty() {
        return std::mem::take(&mut outcome.storages);
    }
    refs.append(&mut outcome.storages);
    refs
}
