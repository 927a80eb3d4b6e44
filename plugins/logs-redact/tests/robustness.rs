//! Arbitrary bytes never panic; bytes outside a redaction are kept exactly; and a
//! redacted body never still contains what was redacted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use std::sync::LazyLock;
use wasmon_logs_redact::Redactor;
use wasmon_sdk_logs::LogRecord;

/// Compiled once: a clone per case shares the compiled programs.
static DEFAULT: LazyLock<Redactor> = LazyLock::new(|| Redactor::from_json("{}").unwrap());
static ALL_HASHED: LazyLock<Redactor> = LazyLock::new(|| {
    Redactor::from_json(r#"{"builtin":["jwt","bearer","api_key","email","credit_card","ipv4"],"replacement":"hash"}"#)
        .unwrap()
});

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_around_a_secret(prefix in prop::collection::vec(any::<u8>(), 0..60), suffix in prop::collection::vec(any::<u8>(), 0..60)) {
        let mut r = DEFAULT.clone();
        let body = [&prefix[..], b" alice@example.com ", &suffix[..]].concat();
        let mut rec = LogRecord::new(0, 0, body.clone());
        r.process(&mut rec);
        prop_assert!(!rec.body.windows(17).any(|w| w == b"alice@example.com"), "{:?}", rec.body);
        // Every masked span is replaced by exactly its marker; what is left between
        // markers is the input's bytes, in order.
        let kept: Vec<u8> = split_markers(&rec.body);
        prop_assert!(is_subsequence(&kept, &body));
    }

    #[test]
    fn noise_never_panics(body in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut r = ALL_HASHED.clone();
        let mut rec = LogRecord::new(0, 0, body.clone());
        if r.process(&mut rec) == 0 {
            prop_assert_eq!(rec.body, body);
        }
    }
}

/// The body with every `[REDACTED:...]` marker removed.
fn split_markers(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < body.len() {
        if body[i..].starts_with(b"[REDACTED:")
            && let Some(end) = body[i..].iter().position(|&c| c == b']')
        {
            i += end + 1;
            continue;
        }
        out.push(body[i]);
        i += 1;
    }
    out
}

fn is_subsequence(small: &[u8], big: &[u8]) -> bool {
    let mut it = big.iter();
    small.iter().all(|c| it.any(|b| b == c))
}
