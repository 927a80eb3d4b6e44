//! The targets view: `/api/v1/targets` in Prometheus' shape and a plain page.

use super::AppState;
use crate::config::PromDuration;
use crate::scheduler::ScrapeSnapshot;
use axum::Json;
use axum::extract::State;
use axum::response::Html;
use serde_json::{Value, json};
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

fn target_json(s: &ScrapeSnapshot) -> Value {
    let job = s.target.labels.get("job").cloned().unwrap_or_default();
    json!({
        "discoveredLabels": { "__address__": s.target.address, "job": job },
        "labels": s.target.labels,
        "scrapePool": job,
        "scrapeUrl": format!("wasm://{}/{}", s.plugin, s.target.address),
        "globalUrl": format!("wasm://{}/{}", s.plugin, s.target.address),
        "lastError": s.last_error.clone().unwrap_or_default(),
        "lastScrape": rfc3339(s.last_scrape),
        "lastScrapeDuration": s.duration.as_secs_f64(),
        "health": s.health.as_str(),
        "scrapeInterval": PromDuration(s.interval).to_string(),
        "scrapeTimeout": PromDuration(s.timeout).to_string(),
    })
}

pub async fn targets_api(State(state): State<AppState>) -> Json<Value> {
    let active: Vec<Value> = state.latest.all().iter().map(|s| target_json(s)).collect();
    Json(json!({ "status": "success", "data": { "activeTargets": active, "droppedTargets": [] } }))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

pub async fn targets_page(State(state): State<AppState>) -> Html<String> {
    let mut rows = String::new();
    for s in state.latest.all() {
        let labels: Vec<String> = s.target.labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
        rows.push_str(&format!(
            "<tr class=\"{health}\"><td>{job}</td><td>{addr}</td><td>{plugin}</td><td>{health}</td><td>{labels}</td><td>{last}</td><td>{dur:.1} ms</td><td>{err}</td></tr>\n",
            job = escape(s.target.labels.get("job").map(String::as_str).unwrap_or("")),
            addr = escape(&s.target.address),
            plugin = escape(&s.plugin),
            health = s.health.as_str(),
            labels = labels.join(", "),
            last = rfc3339(s.last_scrape),
            dur = s.duration.as_secs_f64() * 1000.0,
            err = escape(s.last_error.as_deref().unwrap_or("")),
        ));
    }
    super::html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>wasmon targets</title><style>\
         body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}\
         tr.up td:nth-child(4){{color:#070}}tr.down td:nth-child(4){{color:#b00;font-weight:bold}}</style></head><body>\
         <h1>wasmon</h1><p><a href=\"/metrics\">/metrics</a> · <a href=\"/api/v1/targets\">/api/v1/targets</a></p>\
         <h2>Targets</h2><table><tr><th>Job</th><th>Target</th><th>Plugin</th><th>State</th><th>Labels</th><th>Last scrape</th><th>Duration</th><th>Error</th></tr>\n{rows}</table></body></html>"
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
