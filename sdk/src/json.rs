//! JSON helpers shared by the `logs-json` plugin and the host's native JSON
//! processor (its benchmark reference): the flattening reader both run, and
//! the rules both print values by.

pub mod flatten;

use crate::attributes::ValueText;

/// Appends the text `serde_json::Value` prints for the number `f` (nothing
/// for infinities and NaN, which JSON cannot hold), by the formatter
/// serde_json's `Display` uses, without going through `fmt`. One rule for
/// the `logs-json` plugin and the native processor, so their attributes agree.
pub fn push_f64(out: &mut ValueText<'_>, f: f64) {
    if f.is_finite() {
        out.push_str(zmij::Buffer::new().format_finite(f));
    }
}
