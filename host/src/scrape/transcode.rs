//! Prometheus' protobuf exposition written straight into the text formats,
//! for `/probe` of a plugin that passes its target's `/metrics` through
//! (etcd's: ~1,250 series). The families are never built: their label names
//! and values are borrowed from the body, checked and written, instead of
//! being allocated, checked, encoded and freed one by one, which was about
//! 40% of the agent's CPU per etcd probe.
//!
//! The fast path only handles what it is sure of. A malformed message, a
//! field repeated that protobuf would merge, or anything
//! [`validate`](crate::scheduler::validate) would drop makes it decline, and
//! the caller takes the general path for that body (`protobuf::parse`,
//! `validate_after`, `encode`), which reports the error or drops what it
//! must. So both paths give the same text; `tests` and a proptest check this.

use super::protobuf::{count_of, kind_of, wire};
use crate::config::{is_valid_label_name, is_valid_metric_name};
use crate::exposition::{self, Format};
use crate::runtime::model::{Bucket, HistogramValue, MetricKind, MetricValue, Quantile, SummaryValue};
use crate::scheduler::validate::{PassThrough, check_buckets, label_set_hash, reserved_by_kind};
use std::collections::HashSet;
use std::hash::BuildHasherDefault;

/// The fast path gave up on a body; take the general one.
#[derive(Debug, PartialEq, Eq)]
pub struct Declined;

/// Write the families of a delimited `MetricFamily` body to `out` in
/// `format` (without OpenMetrics' `# EOF`), as the general path would after
/// validating them behind the families in `seen`. On success the body's
/// family names are added to `seen` and pushed to `names`, in order; on
/// [`Declined`], `out`, `seen` and `names` are as they were.
pub fn transcode(
    body: &[u8],
    format: Format,
    seen: &mut HashSet<String>,
    names: &mut Vec<String>,
    out: &mut String,
) -> Result<(), Declined> {
    let out_len = out.len();
    let mut scratch = Scratch::default();
    // This body's names, in order, with a set to find one named twice.
    let (mut order, mut local): (Vec<&str>, HashSet<&str>) = (Vec::new(), HashSet::new());
    let mut reader = Reader::new(body);
    while !reader.is_empty() {
        let written = reader.length_delimited().and_then(|family| write_family(family, format, &mut scratch, out));
        match written {
            Ok(name) if !seen.contains(name) && local.insert(name) => order.push(name),
            _ => {
                out.truncate(out_len);
                return Err(Declined);
            }
        }
    }
    for name in order {
        seen.insert(name.to_string());
        names.push(name.to_string());
    }
    Ok(())
}

/// Buffers reused from one series to the next.
#[derive(Default)]
struct Scratch<'a> {
    labels: Vec<(&'a str, &'a str)>,
    buckets: Vec<Bucket>,
    quantiles: Vec<Quantile>,
}

/// The fields of a `MetricFamily` other than its metrics.
struct FamilyHeader<'a> {
    name: &'a str,
    help: &'a str,
    unit: &'a str,
    kind_number: i32,
    metrics: usize,
}

impl<'a> FamilyHeader<'a> {
    fn read(message: &'a [u8]) -> Result<Self, Declined> {
        let mut header = FamilyHeader { name: "", help: "", unit: "", kind_number: 0, metrics: 0 };
        let mut fields = Reader::new(message);
        while let Some((number, value)) = fields.field()? {
            // Scalars and strings: the last one wins, as in protobuf.
            match (number, value) {
                (1, Wire::Bytes(b)) => header.name = utf8(b)?,
                (2, Wire::Bytes(b)) => header.help = utf8(b)?,
                (3, Wire::Varint(v)) => header.kind_number = v as i32,
                (4, Wire::Bytes(_)) => header.metrics += 1,
                (5, Wire::Bytes(b)) => header.unit = utf8(b)?,
                (1..=5, _) => return Err(Declined),
                _ => {}
            }
        }
        Ok(header)
    }
}

/// Write one family; returns its name.
fn write_family<'a>(
    message: &'a [u8],
    format: Format,
    scratch: &mut Scratch<'a>,
    out: &mut String,
) -> Result<&'a str, Declined> {
    let header = FamilyHeader::read(message)?;
    let kind = kind_of(header.kind_number).ok_or(Declined)?;
    if !is_valid_metric_name(header.name) {
        return Err(Declined);
    }
    // A family without series is dropped by validation, its name kept.
    if header.metrics == 0 {
        return Ok(header.name);
    }
    let names = exposition::write_family_header(out, header.name, header.help, header.unit, kind, format);
    let mut seen_series: HashSet<u64, BuildHasherDefault<PassThrough>> = HashSet::default();
    let mut fields = Reader::new(message);
    while let Some((number, value)) = fields.field()? {
        let (4, Wire::Bytes(metric)) = (number, value) else { continue };
        let (value, timestamp) = read_metric(metric, header.kind_number, kind, scratch)?;
        if !seen_series.insert(label_set_hash(&scratch.labels)) {
            return Err(Declined);
        }
        exposition::write_metric(out, &names, &scratch.labels, &value, timestamp);
        // Hand the buffers back for the next series.
        match value {
            MetricValue::Histogram(h) => scratch.buckets = h.buckets,
            MetricValue::Summary(s) => scratch.quantiles = s.quantiles,
            _ => {}
        }
    }
    Ok(header.name)
}

/// Read one `Metric` into `scratch.labels` and a value, checked as
/// validation checks it.
fn read_metric<'a>(
    message: &'a [u8],
    kind_number: i32,
    kind: MetricKind,
    scratch: &mut Scratch<'a>,
) -> Result<(MetricValue, Option<i64>), Declined> {
    scratch.labels.clear();
    let mut value_message: Option<&[u8]> = None;
    let mut timestamp = None;
    // The value field this family's type reads (as `protobuf::parse` does).
    let wanted = match kind_number {
        wire::COUNTER => 3,
        wire::GAUGE => 2,
        wire::SUMMARY => 4,
        wire::UNTYPED => 5,
        _ => 7,
    };
    let mut fields = Reader::new(message);
    while let Some((number, value)) = fields.field()? {
        match (number, value) {
            (1, Wire::Bytes(pair)) => scratch.labels.push(read_label(pair)?),
            (6, Wire::Varint(v)) => timestamp = Some(v as i64),
            // A second one would be merged into the first: leave that to prost.
            (n, Wire::Bytes(_)) if n == wanted && value_message.is_some() => return Err(Declined),
            (n, Wire::Bytes(b)) if n == wanted => value_message = Some(b),
            // prost decodes the other value fields too, and fails on a bad one.
            (2 | 3 | 5, Wire::Bytes(other)) => {
                read_value(other)?;
            }
            (4 | 7, Wire::Bytes(_)) => return Err(Declined),
            (1..=7, _) => return Err(Declined),
            _ => {}
        }
    }
    for (i, (name, _)) in scratch.labels.iter().enumerate() {
        let clash = scratch.labels[..i].iter().any(|(earlier, _)| earlier == name);
        if !is_valid_label_name(name) || name.starts_with("__") || reserved_by_kind(kind, name).is_some() || clash {
            return Err(Declined);
        }
    }
    let message = value_message.ok_or(Declined)?;
    let value = match kind_number {
        wire::COUNTER => {
            let v = read_value(message)?;
            if v < 0.0 {
                return Err(Declined);
            }
            MetricValue::Counter(v)
        }
        wire::GAUGE | wire::UNTYPED => MetricValue::Gauge(read_value(message)?),
        wire::SUMMARY => MetricValue::Summary(read_summary(message, std::mem::take(&mut scratch.quantiles))?),
        _ => MetricValue::Histogram(read_histogram(message, std::mem::take(&mut scratch.buckets))?),
    };
    Ok((value, timestamp))
}

fn read_label(message: &[u8]) -> Result<(&str, &str), Declined> {
    let (mut name, mut value) = ("", "");
    let mut fields = Reader::new(message);
    while let Some((number, field)) = fields.field()? {
        match (number, field) {
            (1, Wire::Bytes(b)) => name = utf8(b)?,
            (2, Wire::Bytes(b)) => value = utf8(b)?,
            (1 | 2, _) => return Err(Declined),
            _ => {}
        }
    }
    Ok((name, value))
}

/// `Gauge`, `Counter`, `Untyped`: field 1, 0 when absent.
fn read_value(message: &[u8]) -> Result<f64, Declined> {
    let mut value = 0.0;
    let mut fields = Reader::new(message);
    while let Some((number, field)) = fields.field()? {
        match (number, field) {
            (1, Wire::Fixed64(bits)) => value = f64::from_bits(bits),
            (1, _) => return Err(Declined),
            _ => {}
        }
    }
    Ok(value)
}

fn read_summary(message: &[u8], mut quantiles: Vec<Quantile>) -> Result<SummaryValue, Declined> {
    quantiles.clear();
    let (mut count, mut sum) = (0, 0.0);
    let mut fields = Reader::new(message);
    while let Some((number, field)) = fields.field()? {
        match (number, field) {
            (1, Wire::Varint(v)) => count = v,
            (2, Wire::Fixed64(bits)) => sum = f64::from_bits(bits),
            (3, Wire::Bytes(q)) => {
                let (mut quantile, mut value) = (0.0, 0.0);
                let mut q_fields = Reader::new(q);
                while let Some((number, field)) = q_fields.field()? {
                    match (number, field) {
                        (1, Wire::Fixed64(bits)) => quantile = f64::from_bits(bits),
                        (2, Wire::Fixed64(bits)) => value = f64::from_bits(bits),
                        (1 | 2, _) => return Err(Declined),
                        _ => {}
                    }
                }
                if !(0.0..=1.0).contains(&quantile) {
                    return Err(Declined);
                }
                quantiles.push(Quantile { quantile, value });
            }
            (1..=3, _) => return Err(Declined),
            _ => {}
        }
    }
    Ok(SummaryValue { quantiles, sum, count })
}

/// A classic histogram with its `+Inf` bucket, as `protobuf::parse` makes it.
fn read_histogram(message: &[u8], mut buckets: Vec<Bucket>) -> Result<HistogramValue, Declined> {
    buckets.clear();
    let (count, sum) = read_counted(
        message,
        Some(&mut |bucket| {
            let (count, upper_bound) = read_counted(bucket, None)?;
            buckets.push(Bucket { upper_bound, count });
            Ok(())
        }),
    )?;
    if buckets.last().is_none_or(|b| b.upper_bound != f64::INFINITY) {
        buckets.push(Bucket { upper_bound: f64::INFINITY, count });
    }
    check_buckets(&mut buckets, count).map_err(|_| Declined)?;
    Ok(HistogramValue { buckets, sum, count })
}

/// Reads one nested message (a histogram's bucket).
type ReadNested<'a> = dyn FnMut(&[u8]) -> Result<(), Declined> + 'a;

/// The fields a histogram and each of its buckets share: 1, an integer
/// count; 2, a double (the sum, the upper bound); 4, a float count, taken
/// when the integer one is 0. `nested` reads field 3 (the buckets) when
/// given; otherwise it is skipped, as prost skips a bucket's exemplar.
fn read_counted(message: &[u8], mut nested: Option<&mut ReadNested<'_>>) -> Result<(u64, f64), Declined> {
    let (mut count, mut count_float, mut double) = (0, 0.0, 0.0);
    let mut fields = Reader::new(message);
    while let Some((number, field)) = fields.field()? {
        match (number, field, &mut nested) {
            (1, Wire::Varint(v), _) => count = v,
            (2, Wire::Fixed64(bits), _) => double = f64::from_bits(bits),
            (4, Wire::Fixed64(bits), _) => count_float = f64::from_bits(bits),
            (3, Wire::Bytes(b), Some(nested)) => nested(b)?,
            (1 | 2 | 4, _, _) | (3, _, Some(_)) => return Err(Declined),
            _ => {}
        }
    }
    Ok((count_of(count, count_float), double))
}

fn utf8(bytes: &[u8]) -> Result<&str, Declined> {
    std::str::from_utf8(bytes).map_err(|_| Declined)
}

/// One field's value, by wire type.
enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32,
}

/// A cursor over protobuf wire format.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    #[inline]
    fn varint(&mut self) -> Result<u64, Declined> {
        // Most are one byte: keys, lengths of labels, small counts.
        if let Some(&byte) = self.rest.first()
            && byte < 0x80
        {
            self.rest = &self.rest[1..];
            return Ok(u64::from(byte));
        }
        let mut value: u64 = 0;
        for (i, &byte) in self.rest.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                // The tenth byte may only carry the top bit.
                if i == 9 && byte > 1 {
                    return Err(Declined);
                }
                self.rest = &self.rest[i + 1..];
                return Ok(value);
            }
        }
        Err(Declined)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Declined> {
        if n > self.rest.len() {
            return Err(Declined);
        }
        let (taken, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(taken)
    }

    /// A varint length and that many bytes.
    fn length_delimited(&mut self) -> Result<&'a [u8], Declined> {
        let len = usize::try_from(self.varint()?).map_err(|_| Declined)?;
        self.take(len)
    }

    /// The next field, or `None` at the end.
    #[inline]
    fn field(&mut self) -> Result<Option<(u32, Wire<'a>)>, Declined> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let key = u32::try_from(self.varint()?).map_err(|_| Declined)?;
        let number = key >> 3;
        if number == 0 {
            return Err(Declined);
        }
        let value = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => Wire::Fixed64(u64::from_le_bytes(self.take(8)?.try_into().map_err(|_| Declined)?)),
            2 => Wire::Bytes(self.length_delimited()?),
            5 => {
                self.take(4)?;
                Wire::Fixed32
            }
            // Groups (3, 4) and the rest: left to prost.
            _ => return Err(Declined),
        };
        Ok(Some((number, value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::validate::validate_after;
    use prost::Message;

    /// What the general path writes for `body` behind `seen`.
    fn general(body: &[u8], format: Format, seen: &mut HashSet<String>) -> Result<String, String> {
        let families = super::super::protobuf::parse(body)?;
        let (families, _) = validate_after(families, seen);
        let mut out = String::new();
        for family in &families {
            exposition::write_family(&mut out, &[family], format);
        }
        Ok(out)
    }

    fn fast(body: &[u8], format: Format, seen: &mut HashSet<String>) -> Result<(String, Vec<String>), Declined> {
        let (mut out, mut names) = (String::new(), Vec::new());
        transcode(body, format, seen, &mut names, &mut out)?;
        Ok((out, names))
    }

    fn encode(families: &[wire::MetricFamily]) -> Vec<u8> {
        let mut out = Vec::new();
        for f in families {
            f.encode_length_delimited(&mut out).unwrap();
        }
        out
    }

    fn pair(name: &str, value: &str) -> wire::LabelPair {
        wire::LabelPair { name: name.into(), value: value.into() }
    }

    fn counter(name: &str, series: &[(&[(&str, &str)], f64)]) -> wire::MetricFamily {
        wire::MetricFamily {
            name: name.into(),
            help: format!("{name} help \\ with\nescapes"),
            r#type: wire::COUNTER,
            metric: series
                .iter()
                .map(|(labels, v)| wire::Metric {
                    label: labels.iter().map(|(n, v)| pair(n, v)).collect(),
                    counter: Some(wire::Value { value: *v }),
                    ..Default::default()
                })
                .collect(),
            unit: String::new(),
        }
    }

    /// A histogram family `h` with one series.
    fn histogram_family(labels: Vec<wire::LabelPair>, histogram: wire::Histogram) -> Vec<wire::MetricFamily> {
        vec![wire::MetricFamily {
            name: "h".into(),
            r#type: wire::HISTOGRAM,
            metric: vec![wire::Metric { label: labels, histogram: Some(histogram), ..Default::default() }],
            ..Default::default()
        }]
    }

    fn every_type() -> Vec<wire::MetricFamily> {
        let (histogram, summary) =
            (super::super::protobuf::fixtures::histogram(), super::super::protobuf::fixtures::summary());
        vec![
            counter(
                "requests_total",
                &[(&[("method", "GET"), ("code", "200")], 12.0), (&[("method", "a\"b\\c\nd")], 1.0)],
            ),
            wire::MetricFamily {
                name: "temperature_celsius".into(),
                help: String::new(),
                r#type: wire::GAUGE,
                metric: vec![wire::Metric {
                    gauge: Some(wire::Value { value: -3.5 }),
                    timestamp_ms: Some(1_700_000_000_123),
                    ..Default::default()
                }],
                unit: "celsius".into(),
            },
            wire::MetricFamily {
                name: "legacy".into(),
                r#type: wire::UNTYPED,
                metric: vec![wire::Metric { untyped: Some(wire::Value { value: f64::NAN }), ..Default::default() }],
                ..Default::default()
            },
            wire::MetricFamily {
                name: "rpc_seconds".into(),
                r#type: wire::SUMMARY,
                metric: vec![wire::Metric { summary: Some(summary), ..Default::default() }],
                ..Default::default()
            },
            wire::MetricFamily {
                name: "latency_seconds".into(),
                r#type: wire::HISTOGRAM,
                metric: vec![wire::Metric {
                    label: vec![pair("path", "/")],
                    histogram: Some(histogram),
                    ..Default::default()
                }],
                ..Default::default()
            },
            wire::MetricFamily { name: "empty".into(), r#type: wire::GAUGE, ..Default::default() },
        ]
    }

    #[test]
    fn every_type_comes_out_as_the_general_path_writes_it_in_both_formats() {
        let body = encode(&every_type());
        for format in [Format::Text004, Format::OpenMetrics] {
            let (text, names) = fast(&body, format, &mut HashSet::new()).expect("the fast path takes this body");
            assert_eq!(text, general(&body, format, &mut HashSet::new()).unwrap(), "{format:?}");
            assert_eq!(
                names,
                ["requests_total", "temperature_celsius", "legacy", "rpc_seconds", "latency_seconds", "empty"]
            );
        }
        let (text, _) = fast(&body, Format::Text004, &mut HashSet::new()).unwrap();
        assert!(text.contains("latency_seconds_bucket{path=\"/\",le=\"+Inf\"} 7\n"), "{text}");
        assert!(text.contains("requests_total{method=\"a\\\"b\\\\c\\nd\"} 1\n"), "{text}");
        assert!(!text.contains("empty"), "a family without series is left out: {text}");
    }

    #[test]
    fn names_seen_before_and_their_order_are_kept() {
        let body = encode(&every_type());
        let mut seen: HashSet<String> = ["plugin_family".to_string()].into();
        let (_, names) = fast(&body, Format::Text004, &mut seen).unwrap();
        assert_eq!(seen.len(), 1 + names.len());
        assert!(names.iter().all(|n| seen.contains(n)));
        // A body naming a family seen before: the general path drops the second.
        let mut seen: HashSet<String> = ["legacy".to_string()].into();
        assert_eq!(fast(&body, Format::Text004, &mut seen), Err(Declined));
        assert_eq!(seen.len(), 1, "a declined body adds no names");
    }

    #[test]
    fn what_validation_would_drop_is_left_to_the_general_path() {
        let cases: Vec<(&str, Vec<wire::MetricFamily>)> = vec![
            ("invalid metric name", vec![counter("bad-name", &[(&[], 1.0)])]),
            ("invalid label name", vec![counter("c_total", &[(&[("bad-label", "x")], 1.0)])]),
            ("reserved label", vec![counter("c_total", &[(&[("__name__", "x")], 1.0)])]),
            ("duplicate label", vec![counter("c_total", &[(&[("a", "1"), ("a", "2")], 1.0)])]),
            ("duplicate series", vec![counter("c_total", &[(&[("a", "1")], 1.0), (&[("a", "1")], 2.0)])]),
            ("negative counter", vec![counter("c_total", &[(&[], -1.0)])]),
            ("duplicate family", vec![counter("c_total", &[(&[], 1.0)]), counter("c_total", &[(&[], 2.0)])]),
            (
                "le on a histogram",
                histogram_family(vec![pair("le", "1")], wire::Histogram { sample_count: 1, ..Default::default() }),
            ),
            (
                "decreasing buckets",
                histogram_family(
                    vec![],
                    wire::Histogram {
                        sample_count: 5,
                        bucket: vec![
                            wire::Bucket { cumulative_count: 3, upper_bound: 1.0, cumulative_count_float: 0.0 },
                            wire::Bucket { cumulative_count: 2, upper_bound: 2.0, cumulative_count_float: 0.0 },
                        ],
                        ..Default::default()
                    },
                ),
            ),
            (
                "a counter family with a gauge value",
                vec![wire::MetricFamily {
                    name: "c_total".into(),
                    r#type: wire::COUNTER,
                    metric: vec![wire::Metric { gauge: Some(wire::Value { value: 1.0 }), ..Default::default() }],
                    ..Default::default()
                }],
            ),
            ("unknown type", vec![wire::MetricFamily { name: "t".into(), r#type: 9, ..Default::default() }]),
        ];
        for (what, families) in cases {
            let mut body = encode(&every_type()[..1]);
            body.extend(encode(&families));
            let mut out = String::from("before\n");
            let (mut names, mut seen) = (vec!["x".to_string()], HashSet::new());
            assert_eq!(transcode(&body, Format::Text004, &mut seen, &mut names, &mut out), Err(Declined), "{what}");
            assert_eq!((out.as_str(), names.len(), seen.len()), ("before\n", 1, 0), "{what}: nothing left behind");
        }
    }

    #[test]
    fn malformed_bodies_are_declined_not_misread() {
        let good = encode(&every_type());
        for cut in [1, 2, 10, good.len() / 2, good.len() - 1] {
            assert_eq!(fast(&good[..cut], Format::Text004, &mut HashSet::new()), Err(Declined), "cut at {cut}");
        }
        assert_eq!(fast(b"# HELP up x\nup 1\n", Format::Text004, &mut HashSet::new()), Err(Declined));
        // Invalid UTF-8 in a label value: prost refuses it, and so does this.
        let mut bad = encode(&[counter("c_total", &[(&[("a", "\u{e9}")], 1.0)])]);
        let at = bad.windows(2).position(|w| w == "\u{e9}".as_bytes()).unwrap();
        bad[at + 1] = 0xff;
        assert_eq!(fast(&bad, Format::Text004, &mut HashSet::new()), Err(Declined));
        assert!(fast(b"", Format::Text004, &mut HashSet::new()).unwrap().0.is_empty());
    }

    /// A body of one family (its own metrics left out) with `metric`, encoded by hand.
    fn body_with_metric(family: &wire::MetricFamily, metric: &[u8]) -> Vec<u8> {
        let mut message = family.encode_to_vec();
        message.push(4 << 3 | 2);
        prost::encoding::encode_varint(metric.len() as u64, &mut message);
        message.extend(metric);
        let mut body = Vec::new();
        prost::encoding::encode_varint(message.len() as u64, &mut body);
        body.extend(&message);
        body
    }

    #[test]
    fn what_prost_refuses_is_declined_even_where_it_is_not_read() {
        // A counter's metric with a gauge field holding a varint where a double goes.
        let mut metric =
            wire::Metric { counter: Some(wire::Value { value: 1.0 }), ..Default::default() }.encode_to_vec();
        metric.extend([2 << 3 | 2, 2, 1 << 3, 1]);
        // A key above u32::MAX (field 2^29), which prost refuses.
        let mut huge_key =
            wire::Metric { counter: Some(wire::Value { value: 1.0 }), ..Default::default() }.encode_to_vec();
        huge_key.extend([0x80, 0x80, 0x80, 0x80, 0x10, 0]);
        for (what, metric) in [("a bad value field", metric), ("a key above u32::MAX", huge_key)] {
            let family = wire::MetricFamily { name: "c_total".into(), r#type: wire::COUNTER, ..Default::default() };
            let body = body_with_metric(&family, &metric);
            assert!(super::super::protobuf::parse(&body).is_err(), "{what}: prost refuses it");
            assert_eq!(fast(&body, Format::Text004, &mut HashSet::new()), Err(Declined), "{what}");
        }
    }

    #[test]
    fn unknown_fields_are_skipped_as_prost_skips_them() {
        // A native-histogram field (5, schema) in the histogram, an unknown fixed32 in the metric.
        let mut family = every_type().remove(4);
        let mut histogram = Vec::new();
        family.metric[0].histogram.take().unwrap().encode(&mut histogram).unwrap();
        histogram.extend([5 << 3, 3]); // schema: 3 (varint)
        let mut metric = wire::Metric { label: vec![pair("path", "/")], ..Default::default() }.encode_to_vec();
        metric.push(7 << 3 | 2);
        prost::encoding::encode_varint(histogram.len() as u64, &mut metric);
        metric.extend(&histogram);
        metric.extend([9 << 3 | 5, 0, 0, 0, 0]); // an unknown fixed32
        let body = body_with_metric(&wire::MetricFamily { metric: vec![], ..family }, &metric);
        let (text, _) = fast(&body, Format::Text004, &mut HashSet::new()).expect("unknown fields are skipped");
        assert_eq!(text, general(&body, Format::Text004, &mut HashSet::new()).unwrap());
        assert!(text.contains("latency_seconds_count{path=\"/\"} 7\n"), "{text}");
    }

    mod generated {
        use super::*;
        use proptest::prelude::*;

        /// Mostly valid names, sometimes one validation drops.
        fn label_name() -> impl Strategy<Value = String> {
            prop_oneof![
                12 => "[a-d]{1,2}",
                1 => Just("le".to_string()),
                1 => Just("__x".to_string()),
                1 => Just("bad-x".to_string()),
            ]
        }

        fn metric(kind: i32) -> impl Strategy<Value = wire::Metric> {
            let labels = prop::collection::vec((label_name(), "[a-z\"\\\\\n]{0,3}"), 0..3);
            let value = prop_oneof![
                1 => Just(-1.0),
                3 => Just(0.0),
                3 => Just(2.5),
                1 => Just(f64::INFINITY),
                1 => Just(f64::NAN),
                1 => Just(1e20),
                1 => Just(0.000_012_5),
            ];
            // Cumulative counts over increasing bounds, now and then out of order.
            let buckets = prop::collection::vec((0u64..3, prop_oneof![6 => Just(true), 1 => Just(false)]), 0..4);
            (labels, value, buckets, 0u64..3, proptest::option::of(0i64..2_000_000)).prop_map(
                move |(labels, v, steps, extra, timestamp_ms)| {
                    let value = Some(wire::Value { value: v });
                    let mut m = wire::Metric {
                        label: labels.iter().map(|(n, v)| pair(n, v)).collect(),
                        timestamp_ms,
                        ..Default::default()
                    };
                    let mut cumulative = 0;
                    let bucket: Vec<wire::Bucket> = steps
                        .iter()
                        .enumerate()
                        .map(|(i, (step, in_order))| {
                            cumulative += step;
                            let upper_bound = if *in_order { 0.25 * (i + 1) as f64 } else { 0.1 };
                            wire::Bucket { cumulative_count: cumulative, upper_bound, cumulative_count_float: 0.0 }
                        })
                        .collect();
                    match kind {
                        wire::COUNTER => m.counter = value,
                        wire::GAUGE => m.gauge = value,
                        wire::UNTYPED => m.untyped = value,
                        wire::SUMMARY => {
                            m.summary = Some(wire::Summary {
                                sample_count: extra,
                                sample_sum: v,
                                quantile: vec![wire::Quantile { quantile: v.clamp(-1.0, 2.0) / 2.0, value: v }],
                            })
                        }
                        _ => {
                            m.histogram = Some(wire::Histogram {
                                sample_count: cumulative + extra,
                                sample_sum: v,
                                bucket,
                                sample_count_float: 0.0,
                            })
                        }
                    }
                    m
                },
            )
        }

        fn family() -> impl Strategy<Value = wire::MetricFamily> {
            let name = prop_oneof![
                Just("a_total"),
                Just("b"),
                Just("c_seconds"),
                Just("d_bytes"),
                Just("e_info"),
                Just("f"),
                Just("g_total"),
                Just("bad-name"),
            ];
            (name, 0i32..6).prop_flat_map(|(name, kind)| {
                prop::collection::vec(metric(kind), 0..4).prop_map(move |metric| wire::MetricFamily {
                    name: name.into(),
                    help: "h \\ \n".into(),
                    r#type: kind,
                    metric,
                    unit: if name.ends_with("_seconds") { "seconds".into() } else { String::new() },
                })
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]
            /// Whatever the fast path takes, it writes as the general path does.
            #[test]
            fn the_fast_path_writes_what_the_general_path_writes(
                families in prop::collection::vec(family(), 0..4),
                om in any::<bool>(),
            ) {
                let format = if om { Format::OpenMetrics } else { Format::Text004 };
                let body = encode(&families);
                let mut seen: HashSet<String> = ["other_family".to_string()].into();
                let expected = general(&body, format, &mut seen.clone());
                if let Ok((text, names)) = fast(&body, format, &mut seen) {
                    prop_assert_eq!(Ok(text), expected);
                    prop_assert_eq!(names, families.iter().map(|f| f.name.clone()).collect::<Vec<_>>());
                }
            }
        }
    }
}
