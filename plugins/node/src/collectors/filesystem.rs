//! `filesystem`: size and inode counts of mounted filesystems. The mount
//! table comes from `/proc/1/mounts` (the host's view even when wasmon runs in
//! a container), the numbers from the host's `statvfs` via
//! `wasmon_sdk::system::fs_stats`.

use super::Settings;
use crate::util::{CollectResult, Skipped, gauge, read_text};
use std::collections::HashSet;
use wasmon_sdk::Family;
use wasmon_sdk::system::FsStats;

/// One line of the mount table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub device: String,
    pub mount_point: String,
    pub fs_type: String,
    pub options: String,
}

impl Mount {
    fn read_only(&self) -> bool {
        self.options.split(',').any(|o| o == "ro")
    }
}

/// The mount table escapes space, tab, newline and backslash as `\NNN` octal.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(digits)) => {
                let value = digits.iter().fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn parse_mounts(text: &str, source: &str, skipped: &mut Skipped) -> Vec<Mount> {
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields[..] {
            [device, mount_point, fs_type, options, ..] => out.push(Mount {
                device: unescape(device),
                mount_point: unescape(mount_point),
                fs_type: fs_type.to_string(),
                options: options.to_string(),
            }),
            [] => {}
            _ => skipped.line(source, line),
        }
    }
    out
}

/// Mounts node_exporter would report: not excluded, each label set once
/// (bind mounts and stacked mounts repeat lines).
pub fn select(mounts: Vec<Mount>, settings: &Settings) -> Vec<Mount> {
    let mut seen = HashSet::new();
    mounts
        .into_iter()
        .filter(|m| !settings.mount_points_exclude.matches(&m.mount_point))
        .filter(|m| !settings.fs_types_exclude.matches(&m.fs_type))
        .filter(|m| seen.insert((m.device.clone(), m.mount_point.clone(), m.fs_type.clone())))
        .collect()
}

/// All node_filesystem_* families; `stat` asks the host for one mount's sizes.
pub fn families(mounts: &[Mount], stat: impl Fn(&str) -> Result<FsStats, String>) -> (Vec<Family>, Option<String>) {
    let mut size = gauge("node_filesystem_size_bytes", "Filesystem size in bytes.");
    let mut free = gauge("node_filesystem_free_bytes", "Filesystem free space in bytes.");
    let mut avail = gauge("node_filesystem_avail_bytes", "Filesystem space available to non-root users in bytes.");
    let mut files = gauge("node_filesystem_files", "Filesystem total file nodes.");
    let mut files_free = gauge("node_filesystem_files_free", "Filesystem total free file nodes.");
    let mut readonly = gauge("node_filesystem_readonly", "Filesystem read-only status.");
    let mut device_error = gauge(
        "node_filesystem_device_error",
        "Whether an error occurred while getting statistics for the given device.",
    );
    let mut first_error = None;

    for mount in mounts {
        let labels = [
            ("device", mount.device.as_str()),
            ("fstype", mount.fs_type.as_str()),
            ("mountpoint", mount.mount_point.as_str()),
        ];
        match stat(&mount.mount_point) {
            Ok(s) => {
                device_error.sample(&labels, 0.0);
                let block = s.block_size as f64;
                size.sample(&labels, s.blocks as f64 * block);
                free.sample(&labels, s.blocks_free as f64 * block);
                avail.sample(&labels, s.blocks_available as f64 * block);
                files.sample(&labels, s.files as f64);
                files_free.sample(&labels, s.files_free as f64);
                readonly.sample(&labels, if mount.read_only() || s.read_only { 1.0 } else { 0.0 });
            }
            // As node_exporter on a failed statfs: only the error series.
            Err(e) => {
                device_error.sample(&labels, 1.0);
                first_error.get_or_insert(e);
            }
        }
    }
    (vec![size, free, avail, files, files_free, readonly, device_error], first_error)
}

pub fn collect(settings: &Settings, skipped: &mut Skipped) -> CollectResult<Vec<Family>> {
    let (text, source) = match read_text("/proc/1/mounts") {
        Ok(text) => (text, "/proc/1/mounts"),
        Err(_) => (read_text("/proc/mounts")?, "/proc/mounts"),
    };
    let mounts = select(parse_mounts(&text, source, skipped), settings);
    let (families, first_error) = families(&mounts, wasmon_sdk::system::fs_stats);
    if let Some(e) = first_error {
        // Natively (tests) every call fails; inside the host this means a
        // stuck or vanished mount. One line per scrape is enough.
        wasmon_sdk::log::debug(&format!("filesystem: statfs failed for at least one mount: {e}"));
    }
    Ok(families)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::{DEFAULT_FS_TYPES_EXCLUDE, DEFAULT_MOUNT_POINTS_EXCLUDE, MountPointFilter, NameFilter};

    const MOUNTS: &str = "proc /proc proc rw,relatime 0 0\n\
/dev/vda / ext4 rw,relatime,discard 0 0\n\
tmpfs /dev/shm tmpfs rw,relatime 0 0\n\
cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n\
/dev/vdb /mnt/my\\040disk ext4 ro,relatime 0 0\n\
/dev/vdb /mnt/my\\040disk ext4 ro,relatime 0 0\n\
overlay /var/lib/docker/overlay2/x/merged overlay rw 0 0\n\
short line\n";

    fn defaults() -> Settings {
        Settings {
            mount_points_exclude: MountPointFilter::parse("m", DEFAULT_MOUNT_POINTS_EXCLUDE).expect("default"),
            fs_types_exclude: NameFilter::parse("f", DEFAULT_FS_TYPES_EXCLUDE).expect("default"),
            ..Settings::default()
        }
    }

    #[test]
    fn default_exclusions_and_escapes() {
        let mut skipped = Skipped::default();
        let mounts = select(parse_mounts(MOUNTS, "/proc/1/mounts", &mut skipped), &defaults());
        assert_eq!(skipped.count(), 1);
        let points: Vec<_> = mounts.iter().map(|m| m.mount_point.as_str()).collect();
        assert_eq!(points, ["/", "/mnt/my disk"]);
        assert!(mounts[1].read_only());
    }

    #[test]
    fn sizes_from_statvfs_and_errors_per_mount() {
        let mut skipped = Skipped::default();
        let mounts = select(parse_mounts(MOUNTS, "m", &mut skipped), &defaults());
        let stat = |mp: &str| {
            if mp == "/" {
                Ok(FsStats {
                    block_size: 4096,
                    blocks: 100,
                    blocks_free: 50,
                    blocks_available: 40,
                    files: 10,
                    files_free: 5,
                    read_only: false,
                })
            } else {
                Err("stuck".to_string())
            }
        };
        let (families, first_error) = families(&mounts, stat);
        assert_eq!(first_error.as_deref(), Some("stuck"));
        let families: Vec<_> = families.into_iter().map(Family::build).collect();
        let size = &families[0];
        assert_eq!(size.metrics.len(), 1);
        assert_eq!(size.metrics[0].value, wasmon_sdk::MetricValue::Gauge(409_600.0));
        let errors = families.iter().find(|f| f.name == "node_filesystem_device_error").expect("errors");
        assert_eq!(errors.metrics.len(), 2);
        assert_eq!(errors.metrics[1].value, wasmon_sdk::MetricValue::Gauge(1.0));
        let names: Vec<_> = errors.metrics[0].labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["device", "fstype", "mountpoint"]);
    }
}
