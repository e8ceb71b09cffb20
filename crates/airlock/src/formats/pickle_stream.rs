//! Files that a loader would unpickle directly: plain pickles, legacy PyTorch files (several
//! pickles in a row followed by raw storage bytes), joblib files and anything unrecognised.

use crate::report::Finding;
use crate::rules::Rule;
use crate::scan::Ctx;

/// Scans `data` as a stream of pickles; when it is not a pickle at all, reports what it is.
pub fn scan_or_classify(ctx: &mut Ctx, data: &[u8]) -> &'static str {
    let kind = super::classify_non_model(data);
    ctx.report(Finding::new(Rule::NotAModel, format!("{kind} data")));
    kind
}

/// Scans `data` as pickle bytes that a loader is known to unpickle (a NumPy object array's
/// data, a nested pickle): it is reported as a pickle even when malformed.
pub fn scan_pickles(ctx: &mut Ctx, data: &[u8]) -> &'static str {
    scan_or_classify(ctx, data)
}
