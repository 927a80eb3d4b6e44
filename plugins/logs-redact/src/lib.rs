//! wasmon's `logs-redact` log processor: masks e-mail addresses, bearer tokens, API keys,
//! JWTs, card numbers (Luhn-checked), optionally IPv4 addresses, and custom patterns, in
//! the body and in chosen attributes; counts as `log_redactions_total{pattern}`.
//!
//! Build: `cargo build --release --target wasm32-wasip2 -p wasmon-logs-redact`. The logic is
//! plain Rust on bytes, so `cargo test` runs it natively with fixtures.

pub mod patterns;
pub mod processor;

pub use processor::{ConfigError, CustomPattern, RedactConfig, Redactor, Replacement};

use wasmon_sdk::{Family, MetricFamily, PluginError, PluginInfo};
use wasmon_sdk_logs::{LogBatch, LogProcessor, LogRecord};

const DESCRIPTION: &str = "Masks e-mail addresses, bearer tokens, API keys, JWTs, payment card numbers \
(Luhn-checked), optionally IPv4 addresses, and custom regex patterns in the body and chosen attributes, \
as [REDACTED:<pattern>] or a salted hash; counts log_redactions_total{pattern}. Needs no capabilities.";

impl Redactor {
    /// The plugin's families: one series per configured pattern, from 0.
    pub fn families(&self) -> Vec<MetricFamily> {
        let mut f = Family::counter("log_redactions_total", "Values masked, by the pattern that matched them.");
        for (name, n) in self.pattern_names().zip(&self.counts) {
            f.sample(&[("pattern", name)], *n as f64);
        }
        vec![f.build()]
    }
}

fn config_error(e: ConfigError) -> PluginError {
    PluginError::config(e.to_string())
}

impl LogProcessor for Redactor {
    fn describe() -> PluginInfo {
        PluginInfo::new("logs-redact", env!("CARGO_PKG_VERSION"), DESCRIPTION)
            .with_config_example(include_str!("../config.example.yaml"))
    }

    fn check_config(config: &str) -> Result<(), PluginError> {
        Redactor::from_json(config).map(|_| ()).map_err(config_error)
    }

    fn init(config: &str) -> Result<Self, PluginError> {
        Redactor::from_json(config).map_err(config_error)
    }

    fn process(&mut self, batch: LogBatch) -> Result<Vec<LogRecord>, PluginError> {
        Ok(self.process_batch(batch.records))
    }

    fn metrics(&mut self) -> Vec<MetricFamily> {
        self.families()
    }
}

wasmon_sdk_logs::export_log_processor!(Redactor);
