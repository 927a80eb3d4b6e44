//! wasmon's `nginx` plugin: nginx-prometheus-exporter 0.11's families for open-source nginx,
//! from the target's `stub_status` page over `wasi:http`.
//!
//! Build: `cargo build --release --target wasm32-wasip2 -p wasmon-nginx`. Natively the same
//! code speaks HTTP with `std::net`, so `cargo test` runs it against a real nginx.

pub mod config;
pub mod metrics;
pub mod parse;

use config::NginxConfig;
use wasmon_sdk::http::{self, HttpErrorKind};
use wasmon_sdk::{Capability, Exporter, MetricFamily, PluginError, PluginInfo, Target};

const DESCRIPTION: &str = "nginx connection and request counters from the stub_status page, with \
nginx-prometheus-exporter 0.11's families (nginx_connections_*, nginx_http_requests_total, nginx_up). \
When nginx cannot be read, reports nginx_up 0.";

/// The plugin's config section as `describe` shows it (the `config:` of
/// `config.example.yaml`; a test keeps the two in step).
pub const CONFIG_EXAMPLE: &str = "\
stub_status_path: /stub_status   # path of the `stub_status;` location on the target
";

/// The plugin, as exported to the host.
pub struct Nginx;

impl Exporter for Nginx {
    fn describe() -> PluginInfo {
        PluginInfo::new("nginx", env!("CARGO_PKG_VERSION"), DESCRIPTION)
            .with_capability(Capability::Http)
            .with_config_example(CONFIG_EXAMPLE)
    }

    fn check_config(config: String) -> Result<(), PluginError> {
        NginxConfig::parse(&config).map(|_| ())
    }

    fn collect(target: Target, config: String) -> Result<Vec<MetricFamily>, PluginError> {
        let config = NginxConfig::parse(&config)?;
        let url = http::target_url(&target, &config.stub_status_path);
        match read_stub_status(&url) {
            Ok(stats) => Ok(metrics::families(Some(&stats))),
            Err(Failure::Down(reason)) => {
                // As the exporter does: nginx being down is a value, not a failed scrape.
                wasmon_sdk::log::warn(&format!("nginx_up 0: {reason}"));
                Ok(metrics::families(None))
            }
            Err(Failure::Plugin(e)) => Err(e),
        }
    }
}

wasmon_sdk::export!(Nginx);

/// Why `stub_status` could not be read.
enum Failure {
    /// nginx is unreachable or answered with something else than a `stub_status` page.
    Down(String),
    /// The request was refused by the host or malformed: a job or plugin problem, not nginx's.
    Plugin(PluginError),
}

fn read_stub_status(url: &str) -> Result<parse::StubStatus, Failure> {
    let http_failure = |e: http::HttpError| match e.kind() {
        HttpErrorKind::Denied | HttpErrorKind::InvalidRequest => Failure::Plugin(e.into()),
        _ => Failure::Down(e.to_string()),
    };
    let response = http::get(url).and_then(http::Response::error_for_status).map_err(http_failure)?;
    let text = response.text().map_err(http_failure)?;
    parse::parse(text).map_err(|e| Failure::Down(format!("GET {url}: {e}")))
}

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
        let info = Nginx::describe();
        assert_eq!(info.name, "nginx");
        assert!(matches!(info.capabilities.as_slice(), [Capability::Http]));
    }

    #[test]
    fn the_example_job_is_complete_and_valid() {
        let job = example_job();
        assert_eq!(job["plugin"], "nginx");
        assert_eq!(job["capabilities"]["http"], true);
        Nginx::check_config(job["config"].to_string()).expect("the example's config section checks out");
        let described: serde_json::Value = serde_yaml_ng::from_str(CONFIG_EXAMPLE).expect("CONFIG_EXAMPLE is YAML");
        assert_eq!(described, job["config"]);
    }

    #[test]
    fn a_bad_config_fails_before_any_request() {
        let err = Nginx::collect(Target::named("127.0.0.1:1"), r#"{"stub_status_path":"x"}"#.into()).unwrap_err();
        assert_eq!(err.kind, wasmon_sdk::ErrorKind::Config);
    }
}
