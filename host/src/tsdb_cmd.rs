//! `wasmon tsdb`: look into a data directory of the embedded store, like
//! `promtool tsdb list` and `promtool tsdb dump`.

use anyhow::Context;
use clap::Subcommand;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};
use wasmon_storage::{Db, DbOptions, Querier};

#[derive(Subcommand, Debug)]
pub enum TsdbCommand {
    /// Blocks and head: time range, series, samples, bytes and bytes per sample.
    List {
        /// The data directory (`storage.tsdb.path`).
        dir: PathBuf,
    },
    /// Print every sample as `series value timestamp_ms`, one per line.
    Dump {
        dir: PathBuf,
        /// Series selector, e.g. `up{job="node"}`; repeatable. Default: every series.
        #[arg(long = "match")]
        matchers: Vec<String>,
        /// Earliest timestamp (ms since the epoch, or RFC 3339).
        #[arg(long = "min-time")]
        min_time: Option<String>,
        /// Latest timestamp (ms since the epoch, or RFC 3339).
        #[arg(long = "max-time")]
        max_time: Option<String>,
    },
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

pub fn run(command: TsdbCommand) -> anyhow::Result<()> {
    match command {
        TsdbCommand::List { dir } => list(&dir),
        TsdbCommand::Dump { dir, matchers, min_time, max_time } => {
            dump(&dir, &matchers, min_time.as_deref(), max_time.as_deref())
        }
    }
}

fn open(dir: &Path) -> anyhow::Result<Db> {
    anyhow::ensure!(dir.is_dir(), "{} is not a directory; give the agent's storage.tsdb.path", dir.display());
    Db::open_read_only(dir, DbOptions::default()).with_context(|| format!("cannot open the store at {}", dir.display()))
}

fn list(dir: &Path) -> anyhow::Result<()> {
    let db = open(dir)?;
    let stats = db.stats();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<28} {:>15} {:>15} {:>10} {:>12} {:>12} {:>8}",
        "BLOCK", "MIN TIME", "MAX TIME", "SERIES", "SAMPLES", "BYTES", "B/SAMPLE"
    )?;
    for b in &stats.blocks {
        writeln!(
            out,
            "{:<28} {:>15} {:>15} {:>10} {:>12} {:>12} {:>8.2}",
            b.name,
            b.min_time,
            b.max_time,
            b.series,
            b.samples,
            b.bytes,
            if b.samples > 0 { b.bytes as f64 / b.samples as f64 } else { 0.0 }
        )?;
    }
    writeln!(
        out,
        "{:<28} {:>15} {:>15} {:>10} {:>12} {:>12}",
        "head (in memory + WAL)",
        stats.head_min_time.map(|t| t.to_string()).unwrap_or_else(|| "-".into()),
        stats.head_max_time.map(|t| t.to_string()).unwrap_or_else(|| "-".into()),
        stats.head_series,
        stats.head_samples,
        stats.wal_bytes
    )?;
    Ok(())
}

fn parse_bound(text: Option<&str>, default: i64) -> anyhow::Result<i64> {
    match text {
        None => Ok(default),
        Some(t) => match t.parse::<i64>() {
            Ok(ms) => Ok(ms),
            Err(_) => chrono::DateTime::parse_from_rfc3339(t)
                .map(|d| d.timestamp_millis())
                .map_err(|_| anyhow::anyhow!("{t:?} is neither milliseconds since the epoch nor an RFC 3339 time")),
        },
    }
}

fn dump(dir: &Path, selectors: &[String], min: Option<&str>, max: Option<&str>) -> anyhow::Result<()> {
    let mint = parse_bound(min, i64::MIN)?;
    let maxt = parse_bound(max, i64::MAX)?;
    let mut sets = Vec::new();
    for text in selectors {
        sets.extend(crate::api::parse_selector(text).map_err(anyhow::Error::msg)?);
    }
    if sets.is_empty() {
        // `{__name__=~".+"}`: every series has a name.
        sets.push(vec![wasmon_storage::Matcher::regex(wasmon_storage::METRIC_NAME, ".+")?]);
    }
    let db = open(dir)?;
    let mut series: Vec<_> = sets.iter().flat_map(|m| db.select(m, mint, maxt)).collect();
    series.sort_by(|a, b| a.labels.cmp(&b.labels));
    series.dedup_by(|a, b| a.labels == b.labels);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for s in &series {
        for p in &s.samples {
            let value = if wasmon_storage::is_stale_nan(p.v) {
                "stale".to_string()
            } else {
                crate::api::prom::format_api_float(p.v)
            };
            writeln!(out, "{} {value} {}", s.labels, p.t)?;
        }
    }
    out.flush()?;
    Ok(())
}
