//! wasmon's `logs-logfmt` log processor: logfmt bodies (`key=value key2="quoted \" value" flag`)
//! to attributes, split exactly as go-logfmt splits them.
//!
//! Build: `cargo build --release --target wasm32-wasip2 -p wasmon-logs-logfmt`. The logic is
//! plain Rust on bytes, so `cargo test` runs it natively with fixtures.

pub mod decode;
pub mod processor;
pub mod time;

pub use processor::{
    BareKeys, ConfigError, DuplicateKeys, LEVELS, Logfmt, LogfmtConfig, Outcome, Stats, normalise_level,
};
pub use time::TimestampFormat;

use wasmon_sdk::{Family, MetricFamily, PluginError, PluginInfo};
use wasmon_sdk_logs::{LogBatch, LogProcessor, LogRecord};

const DESCRIPTION: &str = "Parses logfmt bodies (key=value key2=\"quoted\" flag) into attributes as go-logfmt \
does, optionally taking the message, level and timestamp from chosen keys. Lines that are not logfmt pass \
unchanged; lines that break off keep their body and get the parser's error as an attribute. Needs no capabilities.";

impl Logfmt {
    /// The plugin's families.
    pub fn families(&self) -> Vec<MetricFamily> {
        let s = &self.stats;
        let mut records = Family::counter(
            "logs_logfmt_records_total",
            "Records seen, by result: parsed, partial (a syntax error; body kept, error attribute set), skipped (no key=value pair).",
        );
        records.sample(&[("result", "parsed")], s.parsed as f64);
        records.sample(&[("result", "partial")], s.partial as f64);
        records.sample(&[("result", "skipped")], s.skipped as f64);
        let mut ts = Family::counter(
            "logs_logfmt_timestamp_errors_total",
            "Records whose timestamp_key value is not in timestamp_format; they keep the tailer's timestamp.",
        );
        ts.sample(&[], s.bad_timestamps as f64);
        let mut out = vec![records.build(), ts.build()];
        if self.config().level_key.is_some() {
            let mut levels = Family::counter(
                "logs_logfmt_records_by_level_total",
                "Records with level_key, by normalised level (`other`: unrecognised).",
            );
            for (name, n) in LEVELS.iter().chain(&["other"]).zip(&s.levels) {
                levels.sample(&[("level", name)], *n as f64);
            }
            out.push(levels.build());
        }
        out
    }
}

fn config_error(e: ConfigError) -> PluginError {
    PluginError::config(e.to_string())
}

impl LogProcessor for Logfmt {
    fn describe() -> PluginInfo {
        PluginInfo::new("logs-logfmt", env!("CARGO_PKG_VERSION"), DESCRIPTION)
            .with_config_example(include_str!("../config.example.yaml"))
    }

    fn check_config(config: &str) -> Result<(), PluginError> {
        LogfmtConfig::from_json(config).map(|_| ()).map_err(config_error)
    }

    fn init(config: &str) -> Result<Self, PluginError> {
        LogfmtConfig::from_json(config).map(Logfmt::new).map_err(config_error)
    }

    fn process(&mut self, batch: LogBatch) -> Result<Vec<LogRecord>, PluginError> {
        Ok(self.process_batch(batch.records))
    }

    fn metrics(&mut self) -> Vec<MetricFamily> {
        self.families()
    }
}

wasmon_sdk_logs::export_log_processor!(Logfmt);
