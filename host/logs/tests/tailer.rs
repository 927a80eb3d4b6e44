//! The tailer against real files: rotation, truncation, restarts, deletion,
//! CRI/docker framing, multiline, bad bytes and huge lines. Every test checks
//! delivery through sequence numbers written into the lines.

#![allow(clippy::unwrap_used)] // test helpers: a failed setup step should panic

mod common;

use common::*;
use std::fs;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use wasmon_logs::{LogPipeline, PipelineHandle, PodRef};

const GRACE: Duration = Duration::from_secs(10);

fn start(cfg: wasmon_logs::PipelineConfig) -> PipelineHandle {
    LogPipeline::start(cfg, Vec::new(), None).expect("pipeline starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_rotation_while_writing_delivers_every_line_once() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).unwrap();
    let out = dir.path().join("out.jsonl");
    let p = start(file_pipeline(dir.path(), &format!("{}/*.log", logs.display()), &out, ""));
    let total = 6000u64;
    let writer = {
        let logs = logs.clone();
        std::thread::spawn(move || {
            let path = logs.join("app.log");
            let mut f = fs::OpenOptions::new().create(true).append(true).open(&path).unwrap();
            for seq in 0..total {
                f.write_all(line(seq).as_bytes()).unwrap();
                if seq % 1500 == 1499 {
                    // logrotate's default: rename, then the application reopens its log.
                    fs::rename(&path, logs.join(format!("app.log.{seq}"))).unwrap();
                    f = fs::OpenOptions::new().create(true).append(true).open(&path).unwrap();
                }
                if seq % 100 == 0 {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        })
    };
    writer.join().unwrap();
    wait_until("all lines", || count_lines(&out) >= total as usize).await;
    wait_until("rotated files closed", || p.tailer_metrics.files_open.load(Relaxed) == 1).await;
    let m = p.tailer_metrics.snapshot();
    p.shutdown(GRACE).await.unwrap();
    assert_exactly_once(&seqs(&read_output(&out)), total);
    assert_eq!(m.rotations, 4, "{m:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copytruncate_rotation_while_writing_delivers_every_line_once() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).unwrap();
    let out = dir.path().join("out.jsonl");
    let p = start(file_pipeline(dir.path(), &format!("{}/*.log", logs.display()), &out, ""));
    let path = logs.join("app.log");
    let mut f = fs::OpenOptions::new().create(true).append(true).open(&path).unwrap();
    let mut seq = 0u64;
    for round in 0..4 {
        for _ in 0..1000 {
            f.write_all(line(seq).as_bytes()).unwrap();
            seq += 1;
        }
        // copytruncate loses whatever the tailer had not read when the file is
        // truncated (in every shipper); wait for that, then rotate while the
        // writer carries on at once, faster than the tailer's next poll.
        let want = seq as usize;
        wait_until("lines before truncation", || count_lines(&out) >= want).await;
        fs::copy(&path, logs.join(format!("app.log.{round}"))).unwrap();
        f.set_len(0).unwrap();
    }
    for _ in 0..500 {
        f.write_all(line(seq).as_bytes()).unwrap();
        seq += 1;
    }
    wait_until("all lines", || count_lines(&out) >= seq as usize).await;
    let m = p.tailer_metrics.snapshot();
    p.shutdown(GRACE).await.unwrap();
    assert_exactly_once(&seqs(&read_output(&out)), seq);
    assert_eq!(m.truncations, 4, "{m:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_file_is_read_again_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let out = dir.path().join("out.jsonl");
    fs::write(&log, (0..100).map(line).collect::<String>()).unwrap();
    let p = start(file_pipeline(dir.path(), &log.display().to_string(), &out, ""));
    wait_until("first lines", || count_lines(&out) >= 100).await;
    // Shorter than before: truncation is noticed from the size alone.
    fs::write(&log, (100..110).map(line).collect::<String>()).unwrap();
    wait_until("lines after truncation", || count_lines(&out) >= 110).await;
    assert_eq!(p.tailer_metrics.truncations.load(Relaxed), 1);
    p.shutdown(GRACE).await.unwrap();
    assert_exactly_once(&seqs(&read_output(&out)), 110);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_in_the_middle_of_a_file_neither_loses_nor_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let out = dir.path().join("out.jsonl");
    let cfg = file_pipeline(dir.path(), &log.display().to_string(), &out, "");
    let total = 20_000u64;
    let written = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let writer = {
        let (log, written, out) = (log.clone(), written.clone(), out.clone());
        std::thread::spawn(move || {
            let mut f = fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
            for seq in 0..total {
                // Stay at most 3000 lines ahead of delivery, so however slow the
                // machine, every restart below happens with lines still unwritten.
                if seq % 200 == 0 {
                    wait_until_blocking("delivery to catch up", || seq < count_lines(&out) as u64 + 3000);
                }
                // A partial line now and then: the restart must not split it.
                let l = line(seq);
                let (a, b) = l.split_at(10);
                f.write_all(a.as_bytes()).unwrap();
                f.write_all(b.as_bytes()).unwrap();
                written.store(seq + 1, Relaxed);
                if seq % 200 == 0 {
                    std::thread::sleep(Duration::from_millis(3));
                }
            }
        })
    };
    for _ in 0..3 {
        let p = start(cfg.clone());
        let before = count_lines(&out);
        wait_until("progress", || count_lines(&out) > before + 1000).await;
        p.shutdown(GRACE).await.unwrap();
        // Restart while the writer is still writing.
        assert!(written.load(Relaxed) < total, "writer finished too early for a mid-file restart");
    }
    let p = start(cfg.clone());
    writer.join().unwrap();
    wait_until("all lines", || count_lines(&out) >= total as usize).await;
    let resumed = p.tailer_metrics.files_resumed.load(Relaxed);
    p.shutdown(GRACE).await.unwrap();
    assert_eq!(resumed, 1);
    assert_exactly_once(&seqs(&read_output(&out)), total);
    // The checkpoint points at the end of the file.
    let cp: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.path().join("checkpoint.json")).unwrap()).unwrap();
    assert_eq!(cp["files"][0]["offset"].as_u64().unwrap(), fs::metadata(&log).unwrap().len());
}

/// A file rewritten in place while the agent was stopped (same device and
/// inode, and longer than the checkpointed offset, so its size says
/// nothing) is told apart by the fingerprint of its first bytes and read
/// from the start, not from the old offset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_rewritten_while_stopped_is_read_from_its_start() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let out = dir.path().join("out.jsonl");
    let cfg = file_pipeline(dir.path(), &log.display().to_string(), &out, "");
    fs::write(&log, (0..100).map(line).collect::<String>()).unwrap();
    let p = start(cfg.clone());
    wait_until("the first lines", || count_lines(&out) >= 100).await;
    p.shutdown(GRACE).await.unwrap();
    let inode = fs::metadata(&log).unwrap().ino();

    // Truncated and written again through the same inode: more lines than before.
    fs::write(&log, (100..400).map(line).collect::<String>()).unwrap();
    assert_eq!(fs::metadata(&log).unwrap().ino(), inode, "the test needs the same inode");
    let p = start(cfg);
    wait_until("the rewritten file", || count_lines(&out) >= 400).await;
    assert_eq!(p.tailer_metrics.files_resumed.load(Relaxed), 0, "the old position must not be resumed");
    p.shutdown(GRACE).await.unwrap();
    assert_exactly_once(&seqs(&read_output(&out)), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_checkpoint_is_an_error_naming_file_and_position() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    fs::write(dir.path().join("checkpoint.json"), "{\"version\": 1, \"files\": [\n  {\"key\": }\n]}").unwrap();
    let cfg = file_pipeline(dir.path(), &format!("{}/*.log", dir.path().display()), &out, "");
    let err = LogPipeline::start(cfg, Vec::new(), None).unwrap_err().to_string();
    assert!(err.contains("checkpoint.json") && err.contains("line 2"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cri_partial_lines_are_joined_with_kubernetes_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let pods = dir.path().join("pods");
    let d = pod_dir(&pods, "shop", "cart-7d9f-abcde", "1f0c6c1e-0000-4000-8000-000000000001", "app");
    let out = dir.path().join("out.jsonl");
    let mut cfg =
        file_pipeline(dir.path(), &format!("{}/*/*/*.log", pods.display()), &out, "kubernetes_metadata: true");
    cfg.sources[0].framing.format = wasmon_logs::LogFormat::Cri;
    let labels = |pod: &PodRef| vec![("k8s.pod.label.app".to_string(), format!("{}-label", pod.container))];
    let p = LogPipeline::start(cfg, Vec::new(), Some(Arc::new(labels))).unwrap();
    let log = d.join("2.log");
    let big = "y".repeat(16 * 1024);
    append(
        &log,
        &format!(
            "2024-05-01T10:00:00.000000001Z stdout P seq=0 {big}\n\
             2024-05-01T10:00:00.000000002Z stderr F seq=1 interleaved\n\
             2024-05-01T10:00:00.000000003Z stdout P {big}\n\
             2024-05-01T10:00:00.000000004Z stdout F  end\n\
             2024-05-01T10:00:01Z stdout F seq=2 short\n"
        ),
    );
    wait_until("records", || count_lines(&out) >= 3).await;
    p.shutdown(GRACE).await.unwrap();
    let recs = read_output(&out);
    assert_eq!(recs.len(), 3);
    let joined = recs.iter().find(|r| body_seq(r["body"].as_str().unwrap()) == Some(0)).unwrap();
    assert_eq!(joined["body"].as_str().unwrap(), format!("seq=0 {big}{big} end"));
    assert_eq!(joined["timestamp_ns"], 1_714_557_600_000_000_001i64);
    assert_eq!(joined["source"]["stream"], "stdout");
    assert_eq!(joined["source"]["path"], log.display().to_string());
    let a = &joined["attributes"];
    assert_eq!(a["k8s.namespace.name"], "shop");
    assert_eq!(a["k8s.pod.name"], "cart-7d9f-abcde");
    assert_eq!(a["k8s.pod.uid"], "1f0c6c1e-0000-4000-8000-000000000001");
    assert_eq!(a["k8s.container.name"], "app");
    assert_eq!(a["k8s.container.restart_count"], "2");
    assert_eq!(a["k8s.pod.label.app"], "app-label");
    let err = recs.iter().find(|r| r["source"]["stream"] == "stderr").unwrap();
    assert_eq!(err["body"], "seq=1 interleaved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_json_file_lines_are_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("c-json.log");
    let out = dir.path().join("out.jsonl");
    let mut cfg = file_pipeline(dir.path(), &log.display().to_string(), &out, "");
    cfg.sources[0].framing.format = wasmon_logs::LogFormat::Docker;
    fs::write(
        &log,
        concat!(
            r#"{"log":"seq=0 part one, ","stream":"stdout","time":"2024-05-01T10:00:00.5Z"}"#,
            "\n",
            r#"{"log":"part two \"quoted\"\n","stream":"stdout","time":"2024-05-01T10:00:00.6Z"}"#,
            "\n",
            r#"{"log":"seq=1 on stderr\n","stream":"stderr","time":"2024-05-01T10:00:01Z"}"#,
            "\n",
            "not json at all seq=2\n",
        ),
    )
    .unwrap();
    let p = start(cfg);
    wait_until("records", || count_lines(&out) >= 3).await;
    let malformed = p.tailer_metrics.malformed_lines.load(Relaxed);
    p.shutdown(GRACE).await.unwrap();
    let recs = read_output(&out);
    assert_eq!(recs[0]["body"], "seq=0 part one, part two \"quoted\"");
    assert_eq!(recs[0]["timestamp_ns"], 1_714_557_600_500_000_000i64);
    assert_eq!(recs[1]["source"]["stream"], "stderr");
    assert_eq!(recs[2]["body"], "not json at all seq=2");
    assert_eq!(malformed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_stack_traces_become_one_record_each() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let out = dir.path().join("out.jsonl");
    let cfg = file_pipeline(
        dir.path(),
        &log.display().to_string(),
        &out,
        r#"framing: { multiline: { pattern: '^\d{4}-\d{2}-\d{2} ', negate: true, match: after, flush_timeout: 200ms } }"#,
    );
    let trace = |seq: u64| {
        format!(
            "2024-05-01 10:00:0{seq} ERROR seq={seq} request failed\n\
             java.lang.IllegalStateException: boom {seq}\n\
             \tat com.example.Cart.add(Cart.java:42)\n\
             \tat com.example.Api.handle(Api.java:7)\n\
             Caused by: java.io.IOException: disk\n\
             \t... 12 more\n"
        )
    };
    let p = start(cfg);
    append(&log, &format!("{}{}", trace(0), trace(1)));
    // The second trace has no successor line: it goes out after flush_timeout.
    wait_until("both traces", || count_lines(&out) >= 2).await;
    append(&log, &format!("{}2024-05-01 10:00:09 INFO seq=3 fine\n", trace(2)));
    wait_until("all records", || count_lines(&out) >= 4).await;
    p.shutdown(GRACE).await.unwrap();
    let recs = read_output(&out);
    assert_exactly_once(&seqs(&recs), 4);
    for (i, r) in recs.iter().take(3).enumerate() {
        let body = r["body"].as_str().unwrap();
        assert_eq!(body, trace(i as u64).trim_end(), "record {i}");
        assert_eq!(body.lines().count(), 6);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_is_replaced_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let out = dir.path().join("out.jsonl");
    let mut bytes = b"seq=0 ok\nseq=1 bad \xff\xc3 bytes\n".to_vec();
    bytes.extend_from_slice("seq=2 fine é\n".as_bytes());
    fs::write(&log, bytes).unwrap();
    let p = start(file_pipeline(dir.path(), &log.display().to_string(), &out, ""));
    wait_until("records", || count_lines(&out) >= 3).await;
    let invalid = p.tailer_metrics.invalid_utf8_lines.load(Relaxed);
    p.shutdown(GRACE).await.unwrap();
    let recs = read_output(&out);
    assert_eq!(recs[1]["body"], "seq=1 bad \u{fffd}\u{fffd} bytes");
    assert_eq!(recs[2]["body"], "seq=2 fine é");
    assert_eq!(invalid, 1);
}

async fn ten_megabyte_line(mode: &str) -> (Vec<serde_json::Value>, wasmon_logs::TailerMetricsSnapshot) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let out = dir.path().join("out.jsonl");
    let cfg = file_pipeline(
        dir.path(),
        &log.display().to_string(),
        &out,
        &format!("framing: {{ max_line_bytes: 1MiB, long_lines: {mode} }}"),
    );
    let mut text = String::from("seq=0 before\nseq=1 ");
    text.push_str(&"z".repeat(10 * 1024 * 1024));
    text.push_str("\nseq=2 after\n");
    fs::write(&log, text).unwrap();
    let p = start(cfg);
    let want = if mode == "split" { 13 } else { 3 };
    wait_until("records", || count_lines(&out) >= want).await;
    let m = p.tailer_metrics.snapshot();
    p.shutdown(GRACE).await.unwrap();
    (read_output(&out), m)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_megabyte_line_is_split_at_the_limit() {
    let (recs, m) = ten_megabyte_line("split").await;
    // 10 MiB + "seq=1 " in 1 MiB pieces: 11 pieces.
    assert_eq!(recs.len(), 13);
    let pieces = &recs[1..12];
    assert!(pieces.iter().all(|r| r["body"].as_str().unwrap().len() <= 1 << 20));
    let total: usize = pieces.iter().map(|r| r["body"].as_str().unwrap().len()).sum();
    assert_eq!(total, 10 * 1024 * 1024 + 6);
    assert_eq!(recs[12]["body"], "seq=2 after");
    // Counted per piece cut at the limit; the last piece ended at its newline.
    assert_eq!(m.long_lines_split, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_megabyte_line_is_truncated_at_the_limit() {
    let (recs, m) = ten_megabyte_line("truncate").await;
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[1]["body"].as_str().unwrap().len(), 1 << 20);
    assert!(recs[1]["body"].as_str().unwrap().starts_with("seq=1 zzz"));
    assert_eq!(recs[2]["body"], "seq=2 after");
    assert_eq!(m.long_lines_truncated, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_files_in_new_directories_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let pods = dir.path().join("pods");
    fs::create_dir(&pods).unwrap();
    let out = dir.path().join("out.jsonl");
    let p = start(file_pipeline(dir.path(), &format!("{}/*/*/*.log", pods.display()), &out, ""));
    for i in 0..5u64 {
        let d = pod_dir(&pods, "ns", &format!("pod{i}"), &format!("uid{i}"), "c");
        append(&d.join("0.log"), &line(i));
    }
    wait_until("lines of every new file", || count_lines(&out) >= 5).await;
    p.shutdown(GRACE).await.unwrap();
    assert_exactly_once(&seqs(&read_output(&out)), 5);
}

/// New files, and new lines of a known file, written after the tailer's
/// first scan into pod directories that existed before it. (A file made
/// in a directory that is itself brand new may be created before notify
/// watches that directory; the next poll finds it.)
async fn files_and_lines_are_found(cfg: wasmon_logs::PipelineConfig, pods: &std::path::Path, out: &std::path::Path) {
    let dirs: Vec<_> = (0..3u64).map(|i| pod_dir(pods, "ns", &format!("pod{i}"), &format!("uid{i}"), "c")).collect();
    let p = start(cfg);
    // The first scan (and the watch set up with it) is done before anything is written.
    wait_until("the first scan", || p.tailer_metrics.snapshot().scans >= 1).await;
    for (i, d) in dirs.iter().enumerate() {
        append(&d.join("0.log"), &line(i as u64));
    }
    wait_until("lines of the new files", || count_lines(out) >= 3).await;
    append(&dirs[0].join("0.log"), &line(3));
    wait_until("a line added to a known file", || count_lines(out) >= 4).await;
    p.shutdown(GRACE).await.unwrap();
    assert_exactly_once(&seqs(&read_output(out)), 4);
}

fn pods_pipeline(dir: &std::path::Path, source_extra: &str) -> (wasmon_logs::PipelineConfig, std::path::PathBuf) {
    let pods = dir.join("pods");
    fs::create_dir(&pods).unwrap();
    (file_pipeline(dir, &format!("{}/*/*/*.log", pods.display()), &dir.join("out.jsonl"), source_extra), pods)
}

/// inotify alone: after the first scan the next poll is an hour away, so
/// only the watch's events can find what is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inotify_events_alone_find_new_files_and_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (mut cfg, pods) = pods_pipeline(dir.path(), "");
    cfg.sources[0].poll_interval = wasmon_logs::PromDuration(Duration::from_secs(3600));
    files_and_lines_are_found(cfg, &pods, &dir.path().join("out.jsonl")).await;
}

/// Polling alone, as on file systems whose events never arrive (`watch: false`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_alone_finds_new_files_and_lines_with_watch_off() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, pods) = pods_pipeline(dir.path(), "watch: false");
    assert!(!cfg.sources[0].watch);
    files_and_lines_are_found(cfg, &pods, &dir.path().join("out.jsonl")).await;
}

/// `watch: false` really turns the events off: with the poll an hour away,
/// a new file stays unread, and no scan runs but the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_watch_off_nothing_but_the_poll_finds_files() {
    let dir = tempfile::tempdir().unwrap();
    let (mut cfg, pods) = pods_pipeline(dir.path(), "watch: false");
    cfg.sources[0].poll_interval = wasmon_logs::PromDuration(Duration::from_secs(3600));
    let d = pod_dir(&pods, "ns", "pod0", "uid0", "c");
    let p = start(cfg);
    wait_until("the first scan", || p.tailer_metrics.snapshot().scans >= 1).await;
    append(&d.join("0.log"), &line(0));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let m = p.tailer_metrics.snapshot();
    assert_eq!((m.scans, m.files_opened, m.bytes_read), (1, 0, 0), "{m:?}");
    p.shutdown(GRACE).await.unwrap();
}

/// Stands in for a Wasm plugin that traps: it fails every batch.
struct Failing;

impl wasmon_logs::Processor for Failing {
    fn name(&self) -> &str {
        "failing"
    }

    fn process(
        &mut self,
        batch: Vec<wasmon_logs::LogRecord>,
    ) -> Result<Vec<wasmon_logs::LogRecord>, wasmon_logs::ProcessorError> {
        Err(wasmon_logs::ProcessorError { processor: "failing".into(), message: "trap".into(), unprocessed: batch })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_processor_forwards_records_unprocessed() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let out = dir.path().join("out.jsonl");
    fs::write(&log, (0..50).map(line).collect::<String>()).unwrap();
    let cfg = file_pipeline(dir.path(), &log.display().to_string(), &out, "");
    let p = LogPipeline::start(cfg, vec![Box::new(Failing)], None).unwrap();
    wait_until("records", || count_lines(&out) >= 50).await;
    assert!(p.tailer_metrics.processor_failures.load(Relaxed) >= 1);
    p.shutdown(GRACE).await.unwrap();
    assert_exactly_once(&seqs(&read_output(&out)), 50);
}
