//! Shared helpers for the host's integration tests: plugin paths, a running
//! agent on a free loopback port, and HTTP fetches.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The workspace's target directory.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("target"))
}

/// A plugin component built by the test command (`wasmon_<name>.wasm`).
pub fn plugin(name: &str) -> PathBuf {
    let path = target_dir().join("wasm32-wasip2/release").join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: build the plugins first with `rustup target add wasm32-wasip2 && \
         cargo build --release --target wasm32-wasip2 -p wasmon-node -p wasmon-hostile -p wasmon-example-plugin` \
         (the README's test command does this)",
        path.display()
    );
    path
}

/// A cache dir shared by the tests of one run, so plugins compile once.
pub fn cache_dir() -> PathBuf {
    target_dir().join("test-component-cache")
}

/// Run the `wasmon` binary: (success, stdout, stderr).
pub fn wasmon(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wasmon"))
        .args(args)
        .env("WASMON_CACHE_DIR", cache_dir())
        .env("WASMON_LOG", "warn")
        .output()
        .expect("run wasmon");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// A `wasmon run` process, killed on drop.
pub struct Agent {
    pub child: Child,
    pub base: String,
    pub log: PathBuf,
    /// The store's data directory (`--storage.tsdb.path`).
    pub data: PathBuf,
    _dir: tempfile::TempDir,
}

impl Agent {
    /// Start the agent with `config` (YAML) on a free port and wait until ready.
    pub fn start(config: &str) -> Agent {
        Self::start_with(Some(config), None)
    }

    /// Start the agent on its embedded default (no --config).
    pub fn start_default() -> Agent {
        Self::start_with(None, None)
    }

    /// Start with `config` on an existing data directory (a restart).
    #[allow(dead_code)]
    pub fn start_with_data(config: &str, data: &std::path::Path) -> Agent {
        Self::start_with(Some(config), Some(data))
    }

    fn start_with(config: Option<&str>, data: Option<&std::path::Path>) -> Agent {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = data.map(|d| d.to_path_buf()).unwrap_or_else(|| dir.path().join("data"));
        let port = free_port();
        let log = dir.path().join("agent.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_wasmon"));
        command.arg("run");
        if let Some(config) = config {
            let config_path = dir.path().join("wasmon.yaml");
            std::fs::write(&config_path, config).expect("write config");
            command.arg("--config").arg(&config_path);
        }
        let child = command
            .arg("--web.listen-address")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--storage.tsdb.path")
            .arg(&data)
            .env("WASMON_CACHE_DIR", cache_dir())
            .env("WASMON_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn wasmon");
        let mut agent = Agent { child, base: format!("http://127.0.0.1:{port}"), log, data, _dir: dir };
        agent.wait_ready();
        agent
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("wasmon exited early with {status}:\n{}", self.log_text());
            }
            if let Ok(r) = reqwest::blocking::get(format!("{}/-/ready", self.base))
                && r.status().is_success()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("wasmon not ready after 120s:\n{}", self.log_text());
    }

    pub fn get(&self, path: &str) -> String {
        reqwest::blocking::get(format!("{}{path}", self.base)).and_then(|r| r.text()).expect("GET")
    }

    /// The config file the agent was started with (rewrite it to reload).
    pub fn config_file(&self) -> PathBuf {
        self._dir.path().join("wasmon.yaml")
    }

    #[allow(dead_code)]
    pub fn data_dir(&self) -> PathBuf {
        self.data.clone()
    }

    /// SIGKILL: no shutdown work at all, like a crash.
    #[allow(dead_code)]
    pub fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit.
    #[allow(dead_code)]
    pub fn stop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("wasmon did not exit within 30s of SIGTERM:\n{}", self.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Parsed `/metrics`.
    pub fn metrics(&self) -> Vec<wasmon_sdk::MetricFamily> {
        let text = self.get("/metrics");
        wasmon_sdk::text::parse(&text).unwrap_or_else(|e| panic!("/metrics does not parse: {e}\n{text}"))
    }

    /// `/api/v1/targets` as JSON.
    pub fn targets(&self) -> serde_json::Value {
        serde_json::from_str(&self.get("/api/v1/targets")).expect("targets JSON")
    }

    /// The `lastError` of the first target of `job` in `/api/v1/targets`.
    pub fn last_error(&self, job: &str) -> String {
        self.targets()["data"]["activeTargets"]
            .as_array()
            .and_then(|a| a.iter().find(|t| t["labels"]["job"] == job))
            .and_then(|t| t["lastError"].as_str())
            .unwrap_or_default()
            .to_string()
    }

    /// Wait until every job in `jobs` has been scraped `times` times.
    pub fn wait_for_scrapes(&self, jobs: &[&str], times: f64) -> Vec<wasmon_sdk::MetricFamily> {
        eventually(Duration::from_secs(60), || {
            let m = self.metrics();
            jobs.iter()
                .all(|job| value(&m, "wasmon_target_scrapes_total", &[("job", job)]).is_some_and(|n| n >= times))
                .then_some(m)
        })
        .unwrap_or_else(|| panic!("jobs {jobs:?} not scraped {times} times:\n{}", self.log_text()))
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of the first series of `name` whose labels include all `labels`.
pub fn value(families: &[wasmon_sdk::MetricFamily], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    families.iter().filter(|f| f.name == name).flat_map(|f| f.metrics.iter()).find_map(|m| {
        let has_all = labels.iter().all(|(k, v)| m.labels.iter().any(|l| l.name == *k && l.value == *v));
        if !has_all {
            return None;
        }
        match &m.value {
            wasmon_sdk::MetricValue::Gauge(v) | wasmon_sdk::MetricValue::Counter(v) => Some(*v),
            wasmon_sdk::MetricValue::Histogram(h) => Some(h.count as f64),
            wasmon_sdk::MetricValue::Summary(s) => Some(s.count as f64),
        }
    })
}

/// Poll `check` until it returns Some or `timeout` passes.
pub fn eventually<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A canned HTTP endpoint on loopback for native-scrape tests: answers every
/// request with what `respond` returns for (path with query, headers), on
/// its own thread, until dropped.
pub struct FakeExporter {
    pub addr: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Every request line and its headers, in order.
    pub requests: SeenRequests,
}

/// Requests a [`FakeExporter`] saw: request target and headers.
pub type SeenRequests = std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<(String, String)>)>>>;

/// One canned answer: status, extra headers, body.
pub type Answer = (u16, Vec<(String, String)>, Vec<u8>);

impl FakeExporter {
    pub fn start(respond: impl Fn(&str, &[(String, String)]) -> Answer + Send + 'static) -> Self {
        Self::start_on("127.0.0.1", respond)
    }

    /// On another loopback address (`127.0.0.2`), for a target that moves.
    pub fn start_on(ip: &str, respond: impl Fn(&str, &[(String, String)]) -> Answer + Send + 'static) -> Self {
        use std::io::{BufRead, BufReader, Write};
        let listener = TcpListener::bind((ip, 0)).expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr").to_string();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let requests: SeenRequests = Default::default();
        let (stop2, requests2) = (stop.clone(), requests.clone());
        std::thread::spawn(move || {
            while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                let mut reader = BufReader::new(stream);
                // One request per connection (we answer `Connection: close`).
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                let mut headers = Vec::new();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.trim_end().split_once(':') {
                        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                    }
                }
                requests2.lock().unwrap_or_else(|p| p.into_inner()).push((target.clone(), headers.clone()));
                let (status, extra, body) = respond(&target, &headers);
                let mut out = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
                for (k, v) in extra {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                let mut stream = reader.into_inner();
                let _ = stream.write_all(out.as_bytes()).and_then(|_| stream.write_all(&body));
            }
        });
        Self { addr, stop, requests }
    }

    pub fn port(&self) -> u16 {
        self.addr.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port")
    }
}

impl Drop for FakeExporter {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
