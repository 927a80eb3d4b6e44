//! Sinks against in-process receivers that decode the real wire formats, and
//! delivery guarantees while a sink is down.

#![allow(clippy::unwrap_used)] // test helpers: a failed setup step should panic

mod common;

use common::receivers::{Captured, Receiver};
use common::wire::{loki, otlp};
use common::*;
use prost::Message;
use std::collections::BTreeMap;
use std::fs;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmon_logs::{JsonBodyConfig, JsonBodyProcessor, LogPipeline, PipelineConfig, Processor};

const GRACE: Duration = Duration::from_secs(10);

fn config(dir: &std::path::Path, glob: &str, format: &str, sink_yaml: &str, batch: &str) -> PipelineConfig {
    let yaml = format!(
        r#"
sources:
  - name: pods
    include: ["{glob}"]
    kubernetes_metadata: true
    poll_interval: 50ms
    rotate_wait: 100ms
    framing: {{ format: {format} }}
checkpoint: {{ path: {cp}, interval: 50ms }}
batch: {batch}
sinks:
  - {sink_yaml}
"#,
        cp = dir.join("checkpoint.json").display(),
    );
    serde_yaml_ng::from_str(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

/// A Loki sink named `loki` pushing to `rx`, with this `retry` section.
fn loki_sink(rx: &Receiver, retry: &str) -> String {
    format!("{{type: loki, name: loki, url: '{}', retry: {{{retry}}}}}", rx.url("/loki/api/v1/push"))
}

fn json_processor() -> Vec<Box<dyn Processor>> {
    vec![Box::new(JsonBodyProcessor::new(JsonBodyConfig::default()))]
}

fn decode_loki(c: &Captured) -> loki::PushRequest {
    loki::PushRequest::decode(&c.body[..]).expect("PushRequest")
}

/// `seq` of every Loki entry received.
fn loki_seqs(r: &Receiver) -> Vec<u64> {
    r.accepted()
        .iter()
        .flat_map(|c| decode_loki(c).streams)
        .flat_map(|s| s.entries)
        .filter_map(|e| body_seq(&e.line))
        .collect()
}

fn cri(ts: &str, stream: &str, body: &str) -> String {
    format!("{ts} {stream} F {body}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loki_push_carries_labels_timestamps_lines_and_metadata() {
    let rx = Receiver::start(204).await;
    let dir = tempfile::tempdir().unwrap();
    let pods = dir.path().join("pods");
    let d = pod_dir(&pods, "shop", "cart-1", "uid-1", "app");
    let sink = format!(
        "{{type: loki, name: loki, url: '{}', tenant_id: team-a, static_labels: {{cluster: test}}, structured_metadata: true}}",
        rx.url("/loki/api/v1/push")
    );
    let cfg = config(dir.path(), &format!("{}/*/*/*.log", pods.display()), "cri", &sink, "{flush_interval: 20ms}");
    fs::write(
        d.join("0.log"),
        format!(
            "{}{}",
            cri("2024-05-01T10:00:00.123456789Z", "stdout", r#"{"level":"info","request_id":"r-1","seq":0}"#),
            cri("2024-05-01T10:00:01Z", "stderr", "plain seq=1"),
        ),
    )
    .unwrap();
    let p = LogPipeline::start(cfg, json_processor(), None).unwrap();
    wait_until("two entries", || count_entries(&rx) >= 2).await;
    p.shutdown(GRACE).await.unwrap();

    let reqs = rx.accepted();
    let c = &reqs[0];
    assert_eq!(c.path, "/loki/api/v1/push");
    assert_eq!(c.headers["content-type"], "application/x-protobuf");
    assert_eq!(c.headers["content-encoding"], "snappy");
    assert_eq!(c.headers["x-scope-orgid"], "team-a");
    assert!(c.headers["user-agent"].to_str().unwrap().starts_with("wasmon-logs/"));
    let mut streams: Vec<loki::Stream> = reqs.iter().flat_map(|c| decode_loki(c).streams).collect();
    streams.sort_by(|a, b| a.labels.cmp(&b.labels));
    assert_eq!(streams.len(), 2);
    // Request ids and other attributes never become labels.
    assert_eq!(
        streams[0].labels,
        r#"{cluster="test", container="app", namespace="shop", pod="cart-1", stream="stderr"}"#
    );
    assert_eq!(
        streams[1].labels,
        r#"{cluster="test", container="app", namespace="shop", pod="cart-1", stream="stdout"}"#
    );
    let out = &streams[1].entries[0];
    assert_eq!(out.line, r#"{"level":"info","request_id":"r-1","seq":0}"#);
    let ts = out.timestamp.as_ref().unwrap();
    assert_eq!((ts.seconds, ts.nanos), (1_714_557_600, 123_456_789));
    let meta: BTreeMap<_, _> = out.structured_metadata.iter().map(|p| (p.name.as_str(), p.value.as_str())).collect();
    assert_eq!(meta["request_id"], "r-1");
    assert_eq!(meta["level"], "info");
    assert_eq!(meta["k8s.pod.uid"], "uid-1");
    assert!(!meta.contains_key("k8s.namespace.name"), "labels are not repeated as metadata: {meta:?}");
    let err = &streams[0].entries[0];
    assert_eq!(err.line, "plain seq=1");
    assert_eq!(err.timestamp.as_ref().unwrap().seconds, 1_714_557_601);
}

fn count_entries(r: &Receiver) -> usize {
    r.accepted().iter().flat_map(|c| decode_loki(c).streams).map(|s| s.entries.len()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_down_then_back_delivers_every_line_once_across_a_restart() {
    let rx = Receiver::start(204).await;
    rx.set_down(503);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let sink = loki_sink(&rx, "min_backoff: 20ms, max_backoff: 200ms");
    let cfg =
        config(dir.path(), &log.display().to_string(), "plain", &sink, "{max_records: 200, flush_interval: 20ms}");
    let p = LogPipeline::start(cfg.clone(), Vec::new(), None).unwrap();
    let mut seq = 0u64;
    for _ in 0..2000 {
        append(&log, &line(seq));
        seq += 1;
    }
    wait_until("retries against the down sink", || rx.attempts() >= 5).await;
    assert!(rx.accepted().is_empty());
    let m = p.sink_metrics[0].1.snapshot();
    assert!(m.request_failures >= 5 && m.retries >= 5, "{m:?}");
    assert_eq!(m.records_sent, 0);
    // Nothing was acknowledged, so nothing may be checkpointed.
    assert!(p.checkpoints().positions().iter().all(|p| p.offset == 0));
    // A restart while the sink is down: shutdown gives up after its grace period.
    p.shutdown(Duration::from_millis(300)).await.unwrap();
    let p = LogPipeline::start(cfg, Vec::new(), None).unwrap();
    for _ in 0..2000 {
        append(&log, &line(seq));
        seq += 1;
    }
    wait_until("retries after the restart", || p.sink_metrics[0].1.retries.load(Relaxed) >= 2).await;
    rx.set_up();
    wait_until("all lines", || loki_seqs(&rx).len() >= seq as usize).await;
    p.shutdown(GRACE).await.unwrap();
    assert_exactly_once(&loki_seqs(&rx), seq);
}

/// Two sinks, one down: a batch is acknowledged only once both have it, so
/// nothing is checkpointed while the Loki sink is down (the file sink runs
/// ahead by at most the queue), and after it is back each sink has every
/// line exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sink_down_holds_the_checkpoint_and_both_get_every_line_once() {
    let rx = Receiver::start(204).await;
    rx.set_down(503);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let out = dir.path().join("out.jsonl");
    let sinks = format!(
        "{{type: file, name: file, path: '{}'}}\n  - {{type: loki, name: loki, url: '{}', retry: {{min_backoff: 20ms, max_backoff: 100ms}}}}",
        out.display(),
        rx.url("/loki/api/v1/push")
    );
    let cfg = config(
        dir.path(),
        &log.display().to_string(),
        "plain",
        &sinks,
        "{max_records: 100, flush_interval: 20ms, queue: 2}",
    );
    fs::write(&log, (0..3000).map(line).collect::<String>()).unwrap();
    let p = LogPipeline::start(cfg, Vec::new(), None).unwrap();
    wait_until("retries against the down sink", || rx.attempts() >= 5).await;
    assert!(p.checkpoints().positions().iter().all(|p| p.offset == 0), "checkpointed while a sink was down");
    let ahead = count_lines(&out);
    // At most three batches of 100: the one the Loki sink is retrying, the
    // one in its queue, and the one the processor step holds for it.
    assert!(ahead <= 300, "the file sink ran {ahead} lines ahead of the down one");
    rx.set_up();
    wait_until("all lines in Loki", || loki_seqs(&rx).len() >= 3000).await;
    wait_until("all lines in the file", || count_lines(&out) >= 3000).await;
    p.shutdown(GRACE).await.unwrap();
    assert_exactly_once(&loki_seqs(&rx), 3000);
    assert_exactly_once(&seqs(&read_output(&out)), 3000);
}

/// Nothing listening at the sink's address (connection refused): retried,
/// nothing checkpointed, and everything delivered once a receiver listens there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_retried_until_the_receiver_listens() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let sink = format!(
        "{{type: loki, name: loki, url: 'http://127.0.0.1:{port}/loki/api/v1/push', retry: {{min_backoff: 20ms, max_backoff: 100ms}}}}"
    );
    let cfg =
        config(dir.path(), &log.display().to_string(), "plain", &sink, "{max_records: 100, flush_interval: 20ms}");
    fs::write(&log, (0..500).map(line).collect::<String>()).unwrap();
    let p = LogPipeline::start(cfg, Vec::new(), None).unwrap();
    let m = p.sink_metrics[0].1.clone();
    wait_until("refused attempts", || m.request_failures.load(Relaxed) >= 3).await;
    assert_eq!(m.records_sent.load(Relaxed), 0);
    assert!(p.checkpoints().positions().iter().all(|p| p.offset == 0), "nothing acknowledged, nothing checkpointed");
    let rx = Receiver::start_on(204, port).await;
    wait_until("all lines", || loki_seqs(&rx).len() >= 500).await;
    p.shutdown(GRACE).await.unwrap();
    assert_exactly_once(&loki_seqs(&rx), 500);
}

/// A 429 with `Retry-After: 2` is waited out even though the configured
/// backoff is far shorter: the second attempt comes no sooner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_waited_out() {
    let rx = Receiver::start(204).await;
    rx.set_down_retry_after(429, 2);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let sink = loki_sink(&rx, "min_backoff: 10ms, max_backoff: 30s");
    let cfg =
        config(dir.path(), &log.display().to_string(), "plain", &sink, "{max_records: 100, flush_interval: 20ms}");
    fs::write(&log, (0..50).map(line).collect::<String>()).unwrap();
    let p = LogPipeline::start(cfg, Vec::new(), None).unwrap();
    wait_until("the first attempt", || rx.attempts() >= 1).await;
    let first = std::time::Instant::now();
    wait_until("the second attempt", || rx.attempts() >= 2).await;
    // A lower bound only (the jittered 10 ms backoff would have retried at once).
    assert!(first.elapsed() >= Duration::from_millis(1900), "retried after {:?}", first.elapsed());
    rx.set_up();
    wait_until("all lines", || loki_seqs(&rx).len() >= 50).await;
    p.shutdown(GRACE).await.unwrap();
    assert_exactly_once(&loki_seqs(&rx), 50);
}

/// `retry.max_retries` bounds the attempts per batch: the batch is dropped,
/// counted, and the sink goes on with the next ones (opt-in; the default
/// retries forever, so nothing is lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_retries_drops_the_batch_counted_and_goes_on() {
    let rx = Receiver::start(204).await;
    rx.set_down(503);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let sink = loki_sink(&rx, "min_backoff: 10ms, max_backoff: 20ms, max_retries: 2");
    let cfg =
        config(dir.path(), &log.display().to_string(), "plain", &sink, "{max_records: 1000, flush_interval: 20ms}");
    fs::write(&log, (0..40).map(line).collect::<String>()).unwrap();
    let p = LogPipeline::start(cfg, Vec::new(), None).unwrap();
    let m = p.sink_metrics[0].1.clone();
    wait_until("the batch given up", || m.dropped_retries_exhausted.load(Relaxed) >= 40).await;
    assert_eq!(rx.attempts(), 3, "the first attempt and two retries");
    rx.set_up();
    append(&log, &(40..60).map(line).collect::<String>());
    wait_until("the next lines", || loki_seqs(&rx).len() >= 20).await;
    p.shutdown(GRACE).await.unwrap();
    assert_exactly_once(&loki_seqs(&rx).iter().map(|s| s - 40).collect::<Vec<_>>(), 20);
    let snap = m.snapshot();
    assert_eq!((snap.dropped_retries_exhausted, snap.records_sent), (40, 20), "{snap:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_sink_stops_the_tailer_instead_of_buffering() {
    let rx = Receiver::start(204).await;
    rx.set_down(503);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let total = 80_000u64; // ~4.4 MiB
    fs::write(&log, (0..total).map(line).collect::<String>()).unwrap();
    let file_size = fs::metadata(&log).unwrap().len();
    let sink = loki_sink(&rx, "min_backoff: 20ms, max_backoff: 100ms");
    let cfg = config(
        dir.path(),
        &log.display().to_string(),
        "plain",
        &sink,
        "{max_records: 10000, max_bytes: 32KiB, flush_interval: 20ms, queue: 2}",
    );
    let p = LogPipeline::start(cfg, Vec::new(), None).unwrap();
    wait_until("the tailer to block", || p.tailer_metrics.backpressure_waits.load(Relaxed) >= 1).await;
    wait_until("retries", || rx.attempts() >= 10).await;
    // Queue (2) + processor + sink + the batch being built, of 32 KiB each,
    // plus one 256 KiB read: far below the file's size.
    let read = p.tailer_metrics.bytes_read.load(Relaxed);
    assert!(read <= 1 << 20, "read {read} of {file_size} bytes while the sink was down");
    rx.set_up();
    wait_until("all lines", || p.sink_metrics[0].1.records_sent.load(Relaxed) >= total).await;
    p.shutdown(GRACE).await.unwrap();
    assert_exactly_once(&loki_seqs(&rx), total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_deleted_while_open_is_read_to_its_end() {
    let rx = Receiver::start(204).await;
    rx.set_down(503);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let total = 30_000u64;
    fs::write(&log, (0..total).map(line).collect::<String>()).unwrap();
    // The last line has no newline: a deleted file's tail is still sent.
    append(&log, &format!("seq={total} unterminated"));
    let sink = loki_sink(&rx, "min_backoff: 20ms, max_backoff: 100ms");
    let cfg = config(
        dir.path(),
        &log.display().to_string(),
        "plain",
        &sink,
        "{max_records: 500, max_bytes: 32KiB, flush_interval: 20ms, queue: 2}",
    );
    let p = LogPipeline::start(cfg, Vec::new(), None).unwrap();
    wait_until("the tailer to block", || p.tailer_metrics.backpressure_waits.load(Relaxed) >= 1).await;
    fs::remove_file(&log).unwrap();
    wait_until("the deletion to be seen", || p.tailer_metrics.files_deleted.load(Relaxed) == 1 || rx.attempts() > 50)
        .await;
    rx.set_up();
    wait_until("all lines", || loki_seqs(&rx).len() > total as usize).await;
    wait_until("the file to close", || p.tailer_metrics.files_open.load(Relaxed) == 0).await;
    assert_eq!(p.tailer_metrics.files_deleted.load(Relaxed), 1);
    wait_until("its checkpoint to go", || p.checkpoints().positions().is_empty()).await;
    p.shutdown(GRACE).await.unwrap();
    assert_exactly_once(&loki_seqs(&rx), total + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elasticsearch_bulk_retries_only_failed_items_and_names_indices_by_date() {
    let rx = Receiver::start(200).await;
    let docs: Arc<Mutex<Vec<(serde_json::Value, serde_json::Value)>>> = Arc::default();
    let first = Arc::new(std::sync::atomic::AtomicBool::new(true));
    {
        let (docs, first) = (docs.clone(), first.clone());
        rx.set_responder(Arc::new(move |c: &Captured| {
            let text = std::str::from_utf8(&c.body).unwrap();
            assert!(text.ends_with('\n'), "NDJSON ends with a newline");
            let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
            let pairs: Vec<_> = lines.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect();
            let fail_first = first.swap(false, Relaxed);
            let mut items = Vec::new();
            for (i, (action, doc)) in pairs.into_iter().enumerate() {
                let status = match (fail_first, i) {
                    (true, 1) => 429,
                    (true, 2) => 400,
                    _ => 201,
                };
                if status == 201 {
                    docs.lock().unwrap().push((action, doc));
                }
                items.push(serde_json::json!({"create": {"status": status, "error": if status == 201 { serde_json::Value::Null } else { serde_json::json!({"type": "x"}) }}}));
            }
            (200, serde_json::to_vec(&serde_json::json!({"took": 1, "errors": fail_first, "items": items})).unwrap())
        }));
    }
    let dir = tempfile::tempdir().unwrap();
    let pods = dir.path().join("pods");
    let d = pod_dir(&pods, "shop", "web-1", "uid-9", "nginx");
    let sink = format!(
        "{{type: elasticsearch, name: es, url: '{}', index: 'logs-%Y.%m.%d', basic_auth: {{username: u, password: p}}, retry: {{min_backoff: 20ms}}}}",
        rx.url("/")
    );
    let cfg = config(dir.path(), &format!("{}/*/*/*.log", pods.display()), "cri", &sink, "{flush_interval: 50ms}");
    let mut text = String::new();
    for seq in 0..10u64 {
        let day = if seq < 5 { "01" } else { "02" };
        text.push_str(&cri(
            &format!("2024-05-{day}T23:00:00.5Z"),
            "stdout",
            &format!(r#"{{"seq":{seq},"msg":"hello"}}"#),
        ));
    }
    fs::write(d.join("0.log"), text).unwrap();
    let p = LogPipeline::start(cfg, json_processor(), None).unwrap();
    wait_until("documents", || docs.lock().unwrap().len() >= 9).await;
    let m = p.sink_metrics[0].1.snapshot();
    p.shutdown(GRACE).await.unwrap();
    let c = &rx.accepted()[0];
    assert_eq!(c.path, "/_bulk");
    assert_eq!(c.headers["content-type"], "application/x-ndjson");
    assert_eq!(c.headers["content-encoding"], "gzip");
    assert_eq!(c.headers["authorization"], "Basic dTpw");
    let docs = docs.lock().unwrap();
    let seqs: Vec<u64> = docs.iter().map(|(_, d)| d["seq"].as_str().unwrap().parse().unwrap()).collect();
    // seq 2 was rejected for good (400), seq 1 retried after its 429.
    let mut sorted = seqs.clone();
    sorted.sort();
    assert_eq!(sorted, vec![0, 1, 3, 4, 5, 6, 7, 8, 9]);
    assert_eq!(m.dropped_rejected, 1, "{m:?}");
    assert_eq!(m.records_sent, 9, "{m:?}");
    let (action, doc) = docs.iter().find(|(_, d)| d["seq"] == "0").unwrap();
    assert_eq!(action, &serde_json::json!({"create": {"_index": "logs-2024.05.01"}}));
    assert_eq!(doc["@timestamp"], "2024-05-01T23:00:00.500000000Z");
    assert_eq!(doc["message"], r#"{"seq":0,"msg":"hello"}"#);
    assert_eq!(doc["msg"], "hello");
    assert_eq!(doc["stream"], "stdout");
    assert_eq!(doc["log.file.path"], d.join("0.log").display().to_string());
    assert_eq!(doc["k8s.namespace.name"], "shop");
    assert_eq!(doc["k8s.pod.name"], "web-1");
    assert_eq!(doc["k8s.container.name"], "nginx");
    assert_eq!(doc["k8s.pod.uid"], "uid-9");
    assert_eq!(doc["k8s.container.restart_count"], "0", "from the file name 0.log");
    let fields: std::collections::BTreeSet<&str> = doc.as_object().unwrap().keys().map(String::as_str).collect();
    let want = [
        "@timestamp",
        "k8s.container.name",
        "k8s.container.restart_count",
        "k8s.namespace.name",
        "k8s.pod.name",
        "k8s.pod.uid",
        "log.file.path",
        "message",
        "msg",
        "seq",
        "stream",
    ];
    assert_eq!(fields, want.into_iter().collect(), "every field of the document, and no other");
    let (action, _) = docs.iter().find(|(_, d)| d["seq"] == "7").unwrap();
    assert_eq!(action["create"]["_index"], "logs-2024.05.02");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_export_groups_resources_and_sets_every_field() {
    let rx = Receiver::start(200).await;
    let partial_once = Arc::new(std::sync::atomic::AtomicBool::new(true));
    {
        let partial_once = partial_once.clone();
        rx.set_responder(Arc::new(move |_c: &Captured| {
            let resp = if partial_once.swap(false, Relaxed) {
                otlp::ExportLogsServiceResponse {
                    partial_success: Some(otlp::PartialSuccess {
                        rejected_log_records: 1,
                        error_message: "too old".into(),
                    }),
                }
            } else {
                otlp::ExportLogsServiceResponse::default()
            };
            (200, resp.encode_to_vec())
        }));
    }
    let dir = tempfile::tempdir().unwrap();
    let pods = dir.path().join("pods");
    let a = pod_dir(&pods, "shop", "cart-1", "uid-a", "app");
    let b = pod_dir(&pods, "shop", "cart-2", "uid-b", "app");
    let sink = format!(
        "{{type: otlp, name: otel, url: '{}', static_resource_attributes: {{k8s.cluster.name: test}}, headers: {{x-team: logs}}}}",
        rx.url("/v1/logs")
    );
    let cfg = config(dir.path(), &format!("{}/*/*/*.log", pods.display()), "cri", &sink, "{flush_interval: 200ms}");
    fs::write(
        a.join("0.log"),
        cri("2024-05-01T10:00:00.000000042Z", "stderr", r#"{"level":"WARN","seq":0,"user":"u1"}"#),
    )
    .unwrap();
    fs::write(b.join("1.log"), cri("2024-05-01T10:00:01Z", "stdout", "plain seq=1")).unwrap();
    let p = LogPipeline::start(cfg, json_processor(), None).unwrap();
    wait_until("a request", || !rx.accepted().is_empty()).await;
    wait_until("both records", || {
        rx.accepted()
            .iter()
            .map(|c| {
                otlp::ExportLogsServiceRequest::decode(&c.body[..])
                    .unwrap()
                    .resource_logs
                    .iter()
                    .map(|r| r.scope_logs[0].log_records.len())
                    .sum::<usize>()
            })
            .sum::<usize>()
            >= 2
    })
    .await;
    let m = p.sink_metrics[0].1.snapshot();
    p.shutdown(GRACE).await.unwrap();
    let c = &rx.accepted()[0];
    assert_eq!(c.path, "/v1/logs");
    assert_eq!(c.headers["content-type"], "application/x-protobuf");
    assert_eq!(c.headers["x-team"], "logs");
    let mut resources: Vec<otlp::ResourceLogs> = rx
        .accepted()
        .iter()
        .flat_map(|c| otlp::ExportLogsServiceRequest::decode(&c.body[..]).unwrap().resource_logs)
        .collect();
    resources.sort_by_key(|r| otlp::attrs(&r.resource.as_ref().unwrap().attributes));
    assert_eq!(resources.len(), 2);
    let res = otlp::attrs(&resources[0].resource.as_ref().unwrap().attributes);
    assert_eq!(
        res,
        vec![
            ("k8s.cluster.name".into(), "test".into()),
            ("k8s.namespace.name".into(), "shop".into()),
            ("k8s.pod.name".into(), "cart-1".into()),
            ("k8s.pod.uid".into(), "uid-a".into()),
            ("k8s.container.name".into(), "app".into()),
            ("k8s.container.restart_count".into(), "0".into()),
        ]
    );
    let scope = resources[0].scope_logs[0].scope.as_ref().unwrap();
    assert_eq!(scope.name, "wasmon-logs");
    assert!(!scope.version.is_empty());
    let r = &resources[0].scope_logs[0].log_records[0];
    assert_eq!(r.time_unix_nano, 1_714_557_600_000_000_042);
    assert!(r.observed_time_unix_nano > r.time_unix_nano);
    assert_eq!(r.severity_text, "WARN");
    assert_eq!(r.severity_number, 13);
    assert_eq!(r.body.as_ref().unwrap().string_value.as_deref(), Some(r#"{"level":"WARN","seq":0,"user":"u1"}"#));
    let attrs = otlp::attrs(&r.attributes);
    assert_eq!(
        attrs,
        vec![
            ("log.file.path".into(), a.join("0.log").display().to_string()),
            ("log.iostream".into(), "stderr".into()),
            ("seq".into(), "0".into()),
            ("user".into(), "u1".into()),
        ]
    );
    let r1 = &resources[1].scope_logs[0].log_records[0];
    assert_eq!(r1.severity_number, 0);
    assert_eq!(otlp::attrs(&resources[1].resource.as_ref().unwrap().attributes)[3].1, "uid-b");
    // The collector's partial success names one rejected record: counted, not retried.
    assert_eq!(m.dropped_rejected, 1, "{m:?}");
    assert_eq!(m.records_sent, 1, "{m:?}");
    assert_eq!(rx.accepted().len(), 1);
}
