//! Recording rules: the result is stored under the `record` name with the
//! rule's labels applied (Prometheus' `rules/recording.go`).

use std::collections::BTreeMap;

use wasmon_query::Engine;
use wasmon_storage::{Labels, METRIC_NAME, Querier};

use super::group::{RuleStatus, query_samples};
use super::rules::RuleSpec;

#[derive(Debug, Clone)]
pub struct RecordingRule {
    pub spec: RuleSpec,
    /// The expression as Prometheus prints it (API `query`).
    pub query: String,
    pub status: RuleStatus,
}

impl RecordingRule {
    pub fn new(spec: RuleSpec) -> Self {
        let query = wasmon_query::format_expr(&spec.expr).unwrap_or_else(|_| spec.expr.clone());
        Self { spec, query, status: RuleStatus::default() }
    }

    /// The samples to store for this evaluation at `ts` ms.
    pub fn eval(&self, ts: i64, q: &dyn Querier, engine: &Engine, limit: usize) -> Result<Vec<(Labels, f64)>, String> {
        let samples = query_samples(engine, q, &self.spec.expr, ts)?;
        let mut out = Vec::with_capacity(samples.len());
        for (labels, v) in samples {
            let mut l = labels.with(METRIC_NAME, &self.spec.name);
            for (k, val) in &self.spec.labels {
                l = l.with(k, val);
            }
            out.push((l, v));
        }
        let mut seen = std::collections::HashSet::with_capacity(out.len());
        if !out.iter().all(|(l, _)| seen.insert(l.clone())) {
            return Err("vector contains metrics with the same labelset after applying rule labels".into());
        }
        if limit > 0 && out.len() > limit {
            return Err(format!("exceeded limit of {limit} with {} series", out.len()));
        }
        Ok(out)
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.spec.labels
    }
}
