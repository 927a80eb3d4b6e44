//! Records cut into batches, each carrying the positions it completes.

use crate::checkpoint::{FileKey, Position};
use crate::config::BatchConfig;
use crate::framing::Framed;
use crate::metrics::TailerMetrics;
use crate::record::{LogRecord, LogSource};
use crate::tailer::file::TailedFile;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

/// What the tailer hands to the pipeline.
#[derive(Debug)]
pub struct Batch {
    /// Batches are numbered from 1 in the order they are sent and acknowledged.
    pub seq: u64,
    pub records: Vec<LogRecord>,
    /// For each file in the batch, where reading resumes once the batch is delivered.
    pub positions: Vec<Position>,
}

/// The sinks went away (shutdown or abort): stop reading.
#[derive(Debug)]
pub(crate) struct Closed;

pub(crate) struct Batcher {
    cfg: BatchConfig,
    tx: mpsc::Sender<Batch>,
    metrics: Arc<TailerMetrics>,
    records: Vec<LogRecord>,
    positions: Vec<Position>,
    bytes: usize,
    started: Option<Instant>,
    next_seq: u64,
}

impl Batcher {
    pub fn new(cfg: BatchConfig, tx: mpsc::Sender<Batch>, metrics: Arc<TailerMetrics>) -> Self {
        Self {
            records: Vec::with_capacity(cfg.max_records),
            cfg,
            tx,
            metrics,
            positions: Vec::new(),
            bytes: 0,
            started: None,
            next_seq: 1,
        }
    }

    /// The sequence number the batch being built will get.
    pub fn current_seq(&self) -> u64 {
        self.next_seq
    }

    /// Adds `framed` records of `file`; sends full batches (blocking while the queue is full).
    pub fn add(&mut self, file: &mut TailedFile, framed: &mut Vec<Framed>) -> Result<(), Closed> {
        for f in framed.drain(..) {
            self.bytes += f.body.len();
            file.emitted_commit = f.commit;
            file.last_batch = self.next_seq;
            self.records.push(LogRecord {
                timestamp_ns: f.timestamp_ns,
                body: f.body,
                attributes: Default::default(),
                source: LogSource {
                    path: file.path_str.clone(),
                    stream: f.stream,
                    attributes: file.attributes.clone(),
                },
            });
            self.set_position(file.key, file);
            self.started.get_or_insert_with(Instant::now);
            if self.records.len() >= self.cfg.max_records || self.bytes >= self.cfg.max_bytes.0 {
                self.send()?;
            }
        }
        Ok(())
    }

    /// Runs once per record, so the path is only copied for a file new to
    /// the batch (or renamed since its last record).
    fn set_position(&mut self, key: FileKey, file: &TailedFile) {
        // Few files per batch: a linear search beats hashing. Most batches hit the last entry.
        match self.positions.iter_mut().rev().find(|q| q.key == key) {
            Some(q) => {
                q.offset = file.emitted_commit;
                q.fingerprint = file.fingerprint;
                if *q.path != *file.path_str {
                    q.path = file.path_str.to_string();
                }
            }
            None => self.positions.push(Position {
                key,
                path: file.path_str.to_string(),
                offset: file.emitted_commit,
                fingerprint: file.fingerprint,
            }),
        }
    }

    /// When the open batch must go out at the latest.
    pub fn deadline(&self) -> Option<Instant> {
        self.started.map(|s| s + self.cfg.flush_interval.0)
    }

    pub fn flush_if_due(&mut self, now: Instant) -> Result<(), Closed> {
        if self.deadline().is_some_and(|d| d <= now) { self.send() } else { Ok(()) }
    }

    pub fn send(&mut self) -> Result<(), Closed> {
        if self.records.is_empty() {
            return Ok(());
        }
        let batch = Batch {
            seq: self.next_seq,
            records: std::mem::replace(&mut self.records, Vec::with_capacity(self.cfg.max_records)),
            positions: std::mem::take(&mut self.positions),
        };
        self.next_seq += 1;
        self.bytes = 0;
        self.started = None;
        let batch = match self.tx.try_send(batch) {
            Ok(()) => None,
            Err(mpsc::error::TrySendError::Full(b)) => Some(b),
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(Closed),
        };
        if let Some(batch) = batch {
            // The sinks are behind: wait here, which stops all reading. This is the back-pressure.
            TailerMetrics::inc(&self.metrics.backpressure_waits);
            self.tx.blocking_send(batch).map_err(|_| Closed)?;
        }
        TailerMetrics::inc(&self.metrics.batches_sent);
        Ok(())
    }
}
