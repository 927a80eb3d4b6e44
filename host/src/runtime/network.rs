//! Network access for plugins, deny-by-default and scoped to the scrape
//! target: HTTP(S) through `wasi:http` (sent by the host, with the job's TLS
//! settings and credentials) and TCP through `wasi:sockets` (connects only to
//! the target's addresses).

use crate::config::{Authorization, BasicAuth, Scheme, TlsConfig, read_credential_file};
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use http::uri::{Authority, PathAndQuery, Scheme as UriScheme};
use http::{HeaderName, HeaderValue, Request, Response};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi_http::{DEFAULT_FORBIDDEN_HEADERS, Error as HttpError, ForbiddenHeaderFilter, WasiBody};

/// Idle keep-alive connections are reused by the next scrape of the same
/// target (Prometheus does the same), which saves a TLS handshake per scrape.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Most of a response body the host reads ahead before the plugin sees the
/// response (see [`read_ahead`]); a call's memory limit caps it further.
pub(crate) const MAX_READ_AHEAD: usize = 16 << 20;

/// A credential the host adds to requests; files are read at request time so
/// a rotated token is picked up.
#[derive(Debug, Clone)]
pub(crate) enum Credential {
    Inline(String),
    File(&'static str, PathBuf),
}

impl Credential {
    fn read(&self) -> Result<String, String> {
        match self {
            Credential::Inline(value) => Ok(value.clone()),
            Credential::File(what, path) => read_credential_file(what, path).map_err(|e| e.to_string()),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum AuthHeader {
    Basic { username: String, password: Option<Credential> },
    Token { kind: String, credentials: Credential },
}

impl AuthHeader {
    /// The header `basic_auth` or `authorization` (Prometheus' keys) asks for, if any.
    pub(crate) fn from_config(
        basic_auth: Option<&BasicAuth>,
        authorization: Option<&Authorization>,
    ) -> Result<Option<Self>, String> {
        Ok(match (basic_auth, authorization) {
            (Some(basic), _) => Some(AuthHeader::Basic {
                username: basic.username.clone(),
                password: match (&basic.password, &basic.password_file) {
                    (_, Some(file)) => Some(Credential::File("basic_auth.password_file", file.clone())),
                    (Some(inline), None) => Some(Credential::Inline(inline.clone())),
                    (None, None) => None,
                },
            }),
            (None, Some(auth)) => Some(AuthHeader::Token {
                kind: auth.kind.clone(),
                credentials: match (&auth.credentials_file, &auth.credentials) {
                    (Some(file), _) => Credential::File("authorization.credentials_file", file.clone()),
                    (None, Some(inline)) => Credential::Inline(inline.clone()),
                    (None, None) => return Err("authorization has no credentials".into()),
                },
            }),
            (None, None) => None,
        })
    }

    pub(crate) fn value(&self) -> Result<HeaderValue, String> {
        let text = match self {
            AuthHeader::Basic { username, password } => {
                let password = password.as_ref().map(Credential::read).transpose()?.unwrap_or_default();
                let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
                format!("Basic {encoded}")
            }
            AuthHeader::Token { kind, credentials } => format!("{kind} {}", credentials.read()?),
        };
        let mut value =
            HeaderValue::from_str(&text).map_err(|_| "credentials contain invalid header bytes".to_string())?;
        value.set_sensitive(true);
        Ok(value)
    }
}

/// A job's HTTP settings and its connection pool, shared by all its calls.
pub struct HttpEgress {
    scheme: Scheme,
    client: Client<HttpsConnector<HttpConnector>, WasiBody>,
    auth: Option<AuthHeader>,
}

impl std::fmt::Debug for HttpEgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpEgress").field("scheme", &self.scheme).field("auth", &self.auth.is_some()).finish()
    }
}

impl HttpEgress {
    /// Build the job's client: TLS roots, client certificate and key are read
    /// now, so a bad file is a start-up error that names it.
    pub fn new(
        scheme: Scheme,
        tls: Option<&TlsConfig>,
        basic_auth: Option<&BasicAuth>,
        authorization: Option<&Authorization>,
        connect_timeout: Duration,
    ) -> Result<Self, String> {
        let connector = https_connector(tls, connect_timeout)?;
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_max_idle_per_host(4)
            .build(connector);
        let auth = AuthHeader::from_config(basic_auth, authorization)?;
        Ok(Self { scheme, client, auth })
    }
}

/// An HTTP(S) connector with a job's or endpoint's `tls_config` (default
/// roots when `None`), `server_name` override and connect timeout. Shared
/// by plugin egress, remote write and the Alertmanager notifier.
pub(crate) fn https_connector(
    tls: Option<&TlsConfig>,
    connect_timeout: Duration,
) -> Result<HttpsConnector<HttpConnector>, String> {
    let default_tls = TlsConfig::default();
    let tls = tls.unwrap_or(&default_tls);
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    let builder = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls_client_config(tls)?).https_or_http();
    let builder = match &tls.server_name {
        Some(name) => {
            let name = rustls::pki_types::ServerName::try_from(name.clone())
                .map_err(|e| format!("tls_config.server_name {name:?}: {e}"))?;
            builder.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name))
        }
        None => builder,
    };
    Ok(builder.enable_http1().wrap_connector(http))
}

/// The rustls client config of a `tls_config`: system or `ca_file` roots,
/// optional client certificate, `insecure_skip_verify`. Shared by plugin
/// egress and the remote-write client.
pub(crate) fn tls_client_config(tls: &TlsConfig) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let builder = if tls.insecure_skip_verify {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert(provider)))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        match &tls.ca_file {
            Some(ca_file) => {
                let certs = CertificateDer::pem_file_iter(ca_file)
                    .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| format!("tls_config.ca_file {}: {e}", ca_file.display()))?;
                if certs.is_empty() {
                    return Err(format!("tls_config.ca_file {}: no PEM certificate in it", ca_file.display()));
                }
                for cert in certs {
                    roots.add(cert).map_err(|e| format!("tls_config.ca_file {}: {e}", ca_file.display()))?;
                }
            }
            None => {
                let native = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(native.certs);
            }
        }
        builder.with_root_certificates(roots)
    };
    match (&tls.cert_file, &tls.key_file) {
        (Some(cert_file), Some(key_file)) => {
            let certs = CertificateDer::pem_file_iter(cert_file)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("tls_config.cert_file {}: {e}", cert_file.display()))?;
            let key = PrivateKeyDer::from_pem_file(key_file)
                .map_err(|e| format!("tls_config.key_file {}: {e}", key_file.display()))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| format!("tls_config: client certificate and key do not fit: {e}"))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// `insecure_skip_verify: true`: any certificate, but handshake signatures are
/// still checked so the connection itself is sound.
#[derive(Debug)]
struct AcceptAnyServerCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A scrape target's address split for matching: `host:port`, `[v6]:port`
/// or a bare host (port then from the scheme).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetAddress {
    pub host: String,
    pub port: Option<u16>,
}

impl TargetAddress {
    pub fn parse(address: &str) -> Self {
        if let Ok(addr) = address.parse::<SocketAddr>() {
            return Self { host: addr.ip().to_string(), port: Some(addr.port()) };
        }
        let trimmed = address.trim_start_matches('[');
        if let Some((host, port)) = address.rsplit_once(':')
            && let Ok(port) = port.parse()
            && !host.contains(':')
        {
            return Self { host: host.to_ascii_lowercase(), port: Some(port) };
        }
        Self { host: trimmed.trim_end_matches(']').to_ascii_lowercase(), port: None }
    }

    fn host_matches(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        match (self.host.parse::<IpAddr>(), host.parse::<IpAddr>()) {
            (Ok(a), Ok(b)) => a == b,
            _ => self.host.eq_ignore_ascii_case(host),
        }
    }

    fn is_name(&self) -> bool {
        self.host.parse::<IpAddr>().is_err()
    }
}

impl std::fmt::Display for TargetAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        match self.port {
            Some(port) => write!(f, "{host}:{port}"),
            None => f.write_str(&host),
        }
    }
}

/// The `wasi:http` hooks of one call: only the target's authority, the job's
/// scheme, TLS and credentials, and the call's deadline.
pub(crate) struct CallHttpHooks {
    pub egress: Option<Arc<HttpEgress>>,
    pub target: TargetAddress,
    pub deadline: Instant,
    pub plugin: Arc<str>,
    /// Bytes of a response body read ahead on the host (see [`read_ahead`]).
    pub read_ahead: usize,
}

impl CallHttpHooks {
    fn deny(&self, message: String) -> HttpError {
        tracing::warn!(plugin = &*self.plugin, target = %self.target, "HTTP request denied: {message}");
        HttpError::HttpRequestDenied
    }

    /// Check the request against the target and rewrite it the way the job
    /// says it goes out.
    pub(crate) fn prepare(
        &self,
        mut request: Request<WasiBody>,
    ) -> Result<(Arc<HttpEgress>, Request<WasiBody>), HttpError> {
        let Some(egress) = self.egress.clone() else {
            return Err(self.deny(format!(
                "{} {}: this job does not grant the http capability",
                request.method(),
                request.uri()
            )));
        };
        let uri = request.uri().clone();
        let Some(authority) = uri.authority() else {
            return Err(self.deny(format!("{uri}: no host in the URL")));
        };
        let asked_https = uri.scheme() == Some(&UriScheme::HTTPS);
        let https = asked_https || egress.scheme == Scheme::Https;
        // A URL without a port means the default port of the scheme the
        // request actually goes out with.
        let asked_port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let target_port = self.target.port.unwrap_or(egress.scheme.default_port());
        if !self.target.host_matches(authority.host()) || asked_port != target_port {
            return Err(self.deny(format!(
                "{} {uri}: plugins may only reach their scrape target {}",
                request.method(),
                self.target
            )));
        }
        let authority: Authority = format!("{}:{target_port}", authority.host())
            .parse()
            .map_err(|_| self.deny(format!("{uri}: invalid authority")))?;
        let path = uri.path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
        *request.uri_mut() = http::Uri::builder()
            .scheme(if https { UriScheme::HTTPS } else { UriScheme::HTTP })
            .authority(authority.clone())
            .path_and_query(path)
            .build()
            .map_err(|e| self.deny(format!("{uri}: {e}")))?;
        if let Ok(host) = HeaderValue::from_str(authority.as_str()) {
            request.headers_mut().insert(http::header::HOST, host);
        }
        if let Some(auth) = &egress.auth {
            let value = auth.value().map_err(|e| {
                tracing::warn!(plugin = &*self.plugin, target = %self.target, "HTTP credentials: {e}");
                HttpError::InternalError(Some("the host cannot read this job's HTTP credentials".into()))
            })?;
            request.headers_mut().insert(http::header::AUTHORIZATION, value);
        }
        Ok((egress, request))
    }
}

impl wasmtime_wasi_http::WasiHttpHooks for CallHttpHooks {
    /// Plugins may not set credentials themselves: the host adds them.
    fn forbidden_header_filter(&mut self) -> ForbiddenHeaderFilter {
        Arc::new(|name: &HeaderName| *name == http::header::AUTHORIZATION || DEFAULT_FORBIDDEN_HEADERS.contains(name))
    }

    fn default_scheme(&mut self) -> Option<UriScheme> {
        Some(UriScheme::HTTP)
    }

    fn send_request(
        &mut self,
        request: Request<WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (Response<WasiBody>, Box<dyn Future<Output = Result<(), HttpError>> + Send>),
                    HttpError,
                >,
            > + Send,
    > {
        let prepared = self.prepare(request);
        let plugin = self.plugin.clone();
        let target = self.target.to_string();
        let (deadline, limit) = (self.deadline, self.read_ahead);
        Box::new(async move {
            let (egress, request) = prepared?;
            let response = send(&egress, request, deadline, &plugin, &target).await.map_err(|(code, _)| code)?;
            let (parts, body) = response.into_parts();
            let body = read_ahead(body, deadline, limit).await;
            let response = Response::from_parts(parts, body.boxed_unsync());
            let io_done: Box<dyn Future<Output = Result<(), HttpError>> + Send> = Box::new(async { Ok(()) });
            Ok((response, io_done))
        })
    }
}

/// Send a request [`CallHttpHooks::prepare`]d, waiting for the response head
/// until `deadline`. A failure is logged with its full reason (TLS alerts,
/// certificate problems, refused connects) and returned with it.
pub(crate) async fn send(
    egress: &HttpEgress,
    request: Request<WasiBody>,
    deadline: Instant,
    plugin: &str,
    target: &str,
) -> Result<Response<Incoming>, (HttpError, String)> {
    let uri = request.uri().clone();
    let remaining = deadline.saturating_duration_since(Instant::now());
    match tokio::time::timeout(remaining, egress.client.request(request)).await {
        Err(_) => {
            let reason = "no response before the scrape timeout".to_string();
            tracing::warn!(plugin, target, "HTTP {uri}: {reason}");
            Err((HttpError::ConnectionTimeout, reason))
        }
        Ok(Err(e)) => {
            let (code, reason) = classify_client_error(&e);
            tracing::warn!(plugin, target, "HTTP {uri}: {reason}");
            Err((code, reason))
        }
        Ok(Ok(response)) => Ok(response),
    }
}

/// Read the body into one buffer before the plugin sees the response, up to
/// `limit` bytes and until `deadline`; whatever is left (a larger body, one
/// still arriving at the deadline) follows as it comes, so the plugin reads
/// the same bytes, trailers and errors either way. Streamed frame by frame,
/// every chunk of a body would cost the call a wake-up of its thread by
/// hyper's connection task (and a read of its own in the guest).
async fn read_ahead(mut body: Incoming, deadline: Instant, limit: usize) -> ReadAhead {
    let mut ahead = ReadAhead { data: Bytes::new(), trailers: None, error: None, rest: None };
    let mut buffer: Option<BytesMut> = None;
    loop {
        let frame = match tokio::time::timeout_at(deadline.into(), body.frame()).await {
            Ok(frame) => frame,
            Err(_elapsed) => {
                ahead.rest = Some(body);
                break;
            }
        };
        match frame {
            None => break,
            Some(Err(e)) => {
                ahead.error = Some(HttpError::from(e));
                break;
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    // The first chunk is kept as it is; a second one starts a buffer.
                    match &mut buffer {
                        None if ahead.data.is_empty() => ahead.data = data,
                        None => {
                            let hint = body.size_hint().lower() as usize;
                            let mut joined = BytesMut::with_capacity((ahead.data.len() + data.len() + hint).min(limit));
                            joined.extend_from_slice(&ahead.data);
                            joined.extend_from_slice(&data);
                            ahead.data = Bytes::new();
                            buffer = Some(joined);
                        }
                        Some(joined) => joined.extend_from_slice(&data),
                    }
                    let len = buffer.as_ref().map_or(ahead.data.len(), BytesMut::len);
                    if len >= limit {
                        ahead.rest = Some(body);
                        break;
                    }
                }
                Err(frame) => {
                    // Trailers end the body.
                    ahead.trailers = frame.into_trailers().ok();
                    break;
                }
            },
        }
    }
    if let Some(joined) = buffer {
        ahead.data = joined.freeze();
    }
    ahead
}

/// A response body read ahead by [`read_ahead`]: the data read, then the rest
/// of the body if any, then trailers or the error that ended it.
struct ReadAhead {
    data: Bytes,
    trailers: Option<http::HeaderMap>,
    error: Option<HttpError>,
    rest: Option<Incoming>,
}

impl Body for ReadAhead {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        use std::task::Poll;
        let this = self.get_mut();
        if !this.data.is_empty() {
            return Poll::Ready(Some(Ok(Frame::data(std::mem::take(&mut this.data)))));
        }
        if let Some(rest) = &mut this.rest {
            return std::pin::Pin::new(rest).poll_frame(cx).map_err(HttpError::from);
        }
        if let Some(trailers) = this.trailers.take() {
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        Poll::Ready(this.error.take().map(Err))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_empty()
            && self.trailers.is_none()
            && self.error.is_none()
            && self.rest.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let mut hint = self.rest.as_ref().map_or_else(|| SizeHint::with_exact(0), Body::size_hint);
        let buffered = self.data.len() as u64;
        hint.set_lower(hint.lower() + buffered);
        if let Some(upper) = hint.upper() {
            hint.set_upper(upper + buffered);
        }
        hint
    }
}

/// The `wasi:http` error code for a failed request, and the full reason for
/// the operator's log (TLS alerts, certificate problems, refused connects).
fn classify_client_error(error: &hyper_util::client::legacy::Error) -> (HttpError, String) {
    let mut reason = error.to_string();
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    let mut code = None;
    while let Some(cause) = source {
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        // tokio-rustls wraps rustls' error in an io::Error, whose `source()`
        // skips the wrapped error itself: look inside explicitly.
        let tls_error = cause.downcast_ref::<rustls::Error>().or_else(|| {
            cause.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).and_then(|e| e.downcast_ref())
        });
        if let Some(tls) = tls_error {
            code = Some(match tls {
                rustls::Error::InvalidCertificate(_) => HttpError::TlsCertificateError,
                rustls::Error::AlertReceived(alert) => {
                    HttpError::TlsAlertReceived { alert_id: None, alert_message: Some(format!("{alert:?}")) }
                }
                _ => HttpError::TlsProtocolError,
            });
        } else if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && code.is_none()
        {
            code = match io.kind() {
                std::io::ErrorKind::ConnectionRefused => Some(HttpError::ConnectionRefused),
                std::io::ErrorKind::TimedOut => Some(HttpError::ConnectionTimeout),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof => {
                    Some(HttpError::ConnectionTerminated)
                }
                _ => None,
            };
        }
        source = cause.source();
    }
    let code = code.unwrap_or(if error.is_connect() {
        HttpError::ConnectionRefused
    } else {
        HttpError::InternalError(Some(reason.clone()))
    });
    (code, reason)
}

/// What `socket_addr_check` returns: wasmtime allows the check to be async.
pub(crate) type CheckFuture = std::pin::Pin<Box<dyn Future<Output = bool> + Send + Sync>>;

/// The `wasi:sockets` check of one call: connect only to the target's
/// addresses, bind only the implicit wildcard address of a connect.
pub(crate) fn tcp_check(
    target: &TargetAddress,
    plugin: Arc<str>,
) -> Result<(bool, impl Fn(SocketAddr, SocketAddrUse) -> CheckFuture + Send + Sync + 'static), String> {
    let Some(port) = target.port else {
        return Err(format!("target {target} has no port; TCP needs host:port"));
    };
    let allowed: HashSet<SocketAddr> = (target.host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve target {target}: {e}"))?
        .collect();
    let target_text = target.to_string();
    let check = move |addr: SocketAddr, use_: SocketAddrUse| {
        let ok = match use_ {
            SocketAddrUse::TcpConnect => allowed.contains(&addr),
            SocketAddrUse::TcpBind => addr.ip().is_unspecified() && addr.port() == 0,
            _ => false,
        };
        if !ok {
            tracing::warn!(
                plugin = &*plugin,
                target = target_text,
                "socket denied: {use_:?} {addr}: plugins may only connect to their scrape target"
            );
        }
        Box::pin(async move { ok }) as CheckFuture
    };
    Ok((target.is_name(), check))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_addresses_parse_like_prometheus_targets() {
        assert_eq!(
            TargetAddress::parse("127.0.0.1:9100"),
            TargetAddress { host: "127.0.0.1".into(), port: Some(9100) }
        );
        assert_eq!(TargetAddress::parse("[::1]:80"), TargetAddress { host: "::1".into(), port: Some(80) });
        assert_eq!(
            TargetAddress::parse("Etcd.Local:2379"),
            TargetAddress { host: "etcd.local".into(), port: Some(2379) }
        );
        assert_eq!(TargetAddress::parse("nginx"), TargetAddress { host: "nginx".into(), port: None });
        assert_eq!(TargetAddress::parse("[::1]:80").to_string(), "[::1]:80");
        assert!(TargetAddress::parse("127.0.0.1:1").host_matches("127.0.0.1"));
        assert!(TargetAddress::parse("[::1]:1").host_matches("[::1]"));
        assert!(!TargetAddress::parse("127.0.0.1:1").host_matches("127.0.0.2"));
        assert!(TargetAddress::parse("a.b:1").host_matches("A.B"));
    }

    #[test]
    fn a_request_without_a_port_uses_the_port_of_the_scheme_it_goes_out_with() {
        let egress = Arc::new(HttpEgress::new(Scheme::Https, None, None, None, Duration::from_secs(1)).unwrap());
        let hooks = |target: &str| CallHttpHooks {
            egress: Some(egress.clone()),
            target: TargetAddress::parse(target),
            deadline: Instant::now(),
            plugin: Arc::from("test"),
            read_ahead: MAX_READ_AHEAD,
        };
        let request = |url: &str| {
            Request::get(url).body(http_body_util::Empty::new().map_err(|e| match e {}).boxed_unsync()).unwrap()
        };
        let (_, sent) = hooks("etcd.local").prepare(request("http://etcd.local/metrics")).unwrap();
        assert_eq!(sent.uri().to_string(), "https://etcd.local:443/metrics");
        let (_, sent) = hooks("127.0.0.1:2379").prepare(request("http://127.0.0.1:2379/health")).unwrap();
        assert_eq!(sent.uri().to_string(), "https://127.0.0.1:2379/health");
        assert!(hooks("127.0.0.1:2379").prepare(request("http://127.0.0.1:2380/")).is_err());
        assert!(hooks("127.0.0.1:2379").prepare(request("http://127.0.0.2:2379/")).is_err());
    }

    #[test]
    fn authorization_header_carries_type_and_credentials_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "abc.def\n").unwrap();
        let auth = AuthHeader::Token {
            kind: "Bearer".into(),
            credentials: Credential::File("authorization.credentials_file", file),
        };
        assert_eq!(auth.value().unwrap().to_str().unwrap(), "Bearer abc.def");
        let inline = AuthHeader::Token { kind: "Token".into(), credentials: Credential::Inline("x".into()) };
        assert_eq!(inline.value().unwrap().to_str().unwrap(), "Token x");
    }

    #[test]
    fn basic_auth_header_reads_the_password_file_each_time() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "first\n").unwrap();
        let auth = AuthHeader::Basic {
            username: "user".into(),
            password: Some(Credential::File("basic_auth.password_file", file.clone())),
        };
        let expected =
            |pw: &str| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("user:{pw}")));
        assert_eq!(auth.value().unwrap().to_str().unwrap(), expected("first"));
        std::fs::write(&file, "second\n").unwrap();
        assert_eq!(auth.value().unwrap().to_str().unwrap(), expected("second"));
        assert!(auth.value().unwrap().is_sensitive());
        std::fs::remove_file(&file).unwrap();
        assert!(auth.value().unwrap_err().contains("basic_auth.password_file"));
    }
}
