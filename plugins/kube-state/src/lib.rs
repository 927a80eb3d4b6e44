//! wasmon's `kube-state` plugin: kube-state-metrics 2.x families from the
//! Kubernetes objects the host watches, kept as compact per-object state.
//!
//! Build: `cargo build --release --target wasm32-wasip2 -p wasmon-kube-state`.
//! The same code runs natively, so `cargo test` drives it with JSON fixtures.

pub mod common;
pub mod config;
pub mod cron;
pub mod kinds;

use config::{KubeStateConfig, Resolved};
use kinds::{Kind, KindStore};
use wasmon_sdk::{Family, PluginError, PluginInfo};
use wasmon_sdk_kube::{Change, Exposition, KubeState, ObjectEvent, Resource};

const DESCRIPTION: &str = "kube-state-metrics 2.x families (kube_pod_*, kube_node_*, kube_deployment_*, ...) \
from Kubernetes objects that the host lists and watches. Needs list/watch RBAC on every kind it watches.";

/// The plugin's config section as `describe` shows it (the `config:` of
/// `config.example.yaml`; a test keeps the two in step).
pub const CONFIG_EXAMPLE: &str = "\
resources: [pods, nodes, deployments, replicasets, daemonsets, statefulsets, jobs, cronjobs, services, namespaces, persistentvolumes, persistentvolumeclaims, resourcequotas, horizontalpodautoscalers, leases, configmaps, secrets]
metric_labels_allowlist:
  pods: [app.kubernetes.io/name, app.kubernetes.io/instance]
  persistentvolumeclaims: [excluded_from_alerts]
metric_annotations_allowlist: {}
";

/// How many bad objects of one batch are logged one by one; the rest are
/// summed up in one line.
const LOGGED_ERRORS_PER_BATCH: usize = 5;

/// The plugin's state: one store per watched kind, in `init`'s order.
pub struct KubeStatePlugin {
    stores: Vec<KindStore>,
    /// Objects that could not be read, per store, since start.
    errors: Vec<u64>,
    fragment_bytes: usize,
}

/// About how much text `collect` renders before handing it to the host: big
/// enough that host calls are few, small enough that the plugin's memory
/// does not grow with the cluster's output.
pub const FRAGMENT_BYTES: usize = 1 << 20;

impl KubeStatePlugin {
    /// A plugin for a checked config.
    pub fn new(config: &Resolved) -> Self {
        let stores: Vec<KindStore> = config.kinds.iter().map(|k| k.new_store(config)).collect();
        Self { errors: vec![0; stores.len()], stores, fragment_bytes: FRAGMENT_BYTES }
    }

    /// What `init` returns: the kinds to watch, indexed as events name them.
    pub fn resources(&self) -> Vec<Resource> {
        self.stores.iter().map(|s| s.kind.resource()).collect()
    }

    /// The index of `kind` in [`resources`](Self::resources).
    pub fn index_of(&self, kind: Kind) -> Option<u32> {
        self.stores.iter().position(|s| s.kind == kind).map(|i| i as u32)
    }

    /// Fragments of about `bytes` (the default is [`FRAGMENT_BYTES`]); tests
    /// use tiny ones to check that fragmenting changes nothing.
    pub fn with_fragment_bytes(mut self, bytes: usize) -> Self {
        self.fragment_bytes = bytes.max(1);
        self
    }

    /// Objects held, per kind.
    pub fn object_counts(&self) -> Vec<(Kind, usize)> {
        self.stores.iter().map(|s| (s.kind, s.len())).collect()
    }

    /// Apply a batch; returns one message per event that could not be
    /// applied (what `apply` logs). Every other event of the batch applies.
    pub fn apply_events(&mut self, events: &[ObjectEvent]) -> Vec<String> {
        let mut problems = Vec::new();
        for event in events {
            if let Err(message) = self.apply_one(event) {
                if let Some(count) = self.errors.get_mut(event.resource as usize) {
                    *count += 1;
                }
                problems.push(message);
            }
        }
        problems
    }

    fn apply_one(&mut self, event: &ObjectEvent) -> Result<(), String> {
        let Some(store) = self.stores.get_mut(event.resource as usize) else {
            return Err(format!(
                "event for resource index {} but init returned {} kinds",
                event.resource,
                self.stores.len()
            ));
        };
        let result = match event.change {
            Change::Applied => store.apply(&event.object),
            Change::Deleted => store.delete(&event.object),
        };
        result.map_err(|e| {
            let what = kinds::describe_object(&event.object).map(|n| format!(" {n}")).unwrap_or_default();
            let change = if event.change == Change::Applied { "applied" } else { "deleted" };
            format!("{change} {}{what}: cannot read the object ({e}); skipped", store.kind.plural())
        })
    }
}

impl KubeState for KubeStatePlugin {
    fn describe() -> PluginInfo {
        PluginInfo::new("kube-state", env!("CARGO_PKG_VERSION"), DESCRIPTION).with_config_example(CONFIG_EXAMPLE)
    }

    fn check_config(config: &str) -> Result<(), PluginError> {
        KubeStateConfig::parse(config).map(|_| ())
    }

    fn init(config: &str) -> Result<(Self, Vec<Resource>), PluginError> {
        let plugin = Self::new(&KubeStateConfig::parse(config)?);
        let resources = plugin.resources();
        Ok((plugin, resources))
    }

    /// Bad objects are logged (a few per batch) and counted in
    /// `wasmon_kube_state_object_errors_total`; the rest of the batch applies.
    fn apply(&mut self, events: Vec<ObjectEvent>) -> Result<(), PluginError> {
        let problems = self.apply_events(&events);
        for message in problems.iter().take(LOGGED_ERRORS_PER_BATCH) {
            wasmon_sdk::log::warn(message);
        }
        if problems.len() > LOGGED_ERRORS_PER_BATCH {
            wasmon_sdk::log::warn(&format!(
                "{} more objects of this batch of {} could not be read and were skipped",
                problems.len() - LOGGED_ERRORS_PER_BATCH,
                events.len()
            ));
        }
        Ok(())
    }

    /// kube-state-metrics' families rendered straight from the state as
    /// text, then the plugin's own `wasmon_kube_state_*` families.
    fn collect(&mut self, out: &mut Exposition) -> Result<(), PluginError> {
        for store in &self.stores {
            if !store.collect(out, self.fragment_bytes) {
                // The host refused more; it fails this collect with the reason.
                return Ok(());
            }
        }
        let mut objects =
            Family::gauge("wasmon_kube_state_objects", "Objects held by the kube-state plugin, per kind.");
        let mut errors = Family::counter(
            "wasmon_kube_state_object_errors_total",
            "Object events the kube-state plugin could not read and skipped, per kind.",
        );
        for (store, count) in self.stores.iter().zip(&self.errors) {
            objects.sample(&[("resource", store.kind.plural())], store.len() as f64);
            errors.sample(&[("resource", store.kind.plural())], *count as f64);
        }
        out.families(&[objects.build(), errors.build()]);
        Ok(())
    }
}

wasmon_sdk_kube::export_kube_state!(KubeStatePlugin);
