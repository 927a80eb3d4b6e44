//! The fake API server itself, through the real kube client: what the
//! discovery and feed tests rely on it to do like a real API server.

mod kubernetes_common;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{ListParams, WatchEvent, WatchParams};
use kubernetes_common::*;

#[tokio::test]
async fn version_and_discovery_documents() {
    let server = fake().await;
    let client = client(&server).await;
    let v = client.apiserver_version().await.expect("version");
    assert_eq!(v.major, "1");
    let discovery = kube::Discovery::new(client).run().await.expect("discovery");
    for (group, kind) in [
        ("", "Pod"),
        ("apps", "Deployment"),
        ("discovery.k8s.io", "EndpointSlice"),
        ("coordination.k8s.io", "Lease"),
        ("autoscaling", "HorizontalPodAutoscaler"),
    ] {
        let g = discovery.get(group).unwrap_or_else(|| panic!("group {group:?} missing"));
        assert!(g.recommended_resources().iter().any(|(r, _)| r.kind == kind), "{kind}");
    }
}

#[tokio::test]
async fn list_pages_with_limit_and_continue() {
    let server = fake().await;
    server.load_synthetic_pods(25, 2).unwrap();
    let api: Api<Pod> = Api::all(client(&server).await);
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut lp = ListParams::default().limit(10);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = api.list(&lp).await.expect("page");
        pages += 1;
        names.extend(page.items.iter().filter_map(|p| p.metadata.name.clone()));
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 25);
    // A continue token from before a compaction is gone.
    let first = api.list(&ListParams::default().limit(10)).await.unwrap();
    server.apply("pods", fixtures::pod("x", "y", "n", "10.0.0.1")).unwrap();
    server.compact();
    let err = api
        .list(&ListParams::default().limit(10).continue_token(first.metadata.continue_.as_deref().unwrap()))
        .await
        .expect_err("stale continue");
    assert!(matches!(err, kube::Error::Api(s) if s.code == 410));
}

#[tokio::test]
async fn selectors_and_namespaced_paths() {
    let server = fake().await;
    server.load_synthetic_pods(20, 4).unwrap();
    let c = client(&server).await;
    let ns: Api<Pod> = Api::namespaced(c.clone(), "ns-3");
    assert_eq!(ns.list(&Default::default()).await.unwrap().items.len(), 2);
    let all: Api<Pod> = Api::all(c.clone());
    let by_name = all.list(&ListParams::default().fields("metadata.name=pod-7")).await.unwrap();
    assert_eq!(by_name.items.len(), 1);
    let by_ns_node =
        all.list(&ListParams::default().fields("metadata.namespace=ns-2,spec.nodeName=node-2")).await.unwrap();
    assert_eq!(by_ns_node.items.len(), 1, "pod-2 (pod-12 is on node-0)");
    let by_label = all.list(&ListParams::default().labels("app in (app-3,app-4)")).await.unwrap();
    assert_eq!(by_label.items.len(), 2);
    // Items come as from a real server: no kind/apiVersion; the list has them.
    assert!(by_label.items.iter().all(|p| p.metadata.resource_version.is_some()));
    let nodes: Api<Node> = Api::all(c);
    assert!(nodes.list(&Default::default()).await.unwrap().items.is_empty());
    // A bad selector is a 400 with a Status body.
    let err = all.list(&ListParams::default().fields("nonsense")).await.expect_err("bad selector");
    assert!(matches!(err, kube::Error::Api(s) if s.code == 400));
}

#[tokio::test]
async fn watch_from_a_compacted_version_is_a_410_error_event() {
    let server = fake().await;
    server.apply("pods", fixtures::pod("default", "a", "n", "10.0.0.1")).unwrap();
    let old = server.resource_version().to_string();
    server.apply("pods", fixtures::pod("default", "b", "n", "10.0.0.2")).unwrap();
    let api: Api<Pod> = Api::all(client(&server).await);

    // Before compaction the history replays.
    let events: Vec<_> =
        api.watch(&WatchParams::default().timeout(1), &old).await.unwrap().take(1).try_collect().await.unwrap();
    assert!(matches!(&events[0], WatchEvent::Added(p) if p.metadata.name.as_deref() == Some("b")));

    server.apply("pods", fixtures::pod("default", "c", "n", "10.0.0.3")).unwrap();
    server.compact();
    let events: Vec<_> =
        api.watch(&WatchParams::default().timeout(5), &old).await.unwrap().try_collect().await.unwrap();
    assert_eq!(events.len(), 1);
    let WatchEvent::Error(status) = &events[0] else { panic!("expected an ERROR event, got {events:?}") };
    assert_eq!(status.code, 410);
    assert_eq!(status.reason, "Expired");
    assert!(status.message.starts_with("too old resource version"));
}

#[tokio::test]
async fn watch_sends_bookmarks_and_honours_timeout() {
    let server = fake().await;
    server.set_bookmark_interval(Some(std::time::Duration::from_millis(50)));
    let rv = server.resource_version().to_string();
    let api: Api<Pod> = Api::all(client(&server).await);
    let events: Vec<_> = api.watch(&WatchParams::default().timeout(1), &rv).await.unwrap().try_collect().await.unwrap();
    assert!(events.iter().any(|e| matches!(e, WatchEvent::Bookmark(_))), "{events:?}");
}

#[tokio::test]
async fn fixtures_are_served_in_the_current_version() {
    let server = fake().await;
    // The CronJob fixture is batch/v1beta1; a real server converts.
    let cj = server.apply("cronjobs", fixtures::fixture("cronjob")).unwrap();
    assert_eq!(cj["apiVersion"], "batch/v1");
    let ds = server.apply("DaemonSet", fixtures::fixture("daemonset")).unwrap();
    assert_eq!(ds["kind"], "DaemonSet");
    assert_eq!(server.count("daemonsets"), 1);
    for f in ["persistentvolume", "persistentvolume-terminating", "namespace"] {
        let v = fixtures::fixture(f);
        let kind = v["kind"].as_str().unwrap().to_string();
        server.apply(&kind, v).unwrap();
    }
    assert_eq!(server.count("persistentvolumes"), 2);
    let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client(&server).await);
    assert_eq!(ns.get("kube-system").await.unwrap().metadata.name.as_deref(), Some("kube-system"));
}
