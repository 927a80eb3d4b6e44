//! `netdev`: per-interface traffic counters from `/proc/net/dev`.
//!
//! node_exporter 1.5 reads them over netlink and folds the detailed error
//! counters back into `/proc/net/dev`'s columns, so the two sources give the
//! same numbers. The one counter netlink has that the file lacks,
//! `receive_nohandler`, comes from `/sys/class/net/<dev>/statistics`.

use super::Settings;
use crate::util::{
    CollectError, CollectResult, Skipped, counter, is_metric_name_part, parse_u64, read_optional, read_text,
};
use std::collections::BTreeMap;
use wasmon_sdk::Family;

/// One interface's counters, keyed `receive_bytes`, `transmit_colls`, ….
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCounters {
    pub device: String,
    pub counters: Vec<(String, u64)>,
}

/// Parse `/proc/net/dev`: two header lines naming the columns of the
/// receive and transmit groups, then `name: numbers…` per interface.
pub fn parse(text: &str, skipped: &mut Skipped) -> CollectResult<Vec<DeviceCounters>> {
    let mut lines = text.lines();
    let header = lines.nth(1).unwrap_or_default();
    let groups: Vec<&str> = header.split('|').collect();
    let (Some(receive), Some(transmit)) = (groups.get(1), groups.get(2)) else {
        return Err(CollectError::new(format!("/proc/net/dev: unexpected header {header:?}")));
    };
    let names: Vec<String> = receive
        .split_whitespace()
        .map(|c| format!("receive_{c}"))
        .chain(transmit.split_whitespace().map(|c| format!("transmit_{c}")))
        .collect();

    let mut out = Vec::new();
    for line in lines {
        let Some((device, numbers)) = line.split_once(':') else {
            skipped.line("/proc/net/dev", line);
            continue;
        };
        let values: Option<Vec<u64>> = numbers.split_whitespace().map(parse_u64).collect();
        match values {
            Some(values) if values.len() == names.len() && names.iter().all(|n| is_metric_name_part(n)) => {
                out.push(DeviceCounters {
                    device: device.trim().to_string(),
                    counters: names.iter().cloned().zip(values).collect(),
                });
            }
            _ => skipped.line("/proc/net/dev", line),
        }
    }
    Ok(out)
}

/// `node_network_<field>_total{device}` for every column seen.
pub fn families(devices: &[DeviceCounters]) -> Vec<Family> {
    let mut by_field: BTreeMap<&str, Family> = BTreeMap::new();
    for dev in devices {
        for (field, value) in &dev.counters {
            by_field
                .entry(field)
                .or_insert_with(|| {
                    counter(&format!("node_network_{field}_total"), &format!("Network device statistic {field}."))
                })
                .sample(&[("device", &dev.device)], *value as f64);
        }
    }
    by_field.into_values().collect()
}

pub fn collect(settings: &Settings, skipped: &mut Skipped) -> CollectResult<Vec<Family>> {
    let mut devices = parse(&read_text("/proc/net/dev")?, skipped)?;
    devices.retain(|d| !settings.netdev_device_exclude.matches(&d.device));
    for dev in &mut devices {
        let path = format!("/sys/class/net/{}/statistics/rx_nohandler", dev.device);
        if let Some(value) = read_optional(&path).as_deref().and_then(parse_u64) {
            dev.counters.push(("receive_nohandler".to_string(), value));
        }
    }
    Ok(families(&devices))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET_DEV: &str = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    3193      29    0    0    0     0          0         0     3193      29    0    0    0     0       0          0
  eth0: 128065256    6935    1    2    3     4          5         6   416071    4137    7    8    9    10      11         12
  bad: 1 2 3
";

    #[test]
    fn columns_from_the_header() {
        let mut skipped = Skipped::default();
        let devices = parse(NET_DEV, &mut skipped).expect("parses");
        assert_eq!(devices.len(), 2);
        assert_eq!(skipped.count(), 1);
        let eth0 = &devices[1];
        assert_eq!(eth0.device, "eth0");
        assert_eq!(eth0.counters[0], ("receive_bytes".into(), 128_065_256));
        assert_eq!(eth0.counters[13], ("transmit_colls".into(), 10));
        let families: Vec<_> = families(&devices).into_iter().map(Family::build).collect();
        assert_eq!(families.len(), 16);
        let colls = families.iter().find(|f| f.name == "node_network_transmit_colls_total").expect("colls");
        assert_eq!(colls.help, "Network device statistic transmit_colls.");
        assert_eq!(colls.metrics.len(), 2);
    }

    #[test]
    fn bad_header_is_an_error() {
        assert!(parse("just one line\n", &mut Skipped::default()).is_err());
    }
}
