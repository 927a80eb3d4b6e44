//! HTTP: `/metrics`, health and readiness, the targets API and page, and
//! Prometheus' query API over the embedded store.

mod page;
mod params;
pub mod prom;
mod rules;
mod selector;

pub use selector::parse_selector;

use crate::exposition::{Format, write_family};
use crate::runtime::model::MetricFamily;
use crate::scheduler::LatestScrapes;
use crate::telemetry::Telemetry;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Clone)]
pub struct AppState {
    pub latest: Arc<LatestScrapes>,
    /// Every job's active and dropped targets.
    pub discovered: Arc<crate::scheduler::DiscoveredTargets>,
    pub telemetry: Arc<Telemetry>,
    /// False until every plugin is loaded and the scheduler runs.
    pub ready: Arc<AtomicBool>,
    /// The running jobs, for `/probe`.
    pub jobs: Arc<std::sync::RwLock<Vec<Arc<crate::scheduler::Job>>>>,
    /// The store and query engine; `None` when the local store is disabled.
    pub query: Option<Arc<prom::QueryApi>>,
    /// Rules and notifiers; `None` when there are neither rules nor a notifier.
    pub alerting: Option<Arc<crate::notifications::Alerting>>,
    /// Config reloads and the plugins the agent has loaded.
    pub reload: Arc<crate::reload::ReloadHandle>,
}

pub fn router(state: AppState) -> Router {
    // The built-in notifier's Alertmanager API (`/api/v2/...`, for amtool).
    let notifier = state.alerting.as_ref().and_then(|a| a.builtin.as_ref()).map(|n| n.router());
    let app = Router::new()
        .route("/", get(page::targets_page))
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(|| async { "wasmon is Healthy.\n" }))
        .route("/-/ready", get(ready))
        .route("/api/v1/targets", get(page::targets_api))
        .route("/probe", get(probe))
        .route("/api/v1/query", get(prom::query).post(prom::query))
        .route("/api/v1/query_range", get(prom::query_range).post(prom::query_range))
        .route("/api/v1/series", get(prom::series).post(prom::series))
        .route("/api/v1/labels", get(prom::labels).post(prom::labels))
        .route("/api/v1/label/{name}/values", get(prom::label_values))
        .route("/api/v1/metadata", get(prom::metadata))
        .route("/api/v1/status/buildinfo", get(prom::buildinfo))
        .route("/api/v1/write", axum::routing::post(prom::write))
        .route("/api/v1/rules", get(rules::rules))
        .route("/api/v1/alerts", get(rules::alerts))
        .route("/-/reload", axum::routing::post(reload).put(reload))
        .route("/api/v1/plugins", get(plugins))
        .with_state(state);
    match notifier {
        Some(n) => app.merge(n),
        None => app,
    }
}

async fn ready(State(state): State<AppState>) -> Response {
    if state.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "wasmon is Ready.\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable\n").into_response()
    }
}

/// Render the latest scrape of every target plus the agent's own metrics.
pub fn render_metrics(latest: &LatestScrapes, telemetry: &Telemetry, format: Format) -> String {
    let snapshots = latest.all();
    let own = telemetry.families();
    let mut groups: BTreeMap<&str, Vec<&MetricFamily>> = BTreeMap::new();
    for family in snapshots.iter().flat_map(|s| s.families.iter()).chain(own.iter()) {
        groups.entry(family.name.as_str()).or_default().push(family);
    }
    let mut conflicts = 0u64;
    let mut out = String::with_capacity(64 * 1024);
    for parts in groups.values_mut() {
        // Two targets disagreeing on a family's type cannot share one TYPE
        // line: serve the first type and count the rest.
        let kind = parts[0].kind;
        let before = parts.len();
        parts.retain(|f| f.kind == kind);
        conflicts += (before - parts.len()) as u64;
        write_family(&mut out, parts, format);
    }
    if conflicts > 0 {
        telemetry.inc(
            "wasmon_metrics_type_conflicts_total",
            "Families left out of /metrics because targets disagreed on their type.",
            &[],
            conflicts as f64,
        );
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let format = Format::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let body = render_metrics(&state.latest, &state.telemetry, format);
    let gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().split(';').next() == Some("gzip")));
    let mut response = if gzip {
        let mut encoder =
            flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), flate2::Compression::fast());
        match encoder.write_all(body.as_bytes()).and_then(|_| encoder.finish()) {
            Ok(bytes) => {
                let mut r = bytes.into_response();
                r.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                r
            }
            Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, format!("gzip failed: {e}")).into_response(),
        }
    } else {
        body.into_response()
    };
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    response
}

#[derive(serde::Deserialize)]
struct ProbeQuery {
    job: String,
    target: Option<String>,
}

/// Collect from one configured target now and return its families, the way
/// multi-target exporters (blackbox, snmp) answer `/probe`: no caching, no
/// target labels. Useful for debugging a job and for benchmarking against an
/// exporter that collects on every scrape.
async fn probe(
    State(state): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<ProbeQuery>,
    headers: HeaderMap,
) -> Response {
    let job = state.jobs.read().unwrap_or_else(|p| p.into_inner()).iter().find(|j| j.name == q.job).cloned();
    let Some(job) = job else {
        return (StatusCode::NOT_FOUND, format!("no job named {:?}\n", q.job)).into_response();
    };
    let active = state.discovered.job(&q.job).map(|v| v.active).unwrap_or_default();
    let spec = match &q.target {
        Some(t) => active.iter().find(|s| &s.address == t).cloned(),
        None => active.first().cloned(),
    };
    let Some(spec) = spec else {
        return (StatusCode::NOT_FOUND, format!("job {:?} has no target {:?}\n", q.job, q.target)).into_response();
    };
    let format = Format::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    match job.probe(&spec, format).await.result {
        Ok(text) => {
            let mut r = text.into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
            r
        }
        Err(f) => (StatusCode::SERVICE_UNAVAILABLE, format!("collect failed: {f}\n")).into_response(),
    }
}

pub(crate) fn html(body: String) -> Html<String> {
    Html(body)
}

/// Reload the config, rule files and plugins, as Prometheus' `POST
/// /-/reload` does: 200 when applied, 500 with the reason when refused
/// (the running config stays).
async fn reload(State(state): State<AppState>) -> Response {
    match state.reload.reload().await {
        Ok(summary) => (StatusCode::OK, format!("{summary}\n")).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("failed to reload config: {e}\n")).into_response(),
    }
}

/// Every plugin file the agent knows: world, version, and why a file's
/// current content is not running.
async fn plugins(State(state): State<AppState>) -> Response {
    let statuses = state.reload.plugins.statuses();
    axum::Json(serde_json::json!({"status": "success", "data": statuses})).into_response()
}
