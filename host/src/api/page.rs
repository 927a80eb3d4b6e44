//! The targets view: `/api/v1/targets` in Prometheus' shape and a plain page.

use super::AppState;
use crate::config::PromDuration;
use crate::scheduler::{JobView, ScrapeSnapshot};
use axum::Json;
use axum::extract::{Query, State};
use axum::response::Html;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

fn rfc3339(t: Option<SystemTime>) -> String {
    let Some(t) = t else { return "0001-01-01T00:00:00Z".into() };
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// The URL a target is scraped at, as the targets view shows it.
fn scrape_url(s: &ScrapeSnapshot) -> String {
    if s.plugin == "native" { s.target.url() } else { format!("wasm://{}/{}", s.plugin, s.target.address) }
}

fn target_json(s: &ScrapeSnapshot) -> Value {
    let job = s.target.labels.get("job").cloned().unwrap_or_default();
    json!({
        "discoveredLabels": s.target.discovered,
        "labels": s.target.labels,
        "scrapePool": job,
        "scrapeUrl": scrape_url(s),
        "globalUrl": scrape_url(s),
        "lastError": s.last_error.clone().unwrap_or_default(),
        "lastScrape": rfc3339(s.last_scrape),
        "lastScrapeDuration": s.duration.as_secs_f64(),
        "health": s.health.as_str(),
        "scrapeInterval": PromDuration(s.interval).to_string(),
        "scrapeTimeout": PromDuration(s.timeout).to_string(),
    })
}

/// One job's targets with their latest scrape, in the job's order.
pub struct JobTargetsReport {
    pub job: String,
    pub active: Vec<Arc<ScrapeSnapshot>>,
    pub view: JobView,
}

/// Every job's targets, joined with their latest scrapes.
pub fn collect_targets(state: &AppState) -> Vec<JobTargetsReport> {
    state
        .discovered
        .jobs()
        .into_iter()
        .map(|(job, view)| {
            let active = view.active.iter().filter_map(|t| state.latest.get_key(&t.key())).collect();
            JobTargetsReport { job, active, view }
        })
        .collect()
}

#[derive(serde::Deserialize, Default)]
pub struct TargetsQuery {
    /// `active`, `dropped` or `any` (the default), as in Prometheus.
    state: Option<String>,
    #[serde(rename = "scrapePool")]
    scrape_pool: Option<String>,
}

pub async fn targets_api(State(state): State<AppState>, Query(q): Query<TargetsQuery>) -> Json<Value> {
    let which = q.state.as_deref().unwrap_or("any").to_ascii_lowercase();
    let (want_active, want_dropped) = match which.as_str() {
        "active" => (true, false),
        "dropped" => (false, true),
        _ => (true, true),
    };
    let mut active = Vec::new();
    let mut dropped = Vec::new();
    for report in collect_targets(&state) {
        if q.scrape_pool.as_ref().is_some_and(|p| *p != report.job) {
            continue;
        }
        if want_active {
            active.extend(report.active.iter().map(|s| target_json(s)));
        }
        if want_dropped {
            dropped.extend(report.view.dropped.iter().map(|d| {
                json!({
                    "discoveredLabels": d.discovered,
                    // Not in Prometheus' answer: which step dropped it.
                    "dropReason": d.reason.to_string(),
                    "scrapePool": report.job,
                })
            }));
        }
    }
    Json(json!({ "status": "success", "data": { "activeTargets": active, "droppedTargets": dropped } }))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn label_list(labels: &std::collections::BTreeMap<String, String>) -> String {
    labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect::<Vec<_>>().join(", ")
}

/// A refused reload, what the last one could not apply, and plugin files
/// that are not running as they are on disk.
fn reload_banner(state: &AppState) -> String {
    let mut out = String::new();
    let status = state.reload.status();
    if let Some(error) = &status.last_error {
        out.push_str(&format!(
            "<p class=\"error\">config reload refused; the previous config keeps running: {}</p>\n",
            escape(error)
        ));
    }
    for note in &status.notes {
        out.push_str(&format!("<p>not applied by the last reload: {}</p>\n", escape(note)));
    }
    for plugin in state.reload.plugins.statuses() {
        if let Some(error) = &plugin.error {
            let running = match &plugin.sha256 {
                Some(sha) => format!(" (running the previous version, sha256 {})", &sha[..12.min(sha.len())]),
                None => String::new(),
            };
            out.push_str(&format!(
                "<p class=\"error\">plugin {}: {}{running}</p>\n",
                escape(&plugin.path),
                escape(error)
            ));
        }
    }
    out
}

pub async fn targets_page(State(state): State<AppState>) -> Html<String> {
    let mut body = reload_banner(&state);
    for report in collect_targets(&state) {
        let up = report.active.iter().filter(|s| s.health == crate::scheduler::Health::Up).count();
        body.push_str(&format!(
            "<h2 id=\"job-{id}\">{job} ({up}/{total} up, {dropped} dropped)</h2>\n",
            id = escape(&report.job),
            job = escape(&report.job),
            total = report.active.len(),
            dropped = report.view.dropped.len(),
        ));
        for error in &report.view.errors {
            // The job's own collector problem (a missing plugin) is not discovery's.
            let source = if error.starts_with("plugin ") { "" } else { "discovery: " };
            body.push_str(&format!("<p class=\"error\">{source}{}</p>\n", escape(error)));
        }
        body.push_str("<table><tr><th>Endpoint</th><th>Collector</th><th>State</th><th>Labels</th><th>Last scrape</th><th>Duration</th><th>Error</th></tr>\n");
        for s in &report.active {
            body.push_str(&format!(
                "<tr class=\"{health}\"><td>{url}</td><td>{plugin}</td><td>{health}</td><td>{labels}</td><td>{last}</td><td>{dur:.1} ms</td><td>{err}</td></tr>\n",
                url = escape(&scrape_url(s)),
                plugin = escape(&s.plugin),
                health = s.health.as_str(),
                labels = label_list(&s.target.labels),
                last = rfc3339(s.last_scrape),
                dur = s.duration.as_secs_f64() * 1000.0,
                err = escape(s.last_error.as_deref().unwrap_or("")),
            ));
        }
        body.push_str("</table>\n");
        if !report.view.dropped.is_empty() {
            body.push_str("<details><summary>Dropped targets</summary><table><tr><th>Discovered labels</th><th>Dropped by</th></tr>\n");
            for d in &report.view.dropped {
                body.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td></tr>\n",
                    label_list(&d.discovered),
                    escape(&d.reason.to_string())
                ));
            }
            body.push_str("</table></details>\n");
        }
    }
    super::html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>wasmon targets</title><style>\
         body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin-bottom:1em}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}\
         tr.up td:nth-child(3){{color:#070}}tr.down td:nth-child(3){{color:#b00;font-weight:bold}}p.error{{color:#b00}}</style></head><body>\
         <h1>wasmon</h1><p><a href=\"/metrics\">/metrics</a> · <a href=\"/api/v1/targets\">/api/v1/targets</a></p>\n{body}</body></html>"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(Some(UNIX_EPOCH)), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(Some(UNIX_EPOCH + Duration::from_millis(1_795_322_096_789))), "2026-11-22T04:34:56.789Z");
        assert_eq!(rfc3339(Some(UNIX_EPOCH + Duration::from_secs(951_782_400))), "2000-02-29T00:00:00.000Z");
    }
}
