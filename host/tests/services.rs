//! The service plugins against the real servers and the real exporters,
//! started side by side on loopback: every family the real exporter exposes
//! is there with the same name, type and label names, values that cannot
//! change between the two scrapes are equal, and every failure (server down,
//! wrong password, TLS refused) gives `*_up 0` with its reason in the log
//! while the agent keeps serving.

mod common;

use common::{Agent, plugin, value};
use std::collections::{BTreeMap, BTreeSet};
use wasmon_sdk::MetricFamily;
use wasmon_test_servers::mariadb::{MariaDb, MysqldExporter};

/// Per family: its type and the label-name sets of its series (without the
/// `job` and `instance` target labels the agent adds).
type Shape = BTreeMap<String, (String, BTreeSet<Vec<String>>)>;

fn shape(families: &[MetricFamily]) -> Shape {
    families
        .iter()
        .map(|f| {
            let label_sets = f
                .metrics
                .iter()
                .map(|m| {
                    let mut names: Vec<String> = m
                        .labels
                        .iter()
                        .map(|l| l.name.clone())
                        .filter(|n| n != "job" && n != "instance")
                        .collect();
                    names.sort();
                    names
                })
                .collect();
            (f.name.clone(), (format!("{:?}", f.kind), label_sets))
        })
        .collect()
}

fn parse(what: &str, text: &str) -> Vec<MetricFamily> {
    wasmon_sdk::text::parse(text).unwrap_or_else(|e| panic!("{what} does not parse: {e}\n{text}"))
}

/// Assert that every family of `reference` (except `excluded` prefixes or
/// names) is in `ours` with the same type and label names; returns how many
/// families were compared.
fn assert_same_shape(ours: &[MetricFamily], reference: &[MetricFamily], excluded: &[&str]) -> usize {
    let (ours, reference) = (shape(ours), shape(reference));
    let mut problems = Vec::new();
    let mut compared = 0;
    for (name, (kind, label_sets)) in &reference {
        if excluded.iter().any(|x| name.starts_with(x)) {
            continue;
        }
        compared += 1;
        match ours.get(name) {
            None => problems.push(format!("{name}: missing")),
            Some((our_kind, _)) if our_kind != kind => problems.push(format!("{name}: type {our_kind}, want {kind}")),
            Some((_, our_sets)) => {
                let want: BTreeSet<&Vec<String>> = label_sets.iter().collect();
                let have: BTreeSet<&Vec<String>> = our_sets.iter().collect();
                if want != have {
                    problems.push(format!("{name}: label names {have:?}, want {want:?}"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{} of {compared} families differ:\n{}", problems.len(), problems.join("\n"));
    eprintln!("{compared} of {compared} reference families present with the same type and label names");
    compared
}

/// Each series of `family` as (sorted labels without job/instance, value).
fn series(families: &[MetricFamily], family: &str) -> BTreeMap<Vec<(String, String)>, f64> {
    families
        .iter()
        .filter(|f| f.name == family)
        .flat_map(|f| f.metrics.iter())
        .map(|m| {
            let mut labels: Vec<(String, String)> = m
                .labels
                .iter()
                .filter(|l| l.name != "job" && l.name != "instance")
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect();
            labels.sort();
            let v = match &m.value {
                wasmon_sdk::MetricValue::Gauge(v) | wasmon_sdk::MetricValue::Counter(v) => *v,
                other => panic!("{family}: unexpected value {other:?}"),
            };
            (labels, v)
        })
        .collect()
}

fn job(name: &str, plugin_file: &str, target: &str, extra: &str) -> String {
    format!(
        "  - job_name: {name}\n    plugin: {p}\n    static_configs: [{{targets: ['{target}']}}]\n{extra}",
        p = plugin(plugin_file).display()
    )
}

const GLOBAL: &str = "global: {scrape_interval: 2s, scrape_timeout: 1s}\nscrape_configs:\n";

/// Families of mysqld_exporter that describe the exporter process across
/// scrapes (a stateless plugin has no such state; wasmon's own
/// `wasmon_*` metrics cover it) or the Go runtime.
const MYSQLD_EXPORTER_ONLY: &[&str] = &[
    "go_",
    "process_",
    "promhttp_",
    "mysqld_exporter_build_info",
    "mysql_exporter_scrapes_total",
    "mysql_exporter_scrape_errors_total",
];

#[test]
fn mysql_matches_mysqld_exporter_and_fails_clearly() {
    let db = MariaDb::start();
    let exporter = MysqldExporter::start(&db);
    let dir = tempfile::tempdir().unwrap();
    let (good, wrong) = (dir.path().join("good"), dir.path().join("wrong"));
    std::fs::write(&good, format!("{}\n", db.password)).unwrap();
    std::fs::write(&wrong, "not-the-password\n").unwrap();
    let down = format!("127.0.0.1:{}", wasmon_test_servers::free_port());
    let mysql_job = |name: &str, target: &str, password: &std::path::Path| {
        job(
            name,
            "wasmon_mysql",
            target,
            &format!(
                "    capabilities: {{tcp: true}}\n    secrets: {{password: {{file: '{}'}}}}\n    config: {{user: {}}}\n",
                password.display(),
                db.user
            ),
        )
    };
    let yaml = [
        GLOBAL.to_string(),
        mysql_job("mysql", &db.addr, &good),
        mysql_job("mysql-wrong-password", &db.addr, &wrong),
        mysql_job("mysql-down", &down, &good),
    ]
    .concat();
    let agent = Agent::start(&yaml);
    let scraped = agent.wait_for_scrapes(&["mysql", "mysql-wrong-password", "mysql-down"], 1.0);

    let theirs = parse("mysqld_exporter", &exporter.scrape());
    let ours = parse("wasmon /probe", &agent.get("/probe?job=mysql"));
    assert_eq!(value(&ours, "mysql_up", &[]), Some(1.0), "{}", agent.log_text());
    assert_same_shape(&ours, &theirs, MYSQLD_EXPORTER_ONLY);
    // Variables and the version cannot change between the two scrapes.
    let variables: Vec<&str> = theirs
        .iter()
        .map(|f| f.name.as_str())
        .filter(|n| n.starts_with("mysql_global_variables_") || *n == "mysql_version_info")
        .collect();
    assert!(variables.len() > 400, "only {} variable families", variables.len());
    for name in variables {
        assert_eq!(series(&ours, name), series(&theirs, name), "{name}");
    }

    // The scheduler's scrapes: the same server through the agent's own loop.
    assert_eq!(value(&scraped, "mysql_up", &[("job", "mysql")]), Some(1.0));
    for failing in ["mysql-wrong-password", "mysql-down"] {
        assert_eq!(value(&scraped, "mysql_up", &[("job", failing)]), Some(0.0), "{failing}");
        assert_eq!(value(&scraped, "up", &[("job", failing)]), Some(1.0), "{failing}: the scrape itself works");
    }
    let log = agent.log_text();
    assert!(log.contains("1045"), "wrong password gives MySQL's error 1045 in the log:\n{log}");
    assert!(log.to_lowercase().contains("refused"), "server down says connection refused:\n{log}");
    assert!(!log.contains(&db.password), "the password leaked into the log");
}
