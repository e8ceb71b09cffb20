//! The catalogue of findings: every rule Airlock can report, with its stable code.
//!
//! A rule's code never changes meaning once released; a retired rule keeps its code unused.
//! Each rule has a documentation page at `docs/rules/<CODE>.md` (a test checks this) saying
//! what it detects, why it matters, an example and references.
//!
//! Codes are grouped by prefix: `PKL` the pickle engine, `PT` PyTorch containers, `ARC`
//! archives and compression, `NPY` NumPy, `JBL` joblib, `ST` safetensors, `GGUF` GGUF,
//! `KER` Keras and HDF5, `TF` TensorFlow, `ONNX` ONNX, `EXE` executables and other
//! identified formats, `GEN` anything about reading the file.
//!
//! Malformed versus unscannable (the decision, also in `docs/rules/README.md`):
//! - a file whose bytes the format's reference reader rejects, though Airlock read them all, is
//!   *malformed*: its rule is flagged, `Suspicious`, or `Dangerous` when the malformation
//!   targets readers (a length or count over the reader's cap, overlapping offsets, offsets
//!   outside the file), and `incomplete: false`;
//! - `incomplete: true` ([`Rule::marks_incomplete`]) is kept for "Airlock could not read all of
//!   it": encrypted, truncated ([`Rule::Truncated`] or the format's own rule), a limit or the
//!   time limit reached, a feature Airlock does not parse, a read error.
//!
//! The verdict combines both: any dangerous finding makes the file dangerous, else any
//! incomplete finding makes it unscannable (never safe), else suspicious or safe.

use serde::{Serialize, Serializer};

/// How bad a finding is. Ordered: `Info < Suspicious < Dangerous`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing, never a reason to fail.
    Info,
    /// Outside what a legitimate artifact needs, but not known to be harmful.
    Suspicious,
    /// Known to run code, touch the host, or evade scanners.
    Dangerous,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Suspicious => "suspicious",
            Severity::Dangerous => "dangerous",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! rules {
    ($(
        $(#[$doc:meta])*
        $variant:ident = ($code:literal, $slug:literal, $severity:ident, incomplete: $incomplete:literal, $summary:literal);
    )*) => {
        /// A kind of finding. See the module docs.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Rule {
            $($(#[$doc])* $variant,)*
        }

        impl Rule {
            /// Every rule, in code order.
            pub const ALL: &'static [Rule] = &[$(Rule::$variant,)*];

            /// The stable code, e.g. `PKL001`.
            pub fn code(self) -> &'static str {
                match self { $(Rule::$variant => $code,)* }
            }

            /// A short kebab-case name, e.g. `dangerous-import`.
            pub fn name(self) -> &'static str {
                match self { $(Rule::$variant => $slug,)* }
            }

            /// The severity a finding of this rule has unless the reporter says otherwise.
            pub fn default_severity(self) -> Severity {
                match self { $(Rule::$variant => Severity::$severity,)* }
            }

            /// True when a finding of this rule means part of the file was not read, so the
            /// file can never be reported safe.
            pub fn marks_incomplete(self) -> bool {
                match self { $(Rule::$variant => $incomplete,)* }
            }

            /// One sentence saying what the rule detects.
            pub fn summary(self) -> &'static str {
                match self { $(Rule::$variant => $summary,)* }
            }

            /// Looks a rule up by its code or its name.
            pub fn from_code(code: &str) -> Option<Rule> {
                Rule::ALL.iter().copied().find(|r| r.code().eq_ignore_ascii_case(code) || r.name() == code)
            }
        }
    };
}

rules! {
    // ---- Pickle engine -------------------------------------------------------------------
    DangerousImport = ("PKL001", "dangerous-import", Dangerous, incomplete: false,
        "The pickle imports a global known to run code, touch the host, or resolve arbitrary names.");
    UnknownImport = ("PKL002", "unknown-import", Suspicious, incomplete: false,
        "The pickle imports a global that no enabled allowlist profile permits.");
    DunderName = ("PKL003", "dunder-name", Dangerous, incomplete: false,
        "An imported name has a dunder component (`__globals__`, `__builtins__`, ...), reaching interpreter internals.");
    DynamicGlobal = ("PKL004", "dynamic-global", Dangerous, incomplete: false,
        "A STACK_GLOBAL takes a module or name that is not a string literal, so the import is computed at load time.");
    NestedPickle = ("PKL005", "nested-pickle", Dangerous, incomplete: false,
        "Serialized bytes are passed to a loader (pickle.loads, torch.load, marshal.loads, ...) inside the pickle.");
    BuildOnNonClass = ("PKL006", "build-on-non-class", Dangerous, incomplete: false,
        "BUILD sets state on a module, function or other imported object that is not an instance, mutating what later imports return.");
    MutationTarget = ("PKL007", "mutation-target", Suspicious, incomplete: false,
        "SETITEM(S) or APPEND(S) is applied to an object that is not a dict or list.");
    PersistentId = ("PKL008", "persistent-id", Suspicious, incomplete: false,
        "A persistent id is not a ('storage', ...) tuple, so the loader's persistent_load is asked for something else.");
    DataAfterStop = ("PKL009", "data-after-stop", Suspicious, incomplete: false,
        "Bytes follow the final STOP opcode that are neither another pickle nor data the loader is known to read.");
    RepeatedProto = ("PKL010", "repeated-proto", Suspicious, incomplete: false,
        "A PROTO opcode appears after the start of a pickle.");
    MemoExpansion = ("PKL011", "memo-expansion", Suspicious, incomplete: false,
        "Memo references build a structure far larger than the pickle itself (\"billion laughs\").");
    FrameViolation = ("PKL012", "frame-violation", Dangerous, incomplete: false,
        "An opcode crosses a FRAME boundary or a frame is opened inside another, so readers disagree on what the bytes mean.");
    MalformedPickle = ("PKL013", "malformed-pickle", Suspicious, incomplete: false,
        "The pickle stops being valid at this offset; the loader would raise here, after running everything before it.");
    LimitReached = ("PKL014", "limit-reached", Suspicious, incomplete: true,
        "A scanning limit (opcodes, stack, memo, size, time) was reached before the end of the pickle.");
    ExtensionCode = ("PKL015", "extension-code", Suspicious, incomplete: false,
        "EXT1/EXT2/EXT4 resolve a global through the copyreg extension registry instead of by name.");
    ScannerImport = ("PKL016", "scanner-import", Dangerous, incomplete: false,
        "The pickle imports a model scanner (picklescan, modelscan, fickling, modelaudit, ...): an attack on the scanner itself.");

    // ---- PyTorch containers --------------------------------------------------------------
    TorchLegacyMagic = ("PT001", "legacy-magic", Dangerous, incomplete: false,
        "A legacy PyTorch file whose magic number is not a plain literal: torch runs the first pickle before checking it.");
    TorchStorageSize = ("PT002", "storage-size", Dangerous, incomplete: false,
        "A storage declares more elements than its data record holds (out-of-bounds tensor, CVE-2026-24747).");
    TorchMissingStorage = ("PT003", "missing-storage", Suspicious, incomplete: false,
        "A storage referenced by the pickle has no data record in the archive.");
    TorchScript = ("PT004", "torchscript", Info, incomplete: false,
        "The archive is a TorchScript program: torch.load hands it to torch.jit.load, which compiles and runs its code (verified by PT008).");
    TorchLayout = ("PT005", "torch-layout", Suspicious, incomplete: false,
        "A PyTorch archive departs from the layout torch.save writes (several root folders, missing data.pkl, unexpected records).");
    TorchScriptHostCall = ("PT006", "torchscript-host-call", Dangerous, incomplete: false,
        "A TorchScript code file calls `open`, `os`, `subprocess`, `builtins`, `eval` or `exec`, which reach the host when torch.jit.load runs it.");
    TorchScriptCustomOp = ("PT007", "torchscript-custom-op", Suspicious, incomplete: false,
        "A TorchScript code file calls a `torch.ops` namespace outside `aten` and `prim`, which needs a native library registered by the loading program.");
    TorchScriptUnverified = ("PT008", "torchscript-unverified", Suspicious, incomplete: false,
        "TorchScript code that could not be verified: a name or operator outside the allowlist, a class no code file defines, or a file not read whole.");

    // ---- Archives and compression --------------------------------------------------------
    ArchiveHeaderMismatch = ("ARC001", "header-mismatch", Dangerous, incomplete: false,
        "A zip member's local header disagrees with its central-directory entry (name, sizes, method): readers see different files.");
    ArchiveChecksum = ("ARC002", "checksum-mismatch", Suspicious, incomplete: false,
        "A zip member's CRC-32 does not match its data; Python's zipfile refuses it, torch reads it anyway.");
    ArchiveFlags = ("ARC003", "unusual-flags", Suspicious, incomplete: false,
        "A zip member sets general-purpose flag bits (encrypted, patched, strong encryption) on data that is readable as plain.");
    ArchiveEncrypted = ("ARC004", "encrypted-member", Suspicious, incomplete: true,
        "An archive member is encrypted and cannot be inspected.");
    ArchivePathTraversal = ("ARC005", "path-traversal", Dangerous, incomplete: false,
        "An archive member's path is absolute or climbs out of the extraction folder.");
    ArchiveLink = ("ARC006", "link-member", Suspicious, incomplete: false,
        "An archive member is a symbolic or hard link.");
    ArchiveLimit = ("ARC007", "archive-limit", Suspicious, incomplete: true,
        "An archive exceeds a limit on nesting depth, member count, inflated size or compression ratio (a decompression bomb).");
    ArchiveDuplicate = ("ARC008", "duplicate-member", Suspicious, incomplete: false,
        "Two archive members have the same name; readers disagree on which one wins.");
    ArchiveCorrupt = ("ARC009", "corrupt-archive", Suspicious, incomplete: true,
        "An archive or compressed stream could not be read to its end.");
    ArchiveUnsupported = ("ARC010", "unsupported-compression", Suspicious, incomplete: true,
        "An archive member uses a compression method Airlock cannot decode.");
    ArchiveOverlap = ("ARC011", "overlapping-members", Dangerous, incomplete: true,
        "Zip members share bytes (their ranges overlap): no writer does this, a non-recursive zip bomb does; the overlapping members are not inflated.");

    // ---- NumPy and joblib ----------------------------------------------------------------
    NumpyHeader = ("NPY001", "npy-header", Suspicious, incomplete: false,
        "A .npy header is malformed; numpy.load would refuse the file.");
    NumpyObjectArray = ("NPY002", "object-array", Info, incomplete: false,
        "A .npy array has an object dtype: its data is a pickle, loaded only with allow_pickle=True (scanned).");
    NumpyTrailingData = ("NPY003", "npy-trailing-data", Info, incomplete: false,
        "Bytes follow a .npy array's data; numpy.load never reads them.");
    JoblibArrayData = ("JBL001", "joblib-array-data", Suspicious, incomplete: true,
        "The raw array bytes joblib writes after a NumpyArrayWrapper could not be delimited, so the rest of the file was not read.");

    // ---- safetensors -----------------------------------------------------------------------
    StHeaderUnreadable = ("ST001", "st-header-unreadable", Suspicious, incomplete: false,
        "The safetensors header cannot be read (too short, over the 100 MB cap, past the end, not UTF-8, not JSON); the reference reader refuses the file. Dangerous when the length is over the cap; a cut file also gets GEN006.");
    StHeaderRejected = ("ST002", "st-header-rejected", Suspicious, incomplete: false,
        "The safetensors header breaks a rule of the reference reader (dtype, shape, offsets, sizes, whole-file coverage); the safetensors library refuses the file. Dangerous for overlapping offsets or a size that overflows.");
    StDuplicateKey = ("ST003", "st-duplicate-key", Suspicious, incomplete: false,
        "A key appears twice in the safetensors header; the reference reader keeps the last, other JSON readers may keep the first.");
    StNonstandardHeader = ("ST004", "st-nonstandard-header", Suspicious, incomplete: false,
        "The safetensors header has something no writer produces but the reference reader lets through (unknown fields, leading whitespace, null metadata).");
    StMetadataCode = ("ST005", "st-metadata-code", Dangerous, incomplete: false,
        "A `__metadata__` value holds Python code or a shell command.");
    StMetadataUrl = ("ST006", "st-metadata-url", Info, incomplete: false,
        "A `__metadata__` value holds a URL.");
    StMetadataPickle = ("ST007", "st-metadata-pickle", Suspicious, incomplete: false,
        "A `__metadata__` value decodes (base64 or hex) to a pickle, which is scanned.");

    // ---- GGUF ------------------------------------------------------------------------------
    GgufVersion = ("GGUF001", "gguf-version", Suspicious, incomplete: true,
        "The GGUF version is one ggml refuses (0, 1, or newer than 3); the file was not parsed.");
    GgufOutOfBounds = ("GGUF002", "gguf-out-of-bounds", Dangerous, incomplete: true,
        "A GGUF string length, array count or item count is over ggml's cap, or counts no file could hold (the llama.cpp heap-overflow CVE shape); within the caps, running past the end is GEN006.");
    GgufBadValueType = ("GGUF003", "gguf-bad-value-type", Dangerous, incomplete: true,
        "A GGUF metadata value has an unknown type or is an array of arrays; ggml refuses it, older parsers indexed type tables with it.");
    GgufBadKey = ("GGUF004", "gguf-bad-key", Suspicious, incomplete: false,
        "A GGUF metadata key is empty or appears twice; readers disagree on which value wins.");
    GgufBadAlignment = ("GGUF005", "gguf-bad-alignment", Dangerous, incomplete: false,
        "`general.alignment` is not a u32 power of two; tensor offsets computed from it are wrong.");
    GgufTensorName = ("GGUF006", "gguf-tensor-name", Dangerous, incomplete: false,
        "A GGUF tensor name is 64 bytes or longer: ggml copies names into a 64-byte buffer.");
    GgufDuplicateTensor = ("GGUF007", "gguf-duplicate-tensor", Suspicious, incomplete: false,
        "Two GGUF tensors have the same name.");
    GgufBadShape = ("GGUF008", "gguf-bad-shape", Dangerous, incomplete: false,
        "A GGUF tensor has more than 4 dimensions, a negative dimension, or an element count that overflows.");
    GgufBadTensorType = ("GGUF009", "gguf-bad-tensor-type", Dangerous, incomplete: false,
        "A GGUF tensor has an unknown or removed ggml type, or a first dimension not divisible by the type's block size.");
    GgufBadOffset = ("GGUF010", "gguf-bad-offset", Dangerous, incomplete: false,
        "A GGUF tensor's offset is not the running padded total of the tensors before it (overlapping or misplaced data).");
    GgufDataOutsideFile = ("GGUF011", "gguf-data-outside-file", Dangerous, incomplete: false,
        "A GGUF tensor's data extent overflows, or runs past the end of the file from a misplaced offset (a cut file is GEN006).");
    GgufTemplateDangerous = ("GGUF012", "gguf-template-dangerous", Dangerous, incomplete: false,
        "A Jinja chat template reaches Python internals (dunder attributes, globals walks, os/subprocess/eval): code execution in unsandboxed renderers (CVE-2024-34359).");
    GgufTemplateUnparsed = ("GGUF013", "gguf-template-unparsed", Suspicious, incomplete: false,
        "A Jinja chat template does not parse (or is too large to analyse); what it would do when rendered is unknown.");
    GgufMetadataCode = ("GGUF014", "gguf-metadata-code", Dangerous, incomplete: false,
        "A GGUF metadata string holds Python code or a shell command.");
    GgufMetadataUrl = ("GGUF015", "gguf-metadata-url", Info, incomplete: false,
        "A GGUF metadata string holds a URL.");
    GgufMetadataPickle = ("GGUF016", "gguf-metadata-pickle", Suspicious, incomplete: false,
        "A GGUF metadata string decodes (base64 or hex) to a pickle, which is scanned.");
    GgufLimit = ("GGUF017", "gguf-limit", Suspicious, incomplete: true,
        "A GGUF file declares more tensors or metadata entries than Airlock's limit; the header was not read to its end.");

    // ---- Keras, TensorFlow, ONNX, other formats and executables --------------------------
    KerasLambda = ("KER001", "keras-lambda", Dangerous, incomplete: false,
        "A Keras Lambda layer carries marshal'd Python bytecode that runs when the model is loaded or called (CVE-2024-3660).");
    KerasForeignModule = ("KER002", "keras-foreign-module", Dangerous, incomplete: false,
        "A Keras config names a `module` outside `keras`, so deserialization imports arbitrary Python code.");
    KerasFunctionObject = ("KER003", "keras-function-object", Dangerous, incomplete: false,
        "A Keras config deserializes a `class_name: \"function\"` object, resolving an arbitrary callable (CVE-2025-1550).");
    KerasUnsafeCall = ("KER004", "keras-unsafe-call", Dangerous, incomplete: false,
        "A Keras config references `enable_unsafe_deserialization` or `load_model`, turning safe mode off or loading another model (CVE-2025-8747, CVE-2025-9906).");
    KerasTfsmLayer = ("KER005", "keras-tfsm-layer", Dangerous, incomplete: false,
        "A Keras config contains a TFSMLayer, which loads an external TensorFlow SavedModel from a path (CVE-2026-1462).");
    KerasCustomObject = ("KER006", "keras-custom-object", Suspicious, incomplete: false,
        "A Keras config needs a custom object (`registered_name`) whose code must be registered by the loading program.");
    KerasConfigMalformed = ("KER007", "keras-config-malformed", Suspicious, incomplete: true,
        "A Keras config could not be read completely (invalid JSON, too deep, or not the expected shape).");
    Hdf5Malformed = ("KER008", "hdf5-malformed", Suspicious, incomplete: true,
        "An HDF5 file's structure could not be read completely, or it uses a feature Airlock does not parse.");
    KerasHostPath = ("KER009", "keras-host-path", Dangerous, incomplete: false,
        "A Keras config argument names a host path or a URL (a lookup vocabulary, a file argument): the loader reads that file or fetches that URL while building the model.");
    TfHostOp = ("TF001", "tf-host-op", Dangerous, incomplete: false,
        "A TensorFlow graph contains an op that reads or writes files, runs Python, or talks to the network.");
    TfCheckpointOp = ("TF002", "tf-checkpoint-op", Dangerous, incomplete: false,
        "A TensorFlow graph uses a checkpoint op (Save, SaveV2, Restore, MergeV2Checkpoints, ...) outside the saver functions TensorFlow generates.");
    TfMalformed = ("TF003", "tf-malformed", Suspicious, incomplete: true,
        "A TensorFlow SavedModel protobuf could not be parsed completely.");
    OnnxExternalPath = ("ONNX001", "onnx-external-path", Dangerous, incomplete: false,
        "An ONNX tensor's external data location is empty, absolute, or escapes the model folder.");
    OnnxCustomDomain = ("ONNX002", "onnx-custom-domain", Suspicious, incomplete: false,
        "An ONNX model uses an operator domain outside the standard ones, which needs a native library at runtime.");
    OnnxMalformed = ("ONNX003", "onnx-malformed", Suspicious, incomplete: true,
        "An ONNX ModelProto could not be parsed completely.");
    OnnxExternalFile = ("ONNX004", "onnx-external-file", Suspicious, incomplete: false,
        "An ONNX external data file is missing, a symbolic or hard link, not a regular file, or shorter than the range a tensor reads from it.");
    Executable = ("EXE001", "executable", Dangerous, incomplete: false,
        "A native executable (ELF, PE, Mach-O, llamafile) sits where model files are expected.");
    ShellScript = ("EXE002", "script", Suspicious, incomplete: false,
        "A script with a `#!` interpreter line sits where model files are expected.");
    UnverifiedFormat = ("EXE003", "unverified-format", Suspicious, incomplete: true,
        "The file is a model format Airlock identifies but does not fully verify (TFLite, CoreML, Flax/msgpack).");

    // ---- Reading the file ----------------------------------------------------------------
    NotAModel = ("GEN001", "not-a-model", Info, incomplete: false,
        "The file is not a model format Airlock knows (text, image, unknown bytes); it is not something a loader would deserialize.");
    ReadError = ("GEN002", "read-error", Suspicious, incomplete: true,
        "The file could not be read (permissions, I/O error, vanished).");
    FileTooLarge = ("GEN003", "file-too-large", Suspicious, incomplete: true,
        "The file is larger than --max-file-size and was not scanned.");
    InternalError = ("GEN004", "internal-error", Suspicious, incomplete: true,
        "Airlock hit an internal error on this file; it is reported rather than trusted.");
    Timeout = ("GEN005", "timeout", Suspicious, incomplete: true,
        "Scanning the file took longer than the time limit.");
    Truncated = ("GEN006", "truncated", Suspicious, incomplete: true,
        "The file ends before the end its own structure declares (a length, offset, count or final record runs past it): it was cut short, and what is missing was not scanned.");
}

impl Serialize for Rule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_and_names_are_unique() {
        let codes: HashSet<_> = Rule::ALL.iter().map(|r| r.code()).collect();
        let names: HashSet<_> = Rule::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(codes.len(), Rule::ALL.len());
        assert_eq!(names.len(), Rule::ALL.len());
    }

    #[test]
    fn every_rule_has_a_documentation_page() {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/rules");
        let missing: Vec<_> = Rule::ALL
            .iter()
            .filter(|r| !docs.join(format!("{}.md", r.code())).is_file())
            .map(|r| r.code())
            .collect();
        assert!(
            missing.is_empty(),
            "rules without docs/rules/<CODE>.md: {missing:?}"
        );
    }

    #[test]
    fn lookup_by_code_or_name() {
        assert_eq!(Rule::from_code("pkl001"), Some(Rule::DangerousImport));
        assert_eq!(Rule::from_code("dunder-name"), Some(Rule::DunderName));
        assert_eq!(Rule::from_code("nope"), None);
    }
}
