//! `airlock scan`: walk the paths, scan every file in parallel, print a report, pick the exit
//! status.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use airlock::outcome::{self, RuleFilter};
use airlock::{FileReport, Finding, Limits, Rule, Scanner};
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;

use crate::args::{ColorWhen, Format, GlobalArgs, ScanArgs};
use crate::exit_status::ExitStatus;
use crate::output::escape::escaped;
use crate::output::sarif::SarifOptions;
use crate::output::text::{TextOptions, plural};
use crate::output::{Summary, VerdictCounts, json, sarif, text};
use crate::walk::{self, Entry, FileId};
use crate::{outfile, policy, stream};

/// Scans with a progress bar above this many files (or bytes), when stderr is a terminal.
const PROGRESS_MIN_FILES: usize = 50;
const PROGRESS_MIN_BYTES: u64 = 1 << 30;

pub fn run(args: &ScanArgs, global: &GlobalArgs) -> Result<ExitStatus> {
    let started = Instant::now();
    let loaded = policy::load(
        &args.policy,
        args.paths.first().map(PathBuf::as_path),
        global.verbose,
    )?;
    let filter =
        RuleFilter::new(&args.select, &args.ignore).context("cannot use --select/--ignore")?;
    let excludes = walk::exclude_set(&args.exclude)?;
    let scanner = Scanner::new(loaded.policy, limits(args));

    let walked = walk::collect(&args.paths, &excludes);
    let inputs: Vec<FileId> = walked.entries.iter().filter_map(Entry::id).collect();
    let output = args.output.as_deref().filter(|o| !outfile::is_stdout(o));
    if let Some(target) = output {
        // Before scanning, so a refused target costs no scan.
        outfile::check_target(target, &inputs)?;
    }
    if !global.quiet {
        for warning in &walked.warnings {
            anstream::eprintln!("warning: {}", escaped(warning));
        }
    }
    let reports: Vec<FileReport> = scan_all(&scanner, &walked.entries, args, global)?
        .into_iter()
        .map(|report| filter.apply(report))
        .collect();

    let fail_on = airlock::FailOn::from(args.fail_on);
    let outcome = outcome::of_run(&reports, fail_on);
    let status = ExitStatus::from(outcome);
    let summary = Summary {
        files: reports.len(),
        verdicts: VerdictCounts::of(&reports),
        fail_on: fail_on.as_str(),
        exit_code: i32::from(outcome.exit_code()),
        policy_file: loaded.file.map(|p| p.display().to_string()),
        elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
    };
    match write_report(args, global, output, &inputs, &reports, &summary) {
        // `airlock scan | head`: the reader left; the scan's answer stands all the same, so
        // the exit status never depends on whether (or when) stdout was closed.
        Err(error) if is_broken_pipe(&error) => Ok(status),
        Err(error) => Err(error),
        Ok(()) => Ok(status),
    }
}

/// True when the error comes from writing to a closed pipe (`airlock scan | head`).
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn limits(args: &ScanArgs) -> Limits {
    let mut limits = Limits::default();
    if let Some(max) = args.max_file_size {
        limits.max_file_size = Some(max);
    }
    limits.timeout = Duration::from_secs(args.timeout);
    limits
}

/// Scans every entry on a pool of `--threads` workers; the result keeps the entries' order.
fn scan_all(
    scanner: &Scanner,
    entries: &[Entry],
    args: &ScanArgs,
    global: &GlobalArgs,
) -> Result<Vec<FileReport>> {
    let progress = Progress::new(entries, args, global);
    let tick = |entry: &Entry| {
        if let Some(progress) = &progress {
            progress.done(entry);
        }
    };
    let cap = args.max_file_size.unwrap_or(stream::DEFAULT_STREAM_CAP);
    // One file, or one thread asked for: scan on this thread. Starting and joining a pool
    // costs a few milliseconds, which is most of the time a single large checkpoint takes.
    // A lone file may use the threads itself (the headers of a zip with thousands of records
    // are read in parallel; the CPU count is only looked up then); with many files, the files
    // are the parallelism.
    if entries.len() <= 1 || args.threads == Some(1) {
        let scanner = scanner.clone().with_threads(args.threads);
        let scanner = &scanner;
        let reports = entries
            .iter()
            .map(|entry| {
                let report = scan_entry(scanner, entry, cap);
                tick(entry);
                report
            })
            .collect();
        if let Some(progress) = progress {
            progress.bar.finish_and_clear();
        }
        return Ok(reports);
    }
    // `--threads`, or one per CPU.
    let threads = args
        .threads
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.min(entries.len()))
        .build()
        .context("cannot start the scanning threads")?;
    let reports = pool.install(|| {
        entries
            .par_iter()
            .map(|entry| {
                let report = scan_entry(scanner, entry, cap);
                tick(entry);
                report
            })
            .collect()
    });
    if let Some(progress) = progress {
        progress.bar.finish_and_clear();
    }
    Ok(reports)
}

fn scan_entry(scanner: &Scanner, entry: &Entry, stream_cap: u64) -> FileReport {
    match entry {
        Entry::File { path, .. } => scanner.scan_path(path),
        Entry::Stream { path, .. } => stream::scan(scanner, path, stream_cap),
        Entry::Unreadable { path, error } => unreadable_report(path, error),
    }
}

/// The report for a path the walk could not read: unscannable, never skipped.
fn unreadable_report(path: &Path, error: &str) -> FileReport {
    let findings = vec![Finding::new(
        Rule::ReadError,
        format!("cannot read: {error}"),
    )];
    FileReport {
        path: path.display().to_string(),
        format: "unknown".into(),
        size: 0,
        verdict: airlock::report::verdict_of(&findings),
        imports: Vec::new(),
        findings,
        members: Vec::new(),
        summary: "not read".into(),
        elapsed_ms: 0.0,
    }
}

/// A progress bar on stderr, only for long scans on a terminal; none otherwise (not even a
/// hidden one: its state and per-file ticks were 7 % of a one-file scan's process time).
///
/// It counts bytes (the bar, the rate and the ETA) and files (the message): with one large
/// checkpoint among thousands of small files, a file count alone said 10 of 4,012 when 90 %
/// of the work was done. Streams count as files of size 0 (their size is unknown up front).
struct Progress {
    bar: ProgressBar,
    files: usize,
    done: AtomicUsize,
}

impl Progress {
    fn new(entries: &[Entry], args: &ScanArgs, global: &GlobalArgs) -> Option<Progress> {
        let bytes: u64 = entries.iter().map(entry_size).sum();
        let long = entries.len() > PROGRESS_MIN_FILES || bytes > PROGRESS_MIN_BYTES;
        if args.no_progress || global.quiet || !long || !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = ProgressBar::with_draw_target(Some(bytes), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} scanning {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}, ETA {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(file_count(0, entries.len()));
        bar.enable_steady_tick(Duration::from_millis(120));
        Some(Progress {
            bar,
            files: entries.len(),
            done: AtomicUsize::new(0),
        })
    }

    fn done(&self, entry: &Entry) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        self.bar.inc(entry_size(entry));
        self.bar.set_message(file_count(done, self.files));
    }
}

/// "3/4,012 files", "1/1 file".
fn file_count(done: usize, total: usize) -> String {
    format!("{done}/{total} {}", plural(total, "file", "files"))
}

fn entry_size(entry: &Entry) -> u64 {
    match entry {
        Entry::File { size, .. } => *size,
        Entry::Stream { .. } | Entry::Unreadable { .. } => 0,
    }
}

/// Renders the report to stdout (no `-o`, or `-o -`) or to `output` through a temporary file
/// renamed into place ([`outfile`]).
fn write_report(
    args: &ScanArgs,
    global: &GlobalArgs,
    output: Option<&Path>,
    inputs: &[FileId],
    reports: &[FileReport],
    summary: &Summary,
) -> Result<()> {
    let sarif = SarifOptions {
        include_info: args.include_info,
        docs_url: args.docs_url.clone(),
    };
    match output {
        None => {
            let stdout = std::io::stdout();
            let color = wants_color(global.color, &stdout);
            let mut out = std::io::BufWriter::new(stdout.lock());
            render(
                &mut out,
                args.format,
                global,
                color,
                &sarif,
                reports,
                summary,
            )?;
            out.flush()?;
        }
        Some(path) => {
            let color = global.color == ColorWhen::Always;
            outfile::write_atomically(path, inputs, |out| {
                render(out, args.format, global, color, &sarif, reports, summary)
            })?;
        }
    }
    Ok(())
}

fn render(
    out: &mut dyn Write,
    format: Format,
    global: &GlobalArgs,
    color: bool,
    sarif: &SarifOptions,
    reports: &[FileReport],
    summary: &Summary,
) -> std::io::Result<()> {
    match format {
        Format::Text => {
            let options = TextOptions {
                color,
                quiet: global.quiet,
                verbose: global.verbose,
            };
            text::write(out, reports, summary, options)
        }
        Format::Json => json::write(out, reports, summary),
        Format::Sarif => sarif::write(out, reports, summary, sarif),
    }
}

/// Colour on `always`; on `auto` only for a terminal, honouring `NO_COLOR` and `CLICOLOR*`.
pub fn wants_color(when: ColorWhen, stream: &std::io::Stdout) -> bool {
    match when {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => !matches!(
            anstream::AutoStream::choice(stream),
            anstream::ColorChoice::Never
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_counts_files_with_plurals() {
        assert_eq!(file_count(0, 1), "0/1 file");
        assert_eq!(file_count(3, 4012), "3/4012 files");
    }
}
