//! The engine's fixed bounds that the full machine and the fast pass ([`super::lite`])
//! share: how many children a container keeps, how often the time budget is checked, and how
//! much capacity a pickle gets before its first opcode. They live below both interpreters so
//! that the machine imports the fast pass and never the other way round.

/// Children kept per container; beyond this a container only counts its items.
pub(super) const MAX_KEPT_CHILDREN: usize = 1 << 20;
/// How often (in opcodes) the time budget is checked, and after how many opcodes a pickle
/// counts as large enough to reserve capacity for (the machine's `Reserve`). At a few
/// nanoseconds per opcode this is well under a millisecond, so a timeout is met within 10 %
/// for any timeout of 10 ms or more.
pub(crate) const PERIODIC_CHECK_INTERVAL: u64 = 1 << 14;

/// Input bytes whose reservation every pickle gets before its first opcode (the machine's
/// `Reserve`).
pub(crate) const FIRST_RESERVE_INPUT: usize = 16 << 10;
