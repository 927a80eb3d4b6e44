//! The plugin's config section (the processor's `config:` in the agent's
//! `logs.processors`), checked by `check-config` at agent start.

use serde::Deserialize;
use wasmon_sdk::PluginError;

/// How `timestamp_key`'s value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TimestampFormat {
    /// RFC 3339 text (`2024-05-01T12:00:00.123Z`), or a number read by its
    /// magnitude as seconds, milliseconds, microseconds or nanoseconds since
    /// the epoch (a number in a string too).
    #[default]
    Auto,
    Rfc3339,
    UnixSeconds,
    UnixMillis,
    UnixMicros,
    UnixNanos,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JsonConfig {
    /// Joins the keys of nested objects: `{"http":{"status":200}}` becomes
    /// `http.status` with the default `.`.
    pub separator: String,
    /// Objects nested deeper than this stay one attribute holding JSON text.
    pub max_depth: usize,
    /// Prepended to every attribute name taken from the body.
    pub prefix: String,
    /// This (flattened) key's value becomes the record's body; the key is not
    /// kept as an attribute. Unset: the body stays the original JSON.
    pub message_key: Option<String>,
    /// This key's value becomes the record's timestamp (a value that cannot
    /// be read stays an attribute and is counted).
    pub timestamp_key: Option<String>,
    pub timestamp_format: TimestampFormat,
    /// This key's value becomes attribute `level_attribute`, normalised to
    /// `trace`, `debug`, `info`, `warn`, `error` or `fatal` when recognised
    /// (lowercased otherwise), and is counted by level.
    pub level_key: Option<String>,
    pub level_attribute: String,
    /// Set on records whose body could not be used, with the reason; the
    /// body is kept as it was.
    pub error_attribute: String,
    /// Also mark bodies that are not a JSON object at all (plain text lines).
    pub mark_non_json: bool,
}

impl Default for JsonConfig {
    fn default() -> Self {
        Self {
            separator: ".".into(),
            max_depth: 4,
            prefix: String::new(),
            message_key: None,
            timestamp_key: None,
            timestamp_format: TimestampFormat::Auto,
            level_key: None,
            level_attribute: "level".into(),
            error_attribute: "json.error".into(),
            mark_non_json: true,
        }
    }
}

impl JsonConfig {
    /// Parse and check the config section (JSON text from the host).
    pub fn parse(text: &str) -> Result<Self, PluginError> {
        let config: Self = wasmon_sdk::config::parse(text)?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), PluginError> {
        if self.separator.is_empty() {
            return Err(PluginError::config("separator: must not be empty (keys `a` and `b` would join to `ab`)"));
        }
        if self.max_depth == 0 {
            return Err(PluginError::config("max_depth: must be at least 1 (1 keeps nested objects as JSON text)"));
        }
        if self.level_attribute.is_empty() {
            return Err(PluginError::config("level_attribute: must not be empty"));
        }
        if self.error_attribute.is_empty() {
            return Err(PluginError::config("error_attribute: must not be empty"));
        }
        for (name, key) in
            [("message_key", &self.message_key), ("timestamp_key", &self.timestamp_key), ("level_key", &self.level_key)]
        {
            if key.as_deref().is_some_and(str::is_empty) {
                return Err(PluginError::config(format!("{name}: must not be empty; leave it out to disable")));
            }
        }
        let keys = [&self.message_key, &self.timestamp_key, &self.level_key];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                if let (Some(a), Some(b)) = (a, b)
                    && a == b
                {
                    return Err(PluginError::config(format!(
                        "key {a:?} is used twice among message_key, timestamp_key and level_key"
                    )));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors_name_the_key() {
        let c = JsonConfig::parse("{}").unwrap();
        assert_eq!(c.separator, ".");
        assert_eq!(c.max_depth, 4);
        for (text, key) in [
            (r#"{"separator":""}"#, "separator"),
            (r#"{"max_depth":0}"#, "max_depth"),
            (r#"{"message_key":""}"#, "message_key"),
            (r#"{"message_key":"m","level_key":"m"}"#, "used twice"),
            (r#"{"mesage_key":"m"}"#, "mesage_key"),
            (r#"{"timestamp_format":"iso"}"#, "iso"),
        ] {
            let e = JsonConfig::parse(text).unwrap_err();
            assert!(e.message.contains(key), "{text}: {}", e.message);
        }
    }

    #[test]
    fn the_example_is_valid() {
        let yaml: serde_json::Value = serde_yaml_ng::from_str(include_str!("../config.example.yaml")).unwrap();
        let c = JsonConfig::parse(&yaml.to_string()).unwrap();
        assert_eq!(c.message_key.as_deref(), Some("msg"));
    }
}
