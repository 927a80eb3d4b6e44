//! The kube-state plugin end to end: the agent's watches against the
//! in-process fake API server feed a long-lived plugin instance, `/metrics`
//! and the store follow object changes, secrets never leak, and with
//! leader election exactly one of two agents reports, failing over when
//! the leader dies.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Agent, eventually};
use serde_json::Value;
use std::time::Duration;
use wasmon_kube_fake::FakeApiServer;
use wasmon_kube_fake::fixtures::{fixture, renamed, set};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// One object of each kind the fixtures have.
fn load_fixtures(api: &FakeApiServer) {
    for (resource, file) in [
        ("pods", "pod"),
        ("nodes", "node"),
        ("deployments", "deployment"),
        ("daemonsets", "daemonset"),
        ("statefulsets", "statefulset"),
        ("jobs", "job"),
        ("services", "service"),
        ("namespaces", "namespace"),
        ("configmaps", "configmap"),
        ("secrets", "secret"),
        ("persistentvolumes", "persistentvolume"),
        ("persistentvolumeclaims", "persistentvolumeclaim"),
        ("horizontalpodautoscalers", "horizontalpodautoscaler"),
    ] {
        api.apply(resource, fixture(file)).unwrap_or_else(|e| panic!("{file}: {e:?}"));
    }
}

fn job(api: &FakeApiServer, extra: &str) -> String {
    format!(
        "global: {{scrape_interval: 1s, scrape_timeout: 1s}}
scrape_configs:
  - job_name: kube-state
    plugin: {}
    kubernetes:
      api_server: '{}'
{extra}",
        common::plugin("wasmon_kube_state").display(),
        api.url()
    )
}

fn metrics_text(agent: &Agent) -> String {
    agent.get("/metrics")
}

/// `kube_pod_status_phase` of `pod` with value 1, as `/metrics` shows it.
fn pod_phase(text: &str, pod: &str) -> Option<String> {
    text.lines()
        .filter(|l| l.starts_with("kube_pod_status_phase{") && l.contains(&format!("pod=\"{pod}\"")))
        .find(|l| l.ends_with(" 1"))
        .and_then(|l| l.split("phase=\"").nth(1))
        .map(|rest| rest.split('"').next().unwrap_or_default().to_string())
}

#[test]
fn kube_state_follows_objects_and_never_shows_secret_data() {
    let rt = runtime();
    let api = rt.block_on(FakeApiServer::start()).unwrap();
    load_fixtures(&api);
    let agent = Agent::start(&job(&api, ""));

    let text = eventually(Duration::from_secs(60), || {
        let text = metrics_text(&agent);
        pod_phase(&text, "nginx").map(|_| text)
    })
    .unwrap_or_else(|| panic!("no kube_pod_status_phase for the fixture pod:\n{}", agent.log_text()));
    assert_eq!(pod_phase(&text, "nginx").as_deref(), Some("Running"));
    for family in [
        "kube_pod_info",
        "kube_node_info",
        "kube_deployment_spec_replicas",
        "kube_secret_info",
        "kube_namespace_status_phase",
    ] {
        assert!(text.contains(&format!("\n{family}{{")), "{family} missing from /metrics");
    }
    // The fixture secret's values (and its last-applied annotation holding
    // them) never reach the plugin, so never the output.
    for secret in ["YnVtYmxlYmVldHVuYQo=", "ZmVybmFuZAo="] {
        assert!(!text.contains(secret), "secret value in /metrics");
    }
    assert!(text.contains("up{instance="), "the job reports as one target");

    // A second pod appears, the first one fails, then goes.
    let mut other = renamed(&fixture("pod"), "default", "worker");
    set(&mut other, "/status/phase", "Pending");
    api.apply("pods", other).unwrap();
    let mut failed = fixture("pod");
    set(&mut failed, "/status/phase", "Failed");
    api.apply("pods", failed).unwrap();
    eventually(Duration::from_secs(30), || {
        let text = metrics_text(&agent);
        (pod_phase(&text, "worker").as_deref() == Some("Pending")
            && pod_phase(&text, "nginx").as_deref() == Some("Failed"))
        .then_some(())
    })
    .unwrap_or_else(|| panic!("phases did not follow:\n{}", metrics_text(&agent)));
    assert!(api.delete("pods", "default", "nginx"));
    eventually(Duration::from_secs(30), || pod_phase(&metrics_text(&agent), "nginx").is_none().then_some(()))
        .unwrap_or_else(|| panic!("deleted pod still reported"));

    // A broken watch and a compacted history (410 on resume): re-listed,
    // and what changed meanwhile is there, nothing twice.
    api.pause_watches();
    let mut late = renamed(&fixture("pod"), "default", "late");
    set(&mut late, "/status/phase", "Succeeded");
    api.apply("pods", late).unwrap();
    api.compact();
    api.break_watches();
    api.resume_watches();
    let text = eventually(Duration::from_secs(60), || {
        let text = metrics_text(&agent);
        (pod_phase(&text, "late").as_deref() == Some("Succeeded")).then_some(text)
    })
    .unwrap_or_else(|| panic!("re-list missed the late pod:\n{}", agent.log_text()));
    let infos = text.lines().filter(|l| l.starts_with("kube_pod_info{") && l.contains("pod=\"worker\"")).count();
    assert_eq!(infos, 1, "one series per pod after a re-list");
    drop(api);
}

fn leader_gauge(agent: &Agent) -> Option<f64> {
    common::value(&agent.metrics(), "wasmon_kube_state_leader", &[("job", "kube-state")])
}

fn reports(agent: &Agent) -> bool {
    metrics_text(agent).contains("\nkube_pod_info{")
}

/// Output over `body_size_limit` fails that scrape with the reason; it is
/// not a trap, so the instance (and its state) stays.
#[test]
fn output_over_body_size_limit_fails_the_scrape_alone() {
    let rt = runtime();
    let api = rt.block_on(FakeApiServer::start()).unwrap();
    load_fixtures(&api);
    let agent = Agent::start(&job(&api, "    body_size_limit: 2KiB\n"));
    let failures = || {
        common::value(
            &agent.metrics(),
            "wasmon_scrape_failures_total",
            &[("job", "kube-state"), ("reason", "body_size_limit")],
        )
    };
    eventually(Duration::from_secs(60), || failures().filter(|n| *n >= 1.0))
        .unwrap_or_else(|| panic!("no body_size_limit failure:\n{}", agent.log_text()));
    let metrics = agent.metrics();
    assert_eq!(common::value(&metrics, "up", &[("job", "kube-state")]), Some(0.0));
    assert!(pod_phase(&metrics_text(&agent), "nginx").is_none(), "no kube-state series from a refused collect");
    let log = agent.log_text();
    assert!(log.contains("collect wrote more than 2048 bytes of text"), "{log}");
    let traps: Vec<f64> = metrics
        .iter()
        .filter(|f| f.name == "wasmon_plugin_traps_total")
        .flat_map(|f| f.metrics.iter())
        .filter_map(|m| match m.value {
            wasmon_sdk::MetricValue::Counter(v) | wasmon_sdk::MetricValue::Gauge(v) => Some(v),
            _ => None,
        })
        .collect();
    assert!(!traps.is_empty() && traps.iter().all(|&v| v == 0.0), "not a trap: {traps:?}\n{log}");
    assert!(!log.contains("restarting the plugin instance"), "{log}");
}

#[test]
fn leader_election_keeps_one_reporter_and_fails_over() {
    let rt = runtime();
    let api = rt.block_on(FakeApiServer::start()).unwrap();
    load_fixtures(&api);
    let election = |who: &str| {
        format!(
            "      leader_election: {{lease_name: wasmon-kube-state, lease_namespace: default, identity: {who}, lease_duration: 3s, renew_deadline: 2s, retry_period: 500ms}}\n"
        )
    };
    let mut agents: Vec<Agent> =
        ["agent-a", "agent-b"].iter().map(|who| Agent::start(&job(&api, &election(who)))).collect();

    // Exactly one leads and reports; the other stands by with no series.
    let leader = eventually(Duration::from_secs(60), || {
        let states: Vec<(Option<f64>, bool)> = agents.iter().map(|a| (leader_gauge(a), reports(a))).collect();
        match states.as_slice() {
            [(Some(l0), r0), (Some(l1), r1)] if l0 + l1 == 1.0 && (*r0 as u8 + *r1 as u8) == 1 => {
                Some(if *l0 == 1.0 { 0 } else { 1 })
            }
            _ => None,
        }
    })
    .unwrap_or_else(|| panic!("no single leader: {:?}", agents.iter().map(leader_gauge).collect::<Vec<_>>()));
    let follower = 1 - leader;
    assert!(reports(&agents[leader]) && !reports(&agents[follower]));
    let lease: Value = api.get("leases", "default", "wasmon-kube-state").expect("the lease exists");
    assert!(lease["spec"]["holderIdentity"].is_string(), "{lease}");

    // The leader dies without releasing the lease: the other takes over
    // once the lease expires, and reports after its own re-list.
    agents[leader].kill_9();
    eventually(Duration::from_secs(30), || {
        (leader_gauge(&agents[follower]) == Some(1.0) && reports(&agents[follower])).then_some(())
    })
    .unwrap_or_else(|| panic!("no fail-over:\n{}", agents[follower].log_text()));
    let lease = api.get("leases", "default", "wasmon-kube-state").unwrap();
    assert!(lease["spec"]["leaseTransitions"].as_i64().unwrap_or(0) >= 1, "{lease}");
    agents.clear();
    drop(api);
}
