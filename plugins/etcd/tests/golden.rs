//! Golden tests on answers captured from etcd 3.4.23 (Debian 12): `/metrics`, `/health` and
//! `POST /v3/maintenance/status`. After a deliberate change, regenerate `endpoint.prom` with
//! `UPDATE_GOLDEN=1 cargo test -p wasmon-etcd --test golden` and review the diff.

use std::path::PathBuf;
use wasmon_etcd::scrape::{Readings, assemble};
use wasmon_etcd::status::{parse_health, parse_status};
use wasmon_sdk::passthrough::PassedThrough;
use wasmon_sdk::text::{self, Format};
use wasmon_sdk::{MetricFamily, MetricKind, MetricValue};

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixture_path(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

fn etcd_families() -> Vec<MetricFamily> {
    text::parse(&fixture("metrics.prom")).expect("etcd's /metrics parses")
}

fn collected() -> Vec<MetricFamily> {
    assemble(Readings {
        metrics: Ok(PassedThrough::from_families(etcd_families())),
        health: Some(parse_health(&fixture("health.json")).map_err(|e| e.to_string())),
        status: Some(parse_status(&fixture("status.json")).map_err(|e| e.to_string())),
    })
}

fn family<'a>(families: &'a [MetricFamily], name: &str) -> &'a MetricFamily {
    families.iter().find(|f| f.name == name).unwrap_or_else(|| panic!("{name} missing"))
}

fn gauge(families: &[MetricFamily], name: &str) -> f64 {
    match family(families, name).metrics[..] {
        [ref m] => match m.value {
            MetricValue::Gauge(v) => v,
            ref other => panic!("{name}: {other:?}"),
        },
        _ => panic!("{name}: expected one sample"),
    }
}

/// The plugin's own families (etcd's are checked against `metrics.prom` itself below).
#[test]
fn endpoint_families_match_golden() {
    let ours = collected();
    let rendered = text::encode(&ours[etcd_families().len()..], Format::Prometheus);
    let path = fixture_path("endpoint.prom");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &rendered).expect("write golden");
        return;
    }
    let expected = fixture("endpoint.prom");
    if rendered != expected {
        let first_difference = rendered
            .lines()
            .zip(expected.lines())
            .find(|(got, want)| got != want)
            .map(|(got, want)| format!("\n got: {got}\nwant: {want}"))
            .unwrap_or_else(|| "\n(one output is a prefix of the other)".into());
        panic!("endpoint.prom differs{first_difference}");
    }
}

/// etcd's families come out exactly as etcd serves them, before the plugin's own.
#[test]
fn etcd_families_pass_through_unchanged() {
    let etcd = etcd_families();
    let ours = collected();
    assert_eq!(ours[..etcd.len()], etcd[..]);
    assert!(ours[etcd.len()..].iter().all(|f| f.name.starts_with("etcd_endpoint_")));
    // etcd's quirk survives: TYPE gauge on a `_total` name.
    assert_eq!(family(&ours, "etcd_server_proposals_applied_total").kind, MetricKind::Gauge);
    let fsync = family(&ours, "etcd_disk_wal_fsync_duration_seconds");
    assert_eq!(fsync.kind, MetricKind::Histogram);
    assert!(matches!(&fsync.metrics[0].value, MetricValue::Histogram(h) if h.buckets.len() > 10));
}

/// Every family of the reference capture (`etcd_families.txt`, etcd 3.4.23) is there with its type.
#[test]
fn reference_families_are_present_with_their_types() {
    let ours = collected();
    for line in fixture("reference_families.txt").lines() {
        let (name, kind) = line.split_once(' ').expect("`name TYPE` lines");
        let expected = match kind {
            "counter" => MetricKind::Counter,
            "gauge" => MetricKind::Gauge,
            "histogram" => MetricKind::Histogram,
            "summary" => MetricKind::Summary,
            other => panic!("unexpected type {other}"),
        };
        assert_eq!(family(&ours, name).kind, expected, "{name}");
    }
}

#[test]
fn endpoint_families_agree_with_etcds_own() {
    let ours = collected();
    assert_eq!(gauge(&ours, "etcd_endpoint_up"), 1.0);
    assert_eq!(gauge(&ours, "etcd_endpoint_health"), 1.0);
    assert_eq!(gauge(&ours, "etcd_endpoint_is_leader"), gauge(&ours, "etcd_server_is_leader"));
    assert_eq!(gauge(&ours, "etcd_endpoint_db_size_bytes"), gauge(&ours, "etcd_mvcc_db_total_size_in_bytes"));
    assert_eq!(
        gauge(&ours, "etcd_endpoint_db_size_in_use_bytes"),
        gauge(&ours, "etcd_mvcc_db_total_size_in_use_in_bytes")
    );
    let info = &family(&ours, "etcd_endpoint_info").metrics[0].labels;
    let label = |name: &str| info.iter().find(|l| l.name == name).map(|l| l.value.as_str());
    let server_id = &family(&ours, "etcd_server_id").metrics[0].labels[0].value;
    assert_eq!(label("member_id"), Some(server_id.as_str()));
    assert_eq!(label("leader_id"), Some(server_id.as_str()));
    let version = &family(&ours, "etcd_server_version").metrics[0].labels[0].value;
    assert_eq!(label("version"), Some(version.as_str()));
}

#[test]
fn failures_degrade_to_values() {
    let down = assemble(Readings { metrics: Err("connection refused".into()), health: None, status: None });
    assert_eq!(down.len(), 1);
    assert_eq!(gauge(&down, "etcd_endpoint_up"), 0.0);

    let partial = assemble(Readings {
        metrics: Ok(PassedThrough::from_families(etcd_families())),
        health: Some(Err("timed out".into())),
        status: Some(Err("HTTP status 503".into())),
    });
    assert_eq!(gauge(&partial, "etcd_endpoint_up"), 1.0);
    assert_eq!(gauge(&partial, "etcd_endpoint_health"), 0.0);
    assert!(!partial.iter().any(|f| f.name == "etcd_endpoint_is_leader"));
    assert_eq!(partial.len(), etcd_families().len() + 2);

    let disabled =
        assemble(Readings { metrics: Ok(PassedThrough::from_families(etcd_families())), health: None, status: None });
    assert_eq!(disabled.len(), etcd_families().len() + 1);
}
