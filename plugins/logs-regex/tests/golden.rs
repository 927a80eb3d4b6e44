//! Golden tests: `fixtures/app.log` (Java/logback lines, klog lines from Kubernetes
//! components, a stack-trace line, an empty line and invalid UTF-8) through the processor
//! configured by `config.example.yaml`, as the host drives it. Records and metrics must
//! match `app.golden.jsonl` and `app.golden.prom`. After a deliberate change:
//! `UPDATE_GOLDEN=1 cargo test -p wasmon-logs-regex --test golden`, then review the diff.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use wasmon_logs_regex::RegexProcessor;
use wasmon_sdk_logs::LogProcessor;
use wasmon_sdk_logs::testing::{BatchBuilder, Harness, assert_golden, fixture_lines, render};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn example_config() -> String {
    let yaml: serde_json::Value = serde_yaml_ng::from_str(include_str!("../config.example.yaml")).unwrap();
    yaml.to_string()
}

#[test]
fn app_log_matches_golden() {
    let mut h = Harness::<RegexProcessor>::new(&example_config()).unwrap();
    let mut b = BatchBuilder::new();
    let lines = fixture_lines(fixture("app.log"));
    for l in &lines {
        b.line(l.clone());
    }
    let batch = b.build();
    let out = h.process(batch.clone()).unwrap();
    assert_eq!(out.len(), lines.len(), "on_no_match: mark keeps every record");
    assert_golden(&render(&batch.sources, &out), fixture("app.golden.jsonl"));
    assert_golden(&h.metrics_text(), fixture("app.golden.prom"));
}

#[test]
fn config_example_is_described_and_loads() {
    assert_eq!(RegexProcessor::describe().config_example, include_str!("../config.example.yaml"));
    let p = RegexProcessor::from_json(&example_config()).unwrap();
    assert_eq!(p.pattern_names().collect::<Vec<_>>(), vec!["java", "klog"]);
}

#[test]
fn check_config_reports_every_bad_pattern_with_its_position() {
    let err =
        RegexProcessor::check_config(r#"{"patterns":["(?P<a>x)","[z-a]",{"name":"n","pattern":"(x)"}]}"#).unwrap_err();
    assert!(err.message.contains("patterns[1]: regex parse error:"), "{}", err.message);
    assert!(err.message.contains("invalid character class range"), "{}", err.message);
    assert!(err.message.contains("patterns[2]: \"(x)\" has no named capture group"), "{}", err.message);
}
