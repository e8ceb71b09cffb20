//! Makes attacker-chosen text safe to print on a terminal.
//!
//! File names, archive-member names, and finding messages or summaries that quote them come
//! from the scanned input. Printed raw, an ESC byte starts an escape sequence (retitle the
//! terminal, move the cursor, erase report lines) and a carriage return or bidi override makes
//! one name look like another. So text output shows every such character as a visible escape:
//! C0 controls and DEL as `\xNN` (`\t`, `\n`, `\r` by name), C1 controls and the Unicode bidi
//! controls as `\u{NNNN}`. In a text that has any of these, a backslash is written `\\` too,
//! so an escape cannot be forged; text with none is printed as it is (Windows paths keep their
//! single backslashes). JSON and SARIF are escaped by their serialiser and keep exact names.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with every character that could steer a terminal written as a visible escape.
pub fn escaped(text: &str) -> Cow<'_, str> {
    // Printable ASCII, the common case, is checked byte by byte (a tenth of the per-char cost).
    if text.bytes().all(|b| (0x20..0x7f).contains(&b)) || !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x80 && needs_escape(c) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Controls (C0, DEL, C1), bidi embeddings/overrides/isolates and marks, and line and
/// paragraph separators.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{061c}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_are_untouched() {
        assert!(matches!(escaped("models/modèle v2.pt"), Cow::Borrowed(_)));
    }

    #[test]
    fn terminal_controls_become_visible() {
        assert_eq!(escaped("a\u{1b}]0;pwned\u{7}b"), "a\\x1b]0;pwned\\x07b");
        assert_eq!(escaped("x\r\u{1b}[2Ky"), "x\\r\\x1b[2Ky");
        assert_eq!(escaped("a\u{9b}31m"), "a\\u{009b}31m");
        assert_eq!(escaped("evil\u{202e}lkp.txt"), "evil\\u{202e}lkp.txt");
        assert_eq!(escaped("a\\x1b"), "a\\x1b", "nothing to escape: as it is");
        assert_eq!(
            escaped("a\\x1b\u{1b}"),
            "a\\\\x1b\\x1b",
            "a backslash cannot forge an escape"
        );
        assert_eq!(escaped("\u{7f}"), "\\x7f");
    }
}
