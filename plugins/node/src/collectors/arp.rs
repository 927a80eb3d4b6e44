//! `arp`: ARP table entries per interface from `/proc/net/arp`.

use super::Settings;
use crate::util::{CollectResult, Skipped, gauge, read_text};
use std::collections::BTreeMap;
use wasmon_sdk::Family;

/// Entries per device (the last of the six columns), header skipped.
pub fn count_by_device(text: &str, skipped: &mut Skipped) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in text.lines().skip(1) {
        let columns: Vec<&str> = line.split_whitespace().collect();
        match columns[..] {
            [_, _, _, _, _, device] => *out.entry(device.to_string()).or_insert(0) += 1,
            [] => {}
            _ => skipped.line("/proc/net/arp", line),
        }
    }
    out
}

pub fn collect(_: &Settings, skipped: &mut Skipped) -> CollectResult<Vec<Family>> {
    let mut entries = gauge("node_arp_entries", "ARP entries by device");
    for (device, count) in count_by_device(&read_text("/proc/net/arp")?, skipped) {
        entries.sample(&[("device", &device)], count as f64);
    }
    Ok(vec![entries])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_device() {
        let text = "IP address       HW type     Flags       HW address            Mask     Device\n\
192.0.2.1        0x1         0x2         02:fc:00:00:00:05     *        eth0\n\
192.0.2.2        0x1         0x2         02:fc:00:00:00:06     *        eth0\n\
10.0.0.1         0x1         0x0         00:00:00:00:00:00     *        br0\n";
        let counts = count_by_device(text, &mut Skipped::default());
        assert_eq!(counts.get("eth0"), Some(&2));
        assert_eq!(counts.get("br0"), Some(&1));
    }
}
