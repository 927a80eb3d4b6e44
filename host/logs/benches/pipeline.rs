//! End-to-end benchmark of the logs pipeline, run in release:
//!
//! ```text
//! cargo bench -p wasmon-logs --bench pipeline -- throughput [--mib 256]
//! cargo bench -p wasmon-logs --bench pipeline -- sink-down [--seconds 300] [--rate-mib 5] [--every 10]
//! ```
//!
//! `throughput`: a CRI file of JSON lines → native JSON processor → file sink;
//! prints MiB/s and lines/s per core (CPU time from getrusage, all threads) and wall-clock.
//! `sink-down`: writes CRI lines at a set rate while the Loki sink answers 503,
//! printing RSS at intervals, then brings the sink back and waits for every line.

use nix::sys::resource::{UsageWho, getrusage};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};
use wasmon_logs::{JsonBodyConfig, JsonBodyProcessor, LogPipeline, PipelineConfig, Processor};

fn cpu_seconds() -> f64 {
    let u = getrusage(UsageWho::RUSAGE_SELF).expect("getrusage");
    let tv = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    tv(u.user_time()) + tv(u.system_time())
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// A realistic container line: CRI header + a JSON body of ~200 bytes.
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

fn config(dir: &Path, pods: &Path, sink: &str, extra_batch: &str) -> PipelineConfig {
    let yaml = format!(
        r#"
sources:
  - name: pods
    include: ["{}/*/*/*.log"]
    kubernetes_metadata: true
    framing: {{ format: cri }}
checkpoint: {{ path: {} }}
batch: {{ max_records: 2000, max_bytes: 1MiB, flush_interval: 200ms {extra_batch} }}
sinks:
  - {sink}
"#,
        pods.display(),
        dir.join("checkpoint.json").display()
    );
    serde_yaml_ng::from_str(&yaml).expect("bench config")
}

fn arg(args: &[String], name: &str, default: f64) -> f64 {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    match args.first().map(String::as_str) {
        Some("sink-down") => rt.block_on(sink_down(&args)),
        Some("throughput") | None => rt.block_on(throughput(&args)),
        Some(other) => eprintln!("unknown mode {other:?}: throughput | sink-down"),
    }
}

async fn throughput(args: &[String]) {
    let mib = arg(args, "--mib", 256.0);
    let dir = tempfile::tempdir().expect("tempdir");
    let pods = dir.path().join("pods");
    let container = pods.join("shop_cart-7d9f-abcde_1f0c6c1e-0000-4000-8000-000000000001/app");
    std::fs::create_dir_all(&container).expect("mkdir");
    let log = container.join("0.log");
    let (mut lines, mut bytes) = (0u64, 0u64);
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&log).expect("create"));
        let mut buf = Vec::new();
        while bytes < (mib * 1048576.0) as u64 {
            buf.clear();
            cri_line(lines, &mut buf);
            f.write_all(&buf).expect("write");
            bytes += buf.len() as u64;
            lines += 1;
        }
    }
    let out = dir.path().join("out.jsonl");
    let cfg = config(dir.path(), &pods, &format!("{{type: file, name: out, path: {}}}", out.display()), "");
    let processors: Vec<Box<dyn Processor>> = vec![Box::new(JsonBodyProcessor::new(JsonBodyConfig::default()))];
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    let p = LogPipeline::start(cfg, processors, None).expect("start");
    let sent = p.sink_metrics[0].1.clone();
    let mut peak_rss = 0f64;
    while sent.records_sent.load(Relaxed) < lines {
        peak_rss = peak_rss.max(rss_mib());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (cpu, wall) = (cpu_seconds() - cpu0, t0.elapsed().as_secs_f64());
    p.shutdown(Duration::from_secs(10)).await.expect("shutdown");
    let in_mib = bytes as f64 / 1048576.0;
    let out_mib = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0) as f64 / 1048576.0;
    println!("pipeline: CRI file -> native JSON processor -> file sink");
    println!(
        "input      {in_mib:.1} MiB, {lines} lines ({:.0} B/line); output {out_mib:.1} MiB JSON lines",
        bytes as f64 / lines as f64
    );
    println!("wall       {wall:.2} s   {:.1} MiB/s   {:.0} lines/s", in_mib / wall, lines as f64 / wall);
    println!("cpu        {cpu:.2} s   {:.1} MiB/s per core   {:.0} lines/s per core", in_mib / cpu, lines as f64 / cpu);
    println!("cores used {:.2}   peak RSS {peak_rss:.1} MiB", cpu / wall);
}

/// A Loki stand-in on 127.0.0.1 that answers 503 while `down`.
async fn fake_loki(down: Arc<AtomicBool>, entries: Arc<AtomicU64>) -> String {
    use axum::body::Bytes;
    use axum::http::StatusCode;
    let app = axum::Router::new().fallback(move |body: Bytes| {
        let (down, entries) = (down.clone(), entries.clone());
        async move {
            if down.load(Relaxed) {
                return StatusCode::SERVICE_UNAVAILABLE;
            }
            // Count entries without a protobuf dependency here: the sink's own
            // tests check the wire format; this only needs "all arrived".
            let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap_or_default();
            entries.fetch_add(count_entries(&raw), Relaxed);
            StatusCode::NO_CONTENT
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    format!("http://{addr}/loki/api/v1/push")
}

/// Entries in a `PushRequest`: field 1 (streams) → field 2 (entries), walked with prost's varint decoding.
fn count_entries(mut buf: &[u8]) -> u64 {
    use prost::encoding::{decode_key, decode_varint};
    let mut n = 0;
    while !buf.is_empty() {
        let Ok((tag, _)) = decode_key(&mut buf) else { break };
        let Ok(len) = decode_varint(&mut buf) else { break };
        let (stream, rest) = buf.split_at((len as usize).min(buf.len()));
        buf = rest;
        if tag != 1 {
            continue;
        }
        let mut s = stream;
        while !s.is_empty() {
            let Ok((t, wt)) = decode_key(&mut s) else { break };
            if wt != prost::encoding::WireType::LengthDelimited {
                let _ = decode_varint(&mut s);
                continue;
            }
            let Ok(l) = decode_varint(&mut s) else { break };
            s = &s[(l as usize).min(s.len())..];
            if t == 2 {
                n += 1;
            }
        }
    }
    n
}

async fn sink_down(args: &[String]) {
    let seconds = arg(args, "--seconds", 300.0);
    let rate = arg(args, "--rate-mib", 5.0);
    let every = arg(args, "--every", 10.0);
    let dir = tempfile::tempdir().expect("tempdir");
    let pods = dir.path().join("pods");
    let container = pods.join("shop_cart-1_uid-1/app");
    std::fs::create_dir_all(&container).expect("mkdir");
    let log = container.join("0.log");
    let (down, entries) = (Arc::new(AtomicBool::new(true)), Arc::new(AtomicU64::new(0)));
    let url = fake_loki(down.clone(), entries.clone()).await;
    let cfg = config(
        dir.path(),
        &pods,
        &format!("{{type: loki, name: loki, url: '{url}', retry: {{min_backoff: 100ms, max_backoff: 2s}}}}"),
        "",
    );
    let p = LogPipeline::start(cfg, Vec::new(), None).expect("start");
    let written = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (written, stop, log) = (written.clone(), stop.clone(), log.clone());
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("open");
            let (start, mut bytes, mut seq, mut buf) = (Instant::now(), 0f64, 0u64, Vec::new());
            while !stop.load(Relaxed) {
                // Write in 10 ms slices to hold the rate.
                let due = rate * 1048576.0 * start.elapsed().as_secs_f64();
                buf.clear();
                while bytes + (buf.len() as f64) < due {
                    cri_line(seq, &mut buf);
                    seq += 1;
                }
                f.write_all(&buf).expect("write");
                bytes += buf.len() as f64;
                written.store(seq, Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    println!("sink down for {seconds:.0} s while writing {rate} MiB/s");
    println!("{:>8} {:>12} {:>14} {:>10} {:>9}", "t (s)", "written MiB", "read MiB", "RSS MiB", "retries");
    let start = Instant::now();
    let mut rss = Vec::new();
    while start.elapsed().as_secs_f64() < seconds {
        tokio::time::sleep(Duration::from_secs_f64(every.min(seconds))).await;
        let r = rss_mib();
        rss.push(r);
        println!(
            "{:>8.0} {:>12.1} {:>14.1} {:>10.1} {:>9}",
            start.elapsed().as_secs_f64(),
            std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0) as f64 / 1048576.0,
            p.tailer_metrics.bytes_read.load(Relaxed) as f64 / 1048576.0,
            r,
            p.sink_metrics[0].1.retries.load(Relaxed)
        );
    }
    stop.store(true, Relaxed);
    writer.join().expect("writer");
    let total = written.load(Relaxed);
    down.store(false, Relaxed);
    let t = Instant::now();
    while entries.load(Relaxed) < total {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (min, max) = rss.iter().fold((f64::MAX, 0f64), |(a, b), &r| (a.min(r), b.max(r)));
    println!("RSS while down: min {min:.1} MiB, max {max:.1} MiB");
    println!(
        "sink back: {total} lines delivered in {:.1} s (received {})",
        t.elapsed().as_secs_f64(),
        entries.load(Relaxed)
    );
    p.shutdown(Duration::from_secs(10)).await.expect("shutdown");
}
