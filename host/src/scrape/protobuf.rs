//! Prometheus' protobuf exposition format: length-delimited
//! `io.prometheus.client.MetricFamily` messages (client_model's
//! `metrics.proto`), as Go's client library serves them when asked with
//! [`ACCEPT_PROTOBUF_FIRST`]. Encoding and decoding it skips the float
//! formatting, escaping and line grouping of the text format on both sides,
//! which makes it the cheaper way to move a large `/metrics` (etcd's: 1,500
//! lines) into the host.
//!
//! The families come out as the text parser would give them for the same
//! exposition: a histogram gets its `+Inf` bucket (implicit in protobuf,
//! written out in text), `UNTYPED` is [`MetricKind::Unknown`] with a gauge
//! value, a gauge histogram is a histogram. Native-histogram fields
//! (schema, spans, exemplars) are not read: the text format has none of
//! them either.

use crate::runtime::model::{
    Bucket, HistogramValue, Label, Metric, MetricFamily, MetricKind, MetricValue, Quantile, SummaryValue,
};

/// The media type of the length-delimited format.
const MEDIA_TYPE: &str = "application/vnd.google.protobuf";

/// An `Accept` header that prefers the protobuf format and falls back to
/// the text format 0.0.4, for servers without protobuf.
pub const ACCEPT_PROTOBUF_FIRST: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// Whether a `Content-Type` is the delimited `MetricFamily` format.
pub fn is_protobuf(content_type: &str) -> bool {
    let mut parts = content_type.split(';').map(str::trim);
    if !parts.next().is_some_and(|media| media.eq_ignore_ascii_case(MEDIA_TYPE)) {
        return false;
    }
    let mut proto_ok = false;
    let mut delimited = false;
    for param in parts {
        match param.split_once('=').map(|(k, v)| (k.trim(), v.trim().trim_matches('"'))) {
            Some((k, v)) if k.eq_ignore_ascii_case("proto") => proto_ok = v == "io.prometheus.client.MetricFamily",
            Some((k, v)) if k.eq_ignore_ascii_case("encoding") => delimited = v == "delimited",
            _ => {}
        }
    }
    proto_ok && delimited
}

/// Decode a whole body. An error names the message (by its number and
/// byte offset) and, once the family is known, the family.
pub fn parse(mut body: &[u8]) -> Result<Vec<MetricFamily>, String> {
    let total = body.len();
    let mut families = Vec::new();
    while !body.is_empty() {
        let (number, offset) = (families.len() + 1, total - body.len());
        let at = |e: &dyn std::fmt::Display| format!("message {number} at byte {offset}: {e}");
        let family = <wire::MetricFamily as prost::Message>::decode_length_delimited(&mut body).map_err(|e| at(&e))?;
        families.push(convert(family).map_err(|e| at(&e))?);
    }
    Ok(families)
}

fn convert(family: wire::MetricFamily) -> Result<MetricFamily, String> {
    let name = family.name;
    if name.is_empty() {
        return Err("a family without a name".into());
    }
    let Some(kind) = kind_of(family.r#type) else {
        return Err(format!("family {name}: unknown metric type {}", family.r#type));
    };
    let mut metrics = Vec::with_capacity(family.metric.len());
    for (i, metric) in family.metric.into_iter().enumerate() {
        let missing = |what: &str| format!("family {name}, metric {}: no {what} value", i + 1);
        let value = match family.r#type {
            wire::COUNTER => MetricValue::Counter(metric.counter.ok_or_else(|| missing("counter"))?.value),
            wire::GAUGE => MetricValue::Gauge(metric.gauge.ok_or_else(|| missing("gauge"))?.value),
            wire::UNTYPED => MetricValue::Gauge(metric.untyped.ok_or_else(|| missing("untyped"))?.value),
            wire::SUMMARY => {
                let s = metric.summary.ok_or_else(|| missing("summary"))?;
                MetricValue::Summary(SummaryValue {
                    quantiles: s
                        .quantile
                        .into_iter()
                        .map(|q| Quantile { quantile: q.quantile, value: q.value })
                        .collect(),
                    sum: s.sample_sum,
                    count: s.sample_count,
                })
            }
            _ => MetricValue::Histogram(histogram(metric.histogram.ok_or_else(|| missing("histogram"))?)),
        };
        let labels = metric.label.into_iter().map(|l| Label { name: l.name, value: l.value }).collect();
        metrics.push(Metric { labels, value, timestamp_ms: metric.timestamp_ms });
    }
    Ok(MetricFamily { name, help: family.help, unit: family.unit, kind, metrics })
}

/// The kind a `MetricFamily.type` reads as: `UNTYPED` is unknown, a gauge
/// histogram a histogram; `None` for a number `metrics.proto` does not have.
pub(crate) fn kind_of(type_number: i32) -> Option<MetricKind> {
    Some(match type_number {
        wire::COUNTER => MetricKind::Counter,
        wire::GAUGE => MetricKind::Gauge,
        wire::SUMMARY => MetricKind::Summary,
        wire::UNTYPED => MetricKind::Unknown,
        wire::HISTOGRAM | wire::GAUGE_HISTOGRAM => MetricKind::Histogram,
        _ => return None,
    })
}

/// A histogram's or bucket's count: the integer one, else the float one rounded.
pub(crate) fn count_of(integer: u64, float: f64) -> u64 {
    if integer == 0 && float > 0.0 { float.round() as u64 } else { integer }
}

/// A classic histogram; counts of a float histogram are rounded.
fn histogram(h: wire::Histogram) -> HistogramValue {
    let count = count_of(h.sample_count, h.sample_count_float);
    let mut buckets: Vec<Bucket> = h
        .bucket
        .into_iter()
        .map(|b| Bucket { upper_bound: b.upper_bound, count: count_of(b.cumulative_count, b.cumulative_count_float) })
        .collect();
    if buckets.last().is_none_or(|b| b.upper_bound != f64::INFINITY) {
        buckets.push(Bucket { upper_bound: f64::INFINITY, count });
    }
    HistogramValue { buckets, sum: h.sample_sum, count }
}

/// The messages of client_model's `metrics.proto` (proto2), with the fields
/// read here; the others are skipped as unknown fields.
pub(crate) mod wire {
    pub const COUNTER: i32 = 0;
    pub const GAUGE: i32 = 1;
    pub const SUMMARY: i32 = 2;
    pub const UNTYPED: i32 = 3;
    pub const HISTOGRAM: i32 = 4;
    pub const GAUGE_HISTOGRAM: i32 = 5;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MetricFamily {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub help: String,
        #[prost(int32, tag = "3")]
        pub r#type: i32,
        #[prost(message, repeated, tag = "4")]
        pub metric: Vec<Metric>,
        #[prost(string, tag = "5")]
        pub unit: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Metric {
        #[prost(message, repeated, tag = "1")]
        pub label: Vec<LabelPair>,
        #[prost(message, optional, tag = "2")]
        pub gauge: Option<Value>,
        #[prost(message, optional, tag = "3")]
        pub counter: Option<Value>,
        #[prost(message, optional, tag = "4")]
        pub summary: Option<Summary>,
        #[prost(message, optional, tag = "5")]
        pub untyped: Option<Value>,
        #[prost(int64, optional, tag = "6")]
        pub timestamp_ms: Option<i64>,
        #[prost(message, optional, tag = "7")]
        pub histogram: Option<Histogram>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LabelPair {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }

    /// `Gauge`, `Counter` and `Untyped`: a value in field 1.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Value {
        #[prost(double, tag = "1")]
        pub value: f64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Summary {
        #[prost(uint64, tag = "1")]
        pub sample_count: u64,
        #[prost(double, tag = "2")]
        pub sample_sum: f64,
        #[prost(message, repeated, tag = "3")]
        pub quantile: Vec<Quantile>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Quantile {
        #[prost(double, tag = "1")]
        pub quantile: f64,
        #[prost(double, tag = "2")]
        pub value: f64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Histogram {
        #[prost(uint64, tag = "1")]
        pub sample_count: u64,
        #[prost(double, tag = "2")]
        pub sample_sum: f64,
        #[prost(message, repeated, tag = "3")]
        pub bucket: Vec<Bucket>,
        #[prost(double, tag = "4")]
        pub sample_count_float: f64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Bucket {
        #[prost(uint64, tag = "1")]
        pub cumulative_count: u64,
        #[prost(double, tag = "2")]
        pub upper_bound: f64,
        #[prost(double, tag = "4")]
        pub cumulative_count_float: f64,
    }
}

/// Values the tests here and in `transcode` share.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::wire;

    /// Seven observations, two buckets and the implicit `+Inf`.
    pub fn histogram() -> wire::Histogram {
        wire::Histogram {
            sample_count: 7,
            sample_sum: 1.5,
            bucket: vec![
                wire::Bucket { cumulative_count: 3, upper_bound: 0.1, cumulative_count_float: 0.0 },
                wire::Bucket { cumulative_count: 5, upper_bound: 1.0, cumulative_count_float: 0.0 },
            ],
            sample_count_float: 0.0,
        }
    }

    pub fn summary() -> wire::Summary {
        wire::Summary {
            sample_count: 4,
            sample_sum: 2.25,
            quantile: vec![
                wire::Quantile { quantile: 0.5, value: 0.25 },
                wire::Quantile { quantile: 0.99, value: 1.0 },
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn pair(name: &str, value: &str) -> wire::LabelPair {
        wire::LabelPair { name: name.into(), value: value.into() }
    }

    fn value(v: f64) -> Option<wire::Value> {
        Some(wire::Value { value: v })
    }

    fn family(name: &str, kind: i32, metric: Vec<wire::Metric>) -> wire::MetricFamily {
        wire::MetricFamily {
            name: name.into(),
            help: format!("{name} help"),
            r#type: kind,
            metric,
            unit: String::new(),
        }
    }

    fn body(families: &[wire::MetricFamily]) -> Vec<u8> {
        let mut out = Vec::new();
        for f in families {
            f.encode_length_delimited(&mut out).unwrap();
        }
        out
    }

    #[test]
    fn every_type_comes_out_as_the_text_parser_gives_it() {
        let (histogram, summary) = (fixtures::histogram(), fixtures::summary());
        let parsed = parse(&body(&[
            family(
                "requests_total",
                wire::COUNTER,
                vec![wire::Metric {
                    label: vec![pair("method", "GET"), pair("code", "200")],
                    counter: value(12.0),
                    timestamp_ms: Some(1_700_000_000_000),
                    ..Default::default()
                }],
            ),
            family("temperature", wire::GAUGE, vec![wire::Metric { gauge: value(-3.5), ..Default::default() }]),
            family("legacy", wire::UNTYPED, vec![wire::Metric { untyped: value(f64::NAN), ..Default::default() }]),
            family("rpc_seconds", wire::SUMMARY, vec![wire::Metric { summary: Some(summary), ..Default::default() }]),
            family(
                "latency_seconds",
                wire::HISTOGRAM,
                vec![wire::Metric { histogram: Some(histogram), ..Default::default() }],
            ),
        ]))
        .unwrap();

        let names: Vec<&str> = parsed.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["requests_total", "temperature", "legacy", "rpc_seconds", "latency_seconds"]);
        assert_eq!(parsed[0].help, "requests_total help");
        assert_eq!(parsed[0].kind, MetricKind::Counter);
        let counter = &parsed[0].metrics[0];
        let labels: Vec<(&str, &str)> = counter.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect();
        assert_eq!(labels, [("method", "GET"), ("code", "200")], "label order is kept");
        assert!(matches!(counter.value, MetricValue::Counter(v) if v == 12.0));
        assert_eq!(counter.timestamp_ms, Some(1_700_000_000_000));
        assert!(matches!(parsed[1].metrics[0].value, MetricValue::Gauge(v) if v == -3.5));
        assert_eq!(parsed[1].metrics[0].timestamp_ms, None);
        assert_eq!(parsed[2].kind, MetricKind::Unknown);
        assert!(matches!(parsed[2].metrics[0].value, MetricValue::Gauge(v) if v.is_nan()));
        let MetricValue::Summary(s) = &parsed[3].metrics[0].value else { panic!("{:?}", parsed[3]) };
        let quantiles: Vec<(f64, f64)> = s.quantiles.iter().map(|q| (q.quantile, q.value)).collect();
        assert_eq!((quantiles, s.sum, s.count), (vec![(0.5, 0.25), (0.99, 1.0)], 2.25, 4));
        let MetricValue::Histogram(h) = &parsed[4].metrics[0].value else { panic!("{:?}", parsed[4]) };
        let buckets: Vec<(f64, u64)> = h.buckets.iter().map(|b| (b.upper_bound, b.count)).collect();
        assert_eq!(buckets, [(0.1, 3), (1.0, 5), (f64::INFINITY, 7)], "the implicit +Inf bucket is added");
        assert_eq!((h.sum, h.count), (1.5, 7));
    }

    #[test]
    fn an_explicit_inf_bucket_and_float_counts_are_taken_as_they_are() {
        let histogram = wire::Histogram {
            sample_count: 0,
            sample_count_float: 4.0,
            sample_sum: 8.0,
            bucket: vec![
                wire::Bucket { cumulative_count: 0, upper_bound: 2.0, cumulative_count_float: 1.0 },
                wire::Bucket { cumulative_count: 0, upper_bound: f64::INFINITY, cumulative_count_float: 4.0 },
            ],
        };
        let parsed = parse(&body(&[family(
            "sizes",
            wire::GAUGE_HISTOGRAM,
            vec![wire::Metric { histogram: Some(histogram), ..Default::default() }],
        )]))
        .unwrap();
        assert_eq!(parsed[0].kind, MetricKind::Histogram);
        let MetricValue::Histogram(h) = &parsed[0].metrics[0].value else { panic!("{:?}", parsed[0]) };
        let buckets: Vec<(f64, u64)> = h.buckets.iter().map(|b| (b.upper_bound, b.count)).collect();
        assert_eq!(buckets, [(2.0, 1), (f64::INFINITY, 4)]);
        assert_eq!(h.count, 4);
    }

    #[test]
    fn bad_bodies_are_refused_with_where() {
        let good = body(&[family("up", wire::GAUGE, vec![wire::Metric { gauge: value(1.0), ..Default::default() }])]);
        let mut truncated = good.clone();
        truncated.extend_from_slice(&good[..good.len() - 2]);
        let e = parse(&truncated).unwrap_err();
        assert!(e.starts_with(&format!("message 2 at byte {}:", good.len())), "{e}");

        let e = parse(&body(&[family("odd", 9, vec![])])).unwrap_err();
        assert_eq!(e, "message 1 at byte 0: family odd: unknown metric type 9");

        let e = parse(&body(&[family(
            "c_total",
            wire::COUNTER,
            vec![wire::Metric { gauge: value(1.0), ..Default::default() }],
        )]))
        .unwrap_err();
        assert_eq!(e, "message 1 at byte 0: family c_total, metric 1: no counter value");

        let e = parse(&body(&[family("", wire::GAUGE, vec![])])).unwrap_err();
        assert!(e.ends_with("a family without a name"), "{e}");

        // Text where protobuf was announced: the first "length" runs past the end.
        assert!(parse(b"# HELP up x\nup 1\n").unwrap_err().starts_with("message 1 at byte 0:"));
        assert!(parse(b"").unwrap().is_empty());
    }

    #[test]
    fn the_content_type_must_name_the_delimited_metric_family() {
        assert!(is_protobuf(
            "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
        ));
        assert!(is_protobuf(
            "Application/Vnd.Google.Protobuf;encoding=delimited;proto=\"io.prometheus.client.MetricFamily\""
        ));
        assert!(!is_protobuf(
            "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=text"
        ));
        assert!(!is_protobuf("application/vnd.google.protobuf; proto=other.Message; encoding=delimited"));
        assert!(!is_protobuf("text/plain; version=0.0.4; charset=utf-8"));
        assert!(!is_protobuf(""));
    }
}
