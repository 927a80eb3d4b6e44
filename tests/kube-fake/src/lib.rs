//! An in-process fake Kubernetes API server for tests: real object JSON
//! over HTTP on 127.0.0.1, so the real `kube` client and `kube-runtime`
//! watcher code paths run against it (list, watch with bookmarks and
//! `410 Gone`, pagination, selectors, optimistic concurrency on writes).
//!
//! The test API (`apply`, `delete`, `compact`, `break_watches`,
//! `pause_watches`, request counters) drives what clients see.

pub mod fixtures;
pub mod resources;
pub mod select;
mod server;
mod store;

use serde_json::Value;
use server::{Shared, Signal, lock};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use store::WriteError;

/// A running fake API server; stops when dropped.
#[derive(Debug)]
pub struct FakeApiServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn resource(name: &str) -> usize {
    resources::by_name(name).unwrap_or_else(|| panic!("the fake serves no resource {name:?}"))
}

impl FakeApiServer {
    /// Start on 127.0.0.1 on a free port, on the current tokio runtime.
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new());
        let state = shared.clone();
        let app = axum::Router::new().fallback(
            move |method: axum::http::Method,
                  uri: axum::http::Uri,
                  headers: axum::http::HeaderMap,
                  body: axum::body::Bytes| { server::handle(state.clone(), method, uri, headers, body) },
        );
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "fake API server stopped");
            }
        });
        Ok(Self { shared, addr, task })
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Create or replace an object of `resource` (plural or kind, e.g.
    /// `pods` or `Pod`); returns it as stored (with its resourceVersion).
    pub fn apply(&self, resource_name: &str, obj: Value) -> Result<Value, WriteError> {
        let r = resource(resource_name);
        let changes = self.shared.with_store(|s| s.write(r, obj, None, false, false).map(|c| vec![c]))?;
        Ok((*changes[0].object).clone())
    }

    /// Create or replace many objects at once (one lock, one event each).
    pub fn apply_many(&self, resource_name: &str, objs: Vec<Value>) -> Result<(), WriteError> {
        let r = resource(resource_name);
        self.shared.with_store(|s| {
            objs.into_iter().map(|o| s.write(r, o, None, false, false)).collect::<Result<Vec<_>, _>>()
        })?;
        Ok(())
    }

    /// Delete one object; false if there was none.
    pub fn delete(&self, resource_name: &str, namespace: &str, name: &str) -> bool {
        let r = resource(resource_name);
        self.shared.with_store(|s| s.delete(r, namespace, name).map(|c| vec![c])).is_ok()
    }

    /// One object as stored.
    pub fn get(&self, resource_name: &str, namespace: &str, name: &str) -> Option<Value> {
        let r = resource(resource_name);
        let ns = if resources::RESOURCES[r].namespaced { namespace } else { "" };
        lock(&self.shared.store).objects[r].get(&(ns.to_string(), name.to_string())).map(|o| (**o).clone())
    }

    /// How many objects of a resource are stored.
    pub fn count(&self, resource_name: &str) -> usize {
        lock(&self.shared.store).objects[resource(resource_name)].len()
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        lock(&self.shared.store).rv
    }

    /// Drop all history: a watch from any version before now gets a
    /// `410 Gone` ERROR event, a stale `continue` token a 410 response.
    pub fn compact(&self) {
        lock(&self.shared.store).compact();
    }

    /// End every open watch stream; clients reconnect from their last
    /// resourceVersion.
    pub fn break_watches(&self) {
        let _ = self.shared.signals.send(Signal::Break);
    }

    /// Start an outage: end open watches and hold new watch requests until
    /// [`resume_watches`](Self::resume_watches). Lists still work.
    pub fn pause_watches(&self) {
        self.shared.paused.send_replace(true);
        self.break_watches();
    }

    pub fn resume_watches(&self) {
        self.shared.paused.send_replace(false);
    }

    /// Make the next `n` replace (PUT) requests fail with 409 Conflict.
    pub fn force_conflicts(&self, n: u32) {
        *lock(&self.shared.forced_conflicts) = n;
    }

    /// How many forced conflicts are still to come.
    pub fn forced_conflicts_left(&self) -> u32 {
        *lock(&self.shared.forced_conflicts)
    }

    /// The `Authorization` header of the last request that had one.
    pub fn last_authorization(&self) -> Option<String> {
        lock(&self.shared.last_authorization).clone()
    }

    /// Send a line that is not JSON to open watches of a resource.
    pub fn inject_garbage(&self, resource_name: &str) {
        let _ = self.shared.signals.send(Signal::Garbage(resource(resource_name)));
    }

    /// How often watches that allow bookmarks get one (None: never).
    /// Applies to watches started after the call.
    pub fn set_bookmark_interval(&self, every: Option<Duration>) {
        *lock(&self.shared.bookmark_interval) = every;
    }

    /// List requests served for a resource.
    pub fn list_requests(&self, resource_name: &str) -> u64 {
        let r = resource(resource_name);
        lock(&self.shared.counters).lists.get(&r).copied().unwrap_or(0)
    }

    /// Watch requests served for a resource.
    pub fn watch_requests(&self, resource_name: &str) -> u64 {
        let r = resource(resource_name);
        lock(&self.shared.counters).watches.get(&r).copied().unwrap_or(0)
    }

    /// BOOKMARK events sent, over all watches.
    pub fn bookmarks_sent(&self) -> u64 {
        lock(&self.shared.counters).bookmarks
    }

    /// Load `n` synthetic nodes (`node-0..`).
    pub fn load_synthetic_nodes(&self, n: usize) -> Result<(), WriteError> {
        self.apply_many("nodes", fixtures::synthetic_nodes(n))
    }

    /// Load `n` synthetic pods spread over `nodes` nodes.
    pub fn load_synthetic_pods(&self, n: usize, nodes: usize) -> Result<(), WriteError> {
        self.apply_many("pods", fixtures::synthetic_pods(n, nodes))
    }
}
