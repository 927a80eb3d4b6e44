//! Query results (public) and the step-major values the evaluator passes
//! between nodes (crate-internal).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use wasmon_storage::{Labels, METRIC_NAME, Sample as Point, SeriesSamples};

use crate::error::{QueryError, Result};

/// One element of an instant vector result.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorSample {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
}

/// A query result, shaped like Prometheus' `resultType`s.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar { t: i64, v: f64 },
    String { t: i64, v: String },
    Vector(Vec<VectorSample>),
    Matrix(Vec<SeriesSamples>),
}

impl Value {
    /// Prometheus' name for the result type (`resultType` in the API).
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Scalar { .. } => "scalar",
            Self::String { .. } => "string",
            Self::Vector(_) => "vector",
            Self::Matrix(_) => "matrix",
        }
    }
}

/// Labels are shared between steps: a series keeps one allocation however
/// many steps it appears in.
pub(crate) type Metric = Arc<Labels>;

#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub metric: Metric,
    pub v: f64,
}

pub(crate) type Vector = Vec<Sample>;

#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub metric: Metric,
    pub points: Vec<Point>,
}

/// What evaluating a node over the evaluator's steps yields. Scalars and
/// vectors hold one entry per step; matrices only occur at the top of an
/// instant query (a range selector or subquery).
#[derive(Debug, Clone)]
pub(crate) enum Evaluated {
    Scalar(Vec<f64>),
    Vector(Vec<Vector>),
    Matrix(Vec<Series>),
    String(String),
}

impl Evaluated {
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Scalar(_) => "scalar",
            Self::Vector(_) => "instant vector",
            Self::Matrix(_) => "range vector",
            Self::String(_) => "string",
        }
    }

    pub fn into_vector(self) -> Result<Vec<Vector>> {
        match self {
            Self::Vector(v) => Ok(v),
            other => Err(QueryError::exec(format!("expected instant vector, got {}", other.type_name()))),
        }
    }

    pub fn into_scalar(self) -> Result<Vec<f64>> {
        match self {
            Self::Scalar(v) => Ok(v),
            other => Err(QueryError::exec(format!("expected scalar, got {}", other.type_name()))),
        }
    }

    pub fn into_string(self) -> Result<String> {
        match self {
            Self::String(v) => Ok(v),
            other => Err(QueryError::exec(format!("expected string, got {}", other.type_name()))),
        }
    }

    /// Total number of points held, for the sample limit.
    pub fn point_count(&self) -> usize {
        match self {
            Self::Scalar(v) => v.len(),
            Self::Vector(v) => v.iter().map(Vec::len).sum(),
            Self::Matrix(m) => m.iter().map(|s| s.points.len()).sum(),
            Self::String(_) => 1,
        }
    }
}

pub(crate) fn drop_metric_name(l: &Labels) -> Labels {
    if l.get(METRIC_NAME).is_some() { l.without(&[METRIC_NAME]) } else { l.clone() }
}

/// Memoises a label transformation per input label set. Inputs are keyed by
/// allocation address, which is stable because the inputs outlive the cache.
#[derive(Default)]
pub(crate) struct LabelCache {
    map: HashMap<usize, Metric>,
}

impl LabelCache {
    pub fn get(&mut self, m: &Metric, f: impl FnOnce(&Labels) -> Labels) -> Metric {
        let key = Arc::as_ptr(m) as usize;
        self.map.entry(key).or_insert_with(|| Arc::new(f(m))).clone()
    }

    pub fn drop_name(&mut self, m: &Metric) -> Metric {
        if m.get(METRIC_NAME).is_none() {
            return m.clone();
        }
        self.get(m, drop_metric_name)
    }
}

pub(crate) const DUPLICATE_LABELSET: &str = "vector cannot contain metrics with the same labelset";

/// Prometheus rejects any step result holding two samples with one label set.
pub(crate) fn check_duplicates(v: &Vector) -> Result<()> {
    if v.len() < 2 {
        return Ok(());
    }
    if v.len() == 2 {
        return if v[0].metric == v[1].metric { Err(QueryError::exec(DUPLICATE_LABELSET)) } else { Ok(()) };
    }
    let mut seen = HashSet::with_capacity(v.len());
    for s in v {
        if !seen.insert(&*s.metric) {
            return Err(QueryError::exec(DUPLICATE_LABELSET));
        }
    }
    Ok(())
}

/// Transposes step-major vectors into series (first-appearance order), with
/// point timestamps `start + i * interval`.
pub(crate) fn steps_to_series(steps: Vec<Vector>, start: i64, interval: i64) -> Vec<Series> {
    let mut index: HashMap<Metric, usize> = HashMap::new();
    let mut out: Vec<Series> = Vec::new();
    for (i, vec) in steps.into_iter().enumerate() {
        let t = start + i as i64 * interval;
        for s in vec {
            let idx = match index.get(&s.metric) {
                Some(&idx) => idx,
                None => {
                    index.insert(s.metric.clone(), out.len());
                    out.push(Series { metric: s.metric.clone(), points: Vec::new() });
                    out.len() - 1
                }
            };
            out[idx].points.push(Point { t, v: s.v });
        }
    }
    out
}

/// Label sets formatted as Prometheus' `labels.Labels.String()` does (name
/// included as `__name__`), for error messages.
pub(crate) fn go_labels_string(l: &Labels) -> String {
    let parts: Vec<String> = l.iter().map(|l| format!("{}={}", l.name, go_quote(&l.value))).collect();
    format!("{{{}}}", parts.join(", "))
}

/// Go's `strconv.Quote`, as Prometheus prints label values in messages.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`, which `count_values` uses for
/// label values.
pub fn format_float_go(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// Go's `math.Max`: NaN wins, and +0 beats -0.
pub(crate) fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() { b } else { a }
    } else if a > b {
        a
    } else {
        b
    }
}

/// Go's `math.Min`: NaN wins, and -0 beats +0.
pub(crate) fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() { a } else { b }
    } else if a < b {
        a
    } else {
        b
    }
}

/// Neumaier's compensated summation step, as Prometheus' `kahanSumInc`.
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if sum.abs() >= inc.abs() { c + ((sum - t) + inc) } else { c + ((inc - t) + sum) };
    (t, c)
}
