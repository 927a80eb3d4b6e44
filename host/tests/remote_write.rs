//! The remote-write sender end to end: samples pushed into the agent are
//! sent on to a real Prometheus and to an in-process receiver that checks
//! the protocol headers, fails on command (503, 429, 400) and records what
//! it accepted. Covers retry without loss or duplicates, per-series order,
//! relabeling, several endpoints, resuming after a restart, and the buffer
//! limit. Nothing asserts on durations: every wait polls with a generous
//! timeout.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Agent, eventually, free_port, value};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use wasmon::remote::{decode_request, encode_request, proto};

const STALE: u64 = 0x7ff0_0000_0000_0002;
const WAIT: Duration = Duration::from_secs(90);

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// One push = one commit in the agent's store: `(metric, series label s, t, value)`.
fn push(base: &str, samples: &[(&str, &str, i64, f64)]) {
    let mut by_series: BTreeMap<(&str, &str), Vec<proto::Sample>> = BTreeMap::new();
    for (name, s, t, v) in samples {
        by_series.entry((name, s)).or_default().push(proto::Sample { value: *v, timestamp: *t });
    }
    let request = proto::WriteRequest {
        timeseries: by_series
            .into_iter()
            .map(|((name, s), samples)| proto::TimeSeries {
                labels: vec![
                    proto::Label { name: "__name__".into(), value: name.into() },
                    proto::Label { name: "s".into(), value: s.into() },
                    proto::Label { name: "tmp".into(), value: "x".into() },
                ],
                samples,
            })
            .collect(),
        metadata: vec![],
    };
    let response = reqwest::blocking::Client::new()
        .post(format!("{base}/api/v1/write"))
        .header("Content-Encoding", "snappy")
        .body(encode_request(&request))
        .timeout(Duration::from_secs(10))
        .send()
        .expect("push");
    assert!(response.status().is_success(), "push refused: {}", response.text().unwrap_or_default());
}

/// What the receiver accepted: series (labels as text) → (t, value bits) in arrival order.
type Received = HashMap<String, Vec<(i64, u64)>>;

#[derive(Default)]
struct RxState {
    /// The status answered to every request (204 unless changed).
    status: AtomicU16,
    accepted: Mutex<Received>,
    problems: Mutex<Vec<String>>,
    requests: Mutex<Vec<u16>>,
}

/// A remote-write receiver on 127.0.0.1 in its own runtime.
struct Receiver {
    addr: SocketAddr,
    state: Arc<RxState>,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    fn start(port: u16) -> Receiver {
        let state = Arc::new(RxState { status: AtomicU16::new(204), ..Default::default() });
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind receiver");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route("/api/v1/write", axum::routing::post(receive)).with_state(state.clone());
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { addr, state, _runtime: runtime }
    }

    fn url(&self) -> String {
        format!("http://{}/api/v1/write", self.addr)
    }

    fn set_status(&self, status: u16) {
        self.state.status.store(status, Ordering::SeqCst);
    }

    fn accepted(&self) -> Received {
        self.state.accepted.lock().unwrap().clone()
    }

    fn total(&self) -> usize {
        self.state.accepted.lock().unwrap().values().map(Vec::len).sum()
    }

    fn answered(&self, status: u16) -> usize {
        self.state.requests.lock().unwrap().iter().filter(|s| **s == status).count()
    }

    fn assert_protocol_ok(&self) {
        let problems = self.state.problems.lock().unwrap();
        assert!(problems.is_empty(), "protocol problems: {problems:?}");
    }
}

async fn receive(
    axum::extract::State(state): axum::extract::State<Arc<RxState>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let mut problems = Vec::new();
    for (name, want) in [
        ("content-encoding", "snappy"),
        ("content-type", "application/x-protobuf"),
        ("x-prometheus-remote-write-version", "0.1.0"),
        ("x-extra", "yes"),
    ] {
        if header(name) != want {
            problems.push(format!("{name}: {:?}", header(name)));
        }
    }
    if !header("user-agent").starts_with("wasmon/") {
        problems.push(format!("user-agent: {:?}", header("user-agent")));
    }
    let status = state.status.load(Ordering::SeqCst);
    state.requests.lock().unwrap().push(status);
    match decode_request(&body) {
        Ok(request) => {
            for ts in &request.timeseries {
                let names: Vec<&str> = ts.labels.iter().map(|l| l.name.as_str()).collect();
                if !names.windows(2).all(|w| w[0] < w[1]) {
                    problems.push(format!("labels not sorted: {names:?}"));
                }
                if status < 300 {
                    let key = ts.labels.iter().map(|l| format!("{}={}", l.name, l.value)).collect::<Vec<_>>().join(",");
                    let mut accepted = state.accepted.lock().unwrap();
                    let series = accepted.entry(key).or_default();
                    series.extend(ts.samples.iter().map(|s| (s.timestamp, s.value.to_bits())));
                }
            }
        }
        Err(e) => problems.push(format!("undecodable body: {e}")),
    }
    state.problems.lock().unwrap().extend(problems);
    axum::http::StatusCode::from_u16(status).unwrap()
}

fn agent_config(remotes: &str) -> String {
    format!(
        "web:\n  enable_remote_write_receiver: true\nstorage:\n  tsdb:\n    wal_fsync_interval: 100ms\nremote_write:\n{remotes}"
    )
}

/// A `remote_write` entry with short deadlines and backoffs for tests.
fn remote(name: &str, url: &str, extra: &str) -> String {
    format!(
        "  - url: {url}\n    name: {name}\n    headers: {{X-Extra: 'yes'}}\n    queue_config: {{batch_send_deadline: 50ms, \
         min_backoff: 10ms, max_backoff: 200ms, max_samples_per_send: 40, min_shards: 2}}\n{extra}"
    )
}

fn metric(agent: &Agent, name: &str, labels: &[(&str, &str)]) -> f64 {
    value(&agent.metrics(), name, labels).unwrap_or(0.0)
}

fn wait_for(agent: &Agent, what: &str, mut check: impl FnMut() -> bool) {
    if eventually(WAIT, || check().then_some(())).is_none() {
        panic!("timed out waiting for {what}\nmetrics:\n{}\nlog:\n{}", agent.get("/metrics"), agent.log_text());
    }
}

/// Every series' samples arrive once each, in timestamp order.
fn assert_exactly(received: &Received, expected: &BTreeMap<String, Vec<(i64, u64)>>) {
    for (series, want) in expected {
        let got = received.get(series).unwrap_or_else(|| panic!("series {series} never arrived: {received:?}"));
        assert_eq!(got, want, "series {series}: wrong, duplicated or reordered samples");
    }
    assert_eq!(received.len(), expected.len(), "unexpected series: {:?}", received.keys());
}

fn key(name: &str, s: &str) -> String {
    format!("__name__={name},s={s}")
}

#[test]
fn samples_reach_a_real_prometheus_including_stale_markers() {
    let prometheus = wasmon_test_servers::prometheus::Prometheus::start("", &[]);
    let url = format!("http://{}/api/v1/write", prometheus.addr);
    let agent = Agent::start(&agent_config(&remote("prom", &url, "")));
    // Recent timestamps: Prometheus refuses samples far outside its head.
    let t0 = (now_ms() - 120_000) / 1000 * 1000;
    let mut expected: BTreeMap<&str, Vec<(i64, f64)>> = BTreeMap::new();
    for i in 0..30i64 {
        let t = t0 + i * 1000 + 7;
        let batch = vec![("rw_e2e_live", "a", t, i as f64 * 1.5), ("rw_e2e_ending", "b", t, -(i as f64))];
        for (name, _, t, v) in &batch {
            expected.entry(name).or_default().push((*t, *v));
        }
        push(&agent.base, &batch);
    }
    let t_end = t0 + 30 * 1000 + 7;
    push(&agent.base, &[("rw_e2e_ending", "b", t_end, f64::from_bits(STALE)), ("rw_e2e_live", "a", t_end, 99.0)]);
    expected.entry("rw_e2e_live").or_default().push((t_end, 99.0));

    let query = |q: &str, at: i64| -> serde_json::Value {
        let text = reqwest::blocking::Client::new()
            .get(format!("http://{}/api/v1/query", prometheus.addr))
            .query(&[("query", q.to_string()), ("time", format!("{}.{:03}", at / 1000, at % 1000))])
            .send()
            .and_then(|r| r.text())
            .expect("query prometheus");
        serde_json::from_str(&text).expect("JSON")
    };
    let raw = |name: &str| -> Vec<(i64, f64)> {
        let answer = query(&format!("{name}[10m]"), t_end + 1000);
        answer["data"]["result"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["values"].as_array().cloned().unwrap_or_default())
            .map(|p| ((p[0].as_f64().unwrap() * 1000.0).round() as i64, p[1].as_str().unwrap().parse::<f64>().unwrap()))
            .collect()
    };
    let arrived = eventually(WAIT, || {
        let live = raw("rw_e2e_live");
        (live.len() == expected["rw_e2e_live"].len() && raw("rw_e2e_ending").len() == 30).then_some(live)
    });
    let live = arrived.unwrap_or_else(|| {
        panic!(
            "prometheus did not get every sample\nagent log:\n{}\nprometheus log:\n{}",
            agent.log_text(),
            prometheus.log()
        )
    });
    assert_eq!(live, expected["rw_e2e_live"]);
    assert_eq!(raw("rw_e2e_ending"), expected["rw_e2e_ending"]);
    // The stale marker arrived: right after it the series is gone, while the
    // series without one is still found through the 5m lookback.
    let instant = |name: &str| query(name, t_end + 1000)["data"]["result"].as_array().map_or(0, Vec::len);
    assert_eq!(instant("rw_e2e_live"), 1);
    assert_eq!(instant("rw_e2e_ending"), 0, "stale marker did not end the series in Prometheus");
    assert_eq!(instant("rw_e2e_ending offset 2s"), 1, "the series existed before its stale marker");
    wait_for(&agent, "sent_total to count all 62 samples", || {
        metric(&agent, "wasmon_remote_write_samples_sent_total", &[("remote", "prom")]) == 62.0
    });
    let m = agent.metrics();
    assert_eq!(
        value(&m, "wasmon_remote_write_samples_dropped_total", &[("remote", "prom"), ("reason", "http_4xx")]),
        Some(0.0)
    );
}

#[test]
fn retries_5xx_and_429_without_loss_drops_400_and_keeps_endpoints_apart() {
    let flaky = Receiver::start(0);
    let steady = Receiver::start(0);
    let relabel = "    write_relabel_configs:\n      - {source_labels: [s], regex: 'drop.*', action: drop}\n      - {regex: tmp, action: labeldrop}\n";
    let config = agent_config(&format!(
        "{}{}",
        remote("flaky", &flaky.url(), relabel),
        remote("steady", &steady.url(), relabel)
    ));
    let agent = Agent::start(&config);
    flaky.set_status(503);

    let mut expected: BTreeMap<String, Vec<(i64, u64)>> = BTreeMap::new();
    let base_t = 1_700_000_000_000i64;
    let pushed = std::cell::Cell::new(0usize);
    let push_round = |agent: &Agent, from: i64, to: i64, expected: &mut BTreeMap<String, Vec<(i64, u64)>>| {
        for i in from..to {
            let t = base_t + i * 1000;
            let mut batch = Vec::new();
            for s in ["a", "b", "c", "d", "e"] {
                let v = if s == "e" && i == 59 { f64::from_bits(STALE) } else { i as f64 + 0.25 };
                batch.push(("rw_test", s, t, v));
                expected.entry(key("rw_test", s)).or_default().push((t, v.to_bits()));
            }
            batch.push(("rw_test", "dropme", t, 1.0));
            push(&agent.base, &batch);
            pushed.set(pushed.get() + 5);
        }
    };
    push_round(&agent, 0, 30, &mut expected);
    let failed = |agent: &Agent| metric(agent, "wasmon_remote_write_samples_failed_total", &[("remote", "flaky")]);
    wait_for(&agent, "503 answers to be counted as failed", || flaky.answered(503) >= 3 && failed(&agent) > 0.0);
    // The healthy endpoint is not held up by the failing one.
    wait_for(&agent, "steady endpoint to get the first round", || steady.total() == 150);

    flaky.set_status(429);
    let failed_before = failed(&agent);
    push_round(&agent, 30, 60, &mut expected);
    wait_for(&agent, "429 to be retried", || flaky.answered(429) >= 3 && failed(&agent) > failed_before);
    assert_eq!(flaky.total(), 0);

    flaky.set_status(204);
    wait_for(&agent, "everything delivered after recovery", || flaky.total() == pushed.get());
    assert_exactly(&flaky.accepted(), &expected);
    let sent = |agent: &Agent, r: &str| metric(agent, "wasmon_remote_write_samples_sent_total", &[("remote", r)]);
    wait_for(&agent, "pending to drain", || {
        metric(&agent, "wasmon_remote_write_samples_pending", &[("remote", "flaky")]) == 0.0
    });
    assert_eq!(sent(&agent, "flaky"), pushed.get() as f64);
    assert_eq!(
        metric(&agent, "wasmon_remote_write_samples_dropped_total", &[("remote", "flaky"), ("reason", "relabel")]),
        60.0
    );
    assert_eq!(metric(&agent, "wasmon_remote_write_lag_seconds", &[("remote", "flaky")]), 0.0);
    assert!(metric(&agent, "wasmon_remote_write_shards", &[("remote", "flaky")]) >= 2.0);

    // 400: the batch is dropped and counted, never retried; later samples flow.
    flaky.set_status(400);
    let answered_400 = flaky.answered(400);
    let mut rejected = BTreeMap::new();
    push_round(&agent, 60, 62, &mut rejected);
    let dropped_4xx = |agent: &Agent| {
        metric(agent, "wasmon_remote_write_samples_dropped_total", &[("remote", "flaky"), ("reason", "http_4xx")])
    };
    wait_for(&agent, "400 batches to be dropped and counted", || dropped_4xx(&agent) == 10.0);
    assert!(flaky.answered(400) > answered_400);
    flaky.set_status(204);
    push_round(&agent, 62, 64, &mut expected);
    wait_for(&agent, "samples after the 400 to be delivered", || flaky.total() == pushed.get() - 10);
    assert_exactly(&flaky.accepted(), &expected);
    assert_eq!(dropped_4xx(&agent), 10.0, "400 must not be retried");
    wait_for(&agent, "steady endpoint to get everything", || steady.total() == pushed.get());
    expected.iter_mut().for_each(|(k, v)| {
        v.extend(rejected.get(k).cloned().unwrap_or_default());
        v.sort_by_key(|s| s.0);
    });
    assert_exactly(&steady.accepted(), &expected);
    flaky.assert_protocol_ok();
    steady.assert_protocol_ok();
}

#[test]
fn a_restart_while_the_receiver_is_down_resumes_from_the_saved_position() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = agent_config(&remote("later", &format!("http://127.0.0.1:{port}/api/v1/write"), ""));
    let mut expected: BTreeMap<String, Vec<(i64, u64)>> = BTreeMap::new();
    let base_t = 1_700_000_000_000i64;
    let mut push_range = |agent: &Agent, from: i64, to: i64| {
        for i in from..to {
            let t = base_t + i * 1000;
            let batch: Vec<_> = ["a", "b", "c"].iter().map(|s| ("rw_restart", *s, t, i as f64)).collect();
            for (name, s, t, v) in &batch {
                expected.entry(key(name, s)).or_default().push((*t, v.to_bits()));
            }
            push(&agent.base, &batch);
        }
    };
    {
        let mut agent = Agent::start_with_data(&config, data.path());
        push_range(&agent, 0, 40);
        let failed = || metric(&agent, "wasmon_remote_write_samples_failed_total", &[("remote", "later")]);
        wait_for(&agent, "sends to fail while nothing listens", || failed() > 0.0);
        // Like a crash: no shutdown work, only what is already on disk counts.
        agent.kill_9();
    }
    let receiver = Receiver::start(port);
    let agent = Agent::start_with_data(&config, data.path());
    assert!(agent.log_text().contains("resumed"), "no saved position was used:\n{}", agent.log_text());
    push_range(&agent, 40, 60);
    wait_for(&agent, "the backlog and new samples to arrive", || receiver.total() >= 180);
    // Give a duplicate a chance to show up before comparing.
    wait_for(&agent, "pending to drain", || {
        metric(&agent, "wasmon_remote_write_samples_pending", &[("remote", "later")]) == 0.0
    });
    let received = receiver.accepted();
    let with_tmp: BTreeMap<String, Vec<(i64, u64)>> =
        expected.into_iter().map(|(k, v)| (format!("{k},tmp=x"), v)).collect();
    assert_exactly(&received, &with_tmp);
    receiver.assert_protocol_ok();
}

#[test]
fn a_backlog_beyond_buffer_limit_drops_the_oldest_and_keeps_running() {
    let receiver = Receiver::start(0);
    receiver.set_status(503);
    // Small: the WAL is compressed, so these 4,000 samples take only a few KiB.
    let config = agent_config(&remote("small", &receiver.url(), "    buffer_limit: 4KiB\n"));
    let agent = Agent::start(&config);
    let base_t = 1_700_000_000_000i64;
    let series: Vec<String> = (0..50).map(|i| format!("s{i}")).collect();
    let mut total = 0usize;
    for i in 0..80i64 {
        let t = base_t + i * 1000;
        let batch: Vec<_> = series.iter().map(|s| ("rw_limit", s.as_str(), t, i as f64)).collect();
        push(&agent.base, &batch);
        total += batch.len();
    }
    let dropped = |agent: &Agent| {
        metric(agent, "wasmon_remote_write_samples_dropped_total", &[("remote", "small"), ("reason", "buffer_limit")])
    };
    wait_for(&agent, "the buffer limit to drop samples", || dropped(&agent) > 0.0);
    wait_for(&agent, "the backlog to shrink to the limit", || {
        metric(&agent, "wasmon_remote_write_wal_bytes_behind", &[("remote", "small")]) <= 4096.0
    });
    assert!(reqwest::blocking::get(format!("{}/-/ready", agent.base)).unwrap().status().is_success());

    receiver.set_status(204);
    let t_last = base_t + 80 * 1000;
    let last: Vec<_> = series.iter().map(|s| ("rw_limit", s.as_str(), t_last, -1.0)).collect();
    push(&agent.base, &last);
    total += last.len();
    wait_for(&agent, "the newest samples to arrive", || {
        receiver.accepted().values().filter(|v| v.last().is_some_and(|s| s.0 == t_last)).count() == series.len()
    });
    wait_for(&agent, "pending to drain", || {
        metric(&agent, "wasmon_remote_write_samples_pending", &[("remote", "small")]) == 0.0
    });
    let received = receiver.accepted();
    for (k, v) in &received {
        assert!(v.windows(2).all(|w| w[0].0 < w[1].0), "series {k}: duplicated or reordered: {v:?}");
    }
    let delivered = receiver.total();
    let dropped = dropped(&agent) as usize;
    eprintln!("buffer limit: delivered {delivered}, dropped {dropped}, total {total}");
    assert!(dropped > 0 && delivered < total, "delivered {delivered}, dropped {dropped}, total {total}");
    // Every sample was either delivered or counted as dropped.
    assert!(delivered + dropped >= total, "delivered {delivered} + dropped {dropped} < total {total}");
    receiver.assert_protocol_ok();
}
