//! The processor: config, access-log line to attributes, and the metrics.

use crate::format::{COMBINED, COMMON, FormatError, LogFormat};
use crate::metrics::{NginxMetrics, default_buckets, method_label};
use crate::time::{parse_msec, parse_rfc3339, parse_time_local};
use serde::Deserialize;
use wasmon_sdk_logs::LogRecord;

/// The plugin's config section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NginxConfig {
    /// `combined`, `common`, or a `log_format` string in nginx's syntax.
    #[serde(default = "default_format")]
    pub format: String,
    /// Prepended to every attribute name.
    #[serde(default)]
    pub prefix: String,
    /// `$time_local` / `$time_iso8601` / `$msec` become the record's timestamp
    /// (instead of an attribute).
    #[serde(default = "default_true")]
    pub set_timestamp: bool,
    #[serde(default)]
    pub on_no_match: OnNoMatch,
    /// Set to `true` on unparsed records with `on_no_match: mark`.
    #[serde(default = "default_no_match_attribute")]
    pub no_match_attribute: String,
    /// Upper bounds of `nginx_http_response_size_bytes`, in bytes.
    #[serde(default = "default_buckets")]
    pub response_size_buckets: Vec<f64>,
}

impl Default for NginxConfig {
    fn default() -> Self {
        Self {
            format: default_format(),
            prefix: String::new(),
            set_timestamp: true,
            on_no_match: OnNoMatch::default(),
            no_match_attribute: default_no_match_attribute(),
            response_size_buckets: default_buckets(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnNoMatch {
    #[default]
    Keep,
    Drop,
    Mark,
}

fn default_format() -> String {
    "combined".into()
}

fn default_true() -> bool {
    true
}

fn default_no_match_attribute() -> String {
    "nginx.no_match".into()
}

/// Everything wrong with a config section, all at once.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid logs-nginx config: {0}")]
    Json(#[source] serde_json::Error),
    #[error("invalid logs-nginx config: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

/// How each variable's value is checked and stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `$request`: split into method, path, protocol.
    Request,
    /// Three digits.
    Status,
    /// Digits (or `-`, Apache's zero); the histogram's value.
    BodyBytes,
    /// `$bytes_sent`: digits or `-`.
    Bytes,
    TimeLocal,
    TimeIso8601,
    Msec,
    /// Stored under another name (`http_referer` → `referer`).
    Renamed(&'static str),
    Plain,
}

fn kind(variable: &str) -> Kind {
    match variable {
        "request" => Kind::Request,
        "status" => Kind::Status,
        "body_bytes_sent" => Kind::BodyBytes,
        "bytes_sent" => Kind::Bytes,
        "time_local" => Kind::TimeLocal,
        "time_iso8601" => Kind::TimeIso8601,
        "msec" => Kind::Msec,
        "http_referer" => Kind::Renamed("referer"),
        "http_user_agent" => Kind::Renamed("user_agent"),
        _ => Kind::Plain,
    }
}

/// What happened to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Parsed,
    /// Not in the configured format; kept, dropped or marked per `on_no_match`.
    NoMatch,
}

#[derive(Debug, Clone)]
pub struct NginxProcessor {
    cfg: NginxConfig,
    format: LogFormat,
    /// Attribute name per variable of `format`, prefix included.
    names: Vec<(Kind, String)>,
    pub metrics: NginxMetrics,
}

impl NginxConfig {
    /// The JSON section the host passes (`{}` or empty for all defaults).
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let text = text.trim();
        if text.is_empty() || text == "null" {
            return Ok(Self::default());
        }
        serde_json::from_str(text).map_err(ConfigError::Json)
    }

    /// The format string `format` stands for.
    pub fn format_string(&self) -> &str {
        match self.format.as_str() {
            "combined" => COMBINED,
            "common" => COMMON,
            custom => custom,
        }
    }
}

impl NginxProcessor {
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        Self::new(NginxConfig::from_json(text)?)
    }

    pub fn new(cfg: NginxConfig) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let format = match LogFormat::parse(cfg.format_string()) {
            Ok(f) => Some(f),
            Err(e @ FormatError::NoVariables) => {
                problems.push(format!(
                    "format: {:?} is not `combined`, `common` or a log_format string with $variables ({e})",
                    cfg.format
                ));
                None
            }
            Err(e) => {
                problems.push(format!("format: {e}"));
                None
            }
        };
        let b = &cfg.response_size_buckets;
        if b.iter().any(|v| !v.is_finite()) || b.windows(2).any(|w| w[0] >= w[1]) {
            problems.push(format!(
                "response_size_buckets: {b:?} must be finite and strictly increasing (+Inf is always added)"
            ));
        }
        if cfg.on_no_match == OnNoMatch::Mark && cfg.no_match_attribute.is_empty() {
            problems.push("no_match_attribute: must not be empty with on_no_match: mark".into());
        }
        let Some(format) = format.filter(|_| problems.is_empty()) else {
            return Err(ConfigError::Invalid(problems));
        };
        let names = format
            .variables()
            .map(|v| {
                let k = kind(v);
                let name = match k {
                    Kind::Renamed(to) => to,
                    _ => v,
                };
                (k, format!("{}{name}", cfg.prefix))
            })
            .collect();
        let metrics = NginxMetrics::new(cfg.response_size_buckets.clone());
        Ok(Self { cfg, format, names, metrics })
    }

    pub fn config(&self) -> &NginxConfig {
        &self.cfg
    }

    pub fn process_batch(&mut self, batch: Vec<LogRecord>) -> Vec<LogRecord> {
        let mut out = Vec::with_capacity(batch.len());
        for mut record in batch {
            if self.process(&mut record) == Outcome::NoMatch && self.cfg.on_no_match == OnNoMatch::Drop {
                continue;
            }
            out.push(record);
        }
        out
    }

    /// Parses one record and counts it. The body is never changed. With
    /// `on_no_match: drop` the caller leaves out `NoMatch` records.
    pub fn process(&mut self, record: &mut LogRecord) -> Outcome {
        match self.parse(&record.body) {
            Some(parsed) => {
                let status = parsed.status.clone().unwrap_or_default();
                let method = method_label(parsed.method.as_deref().unwrap_or_default()).to_string();
                *self.metrics.requests.entry((status, method)).or_insert(0) += 1;
                if let Some(size) = parsed.body_bytes {
                    self.metrics.response_size.observe(size as f64);
                }
                if let Some(ts) = parsed.timestamp_ns {
                    record.timestamp_ns = ts;
                }
                for (k, v) in parsed.attributes {
                    record.set_attribute(k, v);
                }
                Outcome::Parsed
            }
            None => {
                self.metrics.unparsed += 1;
                if self.cfg.on_no_match == OnNoMatch::Mark {
                    record.set_attribute(self.cfg.no_match_attribute.clone(), "true");
                }
                Outcome::NoMatch
            }
        }
    }

    /// The fields of one line, or `None` if it does not have the format (including
    /// a status that is not three digits, a size that is not a number, or a time
    /// that does not parse).
    pub fn parse(&self, line: &[u8]) -> Option<Parsed> {
        let values = self.format.match_line(line)?;
        let mut p = Parsed::default();
        for ((kind, name), (_, raw)) in self.names.iter().zip(values) {
            let value = match std::str::from_utf8(raw) {
                Ok(s) => std::borrow::Cow::Borrowed(s),
                // Only non-nginx lines have raw non-ASCII bytes (nginx writes \xHH);
                // the body keeps the original bytes.
                Err(_) => String::from_utf8_lossy(raw),
            };
            match kind {
                Kind::Status => {
                    if value.len() != 3 || !value.bytes().all(|c| c.is_ascii_digit()) {
                        return None;
                    }
                    p.status = Some(value.to_string());
                }
                Kind::BodyBytes | Kind::Bytes => {
                    let n = if value == "-" { 0 } else { value.parse::<u64>().ok()? };
                    if *kind == Kind::BodyBytes {
                        p.body_bytes = Some(n);
                    }
                }
                Kind::TimeLocal | Kind::TimeIso8601 | Kind::Msec => {
                    let ts = match kind {
                        Kind::TimeLocal => parse_time_local(&value),
                        Kind::TimeIso8601 => parse_rfc3339(&value),
                        _ => parse_msec(&value),
                    }?;
                    if self.cfg.set_timestamp {
                        p.timestamp_ns = Some(ts);
                        continue;
                    }
                }
                Kind::Request => {
                    let parts: Vec<&str> = value.split(' ').collect();
                    let prefix = &self.cfg.prefix;
                    match parts.as_slice() {
                        [method, path, protocol] if !method.is_empty() && !path.is_empty() => {
                            p.method = Some(method.to_string());
                            p.attributes.push((format!("{prefix}method"), method.to_string()));
                            p.attributes.push((format!("{prefix}path"), path.to_string()));
                            p.attributes.push((format!("{prefix}protocol"), protocol.to_string()));
                            continue;
                        }
                        // HTTP/0.9: no protocol.
                        [method, path] if !method.is_empty() && !path.is_empty() => {
                            p.method = Some(method.to_string());
                            p.attributes.push((format!("{prefix}method"), method.to_string()));
                            p.attributes.push((format!("{prefix}path"), path.to_string()));
                            continue;
                        }
                        // Anything else (`-`, a TLS handshake on a plain port) stays `request`.
                        _ => {}
                    }
                }
                Kind::Renamed(_) | Kind::Plain => {}
            }
            if value != "-" {
                p.attributes.push((name.clone(), value.into_owned()));
            }
        }
        Some(p)
    }
}

/// One parsed line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    pub attributes: Vec<(String, String)>,
    pub timestamp_ns: Option<i64>,
    pub status: Option<String>,
    pub method: Option<String>,
    pub body_bytes: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"192.0.2.7 - alice [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif?x=1 HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)""#;

    fn attrs(r: &LogRecord) -> Vec<(&str, &str)> {
        r.attributes.iter().collect()
    }

    #[test]
    fn combined_fields() {
        let mut p = NginxProcessor::from_json("{}").unwrap();
        let mut r = LogRecord::new(0, 1, LINE);
        assert_eq!(p.process(&mut r), Outcome::Parsed);
        assert_eq!(r.timestamp_ns, 971_211_336_000_000_000);
        assert_eq!(r.body, LINE.as_bytes(), "the body is kept");
        assert_eq!(
            attrs(&r),
            vec![
                ("body_bytes_sent", "2326"),
                ("method", "GET"),
                ("path", "/apache_pb.gif?x=1"),
                ("protocol", "HTTP/1.0"),
                ("referer", "http://www.example.com/start.html"),
                ("remote_addr", "192.0.2.7"),
                ("remote_user", "alice"),
                ("status", "200"),
                ("user_agent", "Mozilla/4.08 [en] (Win98; I ;Nav)"),
            ]
        );
    }

    #[test]
    fn dashes_are_absent_and_odd_requests_stay_whole() {
        let mut p = NginxProcessor::from_json(r#"{"prefix":"http.","set_timestamp":false}"#).unwrap();
        let line = r#"127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "\x16\x03\x01\x00\xA5\x01" 400 157 "-" "-""#;
        let mut r = LogRecord::new(0, 5, line);
        assert_eq!(p.process(&mut r), Outcome::Parsed);
        assert_eq!(r.timestamp_ns, 5);
        assert_eq!(
            attrs(&r),
            vec![
                ("http.body_bytes_sent", "157"),
                ("http.remote_addr", "127.0.0.1"),
                ("http.request", r"\x16\x03\x01\x00\xA5\x01"),
                ("http.status", "400"),
                ("http.time_local", "10/Oct/2000:13:55:36 +0000"),
            ]
        );
        assert_eq!(p.metrics.requests.get(&("400".to_string(), "OTHER".to_string())), Some(&1));
    }

    #[test]
    fn rejects_lines_with_wrong_values() {
        let p = NginxProcessor::from_json("{}").unwrap();
        for line in [
            LINE.replace(" 200 ", " 2000 "),
            LINE.replace(" 2326 ", " 2.3k "),
            LINE.replace("Oct/2000", "Okt/2000"),
            LINE[..LINE.len() - 1].to_string(),
            "plain text".to_string(),
        ] {
            assert_eq!(p.parse(line.as_bytes()), None, "{line}");
        }
    }

    #[test]
    fn common_and_apache_dash_size() {
        let mut p = NginxProcessor::from_json(r#"{"format":"common"}"#).unwrap();
        let mut r = LogRecord::new(0, 0, r#"10.1.1.1 - - [01/May/2024:14:00:00 +0200] "HEAD / HTTP/1.1" 304 -"#);
        assert_eq!(p.process(&mut r), Outcome::Parsed);
        assert_eq!(r.timestamp_ns, 1_714_564_800_000_000_000);
        assert_eq!(r.attribute("body_bytes_sent"), None);
        assert_eq!(p.metrics.response_size.count(), 1, "`-` counts as 0 bytes");
        assert_eq!(p.metrics.response_size.buckets()[0], (100.0, 1));
    }

    #[test]
    fn custom_format_with_extra_variables() {
        let cfg = r#"{"format":"$remote_addr [$time_iso8601] \"$request\" $status $body_bytes_sent rt=$request_time ua=\"$http_user_agent\""}"#;
        let mut p = NginxProcessor::from_json(cfg).unwrap();
        let mut r = LogRecord::new(
            0,
            0,
            r#"10.0.0.9 [2024-05-01T12:00:00+00:00] "POST /api HTTP/2.0" 201 17 rt=0.012 ua="curl/8.5.0""#,
        );
        assert_eq!(p.process(&mut r), Outcome::Parsed);
        assert_eq!(r.timestamp_ns, 1_714_564_800_000_000_000);
        assert_eq!(r.attribute("request_time"), Some("0.012"));
        assert_eq!(r.attribute("user_agent"), Some("curl/8.5.0"));
        assert_eq!(p.metrics.requests.get(&("201".to_string(), "POST".to_string())), Some(&1));
    }

    #[test]
    fn on_no_match() {
        let batch = || vec![LogRecord::new(0, 0, LINE), LogRecord::new(0, 0, "not an access log line")];
        let mut keep = NginxProcessor::from_json("{}").unwrap();
        assert_eq!(keep.process_batch(batch()).len(), 2);
        assert_eq!(keep.metrics.unparsed, 1);
        let mut drop = NginxProcessor::from_json(r#"{"on_no_match":"drop"}"#).unwrap();
        assert_eq!(drop.process_batch(batch()).len(), 1);
        let mut mark = NginxProcessor::from_json(r#"{"on_no_match":"mark"}"#).unwrap();
        let out = mark.process_batch(batch());
        assert_eq!(attrs(&out[1]), vec![("nginx.no_match", "true")]);
    }

    #[test]
    fn invalid_utf8_never_panics_and_body_stays() {
        let mut p = NginxProcessor::from_json("{}").unwrap();
        let mut line = LINE.as_bytes().to_vec();
        line.splice(14..14, *b"\xff\xfe");
        let mut r = LogRecord::new(0, 0, line.clone());
        assert_eq!(p.process(&mut r), Outcome::Parsed);
        assert_eq!(r.body, line);
        assert_eq!(r.attribute("remote_user"), Some("al\u{FFFD}\u{FFFD}ice"));
    }

    #[test]
    fn config_errors() {
        let err =
            NginxProcessor::from_json(r#"{"format":"main","response_size_buckets":[10, 5]}"#).unwrap_err().to_string();
        assert!(err.contains("format: \"main\" is not `combined`, `common` or a log_format string"), "{err}");
        assert!(err.contains("response_size_buckets: [10.0, 5.0] must be finite and strictly increasing"), "{err}");
        let err = NginxProcessor::from_json(r#"{"format":"$status$request"}"#).unwrap_err().to_string();
        assert!(err.contains("$status and $request have no text between them"), "{err}");
        let err = NginxProcessor::from_json(r#"{"fromat":"combined"}"#).unwrap_err().to_string();
        assert!(err.contains("unknown field `fromat`"), "{err}");
    }
}
