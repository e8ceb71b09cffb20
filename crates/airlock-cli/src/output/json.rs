//! The JSON report: `{schema_version, tool, files, summary}`, documented in docs/json-schema.md.
//!
//! `files` are [`airlock::FileReport`]s serialised as the core crate defines them; the schema
//! version is [`airlock::report::SCHEMA_VERSION`]. Keep docs/json-schema.md true when either
//! changes.

use std::io::Write;

use airlock::FileReport;
use serde::Serialize;

use super::{Summary, TOOL_NAME, TOOL_VERSION};

#[derive(Serialize)]
struct Report<'a> {
    schema_version: &'static str,
    tool: Tool,
    files: &'a [FileReport],
    summary: &'a Summary,
}

#[derive(Serialize)]
struct Tool {
    name: &'static str,
    version: &'static str,
}

/// Writes the report as pretty-printed JSON followed by a newline.
pub fn write(
    out: &mut dyn Write,
    reports: &[FileReport],
    summary: &Summary,
) -> std::io::Result<()> {
    let report = Report {
        schema_version: airlock::report::SCHEMA_VERSION,
        tool: Tool {
            name: TOOL_NAME,
            version: TOOL_VERSION,
        },
        files: reports,
        summary,
    };
    serde_json::to_writer_pretty(&mut *out, &report)?;
    writeln!(out)
}
