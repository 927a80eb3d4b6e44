//! kube-state through the whole host path: the fake API server holds 10,000
//! synthetic pods and 1,000 nodes; the agent's object feed lists and watches
//! them and applies every event to the release kube-state component, which
//! then answers `collect`. Prints events/s, the plugin instance's memory per
//! object and the `collect` time, each beside the target (the
//! re-list time is the discovery crate's benchmark).
//!
//! `cargo bench -p wasmon --bench kube_state` (after building the plugins:
//! `cargo build --release --target wasm32-wasip2 -p wasmon-kube-state`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmon::config::{ByteSize, CapabilitiesConfig, KubernetesApiConfig, LimitsConfig, PathsConfig};
use wasmon::kube_state::KubeStateJob;
use wasmon::runtime::{Runtime, Sandbox};
use wasmon::telemetry::Telemetry;
use wasmon_kube_fake::FakeApiServer;

const PODS: usize = 10_000;
const NODES: usize = 1_000;
/// Collects timed; medians and minimums are printed (the minimum is the
/// figure least disturbed by other work on a shared machine).
const ROUNDS: usize = 9;

fn events(t: &Telemetry) -> f64 {
    t.value("wasmon_kube_state_events_total", &[("job", "bench")]).unwrap_or(0.0)
}

async fn wait_for(t: &Telemetry, n: f64) -> Duration {
    let started = Instant::now();
    while events(t) < n {
        assert!(started.elapsed() < Duration::from_secs(300), "only {} of {n} events after 5 min", events(t));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    started.elapsed()
}

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR").map(std::path::PathBuf::from).unwrap_or(root.join("target"));
    let wasm = target.join("wasm32-wasip2/release/wasmon_kube_state.wasm");
    assert!(
        wasm.is_file(),
        "{} missing: cargo build --release --target wasm32-wasip2 -p wasmon-kube-state",
        wasm.display()
    );
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let api = FakeApiServer::start().await.unwrap();
        api.load_synthetic_nodes(NODES).unwrap();
        api.load_synthetic_pods(PODS, NODES).unwrap();
        let cache = tempfile::tempdir().unwrap();
        let runtime = Runtime::new(PathsConfig::default(), cache.path()).unwrap();
        let plugin = runtime.load_kube_state("kube-state", &wasm).unwrap();
        let limits = LimitsConfig { memory: ByteSize(2 << 30), ..Default::default() };
        let sandbox = Sandbox::for_job(
            &PathsConfig::default(),
            &CapabilitiesConfig::default(),
            &limits,
            Duration::from_secs(60),
            &[],
        )
        .unwrap();
        let api_config: KubernetesApiConfig = serde_yaml_ng::from_str(&format!("api_server: '{}'", api.url())).unwrap();
        let telemetry = Arc::new(Telemetry::default());
        let job = Arc::new(KubeStateJob::new("bench", plugin, sandbox, "{}".into(), api_config, telemetry.clone()));
        let runner = tokio::spawn(job.clone().run());

        let total = (PODS + NODES) as f64;
        let initial = wait_for(&telemetry, total).await;
        let memory =
            telemetry.value("wasmon_plugin_memory_high_water_bytes", &[("plugin", "kube-state")]).unwrap_or(0.0);

        // The plugin's `collect` until the host holds its text, then the
        // host reading that text into families (what a scrape does next).
        let mut collects = Vec::new();
        let mut reads = Vec::new();
        let mut series = 0;
        let mut bytes = 0;
        let mut fragments = 0;
        let mut memory_after = 0u64;
        let mut cpu = Vec::new();
        for _ in 0..ROUNDS {
            let j = job.clone();
            let started = Instant::now();
            let outcome = tokio::task::spawn_blocking(move || j.collect_text()).await.unwrap();
            collects.push(started.elapsed());
            memory_after = memory_after.max(outcome.report.memory_high_water);
            cpu.push(outcome.report.cpu_time);
            let text = outcome.result.unwrap();
            (bytes, fragments) = (text.bytes(), text.fragments().len());
            let started = Instant::now();
            let families = text.families().unwrap();
            reads.push(started.elapsed());
            // As a scrape does: the text's memory goes back for the next collect.
            job.recycle(text);
            series = families.iter().map(|f| f.metrics.len()).sum::<usize>();
        }
        let in_order: Vec<String> = collects.iter().map(|d| format!("{:.0}", d.as_secs_f64() * 1000.0)).collect();
        let in_order = in_order.join(" ");
        collects.sort();
        reads.sort();
        cpu.sort();
        let memory_after = memory_after as f64;

        runner.abort();

        println!("kube-state through the host: {PODS} pods + {NODES} nodes, release component");
        println!(
            "  initial list + apply:  {:>8.2} s   {:>9.0} events/s",
            initial.as_secs_f64(),
            total / initial.as_secs_f64()
        );
        println!(
            "  plugin memory:         {:>8.1} MiB  {:>9.0} bytes/object   (target: agent memory <= 4096 bytes/pod)",
            memory / 1048576.0,
            memory / total
        );
        println!(
            "  collect (median of {ROUNDS}): {:>8.1} ms, min {:.1} ms   {series} series, {:.0} MiB of text in {fragments} fragments   (target <= 100 ms)",
            collects[ROUNDS / 2].as_secs_f64() * 1000.0,
            collects[0].as_secs_f64() * 1000.0,
            bytes as f64 / 1048576.0
        );
        println!("  each collect in order (ms): {in_order}");
        // Wall-clock time stretches when other processes share the cores;
        // the call's own CPU time does not.
        println!(
            "  collect CPU time (median of {ROUNDS}): {:>5.1} ms, min {:.1} ms",
            cpu[ROUNDS / 2].as_secs_f64() * 1000.0,
            cpu[0].as_secs_f64() * 1000.0
        );
        println!(
            "  plugin memory after the collects: {:.1} MiB ({:.0} bytes/object)",
            memory_after / 1048576.0,
            memory_after / total
        );
        println!(
            "  host reading the text into families (median of {ROUNDS}): {:>8.1} ms",
            reads[ROUNDS / 2].as_secs_f64() * 1000.0
        );
        // A re-list delivers only objects whose resourceVersion changed, so
        // its cost is the feed's: `cargo bench -p wasmon-discovery` times it.
    });
}
