//! The agent's logs pipeline: the `logs:` section turned into a running
//! `wasmon_logs` pipeline with its processors (Wasm `log-processor` plugins
//! or the native JSON processor), pod labels from the API server, and
//! metrics: the processors' own families reach `/metrics` and the store as
//! a pseudo-target `job="logs"`, the pipeline's counters as `wasmon_logs_*`.
//!
//! `start` and `LogsHandle::shutdown` can be called again on a config
//! reload: read positions live in the checkpoint file, which `shutdown`
//! writes, so the new pipeline resumes where the old one stopped. Two
//! pipelines never share a checkpoint file (`start` refuses).

use crate::config::{Config, LogProcessorConfig, LogsConfig, LogsKubernetesConfig, NativeProcessor};
use crate::ingest::{StalenessTracker, flatten};
use crate::runtime::Runtime;
use crate::runtime::log_processor::{self, LogProcessorLimits, WasmLogProcessor, WasmProcessorShared};
use crate::runtime::model::{Label, Metric, MetricFamily, MetricKind, MetricValue};
use crate::scheduler::{Health, LatestScrapes, ScrapeSnapshot, Sinks, TargetSpec};
use crate::telemetry::Telemetry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};
use tokio::task::JoinHandle;
use wasmon_logs::processor::JsonBodyMetrics;
use wasmon_logs::{JsonBodyProcessor, LogPipeline, PipelineHandle, PodMetadataSource, PodRef, Processor};

/// The `job` and `instance` of the pseudo-target holding the processors' metrics.
pub const LOGS_JOB: &str = "logs";

/// Checkpoint files of the pipelines running in this process.
static ACTIVE_CHECKPOINTS: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

/// A running logs pipeline.
pub struct LogsHandle {
    pipeline: PipelineHandle,
    checkpoint: PathBuf,
    exporter: Arc<Exporter>,
    tasks: Vec<JoinHandle<()>>,
    grace: Duration,
}

impl std::fmt::Debug for LogsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogsHandle").field("checkpoint", &self.checkpoint).finish_non_exhaustive()
    }
}

/// Start the `logs:` pipeline of `config`, if it has one: load and check
/// each processor plugin (signature first), start the pod watch, the
/// pipeline and the metrics export. Inside a tokio (multi-thread) runtime.
/// Returns every problem at once.
pub fn start(config: &Config, runtime: &Runtime, sinks: &Sinks) -> Result<Option<LogsHandle>, Vec<String>> {
    let Some(logs) = &config.logs else { return Ok(None) };
    let checkpoint = logs.checkpoint.path.clone();
    {
        let mut active = ACTIVE_CHECKPOINTS.lock().unwrap_or_else(|p| p.into_inner());
        if !active.get_or_insert_with(HashSet::new).insert(checkpoint.clone()) {
            return Err(vec![format!(
                "logs.checkpoint.path {}: a logs pipeline of this agent is still running on it; shut it down first",
                checkpoint.display()
            )]);
        }
    }
    let release = || {
        if let Some(set) = ACTIVE_CHECKPOINTS.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            set.remove(&checkpoint);
        }
    };
    let (processors, metered) = match build_processors(config, logs, runtime) {
        Ok(built) => built,
        Err(problems) => {
            release();
            return Err(problems);
        }
    };
    let mut tasks = Vec::new();
    let pod_metadata: Option<Arc<dyn PodMetadataSource>> = logs.kubernetes.as_ref().map(|k| {
        let (watch, task) = PodWatch::start(k);
        tasks.push(task);
        watch as Arc<dyn PodMetadataSource>
    });
    let pipeline = match LogPipeline::start(logs.pipeline(), processors, pod_metadata) {
        Ok(p) => p,
        Err(e) => {
            for t in &tasks {
                t.abort();
            }
            release();
            return Err(vec![e.to_string()]);
        }
    };
    let exporter = Arc::new(Exporter {
        processors: metered,
        tailer: pipeline.tailer_metrics.clone(),
        sinks: pipeline.sink_metrics.clone(),
        latest: sinks.latest.clone(),
        telemetry: sinks.telemetry.clone(),
        store: sinks.store.clone(),
        staleness: Mutex::new(StalenessTracker::default()),
        target: TargetSpec::new(LOGS_JOB, LOGS_JOB, &BTreeMap::new()),
        interval: logs.metrics_interval.map(|d| d.0).unwrap_or(config.global.scrape_interval.0),
    });
    let ticking = exporter.clone();
    tasks.push(tokio::spawn(async move {
        let mut tick = tokio::time::interval(ticking.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let e = ticking.clone();
            if tokio::task::spawn_blocking(move || e.export()).await.is_err() {
                return;
            }
        }
    }));
    tracing::info!(sources = logs.sources.len(), processors = logs.processors.len(), sinks = logs.sinks.len(),
        checkpoint = %checkpoint.display(), "logs pipeline started");
    Ok(Some(LogsHandle { pipeline, checkpoint, exporter, tasks, grace: logs.shutdown_grace.0 }))
}

/// Load and check every processor of `config`'s `logs:` section without
/// starting anything: what `wasmon check config` and a reload do first.
pub fn check(config: &Config, runtime: &Runtime) -> Result<(), Vec<String>> {
    match &config.logs {
        Some(logs) => build_processors(config, logs, runtime).map(|_| ()),
        None => Ok(()),
    }
}

impl LogsHandle {
    /// The config's `logs.shutdown_grace`, for callers without their own.
    pub fn default_grace(&self) -> Duration {
        self.grace
    }

    pub fn pipeline(&self) -> &PipelineHandle {
        &self.pipeline
    }

    /// Stop reading, let the sinks finish for up to `grace`, write the
    /// checkpoint, export the metrics one last time and take the
    /// pseudo-target off `/metrics`.
    pub async fn shutdown(self, grace: Duration) -> Result<(), String> {
        for t in &self.tasks {
            t.abort();
        }
        let result = self.pipeline.shutdown(grace).await.map_err(|e| e.to_string());
        let exporter = self.exporter.clone();
        let _ = tokio::task::spawn_blocking(move || {
            exporter.export();
            exporter.latest.remove(&exporter.target.key());
        })
        .await;
        if let Some(set) = ACTIVE_CHECKPOINTS.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            set.remove(&self.checkpoint);
        }
        result
    }
}

/// A processor whose metrics the agent reads.
enum Metered {
    Wasm(Arc<WasmProcessorShared>),
    NativeJson { name: String, metrics: Arc<JsonBodyMetrics> },
}

/// The native JSON processor under the name the config gives it.
struct NamedJson {
    name: String,
    inner: JsonBodyProcessor,
}

impl Processor for NamedJson {
    fn name(&self) -> &str {
        &self.name
    }
    fn process(
        &mut self,
        batch: Vec<wasmon_logs::LogRecord>,
    ) -> Result<Vec<wasmon_logs::LogRecord>, wasmon_logs::ProcessorError> {
        self.inner.process(batch)
    }
}

/// The pipeline's processors, and the handles to read their metrics.
type BuiltProcessors = (Vec<Box<dyn Processor>>, Vec<Metered>);

fn build_processors(config: &Config, logs: &LogsConfig, runtime: &Runtime) -> Result<BuiltProcessors, Vec<String>> {
    let mut problems = Vec::new();
    let mut processors: Vec<Box<dyn Processor>> = Vec::new();
    let mut metered = Vec::new();
    for (i, p) in logs.processors.iter().enumerate() {
        let name = p.display_name();
        let at = format!("logs.processors[{i}] ({name})");
        match (&p.plugin, p.native) {
            (Some(plugin), _) => match wasm_processor(config, runtime, p, plugin, &name) {
                Ok(w) => {
                    metered.push(Metered::Wasm(w.shared()));
                    processors.push(Box::new(w));
                }
                Err(e) => problems.push(format!("{at}: {e}")),
            },
            (None, Some(NativeProcessor::Json)) => match p.json_body_config() {
                Ok(cfg) => {
                    let inner = JsonBodyProcessor::new(cfg);
                    metered.push(Metered::NativeJson { name: name.clone(), metrics: inner.metrics.clone() });
                    processors.push(Box::new(NamedJson { name, inner }));
                }
                Err(e) => problems.push(format!("{at}.config: {e}")),
            },
            (None, None) => problems.push(format!("{at}: needs plugin or native")),
        }
    }
    if problems.is_empty() { Ok((processors, metered)) } else { Err(problems) }
}

/// Resolve, verify, load and check a plugin processor, and start its instance.
fn wasm_processor(
    config: &Config,
    runtime: &Runtime,
    p: &LogProcessorConfig,
    plugin: &str,
    name: &str,
) -> Result<WasmLogProcessor, String> {
    let path = crate::plugins::resolve(plugin, &config.plugins.directories)?;
    crate::signing::check_plugin(&path, &config.plugins)?;
    let loaded = runtime.load_log_processor(plugin, &path).map_err(|e| e.to_string())?;
    let limits = LogProcessorLimits {
        memory_bytes: p.limits.memory.0,
        timeout: p.limits.timeout.0,
        cpu: p.limits.cpu.map(|c| c.0).unwrap_or(p.limits.timeout.0),
        log_lines: p.limits.log_lines,
    };
    let config_json = p.config_json()?;
    let info = log_processor::check(&loaded, limits, &config_json).map_err(|e| format!("plugin {plugin}: {e}"))?;
    tracing::info!(processor = %name, plugin = %plugin, path = %path.display(), version = %info.version,
        "log processor loaded");
    WasmLogProcessor::start(name, loaded, limits, config_json)
}

/// Reads every processor's metrics and the pipeline's counters on an interval.
struct Exporter {
    processors: Vec<Metered>,
    tailer: Arc<wasmon_logs::TailerMetrics>,
    sinks: Vec<(String, Arc<wasmon_logs::SinkMetrics>)>,
    latest: Arc<LatestScrapes>,
    telemetry: Arc<Telemetry>,
    store: Option<Arc<wasmon_storage::Db>>,
    staleness: Mutex<StalenessTracker>,
    target: TargetSpec,
    interval: Duration,
}

impl Exporter {
    /// Blocking: calls into the plugins.
    fn export(&self) {
        let started = Instant::now();
        let at = SystemTime::now();
        let mut families: Vec<MetricFamily> = Vec::new();
        for p in &self.processors {
            match p {
                Metered::Wasm(shared) => {
                    let label = Label { name: "processor".into(), value: shared.name.clone() };
                    families.extend(shared.metrics().into_iter().map(|mut f| {
                        for m in &mut f.metrics {
                            m.labels.retain(|l| l.name != "processor");
                            m.labels.push(label.clone());
                        }
                        f
                    }));
                    self.processor_telemetry(shared);
                }
                Metered::NativeJson { name, metrics } => {
                    let f = MetricFamily {
                        name: "wasmon_logs_native_json_records_total".into(),
                        help: "Records the native JSON processor saw, by whether the body was a JSON object.".into(),
                        unit: String::new(),
                        kind: MetricKind::Counter,
                        metrics: [
                            ("parsed", metrics.parsed.load(Relaxed)),
                            ("not_json", metrics.not_json.load(Relaxed)),
                        ]
                        .into_iter()
                        .map(|(result, n)| Metric {
                            labels: vec![
                                Label { name: "processor".into(), value: name.clone() },
                                Label { name: "result".into(), value: result.into() },
                            ],
                            value: MetricValue::Counter(n as f64),
                            timestamp_ms: None,
                        })
                        .collect(),
                    };
                    families.push(f);
                }
            }
        }
        let families = merge_families(families, &self.target);
        if let Some(store) = &self.store {
            let t = at.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
            let mut samples = Vec::new();
            flatten(&families, t, &mut samples);
            self.staleness.lock().unwrap_or_else(|p| p.into_inner()).track(&mut samples, t);
            let report = store.append_batch(&samples);
            if report.rejected() > 0 {
                tracing::warn!(%report, "store refused log-derived samples");
            }
        }
        self.latest.put(ScrapeSnapshot {
            target: self.target.clone(),
            plugin: "logs".into(),
            health: Health::Up,
            last_error: None,
            last_scrape: Some(at),
            duration: started.elapsed(),
            interval: self.interval,
            timeout: self.interval,
            families,
        });
        self.pipeline_telemetry();
    }

    fn processor_telemetry(&self, shared: &WasmProcessorShared) {
        let t = &self.telemetry;
        let s = &shared.stats;
        let p = [("processor", shared.name.as_str())];
        t.set_counter(
            "wasmon_logs_processor_records_in_total",
            "Records passed to a log processor.",
            &p,
            s.records_in.load(Relaxed) as f64,
        );
        t.set_counter(
            "wasmon_logs_processor_records_out_total",
            "Records a log processor passed on (unprocessed ones included).",
            &p,
            s.records_out.load(Relaxed) as f64,
        );
        t.set_counter(
            "wasmon_logs_processor_instances_started_total",
            "Instances of a log-processor plugin started (the first one and every restart).",
            &p,
            s.instances_started.load(Relaxed) as f64,
        );
        t.set_counter(
            "wasmon_logs_processor_cpu_seconds_total",
            "CPU time spent in a log-processor plugin's process calls.",
            &p,
            s.cpu_ns.load(Relaxed) as f64 / 1e9,
        );
        t.set_counter(
            "wasmon_logs_processor_invalid_utf8_bodies_total",
            "Bodies a log processor returned that were not UTF-8 (stored with U+FFFD).",
            &p,
            s.invalid_utf8_bodies.load(Relaxed) as f64,
        );
        t.set(
            "wasmon_logs_processor_memory_high_water_bytes",
            "Largest linear memory of a log-processor instance.",
            &p,
            s.memory_high_water.load(Relaxed) as f64,
        );
        for (reason, n) in s.unprocessed() {
            t.set_counter(
                "wasmon_logs_processor_unprocessed_records_total",
                "Records a log processor failed on and the pipeline forwarded unprocessed, by reason.",
                &[("processor", &shared.name), ("reason", reason)],
                n as f64,
            );
        }
        for (reason, n) in s.failures() {
            t.set_counter(
                "wasmon_logs_processor_failures_total",
                "Failed calls of a log-processor plugin, by reason (traps and limits restart the instance).",
                &[("processor", &shared.name), ("reason", reason)],
                n as f64,
            );
        }
    }

    fn pipeline_telemetry(&self) {
        let t = &self.telemetry;
        let s = self.tailer.snapshot();
        t.set("wasmon_logs_files_open", "Log files open now.", &[], s.files_open as f64);
        // A slice, not an array of a counted length: adding a counter is one line.
        let counters: &[(&str, &str, u64)] = &[
            ("wasmon_logs_files_opened_total", "Log files opened.", s.files_opened),
            ("wasmon_logs_files_resumed_total", "Log files resumed from a checkpoint.", s.files_resumed),
            ("wasmon_logs_read_bytes_total", "Bytes read from log files.", s.bytes_read),
            ("wasmon_logs_lines_read_total", "Lines read from log files.", s.lines_read),
            ("wasmon_logs_records_total", "Records framed from the lines read.", s.records_emitted),
            ("wasmon_logs_batches_total", "Batches sent from the tailer to the processors and sinks.", s.batches_sent),
            (
                "wasmon_logs_backpressure_waits_total",
                "Times the tailer stopped reading because the sinks were behind.",
                s.backpressure_waits,
            ),
            (
                "wasmon_logs_scans_total",
                "Expansions of the source globs (every poll_interval, and after file events other than writes).",
                s.scans,
            ),
            ("wasmon_logs_rotations_total", "Log files rotated away (rename + create).", s.rotations),
            ("wasmon_logs_truncations_total", "Log files truncated (copytruncate).", s.truncations),
            ("wasmon_logs_files_deleted_total", "Open log files deleted.", s.files_deleted),
            (
                "wasmon_logs_invalid_utf8_lines_total",
                "Lines with invalid UTF-8 (replaced by U+FFFD).",
                s.invalid_utf8_lines,
            ),
            ("wasmon_logs_malformed_lines_total", "Lines not in the source's format.", s.malformed_lines),
            ("wasmon_logs_long_lines_split_total", "Pieces cut from lines over max_line_bytes.", s.long_lines_split),
            ("wasmon_logs_long_lines_truncated_total", "Lines truncated at max_line_bytes.", s.long_lines_truncated),
            ("wasmon_logs_partial_lines_joined_total", "CRI partial lines joined.", s.partial_lines_joined),
            ("wasmon_logs_multiline_limited_total", "Multiline events cut at their limits.", s.multiline_limited),
            ("wasmon_logs_read_errors_total", "Errors reading log files.", s.read_errors),
            ("wasmon_logs_checkpoint_write_errors_total", "Failed checkpoint writes.", s.checkpoint_write_errors),
            (
                "wasmon_logs_processor_batch_failures_total",
                "Batches a processor failed on (forwarded unprocessed).",
                s.processor_failures,
            ),
        ];
        for &(name, help, v) in counters {
            t.set_counter(name, help, &[], v as f64);
        }
        for (sink, m) in &self.sinks {
            let s = m.snapshot();
            let l = [("sink", sink.as_str())];
            t.set_counter(
                "wasmon_logs_sink_records_sent_total",
                "Records a sink delivered.",
                &l,
                s.records_sent as f64,
            );
            t.set_counter(
                "wasmon_logs_sink_bytes_sent_total",
                "Request bytes a sink delivered.",
                &l,
                s.bytes_sent as f64,
            );
            t.set_counter("wasmon_logs_sink_requests_total", "Requests a sink made.", &l, s.requests as f64);
            t.set_counter(
                "wasmon_logs_sink_request_failures_total",
                "Sink requests that failed and are retried.",
                &l,
                s.request_failures as f64,
            );
            t.set_counter("wasmon_logs_sink_retries_total", "Sink retries.", &l, s.retries as f64);
            for (reason, n) in [
                ("rejected", s.dropped_rejected),
                ("retries_exhausted", s.dropped_retries_exhausted),
                ("unencodable", s.dropped_unencodable),
            ] {
                t.set_counter(
                    "wasmon_logs_sink_records_dropped_total",
                    "Records a sink gave up on, by reason.",
                    &[("sink", sink), ("reason", reason)],
                    n as f64,
                );
            }
            t.set("wasmon_logs_sink_retrying", "1 while a sink waits to retry a batch.", &l, s.retrying as f64);
        }
    }
}

/// Families of several processors under one name merged into one (two
/// processors may export the same family), with the pseudo-target's labels.
fn merge_families(families: Vec<MetricFamily>, target: &TargetSpec) -> Vec<MetricFamily> {
    let target_labels: Vec<Label> =
        target.labels.iter().map(|(k, v)| Label { name: k.clone(), value: v.clone() }).collect();
    let mut by_name: BTreeMap<String, MetricFamily> = BTreeMap::new();
    for mut f in families {
        for m in &mut f.metrics {
            m.labels.retain(|l| !target_labels.iter().any(|t| t.name == l.name));
            m.labels.extend(target_labels.iter().cloned());
        }
        match by_name.get_mut(&f.name) {
            Some(existing) if existing.kind == f.kind => existing.metrics.append(&mut f.metrics),
            Some(_) => tracing::warn!(family = %f.name, "two log processors export one family with different types"),
            None => {
                by_name.insert(f.name.clone(), f);
            }
        }
    }
    by_name.into_values().collect()
}

/// How long a deleted pod's labels are kept: its log file is usually read
/// to the end after the pod is gone.
const DELETED_POD_GRACE: Duration = Duration::from_secs(600);

/// Pod labels (and chosen annotations) of the pods on this node, from a
/// watch on the API server restricted to `spec.nodeName=<node>`; what the
/// tailer adds to files of those pods.
pub struct PodWatch {
    pods: RwLock<HashMap<String, PodEntry>>,
    labels: bool,
    annotations: Vec<String>,
}

struct PodEntry {
    attributes: Vec<(String, String)>,
    deleted_at: Option<Instant>,
}

impl std::fmt::Debug for PodWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodWatch").field("pods", &self.len()).finish()
    }
}

impl PodMetadataSource for PodWatch {
    fn pod_attributes(&self, pod: &PodRef) -> Vec<(String, String)> {
        let pods = self.pods.read().unwrap_or_else(|p| p.into_inner());
        pods.get(&pod.uid).map(|e| e.attributes.clone()).unwrap_or_default()
    }
}

impl PodWatch {
    /// Start watching (inside a tokio runtime); the task retries a client
    /// it cannot build and re-lists broken watches.
    pub fn start(config: &LogsKubernetesConfig) -> (Arc<Self>, JoinHandle<()>) {
        let watch = Arc::new(Self {
            pods: RwLock::default(),
            labels: config.pod_labels,
            annotations: config.pod_annotations.clone(),
        });
        let client_config = crate::kubernetes::client_config(
            config.api_server.as_ref(),
            config.kubeconfig_file.as_ref(),
            config.tls_config.as_ref(),
            config.authorization.as_ref(),
            config.bearer_token_file.as_ref(),
        );
        let node = crate::kubernetes::expand_env(&config.node_name);
        let task = tokio::spawn(watch.clone().run(client_config, node));
        (watch, task)
    }

    /// Pods known (deleted ones within their grace included).
    pub fn len(&self) -> usize {
        self.pods.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    async fn run(self: Arc<Self>, client_config: wasmon_discovery::kubernetes::ClientConfig, node: String) {
        use wasmon_discovery::kubernetes::{FeedOptions, FeedResource, ObjectEvent, build_client, watch_objects};
        if node.is_empty() {
            tracing::warn!("logs.kubernetes.node_name is empty after expanding the environment; pod labels are off");
            return;
        }
        let client = loop {
            match build_client(&client_config).await {
                Ok(c) => break c,
                Err(e) => {
                    tracing::warn!(error = %e, "logs: cannot reach the Kubernetes API for pod labels; retrying in 10s");
                    tokio::time::sleep(Duration::from_secs(10)).await;
                }
            }
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<ObjectEvent>>(16);
        let options = FeedOptions { field_selector: Some(format!("spec.nodeName={node}")), ..Default::default() };
        let pods = vec![FeedResource::new("", "v1", "pods", "Pod", true)];
        let feed = tokio::spawn(watch_objects(client, pods, options, tx));
        while let Some(batch) = rx.recv().await {
            self.apply(&batch);
        }
        feed.abort();
    }

    fn apply(&self, batch: &[wasmon_discovery::kubernetes::ObjectEvent]) {
        use wasmon_discovery::kubernetes::ObjectEvent;
        let mut pods = self.pods.write().unwrap_or_else(|p| p.into_inner());
        for event in batch {
            let Ok(obj) = serde_json::from_str::<serde_json::Value>(event.object()) else { continue };
            let meta = &obj["metadata"];
            let Some(uid) = meta["uid"].as_str() else { continue };
            match event {
                ObjectEvent::Applied { .. } => {
                    let mut attributes = Vec::new();
                    if self.labels
                        && let Some(labels) = meta["labels"].as_object()
                    {
                        for (k, v) in labels {
                            attributes.push((format!("k8s.pod.label.{k}"), v.as_str().unwrap_or_default().to_string()));
                        }
                    }
                    if let Some(annotations) = meta["annotations"].as_object() {
                        for name in &self.annotations {
                            if let Some(v) = annotations.get(name).and_then(|v| v.as_str()) {
                                attributes.push((format!("k8s.pod.annotation.{name}"), v.to_string()));
                            }
                        }
                    }
                    attributes.sort();
                    pods.insert(uid.to_string(), PodEntry { attributes, deleted_at: None });
                }
                ObjectEvent::Deleted { .. } => {
                    if let Some(e) = pods.get_mut(uid) {
                        e.deleted_at.get_or_insert_with(Instant::now);
                    }
                }
            }
        }
        pods.retain(|_, e| e.deleted_at.is_none_or(|at| at.elapsed() < DELETED_POD_GRACE));
    }
}

/// [`start`] for `wasmon run`: with the agent's sinks, off the async
/// threads (loading plugins compiles and instantiates them).
pub async fn start_for_agent(
    config: &Config,
    runtime: &Arc<Runtime>,
    state: &crate::api::AppState,
    store: &Option<Arc<wasmon_storage::Db>>,
) -> anyhow::Result<Option<LogsHandle>> {
    if config.logs.is_none() {
        return Ok(None);
    }
    let sinks = Sinks {
        latest: state.latest.clone(),
        telemetry: state.telemetry.clone(),
        store: store.clone(),
        discovered: state.discovered.clone(),
    };
    let (config, runtime) = (config.clone(), runtime.clone());
    tokio::task::spawn_blocking(move || start(&config, &runtime, &sinks))
        .await?
        .map_err(|problems| anyhow::anyhow!("cannot start the logs pipeline:\n  {}", problems.join("\n  ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn family(name: &str, kind: MetricKind, processor: &str, value: f64) -> MetricFamily {
        MetricFamily {
            name: name.into(),
            help: String::new(),
            unit: String::new(),
            kind,
            metrics: vec![Metric {
                labels: vec![
                    Label { name: "processor".into(), value: processor.into() },
                    // A plugin cannot pose as another target.
                    Label { name: "job".into(), value: "evil".into() },
                ],
                value: MetricValue::Counter(value),
                timestamp_ms: None,
            }],
        }
    }

    #[test]
    fn families_of_two_processors_merge_under_the_logs_target() {
        let target = TargetSpec::new(LOGS_JOB, LOGS_JOB, &BTreeMap::new());
        let merged = merge_families(
            vec![
                family("a_total", MetricKind::Counter, "p1", 1.0),
                family("a_total", MetricKind::Counter, "p2", 2.0),
                family("a_total", MetricKind::Gauge, "p3", 3.0),
                family("b_total", MetricKind::Counter, "p1", 4.0),
            ],
            &target,
        );
        assert_eq!(merged.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["a_total", "b_total"]);
        assert_eq!(merged[0].metrics.len(), 2, "the gauge of the same name is left out");
        for m in merged.iter().flat_map(|f| &f.metrics) {
            let jobs: Vec<&str> = m.labels.iter().filter(|l| l.name == "job").map(|l| l.value.as_str()).collect();
            assert_eq!(jobs, ["logs"]);
            assert!(m.labels.iter().any(|l| l.name == "instance" && l.value == "logs"));
        }
    }
}
