//! Writing the safetensors file: header, then each tensor's bytes copied from the checkpoint,
//! into a temporary file beside the destination that is fsynced, re-read and validated with
//! the `safetensors` crate, and only then renamed into place. On any error the temporary
//! file is removed, so no partial output remains.
//!
//! The fsync is what makes the rename safe after a crash, and on a large file it is most of
//! the cost: the disk must take every byte. So the disk is put to work while the copy goes
//! on: every [`WRITEBACK_STEP`] bytes, writeback of what was just written is started
//! (`sync_file_range(2)` on Linux, which only initiates it), and the final fsync waits for
//! the tail. `--no-sync` skips the fsync (and the early writeback) for scratch outputs.
//!
//! Memory stays bounded: contiguous little-endian tensors are copied through one 1 MiB
//! buffer ([`Checkpoint::copy_stored`] says why not `copy_file_range`); byte-swapped, deflated and
//! strided tensors go through 1 MiB chunks; a strided view reads at most
//! [`MAX_GATHER_SPAN`] bytes of its storage at once, else one contiguous run at a time.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::SafeTensors;
use safetensors::tensor::TensorInfo;
use tempfile::NamedTempFile;

use super::interpret::{TensorRef, last_index};
use super::layout::{ALIGN_DATA_FROM, DATA_ALIGNMENT, MAX_GATHER_SPAN, is_contiguous, view_span};
use super::plan::{Plan, PlannedTensor, SharedGroup};
use super::source::{CHUNK, Checkpoint, CopyBuffer, Source, StorageRecord};
use super::{ConvertError, Options};

/// Bytes written between two requests to start writeback.
const WRITEBACK_STEP: u64 = 64 << 20;

/// `[begin, end)` of a tensor in the data buffer.
pub type DataRange = (u64, u64);

/// What a conversion wrote.
#[derive(Debug, Clone)]
pub struct Summary {
    pub input: PathBuf,
    pub output: PathBuf,
    pub tensors: usize,
    /// Size of the written file.
    pub bytes: u64,
    pub shared: Vec<SharedGroup>,
    pub skipped: Vec<(String, String)>,
    /// True when `--verify` compared every tensor with the source.
    pub verified: bool,
}

/// Writes `plan` to `output` (see the module documentation for the steps).
pub fn write(
    checkpoint: &Checkpoint,
    plan: &Plan,
    output: &Path,
    options: &Options,
) -> Result<Summary, ConvertError> {
    if !options.force && output.exists() {
        return Err(ConvertError::Exists {
            path: output.to_path_buf(),
        });
    }
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let stem = output
        .file_name()
        .map_or("output".into(), |n| n.to_string_lossy().into_owned());
    let mut temp =
        output_temp_file(&dir, &format!(".{stem}.")).map_err(|e| ConvertError::io(&dir, e))?;
    let temp_path = temp.path().to_path_buf();
    let io = |e: std::io::Error| ConvertError::io(&temp_path, e);

    let (header, offsets) = header(plan).map_err(|why| ConvertError::InvalidOutput {
        path: output.to_path_buf(),
        why,
    })?;
    let file = temp.as_file_mut();
    file.write_all(&(header.len() as u64).to_le_bytes())
        .map_err(io)?;
    file.write_all(&header).map_err(io)?;
    let mut writeback = Writeback::new(!options.no_sync, 8 + header.len() as u64);
    let mut buffer = CopyBuffer::default();
    for tensor in &plan.tensors {
        write_tensor(checkpoint, tensor, file, &mut buffer)
            .map_err(|e| tensor_io(checkpoint, tensor, e))?;
        writeback.wrote(file, tensor.nbytes);
    }
    if !options.no_sync {
        file.sync_all().map_err(io)?;
    }
    let bytes = file.metadata().map_err(io)?.len();

    validate(temp.as_file(), plan, &offsets).map_err(|why| ConvertError::InvalidOutput {
        path: output.to_path_buf(),
        why,
    })?;
    if options.verify {
        verify(
            checkpoint,
            plan,
            temp.as_file(),
            header.len() as u64 + 8,
            &offsets,
        )?;
    }
    let persisted = if options.force {
        temp.persist(output).map(|_| ())
    } else {
        temp.persist_noclobber(output).map(|_| ())
    };
    if let Err(e) = persisted {
        return Err(match e.error.kind() {
            std::io::ErrorKind::AlreadyExists => ConvertError::Exists {
                path: output.to_path_buf(),
            },
            _ => ConvertError::io(output, e.error),
        });
    }
    if !options.no_sync
        && let Ok(d) = File::open(&dir)
    {
        let _ = d.sync_all();
    }
    Ok(Summary {
        input: plan.input.clone(),
        output: output.to_path_buf(),
        tensors: plan.tensors.len(),
        bytes,
        shared: plan.shared.clone(),
        skipped: plan.skipped.clone(),
        verified: options.verify,
    })
}

/// Starts writeback of the output every [`WRITEBACK_STEP`] bytes (see the module docs).
struct Writeback {
    enabled: bool,
    /// Bytes written so far (the file's length).
    written: u64,
    /// Where the range not yet handed to writeback starts.
    pending_from: u64,
}

impl Writeback {
    fn new(enabled: bool, written: u64) -> Self {
        Writeback {
            enabled,
            written,
            pending_from: 0,
        }
    }

    fn wrote(&mut self, file: &File, bytes: u64) {
        self.written += bytes;
        if self.enabled && self.written - self.pending_from >= WRITEBACK_STEP {
            start_writeback(file, self.pending_from, self.written - self.pending_from);
            self.pending_from = self.written;
        }
    }
}

/// A `*.partial` file in `dir` that becomes an output by rename. Created with mode 0666
/// less the umask, as `cp` or `save_file` would create the output (tempfile's default, 0600,
/// would leave a converted model unreadable to everyone else who shares the folder).
///
/// Named `.airlock-<pid>-<what>.<random>.partial`: the process id lets the command remove its
/// own temporary files when it is interrupted, and a later run remove those of a process
/// that is gone (the CLI's `outfile` module; the same shape as its report temporaries).
pub(super) fn output_temp_file(dir: &Path, what: &str) -> std::io::Result<NamedTempFile> {
    let prefix = format!(
        ".airlock-{}-{}.",
        std::process::id(),
        what.trim_matches('.')
    );
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".partial");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(dir)
}

/// Asks the kernel to start writing `len` bytes at `offset` to disk, without waiting. Only a
/// hint: failures are ignored (the fsync that follows is what counts).
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: sync_file_range only reads its integer arguments; the descriptor is open for
    // the duration of the call because `file` is borrowed.
    #[allow(unsafe_code)]
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: u64) {}

fn tensor_io(checkpoint: &Checkpoint, tensor: &PlannedTensor, e: std::io::Error) -> ConvertError {
    ConvertError::Io {
        path: checkpoint.path.clone(),
        source: std::io::Error::new(e.kind(), format!("`{}`: {e}", tensor.name)),
    }
}

/// The JSON header, padded with spaces to a multiple of 8 as the safetensors writer pads
/// it (the format allows trailing spaces in the header), and each tensor's data offsets.
/// When the data is at least [`ALIGN_DATA_FROM`] bytes, the padding goes on to the next
/// [`DATA_ALIGNMENT`] boundary of the file (at most 4 KiB more), so that the data starts on a
/// page. Written by hand (rather than through the crate's
/// `Metadata`, whose metadata map is a `HashMap`) so the output is deterministic.
pub fn header(plan: &Plan) -> Result<(Vec<u8>, Vec<DataRange>), String> {
    let mut out = String::from("{");
    let mut first = true;
    if !plan.metadata.is_empty() {
        out.push_str("\"__metadata__\":{");
        for (i, (k, v)) in plan.metadata.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&json(k)?);
            out.push(':');
            out.push_str(&json(v)?);
        }
        out.push('}');
        first = false;
    }
    let mut offsets = Vec::with_capacity(plan.tensors.len());
    let mut at = 0u64;
    for t in &plan.tensors {
        let end = at.checked_add(t.nbytes).ok_or("data size overflows")?;
        let info = TensorInfo {
            dtype: t.dtype,
            shape: t.shape.clone(),
            data_offsets: (to_usize(at)?, to_usize(end)?),
        };
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(&json(&t.name)?);
        out.push(':');
        out.push_str(&serde_json::to_string(&info).map_err(|e| e.to_string())?);
        offsets.push((at, end));
        at = end;
    }
    out.push('}');
    let mut bytes = out.into_bytes();
    let padded = if at >= ALIGN_DATA_FROM {
        (8 + bytes.len()).next_multiple_of(DATA_ALIGNMENT) - 8
    } else {
        bytes.len().next_multiple_of(8)
    };
    bytes.resize(padded, b' ');
    Ok((bytes, offsets))
}

fn json(s: &str) -> Result<String, String> {
    serde_json::to_string(s).map_err(|e| e.to_string())
}

fn to_usize(v: u64) -> Result<usize, String> {
    usize::try_from(v).map_err(|_| "offset does not fit in memory sizes".to_string())
}

/// Copies one tensor's bytes (contiguous, little-endian, C order) to `out`.
fn write_tensor(
    checkpoint: &Checkpoint,
    t: &PlannedTensor,
    out: &mut File,
    buffer: &mut CopyBuffer,
) -> std::io::Result<()> {
    let src = &t.source;
    if t.nbytes == 0 {
        return Ok(());
    }
    let record = storage_record(checkpoint, src)?;
    let start = src.offset * src.element_size;
    if is_contiguous(src) && src.swap <= 1 {
        if let Source::Stored { offset } = record.source {
            return checkpoint.copy_stored(offset + start, t.nbytes, out, buffer);
        }
    }
    let swap = src.swap;
    emit(
        checkpoint,
        &record,
        src,
        MAX_GATHER_SPAN,
        &mut |chunk: &mut [u8]| {
            byteswap(chunk, swap);
            out.write_all(chunk)
        },
    )
}

fn storage_record(checkpoint: &Checkpoint, t: &TensorRef) -> std::io::Result<StorageRecord> {
    checkpoint
        .record(&t.storage)
        .ok_or_else(|| std::io::Error::other(format!("storage `{}` vanished", t.storage)))
}

/// Produces a tensor's elements in C order, in chunks of whole elements (before any byte
/// swap), from a contiguous run, an in-memory span of at most `max_span` bytes, or one run
/// at a time.
fn emit(
    checkpoint: &Checkpoint,
    record: &StorageRecord,
    t: &TensorRef,
    max_span: u64,
    sink: &mut dyn FnMut(&mut [u8]) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let es = t.element_size;
    let start = t.offset * es;
    if is_contiguous(t) {
        let mut buf = Vec::new();
        return checkpoint.read_range(record, start, t.nbytes(), &mut |chunk| {
            buf.clear();
            buf.extend_from_slice(chunk);
            sink(&mut buf)
        });
    }
    let (start, end) = view_span(t)
        .filter(|&(_, end)| end <= record.len)
        .ok_or_else(|| std::io::Error::other("view out of range"))?;
    let (run_elems, outer) = runs(t);
    let run_bytes = run_elems * es;
    let span = end - start;
    let mut out: Vec<u8> = Vec::with_capacity(CHUNK.max(run_bytes as usize).min(CHUNK * 4));
    if span <= max_span {
        let mut storage = Vec::with_capacity(span as usize);
        checkpoint.read_range(record, start, span, &mut |c| {
            storage.extend_from_slice(c);
            Ok(())
        })?;
        for_each_run(t, &outer, |elem| {
            let from = (elem - t.offset) * es;
            let run = storage
                .get(from as usize..(from + run_bytes) as usize)
                .ok_or_else(|| std::io::Error::other("view out of range"))?;
            out.extend_from_slice(run);
            flush_if_full(&mut out, sink)
        })?;
    } else if run_bytes <= CHUNK as u64 {
        let mut run = vec![0u8; run_bytes as usize];
        for_each_run(t, &outer, |elem| {
            let mut filled = 0usize;
            checkpoint.read_range(record, elem * es, run_bytes, &mut |c| {
                if let Some(dst) = run.get_mut(filled..filled + c.len()) {
                    dst.copy_from_slice(c);
                }
                filled += c.len();
                Ok(())
            })?;
            out.extend_from_slice(&run);
            flush_if_full(&mut out, sink)
        })?;
    } else {
        // Long runs stream through in chunks of whole elements.
        let mut chunk = Vec::new();
        for_each_run(t, &outer, |elem| {
            checkpoint.read_range(record, elem * es, run_bytes, &mut |c| {
                chunk.clear();
                chunk.extend_from_slice(c);
                sink(&mut chunk)
            })
        })?;
    }
    if !out.is_empty() {
        sink(&mut out)?;
    }
    Ok(())
}

fn flush_if_full(
    out: &mut Vec<u8>,
    sink: &mut dyn FnMut(&mut [u8]) -> std::io::Result<()>,
) -> std::io::Result<()> {
    if out.len() >= CHUNK {
        sink(out)?;
        out.clear();
    }
    Ok(())
}

/// The longest trailing block of dimensions laid out contiguously (elements per run), and
/// the outer dimensions `(size, stride)` to iterate over.
fn runs(t: &TensorRef) -> (u64, Vec<(u64, u64)>) {
    let mut run = 1u64;
    let mut k = t.shape.len();
    for (&d, &s) in t.shape.iter().zip(&t.strides).rev() {
        if d != 1 && s != run {
            break;
        }
        run *= d;
        k -= 1;
    }
    let outer = t
        .shape
        .iter()
        .zip(&t.strides)
        .take(k)
        .map(|(&d, &s)| (d, s))
        .collect();
    (run, outer)
}

/// Calls `f` with the element index (in the storage) of each run, in C order.
fn for_each_run(
    t: &TensorRef,
    outer: &[(u64, u64)],
    mut f: impl FnMut(u64) -> std::io::Result<()>,
) -> std::io::Result<()> {
    if outer.iter().any(|&(d, _)| d == 0) {
        return Ok(());
    }
    let mut idx = vec![0u64; outer.len()];
    loop {
        let elem = t.offset + idx.iter().zip(outer).map(|(i, (_, s))| i * s).sum::<u64>();
        f(elem)?;
        // Odometer: advance the last dimension, carrying into earlier ones.
        let mut dim = outer.len();
        loop {
            if dim == 0 {
                return Ok(());
            }
            dim -= 1;
            let (size, _) = outer[dim];
            idx[dim] += 1;
            if idx[dim] < size {
                break;
            }
            idx[dim] = 0;
        }
    }
}

/// Reverses every `unit`-byte group (torch's `byteswap`); units of 0 or 1 leave it alone.
pub fn byteswap(bytes: &mut [u8], unit: u64) {
    if unit > 1 {
        for group in bytes.chunks_exact_mut(unit as usize) {
            group.reverse();
        }
    }
}

/// Re-reads the written file with the `safetensors` crate and checks it holds exactly the
/// planned tensors.
fn validate(file: &File, plan: &Plan, offsets: &[DataRange]) -> Result<(), String> {
    // SAFETY: our own temporary file, not modified while mapped; only the header is touched.
    #[allow(unsafe_code)]
    let map = unsafe { Mmap::map(file) }.map_err(|e| e.to_string())?;
    let (_, meta) = SafeTensors::read_metadata(&map).map_err(|e| e.to_string())?;
    let parsed = SafeTensors::deserialize(&map).map_err(|e| e.to_string())?;
    if parsed.len() != plan.tensors.len() {
        return Err(format!(
            "{} tensors instead of {}",
            parsed.len(),
            plan.tensors.len()
        ));
    }
    for (t, (begin, end)) in plan.tensors.iter().zip(offsets) {
        let info = meta
            .info(&t.name)
            .ok_or_else(|| format!("`{}` is missing", t.name))?;
        let same = info.dtype == t.dtype
            && info.shape == t.shape
            && info.data_offsets == (*begin as usize, *end as usize);
        if !same {
            return Err(format!("`{}` reads back as {info:?}", t.name));
        }
    }
    let metadata = meta.metadata().clone().unwrap_or_default();
    if metadata.len() != plan.metadata.len()
        || plan
            .metadata
            .iter()
            .any(|(k, v)| metadata.get(k) != Some(v))
    {
        return Err("the metadata reads back differently".into());
    }
    Ok(())
}

/// Compares every written tensor with its source. Contiguous tensors are compared chunk by
/// chunk; strided views element by element from indices computed afresh (not by the
/// writer's run logic).
fn verify(
    checkpoint: &Checkpoint,
    plan: &Plan,
    written: &File,
    data_start: u64,
    offsets: &[DataRange],
) -> Result<(), ConvertError> {
    for (t, (begin, end)) in plan.tensors.iter().zip(offsets) {
        verify_tensor(checkpoint, t, written, data_start + begin, end - begin).map_err(|e| {
            ConvertError::VerifyFailed {
                path: plan.input.clone(),
                why: format!("`{}`: {e}", t.name),
            }
        })?;
    }
    Ok(())
}

fn verify_tensor(
    checkpoint: &Checkpoint,
    t: &PlannedTensor,
    written: &File,
    at: u64,
    len: u64,
) -> std::io::Result<()> {
    let src = &t.source;
    let es = src.element_size;
    let mut out = written;
    out.seek(SeekFrom::Start(at))?;
    let mut reader = std::io::BufReader::with_capacity(CHUNK, out).take(len);
    if src.numel() == 0 {
        return Ok(());
    }
    let record = storage_record(checkpoint, src)?;
    let differs = || std::io::Error::other("bytes differ from the source");
    if is_contiguous(src) {
        let mut got = Vec::new();
        return checkpoint.read_range(&record, src.offset * es, t.nbytes, &mut |chunk| {
            let mut want = chunk.to_vec();
            byteswap(&mut want, src.swap);
            got.resize(want.len(), 0);
            reader.read_exact(&mut got)?;
            if got == want { Ok(()) } else { Err(differs()) }
        });
    }
    let start = src.offset * es;
    let end = last_index(src).map_or(u64::MAX, |i| (i + 1) * es);
    let span = end.saturating_sub(start);
    let storage = if span <= MAX_GATHER_SPAN {
        let mut v = Vec::with_capacity(span as usize);
        checkpoint.read_range(&record, start, span, &mut |c| {
            v.extend_from_slice(c);
            Ok(())
        })?;
        Some(v)
    } else {
        None
    };
    let mut idx = vec![0u64; src.shape.len()];
    let mut got = vec![0u8; es as usize];
    let mut want = vec![0u8; es as usize];
    for _ in 0..src.numel() {
        let elem = src.offset
            + idx
                .iter()
                .zip(&src.strides)
                .map(|(i, s)| i * s)
                .sum::<u64>();
        let from = elem * es;
        match &storage {
            Some(bytes) => want.copy_from_slice(
                bytes
                    .get((from - start) as usize..(from - start + es) as usize)
                    .ok_or_else(differs)?,
            ),
            None => checkpoint.read_range(&record, from, es, &mut |c| {
                want.copy_from_slice(c);
                Ok(())
            })?,
        }
        byteswap(&mut want, src.swap);
        reader.read_exact(&mut got)?;
        if got != want {
            return Err(differs());
        }
        for d in (0..idx.len()).rev() {
            idx[d] += 1;
            if idx[d] < src.shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn temporaries_carry_the_process_id_for_cleanup() {
        let dir = tempfile::tempdir().unwrap();
        let temp = output_temp_file(dir.path(), ".model.").unwrap();
        let name = temp
            .path()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let prefix = format!(".airlock-{}-model.", std::process::id());
        assert!(
            name.starts_with(&prefix) && name.ends_with(".partial"),
            "{name}"
        );
    }

    use super::*;
    use crate::Scanner;
    use crate::convert::{Options, plan};

    /// The run-at-a-time path (used when a view spans more than [`MAX_GATHER_SPAN`]) gives
    /// the same bytes as the in-memory gather (transposes, steps, a diagonal, overlapping
    /// and gapped `as_strided`, expansions).
    #[test]
    fn run_at_a_time_matches_gather() {
        for (fixture, views) in [("views.pt", 3), ("shared_views.pt", 9)] {
            run_at_a_time_matches_gather_in(fixture, views);
        }
    }

    fn run_at_a_time_matches_gather_in(fixture: &str, views: usize) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/convert")
            .join(fixture);
        let checkpoint = Checkpoint::open(&path, &Scanner::default()).unwrap();
        let plan = plan::plan(&checkpoint, &Options::default()).unwrap();
        let mut strided = 0;
        for t in plan
            .tensors
            .iter()
            .filter(|t| !t.is_contiguous() && t.nbytes > 0)
        {
            strided += 1;
            let record = checkpoint.record(&t.source.storage).unwrap();
            let collect = |max_span| {
                let mut bytes = Vec::new();
                emit(
                    &checkpoint,
                    &record,
                    &t.source,
                    max_span,
                    &mut |c: &mut [u8]| {
                        bytes.extend_from_slice(c);
                        Ok(())
                    },
                )
                .unwrap();
                bytes
            };
            let gathered = collect(MAX_GATHER_SPAN);
            assert_eq!(gathered.len() as u64, t.nbytes, "{}", t.name);
            assert_eq!(collect(0), gathered, "{}", t.name);
        }
        assert!(strided >= views, "{fixture}: {strided} strided views");
    }

    /// Runs longer than a chunk stream through without being buffered whole.
    #[test]
    fn long_runs_stream_in_chunks() {
        let rows = 4u64;
        let cols = 300_000u64;
        let storage: Vec<u8> = (0..rows * cols * 4).map(|i| (i % 251) as u8).collect();
        let spec = crate::convert::testkit::TensorSpec {
            name: "every_other_row".into(),
            storage_class: "FloatStorage",
            element_size: 4,
            storage,
            offset: cols,
            shape: vec![2, cols],
            strides: vec![2 * cols, 1],
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.pt");
        std::fs::write(
            &path,
            crate::convert::testkit::checkpoint(std::slice::from_ref(&spec)),
        )
        .unwrap();
        let checkpoint = Checkpoint::open(&path, &Scanner::default()).unwrap();
        let plan = plan::plan(&checkpoint, &Options::default()).unwrap();
        let t = &plan.tensors[0];
        let record = checkpoint.record(&t.source.storage).unwrap();
        let mut bytes = Vec::new();
        let mut largest = 0;
        emit(&checkpoint, &record, &t.source, 0, &mut |c: &mut [u8]| {
            largest = largest.max(c.len());
            bytes.extend_from_slice(c);
            Ok(())
        })
        .unwrap();
        assert!(largest <= CHUNK);
        assert_eq!(bytes, crate::convert::testkit::expected_bytes(&spec));
    }
}
