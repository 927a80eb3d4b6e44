//! Test helpers: an in-process webhook receiver, an HTTP client, alert builders.
// Helpers for test files only, where a failed unwrap is a failed test.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmon_notify::{Alert, Config, Notifier};

/// Records every webhook POST; answers with `status` (200 unless changed).
#[derive(Clone, Default)]
pub struct Hook {
    pub received: Arc<Mutex<Vec<(String, Value)>>>,
    pub status: Arc<AtomicU16>,
    pub requests: Arc<AtomicUsize>,
}

impl Hook {
    pub async fn start() -> (Hook, SocketAddr) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hook = Hook::default();
        hook.status.store(200, Ordering::SeqCst);
        let addr = hook.serve(listener);
        (hook, addr)
    }

    /// Serves on an existing listener (to bring a "down" receiver back on its port).
    pub fn serve(&self, listener: tokio::net::TcpListener) -> SocketAddr {
        let addr = listener.local_addr().unwrap();
        let hook = self.clone();
        let app = axum::Router::new().route(
            "/{name}",
            axum::routing::post(move |axum::extract::Path(name): axum::extract::Path<String>, body: Bytes| {
                let hook = hook.clone();
                async move {
                    hook.requests.fetch_add(1, Ordering::SeqCst);
                    let status = hook.status.load(Ordering::SeqCst);
                    if status == 200 {
                        let v: Value = serde_json::from_slice(&body).unwrap();
                        hook.received.lock().unwrap().push((name, v));
                    }
                    axum::http::StatusCode::from_u16(status).unwrap()
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    pub fn all(&self) -> Vec<(String, Value)> {
        self.received.lock().unwrap().clone()
    }

    pub fn for_receiver(&self, name: &str) -> Vec<Value> {
        self.all().into_iter().filter(|(n, _)| n == name).map(|(_, v)| v).collect()
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }
}

/// Polls `cond` every 20ms until it holds, failing after `secs`.
pub async fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

pub fn now() -> DateTime<Utc> {
    DateTime::<Utc>::from(std::time::SystemTime::now())
}

pub fn firing(kv: &[(&str, &str)]) -> Alert {
    Alert {
        labels: labels(kv),
        annotations: labels(&[("summary", "something broke")]),
        starts_at: now(),
        ends_at: None,
        generator_url: "http://prom/graph".into(),
    }
}

pub fn resolved(kv: &[(&str, &str)]) -> Alert {
    let t = now();
    Alert {
        starts_at: t - chrono::Duration::seconds(10),
        ends_at: Some(t - chrono::Duration::milliseconds(10)),
        ..firing(kv)
    }
}

/// Short timings for tests.
pub const TIMINGS: &str = "group_wait: 200ms\n  group_interval: 500ms\n  repeat_interval: 1h";

pub fn notifier(yaml: &str, dir: &std::path::Path) -> Notifier {
    let cfg = Config::from_yaml(yaml).unwrap_or_else(|e| panic!("{e}\n---\n{yaml}"));
    let n = Notifier::new(cfg, dir).unwrap();
    n.start();
    n
}

pub async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// One HTTP request; returns the status and the body as JSON (Null if empty).
pub async fn http(method: &str, url: &str, body: Option<Value>) -> (u16, Value) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let body = body.map(|b| serde_json::to_vec(&b).unwrap()).unwrap_or_default();
    let req = http::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
    (status, v)
}

pub fn alert_names(payload: &Value) -> Vec<String> {
    payload["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let l = &a["labels"];
            let mut s = l["alertname"].as_str().unwrap_or("").to_string();
            if let Some(i) = l.get("instance").and_then(|v| v.as_str()) {
                s = format!("{s}/{i}");
            }
            s
        })
        .collect()
}
