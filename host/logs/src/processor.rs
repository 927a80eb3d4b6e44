//! Processors transform batches between the tailer and the sinks. The host
//! implements `Processor` for a Wasm `log-processor` instance; the native JSON
//! processor here is the reference (and benchmark) path.

use crate::record::LogRecord;
use serde::Deserialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use wasmon_sdk::json::flatten::{FlattenOptions, Leaf, flatten_object};

/// A processor failed on a whole batch. It hands back the records it still
/// holds, which the pipeline forwards unprocessed (and counts), so a broken
/// plugin never loses logs.
#[derive(Debug, thiserror::Error)]
#[error("processor {processor}: {message}")]
pub struct ProcessorError {
    pub processor: String,
    pub message: String,
    pub unprocessed: Vec<LogRecord>,
}

/// Batch in, batch out. Records may be dropped, changed, split or added:
/// positions travel beside the batch, not inside records.
pub trait Processor: Send {
    fn name(&self) -> &str;
    /// Runs on the pipeline's task; a slow processor slows the pipeline (and,
    /// through back-pressure, the tailer) rather than letting memory grow.
    fn process(&mut self, batch: Vec<LogRecord>) -> Result<Vec<LogRecord>, ProcessorError>;
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonBodyConfig {
    /// If the object has this string field, it becomes the body (e.g. `msg`, `message`).
    #[serde(default)]
    pub body_field: Option<String>,
    /// Prepended to every attribute name.
    #[serde(default)]
    pub prefix: String,
    /// Nested objects become `a.b.c` attributes up to this depth; deeper values stay JSON text.
    #[serde(default = "default_max_depth")]
    pub max_depth: usize,
}

impl Default for JsonBodyConfig {
    fn default() -> Self {
        Self { body_field: None, prefix: String::new(), max_depth: default_max_depth() }
    }
}

fn default_max_depth() -> usize {
    4
}

/// Counters of the JSON processor.
#[derive(Debug, Default)]
pub struct JsonBodyMetrics {
    pub parsed: AtomicU64,
    /// Bodies that are not a JSON object; left as they are.
    pub not_json: AtomicU64,
}

/// Body JSON object → attributes (strings as they are, other scalars and arrays as JSON text).
pub struct JsonBodyProcessor {
    cfg: JsonBodyConfig,
    pub metrics: Arc<JsonBodyMetrics>,
}

impl JsonBodyProcessor {
    pub fn new(cfg: JsonBodyConfig) -> Self {
        Self { cfg, metrics: Arc::default() }
    }

    /// Parses one record; `false` (and the record untouched) if its body is not a JSON object.
    pub fn apply(&self, record: &mut LogRecord) -> bool {
        let body = record.body.trim_start();
        if !body.starts_with('{') {
            return false;
        }
        // Straight from the text into the record's attributes, by the
        // reader the `logs-json` plugin runs (this processor is the
        // benchmark's reference, so that the ratio measures Wasm).
        let mut new_body = None;
        let mut attributes = record.attributes.writer();
        attributes.reserve(body.len() + self.cfg.prefix.len() * 16, 16);
        let options = FlattenOptions { prefix: &self.cfg.prefix, separator: ".", max_depth: self.cfg.max_depth };
        let body_field = self.cfg.body_field.as_deref();
        let taken = flatten_object(body, &options, &mut attributes, |key, level, leaf| match leaf {
            Leaf::Str(s) if level == 0 && body_field == Some(key) && new_body.is_none() => {
                new_body = Some(s.to_string());
                true
            }
            _ => false,
        });
        // All or nothing: a body that breaks off halfway adds no attributes.
        if taken.is_err() {
            attributes.discard();
            return false;
        }
        drop(attributes); // puts them in key order
        if let Some(b) = new_body {
            record.body = b;
        }
        true
    }
}

impl Processor for JsonBodyProcessor {
    fn name(&self) -> &str {
        "json_body"
    }

    fn process(&mut self, mut batch: Vec<LogRecord>) -> Result<Vec<LogRecord>, ProcessorError> {
        let (mut ok, mut not) = (0, 0);
        for r in &mut batch {
            if self.apply(r) {
                ok += 1;
            } else {
                not += 1;
            }
        }
        self.metrics.parsed.fetch_add(ok, Relaxed);
        self.metrics.not_json.fetch_add(not, Relaxed);
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Attributes, LogSource, Stream};

    fn rec(body: &str) -> LogRecord {
        LogRecord {
            timestamp_ns: 1,
            body: body.into(),
            attributes: Attributes::new(),
            source: LogSource { path: "/x".into(), stream: Stream::Stdout, attributes: Default::default() },
        }
    }

    #[test]
    fn json_bodies_become_attributes() {
        let mut p = JsonBodyProcessor::new(JsonBodyConfig { body_field: Some("msg".into()), ..Default::default() });
        let out = p
            .process(vec![
                rec(r#"{"level":"info","msg":"hi","n":3,"ok":true,"http":{"status":200,"h":{"a":{"b":{"c":1}}}},"tags":[1,2],"x":null}"#),
                rec("plain text"),
                rec("{broken"),
            ])
            .unwrap();
        let a = &out[0].attributes;
        assert_eq!(out[0].body, "hi");
        assert_eq!(&a["level"], "info");
        assert_eq!(&a["n"], "3");
        assert_eq!(&a["ok"], "true");
        assert_eq!(&a["http.status"], "200");
        assert_eq!(&a["http.h.a.b"], r#"{"c":1}"#);
        assert_eq!(&a["tags"], "[1,2]");
        assert_eq!(&a["x"], "");
        assert!(!a.contains_key("msg"));
        assert_eq!(out[1].body, "plain text");
        assert_eq!(out[2].body, "{broken");
        assert_eq!(p.metrics.not_json.load(Relaxed), 2);
    }

    #[test]
    fn escaped_keys_and_values_and_a_prefix_come_out_exact() {
        let mut p = JsonBodyProcessor::new(JsonBodyConfig {
            body_field: Some("m\"sg".into()),
            prefix: "app.".into(),
            ..Default::default()
        });
        let out = p
            .process(vec![rec(
                r#"{"k\"ey":"v\u00e9\n","plain":"x","m\"sg":"body \"quoted\"","big":18446744073709551615}"#,
            )])
            .unwrap();
        let a = &out[0].attributes;
        assert_eq!(&a["app.k\"ey"], "vé\n");
        assert_eq!(&a["app.plain"], "x");
        assert_eq!(&a["app.big"], "18446744073709551615");
        assert_eq!(out[0].body, "body \"quoted\"");
        assert_eq!(a.len(), 3);
    }
}
