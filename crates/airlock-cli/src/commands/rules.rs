//! `airlock rules [CODE]`: the rule catalogue, or one rule's documentation page.

use std::io::Write;

use airlock::Rule;
use anyhow::{Result, bail};

use crate::exit_status::ExitStatus;
use crate::output::text::{Painter, severity_style};

include!(concat!(env!("OUT_DIR"), "/rule_pages.rs"));

/// The embedded documentation page of a rule, if its page exists.
pub fn page(rule: Rule) -> Option<&'static str> {
    RULE_PAGES
        .iter()
        .find(|(code, _)| *code == rule.code())
        .map(|(_, page)| *page)
}

pub fn run(code: Option<&str>, out: &mut dyn Write, color: bool) -> Result<ExitStatus> {
    match code {
        None => list(out, color)?,
        Some(code) => {
            let Some(rule) = Rule::from_code(code) else {
                bail!("no rule is called `{code}`; `airlock rules` lists them");
            };
            describe(rule, out)?;
        }
    }
    Ok(ExitStatus::Success)
}

fn list(out: &mut dyn Write, color: bool) -> std::io::Result<()> {
    let paint = Painter { color };
    let name_width = Rule::ALL.iter().map(|r| r.name().len()).max().unwrap_or(0);
    for rule in Rule::ALL {
        let severity = format!("{:<10}", rule.default_severity().as_str());
        writeln!(
            out,
            "{:<7} {} {:<name_width$}  {}",
            rule.code(),
            paint.paint(severity_style(rule.default_severity()), &severity),
            rule.name(),
            rule.summary(),
        )?;
    }
    Ok(())
}

fn describe(rule: Rule, out: &mut dyn Write) -> std::io::Result<()> {
    match page(rule) {
        Some(page) => out.write_all(page.as_bytes()),
        None => writeln!(
            out,
            "# {} {}\n\nSeverity: {}\n\n{}",
            rule.code(),
            rule.name(),
            rule.default_severity(),
            rule.summary()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_pages_are_titled_with_their_code() {
        for (code, page) in RULE_PAGES {
            let title = page.lines().next().unwrap_or_default();
            assert!(
                title.starts_with(&format!("# {code} ")),
                "{code}: title is `{title}`"
            );
            assert!(
                Rule::from_code(code).is_some(),
                "page for unknown rule {code}"
            );
        }
    }

    #[test]
    fn pages_of_this_crates_rule_families_are_embedded() {
        let owned = |code: &str| {
            ["PT", "JBL", "GEN"].iter().any(|p| code.starts_with(p))
                || (code.starts_with("PKL")
                    && !["PKL001", "PKL002", "PKL003", "PKL016"].contains(&code))
        };
        let missing: Vec<_> = Rule::ALL
            .iter()
            .filter(|r| owned(r.code()) && page(**r).is_none())
            .map(|r| r.code())
            .collect();
        assert!(missing.is_empty(), "missing pages: {missing:?}");
    }

    #[test]
    fn the_rules_index_lists_every_rule() {
        let index = include_str!("../../../../docs/rules/README.md");
        for rule in Rule::ALL {
            let row = format!(
                "| [{code}]({code}.md) | `{}` |",
                rule.name(),
                code = rule.code()
            );
            assert!(index.contains(&row), "docs/rules/README.md lacks `{row}`");
        }
    }

    #[test]
    fn every_page_has_the_four_sections() {
        for (code, page) in RULE_PAGES {
            for section in [
                "## What it detects",
                "## Why it matters",
                "## Example",
                "## References",
            ] {
                assert!(page.contains(section), "{code} lacks `{section}`");
            }
        }
    }
}
