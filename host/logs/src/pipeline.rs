//! Wires one pipeline together:
//!
//! ```text
//! tailer thread ──batches (bounded)──▶ processors ──▶ one task per sink (bounded) ──▶ acks (in order) ──▶ checkpoint
//! ```
//!
//! A batch is acknowledged once every sink has finished with it, strictly in
//! batch order, and only then do its positions enter the checkpoint.

use crate::checkpoint::{CheckpointError, CheckpointStore, Position};
use crate::config::PipelineConfig;
use crate::framing::kubernetes::PodMetadataSource;
use crate::metrics::TailerMetrics;
use crate::processor::Processor;
use crate::record::LogRecord;
use crate::sinks::{Sink, SinkMetrics};
use crate::tailer::batch::{Batch, Batcher};
use crate::tailer::glob::PathGlobs;
use crate::tailer::{Source, Tailer, TailerControl};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{error, warn};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("invalid logs configuration:\n  {}", .0.join("\n  "))]
    Config(Vec<String>),
    #[error("logs sink {sink}: {message}")]
    Sink { sink: String, message: String },
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("the logs pipeline must be started inside a tokio runtime")]
    NoRuntime,
}

pub struct LogPipeline;

/// One batch on its way to the sinks.
struct SinkJob {
    records: Arc<Vec<LogRecord>>,
    done: oneshot::Sender<()>,
}

/// What the ack task waits for.
struct PendingAck {
    seq: u64,
    positions: Vec<Position>,
    sinks: Vec<oneshot::Receiver<()>>,
}

impl LogPipeline {
    /// Starts tailing. `processors` run in order on every batch; `pod_metadata`
    /// adds attributes from the host's Kubernetes watch cache.
    pub fn start(
        config: PipelineConfig,
        processors: Vec<Box<dyn Processor>>,
        pod_metadata: Option<Arc<dyn PodMetadataSource>>,
    ) -> Result<PipelineHandle, PipelineError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| PipelineError::NoRuntime)?;
        let problems = config.validate();
        if !problems.is_empty() {
            return Err(PipelineError::Config(problems.iter().map(ToString::to_string).collect()));
        }
        let mut sources = Vec::new();
        for s in &config.sources {
            let globs = PathGlobs::new(&s.include, &s.exclude).map_err(|e| PipelineError::Config(vec![e]))?;
            let framing = s.framing.compile().map_err(|e| PipelineError::Config(vec![e]))?;
            sources.push(Source { cfg: s.clone(), globs, framing });
        }
        let mut sinks = Vec::new();
        for s in &config.sinks {
            sinks.push(s.build().map_err(|message| PipelineError::Sink { sink: s.name().to_string(), message })?);
        }
        let store = CheckpointStore::open(&config.checkpoint.path)?;
        let metrics = Arc::new(TailerMetrics::default());
        let sink_metrics: Vec<(String, Arc<SinkMetrics>)> =
            sinks.iter().map(|s| (s.name.clone(), s.metrics.clone())).collect();
        let (abort_tx, abort_rx) = watch::channel(false);
        let (control, wake_rx) = TailerControl::new();

        let (batch_tx, batch_rx) = mpsc::channel::<Batch>(config.batch.queue);
        let (ack_tx, ack_rx) = mpsc::channel::<PendingAck>(config.batch.queue + 2);
        let mut tasks = Vec::new();
        let mut sink_txs = Vec::new();
        for sink in sinks {
            let (tx, rx) = mpsc::channel::<SinkJob>(1);
            sink_txs.push(tx);
            tasks.push(runtime.spawn(run_sink(sink, rx, abort_rx.clone())));
        }
        tasks.push(runtime.spawn(run_processors(
            processors,
            batch_rx,
            sink_txs,
            ack_tx,
            metrics.clone(),
            abort_rx.clone(),
        )));
        tasks.push(runtime.spawn(run_acks(ack_rx, store.clone(), control.clone())));
        let checkpointer =
            runtime.spawn(run_checkpointer(store.clone(), config.checkpoint.interval.0, metrics.clone(), abort_rx));

        let batcher = Batcher::new(config.batch.clone(), batch_tx, metrics.clone());
        let tailer =
            Tailer::new(sources, store.clone(), metrics.clone(), pod_metadata, batcher, control.clone(), wake_rx);
        let tailer_task = runtime.spawn_blocking(move || tailer.run());
        Ok(PipelineHandle {
            tailer_metrics: metrics,
            sink_metrics,
            store,
            control,
            abort: abort_tx,
            tailer_task,
            tasks,
            checkpointer,
        })
    }
}

/// A running pipeline.
pub struct PipelineHandle {
    pub tailer_metrics: Arc<TailerMetrics>,
    pub sink_metrics: Vec<(String, Arc<SinkMetrics>)>,
    store: CheckpointStore,
    control: TailerControl,
    abort: watch::Sender<bool>,
    tailer_task: JoinHandle<()>,
    tasks: Vec<JoinHandle<()>>,
    checkpointer: JoinHandle<()>,
}

impl std::fmt::Debug for PipelineHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineHandle").field("checkpoint", &self.store.path()).finish_non_exhaustive()
    }
}

impl PipelineHandle {
    pub fn checkpoints(&self) -> &CheckpointStore {
        &self.store
    }

    /// Stops reading, lets the sinks finish what is queued for up to `grace`,
    /// then abandons the rest (it is not acknowledged, so it is read again
    /// after a restart) and writes the checkpoint.
    pub async fn shutdown(mut self, grace: Duration) -> Result<(), PipelineError> {
        self.control.stop.store(true, Ordering::Relaxed);
        self.control.wake();
        let drained = tokio::time::timeout(grace, async {
            let _ = (&mut self.tailer_task).await;
            for t in &mut self.tasks {
                let _ = t.await;
            }
        })
        .await;
        if drained.is_err() {
            warn!(grace = ?grace, "logs sinks did not finish in time; unsent records will be read again after a restart");
            let _ = self.abort.send(true);
            let _ = (&mut self.tailer_task).await;
            for t in &mut self.tasks {
                let _ = t.await;
            }
        }
        let _ = self.abort.send(true);
        let _ = (&mut self.checkpointer).await;
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.persist()).await.map_err(|_| PipelineError::NoRuntime)??;
        Ok(())
    }
}

async fn run_sink(mut sink: Sink, mut rx: mpsc::Receiver<SinkJob>, mut abort: watch::Receiver<bool>) {
    while let Some(job) = rx.recv().await {
        match sink.deliver(&job.records, &mut abort).await {
            Ok(()) => {
                let _ = job.done.send(());
            }
            // Dropping `done` tells the ack task this batch was not delivered.
            Err(_aborted) => return,
        }
    }
}

async fn run_processors(
    mut processors: Vec<Box<dyn Processor>>,
    mut batches: mpsc::Receiver<Batch>,
    sinks: Vec<mpsc::Sender<SinkJob>>,
    acks: mpsc::Sender<PendingAck>,
    metrics: Arc<TailerMetrics>,
    mut abort: watch::Receiver<bool>,
) {
    loop {
        let batch = tokio::select! {
            b = batches.recv() => match b { Some(b) => b, None => return },
            _ = crate::sinks::aborted(&mut abort) => return,
        };
        let mut records = batch.records;
        for p in &mut processors {
            records = match p.process(records) {
                Ok(r) => r,
                Err(e) => {
                    TailerMetrics::inc(&metrics.processor_failures);
                    warn!(processor = %e.processor, error = %e.message, "log processor failed; batch forwarded unprocessed");
                    e.unprocessed
                }
            };
        }
        let records = Arc::new(records);
        let mut waits = Vec::with_capacity(sinks.len());
        for s in &sinks {
            let (done, wait) = oneshot::channel();
            let job = SinkJob { records: records.clone(), done };
            tokio::select! {
                r = s.send(job) => if r.is_err() { return },
                _ = crate::sinks::aborted(&mut abort) => return,
            }
            waits.push(wait);
        }
        if acks.send(PendingAck { seq: batch.seq, positions: batch.positions, sinks: waits }).await.is_err() {
            return;
        }
    }
}

async fn run_acks(mut rx: mpsc::Receiver<PendingAck>, store: CheckpointStore, control: TailerControl) {
    while let Some(ack) = rx.recv().await {
        for wait in ack.sinks {
            if wait.await.is_err() {
                // A sink gave up on this batch (abort): neither it nor any later
                // batch may move the checkpoint, or records would be skipped.
                return;
            }
        }
        store.apply(&ack.positions);
        control.acked_batch.store(ack.seq, Ordering::Release);
        control.wake();
    }
}

async fn run_checkpointer(
    store: CheckpointStore,
    interval: Duration,
    metrics: Arc<TailerMetrics>,
    mut abort: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = crate::sinks::aborted(&mut abort) => return,
        }
        let s = store.clone();
        match tokio::task::spawn_blocking(move || s.persist()).await {
            Ok(Ok(())) => failing = false,
            Ok(Err(e)) => {
                TailerMetrics::inc(&metrics.checkpoint_write_errors);
                if !failing {
                    error!(error = %e, "cannot write logs checkpoint; positions are kept in memory and retried");
                }
                failing = true;
            }
            Err(_) => return,
        }
    }
}
