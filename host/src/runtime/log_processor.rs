//! Log processors (world `log-processor`): like kube-state plugins, one
//! instance lives as long as its step of the logs pipeline, because its
//! counters (the metrics it derives from logs) accumulate in it. Each call
//! (`init`, `process`, `metrics`) has its own CPU and wall-clock limits and
//! the instance's memory is capped. A call that traps poisons the instance:
//! [`WasmLogProcessor`] forwards that batch unprocessed (counted, never
//! lost), drops the instance and starts a new one after a backoff.
//!
//! Crossing the boundary: what belongs to a file (path, stream, Kubernetes
//! attributes) is sent once per batch as a `log-source`, records refer to it
//! by index, and records travel packed (`wasmon_sdk::packed_records`): all
//! bodies in one byte list, all attribute text in one string, so a batch is
//! a handful of lists whatever its number of records.

use super::call::{CallFailure, CallOutcome, FailureReason, PluginState};
use super::long_lived::LongLived;
use super::{EpochGate, Runtime, RuntimeError, Sandbox};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmon_logs::{LogRecord, LogSource, Processor, ProcessorError, Stream};
use wasmon_sdk::packed_records::{Packer, RecordLengths, Unpacker};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "log-processor",
        with: {
            "wasmon:plugin/types": crate::runtime::bindings::wasmon::plugin::types,
            "wasmon:plugin/host": crate::runtime::bindings::wasmon::plugin::host,
        },
        exports: { default: async },
    });
}

pub use bindings::wasmon::plugin::logs as wit;
use bindings::{LogProcessor as LogProcessorExports, LogProcessorPre};

use super::model::{MetricFamily, PluginInfo};

/// A compiled log-processor component, ready to instantiate.
#[derive(Clone)]
pub struct LoadedLogProcessor {
    pub name: Arc<str>,
    pre: LogProcessorPre<PluginState>,
    paths: Arc<crate::config::PathsConfig>,
    epoch: Arc<EpochGate>,
}

impl Runtime {
    /// Compile (or load from the cache) a log-processor component. The
    /// caller checks its signature first (`crate::signing::check_plugin`).
    pub fn load_log_processor(&self, name: &str, path: &Path) -> Result<LoadedLogProcessor, RuntimeError> {
        let wasm = super::read_component(name, path)?;
        self.load_log_processor_bytes(name, path, &wasm)
    }

    /// [`load_log_processor`](Self::load_log_processor) from bytes already read.
    pub fn load_log_processor_bytes(
        &self,
        name: &str,
        path: &Path,
        wasm: &[u8],
    ) -> Result<LoadedLogProcessor, RuntimeError> {
        let (pre, _) = self.instance_pre(name, path, wasm)?;
        let pre = LogProcessorPre::new(pre).map_err(|e| RuntimeError::Plugin {
            plugin: name.to_string(),
            message: format!("{} is not a wasmon log-processor component: {e:#}", path.display()),
        })?;
        Ok(LoadedLogProcessor {
            name: Arc::from(name),
            pre,
            paths: self.paths.clone(),
            epoch: self.epoch_ticker.gate.clone(),
        })
    }
}

/// One live instance of a log processor.
pub struct LogProcessorInstance {
    inner: LongLived<LogProcessorExports>,
}

impl LoadedLogProcessor {
    /// A new instance with `sandbox`'s memory, time and log limits (no
    /// files, no network: a log processor sees only what it is sent).
    pub fn instantiate(&self, sandbox: &Sandbox) -> Result<LogProcessorInstance, CallFailure> {
        let pre = self.pre.clone();
        let inner = LongLived::new(
            self.pre.engine(),
            self.name.clone(),
            self.paths.clone(),
            self.epoch.clone(),
            sandbox,
            async |store| pre.instantiate_async(store).await,
        )?;
        Ok(LogProcessorInstance { inner })
    }
}

impl LogProcessorInstance {
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// True once a call trapped or ran out of a limit.
    pub fn is_poisoned(&self) -> bool {
        self.inner.is_poisoned()
    }

    pub fn describe(&mut self) -> CallOutcome<PluginInfo> {
        self.inner.call("describe", async |e, s| e.call_describe(s).await.map(Ok))
    }

    pub fn check_config(&mut self, config: &str) -> CallOutcome<()> {
        self.inner.call("check-config", async |e, s| e.call_check_config(s, config).await)
    }

    pub fn init(&mut self, config: &str) -> CallOutcome<()> {
        self.inner.call("init", async |e, s| e.call_init(s, config).await)
    }

    pub fn process(&mut self, batch: &wit::LogBatch) -> CallOutcome<wit::LogRecords> {
        self.inner.call("process", async |e, s| e.call_process(s, batch).await)
    }

    pub fn metrics(&mut self) -> CallOutcome<Vec<MetricFamily>> {
        self.inner.call("metrics", async |e, s| e.call_metrics(s).await.map(Ok))
    }
}

/// The limits of one log processor's calls, from its `limits:` config.
#[derive(Debug, Clone, Copy)]
pub struct LogProcessorLimits {
    pub memory_bytes: u64,
    /// Wall-clock limit of one call.
    pub timeout: Duration,
    /// CPU-time limit of one call.
    pub cpu: Duration,
    pub log_lines: usize,
}

impl LogProcessorLimits {
    fn sandbox(&self, paths: &crate::config::PathsConfig) -> Sandbox {
        let mut sandbox = Sandbox::locked_down(paths, self.timeout);
        sandbox.memory_bytes = self.memory_bytes.min(super::MAX_INSTANCE_MEMORY);
        sandbox.cpu_limit = self.cpu.min(self.timeout);
        sandbox.log_lines = self.log_lines;
        sandbox
    }
}

/// Longest wait before a trapped processor is started again.
pub const MAX_RESTART_BACKOFF: Duration = Duration::from_secs(300);
/// Wait after the first trap; doubled for each further one in a row.
pub const FIRST_RESTART_BACKOFF: Duration = Duration::from_secs(1);

/// What one processor did, for `/metrics`: plain counters, read by the agent.
#[derive(Debug, Default)]
pub struct LogProcessorStats {
    pub batches: AtomicU64,
    pub records_in: AtomicU64,
    pub records_out: AtomicU64,
    /// Records forwarded unprocessed, by reason (`FailureReason` labels and `backoff`).
    unprocessed: Mutex<BTreeMap<&'static str, u64>>,
    /// Failed calls, by reason.
    failures: Mutex<BTreeMap<&'static str, u64>>,
    /// Instances started (the first one included).
    pub instances_started: AtomicU64,
    /// Bodies a plugin returned that were not UTF-8 (stored with U+FFFD).
    pub invalid_utf8_bodies: AtomicU64,
    pub cpu_ns: AtomicU64,
    pub memory_high_water: AtomicU64,
}

impl LogProcessorStats {
    fn count(map: &Mutex<BTreeMap<&'static str, u64>>, reason: &'static str, n: u64) {
        *map.lock().unwrap_or_else(|p| p.into_inner()).entry(reason).or_default() += n;
    }

    pub fn unprocessed(&self) -> Vec<(&'static str, u64)> {
        self.unprocessed.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(k, v)| (*k, *v)).collect()
    }

    pub fn failures(&self) -> Vec<(&'static str, u64)> {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(k, v)| (*k, *v)).collect()
    }
}

/// The live part of a [`WasmLogProcessor`], shared with the agent's metrics
/// task, which calls `metrics` between batches.
struct Live {
    instance: Option<LogProcessorInstance>,
    consecutive_failures: u32,
    retry_at: Option<Instant>,
    /// Families of the last `metrics` call, served until the next one.
    last_metrics: Vec<MetricFamily>,
}

/// A log-processor plugin as one step of the logs pipeline.
pub struct WasmLogProcessor {
    name: String,
    shared: Arc<WasmProcessorShared>,
}

/// What the agent keeps of a [`WasmLogProcessor`] to read its metrics.
pub struct WasmProcessorShared {
    pub name: String,
    plugin: LoadedLogProcessor,
    sandbox: Sandbox,
    config_json: String,
    live: Mutex<Live>,
    pub stats: LogProcessorStats,
}

impl WasmLogProcessor {
    /// A processor named `name` (the `processor` label of its metrics)
    /// running `plugin` with `config_json`. Starts the first instance now,
    /// so a config the plugin rejects is an error here, at start-up.
    pub fn start(
        name: &str,
        plugin: LoadedLogProcessor,
        limits: LogProcessorLimits,
        config_json: String,
    ) -> Result<Self, String> {
        let sandbox = limits.sandbox(&plugin.paths);
        let shared = Arc::new(WasmProcessorShared {
            name: name.to_string(),
            plugin,
            sandbox,
            config_json,
            live: Mutex::new(Live {
                instance: None,
                consecutive_failures: 0,
                retry_at: None,
                last_metrics: Vec::new(),
            }),
            stats: LogProcessorStats::default(),
        });
        let instance = shared.new_instance().map_err(|f| format!("processor {name}: {f}"))?;
        shared.lock().instance = Some(instance);
        Ok(Self { name: name.to_string(), shared })
    }

    pub fn shared(&self) -> Arc<WasmProcessorShared> {
        self.shared.clone()
    }
}

impl WasmProcessorShared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn new_instance(&self) -> Result<LogProcessorInstance, CallFailure> {
        self.stats.instances_started.fetch_add(1, Relaxed);
        let mut instance = self.plugin.instantiate(&self.sandbox)?;
        instance.init(&self.config_json).result?;
        Ok(instance)
    }

    /// The families the instance has counted so far (with no instance, or
    /// when the call fails, those of the last successful call).
    pub fn metrics(&self) -> Vec<MetricFamily> {
        let mut live = self.lock();
        let Some(instance) = live.instance.as_mut() else { return live.last_metrics.clone() };
        let outcome = instance.metrics();
        match outcome.result {
            Ok(families) => live.last_metrics = families,
            Err(failure) => {
                self.note_failure(&failure);
                tracing::warn!(processor = %self.name, plugin = %self.plugin.name, reason = failure.reason.as_label(),
                    error = %failure.message, "log processor metrics call failed");
                if failure.reason.is_trap() {
                    self.discard(&mut live);
                }
            }
        }
        live.last_metrics.clone()
    }

    fn note_failure(&self, failure: &CallFailure) {
        LogProcessorStats::count(&self.stats.failures, failure.reason.as_label(), 1);
    }

    /// Drop a trapped instance and schedule the next start.
    fn discard(&self, live: &mut Live) {
        live.instance = None;
        live.consecutive_failures = live.consecutive_failures.saturating_add(1);
        let wait = FIRST_RESTART_BACKOFF.saturating_mul(1 << (live.consecutive_failures - 1).min(16));
        live.retry_at = Some(Instant::now() + wait.min(MAX_RESTART_BACKOFF));
        // Its counters die with it; serve nothing rather than frozen values.
        live.last_metrics.clear();
    }

    fn process(&self, batch: Vec<LogRecord>) -> Result<Vec<LogRecord>, ProcessorError> {
        let mut live = self.lock();
        let n = batch.len() as u64;
        self.stats.batches.fetch_add(1, Relaxed);
        self.stats.records_in.fetch_add(n, Relaxed);
        let unprocessed = |reason: &'static str, message: String, batch: Vec<LogRecord>| {
            LogProcessorStats::count(&self.stats.unprocessed, reason, n);
            self.stats.records_out.fetch_add(n, Relaxed);
            Err(ProcessorError { processor: self.name.clone(), message, unprocessed: batch })
        };
        if live.instance.is_none() {
            if live.retry_at.is_some_and(|at| Instant::now() < at) {
                return unprocessed("backoff", "restarting after a failure; forwarding unprocessed".into(), batch);
            }
            match self.new_instance() {
                Ok(instance) => {
                    tracing::info!(processor = %self.name, plugin = %self.plugin.name, "log processor restarted");
                    live.instance = Some(instance);
                }
                Err(failure) => {
                    self.note_failure(&failure);
                    self.discard(&mut live);
                    return unprocessed(failure.reason.as_label(), format!("cannot restart: {failure}"), batch);
                }
            }
        }
        let Some(instance) = live.instance.as_mut() else { unreachable!("started above") };
        let (input, sources) = match to_wit(&batch) {
            Ok(packed) => packed,
            Err(message) => return unprocessed("too_large", message, batch),
        };
        let outcome = instance.process(&input);
        drop(input);
        self.stats.cpu_ns.fetch_add(outcome.report.cpu_time.as_nanos() as u64, Relaxed);
        self.stats.memory_high_water.fetch_max(outcome.report.memory_high_water, Relaxed);
        let poisoned = instance.is_poisoned();
        let mut batch = batch;
        match outcome.result.and_then(|records| records_from_wit(&records, &sources, &mut batch)) {
            Ok((records, invalid_utf8)) => {
                if invalid_utf8 > 0 {
                    self.stats.invalid_utf8_bodies.fetch_add(invalid_utf8, Relaxed);
                }
                live.consecutive_failures = 0;
                live.retry_at = None;
                self.stats.records_out.fetch_add(records.len() as u64, Relaxed);
                Ok(records)
            }
            Err(failure) => {
                self.note_failure(&failure);
                if poisoned {
                    self.discard(&mut live);
                }
                unprocessed(failure.reason.as_label(), failure.to_string(), batch)
            }
        }
    }
}

/// A record's head: the lengths [`Packer::push`] gave for its parts, its
/// timestamp and its source's index.
pub fn record_head(timestamp_ns: i64, lengths: RecordLengths, source: u32) -> wit::RecordHead {
    let RecordLengths { body_bytes, attribute_bytes, attribute_count } = lengths;
    wit::RecordHead { timestamp_ns, body_bytes, attribute_bytes, attribute_count, source }
}

/// What a head says its record takes of each list, for [`Unpacker::next`].
pub fn record_lengths(head: &wit::RecordHead) -> RecordLengths {
    RecordLengths {
        body_bytes: head.body_bytes,
        attribute_bytes: head.attribute_bytes,
        attribute_count: head.attribute_count,
    }
}

/// The plugin's records back into the pipeline's. All of them are
/// checked before any body is taken from `input`, so on an error
/// `input` is the batch as it came, to forward unprocessed. Also says how
/// many bodies were not UTF-8 (stored with U+FFFD).
fn records_from_wit(
    records: &wit::LogRecords,
    sources: &[LogSource],
    input: &mut [LogRecord],
) -> Result<(Vec<LogRecord>, u64), CallFailure> {
    let failure = |message: String| CallFailure { reason: FailureReason::PluginError, message };
    let mut unpacker = Unpacker::new(&records.bodies, &records.attribute_text, &records.attribute_spans);
    let mut out = Vec::with_capacity(records.heads.len());
    let mut bodies = Vec::with_capacity(records.heads.len());
    for (i, head) in records.heads.iter().enumerate() {
        let Some(source) = sources.get(head.source as usize) else {
            return Err(failure(format!(
                "returned record {i} of source {} but the batch has {} sources",
                head.source,
                sources.len()
            )));
        };
        let (body, attributes) =
            unpacker.next(record_lengths(head)).map_err(|e| failure(format!("returned bad records: {e}")))?;
        bodies.push(body);
        out.push(LogRecord {
            timestamp_ns: head.timestamp_ns,
            body: String::new(),
            attributes,
            source: source.clone(),
        });
    }
    unpacker.finish().map_err(|e| failure(format!("returned bad records: {e}")))?;
    let mut invalid = 0;
    for (i, (record, body)) in out.iter_mut().zip(bodies).enumerate() {
        // Most processors return record i's body as they got it: then
        // the host's string is taken, not copied and checked again.
        record.body = match input.get_mut(i) {
            Some(same) if same.body.as_bytes() == body => std::mem::take(&mut same.body),
            _ => String::from_utf8(body.to_vec()).unwrap_or_else(|e| {
                invalid += 1;
                String::from_utf8_lossy(e.as_bytes()).into_owned()
            }),
        };
    }
    Ok((out, invalid))
}

/// A batch as the plugin receives it, and the sources its records' indexes
/// refer to: each distinct source once (records of one file share their
/// `Arc`s, so this is a pointer comparison), the records packed. The batch
/// is only read, so a failed call forwards it as it is. An error only for
/// a body of 4 GiB or more.
fn to_wit(batch: &[LogRecord]) -> Result<(wit::LogBatch, Vec<LogSource>), String> {
    let mut sources: Vec<LogSource> = Vec::new();
    let mut wit_sources: Vec<wit::LogSource> = Vec::new();
    let mut packer = Packer::with_body_capacity(batch.iter().map(|r| r.body.len()).sum());
    let mut heads = Vec::with_capacity(batch.len());
    let mut last = usize::MAX;
    for r in batch {
        let same = |s: &LogSource| {
            Arc::ptr_eq(&s.path, &r.source.path)
                && Arc::ptr_eq(&s.attributes, &r.source.attributes)
                && s.stream == r.source.stream
        };
        let index = if sources.get(last).is_some_and(same) {
            last
        } else if let Some(i) = sources.iter().position(same) {
            i
        } else {
            let (text, spans) = r.source.attributes.to_packed();
            wit_sources.push(wit::LogSource {
                path: r.source.path.to_string(),
                stream: match r.source.stream {
                    Stream::Stdout => wit::LogStream::Stdout,
                    Stream::Stderr => wit::LogStream::Stderr,
                    Stream::Unknown => wit::LogStream::Unknown,
                },
                attributes: wit::PackedAttributes { text, spans },
            });
            sources.push(r.source.clone());
            sources.len() - 1
        };
        last = index;
        let lengths = packer
            .push(r.body.as_bytes(), &r.attributes)
            .map_err(|e| format!("cannot pass record {} to the plugin: {e}", heads.len()))?;
        heads.push(record_head(r.timestamp_ns, lengths, index as u32));
    }
    let Packer { bodies, attribute_text, attribute_spans } = packer;
    let records = wit::LogRecords { heads, bodies, attribute_text, attribute_spans };
    Ok((wit::LogBatch { sources: wit_sources, records }, sources))
}

impl Processor for WasmLogProcessor {
    fn name(&self) -> &str {
        &self.name
    }

    fn process(&mut self, batch: Vec<LogRecord>) -> Result<Vec<LogRecord>, ProcessorError> {
        self.shared.process(batch)
    }
}

/// Load-time checks of a log processor: `describe`, then `check-config` of
/// its config section, on a throwaway instance.
pub fn check(plugin: &LoadedLogProcessor, limits: LogProcessorLimits, config_json: &str) -> Result<PluginInfo, String> {
    let sandbox = limits.sandbox(&plugin.paths);
    let mut instance = plugin.instantiate(&sandbox).map_err(|f| f.to_string())?;
    let info = instance.describe().result.map_err(|f| format!("describe failed: {f}"))?;
    instance.check_config(config_json).result.map_err(|f| format!("rejected its config section: {}", f.message))?;
    Ok(info)
}

/// `describe` on a throwaway, locked-down instance (`wasmon plugin inspect`).
pub fn describe(plugin: &LoadedLogProcessor) -> Result<PluginInfo, String> {
    let sandbox = Sandbox::locked_down(&plugin.paths, Duration::from_secs(10));
    let mut instance = plugin.instantiate(&sandbox).map_err(|f| f.to_string())?;
    instance.describe().result.map_err(|f| format!("describe failed: {f}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmon_logs::Attributes;

    fn record(source: &LogSource, body: &str) -> LogRecord {
        LogRecord { timestamp_ns: 1, body: body.into(), attributes: Attributes::new(), source: source.clone() }
    }

    fn source(path: &str, stream: Stream, pod: &str) -> LogSource {
        let attributes = Arc::new(Attributes::from([("k8s.pod.name", pod)]));
        LogSource { path: path.into(), stream, attributes }
    }

    #[test]
    fn each_file_crosses_once_per_batch() {
        let a = source("/a", Stream::Stdout, "a");
        let b = source("/b", Stream::Stderr, "b");
        // Same path, refreshed attributes (new pod labels): a source of its own.
        let a2 = LogSource { attributes: Arc::new(Attributes::from([("k8s.pod.name", "a2")])), ..a.clone() };
        let mut batch = vec![record(&a, "1"), record(&b, "22"), record(&a, "3"), record(&a2, "4"), record(&b, "5")];
        batch[2].attributes.insert("own", "x");
        let (wit_batch, sources) = to_wit(&batch).unwrap();
        assert_eq!(wit_batch.sources.len(), 3);
        assert_eq!(sources.len(), 3);
        let records = &wit_batch.records;
        let indexes: Vec<u32> = records.heads.iter().map(|r| r.source).collect();
        assert_eq!(indexes, [0, 1, 0, 2, 1]);
        assert_eq!(wit_batch.sources[1].stream, wit::LogStream::Stderr);
        assert_eq!(wit_batch.sources[2].attributes.text, "k8s.pod.namea2");
        assert_eq!(wit_batch.sources[2].attributes.spans, [0, 12, 2]);
        assert!(Arc::ptr_eq(&sources[2].attributes, &a2.attributes));
        assert_eq!(records.bodies, b"122345");
        let lengths: Vec<[u32; 3]> =
            records.heads.iter().map(|h| [h.body_bytes, h.attribute_bytes, h.attribute_count]).collect();
        assert_eq!(lengths, [[1, 0, 0], [2, 0, 0], [1, 4, 1], [1, 0, 0], [1, 0, 0]]);
        assert_eq!((records.attribute_text.as_str(), &records.attribute_spans[..]), ("ownx", &[0, 3, 1][..]));

        // What a processor that changes nothing returns comes back as the
        // batch, its bodies taken rather than copied.
        let mut input = batch.clone();
        let (out, invalid) = records_from_wit(records, &sources, &mut input).unwrap();
        assert_eq!((out, invalid), (batch, 0));
        assert!(input.iter().all(|r| r.body.is_empty()));
    }

    #[test]
    fn returned_records_are_checked_before_the_batch_is_touched() {
        let a = source("/a", Stream::Stdout, "a");
        let batch = vec![record(&a, "one"), record(&a, "two")];
        let (wit_batch, sources) = to_wit(&batch).unwrap();
        let good = wit_batch.records;

        let mut changed = good.clone();
        changed.bodies = [&b"one"[..], b"t\xffowo"].concat();
        changed.heads[1].body_bytes = 5;
        let mut input = batch.clone();
        let (out, invalid) = records_from_wit(&changed, &sources, &mut input).unwrap();
        assert_eq!((out[0].body.as_str(), out[1].body.as_str(), invalid), ("one", "t\u{fffd}owo", 1));
        assert_eq!(input[1].body, "two", "a changed body is copied, the input's left alone");

        let bad_cases = [
            (
                wit::LogRecords { heads: vec![wit::RecordHead { source: 1, ..good.heads[0] }], ..good.clone() },
                "returned record 0 of source 1 but the batch has 1 sources",
            ),
            (
                wit::LogRecords { bodies: b"onetwo!".to_vec(), ..good.clone() },
                "returned bad records: 1 body bytes after the last of 2 records belong to no record",
            ),
            (
                wit::LogRecords { attribute_spans: vec![0, 0, 0], ..good.clone() },
                "returned bad records: 3 span numbers after the last of 2 records",
            ),
        ];
        for (records, message) in bad_cases {
            let mut input = batch.clone();
            let failure = records_from_wit(&records, &sources, &mut input).unwrap_err();
            assert!(failure.message.starts_with(message), "{}", failure.message);
            assert_eq!(input, batch);
        }
    }
}
