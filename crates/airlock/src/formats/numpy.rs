//! placeholder
use crate::scan::Ctx;
pub fn scan(_ctx: &mut Ctx, _data: &[u8]) -> &'static str {
    "npy"
}
