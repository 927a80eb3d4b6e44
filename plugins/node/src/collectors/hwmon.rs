//! `hwmon`: hardware sensors from `/sys/class/hwmon/hwmon*` (what
//! lm-sensors shows), named and converted as node_exporter does.

use super::Settings;
use crate::util::{CollectError, CollectResult, FamilySet, Skipped, counter, gauge, parse_f64, read_optional};
use std::collections::BTreeMap;
use wasmon_sdk::Family;

const HWMON_DIR: &str = "/sys/class/hwmon";

/// Sensor types node_exporter reads; files of other types are ignored.
const SENSOR_TYPES: [&str; 13] = [
    "vrm",
    "beep_enable",
    "update_interval",
    "in",
    "cpu",
    "fan",
    "pwm",
    "temp",
    "curr",
    "power",
    "energy",
    "humidity",
    "intrusion",
];

/// Sensor values of one chip: sensor (`temp1`) → property (`input`, `crit`,
/// "" for a bare file like `pwm1`) → raw text.
pub type SensorData = BTreeMap<String, BTreeMap<String, String>>;

/// node_exporter's label cleaning: lower case, `[^a-z0-9:_]` → `_`, trim `_`.
pub fn clean_name(name: &str) -> String {
    let replaced: String = name
        .trim_end_matches('\n')
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() || c == ':' || c == '_' { c } else { '_' })
        .collect();
    replaced.trim_matches('_').to_string()
}

/// `temp1_crit_alarm` → ("temp", "1", "crit_alarm"); `pwm1` → ("pwm", "1", "");
/// `beep_enable` → ("beep_enable", "", ""). node_exporter's
/// `^(?P<type>[^0-9]+)(?P<id>[0-9]*)?(_(?P<property>.+))?$`.
pub fn split_sensor_file(file: &str) -> Option<(&str, &str, &str)> {
    let type_end = file.find(|c: char| c.is_ascii_digit()).unwrap_or(file.len());
    let (sensor_type, rest) = file.split_at(type_end);
    let id_end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    let (id, rest) = rest.split_at(id_end);
    let property = match rest {
        "" => "",
        _ => rest.strip_prefix('_').filter(|p| !p.is_empty())?,
    };
    if sensor_type.is_empty() {
        return None;
    }
    // With no id, a greedy [^0-9]+ swallows "_property" into the type.
    if id.is_empty() && !property.is_empty() {
        return None;
    }
    Some((sensor_type, id, property))
}

/// Add the sensor files named in `files` (read through `read`) to `data`.
pub fn add_sensor_files(data: &mut SensorData, files: &[String], read: impl Fn(&str) -> Option<String>) {
    for file in files {
        let Some((sensor_type, id, property)) = split_sensor_file(file) else {
            continue;
        };
        if !SENSOR_TYPES.contains(&sensor_type) {
            continue;
        }
        if let Some(value) = read(file) {
            let sensor = format!("{sensor_type}{}", if id.is_empty() { "0" } else { id });
            data.entry(sensor).or_default().insert(property.to_string(), value);
        }
    }
}

/// The families one chip contributes, added to `set`.
pub fn add_chip(set: &mut FamilySet, chip: &str, chip_name: Option<&str>, data: &SensorData) {
    let labels = |sensor: &str| vec![("chip", chip.to_string()), ("sensor", sensor.to_string())];
    let mut emit = |name: &str, help: &str, is_counter: bool, labels: Vec<(&str, String)>, value: f64| {
        let family = set.entry(name, || if is_counter { counter(name, help) } else { gauge(name, help) });
        let borrowed: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        family.sample(&borrowed, value);
    };

    if let Some(chip_name) = chip_name {
        emit(
            "node_hwmon_chip_names",
            "Annotation metric for human-readable chip names",
            false,
            vec![("chip", chip.to_string()), ("chip_name", chip_name.to_string())],
            1.0,
        );
    }

    for (sensor, props) in data {
        let sensor_type = split_sensor_file(sensor).map(|(t, _, _)| t).unwrap_or(sensor);
        if let Some(label) = props.get("label").map(|l| clean_name(l)).filter(|l| !l.is_empty()) {
            let mut with_label = labels(sensor);
            with_label.push(("label", label));
            emit("node_hwmon_sensor_label", "Label for given chip and sensor", false, with_label, 1.0);
        }
        let bare = props.get("").map(String::as_str);
        match sensor_type {
            "beep_enable" => {
                let value = if bare == Some("1") { 1.0 } else { 0.0 };
                emit("node_hwmon_beep_enabled", "Hardware beep enabled", false, labels(sensor), value);
                continue;
            }
            "vrm" => {
                if let Some(v) = bare.and_then(parse_f64) {
                    emit(
                        "node_hwmon_voltage_regulator_version",
                        "Hardware voltage regulator",
                        false,
                        labels(sensor),
                        v,
                    );
                }
                continue;
            }
            "update_interval" => {
                if let Some(v) = bare.and_then(parse_f64) {
                    emit(
                        "node_hwmon_update_interval_seconds",
                        "Hardware monitor update interval",
                        false,
                        labels(sensor),
                        v * 0.001,
                    );
                }
                continue;
            }
            _ => {}
        }

        let prefix = format!("node_hwmon_{sensor_type}");
        for (element, raw) in props {
            if element == "label" {
                continue;
            }
            let Some(value) = parse_f64(raw) else {
                continue;
            };
            let mut name = prefix.clone();
            if element == "input" {
                // `input` is the value itself, unless a bare file claims that.
                if bare.is_some() {
                    name.push_str("_input");
                }
            } else if !element.is_empty() {
                name.push('_');
                name.push_str(&clean_name(element));
            }
            let l = labels(sensor);
            let e = element.as_str();
            match (sensor_type, e) {
                (_, "fault" | "alarm") => {
                    emit(&name, &format!("Hardware sensor {e} status ({sensor_type})"), false, l, value)
                }
                (_, "beep") => {
                    emit(&format!("{name}_enabled"), "Hardware monitor sensor has beeping enabled", false, l, value)
                }
                ("in" | "cpu", _) => emit(
                    &format!("{name}_volts"),
                    &format!("Hardware monitor for voltage ({e})"),
                    false,
                    l,
                    value * 0.001,
                ),
                ("temp", t) if t != "type" => {
                    let shown = if e.is_empty() { "input" } else { e };
                    emit(
                        &format!("{name}_celsius"),
                        &format!("Hardware monitor for temperature ({shown})"),
                        false,
                        l,
                        value * 0.001,
                    )
                }
                ("curr", _) => emit(
                    &format!("{name}_amps"),
                    &format!("Hardware monitor for current ({e})"),
                    false,
                    l,
                    value * 0.001,
                ),
                ("energy", _) => emit(
                    &format!("{name}_joule_total"),
                    &format!("Hardware monitor for joules used so far ({e})"),
                    true,
                    l,
                    value / 1_000_000.0,
                ),
                ("power", "accuracy") => {
                    emit(&name, "Hardware monitor power meter accuracy, as a ratio", false, l, value / 1_000_000.0)
                }
                ("power", "average_interval" | "average_interval_min" | "average_interval_max") => emit(
                    &format!("{name}_seconds"),
                    &format!("Hardware monitor power usage update interval ({e})"),
                    false,
                    l,
                    value * 0.001,
                ),
                ("power", _) => emit(
                    &format!("{name}_watt"),
                    &format!("Hardware monitor for power usage in watts ({e})"),
                    false,
                    l,
                    value / 1_000_000.0,
                ),
                ("humidity", _) => emit(
                    &name,
                    &format!(
                        "Hardware monitor for humidity, as a ratio (multiply with 100.0 to get the humidity as a percentage) ({e})"
                    ),
                    false,
                    l,
                    value / 1_000_000.0,
                ),
                ("fan", "input" | "min" | "max" | "target") => emit(
                    &format!("{name}_rpm"),
                    &format!("Hardware monitor for fan revolutions per minute ({e})"),
                    false,
                    l,
                    value,
                ),
                _ => emit(&name, &format!("Hardware monitor {sensor_type} element {e}"), false, l, value),
            }
        }
    }
}

/// Normalise `base/relative` lexically (sysfs links are relative).
fn join_link(base: &str, target: &str) -> String {
    let mut parts: Vec<&str> =
        if target.starts_with('/') { Vec::new() } else { base.split('/').filter(|p| !p.is_empty()).collect() };
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Where `/sys/class/hwmon/hwmonN` really lives (it is a link into /sys/devices).
fn real_dir(dir: &str) -> String {
    match wasmon_sdk::fs::read_link(dir) {
        Ok(target) => join_link(HWMON_DIR, &target),
        Err(_) => dir.to_string(),
    }
}

/// node_exporter's stable chip name: `<bus>_<device>` from the `device` link
/// (`platform_coretemp_0`, `pci0000:00_0000:00:18_3`), else the `name` file,
/// else the hwmonN directory name.
fn chip_label(dir: &str, hwmon: &str) -> String {
    if let Ok(target) = wasmon_sdk::fs::read_link(&format!("{dir}/device")) {
        let device_path = join_link(&real_dir(dir), &target);
        let mut parts = device_path.rsplit('/');
        let dev_name = clean_name(parts.next().unwrap_or_default());
        let dev_type = clean_name(parts.next().unwrap_or_default());
        match (dev_type.is_empty(), dev_name.is_empty()) {
            (false, false) => return format!("{dev_type}_{dev_name}"),
            (true, false) => return dev_name,
            _ => {}
        }
    }
    if let Some(name) = read_optional(&format!("{dir}/name")).map(|n| clean_name(&n)).filter(|n| !n.is_empty()) {
        return name;
    }
    clean_name(hwmon)
}

fn file_names(dir: &str) -> Vec<String> {
    wasmon_sdk::fs::read_dir(dir)
        .map(|entries| entries.into_iter().filter(|e| !e.is_dir).map(|e| e.name).collect())
        .unwrap_or_default()
}

pub fn collect(_: &Settings, _: &mut Skipped) -> CollectResult<Vec<Family>> {
    let chips = wasmon_sdk::fs::read_dir(HWMON_DIR).map_err(|e| CollectError::io(HWMON_DIR, &e))?;
    let mut set = FamilySet::default();
    for chip in chips.iter().filter(|c| c.is_dir) {
        let dir = format!("{HWMON_DIR}/{}", chip.name);
        let mut data = SensorData::new();
        // Old drivers put the sensor files in the device directory.
        for base in [dir.clone(), format!("{dir}/device")] {
            add_sensor_files(&mut data, &file_names(&base), |file| read_optional(&format!("{base}/{file}")));
        }
        let chip_name = read_optional(&format!("{dir}/name")).map(|n| clean_name(&n)).filter(|n| !n.is_empty());
        add_chip(&mut set, &chip_label(&dir, &chip.name), chip_name.as_deref(), &data);
    }
    Ok(set.into_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensor_file_names() {
        assert_eq!(split_sensor_file("temp1_input"), Some(("temp", "1", "input")));
        assert_eq!(split_sensor_file("temp1_crit_alarm"), Some(("temp", "1", "crit_alarm")));
        assert_eq!(split_sensor_file("pwm1"), Some(("pwm", "1", "")));
        assert_eq!(split_sensor_file("beep_enable"), Some(("beep_enable", "", "")));
        assert_eq!(split_sensor_file("name"), Some(("name", "", "")));
        assert_eq!(split_sensor_file("1abc"), None);
    }

    #[test]
    fn names_are_cleaned() {
        assert_eq!(clean_name("Package id 0\n"), "package_id_0");
        assert_eq!(clean_name("coretemp.0"), "coretemp_0");
        assert_eq!(clean_name("0000:00:18.3"), "0000:00:18_3");
    }

    #[test]
    fn links_resolve_lexically() {
        assert_eq!(
            join_link("/sys/class/hwmon", "../../devices/platform/coretemp.0/hwmon/hwmon1"),
            "/sys/devices/platform/coretemp.0/hwmon/hwmon1"
        );
        assert_eq!(
            join_link("/sys/devices/platform/coretemp.0/hwmon/hwmon1", "../../../coretemp.0"),
            "/sys/devices/platform/coretemp.0"
        );
    }

    #[test]
    fn coretemp_chip() {
        let files: Vec<String> = [
            "temp1_input",
            "temp1_crit",
            "temp1_crit_alarm",
            "temp1_label",
            "fan2_input",
            "in0_input",
            "uevent",
            "name",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let values: BTreeMap<&str, &str> = [
            ("temp1_input", "45000"),
            ("temp1_crit", "100000"),
            ("temp1_crit_alarm", "0"),
            ("temp1_label", "Package id 0"),
            ("fan2_input", "1200"),
            ("in0_input", "1100"),
        ]
        .into_iter()
        .collect();
        let mut data = SensorData::new();
        add_sensor_files(&mut data, &files, |f| values.get(f).map(|v| v.to_string()));
        let mut set = FamilySet::default();
        add_chip(&mut set, "platform_coretemp_0", Some("coretemp"), &data);
        let families: Vec<_> = set.into_vec().into_iter().map(Family::build).collect();
        let value = |name: &str| {
            let f = families.iter().find(|f| f.name == name).unwrap_or_else(|| panic!("{name} missing"));
            match f.metrics[0].value {
                wasmon_sdk::MetricValue::Gauge(v) => v,
                _ => f64::NAN,
            }
        };
        assert_eq!(value("node_hwmon_temp_celsius"), 45.0);
        assert_eq!(value("node_hwmon_temp_crit_celsius"), 100.0);
        assert_eq!(value("node_hwmon_temp_crit_alarm_celsius"), 0.0);
        assert_eq!(value("node_hwmon_fan_rpm"), 1200.0);
        assert!((value("node_hwmon_in_volts") - 1.1).abs() < 1e-9);
        assert_eq!(value("node_hwmon_chip_names"), 1.0);
        let label = families.iter().find(|f| f.name == "node_hwmon_sensor_label").expect("label");
        assert_eq!(label.metrics[0].labels[2].value, "package_id_0");
        let temp = families.iter().find(|f| f.name == "node_hwmon_temp_celsius").expect("temp");
        assert_eq!(temp.help, "Hardware monitor for temperature (input)");
    }
}
