//! The evaluator: walks the AST once for all steps of a query, producing one
//! vector (or scalar) per step, the way Prometheus' `rangeEval` does.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use promql_parser::label::MatchOp as ParserOp;
use promql_parser::parser::{AtModifier, Expr, MatrixSelector, Offset, SubqueryExpr, VectorSelector};
use wasmon_storage::{Labels, METRIC_NAME, MatchOp, Matcher, Querier, Sample as Point, SeriesSamples, is_stale_nan};

use crate::error::{QueryError, Result};
use crate::value::{Evaluated, LabelCache, Metric, Sample, Series, Vector, steps_to_series};
use crate::{aggregate, binary, functions};

/// Prometheus 2.x treats range windows and the lookback window as closed on
/// the left (`[t - range, t]`); Prometheus 3 made them left-open
/// (`(t - range, t]`). The comparison target is 2.42, so this stays false.
pub(crate) const LEFT_OPEN_WINDOWS: bool = false;

/// Step of subqueries written without one (`x[5m:]`): Prometheus uses the
/// global evaluation interval, whose default is one minute.
pub(crate) const DEFAULT_SUBQUERY_STEP_MS: i64 = 60_000;

/// Functions whose result depends on the evaluation time even when their
/// arguments do not, so an `@` inside them does not make them step-invariant.
const AT_MODIFIER_UNSAFE_FUNCTIONS: &[&str] = &[
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "hour",
    "minute",
    "month",
    "year",
    "predict_linear",
    "time",
    "timestamp",
];

/// Durations beyond this are clamped so that timestamp arithmetic on
/// user-supplied ranges and offsets can never overflow.
const MAX_DURATION_MS: i64 = 1 << 50;

pub(crate) struct Evaluator<'a> {
    pub querier: &'a dyn Querier,
    /// First step, last step (inclusive) and step width, in ms.
    pub start: i64,
    pub end: i64,
    pub interval: i64,
    /// The outermost query's bounds, which `@ start()` / `@ end()` refer to.
    pub query_start: i64,
    pub query_end: i64,
    pub lookback: i64,
    pub max_samples: usize,
    pub deadline: Option<Instant>,
}

/// A range vector argument: series with their points and the window shape.
pub(crate) struct RangeSource {
    pub series: Vec<Series>,
    pub range: i64,
    pub offset: i64,
    pub at: Option<i64>,
}

impl<'a> Evaluator<'a> {
    pub fn steps(&self) -> usize {
        usize::try_from(self.end.saturating_sub(self.start) / self.interval + 1).unwrap_or(0)
    }

    pub fn ts(&self, step: usize) -> i64 {
        self.start + step as i64 * self.interval
    }

    pub fn check_deadline(&self) -> Result<()> {
        match self.deadline {
            Some(d) if Instant::now() > d => Err(QueryError::Timeout),
            _ => Ok(()),
        }
    }

    fn with_grid(&self, start: i64, end: i64, interval: i64) -> Evaluator<'a> {
        Evaluator {
            querier: self.querier,
            start,
            end,
            interval,
            query_start: self.query_start,
            query_end: self.query_end,
            lookback: self.lookback,
            max_samples: self.max_samples,
            deadline: self.deadline,
        }
    }

    pub fn eval(&self, expr: &Expr) -> Result<Evaluated> {
        self.check_deadline()?;
        let steps = self.steps();
        if steps > 1 && !matches!(expr, Expr::NumberLiteral(_) | Expr::StringLiteral(_)) && is_step_invariant(expr) {
            // Evaluate once and repeat: the result cannot change between steps.
            let once = self.with_grid(self.start, self.start, self.interval).eval(expr)?;
            return Ok(match once {
                Evaluated::Scalar(v) => Evaluated::Scalar(vec![v.first().copied().unwrap_or(f64::NAN); steps]),
                Evaluated::Vector(v) => Evaluated::Vector(vec![v.into_iter().next().unwrap_or_default(); steps]),
                other => other,
            });
        }
        let out = match expr {
            Expr::NumberLiteral(n) => Evaluated::Scalar(vec![n.val; steps]),
            Expr::StringLiteral(s) => Evaluated::String(s.val.clone()),
            Expr::Paren(p) => self.eval(&p.expr)?,
            Expr::Unary(u) => self.eval_unary(&u.expr)?,
            Expr::VectorSelector(vs) => Evaluated::Vector(self.eval_vector_selector(vs, |_, v| v, false)?),
            Expr::MatrixSelector(ms) => Evaluated::Matrix(self.eval_matrix_selector(ms)?),
            Expr::Subquery(sq) => {
                let mut series = self.eval_subquery(sq)?.series;
                series.sort_by(|a, b| a.metric.cmp(&b.metric));
                Evaluated::Matrix(series)
            }
            Expr::Aggregate(a) => aggregate::eval(self, a)?,
            Expr::Binary(b) => binary::eval(self, b)?,
            Expr::Call(c) => functions::eval_call(self, c)?,
            Expr::Extension(_) => return Err(QueryError::exec("extension expressions are not supported")),
        };
        if out.point_count() > self.max_samples {
            return Err(QueryError::TooManySamples);
        }
        Ok(out)
    }

    fn eval_unary(&self, inner: &Expr) -> Result<Evaluated> {
        Ok(match self.eval(inner)? {
            Evaluated::Scalar(v) => Evaluated::Scalar(v.into_iter().map(|x| -x).collect()),
            Evaluated::Vector(steps) => {
                let mut cache = LabelCache::default();
                let out: Vec<Vector> = steps
                    .iter()
                    .map(|vec| vec.iter().map(|s| Sample { metric: cache.drop_name(&s.metric), v: -s.v }).collect())
                    .collect();
                check_series_duplicates(steps.iter().zip(&out))?;
                Evaluated::Vector(out)
            }
            other => return Err(QueryError::exec(format!("unary minus is not defined on {}", other.type_name()))),
        })
    }

    pub fn at_time(&self, at: &Option<AtModifier>) -> Option<i64> {
        match at {
            None => None,
            Some(AtModifier::Start) => Some(self.query_start),
            Some(AtModifier::End) => Some(self.query_end),
            Some(AtModifier::At(t)) => Some(system_time_ms(*t)),
        }
    }

    /// Reference times of the first and last step, after `@` and `offset`.
    fn ref_bounds(&self, at: Option<i64>, offset: i64) -> (i64, i64) {
        match at {
            Some(a) => (a.saturating_sub(offset), a.saturating_sub(offset)),
            None => (self.start.saturating_sub(offset), self.end.saturating_sub(offset)),
        }
    }

    fn ref_time(&self, at: Option<i64>, offset: i64, step: usize) -> i64 {
        at.unwrap_or_else(|| self.ts(step)).saturating_sub(offset)
    }

    /// Matching series with samples in `[mint, maxt]`, sorted by labels as
    /// Prometheus' storage returns them.
    fn select(&self, vs: &VectorSelector, mint: i64, maxt: i64) -> Result<Vec<SeriesSamples>> {
        let matchers = storage_matchers(vs);
        let mut series = self.querier.select(&matchers, mint, maxt);
        self.check_deadline()?;
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        let mut total = 0usize;
        for s in &mut series {
            s.samples.retain(|p| p.t >= mint && p.t <= maxt);
            total += s.samples.len();
        }
        if total > self.max_samples {
            return Err(QueryError::TooManySamples);
        }
        Ok(series)
    }

    /// An instant vector selector at every step. `value` maps a visible
    /// sample's (timestamp, value) to the output value, which lets
    /// `timestamp()` see the real sample time.
    pub fn eval_vector_selector(
        &self,
        vs: &VectorSelector,
        value: impl Fn(i64, f64) -> f64,
        drop_name: bool,
    ) -> Result<Vec<Vector>> {
        let offset = offset_ms(&vs.offset);
        let at = self.at_time(&vs.at);
        let (ref_start, ref_end) = self.ref_bounds(at, offset);
        let series = self.select(vs, ref_start.saturating_sub(self.lookback), ref_end)?;
        let steps = self.steps();
        let mut out: Vec<Vector> = vec![Vec::new(); steps];
        for s in series {
            self.check_deadline()?;
            let labels = if drop_name { s.labels.without(&[METRIC_NAME]) } else { s.labels };
            let metric: Metric = Arc::new(labels);
            let mut idx = 0usize;
            for (step, vec) in out.iter_mut().enumerate() {
                let ref_t = self.ref_time(at, offset, step);
                while idx < s.samples.len() && s.samples[idx].t <= ref_t {
                    idx += 1;
                }
                let Some(p) = idx.checked_sub(1).and_then(|i| s.samples.get(i)) else { continue };
                let floor = ref_t.saturating_sub(self.lookback);
                if p.t < floor || (LEFT_OPEN_WINDOWS && p.t == floor) || is_stale_nan(p.v) {
                    continue;
                }
                vec.push(Sample { metric: metric.clone(), v: value(p.t, p.v) });
            }
        }
        Ok(out)
    }

    /// A range selector at the top of an instant query: raw samples.
    fn eval_matrix_selector(&self, ms: &MatrixSelector) -> Result<Vec<Series>> {
        let src = self.range_source_selector(ms)?;
        let ref_t = self.ref_time(src.at, src.offset, 0);
        let mint = ref_t.saturating_sub(src.range);
        Ok(src
            .series
            .into_iter()
            .filter_map(|mut s| {
                s.points.retain(|p| in_window(p.t, mint, ref_t));
                (!s.points.is_empty()).then_some(s)
            })
            .collect())
    }

    /// The range vector behind a range-function argument.
    pub fn range_source(&self, expr: &Expr) -> Result<RangeSource> {
        match unwrap_parens(expr) {
            Expr::MatrixSelector(ms) => self.range_source_selector(ms),
            Expr::Subquery(sq) => self.eval_subquery(sq),
            other => Err(QueryError::exec(format!("expected range vector, got {}", other.value_type()))),
        }
    }

    fn range_source_selector(&self, ms: &MatrixSelector) -> Result<RangeSource> {
        let range = duration_ms(ms.range);
        let offset = offset_ms(&ms.vs.offset);
        let at = self.at_time(&ms.vs.at);
        let (ref_start, ref_end) = self.ref_bounds(at, offset);
        let series = self
            .select(&ms.vs, ref_start.saturating_sub(range), ref_end)?
            .into_iter()
            .map(|s| Series {
                metric: Arc::new(s.labels),
                points: s.samples.into_iter().filter(|p| !is_stale_nan(p.v)).collect(),
            })
            .collect();
        Ok(RangeSource { series, range, offset, at })
    }

    /// Evaluates a subquery's inner expression on its own grid: steps aligned
    /// to multiples of the subquery step (absolute time), covering every
    /// window the outer steps will ask for.
    pub fn eval_subquery(&self, sq: &SubqueryExpr) -> Result<RangeSource> {
        let step = sq.step.map(duration_ms).unwrap_or(DEFAULT_SUBQUERY_STEP_MS);
        if step <= 0 {
            return Err(QueryError::exec("subquery step must be greater than zero"));
        }
        let range = duration_ms(sq.range);
        let offset = offset_ms(&sq.offset);
        let at = self.at_time(&sq.at);
        let (outer_start, outer_end) = match at {
            Some(a) => (a, a),
            None => (self.start, self.end),
        };
        let end = outer_end.saturating_sub(offset);
        let lower = outer_start.saturating_sub(offset).saturating_sub(range);
        let mut start = step * (lower / step);
        if start < lower {
            start = start.saturating_add(step);
        }
        if start > end {
            return Ok(RangeSource { series: Vec::new(), range, offset, at });
        }
        if usize::try_from(end.saturating_sub(start) / step).map_or(true, |n| n >= self.max_samples) {
            return Err(QueryError::TooManySamples);
        }
        let inner = self.with_grid(start, end, step);
        let steps = inner.eval(&sq.expr)?.into_vector()?;
        Ok(RangeSource { series: steps_to_series(steps, start, step), range, offset, at })
    }

    /// Calls `f(step, window)` for every step whose window over `points` is
    /// non-empty.
    pub fn for_each_window(
        &self,
        src: &RangeSource,
        points: &[Point],
        mut f: impl FnMut(usize, &[Point]) -> Result<()>,
    ) -> Result<()> {
        let (mut lo, mut hi) = (0usize, 0usize);
        for step in 0..self.steps() {
            let maxt = self.ref_time(src.at, src.offset, step);
            let mint = maxt.saturating_sub(src.range);
            while hi < points.len() && points[hi].t <= maxt {
                hi += 1;
            }
            while lo < hi && !in_window(points[lo].t, mint, maxt) {
                lo += 1;
            }
            if lo < hi {
                f(step, &points[lo..hi])?;
            }
        }
        Ok(())
    }
}

fn in_window(t: i64, mint: i64, maxt: i64) -> bool {
    t <= maxt && if LEFT_OPEN_WINDOWS { t > mint } else { t >= mint }
}

/// Errors when two distinct input series end up with one label set, as
/// Prometheus checks whole result matrices after dropping metric names.
pub(crate) fn check_series_duplicates<'v>(pairs: impl Iterator<Item = (&'v Vector, &'v Vector)>) -> Result<()> {
    use std::collections::HashMap;
    let mut seen: HashMap<&Labels, &Labels> = HashMap::new();
    for (input, output) in pairs {
        for (i, o) in input.iter().zip(output) {
            match seen.get(&*o.metric) {
                Some(prev) if *prev != &*i.metric => {
                    return Err(QueryError::exec(crate::value::DUPLICATE_LABELSET));
                }
                Some(_) => {}
                None => {
                    seen.insert(&o.metric, &i.metric);
                }
            }
        }
    }
    Ok(())
}

pub(crate) fn unwrap_parens(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

/// Prometheus' `preprocessExprHelper`: true when the expression yields the
/// same result at every step (all selectors pinned with `@`).
pub(crate) fn is_step_invariant(e: &Expr) -> bool {
    match e {
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => true,
        Expr::VectorSelector(vs) => vs.at.is_some(),
        Expr::MatrixSelector(ms) => ms.vs.at.is_some(),
        Expr::Subquery(sq) => sq.at.is_some(),
        Expr::Paren(p) => is_step_invariant(&p.expr),
        Expr::Unary(u) => is_step_invariant(&u.expr),
        Expr::Binary(b) => is_step_invariant(&b.lhs) && is_step_invariant(&b.rhs),
        // Prometheus looks at the aggregated expression only, not the parameter.
        Expr::Aggregate(a) => is_step_invariant(&a.expr),
        Expr::Call(c) => {
            !AT_MODIFIER_UNSAFE_FUNCTIONS.contains(&c.func.name) && c.args.args.iter().all(|a| is_step_invariant(a))
        }
        Expr::Extension(_) => false,
    }
}

fn storage_matchers(vs: &VectorSelector) -> Vec<Matcher> {
    let mut out = Vec::with_capacity(vs.matchers.matchers.len() + 1);
    if let Some(name) = &vs.name {
        out.push(Matcher::equal(METRIC_NAME, name));
    }
    for m in &vs.matchers.matchers {
        // The parser compiled regexes the way Prometheus 2 does (`^(?:re)$`).
        let op = match &m.op {
            ParserOp::Equal => MatchOp::Equal,
            ParserOp::NotEqual => MatchOp::NotEqual,
            ParserOp::Re(re) => MatchOp::Regex(re.clone()),
            ParserOp::NotRe(re) => MatchOp::NotRegex(re.clone()),
        };
        out.push(Matcher { name: m.name.clone(), op, value: m.value.clone() });
    }
    out
}

pub(crate) fn duration_ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(MAX_DURATION_MS).min(MAX_DURATION_MS)
}

pub(crate) fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => duration_ms(*d),
        Some(Offset::Neg(d)) => -duration_ms(*d),
    }
}

fn system_time_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2).min(i64::MAX / 2),
        Err(e) => -(i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX / 2).min(i64::MAX / 2)),
    }
}
