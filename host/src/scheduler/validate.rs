//! Checks on what a plugin returned. Bad families and series are dropped and
//! counted by reason; the rest of the scrape is kept.

use crate::config::{is_valid_label_name, is_valid_metric_name};
use crate::exposition::LabelPair;
use crate::runtime::model::{Bucket, MetricFamily, MetricKind, MetricValue};
use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// Why something was dropped; the `reason` label of
/// `wasmon_plugin_rejected_series_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rejection {
    InvalidMetricName,
    DuplicateFamily,
    InvalidLabelName,
    DuplicateLabel,
    TypeMismatch,
    InvalidValue,
    InvalidHistogram,
    DuplicateSeries,
}

impl Rejection {
    pub fn as_label(self) -> &'static str {
        match self {
            Self::InvalidMetricName => "invalid_metric_name",
            Self::DuplicateFamily => "duplicate_family",
            Self::InvalidLabelName => "invalid_label_name",
            Self::DuplicateLabel => "duplicate_label",
            Self::TypeMismatch => "type_mismatch",
            Self::InvalidValue => "invalid_value",
            Self::InvalidHistogram => "invalid_histogram",
            Self::DuplicateSeries => "duplicate_series",
        }
    }
}

/// What was dropped: counts by reason, and the first example of each for the log.
#[derive(Debug, Default, Clone)]
pub struct Rejections {
    pub counts: BTreeMap<Rejection, u64>,
    pub examples: BTreeMap<Rejection, String>,
}

impl Rejections {
    fn add(&mut self, reason: Rejection, series: usize, example: impl FnOnce() -> String) {
        *self.counts.entry(reason).or_default() += series as u64;
        self.examples.entry(reason).or_insert_with(example);
    }
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}

/// Keep what is valid; report what is not.
pub fn validate(families: Vec<MetricFamily>) -> (Vec<MetricFamily>, Rejections) {
    validate_after(families, &mut HashSet::new())
}

/// [`validate`] for families that follow others already checked: `names`
/// holds the earlier families' names, and gets these ones'.
pub fn validate_after(families: Vec<MetricFamily>, names: &mut HashSet<String>) -> (Vec<MetricFamily>, Rejections) {
    let mut rejections = Rejections::default();
    let mut kept = Vec::with_capacity(families.len());
    for mut family in families {
        if !is_valid_metric_name(&family.name) {
            rejections.add(Rejection::InvalidMetricName, family.metrics.len().max(1), || format!("{:?}", family.name));
            continue;
        }
        if !names.insert(family.name.clone()) {
            rejections.add(Rejection::DuplicateFamily, family.metrics.len().max(1), || family.name.clone());
            continue;
        }
        let mut seen_series: HashSet<u64, BuildHasherDefault<PassThrough>> = HashSet::default();
        let name = family.name.clone();
        let kind = family.kind;
        family.metrics.retain_mut(|metric| {
            for (i, label) in metric.labels.iter().enumerate() {
                if !is_valid_label_name(&label.name) || label.name.starts_with("__") {
                    rejections.add(Rejection::InvalidLabelName, 1, || format!("{name}{{{:?}}}", label.name));
                    return false;
                }
                // `le` and `quantile` are written by the encoder itself; a second one
                // would make a sample no parser accepts (client_golang refuses them too).
                if let Some(what) = reserved_by_kind(kind, &label.name) {
                    rejections.add(Rejection::InvalidLabelName, 1, || {
                        format!("{name}{{{}}}: reserved for {what}", label.name)
                    });
                    return false;
                }
                // A series has a handful of labels: comparing with the earlier ones is
                // cheaper than a set per series.
                if metric.labels[..i].iter().any(|earlier| earlier.name == label.name) {
                    rejections.add(Rejection::DuplicateLabel, 1, || format!("{name}{{{}}}", label.name));
                    return false;
                }
            }
            let matches_kind = matches!(
                (&kind, &metric.value),
                (MetricKind::Counter, MetricValue::Counter(_))
                    | (
                        MetricKind::Gauge | MetricKind::Info | MetricKind::Stateset | MetricKind::Unknown,
                        MetricValue::Gauge(_)
                    )
                    | (MetricKind::Unknown, MetricValue::Counter(_))
                    | (MetricKind::Histogram, MetricValue::Histogram(_))
                    | (MetricKind::Summary, MetricValue::Summary(_))
            );
            if !matches_kind {
                rejections.add(Rejection::TypeMismatch, 1, || {
                    format!("{name}: {kind:?} family with a {} value", value_kind(&metric.value))
                });
                return false;
            }
            match &mut metric.value {
                MetricValue::Counter(v) if *v < 0.0 => {
                    rejections.add(Rejection::InvalidValue, 1, || format!("{name}: negative counter {v}"));
                    return false;
                }
                MetricValue::Histogram(h) => {
                    if let Err(why) = check_buckets(&mut h.buckets, h.count) {
                        rejections.add(Rejection::InvalidHistogram, 1, || format!("{name}: {why}"));
                        return false;
                    }
                }
                MetricValue::Summary(s) if s.quantiles.iter().any(|q| !(0.0..=1.0).contains(&q.quantile)) => {
                    rejections.add(Rejection::InvalidValue, 1, || format!("{name}: quantile outside [0, 1]"));
                    return false;
                }
                _ => {}
            }
            // A 64-bit hash of the series identity (instead of owned copies)
            // keeps this check cheap per series.
            if !seen_series.insert(label_set_hash(&metric.labels)) {
                rejections.add(Rejection::DuplicateSeries, 1, || {
                    format!(
                        "{name} with labels {:?}",
                        metric.labels.iter().map(|l| format!("{}={}", l.name, l.value)).collect::<Vec<_>>()
                    )
                });
                return false;
            }
            true
        });
        if !family.metrics.is_empty() {
            kept.push(family);
        }
    }
    (kept, rejections)
}

/// A 64-bit hash of a label set, whatever the labels' order (names are unique
/// here): per label, FNV-1a of name and value, mixed, then summed. Only series
/// of one family are compared, so the family name is left out.
pub(crate) fn label_set_hash<L: LabelPair>(labels: &[L]) -> u64 {
    let mut sum: u64 = 0;
    for label in labels {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in label.name().bytes().chain([0xff]).chain(label.value().bytes()).chain([0xfe]) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        hash ^= hash >> 29;
        hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        hash ^= hash >> 32;
        sum = sum.wrapping_add(hash);
    }
    sum
}

/// `seen_series` holds hashes already.
#[derive(Default)]
pub(crate) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A label name the family's kind writes itself.
pub(crate) fn reserved_by_kind(kind: MetricKind, label: &str) -> Option<&'static str> {
    match (kind, label) {
        (MetricKind::Histogram, "le") => Some("histogram buckets"),
        (MetricKind::Summary, "quantile") => Some("summary quantiles"),
        _ => None,
    }
}

fn value_kind(v: &MetricValue) -> &'static str {
    match v {
        MetricValue::Gauge(_) => "gauge",
        MetricValue::Counter(_) => "counter",
        MetricValue::Histogram(_) => "histogram",
        MetricValue::Summary(_) => "summary",
    }
}

/// Buckets must be sorted with non-decreasing counts, and the `+Inf` bucket
/// (added when missing) must equal the total count.
pub(crate) fn check_buckets(buckets: &mut Vec<Bucket>, count: u64) -> Result<(), String> {
    for pair in buckets.windows(2) {
        if pair[0].upper_bound.is_nan() || pair[1].upper_bound <= pair[0].upper_bound {
            return Err("bucket bounds not strictly increasing".into());
        }
        if pair[1].count < pair[0].count {
            return Err("bucket counts decrease".into());
        }
    }
    match buckets.last() {
        Some(last) if last.upper_bound == f64::INFINITY => {
            if last.count != count {
                return Err(format!("+Inf bucket {} differs from count {count}", last.count));
            }
        }
        Some(last) if last.count > count => return Err("bucket count above total count".into()),
        _ => buckets.push(Bucket { upper_bound: f64::INFINITY, count }),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::model::{HistogramValue, Label, Metric};

    fn family(name: &str, kind: MetricKind, metrics: Vec<Metric>) -> MetricFamily {
        MetricFamily { name: name.into(), help: String::new(), unit: String::new(), kind, metrics }
    }
    fn metric(labels: &[(&str, &str)], value: MetricValue) -> Metric {
        Metric {
            labels: labels.iter().map(|(n, v)| Label { name: (*n).into(), value: (*v).into() }).collect(),
            value,
            timestamp_ms: None,
        }
    }

    #[test]
    fn keeps_valid_output_untouched() {
        let input =
            vec![family("a_total", MetricKind::Counter, vec![metric(&[("x", "1")], MetricValue::Counter(1.0))])];
        let (kept, rejected) = validate(input.clone());
        assert_eq!(kept, input);
        assert_eq!(rejected.total(), 0);
    }

    #[test]
    fn drops_and_counts_each_kind_of_bad_output() {
        let input = vec![
            family("bad name", MetricKind::Gauge, vec![metric(&[], MetricValue::Gauge(1.0))]),
            family(
                "ok",
                MetricKind::Gauge,
                vec![
                    metric(&[("a", "1")], MetricValue::Gauge(1.0)),
                    metric(&[("a", "1")], MetricValue::Gauge(2.0)), // duplicate series
                    metric(&[("1a", "1")], MetricValue::Gauge(1.0)), // bad label name
                    metric(&[("__x", "1")], MetricValue::Gauge(1.0)), // reserved label
                    metric(&[("b", "1"), ("b", "2")], MetricValue::Gauge(1.0)), // duplicate label
                    metric(&[("c", "1")], MetricValue::Counter(1.0)), // type mismatch
                ],
            ),
            family("ok", MetricKind::Gauge, vec![metric(&[], MetricValue::Gauge(1.0))]), // duplicate family
            family("c_total", MetricKind::Counter, vec![metric(&[], MetricValue::Counter(-1.0))]),
            family(
                "h",
                MetricKind::Histogram,
                vec![metric(
                    &[],
                    MetricValue::Histogram(HistogramValue {
                        buckets: vec![Bucket { upper_bound: 1.0, count: 5 }, Bucket { upper_bound: 2.0, count: 3 }],
                        sum: 1.0,
                        count: 5,
                    }),
                )],
            ),
        ];
        let (kept, rejected) = validate(input);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].metrics.len(), 1);
        let count = |r| rejected.counts.get(&r).copied().unwrap_or(0);
        assert_eq!(count(Rejection::InvalidMetricName), 1);
        assert_eq!(count(Rejection::DuplicateSeries), 1);
        assert_eq!(count(Rejection::InvalidLabelName), 2);
        assert_eq!(count(Rejection::DuplicateLabel), 1);
        assert_eq!(count(Rejection::TypeMismatch), 1);
        assert_eq!(count(Rejection::DuplicateFamily), 1);
        assert_eq!(count(Rejection::InvalidValue), 1);
        assert_eq!(count(Rejection::InvalidHistogram), 1);
    }

    #[test]
    fn histograms_and_summaries_cannot_bring_their_own_le_or_quantile() {
        let histogram = MetricValue::Histogram(HistogramValue { buckets: vec![], sum: 0.0, count: 0 });
        let summary =
            MetricValue::Summary(crate::runtime::model::SummaryValue { quantiles: vec![], sum: 0.0, count: 0 });
        let input = vec![
            family(
                "h",
                MetricKind::Histogram,
                vec![metric(&[("le", "")], histogram.clone()), metric(&[("quantile", "1")], histogram)],
            ),
            family(
                "s",
                MetricKind::Summary,
                vec![metric(&[("quantile", "")], summary.clone()), metric(&[("le", "1")], summary)],
            ),
            family("g", MetricKind::Gauge, vec![metric(&[("le", "1"), ("quantile", "1")], MetricValue::Gauge(1.0))]),
        ];
        let (kept, rejected) = validate(input);
        let kept: Vec<_> = kept.iter().map(|f| (f.name.as_str(), f.metrics.len())).collect();
        assert_eq!(kept, [("h", 1), ("s", 1), ("g", 1)]);
        assert_eq!(rejected.counts.get(&Rejection::InvalidLabelName), Some(&2));
        assert_eq!(rejected.examples[&Rejection::InvalidLabelName], "h{le}: reserved for histogram buckets");
    }

    #[test]
    fn adds_the_inf_bucket() {
        let input = vec![family(
            "h",
            MetricKind::Histogram,
            vec![metric(
                &[],
                MetricValue::Histogram(HistogramValue {
                    buckets: vec![Bucket { upper_bound: 1.0, count: 2 }],
                    sum: 3.0,
                    count: 4,
                }),
            )],
        )];
        let (kept, _) = validate(input);
        let MetricValue::Histogram(h) = &kept[0].metrics[0].value else { panic!() };
        assert_eq!(h.buckets.last().map(|b| (b.upper_bound, b.count)), Some((f64::INFINITY, 4)));
    }
}
