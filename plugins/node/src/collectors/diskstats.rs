//! `diskstats`: per-device I/O statistics from `/proc/diskstats`, plus the
//! udev properties node_exporter labels `node_disk_info` with, when
//! `/run/udev/data` is readable.

use super::Settings;
use crate::filters::disk_device_ignored;
use crate::util::{CollectResult, Skipped, counter, gauge, parse_f64, parse_u64, read_text};
use std::collections::BTreeMap;
use wasmon_sdk::Family;

/// Sector counts in /proc/diskstats are always 512-byte units, whatever the
/// device's block size (Documentation/block/stat.rst).
const SECTOR_BYTES: f64 = 512.0;
/// Times in /proc/diskstats are milliseconds.
const SECONDS_PER_MS: f64 = 0.001;

/// One row of /proc/diskstats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskStats {
    pub major: u32,
    pub minor: u32,
    pub device: String,
    /// The counters after the name: 11 on old kernels, 15 since 4.18
    /// (discards), 17 since 5.5 (flushes).
    pub counters: Vec<u64>,
}

/// The families fed from the counter columns, in column order: name, help,
/// whether it is a counter, and the factor to node_exporter's unit.
const COLUMNS: [(&str, &str, bool, f64); 17] = [
    ("node_disk_reads_completed_total", "The total number of reads completed successfully.", true, 1.0),
    ("node_disk_reads_merged_total", "The total number of reads merged.", true, 1.0),
    ("node_disk_read_bytes_total", "The total number of bytes read successfully.", true, SECTOR_BYTES),
    ("node_disk_read_time_seconds_total", "The total number of seconds spent by all reads.", true, SECONDS_PER_MS),
    ("node_disk_writes_completed_total", "The total number of writes completed successfully.", true, 1.0),
    ("node_disk_writes_merged_total", "The number of writes merged.", true, 1.0),
    ("node_disk_written_bytes_total", "The total number of bytes written successfully.", true, SECTOR_BYTES),
    (
        "node_disk_write_time_seconds_total",
        "This is the total number of seconds spent by all writes.",
        true,
        SECONDS_PER_MS,
    ),
    ("node_disk_io_now", "The number of I/Os currently in progress.", false, 1.0),
    ("node_disk_io_time_seconds_total", "Total seconds spent doing I/Os.", true, SECONDS_PER_MS),
    ("node_disk_io_time_weighted_seconds_total", "The weighted # of seconds spent doing I/Os.", true, SECONDS_PER_MS),
    ("node_disk_discards_completed_total", "The total number of discards completed successfully.", true, 1.0),
    ("node_disk_discards_merged_total", "The total number of discards merged.", true, 1.0),
    // node_exporter reports discarded *sectors*, not bytes.
    ("node_disk_discarded_sectors_total", "The total number of sectors discarded successfully.", true, 1.0),
    (
        "node_disk_discard_time_seconds_total",
        "This is the total number of seconds spent by all discards.",
        true,
        SECONDS_PER_MS,
    ),
    ("node_disk_flush_requests_total", "The total number of flush requests completed successfully", true, 1.0),
    (
        "node_disk_flush_requests_time_seconds_total",
        "This is the total number of seconds spent by all flush requests.",
        true,
        SECONDS_PER_MS,
    ),
];

/// Rows of /proc/diskstats, minus the devices node_exporter ignores by default.
pub fn parse(text: &str, skipped: &mut Skipped) -> Vec<DiskStats> {
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let counters: Option<Vec<u64>> = fields.iter().skip(3).map(|f| parse_u64(f)).collect();
        let (major, minor) = (fields[0].parse::<u32>().ok(), fields.get(1).and_then(|f| f.parse::<u32>().ok()));
        match (major, minor, fields.get(2), counters) {
            (Some(major), Some(minor), Some(device), Some(counters)) if counters.len() >= 11 => {
                if !disk_device_ignored(device) {
                    out.push(DiskStats { major, minor, device: device.to_string(), counters });
                }
            }
            _ => skipped.line("/proc/diskstats", line),
        }
    }
    out
}

/// `E:KEY=value` lines of a udev database file (`/run/udev/data/b8:0`).
pub fn parse_udev_properties(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("E:"))
        .filter_map(|prop| prop.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn udev_properties(disk: &DiskStats) -> BTreeMap<String, String> {
    let path = format!("/run/udev/data/b{}:{}", disk.major, disk.minor);
    wasmon_sdk::fs::read_to_string(&path).map(|t| parse_udev_properties(&t)).unwrap_or_default()
}

/// All node_disk_* families. `udev` looks up a device's udev properties
/// (empty when unknown).
pub fn families(disks: &[DiskStats], udev: impl Fn(&DiskStats) -> BTreeMap<String, String>) -> Vec<Family> {
    let mut info = gauge("node_disk_info", "Info of /sys/block/<block_device>.");
    let mut columns: Vec<Family> = COLUMNS
        .iter()
        .map(|(name, help, is_counter, _)| if *is_counter { counter(name, help) } else { gauge(name, help) })
        .collect();
    let mut filesystem_info = gauge("node_disk_filesystem_info", "Info about disk filesystem.");
    let mut mapper_info = gauge("node_disk_device_mapper_info", "Info about disk device mapper.");
    let mut ata = [
        ("ID_ATA_WRITE_CACHE", gauge("node_disk_ata_write_cache", "ATA disk has a write cache.")),
        (
            "ID_ATA_WRITE_CACHE_ENABLED",
            gauge("node_disk_ata_write_cache_enabled", "ATA disk has its write cache enabled."),
        ),
        (
            "ID_ATA_ROTATION_RATE_RPM",
            gauge("node_disk_ata_rotation_rate_rpm", "ATA disk rotation rate in RPMs (0 for SSDs)."),
        ),
    ];

    for disk in disks {
        let props = udev(disk);
        let prop = |key: &str| props.get(key).map(String::as_str).unwrap_or("");
        // The serial printed on the disk label, else the short serial.
        let serial =
            if prop("SCSI_IDENT_SERIAL").is_empty() { prop("ID_SERIAL_SHORT") } else { prop("SCSI_IDENT_SERIAL") };
        let dev = disk.device.as_str();
        info.sample(
            &[
                ("device", dev),
                ("major", &disk.major.to_string()),
                ("minor", &disk.minor.to_string()),
                ("path", prop("ID_PATH")),
                ("wwn", prop("ID_WWN")),
                ("model", prop("ID_MODEL")),
                ("serial", serial),
                ("revision", prop("ID_REVISION")),
            ],
            1.0,
        );
        for ((family, (_, _, _, factor)), raw) in columns.iter_mut().zip(COLUMNS).zip(&disk.counters) {
            family.sample(&[("device", dev)], *raw as f64 * factor);
        }
        if !prop("ID_FS_TYPE").is_empty() {
            filesystem_info.sample(
                &[
                    ("device", dev),
                    ("type", prop("ID_FS_TYPE")),
                    ("usage", prop("ID_FS_USAGE")),
                    ("uuid", prop("ID_FS_UUID")),
                    ("version", prop("ID_FS_VERSION")),
                ],
                1.0,
            );
        }
        if !prop("DM_NAME").is_empty() {
            mapper_info.sample(
                &[
                    ("device", dev),
                    ("name", prop("DM_NAME")),
                    ("uuid", prop("DM_UUID")),
                    ("vg_name", prop("DM_VG_NAME")),
                    ("lv_name", prop("DM_LV_NAME")),
                    ("lv_layer", prop("DM_LV_LAYER")),
                ],
                1.0,
            );
        }
        if !prop("ID_ATA").is_empty() {
            for (key, family) in &mut ata {
                if let Some(value) = props.get(*key).and_then(|v| parse_f64(v)) {
                    family.sample(&[("device", dev)], value);
                }
            }
        }
    }

    let mut out = vec![info];
    out.extend(columns);
    out.extend([filesystem_info, mapper_info]);
    out.extend(ata.into_iter().map(|(_, family)| family));
    out
}

pub fn collect(_: &Settings, skipped: &mut Skipped) -> CollectResult<Vec<Family>> {
    let disks = parse(&read_text("/proc/diskstats")?, skipped);
    Ok(families(&disks, udev_properties))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DISKSTATS: &str = "   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n\
 254       0 vda 32759 8364 3678290 12906 6729 28083 3665960 14796 0 5232 28137 4235 67 261976 408 672 25\n\
 254       1 vda1 1 0 8 0 0 0 0 0 0 0 0\n\
   8       0 sdb 1 2 3 4 5 6 7 8 9 10 11\n\
 253       0 zram0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n\
 bogus line\n";

    #[test]
    fn ignores_partitions_and_loops_and_converts_units() {
        let mut skipped = Skipped::default();
        let disks = parse(DISKSTATS, &mut skipped);
        let names: Vec<_> = disks.iter().map(|d| d.device.as_str()).collect();
        assert_eq!(names, ["vda", "sdb", "zram0"]);
        assert_eq!(skipped.count(), 1);

        let families: Vec<_> = families(&disks, |_| BTreeMap::new()).into_iter().map(Family::build).collect();
        let value = |name: &str, dev: &str| {
            let family = families.iter().find(|f| f.name == name).expect(name);
            family.metrics.iter().find(|m| m.labels[0].value == dev).map(|m| match m.value {
                wasmon_sdk::MetricValue::Counter(v) | wasmon_sdk::MetricValue::Gauge(v) => v,
                _ => f64::NAN,
            })
        };
        assert_eq!(value("node_disk_read_bytes_total", "vda"), Some(3_678_290.0 * 512.0));
        let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-9);
        assert!(close(value("node_disk_read_time_seconds_total", "vda"), 12.906));
        assert_eq!(value("node_disk_discarded_sectors_total", "vda"), Some(261_976.0));
        assert!(close(value("node_disk_flush_requests_time_seconds_total", "vda"), 0.025));
        // An old-kernel row with 11 counters has no discard or flush series.
        assert!(close(value("node_disk_io_time_weighted_seconds_total", "sdb"), 0.011));
        assert_eq!(value("node_disk_discards_completed_total", "sdb"), None);
        let info = families.iter().find(|f| f.name == "node_disk_info").expect("info");
        assert_eq!(info.metrics.len(), 3);
        assert_eq!(info.metrics[0].labels[1].value, "254");
    }

    #[test]
    fn udev_properties_fill_info_labels() {
        let props = parse_udev_properties(
            "S:disk/by-id/x\nE:ID_MODEL=Samsung_SSD\nE:ID_SERIAL_SHORT=S123\nE:ID_ATA=1\nE:ID_ATA_ROTATION_RATE_RPM=0\nE:DM_NAME=vg-root\n",
        );
        assert_eq!(props.get("ID_MODEL").map(String::as_str), Some("Samsung_SSD"));
        let disks = [DiskStats { major: 8, minor: 0, device: "sda".into(), counters: vec![0; 17] }];
        let families: Vec<_> = families(&disks, |_| props.clone()).into_iter().map(Family::build).collect();
        let info = &families[0];
        let label = |name: &str| info.metrics[0].labels.iter().find(|l| l.name == name).map(|l| l.value.clone());
        assert_eq!(label("model").as_deref(), Some("Samsung_SSD"));
        assert_eq!(label("serial").as_deref(), Some("S123"));
        let rpm = families.iter().find(|f| f.name == "node_disk_ata_rotation_rate_rpm").expect("rpm");
        assert_eq!(rpm.metrics.len(), 1);
        let mapper = families.iter().find(|f| f.name == "node_disk_device_mapper_info").expect("dm");
        assert_eq!(mapper.metrics.len(), 1);
    }
}
