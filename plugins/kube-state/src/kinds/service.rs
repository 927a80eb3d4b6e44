//! Services and Endpoints.

use super::Context;
use crate::common::*;
use serde::Deserialize;

fn opt(out: &mut Sink, family: usize, base: &[(&'static str, &str)], value: Option<i64>) {
    if let Some(v) = value {
        out.push(family, base, &[], v as f64);
    }
}

// --- Services ------------------------------------------------------------------------

pub mod services {
    use super::*;
    families!(F, SPECS {
        Annotations => "kube_service_annotations", Gauge, "Kubernetes annotations converted to Prometheus labels.";
        Info => "kube_service_info", Gauge, "Information about service.";
        Labels => "kube_service_labels", Gauge, "Kubernetes labels converted to Prometheus labels.";
        Created => "kube_service_created", Gauge, "Unix creation timestamp";
        SpecType => "kube_service_spec_type", Gauge, "Type about service.";
        ExternalIp => "kube_service_spec_external_ip", Gauge, "Service external ips. One series for each ip";
        LoadBalancerIngress => "kube_service_status_load_balancer_ingress", Gauge, "Service load balancer ingress status";
        DeletionTimestamp => "kube_service_deletion_timestamp", Gauge, "Unix deletion timestamp";
    });
}

#[derive(Debug)]
pub struct Service {
    meta: Meta,
    spec: ServiceSpec,
    ingress: Box<[Ingress]>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ServiceSpec {
    #[serde(rename = "type")]
    kind: Str,
    #[serde(rename = "clusterIP")]
    cluster_ip: Str,
    external_name: Str,
    #[serde(rename = "loadBalancerIP")]
    load_balancer_ip: Str,
    external_traffic_policy: Str,
    #[serde(rename = "externalIPs", deserialize_with = "nullable")]
    external_ips: Box<[Str]>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Ingress {
    ip: Str,
    hostname: Str,
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ServiceStatus {
    load_balancer: LoadBalancer,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct LoadBalancer {
    #[serde(deserialize_with = "nullable")]
    ingress: Vec<Ingress>,
}

pub fn parse_service(text: &str, ctx: &Context) -> Result<(String, Service), serde_json::Error> {
    #[derive(Deserialize)]
    struct Raw {
        #[serde(default)]
        metadata: RawMeta,
        #[serde(default)]
        spec: ServiceSpec,
        #[serde(default)]
        status: ServiceStatus,
    }
    let raw: Raw = serde_json::from_str(text)?;
    let key = raw.metadata.key();
    let service = Service {
        meta: raw.metadata.compact(ctx.labels, ctx.annotations),
        spec: raw.spec,
        ingress: raw.status.load_balancer.ingress.into(),
    };
    Ok((key, service))
}

pub fn emit_service(uid: &str, s: &Service, out: &mut Sink) {
    use services::F;
    let m = &s.meta;
    let base: &[(&'static str, &str)] = &[("namespace", &m.namespace), ("service", &m.name), ("uid", uid)];
    out.push_pairs(F::Annotations as usize, base, &m.annotations);
    let info = [
        ("cluster_ip", &*s.spec.cluster_ip),
        ("external_name", &s.spec.external_name),
        ("load_balancer_ip", &s.spec.load_balancer_ip),
        ("external_traffic_policy", &s.spec.external_traffic_policy),
    ];
    out.push(F::Info as usize, base, &info, 1.0);
    out.push_pairs(F::Labels as usize, base, &m.labels);
    opt(out, F::Created as usize, base, m.created);
    out.push(F::SpecType as usize, base, &[("type", &s.spec.kind)], 1.0);
    for ip in s.spec.external_ips.iter() {
        out.push(F::ExternalIp as usize, base, &[("external_ip", ip)], 1.0);
    }
    for i in s.ingress.iter() {
        out.push(F::LoadBalancerIngress as usize, base, &[("ip", &i.ip), ("hostname", &i.hostname)], 1.0);
    }
    opt(out, F::DeletionTimestamp as usize, base, m.deleted);
}

// --- Endpoints -----------------------------------------------------------------------

pub mod endpoints {
    use super::*;
    families!(F, SPECS {
        Annotations => "kube_endpoint_annotations", Gauge, "Kubernetes annotations converted to Prometheus labels.";
        Info => "kube_endpoint_info", Gauge, "Information about endpoint.";
        Labels => "kube_endpoint_labels", Gauge, "Kubernetes labels converted to Prometheus labels.";
        Created => "kube_endpoint_created", Gauge, "Unix creation timestamp";
        Ports => "kube_endpoint_ports", Gauge, "Information about the Endpoint ports.";
        Address => "kube_endpoint_address", Gauge, "Information about Endpoint available and non available addresses.";
    });
}

#[derive(Debug)]
pub struct Endpoints {
    meta: Meta,
    subsets: Box<[Subset]>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Subset {
    #[serde(deserialize_with = "nullable")]
    addresses: Box<[Address]>,
    #[serde(deserialize_with = "nullable")]
    not_ready_addresses: Box<[Address]>,
    #[serde(deserialize_with = "nullable")]
    ports: Box<[Port]>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Address {
    ip: Str,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Port {
    name: Str,
    protocol: Str,
    port: i64,
}

pub fn parse_endpoints(text: &str, ctx: &Context) -> Result<(String, Endpoints), serde_json::Error> {
    #[derive(Deserialize)]
    struct Raw {
        #[serde(default)]
        metadata: RawMeta,
        #[serde(default, deserialize_with = "nullable")]
        subsets: Vec<Subset>,
    }
    let raw: Raw = serde_json::from_str(text)?;
    let key = raw.metadata.key();
    Ok((key, Endpoints { meta: raw.metadata.compact(ctx.labels, ctx.annotations), subsets: raw.subsets.into() }))
}

pub fn emit_endpoints(_uid: &str, e: &Endpoints, out: &mut Sink) {
    use endpoints::F;
    let m = &e.meta;
    let base: &[(&'static str, &str)] = &[("namespace", &m.namespace), ("endpoint", &m.name)];
    out.push_pairs(F::Annotations as usize, base, &m.annotations);
    out.push(F::Info as usize, base, &[], 1.0);
    out.push_pairs(F::Labels as usize, base, &m.labels);
    opt(out, F::Created as usize, base, m.created);
    for subset in e.subsets.iter() {
        for p in subset.ports.iter() {
            let number = p.port.to_string();
            let labels = [("port_name", &*p.name), ("port_protocol", &p.protocol), ("port_number", &number)];
            out.push(F::Ports as usize, base, &labels, 1.0);
        }
    }
    for subset in e.subsets.iter() {
        for (addresses, ready) in [(&subset.addresses, "true"), (&subset.not_ready_addresses, "false")] {
            for a in addresses.iter() {
                for p in subset.ports.iter() {
                    let number = p.port.to_string();
                    let labels = [
                        ("ip", &*a.ip),
                        ("port_name", &p.name),
                        ("port_protocol", &p.protocol),
                        ("port_number", &number),
                        ("ready", ready),
                    ];
                    out.push(F::Address as usize, base, &labels, 1.0);
                }
            }
        }
    }
}
