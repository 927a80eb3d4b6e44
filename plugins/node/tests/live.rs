//! Collects natively on this machine and checks the values against /proc.
//! Run with `--nocapture` to see every family as `FAMILY <name> <type>`.

use std::collections::{BTreeMap, HashSet};
use wasmon_node::Node;
use wasmon_node::exposition::kind_name;
use wasmon_sdk::{Exporter, MetricFamily, MetricValue, Target};

fn collect() -> BTreeMap<String, MetricFamily> {
    Node::collect(Target::named("localhost"), "{}".into())
        .expect("collect succeeds")
        .into_iter()
        .map(|f| (f.name.clone(), f))
        .collect()
}

fn proc_file(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn value(v: &MetricValue) -> f64 {
    match v {
        MetricValue::Gauge(x) | MetricValue::Counter(x) => *x,
        other => panic!("unexpected value {other:?}"),
    }
}

fn sample(families: &BTreeMap<String, MetricFamily>, name: &str, labels: &[(&str, &str)]) -> f64 {
    let family = families.get(name).unwrap_or_else(|| panic!("{name} missing"));
    let metric = family
        .metrics
        .iter()
        .find(|m| labels.iter().all(|(k, v)| m.labels.iter().any(|l| l.name == *k && l.value == *v)))
        .unwrap_or_else(|| panic!("{name}{labels:?} missing"));
    value(&metric.value)
}

/// The `/proc/stat` tick counts of `cpuN` lines: (cpu, [user..steal]).
fn cpu_ticks() -> Vec<(String, Vec<u64>)> {
    proc_file("/proc/stat")
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let cpu = f.next()?.strip_prefix("cpu").filter(|c| !c.is_empty())?.to_string();
            Some((cpu, f.take(8).map(|v| v.parse().expect("ticks")).collect()))
        })
        .collect()
}

#[test]
fn values_match_proc() {
    let before = cpu_ticks();
    let families = collect();
    let after = cpu_ticks();

    for line in proc_file("/proc/meminfo").lines() {
        if let Some(rest) = line.strip_prefix("MemTotal:") {
            let kib: f64 = rest.trim().trim_end_matches("kB").trim().parse().expect("MemTotal");
            assert_eq!(sample(&families, "node_memory_MemTotal_bytes", &[]), kib * 1024.0);
        }
    }

    let btime: f64 = proc_file("/proc/stat")
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
        .expect("btime");
    assert_eq!(sample(&families, "node_boot_time_seconds", &[]), btime);

    let modes = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"];
    for ((cpu, low), (_, high)) in before.iter().zip(&after) {
        for (i, mode) in modes.iter().enumerate() {
            let seconds = sample(&families, "node_cpu_seconds_total", &[("cpu", cpu), ("mode", mode)]);
            // USER_HZ is 100: the plugin's reading lies between ours.
            let (lo, hi) = (low[i] as f64 / 100.0 - 0.011, high[i] as f64 / 100.0 + 0.011);
            assert!((lo..=hi).contains(&seconds), "cpu {cpu} {mode}: {seconds} not in [{lo}, {hi}]");
        }
    }

    let load1: f64 = proc_file("/proc/loadavg").split_whitespace().next().and_then(|v| v.parse().ok()).expect("load1");
    assert!((sample(&families, "node_load1", &[]) - load1).abs() < 1.0);

    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs_f64();
    assert!((sample(&families, "node_time_seconds", &[]) - now).abs() < 60.0);
}

#[test]
fn collectors_report_success_and_failure() {
    let families = collect();
    let success = |c: &str| sample(&families, "node_scrape_collector_success", &[("collector", c)]);
    // These sources exist on any Linux machine this test runs on.
    for c in [
        "cpu",
        "stat",
        "meminfo",
        "loadavg",
        "vmstat",
        "diskstats",
        "netdev",
        "netclass",
        "netstat",
        "sockstat",
        "filefd",
        "filesystem",
        "uname",
        "os",
        "time",
        "entropy",
        "arp",
        "udp_queues",
        "selinux",
        "softnet",
        "textfile",
    ] {
        assert_eq!(success(c), 1.0, "collector {c}");
    }
    // adjtimex only exists inside the host.
    assert_eq!(success("timex"), 0.0);
    assert!(!families.contains_key("node_timex_offset_seconds"));
    // statfs only exists inside the host: every kept mount reports an error.
    assert_eq!(sample(&families, "node_filesystem_device_error", &[("mountpoint", "/")]), 1.0);
    assert!(!families.contains_key("node_filesystem_size_bytes"));
    assert_eq!(sample(&families, "node_textfile_scrape_error", &[]), 0.0);
}

#[test]
fn families_are_well_formed() {
    let families = collect();
    for (name, family) in &families {
        assert!(name.starts_with("node_"), "{name}");
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{name}");
        assert!(!family.metrics.is_empty(), "{name} is empty");
        assert!(!family.help.is_empty(), "{name} has no help");
        let mut label_sets = HashSet::new();
        for m in &family.metrics {
            let mut labels: Vec<_> = m.labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect();
            labels.sort();
            assert!(label_sets.insert(labels.clone()), "{name} repeats {labels:?}");
            let expected_counter = family.kind == wasmon_sdk::MetricKind::Counter;
            assert_eq!(matches!(m.value, MetricValue::Counter(_)), expected_counter, "{name}");
        }
        // For the coverage script: `cargo test --test live -- --nocapture`.
        let mut label_names: Vec<_> = family.metrics[0].labels.iter().map(|l| l.name.as_str()).collect();
        label_names.sort_unstable();
        println!("FAMILY {name} {} {}", kind_name(family.kind), label_names.join(","));
    }
}
