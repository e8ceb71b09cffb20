//! The scanner: takes a file or a byte slice, routes it by content, and collects a report.
//!
//! [`Scanner`] is cheap to share across threads. Each top-level file gets a [`Ctx`] that
//! carries the member path through nested archives, the budgets (members, inflated bytes,
//! depth, time) shared by everything inside that file, and the imports and findings found.
//! Format modules receive `&mut Ctx` and report into it; they never print or touch the network.

use crate::format::Format;
pub use crate::source::guarded_map;
use crate::source::{ByteSource, LocalFile};

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

pub use crate::ctx::Ctx;
use crate::ctx::base_name;
use crate::limits::Limits;
use crate::policy::Policy;
use crate::report::{FileReport, Finding, verdict_of};
use crate::rules::Rule;

/// Scans files and byte slices under one policy and one set of limits.
#[derive(Debug, Clone)]
pub struct Scanner {
    policy: Arc<Policy>,
    limits: Limits,
    /// Threads one file's scan may use; `None`: one per CPU, looked up only when a scan
    /// could use them.
    threads: Option<usize>,
}

impl Default for Scanner {
    /// The built-in policy, default limits, one thread per file.
    fn default() -> Self {
        Scanner::new(Policy::default(), Limits::default())
    }
}

/// Files up to this size are read into memory rather than mapped ([`Scanner::scan_small_file`]).
const READ_NOT_MAP_BYTES: u64 = LocalFile::READ_NOT_MAP_BYTES;

/// The report of a file that could not be read at all (never safe: `finding` says why).
fn not_read(display: &str, finding: Finding, size: u64, started: Instant) -> FileReport {
    let findings = vec![finding];
    FileReport {
        path: display.to_string(),
        format: crate::format::Format::Unknown.name().into(),
        size,
        verdict: verdict_of(&findings),
        imports: Vec::new(),
        findings,
        members: Vec::new(),
        summary: "not read".into(),
        elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
    }
}

impl Scanner {
    pub fn new(policy: Policy, limits: Limits) -> Self {
        Scanner {
            policy: Arc::new(policy),
            limits,
            threads: Some(1),
        }
    }

    /// Lets one file's scan use up to `threads` threads (`None`: one per CPU). Only reading
    /// the local headers of a PyTorch zip with thousands of records is split today. Callers
    /// that already scan several files in parallel should leave it at 1.
    pub fn with_threads(mut self, threads: Option<usize>) -> Self {
        self.threads = threads.map(|n| n.max(1));
        self
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Scans one file from disk (memory-mapped). Never panics: I/O problems and internal
    /// errors become findings that mark the file unscannable. An ONNX model also has its
    /// external data files checked in its folder ([`crate::formats::onnx::folder`]; metadata only).
    ///
    /// A file that changes while it is scanned is reported unscannable (GEN002): its size and
    /// modification time are compared before and after, and a mapped file truncated under
    /// the scan reads as zeros past the cut instead of raising SIGBUS ([`guarded_map`]).
    pub fn scan_path(&self, path: &Path) -> FileReport {
        let started = Instant::now();
        let display = path.display().to_string();
        let fail = |rule: Rule, message: String, size: u64| {
            not_read(&display, Finding::new(rule, message), size, started)
        };
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) => return fail(Rule::ReadError, format!("cannot open: {e}"), 0),
        };
        let before = match file.metadata() {
            Ok(m) => m,
            Err(e) => return fail(Rule::ReadError, format!("cannot stat: {e}"), 0),
        };
        let size = before.len();
        if let Some(max) = self.limits.max_file_size
            && size > max
        {
            return fail(
                Rule::FileTooLarge,
                format!("{size} bytes is over the {max}-byte limit (--max-file-size)"),
                size,
            );
        }
        let (mut report, faulted) = self.scan_open_file(path, &display, &file, size, started);
        report_change(&mut report, &before, file.metadata().ok(), faulted);
        report
    }

    /// Scans an opened file of `size` bytes: read when small, mapped when large (through a
    /// sparse image for a large PyTorch zip). Also says whether the mapping lost pages
    /// under the scan ([`guarded_map`]).
    fn scan_open_file(
        &self,
        path: &Path,
        display: &str,
        file: &std::fs::File,
        size: u64,
        started: Instant,
    ) -> (FileReport, bool) {
        if size == 0 {
            return (self.scan_bytes(display, &[]), false);
        }
        #[cfg(unix)]
        if let Some(image) = large_torch_zip_image(file, size, self.threads) {
            let mut report = self.scan_zip_image(display, &image);
            report.elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
            return (report, false);
        }
        if size <= READ_NOT_MAP_BYTES {
            return (
                self.scan_small_file(path, display, file, size, started),
                false,
            );
        }
        match LocalFile::map(file) {
            Ok(map) => {
                #[cfg(test)]
                tests::after_map(path);
                // A zip is read by jumping between headers: readahead around each jump would
                // pull megabytes of tensor data into memory for nothing.
                if map.bytes().starts_with(b"PK\x03\x04") {
                    map.advise_random();
                }
                let report = self.scan_file_bytes(path, display, map.bytes(), started);
                (report, map.faulted())
            }
            Err(e) => {
                let finding = Finding::new(Rule::ReadError, format!("cannot map: {e}"));
                (not_read(display, finding, size, started), false)
            }
        }
    }

    /// Scans a file of at most [`READ_NOT_MAP_BYTES`] read into memory: for small files a
    /// read costs less than a map (its page faults, and the unmap's TLB shootdown across the
    /// scanning threads), and a file truncated meanwhile cannot raise SIGBUS.
    fn scan_small_file(
        &self,
        path: &Path,
        display: &str,
        file: &std::fs::File,
        size: u64,
        started: Instant,
    ) -> FileReport {
        match LocalFile::read(file, size) {
            Ok(data) => self.scan_file_bytes(path, display, data.bytes(), started),
            Err(e) => {
                let finding = Finding::new(Rule::ReadError, format!("cannot read: {e}"));
                not_read(display, finding, size, started)
            }
        }
    }

    /// Scans the bytes of the file at `path`, by content; an ONNX model also has its external
    /// data checked in the file's folder.
    fn scan_file_bytes(
        &self,
        path: &Path,
        display: &str,
        data: &[u8],
        started: Instant,
    ) -> FileReport {
        let folder = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let mut report = self.scan_with(display, data, |ctx, data| {
            let format = crate::formats::route(ctx, data);
            if format == Format::Onnx {
                crate::formats::onnx::folder::check_external_data(ctx, data, folder);
            }
            format
        });
        report.elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
        report
    }

    /// Scans bytes already in memory. `display_path` names them in the report.
    pub fn scan_bytes(&self, display_path: &str, data: &[u8]) -> FileReport {
        self.scan_with(display_path, data, crate::formats::route)
    }

    /// Scans bytes with a given format entry point instead of routing by content (used when
    /// the caller already knows what the bytes are, e.g. a member found by name, and by the
    /// per-format fuzz targets and tests). Same panic isolation as [`Scanner::scan_bytes`].
    pub fn scan_with(
        &self,
        display_path: &str,
        data: &[u8],
        scan: impl FnOnce(&mut Ctx, &[u8]) -> Format,
    ) -> FileReport {
        self.scan_sized(display_path, data.len() as u64, |ctx| scan(ctx, data))
    }

    /// Scans the sparse image of a PyTorch zip ([`crate::containers::zip_image`]); the
    /// report is the one scanning the whole file would give.
    #[cfg(unix)]
    pub fn scan_zip_image(
        &self,
        display_path: &str,
        image: &crate::containers::zip_image::SparseFile,
    ) -> FileReport {
        self.scan_sized(display_path, image.len(), |ctx| {
            crate::formats::zipped::scan_torch_image(ctx, image)
        })
    }

    /// Runs `scan` on a fresh context for a file of `size` bytes, isolating panics.
    pub(crate) fn scan_sized(
        &self,
        display_path: &str,
        size: u64,
        scan: impl FnOnce(&mut Ctx) -> Format,
    ) -> FileReport {
        let started = Instant::now();
        let mut ctx = self.new_ctx(started);
        ctx.file_name = base_name(display_path).to_string();
        ctx.inflated_budget = self.limits.inflated_budget(size);
        let format = match catch_unwind(AssertUnwindSafe(|| scan(&mut ctx))) {
            Ok(format) => format,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                ctx.clear_member_path();
                ctx.report(Finding::new(
                    Rule::InternalError,
                    format!("internal error while scanning: {what}"),
                ));
                Format::Unknown
            }
        };
        crate::checks::run(&mut ctx);
        ctx.finish(display_path, format, size)
    }
}

impl Scanner {
    /// Runs `f` with a fresh per-file context under this scanner's policy and limits, for
    /// callers that drive format code themselves (the converter runs the pickle machine in
    /// one). Findings reported into it are dropped.
    pub fn with_ctx<R>(&self, f: impl FnOnce(&mut Ctx) -> R) -> R {
        let mut ctx = self.new_ctx(Instant::now());
        f(&mut ctx)
    }

    /// A fresh per-file context under this scanner's policy and limits, routing archive
    /// members by content ([`crate::formats::ROUTER`]).
    pub(crate) fn new_ctx(&self, started: Instant) -> Ctx<'_> {
        Ctx::new(&self.policy, &self.limits, crate::formats::ROUTER, started)
    }
}

/// A large PyTorch zip is scanned through a sparse image holding only the bytes the scan reads
/// (see [`crate::containers::zip_image`]).
#[cfg(unix)]
fn large_torch_zip_image(
    file: &std::fs::File,
    size: u64,
    threads: Option<usize>,
) -> Option<crate::containers::zip_image::SparseFile> {
    use std::os::unix::fs::FileExt;
    if size < crate::containers::zip_image::MIN_IMAGE_SIZE {
        return None;
    }
    let mut magic = [0u8; 4];
    file.read_exact_at(&mut magic, 0).ok()?;
    if &magic != b"PK\x03\x04" {
        return None;
    }
    crate::containers::zip_image::torch_zip_image(file, size, threads)
}

/// Adds a GEN002 finding (and recomputes the verdict) when the file changed during its scan:
/// a mapped page vanished (`faulted`), or its size or modification time differs from
/// `before`. What was scanned may then not be what is on disk, so it is never called safe.
fn report_change(
    report: &mut FileReport,
    before: &std::fs::Metadata,
    after: Option<std::fs::Metadata>,
    faulted: bool,
) {
    let mut what = Vec::new();
    if faulted {
        what.push("it shrank while mapped (the bytes past the cut read as zeros)".to_string());
    }
    match &after {
        Some(after) if after.len() != before.len() => what.push(format!(
            "its size went from {} to {} bytes",
            before.len(),
            after.len()
        )),
        Some(after) if after.modified().ok() != before.modified().ok() => {
            what.push("its modification time changed".to_string())
        }
        Some(_) => {}
        None => what.push("it could not be looked at again after the scan".to_string()),
    }
    if what.is_empty() {
        return;
    }
    report.findings.push(Finding::new(
        Rule::ReadError,
        format!("the file changed during the scan: {}", what.join("; ")),
    ));
    report.verdict = verdict_of(&report.findings);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::io::Write;

    type Hook = Box<dyn Fn(&Path)>;

    thread_local! {
        /// Runs right after `scan_path` maps a file (on this thread), to change it under the scan.
        static AFTER_MAP: RefCell<Option<Hook>> = RefCell::new(None);
    }

    pub(super) fn after_map(path: &Path) {
        AFTER_MAP.with(|hook| {
            if let Some(hook) = hook.borrow().as_ref() {
                hook(path);
            }
        });
    }

    /// A pickle of one `size`-byte string: read to its end, so every page is touched.
    fn big_pickle(size: usize) -> Vec<u8> {
        let mut data = b"\x80\x04X".to_vec();
        data.extend_from_slice(&(size as u32).to_le_bytes());
        data.extend(std::iter::repeat_n(b'a', size));
        data.push(b'.');
        data
    }

    #[test]
    fn a_file_truncated_while_mapped_is_unscannable_not_a_signal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shrinks.pkl");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(&big_pickle(4 << 20))
            .unwrap();
        let intact = Scanner::default().scan_path(&path);
        assert_eq!(
            intact.verdict,
            crate::Verdict::Safe,
            "{:?}",
            intact.findings
        );
        AFTER_MAP.with(|hook| {
            *hook.borrow_mut() = Some(Box::new(|path: &Path| {
                let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
                file.set_len(4096).unwrap();
            }))
        });
        let report = Scanner::default().scan_path(&path);
        AFTER_MAP.with(|hook| hook.borrow_mut().take());
        assert_eq!(
            report.verdict,
            crate::Verdict::Unscannable,
            "{:?}",
            report.findings
        );
        let change = report
            .findings
            .iter()
            .find(|f| f.rule == Rule::ReadError)
            .expect("a GEN002 finding");
        assert!(
            change.message.contains("changed during the scan"),
            "{}",
            change.message
        );
        assert!(
            change.message.contains("shrank while mapped"),
            "{}",
            change.message
        );
    }

    #[test]
    fn a_file_rewritten_during_the_scan_is_unscannable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grows.pkl");
        std::fs::write(&path, big_pickle(1 << 20)).unwrap();
        AFTER_MAP.with(|hook| {
            *hook.borrow_mut() = Some(Box::new(|path: &Path| {
                let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
                file.write_all(b"more").unwrap();
            }))
        });
        let report = Scanner::default().scan_path(&path);
        AFTER_MAP.with(|hook| hook.borrow_mut().take());
        assert_eq!(
            report.verdict,
            crate::Verdict::Unscannable,
            "{:?}",
            report.findings
        );
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.message.contains("size went from"))
        );
    }
}
