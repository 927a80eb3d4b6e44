//! Prometheus' HTTP API over the embedded store, in Prometheus' own response
//! shapes so Grafana and `promtool`/`amtool`-style clients work unchanged:
//! `/api/v1/query`, `query_range`, `series`, `labels`, `label/<name>/values`,
//! `metadata`, `status/buildinfo`, and the remote-write receiver `write`.

use super::AppState;
use super::params::{MAX_TIME_MS, MIN_TIME_MS, Params, parse_duration_ms};
use crate::runtime::model::MetricKind;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use wasmon_query::{QueryError, Value};
use wasmon_storage::{Labels, Matcher, Querier, is_stale_nan};

/// Prometheus refuses range queries with more points per series than this.
const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// What the query endpoints need: the store and the engine.
pub struct QueryApi {
    pub db: Arc<wasmon_storage::Db>,
    pub engine: wasmon_query::Engine,
    /// Whether `/api/v1/write` accepts samples (`web.enable_remote_write_receiver`).
    pub remote_write_receiver: bool,
}

/// An API error: HTTP status plus Prometheus' `errorType`.
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl ApiError {
    fn bad_data(message: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, kind: "bad_data", message: message.into() }
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
        Self { status, kind: e.error_type(), message: e.to_string() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = String::from(r#"{"status":"error","errorType":"#);
        json_string(&mut body, self.kind);
        body.push_str(r#","error":"#);
        json_string(&mut body, &self.message);
        body.push('}');
        json_response(self.status, body)
    }
}

pub type ApiResult = Result<Response, ApiError>;

fn json_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// `{"status":"success","data":<data>}`.
fn success(data: &str) -> Response {
    json_response(StatusCode::OK, format!(r#"{{"status":"success","data":{data}}}"#))
}

fn api(state: &AppState) -> Result<&QueryApi, ApiError> {
    state.query.as_deref().ok_or_else(|| ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        kind: "unavailable",
        message: "the local store is disabled (storage.tsdb.enabled: false)".into(),
    })
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Run blocking store and engine work off the async runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        kind: "internal",
        message: format!("query task failed: {e}"),
    })
}

pub async fn query(State(state): State<AppState>, p: Params) -> ApiResult {
    api(&state)?;
    let expr = p.get("query").unwrap_or_default().to_string();
    let t = p.time("time", now_ms()).map_err(ApiError::bad_data)?;
    let state2 = state.clone();
    let value = blocking(move || {
        let api = state2.query.as_deref().ok_or_else(|| QueryError::Execution("store disabled".into()))?;
        api.engine.instant(api.db.as_ref(), &expr, t)
    })
    .await??;
    let mut out = String::with_capacity(1024);
    write_value(&mut out, &value);
    Ok(success(&out))
}

pub async fn query_range(State(state): State<AppState>, p: Params) -> ApiResult {
    api(&state)?;
    let start = p.get("start").ok_or_else(|| ApiError::bad_data("invalid parameter \"start\": missing"))?;
    let start = super::params::parse_time(start)
        .map_err(|e| ApiError::bad_data(format!("invalid parameter \"start\": {e}")))?;
    let end = p.get("end").ok_or_else(|| ApiError::bad_data("invalid parameter \"end\": missing"))?;
    let end =
        super::params::parse_time(end).map_err(|e| ApiError::bad_data(format!("invalid parameter \"end\": {e}")))?;
    if end < start {
        return Err(ApiError::bad_data("end timestamp must not be before start time"));
    }
    let step = p.get("step").ok_or_else(|| ApiError::bad_data("invalid parameter \"step\": missing"))?;
    let step = parse_duration_ms(step).map_err(|e| ApiError::bad_data(format!("invalid parameter \"step\": {e}")))?;
    if step <= 0 {
        return Err(ApiError::bad_data(
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if (end - start) / step > MAX_POINTS_PER_SERIES {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let expr = p.get("query").unwrap_or_default().to_string();
    let state2 = state.clone();
    let value = blocking(move || {
        let api = state2.query.as_deref().ok_or_else(|| QueryError::Execution("store disabled".into()))?;
        api.engine.range(api.db.as_ref(), &expr, start, end, step)
    })
    .await??;
    let mut out = String::with_capacity(4096);
    write_value(&mut out, &value);
    Ok(success(&out))
}

/// `match[]` selectors, each a list of matchers (a selector with `or`
/// gives several lists).
fn selectors(p: &Params, required: bool) -> Result<Vec<Vec<Matcher>>, ApiError> {
    let texts = p.all("match[]");
    if texts.is_empty() && required {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let mut out = Vec::new();
    for text in texts {
        out.extend(super::selector::parse_selector(text).map_err(ApiError::bad_data)?);
    }
    Ok(out)
}

fn time_range(p: &Params) -> Result<(i64, i64), ApiError> {
    let start = p.time("start", MIN_TIME_MS).map_err(ApiError::bad_data)?;
    let end = p.time("end", MAX_TIME_MS).map_err(ApiError::bad_data)?;
    if end < start {
        return Err(ApiError::bad_data("end timestamp must not be before start time"));
    }
    Ok((start, end))
}

fn limit(p: &Params) -> Result<usize, ApiError> {
    match p.get("limit") {
        None | Some("") => Ok(0),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(|n| n as usize)
            .ok_or_else(|| ApiError::bad_data("limit must be a non-negative integer")),
    }
}

pub async fn series(State(state): State<AppState>, p: Params) -> ApiResult {
    let db = api(&state)?.db.clone();
    let sets = selectors(&p, true)?;
    let (start, end) = time_range(&p)?;
    let limit = limit(&p)?;
    let mut all: Vec<Labels> = blocking(move || {
        let mut all: Vec<Labels> = sets.iter().flat_map(|m| db.series(m, start, end)).collect();
        all.sort();
        all.dedup();
        all
    })
    .await?;
    if limit > 0 {
        all.truncate(limit);
    }
    let mut out = String::from("[");
    for (i, labels) in all.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_labels(&mut out, labels);
    }
    out.push(']');
    Ok(success(&out))
}

pub async fn labels(State(state): State<AppState>, p: Params) -> ApiResult {
    let db = api(&state)?.db.clone();
    let sets = selectors(&p, false)?;
    let (start, end) = time_range(&p)?;
    let limit = limit(&p)?;
    let names = blocking(move || union_over(&sets, |m| db.label_names(m, start, end))).await?;
    Ok(success(&string_list(&names, limit)))
}

pub async fn label_values(State(state): State<AppState>, Path(name): Path<String>, p: Params) -> ApiResult {
    let db = api(&state)?.db.clone();
    if !crate::config::is_valid_label_name(&name) {
        return Err(ApiError::bad_data(format!("invalid label name: {name:?}")));
    }
    let sets = selectors(&p, false)?;
    let (start, end) = time_range(&p)?;
    let limit = limit(&p)?;
    let values = blocking(move || union_over(&sets, |m| db.label_values(&name, m, start, end))).await?;
    Ok(success(&string_list(&values, limit)))
}

/// Sorted, distinct results of `f` over every `match[]` selector (over all
/// series when there is none), as `labels` and `label/<name>/values` answer.
fn union_over(sets: &[Vec<Matcher>], f: impl Fn(&[Matcher]) -> Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = if sets.is_empty() { f(&[]) } else { sets.iter().flat_map(|m| f(m)).collect() };
    out.sort();
    out.dedup();
    out
}

/// Metric metadata from the latest scrape of every target, keyed by family
/// name like Prometheus' `/api/v1/metadata`.
pub async fn metadata(State(state): State<AppState>, RawQuery(raw): RawQuery) -> ApiResult {
    let p = Params::from_request(&Method::GET, &HeaderMap::new(), raw.as_deref(), &[]);
    let limit = limit(&p)?;
    let per_metric = match p.get("limit_per_metric") {
        None | Some("") => 0,
        Some(v) => v.parse::<usize>().map_err(|_| ApiError::bad_data("limit_per_metric must be a number"))?,
    };
    let only = p.get("metric").filter(|m| !m.is_empty());
    let mut by_name: BTreeMap<String, Vec<(&'static str, String, String)>> = BTreeMap::new();
    for snapshot in state.latest.all() {
        for family in &snapshot.families {
            if only.is_some_and(|m| m != family.name) {
                continue;
            }
            let entry = (metadata_type(family.kind), family.help.clone(), family.unit.clone());
            let list = by_name.entry(family.name.clone()).or_default();
            if !list.contains(&entry) {
                list.push(entry);
            }
        }
    }
    let mut out = String::from("{");
    for (i, (name, entries)) in by_name.iter().enumerate() {
        if limit > 0 && i >= limit {
            break;
        }
        if i > 0 {
            out.push(',');
        }
        json_string(&mut out, name);
        out.push_str(":[");
        for (j, (kind, help, unit)) in entries.iter().enumerate() {
            if per_metric > 0 && j >= per_metric {
                break;
            }
            if j > 0 {
                out.push(',');
            }
            out.push_str(r#"{"type":"#);
            json_string(&mut out, kind);
            out.push_str(r#","help":"#);
            json_string(&mut out, help);
            out.push_str(r#","unit":"#);
            json_string(&mut out, unit);
            out.push('}');
        }
        out.push(']');
    }
    out.push('}');
    Ok(success(&out))
}

fn metadata_type(kind: MetricKind) -> &'static str {
    match kind {
        MetricKind::Counter => "counter",
        MetricKind::Gauge => "gauge",
        MetricKind::Histogram => "histogram",
        MetricKind::Summary => "summary",
        MetricKind::Info => "info",
        MetricKind::Stateset => "stateset",
        MetricKind::Unknown => "unknown",
    }
}

/// Build information, deliberately without a `features` map: Grafana would
/// take a non-empty one to mean Mimir and look for a ruler API.
pub async fn buildinfo() -> Response {
    let mut out = String::from(r#"{"version":"#);
    json_string(&mut out, env!("CARGO_PKG_VERSION"));
    out.push_str(r#","revision":"","branch":"","buildUser":"","buildDate":"","goVersion":"""#);
    out.push('}');
    success(&out)
}

/// The remote-write receiver: decode, validate every series, store. Like
/// Prometheus it answers 400 for a malformed request and 204 on success;
/// samples out of order are counted and reported, the rest kept.
pub async fn write(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> ApiResult {
    let api = api(&state)?;
    if !api.remote_write_receiver {
        return Err(ApiError {
            status: StatusCode::NOT_FOUND,
            kind: "unavailable",
            message: "remote write receiver needs to be enabled with web.enable_remote_write_receiver".into(),
        });
    }
    if let Some(encoding) = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok())
        && encoding != "snappy"
    {
        return Err(ApiError::bad_data(format!("unsupported Content-Encoding {encoding:?}; remote write uses snappy")));
    }
    let request = crate::remote::decode_request(&body).map_err(|e| ApiError::bad_data(e.to_string()))?;
    let mut batch = Vec::new();
    for (index, series) in request.timeseries.iter().enumerate() {
        let labels = crate::remote::series_labels(index, series).map_err(|e| ApiError::bad_data(e.to_string()))?;
        for s in &series.samples {
            batch.push((labels.clone(), s.timestamp, s.value));
        }
    }
    let db = api.db.clone();
    let report = blocking(move || db.append_batch(&batch)).await?;
    if report.rejected() > 0 {
        state.telemetry.inc(
            "wasmon_remote_write_receiver_samples_rejected_total",
            "Samples received through /api/v1/write that the store refused (out of order, duplicate, too old).",
            &[],
            report.rejected() as f64,
        );
        return Err(ApiError::bad_data(format!("{report}")));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn string_list(items: &[String], limit: usize) -> String {
    let mut out = String::from("[");
    for (i, item) in items.iter().enumerate() {
        if limit > 0 && i >= limit {
            break;
        }
        if i > 0 {
            out.push(',');
        }
        json_string(&mut out, item);
    }
    out.push(']');
    out
}

/// `{"resultType":...,"result":...}` in Prometheus' encoding.
pub fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Scalar { t, v } => {
            out.push_str(r#"{"resultType":"scalar","result":"#);
            write_point(out, *t, *v);
        }
        Value::String { t, v } => {
            out.push_str(r#"{"resultType":"string","result":["#);
            write_timestamp(out, *t);
            out.push(',');
            json_string(out, v);
            out.push(']');
        }
        Value::Vector(samples) => {
            out.push_str(r#"{"resultType":"vector","result":["#);
            for (i, s) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                write_labels(out, &s.labels);
                out.push_str(r#","value":"#);
                write_point(out, s.t, s.v);
                out.push('}');
            }
            out.push(']');
        }
        Value::Matrix(series) => {
            out.push_str(r#"{"resultType":"matrix","result":["#);
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                write_labels(out, &s.labels);
                out.push_str(r#","values":["#);
                let mut first = true;
                for p in s.samples.iter().filter(|p| !is_stale_nan(p.v)) {
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    write_point(out, p.t, p.v);
                }
                out.push_str("]}");
            }
            out.push(']');
        }
    }
    out.push('}');
}

fn write_labels(out: &mut String, labels: &Labels) {
    out.push('{');
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_string(out, &l.name);
        out.push(':');
        json_string(out, &l.value);
    }
    out.push('}');
}

/// `[<unix seconds>,"<value>"]`.
fn write_point(out: &mut String, t: i64, v: f64) {
    out.push('[');
    write_timestamp(out, t);
    out.push_str(",\"");
    out.push_str(&format_api_float(v));
    out.push_str("\"]");
}

/// Seconds with the milliseconds as a fraction, the way Prometheus writes
/// them (`1435781451.781`, `1435781451`, `1.500`).
fn write_timestamp(out: &mut String, t: i64) {
    if t < 0 {
        out.push('-');
    }
    let t = t.unsigned_abs();
    let _ = write!(out, "{}", t / 1000);
    let fraction = t % 1000;
    if fraction != 0 {
        let _ = write!(out, ".{fraction:03}");
    }
}

/// Sample values as Prometheus' API writes them (Go's `FormatFloat(v, 'f', -1, 64)`).
pub fn format_api_float(v: f64) -> String {
    wasmon_query::format_float_go(v)
}

fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// How long a query may run before the API answers 503.
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(120);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_and_timestamps_like_prometheus() {
        assert_eq!(format_api_float(1e21), "1000000000000000000000");
        assert_eq!(format_api_float(0.1), "0.1");
        assert_eq!(format_api_float(-0.0), "-0");
        assert_eq!(format_api_float(f64::NAN), "NaN");
        assert_eq!(format_api_float(f64::NEG_INFINITY), "-Inf");
        let mut s = String::new();
        write_timestamp(&mut s, 1_435_781_451_781);
        s.push(' ');
        write_timestamp(&mut s, 1_500);
        s.push(' ');
        write_timestamp(&mut s, 2_000);
        s.push(' ');
        write_timestamp(&mut s, 1_005);
        assert_eq!(s, "1435781451.781 1.500 2 1.005");
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut s = String::new();
        json_string(&mut s, "a\"b\\c\nd\u{1}");
        assert_eq!(s, r#""a\"b\\c\nd\u0001""#);
        let parsed: String = serde_json::from_str(&s).unwrap();
        assert_eq!(parsed, "a\"b\\c\nd\u{1}");
    }
}
