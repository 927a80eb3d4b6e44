//! Shared helpers for the Kubernetes tests: a fake API server, a client
//! for it, and a discovery run whose updates the test can wait for.
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;
use wasmon_discovery::TargetGroup;
use wasmon_discovery::kubernetes::{ClientConfig, KubernetesSdConfig, build_client, run};
#[allow(unused_imports)]
pub use wasmon_kube_fake::{FakeApiServer, fixtures};

/// Generous: only a broken test waits this long.
pub const WAIT: Duration = Duration::from_secs(20);

pub async fn fake() -> FakeApiServer {
    FakeApiServer::start().await.expect("start the fake API server")
}

pub async fn client(server: &FakeApiServer) -> kube::Client {
    let cfg = ClientConfig { api_server: Some(server.url()), ..Default::default() };
    build_client(&cfg).await.expect("client for the fake")
}

/// A discovery run and everything it has sent so far.
pub struct Sd {
    rx: mpsc::Receiver<Vec<TargetGroup>>,
    task: tokio::task::JoinHandle<()>,
    /// Current groups by source (empty groups removed).
    pub groups: HashMap<String, TargetGroup>,
    /// Every group received, in order.
    pub log: Vec<TargetGroup>,
}

impl Drop for Sd {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Sd {
    pub async fn start(server: &FakeApiServer, config: KubernetesSdConfig) -> Self {
        let client = client(server).await;
        let (tx, rx) = mpsc::channel(64);
        let task = tokio::spawn(async move {
            if let Err(e) = run(client, config, tx).await {
                panic!("discovery failed: {e}");
            }
        });
        Self { rx, task, groups: HashMap::new(), log: Vec::new() }
    }

    fn take(&mut self, batch: Vec<TargetGroup>) {
        for g in batch {
            self.log.push(g.clone());
            if g.targets.is_empty() {
                self.groups.remove(&g.source);
            } else {
                self.groups.insert(g.source.clone(), g);
            }
        }
    }

    /// Receive until `done` holds for the current groups.
    pub async fn until(&mut self, what: &str, done: impl Fn(&HashMap<String, TargetGroup>) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !done(&self.groups) {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(batch)) => self.take(batch),
                Ok(None) => panic!("discovery ended while waiting for {what}"),
                Err(_) => panic!("timed out waiting for {what}; groups: {:#?}", self.groups.keys()),
            }
        }
    }

    /// Everything that arrives within `quiet` (for "nothing more is sent").
    pub async fn drain(&mut self, quiet: Duration) -> Vec<TargetGroup> {
        let mut got = Vec::new();
        while let Ok(Some(batch)) = tokio::time::timeout(quiet, self.rx.recv()).await {
            got.extend(batch.iter().cloned());
            self.take(batch);
        }
        got
    }
}

/// Wait until `cond` holds (polling), for server-side counters.
pub async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
