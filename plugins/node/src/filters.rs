//! Include/exclude rules. node_exporter takes regular expressions here; a
//! regex engine would add much to a plugin that is compiled at every agent
//! start, so the defaults are written out as plain Rust and the config accepts
//! simple `|`-separated lists instead (see README, "Config").

/// node_exporter 1.5's `--collector.filesystem.mount-points-exclude` default,
/// `^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)`,
/// in this module's list syntax.
pub const DEFAULT_MOUNT_POINTS_EXCLUDE: &str =
    "/dev|/proc|/run/credentials/|/sys|/var/lib/docker/|/var/lib/containers/storage/";

/// node_exporter 1.5's `--collector.filesystem.fs-types-exclude` default.
pub const DEFAULT_FS_TYPES_EXCLUDE: &str = "autofs|binfmt_misc|bpf|cgroup|cgroup2|configfs|debugfs|devpts|devtmpfs|\
fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs";

/// Characters that only make sense in a regular expression. Rejecting them
/// turns a pasted node_exporter regex into a clear config error instead of a
/// filter that silently matches nothing.
const REGEX_CHARS: &[char] = &['^', '$', '(', ')', '[', ']', '{', '}', '\\', '+', '?', '|'];

fn entries(text: &str) -> impl Iterator<Item = &str> {
    text.split('|').map(str::trim).filter(|e| !e.is_empty())
}

fn check_entry(key: &str, entry: &str, extra_forbidden: &[char]) -> Result<(), String> {
    if let Some(c) = entry.chars().find(|c| REGEX_CHARS.contains(c) || extra_forbidden.contains(c)) {
        return Err(format!(
            "{key}: {entry:?} contains {c:?}; regular expressions are not supported, \
             write a '|'-separated list (see the node plugin README)"
        ));
    }
    Ok(())
}

/// A `|`-separated list of names, each matched exactly, or as a prefix when
/// it ends in `*` (`veth*`). Example: `lo|docker*|veth*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameFilter {
    exact: Vec<String>,
    prefixes: Vec<String>,
}

impl NameFilter {
    /// Parse `text`; `key` names the config key in errors.
    pub fn parse(key: &str, text: &str) -> Result<Self, String> {
        let mut filter = Self::default();
        for entry in entries(text) {
            let (body, is_prefix) = match entry.strip_suffix('*') {
                Some(body) => (body, true),
                None => (entry, false),
            };
            check_entry(key, body, &['*'])?;
            if is_prefix {
                filter.prefixes.push(body.to_string());
            } else {
                filter.exact.push(body.to_string());
            }
        }
        Ok(filter)
    }

    pub fn matches(&self, name: &str) -> bool {
        self.exact.iter().any(|e| e == name) || self.prefixes.iter().any(|p| name.starts_with(p.as_str()))
    }
}

/// A `|`-separated list of absolute paths. `/dev` matches `/dev` and
/// everything below it; `/var/lib/docker/` (trailing slash) matches only what
/// is below it, as the `.+` in node_exporter's default does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountPointFilter {
    /// (path without trailing slash, only strictly below it)
    entries: Vec<(String, bool)>,
}

impl MountPointFilter {
    pub fn parse(key: &str, text: &str) -> Result<Self, String> {
        let mut filter = Self::default();
        for entry in entries(text) {
            check_entry(key, entry, &['*'])?;
            if !entry.starts_with('/') {
                return Err(format!("{key}: {entry:?} is not an absolute path"));
            }
            let below_only = entry.len() > 1 && entry.ends_with('/');
            let trimmed = entry.trim_end_matches('/');
            let path = if trimmed.is_empty() { "/" } else { trimmed };
            filter.entries.push((path.to_string(), below_only));
        }
        Ok(filter)
    }

    pub fn matches(&self, mount_point: &str) -> bool {
        self.entries.iter().any(|(path, below_only)| {
            if path == "/" {
                return true; // `/` is the parent of every mount point
            }
            let Some(rest) = mount_point.strip_prefix(path.as_str()) else {
                return false;
            };
            if *below_only { rest.starts_with('/') && rest.len() > 1 } else { rest.is_empty() || rest.starts_with('/') }
        })
    }
}

/// node_exporter 1.5's diskstats default ignore rule,
/// `^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$`: RAM disks, loop and
/// floppy devices, and partitions of whole disks (`sda1`, `nvme0n1p2`).
pub fn disk_device_ignored(name: &str) -> bool {
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit());
    if stem.len() == name.len() {
        return false; // no trailing number
    }
    if matches!(stem, "ram" | "loop" | "fd") {
        return true;
    }
    if is_classic_disk(stem) {
        return true;
    }
    is_nvme_partition_stem(stem)
}

/// `(h|s|v|xv)d[a-z]`
fn is_classic_disk(stem: &str) -> bool {
    let rest = stem.strip_prefix("xv").or_else(|| stem.strip_prefix(['h', 's', 'v']));
    match rest.and_then(|r| r.strip_prefix('d')) {
        Some(letter) => letter.len() == 1 && letter.chars().all(|c| c.is_ascii_lowercase()),
        None => false,
    }
}

/// `nvme\d+n\d+p`
fn is_nvme_partition_stem(stem: &str) -> bool {
    let Some(rest) = stem.strip_prefix("nvme").and_then(|r| r.strip_suffix('p')) else {
        return false;
    };
    let Some((controller, namespace)) = rest.split_once('n') else {
        return false;
    };
    let all_digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    all_digits(controller) && all_digits(namespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_mount_point_rule_matches_node_exporter() {
        let f = MountPointFilter::parse("k", DEFAULT_MOUNT_POINTS_EXCLUDE).expect("default parses");
        for excluded in [
            "/dev",
            "/dev/shm",
            "/proc",
            "/sys/fs/cgroup",
            "/run/credentials/x.service",
            "/var/lib/docker/overlay2/abc",
        ] {
            assert!(f.matches(excluded), "{excluded} should be excluded");
        }
        for kept in ["/", "/boot", "/devices", "/run", "/run/credentials", "/var/lib/docker", "/system", "/home/dev"] {
            assert!(!f.matches(kept), "{kept} should be kept");
        }
    }

    #[test]
    fn default_fs_type_rule() {
        let f = NameFilter::parse("k", DEFAULT_FS_TYPES_EXCLUDE).expect("default parses");
        for t in ["cgroup2", "cgroup", "tmpfs", "ext4", "overlay", "proc"] {
            assert_eq!(f.matches(t), !matches!(t, "tmpfs" | "ext4"), "{t}");
        }
    }

    #[test]
    fn name_prefixes_and_errors() {
        let f = NameFilter::parse("k", "lo | veth*").expect("parses");
        assert!(f.matches("lo") && f.matches("veth12ab") && !f.matches("eth0") && !f.matches("lo0"));
        let err = NameFilter::parse("netdev_device_exclude", "^(lo|veth.*)$").expect_err("regex rejected");
        assert!(err.contains("netdev_device_exclude") && err.contains("regular expressions"), "{err}");
        assert!(NameFilter::parse("k", "a*b").is_err(), "'*' only at the end");
        assert_eq!(NameFilter::parse("k", "").expect("empty ok"), NameFilter::default());
    }

    #[test]
    fn mount_point_errors() {
        assert!(MountPointFilter::parse("k", "dev").is_err());
        assert!(MountPointFilter::parse("k", "^/(dev|proc)($|/)").is_err());
        let root_children = MountPointFilter::parse("k", "/mnt/").expect("parses");
        assert!(root_children.matches("/mnt/usb") && !root_children.matches("/mnt"));
    }

    #[test]
    fn disk_ignore_rule() {
        for ignored in ["ram0", "loop7", "fd0", "sda1", "vda15", "xvdb2", "hdc3", "nvme0n1p1", "nvme10n2p15"] {
            assert!(disk_device_ignored(ignored), "{ignored}");
        }
        for kept in ["sda", "vda", "nvme0n1", "zram0", "md0", "dm-0", "sdaa1", "loop", "mmcblk0", "mmcblk0p1", "sr0"] {
            assert!(!disk_device_ignored(kept), "{kept}");
        }
    }
}
