//! Prometheus-compatible recording and alerting rules (Prometheus 2.42
//! semantics): rule files, evaluation, the ALERTS series, `for` state
//! restore, sending decisions, the rules/alerts API and promtool's
//! `check rules` / `test rules`.

pub mod alert;
pub mod api;
pub mod group;
pub mod manager;
mod outline;
pub mod recording;
pub mod rules;
pub mod unittest;

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use wasmon_storage::{Labels, Matcher, Querier, Sample, SeriesSamples, matches_all};

pub use alert::{Alert, AlertState, AlertingRule};
pub use group::{EvalContext, Group, Rule, RuleHealth, RuleStatus};
pub use manager::{GroupSnapshot, RuleManager, RuleManagerOptions, RuleSnapshot};
pub use recording::RecordingRule;
pub use rules::{GroupSpec, RuleFileError, RuleKind, RuleSpec, check_rules_command, load_rule_files, parse_rules};
pub use unittest::test_rules_command;

/// One alert as sent to an Alertmanager-like receiver (Prometheus'
/// `notifier.Alert` before external labels and relabelling, which the sink
/// applies).
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingAlert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub generator_url: String,
}

/// Where the rule manager delivers alerts after each evaluation. Called from
/// evaluation threads: implementations should queue, not block.
pub trait AlertSink: Send + Sync {
    fn send(&self, alerts: Vec<OutgoingAlert>);
}

/// A sink that drops everything (no Alertmanager configured).
#[derive(Debug, Default)]
pub struct NoopSink;

impl AlertSink for NoopSink {
    fn send(&self, _alerts: Vec<OutgoingAlert>) {}
}

/// What rules append to: the store they also query.
pub trait RuleStore: Querier {
    /// Appends `(labels, t ms, value)`; returns a description of refused
    /// samples, if any.
    fn append_samples(&self, batch: &[(Labels, i64, f64)]) -> Result<(), String>;
}

impl RuleStore for wasmon_storage::Db {
    fn append_samples(&self, batch: &[(Labels, i64, f64)]) -> Result<(), String> {
        let r = self.append_batch(batch);
        if r.rejected() == 0 {
            Ok(())
        } else if r.out_of_order > 0 {
            Err("out of order sample".into())
        } else if r.conflicting > 0 {
            Err("duplicate sample for timestamp".into())
        } else {
            Err(format!("{} samples not stored ({r})", r.rejected()))
        }
    }
}

/// An in-memory store for `wasmon test rules` and tests: refuses
/// out-of-order samples and same-timestamp conflicts like the TSDB does.
#[derive(Debug, Default)]
pub struct MemStore {
    series: RwLock<HashMap<Labels, Vec<Sample>>>,
}

impl MemStore {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Querier for MemStore {
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<SeriesSamples> {
        let series = self.series.read().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<SeriesSamples> = series
            .iter()
            .filter(|(l, _)| matches_all(matchers, l))
            .filter_map(|(l, s)| {
                let from = s.partition_point(|x| x.t < mint);
                let to = s.partition_point(|x| x.t <= maxt);
                (from < to).then(|| SeriesSamples { labels: l.clone(), samples: s[from..to].to_vec() })
            })
            .collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }
}

impl RuleStore for MemStore {
    fn append_samples(&self, batch: &[(Labels, i64, f64)]) -> Result<(), String> {
        let mut series = self.series.write().unwrap_or_else(|p| p.into_inner());
        let mut err = None;
        for (l, t, v) in batch {
            if l.is_empty() {
                err.get_or_insert_with(|| "empty label set".to_string());
                continue;
            }
            let s = series.entry(l.clone()).or_default();
            match s.last() {
                Some(last) if last.t > *t => {
                    err.get_or_insert_with(|| "out of order sample".to_string());
                }
                Some(last) if last.t == *t => {
                    if last.v.to_bits() != v.to_bits() {
                        err.get_or_insert_with(|| "duplicate sample for timestamp".to_string());
                    }
                }
                _ => s.push(Sample { t: *t, v: *v }),
            }
        }
        err.map_or(Ok(()), Err)
    }
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)` (`upper` for `'E'`).
pub fn format_float_e(v: f64, upper: bool) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let s = format!("{v:e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let sign = if exp < 0 { '-' } else { '+' };
    let e = if upper { 'E' } else { 'e' };
    format!("{mantissa}{e}{sign}{:02}", exp.abs())
}

pub(crate) use wasmon_query::go_quote;

/// Prometheus' `labels.Labels.String()`: `{a="1", b="2"}`, `__name__` included.
pub(crate) fn go_labels_string<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let parts: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={}", go_quote(v))).collect();
    format!("{{{}}}", parts.join(", "))
}

/// Go's `url.QueryEscape`.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Prometheus' `strutil.TableLinkForExpression`, prefixed with the external URL.
pub fn generator_url(external_url: &str, expr: &str) -> String {
    format!("{external_url}/graph?g0.expr={}&g0.tab=1", query_escape(expr))
}

/// Go's `time.Time` JSON form in UTC (RFC 3339 with trimmed nanoseconds);
/// `None` is Go's zero time.
pub fn rfc3339_nano(ms: Option<i64>) -> String {
    let Some(ms) = ms else { return "0001-01-01T00:00:00Z".into() };
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => {
            let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
            let frac = ms.rem_euclid(1000);
            if frac == 0 {
                format!("{base}Z")
            } else {
                let digits = format!("{frac:03}");
                format!("{base}.{}Z", digits.trim_end_matches('0'))
            }
        }
        None => "0001-01-01T00:00:00Z".into(),
    }
}

/// Wall-clock milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(crate) fn duration_ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_float_formats() {
        assert_eq!(format_float_e(1.0, false), "1e+00");
        assert_eq!(format_float_e(15.5, false), "1.55e+01");
        assert_eq!(format_float_e(0.00123, true), "1.23E-03");
        assert_eq!(format_float_e(f64::NAN, false), "NaN");
        assert_eq!(format_float_e(f64::NEG_INFINITY, false), "-Inf");
        assert_eq!(format_float_e(1e100, false), "1e+100");
    }

    #[test]
    fn links_and_times() {
        assert_eq!(
            generator_url("http://h:9090", "up{job=\"a b\"} == 0"),
            "http://h:9090/graph?g0.expr=up%7Bjob%3D%22a+b%22%7D+%3D%3D+0&g0.tab=1"
        );
        assert_eq!(rfc3339_nano(Some(1_500)), "1970-01-01T00:00:01.5Z");
        assert_eq!(rfc3339_nano(Some(0)), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_nano(None), "0001-01-01T00:00:00Z");
    }

    #[test]
    fn mem_store_refuses_like_the_tsdb() {
        let s = MemStore::new();
        let l = Labels::from_pairs([("__name__", "x")]);
        assert!(s.append_samples(&[(l.clone(), 10, 1.0)]).is_ok());
        assert!(s.append_samples(&[(l.clone(), 10, 1.0)]).is_ok());
        assert!(s.append_samples(&[(l.clone(), 10, 2.0)]).is_err());
        assert!(s.append_samples(&[(l.clone(), 5, 2.0)]).is_err());
        assert_eq!(s.select(&[], 0, 100)[0].samples.len(), 1);
    }
}
