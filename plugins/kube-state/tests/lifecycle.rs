//! Objects over time: modify, delete, re-list, bad objects, secrets.

mod support;

use support::*;
use wasmon_kube_state::KubeStatePlugin;
use wasmon_kube_state::kinds::Kind;
use wasmon_sdk::{MetricFamily, MetricValue};
use wasmon_sdk_kube::{KubeState, ObjectEvent};

fn fixture(name: &str) -> serde_json::Value {
    for dir in fixture_dirs() {
        let path = dir.join(name);
        if path.exists() {
            return objects(&path).remove(0);
        }
    }
    panic!("no fixture {name}")
}

fn value(families: &[MetricFamily], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let family = families.iter().find(|f| f.name == name)?;
    let metric = family
        .metrics
        .iter()
        .find(|m| labels.iter().all(|(n, v)| m.labels.iter().any(|l| l.name == *n && l.value == *v)))?;
    match metric.value {
        MetricValue::Gauge(v) | MetricValue::Counter(v) => Some(v),
        _ => None,
    }
}

fn event(plugin: &KubeStatePlugin, kind: Kind, deleted: bool, object: &serde_json::Value) -> ObjectEvent {
    let index = plugin.index_of(kind).expect("watched");
    if deleted {
        ObjectEvent::deleted(index, object.to_string())
    } else {
        ObjectEvent::applied(index, object.to_string())
    }
}

#[test]
fn a_modified_pod_moves_phase_and_a_deleted_one_disappears() {
    let mut plugin = plugin("{}");
    let mut pod = fixture("pod.json");
    plugin.apply(vec![event(&plugin, Kind::Pod, false, &pod)]).unwrap();
    let families = ksm_families(&mut plugin);
    assert_eq!(value(&families, "kube_pod_status_phase", &[("pod", "nginx"), ("phase", "Running")]), Some(1.0));

    pod["status"]["phase"] = "Failed".into();
    pod["status"]["containerStatuses"][0]["restartCount"] = 3.into();
    plugin.apply(vec![event(&plugin, Kind::Pod, false, &pod)]).unwrap();
    let families = ksm_families(&mut plugin);
    assert_eq!(value(&families, "kube_pod_status_phase", &[("pod", "nginx"), ("phase", "Running")]), Some(0.0));
    assert_eq!(value(&families, "kube_pod_status_phase", &[("pod", "nginx"), ("phase", "Failed")]), Some(1.0));
    assert_eq!(value(&families, "kube_pod_container_status_restarts_total", &[("container", "nginx")]), Some(3.0));
    // Replaced, not added: one pod.
    let info = families.iter().find(|f| f.name == "kube_pod_info").unwrap();
    assert_eq!(info.metrics.len(), 1);

    plugin.apply(vec![event(&plugin, Kind::Pod, true, &pod)]).unwrap();
    assert!(ksm_families(&mut plugin).is_empty(), "no pod series after the delete");
    let all = plugin.collect_families().unwrap();
    assert_eq!(value(&all, "wasmon_kube_state_objects", &[("resource", "pods")]), Some(0.0));
}

#[test]
fn a_relist_replaces_the_state() {
    let mut plugin = plugin("{}");
    let node = fixture("node.json");
    let tainted = fixture("node-tainted.json");
    plugin.apply(vec![event(&plugin, Kind::Node, false, &node), event(&plugin, Kind::Node, false, &tainted)]).unwrap();
    // Re-list: every live object applied again, then the vanished one deleted.
    plugin.apply(vec![event(&plugin, Kind::Node, false, &tainted), event(&plugin, Kind::Node, true, &node)]).unwrap();
    let families = ksm_families(&mut plugin);
    let info = families.iter().find(|f| f.name == "kube_node_info").unwrap();
    assert_eq!(info.metrics.len(), 1);
    assert_eq!(value(&families, "kube_node_info", &[("node", "worker-2")]), Some(1.0));
}

#[test]
fn a_bad_object_is_reported_and_the_rest_of_the_batch_applies() {
    let mut plugin = plugin("{}");
    let pods = plugin.index_of(Kind::Pod).unwrap();
    let mut bad_quantity = fixture("pod-crashloop.json");
    bad_quantity["spec"]["containers"][0]["resources"]["limits"]["cpu"] = "lots".into();
    let mut bad_type = fixture("pod-sidecar.json");
    bad_type["status"]["phase"] = 42.into();
    let events = vec![
        ObjectEvent::applied(pods, "{not json"),
        ObjectEvent::applied(pods, bad_quantity.to_string()),
        ObjectEvent::applied(pods, fixture("pod.json").to_string()),
        ObjectEvent::applied(pods, bad_type.to_string()),
        ObjectEvent::applied(99, fixture("pod.json").to_string()),
        ObjectEvent::deleted(pods, "[]"),
    ];
    let problems = plugin.apply_events(&events);
    assert_eq!(problems.len(), 5, "{problems:#?}");
    assert!(problems[0].starts_with("applied pods: cannot read the object (key must be a string"), "{}", problems[0]);
    assert!(problems[1].contains("pods shop/api-5d8f7c9b4-x2k9p") && problems[1].contains("invalid quantity \"lots\""));
    assert!(problems[2].contains("pods default/sleep") && problems[2].contains("invalid type: integer `42`"));
    assert!(problems[3].contains("resource index 99"));
    assert!(problems[4].starts_with("deleted pods: cannot read the object (no metadata.uid"), "{}", problems[4]);
    // The good pod is there, and the errors are counted.
    let all = plugin.collect_families().unwrap();
    assert_eq!(value(&all, "kube_pod_info", &[("pod", "nginx")]), Some(1.0));
    assert_eq!(value(&all, "wasmon_kube_state_objects", &[("resource", "pods")]), Some(1.0));
    assert_eq!(value(&all, "wasmon_kube_state_object_errors_total", &[("resource", "pods")]), Some(4.0));
    // Through the trait, the same batch is not an error.
    assert!(plugin.apply(events).is_ok());
}

#[test]
fn secret_data_never_reaches_the_output() {
    let mut secret = fixture("secret.json");
    secret["stringData"] = serde_json::json!({"api-key": "sk-live-123456"});
    // Even labels and annotations allowlisted in full.
    let mut plugin = plugin(r#"{"metric_labels_allowlist":{"*":["*"]},"metric_annotations_allowlist":{"*":["*"]}}"#);
    plugin.apply(vec![event(&plugin, Kind::Secret, false, &secret)]).unwrap();
    let text = render(&mut plugin);
    assert!(text.contains("kube_secret_info{namespace=\"default\",secret=\"s1\"} 1"), "{text}");
    // The data values, base64 or plain, and the last-applied annotation that copies them.
    for leak in
        ["YnVtYmxlYmVldHVuYQo=", "ZmVybmFuZAo=", "bumblebeetuna", "sk-live", "password", "token", "last_applied"]
    {
        assert!(!text.contains(leak), "{leak} leaked:\n{text}");
    }
    // ConfigMaps likewise.
    let mut plugin = support::plugin(r#"{"metric_annotations_allowlist":{"configmaps":["*"]}}"#);
    plugin.apply(vec![event(&plugin, Kind::ConfigMap, false, &fixture("configmap.json"))]).unwrap();
    let text = render(&mut plugin);
    assert!(!text.contains("charm") && !text.contains("very"), "{text}");
}

#[test]
fn labels_families_are_empty_without_an_allowlist() {
    let mut plugin = plugin("{}");
    plugin.apply(vec![event(&plugin, Kind::Pod, false, &fixture("pod-crashloop.json"))]).unwrap();
    let families = ksm_families(&mut plugin);
    for name in ["kube_pod_labels", "kube_pod_annotations"] {
        let family = families.iter().find(|f| f.name == name).expect("family present, as KSM writes its header");
        assert!(family.metrics.is_empty(), "{name}");
    }
    // Named labels only.
    let mut plugin = support::plugin(r#"{"metric_labels_allowlist":{"pods":["app.kubernetes.io/name","absent"]}}"#);
    plugin.apply(vec![event(&plugin, Kind::Pod, false, &fixture("pod-crashloop.json"))]).unwrap();
    let text = render(&mut plugin);
    assert!(text.contains(",label_app_kubernetes_io_name=\"api\"} 1"), "{text}");
    assert!(!text.contains("label_pod_template_hash"));
}

#[test]
fn resources_pick_the_kinds_watched() {
    let (plugin, resources) = KubeStatePlugin::init(r#"{"resources":["nodes","deployments"]}"#).unwrap();
    let names: Vec<(&str, &str, &str, bool)> =
        resources.iter().map(|r| (r.group.as_str(), r.version.as_str(), r.plural.as_str(), r.namespaced)).collect();
    assert_eq!(names, [("", "v1", "nodes", false), ("apps", "v1", "deployments", true)]);
    assert_eq!(plugin.index_of(Kind::Pod), None);
    let (_, all) = KubeStatePlugin::init("{}").unwrap();
    assert_eq!(all.len(), Kind::ALL.len());
    assert!(
        all.iter().any(|r| r.plural == "horizontalpodautoscalers" && r.group == "autoscaling" && r.version == "v2")
    );
    assert!(KubeStatePlugin::init(r#"{"resources":["widgets"]}"#).is_err());
}

#[test]
fn the_example_job_is_valid_and_matches_describe() {
    let yaml: serde_json::Value =
        serde_yaml_ng::from_str(include_str!("../config.example.yaml")).expect("config.example.yaml is YAML");
    let job = &yaml[0];
    assert_eq!(job["plugin"], "kube-state");
    KubeStatePlugin::check_config(&job["config"].to_string()).expect("the example's config checks out");
    let described: serde_json::Value =
        serde_yaml_ng::from_str(wasmon_kube_state::CONFIG_EXAMPLE).expect("CONFIG_EXAMPLE is YAML");
    assert_eq!(described, job["config"]);
    assert_eq!(KubeStatePlugin::describe().name, "kube-state");
}
