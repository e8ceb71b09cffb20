//! The scan context: the state one top-level file's scan shares across every format and
//! container that looks at it (findings, imports, summary notes, the member path through
//! nested archives, the budgets for members, decompressed bytes, depth and time, and
//! checkpoints to roll a wrong probe back).
//!
//! This module stands below every format and container: it imports none of them. Scanning an
//! archive member routes it by content, and that router is handed in by the top
//! ([`crate::scan::Scanner`] gives [`crate::formats::ROUTER`]) as plain function pointers
//! ([`Router`]), so a container can say "scan this member" without importing the formats.

use crate::format::Format;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::hash::{HashSet, HashSetExt};
use crate::limits::Limits;
use crate::policy::{Assessment, Policy};
use crate::report::{FileReport, Finding, Import, MemberSummary, verdict_of};
use crate::rules::Rule;

/// What the context needs from the formats, handed in by the top ([`crate::scan::Scanner`]
/// gives [`crate::formats::ROUTER`]): plain function pointers, so that the context and the
/// containers reach the formats without importing them.
#[derive(Debug, Clone, Copy)]
pub struct Router {
    /// Scans bytes by their content and names the format found (archive members).
    pub route: fn(&mut Ctx, &[u8]) -> Format,
    /// True when the first bytes name a format or container (not "anything else", which is
    /// tried as a pickle).
    pub recognises: fn(&[u8]) -> bool,
}

/// How a loader with its own unpickler resolves a global: `Some` overrides the policy for
/// that name (see [`Ctx::in_jit_pickle`]). The format that knows the loader builds it.
pub type Resolver = Arc<dyn Fn(&str, &str) -> Option<Assessment> + Send + Sync>;

/// The last component of a `/`- or `\\`-separated path.
pub(crate) fn base_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// Per-file scanning state shared by every format module that looks at that file.
pub struct Ctx<'s> {
    policy: &'s Policy,
    limits: &'s Limits,
    /// Routes a member by content ([`Ctx::scan_member`]).
    router: Router,
    started: Instant,
    /// Base name of the top-level file (from the display path); see [`Ctx::current_name`].
    pub(crate) file_name: String,
    /// Set while scanning a pickle `torch.jit` reads with its own unpickler: how that
    /// unpickler resolves globals (the names the archive's TorchScript code defines).
    jit_pickle: Option<Resolver>,
    member: Vec<String>,
    depth: usize,
    members_opened: u64,
    inflated_bytes: u64,
    /// Decompressed bytes allowed for this file ([`Limits::inflated_budget`]).
    pub(crate) inflated_budget: u64,
    /// Set once the decompression budget was reported (reported once per file).
    inflated_over: bool,
    /// Decompressed bytes held in memory for this file ([`crate::containers::inflated`]).
    inflated_memory: MemoryBudget,
    timed_out: bool,
    imports: Vec<Import>,
    findings: Vec<Finding>,
    members: Vec<MemberSummary>,
    notes: Vec<String>,
    /// What parsers hand on to the checks stage ([`crate::checks`]).
    handed: Handed,
    seen_imports: HashSet<(String, String, Option<String>)>,
}

/// A point to return to when a probe (trying bytes as a format) turns out wrong.
#[derive(Debug, Clone, Copy)]
pub struct Checkpoint {
    findings: usize,
    imports: usize,
    members: usize,
    notes: usize,
    handed: usize,
}

impl<'s> Ctx<'s> {
    /// A fresh context under `policy` and `limits`, routing members with `router`.
    pub(crate) fn new(
        policy: &'s Policy,
        limits: &'s Limits,
        router: Router,
        started: Instant,
    ) -> Self {
        Ctx {
            policy,
            limits,
            router,
            started,
            file_name: String::new(),
            jit_pickle: None,
            member: Vec::new(),
            depth: 0,
            members_opened: 0,
            inflated_bytes: 0,
            inflated_budget: limits.max_inflated_bytes,
            inflated_over: false,
            inflated_memory: MemoryBudget::new(limits.max_inflated_in_memory),
            timed_out: false,
            imports: Vec::new(),
            findings: Vec::new(),
            members: Vec::new(),
            notes: Vec::new(),
            seen_imports: HashSet::new(),
            handed: Handed::default(),
        }
    }

    /// Remembers how much has been reported so far.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            findings: self.findings.len(),
            imports: self.imports.len(),
            members: self.members.len(),
            notes: self.notes.len(),
            handed: self.handed.texts.len(),
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
        self.handed.truncate(cp.handed);
    }

    pub fn policy(&self) -> &'s Policy {
        self.policy
    }

    pub fn limits(&self) -> &'s Limits {
        self.limits
    }

    /// The `/`-joined path of the archive member being scanned, if inside one.
    pub fn member_path(&self) -> Option<String> {
        (!self.member.is_empty()).then(|| self.member.join("/"))
    }

    /// Rates a global the way the loader reading the current pickle resolves it: the policy
    /// (a Python import), except in the pickles `torch.jit` reads with its own unpickler
    /// (the [`Resolver`] the TorchScript format hands to [`Ctx::in_jit_pickle`]).
    pub fn assess(&self, module: &str, name: &str) -> Assessment {
        if let Some(resolve) = &self.jit_pickle
            && let Some(assessment) = resolve(module, name)
        {
            return assessment;
        }
        self.policy().assess(module, name)
    }

    /// Runs `f` with the pickles it scans marked as read by `torch.jit`'s unpickler when
    /// `jit` is given: how that unpickler resolves globals (see [`Ctx::assess`]).
    pub fn in_jit_pickle<R>(
        &mut self,
        jit: Option<&Resolver>,
        f: impl FnOnce(&mut Self) -> R,
    ) -> R {
        let was = self.jit_pickle.clone();
        if let Some(resolve) = jit {
            self.jit_pickle = Some(resolve.clone());
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

    /// Forgets the member path (after a panic unwound out of a member: what is reported next
    /// is about the whole file).
    pub(crate) fn clear_member_path(&mut self) {
        self.member.clear();
    }

    /// Current nesting depth (0 for the top-level file).
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// The findings recorded so far (for tests that compare engines).
    #[cfg(test)]
    pub(crate) fn findings(&self) -> &[Finding] {
        &self.findings
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

    /// Hands `text` on to the checks stage ([`crate::checks`]), tagged with the current
    /// member path. Kept within [`MAX_HANDED_BYTES`] per file; past it, texts are dropped
    /// and [`Handed::dropped`] says how many bytes.
    pub fn hand_on(&mut self, kind: TextKind, text: &str) {
        let member = self.member_path();
        self.handed.push(kind, member, text);
    }

    /// What the parsers handed on so far (read by the checks stage).
    pub fn handed(&self) -> &Handed {
        &self.handed
    }

    /// True once the file's time budget is spent. Long loops call this every few thousand
    /// steps; the first call past the deadline records a [`Rule::Timeout`] finding.
    pub fn check_timeout(&mut self) -> bool {
        if self.timed_out {
            return true;
        }
        if self.started.elapsed() > self.limits.timeout {
            self.timed_out = true;
            let secs = self.limits.timeout.as_secs_f64();
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
            let limits = self.limits;
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
    pub fn inflated_memory(&self) -> &MemoryBudget {
        &self.inflated_memory
    }

    /// Scans `data` by its content with the router the top handed in, and names the format.
    pub fn route(&mut self, data: &[u8]) -> Format {
        (self.router.route)(self, data)
    }

    /// True when the router recognises the first bytes of `data` as a format or container.
    pub fn recognises(&self, data: &[u8]) -> bool {
        (self.router.recognises)(data)
    }

    /// Scans `data` as an archive member named `name`: checks depth and member budgets,
    /// records the member, routes it by content and restores the member path.
    pub fn scan_member(&mut self, name: &str, data: &[u8]) {
        self.scan_member_with(name, data, Self::route);
    }

    /// Like [`Ctx::scan_member`], with `scan` instead of routing by content (for members an
    /// archive's layout says what they are, e.g. a `.keras` archive's `config.json`).
    pub fn scan_member_with(
        &mut self,
        name: &str,
        data: &[u8],
        scan: impl FnOnce(&mut Self, &[u8]) -> Format,
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
        scan: impl FnOnce(&mut Self) -> (Format, R),
    ) -> Option<R> {
        let limits = self.limits.clone();
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
            format: format.name().to_string(),
            size,
        });
        self.depth -= 1;
        self.member.pop();
        Some(result)
    }

    /// The report of this file, read as `format`: the one place its name becomes a string.
    pub(crate) fn finish(self, path: &str, format: Format, size: u64) -> FileReport {
        let summary = if self.notes.is_empty() {
            format.to_string()
        } else {
            format!("{format}: {}", self.notes.join(", "))
        };
        FileReport {
            path: path.to_string(),
            format: format.name().to_string(),
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

/// Bytes of decompressed output held in memory by one file's live [`crate::containers::inflated::Inflated`] buffers,
/// shared by every nesting level of that file.
#[derive(Debug, Clone, Default)]
pub struct MemoryBudget {
    held: Arc<AtomicU64>,
    limit: u64,
}

impl MemoryBudget {
    pub fn new(limit: u64) -> Self {
        MemoryBudget {
            held: Arc::new(AtomicU64::new(0)),
            limit,
        }
    }

    /// Bytes held in memory right now.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }

    /// Claims `n` more bytes; false (and nothing claimed) when that would pass the limit.
    pub(crate) fn try_claim(&self, n: u64) -> bool {
        self.held
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                held.checked_add(n).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    /// Counts `n` more bytes held whatever the limit (what an allocator rounded up).
    pub(crate) fn add_held(&self, n: u64) {
        self.held.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn release(&self, n: u64) {
        self.held.fetch_sub(n, Ordering::Relaxed);
    }
}

pub use crate::limits::caps::ctx::MAX_HANDED_BYTES;

/// What kind of text a parser handed on, so a check picks what it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// A string a pickle builds (an argument, a key, a value).
    PickleString,
    /// A metadata value (safetensors `__metadata__`, GGUF key/values, ONNX properties).
    Metadata,
    /// A template the loader renders (a chat template).
    Template,
}

/// One text handed on: its kind, the archive member it came from, the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandedText {
    pub kind: TextKind,
    pub member: Option<String>,
    pub text: String,
}

/// What the parsers of one file hand on to the checks stage, in the order they found it.
/// Archive member names are not repeated here: [`Ctx`] records every member scanned.
#[derive(Debug, Clone, Default)]
pub struct Handed {
    texts: Vec<HandedText>,
    bytes: usize,
    dropped: usize,
}

impl Handed {
    fn push(&mut self, kind: TextKind, member: Option<String>, text: &str) {
        if self.bytes.saturating_add(text.len()) > MAX_HANDED_BYTES {
            self.dropped = self.dropped.saturating_add(text.len());
            return;
        }
        self.bytes += text.len();
        self.texts.push(HandedText {
            kind,
            member,
            text: text.to_string(),
        });
    }

    /// Forgets the texts after the first `len` (a probe rolled back).
    fn truncate(&mut self, len: usize) {
        for gone in self.texts.drain(len.min(self.texts.len())..) {
            self.bytes -= gone.text.len();
        }
    }

    /// The texts handed on, in order.
    pub fn texts(&self) -> &[HandedText] {
        &self.texts
    }

    /// Bytes of text dropped past [`MAX_HANDED_BYTES`].
    pub fn dropped(&self) -> usize {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handed_texts_are_bounded_and_rolled_back() {
        let scanner = crate::Scanner::default();
        scanner.with_ctx(|ctx| {
            ctx.hand_on(TextKind::Metadata, "kept");
            let cp = ctx.checkpoint();
            ctx.hand_on(TextKind::PickleString, "probe");
            ctx.rollback(cp);
            assert_eq!(ctx.handed().texts().len(), 1);
            assert_eq!(ctx.handed().texts()[0].text, "kept");
            let big = "x".repeat(MAX_HANDED_BYTES);
            ctx.hand_on(TextKind::Template, &big);
            assert_eq!(ctx.handed().texts().len(), 1, "over the cap: dropped");
            assert_eq!(ctx.handed().dropped(), MAX_HANDED_BYTES);
        });
    }
}
