//! Arbitrary bytes never panic, and a record that no pattern matches keeps its body
//! byte for byte.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use std::sync::LazyLock;
use wasmon_logs_regex::{Outcome, RegexProcessor};
use wasmon_sdk_logs::LogRecord;

/// Compiled once: a fresh clone per case shares the compiled programs.
static PROCESSOR: LazyLock<RegexProcessor> = LazyLock::new(|| {
    RegexProcessor::from_json(
        r#"{"patterns":["^(?P<a>\\w+)=(?P<b>.*)$","(?-u)(?P<raw>[\\x80-\\xff]+)"],"body_group":"b"}"#,
    )
    .unwrap()
});

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut p = PROCESSOR.clone();
        let mut r = LogRecord::new(0, 0, body.clone());
        match p.process(&mut r) {
            Outcome::NoMatch => prop_assert_eq!(&r.body, &body),
            Outcome::Matched(1) => prop_assert_eq!(&r.body, &body, "no body group in pattern 1"),
            Outcome::Matched(_) => {
                // The body became group `b`, a suffix of the original, or stayed.
                prop_assert!(body.ends_with(&r.body));
                if std::str::from_utf8(&body).is_err() {
                    prop_assert_eq!(&r.body, &body, "a body that is not UTF-8 is never replaced");
                }
            }
        }
    }
}
