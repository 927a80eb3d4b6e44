//! {{name}}: a wasmon exporter. Reads `/proc/stat` and reports runnable
//! processes (a gauge) and processes started since boot (a counter).
//!
//! `cargo test` runs the logic natively; `cargo build --release --target
//! wasm32-wasip2` builds the component `{{crate_name}}.wasm`.

use serde::Deserialize;
use wasmon_sdk::{Capability, Exporter, Family, MetricFamily, PluginError, PluginInfo, Target};

/// The one file this plugin reads. `describe` asks for exactly this; the
/// host refuses every other path.
const STAT: &str = "/proc/stat";

/// The job's `config:` section. Unknown keys are errors, so a typo shows up
/// in `wasmon check config` instead of being ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    /// Also report processes blocked on I/O.
    include_blocked: bool,
}

/// The `/proc/stat` fields this plugin reports.
#[derive(Debug, PartialEq)]
struct Stat {
    procs_running: f64,
    procs_blocked: f64,
    processes: f64,
}

/// Pure parsing, so it is tested on literal text below.
fn parse_stat(text: &str) -> Result<Stat, String> {
    let field = |name: &str| {
        text.lines()
            .find_map(|line| {
                let mut words = line.split_whitespace();
                (words.next() == Some(name)).then(|| words.next())
            })
            .flatten()
            .ok_or_else(|| format!("no {name} line"))?
            .parse::<f64>()
            .map_err(|e| format!("{name}: {e}"))
    };
    Ok(Stat {
        procs_running: field("procs_running")?,
        procs_blocked: field("procs_blocked")?,
        processes: field("processes")?,
    })
}

struct Plugin;

impl Exporter for Plugin {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "{{name}}",
            env!("CARGO_PKG_VERSION"),
            "Runnable and started processes from /proc/stat.",
        )
        .with_capability(Capability::ReadFiles(vec![STAT.into()]))
        .with_config_example("include_blocked: false\n")
    }

    fn check_config(config: String) -> Result<(), PluginError> {
        wasmon_sdk::config::parse::<Config>(&config).map(|_| ())
    }

    fn collect(_target: Target, config: String) -> Result<Vec<MetricFamily>, PluginError> {
        let config: Config = wasmon_sdk::config::parse(&config)?;
        let text = wasmon_sdk::fs::read_to_string(STAT)
            .map_err(|e| PluginError::unavailable(format!("{STAT}: {e}")))?;
        let stat =
            parse_stat(&text).map_err(|e| PluginError::invalid_data(format!("{STAT}: {e}")))?;
        let mut running = Family::gauge(
            "{{namespace}}_procs_running",
            "Processes in runnable state.",
        );
        running.sample(&[], stat.procs_running);
        let mut forks = Family::counter(
            "{{namespace}}_forks_total",
            "Processes and threads created since boot.",
        );
        forks.sample(&[], stat.processes);
        let mut families = vec![running.build(), forks.build()];
        if config.include_blocked {
            let mut blocked = Family::gauge(
                "{{namespace}}_procs_blocked",
                "Processes blocked waiting for I/O.",
            );
            blocked.sample(&[], stat.procs_blocked);
            families.push(blocked.build());
        }
        Ok(families)
    }
}

wasmon_sdk::export!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;
    use wasmon_sdk::{MetricKind, MetricValue};

    const SAMPLE: &str = "cpu  2255 34 2290 22625563 6290 127 456 0 0 0\n\
                          ctxt 1990473\nbtime 1062191376\nprocesses 2915\nprocs_running 1\nprocs_blocked 3\n";

    #[test]
    fn parses_the_fields_it_reports() {
        assert_eq!(
            parse_stat(SAMPLE),
            Ok(Stat {
                procs_running: 1.0,
                procs_blocked: 3.0,
                processes: 2915.0
            })
        );
        assert_eq!(
            parse_stat("processes 1\n").unwrap_err(),
            "no procs_running line"
        );
        assert!(
            parse_stat("procs_running x\n")
                .unwrap_err()
                .starts_with("procs_running: ")
        );
    }

    #[test]
    fn collects_this_machine() {
        // Natively, `wasmon_sdk::fs` reads the real /proc/stat.
        let families = Plugin::collect(
            Target::named("localhost"),
            r#"{"include_blocked": true}"#.into(),
        )
        .unwrap();
        let names: Vec<_> = families.iter().map(|f| (f.name.as_str(), f.kind)).collect();
        assert_eq!(
            names,
            [
                ("{{namespace}}_procs_running", MetricKind::Gauge),
                ("{{namespace}}_forks_total", MetricKind::Counter),
                ("{{namespace}}_procs_blocked", MetricKind::Gauge)
            ]
        );
        // This test process is running, and was started since boot.
        assert!(matches!(families[0].metrics[0].value, MetricValue::Gauge(v) if v >= 1.0));
        assert!(matches!(families[1].metrics[0].value, MetricValue::Counter(v) if v >= 1.0));
    }

    #[test]
    fn rejects_unknown_config_keys() {
        let err = Plugin::check_config(r#"{"include_blockd": true}"#.into()).unwrap_err();
        assert!(
            err.message.contains("unknown field `include_blockd`"),
            "{}",
            err.message
        );
    }
}
