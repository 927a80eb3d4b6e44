//! `time`: the system clock, the local time zone and the kernel clocksource.

use super::Settings;
use super::tzif::{Zone, zone_at};
use crate::util::{CollectError, CollectResult, Skipped, gauge, read_optional};
use std::time::{SystemTime, UNIX_EPOCH};
use wasmon_sdk::Family;

const CLOCKSOURCE_DIR: &str = "/sys/devices/system/clocksource";

/// The local zone from `/etc/localtime`, or UTC when it is missing or
/// unreadable (which is also what Go falls back to).
fn local_zone(now: i64) -> Zone {
    wasmon_sdk::fs::read("/etc/localtime")
        .ok()
        .and_then(|data| zone_at(&data, now))
        .unwrap_or_else(|| Zone { abbreviation: "UTC".into(), offset_seconds: 0 })
}

/// (device number, available clocksources, current clocksource) per
/// `clocksourceN` directory.
fn clocksources() -> Vec<(String, Vec<String>, Option<String>)> {
    let Ok(entries) = wasmon_sdk::fs::read_dir(CLOCKSOURCE_DIR) else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|e| {
            let device = e.name.strip_prefix("clocksource")?;
            if device.is_empty() || !device.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let dir = format!("{CLOCKSOURCE_DIR}/{}", e.name);
            let available = read_optional(&format!("{dir}/available_clocksource")).unwrap_or_default();
            let current = read_optional(&format!("{dir}/current_clocksource"));
            Some((device.to_string(), available.split_whitespace().map(String::from).collect(), current))
        })
        .collect()
}

pub fn collect(_: &Settings, _: &mut Skipped) -> CollectResult<Vec<Family>> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| CollectError::new(format!("system clock before 1970: {e}")))?
        .as_secs_f64();
    let mut time = gauge("node_time_seconds", "System time in seconds since epoch (1970).");
    time.sample(&[], now);

    let zone = local_zone(now as i64);
    let mut offset = gauge("node_time_zone_offset_seconds", "System time zone offset in seconds.");
    offset.sample(&[("time_zone", &zone.abbreviation)], zone.offset_seconds as f64);

    let mut available = gauge(
        "node_time_clocksource_available_info",
        "Available clocksources read from '/sys/devices/system/clocksource'.",
    );
    let mut current =
        gauge("node_time_clocksource_current_info", "Current clocksource read from '/sys/devices/system/clocksource'.");
    for (device, sources, active) in clocksources() {
        for source in &sources {
            available.sample(&[("device", &device), ("clocksource", source)], 1.0);
        }
        if let Some(active) = active {
            current.sample(&[("device", &device), ("clocksource", &active)], 1.0);
        }
    }
    Ok(vec![time, offset, available, current])
}
