//! Per-target scrape loops: interval, spread over the interval, timeout,
//! backoff after traps, output validation, and the synthetic series
//! Prometheus writes for every scrape (`up`, `scrape_duration_seconds`, ...).

pub mod validate;

use crate::exposition::{Format, encode_families};
use crate::ingest::{StalenessTracker, flatten};
use crate::relabel::Relabeler;
use crate::runtime::model::{Label, Metric, MetricFamily, MetricKind, MetricValue, Target};
use crate::runtime::{CallFailure, FailureReason, LoadedPlugin, Sandbox};
use crate::scrape::NativeScraper;
use crate::targets::{DroppedTarget, JobDefaults, JobTargets, TargetId, TargetRelabeling};
use crate::telemetry::Telemetry;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};
use tokio::task::JoinHandle;
use wasmon_discovery::TargetGroup;
use wasmon_discovery::file::{FileProvider, FileSdSpec};

/// The longest a target waits between attempts after repeated traps.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What collects from a job's targets.
#[derive(Clone)]
pub enum Collector {
    /// A plugin, in a fresh sandboxed instance per call.
    Plugin { plugin: LoadedPlugin, sandbox: Arc<Sandbox>, config_json: Arc<str> },
    /// The host, scraping the target's Prometheus endpoint.
    Native(Arc<NativeScraper>),
    /// A kube-state plugin's long-lived instance, fed by the host's watches.
    KubeState(Arc<crate::kube_state::KubeStateJob>),
    /// The job's plugin is not there (yet) or no version of it loads: every
    /// scrape fails with `reason` until a reload finds a good one.
    Unavailable { plugin: String, reason: String },
}

impl Collector {
    /// The plugin's name, or `native`: the `plugin` label of self-metrics.
    pub fn name(&self) -> &str {
        match self {
            Collector::Plugin { plugin, .. } => &plugin.name,
            Collector::Native(_) => "native",
            Collector::KubeState(k) => k.plugin_name(),
            Collector::Unavailable { plugin, .. } => plugin,
        }
    }
}

/// Limits on scraped label sets, like Prometheus' `label_limit`,
/// `label_name_length_limit` and `label_value_length_limit` (0 = none).
#[derive(Debug, Clone, Copy, Default)]
pub struct LabelLimits {
    pub count: usize,
    pub name_length: usize,
    pub value_length: usize,
}

/// A job ready to run: what collects, where its targets come from, and
/// what happens to what it scrapes.
#[derive(Clone)]
pub struct Job {
    pub name: String,
    pub collector: Collector,
    pub interval: Duration,
    pub timeout: Duration,
    pub sample_limit: usize,
    pub label_limits: LabelLimits,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub metric_relabel: Relabeler,
    pub discovery: JobDiscovery,
}

/// Where a job's targets come from and how they are relabeled.
#[derive(Clone)]
pub struct JobDiscovery {
    /// Target defaults (`__scheme__`, `__metrics_path__`, params, ...).
    pub defaults: JobDefaults,
    pub relabeling: TargetRelabeling,
    /// `static_configs`, as provider 0.
    pub static_groups: Vec<TargetGroup>,
    /// `file_sd_configs`, providers 1..
    pub file_sd: Vec<FileSdSpec>,
    /// `kubernetes_sd_configs`, after the file providers.
    pub kubernetes_sd: Vec<crate::kubernetes::KubernetesSd>,
}

impl Job {
    /// A plugin job with default settings and no targets, for tests and
    /// `wasmon plugin test`.
    pub fn for_plugin(
        name: &str,
        plugin: LoadedPlugin,
        sandbox: Sandbox,
        config_json: &str,
        interval: Duration,
        timeout: Duration,
    ) -> Self {
        Job {
            name: name.into(),
            collector: Collector::Plugin { plugin, sandbox: Arc::new(sandbox), config_json: config_json.into() },
            interval,
            timeout,
            sample_limit: 0,
            label_limits: LabelLimits::default(),
            honor_labels: false,
            honor_timestamps: true,
            metric_relabel: Relabeler::default(),
            discovery: JobDiscovery {
                defaults: JobDefaults {
                    job: name.into(),
                    scheme: crate::config::Scheme::Http,
                    metrics_path: "/metrics".into(),
                    interval,
                    timeout,
                    params: Vec::new(),
                    add_default_port: false,
                },
                relabeling: TargetRelabeling::default(),
                static_groups: Vec::new(),
                file_sd: Vec::new(),
                kubernetes_sd: Vec::new(),
            },
        }
    }

    /// What the plugin is told about one of this job's targets.
    pub fn plugin_target(&self, spec: &TargetSpec) -> Target {
        let label = |(k, v): (&String, &String)| Label { name: k.clone(), value: v.clone() };
        Target {
            address: spec.address.clone(),
            labels: spec.labels.iter().map(label).collect(),
            params: spec.params.iter().map(|(k, v)| label((k, v))).collect(),
        }
    }

    /// The target's own scrape timeout, else the job's.
    fn timeout_for(&self, spec: &TargetSpec) -> Duration {
        if spec.timeout.is_zero() { self.timeout } else { spec.timeout }
    }

    /// Collect from `spec` once for `/probe`: the families as validation
    /// keeps them, written in `format`. A plugin's call writes them as it
    /// goes, so families it passes through are never built.
    pub async fn probe(self: &Arc<Self>, spec: &TargetSpec, format: Format) -> crate::runtime::CallOutcome<String> {
        if let Collector::Plugin { plugin, sandbox, config_json } = &self.collector {
            let target = self.plugin_target(spec);
            return bounded_call(self.timeout_for(spec), plugin.probe_async(sandbox, &target, config_json, format))
                .await;
        }
        let outcome = self.collect(spec).await;
        let result = outcome.result.map(|families| encode_families(&validate::validate(families).0, format));
        crate::runtime::CallOutcome { result, report: outcome.report }
    }

    /// Collect from `spec` once: the plugin call or the HTTP scrape.
    pub async fn collect(self: &Arc<Self>, spec: &TargetSpec) -> crate::runtime::CallOutcome<Vec<MetricFamily>> {
        let timeout = self.timeout_for(spec);
        match &self.collector {
            Collector::Plugin { plugin, sandbox, config_json } => {
                let target = self.plugin_target(spec);
                bounded_call(timeout, plugin.collect_async(sandbox, &target, config_json)).await
            }
            Collector::Native(scraper) => {
                let started = Instant::now();
                let result = scraper.scrape(spec, timeout).await.map_err(|e| CallFailure {
                    reason: match e {
                        crate::scrape::ScrapeError::Parse(_) => FailureReason::ParseError,
                        crate::scrape::ScrapeError::BodyTooLarge(_) => FailureReason::BodySizeLimit,
                        _ => FailureReason::ScrapeError,
                    },
                    message: e.to_string(),
                });
                let report = crate::runtime::CallReport { duration: started.elapsed(), ..Default::default() };
                crate::runtime::CallOutcome { result, report }
            }
            Collector::Unavailable { reason, .. } => failed(FailureReason::PluginUnavailable, reason.clone()),
            Collector::KubeState(job) => {
                let job = job.clone();
                match tokio::task::spawn_blocking(move || job.collect()).await {
                    Ok(outcome) => outcome,
                    Err(join_error) => failed(FailureReason::Trap, format!("host task failed: {join_error}")),
                }
            }
        }
    }
}

/// Poll a plugin call right here rather than spawned (a task of its own
/// would cost a hand-off to it and back on every collect), a panic in it
/// failing it alone. The epoch deadline stops wasm at the timeout; this
/// outer timeout only matters if a host call hangs.
async fn bounded_call<T>(
    timeout: Duration,
    call: impl Future<Output = crate::runtime::CallOutcome<T>>,
) -> crate::runtime::CallOutcome<T> {
    match tokio::time::timeout(timeout + Duration::from_secs(2), catch_panic(call)).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(panic)) => failed(FailureReason::Trap, format!("host task failed: {panic}")),
        Err(_) => failed(FailureReason::Timeout, "a host call did not return before the scrape timeout".into()),
    }
}

/// Poll `future` on this task, a panic in it becoming an error (as a
/// spawned task's `JoinError` would), so a host bug fails one call alone.
async fn catch_panic<F: Future>(future: F) -> Result<F::Output, String> {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|cx| {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(std::task::Poll::Ready(output)) => std::task::Poll::Ready(Ok(output)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".into());
                std::task::Poll::Ready(Err(format!("panicked: {message}")))
            }
        }
    })
    .await
}

fn failed<T>(reason: FailureReason, message: String) -> crate::runtime::CallOutcome<T> {
    crate::runtime::CallOutcome { result: Err(CallFailure { reason, message }), report: Default::default() }
}

/// One target: where it is, its final labels, and how to scrape it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TargetSpec {
    pub address: String,
    /// The target's labels after relabeling (`job`, `instance`, ...).
    pub labels: BTreeMap<String, String>,
    /// The labels discovery gave it, with the job's defaults, before
    /// relabeling (`discoveredLabels` in the targets API).
    pub discovered: BTreeMap<String, String>,
    pub scheme: crate::config::Scheme,
    pub metrics_path: String,
    /// URL parameters for a native scrape, or passed to the plugin.
    pub params: Vec<(String, String)>,
    /// Zero = the job's.
    pub interval: Duration,
    pub timeout: Duration,
}

impl TargetSpec {
    /// A target without discovery: `job`, `instance` and `extra` labels.
    pub fn new(job: &str, address: &str, extra: &BTreeMap<String, String>) -> Self {
        let mut labels = extra.clone();
        labels.insert("job".into(), job.into());
        labels.entry("instance".into()).or_insert_with(|| address.into());
        let mut discovered = extra.clone();
        discovered.insert("__address__".into(), address.into());
        Self {
            address: address.into(),
            labels,
            discovered,
            scheme: crate::config::Scheme::Http,
            metrics_path: "/metrics".into(),
            params: Vec::new(),
            interval: Duration::ZERO,
            timeout: Duration::ZERO,
        }
    }

    /// The URL a native scrape fetches.
    pub fn url(&self) -> String {
        let scheme = match self.scheme {
            crate::config::Scheme::Http => "http",
            crate::config::Scheme::Https => "https",
        };
        let mut url = format!("{scheme}://{}{}", self.address, self.metrics_path);
        if !self.params.is_empty() {
            // Sorted by name, values in order, as Go's `url.Values.Encode`.
            let mut params: Vec<&(String, String)> = self.params.iter().collect();
            params.sort_by(|a, b| a.0.cmp(&b.0));
            let query = form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&query);
        }
        url
    }

    /// Identity within the job: labels and URL (two targets at one address
    /// with other paths or labels are two targets).
    pub fn id(&self) -> u64 {
        let mut h = DefaultHasher::new();
        self.labels.hash(&mut h);
        self.url().hash(&mut h);
        h.finish()
    }

    pub fn key(&self) -> TargetKey {
        TargetKey {
            job: self.labels.get("job").cloned().unwrap_or_default(),
            address: self.address.clone(),
            id: self.id(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TargetKey {
    pub job: String,
    pub address: String,
    pub id: u64,
}

/// Health of a target as the targets view shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Up,
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Up => "up",
            Self::Down => "down",
        }
    }
}

/// The latest scrape of one target.
#[derive(Debug, Clone)]
pub struct ScrapeSnapshot {
    pub target: TargetSpec,
    pub plugin: String,
    pub health: Health,
    pub last_error: Option<String>,
    pub last_scrape: Option<SystemTime>,
    pub duration: Duration,
    pub interval: Duration,
    pub timeout: Duration,
    /// Plugin families with the target labels attached, then the synthetic series.
    pub families: Vec<MetricFamily>,
}

/// Latest scrape of every target; what `/metrics` serves.
#[derive(Default)]
pub struct LatestScrapes {
    inner: RwLock<BTreeMap<TargetKey, Arc<ScrapeSnapshot>>>,
}

impl LatestScrapes {
    pub fn put(&self, snapshot: ScrapeSnapshot) {
        let key = snapshot.target.key();
        self.inner.write().unwrap_or_else(|p| p.into_inner()).insert(key, Arc::new(snapshot));
    }
    pub fn remove(&self, key: &TargetKey) {
        self.inner.write().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
    pub fn all(&self) -> Vec<Arc<ScrapeSnapshot>> {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }
    /// The first target of `job` at `address`.
    pub fn get(&self, job: &str, address: &str) -> Option<Arc<ScrapeSnapshot>> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        inner.iter().find(|(k, _)| k.job == job && k.address == address).map(|(_, v)| v.clone())
    }
    pub fn get_key(&self, key: &TargetKey) -> Option<Arc<ScrapeSnapshot>> {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).get(key).cloned()
    }
}

/// What discovery and relabeling made of each job, for the targets view.
#[derive(Default)]
pub struct DiscoveredTargets {
    jobs: RwLock<BTreeMap<String, JobView>>,
}

/// One job's targets: active ones, dropped ones with their reason, and
/// discovery errors (a bad file, an unreachable API server).
#[derive(Debug, Clone, Default)]
pub struct JobView {
    pub active: Vec<TargetSpec>,
    pub dropped: Vec<DroppedTarget>,
    pub errors: Vec<String>,
}

impl DiscoveredTargets {
    pub fn jobs(&self) -> BTreeMap<String, JobView> {
        self.jobs.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
    pub fn job(&self, name: &str) -> Option<JobView> {
        self.jobs.read().unwrap_or_else(|p| p.into_inner()).get(name).cloned()
    }
    fn put(&self, name: &str, view: JobView) {
        self.jobs.write().unwrap_or_else(|p| p.into_inner()).insert(name.to_string(), view);
    }
    fn remove(&self, name: &str) {
        self.jobs.write().unwrap_or_else(|p| p.into_inner()).remove(name);
    }
}

/// Runs every job's discovery and every target's loop until dropped, and
/// replaces jobs in place when the config or a plugin changes.
pub struct Scheduler {
    sinks: Sinks,
    jobs: BTreeMap<String, RunningJob>,
}

/// One job's tasks, and the line to its runner.
struct RunningJob {
    job: Arc<Job>,
    /// Equal fingerprints mean an unchanged job, left running by `apply`.
    fingerprint: u64,
    control: tokio::sync::mpsc::Sender<JobControl>,
    runner: JoinHandle<()>,
    /// Discovery providers and the kube-state feed.
    helpers: Vec<JoinHandle<()>>,
}

impl RunningJob {
    fn abort(&self) {
        self.runner.abort();
        for h in &self.helpers {
            h.abort();
        }
    }

    /// Ask the runner to hand its loops over (`handover`) or stop them
    /// gracefully, wait for it, then end the job's other tasks.
    async fn end(self, handover: bool) -> HashMap<TargetId, LoopState> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let control = if handover { JobControl::Handover(tx) } else { JobControl::Stop(tx) };
        let states =
            if self.control.send(control).await.is_ok() { rx.await.unwrap_or_default() } else { HashMap::new() };
        self.abort();
        states
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        for job in self.jobs.values() {
            job.abort();
        }
    }
}

/// Where scrape loops report and write.
#[derive(Clone)]
pub struct Sinks {
    pub latest: Arc<LatestScrapes>,
    pub telemetry: Arc<Telemetry>,
    /// `None` when the local store is disabled.
    pub store: Option<Arc<wasmon_storage::Db>>,
    pub discovered: Arc<DiscoveredTargets>,
}

/// What `Scheduler::apply` did, for the reload log and its tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ApplyReport {
    pub started: Vec<String>,
    pub replaced: Vec<String>,
    pub stopped: Vec<String>,
    pub unchanged: Vec<String>,
}

impl Scheduler {
    /// Start every job: its static targets at once, its discovery
    /// providers in the background. Must be called inside a tokio runtime.
    pub fn start(jobs: Vec<Job>, sinks: Sinks) -> Self {
        let mut scheduler = Self { sinks, jobs: BTreeMap::new() };
        for job in jobs {
            let name = job.name.clone();
            let running = scheduler.spawn_job(Arc::new(job), 0, HashMap::new());
            scheduler.jobs.insert(name, running);
        }
        scheduler
    }

    /// Where the jobs report and write.
    pub fn sinks(&self) -> &Sinks {
        &self.sinks
    }

    /// The jobs running now.
    pub fn jobs(&self) -> Vec<Arc<Job>> {
        self.jobs.values().map(|j| j.job.clone()).collect()
    }

    /// Bring the running jobs in line with `jobs` (each with a fingerprint
    /// of everything it was built from): start new ones, stop removed ones
    /// (their series go stale), and replace changed ones so that every
    /// target they keep continues its series on its schedule, without a
    /// gap or staleness markers (as Prometheus' scrape pool reload does).
    pub async fn apply(&mut self, jobs: Vec<(Job, u64)>) -> ApplyReport {
        let mut report = ApplyReport::default();
        let wanted: HashSet<String> = jobs.iter().map(|(j, _)| j.name.clone()).collect();
        let removed: Vec<String> = self.jobs.keys().filter(|n| !wanted.contains(*n)).cloned().collect();
        for name in removed {
            if let Some(running) = self.jobs.remove(&name) {
                running.end(false).await;
                self.sinks.discovered.remove(&name);
                report.stopped.push(name);
            }
        }
        for (job, fingerprint) in jobs {
            let name = job.name.clone();
            let inherited = match self.jobs.remove(&name) {
                Some(running) if running.fingerprint == fingerprint && fingerprint != 0 => {
                    self.jobs.insert(name.clone(), running);
                    report.unchanged.push(name);
                    continue;
                }
                Some(running) => {
                    report.replaced.push(name.clone());
                    running.end(true).await
                }
                None => {
                    report.started.push(name.clone());
                    HashMap::new()
                }
            };
            let running = self.spawn_job(Arc::new(job), fingerprint, inherited);
            self.jobs.insert(name, running);
        }
        report
    }

    fn spawn_job(&self, job: Arc<Job>, fingerprint: u64, inherited: HashMap<TargetId, LoopState>) -> RunningJob {
        let mut helpers = Vec::new();
        let (tx, rx) = tokio::sync::mpsc::channel::<(usize, Vec<TargetGroup>)>(64);
        let (control_tx, control_rx) = tokio::sync::mpsc::channel(1);
        let mut runner = JobRunner::new(job.clone(), self.sinks.clone());
        runner.inherited = inherited;
        // Static targets are registered before the agent reports ready.
        runner.apply(0, job.discovery.static_groups.clone());
        let mut provider = 1;
        for spec in &job.discovery.file_sd {
            match FileProvider::new(spec) {
                Ok(p) => {
                    runner.file_status.push(p.status());
                    runner.waiting_for.insert(provider);
                    helpers.push(forward(provider, tx.clone(), |gtx| p.run(gtx)));
                }
                Err(e) => runner.errors.push(format!("file_sd_configs: {e}")),
            }
            provider += 1;
        }
        for sd in &job.discovery.kubernetes_sd {
            let sd = sd.clone();
            let errors = runner.kube_errors.clone();
            runner.waiting_for.insert(provider);
            helpers.push(forward(provider, tx.clone(), move |gtx| sd.run(gtx, errors)));
            provider += 1;
        }
        drop(tx);
        if !runner.inherited.is_empty() {
            // Targets discovery never reports again end after two intervals.
            runner.inherit_deadline = Some(tokio::time::Instant::now() + job.interval * 2);
            runner.retire_unclaimed_if_synced();
        }
        let runner = tokio::spawn(runner.run(rx, control_rx));
        if let Collector::KubeState(k) = &job.collector {
            helpers.push(tokio::spawn(k.clone().run()));
        }
        RunningJob { job, fingerprint, control: control_tx, runner, helpers }
    }
}

/// Run a provider and tag what it sends with its index.
fn forward<F, Fut>(provider: usize, tx: tokio::sync::mpsc::Sender<(usize, Vec<TargetGroup>)>, run: F) -> JoinHandle<()>
where
    F: FnOnce(wasmon_discovery::GroupSender) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (gtx, mut grx) = tokio::sync::mpsc::channel(16);
    let provider_task = tokio::spawn(run(gtx));
    tokio::spawn(async move {
        while let Some(groups) = grx.recv().await {
            if tx.send((provider, groups)).await.is_err() {
                break;
            }
        }
        provider_task.abort();
    })
}

/// A target's loop: stopped gracefully (stale markers written, snapshot
/// removed) when its target goes away, handed over when its job is
/// replaced, aborted when the scheduler is dropped, because Prometheus
/// does not mark series stale on shutdown.
struct RunningTarget {
    handle: Option<JoinHandle<()>>,
    stop: Option<tokio::sync::oneshot::Sender<StopLoop>>,
}

impl RunningTarget {
    fn stop_gracefully(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(StopLoop::Remove);
        }
        // Detached: it writes its markers and ends on its own.
        self.handle.take();
    }

    /// Stop gracefully and wait until the loop has written its markers.
    async fn finish(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(StopLoop::Remove);
        }
        if let Some(handle) = self.handle.take() {
            let _ = handle.await;
        }
    }

    /// Take the loop's state for the job's next version.
    async fn hand_over(mut self) -> Option<LoopState> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.stop.take()?.send(StopLoop::Handover(tx)).ok()?;
        self.handle.take();
        rx.await.ok()
    }
}

impl Drop for RunningTarget {
    fn drop(&mut self) {
        if self.stop.is_some()
            && let Some(handle) = &self.handle
        {
            handle.abort();
        }
    }
}

/// What a job's runner is asked to do by `Scheduler::apply`.
enum JobControl {
    /// The job is replaced: hand every loop's state over and end.
    Handover(tokio::sync::oneshot::Sender<HashMap<TargetId, LoopState>>),
    /// The job is removed: stop every loop gracefully and end.
    Stop(tokio::sync::oneshot::Sender<HashMap<TargetId, LoopState>>),
}

/// Keeps one job's running loops in line with its discovered targets.
struct JobRunner {
    job: Arc<Job>,
    sinks: Sinks,
    targets: JobTargets,
    running: BTreeMap<TargetId, RunningTarget>,
    file_status: Vec<Arc<std::sync::Mutex<wasmon_discovery::file::FileStatus>>>,
    kube_errors: Arc<std::sync::Mutex<Vec<String>>>,
    /// Errors found when starting discovery.
    errors: Vec<String>,
    /// Loop states the job's previous version handed over, by target, not
    /// yet claimed by a loop of this version.
    inherited: HashMap<TargetId, LoopState>,
    /// Providers that have not reported yet: until they have, an unclaimed
    /// inherited target may still come back.
    waiting_for: BTreeSet<usize>,
    /// When unclaimed inherited targets end even if discovery is silent.
    inherit_deadline: Option<tokio::time::Instant>,
}

impl JobRunner {
    fn new(job: Arc<Job>, sinks: Sinks) -> Self {
        Self {
            job,
            sinks,
            targets: JobTargets::default(),
            running: BTreeMap::new(),
            file_status: Vec::new(),
            kube_errors: Arc::default(),
            errors: Vec::new(),
            inherited: HashMap::new(),
            waiting_for: BTreeSet::new(),
            inherit_deadline: None,
        }
    }

    fn apply(&mut self, provider: usize, groups: Vec<TargetGroup>) {
        self.update(provider, groups);
        self.reconcile();
    }

    fn update(&mut self, provider: usize, groups: Vec<TargetGroup>) {
        self.waiting_for.remove(&provider);
        self.targets.update(provider, groups, &self.job.discovery.defaults, &self.job.discovery.relabeling);
    }

    async fn run(
        mut self,
        mut rx: tokio::sync::mpsc::Receiver<(usize, Vec<TargetGroup>)>,
        mut control: tokio::sync::mpsc::Receiver<JobControl>,
    ) {
        let mut providers_open = true;
        loop {
            let deadline = self.inherit_deadline;
            tokio::select! {
                update = rx.recv(), if providers_open => match update {
                    Some((provider, groups)) => {
                        self.update(provider, groups);
                        // Take whatever else is queued, then start and stop loops once.
                        while let Ok((provider, groups)) = rx.try_recv() {
                            self.update(provider, groups);
                        }
                        self.reconcile();
                    }
                    // Providers gone: keep scraping what we have.
                    None => providers_open = false,
                },
                order = control.recv() => {
                    match order {
                        Some(JobControl::Handover(reply)) => {
                            let mut states = std::mem::take(&mut self.inherited);
                            for (id, running) in std::mem::take(&mut self.running) {
                                if let Some(state) = running.hand_over().await {
                                    states.insert(id, state);
                                }
                            }
                            let _ = reply.send(states);
                        }
                        Some(JobControl::Stop(reply)) => {
                            for (_, running) in std::mem::take(&mut self.running) {
                                running.finish().await;
                            }
                            self.inherit_deadline = None;
                            self.retire_unclaimed();
                            let _ = reply.send(HashMap::new());
                        }
                        // The scheduler is gone; its drop aborts us.
                        None => {}
                    }
                    std::future::pending::<()>().await;
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)), if deadline.is_some() => {
                    self.retire_unclaimed();
                }
            }
        }
    }

    /// End the inherited targets no loop claimed, once every provider has
    /// reported.
    fn retire_unclaimed_if_synced(&mut self) {
        if self.waiting_for.is_empty() {
            self.retire_unclaimed();
        }
    }

    fn retire_unclaimed(&mut self) {
        self.inherit_deadline = None;
        for (_, state) in self.inherited.drain() {
            state.retire(self.sinks.store.as_deref(), &self.sinks.latest);
        }
    }

    /// Start loops for new targets, stop those of vanished ones, and
    /// publish the job's view.
    fn reconcile(&mut self) {
        let active = &self.targets.active;
        let gone: Vec<TargetId> = self.running.keys().filter(|id| !active.contains_key(id)).copied().collect();
        for id in gone {
            if let Some(running) = self.running.remove(&id) {
                running.stop_gracefully();
            }
        }
        for (id, spec) in active {
            if self.running.contains_key(id) {
                continue;
            }
            let mut looper = TargetLoop::new(
                self.job.clone(),
                spec.clone(),
                self.sinks.latest.clone(),
                self.sinks.telemetry.clone(),
            );
            looper.store = self.sinks.store.clone();
            let resume_at = match self.inherited.remove(id) {
                Some(state) => {
                    let at = state.next_scrape;
                    looper.resume(state);
                    Some(at)
                }
                None => {
                    // Registered as unknown until its first scrape.
                    self.sinks.latest.put(ScrapeSnapshot {
                        target: spec.clone(),
                        plugin: self.job.collector.name().to_string(),
                        health: Health::Unknown,
                        last_error: None,
                        last_scrape: None,
                        duration: Duration::ZERO,
                        interval: spec.interval,
                        timeout: spec.timeout,
                        families: Vec::new(),
                    });
                    None
                }
            };
            let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
            let handle = tokio::spawn(looper.run(stop_rx, resume_at));
            self.running.insert(*id, RunningTarget { handle: Some(handle), stop: Some(stop_tx) });
        }
        if !self.inherited.is_empty() {
            self.retire_unclaimed_if_synced();
        }
        let mut errors = self.errors.clone();
        for status in &self.file_status {
            let status = status.lock().unwrap_or_else(|p| p.into_inner());
            errors.extend(status.files.values().filter_map(|r| r.as_ref().err().cloned()));
        }
        errors.extend(self.kube_errors.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned());
        if let Collector::Unavailable { reason, .. } = &self.job.collector {
            errors.push(reason.clone());
        }
        let view = JobView {
            active: self.targets.active.values().cloned().collect(),
            dropped: self.targets.dropped.clone(),
            errors,
        };
        self.sinks.discovered.put(&self.job.name, view);
    }
}

/// Offset of a target within its interval, stable across restarts, so targets
/// of one job spread out instead of all firing at once (as Prometheus does).
pub fn spread_offset(job: &str, address: &str, interval: Duration) -> Duration {
    let mut h = DefaultHasher::new();
    job.hash(&mut h);
    address.hash(&mut h);
    let ms = interval.as_millis().max(1) as u64;
    Duration::from_millis(h.finish() % ms)
}

/// How a target loop is told to end.
enum StopLoop {
    /// The target is gone: mark its series stale.
    Remove,
    /// The job is being replaced by a reload: hand the loop's state to the
    /// new version, which continues the series on the same schedule.
    Handover(tokio::sync::oneshot::Sender<LoopState>),
}

/// What a target loop carries over to the loop that replaces it when its
/// job changes (config reload, new plugin version): no staleness markers
/// in between, the same scrape slot, the same backoff.
pub struct LoopState {
    key: TargetKey,
    next_scrape: tokio::time::Instant,
    consecutive_traps: u32,
    backoff_until: Option<Instant>,
    last_failure: Option<CallFailure>,
    previous_series: HashSet<u64>,
    staleness: StalenessTracker,
}

impl LoopState {
    /// End the series of a target the new version of its job no longer has.
    fn retire(mut self, store: Option<&wasmon_storage::Db>, latest: &LatestScrapes) {
        if let Some(store) = store {
            let t = SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
            let mut samples = Vec::new();
            self.staleness.track(&mut samples, t);
            store.append_batch(&samples);
        }
        latest.remove(&self.key);
    }
}

/// The first scrape slot after `now`, keeping the loop's phase: a scrape
/// that overran its slot skips the slots it missed, as Prometheus does.
fn next_slot(previous: tokio::time::Instant, interval: Duration, now: tokio::time::Instant) -> tokio::time::Instant {
    let mut next = previous + interval;
    if next <= now && !interval.is_zero() {
        let missed = (now - next).as_nanos() / interval.as_nanos() + 1;
        next += interval * u32::try_from(missed).unwrap_or(u32::MAX);
    }
    next
}

pub struct TargetLoop {
    job: Arc<Job>,
    target: TargetSpec,
    latest: Arc<LatestScrapes>,
    telemetry: Arc<Telemetry>,
    consecutive_traps: u32,
    backoff_until: Option<Instant>,
    last_failure: Option<CallFailure>,
    previous_series: HashSet<u64>,
    /// Where scraped samples go; `None` when the local store is disabled.
    pub store: Option<Arc<wasmon_storage::Db>>,
    staleness: StalenessTracker,
}

const HELP_TRAPS: &str = "Plugin calls that ended in a trap or limit hit, by reason.";
const HELP_FAILURES: &str = "Failed scrapes by job, instance and reason.";
const HELP_DURATION: &str = "Duration of plugin collect calls in seconds.";
const HELP_MEMORY: &str = "Highest linear memory a plugin instance reached, in bytes.";
const HELP_SERIES: &str = "Series the plugin returned in its last scrape of any target.";
const HELP_SERIES_TOTAL: &str = "Series returned by the plugin, summed over scrapes.";
const HELP_REJECTED: &str = "Series dropped from plugin output because they were invalid, by reason.";
const HELP_LOG_DROPPED: &str = "Plugin log and stdio lines dropped by the per-call limit.";
const HELP_SCRAPES: &str = "Scrapes attempted, by plugin and result.";
const HELP_TARGET_SCRAPES: &str = "Scrapes attempted, by job, instance and result.";
const HELP_SKIPPED: &str = "Scrapes skipped because the target was backing off after traps.";

impl TargetLoop {
    pub fn new(job: Arc<Job>, target: TargetSpec, latest: Arc<LatestScrapes>, telemetry: Arc<Telemetry>) -> Self {
        let plugin = job.collector.name().to_string();
        telemetry.touch("wasmon_plugin_traps_total", HELP_TRAPS, &[("plugin", &plugin), ("reason", "timeout")]);
        Self {
            job,
            target,
            latest,
            telemetry,
            consecutive_traps: 0,
            backoff_until: None,
            last_failure: None,
            previous_series: HashSet::new(),
            store: None,
            staleness: StalenessTracker::default(),
        }
    }

    fn interval(&self) -> Duration {
        if self.target.interval.is_zero() { self.job.interval } else { self.target.interval }
    }

    async fn run(
        mut self,
        mut stop: tokio::sync::oneshot::Receiver<StopLoop>,
        resume_at: Option<tokio::time::Instant>,
    ) {
        let interval = self.interval();
        let mut next = resume_at.unwrap_or_else(|| {
            tokio::time::Instant::now() + spread_offset(&self.job.name, &self.target.url(), interval)
        });
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {
                    self.scrape_once().await;
                    next = next_slot(next, interval, tokio::time::Instant::now());
                }
                how = &mut stop => match how {
                    Ok(StopLoop::Remove) => break,
                    Ok(StopLoop::Handover(to)) => {
                        let _ = to.send(self.into_state(next));
                        return;
                    }
                    // The scheduler is going away (shutdown): Prometheus
                    // writes no staleness markers then.
                    Err(_) => return,
                },
            }
        }
        // The target went away: its series end now, as Prometheus marks
        // the series of a removed target stale.
        self.store_samples(&[], SystemTime::now());
        self.latest.remove(&self.target.key());
    }

    /// Continue from the state a loop of the job's previous version left.
    fn resume(&mut self, state: LoopState) {
        self.consecutive_traps = state.consecutive_traps;
        self.backoff_until = state.backoff_until;
        self.last_failure = state.last_failure;
        self.previous_series = state.previous_series;
        self.staleness = state.staleness;
    }

    fn into_state(self, next_scrape: tokio::time::Instant) -> LoopState {
        LoopState {
            key: self.target.key(),
            next_scrape,
            consecutive_traps: self.consecutive_traps,
            backoff_until: self.backoff_until,
            last_failure: self.last_failure,
            previous_series: self.previous_series,
            staleness: self.staleness,
        }
    }

    /// One scrape: call the plugin or fetch the endpoint (or skip it while
    /// backing off), validate, add synthetic series, publish.
    pub async fn scrape_once(&mut self) {
        let plugin = self.job.collector.name().to_string();
        let job_name = self.job.name.clone();
        let instance = self.target.labels.get("instance").cloned().unwrap_or_default();
        let scrape_time = SystemTime::now();
        let started = Instant::now();

        if let Some(until) = self.backoff_until
            && Instant::now() < until
        {
            self.telemetry.inc("wasmon_plugin_scrapes_skipped_total", HELP_SKIPPED, &[("plugin", &plugin)], 1.0);
            let why = self.last_failure.as_ref().map(|f| f.to_string()).unwrap_or_default();
            let message = format!(
                "backing off for {:?} after {} consecutive traps; last: {why}",
                until - Instant::now(),
                self.consecutive_traps
            );
            self.publish(Err(message), Vec::new(), scrape_time, Duration::ZERO);
            return;
        }

        let outcome = self.job.collect(&self.target).await;
        let report = &outcome.report;
        let duration = started.elapsed();
        self.telemetry.observe(
            "wasmon_plugin_scrape_duration_seconds",
            HELP_DURATION,
            &[("plugin", &plugin)],
            report.duration.as_secs_f64(),
        );
        self.telemetry.set_max(
            "wasmon_plugin_memory_high_water_bytes",
            HELP_MEMORY,
            &[("plugin", &plugin)],
            report.memory_high_water as f64,
        );
        if report.log_lines_dropped > 0 {
            self.telemetry.inc(
                "wasmon_plugin_log_lines_dropped_total",
                HELP_LOG_DROPPED,
                &[("plugin", &plugin)],
                report.log_lines_dropped as f64,
            );
        }

        let result = outcome.result.and_then(|families| {
            let series: usize = families.iter().map(|f| f.metrics.len()).sum();
            if self.job.sample_limit > 0 && series > self.job.sample_limit {
                return Err(CallFailure {
                    reason: FailureReason::SampleLimit,
                    message: format!("{series} series returned, over sample_limit {}", self.job.sample_limit),
                });
            }
            check_label_limits(&families, self.job.label_limits)?;
            Ok(families)
        });

        match result {
            Ok(families) => {
                self.consecutive_traps = 0;
                self.backoff_until = None;
                let (families, rejected) = validate::validate(families);
                if rejected.total() > 0 {
                    for (reason, count) in &rejected.counts {
                        self.telemetry.inc(
                            "wasmon_plugin_rejected_series_total",
                            HELP_REJECTED,
                            &[("plugin", &plugin), ("reason", reason.as_label())],
                            *count as f64,
                        );
                    }
                    tracing::warn!(plugin = %plugin, job = %job_name, target = %instance, rejected = rejected.total(),
                        examples = ?rejected.examples.values().collect::<Vec<_>>(), "dropped invalid series from plugin output");
                }
                let series: usize = families.iter().map(|f| f.metrics.len()).sum();
                self.telemetry.set("wasmon_plugin_series_emitted", HELP_SERIES, &[("plugin", &plugin)], series as f64);
                self.telemetry.inc(
                    "wasmon_plugin_series_emitted_total",
                    HELP_SERIES_TOTAL,
                    &[("plugin", &plugin)],
                    series as f64,
                );
                self.telemetry.inc(
                    "wasmon_plugin_scrapes_total",
                    HELP_SCRAPES,
                    &[("plugin", &plugin), ("result", "success")],
                    1.0,
                );
                self.publish(Ok(()), families, scrape_time, duration);
                // Counted once the scrape's samples are visible, so a reader that
                // waits for the count finds them.
                self.telemetry.inc(
                    "wasmon_target_scrapes_total",
                    HELP_TARGET_SCRAPES,
                    &[("job", &job_name), ("instance", &instance), ("result", "success")],
                    1.0,
                );
            }
            Err(failure) => {
                self.telemetry.inc(
                    "wasmon_plugin_scrapes_total",
                    HELP_SCRAPES,
                    &[("plugin", &plugin), ("result", "failure")],
                    1.0,
                );
                self.telemetry.inc(
                    "wasmon_scrape_failures_total",
                    HELP_FAILURES,
                    &[("job", &job_name), ("instance", &instance), ("reason", failure.reason.as_label())],
                    1.0,
                );
                if failure.reason.is_trap() {
                    self.telemetry.inc(
                        "wasmon_plugin_traps_total",
                        HELP_TRAPS,
                        &[("plugin", &plugin), ("reason", failure.reason.as_label())],
                        1.0,
                    );
                    self.consecutive_traps += 1;
                    // First trap: retry at the next interval; then double the wait.
                    let extra = self
                        .job
                        .interval
                        .saturating_mul((1u32 << self.consecutive_traps.min(16)) / 2)
                        .saturating_sub(self.job.interval);
                    let wait = extra.min(MAX_BACKOFF);
                    self.backoff_until = (!wait.is_zero()).then(|| Instant::now() + wait);
                }
                tracing::warn!(plugin = %plugin, job = %job_name, target = %instance, reason = failure.reason.as_label(),
                    error = %failure.message, "scrape failed");
                let message = failure.to_string();
                self.last_failure = Some(failure);
                self.publish(Err(message), Vec::new(), scrape_time, duration);
                self.telemetry.inc(
                    "wasmon_target_scrapes_total",
                    HELP_TARGET_SCRAPES,
                    &[("job", &job_name), ("instance", &instance), ("result", "failure")],
                    1.0,
                );
            }
        }
    }

    fn publish(&mut self, result: Result<(), String>, families: Vec<MetricFamily>, at: SystemTime, duration: Duration) {
        let target_labels: Vec<Label> =
            self.target.labels.iter().map(|(k, v)| Label { name: k.clone(), value: v.clone() }).collect();
        let mut families = attach_target_labels(families, &target_labels, self.job.honor_labels);
        if !self.job.honor_timestamps {
            for metric in families.iter_mut().flat_map(|f| f.metrics.iter_mut()) {
                metric.timestamp_ms = None;
            }
        }
        if !self.job.metric_relabel.is_empty() {
            families = relabel_metrics(families, &self.job.metric_relabel);
        }
        let samples: usize = families.iter().map(|f| f.metrics.len()).sum();
        let series_now: HashSet<u64> =
            families.iter().flat_map(|f| f.metrics.iter().map(move |m| series_hash(&f.name, &m.labels))).collect();
        let added = series_now.difference(&self.previous_series).count();
        if result.is_ok() {
            self.previous_series = series_now;
        }
        let up = if result.is_ok() { 1.0 } else { 0.0 };
        let synthetic = [
            ("up", "1 if the target's last scrape succeeded, 0 otherwise.", up),
            ("scrape_duration_seconds", "Duration of the last scrape in seconds.", duration.as_secs_f64()),
            ("scrape_samples_scraped", "Samples the target returned in its last scrape.", samples as f64),
            ("scrape_series_added", "Series in the last scrape that were not in the one before.", added as f64),
        ];
        for (name, help, value) in synthetic {
            families.push(MetricFamily {
                name: name.into(),
                help: help.into(),
                unit: String::new(),
                kind: MetricKind::Gauge,
                metrics: vec![Metric {
                    labels: target_labels.clone(),
                    value: MetricValue::Gauge(value),
                    timestamp_ms: None,
                }],
            });
        }
        self.store_samples(&families, at);
        self.latest.put(ScrapeSnapshot {
            target: self.target.clone(),
            plugin: self.job.collector.name().to_string(),
            health: if result.is_ok() { Health::Up } else { Health::Down },
            last_error: result.err(),
            last_scrape: Some(at),
            duration,
            interval: self.interval(),
            timeout: if self.target.timeout.is_zero() { self.job.timeout } else { self.target.timeout },
            families,
        });
    }
}

impl TargetLoop {
    /// Write a scrape to the store, with staleness markers for the series
    /// the previous scrape had and this one lacks (all of them when the
    /// scrape failed), as Prometheus' scrape loop does.
    fn store_samples(&mut self, families: &[MetricFamily], at: SystemTime) {
        let Some(store) = &self.store else { return };
        let t = at.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
        let mut samples = Vec::with_capacity(families.iter().map(|f| f.metrics.len()).sum());
        flatten(families, t, &mut samples);
        self.staleness.track(&mut samples, t);
        let report = store.append_batch(&samples);
        if report.rejected() > 0 {
            self.telemetry.inc(
                "wasmon_tsdb_samples_rejected_total",
                "Scraped samples the store refused (out of order, duplicate timestamp).",
                &[("job", &self.job.name)],
                report.rejected() as f64,
            );
            tracing::warn!(job = %self.job.name, target = %self.target.address, %report, "store refused samples");
        }
    }
}

/// Add the target's labels to every series. A label the scrape set itself
/// that clashes with a target label is kept as `exported_<name>`, as
/// Prometheus does with `honor_labels: false`; with `honor_labels: true`
/// the scraped one wins and the target's is not added.
fn attach_target_labels(mut families: Vec<MetricFamily>, target: &[Label], honor_labels: bool) -> Vec<MetricFamily> {
    for family in &mut families {
        for metric in &mut family.metrics {
            if honor_labels {
                let own: Vec<Label> =
                    target.iter().filter(|t| !metric.labels.iter().any(|l| l.name == t.name)).cloned().collect();
                metric.labels.extend(own);
                continue;
            }
            for label in &mut metric.labels {
                if target.iter().any(|t| t.name == label.name) {
                    label.name = format!("exported_{}", label.name);
                }
            }
            metric.labels.extend(target.iter().cloned());
        }
    }
    families
}

/// `metric_relabel_configs`, applied to each series with `__name__` set to
/// its family's name. A histogram or summary is relabeled as one series
/// (its `_bucket`/`_sum`/`_count` parts stay together); a rule that renames
/// `__name__` moves the series to a family of that name.
fn relabel_metrics(families: Vec<MetricFamily>, relabel: &Relabeler) -> Vec<MetricFamily> {
    let mut out: Vec<MetricFamily> = Vec::with_capacity(families.len());
    for family in families {
        let MetricFamily { name, help, unit, kind, metrics } = family;
        let mut kept: BTreeMap<String, Vec<Metric>> = BTreeMap::new();
        for mut metric in metrics {
            let mut set: BTreeMap<String, String> = metric.labels.drain(..).map(|l| (l.name, l.value)).collect();
            set.insert(wasmon_storage::METRIC_NAME.into(), name.clone());
            if relabel.apply_map(&mut set).is_err() {
                continue;
            }
            let Some(new_name) = set.remove(wasmon_storage::METRIC_NAME) else { continue };
            metric.labels = set.into_iter().map(|(name, value)| Label { name, value }).collect();
            kept.entry(new_name).or_default().push(metric);
        }
        for (new_name, metrics) in kept {
            match out.iter_mut().find(|f| f.name == new_name && f.kind == kind) {
                Some(existing) => existing.metrics.extend(metrics),
                None => {
                    out.push(MetricFamily { name: new_name, help: help.clone(), unit: unit.clone(), kind, metrics })
                }
            }
        }
    }
    out
}

/// Prometheus' `label_limit`, `label_name_length_limit` and
/// `label_value_length_limit`: a series over any of them fails the scrape.
fn check_label_limits(families: &[MetricFamily], limits: LabelLimits) -> Result<(), CallFailure> {
    if limits.count == 0 && limits.name_length == 0 && limits.value_length == 0 {
        return Ok(());
    }
    let fail = |message: String| Err(CallFailure { reason: FailureReason::LabelLimit, message });
    for family in families {
        for metric in &family.metrics {
            if limits.count > 0 && metric.labels.len() > limits.count {
                return fail(format!(
                    "series of {} has {} labels, over label_limit {}",
                    family.name,
                    metric.labels.len(),
                    limits.count
                ));
            }
            for label in &metric.labels {
                if limits.name_length > 0 && label.name.len() > limits.name_length {
                    return fail(format!(
                        "label name {:?} of {} is over label_name_length_limit {}",
                        label.name, family.name, limits.name_length
                    ));
                }
                if limits.value_length > 0 && label.value.len() > limits.value_length {
                    return fail(format!(
                        "value of label {:?} of {} is over label_value_length_limit {}",
                        label.name, family.name, limits.value_length
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Identity of a series: its name and its label set, in any order.
pub(crate) fn series_hash(name: &str, labels: &[Label]) -> u64 {
    let mut pairs: Vec<(&str, &str)> = labels.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect();
    pairs.sort_unstable();
    let mut h = DefaultHasher::new();
    name.hash(&mut h);
    pairs.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_in_a_collect_fails_that_collect_alone() {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let (panicked, after) = runtime.block_on(async {
            let panicked = catch_panic(async {
                tokio::task::yield_now().await;
                panic!("a host bug at {}", 42)
            })
            .await;
            (panicked, catch_panic(async { 7 }).await)
        });
        assert_eq!(panicked, Err("panicked: a host bug at 42".to_string()));
        assert_eq!(after, Ok(7), "the task goes on");
    }

    #[test]
    fn spreads_targets_within_the_interval() {
        let interval = Duration::from_secs(15);
        let offsets: HashSet<Duration> =
            (0..50).map(|i| spread_offset("node", &format!("host{i}:9100"), interval)).collect();
        assert!(offsets.iter().all(|o| *o < interval));
        assert!(offsets.len() > 40, "offsets should differ: {}", offsets.len());
        assert_eq!(spread_offset("a", "b", interval), spread_offset("a", "b", interval));
    }

    #[test]
    fn clashing_labels_become_exported() {
        let families = vec![MetricFamily {
            name: "x".into(),
            help: String::new(),
            unit: String::new(),
            kind: MetricKind::Gauge,
            metrics: vec![Metric {
                labels: vec![Label { name: "job".into(), value: "inner".into() }],
                value: MetricValue::Gauge(1.0),
                timestamp_ms: None,
            }],
        }];
        let target = vec![
            Label { name: "job".into(), value: "node".into() },
            Label { name: "instance".into(), value: "h:1".into() },
        ];
        let out = attach_target_labels(families, &target, false);
        let names: Vec<_> = out[0].metrics[0].labels.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect();
        assert_eq!(names, vec![("exported_job", "inner"), ("job", "node"), ("instance", "h:1")]);
    }
}
