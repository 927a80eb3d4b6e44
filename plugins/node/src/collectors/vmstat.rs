//! `vmstat`: the `/proc/vmstat` fields node_exporter 1.5 keeps by default
//! (`--collector.vmstat.fields` = `^(oom_kill|pgpg|pswp|pg.*fault).*`), untyped.

use super::Settings;
use crate::util::{CollectResult, Skipped, is_metric_name_part, parse_f64, read_text, untyped};
use wasmon_sdk::Family;

/// node_exporter's default field rule, written out.
pub fn field_kept(name: &str) -> bool {
    ["oom_kill", "pgpg", "pswp"].iter().any(|p| name.starts_with(p))
        || name.strip_prefix("pg").is_some_and(|rest| rest.contains("fault"))
}

/// The kept `name value` pairs, in file order.
pub fn parse(text: &str, skipped: &mut Skipped) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        match (fields.next(), fields.next().and_then(parse_f64), fields.next()) {
            (Some(name), Some(value), None) if is_metric_name_part(name) => {
                if field_kept(name) {
                    out.push((name.to_string(), value));
                }
            }
            _ if line.trim().is_empty() => {}
            _ => skipped.line("/proc/vmstat", line),
        }
    }
    out
}

pub fn families(fields: &[(String, f64)]) -> Vec<Family> {
    fields
        .iter()
        .map(|(name, value)| {
            let mut family =
                untyped(&format!("node_vmstat_{name}"), &format!("/proc/vmstat information field {name}."));
            family.sample(&[], *value);
            family
        })
        .collect()
}

pub fn collect(_: &Settings, skipped: &mut Skipped) -> CollectResult<Vec<Family>> {
    Ok(families(&parse(&read_text("/proc/vmstat")?, skipped)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_node_exporter_default_fields() {
        let text = "nr_free_pages 123\npgpgin 3531005\npgpgout 2952428\npswpin 0\npswpout 0\npgfault 14181933\n\
pgmajfault 3209\noom_kill 0\nthp_fault_alloc 0\npgalloc_normal 5\nbad\n";
        let mut skipped = Skipped::default();
        let kept: Vec<_> = parse(text, &mut skipped).into_iter().map(|(n, _)| n).collect();
        assert_eq!(kept, ["pgpgin", "pgpgout", "pswpin", "pswpout", "pgfault", "pgmajfault", "oom_kill"]);
        assert_eq!(skipped.count(), 1);
        let family = families(&[("pgfault".into(), 2.0)]).remove(0).build();
        assert_eq!(family.name, "node_vmstat_pgfault");
        assert_eq!(family.kind, wasmon_sdk::MetricKind::Unknown);
        assert_eq!(family.help, "/proc/vmstat information field pgfault.");
    }
}
