//! The one filesystem check outside reading the scanned file itself: an ONNX model scanned
//! from disk has its external data files looked at in the model's folder.
//!
//! Only metadata is read (`symlink_metadata`, `canonicalize`); the files' bytes never are,
//! and a location that already fails the pure checks (absolute, `..`, empty) is not touched
//! at all. Judging the facts is [`onnx::check_external_file`]'s job.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::ctx::Ctx;
use crate::formats::onnx::{self, ExternalFile};
use crate::report::Finding;
use crate::rules::Rule;
use crate::text::human_bytes;

use crate::limits::caps::onnx::MAX_EXTERNAL_FILES;

/// Checks every external data reference of the ONNX `model` against `folder`, reporting
/// problems and a summary phrase ("2 external data files, 1.2 GB checked").
pub fn check_external_data(ctx: &mut Ctx, model: &[u8], folder: &Path) {
    let refs = onnx::external_data_refs(model);
    if refs.is_empty() {
        return;
    }
    let root = std::fs::canonicalize(folder).ok();
    let mut files: HashMap<&str, (ExternalFile, bool)> = HashMap::new();
    let mut checked_bytes = 0u64;
    let mut skipped = 0usize;
    for r in refs.iter().filter(|r| r.problem.is_none()) {
        if ctx.check_timeout() {
            break;
        }
        if !files.contains_key(r.location.as_str()) {
            if files.len() == MAX_EXTERNAL_FILES {
                skipped += 1;
                continue;
            }
            let path = folder.join(&r.location);
            let facts = (look_at(&path), is_inside(root.as_deref(), &path));
            files.insert(&r.location, facts);
        }
        let Some((file, inside)) = files.get(r.location.as_str()) else {
            continue;
        };
        let (problems, checked) = onnx::check_external_file(r, file, *inside);
        checked_bytes = checked_bytes.saturating_add(checked);
        for p in problems {
            ctx.report(
                Finding::new(p.rule, p.message)
                    .with_severity(p.severity)
                    .at(r.at),
            );
        }
    }
    if skipped > 0 {
        ctx.report(Finding::new(
            Rule::OnnxExternalFile,
            format!(
                "{skipped} references to more than {MAX_EXTERNAL_FILES} distinct external data \
                 files were not checked"
            ),
        ));
    }
    let plural = if files.len() == 1 { "" } else { "s" };
    ctx.note(format!(
        "{} external data file{plural}, {} checked",
        files.len(),
        human_bytes(checked_bytes)
    ));
}

/// What the filesystem says about `path`, from its own metadata (links are not followed).
fn look_at(path: &Path) -> ExternalFile {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) => return ExternalFile::Unreadable(e.kind().to_string()),
    };
    let kind = meta.file_type();
    if kind.is_symlink() {
        ExternalFile::Symlink
    } else if kind.is_dir() {
        ExternalFile::NotRegular("folder")
    } else if !kind.is_file() {
        ExternalFile::NotRegular("FIFO, socket or device")
    } else {
        ExternalFile::Regular {
            size: meta.len(),
            links: link_count(&meta),
        }
    }
}

#[cfg(unix)]
fn link_count(meta: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::nlink(meta)
}

#[cfg(not(unix))]
fn link_count(_meta: &std::fs::Metadata) -> u64 {
    1
}

/// Whether `path`'s canonical form stays under `root` (the canonical model folder). A path
/// that cannot be canonicalised (missing) is judged by its parent folder, so a missing file
/// in a linked-out folder still counts as escaping.
fn is_inside(root: Option<&Path>, path: &Path) -> bool {
    let Some(root) = root else { return true };
    let real: Option<PathBuf> = std::fs::canonicalize(path)
        .ok()
        .or_else(|| path.parent().and_then(|p| std::fs::canonicalize(p).ok()));
    real.is_none_or(|real| real.starts_with(root))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Verdict;
    use crate::scan::Scanner;

    /// A ModelProto with one initialiser per `(name, location, offset, length)`.
    fn model(tensors: &[(&str, &str, Option<u64>, Option<u64>)]) -> Vec<u8> {
        fn field(number: u8, bytes: &[u8]) -> Vec<u8> {
            let mut out = vec![number << 3 | 2];
            let mut len = bytes.len();
            while len >= 0x80 {
                out.push((len as u8 & 0x7f) | 0x80);
                len >>= 7;
            }
            out.push(len as u8);
            out.extend_from_slice(bytes);
            out
        }
        let mut graph = Vec::new();
        for (name, location, offset, length) in tensors {
            let entry = |k: &str, v: &str| {
                field(
                    13,
                    &[field(1, k.as_bytes()), field(2, v.as_bytes())].concat(),
                )
            };
            let mut tensor = field(8, name.as_bytes());
            tensor.extend(entry("location", location));
            if let Some(o) = offset {
                tensor.extend(entry("offset", &o.to_string()));
            }
            if let Some(l) = length {
                tensor.extend(entry("length", &l.to_string()));
            }
            tensor.extend([14 << 3, 1]);
            graph.extend(field(5, &tensor));
        }
        [&b"\x08\x07"[..], &field(7, &graph)].concat()
    }

    fn scan(dir: &Path, data: &[u8]) -> crate::FileReport {
        let path = dir.join("model.onnx");
        std::fs::write(&path, data).unwrap();
        Scanner::default().scan_path(&path)
    }

    #[test]
    fn a_complete_external_data_folder_is_safe_and_summarised() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("w.bin"), [0u8; 96]).unwrap();
        let data = model(&[
            ("a", "w.bin", Some(0), Some(64)),
            ("b", "./w.bin", Some(64), None),
        ]);
        assert!(onnx::is_onnx_model(&data));
        let report = scan(dir.path(), &data);
        assert_eq!(report.format, "onnx");
        assert_eq!(report.verdict, Verdict::Safe, "{:?}", report.findings);
        assert!(
            report
                .summary
                .contains("2 external data files, 96 B checked"),
            "{}",
            report.summary
        );
        // The same bytes scanned from memory have no folder: nothing is looked up.
        let from_memory = Scanner::default().scan_bytes("model.onnx", &data);
        assert!(!from_memory.summary.contains("external data file"));
    }

    #[test]
    fn missing_short_and_traversing_files_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("short.bin"), [0u8; 8]).unwrap();
        let data = model(&[
            ("gone", "missing.bin", None, None),
            ("short", "short.bin", Some(4), Some(8)),
            ("up", "../secret", None, None),
        ]);
        let report = scan(dir.path(), &data);
        let found: Vec<_> = report
            .findings
            .iter()
            .map(|f| (f.rule, f.severity, f.message.as_str()))
            .collect();
        assert!(found.iter().any(|(r, _, m)| *r == Rule::OnnxExternalFile
            && m.contains("`missing.bin`")
            && m.contains("cannot be found")));
        assert!(found.iter().any(|(r, _, m)| *r == Rule::OnnxExternalFile
            && m.contains("`short.bin`")
            && m.contains("runs past the file's 8 bytes")));
        // `..` is the pure check's (ONNX001) and is never looked up.
        assert!(
            found
                .iter()
                .any(|(r, _, m)| *r == Rule::OnnxExternalPath && m.contains("`../secret`"))
        );
        assert!(
            report
                .summary
                .contains("2 external data files, 0 B checked"),
            "{}",
            report.summary
        );
        assert_eq!(report.verdict, Verdict::Dangerous);
    }

    #[cfg(unix)]
    #[test]
    fn links_and_linked_folders_are_reported() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("host.txt"), [1u8; 16]).unwrap();
        std::fs::create_dir(outside.path().join("sub")).unwrap();
        std::fs::write(outside.path().join("sub/w.bin"), [1u8; 16]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::os::unix::fs::symlink(outside.path().join("host.txt"), d.join("link.bin")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("sub"), d.join("sub")).unwrap();
        std::fs::write(d.join("real.bin"), [0u8; 16]).unwrap();
        std::fs::hard_link(d.join("real.bin"), d.join("hard.bin")).unwrap();
        std::fs::create_dir(d.join("folder")).unwrap();
        let data = model(&[
            ("l", "link.bin", None, None),
            ("s", "sub/w.bin", None, None),
            ("h", "hard.bin", None, Some(16)),
            ("f", "folder", None, None),
        ]);
        let report = scan(d, &data);
        let about = |location: &str| -> Vec<_> {
            report
                .findings
                .iter()
                .filter(|f| f.message.contains(&format!("`{location}`")))
                .map(|f| (f.rule, f.severity))
                .collect()
        };
        use crate::rules::Severity::{Dangerous, Suspicious};
        assert_eq!(
            about("link.bin"),
            [
                (Rule::OnnxExternalPath, Dangerous),
                (Rule::OnnxExternalFile, Dangerous)
            ]
        );
        assert_eq!(about("sub/w.bin"), [(Rule::OnnxExternalPath, Dangerous)]);
        assert_eq!(about("hard.bin"), [(Rule::OnnxExternalFile, Suspicious)]);
        assert_eq!(about("folder"), [(Rule::OnnxExternalFile, Suspicious)]);
        assert_eq!(report.verdict, Verdict::Dangerous);
    }
}
