//! Alerting end to end: rules evaluated by the agent over pushed samples,
//! alerts reaching a real Alertmanager 0.25 (Debian
//! `prometheus-alertmanager`) with their labels, annotations and times, the
//! resolution reaching it too; the built-in notifier delivering to a webhook;
//! `/api/v1/rules` and `/api/v1/alerts`; reloads; rules shipped with plugins.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::Value as Json;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use wasmon::remote::{encode_request, proto};
use wasmon_test_servers::alertmanager::{Alertmanager, NULL_CONFIG};

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn push(base: &str, name: &str, labels: &[(&str, &str)], v: f64) {
    let mut l: Vec<proto::Label> =
        labels.iter().map(|(k, v)| proto::Label { name: (*k).into(), value: (*v).into() }).collect();
    l.push(proto::Label { name: "__name__".into(), value: name.into() });
    l.sort_by(|a, b| a.name.cmp(&b.name));
    let request = proto::WriteRequest {
        timeseries: vec![proto::TimeSeries {
            labels: l,
            samples: vec![proto::Sample { value: v, timestamp: now_ms() }],
        }],
        metadata: vec![],
    };
    let status = reqwest::blocking::Client::new()
        .post(format!("{base}/api/v1/write"))
        .header("Content-Encoding", "snappy")
        .body(encode_request(&request))
        .send()
        .unwrap()
        .status();
    assert!(status.is_success(), "push refused: {status}");
}

fn get_json(url: &str) -> Json {
    serde_json::from_str(&reqwest::blocking::get(url).unwrap().text().unwrap()).unwrap()
}

fn parse_time_ms(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
}

const RULES: &str = r#"groups:
  - name: test
    interval: 1s
    rules:
      - alert: QueueTooLong
        expr: queue_length > 5
        labels:
          severity: page
        annotations:
          summary: 'queue {{ $labels.queue }} has {{ $value }} items'
"#;

fn agent_config(dir: &std::path::Path, alerting: &str) -> String {
    let rules = dir.join("rules.yaml");
    if !rules.exists() {
        std::fs::write(&rules, RULES).unwrap();
    }
    format!(
        "web:\n  enable_remote_write_receiver: true\n  external_url: http://wasmon.example:9101\nrule_files: [{}]\n{alerting}",
        rules.display()
    )
}

#[test]
fn alerts_fire_and_resolve_in_a_real_alertmanager() {
    // Alertmanager forwards to a webhook here, so the resolution it got is visible.
    let (hook, seen) = webhook_receiver();
    let am = Alertmanager::start(&format!(
        "route:\n  receiver: hook\n  group_wait: 1s\n  group_interval: 1s\nreceivers:\n  - name: hook\n    webhook_configs: [{{url: \"{hook}\", send_resolved: true}}]\n"
    ));
    // A second one: alerts go to every Alertmanager (their HA deduplicates).
    let second = Alertmanager::start(NULL_CONFIG);
    let dir = tempfile::tempdir().unwrap();
    let config = agent_config(
        dir.path(),
        &format!(
            "global:\n  external_labels: {{cluster: test}}\nalerting:\n  alertmanagers:\n    - static_configs: [{{targets: [\"{}\", \"{}\"]}}]\n",
            am.addr, second.addr
        ),
    );
    let agent = common::Agent::start(&config);
    let pushed_at = now_ms();
    push(&agent.base, "queue_length", &[("queue", "mail")], 12.0);

    let alert = common::eventually(Duration::from_secs(30), || {
        let alerts = get_json(&format!("http://{}/api/v2/alerts", am.addr));
        alerts.as_array()?.iter().find(|a| a["labels"]["alertname"] == "QueueTooLong").cloned()
    })
    .unwrap_or_else(|| panic!("the alert never reached Alertmanager:\n{}\n{}", agent.log_text(), am.log()));
    assert_eq!(alert["labels"]["severity"], "page");
    assert_eq!(alert["labels"]["queue"], "mail");
    assert_eq!(alert["labels"]["cluster"], "test", "external labels are added");
    assert_eq!(alert["annotations"]["summary"], "queue mail has 12 items");
    assert_eq!(alert["status"]["state"], "active");
    let starts = parse_time_ms(alert["startsAt"].as_str().unwrap());
    let ends = parse_time_ms(alert["endsAt"].as_str().unwrap());
    assert!(
        starts >= pushed_at - 2_000 && starts <= now_ms(),
        "startsAt {starts} is the first evaluation after the push at {pushed_at}"
    );
    assert!(ends > now_ms(), "a firing alert's endsAt lies in the future (eval time + 4 × resend delay)");
    assert!(alert["generatorURL"].as_str().unwrap().starts_with("http://wasmon.example:9101/graph?g0.expr="));

    let in_second = common::eventually(Duration::from_secs(30), || {
        let alerts = get_json(&format!("http://{}/api/v2/alerts", second.addr));
        alerts.as_array()?.iter().find(|a| a["labels"]["alertname"] == "QueueTooLong").cloned()
    })
    .expect("the second Alertmanager gets the alert too");
    assert_eq!(in_second["startsAt"], alert["startsAt"]);

    // The agent's own view agrees.
    let ours = get_json(&format!("{}/api/v1/alerts", agent.base));
    assert_eq!(ours["status"], "success");
    assert_eq!(ours["data"]["alerts"][0]["state"], "firing");
    assert_eq!(ours["data"]["alerts"][0]["labels"]["alertname"], "QueueTooLong");

    // Alertmanager notifies a group only after group_wait; resolve after that.
    common::eventually(Duration::from_secs(30), || {
        seen.lock().unwrap().iter().find(|p| p["status"] == "firing").cloned()
    })
    .unwrap_or_else(|| panic!("Alertmanager never notified the firing alert:\n{}", am.log()));
    let resolved_push = now_ms();
    push(&agent.base, "queue_length", &[("queue", "mail")], 1.0);
    // Alertmanager's notification of the resolution, built from what we sent.
    let resolved = common::eventually(Duration::from_secs(30), || {
        let payloads = seen.lock().unwrap();
        payloads.iter().find(|p| p["status"] == "resolved").map(|p| p["alerts"][0].clone())
    })
    .unwrap_or_else(|| {
        panic!(
            "the resolution never reached Alertmanager:\nseen: {:?}\nam log: {}\nam: {}\nours: {}\n{}",
            seen.lock().unwrap(),
            am.log(),
            get_json(&format!("http://{}/api/v2/alerts", am.addr)),
            get_json(&format!("{}/api/v1/rules", agent.base)),
            agent.log_text()
        )
    });
    assert_eq!(resolved["labels"]["alertname"], "QueueTooLong");
    assert_eq!(parse_time_ms(resolved["startsAt"].as_str().unwrap()), starts, "same alert, same startsAt");
    let resolved_at = parse_time_ms(resolved["endsAt"].as_str().unwrap());
    assert!(
        resolved_at >= resolved_push - 2_000 && resolved_at < ends,
        "endsAt {resolved_at} is the evaluation that resolved it"
    );
    let firing =
        seen.lock().unwrap().iter().find(|p| p["status"] == "firing").cloned().expect("firing notification first");
    assert_eq!(firing["alerts"][0]["annotations"]["summary"], "queue mail has 12 items");
    let listed = get_json(&format!("http://{}/api/v2/alerts", am.addr));
    assert!(listed.as_array().unwrap().is_empty(), "resolved alerts leave Alertmanager's active list: {listed}");
    let ours = get_json(&format!("{}/api/v1/alerts", agent.base));
    assert!(ours["data"]["alerts"].as_array().unwrap().is_empty(), "resolved alerts are not listed: {ours}");
    let metrics = agent.get("/metrics");
    assert!(metrics.contains("wasmon_notifications_sent_total"), "notification counters exported");
}

/// A webhook receiver on loopback that records every payload.
fn webhook_receiver() -> (String, Arc<Mutex<Vec<Json>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let store = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_ok()
                && let Ok(json) = serde_json::from_slice::<Json>(&body)
            {
                store.lock().unwrap().push(json);
            }
            let _ = reader.get_mut().write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, seen)
}

#[test]
fn the_built_in_notifier_delivers_to_a_webhook_and_serves_silences() {
    let (url, seen) = webhook_receiver();
    let dir = tempfile::tempdir().unwrap();
    let config = agent_config(
        dir.path(),
        &format!(
            "notifier:\n  route:\n    receiver: hook\n    group_by: [alertname]\n    group_wait: 200ms\n    group_interval: 500ms\n    repeat_interval: 1h\n  receivers:\n    - name: hook\n      webhook_configs: [{{url: \"{url}\"}}]\n"
        ),
    );
    let agent = common::Agent::start(&config);
    push(&agent.base, "queue_length", &[("queue", "jobs")], 9.0);
    let payload = common::eventually(Duration::from_secs(30), || {
        seen.lock().unwrap().iter().find(|p| p["status"] == "firing").cloned()
    })
    .unwrap_or_else(|| panic!("no webhook delivery:\n{}", agent.log_text()));
    assert_eq!(payload["version"], "4");
    assert_eq!(payload["receiver"], "hook");
    assert_eq!(payload["groupLabels"]["alertname"], "QueueTooLong");
    assert_eq!(payload["alerts"][0]["labels"]["queue"], "jobs");
    assert_eq!(payload["alerts"][0]["annotations"]["summary"], "queue jobs has 9 items");

    // The notifier's Alertmanager API is served by the agent itself.
    let alerts = get_json(&format!("{}/api/v2/alerts", agent.base));
    assert_eq!(alerts[0]["labels"]["alertname"], "QueueTooLong", "{alerts}");

    push(&agent.base, "queue_length", &[("queue", "jobs")], 0.0);
    common::eventually(Duration::from_secs(30), || {
        seen.lock().unwrap().iter().find(|p| p["status"] == "resolved").cloned()
    })
    .unwrap_or_else(|| panic!("no resolved notification:\n{}", agent.log_text()));
}

#[test]
fn rules_api_reload_and_broken_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = agent_config(dir.path(), "");
    let agent = common::Agent::start(&config);
    let rules = get_json(&format!("{}/api/v1/rules", agent.base));
    assert_eq!(rules["status"], "success");
    assert_eq!(rules["data"]["groups"][0]["name"], "test");
    assert_eq!(rules["data"]["groups"][0]["rules"][0]["name"], "QueueTooLong");
    assert_eq!(rules["data"]["groups"][0]["rules"][0]["type"], "alerting");

    // An alert that is firing before the edit stays firing, with the same
    // activeAt, when the file changes around it.
    push(&agent.base, "queue_length", &[("queue", "q")], 50.0);
    let firing = common::eventually(Duration::from_secs(30), || {
        let a = get_json(&format!("{}/api/v1/alerts", agent.base));
        a["data"]["alerts"].as_array()?.iter().find(|a| a["state"] == "firing").cloned()
    })
    .expect("firing before the reload");

    // A rule file edit is picked up without a restart (file watch).
    let path = dir.path().join("rules.yaml");
    let with_recording = format!("{RULES}      - record: job:queue_length:max\n        expr: max(queue_length)\n");
    std::fs::write(&path, with_recording).unwrap();
    common::eventually(Duration::from_secs(30), || {
        let r = get_json(&format!("{}/api/v1/rules", agent.base));
        (r["data"]["groups"][0]["rules"].as_array()?.len() == 2).then_some(())
    })
    .expect("the edited rule file is reloaded");
    let after = get_json(&format!("{}/api/v1/alerts", agent.base));
    let kept = after["data"]["alerts"].as_array().unwrap().iter().find(|a| a["state"] == "firing").cloned();
    assert_eq!(
        kept.map(|a| a["activeAt"].clone()),
        Some(firing["activeAt"].clone()),
        "alert state kept across the reload"
    );

    // A broken file is refused and the running rules stay.
    std::fs::write(&path, "groups:\n  - name: test\n    rules:\n      - alert: Broken\n        expr: rate(\n").unwrap();
    std::thread::sleep(Duration::from_millis(600));
    let response = reqwest::blocking::Client::new().post(format!("{}/-/reload", agent.base)).send().unwrap();
    assert_eq!(response.status().as_u16(), 500);
    assert!(response.text().unwrap().contains("failed to reload config"));
    let r = get_json(&format!("{}/api/v1/rules", agent.base));
    assert_eq!(r["data"]["groups"][0]["rules"].as_array().unwrap().len(), 2, "old rules keep running");
    let filtered = get_json(&format!("{}/api/v1/rules?type=record", agent.base));
    assert_eq!(filtered["data"]["groups"][0]["rules"].as_array().unwrap().len(), 1);
}

#[test]
fn plugin_rules_turn_on_with_one_line() {
    let agent = common::Agent::start("plugin_rules: [node, etcd]\n");
    let rules = get_json(&format!("{}/api/v1/rules", agent.base));
    let names: Vec<&str> =
        rules["data"]["groups"].as_array().unwrap().iter().filter_map(|g| g["name"].as_str()).collect();
    assert_eq!(names, vec!["node-exporter", "etcd"]);
    let node_rules: Vec<&str> =
        rules["data"]["groups"][0]["rules"].as_array().unwrap().iter().filter_map(|r| r["name"].as_str()).collect();
    for expected in ["NodeFilesystemSpaceFillingUp", "NodeMemoryHighUtilization", "TargetDown"] {
        assert!(node_rules.contains(&expected), "{expected} missing from {node_rules:?}");
    }
}

#[test]
fn shipped_plugin_rules_pass_promtool_and_wasmon_check() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for plugin in ["node", "mysql", "etcd", "nginx"] {
        let file = root.join("plugins").join(plugin).join("rules.yaml");
        let promtool = std::process::Command::new("/usr/bin/promtool")
            .args(["check", "rules"])
            .arg(&file)
            .output()
            .expect("/usr/bin/promtool is missing: install the Debian package `prometheus` (scripts/test.sh does)");
        assert!(
            promtool.status.success(),
            "promtool rejects {}: {}",
            file.display(),
            String::from_utf8_lossy(&promtool.stdout)
        );
        let ours = std::process::Command::new(env!("CARGO_BIN_EXE_wasmon"))
            .args(["check", "rules"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(ours.status.success(), "wasmon rejects {}: {}", file.display(), String::from_utf8_lossy(&ours.stdout));
    }
}

/// `for` progress survives a restart: restored from ALERTS_FOR_STATE, the
/// pending alert keeps the time it had spent pending. Like Prometheus, the
/// downtime itself does not count: `activeAt` moves forward by it. (`for`
/// is 1h so the 10m grace period, which resets shorter remainders, stays out.)
#[test]
fn for_state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(
        &rules,
        "groups:\n  - name: slow\n    interval: 1s\n    rules:\n      - alert: Slow\n        expr: queue_length > 5\n        for: 1h\n",
    )
    .unwrap();
    let config = format!("web:\n  enable_remote_write_receiver: true\nrule_files: [{}]\n", rules.display());
    let mut agent = common::Agent::start(&config);
    push(&agent.base, "queue_length", &[("queue", "a")], 12.0);
    let first_alert = |base: &str| -> Option<Json> {
        let a = get_json(&format!("{base}/api/v1/alerts"));
        a["data"]["alerts"].as_array()?.first().cloned()
    };
    let before =
        common::eventually(Duration::from_secs(30), || first_alert(&agent.base).filter(|a| a["state"] == "pending"))
            .unwrap_or_else(|| panic!("never pending:\n{}", agent.log_text()));
    // Pending for a while, with ALERTS_FOR_STATE written at each evaluation.
    std::thread::sleep(Duration::from_millis(8000));
    agent.stop();
    let restart_began = now_ms();
    let restarted = common::Agent::start_with_data(&config, &agent.data_dir());
    push(&restarted.base, "queue_length", &[("queue", "a")], 12.0);
    // As in Prometheus, the state is restored after the second evaluation;
    // until then the alert looks new. Restored, it keeps its ~8 s of progress
    // (activeAt = restore time - 8 s, before the restart began); reset, its
    // activeAt would be the first evaluation after the restart.
    let after = common::eventually(Duration::from_secs(15), || {
        first_alert(&restarted.base).filter(|a| {
            a["activeAt"].as_str().is_some_and(|t| parse_time_ms(t) < restart_began) && a["state"] == "pending"
        })
    })
    .unwrap_or_else(|| {
        panic!(
            "for state not restored (before: {before}, now: {:?}):\n{}",
            first_alert(&restarted.base),
            restarted.log_text()
        )
    });
    assert!(parse_time_ms(after["activeAt"].as_str().unwrap()) > parse_time_ms(before["activeAt"].as_str().unwrap()));
}
