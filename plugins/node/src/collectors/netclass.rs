//! `netclass`: interface properties from `/sys/class/net/<iface>/*`.

use super::Settings;
use crate::util::{CollectError, CollectResult, Skipped, counter, gauge, parse_int_auto, read_optional};
use std::collections::BTreeMap;
use wasmon_sdk::Family;

/// Text attributes that label `node_network_info`, as node_exporter orders them.
const INFO_LABELS: [&str; 5] = ["address", "broadcast", "duplex", "operstate", "ifalias"];

/// Numeric attributes: sysfs file, metric suffix, and whether it is a counter.
/// `speed` is handled apart because node_exporter converts Mbit/s to bytes/s.
const NUMERIC: [(&str, &str, bool); 15] = [
    ("addr_assign_type", "address_assign_type", false),
    ("carrier", "carrier", false),
    ("carrier_changes", "carrier_changes_total", true),
    ("carrier_up_count", "carrier_up_changes_total", true),
    ("carrier_down_count", "carrier_down_changes_total", true),
    ("dev_id", "device_id", false),
    ("dormant", "dormant", false),
    ("flags", "flags", false),
    ("ifindex", "iface_id", false),
    ("iflink", "iface_link", false),
    ("link_mode", "iface_link_mode", false),
    ("mtu", "mtu_bytes", false),
    ("name_assign_type", "name_assign_type", false),
    ("netdev_group", "net_dev_group", false),
    ("tx_queue_len", "transmit_queue_length", false),
];

/// Everything read for one interface. A missing attribute (sysfs answers
/// EINVAL for `speed` or `carrier` of a link that is down) is simply absent,
/// and its series is left out, as node_exporter does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub attributes: BTreeMap<String, String>,
}

impl Interface {
    fn text(&self, attribute: &str) -> &str {
        self.attributes.get(attribute).map(String::as_str).unwrap_or("")
    }

    fn number(&self, attribute: &str) -> Option<i64> {
        self.attributes.get(attribute).and_then(|v| parse_int_auto(v))
    }
}

fn read_interface(name: &str) -> Interface {
    let attributes = INFO_LABELS
        .iter()
        .copied()
        .chain(NUMERIC.iter().map(|(file, _, _)| *file))
        .chain(["speed", "type"])
        .filter_map(|attr| read_optional(&format!("/sys/class/net/{name}/{attr}")).map(|v| (attr.to_string(), v)))
        .collect();
    Interface { name: name.to_string(), attributes }
}

pub fn families(interfaces: &[Interface]) -> Vec<Family> {
    let property = |suffix: &str, is_counter: bool| {
        let name = format!("node_network_{suffix}");
        let help = format!("Network device property: {suffix}");
        if is_counter { counter(&name, &help) } else { gauge(&name, &help) }
    };
    let mut up = gauge("node_network_up", "Value is 1 if operstate is 'up', 0 otherwise.");
    let mut info = gauge("node_network_info", "Non-numeric data from /sys/class/net/<iface>, value is always 1.");
    let mut numeric: Vec<Family> =
        NUMERIC.iter().map(|(_, suffix, is_counter)| property(suffix, *is_counter)).collect();
    let mut speed = property("speed_bytes", false);
    let mut protocol = property("protocol_type", false);

    for iface in interfaces {
        let device = iface.name.as_str();
        up.sample(&[("device", device)], if iface.text("operstate") == "up" { 1.0 } else { 0.0 });
        let mut labels = vec![("device", device)];
        labels.extend(INFO_LABELS.iter().map(|l| (*l, iface.text(l))));
        info.sample(&labels, 1.0);
        for (family, (file, _, _)) in numeric.iter_mut().zip(NUMERIC) {
            if let Some(v) = iface.number(file) {
                family.sample(&[("device", device)], v as f64);
            }
        }
        // Mbit/s → bytes/s (× 1,000,000 / 8). node_exporter keeps the
        // kernel's -1 for "unknown" (so -125000), and so do we.
        if let Some(mbits) = iface.number("speed") {
            speed.sample(&[("device", device)], mbits.saturating_mul(125_000) as f64);
        }
        if let Some(t) = iface.number("type") {
            protocol.sample(&[("device", device)], t as f64);
        }
    }
    let mut out = vec![up, info];
    out.extend(numeric);
    out.extend([speed, protocol]);
    out
}

pub fn collect(_: &Settings, _: &mut Skipped) -> CollectResult<Vec<Family>> {
    let entries = wasmon_sdk::fs::read_dir("/sys/class/net").map_err(|e| CollectError::io("/sys/class/net", &e))?;
    // Interfaces are links to directories; `bonding_masters` is a plain file.
    let interfaces: Vec<Interface> = entries.iter().filter(|e| e.is_dir).map(|e| read_interface(&e.name)).collect();
    Ok(families(&interfaces))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(name: &str, attrs: &[(&str, &str)]) -> Interface {
        Interface { name: name.into(), attributes: attrs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() }
    }

    #[test]
    fn properties_and_info() {
        let eth0 = iface(
            "eth0",
            &[
                ("operstate", "up"),
                ("address", "02:fc:00:00:00:01"),
                ("flags", "0x1003"),
                ("speed", "-1"),
                ("mtu", "1400"),
                ("dev_id", "0x0"),
                ("type", "1"),
                ("duplex", "unknown"),
            ],
        );
        let ifb0 = iface("ifb0", &[("operstate", "down"), ("flags", "0x82")]);
        let families: Vec<_> = families(&[eth0, ifb0]).into_iter().map(Family::build).collect();
        let find = |name: &str| families.iter().find(|f| f.name == name).expect(name);
        let gauge_of = |m: &wasmon_sdk::Metric| match m.value {
            wasmon_sdk::MetricValue::Gauge(v) | wasmon_sdk::MetricValue::Counter(v) => v,
            _ => f64::NAN,
        };
        assert_eq!(gauge_of(&find("node_network_flags").metrics[0]), 4099.0);
        assert_eq!(gauge_of(&find("node_network_flags").metrics[1]), 130.0);
        assert_eq!(gauge_of(&find("node_network_speed_bytes").metrics[0]), -125_000.0);
        assert_eq!(find("node_network_speed_bytes").metrics.len(), 1, "ifb0 has no speed");
        assert_eq!(gauge_of(&find("node_network_up").metrics[0]), 1.0);
        assert_eq!(gauge_of(&find("node_network_up").metrics[1]), 0.0);
        let info = &find("node_network_info").metrics[1];
        let names: Vec<_> = info.labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["device", "address", "broadcast", "duplex", "operstate", "ifalias"]);
        assert_eq!(find("node_network_carrier_changes_total").kind, wasmon_sdk::MetricKind::Counter);
        assert_eq!(find("node_network_mtu_bytes").help, "Network device property: mtu_bytes");
    }
}
