//! The processor: config, and logfmt body to attributes for one record.

use crate::decode::{Decoder, SyntaxError};
use crate::time::TimestampFormat;
use serde::Deserialize;
use std::collections::HashMap;
use wasmon_sdk_logs::LogRecord;

/// The plugin's config section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogfmtConfig {
    /// Prepended to every attribute name made from a key (not to `level`).
    #[serde(default)]
    pub prefix: String,
    /// The key whose value becomes the body.
    #[serde(default)]
    pub message_key: Option<String>,
    /// The key whose value becomes attribute `level_attribute`, normalised as
    /// logs-json normalises levels.
    #[serde(default)]
    pub level_key: Option<String>,
    #[serde(default = "default_level_attribute")]
    pub level_attribute: String,
    /// The key whose value becomes the record's timestamp.
    #[serde(default)]
    pub timestamp_key: Option<String>,
    #[serde(default)]
    pub timestamp_format: TimestampFormat,
    /// Which value a key that appears twice keeps.
    #[serde(default)]
    pub duplicate_keys: DuplicateKeys,
    /// What a key without `=` (`flag`) becomes.
    #[serde(default)]
    pub bare_keys: BareKeys,
    /// Leave a body alone when it has no `key=value` pair at all (plain text).
    #[serde(default = "default_true")]
    pub skip_without_pairs: bool,
    /// Attribute that receives go-logfmt's error for a line that is not valid logfmt.
    #[serde(default = "default_error_attribute")]
    pub error_attribute: String,
}

impl Default for LogfmtConfig {
    fn default() -> Self {
        Self {
            prefix: String::new(),
            message_key: None,
            level_key: None,
            level_attribute: default_level_attribute(),
            timestamp_key: None,
            timestamp_format: TimestampFormat::default(),
            duplicate_keys: DuplicateKeys::default(),
            bare_keys: BareKeys::default(),
            skip_without_pairs: true,
            error_attribute: default_error_attribute(),
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_level_attribute() -> String {
    "level".into()
}

fn default_error_attribute() -> String {
    "logfmt.error".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DuplicateKeys {
    #[default]
    Last,
    First,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BareKeys {
    /// `flag` becomes `flag=""`, as go-logfmt reports it (a nil value).
    #[default]
    Empty,
    /// `flag` becomes `flag="true"`.
    True,
    /// Bare keys are not turned into attributes.
    Drop,
}

/// Everything wrong with a config section, all at once.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid logs-logfmt config: {0}")]
    Json(#[source] serde_json::Error),
    #[error("invalid logs-logfmt config: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

impl LogfmtConfig {
    /// The JSON section the host passes (`{}` or empty for all defaults), validated.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let text = text.trim();
        let cfg: Self = if text.is_empty() || text == "null" {
            Self::default()
        } else {
            serde_json::from_str(text).map_err(ConfigError::Json)?
        };
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let keys = [
            ("message_key", &self.message_key),
            ("level_key", &self.level_key),
            ("timestamp_key", &self.timestamp_key),
        ];
        for (name, key) in keys {
            if let Some(k) = key
                && (k.is_empty() || k.bytes().any(|c| c <= b' ' || c == b'=' || c == b'"'))
            {
                problems.push(format!(
                    "{name}: {k:?} can never be a logfmt key (keys are non-empty and contain no spaces, '=' or '\"')"
                ));
            }
        }
        for (i, (a, ka)) in keys.iter().enumerate() {
            for (b, kb) in &keys[i + 1..] {
                if let (Some(x), Some(y)) = (ka, kb)
                    && x == y
                {
                    problems.push(format!("{a} and {b} are both {x:?}; a key can play one role only"));
                }
            }
        }
        if self.level_attribute.is_empty() {
            problems.push("level_attribute: must not be empty".into());
        }
        if self.error_attribute.is_empty() {
            problems.push("error_attribute: must not be empty".into());
        }
        if problems.is_empty() { Ok(()) } else { Err(ConfigError::Invalid(problems)) }
    }
}

/// What happened to one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The whole body was logfmt.
    Parsed,
    /// Pairs up to a syntax error became attributes; the body is unchanged and the
    /// error is in `error_attribute`.
    Partial(SyntaxError),
    /// No `key=value` pair: left exactly as it was.
    Skipped,
}

/// Records seen, by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub parsed: u64,
    pub partial: u64,
    pub skipped: u64,
    /// `timestamp_key` present but not in `timestamp_format`.
    pub bad_timestamps: u64,
    /// Records with `level_key`, by normalised level: `LEVELS`, then `other`.
    pub levels: [u64; 7],
}

/// The levels `normalise_level` maps to (logs-json's), in `Stats::levels` order.
pub const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "fatal"];

/// The canonical level for common spellings (syslog names, log4j, zap, logrus, pino's
/// numbers), as logs-json has it, and its slot in `Stats::levels` (6: `other`, the
/// value lowercased).
pub fn normalise_level(raw: &str) -> (String, usize) {
    let lower = raw.trim().to_ascii_lowercase();
    let canonical = match lower.as_str() {
        "trace" | "trc" | "finest" | "10" => "trace",
        "debug" | "dbg" | "fine" | "finer" | "20" => "debug",
        "info" | "inf" | "information" | "informational" | "notice" | "30" => "info",
        "warn" | "warning" | "wrn" | "40" => "warn",
        "error" | "err" | "severe" | "50" => "error",
        "fatal" | "critical" | "crit" | "alert" | "emerg" | "emergency" | "panic" | "dpanic" | "60" => "fatal",
        _ => return (lower, 6),
    };
    let slot = LEVELS.iter().position(|l| *l == canonical).unwrap_or(6);
    (canonical.to_string(), slot)
}

#[derive(Debug, Clone)]
pub struct Logfmt {
    cfg: LogfmtConfig,
    pub stats: Stats,
}

enum Role {
    Message,
    Level,
    Timestamp,
    Field,
}

impl Logfmt {
    pub fn new(cfg: LogfmtConfig) -> Self {
        Self { cfg, stats: Stats::default() }
    }

    pub fn config(&self) -> &LogfmtConfig {
        &self.cfg
    }

    pub fn process_batch(&mut self, mut batch: Vec<LogRecord>) -> Vec<LogRecord> {
        for record in &mut batch {
            self.process(record);
        }
        batch
    }

    fn role(&self, key: &str) -> Role {
        let is = |k: &Option<String>| k.as_deref() == Some(key);
        if is(&self.cfg.message_key) {
            Role::Message
        } else if is(&self.cfg.level_key) {
            Role::Level
        } else if is(&self.cfg.timestamp_key) {
            Role::Timestamp
        } else {
            Role::Field
        }
    }

    pub fn process(&mut self, record: &mut LogRecord) -> Outcome {
        let outcome = self.apply(record);
        match outcome {
            Outcome::Parsed => self.stats.parsed += 1,
            Outcome::Partial(_) => self.stats.partial += 1,
            Outcome::Skipped => self.stats.skipped += 1,
        }
        outcome
    }

    fn apply(&mut self, record: &mut LogRecord) -> Outcome {
        let (pairs, error) = Decoder::decode_all(&record.body);
        if self.cfg.skip_without_pairs && !pairs.iter().any(|p| p.value.is_some()) {
            return Outcome::Skipped;
        }
        // Keys in first-seen order, each with the value the duplicate rule keeps.
        let mut order: Vec<(&str, Vec<u8>)> = Vec::with_capacity(pairs.len());
        let mut index: HashMap<&str, usize> = HashMap::with_capacity(pairs.len());
        for pair in &pairs {
            let value: Vec<u8> = match (&pair.value, self.cfg.bare_keys) {
                (Some(v), _) => v.to_vec(),
                (None, BareKeys::Empty) => Vec::new(),
                (None, BareKeys::True) => b"true".to_vec(),
                (None, BareKeys::Drop) => continue,
            };
            match index.get(pair.key) {
                Some(&i) if self.cfg.duplicate_keys == DuplicateKeys::Last => order[i].1 = value,
                Some(_) => {}
                None => {
                    index.insert(pair.key, order.len());
                    order.push((pair.key, value));
                }
            }
        }

        let mut fields: Vec<(String, String)> = Vec::with_capacity(order.len());
        let mut message: Option<(&str, Vec<u8>)> = None;
        let mut lossy = false;
        let mut bad_timestamp = None;
        for (key, value) in order {
            match self.role(key) {
                Role::Message => message = Some((key, value)),
                Role::Level => {
                    let (level, slot) = normalise_level(&text(value, &mut lossy));
                    self.stats.levels[slot] += 1;
                    fields.push((self.cfg.level_attribute.clone(), level));
                }
                Role::Timestamp => {
                    let parsed = std::str::from_utf8(&value).ok().and_then(|t| self.cfg.timestamp_format.parse(t));
                    match parsed {
                        Some(ns) => record.timestamp_ns = ns,
                        None => {
                            let value = text(value, &mut lossy);
                            bad_timestamp = Some(format!(
                                "{key}={value:?} is not a timestamp ({})",
                                self.cfg.timestamp_format.name()
                            ));
                            fields.push((format!("{}{key}", self.cfg.prefix), value));
                        }
                    }
                }
                Role::Field => fields.push((format!("{}{key}", self.cfg.prefix), text(value, &mut lossy))),
            }
        }
        if let Some((key, bytes)) = message {
            // The body is replaced only when nothing else lost bytes to U+FFFD: then
            // the original body, which holds them, stays.
            if error.is_none() && !lossy {
                record.body = bytes;
            } else {
                let mut ignored = false;
                fields.push((format!("{}{key}", self.cfg.prefix), text(bytes, &mut ignored)));
            }
        }
        for (k, v) in fields {
            record.set_attribute(k, v);
        }
        if bad_timestamp.is_some() {
            self.stats.bad_timestamps += 1;
        }
        match error {
            Some(e) => {
                record.set_attribute(self.cfg.error_attribute.clone(), e.to_string());
                Outcome::Partial(e)
            }
            None => {
                if let Some(reason) = bad_timestamp {
                    record.set_attribute(self.cfg.error_attribute.clone(), reason);
                }
                Outcome::Parsed
            }
        }
    }
}

/// UTF-8 text of a value; invalid sequences become U+FFFD and set `lossy`.
fn text(bytes: Vec<u8>, lossy: &mut bool) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| {
        *lossy = true;
        String::from_utf8_lossy(e.as_bytes()).into_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(cfg: &str, body: &[u8]) -> (LogRecord, Outcome) {
        let mut p = Logfmt::new(LogfmtConfig::from_json(cfg).unwrap());
        let mut r = LogRecord::new(0, 7, body);
        let outcome = p.process(&mut r);
        (r, outcome)
    }

    fn attrs(r: &LogRecord) -> Vec<(&str, &str)> {
        let mut v: Vec<_> = r.attributes.iter().collect();
        v.sort();
        v
    }

    #[test]
    fn plain_pairs_become_attributes_body_kept() {
        let (r, o) = run("{}", br#"level=info msg="hello \"world\"" took=12ms flag"#);
        assert_eq!(o, Outcome::Parsed);
        assert_eq!(r.body, br#"level=info msg="hello \"world\"" took=12ms flag"#);
        assert_eq!(attrs(&r), vec![("flag", ""), ("level", "info"), ("msg", "hello \"world\""), ("took", "12ms")]);
        assert_eq!(r.timestamp_ns, 7);
    }

    #[test]
    fn roles_and_prefix() {
        let cfg = r#"{"prefix":"app.","message_key":"msg","level_key":"lvl","timestamp_key":"ts"}"#;
        let (r, o) = run(cfg, b"ts=2024-05-01T12:00:00.5Z lvl=warn msg=\"disk 91% full\" dev=sda");
        assert_eq!(o, Outcome::Parsed);
        assert_eq!(r.body, b"disk 91% full");
        assert_eq!(r.timestamp_ns, 1_714_564_800_500_000_000);
        assert_eq!(attrs(&r), vec![("app.dev", "sda"), ("level", "warn")]);
    }

    #[test]
    fn level_is_normalised_as_logs_json_does() {
        let cfg = r#"{"level_key":"lvl","level_attribute":"severity"}"#;
        assert_eq!(attrs(&run(cfg, b"lvl=WARNING a=1").0), vec![("a", "1"), ("severity", "warn")]);
        assert_eq!(attrs(&run(cfg, b"lvl=50").0), vec![("severity", "error")]);
        assert_eq!(attrs(&run(cfg, b"lvl=Verbose").0), vec![("severity", "verbose")]);
    }

    #[test]
    fn duplicate_keys() {
        assert_eq!(attrs(&run("{}", b"a=1 a=2").0), vec![("a", "2")]);
        assert_eq!(attrs(&run(r#"{"duplicate_keys":"first"}"#, b"a=1 a=2").0), vec![("a", "1")]);
    }

    #[test]
    fn bare_keys_options() {
        assert_eq!(attrs(&run(r#"{"bare_keys":"true"}"#, b"a=1 verbose").0), vec![("a", "1"), ("verbose", "true")]);
        assert_eq!(attrs(&run(r#"{"bare_keys":"drop"}"#, b"a=1 verbose").0), vec![("a", "1")]);
    }

    #[test]
    fn plain_text_is_skipped_unless_asked() {
        let (r, o) = run("{}", b"Starting server on port 8080");
        assert_eq!((o, r.attributes.len()), (Outcome::Skipped, 0));
        let (r, o) = run("{}", b"");
        assert_eq!((o, r.attributes.len()), (Outcome::Skipped, 0));
        let (r, o) = run(r#"{"skip_without_pairs":false}"#, b"two words");
        assert_eq!(o, Outcome::Parsed);
        assert_eq!(attrs(&r), vec![("two", ""), ("words", "")]);
    }

    #[test]
    fn garbage_keeps_body_and_earlier_pairs_and_marks() {
        let body = b"level=error msg=\"unterminated";
        let (r, o) = run(r#"{"message_key":"msg"}"#, body);
        assert!(matches!(o, Outcome::Partial(SyntaxError::UnterminatedQuote { pos: 30 })), "{o:?}");
        assert_eq!(r.body, body);
        assert_eq!(
            attrs(&r),
            vec![("level", "error"), ("logfmt.error", "logfmt syntax error at pos 30: unterminated quoted value")]
        );
    }

    #[test]
    fn invalid_utf8_value_keeps_original_body() {
        let (r, o) = run(r#"{"message_key":"msg"}"#, b"user=caf\xe9 msg=hi");
        assert_eq!(o, Outcome::Parsed);
        assert_eq!(r.body, b"user=caf\xe9 msg=hi");
        assert_eq!(attrs(&r), vec![("msg", "hi"), ("user", "caf\u{FFFD}")]);
        // Only the message is invalid: it moves to the body byte for byte.
        let (r, _) = run(r#"{"message_key":"msg"}"#, b"user=bob msg=caf\xe9");
        assert_eq!(r.body, b"caf\xe9");
        assert_eq!(attrs(&r), vec![("user", "bob")]);
    }

    #[test]
    fn bad_timestamp_is_kept_and_marked() {
        let (r, o) = run(r#"{"timestamp_key":"ts"}"#, b"ts=yesterday a=1");
        assert_eq!(o, Outcome::Parsed);
        assert_eq!(r.timestamp_ns, 7);
        assert_eq!(
            attrs(&r),
            vec![("a", "1"), ("logfmt.error", "ts=\"yesterday\" is not a timestamp (auto)"), ("ts", "yesterday")]
        );
        let (r, _) = run(r#"{"timestamp_key":"ts","timestamp_format":"unix_millis"}"#, b"ts=1714564800123");
        assert_eq!(r.timestamp_ns, 1_714_564_800_123_000_000);
    }

    #[test]
    fn overwrites_existing_attribute() {
        let mut p = Logfmt::new(LogfmtConfig::default());
        let mut r = LogRecord::new(0, 0, "a=new");
        r.set_attribute("a", "old");
        p.process(&mut r);
        assert_eq!(r.attributes.to_vec(), [("a".to_string(), "new".to_string())]);
    }

    #[test]
    fn config_problems_reported_together() {
        let err = LogfmtConfig::from_json(
            r#"{"message_key":"a b","level_key":"x","timestamp_key":"x","error_attribute":""}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("message_key: \"a b\" can never be a logfmt key"), "{err}");
        assert!(err.contains("level_key and timestamp_key are both \"x\""), "{err}");
        assert!(err.contains("error_attribute: must not be empty"), "{err}");
        let err = LogfmtConfig::from_json(r#"{"prefx":"a"}"#).unwrap_err().to_string();
        assert!(err.contains("unknown field `prefx`"), "{err}");
    }
}
