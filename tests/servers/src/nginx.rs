//! nginx (Debian `nginx`) with `stub_status`, and `prometheus-nginx-exporter` reading it.
//!
//! [`Nginx::start`] writes a one-server config into a throwaway prefix directory and runs
//! nginx in the foreground (`daemon off`), so the PID we hold is the master's: SIGTERM to it
//! stops the workers too. `/stub_status` serves the counters, and every other path answers
//! `200 ok`, so tests can generate requests.

use crate::{Process, free_port, http_get, require_binary, wait_until};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const NGINX: &str = "/usr/sbin/nginx";
const NGINX_EXPORTER: &str = "/usr/bin/prometheus-nginx-exporter";

/// The path of the `stub_status` location.
pub const STUB_STATUS_PATH: &str = "/stub_status";

/// A running nginx, stopped by its master's PID when dropped.
#[derive(Debug)]
pub struct Nginx {
    /// `127.0.0.1:port`.
    pub addr: String,
    pub port: u16,
    // Field order matters: the server stops before its directory goes.
    process: Process,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Start nginx with `stub_status` at [`STUB_STATUS_PATH`] on a free loopback port.
    pub fn start() -> Self {
        require_binary(NGINX, "nginx");
        let dir = tempfile::Builder::new().prefix("wasmon-nginx-").tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("logs")).expect("logs dir");
        let port = free_port();
        std::fs::write(dir.path().join("nginx.conf"), config(port)).expect("write nginx.conf");
        let mut command = Command::new(NGINX);
        command
            .arg("-p")
            .arg(format!("{}/", dir.path().display()))
            .args(["-c", "nginx.conf"])
            // Without -e, nginx opens /var/log/nginx/error.log before it reads the config.
            .args(["-e", "logs/error.log"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut process = Process::spawn("nginx", &mut command);
        let addr = format!("127.0.0.1:{port}");
        wait_until("nginx to serve /stub_status", Duration::from_secs(30), || {
            exited_early(&mut process, &dir.path().join("logs/error.log"));
            matches!(http_get(&addr, STUB_STATUS_PATH), Ok((200, _)))
        });
        Nginx { addr, port, process, dir }
    }

    /// The URL of `stub_status`.
    pub fn stub_status_url(&self) -> String {
        format!("http://{}{STUB_STATUS_PATH}", self.addr)
    }

    /// PID of the master process.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The throwaway prefix directory (config and logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// GET `/` once, so the request counters move.
    pub fn request(&self) {
        let (status, _) = http_get(&self.addr, "/").expect("GET / on nginx");
        assert_eq!(status, 200, "GET / on nginx");
    }
}

fn config(port: u16) -> String {
    format!(
        r#"worker_processes 1;
daemon off;
pid nginx.pid;
error_log logs/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path tmp_body;
    proxy_temp_path tmp_proxy;
    fastcgi_temp_path tmp_fastcgi;
    uwsgi_temp_path tmp_uwsgi;
    scgi_temp_path tmp_scgi;
    server {{
        listen 127.0.0.1:{port};
        location = {STUB_STATUS_PATH} {{ stub_status; }}
        location / {{ return 200 "ok\n"; }}
    }}
}}
"#
    )
}

/// Panic with the server's log when it has exited.
fn exited_early(process: &mut Process, log: &Path) {
    if let Ok(Some(status)) = process.child.try_wait() {
        let log = std::fs::read_to_string(log).unwrap_or_default();
        panic!("{} exited early with {status}; its log:\n{log}", process.name);
    }
}

/// `prometheus-nginx-exporter` 0.11 scraping one [`Nginx`], stopped by PID when dropped.
#[derive(Debug)]
pub struct NginxExporter {
    /// `127.0.0.1:port` of the exporter's `/metrics`.
    pub addr: String,
    process: Process,
}

impl NginxExporter {
    /// Start the exporter on a free port; returns once it reports `nginx_up 1`.
    pub fn start(nginx: &Nginx) -> Self {
        require_binary(NGINX_EXPORTER, "prometheus-nginx-exporter");
        let addr = format!("127.0.0.1:{}", free_port());
        let mut command = Command::new(NGINX_EXPORTER);
        command
            .arg(format!("-nginx.scrape-uri={}", nginx.stub_status_url()))
            .arg(format!("-web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut process = Process::spawn("prometheus-nginx-exporter", &mut command);
        wait_until("prometheus-nginx-exporter to report nginx_up 1", Duration::from_secs(30), || {
            process.assert_running();
            matches!(http_get(&addr, "/metrics"), Ok((200, body)) if body.lines().any(|l| l == "nginx_up 1"))
        });
        NginxExporter { addr, process }
    }

    /// One scrape of the exporter's `/metrics`.
    pub fn scrape(&self) -> String {
        match http_get(&self.addr, "/metrics") {
            Ok((200, body)) => body,
            other => panic!("scraping prometheus-nginx-exporter at {}: {other:?}", self.addr),
        }
    }

    /// PID of the exporter.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }
}
