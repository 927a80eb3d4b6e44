//! `alerting:` — where alerts go: Alertmanagers (Prometheus' keys), and the
//! built-in notifier for setups without one.

use super::{Authorization, BasicAuth, PromDuration, Scheme, TlsConfig};
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingConfig {
    /// Alertmanagers that get every firing and resolved alert (v2 API).
    pub alertmanagers: Vec<AlertmanagerConfig>,
}

/// One set of Alertmanagers, like an entry of Prometheus'
/// `alerting.alertmanagers`. Alerts go to every target (no load balancing:
/// Alertmanager's HA deduplicates).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    #[serde(default)]
    pub static_configs: Vec<AlertmanagerTargets>,
    #[serde(default)]
    pub scheme: Scheme,
    /// Prefix of the API path, e.g. `/alertmanager`.
    #[serde(default)]
    pub path_prefix: String,
    #[serde(default = "default_timeout")]
    pub timeout: PromDuration,
    /// Only `v2`: Alertmanager removed v1.
    #[serde(default = "default_api_version")]
    pub api_version: String,
    pub tls_config: Option<TlsConfig>,
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerTargets {
    pub targets: Vec<String>,
}

fn default_timeout() -> PromDuration {
    PromDuration(Duration::from_secs(10))
}

fn default_api_version() -> String {
    "v2".into()
}

impl AlertmanagerConfig {
    /// The `POST /api/v2/alerts` URL of every target.
    pub fn alert_urls(&self) -> Vec<String> {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        let prefix = self.path_prefix.trim_end_matches('/');
        self.static_configs
            .iter()
            .flat_map(|s| s.targets.iter())
            .map(|t| format!("{scheme}://{t}{prefix}/api/v2/alerts"))
            .collect()
    }

    /// Problems with this entry, each prefixed with `at`.
    pub fn problems(&self, at: &str) -> Vec<String> {
        let mut out = Vec::new();
        if self.api_version != "v2" {
            out.push(format!(
                "{at}: api_version {:?} is not supported; Alertmanager's v1 API is gone, use v2",
                self.api_version
            ));
        }
        if self.static_configs.iter().all(|s| s.targets.is_empty()) {
            out.push(format!("{at}: no targets; add static_configs: [{{targets: [host:9093]}}]"));
        }
        for t in self.static_configs.iter().flat_map(|s| s.targets.iter()) {
            if t.contains('/') || t.trim().is_empty() {
                out.push(format!("{at}: target {t:?} must be host:port (put a path in path_prefix)"));
            }
        }
        if !self.path_prefix.is_empty() && !self.path_prefix.starts_with('/') {
            out.push(format!("{at}: path_prefix {:?} must start with /", self.path_prefix));
        }
        if self.timeout.0.is_zero() {
            out.push(format!("{at}: timeout must be greater than 0"));
        }
        out
    }
}
