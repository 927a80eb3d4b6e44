//! wasmon's `logs-json` log processor: JSON log bodies to flattened
//! attributes, with configurable message, timestamp and level keys. A body
//! that is not JSON is kept as it was and marked.
//!
//! Build: `cargo build --release --target wasm32-wasip2 -p wasmon-logs-json`.
//! The same code runs natively, so `cargo test` drives it with fixtures.

pub mod config;
pub mod parse;

use config::{JsonConfig, TimestampFormat};
use parse::{Outcome, Scalar};
use wasmon_sdk::attributes::ValueText;
use wasmon_sdk::{Family, MetricFamily, PluginError, PluginInfo};
use wasmon_sdk_logs::{LogBatch, LogProcessor, LogRecord};

const DESCRIPTION: &str = "Parses JSON log bodies into attributes (nested keys flattened), \
optionally taking the message, timestamp and level from chosen keys. Bodies that are not JSON \
pass unchanged, marked with an attribute. Needs no capabilities.";

/// Levels counted in `logs_json_records_by_level_total`; anything else is `other`.
const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "fatal"];

/// What happened to each record, for the metrics.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    pub parsed: u64,
    pub invalid: u64,
    pub not_json: u64,
    pub timestamp_errors: u64,
    /// Parsed records by level: `LEVELS`, then `other`, then `none` (no level key).
    pub levels: [u64; 8],
}

pub struct LogsJson {
    config: JsonConfig,
    pub counts: Counts,
}

impl LogsJson {
    pub fn new(config: JsonConfig) -> Self {
        Self { config, counts: Counts::default() }
    }

    /// Parse one record in place.
    pub fn apply(&mut self, record: &mut LogRecord) {
        let cfg = &self.config;
        let mut attributes = record.attributes.writer();
        let fields = match parse::parse(&record.body, cfg, &mut attributes) {
            Outcome::Parsed(fields) => fields,
            Outcome::NotObject => {
                self.counts.not_json += 1;
                if cfg.mark_non_json {
                    attributes.push(&cfg.error_attribute, "not a JSON object");
                }
                return;
            }
            Outcome::Invalid(reason) => {
                self.counts.invalid += 1;
                attributes.push(&cfg.error_attribute, &reason);
                return;
            }
        };
        self.counts.parsed += 1;
        if let Some(ts) = fields.timestamp {
            match timestamp_ns(&ts, cfg.timestamp_format) {
                Some(ns) => record.timestamp_ns = ns,
                None => {
                    self.counts.timestamp_errors += 1;
                    let key = cfg.timestamp_key.as_deref().unwrap_or_default();
                    attributes.push_with(&[&cfg.prefix, key], |value| write_scalar(value, ts));
                }
            }
        }
        let level_slot = match fields.level {
            Some(raw) => {
                let (level, slot) = normalise_level(&raw);
                attributes.push(&cfg.level_attribute, &level);
                slot
            }
            None if cfg.level_key.is_some() => 7,
            None => usize::MAX,
        };
        if let Some(slot) = self.counts.levels.get_mut(level_slot) {
            *slot += 1;
        }
        drop(attributes); // puts the attributes in key order
        if let Some(message) = fields.message {
            record.body = message.into_bytes();
        }
    }

    /// The plugin's families.
    pub fn families(&self) -> Vec<MetricFamily> {
        let c = &self.counts;
        let mut records = Family::counter("logs_json_records_total", "Records seen, by what their body was.");
        records.sample(&[("result", "parsed")], c.parsed as f64);
        records.sample(&[("result", "invalid")], c.invalid as f64);
        records.sample(&[("result", "not_json")], c.not_json as f64);
        let mut ts = Family::counter(
            "logs_json_timestamp_errors_total",
            "Parsed records whose timestamp key could not be read as a time; they keep the tailer's timestamp.",
        );
        ts.sample(&[], c.timestamp_errors as f64);
        let mut out = vec![records.build(), ts.build()];
        if self.config.level_key.is_some() {
            let mut levels = Family::counter(
                "logs_json_records_by_level_total",
                "Parsed records by normalised level (`other`: unrecognised, `none`: no level key).",
            );
            for (i, name) in LEVELS.iter().chain(&["other", "none"]).enumerate() {
                levels.sample(&[("level", name)], c.levels[i] as f64);
            }
            out.push(levels.build());
        }
        out
    }
}

/// The canonical level for common spellings (syslog names, log4j, zap,
/// pino's numbers), and its slot in `Counts::levels`.
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

/// Nanoseconds since the epoch, or `None` when the value is not a time in
/// the configured format (or out of range).
pub fn timestamp_ns(value: &Scalar, format: TimestampFormat) -> Option<i64> {
    let from_number = |n: f64, format: TimestampFormat| -> Option<i64> {
        let scale = match format {
            TimestampFormat::UnixSeconds => 1e9,
            TimestampFormat::UnixMillis => 1e6,
            TimestampFormat::UnixMicros => 1e3,
            TimestampFormat::UnixNanos => 1.0,
            TimestampFormat::Auto => match n.abs() {
                x if x < 1e11 => 1e9,
                x if x < 1e14 => 1e6,
                x if x < 1e17 => 1e3,
                _ => 1.0,
            },
            TimestampFormat::Rfc3339 => return None,
        };
        let ns = (n * scale).round();
        (ns.is_finite() && ns.abs() < i64::MAX as f64).then_some(ns as i64)
    };
    let from_int = |i: i128, format: TimestampFormat| -> Option<i64> {
        let mul: i128 = match format {
            TimestampFormat::UnixSeconds => 1_000_000_000,
            TimestampFormat::UnixMillis => 1_000_000,
            TimestampFormat::UnixMicros => 1_000,
            TimestampFormat::UnixNanos => 1,
            TimestampFormat::Auto => match i.abs() {
                x if x < 100_000_000_000 => 1_000_000_000,
                x if x < 100_000_000_000_000 => 1_000_000,
                x if x < 100_000_000_000_000_000 => 1_000,
                _ => 1,
            },
            TimestampFormat::Rfc3339 => return None,
        };
        i64::try_from(i.checked_mul(mul)?).ok()
    };
    match value {
        Scalar::Int(i) => from_int(*i, format),
        Scalar::Float(f) => from_number(*f, format),
        Scalar::Text(s) => {
            let s = s.trim();
            if matches!(format, TimestampFormat::Auto | TimestampFormat::Rfc3339)
                && let Ok(t) = chrono::DateTime::parse_from_rfc3339(s)
            {
                return t.timestamp_nanos_opt();
            }
            if format == TimestampFormat::Rfc3339 {
                return None;
            }
            if let Ok(i) = s.parse::<i128>() {
                return from_int(i, format);
            }
            s.parse::<f64>().ok().and_then(|f| from_number(f, format))
        }
    }
}

/// A timestamp that could not be read, put back as the attribute it was
/// (floats by the same rule as every other float attribute).
fn write_scalar(out: &mut ValueText<'_>, value: Scalar) {
    match value {
        Scalar::Text(s) => out.push_str(&s),
        Scalar::Int(i) => out.push_str(&i.to_string()),
        Scalar::Float(f) => wasmon_sdk::json::push_f64(out, f),
    }
}

impl LogProcessor for LogsJson {
    fn describe() -> PluginInfo {
        PluginInfo::new("logs-json", env!("CARGO_PKG_VERSION"), DESCRIPTION)
            .with_config_example(include_str!("../config.example.yaml"))
    }

    fn check_config(config: &str) -> Result<(), PluginError> {
        JsonConfig::parse(config).map(|_| ())
    }

    fn init(config: &str) -> Result<Self, PluginError> {
        Ok(Self::new(JsonConfig::parse(config)?))
    }

    fn process(&mut self, batch: LogBatch) -> Result<Vec<LogRecord>, PluginError> {
        let mut records = batch.records;
        for r in &mut records {
            self.apply(r);
        }
        Ok(records)
    }

    fn metrics(&mut self) -> Vec<MetricFamily> {
        self.families()
    }
}

wasmon_sdk_logs::export_log_processor!(LogsJson);

#[cfg(test)]
mod tests {
    use super::*;
    use wasmon_sdk_logs::testing::Harness;

    #[test]
    fn timestamps_in_every_format() {
        let t = 1_700_000_000_123_000_000_i64;
        for (value, format) in [
            (Scalar::Text("2023-11-14T22:13:20.123Z".into()), TimestampFormat::Auto),
            (Scalar::Text("2023-11-14T23:13:20.123+01:00".into()), TimestampFormat::Rfc3339),
            (Scalar::Int(1_700_000_000_123), TimestampFormat::Auto),
            (Scalar::Int(1_700_000_000_123), TimestampFormat::UnixMillis),
            (Scalar::Text("1700000000123000".into()), TimestampFormat::Auto),
            (Scalar::Int(t.into()), TimestampFormat::UnixNanos),
        ] {
            assert_eq!(timestamp_ns(&value, format), Some(t), "{value:?} as {format:?}");
        }
        // A float second count is only as precise as f64 (~256 ns here).
        let float = timestamp_ns(&Scalar::Float(1_700_000_000.123), TimestampFormat::Auto).unwrap();
        assert!((float - t).abs() < 1_000, "{float}");
        assert_eq!(timestamp_ns(&Scalar::Text("yesterday".into()), TimestampFormat::Auto), None);
        assert_eq!(timestamp_ns(&Scalar::Int(5), TimestampFormat::Rfc3339), None);
        assert_eq!(timestamp_ns(&Scalar::Int(i128::MAX / 2), TimestampFormat::UnixSeconds), None);
    }

    #[test]
    fn levels_normalise() {
        assert_eq!(normalise_level("WARNING"), ("warn".to_string(), 3));
        assert_eq!(normalise_level("50"), ("error".to_string(), 4));
        assert_eq!(normalise_level("Verbose"), ("verbose".to_string(), 6));
    }

    #[test]
    fn records_are_parsed_marked_and_counted() {
        let config = r#"{"message_key":"msg","timestamp_key":"time","level_key":"level"}"#;
        let mut h = Harness::<LogsJson>::new(config).unwrap();
        let out = h
            .process_lines(&[
                br#"{"time":"2024-05-01T12:00:00Z","level":"ERROR","msg":"boom","err":{"code":7}}"#.as_slice(),
                br#"{"time":"soon","msg":"late"}"#,
                b"not json at all",
                b"{\"msg\":\"\xff\"}",
            ])
            .unwrap();
        assert_eq!(out[0].body, b"boom");
        assert_eq!(out[0].timestamp_ns, 1_714_564_800_000_000_000);
        assert_eq!(out[0].attribute("level"), Some("error"));
        assert_eq!(out[0].attribute("err.code"), Some("7"));
        assert_eq!(out[0].attribute("msg"), None);
        assert_eq!(out[1].attribute("time"), Some("soon"));
        assert_eq!(out[2].body, b"not json at all");
        assert_eq!(out[2].attribute("json.error"), Some("not a JSON object"));
        assert_eq!(out[3].body, b"{\"msg\":\"\xff\"}", "an unparsable body is kept byte for byte");
        assert!(out[3].attribute("json.error").unwrap().starts_with("invalid JSON"));
        let text = h.metrics_text();
        for line in [
            "logs_json_records_total{result=\"parsed\"} 2",
            "logs_json_records_total{result=\"not_json\"} 1",
            "logs_json_records_total{result=\"invalid\"} 1",
            "logs_json_timestamp_errors_total 1",
            "logs_json_records_by_level_total{level=\"error\"} 1",
            "logs_json_records_by_level_total{level=\"none\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
    }

    #[test]
    fn describe_carries_the_example() {
        assert!(LogsJson::describe().config_example.contains("message_key"));
    }
}
