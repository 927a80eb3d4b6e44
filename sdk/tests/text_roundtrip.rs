//! Property tests: generated families survive `encode` then `parse`, in both formats.

use proptest::prelude::*;
use wasmon_sdk::text::{self, Format};
use wasmon_sdk::{
    Bucket, HistogramValue, Label, Metric, MetricFamily, MetricKind, MetricValue, Quantile, SummaryValue,
};

const KINDS: [MetricKind; 7] = [
    MetricKind::Counter,
    MetricKind::Gauge,
    MetricKind::Unknown,
    MetricKind::Info,
    MetricKind::Stateset,
    MetricKind::Histogram,
    MetricKind::Summary,
];

/// Any float, with the special values and plain integers made likely.
fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => any::<f64>(),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(-0.0),
        2 => (-1_000_000i64..1_000_000).prop_map(|n| n as f64),
        2 => -1e-3..1e9f64,
    ]
}

/// A finite bound or quantile; `-0` becomes `0`, which reads back the same.
fn finite() -> impl Strategy<Value = f64> {
    prop_oneof![any::<f64>().prop_filter("finite", |v| v.is_finite()), 0.0..1.0f64, (0u32..100).prop_map(f64::from)]
        .prop_map(|v| v + 0.0)
}

fn count() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..1000, any::<u64>(), Just(u64::MAX)]
}

/// Text with the characters that need escaping, control characters and any Unicode.
fn text_with(extra: &'static [char]) -> impl Strategy<Value = String> {
    let special = prop::sample::select(extra);
    prop::collection::vec(prop_oneof![3 => any::<char>(), 2 => special, 2 => prop::char::range('a', 'z')], 0..12)
        .prop_map(String::from_iter)
}

fn label_value() -> impl Strategy<Value = String> {
    text_with(&['"', '\\', '\n', '\r', '\t', ' ', '{', '}', ',', '=', '#', 'é', '✓', '\u{0}'])
}

/// HELP text: anything but a `\r` (a line ending) or leading blanks, which no format keeps.
fn help() -> impl Strategy<Value = String> {
    text_with(&['"', '\\', '\n', '\t', ' ', '#', 'é'])
        .prop_map(|h| h.replace('\r', "").trim_start_matches([' ', '\t']).to_string())
}

fn labels() -> impl Strategy<Value = Vec<Label>> {
    let name = "[a-zA-Z_][a-zA-Z0-9_]{0,6}".prop_filter("reserved", |n| n != "le" && n != "quantile");
    prop::collection::vec((name, label_value()), 0..4).prop_map(|pairs| {
        let mut labels: Vec<Label> = Vec::new();
        for (name, value) in pairs {
            if !labels.iter().any(|l| l.name == name) {
                labels.push(Label { name, value });
            }
        }
        labels
    })
}

fn histogram() -> impl Strategy<Value = MetricValue> {
    (prop::collection::vec((finite(), count()), 0..6), any::<bool>(), count(), float()).prop_map(
        |(mut buckets, with_inf, count, sum)| {
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            buckets.dedup_by(|a, b| a.0 == b.0);
            let mut buckets: Vec<Bucket> =
                buckets.into_iter().map(|(upper_bound, count)| Bucket { upper_bound, count }).collect();
            if with_inf {
                buckets.push(Bucket { upper_bound: f64::INFINITY, count });
            }
            MetricValue::Histogram(HistogramValue { buckets, sum, count })
        },
    )
}

fn summary() -> impl Strategy<Value = MetricValue> {
    (prop::collection::vec((finite(), float()), 0..5), count(), float()).prop_map(|(pairs, count, sum)| {
        let mut quantiles: Vec<Quantile> = Vec::new();
        for (quantile, value) in pairs {
            if !quantiles.iter().any(|q| q.quantile == quantile) {
                quantiles.push(Quantile { quantile, value });
            }
        }
        MetricValue::Summary(SummaryValue { quantiles, sum, count })
    })
}

fn value(kind: MetricKind) -> BoxedStrategy<MetricValue> {
    match kind {
        MetricKind::Counter => float().prop_map(MetricValue::Counter).boxed(),
        MetricKind::Histogram => histogram().boxed(),
        MetricKind::Summary => summary().boxed(),
        _ => float().prop_map(MetricValue::Gauge).boxed(),
    }
}

fn family() -> impl Strategy<Value = MetricFamily> {
    prop::sample::select(&KINDS[..]).prop_flat_map(|kind| {
        let metric = (labels(), value(kind), prop::option::of(any::<i64>()))
            .prop_map(|(labels, value, timestamp_ms)| Metric { labels, value, timestamp_ms });
        ("[a-zA-Z_:][a-zA-Z0-9_:]{0,10}", help(), "[a-z_]{0,8}", prop::collection::vec(metric, 0..5)).prop_map(
            move |(name, help, unit, metrics)| {
                // One series per label set, whatever the order of the labels.
                let mut unique: Vec<Metric> = Vec::new();
                for metric in metrics {
                    let key = |m: &Metric| {
                        let mut key: Vec<(String, String)> =
                            m.labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect();
                        key.sort();
                        key
                    };
                    if !unique.iter().any(|m| key(m) == key(&metric)) {
                        unique.push(metric);
                    }
                }
                MetricFamily { name, help, unit, kind, metrics: unique }
            },
        )
    })
}

/// Families with names that cannot collide: each gets its own `f{index}_` prefix. In
/// OpenMetrics, counter and info names carry the suffix their samples need.
fn families(format: Format) -> impl Strategy<Value = Vec<MetricFamily>> {
    prop::collection::vec(family(), 0..6).prop_map(move |families| {
        families
            .into_iter()
            .enumerate()
            .map(|(index, mut family)| {
                family.name = format!("f{index}_{}", family.name);
                let suffix = match (format, family.kind) {
                    (Format::OpenMetrics, MetricKind::Counter) => "_total",
                    (Format::OpenMetrics, MetricKind::Info) => "_info",
                    _ => "",
                };
                if !family.name.ends_with(suffix) {
                    family.name.push_str(suffix);
                }
                family
            })
            .collect()
    })
}

/// What parsing the encoded families should give: the `+Inf` bucket added where missing,
/// and in Prometheus text info and stateset families as gauges.
fn expected(mut families: Vec<MetricFamily>, format: Format) -> Vec<MetricFamily> {
    for family in &mut families {
        if format == Format::Prometheus && matches!(family.kind, MetricKind::Info | MetricKind::Stateset) {
            family.kind = MetricKind::Gauge;
        }
        for metric in &mut family.metrics {
            if let MetricValue::Histogram(h) = &mut metric.value
                && !h.buckets.iter().any(|b| b.upper_bound == f64::INFINITY)
            {
                h.buckets.push(Bucket { upper_bound: f64::INFINITY, count: h.count });
            }
        }
    }
    families
}

/// Families compared through `Debug`, which prints every NaN as `NaN` and keeps `-0.0`
/// apart from `0.0`, unlike `==`.
fn shown(families: &[MetricFamily]) -> String {
    format!("{families:#?}")
}

fn round_trip(families: Vec<MetricFamily>, format: Format) -> Result<(), TestCaseError> {
    let encoded = text::encode(&families, format);
    let parsed = match text::parse_with(&encoded, format) {
        Ok(parsed) => parsed,
        Err(e) => return Err(TestCaseError::fail(format!("{e}\nin:\n{encoded}"))),
    };
    prop_assert_eq!(shown(&parsed), shown(&expected(families, format)), "encoded as:\n{}", encoded);
    // `parse` recognises the format by itself.
    let detected = text::parse(&encoded).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(shown(&detected), shown(&parsed));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn prometheus_text_round_trips(families in families(Format::Prometheus)) {
        round_trip(families, Format::Prometheus)?;
    }

    #[test]
    fn openmetrics_round_trips(families in families(Format::OpenMetrics)) {
        round_trip(families, Format::OpenMetrics)?;
    }

    #[test]
    fn crlf_line_endings_change_nothing(families in families(Format::Prometheus)) {
        let encoded = text::encode(&families, Format::Prometheus);
        let lf = text::parse(&encoded).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let crlf = text::parse(&encoded.replace('\n', "\r\n")).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(shown(&crlf), shown(&lf));
    }
}
