//! Against the real thing: Debian's nginx writes an access log in `combined` format in a
//! throwaway directory while this test sends it requests with known methods, paths and
//! headers. The status and body size each response actually had, as the client saw them,
//! must be exactly what the plugin parses out of nginx's own log lines, and the metrics
//! must count exactly those requests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use wasmon_logs_nginx::NginxProcessor;
use wasmon_sdk_logs::LogRecord;
use wasmon_test_servers::{Process, free_port, http_get, require_binary, wait_until};

const NGINX: &str = "/usr/sbin/nginx";
/// A custom format, written into nginx.conf and given to the plugin as is.
const TIMED_FORMAT: &str = r#"$remote_addr [$time_iso8601] "$request" $status $body_bytes_sent rt=$request_time xff="$http_x_forwarded_for" $request_method"#;
const STATIC_SIZE: usize = 5000;

fn config(port: u16, root: &Path) -> String {
    format!(
        r#"worker_processes 1;
daemon off;
pid nginx.pid;
error_log logs/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log logs/access.log combined;
    log_format timed '{TIMED_FORMAT}';
    access_log logs/timed.log timed;
    client_body_temp_path tmp_body;
    proxy_temp_path tmp_proxy;
    fastcgi_temp_path tmp_fastcgi;
    uwsgi_temp_path tmp_uwsgi;
    scgi_temp_path tmp_scgi;
    server {{
        listen 127.0.0.1:{port};
        location = /ready {{ access_log off; return 200; }}
        location = /ok {{ return 200 "hello\n"; }}
        location = /created {{ return 201 "made it\n"; }}
        location = /empty {{ return 204; }}
        location /static/ {{ root {root}; }}
        location / {{ return 404; }}
    }}
}}
"#,
        root = root.display()
    )
}

/// A request to send: method, path, the path as nginx logs it, headers, body.
type Planned = (&'static str, &'static str, &'static str, Vec<(&'static str, &'static str)>, &'static str);

/// What the client sent and what it got back.
#[derive(Debug)]
struct Exchange {
    method: &'static str,
    path: &'static str,
    /// The path as nginx writes it into the log: `"` escaped as `\x22`.
    logged_path: &'static str,
    user: Option<&'static str>,
    referer: Option<&'static str>,
    user_agent: Option<&'static str>,
    forwarded_for: Option<&'static str>,
    status: u16,
    body_bytes: usize,
}

/// One HTTP/1.1 request on its own connection; returns (status, body bytes received).
fn send(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, usize) {
    let mut stream = TcpStream::connect(addr).expect("connect to nginx");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("response head") + 4;
    let head = std::str::from_utf8(&raw[..head_end]).unwrap();
    assert!(!head.to_ascii_lowercase().contains("transfer-encoding"), "a chunked body would not be body_bytes_sent");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, raw.len() - head_end)
}

fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as i64
}

#[test]
fn real_nginx_access_log_parses_to_what_the_client_saw() {
    require_binary(NGINX, "nginx");
    let dir = tempfile::Builder::new().prefix("wasmon-logs-nginx-").tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("logs")).unwrap();
    let root = dir.path().join("www");
    std::fs::create_dir_all(root.join("static")).unwrap();
    std::fs::write(root.join("static/data.bin"), vec![b'x'; STATIC_SIZE]).unwrap();
    let port = free_port();
    std::fs::write(dir.path().join("nginx.conf"), config(port, &root)).unwrap();
    let mut command = Command::new(NGINX);
    command
        .arg("-p")
        .arg(format!("{}/", dir.path().display()))
        .args(["-c", "nginx.conf", "-e", "logs/error.log"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut nginx = Process::spawn("nginx", &mut command);
    let addr = format!("127.0.0.1:{port}");
    let error_log = dir.path().join("logs/error.log");
    wait_until("nginx to answer on loopback", Duration::from_secs(30), || {
        let running = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| nginx.assert_running()));
        if running.is_err() {
            panic!("nginx did not start; its error log:\n{}", std::fs::read_to_string(&error_log).unwrap_or_default());
        }
        matches!(http_get(&addr, "/ready"), Ok((200, _)))
    });

    let basic_alice = "Basic YWxpY2U6c2VjcmV0"; // alice:secret
    let ua = "wasmon-test/1.0 (logs; nginx)";
    #[rustfmt::skip]
    let plan: Vec<Planned> = vec![
        ("GET", "/ok", "/ok", vec![], ""),
        ("GET", "/ok?x=1&y=2", "/ok?x=1&y=2", vec![("Referer", "http://example.test/from"), ("User-Agent", ua), ("X-Forwarded-For", "203.0.113.7, 10.0.0.1")], ""),
        ("POST", "/created", "/created", vec![("User-Agent", ua)], "a=1&b=2"),
        ("HEAD", "/ok", "/ok", vec![], ""),
        ("PUT", "/static/data.bin", "/static/data.bin", vec![], "new"),
        ("GET", "/static/data.bin", "/static/data.bin", vec![("Authorization", basic_alice)], ""),
        ("DELETE", "/nothing", "/nothing", vec![], ""),
        ("GET", "/empty", "/empty", vec![], ""),
        ("GET", "/a\"b", r"/a\x22b", vec![], ""),
        ("OPTIONS", "/ok", "/ok", vec![], ""),
        ("FOO", "/ok", "/ok", vec![], ""),
        ("GET", "/ok", "/ok", vec![], ""),
    ];
    let started = now_ns();
    let mut sent = Vec::new();
    for (method, path, logged_path, headers, body) in plan {
        let (status, body_bytes) = send(&addr, method, path, &headers, body);
        let header = |name: &str| headers.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        sent.push(Exchange {
            method,
            path,
            logged_path,
            user: header("Authorization").map(|_| "alice"),
            referer: header("Referer"),
            user_agent: header("User-Agent"),
            forwarded_for: header("X-Forwarded-For"),
            status,
            body_bytes,
        });
    }
    let finished = now_ns();
    // The statuses are what nginx answered, not what this test assumes; the plan
    // still has to cover the interesting cases.
    let statuses: Vec<u16> = sent.iter().map(|e| e.status).collect();
    assert_eq!(statuses, vec![200, 200, 201, 200, 405, 200, 404, 204, 404, 200, 200, 200], "{sent:#?}");
    assert_eq!(sent[5].body_bytes, STATIC_SIZE);
    assert_eq!(sent[3].body_bytes, 0, "HEAD has no body");

    let log_path = dir.path().join("logs/access.log");
    wait_until("nginx to write every access-log line", Duration::from_secs(10), || {
        std::fs::read(&log_path).map(|b| b.iter().filter(|&&c| c == b'\n').count()).unwrap_or(0) >= sent.len()
    });
    let log = std::fs::read(&log_path).unwrap();
    let lines: Vec<&[u8]> = log.split(|&c| c == b'\n').filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), sent.len());
    eprintln!("nginx's access log:\n{}", String::from_utf8_lossy(&log));

    let mut processor = NginxProcessor::from_json(r#"{"response_size_buckets":[10, 100, 1000, 10000]}"#).unwrap();
    let records: Vec<LogRecord> = lines.iter().map(|l| LogRecord::new(0, 0, *l)).collect();
    let out = processor.process_batch(records);
    assert_eq!(out.len(), sent.len());

    for ((record, exchange), line) in out.iter().zip(&sent).zip(&lines) {
        let line = String::from_utf8_lossy(line);
        let mut want: BTreeMap<&str, String> = BTreeMap::from([
            ("remote_addr", "127.0.0.1".to_string()),
            ("method", exchange.method.to_string()),
            ("path", exchange.logged_path.to_string()),
            ("protocol", "HTTP/1.1".to_string()),
            ("status", exchange.status.to_string()),
            ("body_bytes_sent", exchange.body_bytes.to_string()),
        ]);
        if let Some(u) = exchange.user {
            want.insert("remote_user", u.to_string());
        }
        if let Some(r) = exchange.referer {
            want.insert("referer", r.to_string());
        }
        if let Some(a) = exchange.user_agent {
            want.insert("user_agent", a.to_string());
        }
        let got: BTreeMap<&str, String> = record.attributes.iter().map(|(k, v)| (k, v.to_string())).collect();
        assert_eq!(got, want, "request {} {} logged as {line}", exchange.method, exchange.path);
        // $time_local has whole seconds.
        let second = 1_000_000_000;
        assert_eq!(record.timestamp_ns % second, 0, "{line}");
        assert!(
            record.timestamp_ns >= started / second * second && record.timestamp_ns <= finished,
            "timestamp {} outside [{started}, {finished}]: {line}",
            record.timestamp_ns
        );
        assert_eq!(record.body, line.as_bytes(), "the body is the log line, unchanged");
    }

    // Metrics: exactly the client's tally.
    let mut want_requests: BTreeMap<(String, String), u64> = BTreeMap::new();
    for e in &sent {
        let label = if e.method == "FOO" { "OTHER" } else { e.method };
        *want_requests.entry((e.status.to_string(), label.to_string())).or_default() += 1;
    }
    assert_eq!(processor.metrics.requests, want_requests);
    let sizes: Vec<usize> = sent.iter().map(|e| e.body_bytes).collect();
    let hist = &processor.metrics.response_size;
    assert_eq!(hist.count(), sent.len() as u64);
    assert_eq!(hist.sum(), sizes.iter().sum::<usize>() as f64);
    let cumulative = |le: f64| sizes.iter().filter(|&&s| s as f64 <= le).count() as u64;
    assert_eq!(
        hist.buckets(),
        vec![
            (10.0, cumulative(10.0)),
            (100.0, cumulative(100.0)),
            (1000.0, cumulative(1000.0)),
            (10000.0, cumulative(10000.0)),
            (f64::INFINITY, sent.len() as u64),
        ]
    );
    assert_eq!(processor.metrics.unparsed, 0);

    // The same requests in nginx's second log, in the custom format.
    let timed_path = dir.path().join("logs/timed.log");
    wait_until("nginx to write every line of the custom log", Duration::from_secs(10), || {
        std::fs::read(&timed_path).map(|b| b.iter().filter(|&&c| c == b'\n').count()).unwrap_or(0) >= sent.len()
    });
    let timed = std::fs::read(&timed_path).unwrap();
    eprintln!("nginx's custom-format log:\n{}", String::from_utf8_lossy(&timed));
    let config = serde_json::json!({ "format": TIMED_FORMAT, "prefix": "http." }).to_string();
    let mut custom = NginxProcessor::from_json(&config).unwrap();
    let records: Vec<LogRecord> =
        timed.split(|&c| c == b'\n').filter(|l| !l.is_empty()).map(|l| LogRecord::new(0, 0, l)).collect();
    let out = custom.process_batch(records);
    assert_eq!(out.len(), sent.len());
    assert_eq!(custom.metrics.unparsed, 0);
    for (record, exchange) in out.iter().zip(&sent) {
        let line = String::from_utf8_lossy(&record.body);
        let mut got: BTreeMap<&str, String> = record.attributes.iter().map(|(k, v)| (k, v.to_string())).collect();
        let request_time: f64 = got.remove("http.request_time").expect("request_time").parse().expect("a number");
        assert!((0.0..10.0).contains(&request_time), "{line}");
        let mut want: BTreeMap<&str, String> = BTreeMap::from([
            ("http.remote_addr", "127.0.0.1".to_string()),
            ("http.method", exchange.method.to_string()),
            ("http.request_method", exchange.method.to_string()),
            ("http.path", exchange.logged_path.to_string()),
            ("http.protocol", "HTTP/1.1".to_string()),
            ("http.status", exchange.status.to_string()),
            ("http.body_bytes_sent", exchange.body_bytes.to_string()),
        ]);
        if let Some(xff) = exchange.forwarded_for {
            want.insert("http.http_x_forwarded_for", xff.to_string());
        }
        assert_eq!(got, want, "{line}");
        let second = 1_000_000_000;
        assert!(record.timestamp_ns >= started / second * second && record.timestamp_ns <= finished, "{line}");
    }
    assert_eq!(custom.metrics.requests, processor.metrics.requests, "both logs count the same requests");
    nginx.assert_running();
}
