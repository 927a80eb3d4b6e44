//! Applying a changed config or plugin directory to the running agent,
//! without a restart: on a change of the config file or a rule file, a
//! `.wasm` in a plugin directory, SIGHUP, or `POST /-/reload`.
//!
//! A reload is all or nothing for the config: the new file is parsed, its
//! jobs built and its rules loaded before anything changes, and a config
//! with a problem is refused while the old one keeps running (the error is
//! logged, answered to `/-/reload`, counted in
//! `wasmon_config_last_reload_successful` and shown on the page). Then
//! unchanged jobs keep running untouched, changed ones are replaced with
//! their targets' series continued, removed ones stop (their series go
//! stale), and the rules switch with alert state kept. (One exception to
//! all or nothing: a logs section that checked but whose pipeline then does
//! not start; the old pipeline is restarted, the rest applies, and the
//! reload says so.)

use crate::agent::{self, MissingPlugin};
use crate::config::Config;
use crate::plugin_registry::PluginRegistry;
use crate::runtime::Runtime;
use crate::scheduler::Scheduler;
use crate::telemetry::Telemetry;
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, oneshot};

/// How long to wait for more file events after the first before reloading:
/// a save, a `cp` of a plugin or a ConfigMap swap is a burst of events.
const SETTLE: Duration = Duration::from_millis(300);

/// The outcome of the last reload, for the page and the API.
#[derive(Debug, Clone, Default)]
pub struct ReloadStatus {
    pub last_success: Option<SystemTime>,
    /// Why the last reload was refused; `None` after a good one.
    pub last_error: Option<String>,
    /// What the last good reload could not apply (needs a restart).
    pub notes: Vec<String>,
}

type Reply = oneshot::Sender<Result<String, String>>;

/// The API's way into the reloader, and the state it shows.
#[derive(Default)]
pub struct ReloadHandle {
    requests: OnceLock<mpsc::Sender<Option<Reply>>>,
    status: RwLock<ReloadStatus>,
    pub plugins: Arc<PluginRegistry>,
}

impl ReloadHandle {
    /// Reload now and wait for the outcome (`POST /-/reload`).
    pub async fn reload(&self) -> Result<String, String> {
        let Some(requests) = self.requests.get() else {
            return Err("the agent is still starting".into());
        };
        let (tx, rx) = oneshot::channel();
        requests.send(Some(tx)).await.map_err(|_| "the reloader has stopped".to_string())?;
        rx.await.map_err(|_| "the reload was interrupted".to_string())?
    }

    pub fn status(&self) -> ReloadStatus {
        self.status.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_status(&self, status: ReloadStatus) {
        *self.status.write().unwrap_or_else(|p| p.into_inner()) = status;
    }
}

/// What the running agent is made of, owned by the reload task.
pub struct Running {
    pub runtime: Arc<Runtime>,
    /// `None`: the embedded default, which never changes (plugins may).
    pub config_path: Option<PathBuf>,
    /// `--storage.tsdb.path`, which outlives reloads of the file.
    pub storage_override: Option<PathBuf>,
    pub config: Config,
    pub scheduler: Scheduler,
    pub telemetry: Arc<Telemetry>,
    pub alerting: Option<Arc<crate::notifications::Alerting>>,
    pub store: Option<Arc<wasmon_storage::Db>>,
    pub remote_write: Vec<crate::remote::queue::Queue>,
    pub external_url: String,
    /// The running jobs, for `/probe`.
    pub jobs: Arc<RwLock<Vec<Arc<crate::scheduler::Job>>>>,
    pub handle: Arc<ReloadHandle>,
    /// The `logs:` pipeline; restarted from its checkpoint when the section changes.
    pub logs: Option<crate::logs::LogsHandle>,
}

/// The reload task, until the agent stops.
pub struct RunningAgent {
    task: tokio::task::JoinHandle<()>,
    stop: Option<oneshot::Sender<()>>,
}

impl RunningAgent {
    /// Finish the reload in progress, then shut down: the logs pipeline
    /// writes its checkpoint, jobs end, remote-write queues save their
    /// positions.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Running {
    /// Serve reload requests (and file changes, and SIGHUP) until the
    /// agent stops.
    pub fn start(self) -> RunningAgent {
        let (tx, mut rx) = mpsc::channel::<Option<Reply>>(4);
        let _ = self.handle.requests.set(tx.clone());
        // The config the agent started with is its first good load.
        self.telemetry.set(
            "wasmon_config_last_reload_successful",
            "Whether the last config reload succeeded (1) or not (0).",
            &[],
            1.0,
        );
        self.handle.set_status(ReloadStatus { last_success: Some(SystemTime::now()), ..Default::default() });
        if let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            let tx = tx.clone();
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    tracing::info!("SIGHUP: reloading");
                    let _ = tx.send(None).await;
                }
            });
        }
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut running = self;
            let mut watch = running.watch(tx.clone());
            loop {
                let reply = tokio::select! {
                    request = rx.recv() => match request {
                        Some(reply) => reply,
                        None => break,
                    },
                    _ = &mut stop_rx => break,
                };
                let result = running.reload().await;
                // The set of watched files follows the config.
                if result.is_ok() {
                    watch = running.watch(tx.clone());
                }
                // Requests that queued during this reload saw the files it
                // read: they get its outcome.
                let queued = std::iter::from_fn(|| rx.try_recv().ok());
                for reply in std::iter::once(reply).chain(queued).flatten() {
                    let _ = reply.send(result.clone());
                }
            }
            drop(watch);
            if let Some(logs) = running.logs.take() {
                let grace = logs.default_grace();
                if let Err(e) = logs.shutdown(grace).await {
                    tracing::warn!(error = %e, "logs pipeline did not shut down cleanly; unacknowledged lines are read again");
                }
            }
        });
        RunningAgent { task, stop: Some(stop_tx) }
    }

    /// Watch the config file, the rule files and the plugin directories.
    fn watch(&self, tx: mpsc::Sender<Option<Reply>>) -> Option<ChangeWatch> {
        let mut files: Vec<PathBuf> = self.config_path.iter().cloned().collect();
        if let Some(alerting) = &self.alerting {
            files.extend(alerting.watched_files());
        }
        ChangeWatch::start(&files, &self.config.plugins.directories, tx)
    }

    /// One reload: all of the new config, or none of it.
    async fn reload(&mut self) -> Result<String, String> {
        let result = self.try_reload().await;
        let value = match &result {
            Ok((summary, notes)) => {
                tracing::info!(%summary, "reload applied");
                for note in notes {
                    tracing::warn!(%note, "not applied by the reload");
                }
                self.handle.set_status(ReloadStatus {
                    last_success: Some(SystemTime::now()),
                    last_error: None,
                    notes: notes.clone(),
                });
                self.telemetry.set(
                    "wasmon_config_last_reload_success_timestamp_seconds",
                    "When the config was last loaded successfully, in Unix seconds.",
                    &[],
                    crate::tsdb_cmd::now_ms() as f64 / 1000.0,
                );
                1.0
            }
            Err(e) => {
                tracing::error!(error = %e, "reload refused; the previous config keeps running");
                let mut status = self.handle.status();
                status.last_error = Some(e.clone());
                self.handle.set_status(status);
                0.0
            }
        };
        self.telemetry.set(
            "wasmon_config_last_reload_successful",
            "Whether the last config reload succeeded (1) or not (0).",
            &[],
            value,
        );
        result.map(|(summary, _)| summary)
    }

    async fn try_reload(&mut self) -> Result<(String, Vec<String>), String> {
        let mut config = match &self.config_path {
            Some(path) => Config::load(path).map_err(|e| format!("invalid config:\n{e}"))?,
            None => self.config.clone(),
        };
        if let Some(path) = &self.storage_override {
            config.storage.tsdb.path = path.clone();
        }
        let notes = keep_restart_only_settings(&self.config, &mut config);
        // Plugins and jobs: compiled and checked off the async threads.
        let (runtime, registry, telemetry) =
            (self.runtime.clone(), self.handle.plugins.clone(), self.telemetry.clone());
        let candidate = config.clone();
        let jobs = tokio::task::spawn_blocking(move || {
            registry.scan(&runtime, &candidate.plugins.directories, &candidate.plugins);
            agent::build_versioned_jobs(&runtime, &candidate, &telemetry, &registry, MissingPlugin::Wait)
        })
        .await
        .map_err(|e| format!("reload task failed: {e}"))?
        .map_err(|problems| format!("invalid config:\n  {}", problems.join("\n  ")))?;
        let logs_changed = format!("{:?}", config.logs) != format!("{:?}", self.config.logs);
        if logs_changed {
            let (runtime, candidate) = (self.runtime.clone(), config.clone());
            tokio::task::spawn_blocking(move || crate::logs::check(&candidate, &runtime))
                .await
                .map_err(|e| format!("reload task failed: {e}"))?
                .map_err(|problems| format!("invalid config:\n  {}", problems.join("\n  ")))?;
        }
        let prepared = match &self.alerting {
            Some(alerting) => {
                let (alerting, candidate, url) = (alerting.clone(), config.clone(), self.external_url.clone());
                Some(
                    tokio::task::spawn_blocking(move || alerting.prepare(&candidate, &url))
                        .await
                        .map_err(|e| format!("reload task failed: {e}"))??,
                )
            }
            None if !config.rule_files.is_empty() || !config.plugin_rules.is_empty() => {
                return Err("rule_files and plugin_rules need the local store (storage.tsdb.enabled: true)".into());
            }
            None => None,
        };

        // Everything checked: apply. remote_write first: its queues are the
        // one step that can still fail, and then nothing else has changed.
        let remote_write_changed = format!("{:?}", config.remote_write) != format!("{:?}", self.config.remote_write);
        if let (Some(db), true) = (&self.store, remote_write_changed) {
            // Old queues first: each persists its WAL position on drop, and
            // a kept endpoint's new queue starts from it (two queues of one
            // endpoint would send everything twice).
            self.remote_write.clear();
            match crate::remote::start(&config.remote_write, db, &self.telemetry) {
                Ok(queues) => self.remote_write = queues,
                Err(e) => {
                    self.remote_write =
                        crate::remote::start(&self.config.remote_write, db, &self.telemetry).unwrap_or_default();
                    return Err(format!("remote_write: {e}; the previous endpoints keep running"));
                }
            }
        }
        let mut notes = notes;
        if let (Some(alerting), Some(prepared)) = (&self.alerting, prepared) {
            notes.extend(prepared.notes.iter().cloned());
            alerting.apply_config(&config, prepared);
        }
        if logs_changed && let Err(e) = self.restart_logs(&config).await {
            // Checked above, so this is rare (e.g. the checkpoint file busy);
            // the rest of the config applies and the next reload retries.
            notes.push(e);
            config.logs = self.config.logs.clone();
        }
        let report = self.scheduler.apply(jobs).await;
        *self.jobs.write().unwrap_or_else(|p| p.into_inner()) = self.scheduler.jobs();
        self.config = config;
        let summary = format!(
            "jobs started {:?}, replaced {:?}, stopped {:?}, unchanged {}",
            report.started,
            report.replaced,
            report.stopped,
            report.unchanged.len()
        );
        Ok((summary, notes))
    }
}

impl Running {
    /// Stop the logs pipeline (it writes its checkpoint) and start the one
    /// of `config`, which resumes from that checkpoint. If the new one does
    /// not start, the old config's is started again.
    async fn restart_logs(&mut self, config: &Config) -> Result<(), String> {
        if let Some(old) = self.logs.take() {
            let grace = old.default_grace();
            if let Err(e) = old.shutdown(grace).await {
                tracing::warn!(error = %e, "logs pipeline did not shut down cleanly; unacknowledged lines are read again");
            }
        }
        let start = |config: Config| {
            let (runtime, sinks) = (self.runtime.clone(), self.scheduler.sinks().clone());
            tokio::task::spawn_blocking(move || crate::logs::start(&config, &runtime, &sinks))
        };
        let why = match start(config.clone()).await {
            Ok(Ok(logs)) => {
                self.logs = logs;
                return Ok(());
            }
            Ok(Err(problems)) => problems.join("; "),
            Err(e) => e.to_string(),
        };
        self.logs = start(self.config.clone()).await.ok().and_then(Result::ok).flatten();
        Err(format!("logs: {why}; the previous logs pipeline was restarted"))
    }
}

/// Settings a running agent cannot switch (where it listens, stores, and
/// reads the host's files): the running values stay, with a note.
fn keep_restart_only_settings(running: &Config, new: &mut Config) -> Vec<String> {
    let mut notes = Vec::new();
    if format!("{:?}", running.web) != format!("{:?}", new.web) {
        notes.push("web: changes take effect after a restart".into());
        new.web = running.web.clone();
    }
    if format!("{:?}", running.storage) != format!("{:?}", new.storage) {
        notes.push("storage: changes take effect after a restart".into());
        new.storage = running.storage.clone();
    }
    if format!("{:?}", running.paths) != format!("{:?}", new.paths) {
        notes.push("paths: changes take effect after a restart".into());
        new.paths = running.paths.clone();
    }
    if running.plugins.cache_directory != new.plugins.cache_directory {
        notes.push("plugins.cache_directory: changes take effect after a restart".into());
        new.plugins.cache_directory = running.plugins.cache_directory.clone();
    }
    notes
}

/// Watches directories and asks for a reload when a file that matters in
/// them changes. Editors and Kubernetes' ConfigMap updates replace files
/// by rename (the ConfigMap through its `..data` symlink), so the parent
/// directories are watched, not the files.
struct ChangeWatch {
    _watcher: RecommendedWatcher,
}

impl ChangeWatch {
    fn start(files: &[PathBuf], plugin_dirs: &[PathBuf], tx: mpsc::Sender<Option<Reply>>) -> Option<Self> {
        let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
        let mut names: BTreeSet<OsString> = BTreeSet::new();
        for file in files {
            let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
            dirs.insert(dir.to_path_buf());
            if let Some(name) = file.file_name() {
                names.insert(name.to_os_string());
            }
        }
        let plugin_dirs: BTreeSet<PathBuf> = plugin_dirs.iter().cloned().collect();
        dirs.extend(plugin_dirs.iter().cloned());
        let matters = move |path: &Path| {
            let Some(name) = path.file_name() else { return false };
            let name_str = name.to_string_lossy();
            let in_plugin_dir = path.parent().is_some_and(|p| plugin_dirs.contains(p));
            names.contains(name)
                || name_str.starts_with("..")
                || (in_plugin_dir && (name_str.ends_with(".wasm") || name_str.ends_with(".sig")))
        };
        let (raw_tx, mut raw_rx) = mpsc::unbounded_channel::<()>();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let Ok(e) = event
                && !e.kind.is_access()
                && e.paths.iter().any(|p| matters(p))
            {
                let _ = raw_tx.send(());
            }
        });
        let mut watcher = match watcher {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch files for changes; use POST /-/reload or SIGHUP");
                return None;
            }
        };
        for dir in dirs.iter().filter(|d| d.is_dir()) {
            if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot watch directory; use POST /-/reload or SIGHUP");
            }
        }
        tokio::spawn(async move {
            while raw_rx.recv().await.is_some() {
                tokio::time::sleep(SETTLE).await;
                while raw_rx.try_recv().is_ok() {}
                if tx.send(None).await.is_err() {
                    return;
                }
            }
        });
        Some(Self { _watcher: watcher })
    }
}
