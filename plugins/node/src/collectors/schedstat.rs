//! `schedstat`: per-CPU scheduler statistics from `/proc/schedstat`
//! (kernels with CONFIG_SCHEDSTATS).

use super::Settings;
use crate::util::{CollectResult, Skipped, counter, parse_f64, read_text};
use wasmon_sdk::Family;

/// One `cpuN` line: nanoseconds running, nanoseconds waiting, timeslices.
#[derive(Debug, Clone, PartialEq)]
pub struct CpuSched {
    pub cpu: String,
    pub running_ns: f64,
    pub waiting_ns: f64,
    pub timeslices: f64,
}

pub fn parse(text: &str, skipped: &mut Skipped) -> Vec<CpuSched> {
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(cpu) = fields.first().and_then(|f| f.strip_prefix("cpu")) else {
            continue;
        };
        // Columns 7–9 after the name (schedstat version 15).
        match (
            fields.get(7).and_then(|f| parse_f64(f)),
            fields.get(8).and_then(|f| parse_f64(f)),
            fields.get(9).and_then(|f| parse_f64(f)),
        ) {
            (Some(running_ns), Some(waiting_ns), Some(timeslices)) if !cpu.is_empty() => {
                out.push(CpuSched { cpu: cpu.to_string(), running_ns, waiting_ns, timeslices });
            }
            _ => skipped.line("/proc/schedstat", line),
        }
    }
    out
}

pub fn families(cpus: &[CpuSched]) -> Vec<Family> {
    let mut running = counter("node_schedstat_running_seconds_total", "Number of seconds CPU spent running a process.");
    let mut waiting =
        counter("node_schedstat_waiting_seconds_total", "Number of seconds spent by processing waiting for this CPU.");
    let mut slices = counter("node_schedstat_timeslices_total", "Number of timeslices executed by CPU.");
    for c in cpus {
        running.sample(&[("cpu", &c.cpu)], c.running_ns / 1e9);
        waiting.sample(&[("cpu", &c.cpu)], c.waiting_ns / 1e9);
        slices.sample(&[("cpu", &c.cpu)], c.timeslices);
    }
    vec![running, waiting, slices]
}

pub fn collect(_: &Settings, skipped: &mut Skipped) -> CollectResult<Vec<Family>> {
    Ok(families(&parse(&read_text("/proc/schedstat")?, skipped)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lines() {
        let text = "version 15\ntimestamp 4294\ncpu0 0 0 0 0 0 0 2045936778163039 343796328169361 4767485306\n\
domain0 00000000,00000003 212499247 210112015\ncpu1 0 0\n";
        let mut skipped = Skipped::default();
        let cpus = parse(text, &mut skipped);
        assert_eq!(cpus.len(), 1);
        assert_eq!(skipped.count(), 1);
        assert_eq!(cpus[0].timeslices, 4_767_485_306.0);
        let families: Vec<_> = families(&cpus).into_iter().map(Family::build).collect();
        assert_eq!(families[0].metrics[0].value, wasmon_sdk::MetricValue::Counter(2_045_936_778_163_039.0 / 1e9));
    }
}
