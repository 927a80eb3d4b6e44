//! Log processors (world `log-processor`): a long-lived instance that gets
//! batches of log records from the host's tailer and returns the records that
//! go on to the sinks (parsed, filtered, enriched, redacted), and may count
//! what it saw as metrics. Write a type implementing [`LogProcessor`] and
//! export it with [`export_log_processor!`]; test it natively with
//! [`testing::Harness`]. Families, logging and config parsing come from
//! `wasmon_sdk`, as for exporters. In wasm builds the crate also registers
//! the global allocator, an arena suited to `process` calls ([`alloc`]).
//!
//! ```
//! use wasmon_sdk::{Family, MetricFamily, PluginError, PluginInfo};
//! use wasmon_sdk_logs::{LogBatch, LogProcessor, LogRecord};
//!
//! /// Drops debug lines and counts the rest.
//! #[derive(Default)]
//! struct NoDebug { kept: u64 }
//!
//! impl LogProcessor for NoDebug {
//!     fn describe() -> PluginInfo {
//!         PluginInfo::new("no-debug", "0.1.0", "Drops lines that start with DEBUG.")
//!     }
//!     fn check_config(_config: &str) -> Result<(), PluginError> {
//!         Ok(())
//!     }
//!     fn init(_config: &str) -> Result<Self, PluginError> {
//!         Ok(Self::default())
//!     }
//!     fn process(&mut self, batch: LogBatch) -> Result<Vec<LogRecord>, PluginError> {
//!         let kept: Vec<LogRecord> = batch.records.into_iter().filter(|r| !r.body.starts_with(b"DEBUG")).collect();
//!         self.kept += kept.len() as u64;
//!         Ok(kept)
//!     }
//!     fn metrics(&mut self) -> Vec<MetricFamily> {
//!         let mut kept = Family::counter("no_debug_kept_records_total", "Records passed on.");
//!         kept.sample(&[], self.kept as f64);
//!         vec![kept.build()]
//!     }
//! }
//!
//! wasmon_sdk_logs::export_log_processor!(NoDebug);
//!
//! // Natively the same type runs under the test harness:
//! let mut h = wasmon_sdk_logs::testing::Harness::<NoDebug>::new("{}").unwrap();
//! let out = h.process_lines(&["DEBUG x", "INFO y"]).unwrap();
//! assert_eq!(out.len(), 1);
//! assert_eq!(out[0].body, b"INFO y");
//! assert!(h.metrics_text().contains("no_debug_kept_records_total 1"));
//! ```

pub mod alloc;
pub mod bindings;
pub mod testing;
pub mod time;

pub use bindings::wasmon::plugin::logs::LogStream;
#[doc(hidden)]
pub use wasmon_sdk as __sdk;
pub use wasmon_sdk::attributes::Attributes;
pub use wasmon_sdk::{MetricFamily, PluginError, PluginInfo};

use bindings::wasmon::plugin::logs as wit;
use std::borrow::Cow;

#[cfg(all(target_arch = "wasm32", feature = "call-arena"))]
#[global_allocator]
static ALLOCATOR: alloc::CallArena = alloc::CallArena::new();

/// A log processor. One value lives as long as its place in the pipeline:
/// the host calls [`init`](Self::init) once, then [`process`](Self::process)
/// with every batch in order and [`metrics`](Self::metrics) periodically. If
/// a call traps (a panic, a limit), the host forwards that batch unprocessed,
/// discards the instance and starts a new one: counters restart from zero.
pub trait LogProcessor: Sized + 'static {
    /// Describe the plugin (`wasmon plugin inspect`).
    fn describe() -> PluginInfo;
    /// Check the config section (JSON text) without starting. Use
    /// `wasmon_sdk::config::parse` with a `#[serde(deny_unknown_fields)]` type.
    fn check_config(config: &str) -> Result<(), PluginError>;
    /// Start from the config section (JSON text, `{}` when absent).
    fn init(config: &str) -> Result<Self, PluginError>;
    /// The records that go on, in order: keep, change, drop or add records.
    /// Each returned record's `source` must index `batch.sources`. An error
    /// forwards the whole batch unprocessed; for one bad record, return it
    /// unchanged (marked with an attribute, say) instead.
    fn process(&mut self, batch: LogBatch) -> Result<Vec<LogRecord>, PluginError>;
    /// The families counted so far. Default: none.
    fn metrics(&mut self) -> Vec<MetricFamily> {
        Vec::new()
    }
}

impl LogStream {
    /// `stdout`, `stderr`, or `""` for plain files.
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
            LogStream::Unknown => "",
        }
    }
}

/// The file a group of records was read from (WIT `log-source`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSource {
    /// Absolute path of the file on the node.
    pub path: String,
    pub stream: LogStream,
    /// Kubernetes metadata and pod labels of the file: `k8s.pod.name`, `k8s.pod.label.app`, ...
    pub attributes: Attributes,
}

/// One log record (WIT `record-head` and its parts of `log-records`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Nanoseconds since the Unix epoch.
    pub timestamp_ns: i64,
    /// The line without its framing; bytes, since a line need not be UTF-8.
    pub body: Vec<u8>,
    /// The record's own attributes (they win over the source's).
    pub attributes: Attributes,
    /// Index into [`LogBatch::sources`].
    pub source: u32,
}

/// What [`LogProcessor::process`] receives (WIT `log-batch`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogBatch {
    pub sources: Vec<LogSource>,
    pub records: Vec<LogRecord>,
}

impl LogSource {
    /// A source with no attributes.
    pub fn new(path: impl Into<String>, stream: LogStream) -> Self {
        Self { path: path.into(), stream, attributes: Attributes::new() }
    }

    /// The value of a file attribute (`k8s.pod.name`, `k8s.pod.label.app`).
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key)
    }
}

impl LogRecord {
    /// A record of source `source` with no attributes.
    pub fn new(source: u32, timestamp_ns: i64, body: impl Into<Vec<u8>>) -> Self {
        Self { timestamp_ns, body: body.into(), attributes: Attributes::new(), source }
    }

    /// The body as text, if it is valid UTF-8.
    pub fn body_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.body).ok()
    }

    /// The body as text, invalid UTF-8 replaced by U+FFFD.
    pub fn body_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// The record's own attribute `key`.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key)
    }

    /// Sets attribute `key`, returning the old value.
    pub fn set_attribute(&mut self, key: impl AsRef<str>, value: impl AsRef<str>) -> Option<String> {
        self.attributes.insert(key.as_ref(), value.as_ref())
    }

    /// Removes attribute `key`, returning its value.
    pub fn remove_attribute(&mut self, key: &str) -> Option<String> {
        self.attributes.remove(key)
    }

    /// Adds many attributes at once (cheaper than repeated `set_attribute`):
    /// later pairs win over earlier ones and over existing keys.
    pub fn extend_attributes<K: AsRef<str>, V: AsRef<str>>(&mut self, pairs: impl IntoIterator<Item = (K, V)>) {
        self.attributes.extend(pairs);
    }
}

impl LogBatch {
    /// The source `record` came from (`None` only for a bad index).
    pub fn source_of(&self, record: &LogRecord) -> Option<&LogSource> {
        self.sources.get(record.source as usize)
    }

    /// Attribute `key` of `record`, or else of its source: what a sink sees.
    pub fn attribute<'a>(&'a self, record: &'a LogRecord, key: &str) -> Option<&'a str> {
        record.attribute(key).or_else(|| self.source_of(record)?.attribute(key))
    }
}

/// The WIT shapes the types above cross the boundary in.
mod wire {
    use super::*;
    use wasmon_sdk::packed_records::{Packer, RecordLengths, Unpacker};

    pub fn batch_from_wit(batch: wit::LogBatch) -> Result<LogBatch, PluginError> {
        let bad =
            |e: wasmon_sdk::attributes::PackedError| PluginError::internal(format!("the host sent a bad batch: {e}"));
        let sources = batch
            .sources
            .into_iter()
            .map(|s| {
                let attributes = Attributes::from_packed(s.attributes.text, &s.attributes.spans).map_err(|e| {
                    PluginError::internal(format!("the host sent bad attributes for source {}: {e}", s.path))
                })?;
                Ok(LogSource { path: s.path, stream: s.stream, attributes })
            })
            .collect::<Result<_, PluginError>>()?;
        let packed = &batch.records;
        let mut unpacker = Unpacker::new(&packed.bodies, &packed.attribute_text, &packed.attribute_spans);
        let records = packed
            .heads
            .iter()
            .map(|head| {
                let (body, attributes) = unpacker.next(lengths(head)).map_err(bad)?;
                Ok(LogRecord { timestamp_ns: head.timestamp_ns, body: body.to_vec(), attributes, source: head.source })
            })
            .collect::<Result<_, PluginError>>()?;
        unpacker.finish().map_err(bad)?;
        Ok(LogBatch { sources, records })
    }

    fn lengths(head: &wit::RecordHead) -> RecordLengths {
        RecordLengths {
            body_bytes: head.body_bytes,
            attribute_bytes: head.attribute_bytes,
            attribute_count: head.attribute_count,
        }
    }

    pub fn records_to_wit(records: &[LogRecord]) -> Result<wit::LogRecords, PluginError> {
        let mut packer = Packer::with_body_capacity(records.iter().map(|r| r.body.len()).sum());
        let mut heads = Vec::with_capacity(records.len());
        for r in records {
            let lengths = packer
                .push(&r.body, &r.attributes)
                .map_err(|e| PluginError::internal(format!("cannot return record {}: {e}", heads.len())))?;
            heads.push(wit::RecordHead {
                timestamp_ns: r.timestamp_ns,
                body_bytes: lengths.body_bytes,
                attribute_bytes: lengths.attribute_bytes,
                attribute_count: lengths.attribute_count,
                source: r.source,
            });
        }
        let Packer { bodies, attribute_text, attribute_spans } = packer;
        Ok(wit::LogRecords { heads, bodies, attribute_text, attribute_spans })
    }
}

#[doc(hidden)]
pub mod __private {
    use super::*;
    use std::cell::RefCell;

    pub use super::wit::{LogBatch as WitBatch, LogRecords as WitRecords};

    /// Where the exported instance keeps its one value between calls. wasm32
    /// components are single-threaded, so a thread-local is the instance.
    pub struct Slot<T>(RefCell<Option<T>>);

    impl<T: LogProcessor> Slot<T> {
        pub const fn new() -> Self {
            Self(RefCell::new(None))
        }

        pub fn init(&self, config: &str) -> Result<(), PluginError> {
            *self.0.borrow_mut() = Some(T::init(config)?);
            Ok(())
        }

        pub fn with<R>(&self, f: impl FnOnce(&mut T) -> Result<R, PluginError>) -> Result<R, PluginError> {
            match self.0.borrow_mut().as_mut() {
                Some(state) => f(state),
                None => Err(PluginError::internal("the host called the plugin before `init`")),
            }
        }

        /// One `process` call: the batch out of its WIT shape, the records back into it.
        pub fn process(&self, batch: WitBatch) -> Result<WitRecords, PluginError> {
            let batch = wire::batch_from_wit(batch)?;
            self.with(|p| p.process(batch)).and_then(|records| wire::records_to_wit(&records))
        }

        pub fn metrics(&self) -> Vec<MetricFamily> {
            self.0.borrow_mut().as_mut().map(T::metrics).unwrap_or_default()
        }
    }

    /// Tells the arena allocator a `process` call starts (see [`crate::alloc`]).
    pub fn process_started() {
        #[cfg(all(target_arch = "wasm32", feature = "call-arena"))]
        crate::ALLOCATOR.process_started();
    }

    /// Runs `f` on the standard allocator (see [`crate::alloc`]).
    pub fn outside_arena<R>(f: impl FnOnce() -> R) -> R {
        #[cfg(all(target_arch = "wasm32", feature = "call-arena"))]
        return crate::ALLOCATOR.outside(f);
        #[cfg(not(all(target_arch = "wasm32", feature = "call-arena")))]
        f()
    }

    impl<T: LogProcessor> Default for Slot<T> {
        fn default() -> Self {
            Self::new()
        }
    }
}

/// Export a type implementing [`LogProcessor`] as the entry points of the
/// `log-processor` world. Call it once, at the crate root of a `cdylib` crate.
#[macro_export]
macro_rules! export_log_processor {
    ($ty:ty) => {
        const _: () = {
            ::std::thread_local! {
                static __WASMON_LOG_PROCESSOR: $crate::__private::Slot<$ty> =
                    const { $crate::__private::Slot::new() };
            }

            struct __WasmonLogProcessorExport;

            impl $crate::bindings::Guest for __WasmonLogProcessorExport {
                fn describe() -> $crate::__sdk::PluginInfo {
                    <$ty as $crate::LogProcessor>::describe()
                }
                fn check_config(
                    config: ::std::string::String,
                ) -> ::std::result::Result<(), $crate::__sdk::PluginError> {
                    <$ty as $crate::LogProcessor>::check_config(&config)
                }
                fn init(config: ::std::string::String) -> ::std::result::Result<(), $crate::__sdk::PluginError> {
                    __WASMON_LOG_PROCESSOR.with(|slot| slot.init(&config))
                }
                fn process(
                    batch: $crate::__private::WitBatch,
                ) -> ::std::result::Result<$crate::__private::WitRecords, $crate::__sdk::PluginError> {
                    $crate::__private::process_started();
                    __WASMON_LOG_PROCESSOR.with(|slot| slot.process(batch))
                }
                fn metrics() -> ::std::vec::Vec<$crate::__sdk::MetricFamily> {
                    $crate::__private::outside_arena(|| __WASMON_LOG_PROCESSOR.with(|slot| slot.metrics()))
                }
            }

            $crate::bindings::__export_log_processor_impl!(
                __WasmonLogProcessorExport with_types_in $crate::bindings
            );
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_stay_sorted_and_later_values_win() {
        let mut r = LogRecord::new(0, 1, "x");
        r.set_attribute("b", "1");
        r.set_attribute("a", "1");
        r.extend_attributes([("c", "1"), ("b", "2"), ("b", "3")]);
        let keys: Vec<String> = r.attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(keys, ["a=1", "b=3", "c=1"]);
        assert_eq!(r.set_attribute("a", "2"), Some("1".into()));
        assert_eq!(r.remove_attribute("c"), Some("1".into()));
        assert_eq!(r.attribute("c"), None);
    }

    fn packed(text: &str, spans: &[u32]) -> wit::PackedAttributes {
        wit::PackedAttributes { text: text.into(), spans: spans.to_vec() }
    }

    #[test]
    fn batches_cross_in_the_packed_shape_and_back() {
        let source = wit::LogSource {
            path: "/p".into(),
            stream: LogStream::Stdout,
            attributes: packed("k8s.pod.nameweb", &[0, 12, 3]),
        };
        let head = |timestamp_ns, body_bytes, attribute_bytes, attribute_count| wit::RecordHead {
            timestamp_ns,
            body_bytes,
            attribute_bytes,
            attribute_count,
            source: 0,
        };
        let records = wit::LogRecords {
            heads: vec![head(5, 1, 0, 0), head(6, 2, 3, 1)],
            bodies: b"xyz".to_vec(),
            attribute_text: "own".into(),
            attribute_spans: vec![0, 2, 1],
        };
        let batch = wire::batch_from_wit(wit::LogBatch { sources: vec![source], records: records.clone() }).unwrap();
        assert_eq!(batch.attribute(&batch.records[0], "k8s.pod.name"), Some("web"));
        assert_eq!(batch.records[1].body, b"yz");
        assert_eq!(batch.records[1].attribute("ow"), Some("n"));
        let mut r = batch.records[0].clone();
        r.extend_attributes([("z", "1"), ("a", "2")]);
        let out = wire::records_to_wit(&[r, batch.records[1].clone()]).unwrap();
        assert_eq!(out.attribute_text, "z1a2own");
        assert_eq!(out.attribute_spans, [2, 1, 1, 0, 1, 1, 0, 2, 1]);
        assert_eq!(out.bodies, b"xyz");
        assert_eq!(out.heads, [head(5, 1, 4, 2), head(6, 2, 3, 1)]);

        let bad = wit::LogRecords { attribute_spans: vec![5, 0, 0], ..records };
        let err = wire::batch_from_wit(wit::LogBatch { sources: vec![], records: bad }).unwrap_err();
        assert!(
            err.message.contains(
                "a bad batch: record 1: attribute 0: key of 0 and value of 0 bytes from byte 5 run past the text's 3"
            ),
            "{}",
            err.message
        );
    }

    #[test]
    fn record_attributes_shadow_source_attributes() {
        let mut source = LogSource::new("/p", LogStream::Stdout);
        source.attributes = Attributes::from([("k8s.pod.name", "web"), ("team", "a")]);
        let mut r = LogRecord::new(0, 1, vec![0xff, b'x']);
        r.set_attribute("team", "b");
        let batch = LogBatch { sources: vec![source], records: vec![] };
        assert_eq!(batch.attribute(&r, "team"), Some("b"));
        assert_eq!(batch.attribute(&r, "k8s.pod.name"), Some("web"));
        assert_eq!(r.body_str(), None);
        assert_eq!(r.body_lossy(), "\u{fffd}x");
    }
}
