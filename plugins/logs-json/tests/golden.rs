//! Golden tests: the JSON lines in tests/fixtures, processed natively as the
//! host would send them, must match the `.golden` renderings next to them
//! (records) and the `.prom` files (the plugin's metrics afterwards). After
//! a deliberate change, regenerate with `UPDATE_GOLDEN=1 cargo test -p
//! wasmon-logs-json --test golden` and review the diff.

use std::path::PathBuf;
use wasmon_logs_json::LogsJson;
use wasmon_sdk_logs::testing::{BatchBuilder, Harness, assert_golden, fixture_lines, render};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn check(fixture_name: &str, config: &str) {
    let mut h = Harness::<LogsJson>::new(config).unwrap_or_else(|e| panic!("config {config}: {e:?}"));
    let mut b = BatchBuilder::new();
    for line in fixture_lines(fixture(fixture_name)) {
        b.line(line);
    }
    let batch = b.build();
    let sources = batch.sources.clone();
    let inputs = batch.records.clone();
    let out = h.process(batch).expect("process");
    assert_eq!(out.len(), inputs.len(), "logs-json never drops or adds records");
    for (i, (got, sent)) in out.iter().zip(&inputs).enumerate() {
        if got.attribute("json.error").is_some() {
            assert_eq!(got.body, sent.body, "record {i}: a body that failed to parse is kept byte for byte");
        }
    }
    let stem = fixture_name.trim_end_matches(".jsonl");
    assert_golden(&render(&sources, &out), fixture(&format!("{stem}.golden")));
    assert_golden(&h.metrics_text(), fixture(&format!("{stem}.prom")));
}

#[test]
fn application_logs_with_every_special_key() {
    check("app.jsonl", r#"{"message_key":"msg","timestamp_key":"time","level_key":"level"}"#);
}

#[test]
fn application_logs_with_defaults() {
    // No special keys: only flattening; bodies stay the original JSON.
    let mut h = Harness::<LogsJson>::new("{}").unwrap();
    let lines = fixture_lines(fixture("app.jsonl"));
    let out = h.process_lines(&lines).unwrap();
    for (got, sent) in out.iter().zip(&lines) {
        assert_eq!(&got.body, sent);
    }
    assert_eq!(out[0].attribute("http.status"), Some("200"));
    assert_eq!(out[0].attribute("msg"), Some("request served"));
    assert_eq!(out[1].attribute("db.pool.idle"), None, "max_depth 4 flattens down to db.pool.idle.now");
    assert_eq!(out[1].attribute("db.pool.idle.now"), Some("2"));
}

#[test]
fn separator_depth_and_prefix() {
    check(
        "app-flat.jsonl",
        r#"{"separator":"_","max_depth":2,"prefix":"app.","message_key":"msg","mark_non_json":false}"#,
    );
}

#[test]
fn invalid_utf8_is_marked_and_kept() {
    check("invalid-utf8.jsonl", r#"{"message_key":"msg","level_key":"level"}"#);
}
