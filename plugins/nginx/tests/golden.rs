//! Golden tests on pages captured from nginx 1.22.1 and, at the same moment, from
//! prometheus-nginx-exporter 0.11.0 (Debian 12). After a deliberate change, regenerate the
//! plugin's own golden file with `UPDATE_GOLDEN=1 cargo test -p wasmon-nginx --test golden`
//! and review the diff.

use std::path::PathBuf;
use wasmon_nginx::metrics::families;
use wasmon_nginx::parse::{StubStatus, parse};
use wasmon_sdk::text::{self, Format};
use wasmon_sdk::{MetricFamily, MetricValue};

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixture_path(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// The exporter's families, without `nginxexporter_build_info` (it describes the exporter binary).
fn exporter_families(name: &str) -> Vec<MetricFamily> {
    let mut families = text::parse(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    families.retain(|f| f.name != "nginxexporter_build_info");
    families
}

fn value(families: &[MetricFamily], name: &str) -> f64 {
    let family = families.iter().find(|f| f.name == name).unwrap_or_else(|| panic!("{name} missing"));
    match family.metrics[..] {
        [ref m] => match m.value {
            MetricValue::Gauge(v) | MetricValue::Counter(v) => v,
            ref other => panic!("{name}: {other:?}"),
        },
        _ => panic!("{name}: expected one sample"),
    }
}

#[test]
fn stub_status_matches_golden() {
    let stats = parse(&fixture("stub_status.txt")).expect("the captured page parses");
    let rendered = text::encode(&families(Some(&stats)), Format::Prometheus);
    let path = fixture_path("stub_status.prom");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &rendered).expect("write golden");
        return;
    }
    assert_eq!(rendered, fixture("stub_status.prom"));
}

/// Given the values the exporter read, the plugin's families equal the exporter's: names,
/// types, HELP, labels and values, in the same order.
#[test]
fn families_equal_the_exporters() {
    let exporter = exporter_families("exporter.prom");
    let stats = StubStatus {
        active: value(&exporter, "nginx_connections_active") as u64,
        accepted: value(&exporter, "nginx_connections_accepted") as u64,
        handled: value(&exporter, "nginx_connections_handled") as u64,
        requests: value(&exporter, "nginx_http_requests_total") as u64,
        reading: value(&exporter, "nginx_connections_reading") as u64,
        writing: value(&exporter, "nginx_connections_writing") as u64,
        waiting: value(&exporter, "nginx_connections_waiting") as u64,
    };
    assert_eq!(families(Some(&stats)), exporter);
    // And the text is the exporter's, line for line.
    let exporter_text: String = fixture("exporter.prom")
        .lines()
        .filter(|l| !l.contains("nginxexporter_build_info"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(text::encode(&families(Some(&stats)), Format::Prometheus), exporter_text);
}

/// With nginx down the exporter serves `nginx_up 0` alone (besides its build info).
#[test]
fn down_equals_the_exporters() {
    assert_eq!(families(None), exporter_families("exporter_down.prom"));
}
