//! From a scrape's metric families to stored samples: the series names
//! Prometheus gives each kind (`_bucket`/`_sum`/`_count`, quantiles), and the
//! staleness markers it writes when a series or a whole scrape disappears.

use crate::exposition::format_value;
use crate::runtime::model::{MetricFamily, MetricValue};
use std::collections::HashSet;
use wasmon_storage::{Label, Labels, METRIC_NAME, stale_nan};

/// One sample to store.
pub type StoredSample = (Labels, i64, f64);

/// Every sample of `families` as Prometheus would store it after scraping
/// the text format, at `default_ms` unless a metric carries its own time.
pub fn flatten(families: &[MetricFamily], default_ms: i64, out: &mut Vec<StoredSample>) {
    for family in families {
        for metric in &family.metrics {
            let t = metric.timestamp_ms.unwrap_or(default_ms);
            let series = |name: &str, extra: Option<(&str, f64)>| {
                let mut labels: Vec<Label> = Vec::with_capacity(metric.labels.len() + 2);
                labels.push(Label { name: METRIC_NAME.into(), value: name.into() });
                labels.extend(metric.labels.iter().map(|l| Label { name: l.name.clone(), value: l.value.clone() }));
                if let Some((name, bound)) = extra {
                    labels.push(Label { name: name.into(), value: format_value(bound) });
                }
                Labels::new(labels)
            };
            let name = family.name.as_str();
            match &metric.value {
                MetricValue::Gauge(v) | MetricValue::Counter(v) => out.push((series(name, None), t, *v)),
                MetricValue::Histogram(h) => {
                    let bucket = format!("{name}_bucket");
                    let mut saw_inf = false;
                    for b in &h.buckets {
                        saw_inf |= b.upper_bound == f64::INFINITY;
                        out.push((series(&bucket, Some(("le", b.upper_bound))), t, b.count as f64));
                    }
                    if !saw_inf {
                        out.push((series(&bucket, Some(("le", f64::INFINITY))), t, h.count as f64));
                    }
                    out.push((series(&format!("{name}_sum"), None), t, h.sum));
                    out.push((series(&format!("{name}_count"), None), t, h.count as f64));
                }
                MetricValue::Summary(s) => {
                    for q in &s.quantiles {
                        out.push((series(name, Some(("quantile", q.quantile))), t, q.value));
                    }
                    out.push((series(&format!("{name}_sum"), None), t, s.sum));
                    out.push((series(&format!("{name}_count"), None), t, s.count as f64));
                }
            }
        }
    }
}

/// The series a target returned in its last scrape, so the next one can
/// mark those that vanished as stale (Prometheus' scrape-loop staleness).
#[derive(Debug, Default)]
pub struct StalenessTracker {
    previous: HashSet<Labels>,
}

impl StalenessTracker {
    /// Record this scrape's series and append a staleness marker at `t` for
    /// every series of the previous scrape that is not among them.
    pub fn track(&mut self, samples: &mut Vec<StoredSample>, t: i64) {
        // Move known label sets over instead of cloning every one each
        // scrape: only series new in this scrape are cloned, and what stays
        // behind in `previous` is exactly the set that vanished.
        let mut current: HashSet<Labels> = HashSet::with_capacity(samples.len());
        for (labels, _, _) in samples.iter() {
            if current.contains(labels) {
                continue;
            }
            current.insert(self.previous.take(labels).unwrap_or_else(|| labels.clone()));
        }
        let gone = std::mem::replace(&mut self.previous, current);
        samples.extend(gone.into_iter().map(|l| (l, t, stale_nan())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::model::{Bucket, HistogramValue, Label as PluginLabel, Metric, MetricKind};
    use wasmon_storage::is_stale_nan;

    fn family(name: &str, kind: MetricKind, values: Vec<MetricValue>) -> MetricFamily {
        MetricFamily {
            name: name.into(),
            help: String::new(),
            unit: String::new(),
            kind,
            metrics: values
                .into_iter()
                .enumerate()
                .map(|(i, value)| Metric {
                    labels: vec![PluginLabel { name: "cpu".into(), value: i.to_string() }],
                    value,
                    timestamp_ms: None,
                })
                .collect(),
        }
    }

    #[test]
    fn histograms_become_bucket_sum_and_count_series() {
        let h = MetricValue::Histogram(HistogramValue {
            buckets: vec![Bucket { upper_bound: 0.5, count: 2 }],
            sum: 1.5,
            count: 3,
        });
        let mut out = Vec::new();
        flatten(&[family("lat_seconds", MetricKind::Histogram, vec![h])], 1000, &mut out);
        let shown: Vec<String> = out.iter().map(|(l, t, v)| format!("{l} {t} {v}")).collect();
        assert_eq!(
            shown,
            vec![
                r#"lat_seconds_bucket{cpu="0", le="0.5"} 1000 2"#,
                r#"lat_seconds_bucket{cpu="0", le="+Inf"} 1000 3"#,
                r#"lat_seconds_sum{cpu="0"} 1000 1.5"#,
                r#"lat_seconds_count{cpu="0"} 1000 3"#,
            ]
        );
    }

    #[test]
    fn vanished_series_get_one_stale_marker() {
        let mut tracker = StalenessTracker::default();
        let mut first = Vec::new();
        flatten(
            &[family("x", MetricKind::Gauge, vec![MetricValue::Gauge(1.0), MetricValue::Gauge(2.0)])],
            1,
            &mut first,
        );
        tracker.track(&mut first, 1);
        assert_eq!(first.len(), 2);
        let mut second = Vec::new();
        flatten(&[family("x", MetricKind::Gauge, vec![MetricValue::Gauge(1.0)])], 2, &mut second);
        tracker.track(&mut second, 2);
        assert_eq!(second.len(), 2);
        assert!(is_stale_nan(second[1].2));
        assert_eq!(second[1].0.get("cpu"), Some("1"));
        let mut third = Vec::new();
        flatten(&[family("x", MetricKind::Gauge, vec![MetricValue::Gauge(1.0)])], 3, &mut third);
        tracker.track(&mut third, 3);
        assert_eq!(third.len(), 1, "a stale series is marked once");
    }
}
