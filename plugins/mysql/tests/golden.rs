//! Golden tests: answers captured from a real MariaDB 10.11 (tests/fixtures/*.json,
//! written by `examples/capture.rs`) are replayed through a whole scrape, which
//! must send exactly the recorded queries in the recorded order and produce
//! the families in the `.prom` file beside each fixture.
//!
//! The `.prom` files are Prometheus text samples under one comment line per
//! family, `# <name> <type> <label names>`, instead of HELP and TYPE;
//! collector durations are written as 0.
//! After a deliberate change, regenerate with
//! `UPDATE_GOLDEN=1 cargo test -p wasmon-mysql --test golden` and review the diff.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Instant;
use wasmon_mysql::config::MysqlConfig;
use wasmon_mysql::fixture::Replay;
use wasmon_mysql::scrape;
use wasmon_sdk::text::{Format, encode};
use wasmon_sdk::{MetricFamily, MetricValue};

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Replay `fixture` through a scrape with `config`; every recorded query must be used.
fn replay(fixture: &str, config: &str) -> Vec<MetricFamily> {
    let text = std::fs::read_to_string(fixture_path(fixture)).unwrap_or_else(|e| panic!("{fixture}: {e}"));
    let mut session = Replay::from_json(&text).unwrap_or_else(|e| panic!("{fixture}: {e}"));
    let settings = MysqlConfig::load(config).expect("config");
    let families = scrape::run(&mut session, &settings, Instant::now()).families;
    assert!(session.unused().is_empty(), "{fixture}: queries not sent: {:?}", session.unused());
    families
}

/// `# name type labels` and the family's samples; durations zeroed so the file is stable.
fn render(families: &[MetricFamily]) -> String {
    let mut out = String::new();
    for family in families {
        let mut family = family.clone();
        if family.name == "mysql_exporter_collector_duration_seconds" {
            for m in &mut family.metrics {
                m.value = MetricValue::Gauge(0.0);
            }
        }
        let labels: BTreeSet<&str> =
            family.metrics.iter().flat_map(|m| m.labels.iter().map(|l| l.name.as_str())).collect();
        let labels: Vec<&str> = labels.into_iter().collect();
        let text = encode(std::slice::from_ref(&family), Format::Prometheus);
        let kind = text.lines().find_map(|l| l.strip_prefix("# TYPE ")).and_then(|l| l.split(' ').nth(1));
        out.push_str(format!("# {} {} {}\n", family.name, kind.unwrap_or("?"), labels.join(",")).trim_end());
        out.push('\n');
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn check(golden: &str, families: &[MetricFamily]) {
    let rendered = render(families);
    let path = fixture_path(golden);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &rendered).unwrap_or_else(|e| panic!("writing {golden}: {e}"));
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("golden {golden}: {e}"));
    if rendered != expected {
        let first_difference = rendered
            .lines()
            .zip(expected.lines())
            .find(|(got, want)| got != want)
            .map(|(got, want)| format!("\n got: {got}\nwant: {want}"))
            .unwrap_or_else(|| "\n(one output is a prefix of the other)".into());
        panic!("{golden} differs{first_difference}");
    }
}

fn value(families: &[MetricFamily], name: &str) -> Option<f64> {
    let family = families.iter().find(|f| f.name == name)?;
    match family.metrics.first()?.value {
        MetricValue::Gauge(v) | MetricValue::Counter(v) => Some(v),
        _ => None,
    }
}

#[test]
fn mariadb_default() {
    let families = replay("mariadb-10.11.json", r#"{"user":"exporter"}"#);
    assert_eq!(value(&families, "mysql_up"), Some(1.0));
    assert_eq!(value(&families, "mysql_exporter_last_scrape_error"), Some(0.0));
    check("mariadb-10.11.prom", &families);
}

#[test]
fn mariadb_query_response_time() {
    let families = replay("mariadb-10.11-query-response-time.json", r#"{"user":"exporter"}"#);
    assert!(families.iter().any(|f| f.name == "mysql_info_schema_query_response_time_seconds"));
    assert_eq!(value(&families, "mysql_exporter_last_scrape_error"), Some(0.0));
    check("mariadb-10.11-query-response-time.prom", &families);
}

#[test]
fn mariadb_without_slave_monitor() {
    let text = std::fs::read_to_string(fixture_path("mariadb-10.11-no-slave-monitor.json")).unwrap();
    let outcome = scrape::run(
        &mut Replay::from_json(&text).unwrap(),
        &MysqlConfig::load(r#"{"user":"monitor"}"#).unwrap(),
        Instant::now(),
    );
    assert_eq!(outcome.failures.len(), 1);
    assert!(
        outcome.failures[0].starts_with("collector collect.slave_status failed: SHOW SLAVE STATUS: ERROR 1227 (42000)")
    );
    let families = replay("mariadb-10.11-no-slave-monitor.json", r#"{"user":"monitor"}"#);
    assert_eq!(value(&families, "mysql_up"), Some(1.0));
    assert_eq!(value(&families, "mysql_exporter_last_scrape_error"), Some(1.0));
    assert!(families.iter().any(|f| f.name == "mysql_global_status_uptime"));
    check("mariadb-10.11-no-slave-monitor.prom", &families);
}

#[test]
fn mariadb_replica() {
    let families = replay("mariadb-10.11-replica.json", r#"{"user":"exporter"}"#);
    assert_eq!(value(&families, "mysql_slave_status_slave_io_running"), Some(1.0));
    check("mariadb-10.11-replica.prom", &families);
}

#[test]
fn disabled_collectors_send_no_queries() {
    // The recording has every query; a scrape with fewer collectors stops
    // being in step at the first query it skips.
    let text = std::fs::read_to_string(fixture_path("mariadb-10.11.json")).unwrap();
    let mut session = Replay::from_json(&text).unwrap();
    let config = r#"{"user":"exporter","collect":{"info_schema.query_response_time":false,"global_status":false,
        "global_variables":false,"slave_status":false,"info_schema.innodb_cmp":false,"info_schema.innodb_cmpmem":false}}"#;
    let families = scrape::run(&mut session, &MysqlConfig::load(config).unwrap(), Instant::now()).families;
    let names: Vec<&str> = families.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["mysql_exporter_collector_duration_seconds", "mysql_exporter_last_scrape_error", "mysql_up"]);
    assert_eq!(session.unused().len(), 6, "only SET and SELECT @@version were sent");
}
