//! `textfile`: metrics other programs write as `*.prom` files into a
//! directory (`textfile_directory`), parsed with the SDK's exposition parser.
//!
//! node_exporter also exports `node_textfile_mtime_seconds{file}`; the
//! plugin's file interface has no `stat`, so that family is left out.

use super::Settings;
use crate::util::{CollectResult, Skipped, gauge};
use std::collections::BTreeMap;
use wasmon_sdk::{Family, MetricFamily, MetricValue};

/// Families parsed from the files, and whether any file failed.
#[derive(Debug, Default)]
pub struct Merged {
    pub families: BTreeMap<String, MetricFamily>,
    pub errored: bool,
}

/// Add one file's families. A file is all or nothing: if it does not parse,
/// carries client-side timestamps (node_exporter refuses those), or
/// redefines a family with another type, none of it is used.
pub fn merge_file(merged: &mut Merged, path: &str, parsed: Result<Vec<MetricFamily>, String>) -> Result<(), String> {
    let families = parsed.map_err(|e| format!("{path}: {e}"))?;
    if families.iter().flat_map(|f| &f.metrics).any(|m| m.timestamp_ms.is_some()) {
        return Err(format!("{path}: contains unsupported client-side timestamps, skipping entire file"));
    }
    if let Some(clash) =
        families.iter().find(|f| merged.families.get(&f.name).is_some_and(|known| known.kind != f.kind))
    {
        return Err(format!("{path}: family {} has a different type in another file", clash.name));
    }
    for mut family in families {
        if family.help.is_empty() {
            family.help = format!("Metric read from {path}");
        }
        match merged.families.get_mut(&family.name) {
            Some(known) => known.metrics.extend(family.metrics),
            None => {
                merged.families.insert(family.name.clone(), family);
            }
        }
    }
    Ok(())
}

fn read_directory(dir: &str) -> Merged {
    let mut merged = Merged::default();
    let entries = match wasmon_sdk::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            wasmon_sdk::log::warn(&format!("textfile: cannot read directory {dir}: {e}"));
            merged.errored = true;
            return merged;
        }
    };
    for entry in entries.iter().filter(|e| !e.is_dir && e.name.ends_with(".prom")) {
        let path = format!("{}/{}", dir.trim_end_matches('/'), entry.name);
        let parsed = match wasmon_sdk::fs::read_to_string(&path) {
            Ok(text) => wasmon_sdk::text::parse(&text).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(message) = merge_file(&mut merged, &path, parsed) {
            wasmon_sdk::log::warn(&format!("textfile: {message}"));
            merged.errored = true;
        }
    }
    merged
}

/// The file families, then `node_textfile_scrape_error`. Without a
/// configured directory this reports 0 and nothing else, as node_exporter
/// does with an empty `--collector.textfile.directory`.
pub fn collect_with(settings: &Settings) -> (Vec<MetricFamily>, Family) {
    let merged = settings.textfile_directory.as_deref().map(read_directory).unwrap_or_default();
    let mut error =
        gauge("node_textfile_scrape_error", "1 if there was an error opening or reading a file, 0 otherwise");
    error.sample(&[], if merged.errored { 1.0 } else { 0.0 });
    (merged.families.into_values().collect(), error)
}

/// The registry entry.
pub fn collect(settings: &Settings, _: &mut Skipped) -> CollectResult<Vec<Family>> {
    let (families, error) = collect_with(settings);
    let mut out: Vec<Family> = families.into_iter().map(rebuild).collect();
    out.push(error);
    Ok(out)
}

/// A `Family` with `family`'s help, unit, kind and samples, rebuilt through
/// the builder so each value's variant agrees with the family's kind.
fn rebuild(family: MetricFamily) -> Family {
    let mut builder = Family::new(&family.name, &family.help, family.kind).unit(&family.unit);
    for metric in family.metrics {
        let labels: Vec<(&str, &str)> = metric.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect();
        match metric.value {
            MetricValue::Gauge(v) | MetricValue::Counter(v) => {
                builder.sample(&labels, v);
            }
            MetricValue::Histogram(h) => {
                let buckets: Vec<(f64, u64)> = h.buckets.iter().map(|b| (b.upper_bound, b.count)).collect();
                builder.histogram_sample(&labels, &buckets, h.sum, h.count);
            }
            MetricValue::Summary(s) => {
                let quantiles: Vec<(f64, f64)> = s.quantiles.iter().map(|q| (q.quantile, q.value)).collect();
                builder.summary_sample(&labels, &quantiles, s.sum, s.count);
            }
        }
    }
    builder
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmon_sdk::{Metric, MetricKind};

    fn family(name: &str, kind: MetricKind, help: &str, timestamp_ms: Option<i64>) -> MetricFamily {
        MetricFamily {
            name: name.into(),
            help: help.into(),
            unit: String::new(),
            kind,
            metrics: vec![Metric { labels: Vec::new(), value: MetricValue::Gauge(1.0), timestamp_ms }],
        }
    }

    #[test]
    fn files_merge_and_fail_whole() {
        let mut merged = Merged::default();
        merge_file(&mut merged, "/t/a.prom", Ok(vec![family("job_ok", MetricKind::Gauge, "", None)]))
            .expect("a merges");
        merge_file(&mut merged, "/t/b.prom", Ok(vec![family("job_ok", MetricKind::Gauge, "x", None)]))
            .expect("b merges");
        assert_eq!(merged.families["job_ok"].metrics.len(), 2);
        assert_eq!(merged.families["job_ok"].help, "Metric read from /t/a.prom");

        let clash = merge_file(&mut merged, "/t/c.prom", Ok(vec![family("job_ok", MetricKind::Counter, "", None)]));
        assert!(clash.expect_err("type clash").contains("different type"));
        let stamped = merge_file(&mut merged, "/t/d.prom", Ok(vec![family("other", MetricKind::Gauge, "", Some(5))]));
        assert!(stamped.expect_err("timestamps").contains("timestamps"));
        let broken = merge_file(&mut merged, "/t/e.prom", Err("line 3: bad".into()));
        assert!(broken.expect_err("parse error").starts_with("/t/e.prom"));
        assert_eq!(merged.families.len(), 1);
    }

    #[test]
    fn no_directory_means_no_error() {
        let (families, error) = collect_with(&Settings::default());
        assert!(families.is_empty());
        assert_eq!(error.build().metrics[0].value, MetricValue::Gauge(0.0));
    }
}
