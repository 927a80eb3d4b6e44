//! `conntrack`: netfilter connection tracking table use and statistics,
//! present only when the nf_conntrack module is loaded.

use super::Settings;
use crate::util::{CollectError, CollectResult, Skipped, gauge, parse_f64, parse_hex_u64, read_text, read_value};
use wasmon_sdk::Family;

/// The `/proc/net/stat/nf_conntrack` columns node_exporter exports.
const STATS: [(&str, &str); 8] = [
    ("found", "Number of searched entries which were successful."),
    ("invalid", "Number of packets seen which can not be tracked."),
    ("ignore", "Number of packets seen which are already connected to a conntrack entry."),
    ("insert", "Number of entries inserted into the list."),
    ("insert_failed", "Number of entries for which list insertion was attempted but failed."),
    ("drop", "Number of packets dropped due to conntrack failure."),
    ("early_drop", "Number of dropped conntrack entries to make room for new ones, if maximum table size was reached."),
    ("search_restart", "Number of conntrack table lookups which had to be restarted due to hashtable resizes."),
];

/// Sum each named column over the per-CPU hex rows. The header names the
/// columns, which differ between kernel versions.
pub fn sum_stats(text: &str, skipped: &mut Skipped) -> Vec<(String, u64)> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split_whitespace().collect();
    let mut sums = vec![0u64; header.len()];
    for line in lines {
        let values: Option<Vec<u64>> = line.split_whitespace().map(parse_hex_u64).collect();
        match values {
            Some(values) if values.len() == header.len() => {
                for (sum, v) in sums.iter_mut().zip(values) {
                    *sum = sum.saturating_add(v);
                }
            }
            _ if line.trim().is_empty() => {}
            _ => skipped.line("/proc/net/stat/nf_conntrack", line),
        }
    }
    header.into_iter().map(String::from).zip(sums).collect()
}

fn read_number(path: &str) -> CollectResult<f64> {
    let text = read_value(path)?;
    parse_f64(&text).ok_or_else(|| CollectError::new(format!("{path}: not a number: {text:?}")))
}

pub fn stat_families(sums: &[(String, u64)]) -> Vec<Family> {
    STATS
        .iter()
        .filter_map(|(column, help)| {
            let (_, value) = sums.iter().find(|(name, _)| name == column)?;
            let mut family = gauge(&format!("node_nf_conntrack_stat_{column}"), help);
            family.sample(&[], *value as f64);
            Some(family)
        })
        .collect()
}

pub fn collect(_: &Settings, skipped: &mut Skipped) -> CollectResult<Vec<Family>> {
    let mut entries =
        gauge("node_nf_conntrack_entries", "Number of currently allocated flow entries for connection tracking.");
    entries.sample(&[], read_number("/proc/sys/net/netfilter/nf_conntrack_count")?);
    let mut limit = gauge("node_nf_conntrack_entries_limit", "Maximum size of connection tracking table.");
    limit.sample(&[], read_number("/proc/sys/net/netfilter/nf_conntrack_max")?);
    let mut out = vec![entries, limit];
    out.extend(stat_families(&sum_stats(&read_text("/proc/net/stat/nf_conntrack")?, skipped)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_per_cpu_rows_by_header_name() {
        let text = "entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart\n\
00000000  00000000 00000002 00000000 0000000a 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000  00000000 00000000 00000000 00000001\n\
00000000  00000000 00000003 00000000 00000001 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000  00000000 00000000 00000000 00000000\n";
        let sums = sum_stats(text, &mut Skipped::default());
        let get = |n: &str| sums.iter().find(|(k, _)| k == n).map(|(_, v)| *v);
        assert_eq!(get("found"), Some(5));
        assert_eq!(get("invalid"), Some(11));
        assert_eq!(get("search_restart"), Some(1));
        let families: Vec<_> = stat_families(&sums).into_iter().map(Family::build).collect();
        assert_eq!(families.len(), 8);
    }
}
