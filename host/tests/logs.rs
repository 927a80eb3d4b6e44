//! The logs pipeline end to end: the agent tails a real CRI file through the
//! `logs-json` plugin into a file sink (every line once, fields parsed,
//! checked by sequence numbers, also across a restart), the plugin's
//! metrics reach `/metrics` and the store, hostile processors (a loop, a
//! panic, a memory bomb, an error, records naming a missing source) fail
//! alone with their records forwarded unprocessed and counted, a bad `logs:`
//! section is refused naming the key, and pod labels come from a watch on
//! the fake API server restricted to the agent's node, into the records.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Agent, eventually};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

const POD_DIR: &str = "shop_web-7d4b9c_0b7f5e43-2a4e-4c4c-9bd0-5d0c1ad6e9d1";

/// A kubelet-style log tree under a temp dir, and the config around it.
struct LogTree {
    dir: tempfile::TempDir,
}

impl LogTree {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("pods").join(POD_DIR).join("web")).unwrap();
        Self { dir }
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("pods").join(POD_DIR).join("web").join("0.log")
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out.jsonl")
    }

    /// Append CRI lines `from..to`; every seventh is split into two partial
    /// (`P`) lines, and lines whose seq is in `marked` carry `word` in `msg`.
    fn append(&self, from: u64, to: u64, marked: &dyn Fn(u64) -> Option<&'static str>) {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(self.log_file()).unwrap();
        let mut text = String::new();
        for seq in from..to {
            let level = ["info", "WARN", "error", "debug"][(seq % 4) as usize];
            let msg = match marked(seq) {
                Some(word) => format!("line {seq} {word}"),
                None => format!("line {seq}"),
            };
            let body = format!(
                r#"{{"seq":{seq},"level":"{level}","msg":"{msg}","http":{{"status":{},"path":"/items/{seq}"}}}}"#,
                200 + seq % 3
            );
            let ts = format!("2024-05-01T12:{:02}:{:02}.{:09}Z", (seq / 60) % 60, seq % 60, seq);
            if seq % 7 == 3 {
                let (a, b) = body.split_at(body.len() / 2);
                text.push_str(&format!("{ts} stdout P {a}\n{ts} stdout F {b}\n"));
            } else {
                text.push_str(&format!("{ts} stdout F {body}\n"));
            }
        }
        f.write_all(text.as_bytes()).unwrap();
    }

    fn config(&self, processors: &str, extra: &str) -> String {
        format!(
            "global: {{scrape_interval: 1s, scrape_timeout: 1s}}
logs:
  sources:
    - name: pods
      include: ['{root}/pods/*/*/*.log']
      kubernetes_metadata: true
      poll_interval: 200ms
      framing: {{format: cri}}
  checkpoint: {{path: '{root}/checkpoint.json', interval: 200ms}}
  batch: {{max_records: 100, flush_interval: 100ms}}
  sinks:
    - {{type: file, name: out, path: '{root}/out.jsonl'}}
  metrics_interval: 500ms
  processors:
{processors}
{extra}",
            root = self.dir.path().display(),
        )
    }

    /// The sink's lines so far.
    fn delivered(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.out()).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad sink line {l}: {e}"))).collect()
    }

    /// Wait until `n` records are delivered; then check each seq is there exactly once.
    fn wait_for(&self, agent: &Agent, n: usize) -> BTreeMap<u64, Value> {
        eventually(Duration::from_secs(120), || (self.delivered().len() >= n).then_some(())).unwrap_or_else(|| {
            panic!("only {} of {n} records delivered:\n{}", self.delivered().len(), agent.log_text())
        });
        // Give a duplicate a chance to show up before counting.
        std::thread::sleep(Duration::from_millis(500));
        let lines = self.delivered();
        assert_eq!(lines.len(), n, "records delivered more than once");
        let mut by_seq = BTreeMap::new();
        for line in lines {
            let seq = seq_of(&line).unwrap_or_else(|| panic!("a record without seq: {line}"));
            assert!(by_seq.insert(seq, line).is_none(), "seq {seq} delivered twice");
        }
        assert_eq!(by_seq.keys().copied().collect::<Vec<_>>(), (0..n as u64).collect::<Vec<_>>());
        by_seq
    }
}

fn seq_of(line: &Value) -> Option<u64> {
    // Parsed: the attribute. Unparsed (forwarded by a failed processor): the body.
    line["attributes"]["seq"].as_str().and_then(|s| s.parse().ok()).or_else(|| {
        let body: Value = serde_json::from_str(line["body"].as_str()?).ok()?;
        body["seq"].as_u64()
    })
}

fn plugin(name: &str) -> String {
    common::plugin(name).display().to_string()
}

fn metric(agent: &Agent, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    common::value(&agent.metrics(), name, labels)
}

#[test]
fn logs_json_plugin_parses_every_line_and_its_metrics_reach_metrics_and_the_store() {
    let tree = LogTree::new();
    tree.append(0, 1500, &|_| None);
    let processors =
        format!("    - plugin: {}\n      config: {{message_key: msg, level_key: level}}\n", plugin("wasmon_logs_json"));
    let config = tree.config(&processors, "");
    let mut agent = Agent::start(&config);
    // Lines written while it runs are picked up too.
    tree.append(1500, 2000, &|_| None);
    let by_seq = tree.wait_for(&agent, 2000);
    for (seq, line) in &by_seq {
        let a = &line["attributes"];
        assert_eq!(line["body"], format!("line {seq}"), "msg became the body: {line}");
        let level = ["info", "warn", "error", "debug"][(*seq % 4) as usize];
        assert_eq!(a["level"], level, "level normalised: {line}");
        assert_eq!(a["http.status"], (200 + seq % 3).to_string(), "nested keys flattened: {line}");
        assert_eq!(a["http.path"], format!("/items/{seq}"));
        assert!(a.get("msg").is_none() && a.get("json.error").is_none(), "{line}");
        assert_eq!(a["k8s.pod.name"], "web-7d4b9c", "file attributes kept: {line}");
        assert_eq!(line["source"]["stream"], "stdout");
        // The CRI timestamp: nanoseconds = seq, seconds from the seq.
        assert_eq!(line["timestamp_ns"].as_i64().unwrap() % 1_000_000_000, *seq as i64);
    }

    // The plugin's counters as a pseudo-target job="logs", in /metrics and the store.
    let parsed = [("job", "logs"), ("processor", "wasmon_logs_json"), ("result", "parsed")];
    eventually(Duration::from_secs(30), || {
        (metric(&agent, "logs_json_records_total", &parsed) == Some(2000.0)).then_some(())
    })
    .unwrap_or_else(|| panic!("logs_json_records_total not 2000:\n{}", agent.get("/metrics")));
    let error_lines = metric(&agent, "logs_json_records_by_level_total", &[("job", "logs"), ("level", "error")]);
    assert_eq!(error_lines, Some(500.0));
    assert_eq!(
        metric(&agent, "wasmon_logs_processor_records_in_total", &[("processor", "wasmon_logs_json")]),
        Some(2000.0)
    );
    assert_eq!(metric(&agent, "wasmon_logs_records_total", &[]), Some(2000.0));
    assert!(metric(&agent, "wasmon_logs_partial_lines_joined_total", &[]).unwrap() > 0.0);
    assert_eq!(metric(&agent, "wasmon_logs_sink_records_sent_total", &[("sink", "out")]), Some(2000.0));
    let stored = eventually(Duration::from_secs(30), || {
        let answer: Value = serde_json::from_str(
            &agent.get("/api/v1/query?query=logs_json_records_total%7Bresult%3D%22parsed%22%2Cjob%3D%22logs%22%7D"),
        )
        .ok()?;
        let v = answer["data"]["result"][0]["value"][1].as_str()?.to_string();
        (v == "2000").then_some(v)
    });
    assert!(stored.is_some(), "log-derived samples not in the store");

    // A clean restart resumes from the checkpoint: new lines once, old ones not again.
    agent.stop();
    tree.append(2000, 2300, &|_| None);
    let agent = Agent::start(&config);
    tree.wait_for(&agent, 2300);
    assert!(agent.log_text().contains("logs pipeline started"));
}

#[test]
fn hostile_processors_fail_alone_and_their_records_are_forwarded_unprocessed() {
    let tree = LogTree::new();
    let mark = |seq: u64| match seq {
        150 => Some("LOOP"),
        450 => Some("BOOM"),
        _ => None,
    };
    tree.append(0, 600, &mark);
    let processors = format!(
        "    - name: looper
      plugin: {hostile}
      config: {{mode: loop, trigger: LOOP, attribute: looper.seen}}
      limits: {{timeout: 500ms}}
    - name: panicker
      plugin: {hostile}
      config: {{mode: panic, trigger: BOOM, attribute: panicker.seen}}
    - plugin: {json}
      config: {{message_key: msg}}
",
        hostile = plugin("wasmon_hostile_logs"),
        json = plugin("wasmon_logs_json"),
    );
    let agent = Agent::start(&tree.config(&processors, ""));
    let by_seq = tree.wait_for(&agent, 600);
    // Every record went through logs-json, failed hostile steps or not.
    for (seq, line) in &by_seq {
        assert_eq!(line["attributes"]["seq"], seq.to_string(), "{line}");
    }
    // The batch holding the trigger lost only the hostile step's work.
    let attrs = |seq: u64| by_seq[&seq]["attributes"].clone();
    assert!(attrs(150)["looper.seen"].is_null(), "looper failed on it: {}", attrs(150));
    assert!(attrs(150)["panicker.seen"].is_string(), "the next step still ran: {}", attrs(150));
    assert!(attrs(450)["panicker.seen"].is_null(), "panicker failed on it: {}", attrs(450));
    assert!(attrs(0)["looper.seen"].is_string() && attrs(0)["panicker.seen"].is_string(), "{}", attrs(0));
    let unprocessed = |processor: &str| -> f64 {
        let m = agent.metrics();
        m.iter()
            .filter(|f| f.name == "wasmon_logs_processor_unprocessed_records_total")
            .flat_map(|f| f.metrics.iter())
            .filter(|s| s.labels.iter().any(|l| l.name == "processor" && l.value == processor))
            .map(|s| match s.value {
                wasmon_sdk::MetricValue::Counter(v) => v,
                _ => 0.0,
            })
            .sum()
    };
    let counted = eventually(Duration::from_secs(30), || {
        (unprocessed("looper") >= 1.0 && unprocessed("panicker") >= 1.0).then_some(())
    });
    assert!(counted.is_some(), "unprocessed records not counted:\n{}", agent.get("/metrics"));
    let looped = ["timeout", "cpu_limit"]
        .iter()
        .filter_map(|r| {
            metric(&agent, "wasmon_logs_processor_failures_total", &[("processor", "looper"), ("reason", r)])
        })
        .sum::<f64>();
    assert_eq!(looped, 1.0, "the loop was stopped by its limit once");
    assert_eq!(
        metric(&agent, "wasmon_logs_processor_failures_total", &[("processor", "panicker"), ("reason", "panic")]),
        Some(1.0)
    );

    // After the backoff the processors start again and process new lines.
    std::thread::sleep(Duration::from_secs(3));
    tree.append(600, 700, &|_| None);
    let by_seq = tree.wait_for(&agent, 700);
    let last = &by_seq[&699]["attributes"];
    assert!(last["looper.seen"].is_string() && last["panicker.seen"].is_string(), "restarted: {last}");
    for name in ["looper", "panicker"] {
        let started = metric(&agent, "wasmon_logs_processor_instances_started_total", &[("processor", name)]);
        assert!(started.is_some_and(|n| n >= 2.0), "{name} not restarted: {started:?}");
    }
    let processed_by_looper = metric(&agent, "wasmon_logs_processor_records_in_total", &[("processor", "looper")]);
    assert_eq!(processed_by_looper, Some(700.0), "every record reached the looper step");
    for name in ["looper", "panicker"] {
        let n = unprocessed(name);
        assert!((1.0..600.0).contains(&n), "{name}: {n} records forwarded unprocessed");
    }
}

/// The other ways a processor can fail: a memory bomb stopped by its limit
/// (a trap: the instance is replaced), an error it returns and records that
/// name a source the batch lacks (its own failures: the instance is kept).
/// Each forwards only its batch unprocessed, and every line arrives once.
#[test]
fn memory_bombs_errors_and_bad_records_fail_alone() {
    let tree = LogTree::new();
    let mark = |seq: u64| match seq {
        120 => Some("BOMB"),
        320 => Some("NOPE"),
        520 => Some("LIE"),
        _ => None,
    };
    tree.append(0, 600, &mark);
    let processors = format!(
        "    - name: bomber
      plugin: {hostile}
      config: {{mode: memory-bomb, trigger: BOMB, attribute: bomber.seen}}
      limits: {{memory: 32MiB}}
    - name: refuser
      plugin: {hostile}
      config: {{mode: error, trigger: NOPE, attribute: refuser.seen}}
    - name: liar
      plugin: {hostile}
      config: {{mode: bad-source, trigger: LIE, attribute: liar.seen}}
",
        hostile = plugin("wasmon_hostile_logs"),
    );
    let agent = Agent::start(&tree.config(&processors, ""));
    let by_seq = tree.wait_for(&agent, 600);
    let attrs = |seq: u64| by_seq[&seq]["attributes"].clone();
    for (seq, step) in [(120, "bomber"), (320, "refuser"), (520, "liar")] {
        let a = attrs(seq);
        assert!(a[format!("{step}.seen")].is_null(), "{step} failed on the batch of {seq}: {a}");
        // (The bomber is left out: after its trap it waits out a backoff, and
        // the batches of that second are forwarded past it, counted as `backoff`.)
        for other in ["refuser", "liar"].into_iter().filter(|o| *o != step) {
            assert!(a[format!("{other}.seen")].is_string(), "{other} still ran on the batch of {seq}: {a}");
        }
        assert_eq!(by_seq[&seq]["body"].as_str().map(|b| b.contains(&format!("\"seq\":{seq}"))), Some(true));
    }
    assert!(["bomber", "refuser", "liar"].iter().all(|s| attrs(0)[format!("{s}.seen")].is_string()), "{}", attrs(0));

    let failures = |processor: &str, reason: &str| {
        metric(&agent, "wasmon_logs_processor_failures_total", &[("processor", processor), ("reason", reason)])
    };
    let counted = eventually(Duration::from_secs(30), || {
        (failures("bomber", "memory_limit") == Some(1.0)
            && failures("refuser", "plugin_error") == Some(1.0)
            && failures("liar", "plugin_error") == Some(1.0))
        .then_some(())
    });
    assert!(counted.is_some(), "failures not counted by reason:\n{}", agent.get("/metrics"));
    let started =
        |processor: &str| metric(&agent, "wasmon_logs_processor_instances_started_total", &[("processor", processor)]);
    // The bomb's instance was replaced once the backoff passed; the others kept theirs.
    std::thread::sleep(Duration::from_secs(3));
    tree.append(600, 700, &|_| None);
    let by_seq = tree.wait_for(&agent, 700);
    let last = &by_seq[&699]["attributes"];
    assert!(["bomber", "refuser", "liar"].iter().all(|s| last[format!("{s}.seen")].is_string()), "{last}");
    assert!(started("bomber").is_some_and(|n| n >= 2.0), "bomber not restarted: {:?}", started("bomber"));
    assert_eq!((started("refuser"), started("liar")), (Some(1.0), Some(1.0)), "an own error keeps the instance");
    let log = agent.log_text();
    assert!(log.contains("hostile log processor refuses this batch"), "the plugin's reason is logged:\n{log}");
    assert!(log.contains("but the batch has 1 sources"), "the bad record is named in the log:\n{log}");
}

fn run_expecting_failure(config: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wasmon.yaml");
    std::fs::write(&path, config).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wasmon"))
        .arg("run")
        .arg("--config")
        .arg(&path)
        .arg("--web.listen-address")
        .arg(format!("127.0.0.1:{}", common::free_port()))
        .arg("--storage.tsdb.path")
        .arg(dir.path().join("data"))
        .env("WASMON_CACHE_DIR", common::cache_dir())
        .output()
        .unwrap();
    assert!(!out.status.success(), "wasmon accepted a bad logs config");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_bad_logs_config_is_refused_naming_the_key() {
    let tree = LogTree::new();
    let err = run_expecting_failure(&tree.config("    - {native: json, plugin: logs-json}\n", "  bogus_key: 1\n"));
    assert!(err.contains("unknown field `bogus_key`"), "{err}");
    let err = run_expecting_failure(&tree.config("    - {native: json, plugin: logs-json}\n", ""));
    assert!(err.contains("logs.processors[0]: set either plugin or native, not both"), "{err}");
    // The plugin checks its own section at start-up.
    let processors = format!("    - plugin: {}\n      config: {{separator: ''}}\n", plugin("wasmon_logs_json"));
    let err = run_expecting_failure(&tree.config(&processors, ""));
    assert!(err.contains("logs.processors[0]") && err.contains("separator"), "{err}");
    // Not a log processor at all.
    let processors = format!("    - plugin: {}\n", plugin("wasmon_hostile"));
    let err = run_expecting_failure(&tree.config(&processors, ""));
    assert!(err.contains("is not a wasmon log-processor component"), "{err}");
}

/// Through the agent: a pod's labels, from a watch of the fake API server,
/// reach the records of its log file (once the watch has the pod; the
/// tailer looks its file's pod up again at every poll).
#[test]
fn the_agent_adds_pod_labels_from_the_watch_to_delivered_records() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let api = rt.block_on(wasmon_kube_fake::FakeApiServer::start()).unwrap();
    let uid = POD_DIR.rsplit('_').next().unwrap();
    api.apply("pods", pod("shop", "web-7d4b9c", uid, "node-a", serde_json::json!({"app": "web", "tier": "front"})))
        .unwrap();
    api.apply("pods", pod("shop", "other", "uid-other", "node-b", serde_json::json!({"app": "other"}))).unwrap();
    let tree = LogTree::new();
    let extra = format!("  kubernetes: {{api_server: '{}', node_name: node-a}}\n", api.url());
    let agent = Agent::start(&tree.config("    []\n", &extra));
    let mut next = 0;
    let labelled = eventually(Duration::from_secs(60), || {
        tree.append(next, next + 1, &|_| None);
        next += 1;
        std::thread::sleep(Duration::from_millis(100));
        tree.delivered().into_iter().find(|l| l["attributes"]["k8s.pod.label.app"].is_string())
    })
    .unwrap_or_else(|| panic!("no record got the pod's labels:\n{}", agent.log_text()));
    let a = &labelled["attributes"];
    assert_eq!(
        (a["k8s.pod.label.app"].as_str(), a["k8s.pod.label.tier"].as_str()),
        (Some("web"), Some("front")),
        "{a}"
    );
    assert_eq!(a["k8s.pod.name"], "web-7d4b9c", "{a}");
    // Every record after it carries them too, and every line arrives once.
    let by_seq = tree.wait_for(&agent, next as usize);
    let first = seq_of(&labelled).unwrap();
    for (seq, line) in by_seq.range(first..) {
        assert_eq!(line["attributes"]["k8s.pod.label.app"], "web", "record {seq}: {line}");
    }
}

fn pod(namespace: &str, name: &str, uid: &str, node: &str, labels: Value) -> Value {
    let mut p = wasmon_kube_fake::fixtures::pod(namespace, name, node, "10.0.0.9");
    wasmon_kube_fake::fixtures::set(&mut p, "/metadata/uid", uid);
    wasmon_kube_fake::fixtures::set(&mut p, "/metadata/labels", labels);
    p
}

fn pod_ref(namespace: &str, name: &str, uid: &str) -> wasmon_logs::PodRef {
    let path = format!("/var/log/pods/{namespace}_{name}_{uid}/c/0.log");
    wasmon_logs::PodRef::from_path(Path::new(&path)).unwrap()
}

#[test]
fn pod_labels_come_from_a_watch_of_this_nodes_pods() {
    use wasmon_logs::PodMetadataSource;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let api = rt.block_on(wasmon_kube_fake::FakeApiServer::start()).unwrap();
    api.apply("pods", pod("shop", "web-1", "uid-web-1", "node-a", serde_json::json!({"app": "web", "tier": "front"})))
        .unwrap();
    api.apply("pods", pod("shop", "db-1", "uid-db-1", "node-b", serde_json::json!({"app": "db"}))).unwrap();
    let config: wasmon::config::LogsKubernetesConfig = serde_yaml_ng::from_str(&format!(
        "{{api_server: '{}', node_name: node-a, pod_annotations: [team]}}",
        api.url()
    ))
    .unwrap();
    let (watch, task) = {
        let _guard = rt.enter();
        wasmon::logs::PodWatch::start(&config)
    };
    let web = pod_ref("shop", "web-1", "uid-web-1");
    let labels = eventually(Duration::from_secs(30), || {
        let a = watch.pod_attributes(&web);
        (!a.is_empty()).then_some(a)
    })
    .expect("labels of the pod on this node");
    let s = |k: &str, v: &str| (k.to_string(), v.to_string());
    assert_eq!(labels, vec![s("k8s.pod.label.app", "web"), s("k8s.pod.label.tier", "front")]);
    assert!(watch.pod_attributes(&pod_ref("shop", "db-1", "uid-db-1")).is_empty(), "another node's pod");
    assert_eq!(watch.len(), 1, "only this node's pods are held");

    // Label and annotation changes follow; a deleted pod keeps its labels for its last lines.
    let mut changed = pod("shop", "web-1", "uid-web-1", "node-a", serde_json::json!({"app": "web2"}));
    wasmon_kube_fake::fixtures::set(&mut changed, "/metadata/annotations", serde_json::json!({"team": "payments"}));
    api.apply("pods", changed).unwrap();
    let want = vec![s("k8s.pod.annotation.team", "payments"), s("k8s.pod.label.app", "web2")];
    eventually(Duration::from_secs(30), || (watch.pod_attributes(&web) == want).then_some(()))
        .unwrap_or_else(|| panic!("labels did not follow: {:?}", watch.pod_attributes(&web)));
    assert!(api.delete("pods", "shop", "web-1"));
    api.apply("pods", pod("shop", "web-2", "uid-web-2", "node-a", serde_json::json!({"app": "web"}))).unwrap();
    eventually(Duration::from_secs(30), || (watch.len() == 2).then_some(())).expect("the new pod");
    assert_eq!(watch.pod_attributes(&web), want, "a deleted pod's labels stay for its last lines");
    task.abort();
}
