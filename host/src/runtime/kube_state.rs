//! kube-state plugins: unlike exporters, one instance lives as long as its
//! job, because its state is the cluster's objects as fed so far. Each call
//! (`init`, `apply`, `collect`) still has its own wall-clock and CPU limits,
//! and the instance's memory is capped; a call that traps poisons the
//! instance, and the owner starts a new one (and re-lists).

use super::call::{CallFailure, CallOutcome, FailureReason, PluginState};
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

/// Provide `exposition` to every component the runtime links (only
/// kube-state components import it). By hand rather than through the
/// generated bindings, which would lift each fragment into a new `String`
/// (about 1 MiB each, 63 MiB per collect at 10,000 pods) only for it to be
/// kept: the text is copied from the guest's memory straight into the
/// instance's buffer, which keeps its capacity from one collect to the next.
pub(super) fn add_to_linker(linker: &mut wasmtime::component::Linker<PluginState>) -> wasmtime::Result<()> {
    linker.instance("wasmon:plugin/exposition@0.1.0")?.func_wrap(
        "write",
        |mut store: wasmtime::StoreContextMut<'_, PluginState>, (text,): (wasmtime::component::WasmStr,)| {
            // Out of the store while the guest's string is borrowed from it.
            let mut buffer = std::mem::take(&mut store.data_mut().exposition);
            let accepted = text.to_str(&store).map(|text| buffer.write(&text));
            store.data_mut().exposition = buffer;
            Ok((accepted?,))
        },
    )
}

/// The text one `collect` wrote, fragment by fragment, up to a byte limit.
#[derive(Debug, Default)]
pub struct ExpositionBuffer {
    /// Every fragment, back to back.
    text: String,
    /// Where each fragment ends in `text`.
    ends: Vec<usize>,
    limit: usize,
    refused: bool,
    /// The text of the previous collect, handed back once it was read
    /// ([`KubeStateInstance::recycle`]): the next collect writes into its
    /// memory instead of faulting in fresh pages.
    spare: String,
}

impl ExpositionBuffer {
    fn start(&mut self, limit: usize) {
        let mut text = std::mem::take(&mut self.spare);
        text.clear();
        *self = Self { text, limit, ..Self::default() };
    }

    fn write(&mut self, fragment: &str) -> bool {
        if self.refused || self.text.len() + fragment.len() > self.limit {
            self.refused = true;
            return false;
        }
        self.text.push_str(fragment);
        self.ends.push(self.text.len());
        true
    }
}

/// What a `collect` wrote: Prometheus text in fragments (`wit/kube.wit`).
#[derive(Debug, Default)]
pub struct CollectedText {
    text: String,
    ends: Vec<usize>,
}

impl CollectedText {
    /// Bytes of text in all.
    pub fn bytes(&self) -> usize {
        self.text.len()
    }

    /// The fragments, in the order they were written.
    pub fn fragments(&self) -> Vec<&str> {
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let fragment = &self.text[start..end];
                start = end;
                fragment
            })
            .collect()
    }

    /// The fragments read into families, merged by name.
    pub fn families(&self) -> Result<Vec<MetricFamily>, CallFailure> {
        let families = wasmon_sdk::text::parse_fragments(&self.fragments()).map_err(|e| CallFailure {
            reason: FailureReason::ParseError,
            message: format!("collect wrote text that does not parse: {e}"),
        })?;
        Ok(families.into_iter().map(crate::scrape::from_sdk).collect())
    }

    /// The buffer, to give back with [`KubeStateInstance::recycle`].
    pub fn into_buffer(self) -> String {
        self.text
    }
}

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

    /// `collect`, read into families; at most `limit` bytes of text.
    pub fn collect(&mut self, limit: usize) -> CallOutcome<Vec<MetricFamily>> {
        let CallOutcome { result, report } = self.collect_text(limit);
        let result = result.and_then(|text| {
            let families = text.families();
            self.recycle(text.into_buffer());
            families
        });
        CallOutcome { result, report }
    }

    /// `collect` as the plugin wrote it. More than `limit` bytes fails the
    /// collect (`body_size_limit`); the instance stays usable.
    pub fn collect_text(&mut self, limit: usize) -> CallOutcome<CollectedText> {
        let CallOutcome { result, report } = self.inner.call("collect", async |e, s| {
            s.data_mut().exposition.start(limit);
            let result = e.call_collect(&mut *s).await;
            let buffer = std::mem::take(&mut s.data_mut().exposition);
            result.map(|r| r.map(|()| buffer))
        });
        let result = result.and_then(|buffer| {
            if buffer.refused {
                return Err(CallFailure {
                    reason: FailureReason::BodySizeLimit,
                    message: format!(
                        "collect wrote more than {} bytes of text (body_size_limit, or limits.memory \
                         when that is unset); raise it or watch fewer objects",
                        buffer.limit
                    ),
                });
            }
            Ok(CollectedText { text: buffer.text, ends: buffer.ends })
        });
        CallOutcome { result, report }
    }

    /// Hand back the text of a collect once it has been read, for the next
    /// collect to write into. The instance then holds on to memory the size
    /// of its last collect's text between collects, as Prometheus' scrape
    /// loop keeps its body buffers.
    pub fn recycle(&mut self, buffer: String) {
        self.inner.data_mut().exposition.spare = buffer;
    }
}

/// The wall-clock limit of one call of a kube-state instance by default:
/// a full re-list of a big cluster arrives as a few large `apply` batches.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);
