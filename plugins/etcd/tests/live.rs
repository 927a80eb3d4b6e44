//! The plugin, run natively, against a real etcd 3.4 (Debian `etcd-server`), compared with
//! etcd's own `/metrics` read right after it.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use wasmon_etcd::Etcd as Plugin;
use wasmon_sdk::{Exporter, MetricFamily, MetricValue, Target, text};
use wasmon_test_servers::etcd::Etcd;
use wasmon_test_servers::http_get;

fn collect(addr: &str) -> BTreeMap<String, MetricFamily> {
    Plugin::collect(Target::named(addr), "{}".into())
        .expect("collect succeeds")
        .into_iter()
        .map(|f| (f.name.clone(), f))
        .collect()
}

fn gauge(families: &BTreeMap<String, MetricFamily>, name: &str) -> f64 {
    let family = families.get(name).unwrap_or_else(|| panic!("{name} missing"));
    match family.metrics[..] {
        [ref m] => match m.value {
            MetricValue::Gauge(v) => v,
            ref other => panic!("{name}: {other:?}"),
        },
        _ => panic!("{name}: expected one sample"),
    }
}

fn label<'a>(families: &'a BTreeMap<String, MetricFamily>, family: &str, name: &str) -> &'a str {
    let family = families.get(family).unwrap_or_else(|| panic!("{family} missing"));
    let labels = &family.metrics[0].labels;
    labels.iter().find(|l| l.name == name).map(|l| l.value.as_str()).unwrap_or_else(|| panic!("{name} missing"))
}

#[test]
fn passes_etcds_families_through_and_adds_endpoint_status() {
    let etcd = Etcd::start();
    etcd.put("foo", "bar");
    // Some families appear only after their first event; one scrape first makes them all exist.
    collect(&etcd.addr);
    let ours = collect(&etcd.addr);
    let (status, body) = http_get(&etcd.addr, "/metrics").expect("GET /metrics");
    assert_eq!(status, 200);
    let theirs = text::parse(&body).expect("etcd's /metrics parses");

    for family in &theirs {
        let mine = ours.get(&family.name).unwrap_or_else(|| panic!("{} missing", family.name));
        assert_eq!((mine.kind, &mine.help), (family.kind, &family.help), "{}", family.name);
        let label_names = |f: &MetricFamily| {
            let mut names: Vec<Vec<String>> =
                f.metrics.iter().map(|m| m.labels.iter().map(|l| l.name.clone()).collect()).collect();
            names.sort();
            names.dedup();
            names
        };
        assert_eq!(label_names(mine), label_names(family), "{}", family.name);
    }
    assert_eq!(gauge(&ours, "etcd_endpoint_up"), 1.0);
    assert_eq!(gauge(&ours, "etcd_endpoint_health"), 1.0);
    assert_eq!(gauge(&ours, "etcd_endpoint_is_leader"), 1.0);
    assert_eq!(gauge(&ours, "etcd_endpoint_is_learner"), 0.0);
    assert!(gauge(&ours, "etcd_endpoint_db_size_bytes") > 0.0);
    assert!(gauge(&ours, "etcd_endpoint_db_size_in_use_bytes") > 0.0);
    assert!(gauge(&ours, "etcd_endpoint_revision") >= 2.0, "the put moved the revision");
    assert!(gauge(&ours, "etcd_endpoint_raft_term") >= 1.0);
    assert!(gauge(&ours, "etcd_endpoint_raft_applied_index") >= 1.0);
    assert!(gauge(&ours, "etcd_endpoint_raft_index") >= gauge(&ours, "etcd_endpoint_raft_applied_index"));
    assert_eq!(label(&ours, "etcd_endpoint_info", "member_id"), label(&ours, "etcd_server_id", "server_id"));
    assert_eq!(label(&ours, "etcd_endpoint_info", "leader_id"), label(&ours, "etcd_server_id", "server_id"));
    assert_eq!(label(&ours, "etcd_endpoint_info", "version"), label(&ours, "etcd_server_version", "server_version"));
}

#[test]
fn etcd_down_is_etcd_endpoint_up_0() {
    let addr = {
        let etcd = Etcd::start();
        etcd.addr.clone()
    };
    let families = collect(&addr);
    assert_eq!(families.keys().collect::<Vec<_>>(), ["etcd_endpoint_up"]);
    assert_eq!(gauge(&families, "etcd_endpoint_up"), 0.0);
}

/// The mutual-TLS server: its client port wants a certificate, its metrics port is plain.
#[test]
fn mtls_server_requires_a_client_certificate() {
    let etcd = Etcd::start_mtls();
    let tls = etcd.tls.as_ref().expect("TLS files");
    let metrics_addr = etcd.metrics_addr.as_deref().expect("metrics port");

    // Natively the plugin speaks plain HTTP: the metrics port works (no maintenance status
    // there), and the TLS client port answers plain HTTP with 400, which is etcd_endpoint_up 0.
    let plain = collect(metrics_addr);
    assert_eq!(gauge(&plain, "etcd_endpoint_up"), 1.0);
    assert_eq!(gauge(&plain, "etcd_endpoint_health"), 1.0);
    assert!(plain.contains_key("etcd_server_is_leader") && !plain.contains_key("etcd_endpoint_is_leader"));
    let refused = collect(&etcd.addr);
    assert_eq!(gauge(&refused, "etcd_endpoint_up"), 0.0);

    // With the client certificate the TLS port answers; without it the handshake fails.
    let with_cert = s_client(&etcd.addr, Some(tls));
    assert!(with_cert.contains(r#"{"health":"true"}"#), "{with_cert}");
    let without = s_client(&etcd.addr, None);
    assert!(!without.contains(r#""health""#), "{without}");
}

/// `GET /health` through `openssl s_client`, returning whatever came back.
fn s_client(addr: &str, tls: Option<&wasmon_test_servers::etcd::TlsFiles>) -> String {
    let mut command = Command::new("/usr/bin/openssl");
    command.args(["s_client", "-quiet", "-verify_return_error", "-connect", addr]);
    if let Some(tls) = tls {
        command.arg("-CAfile").arg(&tls.ca_file).arg("-cert").arg(&tls.client_cert).arg("-key").arg(&tls.client_key);
    }
    let mut child =
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("openssl");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        let _ = stdin.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    }
    let out = child.wait_with_output().expect("openssl output");
    String::from_utf8_lossy(&out.stdout).into_owned()
}
