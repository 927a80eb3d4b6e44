//! The `wasmon` command line.

use crate::agent;
use crate::api::{AppState, router};
use crate::config::{ByteSize, Config, ConfigError, EMBEDDED_DEFAULT, PathsConfig, PromDuration};
use crate::exposition::Format;
use crate::runtime::model::{Capability, Label, Target};
use crate::runtime::{Runtime, Sandbox};
use crate::scheduler::{LatestScrapes, Scheduler};
use crate::telemetry::Telemetry;
use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(name = "wasmon", version, about = "A monitoring agent whose exporters are sandboxed WebAssembly components")]
pub struct Cli {
    /// Log filter, e.g. `info` or `wasmon=debug`.
    #[arg(long, global = true, env = "WASMON_LOG", default_value = "info")]
    pub log_level: String,
    /// Where compiled plugins are cached.
    #[arg(long, global = true, env = "WASMON_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the agent (with no --config: monitor this machine with the node plugin).
    Run {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Overrides web.listen_address.
        #[arg(long = "web.listen-address")]
        listen_address: Option<String>,
        /// Overrides storage.tsdb.path.
        #[arg(long = "storage.tsdb.path")]
        storage_path: Option<PathBuf>,
    },
    /// Show every job's targets after discovery and relabeling, and why
    /// each dropped target was dropped.
    Targets {
        #[arg(long)]
        config: PathBuf,
        /// How long to wait for Kubernetes discovery's first answer.
        #[arg(long, default_value = "10s", value_parser = PromDuration::parse)]
        wait: PromDuration,
    },
    /// Inspect a data directory of the embedded store (like `promtool tsdb`).
    Tsdb {
        #[command(subcommand)]
        what: crate::tsdb_cmd::TsdbCommand,
    },
    /// Check files without running anything.
    Check {
        #[command(subcommand)]
        what: CheckWhat,
    },
    /// Run rule unit tests (like `promtool test rules`).
    Test {
        #[command(subcommand)]
        what: TestWhat,
    },
    /// Work with plugin components.
    Plugin {
        #[command(subcommand)]
        what: PluginCommand,
    },
    /// Internal: compile a component into the cache (run by the agent itself).
    #[command(name = "__compile-component", hide = true)]
    CompileComponent { wasm: PathBuf, out: PathBuf },
}

#[derive(Subcommand, Debug)]
pub enum CheckWhat {
    /// Validate a config file, load its plugins and let them check their sections.
    Config { file: PathBuf },
    /// Validate Prometheus rule files (like `promtool check rules`).
    Rules {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Make lint findings (duplicate rules) fail the check.
        #[arg(long)]
        lint_fatal: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum TestWhat {
    /// Run promtool-format rule unit test files.
    Rules {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum PluginCommand {
    /// Run one collect and print the exposition text and timing.
    Test {
        file: PathBuf,
        /// The plugin's config section: a YAML/JSON file, or inline JSON.
        #[arg(long)]
        config: Option<String>,
        /// Target address passed to the plugin.
        #[arg(long, default_value = "localhost")]
        target: String,
        /// Grant nothing instead of what the plugin asks for.
        #[arg(long)]
        deny_all: bool,
        #[arg(long, default_value = "10s", value_parser = PromDuration::parse)]
        timeout: PromDuration,
        #[arg(long, default_value = "64MiB", value_parser = ByteSize::parse)]
        memory: ByteSize,
        /// Print OpenMetrics instead of the Prometheus text format.
        #[arg(long)]
        openmetrics: bool,
        /// Collect this many times and report timing percentiles.
        #[arg(long, default_value_t = 1)]
        repeat: usize,
    },
    /// Show what a plugin says about itself and the capabilities it asks for.
    Inspect { file: PathBuf },
    /// Make an Ed25519 key pair for signing plugins: KEY.pem (private,
    /// PKCS#8 PEM, mode 0600) and KEY.pub.pem (public, for plugins.trusted_keys).
    Keygen {
        #[arg(long, value_name = "KEY.pem")]
        out: PathBuf,
    },
    /// Sign plugin files: writes a detached signature FILE.wasm.sig beside each.
    Sign {
        /// The private key (PKCS#8 PEM, from `plugin keygen` or `openssl genpkey -algorithm ed25519`).
        #[arg(long, value_name = "KEY.pem")]
        key: PathBuf,
        #[arg(required = true, value_name = "FILE.wasm")]
        files: Vec<PathBuf>,
    },
    /// Check FILE.wasm.sig against a public key; exits 1 if it does not verify.
    Verify {
        /// The public key (SPKI PEM); repeat to accept any of several.
        #[arg(long, value_name = "PUB.pem", required = true)]
        key: Vec<PathBuf>,
        #[arg(value_name = "FILE.wasm")]
        file: PathBuf,
    },
    /// Create a plugin crate from the SDK template, ready to build, test and load.
    New {
        /// The plugin's name: lowercase letters, digits, `-` and `_`, starting with a letter.
        name: String,
        /// The parent directory; the crate is created in DIR/NAME.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The wasmon SDK (`sdk/` of a wasmon checkout) the crate depends on by path.
        /// Default: the SDK of the source tree this binary was built from.
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
}

pub fn default_cache_dir() -> PathBuf {
    if let Ok(xdg) = std::env::var("XDG_CACHE_HOME") {
        return PathBuf::from(xdg).join("wasmon");
    }
    if let Ok(home) = std::env::var("HOME") {
        return PathBuf::from(home).join(".cache").join("wasmon");
    }
    std::env::temp_dir().join("wasmon-cache")
}

pub fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&cli.log_level).unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cache_dir = cli.cache_dir.clone().unwrap_or_else(default_cache_dir);
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Plugin calls run on these threads (exporters on the workers,
        // kube-state and log processors on blocking threads); give wasm room
        // below its own stack limit (runtime::MAX_WASM_STACK) so overflow
        // traps cleanly.
        .thread_stack_size(8 << 20)
        .build()?;
    match cli.command {
        Command::Run { config, listen_address, storage_path } => {
            tokio.block_on(run(config.as_deref(), listen_address, storage_path, &cache_dir))
        }
        Command::Tsdb { what } => crate::tsdb_cmd::run(what),
        Command::Targets { config, wait } => tokio.block_on(crate::targets_cmd::run(&config, wait.0)),
        Command::Check { what: CheckWhat::Config { file } } => check_config(&file, &cache_dir),
        Command::Check { what: CheckWhat::Rules { files, lint_fatal } } => {
            if crate::alerting::check_rules_command(&files, lint_fatal) { Ok(()) } else { bail!("rule check failed") }
        }
        Command::Test { what: TestWhat::Rules { files } } => {
            if crate::alerting::test_rules_command(&files) {
                Ok(())
            } else {
                bail!("rule tests failed")
            }
        }
        Command::CompileComponent { wasm, out } => {
            crate::runtime::compile_to_file(&wasm, &out).map_err(anyhow::Error::msg)
        }
        Command::Plugin { what: PluginCommand::Inspect { file } } => inspect(&file, &cache_dir),
        Command::Plugin { what: PluginCommand::Keygen { out } } => {
            let public = crate::signing::keygen(&out)?;
            println!("wrote private key {} (keep it secret) and public key {}", out.display(), public.display());
            println!("add the public key to the agent's config: plugins: {{trusted_keys: [{}]}}", public.display());
            Ok(())
        }
        Command::Plugin { what: PluginCommand::Sign { key, files } } => {
            for file in &files {
                let sig = crate::signing::sign_file(&key, file)?;
                println!("signed {}: wrote {}", file.display(), sig.display());
            }
            Ok(())
        }
        Command::Plugin { what: PluginCommand::Verify { key, file } } => {
            let keys = key
                .iter()
                .map(|k| crate::signing::read_verifying_key(k).map(|v| (k.clone(), v)))
                .collect::<Result<Vec<_>, _>>()?;
            let signer = crate::signing::verify_file(&file, &keys)?;
            println!("{}: signature OK (key {})", file.display(), signer.display());
            Ok(())
        }
        Command::Plugin { what: PluginCommand::New { name, dir, sdk } } => {
            let created = crate::scaffold::new_plugin(&name, &dir, sdk.as_deref())?;
            print!("{}", crate::scaffold::next_steps(&name, &created));
            Ok(())
        }
        Command::Plugin {
            what: PluginCommand::Test { file, config, target, deny_all, timeout, memory, openmetrics, repeat },
        } => plugin_test(
            &file,
            config.as_deref(),
            &target,
            deny_all,
            timeout,
            memory,
            openmetrics,
            repeat.max(1),
            &cache_dir,
        ),
    }
}

fn load_config(path: Option<&Path>) -> Result<Config, ConfigError> {
    match path {
        Some(p) => Config::load(p),
        None => Config::parse(EMBEDDED_DEFAULT, "<embedded default>"),
    }
}

async fn run(
    config_path: Option<&Path>,
    listen_override: Option<String>,
    storage_path: Option<PathBuf>,
    cache_dir: &Path,
) -> anyhow::Result<()> {
    let mut config = load_config(config_path).map_err(|e| anyhow::anyhow!("invalid config:\n{e}"))?;
    if let Some(path) = &storage_path {
        config.storage.tsdb.path = path.clone();
    }
    let store = open_store(&config).await?;
    let listen = listen_override.unwrap_or_else(|| config.web.listen_address.clone());
    let telemetry = Arc::new(Telemetry::default());
    let external_url = config.web.external_url.clone().unwrap_or_else(|| format!("http://{listen}"));
    let alerting = match &store {
        Some(db) => crate::notifications::Alerting::start(
            &config,
            config_path.and_then(Path::parent).map(Path::to_path_buf),
            db.clone(),
            telemetry.clone(),
            &external_url,
        )
        .map_err(|e| anyhow::anyhow!("cannot start alerting:\n{e}"))?,
        None if !config.rule_files.is_empty() || !config.plugin_rules.is_empty() => {
            bail!("rule_files and plugin_rules need the local store (storage.tsdb.enabled: true)")
        }
        None => None,
    };
    let cache_dir = config.plugins.cache_directory.clone().unwrap_or_else(|| cache_dir.to_path_buf());
    let reload = Arc::new(crate::reload::ReloadHandle::default());
    let state = AppState {
        latest: Arc::new(LatestScrapes::default()),
        discovered: Arc::default(),
        telemetry,
        ready: Arc::new(AtomicBool::new(false)),
        jobs: Arc::default(),
        query: store.clone().map(|db| {
            Arc::new(crate::api::prom::QueryApi {
                db,
                engine: wasmon_query::Engine::new(wasmon_query::EngineOptions::default()),
                remote_write_receiver: config.web.enable_remote_write_receiver,
            })
        }),
        alerting: alerting.clone(),
        reload: reload.clone(),
    };
    state.telemetry.set(
        "wasmon_build_info",
        "Version of the wasmon agent.",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    // One WAL-tailing queue per remote_write endpoint; dropped with the
    // reloader at the end of `run`, which persists each queue's position.
    let remote_write = match &store {
        Some(db) => crate::remote::start(&config.remote_write, db, &state.telemetry)?,
        None => Vec::new(),
    };
    // Serve health and readiness while plugins compile.
    let listener =
        tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(address = %listen, config = %config_path.map(|p| p.display().to_string()).unwrap_or_else(|| "<embedded default>".into()), "wasmon listening");
    let app = router(state.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let paths = config.paths.clone();
    let telemetry = state.telemetry.clone();
    let registry = reload.plugins.clone();
    let startup_config = config.clone();
    let (runtime, jobs) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let mut runtime = Runtime::new(paths, &cache_dir)?;
        // The agent lives long: keep the compiler out of its memory.
        if let Ok(exe) = std::env::current_exe() {
            runtime.compile_out_of_process(exe);
        }
        // Drop-in plugins are validated (and compiled) before jobs need them.
        registry.scan(&runtime, &startup_config.plugins.directories, &startup_config.plugins);
        let jobs =
            agent::build_versioned_jobs(&runtime, &startup_config, &telemetry, &registry, agent::MissingPlugin::Wait)
                .map_err(|problems| anyhow::anyhow!("cannot start:\n  {}", problems.join("\n  ")))?;
        Ok((Arc::new(runtime), jobs))
    })
    .await??;
    let sinks = crate::scheduler::Sinks {
        latest: state.latest.clone(),
        telemetry: state.telemetry.clone(),
        store: store.clone(),
        discovered: state.discovered.clone(),
    };
    let mut scheduler = Scheduler::start(Vec::new(), sinks);
    scheduler.apply(jobs).await;
    *state.jobs.write().unwrap_or_else(|p| p.into_inner()) = scheduler.jobs();
    // Logs pipeline (host/src/logs.rs): started after the scheduler, owned
    // by the reloader, shut down at exit.
    let logs = crate::logs::start_for_agent(&config, &runtime, &state, &store).await?;
    let reloader = crate::reload::Running {
        runtime,
        config_path: config_path.map(Path::to_path_buf),
        storage_override: storage_path,
        config,
        scheduler,
        telemetry: state.telemetry.clone(),
        alerting,
        store: store.clone(),
        remote_write,
        external_url,
        jobs: state.jobs.clone(),
        handle: reload,
        logs,
    }
    .start();
    state.ready.store(true, Ordering::Relaxed);
    tracing::info!("all plugins loaded; scraping");

    tokio::select! {
        result = server => { result??; }
        _ = tokio::signal::ctrl_c() => { tracing::info!("interrupted; shutting down"); }
        _ = terminate() => { tracing::info!("terminated; shutting down"); }
    }
    // Writes the logs checkpoint, ends every job (no staleness markers on
    // shutdown, as Prometheus) and persists the remote-write positions.
    reloader.stop().await;
    if let Some(db) = store {
        // Everything acknowledged so far reaches the disk before we exit.
        tokio::task::spawn_blocking(move || db.close()).await?.context("closing the store")?;
    }
    Ok(())
}

/// Open the embedded store (replaying its WAL) and start its housekeeping:
/// cutting blocks, retention and WAL truncation once a minute.
async fn open_store(config: &Config) -> anyhow::Result<Option<Arc<wasmon_storage::Db>>> {
    let tsdb = &config.storage.tsdb;
    if !tsdb.enabled {
        return Ok(None);
    }
    let options = wasmon_storage::DbOptions {
        retention_time: tsdb.retention.time.0,
        retention_size: tsdb.retention.size.0,
        wal_fsync_interval: tsdb.wal_fsync_interval.0,
        ..Default::default()
    };
    let path = tsdb.path.clone();
    let started = Instant::now();
    let db = tokio::task::spawn_blocking(move || wasmon_storage::Db::open(&path, options))
        .await?
        .with_context(|| format!("cannot open the store at {}", tsdb.path.display()))?;
    let db = Arc::new(db);
    let stats = db.stats();
    tracing::info!(path = %tsdb.path.display(), series = stats.head_series, blocks = stats.blocks.len(),
        took = ?started.elapsed(), "store opened");
    let housekeeping = db.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        tick.tick().await;
        loop {
            tick.tick().await;
            let db = housekeeping.clone();
            let now = crate::tsdb_cmd::now_ms();
            match tokio::task::spawn_blocking(move || db.maintenance(now)).await {
                Ok(Ok(report)) => tracing::debug!(?report, "store maintenance done"),
                Ok(Err(e)) => tracing::warn!(error = %e, "store maintenance failed"),
                Err(e) => tracing::warn!(error = %e, "store maintenance task failed"),
            }
        }
    });
    Ok(Some(db))
}

async fn terminate() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

fn check_config(file: &Path, cache_dir: &Path) -> anyhow::Result<()> {
    let config = match Config::load(file) {
        Ok(c) => c,
        Err(e) => {
            for p in &e.problems {
                eprintln!("{p}");
            }
            bail!("{} problem(s) in {}", e.problems.len(), file.display());
        }
    };
    let cache_dir = config.plugins.cache_directory.clone().unwrap_or_else(|| cache_dir.to_path_buf());
    let runtime = Runtime::new(config.paths.clone(), &cache_dir)?;
    // Like `promtool check config`, the rule files are part of the config.
    let rules = crate::notifications::load_rules(&config, file.parent());
    let jobs = agent::build_jobs(&runtime, &config, &Arc::new(crate::telemetry::Telemetry::default()));
    // The log processors check their sections too (loading each plugin).
    let logs = crate::logs::check(&config, &runtime);
    match (jobs, rules, logs) {
        (Ok(jobs), Ok(groups), Ok(())) => {
            let targets: usize = jobs.iter().flat_map(|j| &j.discovery.static_groups).map(|g| g.targets.len()).sum();
            let rules: usize = groups.iter().map(|g| g.rules.len()).sum();
            println!("{}: OK ({} jobs, {targets} static targets, {rules} rules)", file.display(), jobs.len());
            Ok(())
        }
        (jobs, rules, logs) => {
            let mut problems = jobs.err().unwrap_or_default();
            problems.extend(rules.err());
            problems.extend(logs.err().into_iter().flatten());
            for p in &problems {
                eprintln!("{}: {p}", file.display());
            }
            bail!("{} problem(s) in {}", problems.len(), file.display());
        }
    }
}

fn inspect(file: &Path, cache_dir: &Path) -> anyhow::Result<()> {
    let runtime = Runtime::new(PathsConfig::default(), cache_dir)?;
    let name = file.display().to_string();
    let (info, world) = match agent::load_plugin(&runtime, &name, file) {
        Ok(entry) => (entry.info, "exporter"),
        // Not an exporter: maybe a kube-state component; if that fails too,
        // the exporter error is the one to show.
        Err(exporter_error) => match runtime.load_kube_state(&name, file) {
            Ok(plugin) => {
                let sandbox = Sandbox::locked_down(&PathsConfig::default(), std::time::Duration::from_secs(10));
                let mut instance = plugin.instantiate(&sandbox).map_err(|f| anyhow::anyhow!("{f}"))?;
                let info = instance.describe().result.map_err(|f| anyhow::anyhow!("describe failed: {f}"))?;
                (info, "kube-state")
            }
            // Or a log processor (wit/logs.wit).
            Err(_) => match runtime.load_log_processor(&name, file) {
                Ok(plugin) => {
                    (crate::runtime::log_processor::describe(&plugin).map_err(anyhow::Error::msg)?, "log-processor")
                }
                Err(_) => bail!("{exporter_error}"),
            },
        },
    };
    let info = &info;
    println!("name:        {}", info.name);
    println!("world:       {world}");
    println!("version:     {}", info.version);
    println!("file:        {}", file.display());
    println!("description: {}", info.description);
    println!("capabilities:");
    if info.capabilities.is_empty() {
        println!("  (none)");
    }
    for c in &info.capabilities {
        match c {
            Capability::ReadFiles(globs) => {
                println!("  read-files:");
                for g in globs {
                    println!("    {g}");
                }
            }
            Capability::FsStats => println!("  fs-stats"),
            Capability::Clock => println!("  clock"),
            Capability::Tcp => println!("  tcp"),
            Capability::Http => println!("  http"),
        }
    }
    if !info.config_example.is_empty() {
        println!("config example:");
        for line in info.config_example.lines() {
            println!("  {line}");
        }
    }
    Ok(())
}

fn read_plugin_config(config: Option<&str>) -> anyhow::Result<String> {
    let Some(config) = config else { return Ok("{}".into()) };
    let text = if Path::new(config).is_file() { std::fs::read_to_string(config)? } else { config.to_string() };
    let value: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&text).context("--config is neither a readable file nor YAML/JSON")?;
    Ok(serde_json::to_string(&value)?)
}

#[allow(clippy::too_many_arguments)]
fn plugin_test(
    file: &Path,
    config: Option<&str>,
    target: &str,
    deny_all: bool,
    timeout: PromDuration,
    memory: ByteSize,
    openmetrics: bool,
    repeat: usize,
    cache_dir: &Path,
) -> anyhow::Result<()> {
    let paths = PathsConfig::default();
    let load_started = Instant::now();
    let runtime = Runtime::new(paths.clone(), cache_dir)?;
    let entry = agent::load_plugin(&runtime, &file.display().to_string(), file).map_err(anyhow::Error::msg)?;
    let load_time = load_started.elapsed();
    let config_json = read_plugin_config(config)?;
    let caps = if deny_all {
        crate::config::CapabilitiesConfig::default()
    } else {
        crate::config::CapabilitiesConfig {
            files: crate::config::FileGrant::PluginDefault,
            fs_stats: entry.info.capabilities.contains(&Capability::FsStats),
            clock: entry.info.capabilities.contains(&Capability::Clock),
            preopens: Vec::new(),
            tcp: entry.info.capabilities.contains(&Capability::Tcp),
            http: entry.info.capabilities.contains(&Capability::Http),
        }
    };
    let limits = crate::config::LimitsConfig { memory, ..Default::default() };
    let mut sandbox = Sandbox::for_job(&paths, &caps, &limits, timeout.0, &entry.requested_globs())?;
    if caps.http {
        let egress = crate::runtime::HttpEgress::new(Default::default(), None, None, None, timeout.0)
            .map_err(anyhow::Error::msg)?;
        sandbox.http = Some(Arc::new(egress));
    }
    if let Err(f) = entry.plugin.check_config(&sandbox, &config_json).result {
        bail!("config rejected: {}", f.message);
    }
    let target = Target {
        address: target.into(),
        labels: vec![Label { name: "instance".into(), value: target.into() }],
        params: Vec::new(),
    };
    let mut durations = Vec::new();
    let mut last = None;
    for _ in 0..repeat {
        let outcome = entry.plugin.collect(&sandbox, &target, &config_json);
        durations.push(outcome.report.duration);
        last = Some(outcome);
    }
    let Some(outcome) = last else { bail!("no collect ran") };
    let report = outcome.report;
    let families = outcome.result.map_err(|f| anyhow::anyhow!("collect failed: {f}"))?;
    let (families, rejected) = crate::scheduler::validate::validate(families);
    let format = if openmetrics { Format::OpenMetrics } else { Format::Text004 };
    print!("{}", crate::exposition::encode_families(&families, format));
    durations.sort();
    let series: usize = families.iter().map(|f| f.metrics.len()).sum();
    eprintln!(
        "# plugin {} {}: {} families, {series} series; load {:.1} ms ({:?}); collect median {:.2} ms, max {:.2} ms over {repeat} run(s); memory high-water {} KiB",
        entry.info.name,
        entry.info.version,
        families.len(),
        load_time.as_secs_f64() * 1000.0,
        entry.plugin.cache,
        durations[durations.len() / 2].as_secs_f64() * 1000.0,
        durations[durations.len() - 1].as_secs_f64() * 1000.0,
        report.memory_high_water / 1024,
    );
    if rejected.total() > 0 {
        eprintln!("# {} series rejected: {:?}", rejected.total(), rejected.examples);
    }
    Ok(())
}
