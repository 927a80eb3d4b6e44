//! Every log-processor plugin's `.wasm` component in the host's sandbox,
//! fed its golden fixture across the component boundary in the WIT shape
//! the host sends (packed records, sources once per batch, bodies as
//! bytes, so invalid UTF-8 crosses as it is; the batch is packed here, as
//! the host's own packing takes pipeline records, which are always UTF-8).
//! The records it returns and the metrics it counts must be exactly the
//! plugin's golden files, which its own native tests check against the
//! same fixture: so the boundary, the SDK's unpacking and packing, and the
//! guest build lose or change nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;
use wasmon::config::PathsConfig;
use wasmon::runtime::log_processor::{LogProcessorInstance, record_head, record_lengths, wit};
use wasmon::runtime::{Runtime, Sandbox};
use wasmon_sdk::attributes::Attributes;
use wasmon_sdk::packed_records::{Packer, Unpacker};
use wasmon_sdk_logs::testing::{BatchBuilder, fixture_lines, render};
use wasmon_sdk_logs::{LogBatch, LogRecord, LogSource, LogStream};

fn fixture(plugin: &str, name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins").join(plugin).join("tests/fixtures").join(name)
}

fn example_config(plugin: &str) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins").join(plugin).join("config.example.yaml");
    serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The fixture's lines as one batch, built as each plugin's golden test builds it.
fn fixture_batch(plugin: &str, input: &str) -> LogBatch {
    let mut b = BatchBuilder::new();
    for line in fixture_lines(fixture(plugin, input)) {
        b.line(line);
    }
    b.build()
}

/// One instance of the component at `wasm_name`, initialised with `config`.
fn instance(wasm_name: &str, config: &serde_json::Value) -> LogProcessorInstance {
    let cache = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(PathsConfig::default(), cache.path()).unwrap();
    let plugin = runtime.load_log_processor(wasm_name, &common::plugin(wasm_name)).unwrap();
    let mut sandbox = Sandbox::locked_down(&PathsConfig::default(), Duration::from_secs(30));
    sandbox.memory_bytes = 256 << 20;
    let mut instance = plugin.instantiate(&sandbox).unwrap_or_else(|f| panic!("{wasm_name}: {f}"));
    instance.init(&config.to_string()).result.unwrap_or_else(|f| panic!("{wasm_name} init: {f}"));
    instance
}

fn stream_to_wit(stream: LogStream) -> wit::LogStream {
    match stream {
        LogStream::Stdout => wit::LogStream::Stdout,
        LogStream::Stderr => wit::LogStream::Stderr,
        LogStream::Unknown => wit::LogStream::Unknown,
    }
}

/// The SDK's batch in the WIT shape the host sends (the host's own
/// `to_wit` takes pipeline records, whose bodies are already UTF-8).
fn to_wit(batch: &LogBatch) -> wit::LogBatch {
    let sources = batch
        .sources
        .iter()
        .map(|s| {
            let (text, spans) = s.attributes.to_packed();
            wit::LogSource {
                path: s.path.clone(),
                stream: stream_to_wit(s.stream),
                attributes: wit::PackedAttributes { text, spans },
            }
        })
        .collect();
    let mut packer = Packer::default();
    let heads = batch
        .records
        .iter()
        .map(|r| record_head(r.timestamp_ns, packer.push(&r.body, &r.attributes).unwrap(), r.source))
        .collect();
    let Packer { bodies, attribute_text, attribute_spans } = packer;
    wit::LogBatch { sources, records: wit::LogRecords { heads, bodies, attribute_text, attribute_spans } }
}

/// What the component returned, as SDK records, for the SDK's `render`.
fn from_wit(records: &wit::LogRecords) -> Vec<LogRecord> {
    let mut unpacker = Unpacker::new(&records.bodies, &records.attribute_text, &records.attribute_spans);
    let out = records
        .heads
        .iter()
        .map(|h| {
            let (body, attributes): (&[u8], Attributes) = unpacker.next(record_lengths(h)).unwrap();
            let mut r = LogRecord::new(h.source, h.timestamp_ns, body.to_vec());
            r.attributes = attributes;
            r
        })
        .collect();
    unpacker.finish().unwrap();
    out
}

/// Families as the SDK writes them, whoever encoded them first.
fn normalised(text: &str, format: wasmon_sdk::text::Format) -> String {
    let families = wasmon_sdk::text::parse_with(text, format).unwrap_or_else(|e| panic!("{e}\n{text}"));
    wasmon_sdk::text::encode(&families, wasmon_sdk::text::Format::Prometheus)
}

/// Runs `batch` through the component and compares with the golden pair `golden`.jsonl / .prom.
fn check(plugin: &str, config: &serde_json::Value, batch: &LogBatch, golden: &str) {
    let wasm_name = format!("wasmon_{}", plugin.replace('-', "_"));
    let mut instance = instance(&wasm_name, config);
    let returned = instance.process(&to_wit(batch)).result.unwrap_or_else(|f| panic!("{plugin} process: {f}"));
    let records = from_wit(&returned);
    assert_eq!(records.len(), batch.records.len(), "{plugin}: these processors never drop a record");
    // Read, never written: `assert_golden` would overwrite the plugin's file under UPDATE_GOLDEN.
    let golden_records = std::fs::read_to_string(fixture(plugin, &format!("{golden}.jsonl"))).unwrap();
    let rendered = render(&batch.sources, &records);
    for (i, (got, want)) in rendered.lines().zip(golden_records.lines()).enumerate() {
        assert_eq!(got, want, "{plugin}: record {i} differs from {golden}.jsonl");
    }
    assert_eq!(rendered.lines().count(), golden_records.lines().count(), "{plugin}: records");
    let families = instance.metrics().result.unwrap_or_else(|f| panic!("{plugin} metrics: {f}"));
    // OpenMetrics, which has units (text 0.0.4 has none, and the goldens keep them).
    let text = wasmon::exposition::encode_families(&families, wasmon::exposition::Format::OpenMetrics);
    let golden_prom = std::fs::read_to_string(fixture(plugin, &format!("{golden}.prom"))).unwrap();
    assert_eq!(
        normalised(&text, wasmon_sdk::text::Format::OpenMetrics),
        normalised(&golden_prom, wasmon_sdk::text::Format::Prometheus),
        "{plugin}: metrics differ from {golden}.prom"
    );
}

#[test]
fn logs_logfmt_component_matches_its_golden_files() {
    let config = serde_json::json!({"message_key": "msg", "level_key": "level", "timestamp_key": "ts"});
    check("logs-logfmt", &config, &fixture_batch("logs-logfmt", "app.logfmt"), "app.golden");
}

#[test]
fn logs_regex_component_matches_its_golden_files() {
    let batch = fixture_batch("logs-regex", "app.log");
    check("logs-regex", &example_config("logs-regex"), &batch, "app.golden");
}

#[test]
fn logs_nginx_component_matches_its_golden_files() {
    let batch = fixture_batch("logs-nginx", "access.log");
    check("logs-nginx", &serde_json::json!({"on_no_match": "mark"}), &batch, "access.golden");
}

#[test]
fn logs_redact_component_matches_its_golden_files_masked_and_hashed() {
    let mut batch = fixture_batch("logs-redact", "app.log");
    // Attributes as an earlier parser would have set them (as in the plugin's golden test).
    batch.records[0].set_attribute("user.email", "jane.doe@example.com");
    batch.records[0].set_attribute("http.url", "/reset?token=abcdef123456&user=jane");
    batch.records[0].set_attribute("other", "left@example.com");
    let config = example_config("logs-redact");
    check("logs-redact", &config, &batch, "app.golden");
    let mut hashed = config;
    hashed["replacement"] = "hash".into();
    hashed["hash_salt"] = "wasmon".into();
    check("logs-redact", &hashed, &batch, "app.hashed.golden");
}

/// The sources' attributes reach the component too: a record names its
/// source by index and reads the file's attributes through it.
#[test]
fn sources_cross_once_and_records_keep_their_own() {
    let mut b = BatchBuilder::new();
    let web = b.source("/var/log/pods/a/web/0.log", LogStream::Stderr, &[("k8s.pod.name", "web-0")]);
    let api = b.source("/var/log/pods/b/api/0.log", LogStream::Stdout, &[("k8s.pod.name", "api-0")]);
    b.record(api, 5, &b"level=info msg=one"[..]).record(web, 6, &b"level=warn msg=two"[..]);
    let batch: LogBatch = b.build();
    let mut instance = instance("wasmon_logs_logfmt", &serde_json::json!({"message_key": "msg"}));
    let records = from_wit(&instance.process(&to_wit(&batch)).result.unwrap());
    let got: Vec<(u32, i64, &[u8], Option<&str>)> =
        records.iter().map(|r| (r.source, r.timestamp_ns, &r.body[..], r.attribute("level"))).collect();
    assert_eq!(got, [(api, 5, &b"one"[..], Some("info")), (web, 6, &b"two"[..], Some("warn"))]);
    let sources: Vec<&LogSource> = batch.sources.iter().collect();
    assert_eq!(sources[records[1].source as usize].stream, LogStream::Stderr);
}
