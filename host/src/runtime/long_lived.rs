//! An instance that outlives one call (kube-state plugins, log processors):
//! one store for the instance's life, fresh wall-clock and CPU limits for
//! every call, a memory cap, and poisoning on a trap, after which the owner
//! must start a new instance.

use super::call::{CallFailure, CallOutcome, CallReport, Deadline, FailureReason, PluginState};
use super::model::PluginError;
use super::stdio::CappedOutput;
use super::{EpochGate, Sandbox};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::{Engine, Store, UpdateDeadline};

/// The limits of the call running now, read by the epoch callback.
#[derive(Debug, Clone, Copy)]
struct CallClock {
    started: Instant,
    cpu_start: Duration,
    wall: Duration,
    cpu: Duration,
}

/// A live instance with its exports `E`.
pub(super) struct LongLived<E> {
    name: Arc<str>,
    epoch: Arc<EpochGate>,
    store: Store<PluginState>,
    exports: E,
    clock: Arc<Mutex<CallClock>>,
    stdout: CappedOutput,
    stderr: CappedOutput,
    /// Set when a call trapped: the instance must not be used again.
    poisoned: bool,
}

impl<E> LongLived<E> {
    /// A store with `sandbox`'s limits, and the instance `instantiate` makes in it.
    pub(super) fn new(
        engine: &Engine,
        name: Arc<str>,
        paths: Arc<crate::config::PathsConfig>,
        epoch: Arc<EpochGate>,
        sandbox: &Sandbox,
        instantiate: impl AsyncFnOnce(&mut Store<PluginState>) -> wasmtime::Result<E>,
    ) -> Result<Self, CallFailure> {
        let stdout = CappedOutput::new(sandbox.stdio_bytes);
        let stderr = CappedOutput::new(sandbox.stdio_bytes);
        let state = PluginState::long_lived(sandbox, name.clone(), paths, stdout.clone(), stderr.clone());
        let mut store = Store::new(engine, state);
        store.limiter(|s| s.limiter_mut());
        // One call can move a whole cluster's families or a batch of
        // megabytes: allow up to the instance's own memory cap (wasmtime's
        // default is 128 MiB).
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
        let exports = {
            let _ticking = epoch.enter();
            super::call::block_on(instantiate(&mut store))
                .map_err(|message| CallFailure { reason: FailureReason::Instantiate, message })?
                .map_err(|e| CallFailure { reason: FailureReason::Instantiate, message: format!("{e:#}") })?
        };
        Ok(Self { name, epoch, store, exports, clock, stdout, stderr, poisoned: false })
    }

    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// The store's state between calls.
    pub(super) fn data_mut(&mut self) -> &mut PluginState {
        self.store.data_mut()
    }

    /// True once a call trapped or ran out of a limit.
    pub(super) fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Run one export (`what`, for logs) under fresh per-call limits.
    pub(super) fn call<R>(
        &mut self,
        what: &str,
        f: impl AsyncFnOnce(&E, &mut Store<PluginState>) -> wasmtime::Result<Result<R, PluginError>>,
    ) -> CallOutcome<R> {
        let mut report = CallReport::default();
        if self.poisoned {
            let failure = CallFailure {
                reason: FailureReason::Trap,
                message: "the instance trapped earlier and must be replaced".into(),
            };
            return CallOutcome { result: Err(failure), report };
        }
        let _ticking = self.epoch.enter();
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
            let (dropped, _) = super::call::emit_stdio(&self.name, what, stream, &captured.bytes, 100);
            report.log_lines_dropped += dropped;
        }
        CallOutcome { result, report }
    }
}
