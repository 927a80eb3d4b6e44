//! Run a [`LogProcessor`] natively, without wasm or the host: build batches,
//! call it the way the host does, and compare its output with golden files.
//!
//! ```
//! use wasmon_sdk_logs::testing::{BatchBuilder, render};
//! use wasmon_sdk_logs::LogStream;
//!
//! let mut b = BatchBuilder::new();
//! let web = b.source("/var/log/pods/shop_web-1_u1/web/0.log", LogStream::Stdout, &[("k8s.pod.name", "web-1")]);
//! b.record(web, 1_700_000_000_000_000_000, "hello");
//! let batch = b.build();
//! assert_eq!(batch.attribute(&batch.records[0], "k8s.pod.name"), Some("web-1"));
//! let text = render(&batch.sources, &batch.records);
//! assert!(text.starts_with(r#"{"attributes":{},"body":"hello","#));
//! ```

use crate::{LogBatch, LogProcessor, LogRecord, LogSource, LogStream, MetricFamily, PluginError};
use std::path::Path;

/// Builds a [`LogBatch`] as the host would send it.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    batch: LogBatch,
    next_ts: i64,
}

/// The path of the source [`BatchBuilder::line`] uses when no source was added.
pub const DEFAULT_PATH: &str = "/var/log/pods/default_test-0_00000000-0000-0000-0000-000000000000/test/0.log";

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchBuilder {
    pub fn new() -> Self {
        Self { batch: LogBatch { sources: Vec::new(), records: Vec::new() }, next_ts: 1_700_000_000_000_000_000 }
    }

    /// Adds a source (attributes sorted, later keys winning, as the host sends them) and
    /// returns its index.
    pub fn source(&mut self, path: &str, stream: LogStream, attributes: &[(&str, &str)]) -> u32 {
        let attributes = attributes.iter().copied().collect();
        self.batch.sources.push(LogSource { path: path.into(), stream, attributes });
        (self.batch.sources.len() - 1) as u32
    }

    /// Adds a record of `source` with this timestamp and body.
    pub fn record(&mut self, source: u32, timestamp_ns: i64, body: impl Into<Vec<u8>>) -> &mut Self {
        self.batch.records.push(LogRecord::new(source, timestamp_ns, body));
        self
    }

    /// Adds a record of the first source (created with [`DEFAULT_PATH`], stdout
    /// and kubelet's attributes if there is none), one millisecond after the
    /// previous `line`.
    pub fn line(&mut self, body: impl Into<Vec<u8>>) -> &mut Self {
        if self.batch.sources.is_empty() {
            self.source(
                DEFAULT_PATH,
                LogStream::Stdout,
                &[
                    ("k8s.container.name", "test"),
                    ("k8s.container.restart_count", "0"),
                    ("k8s.namespace.name", "default"),
                    ("k8s.pod.name", "test-0"),
                    ("k8s.pod.uid", "00000000-0000-0000-0000-000000000000"),
                ],
            );
        }
        let ts = self.next_ts;
        self.next_ts += 1_000_000;
        self.record(0, ts, body)
    }

    pub fn build(&self) -> LogBatch {
        self.batch.clone()
    }
}

/// Drives one processor value the way the host drives an instance:
/// `check_config` and `init` first, then `process` per batch, and checks
/// what the host checks (every returned record names a source of its batch).
pub struct Harness<P: LogProcessor> {
    pub processor: P,
}

impl<P: LogProcessor> std::fmt::Debug for Harness<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness").finish_non_exhaustive()
    }
}

impl<P: LogProcessor> Harness<P> {
    /// `check_config` then `init` with this config (JSON text).
    pub fn new(config: &str) -> Result<Self, PluginError> {
        P::check_config(config)?;
        Ok(Self { processor: P::init(config)? })
    }

    /// Like the host's `process` call: a record with a source index outside
    /// the batch is an error here too.
    pub fn process(&mut self, batch: LogBatch) -> Result<Vec<LogRecord>, PluginError> {
        let sources = batch.sources.len();
        let out = self.processor.process(batch)?;
        if let Some(bad) = out.iter().find(|r| r.source as usize >= sources) {
            return Err(PluginError::internal(format!(
                "a returned record names source {} but the batch has {sources}",
                bad.source
            )));
        }
        Ok(out)
    }

    /// Process these bodies as one batch from the default source.
    pub fn process_lines<B: AsRef<[u8]>>(&mut self, lines: &[B]) -> Result<Vec<LogRecord>, PluginError> {
        let mut b = BatchBuilder::new();
        for l in lines {
            b.line(l.as_ref().to_vec());
        }
        self.process(b.build())
    }

    /// The processor's families.
    pub fn metrics(&mut self) -> Vec<MetricFamily> {
        self.processor.metrics()
    }

    /// The processor's families in the Prometheus text format, for asserts
    /// and golden files.
    pub fn metrics_text(&mut self) -> String {
        wasmon_sdk::text::encode(&self.processor.metrics(), wasmon_sdk::text::Format::Prometheus)
    }
}

/// One JSON object per record, keys sorted: `attributes` (the record's own),
/// `body` (text, or `body_hex` when it is not UTF-8), `source` (the path),
/// `stream` and `timestamp_ns`. Stable, so it suits golden files.
pub fn render(sources: &[LogSource], records: &[LogRecord]) -> String {
    let mut out = String::new();
    for r in records {
        let mut obj = serde_json::Map::new();
        let attrs: serde_json::Map<String, serde_json::Value> =
            r.attributes.iter().map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string()))).collect();
        obj.insert("attributes".into(), attrs.into());
        match r.body_str() {
            Some(text) => obj.insert("body".into(), text.into()),
            None => obj.insert("body_hex".into(), r.body.iter().map(|b| format!("{b:02x}")).collect::<String>().into()),
        };
        let source = sources.get(r.source as usize);
        obj.insert("source".into(), source.map(|s| s.path.as_str()).unwrap_or("<bad index>").into());
        obj.insert("stream".into(), source.map(|s| s.stream.as_str()).unwrap_or_default().into());
        obj.insert("timestamp_ns".into(), r.timestamp_ns.into());
        out.push_str(&serde_json::Value::Object(obj).to_string());
        out.push('\n');
    }
    out
}

/// Compares `actual` with the golden file at `path`; with `UPDATE_GOLDEN=1`
/// in the environment, writes it instead. Panics with the first differing
/// line, so a failing test says what changed.
pub fn assert_golden(actual: &str, path: impl AsRef<Path>) {
    let path = path.as_ref();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(path, actual).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        return;
    }
    let expected = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("golden {}: {e} (run with UPDATE_GOLDEN=1 to create it)", path.display()));
    if actual != expected {
        let first = actual
            .lines()
            .zip(expected.lines())
            .enumerate()
            .find(|(_, (got, want))| got != want)
            .map(|(i, (got, want))| format!("line {}:\n got: {got}\nwant: {want}", i + 1))
            .unwrap_or_else(|| "(one output is a prefix of the other)".into());
        panic!("{} differs at {first}", path.display());
    }
}

/// The lines of a fixture file as bodies (without their newlines), for
/// [`Harness::process_lines`]. Bytes, so fixtures may hold invalid UTF-8.
pub fn fixture_lines(path: impl AsRef<Path>) -> Vec<Vec<u8>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()));
    let mut lines: Vec<Vec<u8>> = bytes.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    if lines.last().is_some_and(Vec::is_empty) {
        lines.pop();
    }
    lines
}
