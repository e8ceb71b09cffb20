//! Writing the report to `-o FILE` without harming anything that was there.
//!
//! - FILE must be absent or a regular file. A symbolic link, FIFO, socket or device is refused
//!   (renaming onto a link replaces the link, and a FIFO or device is not a report's place);
//!   `-o -` means stdout, which may be a terminal or a pipe.
//! - FILE must not be any scanned input, compared by device and inode (so a hard link, or a
//!   path through a symbolic link to the input, is caught too): overwriting the input with
//!   its own report would destroy the evidence, and the next scan would read the report.
//! - The report is written to `.airlock-<pid>-<random>.partial` beside FILE and renamed over
//!   it, so a reader never sees half a report. The temporary file is registered with a signal
//!   handler ([`ctrlc`], with its `termination` feature: SIGINT, SIGTERM and SIGHUP on Unix)
//!   that deletes it before the process exits 130. `ctrlc` runs the handler on its own thread
//!   (not in signal context, so deleting a file there is allowed), and is small and widely
//!   used; `signal-hook` would need the same thread by hand.
//! - A kill -9 or a crash can still leave a `.partial` behind; the next `-o` into the same
//!   folder deletes every `.airlock-<pid>-*.partial` whose process is gone and that is older
//!   than [`STALE_AFTER`] (the age guard spares a live writer in another PID namespace).
//! - Error messages name FILE, never the temporary name.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::walk::FileId;

/// Temporary report files older than this whose process is gone are removed.
pub const STALE_AFTER: Duration = Duration::from_secs(600);

const PREFIX: &str = ".airlock-";
const SUFFIX: &str = ".partial";

/// `-o -`: stdout.
pub fn is_stdout(path: &Path) -> bool {
    path == Path::new("-")
}

/// Refuses a target that is not a regular file, or that is one of `inputs`.
pub fn check_target(target: &Path, inputs: &[FileId]) -> Result<()> {
    let meta = match std::fs::symlink_metadata(target) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(plain(e)).with_context(|| format!("cannot use {}", target.display()));
        }
    };
    let kind = meta.file_type();
    if kind.is_symlink() {
        bail!(
            "refusing to write the report to {}: it is a symbolic link (give its target, or \
             another name)",
            target.display()
        );
    }
    if !kind.is_file() {
        bail!(
            "refusing to write the report to {}: not a regular file (a folder, FIFO, socket \
             or device); use `-o -` for stdout",
            target.display()
        );
    }
    if let Some(id) = FileId::of(&meta)
        && inputs.contains(&id)
    {
        bail!(
            "refusing to write the report to {}: it is one of the scanned inputs (write it \
             elsewhere, or leave it out with --exclude)",
            target.display()
        );
    }
    Ok(())
}

/// Writes through `write` into a temporary file beside `path`, then renames it into place.
pub fn write_atomically(
    path: &Path,
    inputs: &[FileId],
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    remove_stale(dir);
    let context = || format!("cannot write the report to {}", path.display());
    // Mode 0666 less the umask, as the shell's `>` would create the report (tempfile's
    // default is a private 0600).
    let mut builder = tempfile::Builder::new();
    let prefix = format!("{PREFIX}{}-", std::process::id());
    builder.prefix(&prefix).suffix(SUFFIX);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut temp = builder
        .tempfile_in(dir)
        .map_err(plain)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))
        .with_context(context)?;
    let guard = Registered::new(temp.path().to_path_buf());
    {
        let mut out = std::io::BufWriter::new(temp.as_file_mut());
        write(&mut out).map_err(plain).with_context(context)?;
        out.flush().map_err(plain).with_context(context)?;
    }
    // Checked again just before the rename: the target may have changed during the scan.
    check_target(path, inputs)?;
    temp.persist(path)
        .map_err(|e| plain(e.error))
        .with_context(context)?;
    drop(guard);
    Ok(())
}

/// An I/O error without the temporary file's name in its message. tempfile wraps the OS
/// error in one that prints `<os error> at path "<temporary name>"` and does not expose the
/// OS error itself, so the suffix is cut from the text.
pub fn plain(error: std::io::Error) -> std::io::Error {
    if error.raw_os_error().is_some() {
        return error;
    }
    let text = error.to_string();
    match text.split_once(" at path ") {
        Some((head, _)) => std::io::Error::new(error.kind(), head.to_string()),
        None => error,
    }
}

/// Temporary files to delete if the process is interrupted, and folders in which every
/// `.airlock-<our pid>-*.partial` is deleted then (the converter's outputs, which the core
/// creates).
fn registry() -> &'static Mutex<Vec<PathBuf>> {
    static REGISTRY: OnceLock<Mutex<Vec<PathBuf>>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        // Installed once, on first use; failure to install (another handler) leaves only the
        // stale-file cleanup of later runs.
        let _ = ctrlc::set_handler(|| {
            if let Ok(paths) = registry().lock() {
                for path in paths.iter() {
                    if path.is_dir() {
                        remove_own(path);
                    } else {
                        let _ = std::fs::remove_file(path);
                    }
                }
            }
            std::process::exit(130);
        });
        Mutex::new(Vec::new())
    })
}

/// For `airlock convert`: removes stale temporaries in `dir` left by processes that are gone,
/// and has this process's own (`.airlock-<pid>-*.partial`, named so by the core converter)
/// deleted there if a signal interrupts it.
pub fn guard_folder(dir: &Path) {
    remove_stale(dir);
    if let Ok(mut paths) = registry().lock() {
        paths.push(dir.to_path_buf());
    }
}

/// Deletes this process's `.airlock-<pid>-*.partial` files in `dir`.
fn remove_own(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_str().and_then(stale_pid) == Some(std::process::id()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Keeps `path` registered for deletion on a signal while it lives.
struct Registered(PathBuf);

impl Registered {
    fn new(path: PathBuf) -> Registered {
        if let Ok(mut paths) = registry().lock() {
            paths.push(path.clone());
        }
        Registered(path)
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut paths) = registry().lock() {
            paths.retain(|p| p != &self.0);
        }
    }
}

/// Deletes `.airlock-<pid>-*.partial` files in `dir` left by processes that are gone.
fn remove_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(stale_pid) else {
            continue;
        };
        let old = entry
            .metadata()
            .ok()
            .filter(|m| m.is_file())
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= STALE_AFTER);
        if old && !process_alive(pid) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The pid in `.airlock-<pid>-<random>.partial`, if `name` has that shape.
fn stale_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    let (pid, random) = rest.split_once('-')?;
    (!random.is_empty()).then_some(())?;
    pid.parse().ok()
}

/// Whether a process with this id exists (Linux: `/proc/<pid>`; elsewhere assumed alive, so
/// nothing is removed).
fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_the_os_error_and_drop_the_temporary_name() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let error = tempfile::Builder::new()
            .prefix(".airlock-1-")
            .tempfile_in(&missing)
            .unwrap_err();
        assert!(error.to_string().contains(".airlock-1-"), "{error}");
        let text = plain(error).to_string();
        assert!(!text.contains(".airlock-"), "{text}");
        assert!(text.contains("os error"), "{text}");
    }

    /// Set in the child process of [`a_signal_removes_registered_files`].
    const SIGNAL_CHILD: &str = "AIRLOCK_TEST_SIGNAL_CHILD";

    /// Run as a child: registers the file named by [`SIGNAL_CHILD`], sends itself SIGTERM and
    /// waits for the handler to delete the file and exit. A no-op in a normal test run.
    #[test]
    fn signal_child() {
        let Some(path) = std::env::var_os(SIGNAL_CHILD) else {
            return;
        };
        let _guard = Registered::new(PathBuf::from(path));
        let pid = std::process::id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        std::thread::sleep(Duration::from_secs(10));
        panic!("still alive 10 s after SIGTERM");
    }

    #[cfg(unix)]
    #[test]
    fn a_signal_removes_registered_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".airlock-1-x.partial");
        std::fs::write(&path, b"half a report").unwrap();
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "outfile::tests::signal_child", "--nocapture"])
            .env(SIGNAL_CHILD, &path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(130), "{status:?}");
        assert!(!path.exists(), "the handler removed the temporary file");
    }

    #[test]
    fn temporary_names_are_recognised() {
        assert_eq!(stale_pid(".airlock-123-abcDEF.partial"), Some(123));
        // The converter's outputs (core `convert::write::output_temp_file`).
        assert_eq!(stale_pid(".airlock-123-model.AbC12x.partial"), Some(123));
        assert_eq!(stale_pid(".airlock-123-.partial"), None);
        assert_eq!(stale_pid("airlock-123-x.partial"), None);
        assert_eq!(stale_pid(".airlock-x-y.partial"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn stale_files_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        // Pids above the kernel's pid_max (4194304 at most) never exist.
        let dead = dir.path().join(".airlock-99999999-abc.partial");
        let live = dir
            .path()
            .join(format!(".airlock-{}-abc.partial", std::process::id()));
        let fresh = dir.path().join(".airlock-99999998-abc.partial");
        for path in [&dead, &live, &fresh] {
            std::fs::write(path, b"x").unwrap();
        }
        let old = std::time::SystemTime::now() - STALE_AFTER - Duration::from_secs(1);
        for path in [&dead, &live] {
            std::fs::File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        remove_stale(dir.path());
        assert!(!dead.exists());
        assert!(live.exists(), "our own pid is alive");
        assert!(fresh.exists(), "too young to be stale");
    }
}
