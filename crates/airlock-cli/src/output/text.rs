//! The human report: one line per file, details for files that are not safe, and a summary.
//!
//! ```text
//! dangerous    evil.pkl  (pickle: 1 import)
//!     import   os.system  dangerous  offset 2
//!     PKL001   dangerous  imports `os.system`: `os` can run code or touch the host  (offset 2)
//! safe         model.pt  (pytorch-zip: 12 imports)
//!
//! 2 files scanned in 31 ms: 1 dangerous, 0 unscannable, 0 suspicious, 1 safe
//! ```
//!
//! Colour is applied only when the caller says so (a terminal, `NO_COLOR` unset); the output
//! reads the same without it. Every text that comes from the input (paths, member names,
//! import names, messages and summaries quoting them) goes through [`escaped`] first.

use std::io::Write;

use airlock::{FileReport, Finding, Import, Rating, Severity, Verdict};
use anstyle::{AnsiColor, Style};

use super::Summary;
use super::escape::escaped;

/// How much to print, and whether to colour it.
#[derive(Debug, Clone, Copy, Default)]
pub struct TextOptions {
    pub color: bool,
    /// Only files that are not safe; no summary.
    pub quiet: bool,
    /// Details of safe files too.
    pub verbose: bool,
}

/// Writes the text report.
pub fn write(
    out: &mut dyn Write,
    reports: &[FileReport],
    summary: &Summary,
    options: TextOptions,
) -> std::io::Result<()> {
    let paint = Painter {
        color: options.color,
    };
    for report in reports {
        let safe = report.verdict == Verdict::Safe;
        if options.quiet && safe {
            continue;
        }
        write_file_line(out, &paint, report)?;
        if !safe || options.verbose {
            write_details(out, &paint, report)?;
        }
    }
    if !options.quiet {
        write_summary(out, &paint, summary)?;
    }
    Ok(())
}

fn write_file_line(
    out: &mut dyn Write,
    paint: &Painter,
    report: &FileReport,
) -> std::io::Result<()> {
    let verdict = report.verdict.as_str();
    writeln!(
        out,
        "{}{}  {}  ({})",
        paint.paint(verdict_style(report.verdict), verdict),
        pad(verdict, 11),
        paint.paint(Style::new().bold(), &escaped(&report.path)),
        escaped(&report.summary)
    )
}

fn write_details(out: &mut dyn Write, paint: &Painter, report: &FileReport) -> std::io::Result<()> {
    for import in &report.imports {
        write_import(out, paint, import)?;
    }
    for finding in &report.findings {
        write_finding(out, paint, finding)?;
    }
    Ok(())
}

fn write_import(out: &mut dyn Write, paint: &Painter, import: &Import) -> std::io::Result<()> {
    let rating = import.rating.as_str();
    let place = location(Some(import.offset), import.member.as_deref());
    writeln!(
        out,
        "    import   {}  {}  ({})",
        escaped(&import.qualified()),
        paint.paint(rating_style(import.rating), rating),
        escaped(&place),
    )
}

fn write_finding(out: &mut dyn Write, paint: &Painter, finding: &Finding) -> std::io::Result<()> {
    let code = finding.rule.code();
    let severity = finding.severity.as_str();
    write!(
        out,
        "    {}{}  {}{}  {}",
        paint.paint(Style::new().bold(), code),
        pad(code, 7),
        paint.paint(severity_style(finding.severity), severity),
        pad(severity, 10),
        escaped(&finding.message)
    )?;
    if finding.offset.is_some() || finding.member.is_some() {
        write!(
            out,
            "  ({})",
            escaped(&location(finding.offset, finding.member.as_deref()))
        )?;
    }
    writeln!(out)
}

/// Spaces that bring `text` to `width` columns (styles are applied to the text alone).
fn pad(text: &str, width: usize) -> String {
    " ".repeat(width.saturating_sub(text.chars().count()))
}

/// "offset 2 in data/pickle.pkl", "offset 2", or "in member.bin".
fn location(offset: Option<u64>, member: Option<&str>) -> String {
    match (offset, member) {
        (Some(offset), Some(member)) => format!("offset {offset} in {member}"),
        (Some(offset), None) => format!("offset {offset}"),
        (None, Some(member)) => format!("in {member}"),
        (None, None) => String::new(),
    }
}

fn write_summary(out: &mut dyn Write, paint: &Painter, summary: &Summary) -> std::io::Result<()> {
    let counts = &summary.verdicts;
    let files = plural(summary.files, "file", "files");
    let part = |n: usize, verdict: Verdict| {
        let text = format!("{n} {}", verdict.as_str());
        if n > 0 {
            paint.paint(verdict_style(verdict), &text)
        } else {
            text
        }
    };
    writeln!(
        out,
        "\n{} {files} scanned in {}: {}, {}, {}, {}",
        summary.files,
        human_duration(summary.elapsed_ms),
        part(counts.dangerous, Verdict::Dangerous),
        part(counts.unscannable, Verdict::Unscannable),
        part(counts.suspicious, Verdict::Suspicious),
        part(counts.safe, Verdict::Safe),
    )
}

/// `one` for 1, `many` otherwise.
pub fn plural<N: TryInto<u8>>(n: N, one: &'static str, many: &'static str) -> &'static str {
    if n.try_into().ok() == Some(1) {
        one
    } else {
        many
    }
}

/// "12 ms" below a second, "3.40 s" above.
pub fn human_duration(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

fn verdict_style(verdict: Verdict) -> Style {
    let color = match verdict {
        Verdict::Safe => AnsiColor::Green,
        Verdict::Suspicious => AnsiColor::Yellow,
        Verdict::Unscannable => AnsiColor::Magenta,
        Verdict::Dangerous => AnsiColor::Red,
    };
    Style::new().fg_color(Some(color.into())).bold()
}

fn rating_style(rating: Rating) -> Style {
    match rating {
        Rating::Innocuous => Style::new().fg_color(Some(AnsiColor::Green.into())),
        Rating::Suspicious => Style::new().fg_color(Some(AnsiColor::Yellow.into())),
        Rating::Dangerous => Style::new().fg_color(Some(AnsiColor::Red.into())).bold(),
    }
}

pub fn severity_style(severity: Severity) -> Style {
    match severity {
        Severity::Info => Style::new().fg_color(Some(AnsiColor::Cyan.into())),
        Severity::Suspicious => Style::new().fg_color(Some(AnsiColor::Yellow.into())),
        Severity::Dangerous => Style::new().fg_color(Some(AnsiColor::Red.into())).bold(),
    }
}

/// Wraps text in ANSI styles when colour is on, and leaves it alone otherwise.
#[derive(Debug, Clone, Copy)]
pub struct Painter {
    pub color: bool,
}

impl Painter {
    pub fn paint(&self, style: Style, text: &str) -> String {
        if self.color {
            format!("{style}{text}{style:#}")
        } else {
            text.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(3.4), "3 ms");
        assert_eq!(human_duration(3400.0), "3.40 s");
    }

    #[test]
    fn painter_is_plain_without_colour() {
        let style = Style::new().bold();
        assert_eq!(Painter { color: false }.paint(style, "x"), "x");
        assert_eq!(
            Painter { color: true }.paint(style, "x"),
            "\u{1b}[1mx\u{1b}[0m"
        );
    }
}
