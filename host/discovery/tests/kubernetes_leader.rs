//! Leader election on a Lease, against the fake API server.

mod kubernetes_common;

use kubernetes_common::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmon_discovery::kubernetes::{LeaderElectionConfig, LeaderElector};

fn fast(identity: &str) -> LeaderElectionConfig {
    let mut c = LeaderElectionConfig::new("wasmon", "kube-state", identity);
    c.lease_duration = Duration::from_secs(2);
    c.renew_deadline = Duration::from_millis(1200);
    c.retry_period = Duration::from_millis(150);
    c
}

async fn electors(server: &FakeApiServer, n: usize) -> Vec<Option<LeaderElector>> {
    let mut out = Vec::new();
    for i in 0..n {
        let client = client(server).await;
        out.push(Some(LeaderElector::start(client, fast(&format!("agent-{i}"))).expect("valid config")));
    }
    out
}

fn leaders(es: &[Option<LeaderElector>]) -> Vec<usize> {
    es.iter().enumerate().filter(|(_, e)| e.as_ref().is_some_and(|e| e.leading())).map(|(i, _)| i).collect()
}

/// Watch every running elector and flag any moment with two leaders.
fn monitor(es: &[Option<LeaderElector>]) -> (Arc<AtomicBool>, tokio::task::JoinHandle<()>) {
    let two = Arc::new(AtomicBool::new(false));
    let rxs: Vec<_> = es.iter().flatten().map(|e| e.is_leader()).collect();
    let flag = two.clone();
    let task = tokio::spawn(async move {
        loop {
            let alive: Vec<bool> = rxs.iter().map(|r| *r.borrow()).collect();
            if alive.iter().filter(|l| **l).count() > 1 {
                flag.store(true, Ordering::SeqCst);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    (two, task)
}

async fn one_leader(es: &[Option<LeaderElector>]) -> usize {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let l = leaders(es);
        assert!(l.len() <= 1, "two leaders: {l:?}");
        if l.len() == 1 {
            return l[0];
        }
        assert!(tokio::time::Instant::now() < deadline, "no leader elected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn lease(server: &FakeApiServer) -> serde_json::Value {
    server.get("leases", "wasmon", "kube-state").expect("the lease exists")
}

#[tokio::test]
async fn three_candidates_elect_exactly_one() {
    let server = fake().await;
    let es = electors(&server, 3).await;
    let (two, mon) = monitor(&es);
    let leader = one_leader(&es).await;
    // Stays stable over several renewals.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(leaders(&es), [leader]);
    mon.abort();
    assert!(!two.load(Ordering::SeqCst), "two leaders at once");
    let l = lease(&server);
    assert_eq!(l["spec"]["holderIdentity"], format!("agent-{leader}"));
    assert_eq!(l["spec"]["leaseDurationSeconds"], 2);
    assert_eq!(l["spec"]["leaseTransitions"], 0);
    assert!(l["spec"]["acquireTime"].is_string() && l["spec"]["renewTime"].is_string());
}

#[tokio::test]
async fn crashed_leader_is_replaced_after_the_lease_expires() {
    let server = fake().await;
    let mut es = electors(&server, 3).await;
    let first = one_leader(&es).await;
    // Crash: dropped without releasing.
    es[first] = None;
    let crashed_at = tokio::time::Instant::now();
    let (two, mon) = monitor(&es);
    let second = one_leader(&es).await;
    assert_ne!(second, first);
    // Nobody may take over before the lease has run out (2 s): generous
    // lower bound only, no upper bound on timing.
    assert!(crashed_at.elapsed() >= Duration::from_millis(1500), "took over a live lease");
    mon.abort();
    assert!(!two.load(Ordering::SeqCst));
    let l = lease(&server);
    assert_eq!(l["spec"]["holderIdentity"], format!("agent-{second}"));
    assert_eq!(l["spec"]["leaseTransitions"], 1);
}

#[tokio::test]
async fn graceful_release_hands_over_at_once() {
    let server = fake().await;
    // A lease far longer than the test may wait: a takeover can only come
    // from the release, not from expiry.
    let mut es = Vec::new();
    for i in 0..2 {
        let mut c = fast(&format!("agent-{i}"));
        c.lease_duration = Duration::from_secs(120);
        es.push(Some(LeaderElector::start(client(&server).await, c).expect("valid config")));
    }
    let first = one_leader(&es).await;
    if let Some(e) = es[first].take() {
        e.shutdown().await;
    }
    assert_eq!(lease(&server)["spec"]["holderIdentity"], "", "released");
    let second = one_leader(&es).await;
    assert_ne!(second, first);
    assert_eq!(lease(&server)["spec"]["leaseTransitions"], 1);
}

#[tokio::test]
async fn conflicts_on_renewal_are_retried_without_losing_leadership() {
    let server = fake().await;
    let es = electors(&server, 1).await;
    one_leader(&es).await;
    let mut rx = es[0].as_ref().map(|e| e.is_leader()).expect("elector");
    rx.mark_unchanged();
    // Three rounds of 409 take well under the renew deadline.
    server.force_conflicts(3);
    eventually("the conflicts to be used up", || server.forced_conflicts_left() == 0).await;
    let before = lease(&server)["spec"]["renewTime"].clone();
    eventually("a renewal after the conflicts", || lease(&server)["spec"]["renewTime"] != before).await;
    assert!(!rx.has_changed().expect("elector alive"), "leadership flapped");
    assert_eq!(leaders(&es), [0]);
}

#[tokio::test]
async fn leader_steps_down_when_it_cannot_renew() {
    let server = fake().await;
    let es = electors(&server, 1).await;
    one_leader(&es).await;
    // Every renewal fails for longer than the renew deadline.
    server.force_conflicts(1_000_000);
    let mut rx = es[0].as_ref().map(|e| e.is_leader()).expect("elector");
    tokio::time::timeout(WAIT, rx.wait_for(|l| !*l)).await.expect("stepped down").expect("alive");
    server.force_conflicts(0);
    one_leader(&es).await;
}

#[tokio::test]
async fn fake_server_rejects_stale_lease_updates_with_409() {
    let server = fake().await;
    let client = client(&server).await;
    let api: kube::Api<k8s_openapi::api::coordination::v1::Lease> = kube::Api::namespaced(client, "wasmon");
    let mut lease = k8s_openapi::api::coordination::v1::Lease::default();
    lease.metadata.name = Some("x".into());
    let created = api.create(&Default::default(), &lease).await.expect("create");
    api.replace("x", &Default::default(), &created).await.expect("first replace");
    let err = api.replace("x", &Default::default(), &created).await.expect_err("stale replace");
    assert!(matches!(err, kube::Error::Api(s) if s.code == 409 && s.reason == "Conflict"));
    let err = api.create(&Default::default(), &lease).await.expect_err("duplicate create");
    assert!(matches!(err, kube::Error::Api(s) if s.code == 409));
    api.delete("x", &Default::default()).await.expect("delete");
    assert!(api.get_opt("x").await.expect("get").is_none());
}
