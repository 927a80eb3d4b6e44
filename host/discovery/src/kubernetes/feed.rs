//! The object feed for kube-state plugins: list+watch any kinds the plugin
//! asks for and pass each change on as JSON text, tagged with the index of
//! the resource in the plugin's list.
//!
//! The host keeps only `key → (uid, resourceVersion)` per object, never the
//! object itself (a plugin holds its own state, like kube-state-metrics'
//! rendered-bytes store). After a re-list (410 Gone, or a watch that could
//! not resume) every listed object is sent `Applied` and every object known
//! before but no longer listed is sent `Deleted`.
//!
//! Secret contents never leave the host: `data`/`stringData` of Secrets and
//! `data`/`binaryData` of ConfigMaps are removed, as is
//! `metadata.managedFields` of every object (large, and useless for metrics).

use super::watch::{Tagged, tagged, watcher_config};
use futures::StreamExt;
use futures::stream::{BoxStream, select_all};
use kube::api::{ApiResource, DynamicObject, TypeMeta};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{Event, watcher};
use kube::{Api, Client};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use tokio::sync::mpsc;

/// A kind to watch, as a plugin names it (WIT `kube.resource`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FeedResource {
    /// Empty for the core group.
    pub group: String,
    pub version: String,
    pub plural: String,
    pub kind: String,
    pub namespaced: bool,
}

impl FeedResource {
    pub fn new(group: &str, version: &str, plural: &str, kind: &str, namespaced: bool) -> Self {
        Self { group: group.into(), version: version.into(), plural: plural.into(), kind: kind.into(), namespaced }
    }

    fn api_resource(&self) -> ApiResource {
        ApiResource {
            group: self.group.clone(),
            version: self.version.clone(),
            api_version: if self.group.is_empty() {
                self.version.clone()
            } else {
                format!("{}/{}", self.group, self.version)
            },
            kind: self.kind.clone(),
            plural: self.plural.clone(),
        }
    }
}

/// What to watch besides the kinds. Selectors apply to every resource, so
/// a field selector such as `spec.nodeName=...` (valid only for pods) needs
/// its own `watch_objects` call for pods alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedOptions {
    /// Namespaces for namespaced kinds; `None` (or an empty list) is all.
    /// Cluster-scoped kinds are always watched cluster-wide.
    pub namespaces: Option<Vec<String>>,
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
}

/// One change of one object (WIT `kube.object-event`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectEvent {
    /// Added or modified: the whole object as JSON text.
    Applied { resource: u32, object: String },
    /// Deleted: the last state the watch delivered, or, for an object found
    /// missing by a re-list, its identity (`apiVersion`, `kind`,
    /// `metadata.name/namespace/uid/resourceVersion`), since the host keeps
    /// no object bodies.
    Deleted { resource: u32, object: String },
}

impl ObjectEvent {
    pub fn resource(&self) -> u32 {
        match self {
            Self::Applied { resource, .. } | Self::Deleted { resource, .. } => *resource,
        }
    }
    pub fn object(&self) -> &str {
        match self {
            Self::Applied { object, .. } | Self::Deleted { object, .. } => object,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("too many resources for one feed ({0}); at most {max}", max = u32::MAX)]
    TooMany(usize),
}

/// The annotation `kubectl apply` stores the applied object in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Remove what a plugin must not see or does not need.
pub fn sanitize(resource: &FeedResource, obj: &mut DynamicObject) {
    obj.metadata.managed_fields = None;
    if resource.group.is_empty()
        && let Some(map) = obj.data.as_object_mut()
    {
        match resource.kind.as_str() {
            "Secret" => {
                map.remove("data");
                map.remove("stringData");
                // `kubectl apply` keeps the whole applied object, data
                // included, in this annotation.
                if let Some(annotations) = obj.metadata.annotations.as_mut() {
                    annotations.remove(LAST_APPLIED);
                }
            }
            "ConfigMap" => {
                map.remove("data");
                map.remove("binaryData");
                if let Some(annotations) = obj.metadata.annotations.as_mut() {
                    annotations.remove(LAST_APPLIED);
                }
            }
            _ => {}
        }
    }
    if obj.types.is_none() {
        // List items come without kind/apiVersion; plugins get them always.
        let ar = resource.api_resource();
        obj.types = Some(TypeMeta { api_version: ar.api_version, kind: ar.kind });
    }
}

/// What the host remembers of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    uid: Box<str>,
    rv: Box<str>,
}

struct Stream {
    resource: u32,
    namespace: Option<String>,
    /// `namespace/name` → identity; the only per-object memory.
    known: HashMap<Box<str>, Seen>,
    listing: Option<HashSet<Box<str>>>,
}

fn key_of(obj: &DynamicObject) -> Box<str> {
    match obj.metadata.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => format!("{ns}/{}", obj.metadata.name.as_deref().unwrap_or("")).into(),
        _ => obj.metadata.name.clone().unwrap_or_default().into(),
    }
}

fn to_json(obj: &DynamicObject) -> Option<String> {
    match serde_json::to_string(obj) {
        Ok(text) => Some(text),
        Err(e) => {
            tracing::error!(error = %e, "could not serialise a Kubernetes object; skipped");
            None
        }
    }
}

fn identity(resource: &FeedResource, key: &str, seen: &Seen) -> String {
    let (ns, name) = key.split_once('/').unwrap_or(("", key));
    let mut meta = serde_json::json!({"name": name, "uid": &*seen.uid, "resourceVersion": &*seen.rv});
    if !ns.is_empty() {
        meta["namespace"] = Value::from(ns);
    }
    let ar = resource.api_resource();
    serde_json::json!({"apiVersion": ar.api_version, "kind": ar.kind, "metadata": meta}).to_string()
}

/// Watch `resources` and send their changes on `sender` in batches, until
/// `sender` is closed. Watch errors are logged and retried with backoff.
pub async fn watch_objects(
    client: Client,
    resources: Vec<FeedResource>,
    options: FeedOptions,
    sender: mpsc::Sender<Vec<ObjectEvent>>,
) -> Result<(), FeedError> {
    let count = u32::try_from(resources.len()).map_err(|_| FeedError::TooMany(resources.len()))?;
    let cfg = watcher_config(options.label_selector.as_deref(), options.field_selector.as_deref());
    let mut streams: Vec<Stream> = Vec::new();
    let mut watches: Vec<BoxStream<'static, Tagged<DynamicObject>>> = Vec::new();
    for (index, r) in (0..count).zip(&resources) {
        let ar = r.api_resource();
        let scopes: Vec<Option<String>> = match (&options.namespaces, r.namespaced) {
            (Some(names), true) if !names.is_empty() => names.iter().cloned().map(Some).collect(),
            _ => vec![None],
        };
        for ns in scopes {
            let api: Api<DynamicObject> = match &ns {
                Some(n) => Api::namespaced_with(client.clone(), n, &ar),
                None => Api::all_with(client.clone(), &ar),
            };
            let id = streams.len();
            let w = watcher(api, cfg.clone()).default_backoff();
            watches.push(tagged(w, id, |o| o));
            streams.push(Stream { resource: index, namespace: ns, known: HashMap::new(), listing: None });
        }
    }

    let mut events = select_all(watches).ready_chunks(1024);
    while let Some(batch) = events.next().await {
        let mut out = Vec::new();
        for Tagged { stream, event } in batch {
            let Some(s) = streams.get_mut(stream) else { continue };
            let r = &resources[s.resource as usize];
            match event {
                Err(e) => super::watch::log_error("object feed", &r.plural, s.namespace.as_deref(), &e),
                Ok(Event::Init) => s.listing = Some(HashSet::new()),
                Ok(Event::InitApply(mut obj)) | Ok(Event::Apply(mut obj)) => {
                    sanitize(r, &mut obj);
                    let key = key_of(&obj);
                    let seen = Seen {
                        uid: obj.metadata.uid.clone().unwrap_or_default().into(),
                        rv: obj.metadata.resource_version.clone().unwrap_or_default().into(),
                    };
                    if let Some(listing) = &mut s.listing {
                        listing.insert(key.clone());
                    }
                    s.known.insert(key, seen);
                    if let Some(object) = to_json(&obj) {
                        out.push(ObjectEvent::Applied { resource: s.resource, object });
                    }
                }
                Ok(Event::Delete(mut obj)) => {
                    sanitize(r, &mut obj);
                    s.known.remove(&key_of(&obj));
                    if let Some(object) = to_json(&obj) {
                        out.push(ObjectEvent::Deleted { resource: s.resource, object });
                    }
                }
                Ok(Event::InitDone) => {
                    let listed = s.listing.take().unwrap_or_default();
                    let gone: Vec<Box<str>> = s.known.keys().filter(|k| !listed.contains(*k)).cloned().collect();
                    for key in gone {
                        if let Some(seen) = s.known.remove(&key) {
                            out.push(ObjectEvent::Deleted { resource: s.resource, object: identity(r, &key, &seen) });
                        }
                    }
                    s.known.shrink_to_fit();
                }
            }
        }
        if !out.is_empty() && sender.send(out).await.is_err() {
            return Ok(());
        }
    }
    Ok(())
}
