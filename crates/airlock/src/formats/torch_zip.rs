//! PyTorch zip checkpoints (`torch.save` since 1.6): `<root>/data.pkl` plus one raw record
//! per storage under `<root>/data/`, as torch's `PyTorchStreamReader` reads them.
//!
//! - `data.pkl` runs through the pickle engine; its persistent ids name the storages.
//! - Each storage is checked against its record: a missing record (PT003), or a declared
//!   element count that needs more bytes than the record holds (PT002, the out-of-bounds
//!   storage of CVE-2026-24747). Storage records themselves are raw tensor bytes that torch
//!   never unpickles: they are not read at all (no CRC check either), which is what keeps a
//!   multi-gigabyte checkpoint scan to its metadata.
//! - Every other member is scanned by content (a pickle named `data.txt` is still a pickle).
//! - An archive with `constants.pkl` is TorchScript: `torch.load` hands it to `torch.jit.load`,
//!   which runs its code (PT004). Its `code/**.py` files are listed and searched for host
//!   calls and custom operators ([`super::torchscript`], PT006/PT007), and scanned by content.

use crate::hash::{HashMap, HashMapExt, HashSet, HashSetExt};

use crate::containers::zip::{self, ZipArchive, ZipEntry};
use crate::ctx::Ctx;
use crate::format::Format;
use crate::pickle::machine;
use crate::report::Finding;
use crate::rules::Rule;

use super::torch::{StorageRef, take_storage_refs};

/// Scans a zip that [`zip::zip_flavour`] identified as a PyTorch archive.
pub fn scan(ctx: &mut Ctx, archive: &ZipArchive) -> Format {
    let central: Vec<&ZipEntry> = archive.entries().iter().filter(|e| e.in_central).collect();
    let root = central
        .first()
        .and_then(|e| e.name.split('/').next())
        .unwrap_or_default()
        .to_string();
    let pickle_name = format!("{root}/data.pkl");
    let storage_prefix = format!("{root}/data/");
    let constants_name = format!("{root}/constants.pkl");
    let is_torchscript = central.iter().any(|e| e.name == constants_name);
    let mut records: HashMap<&str, &ZipEntry> = HashMap::with_capacity(central.len());
    records.extend(central.iter().filter_map(|e| {
        e.name
            .strip_prefix(storage_prefix.as_str())
            .map(|key| (key, *e))
    }));

    let code_prefix = format!("{root}/code/");
    let is_code_file = |e: &ZipEntry| {
        is_torchscript
            && e.in_central
            && e.name.starts_with(&code_prefix)
            && e.name.ends_with(".py")
    };
    let mut code = super::torchscript::CodeScan::default();
    let mut verifier = super::torchscript::Verifier::default();
    // Code first: the pickles' `__torch__` globals are rated by what the code defines.
    for entry in central.iter().filter(|e| is_code_file(e)) {
        if ctx.check_timeout() {
            break;
        }
        scan_code_file(ctx, archive, entry, &code_prefix, &mut code, &mut verifier);
    }
    let defined = super::torchscript::jit_resolver(verifier.defined().clone());
    let bytecode_name = format!("{root}/bytecode.pkl");
    if is_torchscript && central.iter().any(|e| e.name == bytecode_name) {
        // The lite interpreter runs bytecode.pkl's instructions instead of code/; they are not
        // verified, so the archive is not vouched for.
        verifier.unverified(
            &bytecode_name,
            "mobile bytecode (lite interpreter) is not verified",
        );
    }
    let notes_from = ctx.checkpoint();
    let mut other_pickles = 0usize;
    let mut storages = Vec::new();
    let mut roots = Vec::new();
    for entry in archive.entries() {
        if ctx.check_timeout() {
            break;
        }
        let name = entry.name.as_ref();
        let jit_pickle = is_torchscript
            && entry.in_central
            && super::torchscript::JIT_PICKLES
                .iter()
                .any(|p| name.strip_prefix(root.as_str()) == Some(p));
        if entry.in_central && name == pickle_name {
            storages.extend(ctx.in_jit_pickle(jit_pickle.then_some(&defined), |ctx| {
                scan_main_pickle(ctx, archive, entry)
            }));
        } else if jit_pickle {
            ctx.in_jit_pickle(Some(&defined), |ctx| {
                zip::scan_entry_with(archive, entry, ctx, |ctx, data| {
                    let format = super::route(ctx, data);
                    other_pickles += usize::from(format == Format::Pickle);
                    format
                })
            });
        } else if entry.in_central
            && name
                .strip_prefix(storage_prefix.as_str())
                .is_some_and(|key| records.contains_key(key))
        {
            // A storage record: raw tensor bytes, checked by size below, never read.
        } else if is_code_file(entry) {
            // Scanned and verified above.
        } else if !(entry.is_dir() && entry.compressed_size == 0) {
            zip::scan_entry_with(archive, entry, ctx, |ctx, data| {
                let format = super::route(ctx, data);
                other_pickles += usize::from(format == Format::Pickle);
                format
            });
        }
        if entry.in_central {
            let top = name.split('/').next().unwrap_or_default();
            if !roots.contains(&top) {
                roots.push(top);
            }
        }
    }
    if roots.len() > 1 {
        ctx.report(Finding::new(
            Rule::TorchLayout,
            format!(
                "records sit under {} different root folders ({}); torch.save writes one",
                roots.len(),
                roots.join(", ")
            ),
        ));
    }
    check_storages(ctx, &storages, &records);
    // data.pkl's phrase stays; other members' phrases are summed up (their findings stay).
    for note in ctx.take_notes(notes_from) {
        if note.starts_with("data.pkl:") {
            ctx.note(note);
        }
    }
    if other_pickles > 0 {
        ctx.note(format!("{other_pickles} other pickle(s) scanned"));
    }
    ctx.note(format!(
        "{} storages, {} records",
        storages.len(),
        central.len()
    ));
    if is_torchscript {
        let code_files = central
            .iter()
            .filter(|e| e.name.starts_with(&code_prefix) && !e.is_dir())
            .count();
        ctx.note(code.describe(code_files));
        let verified = report_unverified(ctx, verifier);
        ctx.report(Finding::new(
            Rule::TorchScript,
            format!(
                "TorchScript archive ({code_files} code files): torch.load hands it to torch.jit.load, which runs its code; {}",
                if verified {
                    "every code file was read whole and calls only allowed operators"
                } else {
                    "its code could not be verified (PT008)"
                }
            ),
        ));
        Format::Torchscript
    } else {
        Format::PytorchZip
    }
}

/// A zip cut before its central directory (ARC009) whose local headers start like a torch
/// archive (`<root>/data.pkl`, root from the first record): the pickles `torch.jit.load` would
/// read with its own unpickler, were the archive whole and TorchScript (`constants.pkl` may be
/// in the part that is missing). Their `__torch__` globals are rated as torch.jit rates them,
/// against no definitions (suspicious, PT008), not as Python imports of a dunder module: no
/// loader reads the cut archive, and neither `torch.jit.load` nor Python's unpickler (which
/// fails to import `__torch__`) would run anything through them. Every other global is still
/// rated as a Python import. Empty for any other zip.
pub fn cut_archive_jit_pickles(archive: &ZipArchive) -> Vec<String> {
    let entries = archive.entries();
    if entries.iter().any(|e| e.in_central) {
        return Vec::new();
    }
    let Some(root) = entries.first().and_then(|e| e.name.split('/').next()) else {
        return Vec::new();
    };
    let data_pkl = format!("{root}/data.pkl");
    if !entries.iter().any(|e| e.name == data_pkl) {
        return Vec::new();
    }
    super::torchscript::JIT_PICKLES
        .iter()
        .map(|p| format!("{root}{p}"))
        .collect()
}

/// Scans one member of a cut archive as [`cut_archive_jit_pickles`] says.
pub fn scan_cut_member(ctx: &mut Ctx, archive: &ZipArchive, entry: &ZipEntry, jit: &[String]) {
    if jit.iter().any(|name| *name == entry.name) {
        let nothing_defined = super::torchscript::jit_resolver(Default::default());
        ctx.in_jit_pickle(Some(&nothing_defined), |ctx| {
            zip::scan_entry(archive, entry, ctx)
        });
    } else {
        zip::scan_entry(archive, entry, ctx);
    }
}

/// Searches one TorchScript code file with the hit list and hands it to the verifier (a file
/// the hit list could not search whole, or that could not be read, is a verifier issue).
fn scan_code_file(
    ctx: &mut Ctx,
    archive: &ZipArchive,
    entry: &ZipEntry,
    code_prefix: &str,
    code: &mut super::torchscript::CodeScan,
    verifier: &mut super::torchscript::Verifier,
) {
    let name = entry.name.as_ref();
    let qualifier = name
        .strip_prefix(code_prefix)
        .and_then(|n| n.strip_suffix(".py"))
        .unwrap_or_default()
        .replace('/', ".");
    let mut read = false;
    zip::scan_entry_with(archive, entry, ctx, |ctx, bytes| {
        if code.scan_file(ctx, bytes) {
            verifier.add_file(name, &qualifier, bytes);
        } else {
            verifier.unverified(name, "the file was not searched whole (byte cap)");
        }
        read = true;
        super::route_besides(ctx, bytes).unwrap_or(Format::TorchscriptCode)
    });
    if !read {
        verifier.unverified(name, "the file could not be read");
    }
}

/// Reports the verifier's issues as PT008; returns whether the code was verified.
fn report_unverified(ctx: &mut Ctx, verifier: super::torchscript::Verifier) -> bool {
    let (issues, count) = verifier.finish();
    for issue in &issues {
        ctx.report(Finding::new(
            Rule::TorchScriptUnverified,
            format!("{} line {}: {}", issue.file, issue.line, issue.what),
        ));
    }
    if count > issues.len() {
        ctx.report(Finding::new(
            Rule::TorchScriptUnverified,
            format!("{} more issues not listed", count - issues.len()),
        ));
    }
    count == 0
}

/// Runs the engine over `data.pkl` (and the local-header reading where it differs) and
/// returns the storages its persistent ids reference.
fn scan_main_pickle<'a>(
    ctx: &mut Ctx,
    archive: &ZipArchive<'a>,
    entry: &ZipEntry<'a>,
) -> Vec<StorageRef> {
    let mut storages = Vec::new();
    let main = archive.read(entry, ctx);
    if let Some(member) = &main
        && zip::check_content(entry, member, ctx)
    {
        let bytes = &member.bytes;
        let found = ctx.in_member(&entry.name, bytes.len() as u64, |ctx| {
            let mut outcome = machine::run(ctx, bytes, 0);
            super::pickle_stream::report_failure(ctx, &outcome);
            if outcome.stopped && outcome.end < bytes.len() {
                ctx.report(
                    Finding::new(
                        Rule::DataAfterStop,
                        format!(
                            "{} bytes follow data.pkl's STOP; torch ignores them",
                            bytes.len() - outcome.end
                        ),
                    )
                    .at(outcome.end as u64),
                );
                ctx.scan_member("<after STOP>", &bytes[outcome.end..]);
            }
            let refs = take_storage_refs(&mut outcome);
            ctx.note(format!(
                "data.pkl: {} opcodes, {} imports",
                outcome.opcodes, outcome.imports
            ));
            (Format::Pickle, refs)
        });
        storages = found.unwrap_or_default();
    }
    if entry.local_disagrees()
        && let Some(other) = archive.read_local(entry, ctx)
        && main.as_ref().is_none_or(|m| m.bytes != other.bytes)
    {
        let name = entry.local_name.as_deref().unwrap_or(&entry.name);
        ctx.scan_member(&format!("{name} (local header)"), &other.bytes);
    }
    storages
}

/// Every storage must have a record large enough for its declared elements.
fn check_storages(ctx: &mut Ctx, storages: &[StorageRef], records: &HashMap<&str, &ZipEntry>) {
    // Sized up front: rehashing while growing cost more than the inserts on a checkpoint
    // with hundreds of storages.
    let mut checked = HashSet::with_capacity(storages.len().min(1 << 16));
    for storage in storages {
        if !checked.insert(storage.key.as_str()) {
            continue;
        }
        let Some(record) = records.get(storage.key.as_str()) else {
            ctx.report(Finding::new(
                Rule::TorchMissingStorage,
                format!(
                    "storage `{}` has no data/{} record",
                    storage.key, storage.key
                ),
            ));
            continue;
        };
        let needed = storage.numel.checked_mul(storage.storage_type.element_size);
        if needed.is_none_or(|n| n > record.uncompressed_size) {
            ctx.report(Finding::new(
                Rule::TorchStorageSize,
                format!(
                    "storage `{}` declares {} elements of torch.{} ({} bytes) but its record holds {} bytes",
                    storage.key,
                    storage.numel,
                    storage.storage_type.class,
                    needed.map_or("too many".to_string(), |n| n.to_string()),
                    record.uncompressed_size
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::containers::zip::testzip::{build, member};
    use crate::{Rating, Rule, Scanner, Verdict};

    /// A state-dict `data.pkl` with one FloatStorage of `numel` elements under key "0".
    fn data_pkl(numel: u8) -> Vec<u8> {
        [
            &b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01X\x06\x00\x00\x00weightq\x02"[..],
            b"ctorch._utils\n_rebuild_tensor_v2\nq\x03((X\x07\x00\x00\x00storageq\x04",
            b"ctorch\nFloatStorage\nq\x05X\x01\x00\x00\x000X\x03\x00\x00\x00cpuK",
            &[numel],
            b"tQK\x00K\x02\x85K\x01\x85\x89h\x00)RtRs.",
        ]
        .concat()
    }

    fn checkpoint(numel: u8, record: &[u8]) -> Vec<u8> {
        build(&[
            member("archive/data.pkl", &data_pkl(numel)),
            member("archive/byteorder", b"little"),
            member("archive/data/0", record),
            member("archive/version", b"3\n"),
        ])
    }

    #[test]
    fn a_state_dict_checkpoint_is_safe() {
        let r = Scanner::default().scan_bytes("m.pt", &checkpoint(2, &[0u8; 8]));
        assert_eq!(r.format, "pytorch-zip");
        assert_eq!(r.verdict, Verdict::Safe, "{:?}", r.findings);
        assert!(
            r.imports
                .iter()
                .any(|i| i.qualified() == "torch._utils._rebuild_tensor_v2")
        );
        assert!(
            r.imports
                .iter()
                .all(|i| i.member.as_deref() == Some("archive/data.pkl"))
        );
    }

    #[test]
    fn storage_larger_than_its_record_is_dangerous() {
        let r = Scanner::default().scan_bytes("m.pt", &checkpoint(200, &[0u8; 8]));
        assert!(r.findings.iter().any(|f| f.rule == Rule::TorchStorageSize));
        assert_eq!(r.verdict, Verdict::Dangerous);
    }

    /// A `data.pkl` large enough for the fast pass: its storage ids are checked all the same.
    #[test]
    fn large_state_dicts_have_every_storage_checked() {
        let n = 2_000;
        let pickle = crate::pickle::tests::torch_state_dict_pickle(n, |_| b"K\x04".to_vec());
        assert!(pickle.len() > 64 * 1024);
        let names: Vec<String> = (0..n).map(|i| format!("archive/data/{i}")).collect();
        let (full, short) = (vec![0u8; 16], vec![0u8; 8]);
        let mut members = vec![member("archive/data.pkl", &pickle)];
        for (i, name) in names.iter().enumerate() {
            match i {
                8 => members.push(member(name, &short)), // 4 f32 need 16 bytes
                9 => {}                                  // no record
                _ => members.push(member(name, if i % 2 == 0 { &full } else { &short })),
            }
        }
        let r = Scanner::default().scan_bytes("m.pt", &build(&members));
        assert_eq!(r.format, "pytorch-zip");
        let sized: Vec<_> = r
            .findings
            .iter()
            .filter(|f| f.rule == Rule::TorchStorageSize)
            .collect();
        // Even tensors are FloatStorage (16 bytes for 4 elements), odd ones HalfStorage (8).
        assert_eq!(sized.len(), 1, "{sized:?}");
        assert!(
            sized[0]
                .message
                .starts_with("storage `8` declares 4 elements of torch.FloatStorage"),
            "{}",
            sized[0].message
        );
        assert!(
            r.findings
                .iter()
                .any(|f| f.rule == Rule::TorchMissingStorage && f.message.contains("`9`"))
        );
        assert!(r.summary.contains("2000 storages"), "{}", r.summary);
    }

    #[test]
    fn missing_record_is_reported() {
        let zip = build(&[
            member("archive/data.pkl", &data_pkl(2)),
            member("archive/version", b"3\n"),
        ]);
        let r = Scanner::default().scan_bytes("m.pt", &zip);
        assert!(
            r.findings
                .iter()
                .any(|f| f.rule == Rule::TorchMissingStorage)
        );
    }

    #[test]
    fn storage_records_are_not_unpickled_but_other_members_are() {
        // A pickle-looking storage record is tensor data to torch; a pickle hidden in another
        // member is scanned.
        let zip = build(&[
            member("archive/data.pkl", &data_pkl(2)),
            member("archive/data/0", b"\x80\x02cos\nsystem\n."),
            member("archive/extra.txt", b"cos\nsystem\n(S'id'\ntR."),
        ]);
        let r = Scanner::default().scan_bytes("m.pt", &zip);
        let members: Vec<_> = r
            .imports
            .iter()
            .filter(|i| i.qualified() == "os.system")
            .map(|i| i.member.clone())
            .collect();
        assert_eq!(members, [Some("archive/extra.txt".to_string())]);
    }

    #[test]
    fn torchscript_is_a_program_vouched_for_only_when_its_code_is_verified() {
        let archive = |code: &[u8]| {
            build(&[
                member("m/data.pkl", &data_pkl(2)),
                member("m/constants.pkl", b"\x80\x02).".as_slice()),
                member("m/code/__torch__.py", code),
                member("m/data/0", &[0u8; 8]),
            ])
        };
        let r = Scanner::default().scan_bytes("m.pt", &archive(b"def forward(self): pass\n"));
        assert_eq!(r.format, "torchscript");
        assert!(r.findings.iter().any(|f| f.rule == Rule::TorchScript));
        assert_eq!(r.verdict, Verdict::Safe, "{:?}", r.findings);
        assert!(
            r.summary
                .contains("code/: 1 files, 1 .py searched (24 bytes), 0 calls flagged"),
            "{}",
            r.summary
        );
        let code = b"def forward(self, x):\n  return torch.from_file(\"/etc/passwd\")\n";
        let r = Scanner::default().scan_bytes("m.pt", &archive(code));
        assert_eq!(r.verdict, Verdict::Suspicious, "{:?}", r.findings);
        let unverified: Vec<_> = r
            .findings
            .iter()
            .filter(|f| f.rule == Rule::TorchScriptUnverified)
            .map(|f| f.message.as_str())
            .collect();
        assert_eq!(
            unverified,
            [
                "m/code/__torch__.py line 2: operator `aten::from_file` is denied: reads (and may map) a host file named by its argument"
            ]
        );
    }

    #[test]
    fn torchscript_code_files_read_only_in_part_are_not_verified() {
        let zip = build(&[
            member("m/data.pkl", &data_pkl(2)),
            member("m/constants.pkl", b"\x80\x02).".as_slice()),
            member("m/code/__torch__.py", b"def forward(self): pass\n"),
            member("m/bytecode.pkl", b"\x80\x02).".as_slice()),
            member("m/data/0", &[0u8; 8]),
        ]);
        let r = Scanner::default().scan_bytes("m.pt", &zip);
        assert_eq!(r.verdict, Verdict::Suspicious, "{:?}", r.findings);
        assert!(
            r.findings
                .iter()
                .any(|f| f.rule == Rule::TorchScriptUnverified && f.message.contains("bytecode")),
            "{:?}",
            r.findings
        );
    }

    /// torch.jit reads a TorchScript archive's pickles with its own unpickler: `__torch__`
    /// classes come from `code/`, the `torch.jit._pickle` builders are built in. The same
    /// globals in a member torch.jit does not unpickle are Python imports.
    #[test]
    fn torchscript_pickles_resolve_globals_as_torch_jit_does() {
        // The module object as torch.jit.save writes it: a `__torch__` class built with
        // NEWOBJ and BUILD, and a list restored with a type tag.
        let module = b"\x80\x02c__torch__\nM\nq\x00)\x81}(X\x01\x00\x00\x00lctorch.jit._pickle\nrestore_type_tag\n]X\t\x00\x00\x00List[int]\x86Rub.";
        let zip = build(&[
            member("m/data.pkl", module),
            member("m/constants.pkl", b"\x80\x02).".as_slice()),
            member(
                "m/code/__torch__.py",
                b"class M(Module):\n  l : List[int]\n",
            ),
            member("m/extra/copy.pkl", module),
        ]);
        let r = Scanner::default().scan_bytes("m.pt", &zip);
        assert_eq!(r.format, "torchscript");
        assert_eq!(
            r.verdict,
            Verdict::Dangerous,
            "the extra pickle is Python's"
        );
        let rating = |qualified: &str, member: &str| {
            r.imports
                .iter()
                .find(|i| i.qualified() == qualified && i.member.as_deref() == Some(member))
                .map(|i| i.rating)
        };
        assert_eq!(
            rating("__torch__.M", "m/data.pkl"),
            Some(Rating::Innocuous),
            "defined by code/__torch__.py"
        );
        assert_eq!(
            rating("torch.jit._pickle.restore_type_tag", "m/data.pkl"),
            Some(Rating::Innocuous)
        );
        assert_eq!(
            rating("__torch__.M", "m/extra/copy.pkl"),
            Some(Rating::Dangerous)
        );
        let in_data_pkl: Vec<_> = r
            .findings
            .iter()
            .filter(|f| f.member.as_deref() == Some("m/data.pkl"))
            .collect();
        assert!(in_data_pkl.is_empty(), "{in_data_pkl:?}");

        // Without the extra pickle, the archive is the verified program it is: safe; with a
        // code file that does not define `M`, the class comes from elsewhere: suspicious.
        let without_extra = |code: &[u8]| {
            let zip = build(&[
                member("m/data.pkl", module),
                member("m/constants.pkl", b"\x80\x02).".as_slice()),
                member("m/code/__torch__.py", code),
            ]);
            Scanner::default().scan_bytes("m.pt", &zip)
        };
        let r = without_extra(b"class M(Module):\n  l : List[int]\n");
        assert_eq!(r.verdict, Verdict::Safe, "{:?}", r.findings);
        let r = without_extra(b"class N(Module):\n  l : List[int]\n");
        assert_eq!(r.verdict, Verdict::Suspicious, "{:?}", r.findings);
        assert!(
            r.findings
                .iter()
                .any(|f| f.rule == Rule::TorchScriptUnverified
                    && f.member.as_deref() == Some("m/data.pkl")),
            "{:?}",
            r.findings
        );
    }

    #[test]
    fn torchscript_code_calls_are_reported_with_file_and_line() {
        let evil =
            b"def forward(self, x):\n  _0 = ops.evil_ns.run(x)\n  os.system(\"id\")\n  return x\n";
        let zip = build(&[
            member("m/data.pkl", &data_pkl(2)),
            member("m/constants.pkl", b"\x80\x02).".as_slice()),
            member("m/code/__torch__/net.py", evil),
            member("m/code/__torch__/net.debug_pkl", b"\x80\x02).".as_slice()),
            member("m/data/0", &[0u8; 8]),
        ]);
        let r = Scanner::default().scan_bytes("m.pt", &zip);
        assert_eq!(r.verdict, Verdict::Dangerous);
        let find = |rule| {
            r.findings
                .iter()
                .find(|f| f.rule == rule)
                .map(|f| (f.member.clone().unwrap_or_default(), f.message.clone()))
                .unwrap()
        };
        let (member, message) = find(Rule::TorchScriptHostCall);
        assert_eq!(member, "m/code/__torch__/net.py");
        assert!(
            message.starts_with("line 3: uses the `os` module"),
            "{message}"
        );
        let (_, message) = find(Rule::TorchScriptCustomOp);
        assert!(
            message.contains("line 2") && message.contains("`evil_ns`"),
            "{message}"
        );
        assert!(
            r.summary.contains("code/: 2 files, 1 .py searched"),
            "{}",
            r.summary
        );
        // Code is plain text: no "not a model" noise for it.
        assert!(!r.findings.iter().any(|f| f.rule == Rule::NotAModel));
    }
}
