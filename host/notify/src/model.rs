//! Alerts as Alertmanager's API models them, their fingerprints, and the two
//! timestamp formats Alertmanager emits (millisecond API times, Go's
//! RFC 3339 nano in webhook payloads).

use crate::matcher::valid_label_name;
use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::SystemTime;

pub type LabelSet = BTreeMap<String, String>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AlertError {
    #[error("start time must be before end time")]
    EndBeforeStart,
    #[error("invalid label set: invalid name {0:?}")]
    BadLabelName(String),
    #[error("at least one label pair required")]
    NoLabels,
    #[error("invalid annotations: invalid name {0:?}")]
    BadAnnotationName(String),
    #[error("invalid timestamp {0:?}")]
    BadTime(String),
}

/// One alert (Alertmanager's `postableAlert` with `startsAt` filled in). It is
/// resolved once `ends_at` is in the past; without `ends_at` it resolves
/// `resolve_timeout` after it was last received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub labels: LabelSet,
    #[serde(default)]
    pub annotations: LabelSet,
    #[serde(rename = "startsAt", with = "req_time")]
    pub starts_at: DateTime<Utc>,
    #[serde(rename = "endsAt", with = "opt_time", default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(rename = "generatorURL", default)]
    pub generator_url: String,
}

impl Alert {
    /// Alertmanager's fingerprint of the label set, as 16 hex digits.
    pub fn fingerprint(&self) -> String {
        fmt_fingerprint(fingerprint(&self.labels))
    }

    /// The same checks (and messages) as Alertmanager's `Alert.Validate`,
    /// run after defaults are filled in.
    pub(crate) fn validate(&self) -> Vec<AlertError> {
        let mut out = Vec::new();
        if self.ends_at.is_some_and(|e| e < self.starts_at) {
            out.push(AlertError::EndBeforeStart);
        }
        if let Some(bad) = self.labels.keys().find(|k| !valid_label_name(k)) {
            out.push(AlertError::BadLabelName(bad.clone()));
        }
        if self.labels.is_empty() {
            out.push(AlertError::NoLabels);
        }
        if let Some(bad) = self.annotations.keys().find(|k| !valid_label_name(k)) {
            out.push(AlertError::BadAnnotationName(bad.clone()));
        }
        out
    }
}

const FNV_OFFSET: u64 = 14695981039346656037;
const FNV_PRIME: u64 = 1099511628211;
const SEPARATOR: u8 = 0xff;

fn fnv_add(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// Prometheus' `LabelSet.Fingerprint` (FNV-1a over sorted name, 0xff, value,
/// 0xff), so fingerprints equal Alertmanager's for the same labels.
pub fn fingerprint(labels: &LabelSet) -> u64 {
    let mut h = FNV_OFFSET;
    for (k, v) in labels {
        h = fnv_add(h, k.as_bytes());
        h = fnv_add(h, &[SEPARATOR]);
        h = fnv_add(h, v.as_bytes());
        h = fnv_add(h, &[SEPARATOR]);
    }
    h
}

pub fn fmt_fingerprint(fp: u64) -> String {
    format!("{fp:016x}")
}

/// Prometheus' `LabelSet.String`: `{a="b", c="d"}`.
pub fn fmt_labels(labels: &LabelSet) -> String {
    let parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", parts.join(", "))
}

/// Prometheus' `LabelSet.Before`, which orders alerts in notifications.
pub(crate) fn labels_before(a: &LabelSet, b: &LabelSet) -> bool {
    if a.len() != b.len() {
        return a.len() < b.len();
    }
    let names: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for n in names {
        let Some(av) = a.get(n) else { return true };
        let Some(bv) = b.get(n) else { return false };
        if av != bv {
            return av < bv;
        }
    }
    false
}

/// Alertmanager's `AlertSlice` order: by `job`, then `instance`, then labels.
pub(crate) fn alert_order(a: &LabelSet, b: &LabelSet) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    for key in ["job", "instance"] {
        match (a.get(key), b.get(key)) {
            (None, None) => continue,
            (None, Some(_)) => return Ordering::Greater,
            (Some(_), None) => return Ordering::Less,
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => {}
        }
    }
    if labels_before(a, b) {
        Ordering::Less
    } else if labels_before(b, a) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

pub fn now() -> DateTime<Utc> {
    DateTime::<Utc>::from(SystemTime::now())
}

/// API v2 times: go-openapi's `strfmt.DateTime` prints milliseconds.
pub fn fmt_api_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Go's `time.RFC3339Nano` (trailing zeros trimmed), used in webhook bodies.
pub fn fmt_go_time(t: &DateTime<Utc>) -> String {
    let mut s =
        format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", t.year(), t.month(), t.day(), t.hour(), t.minute(), t.second());
    let nanos = t.nanosecond() % 1_000_000_000;
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Go's zero `time.Time`, which Alertmanager sends as `endsAt` of firing alerts.
pub const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

pub fn parse_time(s: &str) -> Result<DateTime<Utc>, AlertError> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).map_err(|_| AlertError::BadTime(s.to_string()))
}

/// Optional RFC 3339 times; Go clients send the zero time for "unset".
pub(crate) mod opt_time {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&fmt_go_time(t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        match s.as_deref() {
            None | Some("") => Ok(None),
            Some(s) => {
                let t = parse_time(s).map_err(serde::de::Error::custom)?;
                // Go's zero time means "not set" (year 1).
                if t.year() <= 1 { Ok(None) } else { Ok(Some(t)) }
            }
        }
    }
}

/// Required RFC 3339 times, written with full precision (state files must round-trip).
pub(crate) mod req_time {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&fmt_go_time(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        parse_time(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ls(kv: &[(&str, &str)]) -> LabelSet {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn fingerprints_match_alertmanager() {
        // Values observed from Alertmanager 0.25 for the same label sets.
        assert_eq!(fmt_fingerprint(fingerprint(&ls(&[("alertname", "Foo"), ("job", "x")]))), "77c7c0a24f9bac0f");
        assert_eq!(fmt_fingerprint(fingerprint(&ls(&[("alertname", "Foo"), ("job", "y")]))), "77cbc0a24f9f94e6");
    }

    #[test]
    fn time_formats() {
        let t = parse_time("2026-12-01T19:22:36.648908702Z").unwrap();
        assert_eq!(fmt_go_time(&t), "2026-12-01T19:22:36.648908702Z");
        assert_eq!(fmt_api_time(&t), "2026-12-01T19:22:36.648Z");
        let t = parse_time("2026-12-01T19:22:38+01:00").unwrap();
        assert_eq!(fmt_go_time(&t), "2026-12-01T18:22:38Z");
    }

    #[test]
    fn validation_messages() {
        let t = now();
        let a = Alert {
            labels: ls(&[("a-b", "x")]),
            annotations: LabelSet::new(),
            starts_at: t,
            ends_at: Some(t - chrono::Duration::seconds(1)),
            generator_url: String::new(),
        };
        assert_eq!(a.validate(), vec![AlertError::EndBeforeStart, AlertError::BadLabelName("a-b".into())]);
        let a = Alert { labels: LabelSet::new(), ends_at: None, ..a };
        assert_eq!(a.validate(), vec![AlertError::NoLabels]);
    }

    #[test]
    fn order() {
        let a = ls(&[("job", "a"), ("x", "9")]);
        let b = ls(&[("job", "b"), ("x", "1")]);
        assert_eq!(alert_order(&a, &b), std::cmp::Ordering::Less);
        assert_eq!(alert_order(&ls(&[("x", "1")]), &a), std::cmp::Ordering::Greater);
    }
}
