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

pub use bindings::wasmon::plugin::logs::{Attribute, LogBatch, LogRecord, LogSource, LogStream};
#[doc(hidden)]
pub use wasmon_sdk as __sdk;
pub use wasmon_sdk::{MetricFamily, PluginError, PluginInfo};

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

/// Sorted-attribute helpers shared by records and sources.
fn find(attrs: &[Attribute], key: &str) -> Result<usize, usize> {
    attrs.binary_search_by(|(k, _)| k.as_str().cmp(key))
}

impl LogSource {
    /// A source with no attributes.
    pub fn new(path: impl Into<String>, stream: LogStream) -> Self {
        Self { path: path.into(), stream, attributes: Vec::new() }
    }

    /// The value of a file attribute (`k8s.pod.name`, `k8s.pod.label.app`).
    pub fn attribute(&self, key: &str) -> Option<&str> {
        // The host sends them sorted; a hand-built source may not be.
        match find(&self.attributes, key) {
            Ok(i) => Some(self.attributes[i].1.as_str()),
            Err(_) => self.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()),
        }
    }
}

impl LogRecord {
    /// A record of source `source` with no attributes.
    pub fn new(source: u32, timestamp_ns: i64, body: impl Into<Vec<u8>>) -> Self {
        Self { timestamp_ns, body: body.into(), attributes: Vec::new(), source }
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
        match find(&self.attributes, key) {
            Ok(i) => Some(self.attributes[i].1.as_str()),
            Err(_) => None,
        }
    }

    /// Sets attribute `key` (keeping the list sorted), returning the old value.
    pub fn set_attribute(&mut self, key: impl Into<String>, value: impl Into<String>) -> Option<String> {
        let key = key.into();
        match find(&self.attributes, &key) {
            Ok(i) => Some(std::mem::replace(&mut self.attributes[i].1, value.into())),
            Err(i) => {
                self.attributes.insert(i, (key, value.into()));
                None
            }
        }
    }

    /// Removes attribute `key`, returning its value.
    pub fn remove_attribute(&mut self, key: &str) -> Option<String> {
        find(&self.attributes, key).ok().map(|i| self.attributes.remove(i).1)
    }

    /// Adds many attributes at once (cheaper than repeated `set_attribute`):
    /// later pairs win over earlier ones and over existing keys.
    pub fn extend_attributes(&mut self, pairs: impl IntoIterator<Item = Attribute>) {
        let before = self.attributes.len();
        if before == 0 {
            // The usual case on the way in: take the list (a `Vec` is reused, not copied).
            self.attributes = pairs.into_iter().collect();
        } else {
            self.attributes.extend(pairs);
        }
        if self.attributes.len() == before {
            return;
        }
        // A stable sort keeps insertion order among equal keys: keep the
        // last of each run, in place (this is a log processor's hot path).
        self.attributes.sort_by(|a, b| a.0.cmp(&b.0));
        let v = &mut self.attributes;
        let mut kept = 0;
        for i in 0..v.len() {
            if i + 1 < v.len() && v[i].0 == v[i + 1].0 {
                continue;
            }
            v.swap(kept, i);
            kept += 1;
        }
        v.truncate(kept);
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

#[doc(hidden)]
pub mod __private {
    use super::*;
    use std::cell::RefCell;

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
                    batch: $crate::LogBatch,
                ) -> ::std::result::Result<::std::vec::Vec<$crate::LogRecord>, $crate::__sdk::PluginError> {
                    $crate::__private::process_started();
                    __WASMON_LOG_PROCESSOR.with(|slot| slot.with(|p| $crate::LogProcessor::process(p, batch)))
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
        r.extend_attributes([("c".into(), "1".into()), ("b".into(), "2".into()), ("b".into(), "3".into())]);
        let keys: Vec<String> = r.attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(keys, ["a=1", "b=3", "c=1"]);
        assert_eq!(r.set_attribute("a", "2"), Some("1".into()));
        assert_eq!(r.remove_attribute("c"), Some("1".into()));
        assert_eq!(r.attribute("c"), None);
    }

    #[test]
    fn record_attributes_shadow_source_attributes() {
        let mut source = LogSource::new("/p", LogStream::Stdout);
        source.attributes = vec![("k8s.pod.name".into(), "web".into()), ("team".into(), "a".into())];
        let mut r = LogRecord::new(0, 1, vec![0xff, b'x']);
        r.set_attribute("team", "b");
        let batch = LogBatch { sources: vec![source], records: vec![] };
        assert_eq!(batch.attribute(&r, "team"), Some("b"));
        assert_eq!(batch.attribute(&r, "k8s.pod.name"), Some("web"));
        assert_eq!(r.body_str(), None);
        assert_eq!(r.body_lossy(), "\u{fffd}x");
    }
}
