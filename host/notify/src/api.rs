//! Alertmanager's v2 HTTP API, the subset Prometheus (`POST /api/v2/alerts`)
//! and amtool 0.25 (alerts, silences, status) use, with the same JSON shapes
//! and error bodies so their clients parse our answers.

use crate::Notifier;
use crate::dispatch::AlertView;
use crate::matcher::{Matcher, parse_matcher};
use crate::model::{LabelSet, fmt_api_time, fmt_fingerprint, opt_time};
use crate::silence::{Silence, SilenceError, SilenceMatcher};
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

/// The Alertmanager version whose API we implement. amtool compares it with
/// its own version and warns on a mismatch; clients use it to pick features.
pub const API_COMPAT_VERSION: &str = "0.25.0";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Alertmanager answers these with the message as a JSON string.
    #[error("{0}")]
    BadRequest(String),
    /// go-openapi's shape for bodies that fail the schema.
    #[error("{message}")]
    Schema { code: u16, message: String },
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::BadRequest(m) => json_response(StatusCode::BAD_REQUEST, &Value::String(m)),
            ApiError::Schema { code, message } => {
                let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
                json_response(status, &json!({"code": code, "message": message}))
            }
            // Alertmanager's 404s have an empty body.
            ApiError::NotFound => StatusCode::NOT_FOUND.into_response(),
            ApiError::Internal(m) => json_response(StatusCode::INTERNAL_SERVER_ERROR, &Value::String(m)),
        }
    }
}

fn json_response(status: StatusCode, v: &Value) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn ok_json(v: &Value) -> Response {
    json_response(StatusCode::OK, v)
}

/// The Alertmanager v2 API subset; health and readiness are the embedding
/// server's (the agent serves its own `/-/healthy` and `/-/ready`).
pub(crate) fn router(n: Notifier) -> Router {
    Router::new()
        .route("/api/v2/alerts", get(get_alerts).post(post_alerts))
        .route("/api/v2/silences", get(get_silences).post(post_silences))
        .route("/api/v2/silence/{id}", get(get_silence).delete(delete_silence))
        .route("/api/v2/status", get(status))
        .route("/api/v2/receivers", get(receivers))
        .with_state(n)
}

/// Query pairs, repeated keys kept (`filter=a&filter=b`), decoded like Go's `url.ParseQuery`.
fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    let Some(q) = q else { return Vec::new() };
    q.split(['&', ';'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn bool_param(pairs: &[(String, String)], name: &str) -> Result<bool, ApiError> {
    match pairs.iter().rev().find(|(k, _)| k == name) {
        None => Ok(true),
        Some((_, v)) => match v.as_str() {
            "true" | "1" | "yes" | "y" | "on" => Ok(true),
            "false" | "0" | "no" | "n" | "off" => Ok(false),
            _ => {
                Err(ApiError::Schema { code: 400, message: format!("{name} in query must be of type boolean: {v:?}") })
            }
        },
    }
}

fn filters(pairs: &[(String, String)]) -> Result<Vec<Matcher>, ApiError> {
    pairs
        .iter()
        .filter(|(k, _)| k == "filter")
        .map(|(_, v)| parse_matcher(v).map_err(|e| ApiError::BadRequest(e.to_string())))
        .collect()
}

fn status_of(v: &AlertView) -> &'static str {
    if v.silenced_by.is_empty() && v.inhibited_by.is_empty() { "active" } else { "suppressed" }
}

fn alert_json(v: &AlertView) -> Value {
    let a = &v.alert;
    let mut o = json!({
        "annotations": a.annotations,
        "endsAt": fmt_api_time(&a.ends_at),
        "fingerprint": fmt_fingerprint(a.fp),
        "receivers": v.receivers.iter().map(|r| json!({"name": r})).collect::<Vec<_>>(),
        "startsAt": fmt_api_time(&a.starts_at),
        "status": {
            "inhibitedBy": v.inhibited_by,
            "silencedBy": v.silenced_by,
            "state": status_of(v),
        },
        "updatedAt": fmt_api_time(&a.updated_at),
        "labels": a.labels,
    });
    // Alertmanager omits an empty generatorURL.
    if !a.generator_url.is_empty()
        && let Some(m) = o.as_object_mut()
    {
        m.insert("generatorURL".into(), Value::String(a.generator_url.clone()));
    }
    o
}

async fn get_alerts(State(n): State<Notifier>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let pairs = query_pairs(q.as_deref());
    let active = bool_param(&pairs, "active")?;
    let silenced = bool_param(&pairs, "silenced")?;
    let inhibited = bool_param(&pairs, "inhibited")?;
    // Every alert is processed as soon as it arrives, so `unprocessed` filters nothing.
    bool_param(&pairs, "unprocessed")?;
    let matchers = filters(&pairs)?;
    let receiver = match pairs.iter().rev().find(|(k, _)| k == "receiver") {
        Some((_, r)) if !r.is_empty() => Some(
            regex::Regex::new(&format!("^(?:{r})$"))
                .map_err(|e| ApiError::BadRequest(format!("failed to parse receiver param: {e}")))?,
        ),
        _ => None,
    };
    let now = crate::model::now();
    let st = n.inner.lock();
    let sources = st.sources(now);
    let mut views: Vec<AlertView> = st
        .alerts
        .values()
        .filter(|a| !a.resolved(now))
        .filter(|a| crate::matcher::matches_all(&matchers, &a.labels))
        .map(|a| st.view(&sources, a, now))
        .filter(|v| receiver.as_ref().is_none_or(|re| v.receivers.iter().any(|r| re.is_match(r))))
        .filter(|v| {
            let suppressed = !(v.silenced_by.is_empty() && v.inhibited_by.is_empty());
            (active || suppressed) && (silenced || v.silenced_by.is_empty()) && (inhibited || v.inhibited_by.is_empty())
        })
        .collect();
    drop(st);
    views.sort_by_key(|v| fmt_fingerprint(v.alert.fp));
    Ok(ok_json(&Value::Array(views.iter().map(alert_json).collect())))
}

#[derive(Deserialize)]
struct PostableAlert {
    #[serde(default)]
    labels: Option<LabelSet>,
    #[serde(default)]
    annotations: Option<LabelSet>,
    #[serde(rename = "startsAt", with = "opt_time", default)]
    starts_at: Option<DateTime<Utc>>,
    #[serde(rename = "endsAt", with = "opt_time", default)]
    ends_at: Option<DateTime<Utc>>,
    #[serde(rename = "generatorURL", default)]
    generator_url: Option<String>,
}

async fn post_alerts(State(n): State<Notifier>, body: Bytes) -> Result<Response, ApiError> {
    let posted: Vec<PostableAlert> = serde_json::from_slice(&body)
        .map_err(|e| ApiError::Schema { code: 400, message: format!("parsing alerts body failed: {e}") })?;
    let now = crate::model::now();
    let alerts = posted
        .into_iter()
        .map(|p| crate::Alert {
            labels: p.labels.unwrap_or_default(),
            annotations: p.annotations.unwrap_or_default(),
            // Alertmanager: no start means "now", or the end if only that is given.
            starts_at: p.starts_at.or(p.ends_at).unwrap_or(now),
            ends_at: p.ends_at,
            generator_url: p.generator_url.unwrap_or_default(),
        })
        .collect();
    let rejected = n.ingest(alerts);
    if rejected.is_empty() {
        return Ok(StatusCode::OK.into_response());
    }
    // Like Alertmanager: the valid alerts are kept, the first problem of each
    // rejected one is reported.
    let msgs: Vec<String> = rejected.iter().filter_map(|(_, p)| p.first().map(|e| e.to_string())).collect();
    Err(ApiError::BadRequest(msgs.join("; ")))
}

fn silence_json(s: &Silence, now: DateTime<Utc>) -> Value {
    json!({
        "id": s.id,
        "status": {"state": s.state(now)},
        "updatedAt": fmt_api_time(&s.updated_at),
        "comment": s.comment,
        "createdBy": s.created_by,
        "endsAt": fmt_api_time(&s.ends_at),
        "matchers": s.matchers,
        "startsAt": fmt_api_time(&s.starts_at),
    })
}

/// Alertmanager's `CheckSilenceMatchesFilterLabels`: a filter matches a
/// silence by the silence's matcher values, not by alert labels.
fn silence_matches_filter(s: &Silence, filter: &[Matcher]) -> bool {
    let values: std::collections::HashMap<&str, &str> =
        s.matchers.iter().map(|m| (m.name.as_str(), m.value.as_str())).collect();
    filter.iter().all(|m| {
        let v = values.get(m.name.as_str()).copied();
        let negative = matches!(m.op, crate::MatchOp::NotEqual | crate::MatchOp::NotRegex);
        if m.value.is_empty() && (if negative { v.is_some() } else { v.is_none() }) {
            return true;
        }
        m.matches(v.unwrap_or(""))
    })
}

async fn get_silences(State(n): State<Notifier>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let pairs = query_pairs(q.as_deref());
    let matchers = filters(&pairs)?;
    let now = crate::model::now();
    let st = n.inner.lock();
    let list: Vec<Value> = st
        .silences
        .list(now)
        .into_iter()
        .filter(|s| silence_matches_filter(s, &matchers))
        .map(|s| silence_json(s, now))
        .collect();
    Ok(ok_json(&Value::Array(list)))
}

async fn get_silence(State(n): State<Notifier>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let now = crate::model::now();
    let st = n.inner.lock();
    let s = st.silences.get(&id).ok_or(ApiError::NotFound)?;
    Ok(ok_json(&silence_json(s, now)))
}

async fn delete_silence(State(n): State<Notifier>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let now = crate::model::now();
    {
        let mut st = n.inner.lock();
        st.silences.expire(&id, now).map_err(|e| match e {
            SilenceError::NotFound => ApiError::NotFound,
            e => ApiError::Internal(e.to_string()),
        })?;
        n.inner.persist_silences(&mut st);
    }
    // Muted alerts may be due now; the dispatcher looks at the next group tick.
    n.inner.wake.notify_one();
    Ok(StatusCode::OK.into_response())
}

#[derive(Deserialize)]
struct PostableSilence {
    #[serde(default)]
    id: Option<String>,
    matchers: Option<Vec<SilenceMatcher>>,
    #[serde(rename = "startsAt", with = "opt_time", default)]
    starts_at: Option<DateTime<Utc>>,
    #[serde(rename = "endsAt", with = "opt_time", default)]
    ends_at: Option<DateTime<Utc>>,
    #[serde(rename = "createdBy")]
    created_by: Option<String>,
    comment: Option<String>,
}

fn required<T>(v: Option<T>, name: &str) -> Result<T, ApiError> {
    v.ok_or_else(|| ApiError::Schema { code: 422, message: format!("{name} in body is required") })
}

async fn post_silences(State(n): State<Notifier>, body: Bytes) -> Result<Response, ApiError> {
    let p: PostableSilence = serde_json::from_slice(&body)
        .map_err(|e| ApiError::Schema { code: 400, message: format!("parsing silence body failed: {e}") })?;
    let now = crate::model::now();
    let sil = Silence {
        id: p.id.unwrap_or_default(),
        matchers: required(p.matchers, "matchers")?,
        starts_at: required(p.starts_at, "startsAt")?,
        ends_at: required(p.ends_at, "endsAt")?,
        updated_at: now,
        created_by: required(p.created_by, "createdBy")?,
        comment: required(p.comment, "comment")?,
    };
    if sil.starts_at >= sil.ends_at {
        return Err(ApiError::BadRequest("Failed to create silence: start time must be before end time".into()));
    }
    if sil.ends_at < now {
        return Err(ApiError::BadRequest("Failed to create silence: end time can't be in the past".into()));
    }
    let id = {
        let mut st = n.inner.lock();
        let id = st.silences.set(sil, now).map_err(|e| match e {
            SilenceError::NotFound => ApiError::NotFound,
            e => ApiError::BadRequest(e.to_string()),
        })?;
        n.inner.persist_silences(&mut st);
        id
    };
    n.inner.wake.notify_one();
    Ok(ok_json(&json!({"silenceID": id})))
}

async fn status(State(n): State<Notifier>) -> Response {
    let original = n.inner.lock().config.to_yaml();
    ok_json(&json!({
        "cluster": {"peers": [], "status": "disabled"},
        "config": {"original": original},
        "uptime": fmt_api_time(&n.inner.started_at),
        "versionInfo": {
            "branch": "wasmon",
            "buildDate": "",
            "buildUser": "wasmon",
            "goVersion": "none (wasmon-notify is written in Rust)",
            "revision": concat!("wasmon-notify ", env!("CARGO_PKG_VERSION")),
            "version": API_COMPAT_VERSION,
        },
    }))
}

async fn receivers(State(n): State<Notifier>) -> Response {
    let names: Vec<Value> = n.inner.lock().cfg.receiver_names.iter().map(|r| json!({"name": r})).collect();
    ok_json(&Value::Array(names))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_queries() {
        let p = query_pairs(Some("filter=alertname%3D%22Foo%22&filter=a+b%3Dc&active=false&x"));
        assert_eq!(p[0], ("filter".into(), "alertname=\"Foo\"".into()));
        assert_eq!(p[1].1, "a b=c");
        assert!(!bool_param(&p, "active").unwrap());
        assert!(bool_param(&p, "silenced").unwrap());
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%41%"), "A%");
    }
}
