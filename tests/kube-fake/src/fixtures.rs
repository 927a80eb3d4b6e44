//! The real objects in `fixtures/` (from `kubectl get -o json`), helpers to
//! derive new objects from them, and synthetic objects for benchmarks.

use serde_json::{Value, json};
use std::path::PathBuf;

/// Where the fixture files live.
pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// One fixture by file stem (`pod`, `endpointslice`, `service-list.k3s`).
/// Panics with the path when it is missing or not JSON: a test helper.
pub fn fixture(name: &str) -> Value {
    let path = fixture_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The items of a list fixture (`"items": null` reads as none).
pub fn fixture_items(name: &str) -> Vec<Value> {
    match fixture(name).get("items") {
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    }
}

/// Set a value at a JSON pointer (`~1` for `/` in a key), creating
/// objects on the way.
pub fn set(obj: &mut Value, pointer: &str, value: impl Into<Value>) {
    let mut cur = obj;
    for part in pointer.trim_start_matches('/').split('/') {
        if !cur.is_object() {
            *cur = json!({});
        }
        // JSON pointer escapes: `~1` is `/`, `~0` is `~`.
        let part = part.replace("~1", "/").replace("~0", "~");
        cur = cur.as_object_mut().map(|m| m.entry(part).or_insert(Value::Null)).expect("made an object above");
    }
    *cur = value.into();
}

/// A copy of `obj` as a different object: new name and namespace, and no
/// uid or resourceVersion so the fake assigns fresh ones.
pub fn renamed(obj: &Value, namespace: &str, name: &str) -> Value {
    let mut obj = obj.clone();
    set(&mut obj, "/metadata/name", name);
    if !namespace.is_empty() {
        set(&mut obj, "/metadata/namespace", namespace);
    }
    if let Some(meta) = obj.pointer_mut("/metadata").and_then(Value::as_object_mut) {
        meta.remove("uid");
        meta.remove("resourceVersion");
    }
    obj
}

/// A pod from the `pod` fixture with its name, namespace, node and IP set.
pub fn pod(namespace: &str, name: &str, node: &str, ip: &str) -> Value {
    let mut p = renamed(&fixture("pod"), namespace, name);
    set(&mut p, "/spec/nodeName", node);
    set(&mut p, "/status/podIP", ip);
    set(&mut p, "/status/podIPs", json!([{"ip": ip}]));
    p
}

/// Synthetic nodes `node-0..n`, shaped like the `node` fixture.
pub fn synthetic_nodes(n: usize) -> Vec<Value> {
    let base = fixture("node");
    (0..n)
        .map(|i| {
            let name = format!("node-{i}");
            let mut node = renamed(&base, "", &name);
            set(&mut node, "/metadata/labels/kubernetes.io~1hostname", name.as_str());
            set(
                &mut node,
                "/status/addresses",
                json!([{"type": "InternalIP", "address": format!("10.1.{}.{}", i / 250, i % 250 + 1)},
                       {"type": "Hostname", "address": name}]),
            );
            node
        })
        .collect()
}

/// Synthetic pods `pod-0..n` in namespaces `ns-0..9`, spread over
/// `nodes` nodes, shaped like the `pod` fixture.
pub fn synthetic_pods(n: usize, nodes: usize) -> Vec<Value> {
    let base = fixture("pod");
    (0..n)
        .map(|i| {
            let ip = format!("10.{}.{}.{}", 100 + i / 62_500, (i / 250) % 250, i % 250 + 1);
            let mut p = renamed(&base, &format!("ns-{}", i % 10), &format!("pod-{i}"));
            set(&mut p, "/spec/nodeName", format!("node-{}", i % nodes.max(1)));
            set(&mut p, "/status/podIP", ip.as_str());
            set(&mut p, "/status/podIPs", json!([{"ip": ip}]));
            set(&mut p, "/metadata/labels/app", format!("app-{}", i % 100));
            set(&mut p, "/metadata/labels/pod-template-hash", "5d4b8c7f9");
            p
        })
        .collect()
}
