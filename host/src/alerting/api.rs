//! `/api/v1/rules` and `/api/v1/alerts` bodies in Prometheus 2.42's shapes
//! (web/api/v1/api.go). Written by hand rather than through serde so that
//! numbers and strings come out as Go's encoding/json writes them (`60`, not
//! `60.0`; `<` as `\u003c`) and fields keep Prometheus' order.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::alert::Alert;
use super::manager::{GroupSnapshot, RuleSnapshot};
use super::rules::RuleKind;
use super::{format_float_e, rfc3339_nano};

/// Go's encoding/json string: HTML-sensitive characters escaped too.
fn json_str(s: &str) -> String {
    let base = serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    base.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// Go's encoding/json float64: shortest form, exponent only outside [1e-6, 1e21).
fn json_f64(v: f64) -> String {
    if !v.is_finite() {
        // Go refuses these; 0 keeps the document valid.
        return "0".into();
    }
    let a = v.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        let s = format_float_e(v, false);
        // Go trims "e-07" to "e-7" here.
        return s.replace("e-0", "e-").replace("e+0", "e+");
    }
    format!("{v}")
}

fn json_map(m: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = m.iter().map(|(k, v)| format!("{}:{}", json_str(k), json_str(v))).collect();
    format!("{{{}}}", parts.join(","))
}

fn alert_json(a: &Alert) -> String {
    let labels: BTreeMap<String, String> = a.labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect();
    format!(
        "{{\"labels\":{},\"annotations\":{},\"state\":{},\"activeAt\":{},\"value\":{}}}",
        json_map(&labels),
        json_map(&a.annotations),
        json_str(a.state.as_str()),
        json_str(&rfc3339_nano(Some(a.active_at))),
        json_str(&format_float_e(a.value, false)),
    )
}

fn rule_json(r: &RuleSnapshot) -> String {
    let mut s = String::from("{");
    let last_error =
        r.status.last_error.as_deref().map(|e| format!("\"lastError\":{},", json_str(e))).unwrap_or_default();
    let common_tail = format!(
        "\"health\":{},{last_error}\"evaluationTime\":{},\"lastEvaluation\":{}",
        json_str(r.status.health.as_str()),
        json_f64(r.status.evaluation_time.as_secs_f64()),
        json_str(&rfc3339_nano(r.status.last_evaluation_ms)),
    );
    match r.spec.kind {
        RuleKind::Alerting => {
            let alerts: Vec<String> = r.alerts.iter().map(alert_json).collect();
            let _ = write!(
                s,
                "\"state\":{},\"name\":{},\"query\":{},\"duration\":{},\"keepFiringFor\":{},\"labels\":{},\"annotations\":{},\"alerts\":[{}],{common_tail},\"type\":\"alerting\"",
                json_str(r.state.as_str()),
                json_str(&r.spec.name),
                json_str(&r.query),
                json_f64(r.spec.hold.as_secs_f64()),
                json_f64(r.spec.keep_firing_for.as_secs_f64()),
                json_map(&r.spec.labels),
                json_map(&r.spec.annotations),
                alerts.join(","),
            );
        }
        RuleKind::Recording => {
            let labels = if r.spec.labels.is_empty() {
                String::new()
            } else {
                format!("\"labels\":{},", json_map(&r.spec.labels))
            };
            let _ = write!(
                s,
                "\"name\":{},\"query\":{},{labels}{common_tail},\"type\":\"recording\"",
                json_str(&r.spec.name),
                json_str(&r.query),
            );
        }
    }
    s.push('}');
    s
}

/// The `/api/v1/rules` response. `type_filter` is the `type` parameter
/// (`alert` or `record`); any other value is an error for a 400 `bad_data`.
pub fn rules_response(groups: &[impl AsRef<GroupSnapshot>], type_filter: Option<&str>) -> Result<String, String> {
    let typ = type_filter.unwrap_or("").to_lowercase();
    if !typ.is_empty() && typ != "alert" && typ != "record" {
        return Err(format!("not supported value {typ:?}"));
    }
    let want = |k: RuleKind| match k {
        RuleKind::Alerting => typ.is_empty() || typ == "alert",
        RuleKind::Recording => typ.is_empty() || typ == "record",
    };
    let groups: Vec<String> = groups
        .iter()
        .map(|g| {
            let g = g.as_ref();
            let rules: Vec<String> = g.rules.iter().filter(|r| want(r.spec.kind)).map(rule_json).collect();
            format!(
                "{{\"name\":{},\"file\":{},\"rules\":[{}],\"interval\":{},\"limit\":{},\"evaluationTime\":{},\"lastEvaluation\":{}}}",
                json_str(&g.name),
                json_str(&g.file),
                rules.join(","),
                json_f64(g.interval.as_secs_f64()),
                g.limit,
                json_f64(g.evaluation_time.as_secs_f64()),
                json_str(&rfc3339_nano(g.last_evaluation_ms)),
            )
        })
        .collect();
    Ok(format!("{{\"status\":\"success\",\"data\":{{\"groups\":[{}]}}}}", groups.join(",")))
}

/// The `/api/v1/alerts` response: every pending and firing alert.
pub fn alerts_response(groups: &[impl AsRef<GroupSnapshot>]) -> String {
    let alerts: Vec<String> = groups
        .iter()
        .flat_map(|g| g.as_ref().rules.iter())
        .filter(|r| r.spec.kind == RuleKind::Alerting)
        .flat_map(|r| r.alerts.iter().map(alert_json))
        .collect();
    format!("{{\"status\":\"success\",\"data\":{{\"alerts\":[{}]}}}}", alerts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::alert::AlertState;
    use crate::alerting::group::{RuleHealth, RuleStatus};
    use crate::alerting::rules::RuleSpec;
    use std::time::Duration;
    use wasmon_storage::Labels;

    fn snapshot() -> GroupSnapshot {
        let alert = Alert {
            labels: Labels::from_pairs([("alertname", "High"), ("job", "a")]),
            annotations: BTreeMap::from([("summary".to_string(), "<b>".to_string())]),
            state: AlertState::Firing,
            value: 15.5,
            active_at: 1_500,
            fired_at: Some(1_500),
            resolved_at: None,
            last_sent_at: None,
            valid_until: 0,
            keep_firing_since: None,
        };
        let spec = |kind, name: &str| RuleSpec {
            kind,
            name: name.into(),
            expr: "x > 1".into(),
            hold: Duration::from_secs(300),
            keep_firing_for: Duration::ZERO,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
        };
        GroupSnapshot {
            name: "g".into(),
            file: "f.yml".into(),
            interval: Duration::from_secs(60),
            limit: 0,
            rules: vec![
                RuleSnapshot {
                    spec: spec(RuleKind::Alerting, "High"),
                    query: "x > 1".into(),
                    state: AlertState::Firing,
                    alerts: vec![alert],
                    status: RuleStatus {
                        health: RuleHealth::Ok,
                        last_error: None,
                        last_evaluation_ms: Some(2_000),
                        evaluation_time: Duration::from_micros(250),
                    },
                },
                RuleSnapshot {
                    spec: RuleSpec { hold: Duration::ZERO, ..spec(RuleKind::Recording, "r") },
                    query: "x".into(),
                    state: AlertState::Inactive,
                    alerts: vec![],
                    status: RuleStatus {
                        health: RuleHealth::Err,
                        last_error: Some("boom".into()),
                        ..Default::default()
                    },
                },
            ],
            evaluation_time: Duration::from_millis(1),
            last_evaluation_ms: Some(2_000),
        }
    }

    #[test]
    fn shapes_match_prometheus() {
        let g = [Box::new(snapshot())];
        let body = rules_response(&g, None).unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let rule = &v["data"]["groups"][0]["rules"][0];
        assert_eq!(rule["type"], "alerting");
        assert_eq!(rule["duration"], 300);
        assert_eq!(rule["alerts"][0]["value"], "1.55e+01");
        assert_eq!(rule["alerts"][0]["activeAt"], "1970-01-01T00:00:01.5Z");
        assert!(body.contains("\"summary\":\"\\u003cb\\u003e\""));
        assert!(body.contains("\"interval\":60,"));
        assert!(body.contains("\"evaluationTime\":0.00025,"));
        let rec = &v["data"]["groups"][0]["rules"][1];
        assert_eq!(rec["lastError"], "boom");
        assert!(rec.get("labels").is_none());
        assert_eq!(rec["lastEvaluation"], "0001-01-01T00:00:00Z");
        let only = rules_response(&g, Some("record")).unwrap();
        assert!(!only.contains("alerting"));
        assert!(rules_response(&g, Some("x")).is_err());
        let alerts: serde_json::Value = serde_json::from_str(&alerts_response(&g)).unwrap();
        assert_eq!(alerts["data"]["alerts"][0]["labels"]["job"], "a");
        assert_eq!(alerts["data"]["alerts"][0]["state"], "firing");
    }
}
