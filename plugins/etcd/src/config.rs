//! The etcd plugin's config section.

use serde::Deserialize;
use wasmon_sdk::PluginError;

/// The plugin's section of a job (`config:`); every key is optional.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EtcdConfig {
    /// Path of etcd's own metrics, passed through unchanged.
    pub metrics_path: String,
    /// GET `/health` for `etcd_endpoint_health`.
    pub health: bool,
    /// POST `/v3/maintenance/status` for the `etcd_endpoint_*` status families.
    pub status: bool,
}

impl Default for EtcdConfig {
    fn default() -> Self {
        Self { metrics_path: "/metrics".into(), health: true, status: true }
    }
}

impl EtcdConfig {
    /// Parse and validate the section (JSON text from the host).
    pub fn parse(config: &str) -> Result<Self, PluginError> {
        let config: Self = wasmon_sdk::config::parse(config)?;
        let path = &config.metrics_path;
        if !path.starts_with('/') {
            return Err(PluginError::config(format!(
                "metrics_path {path:?} must start with `/` (a path on the target, not a URL)"
            )));
        }
        if path.chars().any(|c| c.is_whitespace() || c.is_control() || c == '#') {
            return Err(PluginError::config(format!(
                "metrics_path {path:?} contains blanks, control characters or `#`"
            )));
        }
        Ok(config)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(EtcdConfig::parse("{}").unwrap(), EtcdConfig::default());
        let c = EtcdConfig::parse(r#"{"metrics_path":"/metrics/extensive","health":false,"status":false}"#).unwrap();
        assert_eq!(c, EtcdConfig { metrics_path: "/metrics/extensive".into(), health: false, status: false });
    }

    #[test]
    fn bad_values_name_the_key() {
        for (config, expected) in [
            (r#"{"metrics_path":"metrics"}"#, "metrics_path \"metrics\" must start with `/`"),
            (r#"{"metrics_path":"/a b"}"#, "blanks"),
            (r#"{"health":"yes"}"#, "invalid type"),
            (r#"{"tls_config":{}}"#, "unknown field `tls_config`"),
        ] {
            let err = EtcdConfig::parse(config).unwrap_err();
            assert_eq!(err.kind, wasmon_sdk::ErrorKind::Config);
            assert!(err.message.contains(expected), "{config}: {}", err.message);
        }
    }
}
