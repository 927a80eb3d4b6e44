//! Nodes: `kube_node_*`.

use super::Context;
use crate::common::*;
use serde::Deserialize;
use std::collections::BTreeMap;

families!(F, SPECS {
    Annotations => "kube_node_annotations", Gauge, "Kubernetes annotations converted to Prometheus labels.";
    Info => "kube_node_info", Gauge, "Information about a cluster node.";
    Labels => "kube_node_labels", Gauge, "Kubernetes labels converted to Prometheus labels.";
    Role => "kube_node_role", Gauge, "The role of a cluster node.";
    PodCidrs => "kube_node_spec_pod_cidrs", Gauge, "The pod CIDRs of a cluster node.";
    Unschedulable => "kube_node_spec_unschedulable", Gauge, "Whether a node can schedule new pods.";
    Taint => "kube_node_spec_taint", Gauge, "The taint of a cluster node.";
    Capacity => "kube_node_status_capacity", Gauge, "The capacity for different resources of a node.";
    Addresses => "kube_node_status_addresses", Gauge, "Node address information.";
    Allocatable => "kube_node_status_allocatable", Gauge, "The allocatable for different resources of a node that are available for scheduling.";
    Condition => "kube_node_status_condition", Gauge, "The condition of a cluster node.";
    Created => "kube_node_created", Gauge, "Unix creation timestamp";
    DeletionTimestamp => "kube_node_deletion_timestamp", Gauge, "Unix deletion timestamp";
});

#[derive(Debug)]
pub struct Node {
    meta: Meta,
    roles: Box<[Str]>,
    info: [Str; 9],
    pod_cidrs: Box<[Str]>,
    unschedulable: bool,
    taints: Box<[Taint]>,
    capacity: Box<[ResourceValue]>,
    allocatable: Box<[ResourceValue]>,
    addresses: Box<[Address]>,
    conditions: Box<[(Str, Str)]>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Taint {
    key: Str,
    value: Str,
    effect: Str,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Address {
    #[serde(rename = "type")]
    kind: Str,
    address: Str,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    metadata: RawMeta,
    #[serde(default)]
    spec: RawSpec,
    #[serde(default)]
    status: RawStatus,
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RawSpec {
    #[serde(rename = "podCIDR")]
    pod_cidr: Str,
    #[serde(rename = "podCIDRs", deserialize_with = "nullable")]
    pod_cidrs: Vec<Str>,
    #[serde(rename = "providerID")]
    provider_id: Str,
    unschedulable: bool,
    #[serde(deserialize_with = "nullable")]
    taints: Vec<Taint>,
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RawStatus {
    #[serde(deserialize_with = "nullable")]
    capacity: BTreeMap<String, Quantity>,
    #[serde(deserialize_with = "nullable")]
    allocatable: BTreeMap<String, Quantity>,
    #[serde(deserialize_with = "nullable")]
    addresses: Vec<Address>,
    #[serde(deserialize_with = "nullable")]
    conditions: Vec<Condition>,
    node_info: RawNodeInfo,
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RawNodeInfo {
    kernel_version: Str,
    os_image: Str,
    container_runtime_version: Str,
    kubelet_version: Str,
    kube_proxy_version: Str,
    #[serde(rename = "systemUUID")]
    system_uuid: Str,
}

const ROLE_PREFIX: &str = "node-role.kubernetes.io/";

pub fn parse(text: &str, ctx: &Context) -> Result<(String, Node), serde_json::Error> {
    let raw: Raw = serde_json::from_str(text)?;
    let key = raw.metadata.key();
    let roles = raw.metadata.labels.keys().filter_map(|k| k.strip_prefix(ROLE_PREFIX)).map(Str::from).collect();
    let s = raw.status;
    let i = s.node_info;
    let internal_ip =
        s.addresses.iter().find(|a| &*a.kind == "InternalIP").map(|a| a.address.clone()).unwrap_or_default();
    let node = Node {
        meta: raw.metadata.compact(ctx.labels, ctx.annotations),
        roles,
        info: [
            i.kernel_version,
            i.os_image,
            i.container_runtime_version,
            i.kubelet_version,
            i.kube_proxy_version,
            raw.spec.provider_id,
            raw.spec.pod_cidr,
            i.system_uuid,
            internal_ip,
        ],
        pod_cidrs: raw.spec.pod_cidrs.into(),
        unschedulable: raw.spec.unschedulable,
        taints: raw.spec.taints.into(),
        capacity: resource_values(&s.capacity, ResourceContext::Node),
        allocatable: resource_values(&s.allocatable, ResourceContext::Node),
        addresses: s.addresses.into(),
        conditions: s.conditions.into_iter().map(|c| (c.kind, c.status)).collect(),
    };
    Ok((key, node))
}

const INFO_LABELS: [&str; 9] = [
    "kernel_version",
    "os_image",
    "container_runtime_version",
    "kubelet_version",
    "kubeproxy_version",
    "provider_id",
    "pod_cidr",
    "system_uuid",
    "internal_ip",
];

pub fn emit(_uid: &str, n: &Node, out: &mut Sink) {
    let m = &n.meta;
    let base: &[(&'static str, &str)] = &[("node", &m.name)];
    out.push_pairs(F::Annotations as usize, base, &m.annotations);
    let info: Vec<(&'static str, &str)> = INFO_LABELS.iter().zip(n.info.iter()).map(|(k, v)| (*k, &**v)).collect();
    out.push(F::Info as usize, base, &info, 1.0);
    out.push_pairs(F::Labels as usize, base, &m.labels);
    for role in n.roles.iter() {
        out.push(F::Role as usize, base, &[("role", role)], 1.0);
    }
    for cidr in n.pod_cidrs.iter() {
        out.push(F::PodCidrs as usize, base, &[("pod_cidr", cidr)], 1.0);
    }
    out.push(F::Unschedulable as usize, base, &[], bool_value(n.unschedulable));
    for t in n.taints.iter() {
        out.push(F::Taint as usize, base, &[("key", &t.key), ("value", &t.value), ("effect", &t.effect)], 1.0);
    }
    for r in n.capacity.iter() {
        out.push(F::Capacity as usize, base, &[("resource", &r.resource), ("unit", r.unit)], r.value);
    }
    for a in n.addresses.iter() {
        out.push(F::Addresses as usize, base, &[("type", &a.kind), ("address", &a.address)], 1.0);
    }
    for r in n.allocatable.iter() {
        out.push(F::Allocatable as usize, base, &[("resource", &r.resource), ("unit", r.unit)], r.value);
    }
    for (kind, status) in n.conditions.iter() {
        out.push_condition(F::Condition as usize, base, &[("condition", kind)], "status", status);
    }
    if let Some(t) = m.created {
        out.push(F::Created as usize, base, &[], t as f64);
    }
    if let Some(t) = m.deleted {
        out.push(F::DeletionTimestamp as usize, base, &[], t as f64);
    }
}
