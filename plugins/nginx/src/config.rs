//! The nginx plugin's config section.

use serde::Deserialize;
use wasmon_sdk::PluginError;

/// Where nginx serves `stub_status` by default in its documentation and in the exporter's.
const DEFAULT_STUB_STATUS_PATH: &str = "/stub_status";

/// The plugin's section of a job (`config:`); every key is optional.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NginxConfig {
    /// Path (and query, if any) of the `stub_status` location on the target.
    pub stub_status_path: String,
}

impl Default for NginxConfig {
    fn default() -> Self {
        Self { stub_status_path: DEFAULT_STUB_STATUS_PATH.into() }
    }
}

impl NginxConfig {
    /// Parse and validate the section (JSON text from the host).
    pub fn parse(config: &str) -> Result<Self, PluginError> {
        let config: Self = wasmon_sdk::config::parse(config)?;
        let path = &config.stub_status_path;
        if !path.starts_with('/') {
            return Err(PluginError::config(format!(
                "stub_status_path {path:?} must start with `/` (a path on the target, not a URL)"
            )));
        }
        if path.chars().any(|c| c.is_whitespace() || c.is_control() || c == '#') {
            return Err(PluginError::config(format!(
                "stub_status_path {path:?} contains blanks, control characters or `#`"
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
        assert_eq!(NginxConfig::parse("{}").unwrap().stub_status_path, "/stub_status");
        assert_eq!(NginxConfig::parse("").unwrap().stub_status_path, "/stub_status");
        let custom = NginxConfig::parse(r#"{"stub_status_path":"/basic_status?x=1"}"#).unwrap();
        assert_eq!(custom.stub_status_path, "/basic_status?x=1");
    }

    #[test]
    fn bad_values_name_the_key() {
        for (config, expected) in [
            (r#"{"stub_status_path":"stub_status"}"#, "must start with `/`"),
            (r#"{"stub_status_path":"http://x/stub_status"}"#, "must start with `/`"),
            (r#"{"stub_status_path":"/a b"}"#, "blanks"),
            (r#"{"stub_status_path":5}"#, "invalid type"),
            (r#"{"stub_status":"/x"}"#, "unknown field `stub_status`"),
        ] {
            let err = NginxConfig::parse(config).unwrap_err();
            assert_eq!(err.kind, wasmon_sdk::ErrorKind::Config);
            assert!(err.message.contains(expected), "{config}: {}", err.message);
        }
    }
}
