//! One module per node_exporter collector. Each exposes a `collect` function
//! for the registry in `lib.rs` and pure `parse…` functions over file
//! contents, unit-tested on literal payloads.

pub mod arp;
pub mod conntrack;
pub mod cpu;
pub mod diskstats;
pub mod entropy;
pub mod filefd;
pub mod filesystem;
pub mod hwmon;
pub mod loadavg;
pub mod meminfo;
pub mod netclass;
pub mod netdev;
pub mod netstat;
pub mod os;
pub mod pressure;
pub mod schedstat;
pub mod selinux;
pub mod sockstat;
pub mod softnet;
pub mod stat;
pub mod textfile;
pub mod thermal_zone;
pub mod time;
pub mod timex;
pub mod udp_queues;
pub mod uname;
pub mod vmstat;

pub mod tzif;

use crate::filters::{MountPointFilter, NameFilter};
use crate::util::{CollectResult, Skipped};
use wasmon_sdk::Family;

/// The validated config, as collectors need it.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub textfile_directory: Option<String>,
    pub mount_points_exclude: MountPointFilter,
    pub fs_types_exclude: NameFilter,
    pub netdev_device_exclude: NameFilter,
}

/// A collector's entry point: its families, or why it has none. Lines it
/// could not parse go to `skipped` and are logged once by the caller.
pub type CollectFn = fn(&Settings, &mut Skipped) -> CollectResult<Vec<Family>>;

/// A named collector, as node_exporter names it (`--collector.<name>`).
#[derive(Debug, Clone, Copy)]
pub struct Collector {
    pub name: &'static str,
    pub collect: CollectFn,
}
