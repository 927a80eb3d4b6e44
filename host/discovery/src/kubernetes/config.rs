//! The plain config the host converts its `kubernetes_sd_configs` YAML
//! into. Field names follow Prometheus so the conversion is one-to-one.

use std::path::PathBuf;

/// Which objects become targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Node,
    Pod,
    Service,
    Endpoints,
    EndpointSlice,
}

impl Role {
    /// The name in config files and in `__meta_kubernetes_<role>_*` labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Node => "node",
            Role::Pod => "pod",
            Role::Service => "service",
            Role::Endpoints => "endpoints",
            Role::EndpointSlice => "endpointslice",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "node" => Role::Node,
            "pod" => Role::Pod,
            "service" => Role::Service,
            "endpoints" => Role::Endpoints,
            "endpointslice" => Role::EndpointSlice,
            _ => return None,
        })
    }

    /// Roles whose objects a `selectors` entry may narrow for this role
    /// (Prometheus' `allowedSelectors`).
    pub fn allowed_selectors(self) -> &'static [Role] {
        match self {
            Role::Node => &[Role::Node],
            Role::Pod => &[Role::Pod],
            Role::Service => &[Role::Service],
            Role::Endpoints => &[Role::Pod, Role::Service, Role::Endpoints],
            Role::EndpointSlice => &[Role::Pod, Role::Service, Role::EndpointSlice],
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A label and/or field selector for the objects of one role, sent to the
/// API server with every list and watch. A DaemonSet agent uses
/// `field: spec.nodeName=$NODE` on pods to see only its own node's pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub role: Role,
    pub label: Option<String>,
    pub field: Option<String>,
}

/// `namespaces:`; both empty means all namespaces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceDiscovery {
    pub names: Vec<String>,
    /// Add the namespace the agent runs in (read from the service account).
    pub own_namespace: bool,
}

/// One `kubernetes_sd_configs` entry, minus the client settings
/// ([`super::ClientConfig`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesSdConfig {
    pub role: Role,
    pub namespaces: NamespaceDiscovery,
    pub selectors: Vec<Selector>,
    /// `attach_metadata.node`: add the node's labels to pod, endpoints and
    /// endpointslice targets (needs list/watch on nodes).
    pub attach_node_metadata: bool,
    /// The agent's own namespace for `own_namespace`; `None` reads it from
    /// the service account mount.
    pub own_namespace_name: Option<String>,
}

impl KubernetesSdConfig {
    pub fn new(role: Role) -> Self {
        Self {
            role,
            namespaces: NamespaceDiscovery::default(),
            selectors: Vec::new(),
            attach_node_metadata: false,
            own_namespace_name: None,
        }
    }

    /// Prometheus' load-time checks.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut seen = Vec::new();
        for s in &self.selectors {
            if seen.contains(&s.role) {
                return Err(ConfigError::DuplicateSelector(s.role));
            }
            seen.push(s.role);
            if !self.role.allowed_selectors().contains(&s.role) {
                let allowed: Vec<&str> = self.role.allowed_selectors().iter().map(|r| r.as_str()).collect();
                return Err(ConfigError::SelectorRole { role: self.role, allowed: allowed.join(", ") });
            }
            for text in [&s.label, &s.field].into_iter().flatten() {
                if text.split(',').any(|t| t.trim().is_empty()) && !text.trim().is_empty() {
                    return Err(ConfigError::BadSelector(text.clone()));
                }
            }
        }
        if self.attach_node_metadata && matches!(self.role, Role::Node | Role::Service) {
            return Err(ConfigError::AttachNode(self.role));
        }
        Ok(())
    }

    pub fn selector(&self, role: Role) -> Option<&Selector> {
        self.selectors.iter().find(|s| s.role == role)
    }

    /// The namespaces to watch; `None` is all of them.
    pub fn resolved_namespaces(&self) -> Result<Option<Vec<String>>, ConfigError> {
        let mut names = self.namespaces.names.clone();
        if self.namespaces.own_namespace {
            let own = match &self.own_namespace_name {
                Some(ns) => ns.clone(),
                None => std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE)
                    .map_err(|e| ConfigError::OwnNamespace(e.to_string()))?
                    .trim()
                    .to_string(),
            };
            if own.is_empty() {
                return Err(ConfigError::OwnNamespace("the namespace file is empty".into()));
            }
            names.push(own);
        }
        names.sort();
        names.dedup();
        Ok(if names.is_empty() { None } else { Some(names) })
    }
}

pub const SERVICE_ACCOUNT_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("duplicated selector role: {0}")]
    DuplicateSelector(Role),
    #[error("{role} role supports only {allowed} selectors")]
    SelectorRole { role: Role, allowed: String },
    #[error("selector {0:?} has an empty term")]
    BadSelector(String),
    #[error("attach_metadata.node is valid only for the pod, endpoints and endpointslice roles, not {0}")]
    AttachNode(Role),
    #[error(
        "could not determine the agent's own namespace for namespaces.own_namespace: {0} (is {SERVICE_ACCOUNT_NAMESPACE} mounted?)"
    )]
    OwnNamespace(String),
}

/// How to reach the API server. With neither `api_server` nor
/// `kubeconfig_file`, the in-cluster service account is used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientConfig {
    /// `http(s)://host:port`.
    pub api_server: Option<String>,
    pub kubeconfig_file: Option<PathBuf>,
    /// CA bundle to verify the API server with (PEM).
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM) for mutual TLS.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub insecure_skip_verify: bool,
    /// Re-read on every refresh, so rotated service-account tokens work.
    pub bearer_token_file: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_roles_are_checked() {
        let mut c = KubernetesSdConfig::new(Role::Pod);
        c.selectors.push(Selector { role: Role::Service, label: None, field: None });
        assert!(matches!(c.validate(), Err(ConfigError::SelectorRole { .. })));
        let mut c = KubernetesSdConfig::new(Role::Endpoints);
        c.selectors.push(Selector { role: Role::Pod, label: Some("a=b".into()), field: None });
        c.selectors.push(Selector { role: Role::Pod, label: None, field: None });
        assert_eq!(c.validate(), Err(ConfigError::DuplicateSelector(Role::Pod)));
        let mut c = KubernetesSdConfig::new(Role::Node);
        c.attach_node_metadata = true;
        assert_eq!(c.validate(), Err(ConfigError::AttachNode(Role::Node)));
    }

    #[test]
    fn own_namespace_joins_names() {
        let mut c = KubernetesSdConfig::new(Role::Pod);
        assert_eq!(c.resolved_namespaces(), Ok(None));
        c.namespaces.names = vec!["b".into()];
        c.namespaces.own_namespace = true;
        c.own_namespace_name = Some("a".into());
        assert_eq!(c.resolved_namespaces(), Ok(Some(vec!["a".into(), "b".into()])));
    }
}
