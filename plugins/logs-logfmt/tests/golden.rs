//! Golden tests: `fixtures/app.logfmt` (lines from Prometheus, Loki, Heroku's router and
//! logrus, plus broken ones and invalid UTF-8) through the processor as the host drives
//! it; the records and the metrics must match `app.golden.jsonl` and `app.golden.prom`.
//! After a deliberate change: `UPDATE_GOLDEN=1 cargo test -p wasmon-logs-logfmt --test
//! golden`, then review the diff line by line.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use wasmon_logs_logfmt::{Logfmt, LogfmtConfig};
use wasmon_sdk_logs::LogProcessor;
use wasmon_sdk_logs::testing::{Harness, assert_golden, fixture_lines, render};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

#[test]
fn app_log_matches_golden() {
    let config = r#"{"message_key":"msg","level_key":"level","timestamp_key":"ts"}"#;
    let mut h = Harness::<Logfmt>::new(config).unwrap();
    let lines = fixture_lines(fixture("app.logfmt"));
    let batch = {
        let mut b = wasmon_sdk_logs::testing::BatchBuilder::new();
        for l in &lines {
            b.line(l.clone());
        }
        b.build()
    };
    let out = h.process(batch.clone()).unwrap();
    assert_eq!(out.len(), lines.len(), "a parser never drops records");
    assert_golden(&render(&batch.sources, &out), fixture("app.golden.jsonl"));
    assert_golden(&h.metrics_text(), fixture("app.golden.prom"));
}

/// The example config is what `describe` shows, and it loads.
#[test]
fn config_example_loads() {
    let yaml: serde_json::Value = serde_yaml_ng::from_str(include_str!("../config.example.yaml")).unwrap();
    let cfg = LogfmtConfig::from_json(&yaml.to_string()).unwrap();
    assert_eq!(cfg.message_key.as_deref(), Some("msg"));
    assert_eq!(cfg.timestamp_key.as_deref(), Some("ts"));
    assert_eq!(Logfmt::describe().config_example, include_str!("../config.example.yaml"));
    assert!(Logfmt::check_config("{}").is_ok());
    let err = Logfmt::check_config(r#"{"bare_keys":"maybe"}"#).unwrap_err();
    assert!(err.message.contains("unknown variant `maybe`"), "{}", err.message);
}

/// The decoder against go-logfmt itself: `fixtures/corpus.logfmt` (4000 generated lines
/// biased towards quotes, escapes, `=`, control bytes and invalid UTF-8, then the
/// real-world fixture lines) was decoded by go-logfmt 0.5.0 (`go-logfmt/main.go`, Debian's
/// golang-github-go-logfmt-logfmt-dev) into `corpus.go-logfmt.jsonl`. Every line must give
/// the same keys, the same value bytes, and the same error at the same position.
#[test]
fn go_logfmt_reference() {
    use wasmon_logs_logfmt::decode::{Decoder, SyntaxError};
    let lines = fixture_lines(fixture("corpus.logfmt"));
    let reference = std::fs::read_to_string(fixture("corpus.go-logfmt.jsonl")).unwrap();
    let reference: Vec<serde_json::Value> = reference.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), reference.len());
    let mut errors = 0;
    for (i, (line, want)) in lines.iter().zip(&reference).enumerate() {
        let (pairs, err) = Decoder::decode_all(line);
        // go-logfmt has one nil for `k`, `k=` and `k=""`.
        let pairs: Vec<serde_json::Value> = pairs
            .iter()
            .map(|p| {
                let value = p.value.as_deref().filter(|v| !v.is_empty());
                let hex: Option<String> = value.map(|v| v.iter().map(|b| format!("{b:02x}")).collect());
                serde_json::json!([p.key, hex])
            })
            .collect();
        let err = err.map(|e| {
            let (pos, msg) = match e {
                SyntaxError::UnexpectedByte { pos, byte } => (pos, format!("unexpected '{}'", char::from(byte))),
                SyntaxError::InvalidKey { pos } => (pos, "invalid key".into()),
                SyntaxError::UnterminatedQuote { pos } => (pos, "unterminated quoted value".into()),
                SyntaxError::InvalidQuote { pos } => (pos, "invalid quoted value".into()),
            };
            serde_json::json!({"pos": pos, "msg": msg})
        });
        errors += usize::from(err.is_some());
        let got = serde_json::json!({"pairs": pairs, "error": err});
        assert_eq!(&got, want, "line {} {:?}", i + 1, String::from_utf8_lossy(line));
    }
    assert!(errors > 1000 && errors < lines.len() - 500, "the corpus exercises both paths: {errors} errors");
}
