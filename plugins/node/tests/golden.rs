//! Golden tests: captured `/proc` files (tests/fixtures) rendered in the
//! Prometheus text format must match the `.prom` expectations next to them.
//! After a deliberate change, regenerate with `UPDATE_GOLDEN=1 cargo test -p
//! wasmon-node --test golden` and review the diff.

use std::collections::BTreeMap;
use std::path::PathBuf;
use wasmon_node::collectors::{diskstats, meminfo, netdev, netstat, sockstat, stat, vmstat};
use wasmon_node::exposition::render;
use wasmon_node::util::Skipped;
use wasmon_sdk::{Family, MetricFamily};

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixture_path(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

fn built(families: Vec<Family>) -> Vec<MetricFamily> {
    families.into_iter().filter(|f| !f.is_empty()).map(Family::build).collect()
}

fn check(golden: &str, families: &[MetricFamily]) {
    let rendered = render(families);
    let path = fixture_path(golden);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &rendered).unwrap_or_else(|e| panic!("writing {golden}: {e}"));
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("golden {golden}: {e}"));
    if rendered != expected {
        let first_difference = rendered
            .lines()
            .zip(expected.lines())
            .find(|(got, want)| got != want)
            .map(|(got, want)| format!("\n got: {got}\nwant: {want}"))
            .unwrap_or_else(|| "\n(one output is a prefix of the other)".into());
        panic!("{golden} differs{first_difference}");
    }
}

fn parse_clean<T>(parse: impl FnOnce(&mut Skipped) -> T) -> T {
    let mut skipped = Skipped::default();
    let out = parse(&mut skipped);
    assert_eq!(skipped.summary(), None, "a captured file has no malformed lines");
    out
}

#[test]
fn meminfo_matches_golden() {
    let fields = parse_clean(|s| meminfo::parse(&fixture("meminfo"), s));
    check("meminfo.prom", &built(meminfo::families(&fields)));
}

#[test]
fn diskstats_matches_golden() {
    let disks = parse_clean(|s| diskstats::parse(&fixture("diskstats"), s));
    check("diskstats.prom", &built(diskstats::families(&disks, |_| BTreeMap::new())));
}

#[test]
fn stat_matches_golden() {
    let text = fixture("stat");
    let cpus = parse_clean(|s| wasmon_node::collectors::cpu::parse_cpu_lines(&text, s));
    let system = parse_clean(|s| stat::parse(&text, s));
    let mut families = wasmon_node::collectors::cpu::time_families(&cpus);
    families.extend(stat::families(&system));
    check("stat.prom", &built(families));
}

#[test]
fn network_files_match_golden() {
    let devices = parse_clean(|s| netdev::parse(&fixture("net_dev"), s)).expect("net/dev header");
    check("net_dev.prom", &built(netdev::families(&devices)));

    let (netstat_text, snmp_text, snmp6_text) = (fixture("net_netstat"), fixture("net_snmp"), fixture("net_snmp6"));
    let mut stats = parse_clean(|s| netstat::parse_paired(&netstat_text, "netstat", s));
    stats.extend(parse_clean(|s| netstat::parse_paired(&snmp_text, "snmp", s)));
    stats.extend(parse_clean(|s| netstat::parse_snmp6(&snmp6_text, s)));
    check("netstat.prom", &built(netstat::families(&stats)));

    let sock = parse_clean(|s| sockstat::parse(&fixture("net_sockstat"), "sockstat", s));
    check("sockstat.prom", &built(sockstat::families(&[sock])));
}

#[test]
fn vmstat_matches_golden() {
    let fields = parse_clean(|s| vmstat::parse(&fixture("vmstat"), s));
    check("vmstat.prom", &built(vmstat::families(&fields)));
}
