//! `softnet`: per-CPU packet processing from `/proc/net/softnet_stat`.

use super::Settings;
use crate::util::{CollectResult, Skipped, counter, parse_hex_u64, read_text};
use wasmon_sdk::Family;

/// The first three hex columns of one CPU's line. The label is the line's
/// position, as node_exporter 1.5 numbers them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Softnet {
    pub cpu: String,
    pub processed: u64,
    pub dropped: u64,
    pub times_squeezed: u64,
}

pub fn parse(text: &str, skipped: &mut Skipped) -> Vec<Softnet> {
    let mut out = Vec::new();
    for (index, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let mut cols = line.split_whitespace().map(parse_hex_u64);
        match (cols.next().flatten(), cols.next().flatten(), cols.next().flatten()) {
            (Some(processed), Some(dropped), Some(times_squeezed)) => {
                out.push(Softnet { cpu: index.to_string(), processed, dropped, times_squeezed });
            }
            _ => skipped.line("/proc/net/softnet_stat", line),
        }
    }
    out
}

pub fn families(rows: &[Softnet]) -> Vec<Family> {
    let mut processed = counter("node_softnet_processed_total", "Number of processed packets");
    let mut dropped = counter("node_softnet_dropped_total", "Number of dropped packets");
    let mut squeezed =
        counter("node_softnet_times_squeezed_total", "Number of times processing packets ran out of quota");
    for r in rows {
        processed.sample(&[("cpu", &r.cpu)], r.processed as f64);
        dropped.sample(&[("cpu", &r.cpu)], r.dropped as f64);
        squeezed.sample(&[("cpu", &r.cpu)], r.times_squeezed as f64);
    }
    vec![processed, dropped, squeezed]
}

pub fn collect(_: &Settings, skipped: &mut Skipped) -> CollectResult<Vec<Family>> {
    Ok(families(&parse(&read_text("/proc/net/softnet_stat")?, skipped)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_columns() {
        let text = "00000b8f 00000000 00000001 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000\n\
00002758 00000002 00000000 00000000\n";
        let rows = parse(text, &mut Skipped::default());
        assert_eq!(rows[0], Softnet { cpu: "0".into(), processed: 2959, dropped: 0, times_squeezed: 1 });
        assert_eq!(rows[1].processed, 10072);
        assert_eq!(rows[1].dropped, 2);
        let mut skipped = Skipped::default();
        assert!(parse("zz 0 0\n", &mut skipped).is_empty());
        assert_eq!(skipped.count(), 1);
    }
}
