//! Kubernetes discovery end to end: the agent's real `kube` client against
//! the in-process fake API server (real object JSON, lists and watch
//! streams), pods annotated `prometheus.io/*` scraped natively, and the
//! targets following the pods as they change.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Agent, FakeExporter, eventually};
use serde_json::{Value, json};
use std::time::Duration;
use wasmon_kube_fake::FakeApiServer;
use wasmon_kube_fake::fixtures::{pod, set};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn exporter(ip: &str, name: &'static str) -> FakeExporter {
    FakeExporter::start_on(ip, move |_, _| {
        (
            200,
            vec![("Content-Type".into(), "text/plain".into())],
            format!("app_ready{{app=\"{name}\"}} 1\n").into_bytes(),
        )
    })
}

/// A pod annotated for scraping on `port`.
fn annotated_pod(name: &str, ip: &str, port: u16) -> Value {
    let mut p = pod("shop", name, "node-a", ip);
    set(
        &mut p,
        "/metadata/annotations",
        json!({"prometheus.io/scrape": "true", "prometheus.io/port": port.to_string()}),
    );
    p
}

fn active(agent: &Agent) -> Vec<Value> {
    agent.targets()["data"]["activeTargets"].as_array().cloned().unwrap_or_default()
}

fn query(agent: &Agent, q: &str) -> Vec<Value> {
    let q = form_urlencoded::Serializer::new(String::new()).append_pair("query", q).finish();
    let v: Value = serde_json::from_str(&agent.get(&format!("/api/v1/query?{q}"))).unwrap();
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

#[test]
fn pod_targets_follow_pods_and_their_annotations() {
    let rt = runtime();
    let api = rt.block_on(FakeApiServer::start()).unwrap();
    let (first, moved) = (exporter("127.0.0.1", "first"), exporter("127.0.0.2", "moved"));
    api.apply("pods", annotated_pod("cart-1", "127.0.0.1", first.port())).unwrap();
    api.apply("pods", pod("shop", "quiet", "node-a", "127.0.0.1")).unwrap();
    let agent = Agent::start(&format!(
        "global: {{scrape_interval: 1s, scrape_timeout: 1s}}
scrape_configs:
  - job_name: pods
    kubernetes_sd_configs: [{{role: pod, api_server: '{}'}}]
    use_prometheus_io_annotations: true
",
        api.url()
    ));

    // The annotated pod is a target, scraped at its annotation's port.
    let target = eventually(Duration::from_secs(30), || active(&agent).into_iter().find(|t| t["health"] == "up"))
        .unwrap_or_else(|| panic!("no pod target up: {}\n{}", agent.targets(), agent.log_text()));
    assert_eq!(target["labels"]["pod"], "cart-1");
    assert_eq!(target["labels"]["namespace"], "shop");
    assert_eq!(target["scrapeUrl"], format!("http://127.0.0.1:{}/metrics", first.port()));
    assert_eq!(target["discoveredLabels"]["__meta_kubernetes_pod_name"], "cart-1");
    assert_eq!(active(&agent).len(), 1, "one target per pod even with several container ports");
    // The other one is dropped, and says by what.
    let dropped = agent.targets()["data"]["droppedTargets"].clone();
    let quiet = dropped
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["discoveredLabels"]["__meta_kubernetes_pod_name"] == "quiet")
        .unwrap_or_else(|| panic!("quiet pod not among dropped targets: {dropped}"));
    assert!(
        quiet["dropReason"].as_str().unwrap().starts_with(
            "use_prometheus_io_annotations (action keep on [__meta_kubernetes_pod_annotation_prometheus_io_scrape]"
        ),
        "{quiet}"
    );

    // The pod's IP changes (a reschedule): the target moves with it.
    api.apply("pods", annotated_pod("cart-1", "127.0.0.2", moved.port())).unwrap();
    eventually(Duration::from_secs(30), || {
        let targets = active(&agent);
        (targets.len() == 1
            && targets[0]["scrapeUrl"] == format!("http://127.0.0.2:{}/metrics", moved.port())
            && targets[0]["health"] == "up")
            .then_some(())
    })
    .unwrap_or_else(|| panic!("target did not move: {}", agent.targets()));
    eventually(Duration::from_secs(10), || (query(&agent, "app_ready{app=\"moved\"}").len() == 1).then_some(()))
        .expect("the moved pod's series");
    // The old address's series end with the old target.
    eventually(Duration::from_secs(10), || query(&agent, "app_ready{app=\"first\"}").is_empty().then_some(()))
        .expect("the old target's series go stale");

    // Deleted: no target, and its series go stale.
    assert!(api.delete("pods", "shop", "cart-1"));
    eventually(Duration::from_secs(30), || active(&agent).is_empty().then_some(()))
        .unwrap_or_else(|| panic!("deleted pod still a target: {}", agent.targets()));
    eventually(Duration::from_secs(10), || query(&agent, "up{job=\"pods\"}").is_empty().then_some(()))
        .unwrap_or_else(|| panic!("up of the deleted pod not stale: {:?}", query(&agent, "up{job=\"pods\"}")));

    // A broken watch is re-listed, and a new pod still shows up.
    api.break_watches();
    api.apply("pods", annotated_pod("cart-2", "127.0.0.1", first.port())).unwrap();
    eventually(Duration::from_secs(30), || {
        active(&agent).iter().any(|t| t["labels"]["pod"] == "cart-2" && t["health"] == "up").then_some(())
    })
    .unwrap_or_else(|| panic!("cart-2 not discovered after the watch broke: {}", agent.targets()));
    drop(api);
}

#[test]
fn targets_command_lists_kubernetes_targets() {
    let rt = runtime();
    let api = rt.block_on(FakeApiServer::start()).unwrap();
    api.apply("pods", annotated_pod("cart-1", "127.0.0.1", 9102)).unwrap();
    api.apply("pods", pod("shop", "quiet", "node-a", "127.0.0.1")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("wasmon.yaml");
    std::fs::write(
        &config,
        format!(
            "scrape_configs:\n  - job_name: pods\n    kubernetes_sd_configs: [{{role: pod, api_server: '{}'}}]\n    use_prometheus_io_annotations: true\n",
            api.url()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wasmon"))
        .args(["targets", "--wait", "5s", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("job pods (native scrape): 1 active,"), "{text}");
    assert!(text.contains("active   http://127.0.0.1:9102/metrics"), "{text}");
    assert!(text.contains("by use_prometheus_io_annotations (action keep"), "{text}");
    drop(api);
}
