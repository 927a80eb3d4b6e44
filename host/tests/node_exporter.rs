//! The node plugin against the real thing: Debian's prometheus-node-exporter
//! on the same machine at the same time, and /proc itself.

mod common;

use common::{Agent, eventually, free_port, value};
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use wasmon_sdk::{MetricFamily, MetricKind};

const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";

struct NodeExporter {
    child: Child,
    url: String,
}

impl NodeExporter {
    fn start() -> Self {
        assert!(
            std::path::Path::new(NODE_EXPORTER).exists(),
            "{NODE_EXPORTER} is missing: `apt-get install prometheus-node-exporter` (scripts/test.sh does this)"
        );
        let port = free_port();
        let child = Command::new(NODE_EXPORTER)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start node exporter");
        let url = format!("http://127.0.0.1:{port}/metrics");
        let ready = eventually(Duration::from_secs(30), || {
            reqwest::blocking::get(&url).ok().filter(|r| r.status().is_success())
        });
        assert!(ready.is_some(), "node exporter did not come up on {url}");
        Self { child, url }
    }

    fn scrape(&self) -> Vec<MetricFamily> {
        let text = reqwest::blocking::get(&self.url).and_then(|r| r.text()).expect("scrape node exporter");
        wasmon_sdk::text::parse(&text).expect("node exporter output parses")
    }
}

impl Drop for NodeExporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Families node_exporter serves that are about itself or need D-Bus.
fn excluded(name: &str) -> bool {
    ["go_", "promhttp_", "process_", "node_exporter_build_info", "node_systemd_"].iter().any(|p| name.starts_with(p))
}

fn kind_name(kind: &MetricKind) -> &'static str {
    match kind {
        MetricKind::Counter => "counter",
        MetricKind::Gauge | MetricKind::Info | MetricKind::Stateset => "gauge",
        MetricKind::Unknown => "untyped",
        MetricKind::Histogram => "histogram",
        MetricKind::Summary => "summary",
    }
}

/// name -> (type, label names)
fn shape(families: &[MetricFamily]) -> BTreeMap<String, (&'static str, BTreeSet<String>)> {
    families
        .iter()
        .map(|f| {
            let labels = f.metrics.iter().flat_map(|m| m.labels.iter().map(|l| l.name.clone())).collect();
            (f.name.clone(), (kind_name(&f.kind), labels))
        })
        .collect()
}

fn node_agent() -> Agent {
    let agent = Agent::start_default();
    let up = eventually(Duration::from_secs(60), || {
        (value(&agent.metrics(), "up", &[("job", "node")]) == Some(1.0)).then_some(())
    });
    assert!(up.is_some(), "node target never came up:\n{}\n{}", agent.get("/api/v1/targets"), agent.log_text());
    agent
}

#[test]
fn node_plugin_matches_node_exporter_families() {
    let exporter = NodeExporter::start();
    let agent = node_agent();
    let theirs = shape(&exporter.scrape());
    let ours_text = agent.get("/probe?job=node");
    let ours = shape(&wasmon_sdk::text::parse(&ours_text).expect("probe output parses"));

    let reference: Vec<&String> = theirs.keys().filter(|n| !excluded(n)).collect();
    let mut matched = 0;
    let mut missing = Vec::new();
    let mut different = Vec::new();
    for name in &reference {
        match ours.get(*name) {
            None => missing.push((*name).clone()),
            Some(shape) if shape == &theirs[*name] => matched += 1,
            Some(shape) => different.push(format!("{name}: ours {shape:?}, node_exporter {:?}", theirs[*name])),
        }
    }
    let coverage = matched as f64 / reference.len() as f64;
    println!("node plugin coverage: {matched}/{} families = {:.1}%", reference.len(), coverage * 100.0);
    println!("missing: {missing:?}");
    println!("different: {different:#?}");
    assert!(coverage >= 0.90, "coverage {:.1}% < 90%; missing {missing:?}; different {different:#?}", coverage * 100.0);
}

fn sample(families: &[MetricFamily], name: &str, labels: &[(&str, &str)]) -> f64 {
    value(families, name, labels).unwrap_or_else(|| panic!("no {name}{labels:?}"))
}

fn meminfo_kb(field: &str) -> f64 {
    let text = std::fs::read_to_string("/proc/meminfo").expect("read /proc/meminfo");
    let line = text.lines().find(|l| l.starts_with(&format!("{field}:"))).expect("field in /proc/meminfo");
    line.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()).expect("a number in kB")
}

#[test]
fn node_plugin_values_agree_with_node_exporter_and_proc() {
    let exporter = NodeExporter::start();
    let agent = node_agent();
    let theirs = exporter.scrape();
    let ours = wasmon_sdk::text::parse(&agent.get("/probe?job=node")).expect("probe parses");

    // Constants: exact.
    for name in
        ["node_memory_MemTotal_bytes", "node_boot_time_seconds", "node_filefd_maximum", "node_entropy_pool_size_bits"]
    {
        let (a, b) = (sample(&ours, name, &[]), sample(&theirs, name, &[]));
        assert!((a - b).abs() <= 1.0, "{name}: ours {a}, node_exporter {b}");
    }
    assert_eq!(sample(&ours, "node_memory_MemTotal_bytes", &[]), meminfo_kb("MemTotal") * 1024.0);

    // Counters taken a moment apart: within what can pass between the scrapes.
    for mode in ["user", "system", "idle"] {
        let labels = [("cpu", "0"), ("mode", mode)];
        let (a, b) =
            (sample(&ours, "node_cpu_seconds_total", &labels), sample(&theirs, "node_cpu_seconds_total", &labels));
        assert!((a - b).abs() < 5.0, "cpu0 {mode}: ours {a}, node_exporter {b}");
    }

    // Filesystem sizes of the root mount.
    let root = [("mountpoint", "/")];
    for name in ["node_filesystem_size_bytes", "node_filesystem_files"] {
        let (a, b) = (sample(&ours, name, &root), sample(&theirs, name, &root));
        assert!((a - b).abs() <= b * 0.001, "{name} for /: ours {a}, node_exporter {b}");
    }
    let (a, b) =
        (sample(&ours, "node_filesystem_avail_bytes", &root), sample(&theirs, "node_filesystem_avail_bytes", &root));
    assert!((a - b).abs() <= b * 0.02, "avail bytes of /: ours {a}, node_exporter {b}");

    // Network counters of a device both report; they differ by what moved between the scrapes.
    let device = theirs
        .iter()
        .filter(|f| f.name == "node_network_receive_packets_total")
        .flat_map(|f| &f.metrics)
        .flat_map(|m| m.labels.iter().filter(|l| l.name == "device").map(|l| l.value.clone()))
        .next()
        .expect("node_exporter reports a network device");
    let dev = [("device", device.as_str())];
    let (a, b) = (
        sample(&ours, "node_network_receive_packets_total", &dev),
        sample(&theirs, "node_network_receive_packets_total", &dev),
    );
    assert!((a - b).abs() < 10_000.0 && a >= b, "{device} packets: ours {a}, node_exporter {b} (scraped first)");

    // Every collector we run reports success on this machine.
    let failed: Vec<String> = ours
        .iter()
        .filter(|f| f.name == "node_scrape_collector_success")
        .flat_map(|f| &f.metrics)
        .filter(|m| matches!(m.value, wasmon_sdk::MetricValue::Gauge(v) if v == 0.0))
        .map(|m| format!("{:?}", m.labels))
        .collect();
    println!("collectors reporting failure: {failed:?}");
}

#[test]
fn embedded_default_serves_node_families_on_metrics() {
    let agent = node_agent();
    let families = agent.metrics();
    for name in [
        "node_cpu_seconds_total",
        "node_memory_MemTotal_bytes",
        "node_load1",
        "node_network_receive_bytes_total",
        "node_filesystem_size_bytes",
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_series_added",
        "wasmon_plugin_scrape_duration_seconds",
        "process_resident_memory_bytes",
    ] {
        assert!(families.iter().any(|f| f.name == name), "/metrics lacks {name}");
    }
    // Every node series carries the target's labels.
    let cpu = families.iter().find(|f| f.name == "node_cpu_seconds_total").unwrap();
    assert!(cpu.metrics.iter().all(|m| m.labels.iter().any(|l| l.name == "job" && l.value == "node")));
    assert!(value(&families, "scrape_samples_scraped", &[("job", "node")]).unwrap() > 300.0);
}
