//! `netstat`: protocol counters from `/proc/net/netstat`, `/proc/net/snmp`
//! and `/proc/net/snmp6`, limited to the fields node_exporter 1.5 keeps by
//! default, untyped as node_exporter types them.

use super::Settings;
use crate::util::{CollectResult, Skipped, is_metric_name_part, parse_f64, read_text, untyped};
use wasmon_sdk::Family;

/// One counter: protocol (`TcpExt`, `Udp6`), field (`ListenDrops`), value.
#[derive(Debug, Clone, PartialEq)]
pub struct Stat<'a> {
    pub protocol: &'a str,
    pub field: &'a str,
    pub value: f64,
}

/// node_exporter 1.5's default `--collector.netstat.fields`:
/// `^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$`
pub fn field_kept(protocol: &str, field: &str) -> bool {
    // `.*_(InErrors|InErrs)` on `<protocol>_<field>`, without building the key.
    if ["InErrors", "InErrs"].iter().any(|e| field == *e || field.strip_suffix(e).is_some_and(|p| p.ends_with('_'))) {
        return true;
    }
    match protocol {
        "Ip" => field == "Forwarding",
        "Ip6" | "IpExt" => matches!(field, "InOctets" | "OutOctets"),
        "Icmp" | "Icmp6" => matches!(field, "InMsgs" | "OutMsgs"),
        "TcpExt" => {
            field.starts_with("Listen")
                || field.starts_with("Syncookies")
                || matches!(field, "TCPSynRetrans" | "TCPTimeouts")
        }
        "Tcp" => {
            matches!(
                field,
                "ActiveOpens" | "InSegs" | "OutSegs" | "OutRsts" | "PassiveOpens" | "RetransSegs" | "CurrEstab"
            )
        }
        "Udp" | "Udp6" => {
            matches!(field, "InDatagrams" | "OutDatagrams" | "NoPorts" | "RcvbufErrors" | "SndbufErrors")
        }
        _ => false,
    }
}

/// `/proc/net/netstat` and `/proc/net/snmp`: pairs of lines, the first naming
/// the fields (`Tcp: RtoAlgorithm RtoMin …`), the second giving the values.
pub fn parse_paired<'a>(text: &'a str, source: &str, skipped: &mut Skipped) -> Vec<Stat<'a>> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    for pair in lines.chunks(2) {
        let [names, values] = pair else {
            skipped.line(source, pair[0]);
            continue;
        };
        let (Some((protocol, names)), Some((protocol_again, values))) = (names.split_once(':'), values.split_once(':'))
        else {
            skipped.line(source, names);
            continue;
        };
        let names: Vec<&str> = names.split_whitespace().collect();
        let values: Vec<&str> = values.split_whitespace().collect();
        if protocol != protocol_again || names.len() != values.len() || !is_metric_name_part(protocol) {
            skipped.line(source, pair[1]);
            continue;
        }
        for (field, value) in names.into_iter().zip(values) {
            match parse_f64(value) {
                Some(value) if is_metric_name_part(field) => {
                    out.push(Stat { protocol, field, value });
                }
                _ => skipped.line(source, pair[1]),
            }
        }
    }
    out
}

/// `/proc/net/snmp6`: `Ip6InReceives 123` per line; the protocol is the name
/// up to and including its first `6`, as node_exporter splits it.
pub fn parse_snmp6<'a>(text: &'a str, skipped: &mut Skipped) -> Vec<Stat<'a>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let (Some(name), Some(value)) = (fields.next(), fields.next()) else {
            continue;
        };
        let Some(six) = name.find('6') else { continue };
        let (protocol, field) = name.split_at(six + 1);
        match parse_f64(value) {
            Some(value) if is_metric_name_part(protocol) && is_metric_name_part(field) => {
                out.push(Stat { protocol, field, value });
            }
            _ => skipped.line("/proc/net/snmp6", line),
        }
    }
    out
}

pub fn families(stats: &[Stat]) -> Vec<Family> {
    stats
        .iter()
        .filter(|s| field_kept(s.protocol, s.field))
        .map(|s| {
            let mut family = untyped(
                &format!("node_netstat_{}_{}", s.protocol, s.field),
                &format!("Statistic {}{}.", s.protocol, s.field),
            );
            family.sample(&[], s.value);
            family
        })
        .collect()
}

pub fn collect(_: &Settings, skipped: &mut Skipped) -> CollectResult<Vec<Family>> {
    let netstat = read_text("/proc/net/netstat")?;
    let snmp = read_text("/proc/net/snmp")?;
    // No snmp6 when IPv6 is disabled; that is not a failure.
    let snmp6 = read_text("/proc/net/snmp6").unwrap_or_default();
    let mut stats = parse_paired(&netstat, "/proc/net/netstat", skipped);
    stats.extend(parse_paired(&snmp, "/proc/net/snmp", skipped));
    stats.extend(parse_snmp6(&snmp6, skipped));
    // Only a few dozen of several hundred fields are kept by default: filter
    // before anything else is done with them.
    stats.retain(|s| field_kept(s.protocol, s.field));
    // A protocol listed twice would give duplicate families; keep the first.
    let mut seen = std::collections::BTreeSet::new();
    stats.retain(|s| seen.insert((s.protocol, s.field)));
    Ok(families(&stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paired_lines_and_default_fields() {
        let text = "TcpExt: SyncookiesSent ListenDrops TCPTimeouts PruneCalled\nTcpExt: 0 3 2 9\n\
IpExt: InOctets OutOctets InNoRoutes\nIpExt: 206596554 12041005 0\n\
Udp: InDatagrams NoPorts InErrors\nUdp: 96 0 0\nOrphan: A\n";
        let mut skipped = Skipped::default();
        let stats = parse_paired(text, "/proc/net/netstat", &mut skipped);
        assert_eq!(stats.len(), 10);
        assert_eq!(skipped.count(), 1, "the unpaired last line");
        let names: Vec<_> = families(&stats).into_iter().map(|f| f.build().name).collect();
        assert_eq!(
            names,
            [
                "node_netstat_TcpExt_SyncookiesSent",
                "node_netstat_TcpExt_ListenDrops",
                "node_netstat_TcpExt_TCPTimeouts",
                "node_netstat_IpExt_InOctets",
                "node_netstat_IpExt_OutOctets",
                "node_netstat_Udp_InDatagrams",
                "node_netstat_Udp_NoPorts",
                "node_netstat_Udp_InErrors",
            ]
        );
    }

    #[test]
    fn snmp6_splits_at_the_six() {
        let mut skipped = Skipped::default();
        let stats =
            parse_snmp6("Ip6InOctets 128\nIcmp6InErrors 1\nUdpLite6InErrors 0\nIcmp6OutType133 9\n", &mut skipped);
        assert_eq!(stats[0], Stat { protocol: "Ip6", field: "InOctets", value: 128.0 });
        assert_eq!(stats[2].protocol, "UdpLite6");
        let families: Vec<_> = families(&stats).into_iter().map(Family::build).collect();
        assert_eq!(families.len(), 3);
        assert_eq!(families[1].help, "Statistic Icmp6InErrors.");
    }

    #[test]
    fn the_default_regex_written_out() {
        assert!(field_kept("Ip", "Forwarding"));
        assert!(!field_kept("Ip", "InReceives"));
        assert!(field_kept("UdpLite", "InErrors"));
        assert!(field_kept("Tcp", "InErrs"));
        assert!(field_kept("TcpExt", "ListenOverflows"));
        assert!(!field_kept("TcpExt", "TCPLostRetransmit"));
        assert!(field_kept("Udp6", "SndbufErrors"));
        assert!(!field_kept("UdpLite", "InDatagrams"));
    }
}
