//! The plugin, run natively, against a real nginx and prometheus-nginx-exporter 0.11 scraped
//! right after it (Debian packages `nginx` and `prometheus-nginx-exporter`).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use wasmon_nginx::Nginx as Plugin;
use wasmon_sdk::{Exporter, MetricFamily, MetricValue, Target, text};
use wasmon_test_servers::nginx::{Nginx, NginxExporter};

fn collect(addr: &str, config: &str) -> BTreeMap<String, MetricFamily> {
    Plugin::collect(Target::named(addr), config.into())
        .expect("collect succeeds")
        .into_iter()
        .map(|f| (f.name.clone(), f))
        .collect()
}

fn value(families: &BTreeMap<String, MetricFamily>, name: &str) -> f64 {
    let family = families.get(name).unwrap_or_else(|| panic!("{name} missing"));
    assert_eq!(family.metrics.len(), 1, "{name}");
    assert!(family.metrics[0].labels.is_empty(), "{name} has labels");
    match family.metrics[0].value {
        MetricValue::Gauge(v) | MetricValue::Counter(v) => v,
        ref other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn matches_the_real_exporter() {
    let nginx = Nginx::start();
    let exporter = NginxExporter::start(&nginx);
    for _ in 0..5 {
        nginx.request();
    }
    let ours = collect(&nginx.addr, "{}");
    let theirs: BTreeMap<String, MetricFamily> = text::parse(&exporter.scrape())
        .expect("the exporter's text parses")
        .into_iter()
        .filter(|f| f.name != "nginxexporter_build_info")
        .map(|f| (f.name.clone(), f))
        .collect();

    assert_eq!(ours.keys().collect::<Vec<_>>(), theirs.keys().collect::<Vec<_>>());
    for (name, family) in &ours {
        let other = &theirs[name];
        assert_eq!((family.kind, &family.help, &family.unit), (other.kind, &other.help, &other.unit), "{name}");
    }
    assert_eq!(value(&ours, "nginx_up"), 1.0);
    // The exporter read stub_status after us, so its counters are at least ours, and its
    // request counter also counts our stub_status request.
    for counter in ["nginx_connections_accepted", "nginx_connections_handled", "nginx_http_requests_total"] {
        assert!(value(&ours, counter) <= value(&theirs, counter), "{counter}");
    }
    assert!(value(&ours, "nginx_http_requests_total") < value(&theirs, "nginx_http_requests_total"));
    // Five GET / plus the readiness probes plus our own request.
    assert!(value(&ours, "nginx_http_requests_total") >= 6.0);
    assert!(value(&ours, "nginx_connections_handled") <= value(&ours, "nginx_connections_accepted"));
    // Our own connection is active and writing the response while nginx renders it.
    assert!(value(&ours, "nginx_connections_active") >= 1.0);
    assert!(value(&ours, "nginx_connections_writing") >= 1.0);
}

#[test]
fn nginx_down_is_nginx_up_0() {
    let addr = {
        let nginx = Nginx::start();
        nginx.addr.clone()
    };
    let families = collect(&addr, "{}");
    assert_eq!(families.keys().collect::<Vec<_>>(), ["nginx_up"]);
    assert_eq!(value(&families, "nginx_up"), 0.0);
}

#[test]
fn a_page_that_is_not_stub_status_is_nginx_up_0() {
    // `location /` answers "ok" to every other path.
    let nginx = Nginx::start();
    let families = collect(&nginx.addr, r#"{"stub_status_path":"/elsewhere"}"#);
    assert_eq!(families.keys().collect::<Vec<_>>(), ["nginx_up"]);
    assert_eq!(value(&families, "nginx_up"), 0.0);
}

#[test]
fn an_error_status_is_nginx_up_0() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let mut request = [0; 1024];
        let _ = stream.read(&mut request);
        stream.write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 9\r\n\r\nforbidden").expect("write");
    });
    let families = collect(&addr, "{}");
    server.join().expect("server thread");
    assert_eq!(value(&families, "nginx_up"), 0.0);
    assert_eq!(families.len(), 1);
}
