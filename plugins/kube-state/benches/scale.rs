//! Scale check: 10,000 realistic pods and 1,000 nodes applied to the
//! plugin, then `collect`. Prints the plugin's state bytes per object
//! (counted by a counting allocator: live bytes after the apply minus
//! before) and the collect time, each next to its target. Run with
//! `cargo bench -p wasmon-kube-state --bench scale`. Figures are native;
//! the release component runs the same code under wasmtime.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};
use wasmon_kube_state::KubeStatePlugin;
use wasmon_kube_state::kinds::Kind;
use wasmon_sdk_kube::{KubeState, ObjectEvent};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed) + layout.size() as isize;
        PEAK.fetch_max(live, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let grow = new_size as isize - layout.size() as isize;
        PEAK.fetch_max(LIVE.fetch_add(grow, Ordering::Relaxed) + grow, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const PODS: usize = 10_000;
const NODES: usize = 1_000;
const POD_BYTES_TARGET: f64 = 4096.0;
const COLLECT_TARGET: Duration = Duration::from_millis(100);

fn uid(kind: u32, i: usize) -> String {
    format!("{kind:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}", i >> 16, i & 0xfff, (i >> 4) & 0xfff, i * 7919)
}

/// A pod as a Deployment makes it: two containers (app + sidecar), an
/// init container, requests/limits, a PVC, the default tolerations and the
/// annotations and labels real pods carry.
fn pod(i: usize) -> String {
    let node = format!("node-{:04}", i % NODES);
    let ns = format!("team-{}", i % 40);
    let app = format!("app-{}", i % 500);
    let rs = format!("{app}-7d9f8c6b5");
    let name = format!("{rs}-{:05x}", i);
    // An image digest is shared by every pod of the image; container ids are per pod.
    let hash = format!("{:064x}", (i % 5000) as u128 * 0x9e3779b97f4a7c15);
    let cid = format!("{:064x}", i as u128 * 0x9e3779b97f4a7c15 + 1);
    serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": ns, "uid": uid(1, i), "resourceVersion": (1_000_000 + i).to_string(),
            "creationTimestamp": "2026-11-30T10:00:00Z", "generateName": format!("{rs}-"),
            "labels": {"app.kubernetes.io/name": app, "app.kubernetes.io/instance": "prod", "pod-template-hash": "7d9f8c6b5", "team": ns},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-29T08:00:00Z", "prometheus.io/scrape": "true", "prometheus.io/port": "9102"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs, "uid": uid(2, i % 500), "controller": true, "blockOwnerDeletion": true}],
            "managedFields": [{"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1", "time": "2026-11-30T10:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {}}}}]
        },
        "spec": {
            "nodeName": node, "restartPolicy": "Always", "schedulerName": "default-scheduler", "serviceAccountName": app,
            "priorityClassName": "", "dnsPolicy": "ClusterFirst", "terminationGracePeriodSeconds": 30,
            "initContainers": [{"name": "migrate", "image": format!("registry.example.com/{app}:1.4.{}", i % 10),
                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "64Mi"}}}],
            "containers": [
                {"name": "app", "image": format!("registry.example.com/{app}:1.4.{}", i % 10),
                 "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                 "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                 "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
                 "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 10}},
                {"name": "envoy", "image": "docker.io/envoyproxy/envoy:v1.32.1",
                 "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}}
            ],
            "tolerations": [
                {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300},
                {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300}
            ],
            "volumes": [
                {"name": "data", "persistentVolumeClaim": {"claimName": format!("data-{name}")}},
                {"name": "kube-api-access", "projected": {"sources": [{"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}]}}
            ]
        },
        "status": {
            "phase": "Running", "qosClass": "Burstable", "hostIP": format!("10.0.{}.{}", (i % NODES) / 250, (i % NODES) % 250),
            "podIP": format!("10.244.{}.{}", i / 250, i % 250), "podIPs": [{"ip": format!("10.244.{}.{}", i / 250, i % 250)}],
            "startTime": "2026-11-30T10:00:00Z",
            "conditions": [
                {"type": "PodReadyToStartContainers", "status": "True", "lastTransitionTime": "2026-11-30T10:00:03Z"},
                {"type": "Initialized", "status": "True", "lastTransitionTime": "2026-11-30T10:00:05Z"},
                {"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-30T10:00:12Z"},
                {"type": "ContainersReady", "status": "True", "lastTransitionTime": "2026-11-30T10:00:12Z"},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-11-30T10:00:00Z"}
            ],
            "initContainerStatuses": [{"name": "migrate", "ready": true, "restartCount": 0,
                "image": format!("registry.example.com/{app}:1.4.{}", i % 10), "imageID": format!("registry.example.com/{app}@sha256:{hash}"),
                "containerID": format!("containerd://{cid}"),
                "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": "2026-11-30T10:00:03Z", "finishedAt": "2026-11-30T10:00:05Z"}}}],
            "containerStatuses": [
                {"name": "app", "ready": true, "restartCount": i % 3, "started": true,
                 "image": format!("registry.example.com/{app}:1.4.{}", i % 10), "imageID": format!("registry.example.com/{app}@sha256:{hash}"),
                 "containerID": format!("containerd://{cid}"), "state": {"running": {"startedAt": "2026-11-30T10:00:06Z"}}, "lastState": {}},
                {"name": "envoy", "ready": true, "restartCount": 0, "started": true,
                 "image": "docker.io/envoyproxy/envoy:v1.32.1", "imageID": format!("docker.io/envoyproxy/envoy@sha256:{hash}"),
                 "containerID": format!("containerd://{cid}"), "state": {"running": {"startedAt": "2026-11-30T10:00:06Z"}}, "lastState": {}}
            ]
        }
    })
    .to_string()
}

fn node(i: usize) -> String {
    let text = include_str!("../tests/fixtures/node-tainted.json");
    let mut v: serde_json::Value = serde_json::from_str(text).expect("fixture");
    v["metadata"]["name"] = format!("node-{i:04}").into();
    v["metadata"]["uid"] = uid(3, i).into();
    v["metadata"]["labels"]["kubernetes.io/hostname"] = format!("node-{i:04}").into();
    v["status"]["addresses"][0]["address"] = format!("10.0.{}.{}", i / 250, i % 250).into();
    v.to_string()
}

fn apply(plugin: &mut KubeStatePlugin, kind: Kind, objects: impl Iterator<Item = String>) -> (isize, Duration) {
    let index = plugin.index_of(kind).expect("watched");
    let texts: Vec<String> = objects.collect();
    let before = LIVE.load(Ordering::Relaxed);
    let start = Instant::now();
    for chunk in texts.chunks(500) {
        let events = chunk.iter().map(|t| ObjectEvent::applied(index, t.clone())).collect();
        plugin.apply(events).expect("apply");
    }
    let took = start.elapsed();
    // The event texts of the last chunk are freed by now; only state is left.
    (LIVE.load(Ordering::Relaxed) - before, took)
}

fn run(label: &str, config: &str) {
    let (mut plugin, _) = KubeStatePlugin::init(config).expect("config");
    let sample = pod(1);
    let (pod_bytes, pod_apply) = apply(&mut plugin, Kind::Pod, (0..PODS).map(pod));
    let (node_bytes, node_apply) = apply(&mut plugin, Kind::Node, (0..NODES).map(node));
    // `collect` into an exposition that, like the host, takes each fragment
    // and lets it go; the counting allocator's peak during the call is what
    // the plugin itself needs for its output.
    let mut times = Vec::new();
    let mut peaks = Vec::new();
    let mut bytes = 0;
    let mut kept = Vec::new();
    for round in 0..7 {
        let mut out = wasmon_sdk_kube::Exposition::default();
        let live = LIVE.load(Ordering::Relaxed);
        PEAK.store(live, Ordering::Relaxed);
        let start = Instant::now();
        plugin.collect(&mut out).expect("collect");
        times.push(start.elapsed());
        // Natively the fragments stay (in the component they go to the
        // host): the peak beyond them is the plugin's own buffers.
        peaks.push(PEAK.load(Ordering::Relaxed) - live - out.bytes() as isize);
        bytes = out.bytes();
        if round == 0 {
            kept = out.fragments().to_vec();
        }
    }
    let mut parse_times = Vec::new();
    let mut series = 0;
    for _ in 0..3 {
        let start = Instant::now();
        let families = wasmon_sdk::text::parse_fragments(&kept).expect("own text parses");
        parse_times.push(start.elapsed());
        series = families.iter().map(|f| f.metrics.len()).sum::<usize>();
    }
    times.sort();
    parse_times.sort();
    let per_pod = pod_bytes as f64 / PODS as f64;
    println!("== {label} (config {config})");
    println!("  pod JSON as the API sends it:  {} bytes (this benchmark's pod)", sample.len());
    println!(
        "  state per pod:   {per_pod:>8.0} bytes   target <= {POD_BYTES_TARGET:.0}   {}",
        if per_pod <= POD_BYTES_TARGET { "ok" } else { "OVER" }
    );
    println!("  state per node:  {:>8.0} bytes", node_bytes as f64 / NODES as f64);
    println!(
        "  apply:           {:>8.1} µs/pod, {:.1} µs/node",
        pod_apply.as_secs_f64() * 1e6 / PODS as f64,
        node_apply.as_secs_f64() * 1e6 / NODES as f64
    );
    println!("  series:          {series} ({:.1} per pod+node object)", series as f64 / (PODS + NODES) as f64);
    let median = times[times.len() / 2];
    println!(
        "  collect:         median {:.1} ms, min {:.1} ms   target <= {} ms   {}",
        median.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        COLLECT_TARGET.as_millis(),
        if median <= COLLECT_TARGET { "ok" } else { "OVER" }
    );
    println!(
        "  output:          {:.0} MiB of text in {} fragments ({:.0} bytes per series); the plugin's own buffers at most {:.1} MiB",
        bytes as f64 / 1048576.0,
        kept.len(),
        bytes as f64 / series as f64,
        *peaks.iter().max().unwrap_or(&0) as f64 / 1048576.0
    );
    println!(
        "  the host reading it back into families (SDK parser, natively): median {:.1} ms",
        parse_times[parse_times.len() / 2].as_secs_f64() * 1e3
    );
}

fn main() {
    run("10,000 pods + 1,000 nodes, KSM defaults", "{}");
    run(
        "the same with every pod and node label allowlisted",
        r#"{"metric_labels_allowlist":{"pods":["*"],"nodes":["*"]}}"#,
    );
}
