//! Sinks: where batches go. Each sink retries a batch with exponential backoff
//! until it is delivered, rejected for good (a 4xx: counted as dropped), or the
//! pipeline aborts; only then is the batch acknowledged, so a sink that is down
//! holds back the checkpoint and, through the bounded queue, the tailer.

pub mod elasticsearch;
pub mod file;
pub mod http;
mod json;
pub mod loki;
pub mod otlp;
pub mod proto;

use crate::config::PromDuration;
use crate::record::LogRecord;
use bytes::Bytes;
use serde::Deserialize;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tracing::warn;

pub use elasticsearch::ElasticsearchConfig;
pub use file::FileSinkConfig;
pub use loki::LokiConfig;
pub use otlp::OtlpConfig;

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SinkConfig {
    Loki(LokiConfig),
    Elasticsearch(ElasticsearchConfig),
    Otlp(OtlpConfig),
    File(FileSinkConfig),
}

impl SinkConfig {
    pub fn name(&self) -> &str {
        match self {
            SinkConfig::Loki(c) => &c.name,
            SinkConfig::Elasticsearch(c) => &c.name,
            SinkConfig::Otlp(c) => &c.name,
            SinkConfig::File(c) => &c.name,
        }
    }

    fn retry(&self) -> &RetryConfig {
        match self {
            SinkConfig::Loki(c) => &c.retry,
            SinkConfig::Elasticsearch(c) => &c.retry,
            SinkConfig::Otlp(c) => &c.retry,
            SinkConfig::File(c) => &c.retry,
        }
    }

    pub fn validate(&self) -> Vec<String> {
        let mut v = match self {
            SinkConfig::Loki(c) => c.validate(),
            SinkConfig::Elasticsearch(c) => c.validate(),
            SinkConfig::Otlp(_) | SinkConfig::File(_) => Vec::new(),
        };
        let r = self.retry();
        if r.min_backoff.0.is_zero() || r.max_backoff.0 < r.min_backoff.0 {
            v.push("retry: min_backoff must be positive and not above max_backoff".into());
        }
        v
    }

    pub(crate) fn build(&self) -> Result<Sink, String> {
        let kind = match self {
            SinkConfig::Loki(c) => c.build()?,
            SinkConfig::Elasticsearch(c) => c.build()?,
            SinkConfig::Otlp(c) => c.build()?,
            SinkConfig::File(c) => SinkKind::File(c.build()?),
        };
        Ok(Sink { name: self.name().to_string(), retry: self.retry().clone(), metrics: Arc::default(), kind })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    #[serde(default = "default_min_backoff")]
    pub min_backoff: PromDuration,
    #[serde(default = "default_max_backoff")]
    pub max_backoff: PromDuration,
    /// Unset: retry until delivered (nothing is lost; the tailer waits).
    /// Set: after this many failed attempts the batch is dropped and counted.
    #[serde(default)]
    pub max_retries: Option<u32>,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self { min_backoff: default_min_backoff(), max_backoff: default_max_backoff(), max_retries: None }
    }
}

fn default_min_backoff() -> PromDuration {
    PromDuration(Duration::from_millis(100))
}
fn default_max_backoff() -> PromDuration {
    PromDuration(Duration::from_secs(30))
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    None,
    #[default]
    Gzip,
}

pub(crate) fn default_timeout() -> PromDuration {
    PromDuration(Duration::from_secs(10))
}

crate::metrics::counters! {
    /// Counters of one sink, for the host to export as `wasmon_logs_sink_*{sink="..."}`.
    SinkMetrics / SinkMetricsSnapshot {
        records_sent,
        /// Request body bytes (after compression) that were accepted.
        bytes_sent,
        requests,
        /// Requests that failed and will be retried (connect errors, timeouts, 5xx, 429).
        request_failures,
        retries,
        /// Records the receiver refused for good (4xx, bulk item errors, OTLP partial success).
        dropped_rejected,
        /// Records given up after `retry.max_retries`.
        dropped_retries_exhausted,
        /// Records that could not be encoded.
        dropped_unencodable,
        batches,
        batch_latency_ns_total,
        batch_latency_ns_last,
        /// Gauge: 1 while a batch is waiting to be retried.
        retrying,
    }
}

impl SinkMetricsSnapshot {
    pub fn dropped(&self) -> u64 {
        self.dropped_rejected + self.dropped_retries_exhausted + self.dropped_unencodable
    }
}

/// What one attempt achieved.
#[derive(Debug, PartialEq)]
pub(crate) enum Verdict {
    Sent {
        bytes: u64,
    },
    /// Some records were taken, `retry` (indices into the attempt) may succeed later, `rejected` never will.
    Partial {
        bytes: u64,
        retry: Vec<usize>,
        rejected: u64,
        message: String,
    },
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
    Drop {
        reason: String,
    },
}

/// An encoded request body.
pub(crate) struct Encoded {
    pub body: Bytes,
    pub content_type: &'static str,
    pub content_encoding: Option<&'static str>,
}

/// The protocol part of an HTTP sink.
pub(crate) trait HttpEncoder: Send + Sync {
    fn encode(&self, records: &[&LogRecord]) -> Result<Encoded, String>;
    /// The verdict of a 2xx answer (bulk items, partial success); `Sent` by default.
    fn accepted(&self, _records: usize, bytes: u64, _body: &Bytes) -> Verdict {
        Verdict::Sent { bytes }
    }
}

pub(crate) enum SinkKind {
    Http { target: Box<http::HttpTarget>, encoder: Box<dyn HttpEncoder> },
    File(file::FileWriter),
}

/// The pipeline gave up on this batch (shutdown deadline): not acknowledged.
#[derive(Debug)]
pub(crate) struct Aborted;

pub(crate) struct Sink {
    pub name: String,
    pub retry: RetryConfig,
    pub metrics: Arc<SinkMetrics>,
    kind: SinkKind,
}

/// Returns once `abort` turns true.
pub(crate) async fn aborted(abort: &mut watch::Receiver<bool>) {
    loop {
        if *abort.borrow_and_update() {
            return;
        }
        if abort.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

fn jitter(d: Duration) -> Duration {
    // Spread retries of many agents: 50-100% of the backoff, from the clock's low bits.
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|t| t.subsec_nanos()).unwrap_or(0);
    let factor = 0.5 + f64::from(nanos % 1000) / 2000.0;
    d.mul_f64(factor)
}

impl Sink {
    async fn attempt(&mut self, records: &[&LogRecord]) -> Verdict {
        match &mut self.kind {
            SinkKind::File(w) => w.write(records),
            SinkKind::Http { target, encoder } => {
                let enc = match encoder.encode(records) {
                    Ok(e) => e,
                    Err(e) => {
                        self.metrics.dropped_unencodable.fetch_add(records.len() as u64, Relaxed);
                        return Verdict::Drop { reason: format!("cannot encode: {e}") };
                    }
                };
                let bytes = enc.body.len() as u64;
                self.metrics.requests.fetch_add(1, Relaxed);
                match target.post(enc.body, enc.content_type, enc.content_encoding).await {
                    Err(reason) => Verdict::Retry { reason, retry_after: None },
                    Ok(resp) if resp.status.is_success() => encoder.accepted(records.len(), bytes, &resp.body),
                    Ok(resp) => classify(resp.status, resp.retry_after, &resp.body),
                }
            }
        }
    }

    /// Delivers `records`, retrying as configured; `Err` only when aborted.
    pub(crate) async fn deliver(
        &mut self,
        records: &[LogRecord],
        abort: &mut watch::Receiver<bool>,
    ) -> Result<(), Aborted> {
        let started = Instant::now();
        let m = self.metrics.clone();
        let mut pending: Vec<&LogRecord> = records.iter().collect();
        let mut failures = 0u32;
        while !pending.is_empty() {
            let verdict = tokio::select! {
                v = self.attempt(&pending) => v,
                _ = aborted(abort) => return Err(Aborted),
            };
            let (reason, retry_after) = match verdict {
                Verdict::Sent { bytes } => {
                    m.records_sent.fetch_add(pending.len() as u64, Relaxed);
                    m.bytes_sent.fetch_add(bytes, Relaxed);
                    break;
                }
                Verdict::Drop { reason } => {
                    m.dropped_rejected.fetch_add(pending.len() as u64, Relaxed);
                    warn!(sink = %self.name, records = pending.len(), reason = %reason, "batch rejected by the receiver; dropped");
                    break;
                }
                Verdict::Partial { bytes, retry, rejected, message } => {
                    let taken = pending.len() as u64 - retry.len() as u64 - rejected;
                    m.records_sent.fetch_add(taken, Relaxed);
                    m.bytes_sent.fetch_add(bytes, Relaxed);
                    if rejected > 0 {
                        m.dropped_rejected.fetch_add(rejected, Relaxed);
                        warn!(sink = %self.name, records = rejected, reason = %message, "records rejected by the receiver; dropped");
                    }
                    if retry.is_empty() {
                        break;
                    }
                    pending = retry.iter().filter_map(|&i| pending.get(i).copied()).collect();
                    (format!("{} records to retry: {message}", pending.len()), None)
                }
                Verdict::Retry { reason, retry_after } => {
                    m.request_failures.fetch_add(1, Relaxed);
                    (reason, retry_after)
                }
            };
            failures += 1;
            if self.retry.max_retries.is_some_and(|max| failures > max) {
                m.dropped_retries_exhausted.fetch_add(pending.len() as u64, Relaxed);
                warn!(sink = %self.name, records = pending.len(), attempts = failures, reason = %reason, "giving up on batch; dropped");
                break;
            }
            // Logged on the 1st, 2nd, 4th, 8th... failure of a batch, not on every retry.
            if failures.is_power_of_two() {
                warn!(sink = %self.name, attempts = failures, reason = %reason, "sending logs failed; retrying");
            }
            let exp = self.retry.min_backoff.0.saturating_mul(1u32 << (failures - 1).min(20));
            let mut backoff = jitter(exp.min(self.retry.max_backoff.0));
            if let Some(ra) = retry_after {
                backoff = backoff.max(ra.min(self.retry.max_backoff.0));
            }
            m.retries.fetch_add(1, Relaxed);
            m.retrying.store(1, Relaxed);
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = aborted(abort) => { m.retrying.store(0, Relaxed); return Err(Aborted) }
            }
        }
        m.retrying.store(0, Relaxed);
        let ns = started.elapsed().as_nanos() as u64;
        m.batches.fetch_add(1, Relaxed);
        m.batch_latency_ns_total.fetch_add(ns, Relaxed);
        m.batch_latency_ns_last.store(ns, Relaxed);
        Ok(())
    }
}

/// Non-2xx answers: retry what may succeed later (5xx, 429, 408), drop the rest.
pub(crate) fn classify(status: ::http::StatusCode, retry_after: Option<Duration>, body: &[u8]) -> Verdict {
    let text = String::from_utf8_lossy(&body[..body.len().min(512)]).trim().to_string();
    let reason = format!("{status}: {text}");
    if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
        Verdict::Retry { reason, retry_after }
    } else {
        Verdict::Drop { reason }
    }
}

/// Gzip for sinks whose receivers accept `Content-Encoding: gzip`.
pub(crate) fn gzip(data: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 4), flate2::Compression::fast());
    enc.write_all(data).map_err(|e| e.to_string())?;
    enc.finish().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified() {
        let c = |s: u16| classify(::http::StatusCode::from_u16(s).unwrap(), None, b"x");
        assert!(matches!(c(503), Verdict::Retry { .. }));
        assert!(matches!(c(429), Verdict::Retry { .. }));
        assert!(matches!(c(400), Verdict::Drop { .. }));
        assert!(matches!(c(413), Verdict::Drop { .. }));
    }

    #[test]
    fn sink_configs_parse_and_reject_unknown_keys() {
        let c: SinkConfig = serde_yaml_ng::from_str("{type: file, name: out, path: /tmp/x}").unwrap();
        assert_eq!(c.name(), "out");
        assert!(serde_yaml_ng::from_str::<SinkConfig>("{type: file, name: out, bogus: 1}").is_err());
        let c: SinkConfig = serde_yaml_ng::from_str(
            "{type: loki, name: l, url: 'http://127.0.0.1:3100/loki/api/v1/push', retry: {max_retries: 3}}",
        )
        .unwrap();
        assert!(c.validate().is_empty());
    }
}
