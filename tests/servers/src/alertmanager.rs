//! Alertmanager 0.25 (Debian `prometheus-alertmanager`) on loopback, with
//! clustering off (its gossip port would otherwise listen on all
//! interfaces) and a config the test supplies.

use crate::{Process, free_port, http_get, require_binary, wait_until};
use std::process::{Command, Stdio};
use std::time::Duration;

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

/// A running Alertmanager, stopped by PID when dropped.
#[derive(Debug)]
pub struct Alertmanager {
    /// `127.0.0.1:port` of its web listener.
    pub addr: String,
    // Field order matters: the server stops before its directory goes.
    process: Process,
    dir: tempfile::TempDir,
}

/// A config with one receiver that goes nowhere: alerts are only kept and
/// shown by the API, which is what tests read.
pub const NULL_CONFIG: &str = "route:\n  receiver: none\n  group_wait: 1s\nreceivers:\n  - name: none\n";

impl Alertmanager {
    pub fn start(config: &str) -> Self {
        require_binary(ALERTMANAGER, "prometheus-alertmanager");
        let dir = tempfile::Builder::new().prefix("wasmon-alertmanager-").tempdir().expect("tempdir");
        let config_path = dir.path().join("alertmanager.yml");
        std::fs::write(&config_path, config).expect("config");
        let addr = format!("127.0.0.1:{}", free_port());
        let log = std::fs::File::create(dir.path().join("alertmanager.log")).expect("log");
        let process = Process::spawn(
            "alertmanager",
            Command::new(ALERTMANAGER)
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!("--storage.path={}", dir.path().join("data").display()))
                .arg(format!("--web.listen-address={addr}"))
                .arg("--cluster.listen-address=")
                .stdout(Stdio::null())
                .stderr(log),
        );
        let mut am = Self { addr, process, dir };
        wait_until("alertmanager ready", Duration::from_secs(60), || {
            am.process.assert_running();
            matches!(http_get(&am.addr, "/-/ready"), Ok((200, _)))
        });
        am
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("alertmanager.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }
}
