//! `meminfo`: every `/proc/meminfo` field as `node_memory_<Field>[_bytes]`.

use super::Settings;
use crate::util::{CollectResult, FamilySet, Skipped, gauge, is_metric_name_part, parse_f64, read_text};
use wasmon_sdk::Family;

/// One field, named as node_exporter names it (`Active_anon_bytes`,
/// `HugePages_Total`), with its value in bytes when the file gave kB.
#[derive(Debug, Clone, PartialEq)]
pub struct MemField {
    pub key: String,
    pub value: f64,
}

/// `Active(anon)` → `Active_anon`, as node_exporter's `\((.*)\)` → `_$1`.
fn metric_key(raw: &str) -> String {
    match (raw.find('('), raw.rfind(')')) {
        (Some(open), Some(close)) if open < close => {
            format!("{}_{}{}", &raw[..open], &raw[open + 1..close], &raw[close + 1..])
        }
        _ => raw.to_string(),
    }
}

pub fn parse(text: &str, skipped: &mut Skipped) -> Vec<MemField> {
    let mut out = Vec::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.is_empty() {
            continue; // some kernels emit blank lines
        }
        let key = parts[0].strip_suffix(':').map(metric_key);
        let value = parts.get(1).and_then(|v| parse_f64(v));
        let field = match (key, value, parts.len()) {
            (Some(key), Some(value), 2) if is_metric_name_part(&key) => MemField { key, value },
            // A unit is always kB in practice; node_exporter presumes it too.
            (Some(key), Some(value), 3) if is_metric_name_part(&key) => {
                MemField { key: format!("{key}_bytes"), value: value * 1024.0 }
            }
            _ => {
                skipped.line("/proc/meminfo", line);
                continue;
            }
        };
        out.push(field);
    }
    out
}

pub fn families(fields: &[MemField]) -> Vec<Family> {
    let mut set = FamilySet::default();
    for field in fields {
        let name = format!("node_memory_{}", field.key);
        let family = set.entry(&name, || gauge(&name, &format!("Memory information field {}.", field.key)));
        // A repeated key would be a duplicate series; keep the first.
        if family.is_empty() {
            family.sample(&[], field.value);
        }
    }
    set.into_vec()
}

pub fn collect(_: &Settings, skipped: &mut Skipped) -> CollectResult<Vec<Family>> {
    Ok(families(&parse(&read_text("/proc/meminfo")?, skipped)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kilobytes_become_bytes_and_parentheses_underscores() {
        let text = "MemTotal:       24684084 kB\nActive(anon):       1524 kB\nHugePages_Total:       0\n\n\
Hugepagesize:       2048 kB\nbroken line\nWeird(x:  1 kB\n";
        let mut skipped = Skipped::default();
        let fields = parse(text, &mut skipped);
        assert_eq!(
            fields,
            vec![
                MemField { key: "MemTotal_bytes".into(), value: 24_684_084.0 * 1024.0 },
                MemField { key: "Active_anon_bytes".into(), value: 1524.0 * 1024.0 },
                MemField { key: "HugePages_Total".into(), value: 0.0 },
                MemField { key: "Hugepagesize_bytes".into(), value: 2048.0 * 1024.0 },
            ]
        );
        assert_eq!(skipped.count(), 2);
        let families: Vec<_> = families(&fields).into_iter().map(Family::build).collect();
        assert_eq!(families.len(), 4);
        let active = families.iter().find(|f| f.name == "node_memory_Active_anon_bytes").expect("family");
        assert_eq!(active.help, "Memory information field Active_anon_bytes.");
        assert_eq!(active.unit, "bytes");
    }

    #[test]
    fn repeated_keys_keep_the_first_value() {
        let fields = vec![MemField { key: "A".into(), value: 1.0 }, MemField { key: "A".into(), value: 2.0 }];
        let families: Vec<_> = families(&fields).into_iter().map(Family::build).collect();
        assert_eq!(families[0].metrics.len(), 1);
    }
}
