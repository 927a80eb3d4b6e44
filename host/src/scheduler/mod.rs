//! Per-target scrape loops: interval, spread over the interval, timeout,
//! backoff after traps, output validation, and the synthetic series
//! Prometheus writes for every scrape (`up`, `scrape_duration_seconds`, ...).

pub mod validate;

use crate::ingest::{StalenessTracker, flatten};
use crate::runtime::model::{Label, Metric, MetricFamily, MetricKind, MetricValue, Target};
use crate::runtime::{CallFailure, FailureReason, LoadedPlugin, Sandbox};
use crate::telemetry::Telemetry;
use std::collections::{BTreeMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};
use tokio::task::JoinHandle;

/// The longest a target waits between attempts after repeated traps.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// A job ready to run: its plugin, sandbox and targets.
#[derive(Clone)]
pub struct Job {
    pub name: String,
    pub plugin: LoadedPlugin,
    pub sandbox: Sandbox,
    pub config_json: Arc<str>,
    pub interval: Duration,
    pub timeout: Duration,
    pub sample_limit: usize,
    pub params: Vec<(String, String)>,
    pub targets: Vec<TargetSpec>,
}

/// One target and its labels (`job`, `instance` and static labels).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TargetSpec {
    pub address: String,
    pub labels: BTreeMap<String, String>,
}

impl Job {
    /// What the plugin is told about one of this job's targets.
    pub fn plugin_target(&self, spec: &TargetSpec) -> Target {
        let label = |(k, v): (&String, &String)| Label { name: k.clone(), value: v.clone() };
        Target {
            address: spec.address.clone(),
            labels: spec.labels.iter().map(label).collect(),
            params: self.params.iter().map(|(k, v)| label((k, v))).collect(),
        }
    }
}

impl TargetSpec {
    pub fn new(job: &str, address: &str, extra: &BTreeMap<String, String>) -> Self {
        let mut labels = extra.clone();
        labels.insert("job".into(), job.into());
        labels.entry("instance".into()).or_insert_with(|| address.into());
        Self { address: address.into(), labels }
    }
    pub fn key(&self) -> TargetKey {
        TargetKey { job: self.labels.get("job").cloned().unwrap_or_default(), address: self.address.clone() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TargetKey {
    pub job: String,
    pub address: String,
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
    pub fn all(&self) -> Vec<Arc<ScrapeSnapshot>> {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }
    pub fn get(&self, job: &str, address: &str) -> Option<Arc<ScrapeSnapshot>> {
        let key = TargetKey { job: job.into(), address: address.into() };
        self.inner.read().unwrap_or_else(|p| p.into_inner()).get(&key).cloned()
    }
}

/// Runs every target's loop until dropped.
pub struct Scheduler {
    handles: Vec<JoinHandle<()>>,
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        for h in &self.handles {
            h.abort();
        }
    }
}

impl Scheduler {
    /// Start one loop per target. Must be called inside a tokio runtime.
    pub fn start(
        jobs: Vec<Job>,
        latest: Arc<LatestScrapes>,
        telemetry: Arc<Telemetry>,
        store: Option<Arc<wasmon_storage::Db>>,
    ) -> Self {
        let mut handles = Vec::new();
        for job in jobs {
            let job = Arc::new(job);
            for target in &job.targets {
                // Register the target as unknown until its first scrape.
                latest.put(ScrapeSnapshot {
                    target: target.clone(),
                    plugin: job.plugin.name.to_string(),
                    health: Health::Unknown,
                    last_error: None,
                    last_scrape: None,
                    duration: Duration::ZERO,
                    interval: job.interval,
                    timeout: job.timeout,
                    families: Vec::new(),
                });
                let mut looper = TargetLoop::new(job.clone(), target.clone(), latest.clone(), telemetry.clone());
                looper.store = store.clone();
                handles.push(tokio::spawn(looper.run()));
            }
        }
        Self { handles }
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
        let plugin = job.plugin.name.to_string();
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

    async fn run(mut self) {
        let offset = spread_offset(&self.job.name, &self.target.address, self.job.interval);
        let start = tokio::time::Instant::now() + offset;
        let mut ticker = tokio::time::interval_at(start, self.job.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            ticker.tick().await;
            self.scrape_once().await;
        }
    }

    /// One scrape: call the plugin (or skip it while backing off), validate,
    /// add synthetic series, publish.
    pub async fn scrape_once(&mut self) {
        let plugin = self.job.plugin.name.to_string();
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

        let target = self.job.plugin_target(&self.target);
        let job = self.job.clone();
        let call = tokio::task::spawn_blocking(move || job.plugin.collect(&job.sandbox, &target, &job.config_json));
        // The epoch deadline stops wasm at the timeout; this outer timeout
        // only matters if a host call hangs.
        let outcome = match tokio::time::timeout(self.job.timeout + Duration::from_secs(2), call).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(join_error)) => crate::runtime::CallOutcome {
                result: Err(CallFailure {
                    reason: FailureReason::Trap,
                    message: format!("host task failed: {join_error}"),
                }),
                report: Default::default(),
            },
            Err(_) => crate::runtime::CallOutcome {
                result: Err(CallFailure {
                    reason: FailureReason::Timeout,
                    message: "a host call did not return before the scrape timeout".into(),
                }),
                report: Default::default(),
            },
        };
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
                Err(CallFailure {
                    reason: FailureReason::SampleLimit,
                    message: format!("{series} series returned, over sample_limit {}", self.job.sample_limit),
                })
            } else {
                Ok(families)
            }
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
                self.telemetry.inc(
                    "wasmon_target_scrapes_total",
                    HELP_TARGET_SCRAPES,
                    &[("job", &job_name), ("instance", &instance), ("result", "success")],
                    1.0,
                );
                self.publish(Ok(()), families, scrape_time, duration);
            }
            Err(failure) => {
                self.telemetry.inc(
                    "wasmon_plugin_scrapes_total",
                    HELP_SCRAPES,
                    &[("plugin", &plugin), ("result", "failure")],
                    1.0,
                );
                self.telemetry.inc(
                    "wasmon_target_scrapes_total",
                    HELP_TARGET_SCRAPES,
                    &[("job", &job_name), ("instance", &instance), ("result", "failure")],
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
            }
        }
    }

    fn publish(&mut self, result: Result<(), String>, families: Vec<MetricFamily>, at: SystemTime, duration: Duration) {
        let target_labels: Vec<Label> =
            self.target.labels.iter().map(|(k, v)| Label { name: k.clone(), value: v.clone() }).collect();
        let mut families = attach_target_labels(families, &target_labels);
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
            plugin: self.job.plugin.name.to_string(),
            health: if result.is_ok() { Health::Up } else { Health::Down },
            last_error: result.err(),
            last_scrape: Some(at),
            duration,
            interval: self.job.interval,
            timeout: self.job.timeout,
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

/// Add the target's labels to every series. A label the plugin set itself
/// that clashes with a target label is kept as `exported_<name>`, as
/// Prometheus does with `honor_labels: false`.
fn attach_target_labels(mut families: Vec<MetricFamily>, target: &[Label]) -> Vec<MetricFamily> {
    for family in &mut families {
        for metric in &mut family.metrics {
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
        let out = attach_target_labels(families, &target);
        let names: Vec<_> = out[0].metrics[0].labels.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect();
        assert_eq!(names, vec![("exported_job", "inner"), ("job", "node"), ("instance", "h:1")]);
    }
}
