//! Kubernetes discovery against the in-process fake API server: the real
//! kube client and watcher, real object JSON, watch breaks and 410s.

mod kubernetes_common;

use kubernetes_common::*;
use std::time::Duration;
use wasmon_discovery::kubernetes::{KubernetesSdConfig, Role, Selector};

const ADDR: &str = "__address__";

fn addresses(sd: &Sd, source: &str) -> Vec<String> {
    let mut a: Vec<String> =
        sd.groups.get(source).map(|g| g.targets.iter().map(|t| t[ADDR].clone()).collect()).unwrap_or_default();
    a.sort();
    a
}

#[tokio::test]
async fn pod_added_moved_and_deleted() {
    let server = fake().await;
    server.apply("pods", fixtures::pod("default", "a", "n1", "10.0.0.1")).unwrap();
    let mut sd = Sd::start(&server, KubernetesSdConfig::new(Role::Pod)).await;
    sd.until("initial pod", |g| g.contains_key("pod/default/a")).await;
    assert_eq!(addresses(&sd, "pod/default/a"), ["10.0.0.1:80"]);

    // Added while watching: arrives with the watch event.
    server.apply("pods", fixtures::pod("default", "b", "n1", "10.0.0.2")).unwrap();
    sd.until("pod b", |g| g.contains_key("pod/default/b")).await;

    // IP change: the target moves.
    server.apply("pods", fixtures::pod("default", "b", "n1", "10.0.0.9")).unwrap();
    sd.until("pod b moved", |g| g["pod/default/b"].targets[0][ADDR] == "10.0.0.9:80").await;

    // Deleted: its group is sent empty.
    let before = sd.log.len();
    server.delete("pods", "default", "b");
    sd.until("pod b gone", |g| !g.contains_key("pod/default/b")).await;
    let removal = &sd.log[before..];
    assert_eq!(removal.len(), 1);
    assert_eq!(removal[0].source, "pod/default/b");
    assert!(removal[0].targets.is_empty());
}

#[tokio::test]
async fn broken_watch_resumes_without_duplicates() {
    let server = fake().await;
    server.load_synthetic_pods(50, 5).unwrap();
    let mut sd = Sd::start(&server, KubernetesSdConfig::new(Role::Pod)).await;
    sd.until("50 pods", |g| g.len() == 50).await;
    let lists = server.list_requests("pods");
    let watches = server.watch_requests("pods");

    server.break_watches();
    eventually("a new watch", || server.watch_requests("pods") > watches).await;
    // The watch resumed from its last resourceVersion: no re-list, and
    // nothing is sent again.
    assert!(sd.drain(Duration::from_millis(300)).await.is_empty());
    assert_eq!(server.list_requests("pods"), lists);

    // And it still delivers new changes.
    server.delete("pods", "ns-3", "pod-3");
    sd.until("pod-3 removed", |g| !g.contains_key("pod/ns-3/pod-3")).await;
}

#[tokio::test]
async fn gone_410_relists_and_sends_only_real_changes() {
    let server = fake().await;
    server.set_bookmark_interval(None);
    server.load_synthetic_pods(20, 2).unwrap();
    let mut sd = Sd::start(&server, KubernetesSdConfig::new(Role::Pod)).await;
    sd.until("20 pods", |g| g.len() == 20).await;
    let lists = server.list_requests("pods");

    // An outage during which one pod goes, one moves and one is added,
    // and the history is compacted: the watch must re-list.
    server.pause_watches();
    server.delete("pods", "ns-1", "pod-1");
    server.apply("pods", fixtures::pod("ns-2", "pod-2", "node-0", "10.9.9.9")).unwrap();
    server.apply("pods", fixtures::pod("ns-5", "fresh", "node-0", "10.9.9.10")).unwrap();
    server.compact();
    server.resume_watches();

    sd.until("changes after the re-list", |g| {
        !g.contains_key("pod/ns-1/pod-1")
            && g.get("pod/ns-2/pod-2").is_some_and(|p| p.targets[0][ADDR] == "10.9.9.9:80")
            && g.contains_key("pod/ns-5/fresh")
    })
    .await;
    assert!(server.list_requests("pods") > lists, "a 410 must cause a re-list");
    let mut sources: Vec<String> = sd.log[20..].iter().map(|g| g.source.clone()).collect();
    sources.extend(sd.drain(Duration::from_millis(300)).await.into_iter().map(|g| g.source));
    sources.sort();
    assert_eq!(sources, ["pod/ns-1/pod-1", "pod/ns-2/pod-2", "pod/ns-5/fresh"], "only real changes");
}

#[tokio::test]
async fn bookmarks_are_accepted_and_keep_the_watch_resumable() {
    let server = fake().await;
    server.set_bookmark_interval(Some(Duration::from_millis(50)));
    server.apply("pods", fixtures::pod("default", "a", "n1", "10.0.0.1")).unwrap();
    let mut sd = Sd::start(&server, KubernetesSdConfig::new(Role::Pod)).await;
    sd.until("pod a", |g| g.contains_key("pod/default/a")).await;
    // Changes elsewhere move the global resourceVersion on; bookmarks
    // carry it to the pod watch.
    for i in 0..5 {
        server
            .apply("services", fixtures::renamed(&fixtures::fixture("service"), "default", &format!("s{i}")))
            .unwrap();
    }
    let sent = server.bookmarks_sent();
    eventually("two more bookmarks", || server.bookmarks_sent() >= sent + 2).await;
    // Compacting now only breaks watches that are behind the bookmark.
    let lists = server.list_requests("pods");
    server.compact();
    server.break_watches();
    server.apply("pods", fixtures::pod("default", "b", "n1", "10.0.0.2")).unwrap();
    sd.until("pod b", |g| g.contains_key("pod/default/b")).await;
    assert_eq!(server.list_requests("pods"), lists, "resumed from the bookmark without a re-list");
}

#[tokio::test]
async fn field_selector_restricts_pods_to_one_node() {
    let server = fake().await;
    server.load_synthetic_pods(30, 3).unwrap();
    let mut cfg = KubernetesSdConfig::new(Role::Pod);
    cfg.selectors.push(Selector { role: Role::Pod, label: None, field: Some("spec.nodeName=node-1".into()) });
    let mut sd = Sd::start(&server, cfg).await;
    sd.until("node-1's pods", |g| g.len() == 10).await;
    assert!(sd.groups.values().all(|g| g.labels["__meta_kubernetes_pod_node_name"] == "node-1"));
    // A pod scheduled onto the node later appears; one on another does not.
    server.apply("pods", fixtures::pod("default", "late", "node-1", "10.0.0.5")).unwrap();
    server.apply("pods", fixtures::pod("default", "other", "node-2", "10.0.0.6")).unwrap();
    sd.until("late pod", |g| g.contains_key("pod/default/late")).await;
    assert!(!sd.groups.contains_key("pod/default/other"));
}

#[tokio::test]
async fn label_selector_and_namespaces_are_honoured() {
    let server = fake().await;
    server.load_synthetic_pods(100, 2).unwrap();
    let mut cfg = KubernetesSdConfig::new(Role::Pod);
    cfg.namespaces.names = vec!["ns-1".into(), "ns-2".into()];
    cfg.selectors.push(Selector { role: Role::Pod, label: Some("app in (app-1,app-2,app-12)".into()), field: None });
    let mut sd = Sd::start(&server, cfg).await;
    // app-1 → pods 1, 101..; in ns-1: pod-1, pod-11?  pod i has ns-(i%10), app-(i%100).
    sd.until("selected pods", |g| g.len() == 3).await;
    let mut got: Vec<&String> = sd.groups.keys().collect();
    got.sort();
    assert_eq!(got, ["pod/ns-1/pod-1", "pod/ns-2/pod-12", "pod/ns-2/pod-2"]);
    // A relabel out of the selection is a removal.
    let mut p = server.get("pods", "ns-2", "pod-12").unwrap();
    fixtures::set(&mut p, "/metadata/labels/app", "other");
    server.apply("pods", p).unwrap();
    sd.until("pod-12 deselected", |g| !g.contains_key("pod/ns-2/pod-12")).await;
}

#[tokio::test]
async fn own_namespace_is_watched() {
    let server = fake().await;
    server.apply("pods", fixtures::pod("agent-ns", "me", "n1", "10.0.0.1")).unwrap();
    server.apply("pods", fixtures::pod("default", "not-me", "n1", "10.0.0.2")).unwrap();
    let mut cfg = KubernetesSdConfig::new(Role::Pod);
    cfg.namespaces.own_namespace = true;
    cfg.own_namespace_name = Some("agent-ns".into());
    let mut sd = Sd::start(&server, cfg).await;
    sd.until("own pod", |g| g.contains_key("pod/agent-ns/me")).await;
    assert!(sd.drain(Duration::from_millis(200)).await.is_empty());
    assert_eq!(sd.groups.len(), 1);
}

#[tokio::test]
async fn malformed_watch_line_is_logged_not_fatal() {
    let server = fake().await;
    server.apply("pods", fixtures::pod("default", "a", "n1", "10.0.0.1")).unwrap();
    let mut sd = Sd::start(&server, KubernetesSdConfig::new(Role::Pod)).await;
    sd.until("pod a", |g| g.contains_key("pod/default/a")).await;
    server.inject_garbage("pods");
    server.apply("pods", fixtures::pod("default", "b", "n1", "10.0.0.2")).unwrap();
    sd.until("pod b after garbage", |g| g.contains_key("pod/default/b")).await;
}

#[tokio::test]
async fn attach_node_metadata_follows_node_changes() {
    let server = fake().await;
    let mut node = fixtures::renamed(&fixtures::fixture("node"), "", "n1");
    fixtures::set(&mut node, "/metadata/labels/zone", "a");
    server.apply("nodes", node.clone()).unwrap();
    server.apply("pods", fixtures::pod("default", "p", "n1", "10.0.0.1")).unwrap();
    let mut cfg = KubernetesSdConfig::new(Role::Pod);
    cfg.attach_node_metadata = true;
    let mut sd = Sd::start(&server, cfg).await;
    sd.until("pod with node labels", |g| {
        g.get("pod/default/p")
            .is_some_and(|p| p.labels.get("__meta_kubernetes_node_label_zone").is_some_and(|z| z == "a"))
    })
    .await;
    assert_eq!(sd.groups["pod/default/p"].labels["__meta_kubernetes_node_name"], "n1");
    fixtures::set(&mut node, "/metadata/labels/zone", "b");
    server.apply("nodes", node).unwrap();
    sd.until("node relabel reaches the pod", |g| g["pod/default/p"].labels["__meta_kubernetes_node_label_zone"] == "b")
        .await;
}

#[tokio::test]
async fn endpoints_follow_service_and_pod_changes() {
    let server = fake().await;
    // A service, a pod and the Endpoints object pointing at it.
    let mut svc = fixtures::renamed(&fixtures::fixture("service"), "default", "web");
    fixtures::set(&mut svc, "/metadata/labels", serde_json::json!({"team": "a"}));
    server.apply("services", svc.clone()).unwrap();
    server.apply("pods", fixtures::pod("default", "web-1", "n1", "10.0.0.7")).unwrap();
    let eps = serde_json::json!({
        "metadata": {"name": "web", "namespace": "default"},
        "subsets": [{"addresses": [{"ip": "10.0.0.7", "nodeName": "n1",
                                    "targetRef": {"kind": "Pod", "name": "web-1", "namespace": "default"}}],
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}]
    });
    server.apply("endpoints", eps).unwrap();
    let mut sd = Sd::start(&server, KubernetesSdConfig::new(Role::Endpoints)).await;
    sd.until("endpoints group", |g| g.contains_key("endpoints/default/web")).await;
    let g = &sd.groups["endpoints/default/web"];
    assert_eq!(g.labels["__meta_kubernetes_service_label_team"], "a");
    assert_eq!(g.targets[0]["__meta_kubernetes_pod_name"], "web-1");
    assert_eq!(g.targets[0]["__meta_kubernetes_pod_container_name"], "nginx");

    fixtures::set(&mut svc, "/metadata/labels/team", "b");
    server.apply("services", svc).unwrap();
    sd.until("service relabel", |g| g["endpoints/default/web"].labels["__meta_kubernetes_service_label_team"] == "b")
        .await;
    server.delete("endpoints", "default", "web");
    sd.until("endpoints removed", |g| !g.contains_key("endpoints/default/web")).await;
}
