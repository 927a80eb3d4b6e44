//! `role: pod`: one target per declared container port, and a port-less
//! target for each container without ports (Prometheus' `pod.go`).
//!
//! [`PodInfo`] is the part of a pod the endpoints roles need too; they keep
//! it instead of whole `Pod` objects, which are several times larger.

use super::meta::{self, NAMESPACE_LABEL, PREFIX, put};
use crate::{ADDRESS_LABEL, LabelSet, TargetGroup};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

pub fn source(namespace: &str, name: &str) -> String {
    format!("pod/{namespace}/{name}")
}

/// Strings are boxed slices: a pod is kept per watched pod by the roles
/// that need pods, and `String`'s spare capacity would add up.
type Text = Box<str>;

fn text(s: Option<&String>) -> Text {
    s.map(String::as_str).unwrap_or("").into()
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PortInfo {
    pub name: Text,
    pub number: i32,
    pub protocol: Text,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContainerInfo {
    pub name: Text,
    pub image: Text,
    pub id: Text,
    pub init: bool,
    pub ports: Box<[PortInfo]>,
}

/// What discovery needs of a pod, in raw form; the label set is built on
/// demand ([`PodInfo::labels`]), so keeping one costs little more than the
/// pod's own label and annotation text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PodInfo {
    pub namespace: Text,
    pub name: Text,
    pub ip: Text,
    pub node_name: Text,
    host_ip: Text,
    uid: Text,
    phase: Text,
    ready: Text,
    /// The controlling owner's kind and name.
    controller: Option<Box<(Text, Text)>>,
    labels: Box<[(Text, Text)]>,
    annotations: Box<[(Text, Text)]>,
    /// Regular containers first, then init containers, as Prometheus
    /// iterates them.
    pub containers: Box<[ContainerInfo]>,
}

fn container_id(statuses: Option<&Vec<ContainerStatus>>, name: &str) -> Text {
    text(statuses.into_iter().flatten().find(|s| s.name == name).and_then(|s| s.container_id.as_ref()))
}

fn pairs(map: Option<&std::collections::BTreeMap<String, String>>) -> Box<[(Text, Text)]> {
    map.into_iter().flatten().map(|(k, v)| (k.as_str().into(), v.as_str().into())).collect()
}

impl PodInfo {
    pub fn from_pod(pod: &Pod) -> Self {
        let status = pod.status.as_ref();
        let spec = pod.spec.as_ref();
        let ready = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
            .map_or_else(|| "unknown".to_string(), |c| c.status.to_lowercase());
        let controller = pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true))
            .map(|o| Box::new((o.kind.as_str().into(), o.name.as_str().into())));

        let mut containers = Vec::new();
        if let Some(spec) = spec {
            let regular = spec.containers.iter().map(|c| (c, false));
            let init = spec.init_containers.iter().flatten().map(|c| (c, true));
            for (c, is_init) in regular.chain(init) {
                let statuses = if is_init {
                    status.and_then(|s| s.init_container_statuses.as_ref())
                } else {
                    status.and_then(|s| s.container_statuses.as_ref())
                };
                containers.push(ContainerInfo {
                    name: c.name.as_str().into(),
                    image: text(c.image.as_ref()),
                    id: container_id(statuses, &c.name),
                    init: is_init,
                    ports: c
                        .ports
                        .iter()
                        .flatten()
                        .map(|p| PortInfo {
                            name: text(p.name.as_ref()),
                            number: p.container_port,
                            protocol: text(p.protocol.as_ref()),
                        })
                        .collect(),
                });
            }
        }
        Self {
            namespace: text(pod.metadata.namespace.as_ref()),
            name: text(pod.metadata.name.as_ref()),
            ip: text(status.and_then(|s| s.pod_ip.as_ref())),
            node_name: text(spec.and_then(|s| s.node_name.as_ref())),
            host_ip: text(status.and_then(|s| s.host_ip.as_ref())),
            uid: text(pod.metadata.uid.as_ref()),
            phase: text(status.and_then(|s| s.phase.as_ref())),
            ready: ready.into(),
            controller,
            labels: pairs(pod.metadata.labels.as_ref()),
            annotations: pairs(pod.metadata.annotations.as_ref()),
            containers: containers.into(),
        }
    }

    /// Prometheus' `podLabels`: shared by every target of the pod.
    pub fn labels(&self) -> LabelSet {
        let mut ls = LabelSet::new();
        put(&mut ls, format!("{PREFIX}pod_ip"), &*self.ip);
        put(&mut ls, format!("{PREFIX}pod_ready"), &*self.ready);
        put(&mut ls, format!("{PREFIX}pod_phase"), &*self.phase);
        put(&mut ls, format!("{PREFIX}pod_node_name"), &*self.node_name);
        put(&mut ls, format!("{PREFIX}pod_host_ip"), &*self.host_ip);
        put(&mut ls, format!("{PREFIX}pod_uid"), &*self.uid);
        // addObjectMetaLabels, from the raw metadata kept.
        put(&mut ls, format!("{PREFIX}pod_name"), &*self.name);
        for (k, v) in &self.labels {
            let ln = meta::sanitize(k);
            put(&mut ls, format!("{PREFIX}pod_label_{ln}"), &**v);
            put(&mut ls, format!("{PREFIX}pod_labelpresent_{ln}"), meta::PRESENT);
        }
        for (k, v) in &self.annotations {
            let ln = meta::sanitize(k);
            put(&mut ls, format!("{PREFIX}pod_annotation_{ln}"), &**v);
            put(&mut ls, format!("{PREFIX}pod_annotationpresent_{ln}"), meta::PRESENT);
        }
        if let Some(c) = &self.controller {
            if !c.0.is_empty() {
                put(&mut ls, format!("{PREFIX}pod_controller_kind"), &*c.0);
            }
            if !c.1.is_empty() {
                put(&mut ls, format!("{PREFIX}pod_controller_name"), &*c.1);
            }
        }
        ls
    }

    pub fn source(&self) -> String {
        source(&self.namespace, &self.name)
    }

    /// The pod role's group; `node_labels` from `attach_metadata.node`.
    pub fn build(&self, node_labels: Option<&LabelSet>) -> TargetGroup {
        let mut group = TargetGroup { source: self.source(), ..Default::default() };
        // The pod IP is empty while a pod starts or after eviction.
        if self.ip.is_empty() {
            return group;
        }
        let mut labels = self.labels();
        put(&mut labels, NAMESPACE_LABEL, &*self.namespace);
        if let Some(node) = node_labels {
            labels.extend(node.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        group.labels = labels;
        for c in &self.containers {
            let mut base = LabelSet::new();
            put(&mut base, format!("{PREFIX}pod_container_name"), &*c.name);
            put(&mut base, format!("{PREFIX}pod_container_id"), &*c.id);
            put(&mut base, format!("{PREFIX}pod_container_image"), &*c.image);
            put(&mut base, format!("{PREFIX}pod_container_init"), c.init.to_string());
            if c.ports.is_empty() {
                let mut t = base;
                put(&mut t, ADDRESS_LABEL, &*self.ip);
                group.targets.push(t);
                continue;
            }
            for p in &c.ports {
                let mut t = base.clone();
                put(&mut t, ADDRESS_LABEL, meta::join_host_port(&self.ip, p.number));
                put(&mut t, format!("{PREFIX}pod_container_port_number"), p.number.to_string());
                put(&mut t, format!("{PREFIX}pod_container_port_name"), &*p.name);
                put(&mut t, format!("{PREFIX}pod_container_port_protocol"), &*p.protocol);
                group.targets.push(t);
            }
        }
        group
    }
}
