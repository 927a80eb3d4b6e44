//! `cpu`: time per CPU and mode from `/proc/stat`, and thermal throttle
//! counts from `/sys/devices/system/cpu/cpu*/thermal_throttle` where the
//! hardware reports them.

use super::Settings;
use crate::util::{CollectResult, Skipped, counter, parse_u64, read_optional, read_text};
use std::collections::BTreeMap;
use wasmon_sdk::Family;

/// `/proc/stat` counts in USER_HZ ticks, which the kernel ABI fixes at 100
/// per second on every architecture Linux exposes it for.
pub const USER_HZ: f64 = 100.0;

/// The modes of `node_cpu_seconds_total`, in `/proc/stat` column order.
const MODES: [&str; 8] = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"];

/// Seconds one CPU spent in each mode.
#[derive(Debug, Clone, PartialEq)]
pub struct CpuTimes {
    /// The CPU number, as a label value.
    pub cpu: String,
    /// Seconds per entry of `MODES`.
    pub modes: [f64; 8],
    /// `guest` and `guest_nice`, on kernels that report them.
    pub guest: Option<[f64; 2]>,
}

/// The `cpuN` lines of `/proc/stat` (not the aggregate `cpu` line).
pub fn parse_cpu_lines(stat: &str, skipped: &mut Skipped) -> Vec<CpuTimes> {
    let mut out = Vec::new();
    for line in stat.lines() {
        let mut fields = line.split_whitespace();
        let Some(cpu) = fields.next().and_then(|f| f.strip_prefix("cpu")) else {
            continue;
        };
        if cpu.is_empty() {
            continue; // the all-CPU total
        }
        let ticks: Option<Vec<u64>> = fields.map(parse_u64).collect();
        match ticks {
            Some(ticks) if cpu.chars().all(|c| c.is_ascii_digit()) && ticks.len() >= MODES.len() => {
                let seconds = |i: usize| ticks[i] as f64 / USER_HZ;
                let modes = std::array::from_fn(seconds);
                let guest = (ticks.len() >= 10).then(|| [seconds(8), seconds(9)]);
                out.push(CpuTimes { cpu: cpu.to_string(), modes, guest });
            }
            _ => skipped.line("/proc/stat", line),
        }
    }
    out
}

/// `node_cpu_seconds_total` and `node_cpu_guest_seconds_total`.
pub fn time_families(cpus: &[CpuTimes]) -> Vec<Family> {
    let mut seconds = counter("node_cpu_seconds_total", "Seconds the CPUs spent in each mode.");
    let mut guest = counter("node_cpu_guest_seconds_total", "Seconds the CPUs spent in guests (VMs) for each mode.");
    for cpu in cpus {
        for (mode, value) in MODES.iter().zip(cpu.modes) {
            seconds.sample(&[("cpu", &cpu.cpu), ("mode", mode)], value);
        }
        if let Some([user, nice]) = cpu.guest {
            guest.sample(&[("cpu", &cpu.cpu), ("mode", "user")], user);
            guest.sample(&[("cpu", &cpu.cpu), ("mode", "nice")], nice);
        }
    }
    vec![seconds, guest]
}

/// Throttle counters as node_exporter reports them: one per physical package,
/// and one per (package, core), read once even when cores have siblings.
#[derive(Debug, Default, PartialEq)]
pub struct Throttles {
    pub package: BTreeMap<u64, u64>,
    pub core: BTreeMap<(u64, u64), u64>,
}

/// Read what `/sys/devices/system/cpu/cpuN/{topology,thermal_throttle}` hold.
/// Most virtual machines have none of it, which is not an error.
fn read_throttles() -> Throttles {
    let mut throttles = Throttles::default();
    let Ok(entries) = wasmon_sdk::fs::read_dir("/sys/devices/system/cpu") else {
        return throttles;
    };
    for entry in entries {
        let is_cpu =
            entry.name.strip_prefix("cpu").is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        if !is_cpu {
            continue;
        }
        let dir = format!("/sys/devices/system/cpu/{}", entry.name);
        let number = |file: &str| read_optional(&format!("{dir}/{file}")).as_deref().and_then(parse_u64);
        let (Some(package), Some(core)) = (number("topology/physical_package_id"), number("topology/core_id")) else {
            continue;
        };
        if !throttles.core.contains_key(&(package, core))
            && let Some(count) = number("thermal_throttle/core_throttle_count")
        {
            throttles.core.insert((package, core), count);
        }
        if !throttles.package.contains_key(&package)
            && let Some(count) = number("thermal_throttle/package_throttle_count")
        {
            throttles.package.insert(package, count);
        }
    }
    throttles
}

pub fn throttle_families(throttles: &Throttles) -> Vec<Family> {
    let mut core = counter("node_cpu_core_throttles_total", "Number of times this CPU core has been throttled.");
    for ((package, core_id), count) in &throttles.core {
        core.sample(&[("package", &package.to_string()), ("core", &core_id.to_string())], *count as f64);
    }
    let mut package =
        counter("node_cpu_package_throttles_total", "Number of times this CPU package has been throttled.");
    for (package_id, count) in &throttles.package {
        package.sample(&[("package", &package_id.to_string())], *count as f64);
    }
    vec![core, package]
}

pub fn collect(_: &Settings, skipped: &mut Skipped) -> CollectResult<Vec<Family>> {
    let stat = read_text("/proc/stat")?;
    let mut families = time_families(&parse_cpu_lines(&stat, skipped));
    families.extend(throttle_families(&read_throttles()));
    Ok(families)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  79038 0 7387 111310 374 0 95 122 0 0\n\
cpu0 23820 0 3624 56515 117 0 7 67 0 0\n\
cpu1 25218 0 3763 54795 257 0 88 55 5 1\n\
cpu2 1 2 3\n\
intr 402984 9 0\n";

    #[test]
    fn ticks_become_seconds() {
        let mut skipped = Skipped::default();
        let cpus = parse_cpu_lines(STAT, &mut skipped);
        assert_eq!(cpus.len(), 2);
        assert_eq!(skipped.count(), 1, "cpu2 has too few columns");
        assert_eq!(cpus[0].cpu, "0");
        assert_eq!(cpus[0].modes, [238.2, 0.0, 36.24, 565.15, 1.17, 0.0, 0.07, 0.67]);
        assert_eq!(cpus[1].guest, Some([0.05, 0.01]));
    }

    #[test]
    fn families_carry_cpu_and_mode() {
        let mut skipped = Skipped::default();
        let families = time_families(&parse_cpu_lines(STAT, &mut skipped));
        let seconds = families[0].clone().build();
        assert_eq!(seconds.name, "node_cpu_seconds_total");
        assert_eq!(seconds.metrics.len(), 16);
        let guest = families[1].clone().build();
        assert_eq!(guest.metrics.len(), 4);
        assert_eq!(guest.metrics[2].labels[1].value, "user");
    }

    #[test]
    fn old_kernels_without_guest_columns() {
        let mut skipped = Skipped::default();
        let cpus = parse_cpu_lines("cpu0 1 2 3 4 5 6 7 8\n", &mut skipped);
        assert_eq!(cpus[0].guest, None);
        assert_eq!(skipped.count(), 0);
    }

    #[test]
    fn throttles_by_package_and_core() {
        let mut t = Throttles::default();
        t.core.insert((0, 1), 5);
        t.package.insert(0, 7);
        let families: Vec<_> = throttle_families(&t).into_iter().map(Family::build).collect();
        assert_eq!(families[0].metrics[0].labels[1].value, "1");
        assert_eq!(families[1].metrics[0].labels[0].value, "0");
    }
}
