//! The metrics counted over every parsed line, kept for the instance's lifetime.

use std::collections::BTreeMap;
use wasmon_sdk::{Family, MetricFamily};

/// Default upper bounds of `nginx_http_response_size_bytes`: powers of ten from 100 B
/// to 100 MB.
pub fn default_buckets() -> Vec<f64> {
    vec![100.0, 1_000.0, 10_000.0, 100_000.0, 1_000_000.0, 10_000_000.0, 100_000_000.0]
}

/// HTTP methods counted under their own name; anything else is `OTHER`, so a scanner
/// sending random methods cannot create series without limit.
pub const KNOWN_METHODS: &[&str] = &[
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "CONNECT",
    "OPTIONS",
    "TRACE",
    "PATCH",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
];

/// The method label for `method`.
pub fn method_label(method: &str) -> &str {
    if KNOWN_METHODS.contains(&method) { method } else { "OTHER" }
}

/// A cumulative histogram with fixed upper bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    bounds: Vec<f64>,
    /// Observations per bucket (not cumulative); the last one is `+Inf`.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    /// `bounds` must be sorted, finite and distinct (the config checks).
    pub fn new(bounds: Vec<f64>) -> Self {
        let counts = vec![0; bounds.len() + 1];
        Self { bounds, counts, sum: 0.0, count: 0 }
    }

    pub fn observe(&mut self, value: f64) {
        let i = self.bounds.iter().position(|&b| value <= b).unwrap_or(self.bounds.len());
        self.counts[i] += 1;
        self.sum += value;
        self.count += 1;
    }

    /// `(upper bound, cumulative count)`, ending with `(+Inf, count)`.
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        let mut acc = 0;
        self.bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(&self.counts)
            .map(|(b, c)| {
                acc += c;
                (b, acc)
            })
            .collect()
    }

    pub fn sum(&self) -> f64 {
        self.sum
    }

    pub fn count(&self) -> u64 {
        self.count
    }
}

/// What the plugin counts.
#[derive(Debug, Clone, PartialEq)]
pub struct NginxMetrics {
    /// `(status, method label)` → requests.
    pub requests: BTreeMap<(String, String), u64>,
    pub response_size: Histogram,
    /// Records that did not have the configured format.
    pub unparsed: u64,
}

pub const REQUESTS_NAME: &str = "nginx_http_requests_total";
pub const REQUESTS_HELP: &str = "HTTP requests in the access log, by status and method.";
pub const SIZE_NAME: &str = "nginx_http_response_size_bytes";
pub const SIZE_HELP: &str = "Response body sizes in the access log ($body_bytes_sent).";
pub const UNPARSED_NAME: &str = "wasmon_logs_nginx_unparsed_records_total";
pub const UNPARSED_HELP: &str = "Records that did not have the configured access-log format.";

impl NginxMetrics {
    pub fn new(buckets: Vec<f64>) -> Self {
        Self { requests: BTreeMap::new(), response_size: Histogram::new(buckets), unparsed: 0 }
    }

    /// The families, for the world's `metrics` export.
    pub fn families(&self) -> Vec<MetricFamily> {
        let mut requests = Family::counter(REQUESTS_NAME, REQUESTS_HELP);
        for ((status, method), n) in &self.requests {
            requests.sample(&[("method", method), ("status", status)], *n as f64);
        }
        let mut size = Family::histogram(SIZE_NAME, SIZE_HELP).unit("bytes");
        let h = &self.response_size;
        size.histogram_sample(&[], &h.buckets(), h.sum(), h.count());
        let mut unparsed = Family::counter(UNPARSED_NAME, UNPARSED_HELP);
        unparsed.sample(&[], self.unparsed as f64);
        vec![requests.build(), size.build(), unparsed.build()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_inclusive() {
        let mut h = Histogram::new(vec![10.0, 100.0]);
        for v in [0.0, 10.0, 11.0, 100.0, 101.0, 5000.0] {
            h.observe(v);
        }
        assert_eq!(h.buckets(), vec![(10.0, 2), (100.0, 4), (f64::INFINITY, 6)]);
        assert_eq!((h.sum(), h.count()), (5222.0, 6));
    }

    #[test]
    fn methods_are_bounded() {
        assert_eq!(method_label("GET"), "GET");
        assert_eq!(method_label("get"), "OTHER");
        assert_eq!(method_label("\\x16\\x03\\x01"), "OTHER");
    }
}
