//! The kinds of object the plugin knows, and one store per watched kind.
//!
//! Each kind's module has `SPECS` (its families, in output order), `parse`
//! (object JSON -> store key and compact state) and `emit` (state ->
//! samples).

pub mod batch;
pub mod cluster;
pub mod node;
pub mod pod;
pub mod service;
pub mod storage;
pub mod workload;

use crate::common::{RawMeta, Sink, Spec};
use crate::config::{Allowlist, Resolved};
use serde::Deserialize;
use std::collections::BTreeMap;
use wasmon_sdk_kube::{Exposition, Resource};

/// What parsing an object may depend on: this kind's allowlists.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub labels: Option<&'a Allowlist>,
    pub annotations: Option<&'a Allowlist>,
}

macro_rules! kinds {
    ($($variant:ident => $state:ty, $specs:path, $parse:path, $emit:path, $plural:literal, $group:literal, $version:literal, $kind:literal, $namespaced:literal;)*) => {
        /// A kind of Kubernetes object.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Kind { $($variant),* }

        impl Kind {
            /// Every kind, in the order their families are written.
            pub const ALL: [Kind; [$($plural),*].len()] = [$(Kind::$variant),*];

            /// The plural name (`pods`), as in KSM's `--resources`.
            pub fn plural(self) -> &'static str {
                match self { $(Kind::$variant => $plural),* }
            }

            /// What the host should watch for this kind.
            pub fn resource(self) -> Resource {
                match self { $(Kind::$variant => Resource::new($group, $version, $plural, $kind, $namespaced)),* }
            }

            /// The families this kind produces.
            pub fn specs(self) -> &'static [Spec] {
                match self { $(Kind::$variant => $specs),* }
            }

            fn store(self) -> Box<dyn AnyStore> {
                match self {
                    $(Kind::$variant => Box::new(Store::<$state>::new($parse, $emit, $specs))),*
                }
            }
        }
    };
}

kinds! {
    Pod => pod::PodState, pod::SPECS, pod::parse, pod::emit, "pods", "", "v1", "Pod", true;
    Node => node::Node, node::SPECS, node::parse, node::emit, "nodes", "", "v1", "Node", false;
    Deployment => workload::Deployment, workload::deployment::SPECS, workload::parse_deployment, workload::emit_deployment, "deployments", "apps", "v1", "Deployment", true;
    ReplicaSet => workload::ReplicaSet, workload::replicaset::SPECS, workload::parse_replicaset, workload::emit_replicaset, "replicasets", "apps", "v1", "ReplicaSet", true;
    DaemonSet => workload::DaemonSet, workload::daemonset::SPECS, workload::parse_daemonset, workload::emit_daemonset, "daemonsets", "apps", "v1", "DaemonSet", true;
    StatefulSet => workload::StatefulSet, workload::statefulset::SPECS, workload::parse_statefulset, workload::emit_statefulset, "statefulsets", "apps", "v1", "StatefulSet", true;
    Job => batch::Job, batch::job::SPECS, batch::parse_job, batch::emit_job, "jobs", "batch", "v1", "Job", true;
    CronJob => batch::CronJob, batch::cronjob::SPECS, batch::parse_cronjob, batch::emit_cronjob, "cronjobs", "batch", "v1", "CronJob", true;
    Service => service::Service, service::services::SPECS, service::parse_service, service::emit_service, "services", "", "v1", "Service", true;
    Endpoints => service::Endpoints, service::endpoints::SPECS, service::parse_endpoints, service::emit_endpoints, "endpoints", "", "v1", "Endpoints", true;
    Namespace => cluster::Namespace, cluster::namespace::SPECS, cluster::parse_namespace, cluster::emit_namespace, "namespaces", "", "v1", "Namespace", false;
    PersistentVolume => storage::PersistentVolume, storage::pv::SPECS, storage::parse_pv, storage::emit_pv, "persistentvolumes", "", "v1", "PersistentVolume", false;
    PersistentVolumeClaim => storage::PersistentVolumeClaim, storage::pvc::SPECS, storage::parse_pvc, storage::emit_pvc, "persistentvolumeclaims", "", "v1", "PersistentVolumeClaim", true;
    ResourceQuota => cluster::ResourceQuota, cluster::resourcequota::SPECS, cluster::parse_resourcequota, cluster::emit_resourcequota, "resourcequotas", "", "v1", "ResourceQuota", true;
    HorizontalPodAutoscaler => cluster::Hpa, cluster::hpa::SPECS, cluster::parse_hpa, cluster::emit_hpa, "horizontalpodautoscalers", "autoscaling", "v2", "HorizontalPodAutoscaler", true;
    Lease => cluster::Lease, cluster::lease::SPECS, cluster::parse_lease, cluster::emit_lease, "leases", "coordination.k8s.io", "v1", "Lease", true;
    ConfigMap => cluster::ConfigMap, cluster::configmap::SPECS, cluster::parse_configmap, cluster::emit_configmap, "configmaps", "", "v1", "ConfigMap", true;
    Secret => cluster::Secret, cluster::secret::SPECS, cluster::parse_secret, cluster::emit_secret, "secrets", "", "v1", "Secret", true;
}

impl Kind {
    pub fn from_plural(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.plural() == name)
    }

    /// The known plural names, for error messages.
    pub fn known() -> String {
        Kind::ALL.map(Kind::plural).join(", ")
    }

    /// A store for this kind with the config's allowlists.
    pub fn new_store(self, config: &Resolved) -> KindStore {
        KindStore {
            kind: self,
            labels: config.labels(self).cloned(),
            annotations: config.annotations(self).cloned(),
            store: self.store(),
        }
    }
}

/// One watched kind: its allowlists and objects.
pub struct KindStore {
    pub kind: Kind,
    labels: Option<Allowlist>,
    annotations: Option<Allowlist>,
    store: Box<dyn AnyStore>,
}

impl KindStore {
    /// Add or replace the object.
    pub fn apply(&mut self, text: &str) -> Result<(), serde_json::Error> {
        let ctx = Context { labels: self.labels.as_ref(), annotations: self.annotations.as_ref() };
        self.store.apply(text, &ctx)
    }

    /// Forget the object (its last known state is `text`). Only its
    /// identity is read, so a delete works even if the rest is unreadable.
    pub fn delete(&mut self, text: &str) -> Result<(), serde_json::Error> {
        let id: Identity = serde_json::from_str(text)?;
        if id.metadata.uid.is_empty() && id.metadata.name.is_empty() {
            return Err(serde::de::Error::custom("no metadata.uid or metadata.name"));
        }
        self.store.remove(&id.metadata.key());
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.store.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Write every object's samples to `out`, in fragments of about
    /// `fragment_bytes`. False once the host takes no more.
    pub fn collect(&self, out: &mut Exposition, fragment_bytes: usize) -> bool {
        self.store.collect(out, fragment_bytes)
    }
}

/// Just enough of an object to name it.
#[derive(Deserialize)]
pub struct Identity {
    #[serde(default)]
    pub metadata: RawMeta,
}

/// The name of an object for error messages, if the text says it.
pub fn describe_object(text: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Meta {
        #[serde(default)]
        name: String,
        #[serde(default)]
        namespace: String,
    }
    #[derive(Deserialize)]
    struct Obj {
        metadata: Meta,
    }
    let obj: Obj = serde_json::from_str(text).ok()?;
    match (obj.metadata.namespace.as_str(), obj.metadata.name.as_str()) {
        (_, "") => None,
        ("", name) => Some(name.to_string()),
        (ns, name) => Some(format!("{ns}/{name}")),
    }
}

trait AnyStore {
    fn apply(&mut self, text: &str, ctx: &Context) -> Result<(), serde_json::Error>;
    fn remove(&mut self, key: &str);
    fn len(&self) -> usize;
    fn collect(&self, out: &mut Exposition, fragment_bytes: usize) -> bool;
}

type ParseFn<T> = fn(&str, &Context) -> Result<(String, T), serde_json::Error>;
type EmitFn<T> = fn(&str, &T, &mut Sink);

/// The objects of one kind by uid, kept compact; series are rendered from
/// them on `collect`.
struct Store<T> {
    objects: BTreeMap<Box<str>, T>,
    parse: ParseFn<T>,
    emit: EmitFn<T>,
    specs: &'static [Spec],
}

impl<T> Store<T> {
    fn new(parse: ParseFn<T>, emit: EmitFn<T>, specs: &'static [Spec]) -> Self {
        Self { objects: BTreeMap::new(), parse, emit, specs }
    }
}

impl<T> AnyStore for Store<T> {
    fn apply(&mut self, text: &str, ctx: &Context) -> Result<(), serde_json::Error> {
        let (key, state) = (self.parse)(text, ctx)?;
        self.objects.insert(key.into(), state);
        Ok(())
    }

    fn remove(&mut self, key: &str) {
        self.objects.remove(key);
    }

    fn len(&self) -> usize {
        self.objects.len()
    }

    fn collect(&self, out: &mut Exposition, fragment_bytes: usize) -> bool {
        if self.objects.is_empty() {
            return true;
        }
        let mut sink = Sink::new(self.specs, fragment_bytes, out);
        for (key, state) in &self.objects {
            (self.emit)(key, state, &mut sink);
            if !sink.object_done() {
                return false;
            }
        }
        sink.finish()
    }
}
