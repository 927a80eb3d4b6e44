//! Label helpers shared by every role: Prometheus' `__meta_kubernetes_`
//! prefix, label-name sanitising and the object-metadata label family
//! (`<role>_name`, `_label_`, `_labelpresent_`, `_annotation_`,
//! `_annotationpresent_`) that Prometheus' `addObjectMetaLabels` builds.

use crate::LabelSet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

pub const PREFIX: &str = "__meta_kubernetes_";
pub const NAMESPACE_LABEL: &str = "__meta_kubernetes_namespace";
pub const PRESENT: &str = "true";

/// Replace every character that may not appear in a Prometheus label name
/// with `_` (Prometheus' `strutil.SanitizeLabelName`).
pub fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

pub fn put(ls: &mut LabelSet, name: impl Into<String>, value: impl Into<String>) {
    ls.insert(name.into(), value.into());
}

/// The metadata labels of one object for `role` (`pod`, `node`, `service`,
/// `endpoints`, `endpointslice`).
pub fn add_object_meta(ls: &mut LabelSet, meta: &ObjectMeta, role: &str) {
    put(ls, format!("{PREFIX}{role}_name"), meta.name.clone().unwrap_or_default());
    for (k, v) in meta.labels.iter().flatten() {
        let ln = sanitize(k);
        put(ls, format!("{PREFIX}{role}_label_{ln}"), v.clone());
        put(ls, format!("{PREFIX}{role}_labelpresent_{ln}"), PRESENT);
    }
    for (k, v) in meta.annotations.iter().flatten() {
        let ln = sanitize(k);
        put(ls, format!("{PREFIX}{role}_annotation_{ln}"), v.clone());
        put(ls, format!("{PREFIX}{role}_annotationpresent_{ln}"), PRESENT);
    }
}

/// `host:port`, with brackets around IPv6 hosts (Go's `net.JoinHostPort`).
pub fn join_host_port(host: &str, port: impl std::fmt::Display) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// `namespace/name`, the store key Prometheus (client-go) uses.
pub fn key(meta: &ObjectMeta) -> String {
    match meta.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => format!("{ns}/{}", meta.name.as_deref().unwrap_or("")),
        _ => meta.name.clone().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_like_prometheus() {
        assert_eq!(sanitize("app.kubernetes.io/name"), "app_kubernetes_io_name");
        assert_eq!(sanitize("a-b_c9"), "a_b_c9");
        assert_eq!(sanitize("ünï"), "_n_");
    }

    #[test]
    fn ipv6_hosts_get_brackets() {
        assert_eq!(join_host_port("10.0.0.1", 80), "10.0.0.1:80");
        assert_eq!(join_host_port("fd00::1", 80), "[fd00::1]:80");
    }
}
