//! The service plugins against the real servers and the real exporters,
//! started side by side on loopback: every family the real exporter exposes
//! is there with the same name, type and label names, values that cannot
//! change between the two scrapes are equal, and every failure (server down,
//! wrong password, TLS refused) gives `*_up 0` with its reason in the log
//! while the agent keeps serving.

// Helpers outside #[test] functions unwrap too: a failed setup is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Agent, plugin, value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use wasmon_sdk::MetricFamily;
use wasmon_test_servers::etcd::Etcd;
use wasmon_test_servers::mariadb::{MariaDb, MysqldExporter};
use wasmon_test_servers::nginx::{Nginx, NginxExporter};

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
                    let mut names: Vec<String> =
                        m.labels.iter().map(|l| l.name.clone()).filter(|n| n != "job" && n != "instance").collect();
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

// The timeout is the whole interval: a debug build on a loaded 2-core
// machine can take over a second for mysql's 1,100 series.
const GLOBAL: &str = "global: {scrape_interval: 2s, scrape_timeout: 2s}\nscrape_configs:\n";

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

#[test]
fn nginx_matches_nginx_exporter_and_fails_clearly() {
    let nginx = Nginx::start();
    let exporter = NginxExporter::start(&nginx);
    let down = format!("127.0.0.1:{}", wasmon_test_servers::free_port());
    let http = "    capabilities: {http: true}\n";
    let yaml = [
        GLOBAL.to_string(),
        job("nginx", "wasmon_nginx", &nginx.addr, http),
        job("nginx-down", "wasmon_nginx", &down, http),
        job("nginx-not-granted", "wasmon_nginx", &nginx.addr, ""),
    ]
    .concat();
    let agent = Agent::start(&yaml);
    let scraped = agent.wait_for_scrapes(&["nginx", "nginx-down", "nginx-not-granted"], 1.0);

    // Counters only grow, so ours must lie between the exporter's before and after.
    let before = parse("nginx exporter", &exporter.scrape());
    let ours = parse("wasmon /probe", &agent.get("/probe?job=nginx"));
    let after = parse("nginx exporter", &exporter.scrape());
    assert_same_shape(&ours, &before, &["go_", "process_", "promhttp_", "nginxexporter_build_info"]);
    assert_eq!(value(&ours, "nginx_up", &[]), Some(1.0));
    for counter in ["nginx_connections_accepted", "nginx_connections_handled", "nginx_http_requests_total"] {
        let (low, mid, high) = (value(&before, counter, &[]), value(&ours, counter, &[]), value(&after, counter, &[]));
        assert!(low <= mid && mid <= high, "{counter}: exporter {low:?} then wasmon {mid:?} then exporter {high:?}");
    }

    assert_eq!(value(&scraped, "nginx_up", &[("job", "nginx")]), Some(1.0));
    // The server is down: the scrape works and says so, like the real exporter.
    assert_eq!(value(&scraped, "nginx_up", &[("job", "nginx-down")]), Some(0.0));
    assert_eq!(value(&scraped, "up", &[("job", "nginx-down")]), Some(1.0));
    // The job is wrong (no grant): the scrape fails with the reason.
    assert_eq!(value(&scraped, "up", &[("job", "nginx-not-granted")]), Some(0.0));
    let error = agent.last_error("nginx-not-granted");
    assert!(error.contains("HTTP-request-denied"), "{error}");
    let log = agent.log_text();
    assert!(log.contains("nginx_up 0") && log.to_lowercase().contains("refused"), "a down server is explained:\n{log}");
    assert!(log.contains("does not grant the http capability"), "a missing grant is explained:\n{log}");
}

#[test]
fn etcd_over_mutual_tls_passes_every_family_through_and_fails_clearly() {
    let etcd = Etcd::start_mtls();
    let tls = etcd.tls.clone().expect("TLS files");
    let (ca, cert, key) = (tls.ca_file.display(), tls.client_cert.display(), tls.client_key.display());
    // A CA that signed nothing etcd shows.
    let other_ca = tempfile::tempdir().unwrap();
    let (other_ca_file, other_key) = (other_ca.path().join("ca.crt"), other_ca.path().join("ca.key"));
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=unrelated-ca"])
        .arg("-keyout")
        .arg(&other_key)
        .arg("-out")
        .arg(&other_ca_file)
        .output()
        .expect("openssl");
    assert!(made.status.success());
    let http = "    capabilities: {http: true}\n    scheme: https\n";
    let yaml = [
        GLOBAL.to_string(),
        job(
            "etcd",
            "wasmon_etcd",
            &etcd.addr,
            &format!("{http}    tls_config: {{ca_file: '{ca}', cert_file: '{cert}', key_file: '{key}'}}\n"),
        ),
        job("etcd-no-client-cert", "wasmon_etcd", &etcd.addr, &format!("{http}    tls_config: {{ca_file: '{ca}'}}\n")),
        job(
            "etcd-wrong-ca",
            "wasmon_etcd",
            &etcd.addr,
            &format!(
                "{http}    tls_config: {{ca_file: '{}', cert_file: '{cert}', key_file: '{key}'}}\n",
                other_ca_file.display()
            ),
        ),
    ]
    .concat();
    let agent = Agent::start(&yaml);
    let scraped = agent.wait_for_scrapes(&["etcd", "etcd-no-client-cert", "etcd-wrong-ca"], 1.0);

    // etcd's own families, from its plain metrics listener, against ours through mTLS.
    let metrics_addr = etcd.metrics_addr.clone().expect("plain metrics listener");
    let (status, text) = wasmon_test_servers::http_get(&metrics_addr, "/metrics").unwrap();
    assert_eq!(status, 200);
    let theirs = parse("etcd /metrics", &text);
    let ours = parse("wasmon /probe", &agent.get("/probe?job=etcd"));
    let compared = assert_same_shape(&ours, &theirs, &[]);
    assert!(compared > 100, "only {compared} etcd families");
    // What cannot change between the two scrapes of a single healthy member.
    let stable = [
        "etcd_server_has_leader",
        "etcd_server_is_leader",
        "etcd_server_version",
        "etcd_cluster_version",
        "etcd_server_id",
    ];
    let stable: Vec<&str> = stable.into_iter().filter(|n| theirs.iter().any(|f| f.name == *n)).collect();
    assert!(stable.len() >= 3, "{stable:?}");
    for name in stable {
        assert_eq!(series(&ours, name), series(&theirs, name), "{name}");
    }
    for (name, want) in [("etcd_endpoint_up", 1.0), ("etcd_endpoint_health", 1.0), ("etcd_endpoint_is_leader", 1.0)] {
        assert_eq!(value(&ours, name, &[]), Some(want), "{name}");
    }
    assert!(value(&ours, "etcd_endpoint_db_size_bytes", &[]).is_some_and(|v| v > 0.0));
    let version = series(&ours, "etcd_endpoint_info");
    assert!(
        version.keys().any(|labels| labels.iter().any(|(k, v)| k == "version" && v.starts_with("3.4"))),
        "{version:?}"
    );

    // The scheduler's own scrapes. Under a loaded test run one may hit the
    // 1 s timeout; what matters is that the loop gets a good scrape.
    let scraped = common::eventually(Duration::from_secs(30), || {
        let m = agent.metrics();
        (value(&m, "etcd_endpoint_up", &[("job", "etcd")]) == Some(1.0)).then_some(m)
    })
    .unwrap_or(scraped);
    assert_eq!(value(&scraped, "etcd_endpoint_up", &[("job", "etcd")]), Some(1.0), "{}", agent.log_text());
    for failing in ["etcd-no-client-cert", "etcd-wrong-ca"] {
        assert_eq!(value(&scraped, "etcd_endpoint_up", &[("job", failing)]), Some(0.0), "{failing}");
        assert_eq!(value(&scraped, "up", &[("job", failing)]), Some(1.0), "{failing}: the agent still scrapes");
    }
    let log = agent.log_text();
    assert!(log.contains("UnknownIssuer"), "a server certificate from another CA is named:\n{log}");
    assert!(
        log.contains("received fatal alert: BadCertificate"),
        "etcd's refusal of a missing client certificate (a TLS 1.3 alert) is named:\n{log}"
    );
}

/// `GET path` with an `Accept` header over plain HTTP/1.0: (Content-Type, body).
fn get_accepting(addr: &str, path: &str, accept: &str) -> (String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: {accept}\r\n\r\n").unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let end = response.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head") + 4;
    let head = String::from_utf8_lossy(&response[..end]).to_string();
    assert!(head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"), "{head}");
    let content_type = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("content-type")))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    (content_type, response[end..].to_vec())
}

/// What the passthrough asks etcd for (protobuf, which Go's client library
/// serves) reads as the same families as etcd's text format: names in
/// order, types, every series' labels, histogram buckets with `+Inf`, and
/// the values of the families an idle member does not change.
#[test]
fn etcd_protobuf_exposition_reads_as_its_text_format() {
    use wasmon::runtime::model::MetricValue as V;
    use wasmon::scrape::protobuf;
    let etcd = Etcd::start();
    let (content_type, body) = get_accepting(&etcd.addr, "/metrics", protobuf::ACCEPT_PROTOBUF_FIRST);
    assert!(protobuf::is_protobuf(&content_type), "etcd answered {content_type:?}");
    let from_protobuf = protobuf::parse(&body).unwrap();
    let (text_type, text) = get_accepting(&etcd.addr, "/metrics", "text/plain;version=0.0.4");
    assert!(text_type.starts_with("text/plain"), "{text_type}");
    let from_text = parse("etcd text /metrics", std::str::from_utf8(&text).unwrap());

    // Both print as `MetricKind::Gauge` and so on: the same WIT enum, generated twice.
    let kind = |debug: String| debug.rsplit("::").next().unwrap_or_default().to_string();
    let ours: Vec<(String, String)> =
        from_protobuf.iter().map(|f| (f.name.clone(), kind(format!("{:?}", f.kind)))).collect();
    let theirs: Vec<(String, String)> =
        from_text.iter().map(|f| (f.name.clone(), kind(format!("{:?}", f.kind)))).collect();
    assert_eq!(ours, theirs, "family names, order and types");
    assert!(ours.len() > 100, "only {} families", ours.len());

    // Per series: labels, and the value's shape (histogram bounds, summary quantiles).
    let mut checked_buckets = 0;
    for (ours, theirs) in from_protobuf.iter().zip(&from_text) {
        let our_series: Vec<Vec<(String, String)>> =
            ours.metrics.iter().map(|m| m.labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect()).collect();
        let their_series: Vec<Vec<(String, String)>> = theirs
            .metrics
            .iter()
            .map(|m| m.labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect())
            .collect();
        assert_eq!(our_series, their_series, "{}: series", ours.name);
        for (m, t) in ours.metrics.iter().zip(&theirs.metrics) {
            match (&m.value, &t.value) {
                (V::Histogram(h), wasmon_sdk::MetricValue::Histogram(th)) => {
                    let bounds: Vec<f64> = h.buckets.iter().map(|b| b.upper_bound).collect();
                    let their_bounds: Vec<f64> = th.buckets.iter().map(|b| b.upper_bound).collect();
                    assert_eq!(bounds, their_bounds, "{}: bucket bounds", ours.name);
                    assert_eq!(bounds.last(), Some(&f64::INFINITY), "{}", ours.name);
                    checked_buckets += 1;
                }
                (V::Summary(s), wasmon_sdk::MetricValue::Summary(ts)) => {
                    let q: Vec<f64> = s.quantiles.iter().map(|q| q.quantile).collect();
                    let tq: Vec<f64> = ts.quantiles.iter().map(|q| q.quantile).collect();
                    assert_eq!(q, tq, "{}: quantiles", ours.name);
                }
                (V::Counter(_), wasmon_sdk::MetricValue::Counter(_))
                | (V::Gauge(_), wasmon_sdk::MetricValue::Gauge(_)) => {}
                (m, t) => panic!("{}: value {m:?} against {t:?}", ours.name),
            }
        }
    }
    assert!(checked_buckets > 10, "only {checked_buckets} histograms");
    let value_of = |families: &[wasmon::runtime::model::MetricFamily], name: &str| {
        families.iter().find(|f| f.name == name).and_then(|f| match f.metrics.first()?.value {
            V::Gauge(v) | V::Counter(v) => Some(v),
            _ => None,
        })
    };
    for name in ["etcd_server_has_leader", "etcd_server_is_leader", "etcd_debugging_mvcc_db_total_size_in_bytes"] {
        assert_eq!(value_of(&from_protobuf, name), value(&from_text, name, &[]), "{name}");
    }

    // `/probe` writes this body straight out (`scrape::transcode`): it must take
    // etcd's body, and write what building, validating and encoding the families writes.
    use wasmon::exposition::{Format, encode_families};
    let (kept, rejected) = wasmon::scheduler::validate::validate(from_protobuf.clone());
    assert_eq!(rejected.total(), 0, "etcd's families are valid");
    for format in [Format::Text004, Format::OpenMetrics] {
        let (mut fast, mut names) = (String::new(), Vec::new());
        wasmon::scrape::transcode::transcode(&body, format, &mut Default::default(), &mut names, &mut fast)
            .expect("the fast path takes etcd's body");
        let general = encode_families(&kept, format);
        assert_eq!(fast, general.strip_suffix("# EOF\n").unwrap_or(&general), "{format:?}");
        assert_eq!(names, from_protobuf.iter().map(|f| f.name.clone()).collect::<Vec<_>>());
    }
}
