//! Native scraping: the host fetches a target's Prometheus endpoint itself,
//! with Prometheus' scrape options (`scheme`, `metrics_path`, `params`,
//! `tls_config`, `basic_auth`/`authorization`, `body_size_limit`), and parses
//! the text format or OpenMetrics into the same families a plugin returns,
//! so everything after (limits, relabeling, storage, `/metrics`) is shared.

use crate::config::ScrapeConfig;
use crate::runtime::model::{
    Bucket, HistogramValue, Label, Metric, MetricFamily, MetricKind, MetricValue, Quantile, SummaryValue,
};
use crate::runtime::network::AuthHeader;
use crate::scheduler::TargetSpec;
use bytes::Bytes;
use http::{HeaderValue, Request, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::io::Read;
use std::time::Duration;
use wasmon_sdk::text::{self, Format};

pub mod protobuf;
pub mod transcode;

/// What Prometheus 2.x asks for: OpenMetrics first, then the text format.
const ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// Idle connections are reused by the next scrape of the same target.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// One job's HTTP client and scrape options.
pub struct NativeScraper {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    auth: Option<AuthHeader>,
    /// 0 = no limit.
    body_size_limit: usize,
}

impl std::fmt::Debug for NativeScraper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeScraper").field("body_size_limit", &self.body_size_limit).finish_non_exhaustive()
    }
}

/// Why a scrape failed; the message names the URL and what went wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScrapeError {
    #[error("{0}")]
    Request(String),
    #[error("server returned HTTP status {0}")]
    Status(String),
    #[error("body_size_limit of {0} bytes exceeded")]
    BodyTooLarge(usize),
    #[error("{0}")]
    Parse(String),
}

impl NativeScraper {
    pub fn new(job: &ScrapeConfig, timeout: Duration) -> Result<Self, String> {
        let connector = crate::runtime::network::https_connector(job.tls_config.as_ref(), timeout)?;
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(POOL_IDLE_TIMEOUT).build(connector);
        let auth = AuthHeader::from_config(job.basic_auth.as_ref(), job.authorization.as_ref())?;
        Ok(Self { client, auth, body_size_limit: job.body_size_limit.0 as usize })
    }

    /// Scrape `target` once within `timeout`.
    pub async fn scrape(&self, target: &TargetSpec, timeout: Duration) -> Result<Vec<MetricFamily>, ScrapeError> {
        let url = target.url();
        let mut request = Request::get(&url)
            .header(header::ACCEPT, ACCEPT)
            .header(header::ACCEPT_ENCODING, "gzip")
            .header(header::USER_AGENT, crate::remote::client::USER_AGENT)
            .header("x-prometheus-scrape-timeout-seconds", format!("{}", timeout.as_secs_f64()));
        if let Some(auth) = &self.auth {
            request = request.header(header::AUTHORIZATION, auth.value().map_err(ScrapeError::Request)?);
        }
        let request = request.body(Empty::new()).map_err(|e| ScrapeError::Request(format!("{url}: {e}")))?;
        let exchange = async {
            let response =
                self.client.request(request).await.map_err(|e| ScrapeError::Request(describe_client_error(&e)))?;
            let status = response.status();
            if !status.is_success() {
                return Err(ScrapeError::Status(status.to_string()));
            }
            let headers = response.headers().clone();
            let limit = if self.body_size_limit == 0 { usize::MAX } else { self.body_size_limit };
            let body = Limited::new(response.into_body(), limit).collect().await.map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    ScrapeError::BodyTooLarge(limit)
                } else {
                    ScrapeError::Request(format!("reading the body: {e}"))
                }
            })?;
            Ok((headers, body.to_bytes()))
        };
        let (headers, body) = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| ScrapeError::Request(format!("context deadline exceeded after {timeout:?}")))??;
        let gzip = headers.get(header::CONTENT_ENCODING).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
        let body = if gzip { gunzip(&body, self.body_size_limit)? } else { body.to_vec() };
        let text = String::from_utf8(body).map_err(|e| ScrapeError::Parse(format!("body is not UTF-8: {e}")))?;
        let format = content_format(headers.get(header::CONTENT_TYPE));
        let families = text::parse_with(&text, format).map_err(|e| ScrapeError::Parse(e.to_string()))?;
        Ok(families.into_iter().map(from_sdk).collect())
    }
}

/// hyper's errors hide the cause (connection refused, TLS) one level down.
fn describe_client_error(e: &hyper_util::client::legacy::Error) -> String {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// Decompress a gzip body, counting the limit against the decompressed size
/// (a small bomb must not get past `body_size_limit`).
fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, ScrapeError> {
    let limit = if limit == 0 { usize::MAX } else { limit };
    let mut out = Vec::with_capacity(body.len() * 4);
    let mut decoder = flate2::read::GzDecoder::new(body).take((limit as u64).saturating_add(1));
    decoder.read_to_end(&mut out).map_err(|e| ScrapeError::Parse(format!("gzip body: {e}")))?;
    if out.len() > limit {
        return Err(ScrapeError::BodyTooLarge(limit));
    }
    Ok(out)
}

/// The format a `Content-Type` names; the text format when it names none.
fn content_format(content_type: Option<&HeaderValue>) -> Format {
    let value = content_type.and_then(|v| v.to_str().ok()).unwrap_or_default();
    if value.trim_start().to_ascii_lowercase().starts_with("application/openmetrics-text") {
        Format::OpenMetrics
    } else {
        Format::Prometheus
    }
}

/// The SDK's families (what its text parser returns) as the host's: the
/// same WIT types, generated twice.
pub(crate) fn from_sdk(f: wasmon_sdk::MetricFamily) -> MetricFamily {
    use wasmon_sdk::{MetricKind as K, MetricValue as V};
    let kind = match f.kind {
        K::Counter => MetricKind::Counter,
        K::Gauge => MetricKind::Gauge,
        K::Histogram => MetricKind::Histogram,
        K::Summary => MetricKind::Summary,
        K::Info => MetricKind::Info,
        K::Stateset => MetricKind::Stateset,
        K::Unknown => MetricKind::Unknown,
    };
    let metrics = f
        .metrics
        .into_iter()
        .map(|m| Metric {
            labels: m.labels.into_iter().map(|l| Label { name: l.name, value: l.value }).collect(),
            value: match m.value {
                V::Gauge(v) => MetricValue::Gauge(v),
                V::Counter(v) => MetricValue::Counter(v),
                V::Histogram(h) => MetricValue::Histogram(HistogramValue {
                    buckets: h
                        .buckets
                        .into_iter()
                        .map(|b| Bucket { upper_bound: b.upper_bound, count: b.count })
                        .collect(),
                    sum: h.sum,
                    count: h.count,
                }),
                V::Summary(s) => MetricValue::Summary(SummaryValue {
                    quantiles: s
                        .quantiles
                        .into_iter()
                        .map(|q| Quantile { quantile: q.quantile, value: q.value })
                        .collect(),
                    sum: s.sum,
                    count: s.count,
                }),
            },
            timestamp_ms: m.timestamp_ms,
        })
        .collect();
    MetricFamily { name: f.name, help: f.help, unit: f.unit, kind, metrics }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_picks_the_parser() {
        let om = HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8");
        assert_eq!(content_format(Some(&om)), Format::OpenMetrics);
        assert_eq!(content_format(Some(&HeaderValue::from_static("text/plain; version=0.0.4"))), Format::Prometheus);
        assert_eq!(content_format(None), Format::Prometheus);
    }

    #[test]
    fn gzip_limit_counts_decompressed_bytes() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![b'a'; 100_000]).unwrap();
        let small = enc.finish().unwrap();
        assert!(small.len() < 1_000);
        assert_eq!(gunzip(&small, 50_000), Err(ScrapeError::BodyTooLarge(50_000)));
        assert_eq!(gunzip(&small, 0).unwrap().len(), 100_000);
        assert!(matches!(gunzip(b"not gzip", 0), Err(ScrapeError::Parse(_))));
    }
}
