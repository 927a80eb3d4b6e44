//! The agent's own metrics (`wasmon_*` and `process_*`), served on `/metrics`.

use crate::runtime::model::{Bucket, HistogramValue, Label, Metric, MetricFamily, MetricKind, MetricValue};
use std::collections::BTreeMap;
use std::sync::Mutex;

type Labels = Vec<(String, String)>;

/// Buckets for plugin call durations, in seconds.
const DURATION_BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

struct Series {
    help: &'static str,
    kind: MetricKind,
    values: BTreeMap<Labels, Value>,
}

enum Value {
    Scalar(f64),
    Histogram { buckets: Vec<u64>, sum: f64, count: u64 },
}

/// A small registry: counters, gauges and histograms keyed by name + labels.
#[derive(Default)]
pub struct Telemetry {
    series: Mutex<BTreeMap<&'static str, Series>>,
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
}

impl Telemetry {
    fn with(
        &self,
        name: &'static str,
        help: &'static str,
        kind: MetricKind,
        f: impl FnOnce(&mut BTreeMap<Labels, Value>),
    ) {
        let mut all = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let series = all.entry(name).or_insert_with(|| Series { help, kind, values: BTreeMap::new() });
        f(&mut series.values);
    }

    /// Add to a counter.
    pub fn inc(&self, name: &'static str, help: &'static str, pairs: &[(&str, &str)], by: f64) {
        self.with(name, help, MetricKind::Counter, |values| {
            if let Value::Scalar(v) = values.entry(labels(pairs)).or_insert(Value::Scalar(0.0)) {
                *v += by;
            }
        });
    }

    /// Set a counter to a total kept elsewhere (e.g. by the built-in
    /// notifier), so it is exported with the counter type.
    pub fn set_counter(&self, name: &'static str, help: &'static str, pairs: &[(&str, &str)], total: f64) {
        self.with(name, help, MetricKind::Counter, |values| {
            values.insert(labels(pairs), Value::Scalar(total));
        });
    }

    /// Make sure a counter exists (at 0) so dashboards see it before the first event.
    pub fn touch(&self, name: &'static str, help: &'static str, pairs: &[(&str, &str)]) {
        self.inc(name, help, pairs, 0.0);
    }

    /// Set a gauge.
    pub fn set(&self, name: &'static str, help: &'static str, pairs: &[(&str, &str)], value: f64) {
        self.with(name, help, MetricKind::Gauge, |values| {
            values.insert(labels(pairs), Value::Scalar(value));
        });
    }

    /// Raise a gauge to `value` if it is higher (high-water marks).
    pub fn set_max(&self, name: &'static str, help: &'static str, pairs: &[(&str, &str)], value: f64) {
        self.with(name, help, MetricKind::Gauge, |values| {
            let entry = values.entry(labels(pairs)).or_insert(Value::Scalar(value));
            if let Value::Scalar(v) = entry {
                *v = v.max(value);
            }
        });
    }

    /// Observe a duration in seconds.
    pub fn observe(&self, name: &'static str, help: &'static str, pairs: &[(&str, &str)], seconds: f64) {
        self.with(name, help, MetricKind::Histogram, |values| {
            let entry = values.entry(labels(pairs)).or_insert_with(|| Value::Histogram {
                buckets: vec![0; DURATION_BUCKETS.len()],
                sum: 0.0,
                count: 0,
            });
            if let Value::Histogram { buckets, sum, count } = entry {
                for (i, bound) in DURATION_BUCKETS.iter().enumerate() {
                    if seconds <= *bound {
                        buckets[i] += 1;
                    }
                }
                *sum += seconds;
                *count += 1;
            }
        });
    }

    /// Current value of a counter or gauge (tests and the targets page).
    pub fn value(&self, name: &str, pairs: &[(&str, &str)]) -> Option<f64> {
        let all = self.series.lock().unwrap_or_else(|p| p.into_inner());
        match all.get(name)?.values.get(&labels(pairs))? {
            Value::Scalar(v) => Some(*v),
            Value::Histogram { count, .. } => Some(*count as f64),
        }
    }

    /// Everything, as metric families, plus process metrics.
    pub fn families(&self) -> Vec<MetricFamily> {
        let all = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<MetricFamily> = all
            .iter()
            .map(|(name, series)| MetricFamily {
                name: (*name).to_string(),
                help: series.help.to_string(),
                unit: String::new(),
                kind: series.kind,
                metrics: series
                    .values
                    .iter()
                    .map(|(labels, value)| Metric {
                        labels: labels.iter().map(|(n, v)| Label { name: n.clone(), value: v.clone() }).collect(),
                        value: match value {
                            Value::Scalar(v) if series.kind == MetricKind::Counter => MetricValue::Counter(*v),
                            Value::Scalar(v) => MetricValue::Gauge(*v),
                            Value::Histogram { buckets, sum, count } => MetricValue::Histogram(HistogramValue {
                                buckets: DURATION_BUCKETS
                                    .iter()
                                    .zip(buckets)
                                    .map(|(b, c)| Bucket { upper_bound: *b, count: *c })
                                    .chain(std::iter::once(Bucket { upper_bound: f64::INFINITY, count: *count }))
                                    .collect(),
                                sum: *sum,
                                count: *count,
                            }),
                        },
                        timestamp_ms: None,
                    })
                    .collect(),
            })
            .collect();
        drop(all);
        out.extend(process_families());
        out
    }
}

fn gauge(name: &str, help: &str, kind: MetricKind, value: f64) -> MetricFamily {
    MetricFamily {
        name: name.into(),
        help: help.into(),
        unit: String::new(),
        kind,
        metrics: vec![Metric {
            labels: Vec::new(),
            value: if kind == MetricKind::Counter { MetricValue::Counter(value) } else { MetricValue::Gauge(value) },
            timestamp_ms: None,
        }],
    }
}

/// The standard `process_*` families, as Prometheus client libraries export them.
fn process_families() -> Vec<MetricFamily> {
    let mut out = Vec::new();
    let Ok(me) = procfs::process::Process::myself() else { return out };
    let tps = procfs::ticks_per_second() as f64;
    let page = procfs::page_size() as f64;
    if let Ok(stat) = me.stat() {
        out.push(gauge(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            MetricKind::Counter,
            (stat.utime + stat.stime) as f64 / tps,
        ));
        out.push(gauge(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            MetricKind::Gauge,
            stat.rss as f64 * page,
        ));
        out.push(gauge(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            MetricKind::Gauge,
            stat.vsize as f64,
        ));
        if let Ok(boot) = procfs::boot_time_secs() {
            out.push(gauge(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                MetricKind::Gauge,
                boot as f64 + stat.starttime as f64 / tps,
            ));
        }
    }
    if let Ok(fds) = me.fd_count() {
        out.push(gauge("process_open_fds", "Number of open file descriptors.", MetricKind::Gauge, fds as f64));
    }
    if let Ok(limits) = me.limits()
        && let procfs::process::LimitValue::Value(max) = limits.max_open_files.soft_limit
    {
        out.push(gauge("process_max_fds", "Maximum number of open file descriptors.", MetricKind::Gauge, max as f64));
    }
    out
}
