//! The public entry points: parse, check, evaluate, shape the result.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use promql_parser::parser::Expr;
use promql_parser::parser::token::{T_LIMIT_RATIO, T_LIMITK};
use promql_parser::parser::value::ValueType;
use wasmon_storage::{Querier, SeriesSamples};

use crate::error::{QueryError, Result as EvalResult};
use crate::eval::Evaluator;
use crate::value::{Evaluated, Value, VectorSample, steps_to_series};

/// Prometheus' API refuses range queries with more points per series.
pub const MAX_POINTS_PER_SERIES: i64 = 11_000;

#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample (Prometheus'
    /// `--query.lookback-delta`). Zero means the default of five minutes.
    pub lookback_delta: Duration,
    /// Upper bound on samples held by one query.
    pub max_samples: usize,
    /// Wall-clock limit for one query; zero disables it.
    pub timeout: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self { lookback_delta: Duration::from_secs(300), max_samples: 50_000_000, timeout: Duration::from_secs(120) }
    }
}

#[derive(Debug, Clone)]
pub struct Engine {
    opts: EngineOptions,
}

impl Engine {
    pub fn new(opts: EngineOptions) -> Self {
        Self { opts }
    }

    /// Evaluates `query` at `t_ms`, like `/api/v1/query`.
    pub fn instant(&self, q: &dyn Querier, query: &str, t_ms: i64) -> Result<Value, QueryError> {
        let expr = parse(query)?;
        let ev = self.evaluator(q, t_ms, t_ms, 1);
        Ok(match ev.eval(&expr)? {
            Evaluated::Scalar(v) => Value::Scalar { t: t_ms, v: v.first().copied().unwrap_or(f64::NAN) },
            Evaluated::String(v) => Value::String { t: t_ms, v },
            Evaluated::Vector(steps) => Value::Vector(
                steps
                    .into_iter()
                    .next()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|s| VectorSample { labels: (*s.metric).clone(), t: t_ms, v: s.v })
                    .collect(),
            ),
            Evaluated::Matrix(series) => Value::Matrix(
                series.into_iter().map(|s| SeriesSamples { labels: (*s.metric).clone(), samples: s.points }).collect(),
            ),
        })
    }

    /// Evaluates `query` at `start_ms, start_ms + step_ms, ... <= end_ms`,
    /// like `/api/v1/query_range`. Always returns a [`Value::Matrix`] sorted
    /// by labels.
    pub fn range(
        &self,
        q: &dyn Querier,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Value, QueryError> {
        if end_ms < start_ms {
            return Err(QueryError::InvalidParam("end timestamp must not be before start time".into()));
        }
        if step_ms <= 0 {
            return Err(QueryError::InvalidParam(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        if end_ms.checked_sub(start_ms).is_none_or(|d| d / step_ms > MAX_POINTS_PER_SERIES) {
            return Err(QueryError::InvalidParam(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"
                    .into(),
            ));
        }
        let expr = parse(query)?;
        match expr.value_type() {
            ValueType::Scalar | ValueType::Vector => {}
            other => {
                let name = if other == ValueType::Matrix { "range vector" } else { "string" };
                return Err(QueryError::Parse(format!(
                    "invalid expression type \"{name}\" for range query, must be Scalar or instant Vector"
                )));
            }
        }
        let ev = self.evaluator(q, start_ms, end_ms, step_ms);
        let steps = match ev.eval(&expr)? {
            Evaluated::Vector(v) => v,
            Evaluated::Scalar(v) => {
                let metric = std::sync::Arc::new(wasmon_storage::Labels::default());
                v.into_iter().map(|v| vec![crate::value::Sample { metric: metric.clone(), v }]).collect()
            }
            other => {
                return Err(QueryError::exec(format!("unexpected {} result for range query", other.type_name())));
            }
        };
        let mut series = steps_to_series(steps, start_ms, step_ms);
        series.sort_by(|a, b| a.metric.cmp(&b.metric));
        Ok(Value::Matrix(
            series.into_iter().map(|s| SeriesSamples { labels: (*s.metric).clone(), samples: s.points }).collect(),
        ))
    }

    fn evaluator<'a>(&self, q: &'a dyn Querier, start: i64, end: i64, interval: i64) -> Evaluator<'a> {
        let lookback = if self.opts.lookback_delta.is_zero() {
            300_000
        } else {
            crate::eval::duration_ms(self.opts.lookback_delta)
        };
        Evaluator {
            querier: q,
            start,
            end,
            interval,
            query_start: start,
            query_end: end,
            lookback,
            max_samples: self.opts.max_samples,
            deadline: (!self.opts.timeout.is_zero()).then(|| Instant::now() + self.opts.timeout),
        }
    }
}

/// Functions Prometheus 2.42 knows. The parser crate follows Prometheus 3
/// and accepts more; those are rejected as 2.42 would.
const FUNCTIONS_2_42: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "avg_over_time",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "cos",
    "cosh",
    "count_over_time",
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "deg",
    "delta",
    "deriv",
    "exp",
    "floor",
    "histogram_count",
    "histogram_fraction",
    "histogram_quantile",
    "histogram_sum",
    "holt_winters",
    "hour",
    "idelta",
    "increase",
    "irate",
    "label_join",
    "label_replace",
    "last_over_time",
    "ln",
    "log10",
    "log2",
    "max_over_time",
    "min_over_time",
    "minute",
    "month",
    "pi",
    "predict_linear",
    "present_over_time",
    "quantile_over_time",
    "rad",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sin",
    "sinh",
    "sort",
    "sort_desc",
    "sqrt",
    "stddev_over_time",
    "stdvar_over_time",
    "sum_over_time",
    "tan",
    "tanh",
    "time",
    "timestamp",
    "vector",
    "year",
];

/// The parser crate knows Prometheus 2's `holt_winters` only under its
/// Prometheus 3 name.
const HOLT_WINTERS: &str = "holt_winters";
const HOLT_WINTERS_NEW: &str = "double_exponential_smoothing";

/// Checks that `query` is PromQL that Prometheus 2.42 accepts, without
/// evaluating it (what `promtool check rules` needs).
pub fn check_expr(query: &str) -> Result<(), QueryError> {
    parse(query).map(|_| ())
}

/// `query` re-printed from its syntax tree, as Prometheus shows rule
/// expressions (`expr.String()` in the rules API and alert links).
pub fn format_expr(query: &str) -> Result<String, QueryError> {
    let (_, renamed) = rename_holt_winters(query)?;
    let text = parse(query)?.to_string();
    Ok(if renamed { text.replace(HOLT_WINTERS_NEW, HOLT_WINTERS) } else { text })
}

pub(crate) fn parse(query: &str) -> EvalResult<Expr> {
    let (text, renamed) = rename_holt_winters(query)?;
    // The parser is third-party code; a panic on odd input must not take the
    // agent down.
    let parsed = catch_unwind(AssertUnwindSafe(|| promql_parser::parser::parse(&text)))
        .map_err(|_| QueryError::Parse("invalid promql query".into()))?;
    let expr = parsed.map_err(|e| {
        let e = if renamed { e.replace(HOLT_WINTERS_NEW, HOLT_WINTERS) } else { e };
        QueryError::Parse(e)
    })?;
    check_2_42(&expr)?;
    Ok(expr)
}

/// Rewrites `holt_winters(` to the parser's name, outside string literals and
/// comments. Rejects the new name, which 2.42 does not know.
fn rename_holt_winters(q: &str) -> EvalResult<(String, bool)> {
    let b = q.as_bytes();
    let mut out = String::with_capacity(q.len());
    let mut renamed = false;
    let mut i = 0;
    let mut last = 0;
    while i < b.len() {
        match b[i] {
            quote @ (b'"' | b'\'' | b'`') => {
                i += 1;
                while i < b.len() && b[i] != quote {
                    if b[i] == b'\\' && quote != b'`' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
                    i += 1;
                }
                let word = &q[start..i];
                let next = q[i..].trim_start();
                if next.starts_with('(') {
                    if word == HOLT_WINTERS {
                        out.push_str(&q[last..start]);
                        out.push_str(HOLT_WINTERS_NEW);
                        last = i;
                        renamed = true;
                    } else if word == HOLT_WINTERS_NEW {
                        return Err(unknown_function(word));
                    }
                }
            }
            _ => i += 1,
        }
    }
    out.push_str(q.get(last..).unwrap_or(""));
    Ok((out, renamed))
}

fn unknown_function(name: &str) -> QueryError {
    QueryError::Parse(format!("unknown function with name {name:?}"))
}

/// Rejects what the parser accepts but Prometheus 2.42 does not.
fn check_2_42(e: &Expr) -> EvalResult<()> {
    match e {
        Expr::Aggregate(a) => {
            if matches!(a.op.id(), T_LIMITK | T_LIMIT_RATIO) {
                return Err(unknown_function(&a.op.to_string()));
            }
            if let Some(p) = &a.param {
                check_2_42(p)?;
            }
            check_2_42(&a.expr)
        }
        Expr::Unary(u) => check_2_42(&u.expr),
        Expr::Binary(b) => {
            if let Some(m) = &b.modifier
                && (m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some())
            {
                return Err(QueryError::Parse("fill modifiers are not supported".into()));
            }
            check_2_42(&b.lhs)?;
            check_2_42(&b.rhs)
        }
        Expr::Paren(p) => check_2_42(&p.expr),
        Expr::Subquery(s) => check_2_42(&s.expr),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => Ok(()),
        Expr::VectorSelector(vs) => check_selector(vs),
        Expr::MatrixSelector(ms) => check_selector(&ms.vs),
        Expr::Call(c) => {
            let name = if c.func.name == HOLT_WINTERS_NEW { HOLT_WINTERS } else { c.func.name };
            if !FUNCTIONS_2_42.contains(&name) {
                return Err(unknown_function(name));
            }
            c.args.args.iter().try_for_each(|a| check_2_42(a))
        }
        Expr::Extension(_) => Err(QueryError::Parse("unsupported expression".into())),
    }
}

fn check_selector(vs: &promql_parser::parser::VectorSelector) -> EvalResult<()> {
    if vs.matchers.or_matchers.is_empty() {
        Ok(())
    } else {
        Err(QueryError::Parse("\"or\" in label matchers is not supported".into()))
    }
}
