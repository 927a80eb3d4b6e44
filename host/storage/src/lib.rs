//! wasmon's embedded time-series store: samples go to a write-ahead log, then
//! to per-series XOR chunks in the head, then to immutable blocks on disk.
//! The types shared with the query engine (labels, matchers, samples, the
//! `Querier` trait) live here too, so the engine depends only on this crate.

pub mod block;
mod bstream;
pub mod chunk;
pub mod db;
mod encoding;
pub mod head;
pub mod index;
pub mod labels;
pub mod matcher;
pub mod retention;
pub mod testing;
pub mod wal;

pub use db::{AppendReport, Appender, BlockInfo, Db, DbOptions, DbStats, MaintenanceReport, StorageError, WalHold};
pub use labels::{Label, Labels, METRIC_NAME, is_valid_label_name, is_valid_metric_name};
pub use matcher::{MatchOp, Matcher, MatcherError, matches_all};

/// The NaN Prometheus writes as a staleness marker (`value.StaleNaN`).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// A staleness marker as an `f64`.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// True for the staleness marker only, not for other NaNs.
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// One sample: milliseconds since the Unix epoch and a float value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub t: i64,
    pub v: f64,
}

/// One series with its samples in a time range, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSamples {
    pub labels: Labels,
    pub samples: Vec<Sample>,
}

/// Read access to stored series, as the query engine and the HTTP API need it.
///
/// Time bounds are inclusive milliseconds. Stale markers are returned as
/// samples (the engine needs them for Prometheus' staleness rules); callers
/// that show raw data decide themselves whether to hide them.
pub trait Querier: Send + Sync {
    /// Every series matching all `matchers` with at least one sample in
    /// `[mint, maxt]`, and those samples. Order of series is unspecified.
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<SeriesSamples>;

    /// Label sets of matching series that have samples in `[mint, maxt]`
    /// (what `/api/v1/series` lists), without reading samples where avoidable.
    fn series(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<Labels> {
        self.select(matchers, mint, maxt).into_iter().map(|s| s.labels).collect()
    }

    /// Sorted, distinct label names of matching series (all series when
    /// `matchers` is empty).
    fn label_names(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<String> {
        let mut names: Vec<String> = self
            .series(matchers, mint, maxt)
            .iter()
            .flat_map(|l| l.iter().map(|l| l.name.clone()).collect::<Vec<_>>())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Sorted, distinct values of label `name` among matching series.
    fn label_values(&self, name: &str, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<String> {
        let mut values: Vec<String> =
            self.series(matchers, mint, maxt).iter().filter_map(|l| l.get(name).map(str::to_owned)).collect();
        values.sort();
        values.dedup();
        values
    }
}
