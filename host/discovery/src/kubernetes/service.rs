//! `role: service`: one target per service port at the service's DNS name
//! (Prometheus' `service.go`).

use super::meta::{self, NAMESPACE_LABEL, PREFIX, put};
use crate::{ADDRESS_LABEL, LabelSet, TargetGroup};
use k8s_openapi::api::core::v1::Service;

pub fn source(namespace: &str, name: &str) -> String {
    format!("svc/{namespace}/{name}")
}

/// Namespace plus the service's metadata labels; the endpoints roles add
/// these to their groups too.
pub fn labels(svc: &Service) -> LabelSet {
    let mut ls = LabelSet::new();
    put(&mut ls, NAMESPACE_LABEL, svc.metadata.namespace.clone().unwrap_or_default());
    meta::add_object_meta(&mut ls, &svc.metadata, "service");
    ls
}

pub fn build(svc: &Service) -> TargetGroup {
    let ns = svc.metadata.namespace.clone().unwrap_or_default();
    let name = svc.metadata.name.clone().unwrap_or_default();
    let mut group = TargetGroup { source: source(&ns, &name), labels: labels(svc), ..Default::default() };
    let Some(spec) = &svc.spec else { return group };
    let ty = spec.type_.clone().unwrap_or_default();
    for port in spec.ports.iter().flatten() {
        let mut t = LabelSet::new();
        put(&mut t, ADDRESS_LABEL, meta::join_host_port(&format!("{name}.{ns}.svc"), port.port));
        put(&mut t, format!("{PREFIX}service_port_name"), port.name.clone().unwrap_or_default());
        put(&mut t, format!("{PREFIX}service_port_number"), port.port.to_string());
        put(&mut t, format!("{PREFIX}service_port_protocol"), port.protocol.clone().unwrap_or_default());
        put(&mut t, format!("{PREFIX}service_type"), ty.clone());
        if ty == "ExternalName" {
            put(&mut t, format!("{PREFIX}service_external_name"), spec.external_name.clone().unwrap_or_default());
        } else {
            put(&mut t, format!("{PREFIX}service_cluster_ip"), spec.cluster_ip.clone().unwrap_or_default());
        }
        if ty == "LoadBalancer" {
            put(&mut t, format!("{PREFIX}service_loadbalancer_ip"), spec.load_balancer_ip.clone().unwrap_or_default());
        }
        group.targets.push(t);
    }
    group
}
