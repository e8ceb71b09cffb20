//! `airlock scan`: walk the paths, scan every file in parallel, print a report, pick the exit
//! status.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use airlock::{FileReport, Finding, Limits, Policy, Rule, Scanner};
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;

use crate::args::{ColorWhen, Format, GlobalArgs, ScanArgs};
use crate::exit_status::ExitStatus;
use crate::output::text::TextOptions;
use crate::output::{Summary, VerdictCounts, json, sarif, text};
use crate::walk::{self, Entry};

/// Scans with a progress bar above this many files (or bytes), when stderr is a terminal.
const PROGRESS_MIN_FILES: usize = 50;
const PROGRESS_MIN_BYTES: u64 = 1 << 30;

pub fn run(args: &ScanArgs, global: &GlobalArgs) -> Result<ExitStatus> {
    let started = Instant::now();
    let (policy, policy_file) = load_policy(args, global)?;
    let excludes = walk::exclude_set(&args.exclude)?;
    let scanner = Scanner::new(policy, limits(args));

    let walked = walk::collect(&args.paths, &excludes);
    if !global.quiet {
        for warning in &walked.warnings {
            anstream::eprintln!("warning: {warning}");
        }
    }
    let reports = scan_all(&scanner, &walked.entries, args, global)?;

    let status = ExitStatus::of_scan(&reports, args.fail_on.threshold());
    let summary = Summary {
        files: reports.len(),
        verdicts: VerdictCounts::of(&reports),
        fail_on: args.fail_on.as_str(),
        exit_code: status.code(),
        policy_file: policy_file.map(|p| p.display().to_string()),
        elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
    };
    write_report(args, global, &reports, &summary)?;
    Ok(status)
}

/// `--policy FILE`, or `airlock.toml` discovered from the first path; then `--allow` entries.
fn load_policy(args: &ScanArgs, global: &GlobalArgs) -> Result<(Policy, Option<PathBuf>)> {
    let file = match &args.policy {
        Some(path) => Some(path.clone()),
        None => args.paths.first().and_then(|p| Policy::discover(p)),
    };
    let mut policy = match &file {
        Some(path) => Policy::from_file(path).context("cannot use the policy file")?,
        None => Policy::default(),
    };
    if global.verbose {
        match &file {
            Some(path) => anstream::eprintln!("policy: {}", path.display()),
            None => anstream::eprintln!("policy: none found; built-in profiles only"),
        }
    }
    for name in &args.allow {
        policy
            .allow(name)
            .with_context(|| format!("cannot use --allow {name}"))?;
    }
    if args.allow_llamafile {
        policy.allow_llamafile(true);
    }
    Ok((policy, file))
}

fn limits(args: &ScanArgs) -> Limits {
    let mut limits = Limits::default();
    if let Some(max) = args.max_file_size {
        limits.max_file_size = Some(max);
    }
    if let Some(secs) = args.timeout {
        limits.timeout = Duration::from_secs(secs);
    }
    limits
}

/// Scans every entry on a pool of `--threads` workers; the result keeps the entries' order.
fn scan_all(
    scanner: &Scanner,
    entries: &[Entry],
    args: &ScanArgs,
    global: &GlobalArgs,
) -> Result<Vec<FileReport>> {
    let progress = progress_bar(entries, args, global);
    let tick = || {
        if let Some(bar) = &progress {
            bar.inc(1);
        }
    };
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
                let report = scan_entry(scanner, entry);
                tick();
                report
            })
            .collect();
        if let Some(bar) = progress {
            bar.finish_and_clear();
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
                let report = scan_entry(scanner, entry);
                tick();
                report
            })
            .collect()
    });
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    Ok(reports)
}

fn scan_entry(scanner: &Scanner, entry: &Entry) -> FileReport {
    match entry {
        Entry::File { path, .. } => scanner.scan_path(path),
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
fn progress_bar(entries: &[Entry], args: &ScanArgs, global: &GlobalArgs) -> Option<ProgressBar> {
    let bytes: u64 = entries
        .iter()
        .map(|e| match e {
            Entry::File { size, .. } => *size,
            Entry::Unreadable { .. } => 0,
        })
        .sum();
    let long = entries.len() > PROGRESS_MIN_FILES || bytes > PROGRESS_MIN_BYTES;
    if args.no_progress || global.quiet || !long || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar =
        ProgressBar::with_draw_target(Some(entries.len() as u64), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} scanning {pos}/{len} files [{bar:30}] {elapsed}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    Some(bar)
}

/// Renders the report to stdout or, with `-o`, to a temporary file renamed into place.
fn write_report(
    args: &ScanArgs,
    global: &GlobalArgs,
    reports: &[FileReport],
    summary: &Summary,
) -> Result<()> {
    match &args.output {
        None => {
            let stdout = std::io::stdout();
            let color = wants_color(global.color, &stdout);
            let mut out = std::io::BufWriter::new(stdout.lock());
            render(&mut out, args.format, global, color, reports, summary)?;
            out.flush()?;
        }
        Some(path) => {
            let color = global.color == ColorWhen::Always;
            write_atomically(path, |out| {
                render(out, args.format, global, color, reports, summary)
            })
            .with_context(|| format!("cannot write the report to {}", path.display()))?;
        }
    }
    Ok(())
}

fn render(
    out: &mut dyn Write,
    format: Format,
    global: &GlobalArgs,
    color: bool,
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
        Format::Sarif => sarif::write(out, reports, summary),
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

/// Writes through `write` into a temporary file beside `path`, then renames it into place, so
/// a reader never sees a half-written report and a failed scan leaves the old one intact.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    // Mode 0666 less the umask, as the shell's `>` would create the report (tempfile's
    // default is a private 0600).
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut temp = builder
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    {
        let mut out = std::io::BufWriter::new(temp.as_file_mut());
        write(&mut out)?;
        out.flush()?;
    }
    temp.persist(path)?;
    Ok(())
}
