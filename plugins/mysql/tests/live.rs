//! End-to-end against a real MariaDB 10.11 and the real
//! prometheus-mysqld-exporter 0.14 (Debian packages), both on loopback:
//! the plugin, run natively, must expose every family the exporter does
//! (same name, type and label names) and the same values where they do not
//! move between two scrapes. Also: wrong password, server down, missing grant.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;
use wasmon_mysql::config::MysqlConfig;
use wasmon_mysql::scrape::{self, Outcome};
use wasmon_sdk::{MetricFamily, MetricKind, MetricValue};
use wasmon_test_servers::free_port;
use wasmon_test_servers::mariadb::{MariaDb, MysqldExporter};

/// Families the exporter has that the plugin leaves out on purpose: the Go
/// runtime, the HTTP handler, cross-scrape counters and the binary's build.
fn excluded(name: &str) -> bool {
    name.starts_with("go_")
        || name.starts_with("process_")
        || name.starts_with("promhttp_")
        || matches!(
            name,
            "mysql_exporter_scrapes_total" | "mysql_exporter_scrape_errors_total" | "mysqld_exporter_build_info"
        )
}

fn ours(addr: &str, user: &str, password: Option<&str>) -> Outcome {
    let settings = MysqlConfig::load(&format!(r#"{{"user":"{user}"}}"#)).expect("config");
    scrape::scrape(addr, &settings, password).expect("a scrape that can connect is never an error")
}

fn theirs(exporter: &MysqldExporter) -> Vec<MetricFamily> {
    let body = exporter.scrape();
    wasmon_sdk::text::parse(&body)
        .unwrap_or_else(|e| panic!("mysqld_exporter output: {e}"))
        .into_iter()
        .filter(|f| !excluded(&f.name))
        .collect()
}

fn kind(kind: MetricKind) -> &'static str {
    match kind {
        MetricKind::Counter => "counter",
        MetricKind::Gauge | MetricKind::Info | MetricKind::Stateset => "gauge",
        MetricKind::Histogram => "histogram",
        MetricKind::Summary => "summary",
        MetricKind::Unknown => "untyped",
    }
}

/// `name -> "type label,names"`.
fn shapes(families: &[MetricFamily]) -> BTreeMap<String, String> {
    families
        .iter()
        .map(|f| {
            let labels: BTreeSet<&str> =
                f.metrics.iter().flat_map(|m| m.labels.iter().map(|l| l.name.as_str())).collect();
            (f.name.clone(), format!("{} {}", kind(f.kind), labels.into_iter().collect::<Vec<_>>().join(",")))
        })
        .collect()
}

/// `name{sorted labels} -> value` for the plain samples of families `keep` selects.
fn samples(families: &[MetricFamily], keep: impl Fn(&str) -> bool) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for f in families.iter().filter(|f| keep(&f.name)) {
        for m in &f.metrics {
            let mut labels: Vec<String> = m.labels.iter().map(|l| format!("{}={:?}", l.name, l.value)).collect();
            labels.sort();
            let value = match &m.value {
                MetricValue::Gauge(v) | MetricValue::Counter(v) => *v,
                _ => continue,
            };
            out.insert(format!("{}{{{}}}", f.name, labels.join(",")), value);
        }
    }
    out
}

/// Values that cannot change while nobody reconfigures the server.
fn stable(name: &str) -> bool {
    name.starts_with("mysql_global_variables_")
        || name.starts_with("mysql_info_schema_innodb_cmp")
        || matches!(
            name,
            "mysql_version_info"
                | "mysql_transaction_isolation"
                | "mysql_galera_variables_info"
                | "mysql_up"
                | "mysql_exporter_last_scrape_error"
        )
}

/// Compare a scrape of the plugin with one of the exporter and return the
/// number of families both have.
fn compare(db: &MariaDb, exporter: &MysqldExporter) -> usize {
    let outcome = ours(&db.addr, &db.user, Some(&db.password));
    assert_eq!(outcome.down, None);
    assert!(outcome.failures.is_empty(), "{:?}", outcome.failures);
    let reference = theirs(exporter);
    let (ours, reference) = (shapes(&outcome.families), shapes(&reference));
    let missing: Vec<&String> = reference.keys().filter(|n| !ours.contains_key(*n)).collect();
    let extra: Vec<&String> = ours.keys().filter(|n| !reference.contains_key(*n)).collect();
    let different: Vec<String> = reference
        .iter()
        .filter_map(|(name, shape)| {
            ours.get(name).filter(|s| *s != shape).map(|s| format!("{name}: ours {s}, theirs {shape}"))
        })
        .collect();
    assert!(missing.is_empty(), "{} families missing: {missing:?}", missing.len());
    assert!(extra.is_empty(), "{} families the exporter does not have: {extra:?}", extra.len());
    assert!(different.is_empty(), "type or labels differ: {different:#?}");
    reference.len()
}

/// The stable values of two plugin scrapes and one exporter scrape between them agree.
fn compare_values(db: &MariaDb, exporter: &MysqldExporter) {
    let before = samples(&ours(&db.addr, &db.user, Some(&db.password)).families, stable);
    let reference = samples(&theirs(exporter), stable);
    let after = samples(&ours(&db.addr, &db.user, Some(&db.password)).families, stable);
    assert_eq!(before, after, "stable values moved between two plugin scrapes");
    let differing: Vec<String> = reference
        .iter()
        .filter(|(k, v)| before.get(*k).is_none_or(|ours| ours != *v && !(ours.is_nan() && v.is_nan())))
        .map(|(k, v)| format!("{k}: theirs {v}, ours {:?}", before.get(k)))
        .collect();
    assert!(differing.is_empty(), "{} values differ: {differing:#?}", differing.len());
    assert_eq!(before.len(), reference.len());
}

#[test]
fn matches_mysqld_exporter() {
    let db = MariaDb::start();
    let exporter = MysqldExporter::start(&db);
    let started = Instant::now();
    let families = compare(&db, &exporter);
    eprintln!("{families} families match mysqld_exporter ({:?})", started.elapsed());
    assert!(families > 700, "{families}");
    compare_values(&db, &exporter);
    // The commands, handlers, ... of both carry the same label values.
    let labelled = |f: &[MetricFamily]| -> BTreeSet<String> {
        samples(f, |n| n.starts_with("mysql_global_status_") && n.ends_with("_total")).into_keys().collect()
    };
    assert_eq!(labelled(&ours(&db.addr, &db.user, Some(&db.password)).families), labelled(&theirs(&exporter)));
}

#[test]
fn query_response_time_matches_mysqld_exporter() {
    let db = MariaDb::start_with(&["--plugin-load-add=query_response_time", "--query-response-time-stats=ON"]);
    let exporter = MysqldExporter::start(&db);
    compare(&db, &exporter);
    let families = ours(&db.addr, &db.user, Some(&db.password)).families;
    let histogram = families.iter().find(|f| f.name == "mysql_info_schema_query_response_time_seconds").unwrap();
    let MetricValue::Histogram(h) = &histogram.metrics[0].value else { panic!("{histogram:?}") };
    assert!(h.count > 0 && h.buckets.len() >= 10, "{h:?}");
}

#[test]
fn replica_matches_mysqld_exporter() {
    let primary = MariaDb::start_with(&["--server-id=1", "--log-bin=binlog"]);
    primary.sql(
        "SET sql_log_bin=0; CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'repl-Pw'; \
         GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'; RESET MASTER;",
    );
    let replica = MariaDb::start_with(&["--server-id=2"]);
    replica.sql(&format!(
        "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='repl', MASTER_PASSWORD='repl-Pw', \
         MASTER_USE_GTID=slave_pos; START SLAVE;",
        primary.port
    ));
    primary.sql("CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY); INSERT INTO shop.t VALUES (1);");
    wasmon_test_servers::wait_until("the replica to copy shop.t", std::time::Duration::from_secs(60), || {
        replica.try_sql("SELECT COUNT(*) FROM shop.t").is_ok_and(|n| n.trim() == "1")
    });
    let exporter = MysqldExporter::start(&replica);
    compare(&replica, &exporter);
    let families = ours(&replica.addr, &replica.user, Some(&replica.password)).families;
    let running = families.iter().find(|f| f.name == "mysql_slave_status_slave_sql_running").unwrap();
    assert_eq!(running.metrics[0].value, MetricValue::Gauge(1.0));
    assert!(running.metrics[0].labels.iter().any(|l| l.name == "master_host" && l.value == "127.0.0.1"));
}

fn value(outcome: &Outcome, name: &str) -> Option<f64> {
    samples(&outcome.families, |n| n == name).into_values().next()
}

#[test]
fn wrong_password_is_mysql_up_0_with_the_reason() {
    let db = MariaDb::start();
    let outcome = ours(&db.addr, &db.user, Some("not-the-password"));
    assert_eq!(value(&outcome, "mysql_up"), Some(0.0));
    assert_eq!(value(&outcome, "mysql_exporter_last_scrape_error"), Some(1.0));
    let reason = outcome.down.unwrap();
    assert!(
        reason.starts_with("authentication failed: ERROR 1045 (28000): Access denied for user 'exporter'@'127.0.0.1'"),
        "{reason}"
    );
    assert!(!reason.contains("not-the-password"));
    // Without a password secret, the reason says so.
    let reason = ours(&db.addr, &db.user, None).down.unwrap();
    assert!(
        reason.contains("using password: NO") && reason.ends_with("(the job has no `password` secret)"),
        "{reason}"
    );
}

#[test]
fn server_down_is_mysql_up_0() {
    let addr = format!("127.0.0.1:{}", free_port());
    let outcome = ours(&addr, "exporter", Some("pw"));
    assert_eq!(value(&outcome, "mysql_up"), Some(0.0));
    assert_eq!(value(&outcome, "mysql_exporter_last_scrape_error"), Some(1.0));
    assert_eq!(outcome.down.as_deref(), Some(format!("connect to {addr}: connection refused").as_str()));
    // Through the plugin's entry point, too: the scrape itself succeeds.
    let families =
        wasmon_mysql::collect_with_password(&wasmon_sdk::Target::named(&addr), r#"{"user":"exporter"}"#, Some("pw"))
            .unwrap();
    assert_eq!(families.len(), 2);
}

#[test]
fn missing_slave_monitor_fails_one_collector_only() {
    let db = MariaDb::start();
    db.create_user("monitor", "m0nitor-Pw", "PROCESS, REPLICATION CLIENT, SELECT");
    let outcome = ours(&db.addr, "monitor", Some("m0nitor-Pw"));
    assert_eq!(value(&outcome, "mysql_up"), Some(1.0));
    assert_eq!(value(&outcome, "mysql_exporter_last_scrape_error"), Some(1.0));
    assert_eq!(outcome.failures.len(), 1, "{:?}", outcome.failures);
    assert!(outcome.failures[0].contains("collect.slave_status") && outcome.failures[0].contains("ERROR 1227"));
    assert!(value(&outcome, "mysql_global_status_threads_connected").is_some_and(|v| v >= 1.0));
    assert!(value(&outcome, "mysql_global_variables_max_connections").is_some());
}
