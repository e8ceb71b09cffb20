//! Where a scanned file's bytes come from: positioned reads, a size, and a whole-slice view
//! when the bytes are in memory or mapped.
//!
//! Format modules read slices today; the scanner gets those slices from a [`ByteSource`].
//! A later source that is not a local file (HTTP range requests) implements the same trait,
//! so the formats need no change: a source without a slice view is read through
//! [`ByteSource::read_at`] into a buffer first (or, later, a sparse image such as
//! `containers::zip_image` builds for large PyTorch zips).
//!
//! [`LocalFile`] is the local implementation the scanner uses: small files are read, larger
//! ones mapped read-only through [`guarded_map`], which keeps its SIGBUS handling (a file
//! truncated under the scan reads as zeros and is flagged, [`ByteSource::faulted`]).
//! Bottom floor: imports nothing from the rest of the crate.

pub mod guarded_map;

use std::fs::File;
use std::io;

use guarded_map::GuardedMap;

/// Bytes of a file that can be read at any offset.
pub trait ByteSource {
    /// Size in bytes.
    fn len(&self) -> u64;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads up to `buf.len()` bytes at `offset` (like `pread`): returns how many were read,
    /// 0 at or past the end.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;

    /// Fills `buf` from `offset`, or fails with `UnexpectedEof` when the source ends first.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut done = 0;
        while done < buf.len() {
            let at = offset.saturating_add(done as u64);
            let n = self.read_at(at, &mut buf[done..])?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "the source ends before offset {}",
                        offset + buf.len() as u64
                    ),
                ));
            }
            done += n;
        }
        Ok(())
    }

    /// The whole source as one slice, when it is in memory or mapped.
    fn as_slice(&self) -> Option<&[u8]> {
        None
    }

    /// Whether the source changed under the reader (a mapped file truncated meanwhile: the
    /// bytes past the cut read as zeros).
    fn faulted(&self) -> bool {
        false
    }
}

/// Copies from `data` at `offset` (the in-memory `read_at`).
fn read_slice_at(data: &[u8], offset: u64, buf: &mut [u8]) -> usize {
    let Some(rest) = usize::try_from(offset).ok().and_then(|at| data.get(at..)) else {
        return 0;
    };
    let n = rest.len().min(buf.len());
    buf[..n].copy_from_slice(&rest[..n]);
    n
}

impl ByteSource for [u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        Ok(read_slice_at(self, offset, buf))
    }

    fn as_slice(&self) -> Option<&[u8]> {
        Some(self)
    }
}

/// A local file's bytes: read into memory when small, mapped (guarded) when large.
pub enum LocalFile {
    Read(Vec<u8>),
    Mapped(GuardedMap),
}

impl LocalFile {
    /// Files up to this size are read rather than mapped: for small files a read costs less
    /// than a map (its page faults, and the unmap's TLB shootdown across scanning threads),
    /// and a file truncated meanwhile cannot raise SIGBUS.
    pub const READ_NOT_MAP_BYTES: u64 = 256 * 1024;

    /// Reads the first `size` bytes of `file` (its size when opened).
    pub fn read(mut file: &File, size: u64) -> io::Result<LocalFile> {
        use std::io::Read;
        let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        (&mut file).take(size).read_to_end(&mut data)?;
        Ok(LocalFile::Read(data))
    }

    /// Maps `file` read-only, guarded against SIGBUS ([`guarded_map`]).
    pub fn map(file: &File) -> io::Result<LocalFile> {
        GuardedMap::map(file).map(LocalFile::Mapped)
    }

    /// The bytes, whichever way they were obtained.
    pub fn bytes(&self) -> &[u8] {
        match self {
            LocalFile::Read(data) => data,
            LocalFile::Mapped(map) => map,
        }
    }

    /// Tells the kernel reads will jump around (no readahead), for a mapped file.
    pub fn advise_random(&self) {
        if let LocalFile::Mapped(map) = self {
            map.advise_random();
        }
    }
}

impl ByteSource for LocalFile {
    fn len(&self) -> u64 {
        self.bytes().len() as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        Ok(read_slice_at(self.bytes(), offset, buf))
    }

    fn as_slice(&self) -> Option<&[u8]> {
        Some(self.bytes())
    }

    fn faulted(&self) -> bool {
        match self {
            LocalFile::Read(_) => false,
            LocalFile::Mapped(map) => map.faulted(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positioned_reads_stop_at_the_end() {
        let data: &[u8] = b"0123456789";
        let mut buf = [0u8; 4];
        assert_eq!(data.read_at(8, &mut buf).unwrap(), 2);
        assert_eq!(&buf[..2], b"89");
        assert_eq!(data.read_at(10, &mut buf).unwrap(), 0);
        assert_eq!(data.read_at(u64::MAX, &mut buf).unwrap(), 0);
        data.read_exact_at(6, &mut buf).unwrap();
        assert_eq!(&buf, b"6789");
        let err = data.read_exact_at(7, &mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn a_local_file_is_read_when_small_and_mapped_when_asked() {
        let dir = std::env::temp_dir().join(format!("airlock-source-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f.bin");
        std::fs::write(&path, b"hello source").unwrap();
        let file = File::open(&path).unwrap();
        let read = LocalFile::read(&file, 5).unwrap();
        assert_eq!(
            read.as_slice(),
            Some(&b"hello"[..]),
            "only the size given is read"
        );
        let mapped = LocalFile::map(&file).unwrap();
        assert_eq!(ByteSource::len(&mapped), 12);
        let mut buf = [0u8; 6];
        mapped.read_exact_at(6, &mut buf).unwrap();
        assert_eq!(&buf, b"source");
        assert!(!mapped.faulted());
        drop(mapped);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
