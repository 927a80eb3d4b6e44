//! Builders for metric families.

use crate::{Bucket, HistogramValue, Label, Metric, MetricFamily, MetricKind, MetricValue, Quantile, SummaryValue};

/// Builds one [`MetricFamily`].
///
/// ```
/// use wasmon_sdk::Family;
/// let mut reads = Family::counter("disk_reads_completed_total", "Reads completed.");
/// reads.sample(&[("device", "sda")], 42.0);
/// let family = reads.build();
/// assert_eq!(family.metrics[0].labels[0].value, "sda");
/// ```
#[derive(Debug, Clone)]
pub struct Family {
    family: MetricFamily,
}

impl Family {
    /// A family of the given kind with no samples.
    pub fn new(name: &str, help: &str, kind: MetricKind) -> Self {
        Self {
            family: MetricFamily {
                name: name.into(),
                help: help.into(),
                unit: String::new(),
                kind,
                metrics: Vec::new(),
            },
        }
    }
    /// A gauge family.
    pub fn gauge(name: &str, help: &str) -> Self {
        Self::new(name, help, MetricKind::Gauge)
    }
    /// A counter family. Counter names end in `_total` by convention.
    pub fn counter(name: &str, help: &str) -> Self {
        Self::new(name, help, MetricKind::Counter)
    }
    /// An untyped family (Prometheus text `untyped`).
    pub fn untyped(name: &str, help: &str) -> Self {
        Self::new(name, help, MetricKind::Unknown)
    }
    /// An info family; each sample should have value 1.
    pub fn info(name: &str, help: &str) -> Self {
        Self::new(name, help, MetricKind::Info)
    }
    /// A histogram family.
    pub fn histogram(name: &str, help: &str) -> Self {
        Self::new(name, help, MetricKind::Histogram)
    }
    /// A summary family.
    pub fn summary(name: &str, help: &str) -> Self {
        Self::new(name, help, MetricKind::Summary)
    }

    /// Set the unit (`seconds`, `bytes`).
    pub fn unit(mut self, unit: &str) -> Self {
        self.family.unit = unit.into();
        self
    }

    /// The family's name.
    pub fn name(&self) -> &str {
        &self.family.name
    }

    /// Add a sample with borrowed labels. The value is stored as a counter for
    /// counter families and as a gauge for all others.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: f64) -> &mut Self {
        let labels = labels.iter().map(|(n, v)| Label { name: (*n).into(), value: (*v).into() }).collect();
        self.sample_labels(labels, value)
    }

    /// Add a sample with owned labels.
    pub fn sample_labels(&mut self, labels: Vec<Label>, value: f64) -> &mut Self {
        let value = match self.family.kind {
            MetricKind::Counter => MetricValue::Counter(value),
            _ => MetricValue::Gauge(value),
        };
        self.family.metrics.push(Metric { labels, value, timestamp_ms: None });
        self
    }

    /// Add a histogram sample; `buckets` are `(upper_bound, cumulative_count)`.
    pub fn histogram_sample(
        &mut self,
        labels: &[(&str, &str)],
        buckets: &[(f64, u64)],
        sum: f64,
        count: u64,
    ) -> &mut Self {
        let value = MetricValue::Histogram(HistogramValue {
            buckets: buckets.iter().map(|&(upper_bound, count)| Bucket { upper_bound, count }).collect(),
            sum,
            count,
        });
        self.push(labels, value)
    }

    /// Add a summary sample; `quantiles` are `(quantile, value)`.
    pub fn summary_sample(
        &mut self,
        labels: &[(&str, &str)],
        quantiles: &[(f64, f64)],
        sum: f64,
        count: u64,
    ) -> &mut Self {
        let value = MetricValue::Summary(SummaryValue {
            quantiles: quantiles.iter().map(|&(quantile, value)| Quantile { quantile, value }).collect(),
            sum,
            count,
        });
        self.push(labels, value)
    }

    fn push(&mut self, labels: &[(&str, &str)], value: MetricValue) -> &mut Self {
        let labels = labels.iter().map(|(n, v)| Label { name: (*n).into(), value: (*v).into() }).collect();
        self.family.metrics.push(Metric { labels, value, timestamp_ms: None });
        self
    }

    /// True when no sample was added.
    pub fn is_empty(&self) -> bool {
        self.family.metrics.is_empty()
    }

    /// Finish the family.
    pub fn build(self) -> MetricFamily {
        self.family
    }
}

/// Push `family` onto `out` unless it has no samples; node_exporter, too,
/// omits families with nothing to report.
pub fn push_nonempty(out: &mut Vec<MetricFamily>, family: Family) {
    if !family.is_empty() {
        out.push(family.build());
    }
}
