//! `role: node`: one target per node at the kubelet port of its preferred
//! address (Prometheus' `node.go`).

use super::meta::{self, PREFIX, put};
use crate::{ADDRESS_LABEL, LabelSet, TargetGroup};
use k8s_openapi::api::core::v1::Node;

pub fn source(name: &str) -> String {
    format!("node/{name}")
}

/// Labels a node gives to pods/endpoints under `attach_metadata.node`:
/// only its name, labels and annotations (Prometheus' `addNodeLabels`).
pub fn attached_labels(node: &Node) -> LabelSet {
    let mut ls = LabelSet::new();
    meta::add_object_meta(&mut ls, &node.metadata, "node");
    ls
}

/// The address Prometheus picks, by type priority, and all addresses by
/// type (first of each type wins for the `_address_<type>` label).
fn address(node: &Node) -> (Option<String>, Vec<(String, String)>) {
    let addrs = node.status.as_ref().and_then(|s| s.addresses.as_ref()).map(Vec::as_slice).unwrap_or_default();
    let mut by_type: Vec<(String, String)> = Vec::new();
    for a in addrs {
        if !by_type.iter().any(|(t, _)| *t == a.type_) {
            by_type.push((a.type_.clone(), a.address.clone()));
        }
    }
    let pick = ["InternalIP", "InternalDNS", "ExternalIP", "ExternalDNS", "LegacyHostIP", "Hostname"]
        .iter()
        .find_map(|t| by_type.iter().find(|(ty, _)| ty == t).map(|(_, a)| a.clone()));
    (pick, by_type)
}

pub fn build(node: &Node) -> TargetGroup {
    let name = node.metadata.name.clone().unwrap_or_default();
    let mut group = TargetGroup { source: source(&name), ..Default::default() };
    let mut labels = LabelSet::new();
    put(
        &mut labels,
        format!("{PREFIX}node_provider_id"),
        node.spec.as_ref().and_then(|s| s.provider_id.clone()).unwrap_or_default(),
    );
    meta::add_object_meta(&mut labels, &node.metadata, "node");
    group.labels = labels;

    let (Some(addr), by_type) = address(node) else {
        // Prometheus sends nothing for a node without an address; an empty
        // group here also drops a node that lost its last address.
        tracing::warn!(node = %name, "no node address found");
        return group;
    };
    let port = node
        .status
        .as_ref()
        .and_then(|s| s.daemon_endpoints.as_ref())
        .and_then(|d| d.kubelet_endpoint.as_ref())
        .map_or(0, |e| e.port);
    let mut target = LabelSet::new();
    put(&mut target, ADDRESS_LABEL, meta::join_host_port(&addr, port));
    put(&mut target, "instance", name);
    for (ty, a) in by_type {
        put(&mut target, meta::sanitize(&format!("{PREFIX}node_address_{ty}")), a);
    }
    group.targets.push(target);
    group
}
