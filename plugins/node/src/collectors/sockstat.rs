//! `sockstat`: socket counts from `/proc/net/sockstat` and `sockstat6`.

use super::Settings;
use crate::util::{CollectResult, FamilySet, Skipped, gauge, is_metric_name_part, parse_f64, read_text};
use wasmon_sdk::Family;

/// `mem` counts pages. node_exporter multiplies by the Go runtime's page
/// size; every Linux target wasmon runs on uses 4 KiB pages for this.
pub const PAGE_SIZE: f64 = 4096.0;

/// The per-protocol fields node_exporter exports; others are ignored.
const FIELDS: [&str; 6] = ["inuse", "orphan", "tw", "alloc", "mem", "memory"];

/// What one sockstat file says.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Sockstat {
    /// `sockets: used N` (IPv4 file only).
    pub sockets_used: Option<f64>,
    /// (protocol, field, value), `mem_bytes` added after each `mem`.
    pub stats: Vec<(String, String, f64)>,
}

pub fn parse(text: &str, source: &str, skipped: &mut Skipped) -> Sockstat {
    let mut out = Sockstat::default();
    for line in text.lines() {
        let Some((protocol, rest)) = line.split_once(':') else {
            if !line.trim().is_empty() {
                skipped.line(source, line);
            }
            continue;
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        let pairs: Option<Vec<(&str, f64)>> =
            words.chunks(2).map(|c| Some((*c.first()?, parse_f64(c.get(1)?)?))).collect();
        let Some(pairs) = pairs.filter(|_| is_metric_name_part(protocol)) else {
            skipped.line(source, line);
            continue;
        };
        if protocol == "sockets" {
            out.sockets_used = pairs.iter().find(|(k, _)| *k == "used").map(|(_, v)| *v);
            continue;
        }
        for (field, value) in pairs {
            if !FIELDS.contains(&field) {
                continue;
            }
            out.stats.push((protocol.to_string(), field.to_string(), value));
            if field == "mem" {
                out.stats.push((protocol.to_string(), "mem_bytes".to_string(), value * PAGE_SIZE));
            }
        }
    }
    out
}

pub fn families(files: &[Sockstat]) -> Vec<Family> {
    let mut set = FamilySet::default();
    for file in files {
        if let Some(used) = file.sockets_used {
            set.entry("node_sockstat_sockets_used", || {
                gauge("node_sockstat_sockets_used", "Number of IPv4 sockets in use.")
            })
            .sample(&[], used);
        }
        for (protocol, field, value) in &file.stats {
            let name = format!("node_sockstat_{protocol}_{field}");
            let family = set.entry(&name, || gauge(&name, &format!("Number of {protocol} sockets in state {field}.")));
            if family.is_empty() {
                family.sample(&[], *value);
            }
        }
    }
    set.into_vec()
}

pub fn collect(_: &Settings, skipped: &mut Skipped) -> CollectResult<Vec<Family>> {
    let mut files = vec![parse(&read_text("/proc/net/sockstat")?, "/proc/net/sockstat", skipped)];
    // Absent when IPv6 is disabled.
    if let Ok(text) = read_text("/proc/net/sockstat6") {
        files.push(parse(&text, "/proc/net/sockstat6", skipped));
    }
    Ok(families(&files))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_fields_and_mem_bytes() {
        let text = "sockets: used 17\nTCP: inuse 4 orphan 0 tw 102 alloc 4 mem 75\nUDP: inuse 0 mem 0\nFRAG: inuse 0 memory 0\nRAW: inuse\n";
        let mut skipped = Skipped::default();
        let stat = parse(text, "/proc/net/sockstat", &mut skipped);
        assert_eq!(stat.sockets_used, Some(17.0));
        assert_eq!(skipped.count(), 1, "RAW has a field without a value");
        assert!(stat.stats.contains(&("TCP".into(), "mem_bytes".into(), 307_200.0)));
        let six = parse("TCP6: inuse 0\nFRAG6: inuse 0 memory 0\n", "/proc/net/sockstat6", &mut skipped);
        let families: Vec<_> = families(&[stat, six]).into_iter().map(Family::build).collect();
        let names: Vec<_> = families.iter().map(|f| f.name.as_str()).collect();
        assert!(names.contains(&"node_sockstat_TCP_tw"));
        assert!(names.contains(&"node_sockstat_TCP6_inuse"));
        assert!(names.contains(&"node_sockstat_FRAG_memory"));
        assert!(!names.contains(&"node_sockstat_FRAG_memory_bytes"));
        let tw = families.iter().find(|f| f.name == "node_sockstat_TCP_tw").expect("tw");
        assert_eq!(tw.help, "Number of TCP sockets in state tw.");
        assert_eq!(families.len(), 15);
    }
}
