//! The scanner: takes a file or a byte slice, routes it by content, and collects a report.
//!
//! [`Scanner`] is cheap to share across threads. Each top-level file gets a [`Ctx`] that
//! carries the member path through nested archives, the budgets (members, inflated bytes,
//! depth, time) shared by everything inside that file, and the imports and findings found.
//! Format modules receive `&mut Ctx` and report into it; they never print or touch the network.

pub use crate::source::guarded_map;
use crate::source::{ByteSource, LocalFile};
pub mod onnx_folder;

use crate::hash::{HashSet, HashSetExt};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::limits::Limits;
use crate::policy::{Assessment, Policy};
use crate::report::{FileReport, Finding, Import, MemberSummary, verdict_of};
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
        format: "unknown".into(),
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
    /// external data files checked in its folder ([`onnx_folder`]; metadata only).
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
            if format == "onnx" {
                onnx_folder::check_external_data(ctx, data, folder);
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
        scan: impl FnOnce(&mut Ctx, &[u8]) -> &'static str,
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
            crate::containers::zip::scan_torch_image(ctx, image)
        })
    }

    /// Runs `scan` on a fresh context for a file of `size` bytes, isolating panics.
    pub(crate) fn scan_sized(
        &self,
        display_path: &str,
        size: u64,
        scan: impl FnOnce(&mut Ctx) -> &'static str,
    ) -> FileReport {
        let started = Instant::now();
        let mut ctx = Ctx::new(self, started);
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
                ctx.member.clear();
                ctx.report(Finding::new(
                    Rule::InternalError,
                    format!("internal error while scanning: {what}"),
                ));
                "unknown"
            }
        };
        ctx.finish(display_path, format, size)
    }
}

impl Scanner {
    /// Runs `f` with a fresh per-file context under this scanner's policy and limits, for
    /// callers that drive format code themselves (the converter runs the pickle machine in
    /// one). Findings reported into it are dropped.
    pub fn with_ctx<R>(&self, f: impl FnOnce(&mut Ctx) -> R) -> R {
        let mut ctx = Ctx::new(self, Instant::now());
        f(&mut ctx)
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

/// The last component of a `/`- or `\\`-separated path.
fn base_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// Per-file scanning state shared by every format module that looks at that file.
pub struct Ctx<'s> {
    scanner: &'s Scanner,
    started: Instant,
    /// Base name of the top-level file (from the display path); see [`Ctx::current_name`].
    file_name: String,
    /// Set while scanning a pickle `torch.jit` reads with its own unpickler: the qualified
    /// names the archive's TorchScript code defines.
    jit_pickle: Option<std::sync::Arc<crate::hash::HashSet<String>>>,
    member: Vec<String>,
    depth: usize,
    members_opened: u64,
    inflated_bytes: u64,
    /// Decompressed bytes allowed for this file ([`Limits::inflated_budget`]).
    inflated_budget: u64,
    /// Set once the decompression budget was reported (reported once per file).
    inflated_over: bool,
    /// Decompressed bytes held in memory for this file ([`crate::containers::inflated`]).
    inflated_memory: crate::containers::inflated::MemoryBudget,
    timed_out: bool,
    imports: Vec<Import>,
    findings: Vec<Finding>,
    members: Vec<MemberSummary>,
    notes: Vec<String>,
    seen_imports: HashSet<(String, String, Option<String>)>,
}

/// A point to return to when a probe (trying bytes as a format) turns out wrong.
#[derive(Debug, Clone, Copy)]
pub struct Checkpoint {
    findings: usize,
    imports: usize,
    members: usize,
    notes: usize,
}

impl<'s> Ctx<'s> {
    pub(crate) fn new(scanner: &'s Scanner, started: Instant) -> Self {
        Ctx {
            scanner,
            started,
            file_name: String::new(),
            jit_pickle: None,
            member: Vec::new(),
            depth: 0,
            members_opened: 0,
            inflated_bytes: 0,
            inflated_budget: scanner.limits.max_inflated_bytes,
            inflated_over: false,
            inflated_memory: crate::containers::inflated::MemoryBudget::new(
                scanner.limits.max_inflated_in_memory,
            ),
            timed_out: false,
            imports: Vec::new(),
            findings: Vec::new(),
            members: Vec::new(),
            notes: Vec::new(),
            seen_imports: HashSet::new(),
        }
    }

    /// Remembers how much has been reported so far.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            findings: self.findings.len(),
            imports: self.imports.len(),
            members: self.members.len(),
            notes: self.notes.len(),
        }
    }

    /// Forgets everything reported since `cp`, except a timeout: the time is spent and every
    /// later loop stops on it, so forgetting its finding could call a file safe after a scan
    /// the timeout cut short (a probe that timed out, then rolled back).
    pub fn rollback(&mut self, cp: Checkpoint) {
        let timeout = self
            .findings
            .get(cp.findings..)
            .and_then(|since| since.iter().find(|f| f.rule == Rule::Timeout).cloned());
        self.findings.truncate(cp.findings);
        self.findings.extend(timeout);
        for import in self.imports.drain(cp.imports..) {
            self.seen_imports
                .remove(&(import.module, import.name, import.member));
        }
        self.members.truncate(cp.members);
        self.notes.truncate(cp.notes);
    }

    pub fn policy(&self) -> &'s Policy {
        &self.scanner.policy
    }

    pub fn limits(&self) -> &'s Limits {
        &self.scanner.limits
    }

    /// The `/`-joined path of the archive member being scanned, if inside one.
    pub fn member_path(&self) -> Option<String> {
        (!self.member.is_empty()).then(|| self.member.join("/"))
    }

    /// Rates a global the way the loader reading the current pickle resolves it: the policy
    /// (a Python import), except in the pickles `torch.jit` reads with its own unpickler
    /// ([`crate::formats::torchscript::assess_jit_global`]).
    pub fn assess(&self, module: &str, name: &str) -> Assessment {
        if let Some(defined) = &self.jit_pickle
            && let Some(assessment) =
                crate::formats::torchscript::assess_jit_global(module, name, defined)
        {
            return assessment;
        }
        self.policy().assess(module, name)
    }

    /// Runs `f` with the pickles it scans marked as read by `torch.jit`'s unpickler when
    /// `jit` is given: the names the archive's code defines (see [`Ctx::assess`]).
    pub fn in_jit_pickle<R>(
        &mut self,
        jit: Option<&std::sync::Arc<crate::hash::HashSet<String>>>,
        f: impl FnOnce(&mut Self) -> R,
    ) -> R {
        let was = self.jit_pickle.clone();
        if let Some(defined) = jit {
            self.jit_pickle = Some(defined.clone());
        }
        let result = f(self);
        self.jit_pickle = was;
        result
    }

    /// Base name of what is being scanned: the innermost archive member's, else the top-level
    /// file's. Routing is by content; the single exception is `keras_metadata.pb` (see
    /// [`crate::formats::route`]), a protobuf with no magic that only its name identifies.
    /// That route only ever adds checks to the content route, so a name cannot hide anything.
    pub fn current_name(&self) -> &str {
        match self.member.last() {
            Some(member) => base_name(member),
            None => &self.file_name,
        }
    }

    /// Current nesting depth (0 for the top-level file).
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Records a finding, tagged with the current member path.
    pub fn report(&mut self, mut finding: Finding) {
        if finding.member.is_none() {
            finding.member = self.member_path();
        }
        self.findings.push(finding);
    }

    /// Records an import with its assessment; a non-innocuous import also yields a finding.
    ///
    /// Each global is recorded once per member, at its first offset.
    pub fn import(&mut self, module: &str, name: &str, offset: u64, assessment: &Assessment) {
        let member = self.member_path();
        let key = (module.to_string(), name.to_string(), member.clone());
        if !self.seen_imports.insert(key) {
            return;
        }
        if let Some(rule) = assessment.rule {
            let message = format!("imports `{module}.{name}`: {}", assessment.reason);
            let severity = match assessment.rating {
                crate::report::Rating::Dangerous => crate::rules::Severity::Dangerous,
                crate::report::Rating::Suspicious => crate::rules::Severity::Suspicious,
                crate::report::Rating::Innocuous => crate::rules::Severity::Info,
            };
            self.report(
                Finding::new(rule, message)
                    .at(offset)
                    .with_severity(severity),
            );
        }
        self.imports.push(Import {
            module: module.to_string(),
            name: name.to_string(),
            rating: assessment.rating,
            offset,
            member,
            reason: Some(assessment.reason.clone()),
        });
    }

    /// Removes and returns the summary phrases added since `cp`, keeping everything else, so
    /// a container can say in one phrase what its members' scans found.
    pub fn take_notes(&mut self, cp: Checkpoint) -> Vec<String> {
        let from = cp.notes.min(self.notes.len());
        self.notes.split_off(from)
    }

    /// Adds a phrase to the file's summary line ("pickle: 12 imports").
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// True once the file's time budget is spent. Long loops call this every few thousand
    /// steps; the first call past the deadline records a [`Rule::Timeout`] finding.
    pub fn check_timeout(&mut self) -> bool {
        if self.timed_out {
            return true;
        }
        if self.started.elapsed() > self.scanner.limits.timeout {
            self.timed_out = true;
            let secs = self.scanner.limits.timeout.as_secs_f64();
            self.report(Finding::new(
                Rule::Timeout,
                format!("stopped after {secs:.0} s"),
            ));
        }
        self.timed_out
    }

    /// Counts `n` decompressed bytes against the file's budget ([`Limits::inflated_budget`]:
    /// every nesting level counts against the top-level file's size). Returns false (and
    /// records a finding, once) once the budget is exceeded.
    pub fn charge_inflated(&mut self, n: u64) -> bool {
        self.inflated_bytes = self.inflated_bytes.saturating_add(n);
        if self.inflated_bytes <= self.inflated_budget {
            return true;
        }
        if !self.inflated_over {
            self.inflated_over = true;
            let limits = &self.scanner.limits;
            let budget = self.inflated_budget;
            let why = if budget >= limits.max_inflated_bytes {
                "the limit on decompressed bytes per file".to_string()
            } else if budget == limits.min_inflated_budget {
                "the floor of the file's decompression budget".to_string()
            } else {
                format!(
                    "{} times the file's size, counted across every nesting level",
                    limits.max_compression_ratio
                )
            };
            self.report(Finding::new(
                Rule::ArchiveLimit,
                format!(
                    "more than {budget} bytes decompressed in total ({why}; a decompression \
                     bomb); the rest was not read"
                ),
            ));
        }
        false
    }

    /// Decompressed bytes this file holds in memory, shared by every nesting level.
    pub fn inflated_memory(&self) -> &crate::containers::inflated::MemoryBudget {
        &self.inflated_memory
    }

    /// Scans `data` as an archive member named `name`: checks depth and member budgets,
    /// records the member, routes it by content and restores the member path.
    pub fn scan_member(&mut self, name: &str, data: &[u8]) {
        self.scan_member_with(name, data, crate::formats::route);
    }

    /// Like [`Ctx::scan_member`], with `scan` instead of routing by content (for members an
    /// archive's layout says what they are, e.g. a `.keras` archive's `config.json`).
    pub fn scan_member_with(
        &mut self,
        name: &str,
        data: &[u8],
        scan: impl FnOnce(&mut Self, &[u8]) -> &'static str,
    ) {
        self.in_member(name, data.len() as u64, |ctx| (scan(ctx, data), ()));
    }

    /// Runs `scan` inside archive member `name` (`size` bytes): checks the depth and member
    /// budgets, sets the member path for everything reported, and records the member with
    /// the format name `scan` returns. `None` when a budget stopped it.
    pub fn in_member<R>(
        &mut self,
        name: &str,
        size: u64,
        scan: impl FnOnce(&mut Self) -> (&'static str, R),
    ) -> Option<R> {
        let limits = self.scanner.limits.clone();
        if self.depth + 1 > limits.max_nesting_depth {
            self.report(Finding::new(
                Rule::ArchiveLimit,
                format!(
                    "`{name}` is nested more than {} levels deep; not opened",
                    limits.max_nesting_depth
                ),
            ));
            return None;
        }
        self.members_opened += 1;
        if self.members_opened > limits.max_members {
            if self.members_opened == limits.max_members + 1 {
                self.report(Finding::new(
                    Rule::ArchiveLimit,
                    format!(
                        "more than {} archive members; the rest were not opened",
                        limits.max_members
                    ),
                ));
            }
            return None;
        }
        self.member.push(name.to_string());
        self.depth += 1;
        let (format, result) = scan(self);
        self.members.push(MemberSummary {
            path: self.member.join("/"),
            format: format.to_string(),
            size,
        });
        self.depth -= 1;
        self.member.pop();
        Some(result)
    }

    fn finish(self, path: &str, format: &str, size: u64) -> FileReport {
        let summary = if self.notes.is_empty() {
            format.to_string()
        } else {
            format!("{format}: {}", self.notes.join(", "))
        };
        FileReport {
            path: path.to_string(),
            format: format.to_string(),
            size,
            verdict: verdict_of(&self.findings),
            imports: self.imports,
            findings: self.findings,
            members: self.members,
            summary,
            elapsed_ms: self.started.elapsed().as_secs_f64() * 1e3,
        }
    }
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
