//! Requests through `wasi:http/outgoing-handler` (WASI 0.2, bindings from the `wasi` crate).
//! The host checks, rewrites (scheme, TLS, credentials) and sends them; this side only
//! builds the request, streams the body out and reads the response back in.

use super::{HttpError, HttpErrorKind, Method, Request, Response, Url};
use wasi::http::outgoing_handler;
use wasi::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, HeaderError, IncomingBody, IncomingResponse, Method as WasiMethod,
    OutgoingBody, OutgoingRequest, Scheme,
};
use wasi::io::streams::StreamError;

/// `blocking-write-and-flush` takes at most 4096 bytes per call.
const WRITE_CHUNK: usize = 4096;
/// The most one read asks for. The host reads a response ahead before handing it over, so
/// a body usually arrives in one read, which then is the body, without a copy.
const READ_CHUNK: usize = 16 << 20;

pub(super) fn send(request: &Request, url: &Url) -> Result<Response, HttpError> {
    let future = start(request, url)?;
    finish(request, &future)
}

/// Hand the request to the host and stream its body out.
pub(super) fn start(request: &Request, url: &Url) -> Result<FutureIncomingResponse, HttpError> {
    let fail = |kind, detail: &str| request.error(kind, None, detail);
    let mut entries: Vec<(String, Vec<u8>)> =
        request.headers.iter().map(|(n, v)| (n.clone(), v.as_bytes().to_vec())).collect();
    // As hyper would: a body, or a method that carries one, gets its length, so servers that
    // dislike chunked uploads (and `wasi:http`'s length check) are satisfied.
    if !request.body.is_empty() || matches!(request.method, Method::Post | Method::Put | Method::Patch) {
        entries.push(("content-length".into(), request.body.len().to_string().into_bytes()));
    }
    let headers = Fields::from_list(&entries).map_err(|e| {
        let why = match e {
            HeaderError::Forbidden => "a header is forbidden by the host",
            HeaderError::InvalidSyntax => "a header name or value is invalid",
            HeaderError::Immutable => "the headers are immutable",
        };
        fail(HttpErrorKind::InvalidRequest, why)
    })?;
    let outgoing = OutgoingRequest::new(headers);
    let scheme = if url.https { Scheme::Https } else { Scheme::Http };
    let parts_ok = outgoing.set_method(&wasi_method(request.method)).is_ok()
        && outgoing.set_scheme(Some(&scheme)).is_ok()
        && outgoing.set_authority(Some(&url.authority)).is_ok()
        && outgoing.set_path_with_query(Some(&url.path_and_query)).is_ok();
    if !parts_ok {
        return Err(fail(HttpErrorKind::InvalidRequest, "the host rejected the method, host or path"));
    }
    let body = outgoing.body().map_err(|()| fail(HttpErrorKind::Other, "the request body is unavailable"))?;
    // Send first, then stream the body: writing a large body before `handle` could fill the
    // pipe with nobody reading it.
    let future = outgoing_handler::handle(outgoing, None).map_err(|code| error_from_code(request, &code))?;
    write_body(request, body)?;
    Ok(future)
}

/// Wait for the response and read its body.
pub(super) fn finish(request: &Request, future: &FutureIncomingResponse) -> Result<Response, HttpError> {
    let response = wait(request, future)?;
    read_response(request, response)
}

fn wasi_method(method: Method) -> WasiMethod {
    match method {
        Method::Get => WasiMethod::Get,
        Method::Head => WasiMethod::Head,
        Method::Post => WasiMethod::Post,
        Method::Put => WasiMethod::Put,
        Method::Delete => WasiMethod::Delete,
        Method::Patch => WasiMethod::Patch,
        Method::Options => WasiMethod::Options,
    }
}

fn write_body(request: &Request, body: OutgoingBody) -> Result<(), HttpError> {
    {
        // The stream is a child of the body and must be gone before `finish`.
        let stream = body.write().map_err(|()| request.error(HttpErrorKind::Other, None, "cannot write the body"))?;
        for chunk in request.body.chunks(WRITE_CHUNK) {
            stream.blocking_write_and_flush(chunk).map_err(|e| stream_error(request, e, "sending the body"))?;
        }
    }
    OutgoingBody::finish(body, None).map_err(|code| error_from_code(request, &code))
}

fn wait(request: &Request, future: &FutureIncomingResponse) -> Result<IncomingResponse, HttpError> {
    loop {
        match future.get() {
            Some(Ok(Ok(response))) => return Ok(response),
            Some(Ok(Err(code))) => return Err(error_from_code(request, &code)),
            Some(Err(())) => return Err(request.error(HttpErrorKind::Other, None, "the response was already taken")),
            None => future.subscribe().block(),
        }
    }
}

fn read_response(request: &Request, response: IncomingResponse) -> Result<Response, HttpError> {
    let status = response.status();
    let headers: Vec<(String, String)> = response
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), String::from_utf8_lossy(&value).into_owned()))
        .collect();
    let max = request.max_body_bytes;
    let too_large = || {
        request.error(
            HttpErrorKind::BodyTooLarge,
            None,
            format!("the response body is larger than the limit of {max} bytes"),
        )
    };
    let declared = headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > max as u64) {
        return Err(too_large());
    }
    let incoming = response.consume().map_err(|()| request.error(HttpErrorKind::Other, None, "no response body"))?;
    let mut body = Vec::new();
    {
        // The stream is a child of the body, which is a child of the response: drop in order.
        let stream =
            incoming.stream().map_err(|()| request.error(HttpErrorKind::Other, None, "no response body stream"))?;
        loop {
            // Never more than one byte past the limit, so an oversized body is noticed
            // without holding more of it.
            let want = READ_CHUNK.min((max - body.len()).saturating_add(1));
            match stream.blocking_read(want as u64) {
                Ok(bytes) => {
                    if body.len() + bytes.len() > max {
                        return Err(too_large());
                    }
                    if body.is_empty() {
                        body = bytes;
                        if let Some(length) = declared {
                            body.reserve((length as usize).saturating_sub(body.len()));
                        }
                    } else {
                        body.extend_from_slice(&bytes);
                    }
                }
                Err(StreamError::Closed) => break,
                Err(e) => return Err(stream_error(request, e, "reading the body")),
            }
        }
    }
    drop(IncomingBody::finish(incoming));
    Ok(Response { method: request.method, url: request.url.clone(), status, headers, body })
}

fn stream_error(request: &Request, e: StreamError, doing: &str) -> HttpError {
    match e {
        StreamError::LastOperationFailed(io) => match wasi::http::types::http_error_code(&io) {
            Some(code) => error_from_code(request, &code),
            None => request.error(HttpErrorKind::Protocol, None, format!("{doing} failed: {}", io.to_debug_string())),
        },
        StreamError::Closed => {
            request.error(HttpErrorKind::Protocol, None, format!("{doing}: the stream closed early"))
        }
    }
}

/// The kind, WIT name and a readable description of a `wasi:http` error code.
fn error_from_code(request: &Request, code: &ErrorCode) -> HttpError {
    use HttpErrorKind as K;
    let (kind, name, detail): (HttpErrorKind, &str, String) = match code {
        ErrorCode::DnsTimeout => (K::Timeout, "DNS-timeout", "name lookup timed out".into()),
        ErrorCode::DnsError(p) => (
            K::Unreachable,
            "DNS-error",
            format!("name lookup failed{}", p.rcode.as_deref().map(|r| format!(": {r}")).unwrap_or_default()),
        ),
        ErrorCode::DestinationNotFound => (K::Unreachable, "destination-not-found", "host not found".into()),
        ErrorCode::DestinationUnavailable => (K::Unreachable, "destination-unavailable", "host unavailable".into()),
        ErrorCode::DestinationIpProhibited => (K::Denied, "destination-IP-prohibited", "address prohibited".into()),
        ErrorCode::DestinationIpUnroutable => (K::Unreachable, "destination-IP-unroutable", "no route".into()),
        ErrorCode::ConnectionRefused => (K::Unreachable, "connection-refused", "connection refused".into()),
        ErrorCode::ConnectionTerminated => (K::Unreachable, "connection-terminated", "connection closed".into()),
        ErrorCode::ConnectionTimeout => (K::Timeout, "connection-timeout", "timed out".into()),
        ErrorCode::ConnectionReadTimeout => (K::Timeout, "connection-read-timeout", "read timed out".into()),
        ErrorCode::ConnectionWriteTimeout => (K::Timeout, "connection-write-timeout", "write timed out".into()),
        ErrorCode::ConnectionLimitReached => {
            (K::Unreachable, "connection-limit-reached", "too many connections".into())
        }
        ErrorCode::TlsProtocolError => (K::Tls, "TLS-protocol-error", "TLS handshake failed".into()),
        ErrorCode::TlsCertificateError => (K::Tls, "TLS-certificate-error", "TLS certificate rejected".into()),
        ErrorCode::TlsAlertReceived(p) => (
            K::Tls,
            "TLS-alert-received",
            format!("the server sent TLS alert {}", p.alert_message.as_deref().unwrap_or("(no message)")),
        ),
        ErrorCode::HttpRequestDenied => (K::Denied, "HTTP-request-denied", "denied by the host".into()),
        ErrorCode::HttpRequestLengthRequired => {
            (K::InvalidRequest, "HTTP-request-length-required", "length required".into())
        }
        ErrorCode::HttpRequestBodySize(_) => (K::InvalidRequest, "HTTP-request-body-size", "request body size".into()),
        ErrorCode::HttpRequestMethodInvalid => {
            (K::InvalidRequest, "HTTP-request-method-invalid", "invalid method".into())
        }
        ErrorCode::HttpRequestUriInvalid => (K::InvalidRequest, "HTTP-request-URI-invalid", "invalid URL".into()),
        ErrorCode::HttpRequestUriTooLong => (K::InvalidRequest, "HTTP-request-URI-too-long", "URL too long".into()),
        ErrorCode::HttpRequestHeaderSectionSize(_) | ErrorCode::HttpRequestHeaderSize(_) => {
            (K::InvalidRequest, "HTTP-request-header-size", "request headers too large".into())
        }
        ErrorCode::HttpRequestTrailerSectionSize(_) | ErrorCode::HttpRequestTrailerSize(_) => {
            (K::InvalidRequest, "HTTP-request-trailer-size", "request trailers too large".into())
        }
        ErrorCode::HttpResponseIncomplete => (K::Protocol, "HTTP-response-incomplete", "incomplete response".into()),
        ErrorCode::HttpResponseHeaderSectionSize(_) | ErrorCode::HttpResponseHeaderSize(_) => {
            (K::Protocol, "HTTP-response-header-size", "response headers too large".into())
        }
        ErrorCode::HttpResponseBodySize(_) => {
            (K::BodyTooLarge, "HTTP-response-body-size", "response body too large".into())
        }
        ErrorCode::HttpResponseTrailerSectionSize(_) | ErrorCode::HttpResponseTrailerSize(_) => {
            (K::Protocol, "HTTP-response-trailer-size", "response trailers too large".into())
        }
        ErrorCode::HttpResponseTransferCoding(c) => (
            K::Protocol,
            "HTTP-response-transfer-coding",
            format!("unsupported transfer coding {}", c.as_deref().unwrap_or("?")),
        ),
        ErrorCode::HttpResponseContentCoding(c) => (
            K::Protocol,
            "HTTP-response-content-coding",
            format!("unsupported content coding {}", c.as_deref().unwrap_or("?")),
        ),
        ErrorCode::HttpResponseTimeout => (K::Timeout, "HTTP-response-timeout", "no response in time".into()),
        ErrorCode::HttpUpgradeFailed => (K::Protocol, "HTTP-upgrade-failed", "upgrade failed".into()),
        ErrorCode::HttpProtocolError => (K::Protocol, "HTTP-protocol-error", "HTTP protocol error".into()),
        ErrorCode::LoopDetected => (K::Protocol, "loop-detected", "loop detected".into()),
        ErrorCode::ConfigurationError => (K::Other, "configuration-error", "host configuration error".into()),
        ErrorCode::InternalError(message) => {
            (K::Other, "internal-error", message.clone().unwrap_or_else(|| "internal error of the host".into()))
        }
    };
    request.error(kind, Some(name), detail)
}
