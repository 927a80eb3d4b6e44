//! The HTTP side of one remote-write endpoint: TLS, credentials, the
//! protocol's headers, and classifying answers into sent / retry / drop.

use crate::config::RemoteWriteConfig;
use crate::runtime::network::AuthHeader;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Why an endpoint's client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("remote_write {name}: invalid url {url:?}")]
    Url { name: String, url: String },
    #[error("remote_write {name}: {message}")]
    Tls { name: String, message: String },
    #[error("remote_write {name}: {message}")]
    Credentials { name: String, message: String },
}

/// The outcome of one request.
#[derive(Debug, Clone, PartialEq)]
pub enum SendOutcome {
    Sent,
    /// 5xx, 429 (when retried), timeouts and connection errors: try again.
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Other non-2xx answers: the receiver will never take this batch.
    Drop {
        status: u16,
        reason: String,
    },
}

/// A pooled HTTP(S) client for one endpoint.
pub struct RemoteClient {
    url: http::Uri,
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    headers: Vec<(HeaderName, HeaderValue)>,
    auth: Option<AuthHeader>,
    timeout: Duration,
    retry_on_429: bool,
}

impl std::fmt::Debug for RemoteClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteClient").field("url", &self.url).finish_non_exhaustive()
    }
}

pub const USER_AGENT: &str = concat!("wasmon/", env!("CARGO_PKG_VERSION"));

impl RemoteClient {
    pub fn new(config: &RemoteWriteConfig) -> Result<Self, ClientError> {
        let name = config.queue_name();
        let url: http::Uri =
            config.url.parse().map_err(|_| ClientError::Url { name: name.clone(), url: config.url.clone() })?;
        let connector = crate::runtime::network::https_connector(config.tls_config.as_ref(), config.remote_timeout.0)
            .map_err(|message| ClientError::Tls { name: name.clone(), message })?;
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(90)).build(connector);
        // Validation already refused bad or reserved headers; skip any that
        // slipped through rather than fail at runtime.
        let headers = config
            .headers
            .iter()
            .filter_map(|(n, v)| Some((HeaderName::from_bytes(n.as_bytes()).ok()?, HeaderValue::from_str(v).ok()?)))
            .collect();
        let auth = AuthHeader::from_config(config.basic_auth.as_ref(), config.authorization.as_ref())
            .map_err(|message| ClientError::Credentials { name: name.clone(), message })?;
        Ok(Self {
            url,
            http: client,
            headers,
            auth,
            timeout: config.remote_timeout.0,
            retry_on_429: config.queue_config.retry_on_http_429,
        })
    }

    /// POSTs one snappy-compressed `WriteRequest`.
    pub async fn send(&self, body: Bytes) -> SendOutcome {
        let mut req = Request::post(self.url.clone());
        if let Some(h) = req.headers_mut() {
            for (n, v) in &self.headers {
                h.insert(n.clone(), v.clone());
            }
            // Set last so configured headers can never replace them.
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("snappy"));
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-protobuf"));
            h.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
            h.insert("x-prometheus-remote-write-version", HeaderValue::from_static("0.1.0"));
            if let Some(auth) = &self.auth {
                match auth.value() {
                    Ok(v) => {
                        h.insert(header::AUTHORIZATION, v);
                    }
                    // A missing credential file may appear later (secret mounts).
                    Err(e) => return SendOutcome::Retry { reason: e, retry_after: None },
                }
            }
        }
        let req = match req.body(Full::new(body)) {
            Ok(r) => r,
            Err(e) => return SendOutcome::Drop { status: 0, reason: format!("cannot build request: {e}") },
        };
        let exchange = async {
            let resp = self.http.request(req).await.map_err(|e| format!("request failed: {e}"))?;
            let status = resp.status();
            let retry_after = wasmon_logs::sinks::http::retry_after(resp.headers(), std::time::SystemTime::now());
            // The spec says the body is ignored; read a little for the log.
            let body = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let text = String::from_utf8_lossy(&body[..body.len().min(256)]).trim().to_string();
            Ok::<_, String>((status, retry_after, text))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => SendOutcome::Retry { reason: format!("no answer within {:?}", self.timeout), retry_after: None },
            Ok(Err(reason)) => SendOutcome::Retry { reason, retry_after: None },
            Ok(Ok((status, retry_after, text))) => classify(status, retry_after, text, self.retry_on_429),
        }
    }
}

/// Remote-write 1.0: retry 5xx (and 429 if enabled), never other 4xx.
fn classify(status: StatusCode, retry_after: Option<Duration>, text: String, retry_on_429: bool) -> SendOutcome {
    if status.is_success() {
        SendOutcome::Sent
    } else if status.is_server_error() || (status == StatusCode::TOO_MANY_REQUESTS && retry_on_429) {
        SendOutcome::Retry { reason: format!("{status}: {text}"), retry_after }
    } else {
        SendOutcome::Drop { status: status.as_u16(), reason: format!("{status}: {text}") }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_spec() {
        let c = |s: u16, retry_429| classify(StatusCode::from_u16(s).unwrap(), None, String::new(), retry_429);
        assert_eq!(c(204, true), SendOutcome::Sent);
        assert!(matches!(c(503, true), SendOutcome::Retry { .. }));
        assert!(matches!(c(500, false), SendOutcome::Retry { .. }));
        assert!(matches!(c(429, true), SendOutcome::Retry { .. }));
        assert!(matches!(c(429, false), SendOutcome::Drop { status: 429, .. }));
        assert!(matches!(c(400, true), SendOutcome::Drop { status: 400, .. }));
        assert!(matches!(c(404, true), SendOutcome::Drop { status: 404, .. }));
    }
}
