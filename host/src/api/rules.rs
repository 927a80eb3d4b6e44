//! `/api/v1/rules`, `/api/v1/alerts` and `/-/reload`, in Prometheus' shapes.

use super::AppState;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

fn json(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// With no rules configured Prometheus answers with empty lists, not an error.
pub async fn rules(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let typ: Option<String> = raw
        .as_deref()
        .and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "type").map(|(_, v)| v.into_owned()));
    let groups = state.alerting.as_ref().map(|a| a.manager.groups_snapshot()).unwrap_or_default();
    match crate::alerting::api::rules_response(&groups, typ.as_deref()) {
        Ok(body) => json(StatusCode::OK, body),
        Err(e) => {
            let body = serde_json::json!({"status": "error", "errorType": "bad_data", "error": e}).to_string();
            json(StatusCode::BAD_REQUEST, body)
        }
    }
}

pub async fn alerts(State(state): State<AppState>) -> Response {
    let groups = state.alerting.as_ref().map(|a| a.manager.groups_snapshot()).unwrap_or_default();
    json(StatusCode::OK, crate::alerting::api::alerts_response(&groups))
}
