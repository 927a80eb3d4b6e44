//! No input makes a parser panic: odd lines are skipped, never trusted.
//! Inputs are built from the tokens real files contain, so the parsers get
//! past their first checks and into the interesting paths.

use proptest::prelude::*;
use wasmon_node::collectors::*;
use wasmon_node::filters::{MountPointFilter, NameFilter};
use wasmon_node::util::Skipped;

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("cpu0".to_string()),
        Just("cpu".to_string()),
        Just("MemTotal:".to_string()),
        Just("Active(anon):".to_string()),
        Just("kB".to_string()),
        Just("TcpExt:".to_string()),
        Just("Ip6InOctets".to_string()),
        Just("|".to_string()),
        Just(":".to_string()),
        Just("total=12".to_string()),
        Just("some".to_string()),
        Just("full".to_string()),
        Just("00000b8f".to_string()),
        Just("0000:0001".to_string()),
        Just("\\040".to_string()),
        Just("\\7".to_string()),
        Just("-1".to_string()),
        Just("18446744073709551616".to_string()),
        Just("NaN".to_string()),
        Just("é".to_string()),
        "[0-9]{1,20}",
        "[a-zA-Z_()]{1,8}",
        ".{0,6}",
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::collection::vec(token(), 0..20).prop_map(|t| t.join(" ")), 0..12)
        .prop_map(|lines| lines.join("\n"))
}

fn all_parsers(input: &str) {
    let mut s = Skipped::default();
    let _ = cpu::time_families(&cpu::parse_cpu_lines(input, &mut s));
    let _ = stat::families(&stat::parse(input, &mut s));
    let _ = meminfo::families(&meminfo::parse(input, &mut s));
    let _ = loadavg::parse(input);
    let _ = filefd::parse(input);
    let _ = vmstat::families(&vmstat::parse(input, &mut s));
    let _ = diskstats::families(&diskstats::parse(input, &mut s), |_| diskstats::parse_udev_properties(input));
    if let Ok(devices) = netdev::parse(input, &mut s) {
        let _ = netdev::families(&devices);
    }
    let mut stats = netstat::parse_paired(input, "x", &mut s);
    stats.extend(netstat::parse_snmp6(input, &mut s));
    let _ = netstat::families(&stats);
    let _ = sockstat::families(&[sockstat::parse(input, "x", &mut s)]);
    let _ = pressure::families(Some(pressure::parse(input, "x", &mut s)), None, None);
    let _ = schedstat::families(&schedstat::parse(input, &mut s));
    let _ = softnet::families(&softnet::parse(input, &mut s));
    let _ = conntrack::stat_families(&conntrack::sum_stats(input, &mut s));
    let _ = arp::count_by_device(input, &mut s);
    let _ = udp_queues::sum_queues(input, "x", &mut s);
    let _ = os::families(&os::parse(input));
    let _ = os::version_number(input);
    let _ = selinux::config_mode(input);
    let _ = uname::machine_fallback(input);
    let settings = Settings::default();
    let mounts = filesystem::select(filesystem::parse_mounts(input, "x", &mut s), &settings);
    let _ = filesystem::families(&mounts, |_| Err("no".into()));
    let _ = hwmon::clean_name(input);
    for line in input.lines() {
        let _ = hwmon::split_sensor_file(line);
    }
    let files: Vec<String> = input.split_whitespace().map(String::from).collect();
    let mut data = hwmon::SensorData::new();
    hwmon::add_sensor_files(&mut data, &files, |f| Some(f.to_string()));
    let mut set = wasmon_node::util::FamilySet::default();
    hwmon::add_chip(&mut set, "chip", Some("name"), &data);
    let _ = NameFilter::parse("k", input);
    let _ = MountPointFilter::parse("k", input);
    let _ = tzif::zone_at(input.as_bytes(), 0);
}

proptest! {
    #[test]
    fn structured_text_never_panics(input in text()) {
        all_parsers(&input);
    }

    #[test]
    fn arbitrary_text_never_panics(input in ".{0,300}") {
        all_parsers(&input);
    }

    #[test]
    fn arbitrary_zone_files_never_panic(mut bytes in prop::collection::vec(any::<u8>(), 0..200), version in 0u8..4) {
        // Half the time, start like a real TZif file to reach the body.
        if version > 1 {
            let mut real = b"TZif2".to_vec();
            real.extend_from_slice(&[0; 15]);
            real.append(&mut bytes);
            bytes = real;
        }
        let _ = tzif::zone_at(&bytes, 1_700_000_000);
    }
}

#[test]
fn zone_file_counts_cannot_overflow() {
    let mut data = b"TZif2".to_vec();
    data.extend_from_slice(&[0; 15]);
    data.extend_from_slice(&[0xff; 24]); // six counts of u32::MAX
    assert_eq!(tzif::zone_at(&data, 0), None);
}

#[test]
fn absurd_zone_footer_offsets_are_rejected() {
    // A v2 file with no transitions, one UTC type, and a footer whose hour
    // count would overflow.
    let mut data = Vec::new();
    for _ in 0..2 {
        data.extend_from_slice(b"TZif2");
        data.extend_from_slice(&[0; 15]);
        for n in [0u32, 0, 0, 0, 1, 4] {
            data.extend_from_slice(&n.to_be_bytes());
        }
        data.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        data.extend_from_slice(b"UTC\0");
    }
    data.extend_from_slice(b"\nX99999999999999999\n");
    let zone = tzif::zone_at(&data, 0).expect("falls back to the type table");
    assert_eq!(zone.offset_seconds, 0);
}
