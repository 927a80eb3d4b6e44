//! The families of nginx-prometheus-exporter 0.11 for open-source nginx: names, types and
//! HELP texts as it serves them, in its (alphabetical) order.

use crate::parse::StubStatus;
use wasmon_sdk::{Family, MetricFamily};

/// `nginx_up`'s HELP, shared with the families of a failed scrape.
const UP_HELP: &str = "Status of the last metric scrape";

/// The families for one scrape: all eight when `stats` is known, only `nginx_up 0` when
/// nginx could not be read (the exporter does the same).
pub fn families(stats: Option<&StubStatus>) -> Vec<MetricFamily> {
    let Some(s) = stats else {
        return vec![single(Family::gauge("nginx_up", UP_HELP), 0.0)];
    };
    vec![
        single(Family::counter("nginx_connections_accepted", "Accepted client connections"), s.accepted as f64),
        single(Family::gauge("nginx_connections_active", "Active client connections"), s.active as f64),
        single(Family::counter("nginx_connections_handled", "Handled client connections"), s.handled as f64),
        single(
            Family::gauge("nginx_connections_reading", "Connections where NGINX is reading the request header"),
            s.reading as f64,
        ),
        single(Family::gauge("nginx_connections_waiting", "Idle client connections"), s.waiting as f64),
        single(
            Family::gauge(
                "nginx_connections_writing",
                "Connections where NGINX is writing the response back to the client",
            ),
            s.writing as f64,
        ),
        single(Family::counter("nginx_http_requests_total", "Total http requests"), s.requests as f64),
        single(Family::gauge("nginx_up", UP_HELP), 1.0),
    ]
}

/// A family with one unlabelled sample.
fn single(mut family: Family, value: f64) -> MetricFamily {
    family.sample(&[], value);
    family.build()
}
