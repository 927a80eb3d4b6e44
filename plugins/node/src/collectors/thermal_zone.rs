//! `thermal_zone`: temperatures of `/sys/class/thermal/thermal_zone*` and
//! throttle states of `/sys/class/thermal/cooling_device*`.

use super::Settings;
use crate::util::{CollectError, CollectResult, Skipped, gauge, parse_f64, read_optional};
use wasmon_sdk::Family;

const THERMAL_DIR: &str = "/sys/class/thermal";

/// The number after `prefix` in a directory name (`thermal_zone3` → `3`).
fn numbered<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
    name.strip_prefix(prefix).filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

pub fn collect(_: &Settings, skipped: &mut Skipped) -> CollectResult<Vec<Family>> {
    let entries = wasmon_sdk::fs::read_dir(THERMAL_DIR).map_err(|e| CollectError::io(THERMAL_DIR, &e))?;
    let mut zone_temp = gauge("node_thermal_zone_temp", "Zone temperature in Celsius");
    let mut cur_state = gauge("node_cooling_device_cur_state", "Current throttle state of the cooling device");
    let mut max_state = gauge("node_cooling_device_max_state", "Maximum throttle state of the cooling device");
    for entry in &entries {
        let dir = format!("{THERMAL_DIR}/{}", entry.name);
        let read = |file: &str| read_optional(&format!("{dir}/{file}"));
        if let Some(zone) = numbered(&entry.name, "thermal_zone") {
            // Sensors that are asleep answer EINVAL/ENODATA for `temp`; skip them.
            match (read("type"), read("temp").as_deref().and_then(parse_f64)) {
                (Some(kind), Some(millidegrees)) => {
                    zone_temp.sample(&[("zone", zone), ("type", &kind)], millidegrees / 1000.0);
                }
                _ => skipped.line(THERMAL_DIR, &format!("{} has no readable type/temp", entry.name)),
            }
        } else if let Some(device) = numbered(&entry.name, "cooling_device") {
            let (Some(kind), Some(cur), Some(max)) = (
                read("type"),
                read("cur_state").as_deref().and_then(parse_f64),
                read("max_state").as_deref().and_then(parse_f64),
            ) else {
                skipped.line(THERMAL_DIR, &format!("{} has no readable type/cur_state/max_state", entry.name));
                continue;
            };
            cur_state.sample(&[("name", device), ("type", &kind)], cur);
            max_state.sample(&[("name", device), ("type", &kind)], max);
        }
    }
    Ok(vec![zone_temp, cur_state, max_state])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_entries() {
        assert_eq!(numbered("thermal_zone12", "thermal_zone"), Some("12"));
        assert_eq!(numbered("thermal_zone", "thermal_zone"), None);
        assert_eq!(numbered("cooling_device0", "thermal_zone"), None);
    }
}
