//! One scrape: etcd's `/metrics` (passed through the host, see [`wasmon_sdk::passthrough`]),
//! then `/health` and the maintenance status, each optional beyond the first. What failed is logged, and shows in the values, not as a failed scrape:
//! `etcd_endpoint_up 0` when `/metrics` cannot be read, `etcd_endpoint_health 0` and no status
//! families when only those fail.

use crate::config::EtcdConfig;
use crate::metrics;
use crate::status::{Status, parse_health, parse_status};
use wasmon_sdk::http::{self, HttpError, HttpErrorKind, Request};
use wasmon_sdk::passthrough::{self, PassedThrough};
use wasmon_sdk::{MetricFamily, PluginError, Target};

/// What the three requests gave.
#[derive(Debug, Clone, PartialEq)]
pub struct Readings {
    /// etcd's families (inside wasm only their names: the host holds them), or why they
    /// could not be read.
    pub metrics: Result<PassedThrough, String>,
    /// `/health`: healthy or why not; `None` when not asked for.
    pub health: Option<Result<bool, String>>,
    /// The maintenance status or why it is missing; `None` when not asked for.
    pub status: Option<Result<Status, String>>,
}

/// Read everything the config asks for from `target`. `/health` and the status go out
/// first and the host runs them while it fetches and parses `/metrics`, so the scrape waits
/// for the slowest, not for the sum.
pub fn read(target: &Target, config: &EtcdConfig) -> Result<Readings, PluginError> {
    let metrics_url = http::target_url(target, &config.metrics_path);
    let mut requests = Vec::new();
    if config.health {
        requests.push(Request::get(&http::target_url(target, "/health")));
    }
    if config.status {
        requests.push(
            Request::post(&http::target_url(target, "/v3/maintenance/status"))
                .header("content-type", "application/json")
                .body("{}"),
        );
    }
    let pending = http::start_all(requests);
    let metrics = read_metrics(passthrough::scrape(target, &config.metrics_path))?;
    let mut responses = pending.wait().into_iter();
    let mut next = || responses.next().unwrap_or_else(|| Err(HttpError::other(&metrics_url, "no response")));
    let health = config.health.then(|| read_health(next()));
    let status = config.status.then(|| read_status(next()));
    if metrics.is_err() {
        // etcd is not answering: what the other endpoints said adds nothing.
        return Ok(Readings { metrics, health: None, status: None });
    }
    Ok(Readings { metrics, health, status })
}

/// The families to return for `readings`, logging each failure once.
pub fn assemble(readings: Readings) -> Vec<MetricFamily> {
    let passed = match readings.metrics {
        Ok(passed) => passed,
        Err(reason) => {
            wasmon_sdk::log::warn(&format!("etcd_endpoint_up 0: {reason}"));
            return vec![metrics::up(false)];
        }
    };
    let mut extra = vec![metrics::up(true)];
    match readings.health {
        Some(Ok(healthy)) => extra.push(metrics::health(healthy)),
        Some(Err(reason)) => {
            wasmon_sdk::log::warn(&format!("etcd_endpoint_health 0: {reason}"));
            extra.push(metrics::health(false));
        }
        None => {}
    }
    match readings.status {
        Some(Ok(status)) => extra.extend(metrics::status(&status)),
        Some(Err(reason)) => wasmon_sdk::log::warn(&format!("no etcd_endpoint status families: {reason}")),
        None => {}
    }
    // Should a future etcd export one of these names itself, its own family wins.
    extra.retain(|family| !passed.contains(&family.name));
    let mut families = passed.into_families();
    families.extend(extra);
    families
}

/// An HTTP failure the job or the plugin caused is a scrape error; etcd's are values.
fn plugin_failure(e: &HttpError) -> Option<PluginError> {
    matches!(e.kind(), HttpErrorKind::Denied | HttpErrorKind::InvalidRequest).then(|| e.to_plugin_error())
}

fn read_metrics(passed: Result<PassedThrough, HttpError>) -> Result<Result<PassedThrough, String>, PluginError> {
    match passed {
        Ok(passed) => Ok(Ok(passed)),
        Err(e) => plugin_failure(&e).map_or_else(|| Ok(Err(e.to_string())), Err),
    }
}

fn read_health(response: Result<http::Response, HttpError>) -> Result<bool, String> {
    let response = response.map_err(|e| e.to_string())?;
    let url = &response.url;
    // An unhealthy etcd answers 503 with {"health":"false"}: read the body whatever the status.
    let body = response.text().map_err(|e| e.to_string())?;
    match parse_health(body) {
        Ok(healthy) if response.is_success() || !healthy => Ok(healthy),
        Ok(_) => Err(format!("GET {url}: HTTP status {} with a healthy body", response.status)),
        Err(e) => Err(format!("GET {url}: HTTP status {}: {e}", response.status)),
    }
}

fn read_status(response: Result<http::Response, HttpError>) -> Result<Status, String> {
    let response = response.and_then(http::Response::error_for_status).map_err(|e| e.to_string())?;
    let body = response.text().map_err(|e| e.to_string())?;
    parse_status(body).map_err(|e| format!("POST {}: {e}", response.url))
}
