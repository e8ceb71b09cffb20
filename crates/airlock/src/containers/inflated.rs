//! Where decompressed bytes live while they are scanned: in memory up to a per-file budget,
//! beyond it in an unlinked temporary file that is then mapped.
//!
//! Every format reader takes a slice, and routing by content decides how much of it is read
//! (a pickle is read to its STOP, an HDF5 file jumps between its headers, unknown binary is
//! sniffed), so decompressed output is materialised whole rather than streamed and discarded:
//! a second, streaming implementation of each format would be a second reading to keep at
//! parity with the loaders. What is bounded is where the bytes are held:
//!
//! - in memory while every [`Inflated`] buffer alive for the file (all nesting levels
//!   together, counted by capacity) fits in [`crate::Limits::max_inflated_in_memory`], so
//!   nesting cannot multiply it;
//! - past that, in a temporary file created in the standard temporary folder (`TMPDIR`, else
//!   `/tmp` on Unix; [`std::env::temp_dir`]) and unlinked at once (`tempfile::tempfile`), so
//!   nothing is left behind even after a kill. The file is mapped read-only once complete; its
//!   pages belong to the page cache, which the kernel reclaims under pressure. Chunks that are
//!   all zeros are skipped with a seek rather than written, so a zero-filled bomb stays a
//!   sparse file that costs neither disk nor page cache.
//!
//! The private, unlinked file cannot be truncated by anyone else, so its mapping needs none of
//! the SIGBUS care the scanned file's mapping gets ([`crate::scan`]).

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::ops::Deref;

pub use crate::ctx::MemoryBudget;

/// Decompressed bytes, in memory or in a mapped temporary file; read them as a slice.
pub struct Inflated {
    held: Held,
}

enum Held {
    /// The bytes, and what was claimed from the budget for them (given back on drop).
    Memory(Vec<u8>, MemoryBudget, u64),
    Mapped(memmap2::Mmap),
}

impl Inflated {
    /// Whether the bytes went to a temporary file.
    pub fn spilled(&self) -> bool {
        matches!(self.held, Held::Mapped(_))
    }
}

impl Deref for Inflated {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.held {
            Held::Memory(bytes, ..) => bytes,
            Held::Mapped(map) => map,
        }
    }
}

impl AsRef<[u8]> for Inflated {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl PartialEq for Inflated {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for Inflated {}

impl std::fmt::Debug for Inflated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflated")
            .field("len", &self.len())
            .field("spilled", &self.spilled())
            .finish()
    }
}

impl Drop for Inflated {
    fn drop(&mut self) {
        if let Held::Memory(_, budget, claimed) = &self.held {
            budget.release(*claimed);
        }
    }
}

/// Collects decoder output into an [`Inflated`] buffer.
pub struct Sink {
    memory: Vec<u8>,
    budget: MemoryBudget,
    /// Bytes claimed from the budget for `memory` (at least its capacity).
    claimed: u64,
    file: Option<File>,
    /// Bytes written to `file` (its length once holes are counted).
    file_len: u64,
}

impl Sink {
    pub fn new(budget: &MemoryBudget) -> Self {
        Sink {
            memory: Vec::new(),
            budget: budget.clone(),
            claimed: 0,
            file: None,
            file_len: 0,
        }
    }

    /// Bytes collected so far.
    pub fn len(&self) -> u64 {
        self.file_len + self.memory.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `chunk`, in memory while the budget allows, else to the temporary file.
    pub fn push(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        if self.file.is_none() && self.grow_in_memory(chunk.len()) {
            self.memory.extend_from_slice(chunk);
            return Ok(());
        }
        self.spill()?;
        self.write_to_file(chunk)
    }

    /// Makes room for `n` more bytes in memory when the budget allows the larger capacity
    /// (capacity doubles, so a growing buffer is claimed ahead of its length).
    fn grow_in_memory(&mut self, n: usize) -> bool {
        let needed = self.memory.len().saturating_add(n);
        if needed <= self.memory.capacity() {
            return true;
        }
        let wanted = needed.max(self.memory.capacity().saturating_mul(2)) as u64;
        if !self.budget.try_claim(wanted.saturating_sub(self.claimed)) {
            return false;
        }
        self.claimed = self.claimed.max(wanted);
        self.memory
            .reserve_exact(needed.max(wanted as usize) - self.memory.len());
        // An allocator that rounds up: what it gave is held, so it is counted.
        let actual = self.memory.capacity() as u64;
        if actual > self.claimed {
            self.budget.add_held(actual - self.claimed);
            self.claimed = actual;
        }
        true
    }

    /// Moves what is in memory to a fresh unlinked temporary file (once).
    fn spill(&mut self) -> std::io::Result<()> {
        if self.file.is_some() {
            return Ok(());
        }
        self.file = Some(tempfile::tempfile()?);
        let memory = std::mem::take(&mut self.memory);
        let result = self.write_to_file(&memory);
        drop(memory);
        self.budget.release(std::mem::take(&mut self.claimed));
        result
    }

    fn write_to_file(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        // An OR over the chunk vectorises (an early-exit `all` does not); the first byte
        // decides quickly for data that is not zeros.
        if chunk.first() == Some(&0) && chunk.iter().fold(0u8, |acc, &b| acc | b) == 0 {
            // A hole: read back as zeros, costs no disk.
            file.seek(SeekFrom::Current(chunk.len() as i64))?;
        } else {
            file.write_all(chunk)?;
        }
        self.file_len += chunk.len() as u64;
        Ok(())
    }

    /// The collected bytes, ready to scan.
    pub fn finish(mut self) -> std::io::Result<Inflated> {
        let Some(file) = self.file.take() else {
            let memory = std::mem::take(&mut self.memory);
            let claimed = std::mem::take(&mut self.claimed);
            return Ok(Inflated {
                held: Held::Memory(memory, self.budget.clone(), claimed),
            });
        };
        // Trailing holes are only a seek so far: give the file its full length.
        file.set_len(self.file_len)?;
        // SAFETY: the file is private to this process (created unlinked by `tempfile`) and
        // never written again, so the mapping cannot change or shrink under the reader.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::Mmap::map(&file) }?;
        Ok(Inflated {
            held: Held::Mapped(map),
        })
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.budget.release(std::mem::take(&mut self.claimed));
    }
}

impl Inflated {
    /// An empty buffer (nothing decoded).
    pub fn empty(budget: &MemoryBudget) -> Self {
        Inflated {
            held: Held::Memory(Vec::new(), budget.clone(), 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_output_stays_in_memory_and_is_given_back() {
        let budget = MemoryBudget::new(1 << 20);
        let mut sink = Sink::new(&budget);
        sink.push(b"hello ").unwrap();
        sink.push(b"world").unwrap();
        let out = sink.finish().unwrap();
        assert_eq!(&*out, b"hello world");
        assert!(!out.spilled());
        assert!(budget.held() >= 11);
        drop(out);
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn output_past_the_budget_goes_to_a_mapped_file() {
        let budget = MemoryBudget::new(64 * 1024);
        let mut sink = Sink::new(&budget);
        let mut expected = Vec::new();
        for i in 0..40u8 {
            // Zero chunks become holes; others are written.
            let chunk = if i % 3 == 0 {
                vec![0u8; 4096]
            } else {
                vec![i; 4096]
            };
            sink.push(&chunk).unwrap();
            expected.extend_from_slice(&chunk);
            assert!(budget.held() <= 64 * 1024);
        }
        sink.push(&[0u8; 100]).unwrap();
        expected.extend_from_slice(&[0u8; 100]);
        let out = sink.finish().unwrap();
        assert!(out.spilled());
        assert_eq!(budget.held(), 0);
        assert_eq!(out.len(), expected.len());
        assert!(*out == *expected);
    }

    #[test]
    fn nesting_levels_share_one_budget() {
        let budget = MemoryBudget::new(10_000);
        let mut outer = Sink::new(&budget);
        outer.push(&[1u8; 8000]).unwrap();
        let outer = outer.finish().unwrap();
        let mut inner = Sink::new(&budget);
        inner.push(&[2u8; 8000]).unwrap();
        let inner = inner.finish().unwrap();
        assert!(!outer.spilled());
        assert!(
            inner.spilled(),
            "the inner level must not get a budget of its own"
        );
        drop(outer);
        assert_eq!(budget.held(), 0);
    }
}
