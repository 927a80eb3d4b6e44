//! wasmon's `logs-regex` log processor: the named captures of configured regular
//! expressions (tried in order, first match wins) to attributes.
//!
//! Build: `cargo build --release --target wasm32-wasip2 -p wasmon-logs-regex`. The logic is
//! plain Rust on bytes, so `cargo test` runs it natively with fixtures.

pub mod processor;

pub use processor::{ConfigError, OnNoMatch, Outcome, PatternConfig, RegexConfig, RegexProcessor, Stats};

use wasmon_sdk::{Family, MetricFamily, PluginError, PluginInfo};
use wasmon_sdk_logs::{LogBatch, LogProcessor, LogRecord};

const DESCRIPTION: &str = "Matches each record's body (or an attribute) against configured regular expressions, \
tried in order, and turns the first match's named groups (?P<name>...) into attributes. Unmatched records are \
kept, dropped or marked. Needs no capabilities.";

impl RegexProcessor {
    /// The plugin's families.
    pub fn families(&self) -> Vec<MetricFamily> {
        let mut matched =
            Family::counter("logs_regex_matched_records_total", "Records matched, by the pattern that matched first.");
        for (name, n) in self.pattern_names().zip(&self.stats.matched) {
            matched.sample(&[("pattern", name)], *n as f64);
        }
        let mut unmatched = Family::counter(
            "logs_regex_unmatched_records_total",
            "Records no pattern matched (or without the configured field), whatever on_no_match did with them.",
        );
        unmatched.sample(&[], self.stats.unmatched as f64);
        let mut dropped =
            Family::counter("logs_regex_dropped_records_total", "Unmatched records dropped by on_no_match: drop.");
        dropped.sample(&[], self.stats.dropped as f64);
        vec![matched.build(), unmatched.build(), dropped.build()]
    }
}

fn config_error(e: ConfigError) -> PluginError {
    PluginError::config(e.to_string())
}

impl LogProcessor for RegexProcessor {
    fn describe() -> PluginInfo {
        PluginInfo::new("logs-regex", env!("CARGO_PKG_VERSION"), DESCRIPTION)
            .with_config_example(include_str!("../config.example.yaml"))
    }

    fn check_config(config: &str) -> Result<(), PluginError> {
        RegexProcessor::from_json(config).map(|_| ()).map_err(config_error)
    }

    fn init(config: &str) -> Result<Self, PluginError> {
        RegexProcessor::from_json(config).map_err(config_error)
    }

    fn process(&mut self, batch: LogBatch) -> Result<Vec<LogRecord>, PluginError> {
        Ok(self.process_batch(batch.records))
    }

    fn metrics(&mut self) -> Vec<MetricFamily> {
        self.families()
    }
}

wasmon_sdk_logs::export_log_processor!(RegexProcessor);
