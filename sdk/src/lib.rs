//! The guest side of wasmon: write an exporter as a plain Rust type, export it
//! with [`export!`], and build it for `wasm32-wasip2`.
//!
//! ```
//! use wasmon_sdk::{Exporter, Family, PluginError, PluginInfo, Target, MetricFamily};
//!
//! struct Hello;
//!
//! impl Exporter for Hello {
//!     fn describe() -> PluginInfo {
//!         PluginInfo::new("hello", "0.1.0", "Says hello with a gauge.")
//!     }
//!     fn check_config(_config: String) -> Result<(), PluginError> {
//!         Ok(())
//!     }
//!     fn collect(target: Target, _config: String) -> Result<Vec<MetricFamily>, PluginError> {
//!         let mut hello = Family::gauge("hello_world", "Always 1.");
//!         hello.sample(&[("target", target.address.as_str())], 1.0);
//!         Ok(vec![hello.build()])
//!     }
//! }
//!
//! wasmon_sdk::export!(Hello);
//!
//! // Plugin logic is ordinary Rust, so it runs natively in tests too:
//! let families = Hello::collect(Target::named("demo"), "{}".into()).unwrap();
//! assert_eq!(families[0].metrics.len(), 1);
//! ```

#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

pub mod attributes;
pub mod bindings;
#[cfg(all(target_arch = "wasm32", feature = "bump-allocator"))]
pub mod bump;
pub mod config;
pub mod fs;
pub mod http;
pub mod json;
pub mod log;
pub mod metrics;
pub mod packed_records;
pub mod passthrough;
pub mod secrets;
pub mod system;
pub mod text;

pub use bindings::Guest as Exporter;
pub use bindings::wasmon::plugin::types::{
    Bucket, Capability, ErrorKind, HistogramValue, Label, Metric, MetricFamily, MetricKind, MetricValue, PluginError,
    PluginInfo, Quantile, SummaryValue, Target,
};
pub use metrics::Family;

/// Export a type implementing [`Exporter`] as the plugin's entry points.
///
/// Call it once, at the crate root of a `cdylib` crate.
#[macro_export]
macro_rules! export {
    ($ty:ident) => {
        $crate::bindings::__export_exporter_impl!($ty with_types_in $crate::bindings);
    };
}

impl PluginError {
    /// An error in the plugin's own config section.
    pub fn config(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::Config, message: message.into() }
    }
    /// The monitored thing could not be reached.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::Unavailable, message: message.into() }
    }
    /// The monitored thing answered with data the plugin cannot read.
    pub fn invalid_data(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::InvalidData, message: message.into() }
    }
    /// The host refused a capability.
    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::PermissionDenied, message: message.into() }
    }
    /// A bug in the plugin.
    pub fn internal(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::Internal, message: message.into() }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ErrorKind::Config => "config",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::InvalidData => "invalid data",
            ErrorKind::Internal => "internal",
        })
    }
}

impl PluginInfo {
    /// Plugin info with no capabilities and no config example.
    pub fn new(name: &str, version: &str, description: &str) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            description: description.into(),
            capabilities: Vec::new(),
            config_example: String::new(),
        }
    }

    /// Add a capability the plugin needs.
    pub fn with_capability(mut self, capability: Capability) -> Self {
        self.capabilities.push(capability);
        self
    }

    /// Set the YAML example of the plugin's config section.
    pub fn with_config_example(mut self, yaml: &str) -> Self {
        self.config_example = yaml.into();
        self
    }
}

impl Target {
    /// A target with just an address, for tests.
    pub fn named(address: &str) -> Self {
        Self { address: address.into(), labels: Vec::new(), params: Vec::new() }
    }

    /// The value of a `params:` entry.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|l| l.name == name).map(|l| l.value.as_str())
    }
}
