//! Prometheus 2.42 (Debian `prometheus`) as a reference: a remote-write
//! receiver with an empty scrape config, so the only data it holds is what a
//! test pushes, and its query API answers over exactly that data.

use crate::{Process, free_port, http_get, require_binary, wait_until};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const PROMETHEUS: &str = "/usr/bin/prometheus";

/// A running Prometheus, stopped by PID when dropped.
#[derive(Debug)]
pub struct Prometheus {
    /// `127.0.0.1:port` of its web listener.
    pub addr: String,
    // Field order matters: the server stops before its directory goes.
    process: Process,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Start with `--web.enable-remote-write-receiver` and `extra_config`
    /// appended to an otherwise empty config (e.g. `rule_files:`).
    pub fn start(extra_config: &str, extra_args: &[&str]) -> Self {
        require_binary(PROMETHEUS, "prometheus");
        let dir = tempfile::Builder::new().prefix("wasmon-prometheus-").tempdir().expect("tempdir");
        let port = free_port();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, format!("global: {{}}\n{extra_config}\n")).expect("config");
        let addr = format!("127.0.0.1:{port}");
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log");
        let process = Process::spawn(
            "prometheus",
            Command::new(PROMETHEUS)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
                .arg(format!("--web.listen-address={addr}"))
                .arg("--web.enable-remote-write-receiver")
                .arg("--web.enable-lifecycle")
                .args(extra_args)
                .stdout(Stdio::null())
                .stderr(log),
        );
        let mut p = Self { addr, process, dir };
        wait_until("prometheus ready", Duration::from_secs(60), || {
            p.process.assert_running();
            matches!(http_get(&p.addr, "/-/ready"), Ok((200, _)))
        });
        p
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }
}
