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
    /// Bytes produced by decompression across the whole file.
    pub max_inflated_bytes: u64,
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
            max_compression_ratio: 1_000,
            max_file_size: None,
            timeout: Duration::from_secs(300),
        }
    }
}
