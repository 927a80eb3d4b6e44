//! The host side of `wasmon:plugin/passthrough`: a Prometheus endpoint of
//! the scrape target fetched with the call's `wasi:http` rules, parsed
//! natively (protobuf when the target offers it, else the text format) and
//! added to the call's result, so its lines never cross the component
//! boundary. For `/probe` ([`ProbeText`]) they are written out in the
//! format asked for as they arrive, a protobuf body straight from its bytes.

use super::bindings::wasmon::plugin::passthrough::{Host, ScrapeError};
use super::call::PluginState;
use super::model::MetricFamily;
use super::network::{self, HttpEgress};
use crate::exposition::{self, Format};
use crate::scheduler::validate::validate_after;
use crate::scrape::{protobuf, transcode};
use bytes::Bytes;
use http_body_util::BodyExt;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;
use wasmtime_wasi_http::WasiBody;

/// Most of a non-2xx body quoted in the error, as the SDK's `error_for_status` does.
const STATUS_EXCERPT_CHARS: usize = 200;

impl Host for PluginState {
    async fn scrape(&mut self, path: String) -> Result<Vec<String>, ScrapeError> {
        let request = self.request(&path)?;
        let (content_type, body) = request.fetch().await?;
        let is_protobuf = protobuf::is_protobuf(&content_type);
        if is_protobuf && let Some(probe) = &mut self.probe {
            let mut names = Vec::new();
            if transcode::transcode(&body, probe.format, &mut probe.seen, &mut names, &mut probe.text).is_ok() {
                return Ok(names);
            }
        }
        let families = if is_protobuf {
            protobuf::parse(&body)
                .map_err(|e| ScrapeError::InvalidData(format!("not Prometheus protobuf exposition: {e}")))?
        } else {
            let text = std::str::from_utf8(&body)
                .map_err(|e| ScrapeError::InvalidData(format!("the body is not UTF-8 text ({e})")))?;
            let families = wasmon_sdk::text::parse(text)
                .map_err(|e| ScrapeError::InvalidData(format!("not Prometheus text: {e}")))?;
            families.into_iter().map(crate::scrape::from_sdk).collect()
        };
        let names = families.iter().map(|f| f.name.clone()).collect();
        match &mut self.probe {
            Some(probe) => probe.write(families),
            None => self.passthrough.extend(families),
        }
        Ok(names)
    }
}

/// What a `/probe` call has to show so far: its families validated and
/// written in one format, the passed-through ones first.
pub(crate) struct ProbeText {
    format: Format,
    text: String,
    /// The names of the families so far, for validation's duplicate check.
    seen: HashSet<String>,
}

impl ProbeText {
    pub(crate) fn new(format: Format) -> Self {
        ProbeText { format, text: String::with_capacity(64 * 1024), seen: HashSet::new() }
    }

    /// Validate `families` behind the ones so far and write what is kept.
    pub(crate) fn write(&mut self, families: Vec<MetricFamily>) {
        let (kept, _) = validate_after(families, &mut self.seen);
        exposition::write_families(&mut self.text, &kept, self.format);
    }

    /// The whole exposition (with `# EOF` for OpenMetrics).
    pub(crate) fn finish(mut self) -> String {
        exposition::end_exposition(&mut self.text, self.format);
        self.text
    }
}

/// A `GET` checked and rewritten by the call's HTTP hooks, with what sending it needs.
struct Fetch {
    egress: Arc<HttpEgress>,
    request: http::Request<WasiBody>,
    deadline: Instant,
    plugin: Arc<str>,
    target: String,
    limit: usize,
}

impl PluginState {
    /// `GET path` on the target through the call's HTTP hooks: capability,
    /// target, scheme, TLS, credentials and deadline as for `wasi:http`.
    fn request(&self, path: &str) -> Result<Fetch, ScrapeError> {
        let hooks = &self.http_hooks;
        if hooks.egress.is_none() {
            return Err(ScrapeError::Denied(
                "the job does not grant the http capability (capabilities: {http: true})".into(),
            ));
        }
        if !path.starts_with('/') || path.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
            return Err(ScrapeError::InvalidRequest(format!(
                "{path:?} is not a request path: it must start with `/` and have no blanks"
            )));
        }
        let empty = http_body_util::Empty::<Bytes>::new().map_err(|e| match e {}).boxed_unsync();
        // Servers with protobuf (Go's client library) then skip the text
        // encoding, and the host the text parsing: both cost more.
        let request = http::Request::get(format!("http://{}{path}", hooks.target))
            .header(http::header::ACCEPT, protobuf::ACCEPT_PROTOBUF_FIRST)
            .body(empty)
            .map_err(|e| ScrapeError::InvalidRequest(format!("{path:?}: {e}")))?;
        let (egress, request) =
            hooks.prepare(request).map_err(|e| ScrapeError::Denied(format!("the host refused the request ({e:?})")))?;
        Ok(Fetch {
            egress,
            request,
            deadline: hooks.deadline,
            plugin: hooks.plugin.clone(),
            target: hooks.target.to_string(),
            limit: usize::try_from(self.sandbox.memory_bytes).unwrap_or(usize::MAX),
        })
    }
}

impl Fetch {
    /// Send the request and read the whole body of a 2xx answer, with its
    /// `Content-Type` (empty when there is none).
    async fn fetch(self) -> Result<(String, Bytes), ScrapeError> {
        let Fetch { egress, request, deadline, plugin, target, limit } = self;
        let response = network::send(&egress, request, deadline, &plugin, &target)
            .await
            .map_err(|(code, reason)| ScrapeError::Unavailable(format!("{reason} ({})", error_code_name(&code))))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let read = http_body_util::Limited::new(response.into_body(), limit).collect();
        let body = match tokio::time::timeout_at(deadline.into(), read).await {
            Err(_) => return Err(ScrapeError::Unavailable("the body did not arrive before the scrape timeout".into())),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                return Err(ScrapeError::InvalidData(format!(
                    "the response body is larger than the call's memory limit of {limit} bytes"
                )));
            }
            Ok(Err(e)) => return Err(ScrapeError::Unavailable(format!("reading the body: {e}"))),
            Ok(Ok(collected)) => collected.to_bytes(),
        };
        if !(200..300).contains(&status) {
            let excerpt: String = String::from_utf8_lossy(&body).chars().take(STATUS_EXCERPT_CHARS).collect();
            return Err(ScrapeError::Status((status, excerpt.trim().to_string())));
        }
        Ok((content_type, body))
    }
}

/// The `wasi:http` `error-code` case of the errors a send returns, spelt as in WIT.
fn error_code_name(code: &wasmtime_wasi_http::Error) -> &'static str {
    use wasmtime_wasi_http::Error as E;
    match code {
        E::ConnectionRefused => "connection-refused",
        E::ConnectionTimeout => "connection-timeout",
        E::ConnectionTerminated => "connection-terminated",
        E::TlsCertificateError => "TLS-certificate-error",
        E::TlsAlertReceived { .. } => "TLS-alert-received",
        E::TlsProtocolError => "TLS-protocol-error",
        E::HttpRequestDenied => "HTTP-request-denied",
        _ => "internal-error",
    }
}
