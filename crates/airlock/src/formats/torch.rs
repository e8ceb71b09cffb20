//! PyTorch checkpoints: the storage vocabulary shared by the scanner and the converter, and
//! the checks specific to torch's legacy (non-zip) format.
//!
//! Legacy layout (torch `_legacy_load`): five pickles — magic number, protocol version,
//! sys_info, the main object (persistent ids are `('storage', type, key, location, numel,
//! view_metadata)`), the list of storage keys — then, for each key in that list, an int64
//! element count and the raw bytes.

use crate::ctx::Ctx;
use crate::hash::HashMap;
use crate::pickle::machine::Outcome;
use crate::pickle::value::Value;
use crate::report::Finding;
use crate::rules::Rule;

/// `torch.serialization.MAGIC_NUMBER`.
pub const LEGACY_MAGIC: i128 = 0x1950a86a20f9469cfc6c;
/// Pickles before the raw storage bytes in a legacy file.
pub const LEGACY_PICKLES: usize = 5;

pub use crate::pickle::persistent::{
    STORAGE_TYPES, StorageRef, StorageType, storage_ref, storage_refs, storage_type,
    take_storage_refs,
};

/// True when the first pickle of a stream evaluates to torch's magic number.
pub fn is_legacy_magic(first: &Outcome<'_>) -> bool {
    first.stopped
        && first.root.is_some_and(|root| {
            // The magic number does not fit in an i64, so only a long node can hold it.
            matches!(root, Value::Node(_)) && first.arena.int_of(root) == Some(LEGACY_MAGIC)
        })
}

/// A legacy file (its first pickle is torch's magic number) that ends after `found` of its
/// five pickles: `torch.load` fails reading the next one, and the storages, which would
/// follow, were never seen. Reported as truncated (incomplete), never safe.
pub fn report_short_legacy_header(ctx: &mut Ctx, found: usize) {
    ctx.note(format!(
        "legacy PyTorch header with {found} of {LEGACY_PICKLES} pickles"
    ));
    ctx.report(Finding::new(
        Rule::Truncated,
        format!(
            "a legacy PyTorch file ends after {found} of its {LEGACY_PICKLES} pickles; torch.load refuses it and its storages are missing"
        ),
    ));
}

/// Checks the raw storage section of a legacy file: for each key of the fifth pickle, an
/// int64 count and that many elements of the storage's type, ending exactly at the end.
pub fn check_legacy_storages(ctx: &mut Ctx, data: &[u8], start: usize, pickles: &[Outcome<'_>]) {
    let [_, _, _, main, keys] = pickles else {
        return;
    };
    let refs = storage_refs(main);
    // First reference per key, looked up once per listed key (a hostile file may list a
    // million of each).
    let mut by_key: HashMap<&str, &StorageRef> = HashMap::default();
    for r in &refs {
        by_key.entry(r.key.as_str()).or_insert(r);
    }
    let Some(key_list) = keys.root.and_then(|root| keys.arena.seq_of(root)) else {
        ctx.report(Finding::new(
            Rule::TorchLayout,
            "the fifth pickle of a legacy file is not a list of storage keys",
        ));
        return;
    };
    let mut pos = start as u64;
    for key in key_list {
        let Some(key) = keys.arena.str_of(*key) else {
            continue;
        };
        let Some(storage) = by_key.get(key).copied() else {
            ctx.report(Finding::new(
                Rule::TorchMissingStorage,
                format!("storage key `{key}` is listed but never referenced"),
            ));
            return;
        };
        let count = usize::try_from(pos)
            .ok()
            .and_then(|at| crate::bytes::ByteReader::new(data).at(at).ok())
            .and_then(|mut r| r.read_u64_le().ok());
        let Some(count) = count else {
            ctx.report(
                Finding::new(Rule::Truncated, format!("storage `{key}` is cut off")).at(pos),
            );
            return;
        };
        if count != storage.numel {
            ctx.report(
                Finding::new(
                    Rule::TorchLayout,
                    format!("storage `{key}` holds {count} elements but the pickle declares {}; torch refuses it", storage.numel),
                )
                .at(pos),
            );
        }
        let bytes = count.checked_mul(storage.storage_type.element_size);
        match bytes
            .and_then(|b| b.checked_add(pos + 8))
            .filter(|end| *end <= data.len() as u64)
        {
            Some(end) => pos = end,
            None => {
                // The file ends inside the storage (or its count is past any file): what the
                // count claims is not there to read.
                ctx.report(
                    Finding::new(
                        Rule::Truncated,
                        format!(
                            "storage `{key}` declares {count} elements, more than the file holds"
                        ),
                    )
                    .at(pos),
                );
                return;
            }
        }
    }
    if pos != data.len() as u64 {
        let extra = data.len() as u64 - pos;
        ctx.report(
            Finding::new(
                Rule::TorchLayout,
                format!("{extra} bytes follow the last storage of a legacy PyTorch file"),
            )
            .at(pos),
        );
    }
    ctx.note(format!("{} storages", key_list.len()));
}

#[cfg(test)]
mod tests {
    use crate::{Rule, Scanner, Verdict};

    /// A legacy file cut after any of its pickles, or inside its storages, is truncated.
    #[test]
    fn legacy_files_cut_short_are_truncated() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/benign/torch_legacy.pt"
        );
        let data = std::fs::read(path).unwrap();
        let scanner = Scanner::default();
        assert_eq!(scanner.scan_bytes("m.pt", &data).verdict, Verdict::Safe);
        // 15: after the magic number's pickle (issue 20: it was safe); the rest: storages.
        for cut in [15, 21, 137, data.len() - 1] {
            let report = scanner.scan_bytes("m.pt", &data[..cut]);
            assert_eq!(report.verdict, Verdict::Unscannable, "cut at {cut}");
            assert!(
                report.findings.iter().any(|f| f.rule == Rule::Truncated),
                "cut at {cut}: {:?}",
                report.findings
            );
        }
    }
}
