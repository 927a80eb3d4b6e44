//! Routing, grouping, timing, inhibition, silences and retries against an
//! in-process webhook receiver. Timings are short; assertions are on order,
//! content and counts, never on exact durations.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

fn config(url: &str, timings: &str) -> String {
    format!(
        "route:\n  receiver: web\n  group_by: [alertname]\n  {timings}\nreceivers:\n  - name: web\n    webhook_configs:\n      - url: {url}/web\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_by_label_and_batches_during_group_wait() {
    let (hook, addr) = Hook::start().await;
    let dir = tempfile::tempdir().unwrap();
    // A longer group_wait so a loaded machine still pushes the second batch within it.
    let timings = "group_wait: 1s\n  group_interval: 500ms\n  repeat_interval: 1h";
    let n = notifier(&config(&format!("http://{addr}"), timings), dir.path());
    n.push(vec![firing(&[("alertname", "Disk"), ("instance", "a")])]);
    // Arrives during group_wait: goes out in the same notification.
    tokio::time::sleep(Duration::from_millis(50)).await;
    n.push(vec![
        firing(&[("alertname", "Disk"), ("instance", "b")]),
        firing(&[("alertname", "Cpu"), ("instance", "a")]),
    ]);
    wait_for(10, "two notifications", || hook.count() >= 2).await;
    // Nothing changes: no more messages for a few group intervals.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got = hook.for_receiver("web");
    assert_eq!(got.len(), 2, "{got:#?}");
    let disk = got.iter().find(|p| p["groupLabels"]["alertname"] == "Disk").unwrap();
    assert_eq!(alert_names(disk), ["Disk/a", "Disk/b"]);
    assert_eq!(disk["status"], "firing");
    assert_eq!(disk["version"], "4");
    assert_eq!(disk["receiver"], "web");
    assert_eq!(disk["groupKey"], "{}:{alertname=\"Disk\"}");
    assert_eq!(disk["commonLabels"], json!({"alertname": "Disk"}));
    assert_eq!(disk["commonAnnotations"], json!({"summary": "something broke"}));
    assert_eq!(disk["truncatedAlerts"], 0);
    assert_eq!(disk["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(disk["alerts"][0]["generatorURL"], "http://prom/graph");
    assert_eq!(disk["alerts"][0]["fingerprint"].as_str().unwrap().len(), 16);
    let cpu = got.iter().find(|p| p["groupLabels"]["alertname"] == "Cpu").unwrap();
    assert_eq!(alert_names(cpu), ["Cpu/a"]);
    let s = n.stats();
    assert_eq!(s.notifications_sent, 2);
    assert_eq!(s.notifications_failed, 0);
    assert_eq!(s.alerts_firing, 3);
    assert_eq!(s.receivers["web"].notifications_sent, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_wait_for_group_interval_then_resolved_is_sent() {
    let (hook, addr) = Hook::start().await;
    let dir = tempfile::tempdir().unwrap();
    let n = notifier(&config(&format!("http://{addr}"), TIMINGS), dir.path());
    n.push(vec![firing(&[("alertname", "Disk"), ("instance", "a")])]);
    wait_for(10, "first notification", || hook.count() == 1).await;
    // A new alert in a group that has already been notified.
    n.push(vec![firing(&[("alertname", "Disk"), ("instance", "b")])]);
    wait_for(10, "second notification", || hook.count() == 2).await;
    let got = hook.for_receiver("web");
    assert_eq!(alert_names(&got[0]), ["Disk/a"]);
    assert_eq!(alert_names(&got[1]), ["Disk/a", "Disk/b"]);
    // One resolves: the next message carries it as resolved, the group stays firing.
    n.push(vec![resolved(&[("alertname", "Disk"), ("instance", "a")])]);
    wait_for(10, "resolved notification", || hook.count() == 3).await;
    let third = &hook.for_receiver("web")[2];
    assert_eq!(third["status"], "firing");
    assert_eq!(third["alerts"][0]["status"], "resolved");
    assert_ne!(third["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(third["alerts"][1]["status"], "firing");
    // Resolved alerts leave the group once notified.
    n.push(vec![resolved(&[("alertname", "Disk"), ("instance", "b")])]);
    wait_for(10, "all resolved", || hook.count() == 4).await;
    let fourth = &hook.for_receiver("web")[3];
    assert_eq!(fourth["status"], "resolved");
    assert_eq!(alert_names(fourth), ["Disk/b"]);
    wait_for(10, "empty group removed", || n.stats().groups == 0).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(hook.count(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_group_repeats_after_repeat_interval() {
    let (hook, addr) = Hook::start().await;
    let dir = tempfile::tempdir().unwrap();
    let timings = "group_wait: 200ms\n  group_interval: 500ms\n  repeat_interval: 1s";
    let n = notifier(&config(&format!("http://{addr}"), timings), dir.path());
    n.push(vec![firing(&[("alertname", "Disk"), ("instance", "a")])]);
    wait_for(15, "three notifications", || hook.count() >= 3).await;
    let got = hook.for_receiver("web");
    for p in &got {
        assert_eq!(alert_names(p), ["Disk/a"]);
        assert_eq!(p["alerts"][0]["status"], "firing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_resolved_false_and_max_alerts() {
    let (hook, addr) = Hook::start().await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "route:\n  receiver: web\n  group_by: [alertname]\n  {TIMINGS}\nreceivers:\n  - name: web\n    webhook_configs:\n      - url: http://{addr}/quiet\n        send_resolved: false\n        max_alerts: 1\n"
    );
    let n = notifier(&yaml, dir.path());
    n.push(vec![firing(&[("alertname", "A"), ("instance", "1")]), firing(&[("alertname", "A"), ("instance", "2")])]);
    wait_for(10, "first", || hook.count() == 1).await;
    let first = &hook.all()[0].1;
    assert_eq!(alert_names(first), ["A/1"]);
    assert_eq!(first["truncatedAlerts"], 1);
    n.push(vec![
        resolved(&[("alertname", "A"), ("instance", "1")]),
        resolved(&[("alertname", "A"), ("instance", "2")]),
    ]);
    wait_for(10, "group removed", || n.stats().groups == 0).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(hook.count(), 1, "no resolved notice without send_resolved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_to_child_routes_with_continue() {
    let (hook, addr) = Hook::start().await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        r#"
route:
  receiver: default
  group_by: ['...']
  {TIMINGS}
  routes:
    - matchers: ['team="a"']
      receiver: team-a
      continue: true
    - matchers: ['team=~"a|b"']
      receiver: team-ab
      routes:
        - matchers: [severity=page]
          receiver: pager
    - matchers: ['team="b"']
      receiver: never
receivers:
  - name: default
    webhook_configs: [{{url: "http://{addr}/default"}}]
  - name: team-a
    webhook_configs: [{{url: "http://{addr}/team-a"}}]
  - name: team-ab
    webhook_configs: [{{url: "http://{addr}/team-ab"}}]
  - name: pager
    webhook_configs: [{{url: "http://{addr}/pager"}}]
  - name: never
    webhook_configs: [{{url: "http://{addr}/never"}}]
"#
    );
    let n = notifier(&yaml, dir.path());
    n.push(vec![
        firing(&[("alertname", "X"), ("team", "a")]),
        firing(&[("alertname", "Y"), ("team", "b")]),
        firing(&[("alertname", "Z"), ("team", "b"), ("severity", "page")]),
        firing(&[("alertname", "W"), ("team", "c")]),
    ]);
    wait_for(10, "five notifications", || hook.count() >= 5).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let names = |r: &str| -> Vec<String> { hook.for_receiver(r).iter().flat_map(alert_names).collect() };
    assert_eq!(names("team-a"), ["X"]);
    let mut ab = names("team-ab");
    ab.sort();
    assert_eq!(ab, ["X", "Y"]);
    assert_eq!(names("pager"), ["Z"]);
    assert_eq!(names("default"), ["W"]);
    assert!(names("never").is_empty(), "first match wins without continue");
    // Group keys name the route path, as Alertmanager's do.
    let pager = &hook.for_receiver("pager")[0];
    assert_eq!(pager["groupKey"], r#"{}/{team=~"a|b"}/{severity="page"}:{alertname="Z", severity="page", team="b"}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inhibition_mutes_targets_while_the_source_fires() {
    let (hook, addr) = Hook::start().await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        r#"
route:
  receiver: web
  group_by: ['...']
  {TIMINGS}
receivers:
  - name: web
    webhook_configs: [{{url: "http://{addr}/web"}}]
inhibit_rules:
  - source_matchers: [severity="critical"]
    target_matchers: [severity="warning"]
    equal: [cluster]
"#
    );
    let n = notifier(&yaml, dir.path());
    let router = n.router();
    let api = serve(router).await;
    n.push(vec![
        firing(&[("alertname", "Down"), ("severity", "critical"), ("cluster", "x")]),
        firing(&[("alertname", "Slow"), ("severity", "warning"), ("cluster", "x")]),
        firing(&[("alertname", "Slow"), ("severity", "warning"), ("cluster", "y")]),
    ]);
    wait_for(10, "two notifications", || hook.count() >= 2).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let labels_of = |p: &serde_json::Value| p["alerts"][0]["labels"].clone();
    let got: Vec<_> = hook.for_receiver("web").iter().map(labels_of).collect();
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(got.iter().any(|l| l["alertname"] == "Down"));
    assert!(got.iter().any(|l| l["alertname"] == "Slow" && l["cluster"] == "y"));
    // The API shows the muted one as suppressed by the source's fingerprint.
    let (_, alerts) = http("GET", &format!("http://{api}/api/v2/alerts?inhibited=false"), None).await;
    assert_eq!(alerts.as_array().unwrap().len(), 2);
    let (_, alerts) = http("GET", &format!("http://{api}/api/v2/alerts?filter=cluster%3D%22x%22"), None).await;
    let slow = alerts.as_array().unwrap().iter().find(|a| a["labels"]["alertname"] == "Slow").unwrap().clone();
    let down = alerts.as_array().unwrap().iter().find(|a| a["labels"]["alertname"] == "Down").unwrap().clone();
    assert_eq!(slow["status"]["state"], "suppressed");
    assert_eq!(slow["status"]["inhibitedBy"], json!([down["fingerprint"]]));
    // The source resolves: the target goes out.
    n.push(vec![resolved(&[("alertname", "Down"), ("severity", "critical"), ("cluster", "x")])]);
    wait_for(10, "target after source resolved", || {
        hook.for_receiver("web")
            .iter()
            .any(|p| p["alerts"][0]["labels"] == json!({"alertname": "Slow", "severity": "warning", "cluster": "x"}))
    })
    .await;
    wait_for(10, "source resolved notice", || {
        hook.for_receiver("web")
            .iter()
            .any(|p| p["alerts"][0]["labels"]["alertname"] == "Down" && p["status"] == "resolved")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silences_from_the_api_mute_until_expired() {
    let (hook, addr) = Hook::start().await;
    let dir = tempfile::tempdir().unwrap();
    let timings = "group_wait: 200ms\n  group_interval: 500ms\n  repeat_interval: 1h";
    let n = notifier(&config(&format!("http://{addr}"), timings), dir.path());
    let api = serve(n.router()).await;
    let start = now();
    let (status, body) = http(
        "POST",
        &format!("http://{api}/api/v2/silences"),
        Some(json!({
            "matchers": [{"name": "alertname", "value": "Quiet", "isRegex": false, "isEqual": true}],
            "startsAt": start.to_rfc3339(),
            "endsAt": (start + chrono::Duration::hours(1)).to_rfc3339(),
            "createdBy": "test",
            "comment": "maintenance",
        })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = body["silenceID"].as_str().unwrap().to_string();
    n.push(vec![firing(&[("alertname", "Quiet")]), firing(&[("alertname", "Loud")])]);
    wait_for(10, "loud alert", || hook.count() >= 1).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let got = hook.for_receiver("web");
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(alert_names(&got[0]), ["Loud"]);
    let (_, alerts) = http("GET", &format!("http://{api}/api/v2/alerts?silenced=false"), None).await;
    assert_eq!(alerts.as_array().unwrap().len(), 1);
    let (_, alerts) = http("GET", &format!("http://{api}/api/v2/alerts?active=false"), None).await;
    assert_eq!(alerts[0]["labels"]["alertname"], "Quiet");
    assert_eq!(alerts[0]["status"]["silencedBy"], json!([id]));
    assert_eq!(n.stats().silences_active, 1);
    // Expire it: the alert goes out at the group's next tick.
    let (status, _) = http("DELETE", &format!("http://{api}/api/v2/silence/{id}"), None).await;
    assert_eq!(status, 200);
    wait_for(10, "quiet alert after expiry", || hook.count() >= 2).await;
    assert_eq!(alert_names(&hook.for_receiver("web")[1]), ["Quiet"]);
    let (_, s) = http("GET", &format!("http://{api}/api/v2/silence/{id}"), None).await;
    assert_eq!(s["status"]["state"], "expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_resolved_notice_for_alerts_silenced_when_they_resolve() {
    let (hook, addr) = Hook::start().await;
    let dir = tempfile::tempdir().unwrap();
    let n = notifier(&config(&format!("http://{addr}"), TIMINGS), dir.path());
    let api = serve(n.router()).await;
    n.push(vec![firing(&[("alertname", "Flappy")])]);
    wait_for(10, "firing", || hook.count() == 1).await;
    let start = now();
    let (status, _) = http(
        "POST",
        &format!("http://{api}/api/v2/silences"),
        Some(json!({
            "matchers": [{"name": "alertname", "value": "Flap.*", "isRegex": true}],
            "startsAt": start.to_rfc3339(),
            "endsAt": (start + chrono::Duration::hours(1)).to_rfc3339(),
            "createdBy": "test", "comment": "c",
        })),
    )
    .await;
    assert_eq!(status, 200);
    n.push(vec![resolved(&[("alertname", "Flappy")])]);
    wait_for(10, "group removed", || n.stats().groups == 0).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(hook.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_until_a_down_receiver_comes_back() {
    // A port with nothing listening: connection refused.
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = reserved.local_addr().unwrap();
    drop(reserved);
    let dir = tempfile::tempdir().unwrap();
    let timings = "group_wait: 100ms\n  group_interval: 10m\n  repeat_interval: 1h";
    let n = notifier(&config(&format!("http://{addr}"), timings), dir.path());
    n.push(vec![firing(&[("alertname", "Disk"), ("instance", "a")])]);
    wait_for(10, "failed attempts", || n.stats().notifications_failed >= 2).await;
    assert_eq!(n.stats().notifications_sent, 0);
    // Up, but failing with 500: still retried.
    let hook = common::Hook::default();
    hook.status.store(500, std::sync::atomic::Ordering::SeqCst);
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    hook.serve(listener);
    wait_for(15, "a 500 answer", || hook.requests.load(std::sync::atomic::Ordering::SeqCst) >= 1).await;
    // The hook has answered; the notifier counts the failure right after.
    wait_for(10, "the 500 counted", || n.stats().notifications_failed >= 3).await;
    let failed = n.stats().notifications_failed;
    // Healthy again: the retry delivers (group_interval is 10m, so it is the retry).
    hook.status.store(200, std::sync::atomic::Ordering::SeqCst);
    wait_for(30, "delivery", || hook.count() == 1).await;
    assert_eq!(alert_names(&hook.all()[0].1), ["Disk/a"]);
    // The hook has the request; the notifier counts the delivery once the answer is back.
    wait_for(10, "the delivery counted", || n.stats().notifications_sent >= 1).await;
    let s = n.stats();
    assert_eq!(s.notifications_sent, 1);
    assert!(s.notifications_failed >= failed && failed >= 3, "{s:?}");
    assert_eq!(s.receivers["web"].notifications_sent, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_notification_supersedes_a_failing_one() {
    let (hook, addr) = Hook::start().await;
    hook.status.store(503, std::sync::atomic::Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let n = notifier(&config(&format!("http://{addr}"), TIMINGS), dir.path());
    n.push(vec![firing(&[("alertname", "Disk"), ("instance", "a")])]);
    wait_for(10, "a failure", || n.stats().notifications_failed >= 1).await;
    n.push(vec![firing(&[("alertname", "Disk"), ("instance", "b")])]);
    wait_for(10, "superseded", || n.stats().notifications_superseded >= 1).await;
    hook.status.store(200, std::sync::atomic::Ordering::SeqCst);
    wait_for(15, "delivery of both", || {
        hook.for_receiver("web").iter().any(|p| alert_names(p) == ["Disk/a", "Disk/b"])
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silences_survive_restart() {
    let (hook, addr) = Hook::start().await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = config(&format!("http://{addr}"), TIMINGS);
    let id = {
        let n = notifier(&yaml, dir.path());
        let api = serve(n.router()).await;
        let start = now();
        let (status, body) = http(
            "POST",
            &format!("http://{api}/api/v2/silences"),
            Some(json!({
                "matchers": [{"name": "alertname", "value": "Quiet", "isRegex": false}],
                "startsAt": start.to_rfc3339(),
                "endsAt": (start + chrono::Duration::hours(1)).to_rfc3339(),
                "createdBy": "test", "comment": "persist me",
            })),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        n.stop();
        body["silenceID"].as_str().unwrap().to_string()
    };
    let n = notifier(&yaml, dir.path());
    let api = serve(n.router()).await;
    let (_, list) = http("GET", &format!("http://{api}/api/v2/silences"), None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], id);
    assert_eq!(list[0]["comment"], "persist me");
    assert_eq!(list[0]["status"]["state"], "active");
    assert_eq!(list[0]["matchers"][0]["isEqual"], true);
    n.push(vec![firing(&[("alertname", "Quiet")]), firing(&[("alertname", "Loud")])]);
    wait_for(10, "loud", || hook.count() >= 1).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(hook.count(), 1);
    assert_eq!(alert_names(&hook.all()[0].1), ["Loud"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_without_ends_at_resolve_after_resolve_timeout() {
    let (hook, addr) = Hook::start().await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!("global:\n  resolve_timeout: 1s\n{}", config(&format!("http://{addr}"), TIMINGS));
    let n = notifier(&yaml, dir.path());
    n.push(vec![firing(&[("alertname", "Gone")])]);
    wait_for(10, "firing", || hook.count() == 1).await;
    // Never re-sent: it times out and a resolved notice follows.
    wait_for(10, "resolved", || hook.count() == 2).await;
    assert_eq!(hook.all()[1].1["status"], "resolved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_keeps_what_was_notified() {
    let (hook, addr) = Hook::start().await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = config(&format!("http://{addr}"), TIMINGS);
    let n = notifier(&yaml, dir.path());
    n.push(vec![firing(&[("alertname", "Disk")])]);
    wait_for(10, "firing", || hook.count() == 1).await;
    n.reload(wasmon_notify::Config::from_yaml(&yaml).unwrap()).unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(hook.count(), 1, "no duplicate after reload");
    let mut bad = wasmon_notify::Config::from_yaml(&yaml).unwrap();
    bad.route.receiver = Some("nope".into());
    let err = n.reload(bad).unwrap_err();
    assert!(err.to_string().contains("route.receiver: unknown receiver \"nope\""), "{err}");
}
