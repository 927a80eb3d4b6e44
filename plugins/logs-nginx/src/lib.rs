//! wasmon's `logs-nginx` log processor: nginx/Apache access-log lines (`combined`, `common`
//! or a custom `log_format`) to fields, counted as `nginx_http_requests_total{status,method}`
//! and the `nginx_http_response_size_bytes` histogram.
//!
//! Build: `cargo build --release --target wasm32-wasip2 -p wasmon-logs-nginx`. The logic is
//! plain Rust on bytes, so `cargo test` runs it natively, also against a real nginx.

pub mod format;
pub mod metrics;
pub mod processor;
pub mod time;

pub use format::{FormatError, LogFormat};
pub use metrics::NginxMetrics;
pub use processor::{ConfigError, NginxConfig, NginxProcessor, OnNoMatch, Outcome, Parsed};

use wasmon_sdk::{MetricFamily, PluginError, PluginInfo};
use wasmon_sdk_logs::{LogBatch, LogProcessor, LogRecord};

const DESCRIPTION: &str = "Parses nginx and Apache access-log lines (combined, common, or any nginx log_format \
string) into fields (remote_addr, method, path, status, body_bytes_sent, referer, user_agent, ...), sets the \
record's timestamp from $time_local, and counts nginx_http_requests_total{status,method} and the \
nginx_http_response_size_bytes histogram. Needs no capabilities.";

fn config_error(e: ConfigError) -> PluginError {
    PluginError::config(e.to_string())
}

impl LogProcessor for NginxProcessor {
    fn describe() -> PluginInfo {
        PluginInfo::new("logs-nginx", env!("CARGO_PKG_VERSION"), DESCRIPTION)
            .with_config_example(include_str!("../config.example.yaml"))
    }

    fn check_config(config: &str) -> Result<(), PluginError> {
        NginxProcessor::from_json(config).map(|_| ()).map_err(config_error)
    }

    fn init(config: &str) -> Result<Self, PluginError> {
        NginxProcessor::from_json(config).map_err(config_error)
    }

    fn process(&mut self, batch: LogBatch) -> Result<Vec<LogRecord>, PluginError> {
        Ok(self.process_batch(batch.records))
    }

    fn metrics(&mut self) -> Vec<MetricFamily> {
        self.metrics.families()
    }
}

wasmon_sdk_logs::export_log_processor!(NginxProcessor);
