//! `stat`: boot time, context switches, forks, interrupts and process
//! states from `/proc/stat`.

use super::Settings;
use crate::util::{CollectResult, Skipped, counter, gauge, parse_f64, read_text};
use wasmon_sdk::Family;

/// The system-wide lines of `/proc/stat`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SystemStat {
    pub boot_time: Option<f64>,
    pub context_switches: Option<f64>,
    pub forks: Option<f64>,
    /// The first number of the `intr` line: all interrupts serviced.
    pub interrupts: Option<f64>,
    pub procs_running: Option<f64>,
    pub procs_blocked: Option<f64>,
}

pub fn parse(stat: &str, skipped: &mut Skipped) -> SystemStat {
    let mut out = SystemStat::default();
    for line in stat.lines() {
        let mut fields = line.split_whitespace();
        let (Some(key), value) = (fields.next(), fields.next()) else {
            continue;
        };
        let slot = match key {
            "btime" => &mut out.boot_time,
            "ctxt" => &mut out.context_switches,
            "processes" => &mut out.forks,
            "intr" => &mut out.interrupts,
            "procs_running" => &mut out.procs_running,
            "procs_blocked" => &mut out.procs_blocked,
            _ => continue,
        };
        match value.and_then(parse_f64) {
            Some(v) => *slot = Some(v),
            None => skipped.line("/proc/stat", line),
        }
    }
    out
}

pub fn families(stat: &SystemStat) -> Vec<Family> {
    let mut out = Vec::new();
    let mut add = |family: Family, value: Option<f64>| {
        if let Some(v) = value {
            let mut family = family;
            family.sample(&[], v);
            out.push(family);
        }
    };
    add(gauge("node_boot_time_seconds", "Node boot time, in unixtime."), stat.boot_time);
    add(counter("node_context_switches_total", "Total number of context switches."), stat.context_switches);
    add(counter("node_forks_total", "Total number of forks."), stat.forks);
    add(counter("node_intr_total", "Total number of interrupts serviced."), stat.interrupts);
    add(gauge("node_procs_running", "Number of processes in runnable state."), stat.procs_running);
    add(gauge("node_procs_blocked", "Number of processes blocked waiting for I/O to complete."), stat.procs_blocked);
    out
}

pub fn collect(_: &Settings, skipped: &mut Skipped) -> CollectResult<Vec<Family>> {
    Ok(families(&parse(&read_text("/proc/stat")?, skipped)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_system_lines() {
        let text = "cpu  1 2 3 4\nintr 402984 9 0 0\nctxt 609087\nbtime 1795317598\nprocesses 13837\n\
procs_running 1\nprocs_blocked 0\nsoftirq 1 2 3\nctxt x\n";
        let mut skipped = Skipped::default();
        let stat = parse(text, &mut skipped);
        assert_eq!(stat.boot_time, Some(1_795_317_598.0));
        assert_eq!(stat.interrupts, Some(402_984.0));
        assert_eq!(stat.context_switches, Some(609_087.0), "the malformed later line does not clobber it");
        assert_eq!(stat.forks, Some(13_837.0));
        assert_eq!(stat.procs_blocked, Some(0.0));
        assert_eq!(skipped.count(), 1);
        assert_eq!(families(&stat).len(), 6);
    }
}
