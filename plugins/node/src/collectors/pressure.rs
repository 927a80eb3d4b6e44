//! `pressure`: pressure stall information from `/proc/pressure/{cpu,io,memory}`
//! (Linux 4.20+ with CONFIG_PSI).

use super::Settings;
use crate::util::{CollectError, CollectResult, Skipped, counter, parse_f64, read_text};
use wasmon_sdk::Family;

/// The `total=` microseconds of the `some` and `full` lines.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Pressure {
    pub some_total_us: Option<f64>,
    pub full_total_us: Option<f64>,
}

pub fn parse(text: &str, source: &str, skipped: &mut Skipped) -> Pressure {
    let mut out = Pressure::default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let slot = match words.next() {
            Some("some") => &mut out.some_total_us,
            Some("full") => &mut out.full_total_us,
            _ => {
                if !line.trim().is_empty() {
                    skipped.line(source, line);
                }
                continue;
            }
        };
        match words.find_map(|w| w.strip_prefix("total=")).and_then(parse_f64) {
            Some(total) => *slot = Some(total),
            None => skipped.line(source, line),
        }
    }
    out
}

/// µs → s the way node_exporter does it (`float64(total) / 1000.0 / 1000.0`),
/// so values match to the last bit.
fn seconds(total_us: f64) -> f64 {
    total_us / 1000.0 / 1000.0
}

pub fn families(cpu: Option<Pressure>, io: Option<Pressure>, memory: Option<Pressure>) -> Vec<Family> {
    let mut out = Vec::new();
    let mut add = |name: &str, help: &str, total: Option<f64>| {
        if let Some(total) = total {
            let mut family = counter(name, help);
            family.sample(&[], seconds(total));
            out.push(family);
        }
    };
    // node_exporter 1.5 reports only "some" for cpu.
    add(
        "node_pressure_cpu_waiting_seconds_total",
        "Total time in seconds that processes have waited for CPU time",
        cpu.and_then(|p| p.some_total_us),
    );
    add(
        "node_pressure_io_waiting_seconds_total",
        "Total time in seconds that processes have waited due to IO congestion",
        io.and_then(|p| p.some_total_us),
    );
    add(
        "node_pressure_io_stalled_seconds_total",
        "Total time in seconds no process could make progress due to IO congestion",
        io.and_then(|p| p.full_total_us),
    );
    add(
        "node_pressure_memory_waiting_seconds_total",
        "Total time in seconds that processes have waited for memory",
        memory.and_then(|p| p.some_total_us),
    );
    add(
        "node_pressure_memory_stalled_seconds_total",
        "Total time in seconds no process could make progress due to memory congestion",
        memory.and_then(|p| p.full_total_us),
    );
    out
}

pub fn collect(_: &Settings, skipped: &mut Skipped) -> CollectResult<Vec<Family>> {
    let mut read = |resource: &str| -> CollectResult<Option<Pressure>> {
        let path = format!("/proc/pressure/{resource}");
        match read_text(&path) {
            Ok(text) => Ok(Some(parse(&text, &path, skipped))),
            Err(e) if e.unavailable => Ok(None),
            Err(e) => Err(e),
        }
    };
    let (cpu, io, memory) = (read("cpu")?, read("io")?, read("memory")?);
    if cpu.is_none() && io.is_none() && memory.is_none() {
        return Err(CollectError::unavailable(
            "pressure information is unavailable, you need a Linux kernel >= 4.20 and/or CONFIG_PSI enabled",
        ));
    }
    Ok(families(cpu, io, memory))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_in_seconds() {
        let mut skipped = Skipped::default();
        let io = parse(
            "some avg10=0.04 avg60=0.13 avg300=0.25 total=4378341\nfull avg10=0.04 avg60=0.09 avg300=0.20 total=2489654\n",
            "/proc/pressure/io",
            &mut skipped,
        );
        assert_eq!(io.some_total_us, Some(4_378_341.0));
        let families: Vec<_> = families(None, Some(io), None).into_iter().map(Family::build).collect();
        assert_eq!(families.len(), 2);
        // The same float node_exporter prints: 4.378341000000001.
        assert_eq!(families[0].metrics[0].value, wasmon_sdk::MetricValue::Counter(4_378_341.0 / 1000.0 / 1000.0));
        assert_eq!(families[1].name, "node_pressure_io_stalled_seconds_total");
    }

    #[test]
    fn cpu_full_is_ignored_and_bad_lines_skipped() {
        let mut skipped = Skipped::default();
        let cpu = parse("some total=20060401\nfull total=0\nnonsense\nsome avg10=1\n", "cpu", &mut skipped);
        assert_eq!(skipped.count(), 2);
        let families = families(Some(cpu), None, None);
        assert_eq!(families.len(), 1);
    }
}
