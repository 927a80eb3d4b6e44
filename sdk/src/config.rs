//! Reading the plugin's config section, which the host passes as JSON text.

use crate::PluginError;
use serde::de::DeserializeOwned;

/// Parse the config section into `T`. Use `#[serde(deny_unknown_fields)]` on
/// `T` so a misspelt key is reported instead of ignored. An empty string is
/// read as `{}`.
///
/// ```
/// #[derive(serde::Deserialize, Default, Debug)]
/// #[serde(deny_unknown_fields, default)]
/// struct MyConfig { greeting: String }
///
/// let c: MyConfig = wasmon_sdk::config::parse(r#"{"greeting":"hi"}"#).unwrap();
/// assert_eq!(c.greeting, "hi");
/// let err = wasmon_sdk::config::parse::<MyConfig>(r#"{"greting":"hi"}"#).unwrap_err();
/// assert!(err.message.contains("greting"));
/// ```
pub fn parse<T: DeserializeOwned>(config: &str) -> Result<T, PluginError> {
    let text = if config.trim().is_empty() { "{}" } else { config };
    serde_json::from_str(text).map_err(|e| PluginError::config(format!("invalid config: {e}")))
}
