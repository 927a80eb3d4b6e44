//! PromQL evaluation: expressions parsed by the `promql-parser` crate,
//! evaluated over any [`wasmon_storage::Querier`] with the semantics of
//! Prometheus 2.42 (lookback, staleness, extrapolation, vector matching).

mod aggregate;
mod binary;
mod engine;
mod error;
mod eval;
mod functions;
mod range_fns;
mod value;

pub use engine::{Engine, EngineOptions, MAX_POINTS_PER_SERIES, check_expr, format_expr};
pub use error::QueryError;
pub use value::{Value, VectorSample, format_float_go, go_quote};
