//! `selinux`: whether SELinux is enabled and in which mode.

use super::Settings;
use crate::util::{CollectResult, Skipped, gauge, read_optional};
use wasmon_sdk::Family;

/// `SELINUX=` of /etc/selinux/config as node_exporter encodes it:
/// enforcing 1, permissive 0, disabled -1.
pub fn config_mode(config: &str) -> Option<f64> {
    let value = config.lines().find_map(|l| l.trim().strip_prefix("SELINUX="))?;
    match value.trim().trim_matches('"') {
        "enforcing" => Some(1.0),
        "permissive" => Some(0.0),
        "disabled" => Some(-1.0),
        _ => None,
    }
}

pub fn collect(_: &Settings, _: &mut Skipped) -> CollectResult<Vec<Family>> {
    let mut enabled = gauge("node_selinux_enabled", "SELinux is enabled, 1 is true, 0 is false");
    // selinuxfs is mounted (and `enforce` readable) only when SELinux is on.
    let Some(enforce) = read_optional("/sys/fs/selinux/enforce") else {
        enabled.sample(&[], 0.0);
        return Ok(vec![enabled]);
    };
    enabled.sample(&[], 1.0);
    let mut out = vec![enabled];
    if let Some(mode) = wasmon_sdk::fs::read_to_string("/etc/selinux/config").ok().as_deref().and_then(config_mode) {
        let mut family = gauge("node_selinux_config_mode", "Configured SELinux enforcement mode");
        family.sample(&[], mode);
        out.push(family);
    }
    let mut current = gauge("node_selinux_current_mode", "Current SELinux enforcement mode");
    current.sample(&[], if enforce == "1" { 1.0 } else { 0.0 });
    out.push(current);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_modes() {
        assert_eq!(config_mode("# c\nSELINUX=enforcing\nSELINUXTYPE=targeted\n"), Some(1.0));
        assert_eq!(config_mode("SELINUX=disabled"), Some(-1.0));
        assert_eq!(config_mode("nothing"), None);
    }
}
