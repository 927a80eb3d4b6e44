//! The wasm sandbox: one engine for the process, components compiled once and
//! cached on disk, and a fresh, limited instance for every plugin call.

mod bindings;
mod cache;
mod call;
mod files;
mod host_impl;
pub mod kube_state;
mod limits;
pub mod log_processor;
mod long_lived;
pub(crate) mod network;
mod passthrough;
mod spare;
mod stdio;
mod system;

pub use bindings::wasmon::plugin::types as model;
pub use cache::{CacheOutcome, ComponentCache, compile_to_file};
pub use call::{CallFailure, CallOutcome, CallReport, FailureReason};
pub use files::{DirCache, FilePolicy, FilePolicyError};
pub use network::{HttpEgress, TargetAddress};
pub use spare::SpareSlot;

use crate::config::{CapabilitiesConfig, FileGrant, LimitsConfig, PathsConfig, ScrapeConfig, SecretSource};
use bindings::{Exporter, ExporterPre};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances. Deadlines are checked at this granularity.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Native stack wasm may use before a call traps with a stack overflow. The
/// threads that run plugins get a larger native stack (see `main.rs`).
pub const MAX_WASM_STACK: usize = 1 << 20;

/// Largest memory any instance can be given (`limits.memory` is capped to it).
pub const MAX_INSTANCE_MEMORY: u64 = 4 << 30;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("creating the wasm engine: {0}")]
    Engine(#[source] wasmtime::Error),
    #[error("plugin {plugin}: {message}")]
    Plugin { plugin: String, message: String },
    #[error("component cache at {path}: {source}")]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The process-wide engine and linker.
pub struct Runtime {
    engine: Engine,
    linker: Linker<call::PluginState>,
    cache: ComponentCache,
    paths: Arc<PathsConfig>,
    epoch_ticker: EpochTicker,
}

impl Runtime {
    /// Build the engine (pooling allocator when the OS lets us reserve the
    /// address space, on-demand otherwise) and start the epoch ticker.
    pub fn new(paths: PathsConfig, cache_dir: &Path) -> Result<Self, RuntimeError> {
        let engine = new_engine()?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(RuntimeError::Engine)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(RuntimeError::Engine)?;
        Exporter::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state).map_err(RuntimeError::Engine)?;
        kube_state::add_to_linker(&mut linker).map_err(RuntimeError::Engine)?;
        let cache = ComponentCache::open(cache_dir, &engine)
            .map_err(|source| RuntimeError::Cache { path: cache_dir.to_path_buf(), source })?;
        let epoch_ticker = EpochTicker::start(&engine);
        Ok(Self { engine, linker, cache, paths: Arc::new(paths), epoch_ticker })
    }

    /// Compile cache misses in a child process (see [`ComponentCache`]).
    pub fn compile_out_of_process(&mut self, exe: PathBuf) {
        self.cache.compile_out_of_process(exe);
    }

    pub fn paths(&self) -> &PathsConfig {
        &self.paths
    }

    /// Compile (or load from the cache) the component at `path` and check that
    /// it is an exporter.
    pub fn load(&self, name: &str, path: &Path) -> Result<LoadedPlugin, RuntimeError> {
        let wasm = read_component(name, path)?;
        self.load_bytes(name, path, &wasm)
    }

    /// [`load`](Self::load) from bytes already read (and checked, e.g. for
    /// a signature) by the caller; `path` names the component in messages.
    pub fn load_bytes(&self, name: &str, path: &Path, wasm: &[u8]) -> Result<LoadedPlugin, RuntimeError> {
        let (pre, outcome) = self.instance_pre(name, path, wasm)?;
        let pre = ExporterPre::new(pre).map_err(|e| RuntimeError::Plugin {
            plugin: name.to_string(),
            message: format!("{} is not a wasmon exporter component: {e:#}", path.display()),
        })?;
        Ok(LoadedPlugin {
            name: Arc::from(name),
            path: path.to_path_buf(),
            pre,
            cache: outcome,
            paths: self.paths.clone(),
            epoch: self.epoch_ticker.gate.clone(),
        })
    }
}

impl Runtime {
    /// Compile (or load from the cache) the component at `path` and link
    /// it against what the host provides; the world is checked by the caller.
    pub(crate) fn instance_pre(
        &self,
        name: &str,
        path: &Path,
        wasm: &[u8],
    ) -> Result<(wasmtime::component::InstancePre<call::PluginState>, CacheOutcome), RuntimeError> {
        let plugin_err = |message: String| RuntimeError::Plugin { plugin: name.to_string(), message };
        let (component, outcome): (Component, CacheOutcome) = self
            .cache
            .component(&self.engine, wasm, path)
            .map_err(|e| plugin_err(format!("{}: {e}", path.display())))?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| plugin_err(format!("{} imports something wasmon does not provide: {e:#}", path.display())))?;
        Ok((pre, outcome))
    }
}

/// The bytes of the component at `path`.
pub(crate) fn read_component(name: &str, path: &Path) -> Result<Vec<u8>, RuntimeError> {
    std::fs::read(path).map_err(|e| RuntimeError::Plugin {
        plugin: name.to_string(),
        message: format!("cannot read {}: {e}", path.display()),
    })
}

/// The engine every runtime (and the compile child) uses: pooling allocator
/// when the OS lets us reserve its address space, on-demand otherwise.
fn new_engine() -> Result<Engine, RuntimeError> {
    match Engine::new(&engine_config(true)) {
        Ok(engine) => Ok(engine),
        Err(e) => {
            tracing::warn!(error = %e, "pooling allocator unavailable, using on-demand allocation");
            Engine::new(&engine_config(false)).map_err(RuntimeError::Engine)
        }
    }
}

/// How much of a pooled memory stays mapped between calls (tables and
/// stacks a fraction of it): about what a small exporter's call touches.
const KEEP_RESIDENT_BYTES: usize = 1 << 20;

fn engine_config(pooling: bool) -> Config {
    let mut config = Config::new();
    config.epoch_interruption(true).max_wasm_stack(MAX_WASM_STACK).memory_init_cow(true).wasm_component_model(true);
    // For profiling plugins: `perf record` then shows guest functions by name
    // (wasmtime writes /tmp/perf-PID.map). Off by default: it costs a file write
    // per loaded component.
    if std::env::var_os("WASMON_WASM_PERFMAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    if pooling {
        let mut pool = PoolingAllocationConfig::default();
        // Sized for an agent: tens of plugins with a few concurrent calls each.
        pool.total_component_instances(64)
            .total_core_instances(256)
            .total_memories(256)
            .total_tables(256)
            .total_stacks(64)
            .max_memory_size(MAX_INSTANCE_MEMORY as usize)
            // Every call gets a fresh instance in a reused slot. Zeroing the
            // first pages with memset instead of madvise keeps them mapped,
            // so the next call does not take a page fault on each of them.
            .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
            .table_keep_resident(KEEP_RESIDENT_BYTES / 16)
            .async_stack_keep_resident(KEEP_RESIDENT_BYTES / 8)
            // Linux 6.7+: reset only the pages the call dirtied.
            .pagemap_scan(wasmtime::Enabled::Auto);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

/// Counts plugin calls in flight, so the epoch thread sleeps when there are
/// none: an idle agent should cost nothing, not a wake-up every tick.
#[derive(Debug, Default)]
pub(crate) struct EpochGate {
    active: std::sync::Mutex<usize>,
    wake: std::sync::Condvar,
}

impl EpochGate {
    /// Mark a call as running until the guard drops.
    pub(crate) fn enter(self: &Arc<Self>) -> EpochGuard {
        let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        *active += 1;
        // Only the first call wakes the thread: it keeps ticking while any run.
        if *active == 1 {
            self.wake.notify_one();
        }
        drop(active);
        EpochGuard(self.clone())
    }

    /// Block while no call is running.
    fn wait_for_calls(&self) {
        let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        while *active == 0 {
            active = self.wake.wait(active).unwrap_or_else(|p| p.into_inner());
        }
    }
}

pub(crate) struct EpochGuard(Arc<EpochGate>);

impl Drop for EpochGuard {
    fn drop(&mut self) {
        let mut active = self.0.active.lock().unwrap_or_else(|p| p.into_inner());
        *active = active.saturating_sub(1);
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] while calls run, until
/// the engine is dropped.
struct EpochTicker {
    gate: Arc<EpochGate>,
}

impl EpochTicker {
    fn start(engine: &Engine) -> Self {
        let weak = engine.weak();
        let gate = Arc::new(EpochGate::default());
        let thread_gate = gate.clone();
        std::thread::Builder::new()
            .name("wasmon-epoch".into())
            .spawn(move || {
                loop {
                    thread_gate.wait_for_calls();
                    std::thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map(|_| ())
            .unwrap_or_else(
                |e| tracing::error!(error = %e, "cannot start the epoch thread; plugin deadlines will not fire"),
            );
        Self { gate }
    }
}

/// A compiled exporter, ready to instantiate.
#[derive(Clone)]
pub struct LoadedPlugin {
    pub name: Arc<str>,
    pub path: PathBuf,
    pre: ExporterPre<call::PluginState>,
    pub cache: CacheOutcome,
    paths: Arc<PathsConfig>,
    epoch: Arc<EpochGate>,
}

/// What one call may do and use; built once per job.
#[derive(Debug, Clone)]
pub struct Sandbox {
    pub files: Arc<FilePolicy>,
    pub fs_stats: bool,
    pub clock: bool,
    pub preopens: Vec<(PathBuf, String)>,
    pub memory_bytes: u64,
    pub wall_timeout: Duration,
    pub cpu_limit: Duration,
    pub log_lines: usize,
    pub stdio_bytes: usize,
    /// The job's HTTP client when `capabilities.http` is granted.
    pub http: Option<Arc<HttpEgress>>,
    /// `capabilities.tcp`: connects to the target's address.
    pub tcp: bool,
    /// The job's `secrets:`, read at call time.
    pub secrets: Arc<BTreeMap<String, SecretSource>>,
    /// The job's instance made ahead of its next collect (clones share it).
    pub spare: Arc<spare::SpareSlot>,
}

impl Sandbox {
    /// Everything denied; for `describe` and `check-config` calls.
    pub fn locked_down(paths: &PathsConfig, timeout: Duration) -> Self {
        Self {
            files: Arc::new(FilePolicy::deny_all(paths)),
            fs_stats: false,
            clock: false,
            preopens: Vec::new(),
            memory_bytes: 64 << 20,
            wall_timeout: timeout,
            cpu_limit: timeout,
            log_lines: 20,
            stdio_bytes: 16 << 10,
            http: None,
            tcp: false,
            secrets: Arc::default(),
            spare: Arc::default(),
        }
    }

    /// The sandbox for a job, from its capabilities and limits. `requested`
    /// are the file globs the plugin asked for in `describe()`.
    pub fn for_job(
        paths: &PathsConfig,
        caps: &CapabilitiesConfig,
        limits: &LimitsConfig,
        timeout: Duration,
        requested: &[String],
    ) -> Result<Self, FilePolicyError> {
        let globs: Vec<String> = match &caps.files {
            FileGrant::None => Vec::new(),
            FileGrant::PluginDefault => requested.to_vec(),
            FileGrant::Globs(globs) => globs.clone(),
        };
        Ok(Self {
            files: Arc::new(FilePolicy::new(paths, &globs)?),
            fs_stats: caps.fs_stats,
            clock: caps.clock,
            preopens: caps.preopens.iter().map(|p| (p.host.clone(), p.guest.clone())).collect(),
            memory_bytes: limits.memory.0.min(MAX_INSTANCE_MEMORY),
            wall_timeout: timeout,
            cpu_limit: limits.cpu.map(|d| d.0).unwrap_or(timeout).min(timeout),
            log_lines: limits.log_lines,
            stdio_bytes: limits.stdio_bytes.0 as usize,
            http: None,
            tcp: caps.tcp,
            secrets: Arc::default(),
            spare: Arc::default(),
        })
    }

    /// Add the job's network settings and secrets: its HTTP client (TLS
    /// files are read now, so a bad one is a start-up error) and `secrets:`.
    pub fn with_network(mut self, job: &ScrapeConfig, timeout: Duration) -> Result<Self, String> {
        if job.capabilities.http {
            let egress = HttpEgress::new(
                job.scheme,
                job.tls_config.as_ref(),
                job.basic_auth.as_ref(),
                job.authorization.as_ref(),
                timeout,
            )?;
            self.http = Some(Arc::new(egress));
        }
        self.tcp = job.capabilities.tcp;
        self.secrets = Arc::new(job.secrets.clone());
        Ok(self)
    }
}
