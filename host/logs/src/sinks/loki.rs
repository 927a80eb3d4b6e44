//! Loki's push API: `logproto.PushRequest`, protobuf + snappy. Records are
//! grouped into streams by a few chosen low-cardinality fields; everything
//! else stays in the line (or goes to Loki 3 structured metadata).

use super::http::{BasicAuth, HttpSettings, HttpTarget, TlsConfig};
use super::proto::loki::{EntryAdapter, LabelPairAdapter, PushRequest, StreamAdapter, Timestamp};
use super::{Encoded, HttpEncoder, RetryConfig, SinkKind, default_timeout};
use crate::config::PromDuration;
use crate::record::{LogRecord, attr};
use bytes::Bytes;
use prost::Message;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LokiConfig {
    pub name: String,
    /// e.g. `http://loki:3100/loki/api/v1/push`.
    pub url: String,
    /// Sent as `X-Scope-OrgID` (multi-tenant Loki, Grafana Cloud).
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// Stream label → record field (`source.path`, `source.stream`, or an
    /// attribute). Only low-cardinality fields belong here: every distinct
    /// combination is a Loki stream. Never a request id or a user id.
    #[serde(default = "default_labels")]
    pub labels: BTreeMap<String, String>,
    /// Labels added to every stream, e.g. `cluster: prod-eu`.
    #[serde(default)]
    pub static_labels: BTreeMap<String, String>,
    /// Send the attributes that are not labels as structured metadata (Loki 3 with it enabled).
    #[serde(default)]
    pub structured_metadata: bool,
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

/// Namespace, pod, container and stream: what a Kubernetes user filters by,
/// and bounded by the number of containers on the node.
pub fn default_labels() -> BTreeMap<String, String> {
    [
        ("namespace", attr::K8S_NAMESPACE),
        ("pod", attr::K8S_POD_NAME),
        ("container", attr::K8S_CONTAINER_NAME),
        ("stream", "source.stream"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn valid_label_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !n.starts_with("__")
}

impl LokiConfig {
    pub(crate) fn validate(&self) -> Vec<String> {
        let mut v = Vec::new();
        for n in self.labels.keys().chain(self.static_labels.keys()) {
            if !valid_label_name(n) {
                v.push(format!(
                    "label name {n:?} is not a valid Loki label name ([a-zA-Z_][a-zA-Z0-9_]*, no leading __)"
                ));
            }
        }
        v
    }

    pub(crate) fn build(&self) -> Result<SinkKind, String> {
        let mut headers = self.headers.clone();
        if let Some(t) = &self.tenant_id {
            headers.insert("X-Scope-OrgID".into(), t.clone());
        }
        let target = HttpTarget::new(&HttpSettings {
            url: &self.url,
            headers: &headers,
            basic_auth: self.basic_auth.as_ref(),
            bearer_token: self.bearer_token.as_deref(),
            tls: self.tls.as_ref(),
            timeout: self.timeout.0,
        })?;
        Ok(SinkKind::Http { target: Box::new(target), encoder: Box::new(LokiEncoder::new(self)) })
    }
}

pub(crate) struct LokiEncoder {
    labels: Vec<(String, String)>,
    static_labels: Vec<(String, String)>,
    structured_metadata: bool,
}

impl LokiEncoder {
    pub fn new(c: &LokiConfig) -> Self {
        Self {
            labels: c.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            static_labels: c.static_labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            structured_metadata: c.structured_metadata,
        }
    }

    /// The stream's label set, sorted by name, in Loki's text form.
    fn label_string(&self, r: &LogRecord) -> String {
        let mut pairs: Vec<(&str, &str)> = self.static_labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        for (label, field) in &self.labels {
            if let Some(v) = r.field(field).filter(|v| !v.is_empty()) {
                pairs.retain(|(k, _)| k != label);
                pairs.push((label, v));
            }
        }
        if pairs.is_empty() {
            // Loki refuses a stream without labels.
            pairs.push(("job", "wasmon"));
        }
        pairs.sort_unstable();
        let mut s = String::from("{");
        for (i, (k, v)) in pairs.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            s.push_str(k);
            s.push_str("=\"");
            for c in v.chars() {
                match c {
                    '\\' => s.push_str("\\\\"),
                    '"' => s.push_str("\\\""),
                    '\n' => s.push_str("\\n"),
                    c => s.push(c),
                }
            }
            s.push('"');
        }
        s.push('}');
        s
    }
}

impl HttpEncoder for LokiEncoder {
    fn encode(&self, records: &[&LogRecord]) -> Result<Encoded, String> {
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut streams: Vec<StreamAdapter> = Vec::new();
        let label_fields: Vec<&str> = self.labels.iter().map(|(_, f)| f.as_str()).collect();
        for r in records {
            let labels = self.label_string(r);
            let i = *index.entry(labels.clone()).or_insert_with(|| {
                streams.push(StreamAdapter { labels, entries: Vec::new(), hash: 0 });
                streams.len() - 1
            });
            let structured_metadata = if self.structured_metadata {
                r.all_attributes()
                    .filter(|(k, _)| !label_fields.contains(k))
                    .map(|(k, v)| LabelPairAdapter { name: k.to_string(), value: v.to_string() })
                    .collect()
            } else {
                Vec::new()
            };
            streams[i].entries.push(EntryAdapter {
                timestamp: Some(Timestamp {
                    seconds: r.timestamp_ns.div_euclid(1_000_000_000),
                    nanos: r.timestamp_ns.rem_euclid(1_000_000_000) as i32,
                }),
                line: r.body.clone(),
                structured_metadata,
            });
        }
        let raw = PushRequest { streams }.encode_to_vec();
        let body = snap::raw::Encoder::new().compress_vec(&raw).map_err(|e| e.to_string())?;
        Ok(Encoded {
            body: Bytes::from(body),
            content_type: "application/x-protobuf",
            content_encoding: Some("snappy"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Attributes, LogSource, Stream};

    #[test]
    fn label_sets_quote_values_and_skip_missing_fields() {
        let c: LokiConfig =
            serde_yaml_ng::from_str("{name: l, url: 'http://127.0.0.1:1/', static_labels: {cluster: c1}}").unwrap();
        let e = LokiEncoder::new(&c);
        let mut attributes = Attributes::new();
        attributes.insert(attr::K8S_NAMESPACE, "de\"v");
        attributes.insert("request_id", "r-123");
        let r = LogRecord {
            timestamp_ns: 0,
            body: String::new(),
            attributes,
            source: LogSource { path: "/p".into(), stream: Stream::Stderr, attributes: Default::default() },
        };
        assert_eq!(e.label_string(&r), r#"{cluster="c1", namespace="de\"v", stream="stderr"}"#);
        let bad: LokiConfig = serde_yaml_ng::from_str("{name: l, url: 'http://x/', labels: {'a-b': x}}").unwrap();
        assert_eq!(bad.validate().len(), 1);
    }
}
