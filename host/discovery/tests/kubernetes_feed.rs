//! The object feed for kube-state plugins, against the fake API server.

mod kubernetes_common;

use kubernetes_common::*;
use serde_json::Value;
use std::time::Duration;
use tokio::sync::mpsc;
use wasmon_discovery::kubernetes::{FeedOptions, FeedResource, ObjectEvent, watch_objects};

struct Feed {
    rx: mpsc::Receiver<Vec<ObjectEvent>>,
    task: tokio::task::JoinHandle<()>,
    log: Vec<ObjectEvent>,
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Feed {
    async fn start(server: &FakeApiServer, resources: Vec<FeedResource>, options: FeedOptions) -> Self {
        let client = client(server).await;
        let (tx, rx) = mpsc::channel(64);
        let task = tokio::spawn(async move {
            watch_objects(client, resources, options, tx).await.expect("feed");
        });
        Self { rx, task, log: Vec::new() }
    }

    /// Receive until `n` events have arrived in total.
    async fn until(&mut self, n: usize) -> &[ObjectEvent] {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.log.len() < n {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(batch)) => self.log.extend(batch),
                _ => panic!("timed out with {} of {n} events: {:#?}", self.log.len(), self.log),
            }
        }
        &self.log
    }

    async fn quiet(&mut self) -> Vec<ObjectEvent> {
        let mut got = Vec::new();
        while let Ok(Some(batch)) = tokio::time::timeout(Duration::from_millis(300), self.rx.recv()).await {
            got.extend(batch);
        }
        self.log.extend(got.iter().cloned());
        got
    }
}

fn json(e: &ObjectEvent) -> Value {
    serde_json::from_str(e.object()).expect("events carry JSON")
}

fn name(e: &ObjectEvent) -> String {
    json(e)["metadata"]["name"].as_str().unwrap_or("").to_string()
}

fn core(plural: &str, kind: &str, namespaced: bool) -> FeedResource {
    FeedResource::new("", "v1", plural, kind, namespaced)
}

#[tokio::test]
async fn secrets_and_configmaps_never_carry_contents() {
    let server = fake().await;
    server.apply("secrets", fixtures::fixture("secret")).unwrap();
    server.apply("configmaps", fixtures::fixture("configmap")).unwrap();
    assert!(fixtures::fixture("secret").get("data").is_some(), "the fixture has data to strip");
    let mut feed = Feed::start(
        &server,
        vec![core("secrets", "Secret", true), core("configmaps", "ConfigMap", true)],
        FeedOptions::default(),
    )
    .await;
    let events = feed.until(2).await.to_vec();
    let mut secret = fixtures::fixture("secret");
    fixtures::set(&mut secret, "/stringData/extra", "also-secret");
    server.apply("secrets", secret).unwrap();
    let events: Vec<ObjectEvent> = events.into_iter().chain(feed.until(3).await[2..].to_vec()).collect();
    for e in &events {
        let v = json(e);
        for field in ["data", "stringData", "binaryData"] {
            assert!(v.get(field).is_none(), "{field} leaked: {v}");
        }
        assert!(v["metadata"].get("managedFields").is_none());
        assert!(!e.object().contains("also-secret"));
        // The fixture's last-applied annotation holds the data base64'd.
        assert!(!e.object().contains("YnVtYmxlYmVldHVuYQo="), "secret value leaked via an annotation: {v}");
        // Kind and apiVersion are filled in even for list items.
        assert!(v["kind"] == "Secret" || v["kind"] == "ConfigMap", "{v}");
    }
    // The secret's type and metadata still arrive (kube-state needs them).
    let secret = events.iter().find(|e| e.resource() == 0).map(json).unwrap();
    assert_eq!(secret["metadata"]["name"], "s1");
    assert!(secret.get("type").is_some());
}

#[tokio::test]
async fn managed_fields_are_stripped_and_resources_tagged() {
    let server = fake().await;
    let mut dep = fixtures::fixture("deployment");
    fixtures::set(
        &mut dep,
        "/metadata/managedFields",
        serde_json::json!([{"manager": "kubectl", "operation": "Apply"}]),
    );
    server.apply("deployments", dep).unwrap();
    server.apply("nodes", fixtures::fixture("node")).unwrap();
    let mut feed = Feed::start(
        &server,
        vec![core("nodes", "Node", false), FeedResource::new("apps", "v1", "deployments", "Deployment", true)],
        FeedOptions::default(),
    )
    .await;
    let events = feed.until(2).await.to_vec();
    let dep = events.iter().find(|e| e.resource() == 1).expect("deployment tagged 1");
    assert!(matches!(dep, ObjectEvent::Applied { .. }));
    assert!(json(dep)["metadata"].get("managedFields").is_none());
    assert_eq!(json(dep)["apiVersion"], "apps/v1");
    assert_eq!(name(events.iter().find(|e| e.resource() == 0).unwrap()), "minikube");
}

#[tokio::test]
async fn relist_applies_all_then_deletes_the_vanished() {
    let server = fake().await;
    server.set_bookmark_interval(None);
    for n in ["a", "b", "c"] {
        server.apply("pods", fixtures::pod("default", n, "n1", "10.0.0.1")).unwrap();
    }
    let mut feed = Feed::start(&server, vec![core("pods", "Pod", true)], FeedOptions::default()).await;
    feed.until(3).await;

    server.pause_watches();
    server.delete("pods", "default", "b");
    server.compact();
    server.resume_watches();
    let after = feed.until(3 + 3).await[3..].to_vec();
    let kinds: Vec<(bool, String)> =
        after.iter().map(|e| (matches!(e, ObjectEvent::Applied { .. }), name(e))).collect();
    // Applied for every listed object, then Deleted for the one gone.
    assert_eq!(kinds, [(true, "a".into()), (true, "c".into()), (false, "b".into())]);
    let gone = json(&after[2]);
    assert_eq!(gone["kind"], "Pod");
    assert_eq!(gone["metadata"]["namespace"], "default");
    assert!(gone["metadata"]["uid"].as_str().is_some_and(|u| !u.is_empty()));
    assert!(feed.quiet().await.is_empty());
}

#[tokio::test]
async fn watch_delete_and_selectors() {
    let server = fake().await;
    server.load_synthetic_pods(20, 2).unwrap();
    let options = FeedOptions {
        namespaces: Some(vec!["ns-1".into()]),
        field_selector: Some("spec.nodeName=node-1".into()),
        ..Default::default()
    };
    let mut feed = Feed::start(&server, vec![core("pods", "Pod", true)], options).await;
    // ns-1 holds pod-1 and pod-11, both on node-1.
    let mut names: Vec<String> = feed.until(2).await.iter().map(name).collect();
    names.sort();
    assert_eq!(names, ["pod-1", "pod-11"]);
    server.delete("pods", "ns-1", "pod-11");
    server.delete("pods", "ns-2", "pod-2");
    let e = feed.until(3).await[2].clone();
    assert!(matches!(e, ObjectEvent::Deleted { .. }));
    assert_eq!(name(&e), "pod-11");
    assert!(feed.quiet().await.is_empty(), "other namespaces are not watched");
}
