//! kube-state plugins: unlike exporters, one instance lives as long as its
//! job, because its state is the cluster's objects as fed so far. Each call
//! (`init`, `apply`, `collect`) still has its own wall-clock and CPU limits,
//! and the instance's memory is capped; a call that traps poisons the
//! instance, and the owner starts a new one (and re-lists).

use super::call::{CallFailure, CallOutcome, CallReport, Deadline, FailureReason, PluginState};
use super::stdio::CappedOutput;
use super::{EpochGate, Runtime, RuntimeError, Sandbox};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::{Store, UpdateDeadline};

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

use super::model::{MetricFamily, PluginError, PluginInfo};

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

/// The limits of the call running now, read by the epoch callback.
#[derive(Debug, Clone, Copy)]
struct CallClock {
    started: Instant,
    cpu_start: Duration,
    wall: Duration,
    cpu: Duration,
}

/// One live instance of a kube-state plugin.
pub struct KubeStateInstance {
    plugin: LoadedKubeState,
    store: Store<PluginState>,
    exports: KubeState,
    clock: Arc<Mutex<CallClock>>,
    stdout: CappedOutput,
    stderr: CappedOutput,
    /// Set when a call trapped: the instance must not be used again.
    poisoned: bool,
}

impl LoadedKubeState {
    /// A new instance with `sandbox`'s memory, time and log limits.
    pub fn instantiate(&self, sandbox: &Sandbox) -> Result<KubeStateInstance, CallFailure> {
        let stdout = CappedOutput::new(sandbox.stdio_bytes);
        let stderr = CappedOutput::new(sandbox.stdio_bytes);
        let state =
            PluginState::long_lived(sandbox, self.name.clone(), self.paths.clone(), stdout.clone(), stderr.clone());
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|s| s.limiter_mut());
        // A whole cluster's families come back from one `collect`: allow
        // up to the instance's own memory cap (wasmtime's default is 128 MiB).
        store.set_hostcall_fuel(usize::try_from(sandbox.memory_bytes).unwrap_or(usize::MAX));
        let clock = Arc::new(Mutex::new(CallClock {
            started: Instant::now(),
            cpu_start: super::call::thread_cpu_time(),
            wall: sandbox.wall_timeout,
            cpu: sandbox.cpu_limit,
        }));
        let callback_clock = clock.clone();
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            let c = *callback_clock.lock().unwrap_or_else(|p| p.into_inner());
            if c.started.elapsed() > c.wall {
                return Err(wasmtime::Error::new(Deadline::Wall(c.wall)));
            }
            if super::call::thread_cpu_time().saturating_sub(c.cpu_start) > c.cpu {
                return Err(wasmtime::Error::new(Deadline::Cpu(c.cpu)));
            }
            Ok(UpdateDeadline::Continue(1))
        });
        let _ticking = self.epoch.enter();
        let pre = self.pre.clone();
        let exports = super::call::block_on(async { pre.instantiate_async(&mut store).await })
            .map_err(|message| CallFailure { reason: FailureReason::Instantiate, message })?
            .map_err(|e| CallFailure { reason: FailureReason::Instantiate, message: format!("{e:#}") })?;
        Ok(KubeStateInstance { plugin: self.clone(), store, exports, clock, stdout, stderr, poisoned: false })
    }
}

impl KubeStateInstance {
    pub fn name(&self) -> &str {
        &self.plugin.name
    }

    /// True once a call trapped or ran out of a limit.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    pub fn describe(&mut self) -> CallOutcome<PluginInfo> {
        self.call("describe", async |e, s| e.call_describe(s).await.map(Ok))
    }

    pub fn check_config(&mut self, config: &str) -> CallOutcome<()> {
        self.call("check-config", async |e, s| e.call_check_config(s, config).await)
    }

    /// Start with the job's config; returns the kinds to watch.
    pub fn init(&mut self, config: &str) -> CallOutcome<Vec<Resource>> {
        self.call("init", async |e, s| e.call_init(s, config).await)
    }

    pub fn apply(&mut self, events: &[ObjectEvent]) -> CallOutcome<()> {
        self.call("apply", async |e, s| e.call_apply(s, events).await)
    }

    pub fn collect(&mut self) -> CallOutcome<Vec<MetricFamily>> {
        self.call("collect", async |e, s| e.call_collect(s).await)
    }

    /// Run one export under fresh per-call limits.
    fn call<R>(
        &mut self,
        what: &str,
        f: impl AsyncFnOnce(&KubeState, &mut Store<PluginState>) -> wasmtime::Result<Result<R, PluginError>>,
    ) -> CallOutcome<R> {
        let mut report = CallReport::default();
        if self.poisoned {
            let failure = CallFailure {
                reason: FailureReason::Trap,
                message: "the instance trapped earlier and must be replaced".into(),
            };
            return CallOutcome { result: Err(failure), report };
        }
        let _ticking = self.plugin.epoch.enter();
        let started = Instant::now();
        let cpu_start = super::call::thread_cpu_time();
        let wall = {
            let mut clock = self.clock.lock().unwrap_or_else(|p| p.into_inner());
            clock.started = started;
            clock.cpu_start = cpu_start;
            clock.wall
        };
        self.store.data_mut().begin_call();
        self.store.set_epoch_deadline(1);
        let exports = &self.exports;
        let store = &mut self.store;
        let run = async { tokio::time::timeout(wall + super::call::HOST_WAIT_GRACE, f(exports, store)).await };
        let result = match super::call::block_on(run) {
            Ok(Ok(Ok(Ok(value)))) => Ok(value),
            Ok(Ok(Ok(Err(e)))) => Err(CallFailure {
                reason: FailureReason::PluginError,
                message: format!("{}: {}", super::host_impl::error_kind_label(&e.kind), e.message),
            }),
            Ok(Ok(Err(trap))) => Err(super::call::classify(&trap)),
            Ok(Err(_elapsed)) => Err(CallFailure {
                reason: FailureReason::Timeout,
                message: format!("wall-clock timeout of {wall:?} reached"),
            }),
            Err(message) => Err(CallFailure { reason: FailureReason::Instantiate, message }),
        };
        if result.as_ref().is_err_and(|f| f.reason.is_trap()) {
            self.poisoned = true;
        }
        report.duration = started.elapsed();
        report.cpu_time = super::call::thread_cpu_time().saturating_sub(cpu_start);
        report.memory_high_water = self.store.data().memory_high_water();
        report.log_lines_dropped = self.store.data().log_lines_dropped();
        for (stream, out) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            let captured = out.take();
            let (dropped, _) = super::call::emit_stdio(&self.plugin.name, what, stream, &captured.bytes, 100);
            report.log_lines_dropped += dropped;
        }
        CallOutcome { result, report }
    }
}

/// The wall-clock limit of one call of a kube-state instance by default:
/// a full re-list of a big cluster arrives as a few large `apply` batches.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);
