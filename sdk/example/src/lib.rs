//! The SDK's example exporter: reads `/proc/uptime` and `/proc/loadavg`.
//! Build: `cargo build --target wasm32-wasip2 -p wasmon-example-plugin`.

use serde::Deserialize;
use wasmon_sdk::{Capability, Exporter, Family, MetricFamily, PluginError, PluginInfo, Target};

/// The plugin's config section.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct ExampleConfig {
    /// Extra label added to every sample.
    greeting: Option<String>,
}

struct Example;

impl Exporter for Example {
    fn describe() -> PluginInfo {
        PluginInfo::new("example", env!("CARGO_PKG_VERSION"), "Uptime and load averages from /proc.")
            .with_capability(Capability::ReadFiles(vec!["/proc/uptime".into(), "/proc/loadavg".into()]))
            .with_config_example("greeting: hello\n")
    }

    fn check_config(config: String) -> Result<(), PluginError> {
        wasmon_sdk::config::parse::<ExampleConfig>(&config).map(|_| ())
    }

    fn collect(_target: Target, config: String) -> Result<Vec<MetricFamily>, PluginError> {
        let config: ExampleConfig = wasmon_sdk::config::parse(&config)?;
        let greeting = config.greeting.unwrap_or_else(|| "hello".into());
        let read = |path: &str| {
            wasmon_sdk::fs::read_to_string(path).map_err(|e| PluginError::unavailable(format!("{path}: {e}")))
        };
        let first_number = |text: &str, path: &str| {
            text.split_whitespace()
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .ok_or_else(|| PluginError::invalid_data(format!("{path}: no number in {text:?}")))
        };
        let mut uptime = Family::gauge("example_uptime_seconds", "Seconds since boot.").unit("seconds");
        uptime.sample(&[("greeting", &greeting)], first_number(&read("/proc/uptime")?, "/proc/uptime")?);
        let mut load = Family::gauge("example_load1", "1-minute load average.");
        load.sample(&[("greeting", &greeting)], first_number(&read("/proc/loadavg")?, "/proc/loadavg")?);
        Ok(vec![uptime.build(), load.build()])
    }
}

wasmon_sdk::export!(Example);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_uptime_and_load_natively() {
        let families = Example::collect(Target::named("local"), r#"{"greeting":"hi"}"#.into()).expect("collect");
        assert_eq!(families.len(), 2);
        let uptime = &families[0];
        assert_eq!(uptime.metrics[0].labels[0].value, "hi");
        let proc_uptime: f64 =
            std::fs::read_to_string("/proc/uptime").unwrap().split_whitespace().next().unwrap().parse().unwrap();
        match uptime.metrics[0].value {
            wasmon_sdk::MetricValue::Gauge(v) => assert!((proc_uptime - v).abs() < 5.0),
            ref other => panic!("unexpected value {other:?}"),
        }
    }

    #[test]
    fn rejects_unknown_config_keys() {
        let err = Example::check_config(r#"{"greting":"x"}"#.into()).unwrap_err();
        assert!(err.message.contains("unknown field"), "{}", err.message);
    }
}
