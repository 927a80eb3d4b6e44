//! Pod identity from kubelet's log paths,
//! `/var/log/pods/<namespace>_<pod>_<uid>/<container>/<restart>.log`, and the
//! hook through which the host adds what only its watch cache knows (pod labels).

use crate::record::{Attributes, attr};
use std::path::Path;

/// A container's log file, as named by kubelet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PodRef {
    pub namespace: String,
    pub pod: String,
    pub uid: String,
    pub container: String,
    pub restart_count: u32,
}

impl PodRef {
    /// Parses the last three path components; `None` for other layouts.
    /// Namespaces and pod names are DNS names and cannot contain `_`, so the
    /// directory name splits unambiguously.
    pub fn from_path(path: &Path) -> Option<Self> {
        let mut parts = path.iter().rev();
        let file = parts.next()?.to_str()?;
        let container = parts.next()?.to_str()?;
        let pod_dir = parts.next()?.to_str()?;
        let restart_count = file.strip_suffix(".log")?.parse().ok()?;
        let mut it = pod_dir.split('_');
        let (namespace, pod, uid) = (it.next()?, it.next()?, it.next()?);
        if it.next().is_some() || namespace.is_empty() || pod.is_empty() || uid.is_empty() || container.is_empty() {
            return None;
        }
        Some(Self {
            namespace: namespace.into(),
            pod: pod.into(),
            uid: uid.into(),
            container: container.into(),
            restart_count,
        })
    }

    pub fn attributes(&self, into: &mut Attributes) {
        into.insert(attr::K8S_NAMESPACE, &self.namespace);
        into.insert(attr::K8S_POD_NAME, &self.pod);
        into.insert(attr::K8S_POD_UID, &self.uid);
        into.insert(attr::K8S_CONTAINER_NAME, &self.container);
        into.insert(attr::K8S_CONTAINER_RESTART_COUNT, &self.restart_count.to_string());
    }
}

/// Implemented by the host on top of its Kubernetes watch cache. Called when a
/// file is opened and again at every poll interval, so labels that arrive
/// after the file appeared are picked up; it must be cheap and must not block.
pub trait PodMetadataSource: Send + Sync {
    /// Extra attributes for this pod, e.g. `k8s.pod.label.app`. Empty when the pod is unknown.
    fn pod_attributes(&self, pod: &PodRef) -> Vec<(String, String)>;
}

impl<F> PodMetadataSource for F
where
    F: Fn(&PodRef) -> Vec<(String, String)> + Send + Sync,
{
    fn pod_attributes(&self, pod: &PodRef) -> Vec<(String, String)> {
        self(pod)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_paths_parse() {
        let p = PodRef::from_path(Path::new(
            "/var/log/pods/kube-system_coredns-5d78c9869d-x2x9w_0b7f5e43-2a4e-4c4c-9bd0-5d0c1ad6e9d1/coredns/3.log",
        ))
        .unwrap();
        assert_eq!(p.namespace, "kube-system");
        assert_eq!(p.pod, "coredns-5d78c9869d-x2x9w");
        assert_eq!(p.uid, "0b7f5e43-2a4e-4c4c-9bd0-5d0c1ad6e9d1");
        assert_eq!(p.container, "coredns");
        assert_eq!(p.restart_count, 3);
        assert!(PodRef::from_path(Path::new("/var/log/syslog")).is_none());
        assert!(PodRef::from_path(Path::new("/var/log/pods/a_b/c/0.log")).is_none());
        assert!(PodRef::from_path(Path::new("/var/log/pods/a_b_c/d/0.log.20240101")).is_none());
    }
}
