//! The HTTP(S) side shared by the Loki, Elasticsearch and OTLP sinks: a pooled
//! hyper client with rustls (ring), static headers and credentials.

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub const USER_AGENT: &str = concat!("wasmon-logs/", env!("CARGO_PKG_VERSION"));
/// Responses are read for their verdict (bulk items, partial success); bigger ones are cut off.
const MAX_RESPONSE_BYTES: usize = 64 << 20;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM roots to trust instead of the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM), both or neither.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// The name to verify instead of the URL's host.
    #[serde(default)]
    pub server_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    /// Resolved by the host (file, env, Kubernetes Secret) before it builds the pipeline.
    pub password: String,
}

/// Settings every HTTP sink has.
#[derive(Debug, Clone)]
pub(crate) struct HttpSettings<'a> {
    pub url: &'a str,
    pub headers: &'a BTreeMap<String, String>,
    pub basic_auth: Option<&'a BasicAuth>,
    pub bearer_token: Option<&'a str>,
    pub tls: Option<&'a TlsConfig>,
    pub timeout: Duration,
}

pub(crate) struct HttpTarget {
    url: http::Uri,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    headers: Vec<(HeaderName, HeaderValue)>,
    timeout: Duration,
}

pub(crate) struct Response {
    pub status: http::StatusCode,
    pub retry_after: Option<Duration>,
    pub body: Bytes,
}

impl HttpTarget {
    pub fn new(s: &HttpSettings<'_>) -> Result<Self, String> {
        let url: http::Uri = s.url.parse().map_err(|e| format!("url {:?}: {e}", s.url))?;
        if !matches!(url.scheme_str(), Some("http" | "https")) || url.host().is_none() {
            return Err(format!("url {:?}: needs http:// or https:// and a host", s.url));
        }
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(s.timeout));
        let default_tls = TlsConfig::default();
        let tls = s.tls.unwrap_or(&default_tls);
        let builder = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(client_config(tls)?).https_or_http();
        let builder = match &tls.server_name {
            Some(name) => {
                let name = rustls::pki_types::ServerName::try_from(name.clone())
                    .map_err(|e| format!("tls.server_name {name:?}: {e}"))?;
                builder.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name))
            }
            None => builder,
        };
        let connector = builder.enable_http1().wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(90)).build(connector);
        let mut headers = Vec::new();
        for (n, v) in s.headers {
            let name = HeaderName::from_bytes(n.as_bytes()).map_err(|e| format!("header {n:?}: {e}"))?;
            let value = HeaderValue::from_str(v).map_err(|e| format!("header {n:?}: {e}"))?;
            headers.push((name, value));
        }
        let auth = match (s.basic_auth, s.bearer_token) {
            (Some(_), Some(_)) => return Err("basic_auth and bearer_token are mutually exclusive".into()),
            (Some(b), None) => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", b.username, b.password))
            )),
            (None, Some(t)) => Some(format!("Bearer {t}")),
            (None, None) => None,
        };
        if let Some(a) = auth {
            let mut v = HeaderValue::from_str(&a).map_err(|_| "credentials contain invalid characters".to_string())?;
            v.set_sensitive(true);
            headers.push((header::AUTHORIZATION, v));
        }
        Ok(Self { url, client, headers, timeout: s.timeout })
    }

    /// POSTs `body`; `Err` is a transport failure (connect, timeout) worth retrying.
    pub async fn post(
        &self,
        body: Bytes,
        content_type: &'static str,
        content_encoding: Option<&'static str>,
    ) -> Result<Response, String> {
        let mut req = Request::post(self.url.clone());
        if let Some(h) = req.headers_mut() {
            for (n, v) in &self.headers {
                h.insert(n.clone(), v.clone());
            }
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            if let Some(enc) = content_encoding {
                h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(enc));
            }
            h.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        }
        let req = req.body(Full::new(body)).map_err(|e| format!("cannot build request: {e}"))?;
        let exchange = async {
            let resp = self.client.request(req).await.map_err(|e| format!("request failed: {e}"))?;
            let status = resp.status();
            let retry_after = retry_after(resp.headers(), std::time::SystemTime::now());
            let body = Limited::new(resp.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .map_err(|e| format!("reading the response: {e}"))?;
            Ok::<_, String>(Response { status, retry_after, body })
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
        }
    }
}

/// A response's `Retry-After`, in either of its forms (RFC 9110 §10.2.3):
/// seconds, or an HTTP-date, which counts from `now` (a date already past
/// is no wait). Unreadable values are ignored, as by Prometheus.
pub fn retry_after(headers: &::http::HeaderMap, now: std::time::SystemTime) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

fn client_config(tls: &TlsConfig) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let mut roots = rustls::RootCertStore::empty();
    match &tls.ca_file {
        Some(ca) => {
            let certs = CertificateDer::pem_file_iter(ca)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("tls.ca_file {}: {e}", ca.display()))?;
            if certs.is_empty() {
                return Err(format!("tls.ca_file {}: no PEM certificate in it", ca.display()));
            }
            for c in certs {
                roots.add(c).map_err(|e| format!("tls.ca_file {}: {e}", ca.display()))?;
            }
        }
        None => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
    }
    let builder = builder.with_root_certificates(roots);
    match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            let certs = CertificateDer::pem_file_iter(cert)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("tls.cert_file {}: {e}", cert.display()))?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("tls.key_file {}: {e}", key.display()))?;
            builder.with_client_auth_cert(certs, key).map_err(|e| format!("tls client certificate: {e}"))
        }
        (None, None) => Ok(builder.with_no_client_auth()),
        _ => Err("tls.cert_file and tls.key_file go together".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    fn with(value: &str) -> ::http::HeaderMap {
        let mut h = ::http::HeaderMap::new();
        h.insert(header::RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        // Wed, 21 Oct 2015 07:28:00 GMT
        let date = UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        let now = date - Duration::from_secs(90);
        assert_eq!(retry_after(&with(" 120 "), now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(&with("Wed, 21 Oct 2015 07:28:00 GMT"), now), Some(Duration::from_secs(90)));
        assert_eq!(
            retry_after(&with("Wed, 21 Oct 2015 07:28:00 GMT"), date + Duration::from_secs(5)),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&with("soon"), now), None);
        assert_eq!(retry_after(&with("-1"), now), None);
        assert_eq!(retry_after(&::http::HeaderMap::new(), SystemTime::now()), None);
    }
}
