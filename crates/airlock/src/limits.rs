//! Hard limits that bound the time and memory Airlock spends on hostile input.
//!
//! Every limit is a named field with a documented default (see `docs/limits.md`). Reaching a
//! limit is reported as a finding that marks the file incomplete (never safe), never as a hang
//! or an out-of-memory.

use std::time::Duration;

/// Limits applied to one top-level file and everything nested inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Opcodes executed per pickle stream.
    pub max_opcodes: u64,
    /// Depth of the pickle stack (values plus marks).
    pub max_stack_depth: usize,
    /// Entries in one pickle's memo.
    pub max_memo_entries: usize,
    /// Values the symbolic machine may create per pickle (bounds its memory).
    pub max_values: usize,
    /// Depth of nested containers: archives in archives, pickles in pickles.
    pub max_nesting_depth: usize,
    /// Members opened across all archives of one file.
    pub max_members: u64,
    /// Bytes produced by decompression across the whole file, whatever its size (the
    /// effective budget is usually smaller: see [`Limits::inflated_budget`]).
    pub max_inflated_bytes: u64,
    /// Floor of the per-file decompression budget ([`Limits::inflated_budget`]): a small
    /// file may always inflate this much in total.
    pub min_inflated_budget: u64,
    /// Decompressed bytes one file may hold in memory at once, all nesting levels together;
    /// output beyond it goes to an unlinked temporary file that is mapped
    /// ([`crate::containers::inflated`]).
    pub max_inflated_in_memory: u64,
    /// Largest ratio of inflated to compressed bytes for one member (bomb detection);
    /// only checked once a member inflates past 1 MiB.
    pub max_compression_ratio: u64,
    /// Files larger than this are not scanned (reported unscannable). `None`: no limit.
    pub max_file_size: Option<u64>,
    /// Wall-clock time for one top-level file.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_opcodes: 200_000_000,
            max_stack_depth: 100_000,
            max_memo_entries: 10_000_000,
            max_values: 50_000_000,
            max_nesting_depth: 8,
            max_members: 100_000,
            max_inflated_bytes: 16 << 30,
            min_inflated_budget: 64 << 20,
            max_inflated_in_memory: 16 << 20,
            max_compression_ratio: 1_000,
            max_file_size: None,
            timeout: Duration::from_secs(300),
        }
    }
}

impl Limits {
    /// Bytes that decompression may produce in total for a top-level file of `file_size`
    /// bytes, across every nesting level: `max_compression_ratio` times the file's size, at
    /// least `min_inflated_budget`, at most `max_inflated_bytes`.
    ///
    /// The ratio limit alone is per member, so a stream inside a stream (a 268-byte gzip of a
    /// gzip) multiplies it at each level; charging every level against the top-level file's
    /// size stops that at the same ratio a single level gets. The floor lets small files
    /// that compress well (a few KiB of zeros) through.
    pub fn inflated_budget(&self, file_size: u64) -> u64 {
        file_size
            .saturating_mul(self.max_compression_ratio)
            .max(self.min_inflated_budget)
            .min(self.max_inflated_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inflated_budget_follows_the_file_size_between_floor_and_cap() {
        let limits = Limits::default();
        assert_eq!(limits.inflated_budget(268), 64 << 20);
        assert_eq!(limits.inflated_budget(2 << 20), 2000 << 20);
        assert_eq!(limits.inflated_budget(1 << 40), 16 << 30);
    }
}
