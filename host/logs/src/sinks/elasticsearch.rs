//! Elasticsearch / OpenSearch `_bulk` API: NDJSON action + document pairs,
//! index names from the record's date (`logs-%Y.%m.%d`), and per-item results
//! so only the items that failed with a retryable status are sent again.

use super::http::{BasicAuth, HttpSettings, HttpTarget, TlsConfig};
use super::{Compression, Encoded, HttpEncoder, RetryConfig, SinkKind, Verdict, default_timeout, gzip};
use crate::config::PromDuration;
use crate::record::LogRecord;
use bytes::Bytes;
use chrono::format::{Item, StrftimeItems};
use serde::Deserialize;
use serde::ser::{SerializeMap, Serializer};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElasticsearchConfig {
    pub name: String,
    /// The cluster's base URL, e.g. `https://es:9200`; `/_bulk` is appended.
    pub url: String,
    /// strftime pattern, in UTC of the record's timestamp.
    #[serde(default = "default_index")]
    pub index: String,
    /// `create` works for data streams and plain indices; `index` only for indices.
    #[serde(default)]
    pub action: BulkAction,
    /// An ingest pipeline to run on the documents.
    #[serde(default)]
    pub pipeline: Option<String>,
    #[serde(default)]
    pub compression: Compression,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default)]
    pub bearer_token: Option<String>,
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    #[serde(default = "default_timeout")]
    pub timeout: PromDuration,
    #[serde(default)]
    pub retry: RetryConfig,
}

fn default_index() -> String {
    "logs-%Y.%m.%d".into()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BulkAction {
    #[default]
    Create,
    Index,
}

impl ElasticsearchConfig {
    pub(crate) fn validate(&self) -> Vec<String> {
        if StrftimeItems::new(&self.index).any(|i| matches!(i, Item::Error)) {
            vec![format!("index {:?} is not a valid strftime pattern", self.index)]
        } else {
            Vec::new()
        }
    }

    pub(crate) fn build(&self) -> Result<SinkKind, String> {
        if let Some(e) = self.validate().into_iter().next() {
            return Err(e);
        }
        let mut url = self.url.trim_end_matches('/').to_string();
        url.push_str("/_bulk");
        if let Some(p) = &self.pipeline {
            url.push_str("?pipeline=");
            url.extend(form_encode(p));
        }
        let target = HttpTarget::new(&HttpSettings {
            url: &url,
            headers: &self.headers,
            basic_auth: self.basic_auth.as_ref(),
            bearer_token: self.bearer_token.as_deref(),
            tls: self.tls.as_ref(),
            timeout: self.timeout.0,
        })?;
        let encoder = BulkEncoder { index: self.index.clone(), action: self.action, compression: self.compression };
        Ok(SinkKind::Http { target: Box::new(target), encoder: Box::new(encoder) })
    }
}

fn form_encode(s: &str) -> impl Iterator<Item = char> + '_ {
    s.chars().flat_map(|c| {
        if c.is_ascii_alphanumeric() || "-_.".contains(c) {
            vec![c]
        } else {
            let mut b = [0; 4];
            c.encode_utf8(&mut b).bytes().flat_map(|x| format!("%{x:02X}").chars().collect::<Vec<_>>()).collect()
        }
    })
}

pub(crate) struct BulkEncoder {
    index: String,
    action: BulkAction,
    compression: Compression,
}

/// Nanosecond RFC 3339 in UTC, as Elasticsearch's `date_nanos` and `date` accept.
pub(crate) fn rfc3339_nanos(ts: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ts).format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}

impl BulkEncoder {
    fn write_document(&self, r: &LogRecord, out: &mut Vec<u8>) -> Result<(), String> {
        let mut ser = serde_json::Serializer::new(&mut *out);
        let mut map = ser.serialize_map(None).map_err(|e| e.to_string())?;
        let e = |e: serde_json::Error| e.to_string();
        map.serialize_entry("@timestamp", &rfc3339_nanos(r.timestamp_ns)).map_err(e)?;
        map.serialize_entry("message", &r.body).map_err(e)?;
        map.serialize_entry("log.file.path", &*r.source.path).map_err(e)?;
        if !r.source.stream.as_str().is_empty() {
            map.serialize_entry("stream", r.source.stream.as_str()).map_err(e)?;
        }
        for (k, v) in r.all_attributes() {
            // The fields above win: a parsed `message` attribute must not replace the line.
            if !matches!(k, "@timestamp" | "message" | "log.file.path" | "stream") {
                map.serialize_entry(k, v).map_err(e)?;
            }
        }
        map.end().map_err(e)
    }
}

impl HttpEncoder for BulkEncoder {
    fn encode(&self, records: &[&LogRecord]) -> Result<Encoded, String> {
        let action = match self.action {
            BulkAction::Create => "create",
            BulkAction::Index => "index",
        };
        let mut out = Vec::with_capacity(records.len() * 256);
        let mut day = i64::MIN;
        let mut header = Vec::new();
        for r in records {
            // Index names change once a day; format them only then.
            let d = r.timestamp_ns.div_euclid(86_400_000_000_000);
            if d != day {
                day = d;
                let index = chrono::DateTime::from_timestamp_nanos(r.timestamp_ns).format(&self.index).to_string();
                header.clear();
                serde_json::to_writer(&mut header, &serde_json::json!({ action: { "_index": index } }))
                    .map_err(|e| e.to_string())?;
            }
            out.extend_from_slice(&header);
            out.push(b'\n');
            self.write_document(r, &mut out)?;
            out.push(b'\n');
        }
        let (body, content_encoding) = match self.compression {
            Compression::None => (out, None),
            Compression::Gzip => (gzip(&out)?, Some("gzip")),
        };
        Ok(Encoded { body: Bytes::from(body), content_type: "application/x-ndjson", content_encoding })
    }

    fn accepted(&self, records: usize, bytes: u64, body: &Bytes) -> Verdict {
        bulk_verdict(records, bytes, body)
    }
}

/// Reads a bulk response: items with 429/5xx are retried, other failures dropped.
pub(crate) fn bulk_verdict(records: usize, bytes: u64, body: &[u8]) -> Verdict {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Verdict::Retry { reason: "bulk response is not JSON".into(), retry_after: None };
    };
    if v.get("errors").and_then(|e| e.as_bool()) != Some(true) {
        return Verdict::Sent { bytes };
    }
    let Some(items) = v.get("items").and_then(|i| i.as_array()).filter(|i| i.len() == records) else {
        return Verdict::Retry {
            reason: "bulk response reports errors without matching items".into(),
            retry_after: None,
        };
    };
    let mut retry = Vec::new();
    let mut rejected = 0;
    let mut message = String::new();
    for (i, item) in items.iter().enumerate() {
        let Some(result) = item.as_object().and_then(|o| o.values().next()) else { continue };
        let status = result.get("status").and_then(|s| s.as_u64()).unwrap_or(0);
        if (200..300).contains(&status) {
            continue;
        }
        if message.is_empty() {
            message = format!("status {status}: {}", result.get("error").map(|e| e.to_string()).unwrap_or_default());
        }
        if status == 429 || status >= 500 {
            retry.push(i);
        } else {
            rejected += 1;
        }
    }
    if retry.is_empty() && rejected == 0 {
        return Verdict::Sent { bytes };
    }
    Verdict::Partial { bytes, retry, rejected, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_responses_split_into_retry_and_rejected() {
        let body = br#"{"errors":true,"items":[{"create":{"status":201}},{"create":{"status":429,"error":{"type":"es_rejected_execution_exception"}}},{"create":{"status":400,"error":{"type":"mapper_parsing_exception"}}}]}"#;
        match bulk_verdict(3, 10, body) {
            Verdict::Partial { retry, rejected, message, .. } => {
                assert_eq!(retry, vec![1]);
                assert_eq!(rejected, 1);
                assert!(message.contains("429"));
            }
            v => panic!("{v:?}"),
        }
        assert_eq!(bulk_verdict(1, 5, br#"{"errors":false,"items":[]}"#), Verdict::Sent { bytes: 5 });
        assert!(matches!(bulk_verdict(1, 5, b"<html>"), Verdict::Retry { .. }));
    }

    #[test]
    fn timestamps_and_pipeline_names_are_formatted() {
        assert_eq!(rfc3339_nanos(1_475_713_029_669_794_202), "2016-10-06T00:17:09.669794202Z");
        assert_eq!(form_encode("a b/é").collect::<String>(), "a%20b%2F%C3%A9");
    }
}
