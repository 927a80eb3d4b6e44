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

/// The index of the first `"`, `\` or control character below 0x20 in
/// `bytes` from `from` on, or `bytes.len()` if there is none: what JSON
/// requires escaped (serde_json escapes nothing else), and where a JSON
/// string's text without escapes ends. Shared by the host's JSON-writing
/// sinks and the reader in [`flatten`].
///
/// Eight bytes per step as one `u64`, natively and in wasm32 (which has
/// 64-bit integer instructions). For each test, `(x - 0x01..) & !x & 0x80..`
/// flags the bytes of `x` that are zero (the classic "has zero byte" test;
/// `x` is the word xor the byte looked for), or below 0x20 with 0x20 in
/// place of 0x01; bytes from 0x80 up never match, `!x` clears their high
/// bit. A borrow can also flag a byte above a true match, never one below
/// it, so the lowest flag is exact.
#[inline]
pub fn first_to_escape(bytes: &[u8], from: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut i = from;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let quote = word ^ (ONES * u64::from(b'"'));
        let backslash = word ^ (ONES * u64::from(b'\\'));
        let flags = (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (word.wrapping_sub(ONES * 0x20) & !word);
        let flags = flags & HIGHS;
        if flags != 0 {
            return i + (flags.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = bytes.get(i) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            return i;
        }
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_to_escape_finds_the_first_stop_at_every_offset_and_start() {
        for len in 0..40 {
            for stop in [b'"', b'\\', 0u8, 0x1f] {
                for at in 0..=len {
                    let mut bytes = vec![b'a'; len];
                    bytes.iter_mut().step_by(3).for_each(|b| *b = 0xc3); // high bytes are not stops
                    if at < len {
                        bytes[at] = stop;
                        // Stops after the first must not matter.
                        bytes.iter_mut().skip(at + 1).step_by(2).for_each(|b| *b = b'"');
                    }
                    assert_eq!(first_to_escape(&bytes, 0), at, "{len} {stop} {at}");
                    for from in 0..=at {
                        assert_eq!(first_to_escape(&bytes, from), at, "{len} {stop} {at} from {from}");
                    }
                }
            }
        }
    }
}
