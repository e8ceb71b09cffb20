//! The checks stage: checks that run over every file after its format was parsed, whatever
//! the format, reading what the parsers handed on ([`crate::ctx::Handed`]: strings a pickle
//! builds, metadata values, template texts) and the members the context recorded.
//!
//! [`crate::scan::Scanner`] calls [`run`] once per top-level file, after routing and parsing
//! and before the report is built. Today the stage holds no check: the text hazards on
//! metadata stay with the formats that report them under their own rule codes
//! ([`crate::formats::metadata_text`]), since their codes and messages name the format. The
//! secrets, malware and template checks (issue 23) are added here, so that no format has to
//! call them.

use crate::ctx::Ctx;

/// Runs every cross-format check over what `ctx` holds, reporting into it (none yet).
pub fn run(_ctx: &mut Ctx) {}
