//! Files Airlock identifies but does not parse as models: native executables (ELF, PE,
//! Mach-O, llamafile), scripts, TFLite flatbuffers (custom ops listed).
//!
//! Each identification records what was checked and whether Airlock can vouch for the file.
//! Executables are dangerous in a model folder (EXE001): loading a model never needs one, and a
//! llamafile *is* a program. Scripts with a `#!` line are suspicious (EXE002). TFLite is
//! identified (EXE003, marks the file unscannable) and its custom ops, which need native
//! kernels, are listed; its tensors and buffers are not verified. CoreML and Flax msgpack have no
//! magic, but each has a shape strict enough to test (see [`super::coreml`] and
//! [`super::flax`]): CoreML is identified the same way as TFLite, "identified, not vouched for"
//! (EXE003); a Flax checkpoint is verified leaf by leaf and is safe when every leaf decodes.
//! These tests only add an identification; they run after every magic-based format, and the
//! identified file still goes through the pickle probe, so nothing a pickle loader would run
//! is routed away from the pickle engine.

use crate::containers::zip::ZipArchive;
use crate::ctx::Ctx;
use crate::format::Format;
use crate::report::Finding;
use crate::rules::{Rule, Severity};

/// A kind of non-model file recognised by its leading bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identified {
    Elf,
    Pe,
    MachO,
    /// Actually Portable Executable (`MZqFpD`): a llamafile, runnable on every OS.
    Llamafile,
    Script,
    Tflite,
    /// CoreML `.mlmodel` (strict protobuf shape test).
    CoreMl,
    /// Flax msgpack checkpoint (strict msgpack shape test).
    Flax,
}

/// Recognises executables, scripts and TFLite by their leading bytes, and CoreML and Flax
/// msgpack by their structure.
pub fn identify(data: &[u8]) -> Option<Identified> {
    const MACHO: &[[u8; 4]] = &[
        [0xfe, 0xed, 0xfa, 0xce],
        [0xfe, 0xed, 0xfa, 0xcf],
        [0xce, 0xfa, 0xed, 0xfe],
        [0xcf, 0xfa, 0xed, 0xfe],
    ];
    let head = data.get(..4);
    if data.starts_with(b"MZqFpD") {
        Some(Identified::Llamafile)
    } else if data.starts_with(b"\x7fELF") {
        Some(Identified::Elf)
    } else if is_pe(data) {
        Some(Identified::Pe)
    } else if head.is_some_and(|h| MACHO.iter().any(|m| h == m)) || is_fat_macho(data) {
        Some(Identified::MachO)
    } else if data.starts_with(b"#!") {
        Some(Identified::Script)
    } else if data.get(4..8) == Some(b"TFL3") {
        Some(Identified::Tflite)
    } else if super::flax::identify(data).is_some() || super::flax::is_cut_short(data) {
        Some(Identified::Flax)
    } else if super::coreml::identify(data).is_some() {
        Some(Identified::CoreMl)
    } else {
        None
    }
}

fn u32_at(data: &[u8], at: usize, big_endian: bool) -> Option<u32> {
    let mut reader = crate::bytes::ByteReader::new(data).at(at).ok()?;
    reader.read_u32(big_endian).ok()
}

/// `MZ` with `PE\0\0` at the offset stored in `e_lfanew` (0x3c), as Windows' loader requires.
fn is_pe(data: &[u8]) -> bool {
    data.starts_with(b"MZ")
        && u32_at(data, 0x3c, false)
            .and_then(|off| usize::try_from(off).ok())
            .and_then(|off| data.get(off..off.checked_add(4)?))
            == Some(b"PE\0\0")
}

/// Universal binaries share `CAFEBABE` with Java class files; a fat header's architecture
/// count is small, while a class file's version makes that word at least 45.
fn is_fat_macho(data: &[u8]) -> bool {
    (data.starts_with(&[0xca, 0xfe, 0xba, 0xbe]) || data.starts_with(&[0xca, 0xfe, 0xba, 0xbf]))
        && u32_at(data, 4, true).is_some_and(|n| (1..20).contains(&n))
}

/// Reports an identified file. Returns the format name.
pub fn scan_identified(ctx: &mut Ctx, data: &[u8], kind: Identified) -> Format {
    match kind {
        Identified::Llamafile => llamafile(ctx, data),
        Identified::Elf => executable(ctx, "ELF executable or shared library", Format::Elf),
        Identified::Pe => executable(ctx, "Windows PE executable", Format::Pe),
        Identified::MachO => executable(ctx, "Mach-O executable", Format::MachO),
        Identified::Script => {
            let line = data.split(|&b| b == b'\n').next().unwrap_or_default();
            let line: String = String::from_utf8_lossy(line).chars().take(120).collect();
            ctx.report(Finding::new(
                Rule::ShellScript,
                format!("script with interpreter line `{line}`"),
            ));
            ctx.note(
                "script: not a model; its interpreter line was read, its code was not analysed",
            );
            Format::Script
        }
        Identified::Tflite => {
            let ops = tflite_operator_codes(data);
            let detail = match &ops {
                Ok(ops) => {
                    let custom: Vec<_> = ops
                        .iter()
                        .filter_map(|o| o.custom.as_deref())
                        .map(|c| format!("`{c}`"))
                        .collect();
                    if custom.is_empty() {
                        format!("{} operator code(s), no custom ops", ops.len())
                    } else {
                        format!(
                            "{} operator code(s), custom ops needing native kernels: {}",
                            ops.len(),
                            custom.join(", ")
                        )
                    }
                }
                Err(e) => format!("operator codes could not be read: {e}"),
            };
            ctx.report(Finding::new(
                Rule::UnverifiedFormat,
                format!(
                    "TFLite flatbuffer: {detail}; tensors, subgraphs and buffers were not verified"
                ),
            ));
            ctx.note(format!(
                "TFLite: {detail}; identified only, Airlock cannot vouch for it"
            ));
            Format::Tflite
        }
        Identified::CoreMl => {
            let what = super::coreml::identify(data).map_or_else(
                || "CoreML model".to_string(),
                |m| super::coreml::describe(&m),
            );
            unvouched(ctx, &what, "layers and weights were not verified");
            Format::Coreml
        }
        Identified::Flax => {
            flax_checkpoint(ctx, data);
            Format::FlaxMsgpack
        }
    }
}

/// A Flax checkpoint: data when every Flax leaf decodes as Flax writes it (see
/// [`super::flax`]); a leaf that does not is reported unverified, a cut file truncated.
pub fn flax_checkpoint(ctx: &mut Ctx, data: &[u8]) {
    let Some(summary) = super::flax::identify(data) else {
        ctx.report(Finding::new(
            Rule::Truncated,
            "a Flax msgpack checkpoint ends inside its value; flax.serialization.from_bytes refuses it",
        ));
        unvouched(
            ctx,
            "Flax msgpack checkpoint",
            "what follows the cut was not read",
        );
        return;
    };
    let what = super::flax::describe(&summary);
    match &summary.problem {
        Some(problem) => unvouched(ctx, &what, problem),
        None => ctx.note(format!(
            "{what}; every array leaf decodes as (shape, dtype, buffer) with a matching size: data only"
        )),
    }
}

/// Reports a model format Airlock identifies but does not verify (EXE003).
fn unvouched(ctx: &mut Ctx, what: &str, unverified: &str) {
    ctx.report(Finding::new(
        Rule::UnverifiedFormat,
        format!("{what}; {unverified}"),
    ));
    ctx.note(format!(
        "{what}; identified only, Airlock cannot vouch for it"
    ));
}

fn executable(ctx: &mut Ctx, what: &str, format: Format) -> Format {
    ctx.report(Finding::new(
        Rule::Executable,
        format!("{what}: native code has no place in a model folder"),
    ));
    ctx.note(format!(
        "{what}: identified by its header; a program, not model data"
    ));
    format
}

/// A llamafile is a program (dangerous, EXE001) unless the policy vouches for llamafiles
/// (`allow_llamafile`), when the finding is kept at `info` to say what was not analysed. Either
/// way the zip llamafile appends to the executable (its weights, usually a GGUF with a chat
/// template) is scanned as any zip is ([`super::zipped::scan_archive`]: every member by content, and the
/// local-header reading where it differs), so an allowed llamafile is only as safe as the
/// model inside it.
fn llamafile(ctx: &mut Ctx, data: &[u8]) -> Format {
    const WHAT: &str = "llamafile (Actually Portable Executable with an embedded model)";
    if ctx.policy().llamafile_allowed() {
        let mut finding = Finding::new(
            Rule::Executable,
            format!(
                "{WHAT}: allowed by the policy (allow_llamafile); its native code is not analysed"
            ),
        );
        finding.severity = Severity::Info;
        ctx.report(finding);
        ctx.note(format!("{WHAT}: program part allowed by the policy"));
    } else {
        executable(ctx, WHAT, Format::Llamafile);
    }
    let archive = ZipArchive::parse(data);
    if !archive.has_directory() {
        ctx.note("no embedded zip");
        return Format::Llamafile;
    }
    let format = super::zipped::scan_archive(ctx, &archive);
    ctx.note(format!("embedded {format} scanned"));
    Format::Llamafile
}

/// One entry of a TFLite model's `operator_codes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TfliteOp {
    pub builtin_code: i32,
    /// The custom op name when the op is CUSTOM (builtin code 32).
    pub custom: Option<String>,
}

/// Reads `Model.operator_codes` (schema.fbs: Model field 1; OperatorCode fields
/// deprecated_builtin_code=0, custom_code=1, builtin_code=3) from a TFLite flatbuffer. A
/// hand-written bounded flatbuffer walk: four table lookups do not justify a flatbuffers
/// dependency plus generated code, and every offset here is checked.
pub fn tflite_operator_codes(data: &[u8]) -> Result<Vec<TfliteOp>, FlatbufferError> {
    const CUSTOM: i32 = 32;
    let fb = Flatbuffer::new(data);
    let model = fb.deref(0)?;
    let Some(vector) = fb.field_ref(model, 1)? else {
        return Ok(Vec::new());
    };
    let count = fb.u32(vector)? as usize;
    if count > data.len() / 4 {
        return Err(FlatbufferError::OperatorCodesPastEnd);
    }
    (0..count)
        .map(|i| {
            let table = fb.deref(vector + 4 + 4 * i)?;
            let deprecated = fb
                .field_at(table, 0)?
                .map(|at| fb.byte(at))
                .transpose()?
                .map_or(0, |b| i32::from(b as i8));
            let builtin = fb
                .field_at(table, 3)?
                .map(|at| fb.u32(at))
                .transpose()?
                .map_or(deprecated, |v| (v as i32).max(deprecated));
            let custom = match fb.field_ref(table, 1)? {
                Some(s) if builtin == CUSTOM => Some(fb.string(s)?),
                _ => None,
            };
            Ok(TfliteOp {
                builtin_code: builtin,
                custom,
            })
        })
        .collect()
}

/// Random-access reads over a flatbuffer ([`crate::bytes::ByteReader`]), with the words
/// the TFLite finding has always used.
struct Flatbuffer<'a>(crate::bytes::ByteReader<'a>);

/// Why a TFLite flatbuffer's operator codes could not be read. Its `Display` is the text
/// the finding quotes, spelled out here because the reports are compared byte for byte
/// (`scripts/identity.py`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlatbufferError {
    /// A read at this offset needed bytes past the end of the file.
    #[error("offset {0:#x} outside the file")]
    Outside(usize),
    #[error("offset outside the file")]
    OffsetOutside,
    #[error("vtable outside the file")]
    VtableOutside,
    #[error("string outside the file")]
    StringOutside,
    #[error("operator_codes longer than the file")]
    OperatorCodesPastEnd,
}

#[cold]
fn outside(at: usize) -> FlatbufferError {
    FlatbufferError::Outside(at)
}

impl Flatbuffer<'_> {
    fn new(data: &[u8]) -> Flatbuffer<'_> {
        Flatbuffer(crate::bytes::ByteReader::new(data))
    }
    fn len(&self) -> usize {
        self.0.data().len()
    }
    fn byte(&self, at: usize) -> Result<u8, FlatbufferError> {
        let mut r = self.0.at(at).map_err(|_| outside(at))?;
        r.read_u8().map_err(|_| outside(at))
    }
    fn u16(&self, at: usize) -> Result<u16, FlatbufferError> {
        // The message names the first byte missing, as when read one byte at a time.
        let first_missing = if at < self.len() { at + 1 } else { at };
        let mut r = self.0.at(at).map_err(|_| outside(at))?;
        r.read_u16_le().map_err(|_| outside(first_missing))
    }
    fn u32(&self, at: usize) -> Result<u32, FlatbufferError> {
        let mut r = self.0.at(at).map_err(|_| outside(at))?;
        r.read_u32_le().map_err(|_| outside(at))
    }
    /// Follows the unsigned offset stored at `at`.
    fn deref(&self, at: usize) -> Result<usize, FlatbufferError> {
        at.checked_add(self.u32(at)? as usize)
            .filter(|&t| t < self.len())
            .ok_or(FlatbufferError::OffsetOutside)
    }
    /// Position of field `index` of the table at `table`, if present.
    fn field_at(&self, table: usize, index: usize) -> Result<Option<usize>, FlatbufferError> {
        let vtable = (table as i64) - i64::from(self.u32(table)? as i32);
        let vtable = usize::try_from(vtable).map_err(|_| FlatbufferError::VtableOutside)?;
        let vt_len = usize::from(self.u16(vtable)?);
        let slot = 4 + 2 * index;
        if slot + 2 > vt_len {
            return Ok(None);
        }
        let off = usize::from(self.u16(vtable + slot)?);
        Ok((off != 0).then_some(table + off))
    }
    fn field_ref(&self, table: usize, index: usize) -> Result<Option<usize>, FlatbufferError> {
        self.field_at(table, index)?
            .map(|at| self.deref(at))
            .transpose()
    }
    fn string(&self, at: usize) -> Result<String, FlatbufferError> {
        let len = self.u32(at)? as usize;
        let bytes = self
            .0
            .at(at + 4)
            .and_then(|mut r| r.read_bytes(len))
            .map_err(|_| FlatbufferError::StringOutside)?;
        Ok(String::from_utf8_lossy(bytes).chars().take(200).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Verdict;
    use crate::scan::Scanner;

    fn fixture(name: &str) -> Vec<u8> {
        crate::testkit::fixture("formats/misc", name)
    }

    #[test]
    fn executables_are_dangerous() {
        for (file, format) in [
            ("tiny.elf", "elf"),
            ("tiny.exe", "pe"),
            ("tiny.macho", "mach-o"),
            ("llamafile.bin", "llamafile"),
        ] {
            let report = Scanner::default().scan_bytes(file, &fixture(file));
            assert_eq!(report.format, format, "{file}");
            assert_eq!(report.verdict, Verdict::Dangerous, "{file}");
            assert_eq!(report.findings[0].rule, Rule::Executable);
        }
    }

    /// An APE prefix, then a zip holding a GGUF, offsets from the start of the file.
    fn llamafile_with(gguf: &str) -> Vec<u8> {
        use crate::containers::zip::testzip::{build_after, member};
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/formats/gguf/"
        );
        let weights = std::fs::read(format!("{path}{gguf}")).unwrap();
        let mut prefix = fixture("llamafile.bin");
        prefix.resize(4096, 0);
        build_after(&prefix, &[member("model.gguf", &weights)])
    }

    fn scan_with_llamafile_allowed(allowed: bool, data: &[u8]) -> crate::FileReport {
        let mut policy = crate::Policy::default();
        policy.allow_llamafile(allowed);
        Scanner::new(policy, crate::Limits::default()).scan_bytes("m.llamafile", data)
    }

    #[test]
    fn llamafile_is_dangerous_unless_allowed_and_its_model_is_scanned() {
        let benign = llamafile_with("benign_chatml.gguf");
        let report = scan_with_llamafile_allowed(false, &benign);
        assert_eq!(
            (report.format.as_str(), report.verdict),
            ("llamafile", Verdict::Dangerous)
        );
        let report = scan_with_llamafile_allowed(true, &benign);
        assert_eq!(
            (report.format.as_str(), report.verdict),
            ("llamafile", Verdict::Safe),
            "{:?}",
            report.findings
        );
        assert_eq!(report.findings[0].rule, Rule::Executable);
        assert_eq!(report.findings[0].severity, Severity::Info);
        assert!(
            report
                .members
                .iter()
                .any(|m| m.path == "model.gguf" && m.format == "gguf"),
            "{:?}",
            report.members
        );
        // Allowing the program part does not vouch for the model inside it.
        let hostile = llamafile_with("template_GGUF012_subclasses.gguf");
        let report = scan_with_llamafile_allowed(true, &hostile);
        assert_eq!(report.verdict, Verdict::Dangerous);
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.rule != Rule::Executable && f.member.as_deref() == Some("model.gguf"))
        );
    }

    #[test]
    fn llamafile_zip_member_hidden_from_its_directory_is_scanned() {
        use crate::containers::zip::testzip::{build_after, member};
        let mut prefix = fixture("llamafile.bin");
        prefix.resize(4096, 0);
        let mut hidden = member("hidden.pkl", b"\x80\x02cos\nsystem\nq\x00.");
        hidden.in_central = false;
        let data = build_after(&prefix, &[member("a.txt", b"1"), hidden]);
        let report = scan_with_llamafile_allowed(true, &data);
        assert_eq!(report.verdict, Verdict::Dangerous, "{:?}", report.findings);
        assert!(report.members.iter().any(|m| m.path == "hidden.pkl"));
    }

    #[test]
    fn llamafile_without_embedded_zip_is_not_corrupt() {
        let report = scan_with_llamafile_allowed(true, &fixture("llamafile.bin"));
        assert_eq!(report.verdict, Verdict::Safe, "{:?}", report.findings);
    }

    #[test]
    fn policy_file_allows_llamafile() {
        let policy = crate::policy::file::parse("allow_llamafile = true").unwrap();
        assert!(policy.llamafile_allowed());
        assert!(!crate::Policy::default().llamafile_allowed());
    }

    #[test]
    fn scripts_are_suspicious_and_tflite_unvouched() {
        let report = Scanner::default().scan_bytes("run.sh", &fixture("run.sh"));
        assert_eq!(
            (report.format.as_str(), report.verdict),
            ("script", Verdict::Suspicious)
        );
        assert!(report.findings[0].message.contains("#!/bin/bash"));
        let report = Scanner::default().scan_bytes("m.tflite", &fixture("model.tflite"));
        assert_eq!(
            (report.format.as_str(), report.verdict),
            ("tflite", Verdict::Unscannable)
        );
        let message = &report.findings[0].message;
        assert!(
            message.contains("2 operator code(s), custom ops needing native kernels: `MyNativeOp`"),
            "{message}"
        );
    }

    #[test]
    fn tflite_reader_is_bounded() {
        let data = fixture("model.tflite");
        let ops = tflite_operator_codes(&data).unwrap();
        let custom = Some("MyNativeOp".to_string());
        assert_eq!(
            ops,
            [
                TfliteOp {
                    builtin_code: 0,
                    custom: None
                },
                TfliteOp {
                    builtin_code: 32,
                    custom
                }
            ]
        );
        for cut in 0..data.len() {
            let _ = tflite_operator_codes(&data[..cut]);
        }
        let mut bad = data.clone();
        bad[0x10..0x14].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
        assert!(tflite_operator_codes(&bad).is_err());
    }

    #[test]
    fn coreml_and_flax_are_identified_not_vouched_for() {
        // Model{specificationVersion: 4, description: {}, neuralNetwork (500): {}}
        let coreml = b"\x08\x04\x12\x00\xa2\x1f\x00";
        assert_eq!(identify(coreml), Some(Identified::CoreMl));
        let report = Scanner::default().scan_bytes("m.mlmodel", coreml);
        assert_eq!(
            (report.format.as_str(), report.verdict),
            ("coreml", Verdict::Unscannable)
        );
        assert!(
            report
                .summary
                .contains("type `neuralNetwork`; identified only"),
            "{}",
            report.summary
        );
        // {"w": ext1(1 byte)}
        let flax = b"\x81\xa1w\xd4\x01\x00";
        assert_eq!(identify(flax), Some(Identified::Flax));
        let report = Scanner::default().scan_bytes("m.msgpack", flax);
        assert_eq!(
            (report.format.as_str(), report.verdict),
            ("flax-msgpack", Verdict::Unscannable)
        );
        assert!(report.summary.contains("1 arrays"), "{}", report.summary);
        // ONNX, SavedModel and pickles keep their routes.
        assert_eq!(identify(b"\x08\x07\x3a\x00"), None);
        assert_eq!(identify(b"\x80\x02}q\x00."), None);
    }

    #[test]
    fn near_misses_are_not_executables() {
        assert_eq!(identify(b"MZ just text"), None, "MZ without a PE header");
        assert_eq!(
            identify(&[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 52]),
            None,
            "Java class file"
        );
        assert_eq!(
            identify(&[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 2]),
            Some(Identified::MachO)
        );
        let mut pe = vec![0u8; 64];
        pe[..2].copy_from_slice(b"MZ");
        pe[0x3c..0x40].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
        assert_eq!(identify(&pe), None, "e_lfanew past the end");
    }
}
