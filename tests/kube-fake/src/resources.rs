//! The kinds the fake serves, with the names a real API server uses for
//! them in paths, list kinds and discovery documents.

/// One served resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceDef {
    /// API group, empty for core.
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
}

impl ResourceDef {
    /// `v1` or `apps/v1`, as in an object's `apiVersion`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.to_string() } else { format!("{}/{}", self.group, self.version) }
    }
}

const fn def(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
) -> ResourceDef {
    ResourceDef { group, version, plural, kind, namespaced }
}

/// Everything the fake knows. Index into this table is the resource id.
pub const RESOURCES: &[ResourceDef] = &[
    def("", "v1", "pods", "Pod", true),
    def("", "v1", "nodes", "Node", false),
    def("", "v1", "services", "Service", true),
    def("", "v1", "endpoints", "Endpoints", true),
    def("", "v1", "namespaces", "Namespace", false),
    def("", "v1", "configmaps", "ConfigMap", true),
    def("", "v1", "secrets", "Secret", true),
    def("", "v1", "persistentvolumes", "PersistentVolume", false),
    def("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", true),
    def("", "v1", "resourcequotas", "ResourceQuota", true),
    def("apps", "v1", "deployments", "Deployment", true),
    def("apps", "v1", "replicasets", "ReplicaSet", true),
    def("apps", "v1", "daemonsets", "DaemonSet", true),
    def("apps", "v1", "statefulsets", "StatefulSet", true),
    def("batch", "v1", "jobs", "Job", true),
    def("batch", "v1", "cronjobs", "CronJob", true),
    def("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", true),
    def("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", true),
    def("coordination.k8s.io", "v1", "leases", "Lease", true),
];

/// Find a resource by group, version and plural.
pub fn find(group: &str, version: &str, plural: &str) -> Option<usize> {
    RESOURCES.iter().position(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Find a resource by its plural name alone (unique in this table), or by
/// its kind; the test API accepts either.
pub fn by_name(name: &str) -> Option<usize> {
    RESOURCES.iter().position(|r| r.plural == name || r.kind.eq_ignore_ascii_case(name))
}
