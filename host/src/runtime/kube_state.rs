//! kube-state plugins: unlike exporters, one instance lives as long as its
//! job, because its state is the cluster's objects as fed so far. Each call
//! (`init`, `apply`, `collect`) still has its own wall-clock and CPU limits,
//! and the instance's memory is capped; a call that traps poisons the
//! instance, and the owner starts a new one (and re-lists).

use super::call::{CallFailure, CallOutcome, PluginState};
use super::long_lived::LongLived;
use super::{EpochGate, Runtime, RuntimeError, Sandbox};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "kube-state",
        with: {
            "wasmon:plugin/types": crate::runtime::bindings::wasmon::plugin::types,
            "wasmon:plugin/host": crate::runtime::bindings::wasmon::plugin::host,
        },
        exports: { default: async },
    });
}

pub use bindings::wasmon::plugin::kube::{Change, ObjectEvent, Resource};
use bindings::{KubeState, KubeStatePre};

use super::model::{MetricFamily, PluginInfo};

/// A compiled kube-state component, ready to instantiate.
#[derive(Clone)]
pub struct LoadedKubeState {
    pub name: Arc<str>,
    pre: KubeStatePre<PluginState>,
    paths: Arc<crate::config::PathsConfig>,
    epoch: Arc<EpochGate>,
}

impl Runtime {
    /// Compile (or load from the cache) a kube-state component.
    pub fn load_kube_state(&self, name: &str, path: &Path) -> Result<LoadedKubeState, RuntimeError> {
        let wasm = super::read_component(name, path)?;
        self.load_kube_state_bytes(name, path, &wasm)
    }

    /// [`load_kube_state`](Self::load_kube_state) from bytes already read.
    pub fn load_kube_state_bytes(&self, name: &str, path: &Path, wasm: &[u8]) -> Result<LoadedKubeState, RuntimeError> {
        let plugin_err = |message: String| RuntimeError::Plugin { plugin: name.to_string(), message };
        let (pre, _) = self.instance_pre(name, path, wasm)?;
        let pre = KubeStatePre::new(pre)
            .map_err(|e| plugin_err(format!("{} is not a wasmon kube-state component: {e:#}", path.display())))?;
        Ok(LoadedKubeState {
            name: Arc::from(name),
            pre,
            paths: self.paths.clone(),
            epoch: self.epoch_ticker.gate.clone(),
        })
    }
}

/// One live instance of a kube-state plugin.
pub struct KubeStateInstance {
    inner: LongLived<KubeState>,
}

impl LoadedKubeState {
    /// A new instance with `sandbox`'s memory, time and log limits.
    pub fn instantiate(&self, sandbox: &Sandbox) -> Result<KubeStateInstance, CallFailure> {
        let pre = self.pre.clone();
        let inner = LongLived::new(
            self.pre.engine(),
            self.name.clone(),
            self.paths.clone(),
            self.epoch.clone(),
            sandbox,
            async |store| pre.instantiate_async(store).await,
        )?;
        Ok(KubeStateInstance { inner })
    }
}

impl KubeStateInstance {
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// True once a call trapped or ran out of a limit.
    pub fn is_poisoned(&self) -> bool {
        self.inner.is_poisoned()
    }

    pub fn describe(&mut self) -> CallOutcome<PluginInfo> {
        self.inner.call("describe", async |e, s| e.call_describe(s).await.map(Ok))
    }

    pub fn check_config(&mut self, config: &str) -> CallOutcome<()> {
        self.inner.call("check-config", async |e, s| e.call_check_config(s, config).await)
    }

    /// Start with the job's config; returns the kinds to watch.
    pub fn init(&mut self, config: &str) -> CallOutcome<Vec<Resource>> {
        self.inner.call("init", async |e, s| e.call_init(s, config).await)
    }

    pub fn apply(&mut self, events: &[ObjectEvent]) -> CallOutcome<()> {
        self.inner.call("apply", async |e, s| e.call_apply(s, events).await)
    }

    pub fn collect(&mut self) -> CallOutcome<Vec<MetricFamily>> {
        self.inner.call("collect", async |e, s| e.call_collect(s).await)
    }
}

/// The wall-clock limit of one call of a kube-state instance by default:
/// a full re-list of a big cluster arrives as a few large `apply` batches.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);
