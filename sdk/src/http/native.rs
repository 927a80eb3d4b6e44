//! The native stand-in for `wasi:http`: HTTP/1.1 over a `TcpStream`, plain `http://` only,
//! one connection per request. Enough for plugin tests against real servers on loopback;
//! inside wasm the host's client does the work.

use super::{HttpError, HttpErrorKind, Request, Response, Url};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Per read or write; a test server that hangs fails the test instead of blocking it.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest status, header, chunk-size or trailer line accepted.
const MAX_LINE: usize = 16 << 10;
/// Most header (or trailer) lines accepted.
const MAX_HEADERS: usize = 256;

/// Why a response could not be read: the error's kind, its `wasi:http` code and details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Failure {
    pub kind: HttpErrorKind,
    pub code: &'static str,
    pub detail: String,
}

impl Failure {
    fn protocol(detail: impl Into<String>) -> Self {
        Self { kind: HttpErrorKind::Protocol, code: "HTTP-protocol-error", detail: detail.into() }
    }
    fn incomplete(detail: impl Into<String>) -> Self {
        Self { kind: HttpErrorKind::Protocol, code: "HTTP-response-incomplete", detail: detail.into() }
    }
    fn too_large(max: usize) -> Self {
        Self {
            kind: HttpErrorKind::BodyTooLarge,
            code: "HTTP-response-body-size",
            detail: format!("the response body is larger than the limit of {max} bytes"),
        }
    }
    fn io(e: &io::Error, doing: &str) -> Self {
        match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Self {
                kind: HttpErrorKind::Timeout,
                code: "connection-read-timeout",
                detail: format!("no data for {}s while {doing}", IO_TIMEOUT.as_secs()),
            },
            _ => Self {
                kind: HttpErrorKind::Unreachable,
                code: "connection-terminated",
                detail: format!("connection failed while {doing}: {e}"),
            },
        }
    }
}

/// A response as read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

pub(super) fn send(request: &Request, url: &Url) -> Result<Response, HttpError> {
    let fail = |f: Failure| request.error(f.kind, Some(f.code), f.detail);
    if url.https {
        return Err(request.error(
            HttpErrorKind::InvalidRequest,
            None,
            "native builds speak plain http:// only (inside wasmon the host does TLS: use http:// and `scheme: https`)",
        ));
    }
    let mut stream = connect(&url.authority).map_err(fail)?;
    stream.write_all(&request_bytes(request, url)).map_err(|e| fail(Failure::io(&e, "sending the request")))?;
    let mut reader = BufReader::new(stream);
    let raw =
        read_response(&mut reader, request.method == super::Method::Head, request.max_body_bytes).map_err(fail)?;
    Ok(Response {
        method: request.method,
        url: request.url.clone(),
        status: raw.status,
        headers: raw.headers,
        body: raw.body,
    })
}

fn connect(authority: &str) -> Result<TcpStream, Failure> {
    let (host, port) = split_authority(authority).ok_or_else(|| Failure {
        kind: HttpErrorKind::InvalidRequest,
        code: "HTTP-request-URI-invalid",
        detail: format!("invalid host and port `{authority}`"),
    })?;
    let addrs = (host, port).to_socket_addrs().map_err(|e| Failure {
        kind: HttpErrorKind::Unreachable,
        code: "DNS-error",
        detail: format!("cannot resolve `{host}`: {e}"),
    })?;
    let mut last = Failure {
        kind: HttpErrorKind::Unreachable,
        code: "destination-not-found",
        detail: format!("`{host}` has no addresses"),
    };
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(stream) => {
                let timeouts =
                    stream.set_read_timeout(Some(IO_TIMEOUT)).and(stream.set_write_timeout(Some(IO_TIMEOUT)));
                timeouts.map_err(|e| Failure::io(&e, "setting socket timeouts"))?;
                return Ok(stream);
            }
            Err(e) => {
                last = match e.kind() {
                    io::ErrorKind::ConnectionRefused => Failure {
                        kind: HttpErrorKind::Unreachable,
                        code: "connection-refused",
                        detail: "connection refused".into(),
                    },
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Failure {
                        kind: HttpErrorKind::Timeout,
                        code: "connection-timeout",
                        detail: format!("no connection to {addr} within {}s", CONNECT_TIMEOUT.as_secs()),
                    },
                    _ => Failure {
                        kind: HttpErrorKind::Unreachable,
                        code: "destination-unavailable",
                        detail: format!("cannot connect to {addr}: {e}"),
                    },
                }
            }
        }
    }
    Err(last)
}

/// `host:port`, `[v6]:port` or a bare host (port 80).
fn split_authority(authority: &str) -> Option<(&str, u16)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(port) => Some((host, port.parse().ok()?)),
            None if after.is_empty() => Some((host, 80)),
            None => None,
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Some((host, port.parse().ok()?)),
        Some(_) => None,
        None => Some((authority, 80)),
    }
}

fn request_bytes(request: &Request, url: &Url) -> Vec<u8> {
    let mut head = format!(
        "{} {} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\nuser-agent: wasmon-sdk\r\n",
        request.method, url.path_and_query, url.authority
    );
    for (name, value) in &request.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    // As hyper does in the host: a body, or a method that carries one, gets its length.
    let has_body_method = matches!(request.method, super::Method::Post | super::Method::Put | super::Method::Patch);
    if !request.body.is_empty() || has_body_method {
        head.push_str(&format!("content-length: {}\r\n", request.body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&request.body);
    bytes
}

/// Read one response: status line, headers, then a body framed by `content-length`, chunked
/// transfer coding or the end of the connection. Bodies over `max_body` bytes are refused.
pub(super) fn read_response(
    reader: &mut impl BufRead,
    head_request: bool,
    max_body: usize,
) -> Result<RawResponse, Failure> {
    let (status, headers) = loop {
        let (status, headers) = read_head(reader)?;
        // Interim responses (100 Continue, 103 Early Hints) precede the real one.
        if !(100..200).contains(&status) || status == 101 {
            break (status, headers);
        }
    };
    if status == 101 {
        return Err(Failure {
            kind: HttpErrorKind::Protocol,
            code: "HTTP-upgrade-failed",
            detail: "unexpected 101 Switching Protocols".into(),
        });
    }
    let header = |name: &str| headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect::<Vec<_>>();
    let body = if head_request || status == 204 || status == 304 {
        Vec::new()
    } else if let Some(coding) = header("transfer-encoding").last() {
        let last_coding = coding.rsplit(',').next().unwrap_or_default().trim();
        if !last_coding.eq_ignore_ascii_case("chunked") {
            return Err(Failure {
                kind: HttpErrorKind::Protocol,
                code: "HTTP-response-transfer-coding",
                detail: format!("unsupported transfer-encoding `{coding}`"),
            });
        }
        read_chunked(reader, max_body)?
    } else if let Some(length) = content_length(&header("content-length"))? {
        read_exact_body(reader, length, max_body)?
    } else {
        read_to_close(reader, max_body)?
    };
    Ok(RawResponse { status, headers, body })
}

fn read_head(reader: &mut impl BufRead) -> Result<(u16, Vec<(String, String)>), Failure> {
    let line = read_line(reader, "the status line")?
        .ok_or_else(|| Failure::incomplete("the server closed the connection without a response"))?;
    let status = parse_status_line(&line)?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader, "the headers")?
            .ok_or_else(|| Failure::incomplete("the connection closed in the middle of the headers"))?;
        if line.is_empty() {
            return Ok((status, headers));
        }
        if headers.len() == MAX_HEADERS {
            return Err(Failure::protocol(format!("more than {MAX_HEADERS} header lines")));
        }
        headers.push(parse_header_line(&line)?);
    }
}

fn parse_status_line(line: &str) -> Result<u16, Failure> {
    let bad = || Failure::protocol(format!("invalid status line {:?}", excerpt(line)));
    let rest = line.strip_prefix("HTTP/1.").ok_or_else(bad)?;
    let mut parts = rest.splitn(3, ' ');
    let minor = parts.next().ok_or_else(bad)?;
    let code = parts.next().ok_or_else(bad)?;
    if minor.len() != 1
        || !minor.bytes().all(|b| b.is_ascii_digit())
        || code.len() != 3
        || !code.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    code.parse().ok().filter(|c| (100..600).contains(c)).ok_or_else(bad)
}

fn parse_header_line(line: &str) -> Result<(String, String), Failure> {
    let bad = |why: &str| Failure::protocol(format!("invalid header line {:?}: {why}", excerpt(line)));
    if line.starts_with([' ', '\t']) {
        return Err(bad("folded header lines are obsolete"));
    }
    let (name, value) = line.split_once(':').ok_or_else(|| bad("no `:`"))?;
    if name.is_empty() || !name.bytes().all(super::is_token_byte) {
        return Err(bad("invalid header name"));
    }
    Ok((name.to_ascii_lowercase(), value.trim_matches([' ', '\t']).to_string()))
}

/// `content-length`, which may be repeated or comma-separated as long as every value agrees.
fn content_length(values: &[&str]) -> Result<Option<u64>, Failure> {
    let mut length = None;
    for value in values.iter().flat_map(|v| v.split(',')) {
        let value = value.trim();
        let parsed: u64 = (!value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()))
            .then(|| value.parse().ok())
            .flatten()
            .ok_or_else(|| Failure::protocol(format!("invalid content-length {:?}", excerpt(value))))?;
        if length.is_some_and(|l| l != parsed) {
            return Err(Failure::protocol("conflicting content-length values"));
        }
        length = Some(parsed);
    }
    Ok(length)
}

fn read_exact_body(reader: &mut impl BufRead, length: u64, max_body: usize) -> Result<Vec<u8>, Failure> {
    if length > max_body as u64 {
        return Err(Failure::too_large(max_body));
    }
    let mut body = Vec::new();
    reader.by_ref().take(length).read_to_end(&mut body).map_err(|e| Failure::io(&e, "reading the body"))?;
    if (body.len() as u64) < length {
        return Err(Failure::incomplete(format!("the body ended after {} of {length} bytes", body.len())));
    }
    Ok(body)
}

fn read_to_close(reader: &mut impl BufRead, max_body: usize) -> Result<Vec<u8>, Failure> {
    let mut body = Vec::new();
    let limit = (max_body as u64).saturating_add(1);
    reader.by_ref().take(limit).read_to_end(&mut body).map_err(|e| Failure::io(&e, "reading the body"))?;
    if body.len() > max_body {
        return Err(Failure::too_large(max_body));
    }
    Ok(body)
}

fn read_chunked(reader: &mut impl BufRead, max_body: usize) -> Result<Vec<u8>, Failure> {
    let mut body = Vec::new();
    loop {
        let line = read_line(reader, "a chunk size")?
            .ok_or_else(|| Failure::incomplete("the connection closed before the last chunk"))?;
        // Chunk extensions (`;name=value`) carry nothing we use.
        let digits = line.split(';').next().unwrap_or_default().trim_matches([' ', '\t']);
        let size = (!digits.is_empty() && digits.len() <= 15 && digits.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u64::from_str_radix(digits, 16).ok())
            .flatten()
            .ok_or_else(|| Failure::protocol(format!("invalid chunk size line {:?}", excerpt(&line))))?;
        if size == 0 {
            skip_trailers(reader)?;
            return Ok(body);
        }
        if body.len() as u64 + size > max_body as u64 {
            return Err(Failure::too_large(max_body));
        }
        let before = body.len();
        reader.by_ref().take(size).read_to_end(&mut body).map_err(|e| Failure::io(&e, "reading a chunk"))?;
        if ((body.len() - before) as u64) < size {
            return Err(Failure::incomplete("the connection closed in the middle of a chunk"));
        }
        match read_line(reader, "the end of a chunk")? {
            Some(end) if end.is_empty() => {}
            _ => return Err(Failure::protocol("a chunk is longer than its size says (no CRLF after it)")),
        }
    }
}

fn skip_trailers(reader: &mut impl BufRead) -> Result<(), Failure> {
    for _ in 0..=MAX_HEADERS {
        match read_line(reader, "the trailers")? {
            // Servers that close right after the last chunk are common enough to accept.
            None => return Ok(()),
            Some(line) if line.is_empty() => return Ok(()),
            Some(_) => {}
        }
    }
    Err(Failure::protocol(format!("more than {MAX_HEADERS} trailer lines")))
}

/// One line without its `\r\n` (or bare `\n`), or `None` at the end of the stream.
fn read_line(reader: &mut impl BufRead, reading: &str) -> Result<Option<String>, Failure> {
    let mut line = Vec::new();
    let limit = MAX_LINE as u64 + 2;
    reader
        .by_ref()
        .take(limit)
        .read_until(b'\n', &mut line)
        .map_err(|e| Failure::io(&e, &format!("reading {reading}")))?;
    if line.is_empty() {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(if line.len() as u64 >= limit {
            Failure::protocol(format!("a line in {reading} is longer than {MAX_LINE} bytes"))
        } else {
            Failure::incomplete(format!("the connection closed in the middle of {reading}"))
        });
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).map(Some).map_err(|_| Failure::protocol(format!("{reading}: a line is not UTF-8")))
}

/// The start of untrusted text, for error messages.
fn excerpt(text: &str) -> String {
    text.chars().take(80).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::http::{Method, get};
    use proptest::prelude::*;

    fn read(raw: &[u8]) -> Result<RawResponse, Failure> {
        read_response(&mut &raw[..], false, 1 << 20)
    }

    fn read_ok(raw: &str) -> RawResponse {
        read(raw.as_bytes()).unwrap_or_else(|f| panic!("{f:?} for {raw:?}"))
    }

    fn read_err(raw: &str) -> Failure {
        read(raw.as_bytes()).expect_err(raw)
    }

    #[test]
    fn content_length_body() {
        let r = read_ok("HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 5\r\n\r\nhello-and-more");
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
        assert_eq!(r.headers[0], ("server".into(), "nginx".into()));
        let r = read_ok("HTTP/1.0 404 Not Found\r\ncontent-length: 0, 0\r\n\r\n");
        assert_eq!((r.status, r.body.len()), (404, 0));
    }

    #[test]
    fn chunked_body() {
        let raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n6;ext=1\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nx-trailer: 1\r\n\r\n";
        assert_eq!(String::from_utf8(read_ok(raw).body).unwrap(), "Wikipedia in \r\n\r\nchunks.");
        // A server may close right after the last chunk.
        assert_eq!(read_ok("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n1\r\na\r\n0\r\n").body, b"a");
    }

    #[test]
    fn body_until_close_and_bodyless_responses() {
        assert_eq!(
            read_ok("HTTP/1.1 200 OK\nContent-Type: text/plain\n\nline one\nline two\n").body,
            b"line one\nline two\n"
        );
        assert!(read_ok("HTTP/1.1 204 No Content\r\n\r\nignored").body.is_empty());
        let head = read_response(&mut &b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n"[..], true, 100).unwrap();
        assert!(head.body.is_empty());
        let r = read_ok("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok");
        assert_eq!((r.status, r.body.as_slice()), (201, &b"ok"[..]));
    }

    #[test]
    fn bodies_over_the_limit_are_refused() {
        let small = |raw: &str| read_response(&mut raw.as_bytes(), false, 4).expect_err(raw);
        for raw in [
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            "HTTP/1.1 200 OK\r\n\r\nhello",
        ] {
            let f = small(raw);
            assert_eq!((f.kind, f.code), (HttpErrorKind::BodyTooLarge, "HTTP-response-body-size"), "{raw}");
        }
        assert_eq!(read_response(&mut &b"HTTP/1.1 200 OK\r\n\r\nhell"[..], false, 4).unwrap().body, b"hell");
    }

    #[test]
    fn bad_input_is_an_error() {
        for (raw, expected) in [
            ("", "without a response"),
            ("SSH-2.0-OpenSSH\r\n\r\n", "invalid status line \"SSH-2.0-OpenSSH\""),
            ("HTTP/1.1 2000 OK\r\n\r\n", "invalid status line"),
            ("HTTP/1.1 099 Low\r\n\r\n", "invalid status line"),
            ("HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "no `:`"),
            ("HTTP/1.1 200 OK\r\nbad name: x\r\n\r\n", "invalid header name"),
            ("HTTP/1.1 200 OK\r\na: 1\r\n folded\r\n\r\n", "folded"),
            ("HTTP/1.1 200 OK\r\ncontent-type: x", "middle of the headers"),
            ("HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n", "invalid content-length"),
            ("HTTP/1.1 200 OK\r\ncontent-length: 1, 2\r\n\r\n", "conflicting"),
            ("HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999\r\n\r\n", "invalid content-length"),
            ("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort", "after 5 of 10 bytes"),
            ("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n", "invalid chunk size line \"zz\""),
            ("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n-1\r\n", "invalid chunk size"),
            ("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nffffffffffffffffffff\r\n", "invalid chunk size"),
            ("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nab", "middle of a chunk"),
            ("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n", "longer than its size"),
            ("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n", "before the last chunk"),
            ("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\nxx", "unsupported transfer-encoding"),
            ("HTTP/1.1 101 Switching Protocols\r\n\r\n", "101"),
        ] {
            let f = read_err(raw);
            assert!(f.detail.contains(expected), "{raw:?}: {f:?}");
        }
        let long = format!("HTTP/1.1 200 OK\r\nx: {}\r\n\r\n", "a".repeat(MAX_LINE + 10));
        assert!(read_err(&long).detail.contains("longer than"));
        let many = format!("HTTP/1.1 200 OK\r\n{}\r\n", "a: 1\r\n".repeat(MAX_HEADERS + 1));
        assert!(read_err(&many).detail.contains("header lines"));
    }

    #[test]
    fn authorities() {
        assert_eq!(split_authority("127.0.0.1:8080"), Some(("127.0.0.1", 8080)));
        assert_eq!(split_authority("localhost"), Some(("localhost", 80)));
        assert_eq!(split_authority("[::1]:2379"), Some(("::1", 2379)));
        assert_eq!(split_authority("[::1]"), Some(("::1", 80)));
        assert_eq!(split_authority("h:99999"), None);
        assert_eq!(split_authority("::1"), None);
        assert_eq!(split_authority("[::1]x"), None);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = read_response(&mut &bytes[..], false, 64);
        }

        #[test]
        fn response_like_text_never_panics(
            head in prop::sample::select(vec!["HTTP/1.1 200 OK\r\n", "HTTP/1.0 100 x\r\n", "HTTP/1.1 204 \r\n", ""]),
            lines in prop::collection::vec(prop::sample::select(vec![
                "transfer-encoding: chunked", "content-length: 3", "content-length: x", "", "0", "3", "abc",
                "ffffffff", "1;x", "a: b", " fold", "HTTP/1.1 200 OK", "\u{e9}",
            ]), 0..12),
        ) {
            let raw = format!("{head}{}", lines.join("\r\n"));
            let _ = read_response(&mut raw.as_bytes(), false, 64);
        }
    }

    /// Serve one canned response on a loopback port; returns the URL and what the client sent.
    fn serve_once(response: &'static [u8]) -> (String, std::thread::JoinHandle<String>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/metrics?x=1", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let mut request = String::new();
            // Headers, then as many body bytes as content-length says.
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                request.push_str(&line);
                if line == "\r\n" || line.is_empty() {
                    break;
                }
            }
            let length = request
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            request.push_str(&String::from_utf8(body).unwrap());
            reader.get_mut().write_all(response).unwrap();
            request
        });
        (url, handle)
    }

    #[test]
    fn round_trip_over_loopback() {
        let (url, server) =
            serve_once(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
        let response = Request::post(&url).header("Content-Type", "application/json").body("{}").send().unwrap();
        assert_eq!((response.status, response.text().unwrap()), (200, "{}"));
        assert_eq!(response.method, Method::Post);
        assert_eq!(response.header("content-type"), Some("application/json"));
        let sent = server.join().unwrap();
        let authority = url.trim_start_matches("http://").split('/').next().unwrap();
        assert!(sent.starts_with(&format!("POST /metrics?x=1 HTTP/1.1\r\nhost: {authority}\r\n")), "{sent}");
        assert!(sent.contains("content-type: application/json\r\ncontent-length: 2\r\n\r\n{}"), "{sent}");
    }

    #[test]
    fn refused_connections_and_https_are_errors() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let err = get(&format!("http://127.0.0.1:{port}/stub_status")).unwrap_err();
        assert_eq!((err.kind(), err.code()), (HttpErrorKind::Unreachable, Some("connection-refused")));
        assert_eq!(
            err.to_string(),
            format!("GET http://127.0.0.1:{port}/stub_status: connection refused (connection-refused)")
        );
        let err = get("https://127.0.0.1:1/").unwrap_err();
        assert_eq!(err.kind(), HttpErrorKind::InvalidRequest);
        assert!(err.to_string().contains("plain http:// only"), "{err}");
    }
}
