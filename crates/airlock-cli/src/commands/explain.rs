//! `airlock explain FILE`: the disassembly of a pickle, with imports and findings marked.
//!
//! The listing comes from [`airlock::pickle::disassemble`], which decodes with the engine's
//! own reader, so it shows what the engine (and the loader) reads. Findings come from a normal
//! scan of the same bytes and are attached to the instruction at their offset. For a zip (a
//! PyTorch checkpoint), every member whose name ends in `.pkl` is disassembled on its own.
//!
//! Imports are rated by the same policy as `scan` would use ([`crate::policy::load`]:
//! `--policy`, else `airlock.toml` found from the file's folder upward, then `--allow`), so
//! a file is marked here as `scan` rates it. Every text taken from the file (member names,
//! opcode arguments, messages) is escaped before it reaches the terminal.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

use airlock::pickle::{Disassembly, Op, disassemble};
use airlock::{FileReport, Finding, Import, Scanner};
use anstyle::Style;
use anyhow::{Context, Result, bail};

use crate::args::{ExplainArgs, GlobalArgs};
use crate::exit_status::ExitStatus;
use crate::output::escape::escaped;
use crate::output::text::{Painter, severity_style};
use crate::{policy, stream};

/// Bytes of one zip member read at most (explain is for reading, not for bombs).
const MAX_MEMBER_BYTES: u64 = 1 << 30;

pub fn run(
    args: &ExplainArgs,
    global: &GlobalArgs,
    out: &mut dyn Write,
    color: bool,
) -> Result<ExitStatus> {
    let loaded = policy::load(&args.policy, Some(&args.file), global.verbose)?;
    let scanner = Scanner::new(loaded.policy, airlock::Limits::default());
    let file = open_input(&args.file)?;
    // SAFETY: a read-only map of a file we do not write; if another process truncates a
    // regular file meanwhile the OS raises SIGBUS, the same accepted risk as
    // `Scanner::scan_path`. A stream was spooled into an anonymous file nobody else can reach.
    #[allow(unsafe_code)]
    let map = unsafe { memmap2::Mmap::map(&file) }
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let data: &[u8] = &map;
    let display = args.file.display().to_string();
    let report = scanner.scan_bytes(&display, data);
    let paint = Painter { color };

    writeln!(
        out,
        "{}  {}  ({})",
        paint.paint(Style::new().bold(), &escaped(&display)),
        report.verdict,
        escaped(&report.summary)
    )?;
    if data.starts_with(b"PK\x03\x04") {
        explain_zip(&scanner, &report, data, out, paint)?;
    } else {
        let findings: Vec<&Finding> = report
            .findings
            .iter()
            .filter(|f| f.member.is_none())
            .collect();
        let imports: Vec<&Import> = report
            .imports
            .iter()
            .filter(|i| i.member.is_none())
            .collect();
        write_listing(out, paint, &disassemble(data), &imports, &findings)?;
    }
    Ok(ExitStatus::Success)
}

/// The file to explain: a regular file as it is; `-` (standard input), a FIFO, `<(...)` or a
/// device spooled into an anonymous temporary file first ([`stream::spool`]), as `scan` reads
/// them, capped at [`stream::DEFAULT_STREAM_CAP`].
fn open_input(path: &Path) -> Result<std::fs::File> {
    let is_stdin = path == Path::new(crate::walk::STDIN);
    if !is_stdin {
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot open {}", path.display()))?;
        if meta.is_file() {
            return std::fs::File::open(path)
                .with_context(|| format!("cannot open {}", path.display()));
        }
    }
    let cap = stream::DEFAULT_STREAM_CAP;
    let spooled = if is_stdin {
        stream::spool(std::io::stdin().lock(), cap)
    } else {
        std::fs::File::open(path).and_then(|file| stream::spool(file, cap))
    };
    match spooled.with_context(|| format!("cannot read {}", path.display()))? {
        stream::Spooled::Done(file, _) => Ok(file),
        stream::Spooled::TooLong => bail!("{}: longer than {cap} bytes", path.display()),
    }
}

/// Disassembles every `.pkl` member of a zip. Findings of the whole-file scan that name the
/// member are merged with those of a scan of the member's bytes alone.
fn explain_zip(
    scanner: &Scanner,
    report: &FileReport,
    data: &[u8],
    out: &mut dyn Write,
    paint: Painter,
) -> Result<()> {
    let archive_level: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.member.is_none())
        .collect();
    write_unplaced(out, paint, &archive_level)?;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(data))
        .context("cannot read the zip directory")?;
    let mut listed = 0;
    for index in 0..archive.len() {
        let mut member = match archive.by_index(index) {
            Ok(member) => member,
            Err(error) => {
                let error = error.to_string();
                writeln!(out, "\nmember #{index}: cannot open: {}", escaped(&error))?;
                continue;
            }
        };
        let name = member.name().to_string();
        if !name.ends_with(".pkl") {
            continue;
        }
        listed += 1;
        let mut bytes = Vec::new();
        let read = (&mut member).take(MAX_MEMBER_BYTES).read_to_end(&mut bytes);
        writeln!(
            out,
            "\n== member {} ({} bytes)",
            escaped(&name),
            bytes.len()
        )?;
        if let Err(error) = read {
            writeln!(
                out,
                "   cannot read the whole member: {}; listing what was read",
                escaped(&error.to_string())
            )?;
        }
        let alone = scanner.scan_bytes(&name, &bytes);
        let findings = merged(
            &alone.findings,
            report
                .findings
                .iter()
                .filter(|f| f.member.as_deref() == Some(&name)),
        );
        let imports: Vec<&Import> = alone.imports.iter().collect();
        write_listing(out, paint, &disassemble(&bytes), &imports, &findings)?;
    }
    if listed == 0 {
        writeln!(out, "\nno member name ends in .pkl; nothing to disassemble")?;
    }
    Ok(())
}

/// Findings from both scans, each (rule, offset) once.
fn merged<'a>(
    alone: &'a [Finding],
    from_archive: impl Iterator<Item = &'a Finding>,
) -> Vec<&'a Finding> {
    let mut out: Vec<&Finding> = alone.iter().collect();
    for finding in from_archive {
        if !out
            .iter()
            .any(|f| f.rule == finding.rule && f.offset == finding.offset)
        {
            out.push(finding);
        }
    }
    out
}

fn write_listing(
    out: &mut dyn Write,
    paint: Painter,
    disassembly: &Disassembly,
    imports: &[&Import],
    findings: &[&Finding],
) -> std::io::Result<()> {
    let mut findings_at: BTreeMap<u64, Vec<&Finding>> = BTreeMap::new();
    for finding in findings {
        if let Some(offset) = finding.offset {
            findings_at.entry(offset).or_default().push(finding);
        }
    }
    let mut placed = std::collections::HashSet::new();
    let count = disassembly.pickles.len();
    for (n, ops) in disassembly.pickles.iter().enumerate() {
        let span = match (ops.first(), ops.last()) {
            (Some(first), Some(last)) => format!(", offsets {}..{}", first.offset, last.offset),
            _ => String::new(),
        };
        writeln!(out, "\npickle {} of {count}{span}", n + 1)?;
        writeln!(
            out,
            "  {:>10}  {:<18} {:<9} argument",
            "offset", "opcode", "stack"
        )?;
        for op in ops {
            let here = findings_at
                .get(&op.offset)
                .map(Vec::as_slice)
                .unwrap_or_default();
            write_op(out, paint, op, imports, here)?;
            if !here.is_empty() {
                placed.insert(op.offset);
            }
        }
    }
    if let Some((offset, message)) = &disassembly.error {
        let error = paint.paint(
            severity_style(airlock::Severity::Suspicious),
            "decoding stops",
        );
        writeln!(out, "  {offset:>10}  {error}: {}", escaped(message))?;
        if let Some(here) = findings_at.get(offset) {
            write_findings(out, paint, here)?;
            placed.insert(*offset);
        }
    }
    let unplaced: Vec<&Finding> = findings
        .iter()
        .copied()
        .filter(|f| f.offset.is_none_or(|o| !placed.contains(&o)))
        .collect();
    write_unplaced(out, paint, &unplaced)
}

fn write_op(
    out: &mut dyn Write,
    paint: Painter,
    op: &Op,
    imports: &[&Import],
    findings: &[&Finding],
) -> std::io::Result<()> {
    let marker = if findings.is_empty() { ' ' } else { '>' };
    let stack = format!("{}->{}", op.depth_before, op.depth_after);
    let mut line = format!(
        "{marker} {:>10}  {:<18} {:<9} {}",
        op.offset,
        op.name,
        stack,
        op.arg.as_deref().unwrap_or("")
    );
    if let Some(import) = imports.iter().find(|i| i.offset == op.offset) {
        line.push_str(&format!(
            "    import {} ({})",
            import.qualified(),
            import.rating.as_str()
        ));
    }
    writeln!(out, "{}", escaped(line.trim_end()))?;
    write_findings(out, paint, findings)
}

fn write_findings(
    out: &mut dyn Write,
    paint: Painter,
    findings: &[&Finding],
) -> std::io::Result<()> {
    for finding in findings {
        let label = format!("{} {}", finding.rule.code(), finding.severity);
        writeln!(
            out,
            "  {:>10}  ^ {}: {}",
            "",
            paint.paint(severity_style(finding.severity), &label),
            escaped(&finding.message)
        )?;
    }
    Ok(())
}

fn write_unplaced(
    out: &mut dyn Write,
    paint: Painter,
    findings: &[&Finding],
) -> std::io::Result<()> {
    if findings.is_empty() {
        return Ok(());
    }
    writeln!(out, "\nfindings not tied to an instruction:")?;
    for finding in findings {
        let label = format!("{} {}", finding.rule.code(), finding.severity);
        let at = finding
            .offset
            .map(|o| format!(" (offset {o})"))
            .unwrap_or_default();
        writeln!(
            out,
            "  {}: {}{at}",
            paint.paint(severity_style(finding.severity), &label),
            escaped(&finding.message)
        )?;
    }
    Ok(())
}
