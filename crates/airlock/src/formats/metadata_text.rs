//! Reporting the hazards of free-text metadata values ([`crate::text::text_hazards`]): shared
//! by the formats whose metadata is free text (safetensors `__metadata__`, GGUF key/values).
//! A value that decodes to a pickle is scanned as one.

use crate::ctx::Ctx;
use crate::report::Finding;
use crate::rules::Rule;
use crate::text::{TextHazard, short, text_hazards};

/// Reports the hazards of one metadata value under `where_` (e.g. "`__metadata__` key `x`").
pub fn report_text_hazards(
    ctx: &mut Ctx,
    rule_code: Rule,
    rule_url: Rule,
    rule_pickle: Rule,
    where_: &str,
    value: &str,
    offset: u64,
) -> bool {
    let mut clean = true;
    for hazard in text_hazards(value) {
        clean &= matches!(hazard, TextHazard::Url(_));
        match hazard {
            TextHazard::Code(m) => ctx.report(
                Finding::new(
                    rule_code,
                    format!("{where_} holds Python code (`{m}`): {}", short(value)),
                )
                .at(offset),
            ),
            TextHazard::Shell(m) => ctx.report(
                Finding::new(
                    rule_code,
                    format!("{where_} holds a shell command ({m}): {}", short(value)),
                )
                .at(offset),
            ),
            TextHazard::Url(url) => ctx
                .report(Finding::new(rule_url, format!("{where_} holds a URL: {url}")).at(offset)),
            TextHazard::Pickle(bytes) => {
                ctx.report(
                    Finding::new(
                        rule_pickle,
                        format!(
                            "{where_} decodes to a {}-byte pickle; scanned as one",
                            bytes.len()
                        ),
                    )
                    .at(offset),
                );
                super::pickle_stream::scan_pickles(ctx, &bytes);
            }
        }
    }
    clean
}
