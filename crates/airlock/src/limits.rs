//! Hard limits that bound the time and memory Airlock spends on hostile input.
//!
//! Every tunable limit is a named field of [`Limits`] with a documented default; every fixed
//! format cap is a documented constant in [`caps`]. `docs/limits.md` is generated from this
//! file (`scripts/gen-limits-doc.py`). Reaching a
//! limit is reported as a finding that marks the file incomplete (never safe), never as a hang
//! or an out-of-memory.

use std::time::Duration;

/// Limits applied to one top-level file and everything nested inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Opcodes executed per pickle stream.
    pub max_opcodes: u64,
    /// Depth of the pickle stack (values plus marks).
    pub max_stack_depth: usize,
    /// Entries in one pickle's memo.
    pub max_memo_entries: usize,
    /// Values the symbolic machine may create per pickle (bounds its memory).
    pub max_values: usize,
    /// Depth of nested containers: archives in archives, pickles in pickles.
    pub max_nesting_depth: usize,
    /// Members opened across all archives of one file.
    pub max_members: u64,
    /// Bytes produced by decompression across the whole file, whatever its size (the
    /// effective budget is usually smaller: see [`Limits::inflated_budget`]).
    pub max_inflated_bytes: u64,
    /// Floor of the per-file decompression budget ([`Limits::inflated_budget`]): a small
    /// file may always inflate this much in total.
    pub min_inflated_budget: u64,
    /// Decompressed bytes one file may hold in memory at once, all nesting levels together;
    /// output beyond it goes to an unlinked temporary file that is mapped
    /// ([`crate::containers::inflated`]).
    pub max_inflated_in_memory: u64,
    /// Largest ratio of inflated to compressed bytes for one member (bomb detection);
    /// only checked once a member inflates past 1 MiB.
    pub max_compression_ratio: u64,
    /// Files larger than this are not scanned (reported unscannable). `None`: no limit.
    pub max_file_size: Option<u64>,
    /// Wall-clock time for one top-level file.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_opcodes: 200_000_000,
            max_stack_depth: 100_000,
            max_memo_entries: 10_000_000,
            max_values: 50_000_000,
            max_nesting_depth: 8,
            max_members: 100_000,
            max_inflated_bytes: 16 << 30,
            min_inflated_budget: 64 << 20,
            max_inflated_in_memory: 16 << 20,
            max_compression_ratio: 1_000,
            max_file_size: None,
            timeout: Duration::from_secs(300),
        }
    }
}

impl Limits {
    /// Bytes that decompression may produce in total for a top-level file of `file_size`
    /// bytes, across every nesting level: `max_compression_ratio` times the file's size, at
    /// least `min_inflated_budget`, at most `max_inflated_bytes`.
    ///
    /// The ratio limit alone is per member, so a stream inside a stream (a 268-byte gzip of a
    /// gzip) multiplies it at each level; charging every level against the top-level file's
    /// size stops that at the same ratio a single level gets. The floor lets small files
    /// that compress well (a few KiB of zeros) through.
    pub fn inflated_budget(&self, file_size: u64) -> u64 {
        file_size
            .saturating_mul(self.max_compression_ratio)
            .max(self.min_inflated_budget)
            .min(self.max_inflated_bytes)
    }
}

/// Fixed format caps: bounds that are part of a format's definition (ggml's, numpy's, the
/// safetensors reader's) or that Airlock sets on what it keeps while reading one structure.
/// Unlike [`Limits`] they are not tunable: a file past one is malformed or not fully read,
/// whatever the user asks. Formats use them from here, so this module and `docs/limits.md`
/// (generated from it by `scripts/gen-limits-doc.py`) are the one list. Each is named by the
/// format it bounds, with its unit and why it has the value it has.
///
/// Not yet moved here (each still a local `const` beside its reader, listed in
/// `docs/limits.md` by hand where a user meets it): the pickle engine's internal caps
/// (`pickle/`), the zip reader's (`containers/zip.rs`, `containers/zip_image.rs`), ONNX's
/// external-data file cap, the converter's and the GGUF template evaluator's.
pub mod caps {
    /// GGUF (`formats/gguf`).
    pub mod gguf {
        /// Bytes in one GGUF string: ggml's `GGUF_MAX_STRING_LENGTH`-style 1 GiB cap; a longer
        /// declared length is out of bounds (GGUF002), not a cut file.
        pub const MAX_STRING_LEN: u64 = 1 << 30;
        /// Elements in one metadata array: ggml's 1 Gi cap (GGUF002 past it).
        pub const MAX_ARRAY_LEN: u64 = 1 << 30;
        /// Bytes in a tensor name, NUL included: `GGML_MAX_NAME`; names must be shorter.
        pub const MAX_NAME: usize = 64;
        /// Dimensions of one tensor: `GGML_MAX_DIMS`.
        pub const MAX_DIMS: u32 = 4;
        /// Metadata entries declared (count): Airlock's own cap (real models have tens); it
        /// bounds the memory spent on keys (GGUF017 past it).
        pub const MAX_KV: u64 = 1_000_000;
        /// Tensors declared (count): Airlock's own cap (real models have at most tens of
        /// thousands); it bounds the memory spent on names (GGUF017 past it).
        pub const MAX_TENSORS: u64 = 1_000_000;
        /// Bytes of one chat template analysed: longer templates are reported, not analysed.
        pub const MAX_TEMPLATE_LEN: usize = 4 << 20;
    }

    /// Flax msgpack checkpoints (`formats/flax.rs`).
    pub mod flax {
        /// Nesting of msgpack maps and arrays read for identification (levels); deeper data
        /// is not identified as Flax (routed as before). Flax state dicts nest a few levels.
        pub const MAX_DEPTH: usize = 64;
    }

    /// CPython `marshal` code objects in Keras Lambda layers (`formats/marshal.rs`).
    pub mod marshal {
        /// Nesting of marshal objects (levels): code objects nest a few levels per function.
        pub const MAX_DEPTH: usize = 64;
        /// Objects read in one payload (count): bounds time on a hostile payload.
        pub const MAX_OBJECTS: usize = 200_000;
        /// Characters kept of one string constant for the report.
        pub const MAX_KEPT_STRING: usize = 200;
        /// Names and strings collected from one code object's constants (count, all levels).
        pub const MAX_COLLECTED: usize = 10_000;
        /// String constants kept for the report (count).
        pub const MAX_KEPT_STRINGS: usize = 256;
    }

    /// HDF5 (`formats/hdf5.rs`, Keras `.h5`).
    pub mod hdf5 {
        /// Object header continuation chunks followed per object (count): real headers have
        /// one or two; the cap also stops chunk cycles.
        pub const MAX_CHUNKS: usize = 256;
        /// Header messages read per object (count).
        pub const MAX_MESSAGES: usize = 65_536;
        /// Names read from one dense-storage name index (count): what an object keeps is
        /// bounded by this, not by what its B-tree declares (children may share one leaf).
        pub const MAX_NAMES: usize = 65_536;
        /// Distinct objects visited in the group walk (count).
        pub const MAX_OBJECTS: usize = 100_000;
        /// Depth of nested groups walked (levels).
        pub const MAX_GROUP_DEPTH: usize = 32;
        /// Links gathered over the whole walk (count): groups may share one symbol table or
        /// name index, so work is bounded by links read, not by distinct objects.
        pub const MAX_LINKS: usize = 1_000_000;
    }

    /// safetensors (`formats/safetensors.rs`).
    pub mod safetensors {
        /// Bytes of the JSON header: the reference reader's `MAX_HEADER_SIZE`.
        pub const MAX_HEADER_SIZE: u64 = 100_000_000;
    }

    /// NumPy `.npy` (`formats/numpy.rs`).
    pub mod numpy {
        /// Characters of the header: numpy's `_MAX_HEADER_SIZE`; longer headers are refused,
        /// as numpy refuses them.
        pub const MAX_HEADER_CHARS: usize = 10_000;
        /// Nesting of the header literal (levels): numpy headers nest a few levels at most.
        pub const MAX_DEPTH: usize = 32;
    }

    /// ONNX (`formats/onnx/`).
    pub mod onnx {
        /// Nesting of subgraphs (`If`/`Loop`/`Scan` bodies) walked (levels).
        pub const MAX_GRAPH_DEPTH: usize = 32;
        /// Distinct external data files looked at per model (count; `onnx/folder.rs`); a
        /// model naming more is reported.
        pub const MAX_EXTERNAL_FILES: usize = 4096;
    }

    /// Keras configurations (`formats/keras.rs`).
    pub mod keras {
        /// Depth of the JSON configuration walked (levels): deeper than serde_json's own
        /// limit, so never reached on parsed input; a guard all the same.
        pub const MAX_WALK_DEPTH: usize = 256;
    }

    /// TorchScript archives (`formats/torchscript.rs`, `formats/torchscript/verify.rs`).
    pub mod torchscript {
        /// Bytes of one code file searched (ARC007 past it, the rest not searched).
        pub const MAX_CODE_BYTES: usize = 4 << 20;
        /// Bytes of all code files of one archive searched.
        pub const MAX_TOTAL_CODE_BYTES: usize = 64 << 20;
        /// Hits reported per code file (count); the rest are counted.
        pub const MAX_HITS_PER_FILE: usize = 50;
        /// Verifier issues listed per archive (count); the rest are counted.
        pub const MAX_ISSUES: usize = 20;
        /// Distinct `__torch__` definitions, and distinct references, kept per archive
        /// (count): the verifier's memory stays in the tens of MB. Past either, the archive
        /// is not verified (PT008).
        pub const MAX_NAMES: usize = 100_000;
        /// Tokens lexed per code file (count; 32 bytes each, at most 64 MB at a time); a file
        /// with more is not verified (PT008).
        pub const MAX_TOKENS: usize = 2_000_000;
    }

    /// Compressed streams (`containers/compressed.rs`).
    pub mod compressed {
        /// LZMA/LZMA2 dictionary a stream may ask for (KiB): 64 MiB, what `xz -9`/`-9e` and
        /// 7-Zip's "ultra" level use. `lzma_rust2` allocates and zero-fills the whole
        /// dictionary before the first byte (a 256 MiB one cost 292 MB of RSS for a 156 KB
        /// bomb), so the dictionary is the decoder's memory whatever the stream produces;
        /// larger ones are refused (ARC007, unscannable) rather than decoded.
        pub const MAX_LZMA_DICT_KIB: u32 = 64 * 1024;
        /// zstd window a frame may ask for (KiB): 64 MiB (levels up to 19 use at most 8 MiB,
        /// `--ultra -21` 64 MiB). `ruzstd` keeps a whole window of output before it hands any
        /// out, so the window is the decoder's memory (a 37 KB frame with `--long=31` cost
        /// 1 GB of RSS); larger windows are refused (ARC007). libzstd (Python's `zstandard`)
        /// refuses windows over 128 MiB by default too.
        pub const MAX_ZSTD_WINDOW_KIB: u64 = 64 * 1024;
    }

    /// Zip archives (`containers/zip.rs`, `containers/zip_image.rs`).
    pub mod zip {
        /// Bytes of the archive comment: the format's own maximum (a 16-bit length), so the
        /// end-of-central-directory record is searched within this many bytes of the end.
        pub const MAX_COMMENT: usize = 0xFFFF;
        /// Directory entries reserved before parsing (count); the vector grows past it as
        /// needed, so a hostile entry count costs no memory up front.
        pub const MAX_RESERVED_ENTRIES: u64 = 1 << 16;
        /// Bytes of a member whose CRC-32 is checked (larger ones only when an encryption
        /// flag makes it decide whether the content is readable). A wrong CRC changes nothing
        /// for torch (which never checks it) and makes Python's `zipfile` refuse the member;
        /// the content is scanned either way, and checksumming a multi-gigabyte member would
        /// cost its whole size in time and memory.
        pub const MAX_CRC_CHECKED: usize = 8 << 20;
        /// Bytes a zip image may hold (metadata and non-storage members); a zip that needs
        /// more is mapped instead, so a huge non-storage member is never copied into memory.
        pub const MAX_IMAGE_BYTES: u64 = 256 << 20;
    }

    /// The pickle engine (`pickle/`).
    pub mod pickle {
        /// Children kept per container (count); beyond this a container only counts its
        /// items, so memory is bounded whatever a pickle builds.
        pub const MAX_KEPT_CHILDREN: usize = 1 << 20;
        /// Gadget imports deferred per pickle (count); past this many, a gadget is rated by
        /// name as any other import (bounded memory and lookup time against a pickle
        /// importing it a million times).
        pub const MAX_PENDING_GADGETS: usize = 256;
        /// Entries reserved up front for any one vector of the machine (count); past it they
        /// grow as usual, so a declared size costs no memory before it is used.
        pub const MAX_RESERVED: usize = 1 << 20;
        /// Memo cells the fast pass reserves at its first PUT (count; 16 MiB of cells).
        pub const MAX_FIRST_MEMO_CAPACITY: usize = 1 << 20;
        /// Instructions listed per pickle by the disassembler (count).
        pub const MAX_LISTED: usize = 1_000_000;
    }

    /// The GGUF chat-template evaluator (`formats/gguf/template/`).
    pub mod gguf_template {
        /// Bytes of the longest folded string or list; anything longer becomes `Opaque` (or
        /// `Data`).
        pub const MAX_FOLD: usize = 4096;
        /// Bytes of the largest list built by `+` or `*` (see `Av::weight`).
        pub const MAX_REPEAT_WEIGHT: usize = 1 << 20;
        /// Length of a known list whose loop is unrolled (items).
        pub const MAX_UNROLL: usize = 64;
        /// Evaluation steps (expressions and statements visited, variables copied) per
        /// template; a template that needs more is reported as not analysed.
        pub const MAX_STEPS: usize = 1_000_000;
        /// Bytes of a variable's value past which it is replaced by its summary
        /// (`Data`/`Opaque`).
        pub const MAX_VALUE_WEIGHT: usize = 64 * 1024;
        /// Nested macro calls evaluated with their arguments (levels).
        pub const MAX_MACRO_DEPTH: usize = 6;
        /// Hazards reported per template (count).
        pub const MAX_HAZARDS: usize = 32;
    }

    /// The torch-to-safetensors converter (`convert/`).
    pub mod convert {
        /// Nesting of dicts `--flatten` follows (levels).
        pub const MAX_NESTING: usize = 64;
        /// Rebuild calls that may wrap each other (levels: parameter of from_type of
        /// tensor ...).
        pub const MAX_WRAPPING: usize = 8;
        /// Bytes of the largest pickle inflated into memory from a deflated `data.pkl`.
        pub const MAX_INFLATED_PICKLE: u64 = 1 << 30;
        /// Bytes of the largest storage span read into memory at once to materialise a
        /// strided view; a larger view is copied one contiguous run at a time.
        pub const MAX_GATHER_SPAN: u64 = 32 << 20;
    }

    /// Import-name aliases (`policy/aliases.rs`).
    pub mod aliases {
        /// Substitutions one name may go through (count: `a.b` → `c`, then `c.d` → `e` ...).
        pub const MAX_HOPS: usize = 8;
    }

    /// The scan context (`ctx.rs`).
    pub mod ctx {
        /// Bytes of text one file's parsers may hand on to the checks stage; what comes after
        /// is dropped (and counted), so memory stays bounded whatever a file holds.
        pub const MAX_HANDED_BYTES: usize = 16 << 20;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inflated_budget_follows_the_file_size_between_floor_and_cap() {
        let limits = Limits::default();
        assert_eq!(limits.inflated_budget(268), 64 << 20);
        assert_eq!(limits.inflated_budget(2 << 20), 2000 << 20);
        assert_eq!(limits.inflated_budget(1 << 40), 16 << 30);
    }

    /// `docs/limits.md` is generated from this file (`scripts/gen-limits-doc.py`, whose
    /// `--check` runs in `.ci/run`); this catches a cap added without regenerating it.
    #[test]
    fn every_fixed_cap_is_listed_in_docs_limits() {
        let source = include_str!("limits.rs");
        let doc = include_str!("../../../docs/limits.md");
        let start = source.find("pub mod caps {").unwrap();
        let end = source.find("#[cfg(test)]").unwrap();
        let mut module = "";
        let mut listed = 0;
        for line in source[start..end].lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("pub mod ") {
                module = rest.trim_end_matches(" {");
            } else if let Some(rest) = line.strip_prefix("pub const ") {
                let name = rest.split(':').next().unwrap();
                let row = format!("| `caps::{module}::{name}` |");
                assert!(
                    doc.contains(&row),
                    "docs/limits.md lacks {row}: run scripts/gen-limits-doc.py"
                );
                listed += 1;
            }
        }
        assert!(
            listed >= 30,
            "only {listed} caps found: has the caps module's layout changed?"
        );
    }
}
