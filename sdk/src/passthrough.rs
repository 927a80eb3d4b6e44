//! Pass a Prometheus text endpoint of the scrape target through unchanged, without parsing
//! it in the plugin.
//!
//! For a plugin whose target already exports its own metrics next to what the plugin adds
//! (etcd's `/metrics`, thousands of lines): inside wasm, [`scrape`] asks the host to fetch the
//! endpoint, parse it natively and put its families in front of what `collect` returns, so
//! the text never crosses into the sandbox and the families never cross back. The plugin gets
//! only their names, to avoid returning one of them itself. The request follows the rules of
//! [`http`](crate::http): only with the job's `http` capability, only to the scrape target,
//! with the job's scheme, TLS settings, credentials and scrape timeout.
//!
//! In native builds (tests) the same call fetches the endpoint with the SDK's own client and
//! parses it with [`text::parse`](crate::text::parse), and the families are held by the
//! [`PassedThrough`] itself; [`PassedThrough::into_families`] makes both builds return the same.
//!
//! ```no_run
//! use wasmon_sdk::{Family, MetricFamily, PluginError, Target, passthrough};
//!
//! fn collect(target: &Target) -> Result<Vec<MetricFamily>, PluginError> {
//!     let theirs = passthrough::scrape(target, "/metrics")?;
//!     let mut up = Family::gauge("myapp_exporter_up", "Whether /metrics could be read.");
//!     up.sample(&[], 1.0);
//!     // Should the target export a name of ours itself, its own family wins.
//!     let mine: Vec<MetricFamily> = vec![up.build()].into_iter().filter(|f| !theirs.contains(&f.name)).collect();
//!     let mut families = theirs.into_families(); // empty inside wasm: the host holds them
//!     families.extend(mine);
//!     Ok(families)
//! }
//! ```

use crate::MetricFamily;
use crate::http::HttpError;

/// Families passed through by [`scrape`] (or built with [`PassedThrough::from_families`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PassedThrough {
    names: Vec<String>,
    families: Vec<MetricFamily>,
}

impl PassedThrough {
    /// Families the plugin holds itself and returns with [`into_families`](Self::into_families),
    /// as a native [`scrape`] gives them (for tests with fixtures).
    pub fn from_families(families: Vec<MetricFamily>) -> Self {
        Self { names: families.iter().map(|f| f.name.clone()).collect(), families }
    }

    /// The names of the families, in the endpoint's order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Whether a family `name` was passed through.
    pub fn contains(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    /// The families the plugin must return itself, at the front of its result: none after a
    /// [`scrape`] inside wasm (the host adds them), all of them natively.
    pub fn into_families(self) -> Vec<MetricFamily> {
        self.families
    }
}

/// `GET path` on the scrape target, passed through as its families (see the module docs).
/// Errors read as [`http`](crate::http)'s: `GET http://target/path: what went wrong`; a
/// non-2xx answer is [`HttpErrorKind::Status`](crate::http::HttpErrorKind::Status), a body
/// that is not Prometheus text (or OpenMetrics) [`HttpErrorKind::InvalidData`](crate::http::HttpErrorKind::InvalidData).
pub fn scrape(target: &crate::Target, path: &str) -> Result<PassedThrough, HttpError> {
    let url = crate::http::target_url(target, path);
    #[cfg(target_arch = "wasm32")]
    {
        use crate::bindings::wasmon::plugin::passthrough::{ScrapeError, scrape as host_scrape};
        use crate::http::HttpErrorKind as K;
        let path = if path.starts_with('/') { path.to_string() } else { format!("/{path}") };
        let names = host_scrape(&path).map_err(|e| {
            let (kind, code, detail) = match e {
                ScrapeError::Denied(m) => (K::Denied, Some("HTTP-request-denied"), m),
                ScrapeError::InvalidRequest(m) => (K::InvalidRequest, None, m),
                ScrapeError::Unavailable(m) => (K::Unreachable, None, m),
                ScrapeError::Status((status, excerpt)) => (K::Status(status), None, status_detail(status, &excerpt)),
                ScrapeError::InvalidData(m) => (K::InvalidData, None, m),
            };
            HttpError::get_failed(&url, kind, code, detail)
        })?;
        Ok(PassedThrough { names, families: Vec::new() })
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let response = crate::http::get(&url)?.error_for_status()?;
        let families = crate::text::parse(response.text()?).map_err(|e| {
            HttpError::get_failed(
                &url,
                crate::http::HttpErrorKind::InvalidData,
                None,
                format!("not Prometheus text: {e}"),
            )
        })?;
        Ok(PassedThrough::from_families(families))
    }
}

/// What [`Response::error_for_status`](crate::http::Response::error_for_status) says.
#[cfg(target_arch = "wasm32")]
fn status_detail(status: u16, excerpt: &str) -> String {
    if excerpt.is_empty() { format!("HTTP status {status}") } else { format!("HTTP status {status}: {excerpt:?}") }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fixture_families_come_back_with_their_names() {
        let families = crate::text::parse("# TYPE a gauge\na 1\n# TYPE b gauge\nb 2\n").unwrap();
        let passed = PassedThrough::from_families(families.clone());
        assert_eq!(passed.names(), ["a", "b"]);
        assert!(passed.contains("b") && !passed.contains("c"));
        assert_eq!(passed.into_families(), families);
    }

    #[test]
    fn an_unreachable_target_is_an_error_that_names_the_request() {
        let target = crate::Target::named("127.0.0.1:1");
        let err = scrape(&target, "/metrics").unwrap_err();
        assert!(err.to_string().starts_with("GET http://127.0.0.1:1/metrics: "), "{err}");
    }
}
