//! Prometheus remote-write 1.0: the wire format (protobuf + snappy block
//! format), decoding of requests for the receiver endpoint, and the sender
//! (`remote_write:` in the config).
//!
//! # Sender
//!
//! Each `remote_write` endpoint has its own [`queue::Queue`]: a thread tails
//! the store's WAL (series records give id → labels, after
//! `write_relabel_configs`; sample records are queued), and shards (tokio
//! tasks, `min_shards` growing to `max_shards` while the queue is full and
//! the endpoint healthy) batch up to `max_samples_per_send` samples or
//! `batch_send_deadline` and POST them. A series always goes to the same
//! shard and a shard sends one batch at a time, so samples of a series
//! arrive in order. Requests are snappy-compressed protobuf with
//! `Content-Encoding: snappy`, `Content-Type: application/x-protobuf`,
//! `User-Agent: wasmon/<version>` and `X-Prometheus-Remote-Write-Version:
//! 0.1.0` (configured `headers` cannot override them). Values are sent bit
//! for bit, so stale markers arrive as stale markers.
//!
//! Delivery: 5xx, 429 (unless `retry_on_http_429: false`), timeouts and
//! connection errors are retried with exponential backoff from
//! `min_backoff` to `max_backoff` (at least `Retry-After` when given), and
//! never dropped. Other non-2xx answers drop the batch
//! (`..._samples_dropped_total{reason="http_4xx"}`).
//!
//! Durability: the queue's acknowledged position (segment, offset: every
//! sample before it was sent or dropped) is persisted atomically every
//! 0.5 s in `<data>/remote_write/<name>-<hash>.json` and holds back WAL
//! truncation ([`wasmon_storage::Db::hold_wal`]), so an outage or a restart
//! loses nothing; after a crash at most the last half second is sent again.
//! A new queue starts at the end of the WAL. When more than `buffer_limit`
//! WAL bytes follow the position, the oldest samples are given up and
//! counted (`reason="buffer_limit"`) and their segments released, so a dead
//! endpoint cannot fill the disk.
//!
//! Self-metrics, labelled `remote="<name>"`: `wasmon_remote_write_samples_pending`,
//! `_samples_sent_total`, `_samples_failed_total` (retried), `_samples_dropped_total{reason}`
//! (`http_4xx`, `buffer_limit`, `relabel`, `unknown_series`), `_lag_seconds`,
//! `_shards` and `_wal_bytes_behind`.

pub mod client;
pub mod proto;
pub mod queue;

use crate::config::RemoteWriteConfig;
use crate::telemetry::Telemetry;
use prost::Message;
use std::sync::Arc;
use wasmon_storage::{Db, Labels};

/// Starts one queue per endpoint (inside the tokio runtime). Keep the
/// returned queues alive: dropping them stops sending and persists the
/// positions.
pub fn start(
    configs: &[RemoteWriteConfig],
    db: &Arc<Db>,
    telemetry: &Arc<Telemetry>,
) -> Result<Vec<queue::Queue>, queue::QueueError> {
    configs.iter().map(|c| queue::Queue::start(c, db.clone(), telemetry.clone())).collect()
}

/// What a remote-write body or its headers got wrong.
#[derive(Debug, thiserror::Error)]
pub enum RemoteWriteError {
    #[error("body is not snappy block-compressed data: {0}")]
    Snappy(#[source] snap::Error),
    #[error("body is not a remote-write WriteRequest protobuf: {0}")]
    Protobuf(#[source] prost::DecodeError),
    #[error("series {index}: {message}")]
    InvalidSeries { index: usize, message: String },
}

/// Decode a request body: snappy block format, then `WriteRequest`.
pub fn decode_request(body: &[u8]) -> Result<proto::WriteRequest, RemoteWriteError> {
    let raw = snap::raw::Decoder::new().decompress_vec(body).map_err(RemoteWriteError::Snappy)?;
    proto::WriteRequest::decode(raw.as_slice()).map_err(RemoteWriteError::Protobuf)
}

/// Encode a request body the way senders must: protobuf, then snappy block
/// format (never the framed format).
pub fn encode_request(request: &proto::WriteRequest) -> Vec<u8> {
    let raw = request.encode_to_vec();
    // Compression of a buffer we just built cannot fail short of OOM.
    snap::raw::Encoder::new().compress_vec(&raw).unwrap_or_default()
}

/// Labels of one series, checked like Prometheus' receiver: names valid and
/// unique, `__name__` present.
pub fn series_labels(index: usize, series: &proto::TimeSeries) -> Result<Labels, RemoteWriteError> {
    let invalid = |message: String| RemoteWriteError::InvalidSeries { index, message };
    let mut seen = std::collections::HashSet::new();
    for l in &series.labels {
        if !crate::config::is_valid_label_name(&l.name) {
            return Err(invalid(format!("invalid label name {:?}", l.name)));
        }
        if !seen.insert(l.name.as_str()) {
            return Err(invalid(format!("duplicate label name {:?}", l.name)));
        }
    }
    let labels = Labels::from_pairs(series.labels.iter().map(|l| (l.name.clone(), l.value.clone())));
    if labels.metric_name().is_none() {
        return Err(invalid(format!("no __name__ label in {labels}")));
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let request = proto::WriteRequest {
            timeseries: vec![proto::TimeSeries {
                labels: vec![proto::Label { name: "__name__".into(), value: "up".into() }],
                samples: vec![proto::Sample { value: 1.0, timestamp: 1000 }],
            }],
            metadata: vec![],
        };
        let body = encode_request(&request);
        assert_eq!(decode_request(&body).unwrap(), request);
        assert!(matches!(decode_request(b"not snappy"), Err(RemoteWriteError::Snappy(_))));
        let not_proto = snap::raw::Encoder::new().compress_vec(&[0xff, 0xff, 0xff]).unwrap();
        assert!(matches!(decode_request(&not_proto), Err(RemoteWriteError::Protobuf(_))));
    }

    #[test]
    fn series_need_a_name_and_valid_unique_labels() {
        let series = |pairs: &[(&str, &str)]| proto::TimeSeries {
            labels: pairs.iter().map(|(n, v)| proto::Label { name: (*n).into(), value: (*v).into() }).collect(),
            samples: vec![],
        };
        assert!(series_labels(0, &series(&[("__name__", "up"), ("job", "a")])).is_ok());
        let e = series_labels(3, &series(&[("job", "a")])).unwrap_err().to_string();
        assert!(e.contains("series 3") && e.contains("__name__"), "{e}");
        assert!(series_labels(0, &series(&[("__name__", "up"), ("0bad", "a")])).is_err());
        assert!(series_labels(0, &series(&[("__name__", "up"), ("a", "1"), ("a", "2")])).is_err());
    }
}
