//! Prometheus text format 0.0.4 and OpenMetrics 1.0 encoders for `/metrics`.

use crate::runtime::model::{Label, MetricFamily, MetricKind, MetricValue};
use std::fmt::Write;

/// The two formats `/metrics` can serve, chosen by the `Accept` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text004,
    OpenMetrics,
}

impl Format {
    pub const TEXT_CONTENT_TYPE: &'static str = "text/plain; version=0.0.4; charset=utf-8";
    pub const OPENMETRICS_CONTENT_TYPE: &'static str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

    /// Prometheus asks for OpenMetrics with `Accept: application/openmetrics-text;...`;
    /// everything else gets the classic text format.
    pub fn negotiate(accept: Option<&str>) -> Self {
        match accept {
            Some(a)
                if a.split(',').any(|part| {
                    let part = part.trim();
                    part.starts_with("application/openmetrics-text") && !part.contains("q=0,") && !part.ends_with("q=0")
                }) =>
            {
                Self::OpenMetrics
            }
            _ => Self::Text004,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Text004 => Self::TEXT_CONTENT_TYPE,
            Self::OpenMetrics => Self::OPENMETRICS_CONTENT_TYPE,
        }
    }
}

/// Write a whole exposition of distinct families (with `# EOF` for OpenMetrics).
pub fn encode_families(families: &[MetricFamily], format: Format) -> String {
    let mut out = String::with_capacity(64 * 1024);
    write_families(&mut out, families, format);
    end_exposition(&mut out, format);
    out
}

/// Append distinct families, each whole.
pub fn write_families(out: &mut String, families: &[MetricFamily], format: Format) {
    for family in families {
        write_family(out, &[family], format);
    }
}

/// End an exposition: OpenMetrics' `# EOF`; nothing for the text format.
pub fn end_exposition(out: &mut String, format: Format) {
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
}

/// Write one family (possibly made of the same family from several targets).
pub fn write_family(out: &mut String, parts: &[&MetricFamily], format: Format) {
    let Some(first) = parts.first() else { return };
    let names = write_family_header(out, &first.name, &first.help, &first.unit, first.kind, format);
    for family in parts {
        for metric in &family.metrics {
            write_metric(out, &names, &metric.labels, &metric.value, metric.timestamp_ms);
        }
    }
}

/// A label as the encoder reads it: the model's, or one borrowed from a body
/// being transcoded (`scrape::transcode`).
pub trait LabelPair {
    fn name(&self) -> &str;
    fn value(&self) -> &str;
}

impl LabelPair for Label {
    fn name(&self) -> &str {
        &self.name
    }
    fn value(&self) -> &str {
        &self.value
    }
}

impl LabelPair for (&str, &str) {
    fn name(&self) -> &str {
        self.0
    }
    fn value(&self) -> &str {
        self.1
    }
}

/// The names a family's samples are written under, from its header.
pub struct SampleNames {
    /// The family's name as `# TYPE` gives it (OpenMetrics drops `_total`/`_info`).
    family: String,
    /// Plain samples: the family name, or with its suffix put back.
    sample: String,
    om: bool,
}

/// Write `# HELP`, `# TYPE` (and `# UNIT`) of a family and return the names
/// its samples take.
pub fn write_family_header(
    out: &mut String,
    name: &str,
    help: &str,
    unit: &str,
    kind: MetricKind,
    format: Format,
) -> SampleNames {
    let om = format == Format::OpenMetrics;
    // OpenMetrics names counter and info families without their sample suffix.
    let family_name = match (om, kind) {
        (true, MetricKind::Counter) => name.strip_suffix("_total").unwrap_or(name),
        (true, MetricKind::Info) => name.strip_suffix("_info").unwrap_or(name),
        _ => name,
    };
    let type_name = match (om, kind) {
        (_, MetricKind::Counter) => "counter",
        (_, MetricKind::Gauge) => "gauge",
        (_, MetricKind::Histogram) => "histogram",
        (_, MetricKind::Summary) => "summary",
        (true, MetricKind::Info) => "info",
        (true, MetricKind::Stateset) => "stateset",
        (true, MetricKind::Unknown) => "unknown",
        (false, MetricKind::Info | MetricKind::Stateset) => "gauge",
        (false, MetricKind::Unknown) => "untyped",
    };
    if !help.is_empty() {
        let _ = writeln!(out, "# HELP {family_name} {}", escape_help(help));
    }
    let _ = writeln!(out, "# TYPE {family_name} {type_name}");
    if om && !unit.is_empty() && family_name.ends_with(unit) {
        let _ = writeln!(out, "# UNIT {family_name} {unit}");
    }
    let sample = match (om, kind) {
        (true, MetricKind::Counter) => format!("{family_name}_total"),
        (true, MetricKind::Info) => format!("{family_name}_info"),
        _ => name.to_string(),
    };
    SampleNames { family: family_name.to_string(), sample, om }
}

/// Write the samples of one series.
pub fn write_metric<L: LabelPair>(
    out: &mut String,
    names: &SampleNames,
    labels: &[L],
    value: &MetricValue,
    ts: Option<i64>,
) {
    let (family_name, om) = (names.family.as_str(), names.om);
    let suffixed = |suffix: &str| {
        let mut name = String::with_capacity(family_name.len() + suffix.len());
        name.push_str(family_name);
        name.push_str(suffix);
        name
    };
    // The samples of a histogram or summary share their labels: escape them once.
    let rendered = |labels: &[L]| {
        let mut text = String::new();
        push_labels(&mut text, labels);
        text
    };
    match value {
        MetricValue::Gauge(v) | MetricValue::Counter(v) => {
            out.push_str(&names.sample);
            if !labels.is_empty() {
                out.push('{');
                push_labels(out, labels);
                out.push('}');
            }
            push_sample_end(out, *v, ts, om);
        }
        MetricValue::Histogram(h) => {
            let (bucket, labels) = (suffixed("_bucket"), rendered(labels));
            let mut saw_inf = false;
            for b in &h.buckets {
                saw_inf |= b.upper_bound == f64::INFINITY;
                write_sample(out, &bucket, &labels, Some(("le", b.upper_bound)), b.count as f64, ts, om);
            }
            if !saw_inf {
                write_sample(out, &bucket, &labels, Some(("le", f64::INFINITY)), h.count as f64, ts, om);
            }
            write_sample(out, &suffixed("_sum"), &labels, None, h.sum, ts, om);
            write_sample(out, &suffixed("_count"), &labels, None, h.count as f64, ts, om);
        }
        MetricValue::Summary(s) => {
            let labels = rendered(labels);
            for q in &s.quantiles {
                write_sample(out, family_name, &labels, Some(("quantile", q.quantile)), q.value, ts, om);
            }
            write_sample(out, &suffixed("_sum"), &labels, None, s.sum, ts, om);
            write_sample(out, &suffixed("_count"), &labels, None, s.count as f64, ts, om);
        }
    }
}

/// `a="x",b="y"`: labels as they go between braces.
fn push_labels<L: LabelPair>(out: &mut String, labels: &[L]) {
    for (i, label) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(label.name());
        out.push_str("=\"");
        wasmon_sdk::text::push_label_value(out, label.value());
        out.push('"');
    }
}

/// One sample line, its labels already rendered by [`push_labels`].
fn write_sample(
    out: &mut String,
    name: &str,
    labels: &str,
    extra: Option<(&str, f64)>,
    value: f64,
    ts: Option<i64>,
    om: bool,
) {
    out.push_str(name);
    if !labels.is_empty() || extra.is_some() {
        out.push('{');
        out.push_str(labels);
        if let Some((name, bound)) = extra {
            if !labels.is_empty() {
                out.push(',');
            }
            out.push_str(name);
            out.push_str("=\"");
            push_value(out, bound);
            out.push('"');
        }
        out.push('}');
    }
    push_sample_end(out, value, ts, om);
}

/// ` value[ timestamp]` and the line end.
fn push_sample_end(out: &mut String, value: f64, ts: Option<i64>, om: bool) {
    out.push(' ');
    push_value(out, value);
    if let Some(ms) = ts {
        out.push(' ');
        if om {
            out.push_str(itoa::Buffer::new().format(ms.div_euclid(1000)));
            let _ = write!(out, ".{:03}", ms.rem_euclid(1000));
        } else {
            out.push_str(itoa::Buffer::new().format(ms));
        }
    }
    out.push('\n');
}

/// Append a value as [`format_value`] writes it, without allocating for
/// the common cases.
fn push_value(out: &mut String, v: f64) {
    if v.is_finite() && v == v.trunc() && v.abs() < 1e15 && !(v == 0.0 && v.is_sign_negative()) {
        out.push_str(itoa::Buffer::new().format(v as i64));
    } else if v.is_finite() && (1e-4..1e21).contains(&v.abs()) {
        let _ = write!(out, "{v}");
    } else {
        out.push_str(&format_value(v));
    }
}

/// Float formatting as Prometheus clients write it: `+Inf`, `-Inf`, `NaN`,
/// and the shortest decimal that round-trips otherwise.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else if v == 0.0 && v.is_sign_negative() {
        "-0".into()
    } else if v == v.trunc() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let mut buf = ryu_like(v);
        if buf.contains('e') && !buf.contains("e-") {
            buf = buf.replace('e', "e+");
        }
        buf
    }
}

fn ryu_like(v: f64) -> String {
    // Rust's `{}` is shortest round-trip but never uses exponents; switch to
    // `{:e}` for very large or small magnitudes to keep lines short, like Go.
    let abs = v.abs();
    if abs != 0.0 && !(1e-4..1e21).contains(&abs) { format!("{v:e}") } else { format!("{v}") }
}

/// HELP escapes only `\\` and newline; a carriage return has no escape and
/// would read as a CRLF line end, so it becomes a space.
fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n").replace('\r', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::model::{Bucket, HistogramValue, Metric};

    fn label(n: &str, v: &str) -> Label {
        Label { name: n.into(), value: v.into() }
    }

    fn counter() -> MetricFamily {
        MetricFamily {
            name: "node_cpu_seconds_total".into(),
            help: "Seconds the CPUs spent in each mode.".into(),
            unit: "seconds".into(),
            kind: MetricKind::Counter,
            metrics: vec![Metric {
                labels: vec![label("cpu", "0"), label("mode", "idle")],
                value: MetricValue::Counter(565.15),
                timestamp_ms: None,
            }],
        }
    }

    #[test]
    fn writes_text_004_like_node_exporter() {
        let mut out = String::new();
        write_family(&mut out, &[&counter()], Format::Text004);
        assert_eq!(
            out,
            "# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.\n\
             # TYPE node_cpu_seconds_total counter\n\
             node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 565.15\n"
        );
    }

    #[test]
    fn writes_openmetrics_counter_names() {
        let mut out = String::new();
        write_family(&mut out, &[&counter()], Format::OpenMetrics);
        assert!(out.contains("# TYPE node_cpu_seconds counter\n"), "{out}");
        assert!(out.contains("# UNIT node_cpu_seconds seconds\n"), "{out}");
        assert!(out.contains("node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 565.15\n"), "{out}");
    }

    #[test]
    fn histograms_get_inf_bucket_sum_and_count() {
        let family = MetricFamily {
            name: "req_seconds".into(),
            help: String::new(),
            unit: String::new(),
            kind: MetricKind::Histogram,
            metrics: vec![Metric {
                labels: vec![label("path", "/a\"b\\c\nd")],
                value: MetricValue::Histogram(HistogramValue {
                    buckets: vec![Bucket { upper_bound: 0.5, count: 3 }],
                    sum: 1.25,
                    count: 4,
                }),
                timestamp_ms: Some(1_700_000_000_123),
            }],
        };
        let mut out = String::new();
        write_family(&mut out, &[&family], Format::Text004);
        assert!(out.contains("req_seconds_bucket{path=\"/a\\\"b\\\\c\\nd\",le=\"0.5\"} 3 1700000000123\n"), "{out}");
        assert!(out.contains("le=\"+Inf\"} 4 1700000000123\n"), "{out}");
        assert!(out.contains("req_seconds_sum{path=\"/a\\\"b\\\\c\\nd\"} 1.25"), "{out}");
        let mut om = String::new();
        write_family(&mut om, &[&family], Format::OpenMetrics);
        assert!(om.contains("} 4 1700000000.123\n"), "{om}");
    }

    #[test]
    fn formats_values_like_go() {
        assert_eq!(format_value(1.0), "1");
        assert_eq!(format_value(0.0), "0");
        assert_eq!(format_value(-2.5), "-2.5");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(2.70553174016e+11), "270553174016");
        assert_eq!(format_value(1e21), "1e+21");
        assert_eq!(format_value(1.5e-7), "1.5e-7");
        for v in [0.1, 123.456, 1e-5, 9.99e20, 3.0e30] {
            assert_eq!(format_value(v).parse::<f64>().unwrap(), v);
        }
    }

    #[test]
    fn negotiates_openmetrics_only_when_asked() {
        assert_eq!(Format::negotiate(None), Format::Text004);
        assert_eq!(Format::negotiate(Some("text/plain")), Format::Text004);
        assert_eq!(
            Format::negotiate(Some(
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
            )),
            Format::OpenMetrics
        );
    }

    mod roundtrip {
        use super::*;
        use crate::runtime::model::{Bucket, HistogramValue, Quantile, SummaryValue};
        use proptest::prelude::*;

        fn value_strategy() -> impl Strategy<Value = f64> {
            prop_oneof![
                any::<f64>().prop_filter("finite", |v| v.is_finite()),
                Just(f64::INFINITY),
                Just(f64::NEG_INFINITY),
                Just(0.0),
                (-1_000_000i64..1_000_000).prop_map(|v| v as f64),
            ]
        }

        fn labels_strategy() -> impl Strategy<Value = Vec<Label>> {
            proptest::collection::btree_map("[a-z][a-z0-9_]{0,6}", "(?s).{0,12}", 0..4)
                .prop_map(|m| m.into_iter().map(|(name, value)| Label { name, value }).collect())
        }

        fn family_strategy() -> impl Strategy<Value = MetricFamily> {
            let kind = prop_oneof![
                Just(MetricKind::Counter),
                Just(MetricKind::Gauge),
                Just(MetricKind::Unknown),
                Just(MetricKind::Histogram),
                Just(MetricKind::Summary),
            ];
            (
                "[a-z][a-z0-9_]{0,10}",
                "(?s).{0,20}",
                kind,
                proptest::collection::vec((labels_strategy(), value_strategy()), 1..4),
            )
                .prop_map(|(name, help, kind, samples)| {
                    let name = if kind == MetricKind::Counter { format!("{name}_total") } else { format!("{name}_x") };
                    let mut seen = std::collections::HashSet::new();
                    let metrics = samples
                        .into_iter()
                        .filter(|(labels, _)| seen.insert(format!("{labels:?}")))
                        // The validator drops these before anything is encoded.
                        .filter(|(labels, _)| {
                            let reserved = match kind {
                                MetricKind::Histogram => "le",
                                MetricKind::Summary => "quantile",
                                _ => return true,
                            };
                            labels.iter().all(|l| l.name != reserved)
                        })
                        .map(|(labels, v)| {
                            let value = match kind {
                                MetricKind::Counter => MetricValue::Counter(v.abs()),
                                MetricKind::Histogram => MetricValue::Histogram(HistogramValue {
                                    buckets: vec![
                                        Bucket { upper_bound: 0.5, count: 1 },
                                        Bucket { upper_bound: 2.0, count: 3 },
                                    ],
                                    sum: v,
                                    count: 4,
                                }),
                                MetricKind::Summary => MetricValue::Summary(SummaryValue {
                                    quantiles: vec![Quantile { quantile: 0.5, value: v }],
                                    sum: v,
                                    count: 7,
                                }),
                                _ => MetricValue::Gauge(v),
                            };
                            Metric { labels, value, timestamp_ms: None }
                        })
                        .collect();
                    MetricFamily { name, help, unit: String::new(), kind, metrics }
                })
        }

        proptest! {
            /// What `/metrics` writes, the SDK's parser (checked against real
            /// exporters' captures) reads back unchanged, in both formats.
            #[test]
            fn encoded_families_parse_back(families in proptest::collection::vec(family_strategy(), 1..5)) {
                let mut names = std::collections::HashSet::new();
                let families: Vec<_> = families.into_iter().filter(|f| !f.metrics.is_empty() && names.insert(f.name.clone())).collect();
                for format in [Format::Text004, Format::OpenMetrics] {
                    let mut out = String::new();
                    for f in &families {
                        write_family(&mut out, &[f], format);
                    }
                    if format == Format::OpenMetrics {
                        out.push_str("# EOF\n");
                    }
                    let parsed = wasmon_sdk::text::parse(&out).map_err(|e| TestCaseError::fail(format!("{e}\n{out}")))?;
                    prop_assert_eq!(parsed.len(), families.len(), "{}", out);
                    for (ours, theirs) in families.iter().zip(&parsed) {
                        prop_assert_eq!(&ours.name, &theirs.name);
                        // Surrounding blanks of HELP text are not significant to parsers.
                        let help = ours.help.replace('\r', " ");
                        prop_assert_eq!(help.trim(), theirs.help.trim());
                        prop_assert_eq!(ours.metrics.len(), theirs.metrics.len());
                        for (a, b) in ours.metrics.iter().zip(&theirs.metrics) {
                            let la: Vec<_> = a.labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect();
                            let lb: Vec<_> = b.labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect();
                            prop_assert_eq!(la, lb);
                            let (va, vb) = match (&a.value, &b.value) {
                                (MetricValue::Gauge(x) | MetricValue::Counter(x), wasmon_sdk::MetricValue::Gauge(y) | wasmon_sdk::MetricValue::Counter(y)) => (*x, *y),
                                (MetricValue::Histogram(x), wasmon_sdk::MetricValue::Histogram(y)) => { prop_assert_eq!(x.count, y.count); (x.sum, y.sum) }
                                (MetricValue::Summary(x), wasmon_sdk::MetricValue::Summary(y)) => { prop_assert_eq!(x.count, y.count); (x.sum, y.sum) }
                                (x, y) => return Err(TestCaseError::fail(format!("kind changed: {x:?} vs {y:?}"))),
                            };
                            prop_assert_eq!(va.to_bits(), vb.to_bits(), "{} vs {}", va, vb);
                        }
                    }
                }
            }
        }
    }
}
