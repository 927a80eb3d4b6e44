//! One plugin call: a fresh store and instance with memory, CPU and wall-clock
//! limits, captured stdio, and a failure classified by reason.

use super::bindings::Exporter;
use super::bindings::wasmon::plugin::types::{MetricFamily, PluginError, PluginInfo, Target};
use super::limits::{MemoryLimitHit, MemoryLimiter};
use super::network::{self, CallHttpHooks, TargetAddress};
use super::stdio::CappedOutput;
use super::{LoadedPlugin, Sandbox};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use wasmtime::component::ResourceTable;
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Why a call produced no result. `as_label` is the `reason` label of
/// `wasmon_plugin_traps_total` and friends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureReason {
    /// The wall-clock deadline (scrape timeout) passed.
    Timeout,
    /// The call used more CPU time than `limits.cpu`.
    CpuLimit,
    /// The instance tried to grow its memory past `limits.memory`.
    MemoryLimit,
    /// The wasm stack overflowed (runaway recursion).
    StackOverflow,
    /// The plugin panicked (a wasm `unreachable`).
    Panic,
    /// Any other trap.
    Trap,
    /// The component could not be instantiated.
    Instantiate,
    /// The plugin returned an error of its own.
    PluginError,
    /// The scrape returned more series than `sample_limit`.
    SampleLimit,
    /// A series had more labels, or longer names or values, than the
    /// job's label limits.
    LabelLimit,
    /// A native scrape failed: connection, TLS, HTTP status, timeout.
    ScrapeError,
    /// A native scrape's body could not be parsed as the text format.
    ParseError,
    /// A native scrape's body was over `body_size_limit`.
    BodySizeLimit,
    /// The job's plugin is missing, or no version of it loads.
    PluginUnavailable,
}

impl FailureReason {
    pub fn as_label(&self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::CpuLimit => "cpu_limit",
            Self::MemoryLimit => "memory_limit",
            Self::StackOverflow => "stack_overflow",
            Self::Panic => "panic",
            Self::Trap => "trap",
            Self::Instantiate => "instantiate",
            Self::PluginError => "plugin_error",
            Self::SampleLimit => "sample_limit",
            Self::LabelLimit => "label_limit",
            Self::ScrapeError => "scrape_error",
            Self::ParseError => "parse_error",
            Self::BodySizeLimit => "body_size_limit",
            Self::PluginUnavailable => "plugin_unavailable",
        }
    }

    /// Traps and limit hits discard the instance and put the target in backoff;
    /// an error the plugin returned itself does not.
    pub fn is_trap(&self) -> bool {
        !matches!(
            self,
            Self::PluginError
                | Self::SampleLimit
                | Self::LabelLimit
                | Self::ScrapeError
                | Self::ParseError
                | Self::BodySizeLimit
                | Self::PluginUnavailable
        )
    }
}

#[derive(Debug, Clone)]
pub struct CallFailure {
    pub reason: FailureReason,
    pub message: String,
}

impl std::fmt::Display for CallFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason.as_label(), self.message)
    }
}

/// Measurements of one call, whatever its outcome.
#[derive(Debug, Clone, Default)]
pub struct CallReport {
    pub duration: Duration,
    pub cpu_time: Duration,
    pub memory_high_water: u64,
    pub log_lines_dropped: u64,
    pub stdio_bytes_dropped: u64,
}

#[derive(Debug)]
pub struct CallOutcome<T> {
    pub result: Result<T, CallFailure>,
    pub report: CallReport,
}

/// Marker errors raised from the epoch callback.
#[derive(Debug, thiserror::Error)]
pub(super) enum Deadline {
    #[error("wall-clock timeout of {0:?} reached")]
    Wall(Duration),
    #[error("CPU time limit of {0:?} reached")]
    Cpu(Duration),
}

/// Everything one instance's host calls can see.
pub struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
    pub(super) sandbox: Sandbox,
    pub(super) plugin: Arc<str>,
    pub(super) target: String,
    pub(super) log_lines_left: usize,
    pub(super) log_lines_dropped: u64,
    pub(super) paths: Arc<crate::config::PathsConfig>,
    pub(super) dir_cache: super::files::DirCache,
    /// Secret values given to the plugin in this call, masked in its output.
    pub(super) revealed_secrets: Vec<String>,
    http_ctx: WasiHttpCtx,
    pub(super) http_hooks: CallHttpHooks,
    /// Families the host fetched and parsed for the plugin (`passthrough.scrape`),
    /// put before what `collect` returns.
    pub(super) passthrough: Vec<MetricFamily>,
    /// In a `/probe` call, the passed-through families already written out instead.
    pub(super) probe: Option<super::passthrough::ProbeText>,
    /// What a kube-state `collect` writes through `exposition.write`.
    pub(super) exposition: super::kube_state::ExpositionBuffer,
}

impl WasiHttpView for PluginState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http_ctx, table: &mut self.table, hooks: &mut self.http_hooks }
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl PluginState {
    /// The state of a long-lived instance (a kube-state plugin): no
    /// network, no preopens, stdio captured into `stdout`/`stderr`.
    pub(super) fn long_lived(
        sandbox: &Sandbox,
        plugin: Arc<str>,
        paths: Arc<crate::config::PathsConfig>,
        stdout: CappedOutput,
        stderr: CappedOutput,
    ) -> Self {
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(stdout).stderr(stderr).allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false);
        PluginState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            http_ctx: WasiHttpCtx::new(),
            http_hooks: CallHttpHooks {
                egress: None,
                target: TargetAddress::parse(""),
                deadline: Instant::now(),
                plugin: plugin.clone(),
                read_ahead: 0,
            },
            limiter: MemoryLimiter::new(sandbox.memory_bytes),
            exposition: Default::default(),
            passthrough: Vec::new(),
            probe: None,
            sandbox: Sandbox { spare: super::spare::NO_SLOT.clone(), ..sandbox.clone() },
            plugin,
            target: String::new(),
            log_lines_left: sandbox.log_lines,
            log_lines_dropped: 0,
            paths,
            dir_cache: Default::default(),
            revealed_secrets: Vec::new(),
        }
    }

    /// Start a new call on a long-lived instance: fresh log budget.
    pub(super) fn begin_call(&mut self) {
        self.log_lines_left = self.sandbox.log_lines;
        self.log_lines_dropped = 0;
    }

    pub(super) fn limiter_mut(&mut self) -> &mut MemoryLimiter {
        &mut self.limiter
    }

    pub(super) fn memory_high_water(&self) -> u64 {
        self.limiter.high_water
    }

    pub(super) fn log_lines_dropped(&self) -> u64 {
        self.log_lines_dropped
    }
}

/// The CPU time a call's future spends being polled, whichever threads
/// poll it. On a tokio worker the thread runs other tasks between the
/// call's polls, so the thread's own clock would charge their time to it.
#[derive(Debug, Default)]
pub(super) struct CpuMeter {
    /// Summed over the polls that have ended, in nanoseconds.
    spent_ns: AtomicU64,
    /// The thread's CPU clock when the current poll began, in nanoseconds.
    poll_began_ns: AtomicU64,
}

impl CpuMeter {
    /// A meter that has counted `spent` already.
    pub(super) fn starting_at(spent: Duration) -> Self {
        CpuMeter { spent_ns: AtomicU64::new(as_nanos(spent)), poll_began_ns: AtomicU64::new(0) }
    }

    /// Drive `future`, counting the CPU time of each of its polls.
    pub(super) async fn meter<F: Future>(&self, future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        std::future::poll_fn(|cx| {
            let began = thread_cpu_time();
            self.poll_began_ns.store(as_nanos(began), Ordering::Relaxed);
            let polled = future.as_mut().poll(cx);
            let spent = thread_cpu_time().saturating_sub(began);
            self.spent_ns.fetch_add(as_nanos(spent), Ordering::Relaxed);
            polled
        })
        .await
    }

    /// CPU time so far, counted from inside a poll (the epoch callback).
    pub(super) fn used_so_far(&self) -> Duration {
        let this_poll = as_nanos(thread_cpu_time()).saturating_sub(self.poll_began_ns.load(Ordering::Relaxed));
        Duration::from_nanos(self.spent_ns.load(Ordering::Relaxed).saturating_add(this_poll))
    }

    /// CPU time of the polls that have ended.
    pub(super) fn total(&self) -> Duration {
        Duration::from_nanos(self.spent_ns.load(Ordering::Relaxed))
    }
}

fn as_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

pub(super) fn thread_cpu_time() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(|t| Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32))
        .unwrap_or_default()
}

impl LoadedPlugin {
    /// Ask the plugin to describe itself.
    pub fn describe(&self, sandbox: &Sandbox) -> CallOutcome<PluginInfo> {
        let call =
            self.call_async(sandbox, "describe", false, async |exporter, store| exporter.call_describe(store).await);
        block_on(call).map(|(outcome, _)| outcome).unwrap_or_else(unstarted)
    }

    /// Ask the plugin to check its config section.
    pub fn check_config(&self, sandbox: &Sandbox, config: &str) -> CallOutcome<()> {
        let call = self.call_async(sandbox, "check-config", false, async |exporter, store| {
            exporter.call_check_config(store, config).await
        });
        block_on(call).map(|(outcome, masker)| flatten_plugin_result(outcome, &masker)).unwrap_or_else(unstarted)
    }

    /// Collect from one target, blocking this thread until the call ends
    /// (the CLI; the agent awaits [`Self::collect_async`]).
    pub fn collect(&self, sandbox: &Sandbox, target: &Target, config: &str) -> CallOutcome<Vec<MetricFamily>> {
        block_on(self.collect_async(sandbox, target, config)).unwrap_or_else(unstarted)
    }

    /// Collect from one target within the caller's task. The call runs on
    /// the worker that polls it, beside the HTTP connection tasks it spawns,
    /// so a probe's requests and responses are not handed between threads;
    /// wasm that computes yields at every epoch tick.
    pub async fn collect_async(
        &self,
        sandbox: &Sandbox,
        target: &Target,
        config: &str,
    ) -> CallOutcome<Vec<MetricFamily>> {
        let (outcome, masker) = self
            .call_async(sandbox, &target.address, true, async |exporter, store| {
                let returned = exporter.call_collect(&mut *store, target, config).await?;
                // What the host passed through comes first, as the plugin asked for it.
                Ok(returned.map(|families| {
                    let mut all = std::mem::take(&mut store.data_mut().passthrough);
                    all.extend(families);
                    all
                }))
            })
            .await;
        flatten_plugin_result(outcome, &masker)
    }

    /// [`Self::collect_async`] for `/probe`: the families validated and written
    /// in `format`. What the plugin passes through from a protobuf endpoint is
    /// written straight from the body (`scrape::transcode`), never built.
    pub async fn probe_async(
        &self,
        sandbox: &Sandbox,
        target: &Target,
        config: &str,
        format: crate::exposition::Format,
    ) -> CallOutcome<String> {
        use super::passthrough::ProbeText;
        let (outcome, masker) = self
            .call_async(sandbox, &target.address, true, async |exporter, store| {
                store.data_mut().probe = Some(ProbeText::new(format));
                let returned = exporter.call_collect(&mut *store, target, config).await?;
                Ok(returned.map(|families| {
                    let mut probe = store.data_mut().probe.take().unwrap_or_else(|| ProbeText::new(format));
                    probe.write(families);
                    probe.finish()
                }))
            })
            .await;
        flatten_plugin_result(outcome, &masker)
    }

    /// Run one export on a fresh instance, until the call ends or its
    /// deadline passes; the deadline also covers time spent waiting on
    /// sockets and HTTP, which the epoch cannot interrupt. Also returns the
    /// masker of the secrets the plugin was given, for its error messages.
    /// Only a collect (`to_target`) may use the network, and only towards
    /// `target`.
    async fn call_async<R>(
        &self,
        sandbox: &Sandbox,
        target: &str,
        to_target: bool,
        f: impl AsyncFnOnce(&Exporter, &mut Store<PluginState>) -> wasmtime::Result<R>,
    ) -> (CallOutcome<R>, SecretMasker) {
        let _ticking = self.epoch.enter();
        let started = Instant::now();
        let mut report = CallReport::default();
        let fail = |reason: FailureReason, message: String, report: CallReport| {
            (CallOutcome { result: Err(CallFailure { reason, message }), report }, SecretMasker::default())
        };
        let wall = sandbox.wall_timeout;
        let address = TargetAddress::parse(target);
        // An instance the job made ahead saves this call its instantiation.
        let spare = if to_target { sandbox.spare.take(&self.name) } else { None };
        let (mut store, made_ahead, stdout, stderr, cpu) = match spare {
            Some(spare) => {
                let (mut store, exporter, stdout, stderr, instantiation_cpu) = spare.into_parts();
                let state = store.data_mut();
                state.http_hooks.target = address;
                state.http_hooks.deadline = started + wall;
                state.target = target.to_string();
                // The instantiation counts against this call's CPU limit, as when the call makes it.
                (store, Some(exporter), stdout, stderr, CpuMeter::starting_at(instantiation_cpu))
            }
            None => match self.new_store(sandbox, address, target, to_target, started) {
                Ok((store, stdout, stderr)) => (store, None, stdout, stderr, CpuMeter::default()),
                Err(message) => return fail(FailureReason::Instantiate, message, report),
            },
        };
        let cpu = Arc::new(cpu);
        limit_store(&mut store, started, wall, sandbox.cpu_limit, cpu.clone());

        let pre = &self.pre;
        let run = async {
            let exporter = match made_ahead {
                Some(exporter) => exporter,
                None => match pre.instantiate_async(&mut store).await {
                    Ok(exporter) => exporter,
                    Err(e) => {
                        let failure = classify(&e);
                        return Err(if failure.reason == FailureReason::Trap {
                            CallFailure { reason: FailureReason::Instantiate, message: format!("{e:#}") }
                        } else {
                            failure
                        });
                    }
                },
            };
            f(&exporter, &mut store).await.map_err(|e| classify(&e))
        };
        // Wasm that computes past the deadline is stopped by the epoch
        // callback; this timer catches a call parked in a host wait.
        // (The timer is made inside the future: it needs the runtime's clock.)
        let bounded = async { tokio::time::timeout(wall + HOST_WAIT_GRACE, run).await };
        let result = match cpu.meter(bounded).await {
            Ok(result) => result,
            Err(_elapsed) => Err(CallFailure {
                reason: FailureReason::Timeout,
                message: format!("wall-clock timeout of {wall:?} reached while waiting on the network"),
            }),
        };

        let state = store.data();
        report.duration = started.elapsed();
        report.cpu_time = cpu.total();
        report.memory_high_water = state.limiter.high_water;
        report.log_lines_dropped = state.log_lines_dropped;
        let log_budget = state.log_lines_left;
        let masker = SecretMasker(state.revealed_secrets.clone());
        self.after_call(store, sandbox, to_target && result.is_ok());

        let out = stdout.take();
        let err = stderr.take();
        report.stdio_bytes_dropped = out.dropped_bytes + err.dropped_bytes;
        let (out_dropped, err_lines) = (
            emit_stdio(&self.name, target, "stdout", &masker.mask_bytes(&out.bytes), log_budget),
            last_line(&masker.mask_bytes(&err.bytes)),
        );
        let err_dropped = emit_stdio(
            &self.name,
            target,
            "stderr",
            &masker.mask_bytes(&err.bytes),
            log_budget.saturating_sub(out_dropped.1),
        );
        report.log_lines_dropped += out_dropped.0 + err_dropped.0;

        // A panicking Rust plugin prints its message to stderr before it traps:
        // put that in the reason the operator sees.
        let result = result.map_err(|mut failure| {
            if failure.reason == FailureReason::Panic
                && let Some(line) = err_lines
            {
                failure.message = format!("{}: {line}", failure.message);
            }
            failure.message = masker.mask(&failure.message);
            failure
        });
        (CallOutcome { result, report }, masker)
    }
}

/// A call that never started: there was no runtime to drive it.
fn unstarted<R>(message: String) -> CallOutcome<R> {
    CallOutcome {
        result: Err(CallFailure { reason: FailureReason::Instantiate, message }),
        report: CallReport::default(),
    }
}

/// Extra time the host-wait timer gives a call beyond its wall-clock limit, so
/// that wasm still computing at the deadline is reported by the epoch check.
pub(super) const HOST_WAIT_GRACE: Duration = Duration::from_millis(50);

/// Drive a call's future on this thread. Agent calls run on tokio's blocking
/// pool, inside the agent's runtime; CLI calls (`wasmon plugin test`) have no
/// runtime, so a small one is made once for them.
pub(super) fn block_on<F: Future>(future: F) -> Result<F::Output, String> {
    static FALLBACK: std::sync::OnceLock<Result<tokio::runtime::Runtime, String>> = std::sync::OnceLock::new();
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => match handle.runtime_flavor() {
            tokio::runtime::RuntimeFlavor::CurrentThread => Ok(handle.block_on(future)),
            _ => Ok(tokio::task::block_in_place(|| handle.block_on(future))),
        },
        Err(_) => {
            let runtime = FALLBACK.get_or_init(|| {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("wasmon-io")
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot start the I/O runtime for plugin calls: {e}"))
            });
            runtime.as_ref().map(|rt| rt.block_on(future)).map_err(Clone::clone)
        }
    }
}

/// Replaces the values of secrets handed to the plugin with `<secret>` in
/// everything the plugin says, so a careless `println!` does not leak them.
#[derive(Debug, Default)]
pub(super) struct SecretMasker(pub Vec<String>);

impl SecretMasker {
    pub(super) fn mask(&self, text: &str) -> String {
        let mut text = text.to_string();
        for secret in self.0.iter().filter(|s| !s.is_empty()) {
            text = text.replace(secret.as_str(), "<secret>");
        }
        text
    }

    fn mask_bytes(&self, bytes: &[u8]) -> Vec<u8> {
        if self.0.is_empty() {
            return bytes.to_vec();
        }
        self.mask(&String::from_utf8_lossy(bytes)).into_bytes()
    }
}

impl LoadedPlugin {
    /// A store for one call on `target`, not yet instantiated, with its
    /// captured stdout and stderr.
    fn new_store(
        &self,
        sandbox: &Sandbox,
        address: TargetAddress,
        target: &str,
        to_target: bool,
        started: Instant,
    ) -> Result<(Store<PluginState>, CappedOutput, CappedOutput), String> {
        let stdout = CappedOutput::new(sandbox.stdio_bytes);
        let stderr = CappedOutput::new(sandbox.stdio_bytes);
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        if sandbox.tcp && to_target {
            let (needs_lookup, check) = network::tcp_check(&address, self.name.clone())?;
            wasi.allow_tcp(true).allow_ip_name_lookup(needs_lookup).socket_addr_check(check);
        }
        for (host, guest) in &sandbox.preopens {
            wasi.preopened_dir(host, guest, FsPerms::ReadOnly)
                .map_err(|e| format!("cannot preopen {}: {e}", host.display()))?;
        }
        let state = PluginState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            http_ctx: WasiHttpCtx::new(),
            http_hooks: CallHttpHooks {
                egress: sandbox.http.clone().filter(|_| to_target),
                target: address,
                deadline: started + sandbox.wall_timeout,
                plugin: self.name.clone(),
                read_ahead: network::MAX_READ_AHEAD.min(usize::try_from(sandbox.memory_bytes).unwrap_or(usize::MAX)),
            },
            limiter: MemoryLimiter::new(sandbox.memory_bytes),
            exposition: Default::default(),
            passthrough: Vec::new(),
            probe: None,
            sandbox: Sandbox { spare: super::spare::NO_SLOT.clone(), ..sandbox.clone() },
            plugin: self.name.clone(),
            target: target.to_string(),
            log_lines_left: sandbox.log_lines,
            log_lines_dropped: 0,
            paths: self.paths.clone(),
            dir_cache: Default::default(),
            revealed_secrets: Vec::new(),
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|s| &mut s.limiter);
        Ok((store, stdout, stderr))
    }

    /// What follows a call, off its path: the store is dropped (which
    /// resets the pool slot's memory), and when `spare` and the job keeps
    /// one, its next collect instance is made (see [`super::spare`]).
    fn after_call(&self, store: Store<PluginState>, sandbox: &Sandbox, spare: bool) {
        // On a current-thread runtime a spawned task waits until the caller
        // yields, and calls in a row would pile their stores up meanwhile.
        let runtime = match tokio::runtime::Handle::try_current() {
            Ok(runtime) if runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => runtime,
            _ => return,
        };
        let Some(reservation) = spare.then(|| sandbox.spare.reserve(sandbox)).flatten() else {
            runtime.spawn(async move { drop(store) });
            return;
        };
        let (plugin, sandbox) = (self.clone(), sandbox.clone());
        runtime.spawn(async move {
            drop(store);
            let _ticking = plugin.epoch.enter();
            let started = Instant::now();
            let made = plugin.new_store(&sandbox, TargetAddress::parse(""), "", true, started);
            let Ok((mut store, stdout, stderr)) = made else { return };
            let cpu = Arc::new(CpuMeter::default());
            limit_store(&mut store, started, sandbox.wall_timeout, sandbox.cpu_limit, cpu.clone());
            // Bounded as a call is: a start function that loops or grows
            // memory is stopped, and the next call then instantiates (and
            // fails) on its own, with the reason and the backoff.
            let instantiate = cpu.meter(plugin.pre.instantiate_async(&mut store));
            if let Ok(Ok(exporter)) = tokio::time::timeout(sandbox.wall_timeout, instantiate).await {
                reservation.fill(plugin.name.clone(), (store, exporter, stdout, stderr), cpu.total());
            }
        });
    }
}

/// The memory limiter and the epoch deadline of a call that began at
/// `started`: wall-clock and CPU limits, and a yield to the worker once a tick.
fn limit_store(
    store: &mut Store<PluginState>,
    started: Instant,
    wall: Duration,
    cpu_limit: Duration,
    meter: Arc<CpuMeter>,
) {
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_ctx| {
        if started.elapsed() > wall {
            return Err(wasmtime::Error::new(Deadline::Wall(wall)));
        }
        if meter.used_so_far() > cpu_limit {
            return Err(wasmtime::Error::new(Deadline::Cpu(cpu_limit)));
        }
        // Give the worker back to the other tasks once a tick.
        Ok(UpdateDeadline::Yield(1))
    });
}

fn flatten_plugin_result<T>(outcome: CallOutcome<Result<T, PluginError>>, masker: &SecretMasker) -> CallOutcome<T> {
    let result = match outcome.result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(CallFailure {
            reason: FailureReason::PluginError,
            message: masker.mask(&format!("{}: {}", super::host_impl::error_kind_label(&e.kind), e.message)),
        }),
        Err(failure) => Err(failure),
    };
    CallOutcome { result, report: outcome.report }
}

pub(super) fn classify(error: &wasmtime::Error) -> CallFailure {
    let message = format!("{error:#}");
    let reason = if let Some(deadline) = error.downcast_ref::<Deadline>() {
        match deadline {
            Deadline::Wall(_) => FailureReason::Timeout,
            Deadline::Cpu(_) => FailureReason::CpuLimit,
        }
    } else if error.downcast_ref::<MemoryLimitHit>().is_some() {
        FailureReason::MemoryLimit
    } else if let Some(trap) = error.downcast_ref::<Trap>() {
        match trap {
            Trap::StackOverflow => FailureReason::StackOverflow,
            Trap::UnreachableCodeReached => FailureReason::Panic,
            Trap::Interrupt => FailureReason::Timeout,
            _ => FailureReason::Trap,
        }
    } else if message.contains("memory limit of") {
        FailureReason::MemoryLimit
    } else {
        FailureReason::Trap
    };
    if std::env::var_os("WASMON_DEBUG_TRAPS").is_some() {
        for (i, cause) in error.chain().enumerate() {
            eprintln!("cause {i}: {cause} / {cause:?}");
        }
    }
    // The root cause says what happened; the outer layers are wasm backtraces.
    let message = error.root_cause().to_string().lines().next().unwrap_or_default().to_string();
    CallFailure { reason, message }
}

/// The panic message from captured stderr (`panicked at <where>:` and the
/// message on the next line), or the last line written.
fn last_line(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let found = match lines.iter().rposition(|l| l.contains("panicked at")) {
        Some(i) => {
            let at = lines[i].split("panicked at").nth(1).unwrap_or_default().trim();
            format!("panicked at {at} {}", lines.get(i + 1).copied().unwrap_or_default())
        }
        None => lines.last()?.to_string(),
    };
    Some(found.chars().take(512).collect())
}

/// Log captured stdio lines; returns (lines dropped, lines emitted).
pub(super) fn emit_stdio(plugin: &str, target: &str, stream: &str, bytes: &[u8], budget: usize) -> (u64, usize) {
    if bytes.is_empty() {
        return (0, 0);
    }
    let text = String::from_utf8_lossy(bytes);
    let mut emitted = 0;
    let mut dropped = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if emitted < budget {
            tracing::info!(plugin, target, stream, "{}", line.chars().take(4096).collect::<String>());
            emitted += 1;
        } else {
            dropped += 1;
        }
    }
    (dropped, emitted)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Burn `amount` of this thread's CPU time.
    fn spin(amount: Duration) {
        let until = thread_cpu_time() + amount;
        while thread_cpu_time() < until {
            std::hint::black_box(0u64);
        }
    }

    #[test]
    fn cpu_meter_counts_only_the_calls_own_polls() {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let meter = CpuMeter::default();
        let thread_start = thread_cpu_time();
        runtime.block_on(async {
            let call = async {
                spin(Duration::from_millis(20));
                tokio::task::yield_now().await;
                spin(Duration::from_millis(20));
            };
            // Polled after the call's first poll, so it runs while the call is parked.
            let neighbour = async { spin(Duration::from_millis(100)) };
            tokio::join!(meter.meter(call), neighbour);
        });
        let thread_total = thread_cpu_time() - thread_start;
        assert!(thread_total >= Duration::from_millis(140), "the thread spun {thread_total:?}");
        let counted = meter.total();
        assert!(counted >= Duration::from_millis(40), "counted {counted:?}");
        assert!(counted < Duration::from_millis(100), "counted {counted:?}: the neighbour's time was charged");
    }
}
