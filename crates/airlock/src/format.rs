//! The names of what Airlock can say a file (or archive member) is: one [`Format`] enum, whose
//! [`Format::name`] is the string a report carries (`FileReport::format`,
//! `MemberSummary::format`). Scan functions, the router and the registry hand [`Format`]s
//! around; the string is made only where the report is built, so the JSON is unchanged.
//!
//! This module stands at the bottom floor, beside [`crate::report`], rather than inside
//! `formats`: the context ([`crate::ctx::Router`]) and the container readers (tar, 7z, the
//! compressed streams) name the format they read, and they import nothing from `formats`.
//! [`crate::formats::registry`] re-exports it.

/// Declares [`Format`] with its report names and [`Format::ALL`] from one list, so that the
/// list cannot miss a variant.
macro_rules! formats {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// What a file or member was read as; [`Format::name`] is its name in the report.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Format {
            $($(#[$doc])* $variant,)*
        }

        impl Format {
            /// Every format, in declaration order.
            pub const ALL: &'static [Format] = &[$(Format::$variant,)*];

            /// The name reports carry (stable: it is part of the JSON and SARIF output).
            pub fn name(self) -> &'static str {
                match self {
                    $(Format::$variant => $name,)*
                }
            }
        }
    };
}

formats! {
    // What is not a model.
    /// A zero-byte file.
    Empty => "empty",
    /// UTF-8 text with no control bytes ([`crate::formats::classify_non_model`]).
    Text => "text",
    /// Bytes that are neither a model nor text.
    Binary => "binary",
    /// PNG, JPEG, GIF, RIFF or BMP.
    Image => "image",
    /// A msgpack value that is not a Flax checkpoint.
    Msgpack => "msgpack",
    /// A scan that did not finish (a panic caught, a stream not compressed after all).
    Unknown => "unknown",
    // Pickles.
    /// A plain pickle stream.
    Pickle => "pickle",
    /// torch's legacy (pre-zip) serialisation: magic, protocol, sys info, storages.
    PytorchLegacy => "pytorch-legacy",
    /// A joblib pickle with NumPy arrays after it.
    Joblib => "joblib",
    // Zips and what claims them.
    /// A torch.save zip.
    PytorchZip => "pytorch-zip",
    /// A torch.jit.save zip (code and constants).
    Torchscript => "torchscript",
    /// A Keras v3 `.keras` archive.
    Keras => "keras",
    /// A skops archive.
    Skops => "skops",
    /// A NumPy `.npz` archive.
    Npz => "npz",
    /// Any other zip.
    Zip => "zip",
    /// A `.keras` archive's `config.json` that routes as nothing else.
    KerasConfig => "keras-config",
    /// Keras metadata: `keras_metadata.pb`, or a `.keras` archive's `metadata.json`.
    KerasMetadata => "keras-metadata",
    /// A skops archive's `schema.json`.
    SkopsSchema => "skops-schema",
    // Other containers.
    /// A tar archive.
    Tar => "tar",
    /// A 7-Zip archive.
    SevenZip => "7z",
    /// A gzip stream.
    Gzip => "gzip",
    /// A bzip2 stream.
    Bzip2 => "bz2",
    /// An xz stream.
    Xz => "xz",
    /// An LZ4 frame stream.
    Lz4 => "lz4",
    /// A Zstandard stream.
    Zstd => "zstd",
    /// joblib's legacy `ZF` zlib file.
    JoblibZf => "joblib-zf",
    /// A raw zlib stream.
    Zlib => "zlib",
    /// A raw LZMA ("alone") stream.
    Lzma => "lzma",
    // Model formats parsed by their own module.
    /// A NumPy `.npy` array.
    Npy => "npy",
    /// safetensors.
    Safetensors => "safetensors",
    /// GGUF (llama.cpp).
    Gguf => "gguf",
    /// HDF5 (legacy Keras `.h5`).
    Hdf5 => "hdf5",
    /// An ONNX ModelProto.
    Onnx => "onnx",
    /// A TensorFlow SavedModel `saved_model.pb`.
    TensorflowSavedmodel => "tensorflow-savedmodel",
    /// A protobuf model cut short.
    Protobuf => "protobuf",
    /// A Flax msgpack checkpoint.
    FlaxMsgpack => "flax-msgpack",
    /// A legacy Keras `.h5` file (HDF5 with a model config).
    KerasH5 => "keras-h5",
    /// A TorchScript archive's code file that routes as nothing else.
    TorchscriptCode => "torchscript-code",
    // Identified, not parsed as models ([`crate::formats::identify`]).
    /// A TFLite flatbuffer.
    Tflite => "tflite",
    /// A CoreML model.
    Coreml => "coreml",
    /// A script with an interpreter line.
    Script => "script",
    /// An ELF executable or shared library.
    Elf => "elf",
    /// A Windows PE executable.
    Pe => "pe",
    /// A Mach-O executable.
    MachO => "mach-o",
    /// A llamafile (an executable with an embedded model zip).
    Llamafile => "llamafile",
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_format_has_a_unique_name_and_all_lists_every_variant() {
        let names: HashSet<_> = Format::ALL.iter().map(|f| f.name()).collect();
        assert_eq!(names.len(), Format::ALL.len(), "two formats share a name");
        let variants: HashSet<_> = Format::ALL.iter().collect();
        assert_eq!(
            variants.len(),
            Format::ALL.len(),
            "ALL lists a format twice"
        );
        // Exhaustive: a variant added outside `formats!` does not compile here, and one added
        // through it is in ALL by construction.
        for format in Format::ALL {
            match format {
                Format::Empty | Format::Text | Format::Binary | Format::Image => {}
                Format::Msgpack | Format::Unknown | Format::Pickle | Format::PytorchLegacy => {}
                Format::Joblib | Format::PytorchZip | Format::Torchscript | Format::Keras => {}
                Format::Skops | Format::Npz | Format::Zip | Format::KerasConfig => {}
                Format::KerasMetadata | Format::SkopsSchema | Format::Tar | Format::SevenZip => {}
                Format::Gzip | Format::Bzip2 | Format::Xz | Format::Lz4 | Format::Zstd => {}
                Format::JoblibZf | Format::Zlib | Format::Lzma | Format::Npy => {}
                Format::Safetensors | Format::Gguf | Format::Hdf5 | Format::Onnx => {}
                Format::TensorflowSavedmodel | Format::Protobuf | Format::FlaxMsgpack => {}
                Format::KerasH5 | Format::TorchscriptCode | Format::Tflite | Format::Coreml => {}
                Format::Script | Format::Elf | Format::Pe | Format::MachO | Format::Llamafile => {}
            }
        }
        for format in Format::ALL {
            assert!(
                format
                    .name()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{format:?}"
            );
        }
    }
}
