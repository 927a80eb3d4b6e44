//! Shared by the integration tests: pipeline configs over temp dirs, waiting,
//! reading the file sink's output, and in-process receivers on 127.0.0.1.
#![allow(dead_code)]

pub mod receivers;
pub mod wire;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wasmon_logs::PipelineConfig;

/// Generous: tests wait for a condition, never for a duration.
pub const WAIT: Duration = Duration::from_secs(60);

pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn wait_until_blocking(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A pipeline over `glob` with a file sink at `out`, tuned for tests (short intervals, small batches).
pub fn file_pipeline(dir: &Path, glob: &str, out: &Path, source_extra: &str) -> PipelineConfig {
    let yaml = format!(
        r#"
sources:
  - name: test
    include: ["{glob}"]
    poll_interval: 50ms
    rotate_wait: 200ms
    {source_extra}
checkpoint:
  path: {cp}
  interval: 100ms
batch:
  max_records: 100
  flush_interval: 20ms
  queue: 2
sinks:
  - type: file
    name: out
    path: {out}
"#,
        cp = dir.join("checkpoint.json").display(),
        out = out.display(),
    );
    serde_yaml_ng::from_str(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

/// The file sink's output: one JSON object per line.
pub fn read_output(out: &Path) -> Vec<serde_json::Value> {
    let Ok(text) = std::fs::read_to_string(out) else { return Vec::new() };
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad output line {l:?}: {e}"))).collect()
}

pub fn count_lines(out: &Path) -> usize {
    std::fs::read(out).map(|b| b.iter().filter(|&&c| c == b'\n').count()).unwrap_or(0)
}

/// `seq=N` from each body.
pub fn seqs(records: &[serde_json::Value]) -> Vec<u64> {
    records.iter().filter_map(|r| body_seq(r["body"].as_str()?)).collect()
}

pub fn body_seq(body: &str) -> Option<u64> {
    let rest = &body[body.find("seq=")? + 4..];
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// Every number in `0..n` exactly once.
pub fn assert_exactly_once(seqs: &[u64], n: u64) {
    let mut counts = BTreeMap::new();
    for s in seqs {
        *counts.entry(*s).or_insert(0u32) += 1;
    }
    let dup: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).map(|(s, _)| *s).collect();
    let missing: Vec<_> = (0..n).filter(|s| !counts.contains_key(s)).collect();
    let extra: Vec<_> = counts.keys().filter(|s| **s >= n).collect();
    assert!(
        dup.is_empty() && missing.is_empty() && extra.is_empty(),
        "duplicates {dup:?}, missing {} {:?}, unexpected {extra:?}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
}

pub fn line(seq: u64) -> String {
    format!("seq={seq} the quick brown fox jumps over the lazy dog\n")
}

pub fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

pub fn pod_dir(root: &Path, ns: &str, pod: &str, uid: &str, container: &str) -> PathBuf {
    let d = root.join(format!("{ns}_{pod}_{uid}")).join(container);
    std::fs::create_dir_all(&d).unwrap();
    d
}
