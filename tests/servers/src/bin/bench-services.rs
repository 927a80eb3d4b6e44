//! The service plugins against the real exporters, side by side in one run.
//!
//! For each service the real server runs on loopback with its reference
//! beside it: `prometheus-nginx-exporter`, `prometheus-mysqld-exporter`, and
//! for etcd a direct scrape of etcd's own `/metrics` over mutual TLS (what a
//! Prometheus would do). wasmon serves the same target through its plugin at
//! `/probe?job=...` (a fresh instance and one collect per request). Requests
//! go in alternating blocks so both sides see the same conditions, each one a
//! new `curl` connection as in the reference figures. Printed: CPU seconds per
//! scrape (exporter process vs the agent, and the server's own share where it
//! does the work) and median latency, with ratios wasmon / reference.
//!
//! Usage: `bench/run.sh`, or after building release binaries and plugins:
//! `cargo run --release -p wasmon-test-servers --bin bench-services -- [scrapes] [nginx|mysql|etcd ...]`
//! (all three when none is named). Binaries are looked up in `$CARGO_TARGET_DIR`, else `target/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use wasmon_test_servers::etcd::Etcd;
use wasmon_test_servers::mariadb::{MariaDb, MysqldExporter};
use wasmon_test_servers::nginx::{Nginx, NginxExporter};
use wasmon_test_servers::{Process, free_port, http_get, wait_until};

const BLOCK: usize = 10;

/// The cargo target directory: `CARGO_TARGET_DIR` when set (as cargo reads
/// it), else `target/` at the repository root.
fn target_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

/// utime + stime of `pid`, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Ticks are 100 Hz here; `main` checks `getconf CLK_TCK`.
    (ticks(11) + ticks(12)) / 100.0
}

/// One scrape with a new curl connection; returns seconds to the last byte.
fn curl(args: &[&str], url: &str) -> f64 {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}"])
        .args(args)
        .arg(url)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    let (code, seconds) = text.split_once(' ').unwrap_or(("000", "0"));
    assert_eq!(code, "200", "{url} answered {code}");
    seconds.parse().unwrap()
}

struct Side<'a> {
    url: String,
    curl_args: Vec<&'a str>,
    /// Processes whose CPU counts for this side: (label, pid).
    pids: Vec<(&'static str, u32)>,
}

struct Measured {
    cpu: Vec<f64>, // per pid, seconds per scrape
    latencies: Vec<f64>,
}

fn measure(sides: &[Side], scrapes: usize) -> Vec<Measured> {
    if std::env::var_os("BENCH_PAUSE").is_some() {
        // Leave the processes up for profiling (`perf record -p PID`); go on at Enter.
        for side in sides {
            println!("{} pids {:?}", side.url, side.pids);
        }
        println!("press Enter to measure");
        let _ = std::io::stdin().read_line(&mut String::new());
    }
    for side in sides {
        for _ in 0..5 {
            curl(&side.curl_args, &side.url); // warm up
        }
    }
    let mut results: Vec<Measured> =
        sides.iter().map(|s| Measured { cpu: vec![0.0; s.pids.len()], latencies: Vec::new() }).collect();
    for _ in 0..scrapes.div_ceil(BLOCK) {
        for (side, result) in sides.iter().zip(&mut results) {
            let before: Vec<f64> = side.pids.iter().map(|(_, p)| cpu_seconds(*p)).collect();
            for _ in 0..BLOCK {
                result.latencies.push(curl(&side.curl_args, &side.url));
            }
            for (i, (_, pid)) in side.pids.iter().enumerate() {
                result.cpu[i] += cpu_seconds(*pid) - before[i];
            }
        }
    }
    for result in &mut results {
        let n = result.latencies.len() as f64;
        result.cpu.iter_mut().for_each(|c| *c /= n);
        result.latencies.sort_by(f64::total_cmp);
    }
    results
}

fn median_ms(latencies: &[f64]) -> f64 {
    latencies[latencies.len() / 2] * 1000.0
}

fn report(title: &str, sides: &[Side], results: &[Measured], peer: &str) {
    println!("\n{title}");
    println!("| measure | {peer} | wasmon | ratio | target |");
    println!("|---|---|---|---|---|");
    let total = |r: &Measured| r.cpu.iter().sum::<f64>();
    let (theirs, ours) = (&results[0], &results[1]);
    let parts = |s: &Side, r: &Measured| {
        s.pids
            .iter()
            .zip(&r.cpu)
            .map(|((name, _), c)| format!("{name} {:.2}", c * 1000.0))
            .collect::<Vec<_>>()
            .join(" + ")
    };
    let verdict = |ratio: f64| if ratio <= 1.0 { "meets ≤ 1×" } else { "MISSES ≤ 1×" };
    let cpu_ratio = total(ours) / total(theirs);
    println!(
        "| CPU ms / scrape | {:.2} ({}) | {:.2} ({}) | {cpu_ratio:.2}× | {} |",
        total(theirs) * 1000.0,
        parts(&sides[0], theirs),
        total(ours) * 1000.0,
        parts(&sides[1], ours),
        verdict(cpu_ratio)
    );
    let latency_ratio = median_ms(&ours.latencies) / median_ms(&theirs.latencies);
    println!(
        "| median latency ms | {:.2} | {:.2} | {latency_ratio:.2}× | {} |",
        median_ms(&theirs.latencies),
        median_ms(&ours.latencies),
        verdict(latency_ratio)
    );
}

/// A release `wasmon run` with `jobs` (YAML list items), ready to probe.
struct Agent {
    process: Process,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Agent {
    fn start(jobs: &str) -> Self {
        let wasmon = target_dir().join("release/wasmon");
        assert!(wasmon.exists(), "{} missing: run bench/run.sh", wasmon.display());
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("wasmon.yaml");
        // A long interval keeps the scheduler's own scrapes out of the measurement.
        std::fs::write(
            &config,
            format!("global: {{scrape_interval: 1h, scrape_timeout: 10s}}\nscrape_configs:\n{jobs}"),
        )
        .unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let mut command = Command::new(wasmon);
        command
            .args(["run", "--config"])
            .arg(&config)
            .args(["--web.listen-address", &addr])
            .arg("--storage.tsdb.path")
            .arg(dir.path().join("data"))
            .env("WASMON_CACHE_DIR", dir.path().join("cache"))
            .env("WASMON_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut process = Process::spawn("wasmon", &mut command);
        wait_until("wasmon to be ready", Duration::from_secs(120), || {
            process.assert_running();
            matches!(http_get(&addr, "/-/ready"), Ok((200, _)))
        });
        Self { process, addr, _dir: dir }
    }

    fn probe_url(&self, job: &str) -> String {
        format!("http://{}/probe?job={job}", self.addr)
    }
}

fn plugin(name: &str) -> String {
    let path = target_dir().join(format!("wasm32-wasip2/release/{name}.wasm"));
    assert!(path.exists(), "{} missing: run bench/run.sh", path.display());
    path.display().to_string()
}

fn main() {
    let scrapes: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let only: Vec<String> = std::env::args().skip(2).collect();
    let run = |service: &str| only.is_empty() || only.iter().any(|o| o == service);
    // `cpu_seconds` counts in 100 Hz ticks.
    let hz =
        Command::new("getconf").arg("CLK_TCK").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    assert_eq!(hz.as_deref().unwrap_or("100"), "100", "clock ticks are not 100 Hz");
    println!(
        "# wasmon service plugins vs the real exporters, {scrapes} scrapes per side, alternating blocks of {BLOCK}"
    );

    if run("nginx") {
        let nginx = Nginx::start();
        let exporter = NginxExporter::start(&nginx);
        let agent = Agent::start(&format!(
            "  - job_name: nginx\n    plugin: {}\n    static_configs: [{{targets: ['{}']}}]\n    capabilities: {{http: true}}\n",
            plugin("wasmon_nginx"),
            nginx.addr
        ));
        let sides = [
            Side {
                url: format!("http://{}/metrics", exporter.addr),
                curl_args: vec![],
                pids: vec![("exporter", exporter.pid())],
            },
            Side { url: agent.probe_url("nginx"), curl_args: vec![], pids: vec![("agent", agent.process.pid())] },
        ];
        let results = measure(&sides, scrapes);
        report("## nginx (stub_status)", &sides, &results, "nginx-prometheus-exporter 0.11");
    }
    if run("mysql") {
        let db = MariaDb::start();
        let exporter = MysqldExporter::start(&db);
        let dir = tempfile::tempdir().unwrap();
        let password = dir.path().join("password");
        std::fs::write(&password, &db.password).unwrap();
        let agent = Agent::start(&format!(
            "  - job_name: mysql\n    plugin: {}\n    static_configs: [{{targets: ['{}']}}]\n    capabilities: {{tcp: true}}\n    secrets: {{password: {{file: '{}'}}}}\n    config: {{user: {}}}\n",
            plugin("wasmon_mysql"),
            db.addr,
            password.display(),
            db.user
        ));
        let sides = [
            Side {
                url: format!("http://{}/metrics", exporter.addr),
                curl_args: vec![],
                pids: vec![("exporter", exporter.pid()), ("mariadbd", db.pid())],
            },
            Side {
                url: agent.probe_url("mysql"),
                curl_args: vec![],
                pids: vec![("agent", agent.process.pid()), ("mariadbd", db.pid())],
            },
        ];
        let results = measure(&sides, scrapes);
        report("## mysql (MariaDB 10.11, default collectors)", &sides, &results, "mysqld_exporter 0.14");
    }
    if run("etcd") {
        let etcd = Etcd::start_mtls();
        let tls = etcd.tls.clone().expect("mTLS files");
        let agent = Agent::start(&format!(
            "  - job_name: etcd\n    plugin: {}\n    static_configs: [{{targets: ['{}']}}]\n    capabilities: {{http: true}}\n    scheme: https\n    tls_config: {{ca_file: '{}', cert_file: '{}', key_file: '{}'}}\n",
            plugin("wasmon_etcd"),
            etcd.addr,
            tls.ca_file.display(),
            tls.client_cert.display(),
            tls.client_key.display()
        ));
        let (ca, cert, key) = (
            tls.ca_file.display().to_string(),
            tls.client_cert.display().to_string(),
            tls.client_key.display().to_string(),
        );
        let sides = [
            Side {
                url: format!("https://{}/metrics", etcd.addr),
                curl_args: vec!["--cacert", &ca, "--cert", &cert, "--key", &key],
                pids: vec![("etcd", etcd.pid())],
            },
            Side {
                url: agent.probe_url("etcd"),
                curl_args: vec![],
                pids: vec![("agent", agent.process.pid()), ("etcd", etcd.pid())],
            },
        ];
        let results = measure(&sides, scrapes);
        report(
            "## etcd 3.4 over mutual TLS (/metrics passed through, plus /health and status)",
            &sides,
            &results,
            "etcd /metrics scraped directly",
        );
    }
}
