//! Tar archives (also PyTorch's legacy tar checkpoints, whose members `storages`, `tensors`
//! and `pickle` are scanned like any other member).
//!
//! Headers are read by the `tar` crate (ustar, GNU long names, PAX extended headers), over a
//! cursor on the input slice: it reports each member's data offset
//! (`raw_file_position`), so member bytes are borrowed from the input, never copied. Like
//! Python's `tarfile` (which `torch.load` uses for legacy tars) reading stops at the first
//! end-of-archive block, and an archive that ends right after a member's padding (its
//! end-of-archive blocks missing or cut) is read whole; an archive cut inside a member's data
//! or padding is incomplete (ARC009), as `tarfile` refuses it.

use std::io::Cursor;

use tar::EntryType;

use crate::containers::{duplicates, unsafe_path};
use crate::ctx::Ctx;
use crate::format::Format;
use crate::report::Finding;
use crate::rules::Rule;

/// Scans every regular member of a tar archive; reports traversal, links, duplicates and
/// truncation. Returns "tar".
pub fn scan(ctx: &mut Ctx, data: &[u8]) -> Format {
    let mut names = Vec::new();
    let mut archive = tar::Archive::new(Cursor::new(data));
    let entries = match archive.entries_with_seek() {
        Ok(entries) => entries,
        Err(e) => {
            ctx.report(Finding::new(Rule::ArchiveCorrupt, format!("tar: {e}")));
            return Format::Tar;
        }
    };
    for entry in entries {
        if ctx.check_timeout() {
            break;
        }
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                ctx.report(Finding::new(
                    Rule::ArchiveCorrupt,
                    format!("tar header unreadable after {} members: {e}", names.len()),
                ));
                break;
            }
        };
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        check_padding(ctx, data, &name, entry.raw_file_position(), entry.size());
        report_path_and_links(ctx, &name, kind, entry.link_name_bytes().as_deref());
        if kind.is_file() || kind == EntryType::Continuous || kind == EntryType::GNUSparse {
            scan_file(
                ctx,
                data,
                &name,
                kind,
                entry.raw_file_position(),
                entry.size(),
            );
        }
        names.push(name);
    }
    for dup in duplicates(names.iter().map(String::as_str)) {
        ctx.report(Finding::new(
            Rule::ArchiveDuplicate,
            format!("`{dup}` appears more than once"),
        ));
    }
    ctx.note(format!("{} members", names.len()));
    Format::Tar
}

/// Size of a tar block: every header and every member's padded data is a multiple of it.
const BLOCK: u64 = 512;

/// Reports a member whose data is complete but whose padding to the next block is cut: the
/// `tar` crate seeks past it and sees a clean end, but Python's `tarfile` (which torch's
/// legacy loader lists the archive with) raises `ReadError("unexpected end of data")` when it
/// looks for the next header. A missing end-of-archive block, by contrast, is accepted by
/// `tarfile` (a missing, short or zero header block after the first member ends the listing),
/// so it is accepted here too. Data cut short is reported by [`scan_file`].
fn check_padding(ctx: &mut Ctx, data: &[u8], name: &str, start: u64, size: u64) {
    let end = start.saturating_add(size);
    let padded = end.div_ceil(BLOCK).saturating_mul(BLOCK);
    let len = data.len() as u64;
    if end <= len && len < padded {
        ctx.report(
            Finding::new(
                Rule::ArchiveCorrupt,
                format!(
                    "the archive ends inside the padding after `{name}` ({} of {} bytes); \
                     Python's tarfile stops there with \"unexpected end of data\"",
                    len - end,
                    padded - end
                ),
            )
            .at(end),
        );
    }
}

fn report_path_and_links(ctx: &mut Ctx, name: &str, kind: EntryType, link: Option<&[u8]>) {
    if let Some(why) = unsafe_path(name) {
        ctx.report(Finding::new(
            Rule::ArchivePathTraversal,
            format!("`{name}`: {why}"),
        ));
    }
    if kind.is_symlink() || kind.is_hard_link() {
        let target = link.map(String::from_utf8_lossy).unwrap_or_default();
        let what = if kind.is_symlink() {
            "symbolic"
        } else {
            "hard"
        };
        ctx.report(Finding::new(
            Rule::ArchiveLink,
            format!("`{name}` is a {what} link to `{target}`"),
        ));
        if let Some(why) = unsafe_path(&target) {
            ctx.report(Finding::new(
                Rule::ArchivePathTraversal,
                format!("link `{name}` points outside the archive: `{target}` ({why})"),
            ));
        }
    }
}

fn scan_file(ctx: &mut Ctx, data: &[u8], name: &str, kind: EntryType, start: u64, size: u64) {
    if kind == EntryType::GNUSparse {
        ctx.report(Finding::new(
            Rule::ArchiveUnsupported,
            format!("`{name}` is a GNU sparse file; not inspected"),
        ));
        return;
    }
    let start = usize::try_from(start).unwrap_or(usize::MAX).min(data.len());
    let wanted = usize::try_from(size).unwrap_or(usize::MAX);
    let end = start.saturating_add(wanted).min(data.len());
    if end - start < wanted {
        ctx.report(
            Finding::new(
                Rule::ArchiveCorrupt,
                format!(
                    "`{name}` declares {size} bytes but the archive ends after {}",
                    end - start
                ),
            )
            .at(start as u64),
        );
    }
    ctx.scan_member(name, data.get(start..end).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::FileReport;
    use crate::{Scanner, Verdict};

    const PICKLE: &[u8] = b"\x80\x02cos\nsystem\nq\x00.";

    fn header(name: &str, kind: EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_cksum();
        h
    }

    fn build(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in members {
            let mut h = header("x", EntryType::Regular, data.len() as u64);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn scan(bytes: &[u8]) -> FileReport {
        Scanner::default().scan_bytes("t.tar", bytes)
    }

    fn codes(r: &FileReport) -> Vec<&'static str> {
        r.findings.iter().map(|f| f.rule.code()).collect()
    }

    #[test]
    fn members_are_scanned_in_place() {
        let long = format!("{}/pickle", "d".repeat(150));
        let tar = build(&[
            ("storages", b"\x80\x02K\x00."),
            ("tensors", b"abc"),
            (&long, PICKLE),
        ]);
        let report = scan(&tar);
        assert_eq!(report.format, "tar");
        let paths: Vec<_> = report.members.iter().map(|m| m.path.as_str()).collect();
        assert_eq!(paths, ["storages", "tensors", long.as_str()]);
        assert_eq!(report.members[2].size, PICKLE.len() as u64);
        assert!(codes(&report).iter().all(|c| !c.starts_with("ARC")));
    }

    #[test]
    fn links_traversal_and_duplicates() {
        let mut b = tar::Builder::new(Vec::new());
        let mut link = header("evil", EntryType::Symlink, 0);
        link.set_link_name("/etc/passwd").unwrap();
        link.set_cksum();
        b.append(&link, &[][..]).unwrap();
        let mut hard = header("hard", EntryType::Link, 0);
        hard.set_link_name("evil").unwrap();
        hard.set_cksum();
        b.append(&hard, &[][..]).unwrap();
        // set_path refuses `..`; write the name bytes directly as an attacker would.
        let mut up = header("x", EntryType::Regular, 1);
        up.as_old_mut().name[..7].copy_from_slice(b"../x.pk");
        up.set_cksum();
        b.append(&up, &b"1"[..]).unwrap();
        b.append(&header("dup", EntryType::Regular, 1), &b"1"[..])
            .unwrap();
        b.append(&header("dup", EntryType::Regular, 1), &b"2"[..])
            .unwrap();
        let report = scan(&b.into_inner().unwrap());
        let c = codes(&report);
        assert_eq!(c.iter().filter(|c| **c == "ARC006").count(), 2);
        assert_eq!(c.iter().filter(|c| **c == "ARC005").count(), 2, "{c:?}");
        assert!(c.contains(&"ARC008"));
        assert_eq!(report.verdict, Verdict::Dangerous);
    }

    #[test]
    fn truncated_member_is_incomplete_and_still_scanned() {
        let tar = build(&[("a.pkl", &[b'x'; 1000])]);
        let report = scan(&tar[..700]);
        assert!(codes(&report).contains(&"ARC009"));
        assert_eq!(report.verdict, Verdict::Unscannable);
        assert_eq!(report.members[0].size, 700 - 512);
        for cut in (0..tar.len()).step_by(37) {
            let _ = scan(&tar[..cut]);
        }
    }
}
