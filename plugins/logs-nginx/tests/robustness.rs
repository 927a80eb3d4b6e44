//! Arbitrary bytes, alone or spliced into a real combined line, never panic, never change
//! the body, and are either parsed (and counted) or counted as unparsed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use wasmon_logs_nginx::{NginxProcessor, Outcome};
use wasmon_sdk_logs::LogRecord;

const LINE: &[u8] = br#"127.0.0.1 - alice [02/Dec/2026:00:14:55 +0000] "GET /ok HTTP/1.1" 200 6 "-" "curl/8.5.0""#;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn arbitrary_bytes(noise in prop::collection::vec(any::<u8>(), 0..40), at in 0..LINE.len(), splice in any::<bool>()) {
        let body = if splice { [&LINE[..at], &noise, &LINE[at..]].concat() } else { noise };
        for format in ["combined", "common", "$remote_addr $status \"$request\" $body_bytes_sent"] {
            let mut p = NginxProcessor::from_json(&format!(r#"{{"format":{format:?}}}"#)).unwrap();
            let mut r = LogRecord::new(0, 5, body.clone());
            let outcome = p.process(&mut r);
            prop_assert_eq!(&r.body, &body);
            let counted: u64 = p.metrics.requests.values().sum();
            match outcome {
                Outcome::Parsed => prop_assert_eq!((counted, p.metrics.unparsed), (1, 0)),
                Outcome::NoMatch => prop_assert_eq!((counted, p.metrics.unparsed, r.attributes.len()), (0, 1, 0)),
            }
        }
    }
}
