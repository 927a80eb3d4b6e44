//! The Kubernetes deployment in `deploy/`: every kustomize variant renders,
//! every object it renders is exactly a valid object of its API type, the
//! agent configs it ships pass `wasmon check config`, the RBAC grants
//! exactly what those configs make the code call, the PrometheusRules are
//! the plugins' own rules, and the Containerfile builds from what exists.
//!
//! Needs `kubectl` (Debian package `kubectl`, for `kubectl kustomize`),
//! `openssl`, and the plugins built for wasm32-wasip2 (scripts/test.sh
//! does all three). `UPDATE_DEPLOY=1` rewrites the generated
//! `overlays/prometheus-operator/prometheusrules.yaml`; review the diff.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PodSpec, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use wasmon::config::Config;
use wasmon_discovery::kubernetes::Role as SdRole;
use wasmon_discovery::kubernetes::rbac::{
    RbacRule, covers, feed_rules, leader_election_rules, sd_rules, token_scrape_rules,
};

/// The variants an operator can deploy (`kubectl apply -k DIR`).
const VARIANTS: [&str; 4] = ["base", "overlays/standalone", "overlays/remote-write", "overlays/prometheus-operator"];

/// Where a pod finds its service account's token and CA.
const SA_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn kubernetes_dir() -> PathBuf {
    repo().join("deploy/kubernetes")
}

/// The objects `kubectl kustomize` renders for a variant, once per run.
fn rendered(variant: &str) -> &'static [Value] {
    static CACHE: OnceLock<BTreeMap<&'static str, Vec<Value>>> = OnceLock::new();
    let all = CACHE.get_or_init(|| VARIANTS.iter().map(|v| (*v, render(v))).collect());
    &all[variant]
}

fn render(variant: &str) -> Vec<Value> {
    let dir = kubernetes_dir().join(variant);
    let out = Command::new("kubectl").arg("kustomize").arg(&dir).output().unwrap_or_else(|e| {
        panic!("cannot run kubectl ({e}): install the Debian package kubectl (scripts/test.sh does)")
    });
    assert!(
        out.status.success(),
        "kubectl kustomize {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let objects: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{variant}: rendered YAML: {e}")))
        .filter(|v| !v.is_null())
        .collect();
    assert!(!objects.is_empty(), "{variant} renders nothing");
    objects
}

fn id(obj: &Value) -> String {
    format!(
        "{} {}/{}",
        obj["kind"].as_str().unwrap_or("?"),
        obj["metadata"]["namespace"].as_str().unwrap_or("-"),
        name(obj)
    )
}

fn name(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or("?")
}

fn objects_of<'a>(objects: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    objects.iter().filter(move |o| o["kind"] == kind)
}

fn typed<T: DeserializeOwned>(obj: &Value) -> T {
    serde_json::from_value(obj.clone()).unwrap_or_else(|e| panic!("{}: {e}", id(obj)))
}

// ---------------------------------------------------------------------------
// Strict types

/// The first place where `output` (the input after a trip through the type)
/// differs from `input`: a field the type does not have (unknown or in the
/// wrong place) is dropped on the way, so it shows up here by its path.
fn first_difference(path: &str, input: &Value, output: &Value) -> Option<String> {
    match (input, output) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                let at = format!("{path}.{key}");
                match b.get(key) {
                    None => return Some(format!("{at}: not a field of this type here (unknown or misplaced)")),
                    Some(other) => {
                        if let Some(d) = first_difference(&at, value, other) {
                            return Some(d);
                        }
                    }
                }
            }
            b.keys().find(|k| !a.contains_key(*k)).map(|k| format!("{path}.{k}: added by the type"))
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            a.iter().zip(b).enumerate().find_map(|(i, (x, y))| first_difference(&format!("{path}[{i}]"), x, y))
        }
        _ if input == output => None,
        _ => Some(format!("{path}: {input} became {output}")),
    }
}

/// Deserialize into `T`, serialize back, and require the same object.
fn round_trip<T: DeserializeOwned + Serialize>(obj: &Value) -> Result<(), String> {
    let value: T = serde_json::from_value(obj.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&value).map_err(|e| e.to_string())?;
    match first_difference("", obj, &back) {
        None => Ok(()),
        Some(d) => Err(d),
    }
}

/// monitoring.coreos.com/v1 objects, with only the fields the manifests use
/// (and those the plugins' rule files use): anything else is refused.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Crd<S> {
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
    spec: S,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ServiceMonitorSpec {
    selector: LabelSelector,
    endpoints: Vec<MonitorEndpoint>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PodMonitorSpec {
    selector: LabelSelector,
    pod_metrics_endpoints: Vec<MonitorEndpoint>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MonitorEndpoint {
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    honor_labels: Option<bool>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrometheusRuleSpec {
    groups: Vec<RuleGroup>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleGroup {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<u64>,
    rules: Vec<RuleEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alert: Option<String>,
    expr: String,
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    for_: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_firing_for: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    labels: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<BTreeMap<String, String>>,
}

fn strictly_typed(obj: &Value) -> Result<(), String> {
    let api_version = obj["apiVersion"].as_str().unwrap_or_default();
    let kind = obj["kind"].as_str().unwrap_or_default();
    match (api_version, kind) {
        ("v1", "Namespace") => round_trip::<Namespace>(obj),
        ("v1", "ServiceAccount") => round_trip::<ServiceAccount>(obj),
        ("v1", "ConfigMap") => round_trip::<ConfigMap>(obj),
        ("v1", "Service") => round_trip::<Service>(obj),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => round_trip::<ClusterRole>(obj),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => round_trip::<ClusterRoleBinding>(obj),
        ("rbac.authorization.k8s.io/v1", "Role") => round_trip::<Role>(obj),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => round_trip::<RoleBinding>(obj),
        ("apps/v1", "DaemonSet") => round_trip::<DaemonSet>(obj),
        ("apps/v1", "Deployment") => round_trip::<Deployment>(obj),
        ("monitoring.coreos.com/v1", "ServiceMonitor") => round_trip::<Crd<ServiceMonitorSpec>>(obj),
        ("monitoring.coreos.com/v1", "PodMonitor") => round_trip::<Crd<PodMonitorSpec>>(obj),
        ("monitoring.coreos.com/v1", "PrometheusRule") => round_trip::<Crd<PrometheusRuleSpec>>(obj),
        _ => Err(format!("no type known for apiVersion {api_version:?} kind {kind:?}; add it to this test")),
    }
}

#[test]
fn every_variant_renders_and_every_object_is_strictly_its_api_type() {
    let mut problems = Vec::new();
    for variant in VARIANTS {
        for obj in rendered(variant) {
            if let Err(e) = strictly_typed(obj) {
                problems.push(format!("{variant}: {}: {e}", id(obj)));
            }
        }
        let ids: Vec<String> = rendered(variant).iter().map(id).collect();
        let unique: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "{variant}: an object is rendered twice: {ids:#?}");
    }
    assert!(problems.is_empty(), "objects that are not exactly their API type:\n{}", problems.join("\n"));
}

#[test]
fn the_strict_check_catches_unknown_and_misplaced_fields() {
    // The check above is only as good as its failures: prove it has them.
    let base = rendered("base");
    let ds = objects_of(base, "DaemonSet").next().unwrap().clone();
    let mut unknown = ds.clone();
    unknown["spec"]["template"]["spec"]["hostPid"] = Value::Bool(true);
    let e = strictly_typed(&unknown).unwrap_err();
    assert!(e.contains(".spec.template.spec.hostPid"), "{e}");
    let mut misplaced = ds.clone();
    misplaced["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFilesystem"] = Value::Bool(true);
    let e = strictly_typed(&misplaced).unwrap_err();
    assert!(e.contains("containers[0].readOnlyRootFilesystem"), "{e}");
    let mut wrong_type = ds;
    wrong_type["spec"]["template"]["spec"]["hostNetwork"] = Value::String("yes".into());
    assert!(strictly_typed(&wrong_type).is_err());
    let monitor = objects_of(rendered("overlays/prometheus-operator"), "PodMonitor").next().unwrap();
    let mut bad = monitor.clone();
    bad["spec"]["podMetricsEndpoints"][0]["honourLabels"] = Value::Bool(true);
    assert!(strictly_typed(&bad).unwrap_err().contains("honourLabels"));
}

// ---------------------------------------------------------------------------
// The workloads and their configs

/// A DaemonSet or Deployment's pod, typed.
struct Workload {
    id: String,
    namespace: String,
    pod: PodSpec,
}

fn workloads(objects: &[Value]) -> Vec<Workload> {
    let mut out = Vec::new();
    for obj in objects {
        let template = match obj["kind"].as_str() {
            Some("DaemonSet") => typed::<DaemonSet>(obj).spec.map(|s| s.template),
            Some("Deployment") => typed::<Deployment>(obj).spec.map(|s| s.template),
            _ => continue,
        };
        let pod = template.and_then(|t| t.spec).unwrap_or_else(|| panic!("{}: no pod spec", id(obj)));
        out.push(Workload {
            id: id(obj),
            namespace: obj["metadata"]["namespace"].as_str().unwrap_or("default").to_string(),
            pod,
        });
    }
    out
}

/// The `--config=FILE` of a workload's container.
fn config_arg(w: &Workload) -> String {
    let container = &w.pod.containers[0];
    container
        .args
        .iter()
        .flatten()
        .find_map(|a| a.strip_prefix("--config=").map(str::to_string))
        .unwrap_or_else(|| panic!("{}: no --config= argument", w.id))
}

/// What the pod sees at `mount_path`: the volume mounted there.
fn volume_at<'a>(w: &'a Workload, mount_path: &str) -> Option<&'a k8s_openapi::api::core::v1::Volume> {
    let mount = w.pod.containers[0].volume_mounts.iter().flatten().find(|m| m.mount_path == mount_path)?;
    w.pod.volumes.iter().flatten().find(|v| v.name == mount.name)
}

/// The ConfigMap a workload's agent config comes from, and the file's text.
fn agent_config(objects: &[Value], w: &Workload) -> (String, String) {
    let path = config_arg(w);
    let (dir, file) = path.rsplit_once('/').unwrap();
    let volume = volume_at(w, dir).unwrap_or_else(|| panic!("{}: nothing mounted at {dir} for --config", w.id));
    let cm_name = &volume.config_map.as_ref().unwrap_or_else(|| panic!("{}: {dir} is not a ConfigMap", w.id)).name;
    let cm = objects_of(objects, "ConfigMap")
        .find(|c| name(c) == cm_name.as_str())
        .unwrap_or_else(|| panic!("{}: ConfigMap {cm_name} is not rendered", w.id));
    let text = cm["data"][file].as_str().unwrap_or_else(|| panic!("{}: ConfigMap {cm_name} has no {file}", w.id));
    (cm_name.clone(), text.to_string())
}

fn parse_config(text: &str, at: &str) -> Config {
    // Structure only (serde); the full check with its file checks is
    // `wasmon check config` below.
    serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("{at}: {e}"))
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl ({e}): install the Debian package openssl"));
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A stand-in for what a pod of `w` sees, under a temp dir: each ConfigMap
/// at its mount path, the service-account token and CA, and a host root
/// with what a kubeadm control-plane node has that this machine does not
/// (etcd's CA and health-check client certificate, RSA keys in PKCS#1 like
/// kubeadm's). Returns (path in the pod -> path here), longest first.
///
/// The configs name paths that exist only inside the pod (/host/...,
/// /var/run/secrets/..., the ConfigMap mounts): the check rewrites those
/// prefixes to these stand-ins, and leaves every other byte of the config
/// as it is shipped. /host/proc and /host/sys are the host's /proc and
/// /sys, so they map to this machine's.
fn pod_filesystem(objects: &[Value], w: &Workload, root: &Path) -> Vec<(String, PathBuf)> {
    let mut map: Vec<(String, PathBuf)> = Vec::new();
    for mount in w.pod.containers[0].volume_mounts.iter().flatten() {
        let volume = w.pod.volumes.iter().flatten().find(|v| v.name == mount.name).unwrap();
        let here = root.join(mount.mount_path.trim_start_matches('/'));
        if let Some(cm) = &volume.config_map {
            let obj = objects_of(objects, "ConfigMap").find(|c| name(c) == cm.name).unwrap_or_else(|| {
                panic!("{}: ConfigMap {} mounted at {} is not rendered", w.id, cm.name, mount.mount_path)
            });
            std::fs::create_dir_all(&here).unwrap();
            for (file, text) in obj["data"].as_object().into_iter().flatten() {
                std::fs::write(here.join(file), text.as_str().unwrap()).unwrap();
            }
            map.push((mount.mount_path.clone(), here));
        } else if let Some(host) = &volume.host_path {
            match host.path.as_str() {
                "/proc" | "/sys" | "/var/log" => map.push((mount.mount_path.clone(), PathBuf::from(&host.path))),
                _ => {
                    std::fs::create_dir_all(&here).unwrap();
                    map.push((mount.mount_path.clone(), here));
                }
            }
        } else {
            std::fs::create_dir_all(&here).unwrap();
            map.push((mount.mount_path.clone(), here));
        }
    }
    // The token volume Kubernetes mounts into every pod with a service account.
    let sa = root.join(SA_DIR.trim_start_matches('/'));
    std::fs::create_dir_all(&sa).unwrap();
    std::fs::write(sa.join("token"), "eyJhbGciOiJSUzI1NiJ9.test.token\n").unwrap();
    std::fs::write(sa.join("namespace"), &w.namespace).unwrap();
    map.push((SA_DIR.into(), sa.clone()));
    // A CA (the cluster's, and etcd's) and etcd's health-check client.
    let pki = root.join("host/root/etc/kubernetes/pki/etcd");
    std::fs::create_dir_all(&pki).unwrap();
    openssl(&pki, &["genrsa", "-traditional", "-out", "ca.key", "2048"]);
    openssl(&pki, &["req", "-x509", "-new", "-key", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=etcd-ca"]);
    openssl(&pki, &["genrsa", "-traditional", "-out", "healthcheck-client.key", "2048"]);
    openssl(
        &pki,
        &[
            "req",
            "-new",
            "-key",
            "healthcheck-client.key",
            "-out",
            "client.csr",
            "-subj",
            "/CN=kube-etcd-healthcheck-client",
        ],
    );
    // A v3 client certificate, as kubeadm's (webpki refuses v1).
    std::fs::write(
        pki.join("client.ext"),
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    openssl(
        &pki,
        &[
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "healthcheck-client.crt",
            "-days",
            "1",
            "-extfile",
            "client.ext",
        ],
    );
    std::fs::copy(pki.join("ca.crt"), sa.join("ca.crt")).unwrap();
    map.sort_by_key(|(pod, _)| std::cmp::Reverse(pod.len()));
    map
}

/// `text` with every path that starts with a mount path of the pod moved to
/// its stand-in (whole path components only).
fn rewrite_paths(text: &str, map: &[(String, PathBuf)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'scan: while !rest.is_empty() {
        for (pod, here) in map {
            if let Some(after) = rest.strip_prefix(pod.as_str())
                && after.chars().next().is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '-' || c == '.'))
            {
                out.push_str(&here.display().to_string());
                rest = after;
                continue 'scan;
            }
        }
        let c = rest.chars().next().unwrap();
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[test]
fn path_rewriting_moves_whole_components_only() {
    let map = vec![("/host/root".to_string(), PathBuf::from("/tmp/x")), ("/host".to_string(), PathBuf::from("/h"))];
    assert_eq!(
        rewrite_paths("a: /host/root/etc\nb: /host/rootfs\nc: /hostile", &map),
        "a: /tmp/x/etc\nb: /h/rootfs\nc: /hostile"
    );
}

#[test]
fn the_shipped_agent_configs_pass_wasmon_check_config() {
    let mut checked = BTreeSet::new();
    let mut failures = Vec::new();
    for variant in VARIANTS {
        let objects = rendered(variant);
        for w in workloads(objects) {
            let (cm, text) = agent_config(objects, &w);
            // base and prometheus-operator ship the same configs: check each once.
            if !checked.insert(text.clone()) {
                continue;
            }
            let dir = tempfile::tempdir().unwrap();
            let map = pod_filesystem(objects, &w, dir.path());
            let config_path = PathBuf::from(rewrite_paths(&config_arg(&w), &map));
            std::fs::write(&config_path, rewrite_paths(&text, &map)).unwrap();
            let out = Command::new(env!("CARGO_BIN_EXE_wasmon"))
                .arg("check")
                .arg("config")
                .arg(&config_path)
                .current_dir(dir.path())
                .env("WASMON_CACHE_DIR", common::cache_dir())
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            if !out.status.success() || !stdout.contains(": OK") {
                failures.push(format!(
                    "{variant}: {} (ConfigMap {cm}): wasmon check config failed:\n{stdout}{}",
                    w.id,
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(checked.len() >= 9, "expected 3 configs in base, standalone and remote-write; checked {}", checked.len());
}

#[test]
fn overlays_extend_every_agent_config() {
    // remote-write: every agent (node agents and kube-state) sends to the
    // URL of the one file the operator edits.
    let edit: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(kubernetes_dir().join("overlays/remote-write/remote-write.yaml")).unwrap(),
    )
    .unwrap();
    let wanted: Config = parse_config(edit["data"]["remote_write.yaml"].as_str().unwrap(), "remote-write.yaml");
    let url = &wanted.remote_write[0].url;
    let objects = rendered("overlays/remote-write");
    for w in workloads(objects) {
        let (cm, text) = agent_config(objects, &w);
        let config = parse_config(&text, &cm);
        assert_eq!(config.remote_write.len(), 1, "{cm}");
        assert_eq!(&config.remote_write[0].url, url, "{cm}");
    }
    // standalone: every agent evaluates the rules of the plugins it runs,
    // and the rule files of the wasmon-rules ConfigMap it mounts.
    let objects = rendered("overlays/standalone");
    for w in workloads(objects) {
        let (cm, text) = agent_config(objects, &w);
        let config = parse_config(&text, &cm);
        let plugins: BTreeSet<String> = config.scrape_configs.iter().filter_map(|j| j.plugin.clone()).collect();
        let with_rules: BTreeSet<String> =
            plugins.into_iter().filter(|p| repo().join("plugins").join(p).join("rules.yaml").is_file()).collect();
        let enabled: BTreeSet<String> = config.plugin_rules.iter().cloned().collect();
        assert_eq!(enabled, with_rules, "{cm}: plugin_rules should be the rules of its plugins");
        assert!(config.notifier.is_some(), "{cm}: alerts go nowhere");
        for pattern in &config.rule_files {
            let dir = pattern.rsplit_once('/').unwrap().0;
            assert!(volume_at(&w, dir).and_then(|v| v.config_map.as_ref()).is_some(), "{cm}: {pattern} is not mounted");
        }
        assert!(!config.rule_files.is_empty(), "{cm}: no rule_files");
    }
    // The base keeps its data locally and alerts nowhere.
    let objects = rendered("base");
    for w in workloads(objects) {
        let (cm, text) = agent_config(objects, &w);
        let config = parse_config(&text, &cm);
        assert!(config.remote_write.is_empty() && config.plugin_rules.is_empty(), "{cm}");
    }
}

// ---------------------------------------------------------------------------
// The pods

fn env_field(w: &Workload, var: &str) -> Option<String> {
    w.pod.containers[0]
        .env
        .iter()
        .flatten()
        .find(|e| e.name == var)
        .and_then(|e| e.value_from.as_ref())
        .and_then(|v| v.field_ref.as_ref())
        .map(|f| f.field_path.clone())
}

#[test]
fn the_pods_have_what_their_configs_rely_on() {
    for variant in VARIANTS {
        let objects = rendered(variant);
        let mut node_agents = Vec::new();
        for w in workloads(objects) {
            let (cm, text) = agent_config(objects, &w);
            let config = parse_config(&text, &cm);
            let at = format!("{variant}: {}", w.id);
            let c = &w.pod.containers[0];
            let security = c.security_context.as_ref().unwrap_or_else(|| panic!("{at}: no securityContext"));
            assert_eq!(security.read_only_root_filesystem, Some(true), "{at}");
            assert_eq!(security.allow_privilege_escalation, Some(false), "{at}");
            let caps = security.capabilities.as_ref().unwrap();
            assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_string()][..]), "{at}");
            assert!(caps.add.as_ref().is_none_or(|a| a.is_empty()), "{at}: adds capabilities {:?}", caps.add);
            let probe_path = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
                p.as_ref().and_then(|p| p.http_get.as_ref()).and_then(|h| h.path.clone())
            };
            assert_eq!(probe_path(&c.liveness_probe).as_deref(), Some("/-/healthy"), "{at}");
            assert_eq!(probe_path(&c.readiness_probe).as_deref(), Some("/-/ready"), "{at}");
            let resources = c.resources.as_ref().unwrap();
            assert!(resources.requests.is_some() && resources.limits.is_some(), "{at}: requests and limits");
            // A writable store and plugin cache, the root fs being read-only.
            let args = c.args.clone().unwrap_or_default();
            let data = args.iter().find_map(|a| a.strip_prefix("--storage.tsdb.path=")).unwrap();
            let cache = c.env.iter().flatten().find(|e| e.name == "WASMON_CACHE_DIR").and_then(|e| e.value.clone());
            for dir in [Some(data.to_string()), cache].into_iter().flatten() {
                let mount = c
                    .volume_mounts
                    .iter()
                    .flatten()
                    .filter(|m| dir.starts_with(&m.mount_path))
                    .max_by_key(|m| m.mount_path.len())
                    .unwrap_or_else(|| panic!("{at}: {dir} is on the read-only root"));
                assert_ne!(mount.read_only, Some(true), "{at}: {dir} is read-only");
            }
            // Jobs that select on $NODE_NAME get it from the downward API.
            if text.contains("$NODE_NAME") {
                assert_eq!(env_field(&w, "NODE_NAME").as_deref(), Some("spec.nodeName"), "{at}");
                assert_eq!(env_field(&w, "NODE_IP").as_deref(), Some("status.hostIP"), "{at}");
                node_agents.push(w.id.clone());
                let spec = &w.pod;
                assert_eq!(spec.host_pid, Some(true), "{at}");
                assert_eq!(spec.host_network, Some(true), "{at}");
                assert_eq!(spec.dns_policy.as_deref(), Some("ClusterFirstWithHostNet"), "{at}");
                let tolerations = spec.tolerations.clone().unwrap_or_default();
                assert!(
                    tolerations
                        .iter()
                        .any(|t| t.operator.as_deref() == Some("Exists") && t.key.is_none() && t.effect.is_none()),
                    "{at}: does not tolerate every taint"
                );
                // The config's host paths are the host's, read-only.
                for (pod_path, host) in [
                    (&config.paths.procfs, "/proc"),
                    (&config.paths.sysfs, "/sys"),
                    (&config.paths.rootfs, "/"),
                    (&PathBuf::from("/var/log"), "/var/log"),
                ] {
                    let pod_path = pod_path.display().to_string();
                    let volume = volume_at(&w, &pod_path).unwrap_or_else(|| panic!("{at}: nothing at {pod_path}"));
                    assert_eq!(volume.host_path.as_ref().map(|h| h.path.as_str()), Some(host), "{at}: {pod_path}");
                    let mount = c.volume_mounts.iter().flatten().find(|m| m.mount_path == pod_path).unwrap();
                    assert_eq!(mount.read_only, Some(true), "{at}: {pod_path} is writable");
                }
                let store = volume_at(&w, data.rsplit_once('/').unwrap().0).unwrap();
                assert_eq!(
                    store.host_path.as_ref().and_then(|h| h.type_.as_deref()),
                    Some("DirectoryOrCreate"),
                    "{at}: the WAL must outlive the pod"
                );
            }
            // Leader election campaigns as the pod, in the pod's namespace.
            for job in config.scrape_configs.iter().filter_map(|j| j.kubernetes.as_ref()) {
                if let Some(le) = &job.leader_election {
                    if le.identity.is_none() {
                        assert_eq!(env_field(&w, "POD_NAME").as_deref(), Some("metadata.name"), "{at}");
                    }
                    if le.lease_namespace.is_none() {
                        assert_eq!(env_field(&w, "POD_NAMESPACE").as_deref(), Some("metadata.namespace"), "{at}");
                    }
                }
            }
        }
        assert_eq!(node_agents.len(), 2, "{variant}: the two node-agent DaemonSets: {node_agents:?}");
        let deployments: Vec<Deployment> = objects_of(objects, "Deployment").map(typed).collect();
        assert_eq!(deployments.len(), 1, "{variant}");
        assert_eq!(deployments[0].spec.as_ref().unwrap().replicas, Some(2), "{variant}: kube-state replicas");
        // Every node runs exactly one agent: the two DaemonSets split the
        // nodes on the control-plane label and are otherwise the same pod.
        let ds: Vec<DaemonSet> = objects_of(objects, "DaemonSet").map(typed).collect();
        let term = |d: &DaemonSet| {
            let affinity = d.spec.as_ref().unwrap().template.spec.as_ref().unwrap().affinity.clone().unwrap();
            let required = affinity.node_affinity.unwrap().required_during_scheduling_ignored_during_execution.unwrap();
            assert_eq!(required.node_selector_terms.len(), 1);
            let e = required.node_selector_terms[0].match_expressions.clone().unwrap();
            assert_eq!(e.len(), 1);
            (e[0].key.clone(), e[0].operator.clone())
        };
        let (a, b) = (term(&ds[0]), term(&ds[1]));
        assert_eq!(a.0, b.0, "{variant}");
        let ops: BTreeSet<String> = [a.1, b.1].into();
        assert_eq!(ops, ["DoesNotExist".to_string(), "Exists".to_string()].into(), "{variant}");
        let normalized = |d: &DaemonSet| {
            let mut pod = serde_json::to_value(d.spec.as_ref().unwrap().template.spec.as_ref().unwrap()).unwrap();
            pod["affinity"] = Value::Null;
            for v in pod["volumes"].as_array_mut().unwrap() {
                if v["name"] == "config" {
                    v["configMap"]["name"] = Value::Null;
                }
            }
            pod
        };
        assert_eq!(normalized(&ds[0]), normalized(&ds[1]), "{variant}: the two DaemonSets' pods drifted apart");
        let selectors: BTreeSet<String> =
            ds.iter().map(|d| serde_json::to_string(&d.spec.as_ref().unwrap().selector).unwrap()).collect();
        assert_eq!(selectors.len(), 2, "{variant}: the DaemonSets share a selector");
    }
}

// ---------------------------------------------------------------------------
// RBAC

/// One permission: (API group, resource, verb), or a non-resource URL and verb.
type Grant = (String, String, String);

fn grants(rules: &[RbacRule]) -> BTreeSet<Grant> {
    rules
        .iter()
        .flat_map(|r| {
            r.resources
                .iter()
                .flat_map(move |res| r.verbs.iter().map(move |v| (r.api_group.clone(), res.clone(), v.clone())))
        })
        .collect()
}

fn from_policy(rules: &[PolicyRule]) -> (Vec<RbacRule>, BTreeSet<(String, String)>) {
    let mut resource_rules = Vec::new();
    let mut urls = BTreeSet::new();
    for r in rules {
        for group in r.api_groups.iter().flatten() {
            resource_rules.push(RbacRule {
                api_group: group.clone(),
                resources: r.resources.clone().unwrap_or_default(),
                verbs: r.verbs.clone(),
            });
        }
        for url in r.non_resource_urls.iter().flatten() {
            urls.extend(r.verbs.iter().map(|v| (url.clone(), v.clone())));
        }
    }
    (resource_rules, urls)
}

/// The kinds the kube-state plugin asks to watch with this job's config:
/// the plugin itself answers, through the same `init` and the same
/// conversion the agent uses (`kube_state::feed_resources`).
fn kube_state_feed(config: &Config, job: &wasmon::config::ScrapeConfig) -> Vec<RbacRule> {
    let plugin = job.plugin.as_deref().unwrap();
    let path = wasmon::plugins::resolve(plugin, &config.plugins.directories).unwrap();
    let runtime = wasmon::runtime::Runtime::new(wasmon::config::PathsConfig::default(), &common::cache_dir()).unwrap();
    let loaded = runtime.load_kube_state(plugin, &path).unwrap();
    let sandbox = wasmon::runtime::Sandbox::locked_down(runtime.paths(), std::time::Duration::from_secs(60));
    let mut instance = loaded.instantiate(&sandbox).unwrap();
    let resources = instance.init(&job.plugin_config_json().unwrap()).result.unwrap();
    feed_rules(&wasmon::kube_state::feed_resources(&resources))
}

/// What one service account's pods make the code call, from their configs:
/// cluster-wide rules, non-resource URLs, and rules per namespace (with
/// the resource names they may be narrowed to).
#[derive(Default)]
struct Needed {
    cluster: Vec<RbacRule>,
    urls: BTreeSet<(String, String)>,
    namespaced: BTreeMap<String, (Vec<RbacRule>, BTreeSet<String>)>,
}

fn needed_by(config: &Config, pod_namespace: &str, needed: &mut Needed) {
    let token = format!("{SA_DIR}/token");
    for job in &config.scrape_configs {
        let sends_token = job
            .authorization
            .as_ref()
            .and_then(|a| a.credentials_file.as_ref())
            .is_some_and(|f| f.as_path() == Path::new(&token));
        for sd in &job.kubernetes_sd_configs {
            let role = SdRole::parse(&sd.role).unwrap();
            needed.cluster.extend(sd_rules(role, sd.attach_metadata.node));
            if sends_token {
                let (rules, urls) = token_scrape_rules(role, &job.metrics_path);
                needed.cluster.extend(rules);
                for u in urls {
                    needed
                        .urls
                        .extend(u.verbs.iter().flat_map(|v| u.urls.iter().map(move |url| (url.clone(), v.clone()))));
                }
            }
        }
        if let Some(api) = &job.kubernetes {
            let feed = kube_state_feed(config, job);
            if api.namespaces.is_empty() {
                needed.cluster.extend(feed);
            } else {
                for ns in &api.namespaces {
                    needed.namespaced.entry(ns.clone()).or_default().0.extend(feed.clone());
                }
            }
            if let Some(le) = &api.leader_election {
                let ns = le.lease_namespace.clone().unwrap_or_else(|| pod_namespace.to_string());
                let entry = needed.namespaced.entry(ns).or_default();
                entry.0.extend(leader_election_rules());
                entry.1.insert(le.lease_name.clone());
            }
        }
    }
}

#[test]
fn rbac_grants_exactly_what_the_configs_make_the_code_call() {
    for variant in VARIANTS {
        let objects = rendered(variant);
        // Service account -> what its pods' configs need.
        let mut by_account: BTreeMap<(String, String), Needed> = BTreeMap::new();
        for w in workloads(objects) {
            let (cm, text) = agent_config(objects, &w);
            let config = parse_config(&text, &cm);
            let account = w.pod.service_account_name.clone().unwrap_or_else(|| "default".into());
            needed_by(&config, &w.namespace, by_account.entry((w.namespace.clone(), account)).or_default());
        }
        let accounts: BTreeSet<String> = objects_of(objects, "ServiceAccount").map(id).collect();
        for ((ns, account), needed) in &by_account {
            let at = format!("{variant}: ServiceAccount {ns}/{account}");
            assert!(accounts.contains(&format!("ServiceAccount {ns}/{account}")), "{at} is not rendered");
            let is_subject = |obj: &Value| {
                obj["subjects"].as_array().into_iter().flatten().any(|s| {
                    s["kind"] == "ServiceAccount" && s["name"] == account.as_str() && s["namespace"] == ns.as_str()
                })
            };
            // Cluster-wide: ClusterRoles bound with ClusterRoleBindings.
            let mut cluster = Vec::new();
            let mut urls = BTreeSet::new();
            for binding in objects_of(objects, "ClusterRoleBinding").filter(|b| is_subject(b)) {
                let binding: ClusterRoleBinding = typed(binding);
                assert_eq!(binding.role_ref.kind, "ClusterRole", "{at}");
                let role = objects_of(objects, "ClusterRole")
                    .find(|r| name(r) == binding.role_ref.name)
                    .unwrap_or_else(|| panic!("{at}: ClusterRole {} is not rendered", binding.role_ref.name));
                let role: ClusterRole = typed(role);
                for rule in role.rules.iter().flatten() {
                    assert!(
                        rule.resource_names.is_none(),
                        "{at}: ClusterRole {}: resourceNames",
                        binding.role_ref.name
                    );
                }
                let (rules, u) = from_policy(&role.rules.unwrap_or_default());
                cluster.extend(rules);
                urls.extend(u);
            }
            assert!(covers(&cluster, &needed.cluster), "{at}: the ClusterRole does not cover what the code calls");
            let (granted, wanted) = (grants(&cluster), grants(&needed.cluster));
            assert_eq!(
                granted,
                wanted,
                "{at}: cluster-wide grants differ from what the configs use\n  missing: {:?}\n  not needed: {:?}",
                wanted.difference(&granted).collect::<Vec<_>>(),
                granted.difference(&wanted).collect::<Vec<_>>()
            );
            assert_eq!(urls, needed.urls, "{at}: nonResourceURLs differ from the token-authorized scrapes");
            // Per namespace: Roles bound with RoleBindings there.
            let mut namespaced: BTreeMap<String, Vec<PolicyRule>> = BTreeMap::new();
            for binding in objects_of(objects, "RoleBinding").filter(|b| is_subject(b)) {
                let binding_ns = binding["metadata"]["namespace"].as_str().unwrap().to_string();
                let binding: RoleBinding = typed(binding);
                assert_eq!(binding.role_ref.kind, "Role", "{at}: a RoleBinding to a ClusterRole");
                let role = objects_of(objects, "Role")
                    .find(|r| name(r) == binding.role_ref.name && r["metadata"]["namespace"] == binding_ns.as_str())
                    .unwrap_or_else(|| panic!("{at}: Role {binding_ns}/{} is not rendered", binding.role_ref.name));
                let role: Role = typed(role);
                namespaced.entry(binding_ns).or_default().extend(role.rules.unwrap_or_default());
            }
            let wanted_namespaces: BTreeSet<&String> = needed.namespaced.keys().collect();
            assert_eq!(namespaced.keys().collect::<BTreeSet<_>>(), wanted_namespaces, "{at}: Role namespaces");
            for (role_ns, (wanted, names)) in &needed.namespaced {
                let policy = &namespaced[role_ns];
                let (rules, urls) = from_policy(policy);
                assert!(urls.is_empty(), "{at}: nonResourceURLs in a Role");
                assert!(covers(&rules, wanted), "{at}: Role in {role_ns} does not cover what the code calls");
                let (granted, wanted) = (grants(&rules), grants(wanted));
                assert_eq!(granted, wanted, "{at}: Role in {role_ns} grants other verbs than leader election uses");
                // Narrowed to the lease where RBAC can narrow: `create`
                // cannot be (the name is not known before the object).
                for rule in policy {
                    match &rule.resource_names {
                        Some(restricted) => {
                            assert!(
                                !rule.verbs.iter().any(|v| v == "create"),
                                "{at}: create restricted by name never matches"
                            );
                            let restricted: BTreeSet<String> = restricted.iter().cloned().collect();
                            assert_eq!(&restricted, names, "{at}: resourceNames are not the configured lease");
                        }
                        None => assert!(
                            rule.verbs.iter().all(|v| v == "create"),
                            "{at}: {:?} on every Lease of {role_ns}, not only {names:?}",
                            rule.verbs
                        ),
                    }
                }
            }
        }
        // No binding for an account no pod uses.
        for binding in objects_of(objects, "ClusterRoleBinding").chain(objects_of(objects, "RoleBinding")) {
            for s in binding["subjects"].as_array().into_iter().flatten() {
                let key = (
                    s["namespace"].as_str().unwrap_or_default().to_string(),
                    s["name"].as_str().unwrap_or_default().to_string(),
                );
                assert!(by_account.contains_key(&key), "{variant}: {} binds {key:?}, which no pod uses", id(binding));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// PrometheusRules

/// The plugins' rule files: (plugin, groups), by plugin name.
fn plugin_rule_files() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(repo().join("plugins")).unwrap() {
        let dir = entry.unwrap().path();
        let file = dir.join("rules.yaml");
        if file.is_file() {
            let rules: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(&file).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            out.push((dir.file_name().unwrap().to_string_lossy().into_owned(), rules["groups"].clone()));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The PrometheusRule objects for the rule files, as YAML.
fn generated_prometheus_rules() -> String {
    let mut text = String::from(
        "# Generated from plugins/*/rules.yaml by host/tests/deploy.rs; do not edit.\n\
         # Regenerate with: UPDATE_DEPLOY=1 cargo test -p wasmon --test deploy\n",
    );
    for (plugin, groups) in plugin_rule_files() {
        let object = serde_json::json!({
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PrometheusRule",
            "metadata": {
                "name": format!("wasmon-{plugin}"),
                "labels": {"app.kubernetes.io/name": "wasmon", "wasmon/plugin": plugin},
            },
            "spec": {"groups": groups},
        });
        text.push_str("---\n");
        text.push_str(&serde_yaml_ng::to_string(&object).unwrap());
    }
    text
}

#[test]
fn prometheus_rules_are_the_plugins_rules() {
    let path = kubernetes_dir().join("overlays/prometheus-operator/prometheusrules.yaml");
    let generated = generated_prometheus_rules();
    if std::env::var_os("UPDATE_DEPLOY").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let shipped = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        shipped == generated,
        "{} is not what plugins/*/rules.yaml generate; run UPDATE_DEPLOY=1 cargo test -p wasmon --test deploy",
        path.display()
    );
    // And what kustomize deploys is exactly each plugin's groups.
    let objects = rendered("overlays/prometheus-operator");
    let deployed: BTreeMap<String, Value> = objects_of(objects, "PrometheusRule")
        .map(|o| (o["metadata"]["labels"]["wasmon/plugin"].as_str().unwrap().to_string(), o["spec"]["groups"].clone()))
        .collect();
    let files: BTreeMap<String, Value> = plugin_rule_files().into_iter().collect();
    assert_eq!(deployed.keys().collect::<Vec<_>>(), files.keys().collect::<Vec<_>>());
    for (plugin, groups) in &files {
        assert_eq!(&deployed[plugin], groups, "PrometheusRule of {plugin} differs from plugins/{plugin}/rules.yaml");
    }
    // The rules select on job names the agents scrape under (as Prometheus
    // keeps them with honorLabels).
    for monitor in objects_of(objects, "PodMonitor").chain(objects_of(objects, "ServiceMonitor")) {
        for endpoint in monitor["spec"]["podMetricsEndpoints"]
            .as_array()
            .into_iter()
            .chain(monitor["spec"]["endpoints"].as_array())
            .flatten()
        {
            assert_eq!(endpoint["honorLabels"], true, "{}: the agents' job labels would be renamed", id(monitor));
        }
    }
}

// ---------------------------------------------------------------------------
// The image

/// `ARG NAME="..."` of the Containerfile, split on whitespace.
fn containerfile_arg(text: &str, arg: &str) -> Vec<String> {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("ARG {arg}=")))
        .unwrap_or_else(|| panic!("Containerfile has no ARG {arg}="));
    line.trim_matches('"').split_whitespace().map(str::to_string).collect()
}

/// The package name of each workspace member, with its directory.
fn workspace_packages() -> BTreeMap<String, PathBuf> {
    let manifest: toml_like::Doc = toml_like::parse(&std::fs::read_to_string(repo().join("Cargo.toml")).unwrap());
    manifest
        .members
        .iter()
        .map(|m| {
            let dir = repo().join(m);
            let text = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
            (toml_like::package_name(&text), dir)
        })
        .collect()
}

/// Just enough of Cargo.toml for the checks below (no TOML crate in the
/// workspace's dependencies): the member list and a package's name.
mod toml_like {
    pub struct Doc {
        pub members: Vec<String>,
    }

    pub fn parse(text: &str) -> Doc {
        let start = text.find("members = [").expect("workspace members") + "members = [".len();
        let end = start + text[start..].find(']').expect("end of members");
        let members = text[start..end]
            .split(',')
            .map(|m| m.trim().trim_matches('"').to_string())
            .filter(|m| !m.is_empty() && !m.starts_with('#'))
            .collect();
        Doc { members }
    }

    pub fn package_name(text: &str) -> String {
        let package = &text[text.find("[package]").expect("[package]")..];
        let line = package.lines().find(|l| l.trim_start().starts_with("name")).expect("name");
        line.split('=').nth(1).expect("name = ...").trim().trim_matches('"').to_string()
    }
}

#[test]
fn the_containerfile_builds_from_what_exists_and_ships_the_bundled_plugins() {
    let text = std::fs::read_to_string(repo().join("deploy/Containerfile")).unwrap();
    // Every file and directory copied from the build context exists, and
    // together they hold every workspace member and the WIT contract.
    let mut copied = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("COPY ") && !l.contains("--from=")) {
        let parts: Vec<&str> = line.split_whitespace().skip(1).collect();
        for source in &parts[..parts.len() - 1] {
            assert!(repo().join(source).exists(), "Containerfile copies {source}, which is not in the repository");
            copied.push(source.to_string());
        }
    }
    let packages = workspace_packages();
    for dir in packages.values().chain([&repo().join("wit"), &repo().join("Cargo.lock")]) {
        let rel = dir.strip_prefix(repo()).unwrap().to_string_lossy().into_owned();
        assert!(
            copied.iter().any(|c| rel == *c || rel.starts_with(&format!("{c}/"))),
            "Containerfile does not copy {rel} (cargo needs every workspace member)"
        );
    }
    // The plugins it ships are those of scripts/lib.sh's bundle that live
    // in plugins/ (a plugin's id is its folder there; the test components
    // live elsewhere), each a workspace member whose .wasm is named as the
    // Containerfile copies it.
    let lib = std::fs::read_to_string(repo().join("scripts/lib.sh")).unwrap();
    let bundle_line = lib.lines().find(|l| l.starts_with("PLUGIN_PACKAGES=(")).unwrap();
    let in_plugins_dir: BTreeSet<String> = std::fs::read_dir(repo().join("plugins"))
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.unwrap().path().join("Cargo.toml")).ok())
        .map(|manifest| toml_like::package_name(&manifest))
        .collect();
    let bundled: Vec<String> = bundle_line
        .split_whitespace()
        .map(|w| w.trim_matches(|c| c == '(' || c == ')').to_string())
        .filter(|p| in_plugins_dir.contains(p))
        .collect();
    let shipped = containerfile_arg(&text, "PLUGIN_PACKAGES");
    assert_eq!(shipped, bundled, "Containerfile PLUGIN_PACKAGES is not the plugins/ packages of scripts/lib.sh's");
    for package in &shipped {
        let dir = packages.get(package).unwrap_or_else(|| panic!("{package} is not a workspace member"));
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("cdylib"), "{package} does not build a component (crate-type cdylib)");
        // Cargo names the component after the library (a `[lib] name`, else
        // the package with `_`); the Containerfile copies `<package with _>.wasm`
        // and the agent resolves plugin `<folder>` to `wasmon_<folder with _>.wasm`.
        let lib_name = manifest
            .split("[lib]")
            .nth(1)
            .and_then(|lib| lib.split("\n[").next())
            .and_then(|lib| lib.lines().find(|l| l.trim_start().starts_with("name")))
            .map(|l| l.split('=').nth(1).unwrap().trim().trim_matches('"').to_string())
            .unwrap_or_else(|| package.replace('-', "_"));
        let built = format!("{lib_name}.wasm");
        assert_eq!(
            built,
            format!("{}.wasm", package.replace('-', "_")),
            "{package}: the Containerfile copies another name"
        );
        let folder = dir.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            built,
            format!("wasmon_{}.wasm", folder.replace('-', "_")),
            "{package}: the agent would not find plugin {folder}"
        );
    }
    assert!(text.contains("/usr/lib/wasmon/plugins/"), "plugins not copied to the agent's built-in directory");
    assert!(
        wasmon::plugins::search_path(&[]).contains(&PathBuf::from("/usr/lib/wasmon/plugins")),
        "the agent no longer searches /usr/lib/wasmon/plugins"
    );
}
