//! Arbitrary bytes never panic and never lose bytes; and lines written the way go-logfmt's
//! encoder writes them decode back to exactly the pairs that were encoded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use wasmon_logs_logfmt::decode::Decoder;
use wasmon_logs_logfmt::{Logfmt, LogfmtConfig, Outcome};
use wasmon_sdk_logs::LogRecord;

/// go-logfmt's `writeStringValue`: bare unless the value is empty... (an empty value is
/// written as nothing after `=`), quoted with JSON escapes when it holds a byte <= ' ',
/// `=`, `"` or U+FFFD.
fn encode_value(v: &str) -> String {
    if !v.chars().any(|c| c <= ' ' || c == '=' || c == '"' || c == '\u{FFFD}') {
        return v.to_string();
    }
    let mut out = String::from("\"");
    for c in v.chars() {
        match c {
            '\\' | '"' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c < ' ' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn encoded_pairs_decode_back(pairs in prop::collection::vec(("[a-z_.][a-z0-9_.:/-]{0,8}", "\\PC{0,12}|[ =\"\\\\\t\n\u{1}é☃]{0,6}"), 0..8)) {
        let line: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={}", encode_value(v))).collect();
        let line = line.join(" ");
        let (decoded, err) = Decoder::decode_all(line.as_bytes());
        prop_assert_eq!(err, None, "{}", line);
        let decoded: Vec<(String, String)> = decoded
            .into_iter()
            .map(|p| (p.key.to_string(), String::from_utf8(p.value.unwrap().into_owned()).unwrap()))
            .collect();
        prop_assert_eq!(decoded, pairs, "{}", line);
    }

    #[test]
    fn arbitrary_bytes_never_panic_or_lose_bytes(body in prop::collection::vec(any::<u8>(), 0..200), quoted in any::<bool>()) {
        // Bias towards logfmt-looking input as well as noise.
        let body = if quoted { [b"a=\"".as_slice(), &body, b"\" b=1"].concat() } else { body };
        let mut p = Logfmt::new(LogfmtConfig::default());
        let mut r = LogRecord::new(0, 0, body.clone());
        p.process(&mut r);
        prop_assert_eq!(&r.body, &body, "without message_key the body is never touched");

        let mut p = Logfmt::new(LogfmtConfig::from_json(r#"{"message_key":"msg","timestamp_key":"ts"}"#).unwrap());
        let mut r = LogRecord::new(0, 0, body.clone());
        match p.process(&mut r) {
            Outcome::Parsed => {}
            Outcome::Partial(_) | Outcome::Skipped => prop_assert_eq!(&r.body, &body),
        }
    }
}
