//! wasmon's `mysql` plugin: mysqld_exporter 0.14's default metric families
//! (global status and variables, replica status, InnoDB compression, query
//! response time) from MySQL or MariaDB, over the plugin's own client
//! protocol on a TCP connection to the scrape target.
//!
//! Build: `cargo build --release --target wasm32-wasip2 -p wasmon-mysql`.
//! Natively the same code connects with `std::net`, so `cargo test` runs it
//! against a real MariaDB.

pub mod collectors;
pub mod config;
pub mod fixture;
pub mod protocol;
pub mod scrape;
pub mod values;

use config::MysqlConfig;
use wasmon_sdk::{Capability, Exporter, MetricFamily, PluginError, PluginInfo, Target};

const DESCRIPTION: &str = "MySQL and MariaDB metrics with mysqld_exporter 0.14's default families: global status \
and variables, replica status, InnoDB compression and query response time. Logs in over TCP with the job's \
`password` secret.";

/// The plugin's config section as `describe` shows it (the `config:` of
/// `config.example.yaml`, whose test keeps the two in step).
pub const CONFIG_EXAMPLE: &str = "\
user: exporter                 # required; the password is the job's `secrets: {password: ...}`
# lock_wait_timeout: 2          # seconds, sent as SET lock_wait_timeout=N
# timeout: 5s                   # connect, read and write timeout
# collect:                      # mysqld_exporter's --collect.* flags; all true by default
#   global_status: true
#   global_variables: true
#   slave_status: true
#   info_schema.innodb_cmp: true
#   info_schema.innodb_cmpmem: true
#   info_schema.query_response_time: true
";

/// Collect from `target` with an explicit password, the entry point for
/// tests (`collect` reads the password from the job's secrets).
pub fn collect_with_password(
    target: &Target,
    config: &str,
    password: Option<&str>,
) -> Result<Vec<MetricFamily>, PluginError> {
    let settings = MysqlConfig::load(config)?;
    scrape::scrape(&target.address, &settings, password).map(scrape::Outcome::logged)
}

/// The plugin, as exported to the host.
pub struct Mysql;

impl Exporter for Mysql {
    fn describe() -> PluginInfo {
        PluginInfo::new("mysql", env!("CARGO_PKG_VERSION"), DESCRIPTION)
            .with_capability(Capability::Tcp)
            .with_config_example(CONFIG_EXAMPLE)
    }

    fn check_config(config: String) -> Result<(), PluginError> {
        MysqlConfig::load(&config).map(|_| ())
    }

    fn collect(target: Target, config: String) -> Result<Vec<MetricFamily>, PluginError> {
        let password = wasmon_sdk::secrets::get("password");
        collect_with_password(&target, &config, password.as_deref())
    }
}

wasmon_sdk::export!(Mysql);

#[cfg(test)]
mod tests {
    use super::*;

    /// `config.example.yaml` as the host reads it: a list with one job.
    fn example_job() -> serde_json::Value {
        let yaml: serde_json::Value =
            serde_yaml_ng::from_str(include_str!("../config.example.yaml")).expect("config.example.yaml is YAML");
        yaml[0].clone()
    }

    #[test]
    fn describe_asks_for_tcp_only() {
        let info = Mysql::describe();
        assert_eq!(info.name, "mysql");
        assert!(matches!(info.capabilities.as_slice(), [Capability::Tcp]));
    }

    #[test]
    fn the_example_job_is_complete_and_valid() {
        let job = example_job();
        assert_eq!(job["plugin"], "mysql");
        assert_eq!(job["capabilities"]["tcp"], true);
        assert_eq!(job["secrets"]["password"]["file"], "/etc/wasmon/mysql-password");
        assert_eq!(job["static_configs"][0]["targets"][0], "127.0.0.1:3306");
        Mysql::check_config(job["config"].to_string()).expect("the example's config section checks out");
    }

    #[test]
    fn describe_shows_the_same_section_as_the_example() {
        let described: serde_json::Value = serde_yaml_ng::from_str(CONFIG_EXAMPLE).expect("CONFIG_EXAMPLE is YAML");
        assert_eq!(described, example_job()["config"]);
        Mysql::check_config(described.to_string()).unwrap();
        // And every commented-out key of the example is in describe's text.
        for key in ["lock_wait_timeout: 2", "timeout: 5s", "info_schema.query_response_time: true"] {
            assert!(CONFIG_EXAMPLE.contains(key), "{key}");
        }
    }

    #[test]
    fn a_target_without_a_port_is_a_config_error() {
        let e = collect_with_password(&Target::named("db.example"), r#"{"user":"u"}"#, None).unwrap_err();
        assert_eq!(e.kind, wasmon_sdk::ErrorKind::Config);
        assert!(e.message.contains("has no port"), "{}", e.message);
    }
}
