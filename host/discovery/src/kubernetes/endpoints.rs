//! `role: endpoints` and `role: endpointslice`: one target per address and
//! port, plus the backing pods' other container ports, with service and
//! pod labels attached (Prometheus' `endpoints.go` / `endpointslice.go`).
//!
//! Both roles resolve services, pods and (with `attach_metadata.node`)
//! nodes through [`Deps`], the compact caches the runner keeps.

use super::meta::{self, NAMESPACE_LABEL, PREFIX, put};
use super::pod::{PodInfo, PortInfo};
use crate::{ADDRESS_LABEL, LabelSet, TargetGroup};
use k8s_openapi::api::core::v1::{Endpoints, ObjectReference};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::collections::{BTreeMap, HashMap};

/// The label on an EndpointSlice naming its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// What the endpoints roles look up while building a group.
#[derive(Debug, Default)]
pub struct Deps {
    /// `namespace/name` → the service role's group labels.
    pub services: HashMap<String, LabelSet>,
    /// `namespace/name` → pod.
    pub pods: HashMap<String, PodInfo>,
    /// node name → its attached labels; `None` without `attach_metadata.node`.
    pub nodes: Option<HashMap<String, LabelSet>>,
}

impl Deps {
    fn pod(&self, r: Option<&ObjectReference>) -> Option<&PodInfo> {
        let r = r.filter(|r| r.kind.as_deref() == Some("Pod"))?;
        let key = format!("{}/{}", r.namespace.as_deref().unwrap_or(""), r.name.as_deref().unwrap_or(""));
        self.pods.get(&key)
    }

    fn add_node(&self, target: &mut LabelSet, node: Option<&str>) {
        if let (Some(nodes), Some(node)) = (&self.nodes, node)
            && let Some(ls) = nodes.get(node)
        {
            target.extend(ls.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
}

pub fn endpoints_source(namespace: &str, name: &str) -> String {
    format!("endpoints/{namespace}/{name}")
}

pub fn endpointslice_source(namespace: &str, name: &str) -> String {
    format!("endpointslice/{namespace}/{name}")
}

/// Pods seen behind an object and the endpoint ports that already made
/// targets for them; ordered so the output is stable.
type SeenPods<'a> = BTreeMap<String, (&'a PodInfo, Vec<i32>)>;

/// Set the container labels of the container port matching `port`. Like
/// Prometheus, the match stops at the first port of each container, so
/// with two containers on one port the later container wins.
fn add_container_port(target: &mut LabelSet, pod: &PodInfo, port: i32) {
    for c in &pod.containers {
        if let Some(cp) = c.ports.iter().find(|p| p.number == port) {
            put(target, format!("{PREFIX}pod_container_name"), &*c.name);
            put(target, format!("{PREFIX}pod_container_image"), &*c.image);
            put(target, format!("{PREFIX}pod_container_port_name"), &*cp.name);
            put(target, format!("{PREFIX}pod_container_port_number"), port.to_string());
            put(target, format!("{PREFIX}pod_container_port_protocol"), &*cp.protocol);
            put(target, format!("{PREFIX}pod_container_init"), c.init.to_string());
        }
    }
}

/// Targets for the container ports of seen pods that no endpoint covered.
fn uncovered_ports(seen: &SeenPods<'_>, targets: &mut Vec<LabelSet>) {
    for (pod, covered) in seen.values() {
        if pod.ip.is_empty() {
            continue;
        }
        let pod_labels = pod.labels();
        for c in &pod.containers {
            for PortInfo { name, number, protocol } in &c.ports {
                if covered.contains(number) {
                    continue;
                }
                let mut t = LabelSet::new();
                put(&mut t, ADDRESS_LABEL, meta::join_host_port(&pod.ip, number));
                put(&mut t, format!("{PREFIX}pod_container_name"), &*c.name);
                put(&mut t, format!("{PREFIX}pod_container_image"), &*c.image);
                put(&mut t, format!("{PREFIX}pod_container_port_name"), &**name);
                put(&mut t, format!("{PREFIX}pod_container_port_number"), number.to_string());
                put(&mut t, format!("{PREFIX}pod_container_port_protocol"), &**protocol);
                put(&mut t, format!("{PREFIX}pod_container_init"), c.init.to_string());
                t.extend(pod_labels.iter().map(|(k, v)| (k.clone(), v.clone())));
                targets.push(t);
            }
        }
    }
}

/// Attach the pod behind a target (if any) and remember the port.
fn attach_pod<'a>(target: &mut LabelSet, pod: Option<&'a PodInfo>, port: Option<i32>, seen: &mut SeenPods<'a>) -> bool {
    let Some(pod) = pod else { return false };
    let entry = seen.entry(format!("{}/{}", pod.namespace, pod.name)).or_insert((pod, Vec::new()));
    target.extend(pod.labels());
    if let Some(port) = port {
        add_container_port(target, pod, port);
        entry.1.push(port);
    }
    true
}

pub fn build_endpoints(eps: &Endpoints, deps: &Deps) -> TargetGroup {
    let ns = eps.metadata.namespace.clone().unwrap_or_default();
    let name = eps.metadata.name.clone().unwrap_or_default();
    let mut labels = LabelSet::new();
    put(&mut labels, NAMESPACE_LABEL, ns.clone());
    if let Some(svc) = deps.services.get(&format!("{ns}/{name}")) {
        labels.extend(svc.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    meta::add_object_meta(&mut labels, &eps.metadata, "endpoints");
    let mut group = TargetGroup { source: endpoints_source(&ns, &name), labels, targets: Vec::new() };
    let mut seen = SeenPods::new();

    for subset in eps.subsets.iter().flatten() {
        for port in subset.ports.iter().flatten() {
            let ready = subset.addresses.iter().flatten().map(|a| (a, "true"));
            let not_ready = subset.not_ready_addresses.iter().flatten().map(|a| (a, "false"));
            for (addr, ready) in ready.chain(not_ready) {
                let mut t = LabelSet::new();
                put(&mut t, ADDRESS_LABEL, meta::join_host_port(&addr.ip, port.port));
                put(&mut t, format!("{PREFIX}endpoint_port_name"), port.name.clone().unwrap_or_default());
                put(&mut t, format!("{PREFIX}endpoint_port_protocol"), port.protocol.clone().unwrap_or_default());
                put(&mut t, format!("{PREFIX}endpoint_ready"), ready);
                let target_ref = addr.target_ref.as_ref();
                if let Some(r) = target_ref {
                    put(&mut t, format!("{PREFIX}endpoint_address_target_kind"), r.kind.clone().unwrap_or_default());
                    put(&mut t, format!("{PREFIX}endpoint_address_target_name"), r.name.clone().unwrap_or_default());
                }
                if let Some(node) = &addr.node_name {
                    put(&mut t, format!("{PREFIX}endpoint_node_name"), node.clone());
                }
                if let Some(h) = addr.hostname.as_ref().filter(|h| !h.is_empty()) {
                    put(&mut t, format!("{PREFIX}endpoint_hostname"), h.clone());
                }
                let node = addr.node_name.as_deref().or_else(|| {
                    target_ref.filter(|r| r.kind.as_deref() == Some("Node")).and_then(|r| r.name.as_deref())
                });
                deps.add_node(&mut t, node);
                attach_pod(&mut t, deps.pod(target_ref), Some(port.port), &mut seen);
                group.targets.push(t);
            }
        }
    }
    match eps.metadata.labels.as_ref().and_then(|l| l.get("endpoints.kubernetes.io/over-capacity")) {
        Some(v) if v == "truncated" || v == "warning" => tracing::warn!(
            endpoints = %format!("{ns}/{name}"),
            "more than 1000 endpoints in one Endpoints object; use role: endpointslice instead"
        ),
        _ => {}
    }
    uncovered_ports(&seen, &mut group.targets);
    group
}

pub fn build_endpointslice(eps: &EndpointSlice, deps: &Deps) -> TargetGroup {
    let ns = eps.metadata.namespace.clone().unwrap_or_default();
    let name = eps.metadata.name.clone().unwrap_or_default();
    let mut labels = LabelSet::new();
    put(&mut labels, NAMESPACE_LABEL, ns.clone());
    put(&mut labels, format!("{PREFIX}endpointslice_address_type"), eps.address_type.clone());
    meta::add_object_meta(&mut labels, &eps.metadata, "endpointslice");
    if let Some(svc) = eps
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(SERVICE_NAME_LABEL))
        .and_then(|svc| deps.services.get(&format!("{ns}/{svc}")))
    {
        labels.extend(svc.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let mut group = TargetGroup { source: endpointslice_source(&ns, &name), labels, targets: Vec::new() };
    let mut seen = SeenPods::new();
    let flag = |b: bool| b.to_string();

    for ep in &eps.endpoints {
        for port in eps.ports.iter().flatten() {
            for addr in &ep.addresses {
                let mut t = LabelSet::new();
                let address = match port.port {
                    Some(p) => meta::join_host_port(addr, p),
                    None => addr.clone(),
                };
                put(&mut t, ADDRESS_LABEL, address);
                if let Some(v) = &port.name {
                    put(&mut t, format!("{PREFIX}endpointslice_port_name"), v.clone());
                }
                if let Some(v) = &port.protocol {
                    put(&mut t, format!("{PREFIX}endpointslice_port_protocol"), v.clone());
                }
                if let Some(v) = port.port {
                    put(&mut t, format!("{PREFIX}endpointslice_port"), v.to_string());
                }
                if let Some(v) = &port.app_protocol {
                    put(&mut t, format!("{PREFIX}endpointslice_port_app_protocol"), v.clone());
                }
                if let Some(c) = &ep.conditions {
                    if let Some(v) = c.ready {
                        put(&mut t, format!("{PREFIX}endpointslice_endpoint_conditions_ready"), flag(v));
                    }
                    if let Some(v) = c.serving {
                        put(&mut t, format!("{PREFIX}endpointslice_endpoint_conditions_serving"), flag(v));
                    }
                    if let Some(v) = c.terminating {
                        put(&mut t, format!("{PREFIX}endpointslice_endpoint_conditions_terminating"), flag(v));
                    }
                }
                if let Some(v) = &ep.hostname {
                    put(&mut t, format!("{PREFIX}endpointslice_endpoint_hostname"), v.clone());
                }
                let target_ref = ep.target_ref.as_ref();
                if let Some(r) = target_ref {
                    put(
                        &mut t,
                        format!("{PREFIX}endpointslice_address_target_kind"),
                        r.kind.clone().unwrap_or_default(),
                    );
                    put(
                        &mut t,
                        format!("{PREFIX}endpointslice_address_target_name"),
                        r.name.clone().unwrap_or_default(),
                    );
                }
                if let Some(v) = &ep.node_name {
                    put(&mut t, format!("{PREFIX}endpointslice_endpoint_node_name"), v.clone());
                }
                if let Some(v) = &ep.zone {
                    put(&mut t, format!("{PREFIX}endpointslice_endpoint_zone"), v.clone());
                }
                for (k, v) in ep.deprecated_topology.iter().flatten() {
                    let ln = meta::sanitize(k);
                    put(&mut t, format!("{PREFIX}endpointslice_endpoint_topology_{ln}"), v.clone());
                    put(&mut t, format!("{PREFIX}endpointslice_endpoint_topology_present_{ln}"), meta::PRESENT);
                }
                let node = match target_ref {
                    Some(r) if r.kind.as_deref() == Some("Node") => r.name.as_deref(),
                    _ => ep.node_name.as_deref(),
                };
                deps.add_node(&mut t, node);
                attach_pod(&mut t, deps.pod(target_ref), port.port, &mut seen);
                group.targets.push(t);
            }
        }
    }
    uncovered_ports(&seen, &mut group.targets);
    group
}
