//! A small blocking HTTP client for plugins that scrape an HTTP endpoint of their target.
//!
//! Inside wasm every request goes through `wasi:http/outgoing-handler`, so the host decides
//! where it may go (the scrape target only, when the job grants the `http` capability) and
//! how: with `scheme: https` in the job an `http://` URL goes out as HTTPS with the job's
//! `tls_config`, and `basic_auth`/`authorization` are added by the host. A plugin therefore
//! always builds plain `http://` URLs with [`target_url`] and never handles keys, certificates
//! or credentials; setting the `authorization` header is refused.
//!
//! In native builds (unit and live tests) the same API is a minimal HTTP/1.1 client over
//! [`std::net::TcpStream`] that speaks plain `http://` only, so plugin logic runs against
//! real servers with `cargo test`.
//!
//! ```no_run
//! use wasmon_sdk::{PluginError, Target, http};
//!
//! fn stub_status(target: &Target) -> Result<String, PluginError> {
//!     let url = http::target_url(target, "/stub_status");
//!     let response = http::get(&url)?.error_for_status()?;
//!     Ok(response.text()?.to_string())
//! }
//!
//! // A POST with a JSON body and a header:
//! let status = http::Request::post("http://127.0.0.1:2379/v3/maintenance/status")
//!     .header("content-type", "application/json")
//!     .body("{}")
//!     .send()?;
//! # Ok::<(), http::HttpError>(())
//! ```
//!
//! Errors ([`HttpError`]) say which request failed and why, with the `wasi:http` error code
//! where there is one (`connection-refused`, `HTTP-request-denied`, `TLS-certificate-error`,
//! ...), and convert into [`PluginError`] with `?`.

use crate::{PluginError, Target};
use std::fmt;

#[cfg(target_arch = "wasm32")]
mod component;
#[cfg(not(target_arch = "wasm32"))]
mod native;

/// Bodies larger than this are refused unless [`Request::max_body_bytes`] says otherwise.
/// The host caps a plugin's memory (64 MiB by default), so a larger body could not be held anyway.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 << 20;

/// Headers a plugin may not set. The host adds credentials itself (`authorization`), owns the
/// connection (the hop-by-hop headers and `host`, as `wasi:http` forbids them), and
/// `content-length` is derived from the body.
const FORBIDDEN_HEADERS: [&str; 11] = [
    "authorization",
    "connection",
    "content-length",
    "host",
    "http2-settings",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

/// The URL of `path` on the scrape target: `http://{target.address}{path}`.
///
/// Always `http://`: when the job says `scheme: https`, the host sends the request as HTTPS
/// with the job's TLS settings.
///
/// ```
/// use wasmon_sdk::{Target, http};
/// assert_eq!(http::target_url(&Target::named("127.0.0.1:8080"), "/stub_status"), "http://127.0.0.1:8080/stub_status");
/// assert_eq!(http::target_url(&Target::named("[::1]:2379"), "health"), "http://[::1]:2379/health");
/// ```
pub fn target_url(target: &Target, path: &str) -> String {
    let slash = if path.starts_with('/') { "" } else { "/" };
    format!("http://{}{slash}{path}", target.address)
}

/// `GET url` with no extra headers.
pub fn get(url: &str) -> Result<Response, HttpError> {
    Request::get(url).send()
}

/// Send several requests at once and wait for all of them; results come back in the
/// order given. Inside wasm the host runs them concurrently, so a scrape that needs three
/// endpoints waits for the slowest, not for the sum. (Natively they run one after another.)
pub fn send_all(requests: Vec<Request>) -> Vec<Result<Response, HttpError>> {
    start_all(requests).wait()
}

/// Send several requests and come back at once, to do other work (such as a
/// [`passthrough`](crate::passthrough) scrape) while the host runs them; [`Pending::wait`]
/// then reads the responses, in the order given. (Natively they are sent in `wait`.)
///
/// ```no_run
/// use wasmon_sdk::{Target, http};
///
/// let target = Target::named("127.0.0.1:2379");
/// let pending = http::start_all(vec![http::Request::get(&http::target_url(&target, "/health"))]);
/// // ... something else that waits on the network ...
/// let responses = pending.wait();
/// ```
pub fn start_all(requests: Vec<Request>) -> Pending {
    #[cfg(target_arch = "wasm32")]
    {
        let started = requests.iter().map(|r| r.prepare().and_then(|url| component::start(r, &url))).collect();
        Pending { requests, started }
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        Pending { requests }
    }
}

/// Requests [`start_all`] sent, whose responses are not read yet.
pub struct Pending {
    requests: Vec<Request>,
    #[cfg(target_arch = "wasm32")]
    started: Vec<Result<wasi::http::types::FutureIncomingResponse, HttpError>>,
}

impl Pending {
    /// Wait for every response and read it; results come back in the order given.
    pub fn wait(self) -> Vec<Result<Response, HttpError>> {
        #[cfg(target_arch = "wasm32")]
        {
            let Pending { requests, started } = self;
            requests.iter().zip(started).map(|(r, future)| future.and_then(|f| component::finish(r, &f))).collect()
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            self.requests.into_iter().map(Request::send).collect()
        }
    }
}

impl fmt::Debug for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pending").field("requests", &self.requests.len()).finish()
    }
}

/// An HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Patch,
    Options,
}

impl Method {
    /// The method as it is written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
            Method::Options => "OPTIONS",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request to build and [`send`](Request::send).
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    max_body_bytes: usize,
}

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: Method, url: &str) -> Self {
        Self { method, url: url.into(), headers: Vec::new(), body: Vec::new(), max_body_bytes: DEFAULT_MAX_BODY_BYTES }
    }
    /// A `GET` request.
    pub fn get(url: &str) -> Self {
        Self::new(Method::Get, url)
    }
    /// A `POST` request; add the body with [`body`](Request::body).
    pub fn post(url: &str) -> Self {
        Self::new(Method::Post, url)
    }
    /// Change the method.
    pub fn method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }
    /// Add a header. Names are case-insensitive; [`send`](Request::send) refuses the ones the
    /// host owns (`authorization`, `host`, `content-length`, hop-by-hop headers).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }
    /// Set the body; `content-length` is set from it.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
    /// Refuse response bodies larger than `bytes` (default [`DEFAULT_MAX_BODY_BYTES`]).
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Send the request and read the whole response. Any status is a response here; use
    /// [`Response::error_for_status`] to treat non-2xx as an error.
    pub fn send(self) -> Result<Response, HttpError> {
        let url = self.prepare()?;
        #[cfg(target_arch = "wasm32")]
        return component::send(&self, &url);
        #[cfg(not(target_arch = "wasm32"))]
        return native::send(&self, &url);
    }

    /// The parsed URL, after checking that no header is one the host owns.
    fn prepare(&self) -> Result<Url, HttpError> {
        let url = Url::parse(&self.url).map_err(|detail| self.error(HttpErrorKind::InvalidRequest, None, detail))?;
        self.check_headers()?;
        Ok(url)
    }

    fn check_headers(&self) -> Result<(), HttpError> {
        for (name, value) in &self.headers {
            let detail = if FORBIDDEN_HEADERS.contains(&name.as_str()) {
                format!("header `{name}` may not be set by a plugin: the host sets it")
            } else if name.is_empty() || !name.bytes().all(is_token_byte) {
                format!("invalid header name {name:?}")
            } else if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                format!("header `{name}` has a line break or NUL in its value")
            } else {
                continue;
            };
            return Err(self.error(HttpErrorKind::InvalidRequest, None, detail));
        }
        Ok(())
    }

    fn error(&self, kind: HttpErrorKind, code: Option<&str>, detail: impl Into<String>) -> HttpError {
        HttpError {
            method: self.method,
            url: self.url.clone(),
            kind,
            code: code.map(String::from),
            detail: detail.into(),
        }
    }
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A whole response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The method and URL that were requested.
    pub method: Method,
    pub url: String,
    pub status: u16,
    /// Header names in lower case, in the order received; values decoded lossily as UTF-8.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// True for 2xx statuses.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<&str, HttpError> {
        std::str::from_utf8(&self.body).map_err(|e| HttpError {
            method: self.method,
            url: self.url.clone(),
            kind: HttpErrorKind::InvalidData,
            code: None,
            detail: format!("the body is not UTF-8 text ({e})"),
        })
    }

    /// `Ok(self)` for 2xx statuses, otherwise an [`HttpErrorKind::Status`] error that quotes the
    /// start of the body (servers usually say there what went wrong).
    pub fn error_for_status(self) -> Result<Self, HttpError> {
        if self.is_success() {
            return Ok(self);
        }
        let excerpt: String = String::from_utf8_lossy(&self.body).chars().take(200).collect();
        let excerpt = excerpt.trim();
        let detail = if excerpt.is_empty() {
            format!("HTTP status {}", self.status)
        } else {
            format!("HTTP status {}: {excerpt:?}", self.status)
        };
        Err(HttpError {
            method: self.method,
            url: self.url,
            kind: HttpErrorKind::Status(self.status),
            code: None,
            detail,
        })
    }
}

/// What kind of failure an [`HttpError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpErrorKind {
    /// The request itself is wrong: a bad URL, a forbidden or invalid header. A plugin bug.
    InvalidRequest,
    /// The host refused the request (`HTTP-request-denied`): the job does not grant the `http`
    /// capability, or the URL is not the scrape target's.
    Denied,
    /// The target could not be reached: refused, DNS failure, connection reset, ...
    Unreachable,
    /// No answer in time.
    Timeout,
    /// The TLS handshake failed (the host does TLS; check the job's `tls_config`).
    Tls,
    /// The response broke HTTP, or the connection dropped in the middle of it.
    Protocol,
    /// The body is larger than the request's limit.
    BodyTooLarge,
    /// A non-2xx status, from [`Response::error_for_status`].
    Status(u16),
    /// The body is not what was expected (not UTF-8, from [`Response::text`]).
    InvalidData,
    /// Anything else, such as an internal error of the host.
    Other,
}

/// Why a request failed, and which one.
///
/// Displays as `METHOD URL: what went wrong (wasi-error-code)`, for example
/// `GET http://127.0.0.1:8080/stub_status: connection refused (connection-refused)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    method: Method,
    url: String,
    kind: HttpErrorKind,
    code: Option<String>,
    detail: String,
}

impl HttpError {
    /// The kind of failure.
    pub fn kind(&self) -> HttpErrorKind {
        self.kind
    }
    /// The URL of the failed request.
    pub fn url(&self) -> &str {
        &self.url
    }
    /// The `wasi:http` `error-code` case, spelt as in WIT (`connection-refused`,
    /// `HTTP-request-denied`, `TLS-certificate-error`), when there is one. Native builds use
    /// the same names for the same failures.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// An error about `GET url`, for the SDK's own modules.
    pub(crate) fn get_failed(url: &str, kind: HttpErrorKind, code: Option<&str>, detail: String) -> Self {
        HttpError { method: Method::Get, url: url.into(), kind, code: code.map(String::from), detail }
    }

    /// An error of the plugin's own about a request to `url` (kind [`HttpErrorKind::Other`]).
    pub fn other(url: &str, detail: impl Into<String>) -> Self {
        HttpError {
            method: Method::Get,
            url: url.into(),
            kind: HttpErrorKind::Other,
            code: None,
            detail: detail.into(),
        }
    }

    /// The matching [`PluginError`]: `permission-denied` when the host refused the request,
    /// `internal` for a malformed request, `invalid-data` for a response that cannot be read,
    /// `unavailable` otherwise.
    pub fn to_plugin_error(&self) -> PluginError {
        let message = self.to_string();
        match self.kind {
            HttpErrorKind::Denied => PluginError::permission_denied(format!(
                "{message}: the job must grant the `http` capability, and only the scrape target may be reached"
            )),
            HttpErrorKind::InvalidRequest => PluginError::internal(message),
            HttpErrorKind::Protocol | HttpErrorKind::BodyTooLarge | HttpErrorKind::InvalidData => {
                PluginError::invalid_data(message)
            }
            HttpErrorKind::Unreachable
            | HttpErrorKind::Timeout
            | HttpErrorKind::Tls
            | HttpErrorKind::Status(_)
            | HttpErrorKind::Other => PluginError::unavailable(message),
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.method, self.url, self.detail)?;
        match &self.code {
            Some(code) => write!(f, " ({code})"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for HttpError {}

impl From<HttpError> for PluginError {
    fn from(e: HttpError) -> Self {
        e.to_plugin_error()
    }
}

/// The parts of an `http://` URL the clients need.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Url {
    https: bool,
    /// `host[:port]` as written (`[v6]:port` keeps its brackets).
    authority: String,
    /// The path and query, at least `/`; any `#fragment` removed.
    path_and_query: String,
}

impl Url {
    fn parse(url: &str) -> Result<Self, String> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| "the URL has no scheme (`http://`)".to_string())?;
        let https = match scheme.to_ascii_lowercase().as_str() {
            "http" => false,
            "https" => true,
            other => return Err(format!("unsupported URL scheme `{other}`: use http://")),
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.is_empty() {
            return Err("the URL has no host".into());
        }
        if authority.contains('@') {
            return Err("credentials in the URL are not allowed: the host adds the job's credentials".into());
        }
        if authority.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
            return Err("the URL's host contains blanks or control characters".into());
        }
        if path.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
            return Err("the URL's path contains blanks or control characters (percent-encode them)".into());
        }
        let path_and_query = match path.strip_prefix('?') {
            Some(_) => format!("/{path}"),
            None if path.is_empty() => "/".into(),
            None => path.into(),
        };
        Ok(Self { https, authority: authority.into(), path_and_query })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let url = Url::parse("http://127.0.0.1:8080/stub_status?x=1#frag").unwrap();
        assert_eq!(
            url,
            Url { https: false, authority: "127.0.0.1:8080".into(), path_and_query: "/stub_status?x=1".into() }
        );
        assert_eq!(Url::parse("HTTPS://[::1]:2379").unwrap().path_and_query, "/");
        assert!(Url::parse("HTTPS://[::1]:2379").unwrap().https);
        assert_eq!(Url::parse("http://h?q").unwrap().path_and_query, "/?q");
        for (bad, why) in [
            ("127.0.0.1/x", "no scheme"),
            ("ftp://h/", "unsupported URL scheme `ftp`"),
            ("http:///x", "no host"),
            ("http://user:pw@h/", "credentials"),
            ("http://h/a b", "blanks"),
            ("http://h\r\n/", "blanks"),
        ] {
            let err = Url::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn refuses_headers_the_host_owns() {
        for name in ["Authorization", "host", "Content-Length", "transfer-encoding"] {
            let err = Request::get("http://127.0.0.1:1/").header(name, "x").send().unwrap_err();
            assert_eq!(err.kind(), HttpErrorKind::InvalidRequest);
            assert!(err.to_string().contains("may not be set by a plugin"), "{err}");
        }
        let err = Request::get("http://127.0.0.1:1/").header("x-a", "1\r\nInjected: yes").send().unwrap_err();
        assert!(err.to_string().contains("line break"), "{err}");
        let err = Request::get("http://127.0.0.1:1/").header("bad name", "1").send().unwrap_err();
        assert!(err.to_string().contains("invalid header name"), "{err}");
    }

    #[test]
    fn errors_map_to_plugin_errors() {
        let err = |kind| HttpError {
            method: Method::Post,
            url: "http://t/x".into(),
            kind,
            code: Some("HTTP-request-denied".into()),
            detail: "denied by the host".into(),
        };
        let denied = PluginError::from(err(HttpErrorKind::Denied));
        assert_eq!(denied.kind, crate::ErrorKind::PermissionDenied);
        assert!(denied.message.starts_with("POST http://t/x: denied by the host (HTTP-request-denied): the job must"));
        assert_eq!(err(HttpErrorKind::Unreachable).to_plugin_error().kind, crate::ErrorKind::Unavailable);
        assert_eq!(err(HttpErrorKind::Status(500)).to_plugin_error().kind, crate::ErrorKind::Unavailable);
        assert_eq!(err(HttpErrorKind::Protocol).to_plugin_error().kind, crate::ErrorKind::InvalidData);
        assert_eq!(err(HttpErrorKind::InvalidRequest).to_plugin_error().kind, crate::ErrorKind::Internal);
    }

    #[test]
    fn response_helpers() {
        let response = Response {
            method: Method::Get,
            url: "http://t/".into(),
            status: 503,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: b"  busy \n".to_vec(),
        };
        assert_eq!(response.header("Content-Type"), Some("text/plain"));
        assert_eq!(response.header("x"), None);
        assert_eq!(response.text().unwrap(), "  busy \n");
        let err = response.error_for_status().unwrap_err();
        assert_eq!(err.kind(), HttpErrorKind::Status(503));
        assert_eq!(err.to_string(), "GET http://t/: HTTP status 503: \"busy\"");
        let binary =
            Response { method: Method::Post, url: "http://t/".into(), status: 200, headers: vec![], body: vec![0xff] };
        assert_eq!(binary.text().unwrap_err().kind(), HttpErrorKind::InvalidData);
        assert!(binary.error_for_status().is_ok());
    }
}
