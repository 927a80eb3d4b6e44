//! wasmon's `node` plugin: the Linux metric families of node_exporter 1.5,
//! with the same names, types, labels and units, read from `/proc`, `/sys`
//! and `/etc` through the host's file allowlist.
//!
//! Build: `cargo build --target wasm32-wasip2 -p wasmon-node`. Natively the
//! same code reads this machine's files directly, so `cargo test` exercises it.

pub mod collectors;
pub mod exposition;
pub mod filters;
pub mod util;

use collectors::{Collector, Settings};
use filters::{DEFAULT_FS_TYPES_EXCLUDE, DEFAULT_MOUNT_POINTS_EXCLUDE, MountPointFilter, NameFilter};
use serde::Deserialize;
use std::collections::HashSet;
use std::time::Instant;
use util::{Skipped, gauge};
use wasmon_sdk::{Capability, Exporter, Family, MetricFamily, PluginError, PluginInfo, Target};

/// Every path the plugin reads, as globset globs (`*` stays within one path
/// component, `**` crosses them). The host checks both the requested path
/// and the path after resolving symbolic links, hence `/sys/devices/**`:
/// `/sys/class/net/eth0`, `/sys/class/hwmon/hwmon0` and their `device` links
/// all lead there. `/proc/net` and `/proc/mounts` are links into
/// `/proc/self`, which the host maps back to these names.
pub const READ_GLOBS: &[&str] = &[
    "/proc/stat",
    "/proc/meminfo",
    "/proc/loadavg",
    "/proc/vmstat",
    "/proc/diskstats",
    "/proc/schedstat",
    "/proc/1/mounts",
    "/proc/mounts",
    "/proc/net/*",
    "/proc/net/stat/*",
    "/proc/pressure/*",
    "/proc/sys/fs/file-nr",
    "/proc/sys/kernel/random/entropy_avail",
    "/proc/sys/kernel/random/poolsize",
    "/proc/sys/kernel/ostype",
    "/proc/sys/kernel/osrelease",
    "/proc/sys/kernel/version",
    "/proc/sys/kernel/hostname",
    "/proc/sys/kernel/domainname",
    "/proc/sys/kernel/arch",
    "/proc/sys/net/netfilter/nf_conntrack_count",
    "/proc/sys/net/netfilter/nf_conntrack_max",
    "/sys/class/net/*/*",
    "/sys/class/net/*/statistics/rx_nohandler",
    "/sys/class/hwmon/*",
    "/sys/class/hwmon/*/*",
    "/sys/class/hwmon/*/device/*",
    "/sys/class/thermal/*/*",
    "/sys/fs/selinux/enforce",
    // Link targets of the /sys/class entries above, plus
    // /sys/devices/system/{cpu,clocksource}, read directly.
    "/sys/devices/**",
    "/etc/os-release",
    "/usr/lib/os-release",
    "/etc/localtime",
    "/usr/share/zoneinfo/**",
    "/etc/selinux/config",
    "/run/udev/data/b*",
    // Debian's textfile directory; another `textfile_directory` must be
    // granted in the job's `capabilities.files`.
    "/var/lib/prometheus/node-exporter/*.prom",
];

/// Collectors in node_exporter's names, in the order they run.
pub const COLLECTORS: &[Collector] = &[
    Collector { name: "arp", collect: collectors::arp::collect },
    Collector { name: "conntrack", collect: collectors::conntrack::collect },
    Collector { name: "cpu", collect: collectors::cpu::collect },
    Collector { name: "diskstats", collect: collectors::diskstats::collect },
    Collector { name: "entropy", collect: collectors::entropy::collect },
    Collector { name: "filefd", collect: collectors::filefd::collect },
    Collector { name: "filesystem", collect: collectors::filesystem::collect },
    Collector { name: "hwmon", collect: collectors::hwmon::collect },
    Collector { name: "loadavg", collect: collectors::loadavg::collect },
    Collector { name: "meminfo", collect: collectors::meminfo::collect },
    Collector { name: "netclass", collect: collectors::netclass::collect },
    Collector { name: "netdev", collect: collectors::netdev::collect },
    Collector { name: "netstat", collect: collectors::netstat::collect },
    Collector { name: "os", collect: collectors::os::collect },
    Collector { name: "pressure", collect: collectors::pressure::collect },
    Collector { name: "schedstat", collect: collectors::schedstat::collect },
    Collector { name: "selinux", collect: collectors::selinux::collect },
    Collector { name: "sockstat", collect: collectors::sockstat::collect },
    Collector { name: "softnet", collect: collectors::softnet::collect },
    Collector { name: "stat", collect: collectors::stat::collect },
    Collector { name: "textfile", collect: collectors::textfile::collect },
    Collector { name: "thermal_zone", collect: collectors::thermal_zone::collect },
    Collector { name: "time", collect: collectors::time::collect },
    Collector { name: "timex", collect: collectors::timex::collect },
    Collector { name: "udp_queues", collect: collectors::udp_queues::collect },
    Collector { name: "uname", collect: collectors::uname::collect },
    Collector { name: "vmstat", collect: collectors::vmstat::collect },
];

const DESCRIPTION: &str = "Linux host metrics with node_exporter 1.5's names, types and labels: CPU, memory, \
disks, filesystems, network devices and protocols, pressure, time and more, read from /proc and /sys.";

/// The plugin's config section.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// Collectors to run; all when absent.
    pub collectors_enabled: Option<Vec<String>>,
    /// Collectors not to run, applied after `collectors_enabled`.
    pub collectors_disabled: Vec<String>,
    /// Directory of `*.prom` files for the textfile collector; none by default.
    pub textfile_directory: Option<String>,
    /// `|`-separated mount points to skip (see README); node_exporter's default when absent.
    pub filesystem_mount_points_exclude: Option<String>,
    /// `|`-separated filesystem types to skip; node_exporter's default when absent.
    pub filesystem_fs_types_exclude: Option<String>,
    /// `|`-separated interface names (`name*` for a prefix) netdev skips; none by default.
    pub netdev_device_exclude: Option<String>,
}

/// A validated config: which collectors run and with what settings.
#[derive(Debug, Clone)]
pub struct Plan {
    pub collectors: Vec<Collector>,
    pub settings: Settings,
}

fn check_names(key: &str, names: &[String]) -> Result<(), PluginError> {
    for name in names {
        if !COLLECTORS.iter().any(|c| c.name == name) {
            let known: Vec<&str> = COLLECTORS.iter().map(|c| c.name).collect();
            return Err(PluginError::config(format!("{key}: unknown collector {name:?}; known: {}", known.join(", "))));
        }
    }
    Ok(())
}

impl NodeConfig {
    /// Check every value and turn the config into a [`Plan`].
    pub fn plan(&self) -> Result<Plan, PluginError> {
        if let Some(enabled) = &self.collectors_enabled {
            check_names("collectors_enabled", enabled)?;
        }
        check_names("collectors_disabled", &self.collectors_disabled)?;
        let wanted = |name: &str| {
            self.collectors_enabled.as_ref().is_none_or(|e| e.iter().any(|n| n == name))
                && !self.collectors_disabled.iter().any(|n| n == name)
        };
        if let Some(dir) = &self.textfile_directory
            && !dir.starts_with('/')
        {
            return Err(PluginError::config(format!("textfile_directory: {dir:?} is not an absolute path")));
        }
        let or_default =
            |value: &Option<String>, default: &'static str| value.clone().unwrap_or_else(|| default.to_string());
        let settings = Settings {
            textfile_directory: self.textfile_directory.clone(),
            mount_points_exclude: MountPointFilter::parse(
                "filesystem_mount_points_exclude",
                &or_default(&self.filesystem_mount_points_exclude, DEFAULT_MOUNT_POINTS_EXCLUDE),
            )
            .map_err(PluginError::config)?,
            fs_types_exclude: NameFilter::parse(
                "filesystem_fs_types_exclude",
                &or_default(&self.filesystem_fs_types_exclude, DEFAULT_FS_TYPES_EXCLUDE),
            )
            .map_err(PluginError::config)?,
            netdev_device_exclude: NameFilter::parse(
                "netdev_device_exclude",
                &or_default(&self.netdev_device_exclude, ""),
            )
            .map_err(PluginError::config)?,
        };
        Ok(Plan { collectors: COLLECTORS.iter().copied().filter(|c| wanted(c.name)).collect(), settings })
    }
}

/// Run every collector of `plan`. A collector that fails is reported as
/// `node_scrape_collector_success 0` and logged once; the others still count.
pub fn run(plan: &Plan) -> Vec<MetricFamily> {
    let mut families: Vec<MetricFamily> = Vec::new();
    let mut duration =
        gauge("node_scrape_collector_duration_seconds", "node_exporter: Duration of a collector scrape.");
    let mut success = gauge("node_scrape_collector_success", "node_exporter: Whether a collector succeeded.");
    for collector in &plan.collectors {
        let started = Instant::now();
        let mut skipped = Skipped::default();
        let result = (collector.collect)(&plan.settings, &mut skipped);
        let elapsed = started.elapsed().as_secs_f64();
        if let Some(summary) = skipped.summary() {
            wasmon_sdk::log::warn(&format!("collector {}: {summary}", collector.name));
        }
        let ok = match result {
            Ok(out) => {
                families.extend(out.into_iter().filter(|f| !f.is_empty()).map(Family::build));
                true
            }
            Err(e) => {
                let message = format!("collector {} failed: {e}", collector.name);
                if e.unavailable {
                    wasmon_sdk::log::debug(&message)
                } else {
                    wasmon_sdk::log::warn(&message)
                }
                false
            }
        };
        duration.sample(&[("collector", collector.name)], elapsed);
        success.sample(&[("collector", collector.name)], if ok { 1.0 } else { 0.0 });
    }
    families.push(duration.build());
    families.push(success.build());

    // A textfile may reuse a built-in family's name; serving both would be
    // two families of one name. Keep the first, as collected.
    let mut seen = HashSet::new();
    families.retain(|f| {
        let first = seen.insert(f.name.clone());
        if !first {
            wasmon_sdk::log::warn(&format!("dropping a second family named {}", f.name));
        }
        first
    });
    families.sort_by(|a, b| a.name.cmp(&b.name));
    families
}

/// The plugin, as exported to the host.
pub struct Node;

impl Exporter for Node {
    fn describe() -> PluginInfo {
        PluginInfo::new("node", env!("CARGO_PKG_VERSION"), DESCRIPTION)
            .with_capability(Capability::ReadFiles(READ_GLOBS.iter().map(|g| g.to_string()).collect()))
            .with_capability(Capability::FsStats)
            .with_capability(Capability::Clock)
            .with_config_example(include_str!("../config.example.yaml"))
    }

    fn check_config(config: String) -> Result<(), PluginError> {
        wasmon_sdk::config::parse::<NodeConfig>(&config)?.plan().map(|_| ())
    }

    fn collect(_target: Target, config: String) -> Result<Vec<MetricFamily>, PluginError> {
        let plan = wasmon_sdk::config::parse::<NodeConfig>(&config)?.plan()?;
        Ok(run(&plan))
    }
}

wasmon_sdk::export!(Node);

// Every collect runs in a fresh instance that is dropped afterwards, and the
// collectors allocate many small strings: a bump allocator makes that cheap.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: wasmon_sdk::bump::BumpAllocator = wasmon_sdk::bump::BumpAllocator::new();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_collector_names_are_config_errors() {
        let err = Node::check_config(r#"{"collectors_disabled":["cpu","gpu"]}"#.into()).expect_err("gpu is unknown");
        assert_eq!(err.kind, wasmon_sdk::ErrorKind::Config);
        assert!(err.message.contains("\"gpu\"") && err.message.contains("collectors_disabled"), "{}", err.message);
        let err = Node::check_config(r#"{"collectors_enabled":["nope"]}"#.into()).expect_err("nope is unknown");
        assert!(err.message.contains("collectors_enabled"), "{}", err.message);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected() {
        assert!(Node::check_config(r#"{"colectors_disabled":[]}"#.into()).is_err());
        assert!(Node::check_config(r#"{"textfile_directory":"relative/dir"}"#.into()).is_err());
        let err =
            Node::check_config(r#"{"filesystem_mount_points_exclude":"^/(dev|proc)($|/)"}"#.into()).expect_err("regex");
        assert!(err.message.contains("filesystem_mount_points_exclude"), "{}", err.message);
        Node::check_config("{}".into()).expect("empty config is fine");
        Node::check_config(String::new()).expect("no config is fine");
    }

    #[test]
    fn enabled_then_disabled() {
        let config: NodeConfig = wasmon_sdk::config::parse(
            r#"{"collectors_enabled":["cpu","stat","uname"],"collectors_disabled":["stat"]}"#,
        )
        .expect("parses");
        let names: Vec<_> = config.plan().expect("valid").collectors.iter().map(|c| c.name).collect();
        assert_eq!(names, ["cpu", "uname"]);
    }

    #[test]
    fn describe_lists_capabilities_and_a_valid_example() {
        let info = Node::describe();
        assert_eq!(info.name, "node");
        assert!(info.capabilities.contains(&Capability::FsStats));
        assert!(info.capabilities.contains(&Capability::Clock));
        assert!(info.capabilities.contains(&Capability::ReadFiles(READ_GLOBS.iter().map(|g| g.to_string()).collect())));
        assert!(info.config_example.contains("textfile_directory"));
    }

    /// The example must stay valid, both as shipped and with every
    /// commented-out key switched on.
    #[test]
    fn config_example_is_valid() {
        let example = include_str!("../config.example.yaml");
        let uncommented: String = example
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest)
                    if rest
                        .split(':')
                        .next()
                        .is_some_and(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')) =>
                {
                    rest
                }
                _ => l,
            })
            .map(|l| format!("{l}\n"))
            .collect();
        for yaml in [example, uncommented.as_str()] {
            let value: serde_json::Value = serde_yaml_ng::from_str(yaml).expect("example is YAML");
            let config: NodeConfig = wasmon_sdk::config::parse(&value.to_string()).expect("example fits NodeConfig");
            config.plan().expect("example validates");
        }
        assert!(uncommented.contains("\ntextfile_directory: /var/lib/prometheus/node-exporter\n"));
    }

    #[test]
    fn collector_names_are_unique_and_sorted() {
        let names: Vec<_> = COLLECTORS.iter().map(|c| c.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
    }
}
