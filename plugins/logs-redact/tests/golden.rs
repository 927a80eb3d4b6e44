//! Golden tests: `fixtures/app.log` (e-mail addresses, a JWT and an opaque token after
//! `Bearer`, secrets in JSON, AWS and GitHub keys, test card numbers next to lookalikes
//! that must stay, custom patterns, invalid UTF-8) through the processor configured by
//! `config.example.yaml`, once with masks and once with hashes. Records and metrics must
//! match the goldens beside the fixture. After a deliberate change: `UPDATE_GOLDEN=1 cargo
//! test -p wasmon-logs-redact --test golden`, then review the diff.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use wasmon_logs_redact::Redactor;
use wasmon_sdk_logs::LogProcessor;
use wasmon_sdk_logs::testing::{BatchBuilder, Harness, assert_golden, fixture_lines, render};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn example_config() -> serde_json::Value {
    serde_yaml_ng::from_str(include_str!("../config.example.yaml")).unwrap()
}

fn run(config: &serde_json::Value, golden: &str) {
    let mut h = Harness::<Redactor>::new(&config.to_string()).unwrap();
    let lines = fixture_lines(fixture("app.log"));
    let mut b = BatchBuilder::new();
    for l in &lines {
        b.line(l.clone());
    }
    let mut batch = b.build();
    // Attributes as an earlier parser would have set them.
    batch.records[0].set_attribute("user.email", "jane.doe@example.com");
    batch.records[0].set_attribute("http.url", "/reset?token=abcdef123456&user=jane");
    batch.records[0].set_attribute("other", "left@example.com");
    let out = h.process(batch.clone()).unwrap();
    assert_eq!(out.len(), lines.len());
    assert_golden(&render(&batch.sources, &out), fixture(&format!("{golden}.jsonl")));
    assert_golden(&h.metrics_text(), fixture(&format!("{golden}.prom")));
}

#[test]
fn masks_match_golden() {
    run(&example_config(), "app.golden");
}

#[test]
fn hashes_match_golden() {
    let mut config = example_config();
    config["replacement"] = "hash".into();
    config["hash_salt"] = "wasmon".into();
    run(&config, "app.hashed.golden");
}

#[test]
fn config_example_is_described_and_loads() {
    assert_eq!(Redactor::describe().config_example, include_str!("../config.example.yaml"));
    let r = Redactor::from_json(&example_config().to_string()).unwrap();
    assert_eq!(
        r.pattern_names().collect::<Vec<_>>(),
        vec!["jwt", "bearer", "api_key", "email", "credit_card", "employee_id", "session"]
    );
}
