//! The embedded store through the running agent: samples survive `kill -9`
//! up to the fsync interval, damaged WAL tails are cut with a logged count,
//! scraped series land in the store with staleness markers, and the query
//! API and `wasmon tsdb` read them back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wasmon::remote::{encode_request, proto};

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn push_one(base: &str, name: &str, t: i64, v: f64) -> bool {
    let request = proto::WriteRequest {
        timeseries: vec![proto::TimeSeries {
            labels: vec![proto::Label { name: "__name__".into(), value: name.into() }],
            samples: vec![proto::Sample { value: v, timestamp: t }],
        }],
        metadata: vec![],
    };
    reqwest::blocking::Client::new()
        .post(format!("{base}/api/v1/write"))
        .header("Content-Encoding", "snappy")
        .body(encode_request(&request))
        .timeout(Duration::from_secs(5))
        .send()
        .is_ok_and(|r| r.status().is_success())
}

fn query(base: &str, q: &str, t_ms: i64) -> Json {
    let text = reqwest::blocking::Client::new()
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", q.to_string()), ("time", format!("{}.{:03}", t_ms / 1000, t_ms % 1000))])
        .send()
        .and_then(|r| r.text())
        .expect("query");
    serde_json::from_str(&text).expect("JSON")
}

/// Values of the raw samples `selector[range]` returns at `t_ms`, over the
/// `range_s` seconds before it.
fn raw_values(base: &str, selector: &str, t_ms: i64, range_s: i64) -> Vec<f64> {
    let answer = query(base, &format!("{selector}[{range_s}s]"), t_ms);
    assert_eq!(answer["status"], "success", "{answer}");
    answer["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["values"].as_array().unwrap().iter().map(|p| p[1].as_str().unwrap().parse::<f64>().unwrap()))
        .collect()
}

fn data_dir(agent: &common::Agent) -> PathBuf {
    agent.data_dir()
}

const RECEIVER: &str = "web:\n  enable_remote_write_receiver: true\nstorage:\n  tsdb:\n    wal_fsync_interval: 1s\n";

#[test]
fn kill_9_loses_nothing_acknowledged_before_the_fsync_interval() {
    let mut agent = common::Agent::start(RECEIVER);
    let t0 = now_ms() - 600_000;
    let mut acked: Vec<(i64, Instant)> = Vec::new();
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < Duration::from_secs(4) {
        if push_one(&agent.base, "crash_seq", t0 + n * 1000, n as f64) {
            acked.push((n, Instant::now()));
        }
        n += 1;
    }
    let killed_at = Instant::now();
    agent.kill_9();
    let dir = data_dir(&agent);
    let restarted = common::Agent::start_with_data(RECEIVER, &dir);
    // One sample a second from t0: on a fast machine 4 s of pushes span
    // more than an hour of sample time, so the range covers all of them.
    let present = raw_values(&restarted.base, "crash_seq", t0 + n * 1000, n + 1);
    let must_have: Vec<i64> = acked
        .iter()
        .filter(|(_, at)| killed_at.duration_since(*at) > Duration::from_secs(1))
        .map(|(n, _)| *n)
        .collect();
    assert!(must_have.len() > 10, "too few samples were acknowledged early enough: {}", must_have.len());
    for n in &must_have {
        assert!(present.contains(&(*n as f64)), "sample {n} was acknowledged > 1s before kill -9 but is gone");
    }
    println!(
        "kill -9: {} acknowledged, {} older than the fsync interval, {} present after restart",
        acked.len(),
        must_have.len(),
        present.len()
    );
}

fn wal_segments(dir: &Path) -> Vec<PathBuf> {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir.join("wal"))
        .expect("wal dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file() && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    segments.sort();
    segments
}

/// Write samples, stop the agent, damage the WAL with `damage`, restart:
/// the agent must start, log how much it dropped, and keep what came before.
fn damaged_wal_starts(damage: impl Fn(&Path)) -> (String, Vec<f64>) {
    let mut agent = common::Agent::start(RECEIVER);
    let t0 = now_ms() - 600_000;
    for n in 0..200 {
        assert!(push_one(&agent.base, "wal_seq", t0 + n * 1000, n as f64));
    }
    agent.stop();
    let dir = data_dir(&agent);
    let segments = wal_segments(&dir);
    let last = segments.last().expect("a WAL segment");
    damage(last);
    let restarted = common::Agent::start_with_data(RECEIVER, &dir);
    let values = raw_values(&restarted.base, "wal_seq", t0 + 200_000, 3600);
    (restarted.log_text(), values)
}

#[test]
fn a_torn_wal_tail_is_cut_with_a_logged_count() {
    let (log, values) = damaged_wal_starts(|segment| {
        let len = std::fs::metadata(segment).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(segment).unwrap();
        f.set_len(len - 7).unwrap();
    });
    assert!(log.contains("dropped"), "no drop count in the log:\n{log}");
    assert!(values.len() >= 150 && values.len() < 200, "kept {} of 200 samples", values.len());
    let expected: Vec<f64> = (0..values.len()).map(|n| n as f64).collect();
    assert_eq!(values, expected, "everything before the tear is kept, in order");
}

#[test]
fn flipped_wal_bytes_are_cut_with_a_logged_count() {
    let (log, values) = damaged_wal_starts(|segment| {
        let mut bytes = std::fs::read(segment).unwrap();
        let at = bytes.len() * 3 / 4;
        for b in &mut bytes[at..at + 4] {
            *b ^= 0xff;
        }
        std::fs::write(segment, bytes).unwrap();
    });
    assert!(log.contains("dropped"), "no drop count in the log:\n{log}");
    assert!(!values.is_empty() && values.len() < 200, "kept {} of 200 samples", values.len());
    let expected: Vec<f64> = (0..values.len()).map(|n| n as f64).collect();
    assert_eq!(values, expected, "the samples before the damage are kept, in order");
}

#[test]
fn scraped_series_are_stored_and_queryable() {
    let wasm = common::plugin("wasmon_example_plugin");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: example\n    plugin: {}\n    static_configs: [{{targets: [localhost]}}]\n    capabilities: {{files: default}}\n",
        wasm.display()
    );
    let agent = common::Agent::start(&config);
    let up = common::eventually(Duration::from_secs(30), || {
        let a = query(&agent.base, r#"up{job="example"}"#, now_ms());
        let v = a["data"]["result"][0]["value"][1].as_str()?.to_string();
        Some(v)
    })
    .expect("up is stored and queryable");
    assert_eq!(up, "1");
    let series: Json = serde_json::from_str(&agent.get("/api/v1/series?match[]=up")).unwrap();
    assert_eq!(series["status"], "success");
    assert_eq!(series["data"][0]["job"], "example");
    let names: Json = serde_json::from_str(&agent.get("/api/v1/label/__name__/values")).unwrap();
    let names: Vec<&str> = names["data"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    for synthetic in ["up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_series_added"] {
        assert!(names.contains(&synthetic), "{synthetic} missing from {names:?}");
    }
    let buildinfo: Json = serde_json::from_str(&agent.get("/api/v1/status/buildinfo")).unwrap();
    assert!(buildinfo["data"]["version"].is_string());
    assert!(buildinfo["data"].get("features").is_none(), "a features map makes Grafana think this is Mimir");
    let metadata: Json = serde_json::from_str(&agent.get("/api/v1/metadata?metric=up")).unwrap();
    assert_eq!(metadata["data"]["up"][0]["type"], "gauge", "{metadata}");
    // Grafana posts forms.
    let now = now_ms() / 1000 + 1;
    let form = format!("query=up&start={}&end={now}&step=1s", now - 60);
    let posted = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/query_range", agent.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .and_then(|r| r.text())
        .unwrap();
    let posted: Json = serde_json::from_str(&posted).unwrap();
    assert_eq!(posted["data"]["resultType"], "matrix", "{posted}");
    assert!(posted["data"]["result"][0]["values"].as_array().is_some_and(|v| !v.is_empty()), "{posted}");
    let bad: Json = serde_json::from_str(&agent.get("/api/v1/query?query=rate(up")).unwrap();
    assert_eq!(bad["status"], "error");
    assert_eq!(bad["errorType"], "bad_data");
}

#[test]
fn tsdb_list_and_dump_read_a_data_dir() {
    let mut agent = common::Agent::start(RECEIVER);
    let t0 = now_ms() - 60_000;
    for n in 0..10 {
        assert!(push_one(&agent.base, "dump_me", t0 + n * 1000, n as f64 * 0.5));
    }
    agent.stop();
    let dir = data_dir(&agent);
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_wasmon")).arg("tsdb").args(args).arg(&dir).output().unwrap();
        assert!(out.status.success(), "wasmon tsdb {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let list = run(&["list"]);
    assert!(list.contains("head"), "{list}");
    let dump = run(&["dump", "--match", "dump_me"]);
    let lines: Vec<&str> = dump.lines().collect();
    assert_eq!(lines.len(), 10, "{dump}");
    assert_eq!(lines[3], format!("dump_me{{}} 1.5 {}", t0 + 3000));
}

/// A target whose scrapes start failing: its series get a staleness marker
/// at the first failed scrape, so an instant query stops returning them at
/// once instead of five minutes later, while `up` keeps going (as 0).
#[test]
fn a_failing_scrape_marks_its_series_stale() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("present");
    std::fs::write(&file, "12345").unwrap();
    let config = format!(
        "global: {{scrape_interval: 1s, scrape_timeout: 500ms}}\nscrape_configs:\n  - job_name: flaky\n    plugin: {}\n    static_configs: [{{targets: [flaky]}}]\n    config: {{mode: read-file, path: {}}}\n    capabilities: {{files: [\"{}/*\"]}}\n",
        common::plugin("wasmon_hostile").display(),
        file.display(),
        dir.path().display()
    );
    let agent = common::Agent::start(&config);
    let value_now = |q: &str| -> Option<String> {
        let a = query(&agent.base, q, now_ms());
        a["data"]["result"][0]["value"][1].as_str().map(str::to_owned)
    };
    let bytes = common::eventually(Duration::from_secs(30), || value_now("hostile_read_bytes")).expect("stored");
    assert_eq!(bytes, "5");
    std::fs::remove_file(&file).unwrap();
    common::eventually(Duration::from_secs(30), || (value_now(r#"up{job="flaky"}"#)? == "0").then_some(()))
        .expect("up goes to 0");
    assert_eq!(value_now("hostile_read_bytes"), None, "the series is stale right after the failed scrape");
    let raw = query(&agent.base, "hostile_read_bytes[1m]", now_ms());
    let points = raw["data"]["result"][0]["values"].as_array().expect("raw samples still there").len();
    assert!(points >= 1, "the samples before the failure are kept");
}
