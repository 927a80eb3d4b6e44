//! The logs pipeline with its JSON step done two ways, in one run: a CRI
//! file → `logs-json` Wasm plugin (a long-lived instance, one `process` call
//! per batch) → file sink, and the same file → the native JSON processor →
//! file sink. Prints MiB/s and lines/s per core (process CPU time, not wall)
//! for both and the ratio of CPU per byte (Wasm / native).
//!
//! ```text
//! cargo build --release --target wasm32-wasip2 -p wasmon-logs-json
//! cargo bench -p wasmon --bench logs_wasm -- [--mib 128] [--rounds 2] [--message-key]
//! ```
//!
//! Targets (issue 7): ≥ 50 MiB/s per core end to end, Wasm ≤ 1.5× native.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use wasmon::config::PathsConfig;
use wasmon::runtime::Runtime;
use wasmon::runtime::log_processor::{LoadedLogProcessor, LogProcessorLimits, WasmLogProcessor, WasmProcessorShared};
use wasmon_logs::{JsonBodyConfig, JsonBodyProcessor, LogPipeline, PipelineConfig, Processor};

fn cpu_seconds() -> f64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID)
        .map(|t| t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9)
        .unwrap_or_default()
}

/// The same realistic container line as `host/logs/benches/pipeline.rs`:
/// CRI header + a JSON body of ~230 bytes.
fn cri_line(seq: u64, out: &mut Vec<u8>) {
    let levels = ["info", "debug", "warn", "error"];
    writeln!(
        out,
        "2024-05-01T10:{:02}:{:02}.{:09}Z stdout F {{\"ts\":\"2024-05-01T10:00:00Z\",\"level\":\"{}\",\"msg\":\"handled request\",\"seq\":{seq},\"method\":\"GET\",\"path\":\"/api/v1/items/{}\",\"status\":200,\"duration_ms\":{}.{},\"request_id\":\"{:016x}\",\"user_agent\":\"curl/8.5.0\"}}",
        (seq / 60) % 60,
        seq % 60,
        seq % 1_000_000_000,
        levels[(seq % 4) as usize],
        seq % 977,
        seq % 250,
        seq % 10,
        seq.wrapping_mul(0x9E37_79B9_7F4A_7C15),
    )
    .expect("write to vec");
}

fn arg(args: &[String], name: &str, default: f64) -> f64 {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A kubelet-style log file of about `mib` MiB; returns (lines, bytes).
fn write_input(pods: &Path, mib: f64) -> (u64, u64) {
    let container = pods.join("shop_cart-7d9f-abcde_1f0c6c1e-0000-4000-8000-000000000001/app");
    std::fs::create_dir_all(&container).expect("mkdir");
    let mut f = std::io::BufWriter::new(std::fs::File::create(container.join("0.log")).expect("create"));
    let (mut lines, mut bytes) = (0u64, 0u64);
    let mut buf = Vec::new();
    while bytes < (mib * 1048576.0) as u64 {
        buf.clear();
        cri_line(lines, &mut buf);
        f.write_all(&buf).expect("write");
        bytes += buf.len() as u64;
        lines += 1;
    }
    (lines, bytes)
}

fn config(dir: &Path, pods: &Path, out: &Path) -> PipelineConfig {
    let yaml = format!(
        r#"
sources:
  - name: pods
    include: ["{}/*/*/*.log"]
    kubernetes_metadata: true
    framing: {{ format: cri }}
checkpoint: {{ path: {} }}
batch: {{ max_records: 2000, max_bytes: 1MiB, flush_interval: 200ms }}
sinks:
  - {{type: file, name: out, path: {}}}
"#,
        pods.display(),
        dir.join("checkpoint.json").display(),
        out.display()
    );
    serde_yaml_ng::from_str(&yaml).expect("bench config")
}

struct Run {
    cpu: f64,
    wall: f64,
    /// CPU time inside the plugin's `process` calls (lowering, guest, lifting).
    plugin_cpu: f64,
    out_bytes: u64,
}

/// One pipeline over a fresh copy of the input.
async fn run(mib: f64, processor: Box<dyn Processor>, shared: Option<Arc<WasmProcessorShared>>) -> (Run, u64, u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let pods = dir.path().join("pods");
    let (lines, bytes) = write_input(&pods, mib);
    let out = dir.path().join("out.jsonl");
    let cfg = config(dir.path(), &pods, &out);
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    let p = LogPipeline::start(cfg, vec![processor], None).expect("start");
    let sent = p.sink_metrics[0].1.clone();
    while sent.records_sent.load(Relaxed) < lines {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (cpu, wall) = (cpu_seconds() - cpu0, t0.elapsed().as_secs_f64());
    p.shutdown(Duration::from_secs(10)).await.expect("shutdown");
    let plugin_cpu = shared.map(|s| s.stats.cpu_ns.load(Relaxed) as f64 / 1e9).unwrap_or(0.0);
    let out_bytes = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    (Run { cpu, wall, plugin_cpu, out_bytes }, lines, bytes)
}

fn wasm_processor(plugin: &LoadedLogProcessor, config: &str) -> (Box<dyn Processor>, Arc<WasmProcessorShared>) {
    let limits = LogProcessorLimits {
        memory_bytes: 256 << 20,
        timeout: Duration::from_secs(10),
        cpu: Duration::from_secs(10),
        log_lines: 100,
    };
    let p = WasmLogProcessor::start("logs-json", plugin.clone(), limits, config.into()).expect("start logs-json");
    let shared = p.shared();
    (Box::new(p), shared)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let mib = arg(&args, "--mib", 128.0);
    let rounds = arg(&args, "--rounds", 2.0) as usize;
    let message_key = args.iter().any(|a| a == "--message-key");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or(root.join("target"));
    let wasm = target.join("wasm32-wasip2/release/wasmon_logs_json.wasm");
    assert!(
        wasm.is_file(),
        "{} missing: cargo build --release --target wasm32-wasip2 -p wasmon-logs-json",
        wasm.display()
    );

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let cache = tempfile::tempdir().expect("tempdir");
    let runtime = Runtime::new(PathsConfig::default(), cache.path()).expect("runtime");
    let plugin = runtime.load_log_processor("logs-json", &wasm).expect("load logs-json");
    // The same work both ways: flatten every key (depth 4), optionally `msg` as the body.
    let (native_cfg, wasm_cfg) = if message_key {
        (JsonBodyConfig { body_field: Some("msg".into()), ..Default::default() }, r#"{"message_key":"msg"}"#)
    } else {
        (JsonBodyConfig::default(), "{}")
    };
    println!(
        "pipeline: CRI file ({mib} MiB) -> JSON step -> file sink, batches of 2000, {rounds} round(s) each, alternating"
    );
    let mut native_runs = Vec::new();
    let mut wasm_runs = Vec::new();
    let (mut lines, mut bytes) = (0, 0);
    for _ in 0..rounds {
        let (r, l, b) = rt.block_on(run(mib, Box::new(JsonBodyProcessor::new(native_cfg.clone())), None));
        native_runs.push(r);
        let (p, shared) = {
            let _guard = rt.enter();
            wasm_processor(&plugin, wasm_cfg)
        };
        let (r, _, _) = rt.block_on(run(mib, p, Some(shared)));
        wasm_runs.push(r);
        (lines, bytes) = (l, b);
    }
    let in_mib = bytes as f64 / 1048576.0;
    println!("input      {in_mib:.1} MiB, {lines} lines ({:.0} B/line)", bytes as f64 / lines as f64);
    let best = |runs: &[Run]| runs.iter().map(|r| r.cpu).fold(f64::INFINITY, f64::min);
    for (name, runs) in [("native", &native_runs), ("wasm", &wasm_runs)] {
        for (i, r) in runs.iter().enumerate() {
            println!(
                "{name:6} #{i}  cpu {:.2} s  {:6.1} MiB/s/core  {:8.0} lines/s/core   wall {:.2} s ({:.1} MiB/s)  plugin calls {:.2} s  out {:.1} MiB",
                r.cpu,
                in_mib / r.cpu,
                lines as f64 / r.cpu,
                r.wall,
                in_mib / r.wall,
                r.plugin_cpu,
                r.out_bytes as f64 / 1048576.0
            );
        }
    }
    let (n, w) = (best(&native_runs), best(&wasm_runs));
    println!(
        "best       native {:.1} MiB/s/core ({:.0} lines/s/core)   wasm {:.1} MiB/s/core ({:.0} lines/s/core)",
        in_mib / n,
        lines as f64 / n,
        in_mib / w,
        lines as f64 / w
    );
    println!("ratio      wasm / native CPU per byte: {:.2}x   (targets: wasm >= 50 MiB/s/core, ratio <= 1.5x)", w / n);
}
