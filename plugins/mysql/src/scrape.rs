//! One scrape: connect, log in, run the enabled collectors on that one
//! connection, quit, and add the exporter's own families.

use crate::collectors::Families;
use crate::config::Settings;
use crate::protocol::{Conn, Session, describe_io};
use crate::values::version_number;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Instant;
use wasmon_sdk::{Family, MetricFamily, MetricKind, PluginError};

/// What a scrape produced, and what went wrong on the way (for the log).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub families: Vec<MetricFamily>,
    /// Why `mysql_up` is 0 (`connect to 127.0.0.1:3306: connection refused`).
    pub down: Option<String>,
    /// One line per failed collector (`collector collect.slave_status failed: ...`).
    pub failures: Vec<String>,
}

impl Outcome {
    fn down(reason: String) -> Self {
        Outcome { families: down(), down: Some(reason), failures: Vec::new() }
    }

    /// Log the problems as warnings through the host and return the families.
    pub fn logged(self) -> Vec<MetricFamily> {
        if let Some(reason) = &self.down {
            wasmon_sdk::log::warn(&format!("mysql is down: {reason}"));
        }
        for failure in &self.failures {
            wasmon_sdk::log::warn(failure);
        }
        self.families
    }
}

/// Scrape the server at `address` (`host:port`). A server that is down or
/// refuses the login is not an error: the outcome says `mysql_up 0` and why.
/// Only a target without a port and a TCP connection the host does not
/// allow are errors, since they need the job's config fixed.
pub fn scrape(address: &str, settings: &Settings, password: Option<&str>) -> Result<Outcome, PluginError> {
    let started = Instant::now();
    let mut conn = match connect(address, settings, password) {
        Ok(conn) => conn,
        Err(Refused::Down(reason)) => return Ok(Outcome::down(reason)),
        Err(Refused::Plugin(e)) => return Err(e),
    };
    let outcome = run(&mut conn, settings, started);
    conn.quit();
    Ok(outcome)
}

/// Why no connection was made.
enum Refused {
    /// Report `mysql_up 0`.
    Down(String),
    /// Fail the scrape: the job's config is wrong, not the server.
    Plugin(PluginError),
}

fn connect(address: &str, settings: &Settings, password: Option<&str>) -> Result<Conn<TcpStream>, Refused> {
    if !has_port(address) {
        return Err(Refused::Plugin(PluginError::config(format!(
            "target {address:?} has no port; use host:port, such as 127.0.0.1:3306"
        ))));
    }
    let addrs: Vec<SocketAddr> = address
        .to_socket_addrs()
        .map_err(|e| Refused::Down(format!("cannot resolve {address}: {}", describe_io(&e))))?
        .collect();
    let mut last_error = None;
    let mut stream = None;
    for addr in &addrs {
        match connect_one(addr, settings) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(Refused::Plugin(PluginError::permission_denied(format!(
                    "connect to {address}: {}; the job must grant `capabilities: {{tcp: true}}`",
                    describe_io(&e)
                ))));
            }
            Err(e) => last_error = Some(e),
        }
    }
    let Some(stream) = stream else {
        let reason = last_error.map_or_else(|| "no address".to_string(), |e| describe_io(&e));
        return Err(Refused::Down(format!("connect to {address}: {reason}")));
    };
    // Best effort: in wasm the host's call deadline bounds reads anyway.
    for result in [
        stream.set_read_timeout(Some(settings.timeout)),
        stream.set_write_timeout(Some(settings.timeout)),
        stream.set_nodelay(true),
    ] {
        if let Err(e) = result {
            wasmon_sdk::log::debug(&format!("socket option on {address}: {}", describe_io(&e)));
        }
    }
    let password_given = password.is_some();
    Conn::handshake(stream, &settings.user, password.unwrap_or("").as_bytes()).map_err(|e| {
        Refused::Down(match e.server_error() {
            // Refusals sent instead of the greeting.
            Some(se) if matches!(se.code, 1040 | 1129 | 1130) => format!("{address} refused the connection: {se}"),
            Some(se) if !password_given => {
                format!("authentication failed: {se} (the job has no `password` secret)")
            }
            Some(se) => format!("authentication failed: {se}"),
            None => format!("login to {address} failed: {e}"),
        })
    })
}

/// Connect with the configured timeout. In wasm a plain blocking connect:
/// `connect_timeout` there polls a non-blocking socket and, against a closed
/// port, now and then reports success for a socket that never connected; the
/// host's call deadline bounds the blocking connect instead.
fn connect_one(addr: &SocketAddr, settings: &Settings) -> std::io::Result<TcpStream> {
    if cfg!(target_arch = "wasm32") {
        return TcpStream::connect(addr);
    }
    TcpStream::connect_timeout(addr, settings.timeout)
}

/// `host:port` or `[v6]:port`.
fn has_port(address: &str) -> bool {
    let port = match address.strip_prefix('[') {
        Some(rest) => rest.split_once("]:").map(|(_, port)| port),
        None => address.rsplit_once(':').filter(|(host, _)| !host.contains(':')).map(|(_, port)| port),
    };
    port.is_some_and(|p| p.parse::<u16>().is_ok())
}

/// The families of a scrape on an open session: `SET lock_wait_timeout`,
/// the version, every enabled collector, and the exporter's own families.
/// `started` is when the connection began (for the `connection` duration).
pub fn run(session: &mut dyn Session, settings: &Settings, started: Instant) -> Outcome {
    // The exporter's driver sends this while connecting; if it fails, so does the connection.
    let set = format!("SET lock_wait_timeout={}", settings.lock_wait_timeout);
    if let Err(e) = session.query(&set) {
        return Outcome::down(format!("{set}: {e}"));
    }
    let mut durations = Family::gauge("mysql_exporter_collector_duration_seconds", "Collector time duration.");
    durations.sample(&[("collector", "connection")], started.elapsed().as_secs_f64());

    let version = server_version(session);
    let mut out = Families::default();
    let mut failures = Vec::new();
    for collector in &settings.collectors {
        if version < collector.min_version {
            continue;
        }
        let label = format!("collect.{}", collector.name);
        let began = Instant::now();
        if let Err(e) = (collector.collect)(session, &mut out) {
            failures.push(format!("collector {label} failed: {e}"));
        }
        durations.sample(&[("collector", &label)], began.elapsed().as_secs_f64());
    }

    let mut families: Vec<MetricFamily> =
        out.into_vec().into_iter().filter(|f| !f.is_empty()).map(Family::build).collect();
    families.push(durations.build());
    families.push(up(1.0));
    families.push(last_scrape_error(!failures.is_empty()));
    families.sort_by(|a, b| a.name.cmp(&b.name));
    Outcome { families, down: None, failures }
}

/// `SELECT @@version` as a number; the exporter assumes 999 when it cannot tell.
fn server_version(session: &mut dyn Session) -> f64 {
    match session.query("SELECT @@version") {
        Ok(rs) => rs.rows.first().and_then(|r| r.first().cloned().flatten()).map_or(999.0, |v| version_number(&v)),
        Err(e) => {
            wasmon_sdk::log::debug(&format!("SELECT @@version: {e}"));
            999.0
        }
    }
}

/// The families of a scrape that could not log in.
pub fn down() -> Vec<MetricFamily> {
    vec![last_scrape_error(true), up(0.0)]
}

fn up(value: f64) -> MetricFamily {
    let mut f = Family::new("mysql_up", "Whether the MySQL server is up.", MetricKind::Gauge);
    f.sample(&[], value);
    f.build()
}

fn last_scrape_error(failed: bool) -> MetricFamily {
    let mut f = Family::gauge(
        "mysql_exporter_last_scrape_error",
        "Whether the last scrape of metrics from MySQL resulted in an error (1 for error, 0 for success).",
    );
    f.sample(&[], if failed { 1.0 } else { 0.0 });
    f.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert!(has_port("127.0.0.1:3306"));
        assert!(has_port("db.example:3306"));
        assert!(has_port("[::1]:3306"));
        assert!(!has_port("db.example"));
        assert!(!has_port("::1"));
        assert!(!has_port("[::1]"));
        assert!(!has_port("db:99999"));
    }
}
