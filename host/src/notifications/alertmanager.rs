//! Sending alerts to Alertmanagers' v2 API the way Prometheus' notifier
//! does: one bounded queue (oldest dropped and counted when full), batches
//! of up to 64 alerts POSTed to every configured Alertmanager, external
//! labels added. A failed send is counted and logged, not retried here: the
//! rule manager re-sends active alerts every resend delay, which is what
//! Alertmanager expects of its clients.

use crate::alerting::{AlertSink, OutgoingAlert};
use crate::config::AlertmanagerConfig;
use crate::runtime::network::AuthHeader;
use crate::telemetry::Telemetry;
use bytes::Bytes;
use http::{HeaderValue, Request, header};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Prometheus' defaults: `--alertmanager.notification-queue-capacity` and
/// the batch size of one request.
pub const QUEUE_CAPACITY: usize = 10_000;
pub const MAX_BATCH: usize = 64;

/// The JSON array of a `POST /api/v2/alerts` body.
pub fn encode_alerts(alerts: &[OutgoingAlert]) -> String {
    let map = |m: &BTreeMap<String, String>| serde_json::to_string(m).unwrap_or_else(|_| "{}".into());
    let mut out = String::from("[");
    for (i, a) in alerts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            r#"{{"labels":{},"annotations":{},"startsAt":"{}","endsAt":"{}","generatorURL":{}}}"#,
            map(&a.labels),
            map(&a.annotations),
            rfc3339(a.starts_at_ms),
            rfc3339(a.ends_at_ms),
            serde_json::to_string(&a.generator_url).unwrap_or_else(|_| "\"\"".into())
        );
    }
    out.push(']');
    out
}

/// RFC 3339 with milliseconds in UTC, as Alertmanager accepts and prints.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".into())
}

struct Endpoint {
    url: http::Uri,
    label: String,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    auth: Option<AuthHeader>,
    timeout: Duration,
}

/// The queue and its sender task; clone freely.
#[derive(Clone)]
pub struct AlertmanagerNotifier {
    inner: Arc<Inner>,
}

struct Inner {
    queue: Mutex<VecDeque<OutgoingAlert>>,
    wake: Notify,
    endpoints: Vec<Endpoint>,
    external_labels: BTreeMap<String, String>,
    telemetry: Arc<Telemetry>,
}

const HELP_SENT: &str = "Alerts sent to an Alertmanager, by Alertmanager.";
const HELP_ERRORS: &str = "Alerts whose sending to an Alertmanager failed, by Alertmanager.";
const HELP_DROPPED: &str = "Alerts dropped because the notification queue was full.";
const HELP_QUEUE: &str = "Alerts waiting in the notification queue.";

impl AlertmanagerNotifier {
    /// Build clients for every Alertmanager; `None` when none is configured.
    pub fn new(
        configs: &[AlertmanagerConfig],
        external_labels: &BTreeMap<String, String>,
        telemetry: Arc<Telemetry>,
    ) -> Result<Option<Self>, String> {
        let mut endpoints = Vec::new();
        for (i, config) in configs.iter().enumerate() {
            let at = format!("alerting.alertmanagers[{i}]");
            let connector = crate::runtime::network::https_connector(config.tls_config.as_ref(), config.timeout.0)
                .map_err(|e| format!("{at}: {e}"))?;
            let client = Client::builder(TokioExecutor::new()).build(connector);
            let auth = AuthHeader::from_config(config.basic_auth.as_ref(), config.authorization.as_ref())
                .map_err(|e| format!("{at}: {e}"))?;
            for url in config.alert_urls() {
                let parsed: http::Uri = url.parse().map_err(|e| format!("{at}: {url:?} is not a URL: {e}"))?;
                let label = parsed.authority().map(|a| a.to_string()).unwrap_or_else(|| url.clone());
                telemetry.touch("wasmon_notifications_sent_total", HELP_SENT, &[("alertmanager", &label)]);
                telemetry.touch("wasmon_notifications_errors_total", HELP_ERRORS, &[("alertmanager", &label)]);
                endpoints.push(Endpoint {
                    url: parsed,
                    label,
                    client: client.clone(),
                    auth: auth.clone(),
                    timeout: config.timeout.0,
                });
            }
        }
        if endpoints.is_empty() {
            return Ok(None);
        }
        telemetry.touch("wasmon_notifications_dropped_total", HELP_DROPPED, &[]);
        Ok(Some(Self {
            inner: Arc::new(Inner {
                queue: Mutex::new(VecDeque::new()),
                wake: Notify::new(),
                endpoints,
                external_labels: external_labels.clone(),
                telemetry,
            }),
        }))
    }

    /// Queue alerts for sending; external labels are added unless the alert
    /// has the label already.
    pub fn enqueue(&self, alerts: Vec<OutgoingAlert>) {
        let mut dropped = 0usize;
        {
            let mut queue = self.inner.queue.lock().unwrap_or_else(|p| p.into_inner());
            for mut alert in alerts {
                for (k, v) in &self.inner.external_labels {
                    alert.labels.entry(k.clone()).or_insert_with(|| v.clone());
                }
                queue.push_back(alert);
            }
            while queue.len() > QUEUE_CAPACITY {
                queue.pop_front();
                dropped += 1;
            }
            self.inner.telemetry.set("wasmon_notifications_queue_length", HELP_QUEUE, &[], queue.len() as f64);
        }
        if dropped > 0 {
            self.inner.telemetry.inc("wasmon_notifications_dropped_total", HELP_DROPPED, &[], dropped as f64);
            tracing::warn!(dropped, "notification queue full; oldest alerts dropped");
        }
        self.inner.wake.notify_one();
    }

    /// Run the sender until the runtime stops.
    pub fn start(&self) -> tokio::task::JoinHandle<()> {
        let inner = self.inner.clone();
        tokio::spawn(async move {
            loop {
                let batch: Vec<OutgoingAlert> = {
                    let mut queue = inner.queue.lock().unwrap_or_else(|p| p.into_inner());
                    let n = queue.len().min(MAX_BATCH);
                    let batch = queue.drain(..n).collect();
                    inner.telemetry.set("wasmon_notifications_queue_length", HELP_QUEUE, &[], queue.len() as f64);
                    batch
                };
                if batch.is_empty() {
                    inner.wake.notified().await;
                    continue;
                }
                let body = Bytes::from(encode_alerts(&batch));
                // Every Alertmanager at once, so a slow one does not delay the others.
                let sends: Vec<_> = (0..inner.endpoints.len())
                    .map(|i| {
                        let (inner, body) = (inner.clone(), body.clone());
                        tokio::spawn(async move { send(&inner.endpoints[i], body).await })
                    })
                    .collect();
                for (endpoint, handle) in inner.endpoints.iter().zip(sends) {
                    let result = handle.await.unwrap_or_else(|e| Err(format!("send task failed: {e}")));
                    let labels = [("alertmanager", endpoint.label.as_str())];
                    match result {
                        Ok(()) => inner.telemetry.inc(
                            "wasmon_notifications_sent_total",
                            HELP_SENT,
                            &labels,
                            batch.len() as f64,
                        ),
                        Err(e) => {
                            inner.telemetry.inc(
                                "wasmon_notifications_errors_total",
                                HELP_ERRORS,
                                &labels,
                                batch.len() as f64,
                            );
                            tracing::warn!(alertmanager = %endpoint.url, alerts = batch.len(), error = %e, "sending alerts failed");
                        }
                    }
                }
            }
        })
    }
}

impl AlertSink for AlertmanagerNotifier {
    fn send(&self, alerts: Vec<OutgoingAlert>) {
        self.enqueue(alerts);
    }
}

async fn send(endpoint: &Endpoint, body: Bytes) -> Result<(), String> {
    let mut req = Request::post(endpoint.url.clone());
    if let Some(h) = req.headers_mut() {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(header::USER_AGENT, HeaderValue::from_static(crate::remote::client::USER_AGENT));
        if let Some(auth) = &endpoint.auth {
            h.insert(header::AUTHORIZATION, auth.value()?);
        }
    }
    let req = req.body(Full::new(body)).map_err(|e| format!("cannot build request: {e}"))?;
    let exchange = async {
        let resp = endpoint.client.request(req).await.map_err(|e| format!("request failed: {e}"))?;
        let status = resp.status();
        let text = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("{status}: {}", String::from_utf8_lossy(&text[..text.len().min(256)]).trim()))
        }
    };
    match tokio::time::timeout(endpoint.timeout, exchange).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {:?}", endpoint.timeout)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_alertmanager_v2_alerts() {
        let alert = OutgoingAlert {
            labels: BTreeMap::from([("alertname".into(), "Down".into()), ("job".into(), "node".into())]),
            annotations: BTreeMap::from([("summary".into(), "it \"broke\"".into())]),
            starts_at_ms: 1_700_000_000_123,
            ends_at_ms: 1_700_000_240_000,
            generator_url: "http://x/graph?g0.expr=up".into(),
        };
        let json: serde_json::Value = serde_json::from_str(&encode_alerts(&[alert])).unwrap();
        assert_eq!(json[0]["labels"]["alertname"], "Down");
        assert_eq!(json[0]["annotations"]["summary"], "it \"broke\"");
        assert_eq!(json[0]["startsAt"], "2023-11-14T22:13:20.123Z");
        assert_eq!(json[0]["endsAt"], "2023-11-14T22:17:20.000Z");
        assert_eq!(json[0]["generatorURL"], "http://x/graph?g0.expr=up");
    }
}
