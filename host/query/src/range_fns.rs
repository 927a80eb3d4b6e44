//! Functions over range vectors (`rate(x[5m])`, `*_over_time`, ...): run
//! per series, per step, on the points in that step's window.

use std::collections::HashSet;
use std::sync::Arc;

use promql_parser::parser::Expr;
use wasmon_storage::{Labels, Sample as Point};

use crate::error::{QueryError, Result};
use crate::eval::Evaluator;
use crate::functions::{absent_labels, eval_scalar_arg, quantile};
use crate::value::{DUPLICATE_LABELSET, Evaluated, Metric, Sample, Vector, drop_metric_name, kahan_inc};

/// What a range function sees at one step.
struct Window<'a> {
    points: &'a [Point],
    /// Window bounds after `offset` / `@` (ms).
    range_start: i64,
    range_end: i64,
    range_secs: f64,
    /// Evaluation time of the step (ms).
    ts: i64,
    /// Scalar arguments at this step, by argument position.
    args: &'a [f64],
}

type RangeFn = fn(&Window) -> Result<Option<f64>>;

fn lookup(name: &str) -> Option<RangeFn> {
    Some(match name {
        "rate" => |w| Ok(extrapolated_rate(w, true, true)),
        "increase" => |w| Ok(extrapolated_rate(w, true, false)),
        "delta" => |w| Ok(extrapolated_rate(w, false, false)),
        "irate" => |w| Ok(instant_value(w.points, true)),
        "idelta" => |w| Ok(instant_value(w.points, false)),
        "deriv" => |w| {
            if w.points.len() < 2 {
                return Ok(None);
            }
            Ok(Some(linear_regression(w.points, w.points[0].t).0))
        },
        "predict_linear" => |w| {
            if w.points.len() < 2 {
                return Ok(None);
            }
            let (slope, intercept) = linear_regression(w.points, w.ts);
            Ok(Some(slope * w.args.get(1).copied().unwrap_or(f64::NAN) + intercept))
        },
        "holt_winters" | "double_exponential_smoothing" => holt_winters,
        "avg_over_time" => |w| Ok(Some(avg_over_time(w.points))),
        "sum_over_time" => |w| {
            let (mut sum, mut c) = (0.0, 0.0);
            for p in w.points {
                (sum, c) = kahan_inc(p.v, sum, c);
            }
            Ok(Some(if sum.is_infinite() { sum } else { sum + c }))
        },
        "count_over_time" => |w| Ok(Some(w.points.len() as f64)),
        "min_over_time" => |w| {
            let mut min = w.points[0].v;
            for p in w.points {
                if p.v < min || min.is_nan() {
                    min = p.v;
                }
            }
            Ok(Some(min))
        },
        "max_over_time" => |w| {
            let mut max = w.points[0].v;
            for p in w.points {
                if p.v > max || max.is_nan() {
                    max = p.v;
                }
            }
            Ok(Some(max))
        },
        "quantile_over_time" => |w| {
            let q = w.args.first().copied().unwrap_or(f64::NAN);
            Ok(Some(quantile(q, w.points.iter().map(|p| p.v).collect())))
        },
        "stddev_over_time" => |w| Ok(Some(variance(w.points).sqrt())),
        "stdvar_over_time" => |w| Ok(Some(variance(w.points))),
        "last_over_time" => |w| Ok(w.points.last().map(|p| p.v)),
        "present_over_time" | "absent_over_time" => |_| Ok(Some(1.0)),
        "changes" => |w| {
            let mut changes = 0u64;
            for pair in w.points.windows(2) {
                let (prev, cur) = (pair[0].v, pair[1].v);
                if cur != prev && !(cur.is_nan() && prev.is_nan()) {
                    changes += 1;
                }
            }
            Ok(Some(changes as f64))
        },
        "resets" => |w| Ok(Some(w.points.windows(2).filter(|p| p[1].v < p[0].v).count() as f64)),
        _ => return None,
    })
}

pub(crate) fn eval(ev: &Evaluator, name: &str, args: &[&Expr], matrix_idx: usize) -> Result<Evaluated> {
    let Some(f) = lookup(name) else {
        return Err(QueryError::exec(format!("function {name:?} does not take a range vector")));
    };
    // Other arguments are scalars, evaluated once for all steps.
    let mut scalars: Vec<Vec<f64>> = Vec::with_capacity(args.len());
    for i in 0..args.len() {
        scalars.push(if i == matrix_idx { Vec::new() } else { eval_scalar_arg(ev, args, i)? });
    }
    let src = ev.range_source(args[matrix_idx])?;
    let steps = ev.steps();
    let mut out: Vec<Vector> = vec![Vec::new(); steps];
    let mut produced: Vec<Metric> = Vec::new();
    let mut step_args = vec![f64::NAN; args.len()];
    // last_over_time only picks a sample, so it keeps the metric name.
    let keep_name = name == "last_over_time";
    for series in &src.series {
        ev.check_deadline()?;
        let metric: Metric = if keep_name { series.metric.clone() } else { Arc::new(drop_metric_name(&series.metric)) };
        let mut any = false;
        ev.for_each_window(&src, &series.points, |step, points| {
            for (i, s) in scalars.iter().enumerate() {
                if i != matrix_idx {
                    step_args[i] = s.get(step).copied().unwrap_or(f64::NAN);
                }
            }
            let ts = ev.ts(step);
            let range_end = src.at.unwrap_or(ts).saturating_sub(src.offset);
            let w = Window {
                points,
                range_start: range_end.saturating_sub(src.range),
                range_end,
                range_secs: src.range as f64 / 1000.0,
                ts,
                args: &step_args,
            };
            if let Some(v) = f(&w)? {
                out[step].push(Sample { metric: metric.clone(), v });
                any = true;
            }
            Ok(())
        })?;
        if any {
            produced.push(metric);
        }
    }
    if name == "absent_over_time" {
        let metric: Metric = Arc::new(absent_labels(args[matrix_idx]));
        let absent = out
            .iter()
            .map(|v| if v.is_empty() { vec![Sample { metric: metric.clone(), v: 1.0 }] } else { Vec::new() })
            .collect();
        return Ok(Evaluated::Vector(absent));
    }
    // Prometheus checks the whole result matrix, not each step.
    let mut seen: HashSet<&Labels> = HashSet::with_capacity(produced.len());
    if !produced.iter().all(|m| seen.insert(m)) {
        return Err(QueryError::exec(DUPLICATE_LABELSET));
    }
    Ok(Evaluated::Vector(out))
}

/// Prometheus' `extrapolatedRate`, shared by rate, increase and delta.
fn extrapolated_rate(w: &Window, is_counter: bool, is_rate: bool) -> Option<f64> {
    let pts = w.points;
    if pts.len() < 2 {
        return None;
    }
    let (first, last) = (pts[0], pts[pts.len() - 1]);
    let mut result = last.v - first.v;
    if is_counter {
        let mut prev = 0.0;
        for p in pts {
            if p.v < prev {
                result += prev;
            }
            prev = p.v;
        }
    }
    let mut to_start = first.t.saturating_sub(w.range_start) as f64 / 1000.0;
    let to_end = w.range_end.saturating_sub(last.t) as f64 / 1000.0;
    let sampled = (last.t - first.t) as f64 / 1000.0;
    let avg_step = sampled / (pts.len() - 1) as f64;
    if is_counter && result > 0.0 && first.v >= 0.0 {
        // A counter cannot go below zero: don't extrapolate past the point
        // where it would have been zero.
        let to_zero = sampled * (first.v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = avg_step * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold { to_start } else { avg_step / 2.0 };
    interval += if to_end < threshold { to_end } else { avg_step / 2.0 };
    let mut factor = interval / sampled;
    if is_rate {
        factor /= w.range_secs;
    }
    Some(result * factor)
}

/// Prometheus' `instantValue` (irate, idelta): the last two points.
fn instant_value(pts: &[Point], is_rate: bool) -> Option<f64> {
    if pts.len() < 2 {
        return None;
    }
    let (prev, last) = (pts[pts.len() - 2], pts[pts.len() - 1]);
    let mut v = if is_rate && last.v < prev.v { last.v } else { last.v - prev.v };
    let dt = last.t - prev.t;
    if dt == 0 {
        return None;
    }
    if is_rate {
        v /= dt as f64 / 1000.0;
    }
    Some(v)
}

/// Least-squares fit with x in seconds relative to `intercept_time`.
fn linear_regression(pts: &[Point], intercept_time: i64) -> (f64, f64) {
    let (mut n, mut sum_x, mut c_x, mut sum_y, mut c_y) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sum_xy, mut c_xy, mut sum_x2, mut c_x2) = (0.0, 0.0, 0.0, 0.0);
    let init_y = pts[0].v;
    let mut const_y = true;
    for (i, p) in pts.iter().enumerate() {
        if const_y && i > 0 && p.v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = p.t.saturating_sub(intercept_time) as f64 / 1e3;
        (sum_x, c_x) = kahan_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_inc(p.v, sum_y, c_y);
        (sum_xy, c_xy) = kahan_inc(x * p.v, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_inc(x * x, sum_x2, c_x2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let (sum_x, sum_y, sum_xy, sum_x2) = (sum_x + c_x, sum_y + c_y, sum_xy + c_xy, sum_x2 + c_x2);
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    (slope, sum_y / n - slope * sum_x / n)
}

fn avg_over_time(pts: &[Point]) -> f64 {
    let (mut mean, mut count, mut c) = (0.0f64, 0.0, 0.0);
    for p in pts {
        count += 1.0;
        if mean.is_infinite() {
            if p.v.is_infinite() && (mean > 0.0) == (p.v > 0.0) {
                continue;
            }
            if !p.v.is_infinite() && !p.v.is_nan() {
                continue;
            }
        }
        (mean, c) = kahan_inc(p.v / count - mean / count, mean, c);
    }
    if mean.is_infinite() { mean } else { mean + c }
}

fn variance(pts: &[Point]) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for p in pts {
        count += 1.0;
        let delta = p.v - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (p.v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

fn holt_winters(w: &Window) -> Result<Option<f64>> {
    let sf = w.args.get(1).copied().unwrap_or(f64::NAN);
    let tf = w.args.get(2).copied().unwrap_or(f64::NAN);
    if !(sf > 0.0 && sf < 1.0) {
        return Err(QueryError::exec(format!("invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}")));
    }
    if !(tf > 0.0 && tf < 1.0) {
        return Err(QueryError::exec(format!("invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}")));
    }
    let pts = w.points;
    if pts.len() < 2 {
        return Ok(None);
    }
    let (mut s0, mut s1) = (0.0, pts[0].v);
    let mut b = pts[1].v - pts[0].v;
    for (i, p) in pts.iter().enumerate().skip(1) {
        let x = sf * p.v;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Ok(Some(s1))
}
