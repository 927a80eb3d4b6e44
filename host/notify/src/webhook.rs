//! Alertmanager's webhook message (version 4) and one HTTP delivery attempt.

use crate::model::{GO_ZERO_TIME, LabelSet, fmt_fingerprint, fmt_go_time};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use std::time::Duration;

pub(crate) type HttpClient = Client<HttpConnector, Full<Bytes>>;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("invalid request: {0}")]
    Request(String),
    #[error("sending failed: {0}")]
    Send(String),
    #[error("no response within {0:?}")]
    Timeout(Duration),
    #[error("unexpected status code {status}: {body}")]
    Status { status: u16, body: String },
}

impl WebhookError {
    /// Like Alertmanager's retrier: network errors and 5xx are worth retrying,
    /// other non-2xx answers are not (the request itself is wrong).
    pub fn retryable(&self) -> bool {
        match self {
            WebhookError::Request(_) => false,
            WebhookError::Send(_) | WebhookError::Timeout(_) => true,
            WebhookError::Status { status, .. } => *status >= 500 || *status == 429,
        }
    }
}

pub(crate) fn client() -> HttpClient {
    let mut conn = HttpConnector::new();
    conn.set_connect_timeout(Some(Duration::from_secs(5)));
    Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(conn)
}

pub(crate) async fn post(client: &HttpClient, url: &str, body: Bytes, timeout: Duration) -> Result<(), WebhookError> {
    let req = http::Request::post(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::USER_AGENT, concat!("wasmon-notify/", env!("CARGO_PKG_VERSION")))
        .body(Full::new(body))
        .map_err(|e| WebhookError::Request(e.to_string()))?;
    let attempt = async {
        let resp = client.request(req).await.map_err(|e| WebhookError::Send(error_chain(&e)))?;
        let status = resp.status();
        // Read (a bounded part of) the body so the connection can be reused and
        // the error message can say what the receiver complained about.
        let body = Limited::new(resp.into_body(), 1024).collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        if status.is_success() {
            Ok(())
        } else {
            Err(WebhookError::Status {
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body).trim().to_string(),
            })
        }
    };
    tokio::time::timeout(timeout, attempt).await.map_err(|_| WebhookError::Timeout(timeout))?
}

/// hyper's errors hide the cause (e.g. "connection refused") in `source()`.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// One alert of a notification, as the flush saw it.
#[derive(Debug, Clone)]
pub(crate) struct NotifyAlert {
    pub fp: u64,
    pub labels: LabelSet,
    pub annotations: LabelSet,
    pub starts_at: DateTime<Utc>,
    /// `None` for firing alerts: Alertmanager zeroes their end so it does not move.
    pub ends_at: Option<DateTime<Utc>>,
    pub generator_url: String,
}

impl NotifyAlert {
    pub fn resolved(&self) -> bool {
        self.ends_at.is_some()
    }
}

#[derive(Serialize)]
struct Message<'a> {
    receiver: &'a str,
    status: &'static str,
    alerts: Vec<WireAlert<'a>>,
    #[serde(rename = "groupLabels")]
    group_labels: &'a LabelSet,
    #[serde(rename = "commonLabels")]
    common_labels: LabelSet,
    #[serde(rename = "commonAnnotations")]
    common_annotations: LabelSet,
    #[serde(rename = "externalURL")]
    external_url: &'a str,
    version: &'static str,
    #[serde(rename = "groupKey")]
    group_key: &'a str,
    #[serde(rename = "truncatedAlerts")]
    truncated_alerts: u64,
}

#[derive(Serialize)]
struct WireAlert<'a> {
    status: &'static str,
    labels: &'a LabelSet,
    annotations: &'a LabelSet,
    #[serde(rename = "startsAt")]
    starts_at: String,
    #[serde(rename = "endsAt")]
    ends_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: &'a str,
    fingerprint: String,
}

fn common(sets: &[&LabelSet]) -> LabelSet {
    let Some((first, rest)) = sets.split_first() else { return LabelSet::new() };
    first
        .iter()
        .filter(|(k, v)| rest.iter().all(|s| s.get(*k) == Some(v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

pub(crate) struct MessageInput<'a> {
    pub receiver: &'a str,
    pub group_labels: &'a LabelSet,
    pub group_key: &'a str,
    pub external_url: &'a str,
    pub max_alerts: u64,
}

/// The JSON body Alertmanager's webhook notifier sends.
pub(crate) fn message(input: &MessageInput<'_>, alerts: &[&NotifyAlert]) -> Bytes {
    let keep = match usize::try_from(input.max_alerts) {
        Ok(0) | Err(_) => alerts.len(),
        Ok(n) => n.min(alerts.len()),
    };
    let (sent, dropped) = alerts.split_at(keep);
    let labels: Vec<&LabelSet> = sent.iter().map(|a| &a.labels).collect();
    let annotations: Vec<&LabelSet> = sent.iter().map(|a| &a.annotations).collect();
    let any_firing = sent.iter().any(|a| !a.resolved());
    let msg = Message {
        receiver: input.receiver,
        status: if any_firing { "firing" } else { "resolved" },
        alerts: sent
            .iter()
            .map(|a| WireAlert {
                status: if a.resolved() { "resolved" } else { "firing" },
                labels: &a.labels,
                annotations: &a.annotations,
                starts_at: fmt_go_time(&a.starts_at),
                ends_at: a.ends_at.as_ref().map_or_else(|| GO_ZERO_TIME.to_string(), fmt_go_time),
                generator_url: &a.generator_url,
                fingerprint: fmt_fingerprint(a.fp),
            })
            .collect(),
        group_labels: input.group_labels,
        common_labels: common(&labels),
        common_annotations: common(&annotations),
        external_url: input.external_url,
        version: "4",
        group_key: input.group_key,
        truncated_alerts: dropped.len() as u64,
    };
    Bytes::from(serde_json::to_vec(&msg).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ls(kv: &[(&str, &str)]) -> LabelSet {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn message_shape_matches_alertmanager() {
        let t = crate::model::parse_time("2026-12-01T19:22:36.648908702Z").unwrap();
        let a = NotifyAlert {
            fp: crate::model::fingerprint(&ls(&[("alertname", "Foo"), ("job", "x")])),
            labels: ls(&[("alertname", "Foo"), ("job", "x")]),
            annotations: ls(&[("summary", "hi")]),
            starts_at: t,
            ends_at: None,
            generator_url: "http://g".into(),
        };
        let mut b = a.clone();
        b.labels = ls(&[("alertname", "Foo"), ("job", "y")]);
        b.fp = crate::model::fingerprint(&b.labels);
        b.ends_at = Some(crate::model::parse_time("2026-12-01T19:22:38Z").unwrap());
        b.generator_url = String::new();
        let gl = ls(&[("alertname", "Foo")]);
        let input = MessageInput {
            receiver: "web",
            group_labels: &gl,
            group_key: "{}:{alertname=\"Foo\"}",
            external_url: "http://vm:19093",
            max_alerts: 0,
        };
        let body = message(&input, &[&a, &b]);
        // Alertmanager 0.25's own body for the same group (key order aside).
        let want: serde_json::Value = serde_json::from_str(r#"{"receiver":"web","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"Foo","job":"x"},"annotations":{"summary":"hi"},"startsAt":"2026-12-01T19:22:36.648908702Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://g","fingerprint":"77c7c0a24f9bac0f"},{"status":"resolved","labels":{"alertname":"Foo","job":"y"},"annotations":{"summary":"hi"},"startsAt":"2026-12-01T19:22:36.648908702Z","endsAt":"2026-12-01T19:22:38Z","generatorURL":"","fingerprint":"77cbc0a24f9f94e6"}],"groupLabels":{"alertname":"Foo"},"commonLabels":{"alertname":"Foo"},"commonAnnotations":{"summary":"hi"},"externalURL":"http://vm:19093","version":"4","groupKey":"{}:{alertname=\"Foo\"}","truncatedAlerts":0}"#).unwrap();
        let got: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(got, want);
        let input = MessageInput { max_alerts: 1, ..input };
        let got: serde_json::Value = serde_json::from_slice(&message(&input, &[&b, &a])).unwrap();
        assert_eq!(got["truncatedAlerts"], 1);
        assert_eq!(got["status"], "resolved");
        assert_eq!(got["alerts"].as_array().unwrap().len(), 1);
    }
}
