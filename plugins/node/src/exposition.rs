//! Prometheus text format (0.0.4) rendering of metric families, for golden
//! tests and debugging. The host does its own rendering; nothing here runs in
//! a scrape.

use std::fmt::Write;
use wasmon_sdk::{MetricFamily, MetricKind, MetricValue};

/// The type as a `# TYPE` line shows it.
pub fn kind_name(kind: MetricKind) -> &'static str {
    match kind {
        MetricKind::Counter => "counter",
        MetricKind::Gauge | MetricKind::Info | MetricKind::Stateset => "gauge",
        MetricKind::Histogram => "histogram",
        MetricKind::Summary => "summary",
        MetricKind::Unknown => "untyped",
    }
}

fn escape_label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        format!("{v}")
    }
}

fn series(out: &mut String, name: &str, labels: &[(String, String)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        let body: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape_label(v))).collect();
        let _ = write!(out, "{{{}}}", body.join(","));
    }
    let _ = writeln!(out, " {}", number(value));
}

/// Render `families` in the order given; label pairs are sorted by name so
/// the output is stable.
pub fn render(families: &[MetricFamily]) -> String {
    let mut out = String::new();
    for family in families {
        let _ = writeln!(out, "# HELP {} {}", family.name, escape_help(&family.help));
        let _ = writeln!(out, "# TYPE {} {}", family.name, kind_name(family.kind));
        for metric in &family.metrics {
            let mut labels: Vec<(String, String)> =
                metric.labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect();
            labels.sort();
            match &metric.value {
                MetricValue::Gauge(v) | MetricValue::Counter(v) => series(&mut out, &family.name, &labels, *v),
                MetricValue::Histogram(h) => {
                    for bucket in &h.buckets {
                        let mut with_le = labels.clone();
                        with_le.push(("le".into(), number(bucket.upper_bound)));
                        series(&mut out, &format!("{}_bucket", family.name), &with_le, bucket.count as f64);
                    }
                    series(&mut out, &format!("{}_sum", family.name), &labels, h.sum);
                    series(&mut out, &format!("{}_count", family.name), &labels, h.count as f64);
                }
                MetricValue::Summary(s) => {
                    for q in &s.quantiles {
                        let mut with_q = labels.clone();
                        with_q.push(("quantile".into(), number(q.quantile)));
                        series(&mut out, &family.name, &with_q, q.value);
                    }
                    series(&mut out, &format!("{}_sum", family.name), &labels, s.sum);
                    series(&mut out, &format!("{}_count", family.name), &labels, s.count as f64);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmon_sdk::Family;

    #[test]
    fn renders_help_type_and_sorted_labels() {
        let mut f = Family::counter("x_total", "An \"x\"\\.");
        f.sample(&[("mode", "a\"b"), ("cpu", "0")], 1.5);
        let text = render(&[f.build()]);
        assert_eq!(
            text,
            "# HELP x_total An \"x\"\\\\.\n# TYPE x_total counter\nx_total{cpu=\"0\",mode=\"a\\\"b\"} 1.5\n"
        );
    }
}
