//! Processors transform batches between the tailer and the sinks. The host
//! implements `Processor` for a Wasm `log-processor` instance; the native JSON
//! processor here is the reference (and benchmark) path.

use crate::record::LogRecord;
use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use wasmon_sdk::attributes::{AttributeWriter, ValueText};
use wasmon_sdk::json::BorrowedStr;

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
        // Straight from the text into the record's attributes, without
        // building a `serde_json::Value` tree or a list of pairs first: this
        // processor is the benchmark's hot path, and does what the
        // `logs-json` plugin does, so that the ratio measures Wasm.
        let mut new_body = None;
        let mut attributes = record.attributes.writer();
        attributes.reserve(body.len() + self.cfg.prefix.len() * 16, 16);
        let mut de = serde_json::Deserializer::from_str(body);
        let seed = ObjectSeed {
            prefix: &self.cfg.prefix,
            depth: self.cfg.max_depth.max(1),
            body_field: self.cfg.body_field.as_deref(),
            out: &mut attributes,
            new_body: &mut new_body,
        };
        // All or nothing: a body that breaks off halfway adds no attributes.
        if seed.deserialize(&mut de).and_then(|()| de.end()).is_err() {
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

/// Visits one JSON object, writing its flattened keys (under `prefix`) and
/// values into `out`; keys and values without escapes are copied straight
/// from the body.
struct ObjectSeed<'a, 'o, 'w> {
    prefix: &'a str,
    depth: usize,
    /// Only at the top level: the field that becomes the body.
    body_field: Option<&'a str>,
    out: &'o mut AttributeWriter<'w>,
    new_body: &'a mut Option<String>,
}

impl<'de> DeserializeSeed<'de> for ObjectSeed<'_, '_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ObjectSeed<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(k) = map.next_key_seed(BorrowedStr)? {
            let capture = self.body_field == Some(&*k) && self.new_body.is_none();
            let value =
                map.next_value_seed(ValueSeed { depth: self.depth, prefix: self.prefix, key: &k, out: self.out })?;
            match value {
                Flat::Str(s) if capture => *self.new_body = Some(s.into_owned()),
                Flat::Nested => {}
                value => self.out.push_with(&[self.prefix, &k], |text| value.write(text)),
            }
        }
        Ok(())
    }
}

/// A value as it becomes an attribute's text.
enum Flat<'de> {
    Str(Cow<'de, str>),
    Int(i64),
    Unsigned(u64),
    Float(f64),
    /// `true`, `false`, and `null` as "".
    Word(&'static str),
    /// Arrays and too-deep objects, as JSON text.
    Json(String),
    /// An object flattened into `out` already.
    Nested,
}

impl Flat<'_> {
    fn write(self, out: &mut ValueText<'_>) {
        match self {
            Flat::Str(s) => out.push_str(&s),
            Flat::Int(i) => out.push_str(itoa::Buffer::new().format(i)),
            Flat::Unsigned(u) => out.push_str(itoa::Buffer::new().format(u)),
            Flat::Float(f) => wasmon_sdk::json::push_f64(out, f),
            Flat::Word(w) => out.push_str(w),
            Flat::Json(s) => out.push_str(&s),
            Flat::Nested => {}
        }
    }
}

struct ValueSeed<'a, 'o, 'w> {
    depth: usize,
    prefix: &'a str,
    key: &'a str,
    out: &'o mut AttributeWriter<'w>,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_, '_, '_> {
    type Value = Flat<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_, '_, '_> {
    type Value = Flat<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Flat::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Flat::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Flat::Str(Cow::Owned(v)))
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Flat::Word(if v { "true" } else { "false" }))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Flat::Int(v))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Flat::Unsigned(v))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Flat::Float(v))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(Flat::Word(""))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let v = Value::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
        Ok(Flat::Json(v.to_string()))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        if self.depth <= 1 {
            let v = Value::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
            return Ok(Flat::Json(v.to_string()));
        }
        let prefix = format!("{}{}.", self.prefix, self.key);
        let mut ignored = None;
        let nested = ObjectSeed {
            prefix: &prefix,
            depth: self.depth - 1,
            body_field: None,
            out: self.out,
            new_body: &mut ignored,
        };
        nested.visit_map(map)?;
        Ok(Flat::Nested)
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
