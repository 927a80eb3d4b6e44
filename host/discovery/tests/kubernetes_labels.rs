//! The full label sets each role produces for the real fixtures (from
//! `kubectl get -o json`), end to end through the fake API server.
//!
//! The expected sets are written out by hand from Prometheus'
//! discovery/kubernetes code (pod.go `podLabels`/`buildPod`, node.go
//! `nodeLabels`/`buildNode`, service.go `buildService`, endpoints.go and
//! endpointslice.go `build*`, kubernetes.go `addObjectMetaLabels`), not
//! from this crate's output.

mod kubernetes_common;

use kubernetes_common::*;
use serde_json::Value;
use wasmon_discovery::kubernetes::{KubernetesSdConfig, Role};
use wasmon_discovery::{LabelSet, TargetGroup};

fn ls(pairs: &[(&str, &str)]) -> LabelSet {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn sorted(mut targets: Vec<LabelSet>) -> Vec<LabelSet> {
    targets.sort_by_key(|t| format!("{t:?}"));
    targets
}

fn check(got: &TargetGroup, labels: LabelSet, targets: Vec<LabelSet>) {
    assert_eq!(got.labels, labels, "group labels of {}", got.source);
    assert_eq!(sorted(got.targets.clone()), sorted(targets), "targets of {}", got.source);
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or_else(|| panic!("fixture has no {pointer}"))
}

const LAST_APPLIED: &str = "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration";

async fn discover(server: &FakeApiServer, role: Role, sources: &[&str]) -> Sd {
    let mut sd = Sd::start(server, KubernetesSdConfig::new(role)).await;
    sd.until("all groups", |g| sources.iter().all(|s| g.contains_key(*s))).await;
    sd
}

/// Prometheus' podLabels for the `pod` fixture family (no labels, no
/// owner, one annotation), with the namespace the group adds.
fn pod_group_labels(pod: &Value, ns: &str, name: &str, ip: &str, node: &str) -> LabelSet {
    let mut l = ls(&[
        ("__meta_kubernetes_namespace", ns),
        ("__meta_kubernetes_pod_name", name),
        ("__meta_kubernetes_pod_ip", ip),
        ("__meta_kubernetes_pod_ready", "true"),
        ("__meta_kubernetes_pod_phase", "Running"),
        ("__meta_kubernetes_pod_node_name", node),
        ("__meta_kubernetes_pod_host_ip", str_at(pod, "/status/hostIP")),
        ("__meta_kubernetes_pod_uid", str_at(pod, "/metadata/uid")),
    ]);
    if let Some(a) = pod.pointer(LAST_APPLIED).and_then(Value::as_str) {
        l.insert("__meta_kubernetes_pod_annotation_kubectl_kubernetes_io_last_applied_configuration".into(), a.into());
        l.insert(
            "__meta_kubernetes_pod_annotationpresent_kubectl_kubernetes_io_last_applied_configuration".into(),
            "true".into(),
        );
    }
    l
}

#[tokio::test]
async fn pod_role_fixture_labels() {
    let server = fake().await;
    let pod = server.apply("pods", fixtures::fixture("pod")).unwrap();
    let sd = discover(&server, Role::Pod, &["pod/default/nginx"]).await;
    check(
        &sd.groups["pod/default/nginx"],
        pod_group_labels(&pod, "default", "nginx", "172.17.0.6", "minikube"),
        vec![ls(&[
            ("__address__", "172.17.0.6:80"),
            ("__meta_kubernetes_pod_container_name", "nginx"),
            (
                "__meta_kubernetes_pod_container_id",
                "docker://421bd26d6c682f14b5ea1dcaf06e14a509b2b702fc7793e820520eb1e28e2eaf",
            ),
            ("__meta_kubernetes_pod_container_image", "nginx:alpine"),
            ("__meta_kubernetes_pod_container_port_number", "80"),
            ("__meta_kubernetes_pod_container_port_name", ""),
            ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
            ("__meta_kubernetes_pod_container_init", "false"),
        ])],
    );
}

#[tokio::test]
async fn pod_role_init_and_sidecar_containers() {
    let server = fake().await;
    let mut init = fixtures::fixture("pod-init-containers");
    fixtures::set(&mut init, "/metadata/name", "with-init");
    let init = server.apply("pods", init).unwrap();
    let sidecar = server.apply("pods", fixtures::fixture("pod-sidecar")).unwrap();
    let sd = discover(&server, Role::Pod, &["pod/default/with-init", "pod/default/sleep"]).await;
    let id = "docker://421bd26d6c682f14b5ea1dcaf06e14a509b2b702fc7793e820520eb1e28e2eaf";
    let port_target = |name: &str, is_init: &str| {
        ls(&[
            ("__address__", "172.17.0.6:80"),
            ("__meta_kubernetes_pod_container_name", name),
            ("__meta_kubernetes_pod_container_id", id),
            ("__meta_kubernetes_pod_container_image", "nginx:alpine"),
            ("__meta_kubernetes_pod_container_port_number", "80"),
            ("__meta_kubernetes_pod_container_port_name", ""),
            ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
            ("__meta_kubernetes_pod_container_init", is_init),
        ])
    };
    check(
        &sd.groups["pod/default/with-init"],
        pod_group_labels(&init, "default", "with-init", "172.17.0.6", "minikube"),
        vec![port_target("nginx", "false"), port_target("ic1", "true")],
    );

    // No ports anywhere: one port-less target per container, init and
    // sidecar (restartPolicy: Always) containers included.
    let portless = |name: &str, id: &str, is_init: &str| {
        ls(&[
            ("__address__", "10.244.0.8"),
            ("__meta_kubernetes_pod_container_name", name),
            ("__meta_kubernetes_pod_container_id", id),
            ("__meta_kubernetes_pod_container_image", "istio/base"),
            ("__meta_kubernetes_pod_container_init", is_init),
        ])
    };
    check(
        &sd.groups["pod/default/sleep"],
        pod_group_labels(&sidecar, "default", "sleep", "10.244.0.8", "kind-control-plane"),
        vec![
            portless("sleep", "containerd://a1848056a183e40afe3189fc4920bd565930180ebdf2f9e2daf778ea8105f93e", "false"),
            portless("init", "containerd://75295261e5d751382c9a6ffa4477b84af2934686c360dcba2d8a6b9bc0f8cada", "true"),
            portless(
                "sidecar",
                "containerd://7a0d216a09630040c5b165c42cc9d2a95d541d95b6ac0a5ca604bf767d1b2cf0",
                "true",
            ),
        ],
    );
}

#[tokio::test]
async fn pod_without_ip_has_no_targets() {
    let server = fake().await;
    let mut pod = fixtures::fixture("pod");
    if let Some(s) = pod.pointer_mut("/status").and_then(Value::as_object_mut) {
        s.remove("podIP");
        s.remove("podIPs");
    }
    server.apply("pods", pod).unwrap();
    server.apply("pods", fixtures::pod("default", "other", "n", "10.0.0.1")).unwrap();
    let mut sd = discover(&server, Role::Pod, &["pod/default/other"]).await;
    assert!(sd.drain(std::time::Duration::from_millis(200)).await.iter().all(|g| g.source != "pod/default/nginx"));
    assert!(!sd.groups.contains_key("pod/default/nginx"));
}

#[tokio::test]
async fn node_role_fixture_labels() {
    let server = fake().await;
    let node = server.apply("nodes", fixtures::fixture("node")).unwrap();
    let sd = discover(&server, Role::Node, &["node/minikube"]).await;
    let ann = |k: &str| str_at(&node, &format!("/metadata/annotations/{k}")).to_string();
    let mut labels = ls(&[
        ("__meta_kubernetes_node_name", "minikube"),
        ("__meta_kubernetes_node_provider_id", ""),
        ("__meta_kubernetes_node_label_beta_kubernetes_io_arch", "amd64"),
        ("__meta_kubernetes_node_labelpresent_beta_kubernetes_io_arch", "true"),
        ("__meta_kubernetes_node_label_beta_kubernetes_io_os", "linux"),
        ("__meta_kubernetes_node_labelpresent_beta_kubernetes_io_os", "true"),
        ("__meta_kubernetes_node_label_kubernetes_io_arch", "amd64"),
        ("__meta_kubernetes_node_labelpresent_kubernetes_io_arch", "true"),
        ("__meta_kubernetes_node_label_kubernetes_io_hostname", "minikube"),
        ("__meta_kubernetes_node_labelpresent_kubernetes_io_hostname", "true"),
        ("__meta_kubernetes_node_label_kubernetes_io_os", "linux"),
        ("__meta_kubernetes_node_labelpresent_kubernetes_io_os", "true"),
        ("__meta_kubernetes_node_label_node_role_kubernetes_io_master", ""),
        ("__meta_kubernetes_node_labelpresent_node_role_kubernetes_io_master", "true"),
        ("__meta_kubernetes_node_annotationpresent_kubeadm_alpha_kubernetes_io_cri_socket", "true"),
        ("__meta_kubernetes_node_annotationpresent_node_alpha_kubernetes_io_ttl", "true"),
        ("__meta_kubernetes_node_annotationpresent_volumes_kubernetes_io_controller_managed_attach_detach", "true"),
    ]);
    labels.insert(
        "__meta_kubernetes_node_annotation_kubeadm_alpha_kubernetes_io_cri_socket".into(),
        ann("kubeadm.alpha.kubernetes.io~1cri-socket"),
    );
    labels.insert(
        "__meta_kubernetes_node_annotation_node_alpha_kubernetes_io_ttl".into(),
        ann("node.alpha.kubernetes.io~1ttl"),
    );
    labels.insert(
        "__meta_kubernetes_node_annotation_volumes_kubernetes_io_controller_managed_attach_detach".into(),
        ann("volumes.kubernetes.io~1controller-managed-attach-detach"),
    );
    check(
        &sd.groups["node/minikube"],
        labels,
        vec![ls(&[
            ("__address__", "192.168.64.107:10250"),
            ("instance", "minikube"),
            ("__meta_kubernetes_node_address_InternalIP", "192.168.64.107"),
            ("__meta_kubernetes_node_address_Hostname", "minikube"),
        ])],
    );
}

fn service_labels(svc: &Value, ns: &str, name: &str) -> LabelSet {
    let mut l = ls(&[
        ("__meta_kubernetes_namespace", ns),
        ("__meta_kubernetes_service_name", name),
        ("__meta_kubernetes_service_annotationpresent_kubectl_kubernetes_io_last_applied_configuration", "true"),
    ]);
    l.insert(
        "__meta_kubernetes_service_annotation_kubectl_kubernetes_io_last_applied_configuration".into(),
        str_at(svc, LAST_APPLIED).into(),
    );
    l
}

#[tokio::test]
async fn service_role_fixture_labels() {
    let server = fake().await;
    let svc = server.apply("services", fixtures::fixture("service")).unwrap();
    let sd = discover(&server, Role::Service, &["svc/default/dictionary1"]).await;
    check(
        &sd.groups["svc/default/dictionary1"],
        service_labels(&svc, "default", "dictionary1"),
        vec![ls(&[
            ("__address__", "dictionary1.default.svc:4001"),
            ("__meta_kubernetes_service_port_name", "http"),
            ("__meta_kubernetes_service_port_number", "4001"),
            ("__meta_kubernetes_service_port_protocol", "TCP"),
            ("__meta_kubernetes_service_type", "ClusterIP"),
            ("__meta_kubernetes_service_cluster_ip", "10.47.248.116"),
        ])],
    );
}

#[tokio::test]
async fn endpoints_role_fixture_labels() {
    let server = fake().await;
    // The fixture's address points at pod blee/blah and belongs to service
    // ns-1/blee: derive both from the pod and service fixtures.
    let pod = server.apply("pods", fixtures::pod("blee", "blah", "n-1", "10.0.0.67")).unwrap();
    let svc = server.apply("services", fixtures::renamed(&fixtures::fixture("service"), "ns-1", "blee")).unwrap();
    server.apply("endpoints", fixtures::fixture("endpoints")).unwrap();
    let sd = discover(&server, Role::Endpoints, &["endpoints/ns-1/blee"]).await;

    let mut labels = service_labels(&svc, "ns-1", "blee");
    labels.insert("__meta_kubernetes_endpoints_name".into(), "blee".into());
    let mut pod_labels = pod_group_labels(&pod, "blee", "blah", "10.0.0.67", "n-1");
    // podLabels carries no namespace; the group's namespace is the endpoints'.
    pod_labels.remove("__meta_kubernetes_namespace");
    let mut direct = ls(&[
        ("__address__", "10.0.0.67:8080"),
        ("__meta_kubernetes_endpoint_port_name", "http"),
        ("__meta_kubernetes_endpoint_port_protocol", "TCP"),
        ("__meta_kubernetes_endpoint_ready", "true"),
        ("__meta_kubernetes_endpoint_address_target_kind", "Pod"),
        ("__meta_kubernetes_endpoint_address_target_name", "blah"),
        ("__meta_kubernetes_endpoint_node_name", "n-1"),
    ]);
    direct.extend(pod_labels.clone());
    // The pod's port 80 is not behind the endpoint port 8080: an extra
    // target for it, with container labels but no endpoint labels.
    let mut extra = ls(&[
        ("__address__", "10.0.0.67:80"),
        ("__meta_kubernetes_pod_container_name", "nginx"),
        ("__meta_kubernetes_pod_container_image", "nginx:alpine"),
        ("__meta_kubernetes_pod_container_port_name", ""),
        ("__meta_kubernetes_pod_container_port_number", "80"),
        ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
        ("__meta_kubernetes_pod_container_init", "false"),
    ]);
    extra.extend(pod_labels);
    check(&sd.groups["endpoints/ns-1/blee"], labels, vec![direct, extra]);
}

#[tokio::test]
async fn endpoints_k3s_list_without_pods() {
    let server = fake().await;
    let items = fixtures::fixture_items("endpoints-list.k3s");
    let sources: Vec<String> = items
        .iter()
        .map(|e| format!("endpoints/{}/{}", str_at(e, "/metadata/namespace"), str_at(e, "/metadata/name")))
        .collect();
    server.apply_many("endpoints", items.clone()).unwrap();
    let mut sd = Sd::start(&server, KubernetesSdConfig::new(Role::Endpoints)).await;
    let with_addresses: Vec<&String> = sources
        .iter()
        .zip(&items)
        .filter(|(_, e)| e.pointer("/subsets/0/addresses/0").is_some())
        .map(|(s, _)| s)
        .collect();
    sd.until("k3s endpoints", |g| with_addresses.iter().all(|s| g.contains_key(*s))).await;
    for (source, item) in sources.iter().zip(&items) {
        let Some(g) = sd.groups.get(source) else { continue };
        // One target per address and port, each with the endpoint labels.
        let subsets = item["subsets"].as_array().cloned().unwrap_or_default();
        let want: usize = subsets
            .iter()
            .map(|s| {
                let n = |k: &str| s[k].as_array().map_or(0, Vec::len);
                (n("addresses") + n("notReadyAddresses")) * n("ports")
            })
            .sum();
        assert_eq!(g.targets.len(), want, "{source}");
        assert!(g.targets.iter().all(|t| t.contains_key("__meta_kubernetes_endpoint_ready")));
        assert_eq!(g.labels["__meta_kubernetes_endpoints_name"], str_at(item, "/metadata/name"));
    }
}

#[tokio::test]
async fn endpointslice_role_fixture_labels() {
    let server = fake().await;
    server.apply("endpointslices", fixtures::fixture("endpointslice")).unwrap();
    let sd = discover(&server, Role::EndpointSlice, &["endpointslice/blee/fred"]).await;
    let labels = ls(&[
        ("__meta_kubernetes_namespace", "blee"),
        ("__meta_kubernetes_endpointslice_address_type", "IPv4"),
        ("__meta_kubernetes_endpointslice_name", "fred"),
    ]);
    let target = |ip: &str| {
        ls(&[
            ("__address__", &format!("{ip}:4244")),
            ("__meta_kubernetes_endpointslice_port_name", "peer-service"),
            ("__meta_kubernetes_endpointslice_port_protocol", "TCP"),
            ("__meta_kubernetes_endpointslice_port", "4244"),
            ("__meta_kubernetes_endpointslice_endpoint_conditions_ready", "true"),
            ("__meta_kubernetes_endpointslice_endpoint_conditions_serving", "true"),
            ("__meta_kubernetes_endpointslice_endpoint_conditions_terminating", "false"),
            ("__meta_kubernetes_endpointslice_address_target_kind", "Pod"),
            ("__meta_kubernetes_endpointslice_address_target_name", "zorg"),
            ("__meta_kubernetes_endpointslice_endpoint_node_name", "n-1"),
        ])
    };
    check(&sd.groups["endpointslice/blee/fred"], labels, vec![target("172.20.0.2"), target("172.20.0.3")]);
}

#[tokio::test]
async fn endpointslice_with_service_pod_and_node_metadata() {
    let server = fake().await;
    let mut slice = fixtures::fixture("endpointslice");
    fixtures::set(&mut slice, "/metadata/labels/kubernetes.io~1service-name", "fred-svc");
    server.apply("endpointslices", slice).unwrap();
    let svc = server.apply("services", fixtures::renamed(&fixtures::fixture("service"), "blee", "fred-svc")).unwrap();
    let pod = server.apply("pods", fixtures::pod("kube-system", "zorg", "n-1", "172.20.0.2")).unwrap();
    let mut node = fixtures::renamed(&fixtures::fixture("node"), "", "n-1");
    fixtures::set(&mut node, "/metadata/labels", serde_json::json!({"zone": "z1"}));
    fixtures::set(&mut node, "/metadata/annotations", serde_json::json!({}));
    server.apply("nodes", node).unwrap();
    let mut cfg = KubernetesSdConfig::new(Role::EndpointSlice);
    cfg.attach_node_metadata = true;
    let mut sd = Sd::start(&server, cfg).await;
    sd.until("slice with pod labels", |g| g.get("endpointslice/blee/fred").is_some_and(|s| s.targets.len() == 3)).await;
    let g = &sd.groups["endpointslice/blee/fred"];

    let mut labels = service_labels(&svc, "blee", "fred-svc");
    labels.insert("__meta_kubernetes_endpointslice_address_type".into(), "IPv4".into());
    labels.insert("__meta_kubernetes_endpointslice_name".into(), "fred".into());
    labels.insert("__meta_kubernetes_endpointslice_label_kubernetes_io_service_name".into(), "fred-svc".into());
    labels.insert("__meta_kubernetes_endpointslice_labelpresent_kubernetes_io_service_name".into(), "true".into());
    let node_labels = ls(&[
        ("__meta_kubernetes_node_name", "n-1"),
        ("__meta_kubernetes_node_label_zone", "z1"),
        ("__meta_kubernetes_node_labelpresent_zone", "true"),
    ]);
    let mut pod_labels = pod_group_labels(&pod, "kube-system", "zorg", "172.20.0.2", "n-1");
    pod_labels.remove("__meta_kubernetes_namespace");
    let target = |ip: &str| {
        let mut t = ls(&[
            ("__address__", &format!("{ip}:4244")),
            ("__meta_kubernetes_endpointslice_port_name", "peer-service"),
            ("__meta_kubernetes_endpointslice_port_protocol", "TCP"),
            ("__meta_kubernetes_endpointslice_port", "4244"),
            ("__meta_kubernetes_endpointslice_endpoint_conditions_ready", "true"),
            ("__meta_kubernetes_endpointslice_endpoint_conditions_serving", "true"),
            ("__meta_kubernetes_endpointslice_endpoint_conditions_terminating", "false"),
            ("__meta_kubernetes_endpointslice_address_target_kind", "Pod"),
            ("__meta_kubernetes_endpointslice_address_target_name", "zorg"),
            ("__meta_kubernetes_endpointslice_endpoint_node_name", "n-1"),
        ]);
        t.extend(node_labels.clone());
        t.extend(pod_labels.clone());
        t
    };
    let mut extra = ls(&[
        ("__address__", "172.20.0.2:80"),
        ("__meta_kubernetes_pod_container_name", "nginx"),
        ("__meta_kubernetes_pod_container_image", "nginx:alpine"),
        ("__meta_kubernetes_pod_container_port_name", ""),
        ("__meta_kubernetes_pod_container_port_number", "80"),
        ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
        ("__meta_kubernetes_pod_container_init", "false"),
    ]);
    extra.extend(pod_labels.clone());
    check(g, labels, vec![target("172.20.0.2"), target("172.20.0.3"), extra]);
}
