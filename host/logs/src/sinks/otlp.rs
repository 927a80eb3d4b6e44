//! OTLP/HTTP logs: `ExportLogsServiceRequest` as protobuf to `/v1/logs`.
//! Kubernetes attributes go to the resource (one `ResourceLogs` per container),
//! the rest to the log record, following the OpenTelemetry semantic conventions.

use super::http::{BasicAuth, HttpSettings, HttpTarget, TlsConfig};
use super::proto::otlp::*;
use super::{Compression, Encoded, HttpEncoder, RetryConfig, SinkKind, Verdict, default_timeout, gzip};
use crate::config::PromDuration;
use crate::record::{LogRecord as Record, attr};
use bytes::Bytes;
use prost::Message;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpConfig {
    pub name: String,
    /// e.g. `http://otel-collector:4318/v1/logs`.
    pub url: String,
    /// Attributes that describe the resource (the container), not the line.
    #[serde(default = "default_resource_attributes")]
    pub resource_attributes: Vec<String>,
    /// Added to every resource, e.g. `k8s.cluster.name: prod`.
    #[serde(default)]
    pub static_resource_attributes: BTreeMap<String, String>,
    /// Attribute holding the level (`info`, `WARN`, ...) for `severity_text`/`severity_number`.
    #[serde(default = "default_severity_attribute")]
    pub severity_attribute: String,
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

fn default_resource_attributes() -> Vec<String> {
    [
        attr::K8S_NAMESPACE,
        attr::K8S_POD_NAME,
        attr::K8S_POD_UID,
        attr::K8S_CONTAINER_NAME,
        attr::K8S_CONTAINER_RESTART_COUNT,
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

fn default_severity_attribute() -> String {
    "level".into()
}

impl OtlpConfig {
    pub(crate) fn build(&self) -> Result<SinkKind, String> {
        let target = HttpTarget::new(&HttpSettings {
            url: &self.url,
            headers: &self.headers,
            basic_auth: self.basic_auth.as_ref(),
            bearer_token: self.bearer_token.as_deref(),
            tls: self.tls.as_ref(),
            timeout: self.timeout.0,
        })?;
        Ok(SinkKind::Http { target: Box::new(target), encoder: Box::new(OtlpEncoder { cfg: self.clone() }) })
    }
}

pub(crate) struct OtlpEncoder {
    cfg: OtlpConfig,
}

/// OpenTelemetry's severity numbers for the usual level names.
pub(crate) fn severity_number(level: &str) -> i32 {
    match level.to_ascii_lowercase().as_str() {
        "trace" => 1,
        "debug" | "dbug" => 5,
        "info" | "information" | "notice" => 9,
        "warn" | "warning" => 13,
        "error" | "err" => 17,
        "fatal" | "critical" | "crit" | "panic" | "emerg" | "alert" => 21,
        _ => 0,
    }
}

fn now_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

impl HttpEncoder for OtlpEncoder {
    fn encode(&self, records: &[&Record]) -> Result<Encoded, String> {
        let observed = now_ns();
        let mut index: HashMap<Vec<(&str, &str)>, usize> = HashMap::new();
        let mut resources: Vec<ResourceLogs> = Vec::new();
        for r in records {
            let key: Vec<(&str, &str)> =
                self.cfg.resource_attributes.iter().filter_map(|k| r.attribute(k).map(|v| (k.as_str(), v))).collect();
            let i = match index.get(&key) {
                Some(&i) => i,
                None => {
                    let mut attributes: Vec<KeyValue> =
                        self.cfg.static_resource_attributes.iter().map(|(k, v)| KeyValue::string(k, v)).collect();
                    attributes.extend(key.iter().map(|(k, v)| KeyValue::string(*k, *v)));
                    resources.push(ResourceLogs {
                        resource: Some(Resource { attributes, dropped_attributes_count: 0 }),
                        scope_logs: vec![ScopeLogs {
                            scope: Some(InstrumentationScope {
                                name: "wasmon-logs".into(),
                                version: env!("CARGO_PKG_VERSION").into(),
                                ..Default::default()
                            }),
                            log_records: Vec::new(),
                            schema_url: String::new(),
                        }],
                        schema_url: String::new(),
                    });
                    index.insert(key, resources.len() - 1);
                    resources.len() - 1
                }
            };
            let mut attributes = vec![KeyValue::string("log.file.path", &*r.source.path)];
            if !r.source.stream.as_str().is_empty() {
                attributes.push(KeyValue::string("log.iostream", r.source.stream.as_str()));
            }
            attributes.extend(
                r.all_attributes()
                    .filter(|(k, _)| {
                        !self.cfg.resource_attributes.iter().any(|a| a == k) && *k != self.cfg.severity_attribute
                    })
                    .map(|(k, v)| KeyValue::string(k, v)),
            );
            let severity_text = r.attribute(&self.cfg.severity_attribute).unwrap_or_default().to_string();
            resources[i].scope_logs[0].log_records.push(LogRecord {
                time_unix_nano: r.timestamp_ns.max(0) as u64,
                observed_time_unix_nano: observed,
                severity_number: severity_number(&severity_text),
                severity_text,
                body: Some(AnyValue::string(&r.body)),
                attributes,
                ..Default::default()
            });
        }
        let raw = ExportLogsServiceRequest { resource_logs: resources }.encode_to_vec();
        let (body, content_encoding) = match self.cfg.compression {
            Compression::None => (raw, None),
            Compression::Gzip => (gzip(&raw)?, Some("gzip")),
        };
        Ok(Encoded { body: Bytes::from(body), content_type: "application/x-protobuf", content_encoding })
    }

    fn accepted(&self, records: usize, bytes: u64, body: &Bytes) -> Verdict {
        // An empty body is a full success; partial success names rejected records (never retried, per the spec).
        match ExportLogsServiceResponse::decode(body.as_ref()) {
            Ok(ExportLogsServiceResponse { partial_success: Some(p) }) if p.rejected_log_records > 0 => {
                Verdict::Partial {
                    bytes,
                    retry: Vec::new(),
                    rejected: (p.rejected_log_records as u64).min(records as u64),
                    message: p.error_message,
                }
            }
            _ => Verdict::Sent { bytes },
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn levels_map_to_severity_numbers() {
        assert_eq!(super::severity_number("WARN"), 13);
        assert_eq!(super::severity_number("info"), 9);
        assert_eq!(super::severity_number("?"), 0);
    }
}
