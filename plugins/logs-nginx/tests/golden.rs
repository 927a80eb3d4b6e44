//! Golden tests: `fixtures/access.log` (lines written by a real nginx 1.22 in `combined`
//! format, an IPv6 client, a TLS handshake sent to a plain-HTTP port, an empty request, a
//! 100 MiB range response, an error-log line and raw non-UTF-8 bytes) through the processor
//! as the host drives it. Records and metrics must match `access.golden.jsonl` and
//! `access.golden.prom`. After a deliberate change: `UPDATE_GOLDEN=1 cargo test -p
//! wasmon-logs-nginx --test golden`, then review the diff.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use wasmon_logs_nginx::{NginxConfig, NginxProcessor};
use wasmon_sdk_logs::LogProcessor;
use wasmon_sdk_logs::testing::{BatchBuilder, Harness, assert_golden, fixture_lines, render};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

#[test]
fn access_log_matches_golden() {
    let mut h = Harness::<NginxProcessor>::new(r#"{"on_no_match":"mark"}"#).unwrap();
    let lines = fixture_lines(fixture("access.log"));
    let mut b = BatchBuilder::new();
    for l in &lines {
        b.line(l.clone());
    }
    let batch = b.build();
    let out = h.process(batch.clone()).unwrap();
    assert_eq!(out.len(), lines.len());
    for (r, l) in out.iter().zip(&lines) {
        assert_eq!(&r.body, l, "the body is never changed");
    }
    assert_golden(&render(&batch.sources, &out), fixture("access.golden.jsonl"));
    assert_golden(&h.metrics_text(), fixture("access.golden.prom"));
}

#[test]
fn config_example_is_described_and_loads() {
    assert_eq!(NginxProcessor::describe().config_example, include_str!("../config.example.yaml"));
    let yaml: serde_json::Value = serde_yaml_ng::from_str(include_str!("../config.example.yaml")).unwrap();
    let cfg = NginxConfig::from_json(&yaml.to_string()).unwrap();
    assert_eq!(cfg.format, "combined");
    NginxProcessor::new(cfg).unwrap();
}
