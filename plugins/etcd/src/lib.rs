//! wasmon's `etcd` plugin: etcd's own `/metrics`, passed through unchanged, plus
//! `etcd_endpoint_*` families from `/health` and the v3 maintenance status, over `wasi:http`.
//!
//! Build: `cargo build --release --target wasm32-wasip2 -p wasmon-etcd`. Natively the same code
//! speaks plain HTTP with `std::net`, so `cargo test` runs it against a real etcd.

pub mod config;
pub mod metrics;
pub mod scrape;
pub mod status;

use config::EtcdConfig;
use wasmon_sdk::{Capability, Exporter, MetricFamily, PluginError, PluginInfo, Target};

const DESCRIPTION: &str = "etcd's own metrics (names, types, labels and histograms unchanged), plus \
etcd_endpoint_* families from /health and the v3 maintenance status: health, leader, database size, raft \
indexes, version and ids. With `scheme: https` and a `tls_config`, the host does mutual TLS.";

/// The plugin's config section as `describe` shows it (the `config:` of
/// `config.example.yaml`; a test keeps the two in step).
pub const CONFIG_EXAMPLE: &str = "\
metrics_path: /metrics   # etcd's metrics, passed through unchanged
health: true             # GET /health for etcd_endpoint_health
status: true             # POST /v3/maintenance/status for the other etcd_endpoint_* families
";

/// The plugin, as exported to the host.
pub struct Etcd;

impl Exporter for Etcd {
    fn describe() -> PluginInfo {
        PluginInfo::new("etcd", env!("CARGO_PKG_VERSION"), DESCRIPTION)
            .with_capability(Capability::Http)
            .with_config_example(CONFIG_EXAMPLE)
    }

    fn check_config(config: String) -> Result<(), PluginError> {
        EtcdConfig::parse(&config).map(|_| ())
    }

    fn collect(target: Target, config: String) -> Result<Vec<MetricFamily>, PluginError> {
        let config = EtcdConfig::parse(&config)?;
        scrape::read(&target, &config).map(scrape::assemble)
    }
}

wasmon_sdk::export!(Etcd);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// `config.example.yaml` as the host reads it: a list with one job.
    fn example_job() -> serde_json::Value {
        let yaml: serde_json::Value =
            serde_yaml_ng::from_str(include_str!("../config.example.yaml")).expect("config.example.yaml is YAML");
        yaml[0].clone()
    }

    #[test]
    fn describe_asks_for_http_only() {
        let info = Etcd::describe();
        assert_eq!(info.name, "etcd");
        assert!(matches!(info.capabilities.as_slice(), [Capability::Http]));
    }

    #[test]
    fn the_example_job_is_complete_and_valid() {
        let job = example_job();
        assert_eq!(job["plugin"], "etcd");
        assert_eq!(job["scheme"], "https");
        assert_eq!(job["capabilities"]["http"], true);
        for key in ["ca_file", "cert_file", "key_file"] {
            assert!(job["tls_config"][key].is_string(), "tls_config.{key}");
        }
        Etcd::check_config(job["config"].to_string()).expect("the example's config section checks out");
        let described: serde_json::Value = serde_yaml_ng::from_str(CONFIG_EXAMPLE).expect("CONFIG_EXAMPLE is YAML");
        assert_eq!(described, job["config"]);
    }

    #[test]
    fn a_bad_config_fails_before_any_request() {
        let err = Etcd::collect(Target::named("127.0.0.1:1"), r#"{"metrics_path":"x"}"#.into()).unwrap_err();
        assert_eq!(err.kind, wasmon_sdk::ErrorKind::Config);
    }
}

// An instance lives for one call: a bump allocator never needs to free, which
// makes the many small strings of a scrape cheap (see wasmon_sdk::bump).
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: wasmon_sdk::bump::BumpAllocator = wasmon_sdk::bump::BumpAllocator::new();
