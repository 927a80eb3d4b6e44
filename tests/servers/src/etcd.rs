//! etcd 3.4 (Debian `etcd-server`), single member, plain HTTP or client-certificate TLS.
//!
//! [`Etcd::start`] serves clients on plain HTTP. [`Etcd::start_mtls`] first makes a CA, a
//! server certificate for `127.0.0.1`/`localhost` and a client certificate with `openssl`
//! (the recipe of the reference README), then serves clients on HTTPS and requires a client
//! certificate signed by that CA; `/metrics` and `/health` are also served on a plain-HTTP
//! port (`--listen-metrics-urls`), which is how readiness is probed. The peer port is always
//! plain HTTP on loopback.

use crate::{Process, free_port, http_get, require_binary, wait_until};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const ETCD: &str = "/usr/bin/etcd";
const OPENSSL: &str = "/usr/bin/openssl";

/// The files a client needs for an [`Etcd::start_mtls`] server.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA that signed the server and client certificates (PEM).
    pub ca_file: PathBuf,
    /// The client certificate (PEM), CN `wasmon-test-client`.
    pub client_cert: PathBuf,
    /// The client certificate's key (PEM, unencrypted).
    pub client_key: PathBuf,
}

/// A running single-member etcd, stopped by PID when dropped.
#[derive(Debug)]
pub struct Etcd {
    /// `127.0.0.1:port` of the client URL (HTTPS for [`Etcd::start_mtls`]).
    pub addr: String,
    pub port: u16,
    /// `127.0.0.1:port` of the plain-HTTP `/metrics` and `/health` listener, with TLS only.
    pub metrics_addr: Option<String>,
    /// Certificates and key for clients, with TLS only.
    pub tls: Option<TlsFiles>,
    // Field order matters: the server stops before its directory goes.
    process: Process,
    dir: tempfile::TempDir,
}

impl Etcd {
    /// Start etcd with clients on plain HTTP.
    pub fn start() -> Self {
        Self::launch(false)
    }

    /// Start etcd with clients on HTTPS that must present a client certificate.
    pub fn start_mtls() -> Self {
        Self::launch(true)
    }

    fn launch(mtls: bool) -> Self {
        require_binary(ETCD, "etcd-server");
        let dir = tempfile::Builder::new().prefix("wasmon-etcd-").tempdir().expect("tempdir");
        let (port, peer_port) = (free_port(), free_port());
        let scheme = if mtls { "https" } else { "http" };
        let client_url = format!("{scheme}://127.0.0.1:{port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let log_path = dir.path().join("etcd.log");
        let log = File::create(&log_path).expect("etcd.log");
        let mut command = Command::new(ETCD);
        command
            .args(["--name", "wasmon-test"])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--listen-client-urls", &client_url, "--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url, "--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("wasmon-test={peer_url}"), "--initial-cluster-state", "new"])
            .stdout(Stdio::null())
            .stderr(log);
        let (tls, metrics_addr) = if mtls {
            let (server, tls) = make_certificates(&dir.path().join("tls"));
            let metrics_addr = format!("127.0.0.1:{}", free_port());
            command
                .arg("--cert-file")
                .arg(&server.0)
                .arg("--key-file")
                .arg(&server.1)
                .arg("--trusted-ca-file")
                .arg(&tls.ca_file)
                .arg("--client-cert-auth")
                .args(["--listen-metrics-urls", &format!("http://{metrics_addr}")]);
            (Some(tls), Some(metrics_addr))
        } else {
            (None, None)
        };
        let mut process = Process::spawn("etcd", &mut command);
        let probe = metrics_addr.clone().unwrap_or_else(|| format!("127.0.0.1:{port}"));
        wait_until("etcd to report /health true", Duration::from_secs(60), || {
            exited_early(&mut process, &log_path);
            matches!(http_get(&probe, "/health"), Ok((200, body)) if body.contains(r#""health":"true""#))
        });
        Etcd { addr: format!("127.0.0.1:{port}"), port, metrics_addr, tls, process, dir }
    }

    /// PID of etcd.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The throwaway directory (data, certificates, `etcd.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Put `key` = `value` through the v3 JSON gateway, so the revision moves (plain HTTP only).
    pub fn put(&self, key: &str, value: &str) {
        assert!(self.tls.is_none(), "Etcd::put speaks plain HTTP; this etcd requires TLS");
        let body = format!(r#"{{"key":"{}","value":"{}"}}"#, base64(key.as_bytes()), base64(value.as_bytes()));
        let (status, response) = http_post(&self.addr, "/v3/kv/put", &body).expect("POST /v3/kv/put");
        assert_eq!(status, 200, "POST /v3/kv/put: {response}");
    }
}

/// Make CA, server and client certificates in `dir`; returns the server's (cert, key) and
/// the client's files.
fn make_certificates(dir: &Path) -> ((PathBuf, PathBuf), TlsFiles) {
    require_binary(OPENSSL, "openssl");
    std::fs::create_dir_all(dir).expect("tls dir");
    let p = |name: &str| dir.join(name).to_string_lossy().into_owned();
    std::fs::write(
        p("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n\
         keyUsage=digitalSignature,keyEncipherment\n",
    )
    .expect("server.ext");
    std::fs::write(p("client.ext"), "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n")
        .expect("client.ext");
    let new_key = |key: &str, out: &str, subject: &str, x509: bool| {
        let mut args = vec!["req"];
        if x509 {
            args.extend(["-x509", "-days", "365"]);
        }
        args.extend(["-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", out, "-subj", subject]);
        openssl(&args);
    };
    let sign = |csr: &str, out: &str, ext: &str| {
        let (ca, ca_key) = (p("ca.crt"), p("ca.key"));
        let args = ["x509", "-req", "-in", csr, "-CA", &ca, "-CAkey", &ca_key, "-CAcreateserial", "-out", out];
        openssl(&[&args[..], &["-days", "365", "-extfile", ext]].concat());
    };
    new_key(&p("ca.key"), &p("ca.crt"), "/CN=wasmon-test-ca", true);
    new_key(&p("server.key"), &p("server.csr"), "/CN=localhost", false);
    sign(&p("server.csr"), &p("server.crt"), &p("server.ext"));
    new_key(&p("client.key"), &p("client.csr"), "/CN=wasmon-test-client", false);
    sign(&p("client.csr"), &p("client.crt"), &p("client.ext"));
    let tls = TlsFiles {
        ca_file: dir.join("ca.crt"),
        client_cert: dir.join("client.crt"),
        client_key: dir.join("client.key"),
    };
    ((dir.join("server.crt"), dir.join("server.key")), tls)
}

/// Panic with etcd's log when it has exited.
fn exited_early(process: &mut Process, log: &Path) {
    if let Ok(Some(status)) = process.child.try_wait() {
        let log = std::fs::read_to_string(log).unwrap_or_default();
        panic!("{} exited early with {status}; its log:\n{log}", process.name);
    }
}

fn openssl(args: &[&str]) {
    let out = Command::new(OPENSSL).args(args).output().expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A plain HTTP/1.1 POST on loopback with a JSON body; returns (status, body).
fn http_post(addr: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok((status, body.to_string()))
}

/// Standard base64 with padding, for the JSON gateway's `bytes` fields.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc_4648() {
        for (input, expected) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foobar", "Zm9vYmFy")] {
            assert_eq!(super::base64(input.as_bytes()), expected);
        }
    }
}
