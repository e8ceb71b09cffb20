//! The layout facts that planning and writing share: how a view's elements lie in its
//! storage ([`view_span`], [`is_contiguous`]), how much of a storage is gathered at once
//! ([`MAX_GATHER_SPAN`]) and where the output's data starts ([`DATA_ALIGNMENT`]). They live
//! here, below both, so that `write` imports `plan` and never the other way round.

use super::interpret::{TensorRef, last_index};

pub use crate::limits::caps::convert::MAX_GATHER_SPAN;

/// Data of at least this size starts at a [`DATA_ALIGNMENT`] boundary of the output.
pub const ALIGN_DATA_FROM: u64 = 1 << 20;

/// Boundary the data of a large output starts at: a page, so that the kernel's file-to-file
/// copy writes whole destination pages. Measured on the 1 GB bench checkpoint (437 copies,
/// warm page cache, `copy_file_range`): 0.58 s with the data at `8 + header` (8-aligned, as
/// `save_file` writes it) against 0.51 s page-aligned, median of six alternating runs each.
/// (Measured when tensors were copied with `copy_file_range`; the buffered copy that replaced
/// it does not depend on alignment, and a page-aligned start costs at most 4 KiB of padding.)
pub const DATA_ALIGNMENT: usize = 4096;

/// `[start, end)` in bytes of the storage a non-empty view reads: from its first element to
/// the end of its last. `None` when the arithmetic overflows.
pub fn view_span(t: &TensorRef) -> Option<(u64, u64)> {
    let start = t.offset.checked_mul(t.element_size)?;
    let end = last_index(t)?.checked_add(1)?.checked_mul(t.element_size)?;
    Some((start, end))
}

/// C-contiguous: each stride equals the product of the sizes after it (ignoring size-1
/// dimensions, whose stride never matters), so the bytes are one run.
pub fn is_contiguous(t: &TensorRef) -> bool {
    let mut expected = 1u64;
    for (&d, &s) in t.shape.iter().zip(&t.strides).rev() {
        if d != 1 && s != expected {
            return false;
        }
        expected = expected.saturating_mul(d);
    }
    true
}
