//! The text parser against real scrapes (Debian 12 packages, see `fixtures/`): node_exporter
//! 1.5.0, mysqld_exporter 0.14.0, nginx exporter 0.11.0 and etcd 3.4.23. Each `*_families.txt`
//! lists the `name TYPE` pairs of the matching capture, sorted.

use std::collections::BTreeSet;

use wasmon_sdk::text::{self, Format};
use wasmon_sdk::{HistogramValue, Label, MetricFamily, MetricKind, MetricValue, SummaryValue};

const NODE: &str = include_str!("fixtures/node_exporter_sample.prom");
const MYSQLD: &str = include_str!("fixtures/mysqld_exporter_sample.prom");
const NGINX: &str = include_str!("fixtures/nginx_exporter_sample.prom");
const ETCD: &str = include_str!("fixtures/etcd_sample.prom");

const CAPTURES: [(&str, &str, &str); 4] = [
    ("node_exporter", NODE, include_str!("fixtures/node_exporter_families.txt")),
    ("mysqld_exporter", MYSQLD, include_str!("fixtures/mysqld_exporter_families.txt")),
    ("nginx_exporter", NGINX, include_str!("fixtures/nginx_exporter_families.txt")),
    ("etcd", ETCD, include_str!("fixtures/etcd_families.txt")),
];

fn parse(name: &str, text: &str) -> Vec<MetricFamily> {
    text::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn family<'a>(families: &'a [MetricFamily], name: &str) -> &'a MetricFamily {
    families.iter().find(|f| f.name == name).unwrap_or_else(|| panic!("no family {name}"))
}

/// The value of the only series of a family with these labels.
fn value_of(families: &[MetricFamily], name: &str, labels: &[(&str, &str)]) -> MetricValue {
    let wanted: Vec<Label> = labels.iter().map(|(n, v)| Label { name: (*n).into(), value: (*v).into() }).collect();
    let family = family(families, name);
    let metric =
        family.metrics.iter().find(|m| m.labels == wanted).unwrap_or_else(|| panic!("no series {name}{labels:?}"));
    metric.value.clone()
}

fn histogram_of(families: &[MetricFamily], name: &str) -> HistogramValue {
    match value_of(families, name, &[]) {
        MetricValue::Histogram(h) => h,
        other => panic!("{name} is not a histogram: {other:?}"),
    }
}

fn summary_of(families: &[MetricFamily], name: &str) -> SummaryValue {
    match value_of(families, name, &[]) {
        MetricValue::Summary(s) => s,
        other => panic!("{name} is not a summary: {other:?}"),
    }
}

/// The word a `# TYPE` line uses for a kind, as the families lists spell it.
fn type_word(kind: MetricKind) -> &'static str {
    match kind {
        MetricKind::Counter => "counter",
        MetricKind::Gauge => "gauge",
        MetricKind::Histogram => "histogram",
        MetricKind::Summary => "summary",
        MetricKind::Unknown => "untyped",
        MetricKind::Info => "info",
        MetricKind::Stateset => "stateset",
    }
}

#[test]
fn one_family_per_type_line_with_the_listed_names_and_types() {
    for (name, text, listed) in CAPTURES {
        let families = parse(name, text);
        let type_lines = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
        assert_eq!(families.len(), type_lines, "{name}");

        let parsed: BTreeSet<String> = families.iter().map(|f| format!("{} {}", f.name, type_word(f.kind))).collect();
        let listed: BTreeSet<String> = listed.lines().map(str::to_string).collect();
        assert_eq!(parsed, listed, "{name}");
        // Every family of these captures has a HELP line and at least one series.
        assert!(families.iter().all(|f| !f.help.is_empty() && !f.metrics.is_empty()), "{name}");
    }
}

#[test]
fn every_sample_line_is_accounted_for() {
    for (name, text, _) in CAPTURES {
        let families = parse(name, text);
        let sample_lines = text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).count();
        // A histogram series takes one line per bucket plus _sum and _count; a summary
        // one per quantile plus _sum and _count.
        let lines: usize = families
            .iter()
            .flat_map(|f| &f.metrics)
            .map(|m| match &m.value {
                MetricValue::Histogram(h) => h.buckets.len() + 2,
                MetricValue::Summary(s) => s.quantiles.len() + 2,
                _ => 1,
            })
            .sum();
        assert_eq!(lines, sample_lines, "{name}");
    }
}

#[test]
fn node_exporter_values() {
    let f = parse("node", NODE);
    assert_eq!(value_of(&f, "node_load1", &[]), MetricValue::Gauge(0.15));
    assert_eq!(value_of(&f, "node_boot_time_seconds", &[]), MetricValue::Gauge(1.795317598e9));
    assert_eq!(value_of(&f, "node_scrape_collector_success", &[("collector", "systemd")]), MetricValue::Gauge(0.0));
    let failed = family(&f, "node_scrape_collector_success")
        .metrics
        .iter()
        .filter(|m| m.value == MetricValue::Gauge(0.0))
        .count();
    assert_eq!(failed, 15, "the README says 15 collectors fail on this VM");

    // Twelve labels, in the order node_exporter wrote them.
    let os = &family(&f, "node_os_info").metrics[0];
    let names: Vec<&str> = os.labels.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names[..3], ["build_id", "id", "id_like"]);
    assert_eq!(os.labels.len(), 12);
    assert_eq!(
        os.labels.iter().find(|l| l.name == "pretty_name").map(|l| l.value.as_str()),
        Some("Debian GNU/Linux 12 (bookworm)")
    );

    let gc = summary_of(&f, "go_gc_duration_seconds");
    let quantiles: Vec<f64> = gc.quantiles.iter().map(|q| q.quantile).collect();
    assert_eq!(quantiles, [0.0, 0.25, 0.5, 0.75, 1.0]);
    assert_eq!(gc.quantiles[0].value, 2.64e-05);

    let counters = f.iter().filter(|f| f.kind == MetricKind::Counter);
    assert!(counters.flat_map(|f| &f.metrics).all(|m| matches!(m.value, MetricValue::Counter(_))));
}

#[test]
fn mysqld_exporter_values() {
    let f = parse("mysqld", MYSQLD);
    assert_eq!(value_of(&f, "mysql_up", &[]), MetricValue::Gauge(1.0));
    // 2^64 - 2048: a u64 variable that only survives as its nearest double.
    assert_eq!(
        value_of(&f, "mysql_global_variables_max_binlog_cache_size", &[]),
        MetricValue::Gauge(1.8446744073709548e19)
    );
    let version = &family(&f, "mysql_version_info").metrics[0];
    assert_eq!(version.labels[1], Label { name: "version".into(), value: "10.11.19-MariaDB-0+deb12u1".into() });
    let untyped =
        f.iter().filter(|f| f.name.starts_with("mysql_global_status_") && f.kind == MetricKind::Unknown).count();
    assert_eq!(untyped, 301);
    assert_eq!(summary_of(&f, "go_gc_duration_seconds").count, 47);
}

#[test]
fn nginx_exporter_values() {
    let f = parse("nginx", NGINX);
    // Counters whose names do not end in `_total`.
    assert_eq!(family(&f, "nginx_connections_accepted").kind, MetricKind::Counter);
    assert_eq!(value_of(&f, "nginx_connections_accepted", &[]), MetricValue::Counter(2.0));
    assert_eq!(value_of(&f, "nginx_http_requests_total", &[]), MetricValue::Counter(33.0));
    let build = &family(&f, "nginxexporter_build_info").metrics[0];
    let labels: Vec<(&str, &str)> = build.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect();
    assert_eq!(
        labels,
        [
            ("arch", "linux/amd64"),
            ("commit", ""),
            ("date", ""),
            ("dirty", "false"),
            ("go", "go1.19.8"),
            ("version", "0.11.0-1+b4")
        ]
    );
}

#[test]
fn etcd_values() {
    let f = parse("etcd", ETCD);
    let fsync = histogram_of(&f, "etcd_disk_wal_fsync_duration_seconds");
    assert_eq!(fsync.buckets.len(), 15);
    assert_eq!((fsync.buckets[0].upper_bound, fsync.buckets[0].count), (0.001, 6));
    assert_eq!((fsync.buckets[2].upper_bound, fsync.buckets[2].count), (0.004, 7));
    assert_eq!(fsync.buckets[14].upper_bound, f64::INFINITY);
    assert_eq!((fsync.sum, fsync.count), (0.004961153, 7));
    assert!(fsync.buckets.windows(2).all(|w| w[0].upper_bound < w[1].upper_bound));

    let commit = histogram_of(&f, "etcd_disk_backend_commit_duration_seconds");
    assert_eq!((commit.sum, commit.count), (0.004400908, 6));

    // A histogram whose name ends in `_total`, with Go-formatted bounds such as 1.048576e+06.
    let ttl = histogram_of(&f, "etcd_debugging_lease_ttl_total");
    assert!(ttl.buckets.iter().any(|b| b.upper_bound == 1_048_576.0));
    assert_eq!(ttl.count, 0);

    // etcd quirk: `_total` names typed as gauges.
    assert_eq!(family(&f, "etcd_server_proposals_applied_total").kind, MetricKind::Gauge);
    assert_eq!(value_of(&f, "etcd_server_proposals_applied_total", &[]), MetricValue::Gauge(6.0));
    assert_eq!(value_of(&f, "etcd_server_has_leader", &[]), MetricValue::Gauge(1.0));
    assert_eq!(f.iter().filter(|f| f.kind == MetricKind::Histogram).count(), 18);
}

#[test]
fn encoding_a_capture_reproduces_it_byte_for_byte() {
    // The encoder writes floats, label order and HELP/TYPE lines as Go's client does.
    for (name, text, _) in CAPTURES {
        let encoded = text::encode(&parse(name, text), Format::Prometheus);
        if encoded != text {
            let line = encoded.lines().zip(text.lines()).position(|(a, b)| a != b).map_or(0, |i| i + 1);
            panic!("{name}: first difference on line {line}");
        }
    }
}

#[test]
fn captures_survive_openmetrics_and_crlf() {
    for (name, text, _) in CAPTURES {
        let families = parse(name, text);
        let open = text::encode(&families, Format::OpenMetrics);
        let reparsed = text::parse_with(&open, Format::OpenMetrics).unwrap_or_else(|e| panic!("{name}: {e}"));
        // nginx counters lack `_total`, which OpenMetrics adds; everything else is unchanged.
        let renamed = |f: &MetricFamily| {
            let mut f = f.clone();
            if f.kind == MetricKind::Counter && !f.name.ends_with("_total") {
                f.name.push_str("_total");
            }
            f
        };
        assert_eq!(reparsed, families.iter().map(renamed).collect::<Vec<_>>(), "{name}");

        let crlf = text.replace('\n', "\r\n");
        assert_eq!(parse(name, &crlf), families, "{name} with CRLF line endings");
    }
}
