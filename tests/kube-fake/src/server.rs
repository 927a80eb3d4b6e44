//! HTTP side of the fake: paths, query parameters and response shapes as a
//! real API server has them, so the real `kube` client code runs against it.

use crate::resources::{self, RESOURCES};
use crate::select::{FieldSelector, LabelSelector};
use crate::store::{Change, EventType, Store, WriteError, key_of};
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};

/// What open watches are told.
#[derive(Debug, Clone)]
pub enum Signal {
    Change(Change),
    /// End every open watch stream (a network blip or an API server restart).
    Break,
    /// Write a line that is not JSON into watches of this resource.
    Garbage(usize),
}

#[derive(Debug, Default, Clone)]
pub struct Counters {
    pub lists: HashMap<usize, u64>,
    pub watches: HashMap<usize, u64>,
    pub bookmarks: u64,
}

#[derive(Debug)]
pub struct Shared {
    pub store: Mutex<Store>,
    pub signals: broadcast::Sender<Signal>,
    pub counters: Mutex<Counters>,
    pub bookmark_interval: Mutex<Option<Duration>>,
    pub paused: watch::Sender<bool>,
    /// The next this-many replaces (PUT) fail with 409 Conflict, as if
    /// another writer had got in first.
    pub forced_conflicts: Mutex<u32>,
    /// The `Authorization` header of the last request, for client tests.
    pub last_authorization: Mutex<Option<String>>,
}

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A test that panicked while holding the lock must not wedge the others.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub fn new() -> Self {
        let (signals, _) = broadcast::channel(65_536);
        Self {
            store: Mutex::new(Store::new()),
            signals,
            counters: Mutex::new(Counters::default()),
            bookmark_interval: Mutex::new(Some(Duration::from_millis(500))),
            paused: watch::channel(false).0,
            forced_conflicts: Mutex::new(0),
            last_authorization: Mutex::new(None),
        }
    }

    /// Apply a store operation and tell watches, under one lock so that a
    /// watch that subscribes while holding the lock sees no gap.
    pub fn with_store<R>(&self, f: impl FnOnce(&mut Store) -> Result<Vec<Change>, R>) -> Result<Vec<Change>, R> {
        let mut store = lock(&self.store);
        let changes = f(&mut store)?;
        for c in &changes {
            let _ = self.signals.send(Signal::Change(c.clone()));
        }
        Ok(changes)
    }
}

fn json_response(code: StatusCode, body: &Value) -> Response {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap_or_default()
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code,
    })
}

fn error(code: u16, reason: &str, message: &str) -> Response {
    json_response(
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &status(code, reason, message),
    )
}

/// A parsed resource path.
#[derive(Debug)]
struct Target {
    resource: usize,
    namespace: Option<String>,
    name: Option<String>,
}

fn parse_path(path: &str) -> Option<Target> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match parts.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    let find = |plural: &str| resources::find(group, version, plural);
    let (resource, namespace, name) = match rest {
        ["namespaces", ns, plural] => (find(plural)?, Some(ns.to_string()), None),
        ["namespaces", ns, plural, name] => (find(plural)?, Some(ns.to_string()), Some(name.to_string())),
        [plural] => (find(plural)?, None, None),
        [plural, name] => (find(plural)?, None, Some(name.to_string())),
        _ => return None,
    };
    // Namespaces live at /api/v1/namespaces/{name}: the generic
    // namespaced shape above reads that as a resource named {name}.
    Some(Target { resource, namespace, name })
}

fn query(uri: &Uri) -> HashMap<String, String> {
    form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect()
}

pub async fn handle(shared: Arc<Shared>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(auth) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        *lock(&shared.last_authorization) = Some(auth.to_string());
    }
    let path = uri.path();
    match path {
        "/version" => {
            return json_response(
                StatusCode::OK,
                &json!({"major": "1", "minor": "35", "gitVersion": "v1.35.0-wasmon-fake",
                        "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
                        "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.25", "compiler": "gc",
                        "platform": "linux/amd64"}),
            );
        }
        "/api" => {
            return json_response(
                StatusCode::OK,
                &json!({"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}),
            );
        }
        "/apis" => return json_response(StatusCode::OK, &group_list()),
        _ => {}
    }
    if let Some(list) = resource_list(path) {
        return json_response(StatusCode::OK, &list);
    }
    // /api/v1/namespaces/{name} is the namespace object itself.
    let target = match path.trim_matches('/').split('/').collect::<Vec<_>>().as_slice() {
        ["api", "v1", "namespaces", name] => resources::find("", "v1", "namespaces").map(|r| Target {
            resource: r,
            namespace: None,
            name: Some(name.to_string()),
        }),
        _ => parse_path(path),
    };
    let Some(target) = target else {
        return error(404, "NotFound", &format!("the server could not find the requested resource ({path})"));
    };
    let q = query(&uri);
    match (method, &target.name) {
        (Method::GET, None) if q.get("watch").is_some_and(|w| w == "1" || w == "true") => {
            watch_response(shared, target, &q).await
        }
        (Method::GET, None) => list(&shared, &target, &q),
        (Method::GET, Some(name)) => {
            let store = lock(&shared.store);
            let ns = target.namespace.clone().unwrap_or_default();
            match store.objects[target.resource].get(&(ns, name.clone())) {
                Some(obj) => json_response(StatusCode::OK, obj),
                None => {
                    error(404, "NotFound", &format!("{} \"{}\" not found", RESOURCES[target.resource].plural, name))
                }
            }
        }
        (Method::POST, None) => write(&shared, &target, &body, true),
        (Method::PUT, Some(_)) => write(&shared, &target, &body, false),
        (Method::DELETE, Some(name)) => {
            let ns = target.namespace.clone().unwrap_or_default();
            match shared.with_store(|s| s.delete(target.resource, &ns, name).map(|c| vec![c])) {
                Ok(changes) => json_response(StatusCode::OK, &changes[0].object),
                Err(e) => error(e.code(), e.reason(), e.message()),
            }
        }
        (m, _) => error(405, "MethodNotAllowed", &format!("{m} is not supported here")),
    }
}

fn group_list() -> Value {
    let mut groups: Vec<(&str, &str)> =
        RESOURCES.iter().filter(|r| !r.group.is_empty()).map(|r| (r.group, r.version)).collect();
    groups.sort();
    groups.dedup();
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|(g, v)| {
            let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
            json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

fn resource_list(path: &str) -> Option<Value> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version) = match parts.as_slice() {
        ["api", v] => ("", *v),
        ["apis", g, v] => (*g, *v),
        _ => return None,
    };
    let items: Vec<Value> = RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .map(|r| {
            json!({"name": r.plural, "singularName": r.kind.to_lowercase(), "namespaced": r.namespaced,
                   "kind": r.kind,
                   "verbs": ["create", "delete", "get", "list", "update", "watch"]})
        })
        .collect();
    if items.is_empty() {
        return None;
    }
    let gv = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": items}))
}

struct Filter {
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    /// A bad selector is the caller's 400.
    fn from(target: &Target, q: &HashMap<String, String>) -> Result<Self, String> {
        Ok(Self {
            namespace: target.namespace.clone(),
            labels: LabelSelector::parse(q.get("labelSelector").map_or("", String::as_str))?,
            fields: FieldSelector::parse(q.get("fieldSelector").map_or("", String::as_str))?,
        })
    }
    fn matches(&self, obj: &Value) -> bool {
        if let Some(ns) = &self.namespace
            && obj.pointer("/metadata/namespace").and_then(Value::as_str) != Some(ns.as_str())
        {
            return false;
        }
        self.labels.matches(obj) && self.fields.matches(obj)
    }
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> =
        (0..text.len()).step_by(2).map(|i| text.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect();
    String::from_utf8(bytes?).ok()
}

/// A list item as a real server sends it: no kind/apiVersion.
fn list_item(obj: &Value) -> Value {
    let mut item = obj.clone();
    if let Some(m) = item.as_object_mut() {
        m.remove("kind");
        m.remove("apiVersion");
    }
    item
}

fn list(shared: &Shared, target: &Target, q: &HashMap<String, String>) -> Response {
    *lock(&shared.counters).lists.entry(target.resource).or_default() += 1;
    let filter = match Filter::from(target, q) {
        Ok(f) => f,
        Err(e) => return error(400, "BadRequest", &e),
    };
    let def = &RESOURCES[target.resource];
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).filter(|l| *l > 0).unwrap_or(usize::MAX);
    let store = lock(&shared.store);
    // A continue token carries the snapshot version and the last key sent.
    let (list_rv, after) = match q.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let parsed = token.split_once('.').and_then(|(rv, key)| Some((rv.parse::<u64>().ok()?, unhex(key)?)));
            let Some((rv, key)) = parsed else {
                return error(400, "BadRequest", "invalid continue token");
            };
            if rv < store.compacted {
                return error(
                    410,
                    "Expired",
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                );
            }
            (rv, Some(key))
        }
        None => (store.rv, None),
    };
    let mut items = Vec::new();
    let mut next = None;
    for ((ns, name), obj) in &store.objects[target.resource] {
        let key = format!("{ns}/{name}");
        if after.as_ref().is_some_and(|a| key.as_str() <= a.as_str()) || !filter.matches(obj) {
            continue;
        }
        if items.len() == limit {
            next = items.last().map(|(k, _): &(String, Value)| format!("{list_rv}.{}", hex(k)));
            break;
        }
        items.push((key, list_item(obj)));
    }
    let mut meta = json!({"resourceVersion": list_rv.to_string()});
    if let Some(token) = next {
        meta["continue"] = json!(token);
    }
    let items: Vec<Value> = items.into_iter().map(|(_, v)| v).collect();
    json_response(
        StatusCode::OK,
        &json!({"kind": format!("{}List", def.kind), "apiVersion": def.api_version(), "metadata": meta, "items": items}),
    )
}

fn write(shared: &Shared, target: &Target, body: &[u8], create: bool) -> Response {
    if !create {
        let mut forced = lock(&shared.forced_conflicts);
        if *forced > 0 {
            *forced -= 1;
            return error(
                409,
                "Conflict",
                "Operation cannot be fulfilled: the object has been modified (forced by the test)",
            );
        }
    }
    let obj: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return error(400, "BadRequest", &format!("invalid JSON body: {e}")),
    };
    let mut obj = obj;
    if let Some(ns) = &target.namespace
        && let Some(meta) = obj.pointer_mut("/metadata").and_then(Value::as_object_mut)
    {
        meta.insert("namespace".into(), json!(ns));
    }
    if let Some(name) = &target.name
        && key_of(&obj).1 != *name
    {
        return error(400, "BadRequest", "the name of the object does not match the name on the URL");
    }
    let expect = obj.pointer("/metadata/resourceVersion").and_then(Value::as_str).map(str::to_string);
    let result = shared.with_store(|s| {
        s.write(target.resource, obj, if create { None } else { expect.as_deref() }, create, !create).map(|c| vec![c])
    });
    match result {
        Ok(changes) => json_response(if create { StatusCode::CREATED } else { StatusCode::OK }, &changes[0].object),
        Err(e @ WriteError::Invalid(_)) => error(e.code(), e.reason(), e.message()),
        Err(e) => error(e.code(), e.reason(), e.message()),
    }
}

fn event_line(kind: &str, obj: &Value) -> Bytes {
    let mut line = json!({"type": kind, "object": obj}).to_string();
    line.push('\n');
    Bytes::from(line)
}

/// What a watch with this filter sees of one change: a modification that
/// moves an object into or out of the selection is an ADDED or a DELETED.
fn view(filter: &Filter, change: &Change) -> Option<Bytes> {
    let now = filter.matches(&change.object);
    let before = change.previous.as_deref().is_some_and(|p| filter.matches(p));
    let kind = match (change.kind, before, now) {
        (EventType::Added, _, true) => "ADDED",
        (EventType::Deleted, _, true) => "DELETED",
        (EventType::Modified, true, true) => "MODIFIED",
        (EventType::Modified, false, true) => "ADDED",
        (EventType::Modified, true, false) => "DELETED",
        _ => return None,
    };
    Some(event_line(kind, &change.object))
}

async fn watch_response(shared: Arc<Shared>, target: Target, q: &HashMap<String, String>) -> Response {
    *lock(&shared.counters).watches.entry(target.resource).or_default() += 1;
    let filter = match Filter::from(&target, q) {
        Ok(f) => f,
        Err(e) => return error(400, "BadRequest", &e),
    };
    // An outage: hold the request until the test ends it.
    let mut paused = shared.paused.subscribe();
    let _ = paused.wait_for(|p| !*p).await;

    let rv = q.get("resourceVersion").cloned().unwrap_or_default();
    let bookmarks = q.get("allowWatchBookmarks").is_some_and(|b| b == "true" || b == "1");
    let timeout = q.get("timeoutSeconds").and_then(|t| t.parse::<u64>().ok()).map(Duration::from_secs);
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    tokio::spawn(run_watch(shared, target.resource, filter, rv, bookmarks, timeout, tx));
    let body =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx)) });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(body))
        .unwrap_or_default()
}

async fn run_watch(
    shared: Arc<Shared>,
    resource: usize,
    filter: Filter,
    rv: String,
    bookmarks: bool,
    timeout: Option<Duration>,
    tx: mpsc::Sender<Bytes>,
) {
    let def = RESOURCES[resource];
    // Subscribe and read the replay under the store lock: writers publish
    // under the same lock, so nothing falls between replay and live events.
    let (rx, replay, mut seen_rv) = {
        let store = lock(&shared.store);
        let rx = shared.signals.subscribe();
        let mut replay = Vec::new();
        match rv.parse::<u64>() {
            Ok(from) if from != 0 => {
                if from < store.compacted {
                    let msg = format!("too old resource version: {from} ({})", store.compacted);
                    (None, vec![event_line("ERROR", &status(410, "Expired", &msg))], 0)
                } else {
                    replay.extend(
                        store
                            .history
                            .iter()
                            .filter(|c| c.resource == resource && c.rv > from)
                            .filter_map(|c| view(&filter, c)),
                    );
                    (Some(rx), replay, store.rv)
                }
            }
            // No version or "0": start with the current state, as ADDED.
            _ => {
                replay.extend(
                    store.objects[resource].values().filter(|o| filter.matches(o)).map(|o| event_line("ADDED", o)),
                );
                (Some(rx), replay, store.rv)
            }
        }
    };
    for line in replay {
        if tx.send(line).await.is_err() {
            return;
        }
    }
    // Too old: one ERROR event, then the stream ends.
    let Some(mut rx) = rx else { return };
    let interval = *lock(&shared.bookmark_interval);
    let mut tick = tokio::time::interval(interval.unwrap_or(Duration::from_secs(3600)));
    tick.tick().await;
    let deadline = tokio::time::sleep(timeout.unwrap_or(Duration::from_secs(24 * 3600)));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            signal = rx.recv() => match signal {
                Ok(Signal::Change(c)) => {
                    seen_rv = seen_rv.max(c.rv);
                    if c.resource == resource
                        && let Some(line) = view(&filter, &c)
                        && tx.send(line).await.is_err()
                    {
                        return;
                    }
                }
                Ok(Signal::Garbage(r)) if r == resource => {
                    if tx.send(Bytes::from_static(b"{\"type\":\"MODIFIED\",\"object\":{not json\n")).await.is_err() {
                        return;
                    }
                }
                Ok(Signal::Garbage(_)) => {}
                // Lagging behind is a broken watch: the client resumes
                // from its last version and gets the rest from history.
                Ok(Signal::Break) | Err(_) => return,
            },
            _ = tick.tick(), if bookmarks && interval.is_some() => {
                let obj = json!({"kind": def.kind, "apiVersion": def.api_version(),
                                 "metadata": {"resourceVersion": seen_rv.to_string()}});
                lock(&shared.counters).bookmarks += 1;
                if tx.send(event_line("BOOKMARK", &obj)).await.is_err() {
                    return;
                }
            }
            _ = &mut deadline => return,
            _ = tx.closed() => return,
        }
    }
}
