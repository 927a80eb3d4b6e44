//! Request parameters of the Prometheus HTTP API: read from the query string
//! and, for `POST` with a form body, from the body too (Grafana posts forms),
//! with Prometheus' formats for times and durations.

use axum::http::{HeaderMap, Method, header};

/// The earliest and latest times Prometheus accepts as "unbounded".
pub const MIN_TIME_MS: i64 = i64::MIN / 2;
pub const MAX_TIME_MS: i64 = i64::MAX / 2;

/// Every `name=value` pair of a request, in order; names may repeat (`match[]`).
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn from_request(method: &Method, headers: &HeaderMap, query: Option<&str>, body: &[u8]) -> Self {
        let mut pairs: Vec<(String, String)> = query
            .map(|q| form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
            .unwrap_or_default();
        let is_form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if method == Method::POST && is_form {
            pairs.extend(form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())));
        }
        Self(pairs)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }

    /// A time parameter, or `default` when absent.
    pub fn time(&self, name: &str, default: i64) -> Result<i64, String> {
        match self.get(name) {
            None | Some("") => Ok(default),
            Some(text) => parse_time(text).map_err(|e| format!("invalid parameter \"{name}\": {e}")),
        }
    }
}

/// A time as Prometheus accepts it: unix seconds (with fraction) or RFC 3339.
pub fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(seconds) = text.parse::<f64>() {
        if !seconds.is_finite() {
            return Err(format!("cannot parse {text:?} to a valid timestamp"));
        }
        // Round to milliseconds like Prometheus (it keeps ns, but storage is ms).
        let ms = (seconds * 1000.0).round();
        if ms < MIN_TIME_MS as f64 || ms > MAX_TIME_MS as f64 {
            return Err(format!("cannot parse {text:?} to a valid timestamp"));
        }
        return Ok(ms as i64);
    }
    // Prometheus' clients send these for "no bound".
    match text {
        "0001-01-01T00:00:00Z" | "-292273086-05-16T16:47:06Z" => return Ok(MIN_TIME_MS),
        "292277025-08-18T07:12:54.999999999Z" => return Ok(MAX_TIME_MS),
        _ => {}
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|_| format!("cannot parse {text:?} to a valid timestamp"))
}

/// A duration as Prometheus accepts it in the API: float seconds or `5m`.
pub fn parse_duration_ms(text: &str) -> Result<i64, String> {
    if let Ok(seconds) = text.parse::<f64>() {
        let ms = (seconds * 1000.0).round();
        if !ms.is_finite() || ms.abs() > MAX_TIME_MS as f64 {
            return Err(format!("cannot parse {text:?} to a valid duration. It overflows int64"));
        }
        return Ok(ms as i64);
    }
    crate::config::PromDuration::parse(text)
        .map(|d| d.0.as_millis() as i64)
        .map_err(|_| format!("cannot parse {text:?} to a valid duration"))
}

/// Bodies bigger than this are refused: a form of selectors is far smaller.
const MAX_FORM_BYTES: usize = 8 << 20;

/// Handlers take `Params` as an extractor: query string plus form body.
impl<S: Send + Sync> axum::extract::FromRequest<S> for Params {
    type Rejection = axum::response::Response;

    async fn from_request(req: axum::extract::Request, _state: &S) -> Result<Self, Self::Rejection> {
        use axum::response::IntoResponse;
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES).await.map_err(|e| {
            (axum::http::StatusCode::BAD_REQUEST, format!("cannot read the request body: {e}")).into_response()
        })?;
        Ok(Self::from_request(&parts.method, &parts.headers, parts.uri.query(), &bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_both_formats() {
        assert_eq!(parse_time("1435781451.781").unwrap(), 1_435_781_451_781);
        assert_eq!(parse_time("2015-07-01T20:10:51.781Z").unwrap(), 1_435_781_451_781);
        assert_eq!(parse_time("2015-07-01T22:10:51.781+02:00").unwrap(), 1_435_781_451_781);
        assert!(parse_time("yesterday").unwrap_err().contains("yesterday"));
        assert!(parse_time("NaN").is_err());
    }

    #[test]
    fn durations_in_both_formats() {
        assert_eq!(parse_duration_ms("15").unwrap(), 15_000);
        assert_eq!(parse_duration_ms("0.5").unwrap(), 500);
        assert_eq!(parse_duration_ms("1m30s").unwrap(), 90_000);
        assert!(parse_duration_ms("fast").is_err());
    }

    #[test]
    fn form_bodies_count_only_for_post_forms() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, "application/x-www-form-urlencoded".parse().unwrap());
        let p = Params::from_request(&Method::POST, &headers, Some("match[]=up"), b"match[]=a%7Bb%3D%22c%22%7D");
        assert_eq!(p.all("match[]"), vec!["up", "a{b=\"c\"}"]);
        let p = Params::from_request(&Method::GET, &headers, Some("query=1"), b"query=2");
        assert_eq!(p.get("query"), Some("1"));
    }
}
