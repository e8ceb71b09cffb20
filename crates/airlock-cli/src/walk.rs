//! Finds the files to scan: every file under the given paths, in sorted order.
//!
//! A scanner must see every file, so `.gitignore`, hidden-file and other filters are off.
//! Symbolic links are followed (a Hugging Face cache is symlinks into a blob store), with loop
//! detection by the walker. `--exclude` globs prune files and whole folders.
//!
//! Every path named on the command line becomes an entry, never a silent skip: a file is a
//! [`Entry::File`], a missing or unreadable path an [`Entry::Unreadable`] (counted
//! unscannable), and `-`, a FIFO, a `<(...)` substitution, `/dev/stdin` or a device an
//! [`Entry::Stream`], read once into a spool file ([`crate::stream`]).
//!
//! Inside a folder, FIFOs, sockets and devices are skipped with a warning and not counted:
//! opening a FIFO nobody writes blocks forever (and steals the writer's data), and a device
//! can be endless (`/dev/zero`), so a walk does not read what nobody asked for by name. Name
//! such a path on the command line to have it read.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use globset::{Glob, GlobSet, GlobSetBuilder};

/// One thing the walk produced: a file to scan, or a path that could not be walked.
#[derive(Debug)]
pub enum Entry {
    File {
        path: PathBuf,
        size: u64,
        /// Device and inode (through symbolic links), to refuse `-o` onto an input.
        id: Option<FileId>,
    },
    /// A path named on the command line that is not a regular file or folder (or `-` for
    /// standard input): read as a stream.
    Stream { path: PathBuf, id: Option<FileId> },
    /// A path that exists (or was named) but could not be listed or read.
    Unreadable { path: PathBuf, error: String },
}

impl Entry {
    pub fn path(&self) -> &Path {
        match self {
            Entry::File { path, .. }
            | Entry::Stream { path, .. }
            | Entry::Unreadable { path, .. } => path,
        }
    }

    /// The device and inode of the file behind the entry, when known.
    pub fn id(&self) -> Option<FileId> {
        match self {
            Entry::File { id, .. } | Entry::Stream { id, .. } => *id,
            Entry::Unreadable { .. } => None,
        }
    }
}

/// Device and inode number: what makes two paths the same file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    #[cfg(unix)]
    pub fn of(meta: &std::fs::Metadata) -> Option<FileId> {
        use std::os::unix::fs::MetadataExt;
        Some(FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    #[cfg(not(unix))]
    pub fn of(_meta: &std::fs::Metadata) -> Option<FileId> {
        None
    }
}

/// The name that means standard input.
pub const STDIN: &str = "-";

/// The result of walking: entries in sorted path order, and warnings for things skipped.
#[derive(Debug, Default)]
pub struct Walked {
    pub entries: Vec<Entry>,
    pub warnings: Vec<String>,
}

/// Compiles `--exclude` globs.
pub fn exclude_set(globs: &[String]) -> Result<GlobSet> {
    let mut builder = GlobSetBuilder::new();
    for glob in globs {
        builder.add(Glob::new(glob).with_context(|| format!("invalid --exclude glob `{glob}`"))?);
    }
    builder.build().context("cannot compile --exclude globs")
}

fn is_excluded(excludes: &GlobSet, path: &Path) -> bool {
    !excludes.is_empty()
        && (excludes.is_match(path) || path.file_name().is_some_and(|n| excludes.is_match(n)))
}

/// Walks `roots` and returns every regular file in them, sorted by path.
pub fn collect(roots: &[PathBuf], excludes: &GlobSet) -> Walked {
    let mut walked = Walked::default();
    for root in roots {
        walk_root(root, excludes, &mut walked);
    }
    walked.entries.sort_by(|a, b| a.path().cmp(b.path()));
    walked.entries.dedup_by(|a, b| a.path() == b.path());
    walked
}

fn walk_root(root: &Path, excludes: &GlobSet, walked: &mut Walked) {
    if root == Path::new(STDIN) {
        let id = stdin_id();
        walked.entries.push(Entry::Stream {
            path: root.to_path_buf(),
            id,
        });
        return;
    }
    let meta = match std::fs::metadata(root) {
        Ok(meta) => meta,
        Err(error) => {
            // A named path that does not exist is reported like a file that cannot be read,
            // so it is never silently skipped.
            walked.entries.push(Entry::Unreadable {
                path: root.to_path_buf(),
                error: error.to_string(),
            });
            return;
        }
    };
    if meta.is_file() {
        // A named file (or a link to one) is its own walk: the entry the walker would give,
        // without setting a walker up.
        walked.entries.push(Entry::File {
            path: without_dot_prefix(root.to_path_buf()),
            size: meta.len(),
            id: FileId::of(&meta),
        });
        return;
    }
    if !meta.is_dir() {
        walked.entries.push(Entry::Stream {
            path: root.to_path_buf(),
            id: FileId::of(&meta),
        });
        return;
    }
    let excludes_for_filter = excludes.clone();
    let walker = ignore::WalkBuilder::new(root)
        .standard_filters(false)
        .follow_links(true)
        .filter_entry(move |entry| {
            entry.depth() == 0 || !is_excluded(&excludes_for_filter, entry.path())
        })
        .build();
    for result in walker {
        match result {
            // Paths named on the command line (depth 0) are scanned even when they match an
            // exclude glob; everything below them is pruned by `filter_entry`.
            Ok(entry) => push_entry(entry, walked),
            Err(error) => record_walk_error(error, walked),
        }
    }
}

fn push_entry(entry: ignore::DirEntry, walked: &mut Walked) {
    let Some(file_type) = entry.file_type() else {
        return; // stdin: never produced for real paths
    };
    if file_type.is_dir() {
        return;
    }
    if !file_type.is_file() {
        walked.warnings.push(format!(
            "{}: not a regular file (socket, FIFO or device); skipped (name it to read it)",
            entry.path().display()
        ));
        return;
    }
    match entry.metadata() {
        Ok(meta) => walked.entries.push(Entry::File {
            path: without_dot_prefix(entry.into_path()),
            size: meta.len(),
            id: FileId::of(&meta),
        }),
        Err(error) => walked.entries.push(Entry::Unreadable {
            path: entry.into_path(),
            error: error.to_string(),
        }),
    }
}

/// The device and inode of standard input (for `-o` onto the file stdin is redirected from).
fn stdin_id() -> Option<FileId> {
    #[cfg(unix)]
    {
        std::fs::metadata("/dev/stdin")
            .ok()
            .and_then(|m| FileId::of(&m))
    }
    #[cfg(not(unix))]
    None
}

/// `./a/b.pkl` → `a/b.pkl`: walking `.` should show paths the way a user types them.
fn without_dot_prefix(path: PathBuf) -> PathBuf {
    match path.strip_prefix(".") {
        Ok(rest) if !rest.as_os_str().is_empty() => rest.to_path_buf(),
        _ => path,
    }
}

fn record_walk_error(error: ignore::Error, walked: &mut Walked) {
    let (path, inner) = split_walk_error(&error);
    match (inner, path) {
        (ignore::Error::Loop { ancestor, child }, _) => walked.warnings.push(format!(
            "{}: symbolic link loop back to {}; not followed",
            child.display(),
            ancestor.display()
        )),
        (_, Some(path)) => {
            // walkdir wraps the OS error in "IO error for operation on <path>: ..."; the path
            // is already in the report, so keep the OS error alone when there is one.
            let text = inner.to_string();
            let wrapper = format!("IO error for operation on {}: ", path.display());
            let cause = text.strip_prefix(&wrapper).unwrap_or(&text).to_string();
            let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
            let error = if is_link {
                format!("broken symbolic link: {cause}")
            } else {
                cause
            };
            walked.entries.push(Entry::Unreadable {
                path: without_dot_prefix(path.to_path_buf()),
                error,
            });
        }
        (_, None) => walked.warnings.push(format!("walk error: {error}")),
    }
}

/// Peels `WithPath`/`WithDepth` wrappers, keeping the innermost path.
fn split_walk_error(mut error: &ignore::Error) -> (Option<&Path>, &ignore::Error) {
    let mut path = None;
    loop {
        match error {
            ignore::Error::WithPath { path: p, err } => {
                path = Some(p.as_path());
                error = err;
            }
            ignore::Error::WithDepth { err, .. } => error = err,
            _ => return (path, error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(walked: &Walked) -> Vec<String> {
        walked
            .entries
            .iter()
            .map(|e| e.path().to_string_lossy().replace('\\', "/"))
            .collect()
    }

    #[test]
    fn sees_hidden_and_ignored_files_in_sorted_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join(".gitignore"), "*.pkl\n").unwrap();
        std::fs::create_dir(root.join(".hidden")).unwrap();
        std::fs::write(root.join(".hidden/b.pkl"), b"x").unwrap();
        std::fs::write(root.join("a.pkl"), b"x").unwrap();
        let walked = collect(&[root.to_path_buf()], &exclude_set(&[]).unwrap());
        let prefix = root.to_string_lossy().replace('\\', "/");
        let got: Vec<_> = paths(&walked)
            .into_iter()
            .map(|p| p.trim_start_matches(&prefix).to_string())
            .collect();
        assert_eq!(got, ["/.gitignore", "/.hidden/b.pkl", "/a.pkl"]);
    }

    #[test]
    fn excludes_prune_files_and_folders() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("skip")).unwrap();
        std::fs::write(root.join("skip/x.bin"), b"x").unwrap();
        std::fs::write(root.join("keep.bin"), b"x").unwrap();
        std::fs::write(root.join("notes.txt"), b"x").unwrap();
        let excludes = exclude_set(&["skip".into(), "*.txt".into()]).unwrap();
        let walked = collect(&[root.to_path_buf()], &excludes);
        assert_eq!(walked.entries.len(), 1);
        assert!(walked.entries[0].path().ends_with("keep.bin"));
        let named = collect(&[root.join("notes.txt")], &excludes);
        assert_eq!(
            named.entries.len(),
            1,
            "a file named on the command line is scanned"
        );
    }

    #[test]
    fn missing_paths_are_reported_not_skipped() {
        let walked = collect(
            &[PathBuf::from("/definitely/not/here")],
            &exclude_set(&[]).unwrap(),
        );
        assert!(matches!(
            walked.entries.as_slice(),
            [Entry::Unreadable { .. }]
        ));
    }

    #[cfg(unix)]
    #[test]
    fn follows_symlinks_without_looping() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("blobs")).unwrap();
        std::fs::create_dir_all(root.join("snap")).unwrap();
        std::fs::write(root.join("blobs/abc"), b"x").unwrap();
        std::os::unix::fs::symlink("../blobs/abc", root.join("snap/model.bin")).unwrap();
        std::os::unix::fs::symlink(".", root.join("snap/loop")).unwrap();
        let walked = collect(&[root.join("snap")], &exclude_set(&[]).unwrap());
        assert_eq!(walked.entries.len(), 1, "{walked:?}");
        assert!(walked.entries[0].path().ends_with("snap/model.bin"));
        assert!(
            walked.warnings.iter().any(|w| w.contains("loop")),
            "{walked:?}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn named_fifos_are_streams_and_fifos_in_folders_are_warned_about() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let named = collect(
            &[fifo.clone(), PathBuf::from("-")],
            &exclude_set(&[]).unwrap(),
        );
        assert!(
            named
                .entries
                .iter()
                .all(|e| matches!(e, Entry::Stream { .. })),
            "{named:?}"
        );
        assert_eq!(named.entries.len(), 2);
        let walked = collect(&[dir.path().to_path_buf()], &exclude_set(&[]).unwrap());
        assert!(walked.entries.is_empty(), "{walked:?}");
        assert!(walked.warnings[0].contains("skipped"), "{walked:?}");
    }

    #[cfg(unix)]
    #[test]
    fn broken_links_are_unreadable_entries() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("nowhere", dir.path().join("model.bin")).unwrap();
        let walked = collect(&[dir.path().to_path_buf()], &exclude_set(&[]).unwrap());
        match walked.entries.as_slice() {
            [Entry::Unreadable { path, error }] => {
                assert!(path.ends_with("model.bin"));
                assert!(error.starts_with("broken symbolic link: "), "{error}");
                assert!(!error.contains("IO error for operation"), "{error}");
            }
            other => panic!("{other:?}"),
        }
    }
}
