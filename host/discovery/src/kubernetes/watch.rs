//! Turning kube-runtime watchers of several kinds and namespaces into one
//! stream of tagged events, so one task can own all discovery state
//! without locks.

use futures::{Stream, StreamExt, stream::BoxStream};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher as kube_watcher};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use std::fmt::Debug;

/// A watcher event from stream number `stream`, with the object mapped
/// into the caller's enum.
#[derive(Debug)]
pub struct Tagged<T> {
    pub stream: usize,
    pub event: Result<Event<T>, watcher::Error>,
}

fn map_event<K, T>(e: Event<K>, f: impl Fn(K) -> T) -> Event<T> {
    match e {
        Event::Apply(k) => Event::Apply(f(k)),
        Event::Delete(k) => Event::Delete(f(k)),
        Event::Init => Event::Init,
        Event::InitApply(k) => Event::InitApply(f(k)),
        Event::InitDone => Event::InitDone,
    }
}

/// List labels/fields for a watch.
pub fn watcher_config(label: Option<&str>, field: Option<&str>) -> watcher::Config {
    let mut cfg = watcher::Config::default();
    if let Some(l) = label.filter(|l| !l.is_empty()) {
        cfg = cfg.labels(l);
    }
    if let Some(f) = field.filter(|f| !f.is_empty()) {
        cfg = cfg.fields(f);
    }
    cfg
}

/// A watch through `api` (namespaced or all), with kube-runtime's default
/// backoff between failed attempts.
pub fn watch<K, T>(api: Api<K>, cfg: watcher::Config, stream: usize, f: fn(K) -> T) -> BoxStream<'static, Tagged<T>>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    K::DynamicType: Default,
    T: Send + 'static,
{
    tagged(kube_watcher(api, cfg).default_backoff(), stream, f)
}

pub fn tagged<S, K, T>(s: S, stream: usize, f: fn(K) -> T) -> BoxStream<'static, Tagged<T>>
where
    S: Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static,
    T: Send + 'static,
    K: 'static,
{
    s.map(move |event| Tagged { stream, event: event.map(|e| map_event(e, f)) }).boxed()
}

/// Log a watcher error at a level that fits: `410 Gone` is routine (the
/// watcher re-lists), anything else is worth a warning.
pub fn log_error(what: &str, resource: &str, namespace: Option<&str>, e: &watcher::Error) {
    let ns = namespace.unwrap_or("*");
    match e {
        watcher::Error::WatchError(s) if s.code == 410 => {
            tracing::info!(what, resource, namespace = ns, "watch history expired (410 Gone); re-listing");
        }
        _ => {
            tracing::warn!(what, resource, namespace = ns, error = %e, "kubernetes watch failed; retrying with backoff")
        }
    }
}
