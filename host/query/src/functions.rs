//! PromQL functions. Instant-vector functions run step by step on their
//! arguments' vectors; range-vector functions run per series per step on a
//! window of points (see `range_fns`).

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use promql_parser::parser::{Call, Expr};
use regex::Regex;
use wasmon_storage::{Label, Labels, METRIC_NAME};

use crate::error::{QueryError, Result};
use crate::eval::{Evaluator, unwrap_parens};
use crate::range_fns;
use crate::value::{Evaluated, LabelCache, Metric, Sample, Vector, check_duplicates, drop_metric_name, go_max, go_min};

pub(crate) fn eval_call(ev: &Evaluator, call: &Call) -> Result<Evaluated> {
    let name = call.func.name;
    let args: Vec<&Expr> = call.args.args.iter().map(|a| unwrap_parens(a)).collect();
    if let Some(idx) = args.iter().position(|a| matches!(a, Expr::MatrixSelector(_) | Expr::Subquery(_))) {
        return range_fns::eval(ev, name, &args, idx);
    }
    let steps = ev.steps();
    match name {
        "time" => return Ok(Evaluated::Scalar((0..steps).map(|i| ev.ts(i) as f64 / 1000.0).collect())),
        "pi" => return Ok(Evaluated::Scalar(vec![std::f64::consts::PI; steps])),
        "vector" => {
            let s = eval_scalar_arg(ev, &args, 0)?;
            let metric: Metric = Arc::new(Labels::default());
            return Ok(Evaluated::Vector(s.into_iter().map(|v| vec![Sample { metric: metric.clone(), v }]).collect()));
        }
        "scalar" => {
            let v = eval_vector_arg(ev, &args, 0)?;
            return Ok(Evaluated::Scalar(
                v.iter().map(|vec| if vec.len() == 1 { vec[0].v } else { f64::NAN }).collect(),
            ));
        }
        "timestamp" => return timestamp(ev, &args),
        "absent" => {
            let v = eval_vector_arg(ev, &args, 0)?;
            let metric: Metric = Arc::new(args.first().map(|a| absent_labels(a)).unwrap_or_default());
            return Ok(Evaluated::Vector(
                v.iter()
                    .map(
                        |vec| if vec.is_empty() { vec![Sample { metric: metric.clone(), v: 1.0 }] } else { Vec::new() },
                    )
                    .collect(),
            ));
        }
        "days_in_month" | "day_of_month" | "day_of_week" | "day_of_year" | "hour" | "minute" | "month" | "year" => {
            return date_function(ev, name, &args);
        }
        "histogram_count" | "histogram_sum" | "histogram_fraction" => {
            // Only native histograms have these; float series yield nothing.
            for a in &args {
                ev.eval(a)?;
            }
            return Ok(Evaluated::Vector(vec![Vec::new(); steps]));
        }
        _ => {}
    }
    let out = match name {
        "label_replace" => label_replace(ev, &args)?,
        "label_join" => label_join(ev, &args)?,
        "histogram_quantile" => {
            let q = eval_scalar_arg(ev, &args, 0)?;
            let v = eval_vector_arg(ev, &args, 1)?;
            v.iter().zip(q).map(|(vec, q)| histogram_quantile(q, vec)).collect()
        }
        "sort" | "sort_desc" => {
            let desc = name == "sort_desc";
            let mut v = eval_vector_arg(ev, &args, 0)?;
            for vec in &mut v {
                vec.sort_by(|a, b| cmp_nan_last(a.v, b.v, desc));
            }
            v
        }
        "round" => {
            let v = eval_vector_arg(ev, &args, 0)?;
            let to = if args.len() > 1 { eval_scalar_arg(ev, &args, 1)? } else { vec![1.0; steps] };
            let mut cache = LabelCache::default();
            v.iter()
                .zip(to)
                .map(|(vec, to)| {
                    // Multiplying by the inverse is what Prometheus does; it
                    // rounds more predictably than dividing.
                    let inv = 1.0 / to;
                    map_vector(vec, &mut cache, |x| (x * inv + 0.5).floor() / inv)
                })
                .collect()
        }
        "clamp" => {
            let v = eval_vector_arg(ev, &args, 0)?;
            let min = eval_scalar_arg(ev, &args, 1)?;
            let max = eval_scalar_arg(ev, &args, 2)?;
            let mut cache = LabelCache::default();
            v.iter()
                .enumerate()
                .map(|(i, vec)| {
                    let (lo, hi) = (min[i], max[i]);
                    if hi < lo { Vec::new() } else { map_vector(vec, &mut cache, |x| go_max(lo, go_min(hi, x))) }
                })
                .collect()
        }
        "clamp_min" | "clamp_max" => {
            let v = eval_vector_arg(ev, &args, 0)?;
            let bound = eval_scalar_arg(ev, &args, 1)?;
            let mut cache = LabelCache::default();
            let is_min = name == "clamp_min";
            v.iter()
                .zip(bound)
                .map(|(vec, b)| map_vector(vec, &mut cache, |x| if is_min { go_max(b, x) } else { go_min(b, x) }))
                .collect()
        }
        _ => {
            let Some(f) = simple_function(name) else {
                return Err(QueryError::exec(format!("function {name:?} is not supported")));
            };
            let v = eval_vector_arg(ev, &args, 0)?;
            let mut cache = LabelCache::default();
            v.iter().map(|vec| map_vector(vec, &mut cache, f)).collect()
        }
    };
    for vec in &out {
        check_duplicates(vec)?;
    }
    Ok(Evaluated::Vector(out))
}

fn simple_function(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "sqrt" => f64::sqrt,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sin" => f64::sin,
        "cos" => f64::cos,
        "tan" => f64::tan,
        "asin" => f64::asin,
        "acos" => f64::acos,
        "atan" => f64::atan,
        "sinh" => f64::sinh,
        "cosh" => f64::cosh,
        "tanh" => f64::tanh,
        "asinh" => f64::asinh,
        "acosh" => f64::acosh,
        "atanh" => f64::atanh,
        "deg" => |x| x * 180.0 / std::f64::consts::PI,
        "rad" => |x| x * std::f64::consts::PI / 180.0,
        "sgn" => |x: f64| {
            if x < 0.0 {
                -1.0
            } else if x > 0.0 {
                1.0
            } else {
                x
            }
        },
        _ => return None,
    })
}

fn map_vector(vec: &Vector, cache: &mut LabelCache, f: impl Fn(f64) -> f64) -> Vector {
    vec.iter().map(|s| Sample { metric: cache.drop_name(&s.metric), v: f(s.v) }).collect()
}

/// Ascending (or descending) by value with NaN always last: the order of
/// Prometheus' `sort`, `sort_desc` and `topk`/`bottomk` output.
pub(crate) fn cmp_nan_last(a: f64, b: f64, desc: bool) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => {
            let o = a.partial_cmp(&b).unwrap_or(Ordering::Equal);
            if desc { o.reverse() } else { o }
        }
    }
}

fn arg<'e>(args: &[&'e Expr], i: usize) -> Result<&'e Expr> {
    args.get(i).copied().ok_or_else(|| QueryError::exec("missing function argument"))
}

pub(crate) fn eval_scalar_arg(ev: &Evaluator, args: &[&Expr], i: usize) -> Result<Vec<f64>> {
    ev.eval(arg(args, i)?)?.into_scalar()
}

fn eval_vector_arg(ev: &Evaluator, args: &[&Expr], i: usize) -> Result<Vec<Vector>> {
    ev.eval(arg(args, i)?)?.into_vector()
}

fn eval_string_arg(ev: &Evaluator, args: &[&Expr], i: usize) -> Result<String> {
    ev.eval(arg(args, i)?)?.into_string()
}

fn timestamp(ev: &Evaluator, args: &[&Expr]) -> Result<Evaluated> {
    // A selector argument reports its samples' own timestamps; any other
    // expression's samples are stamped with the evaluation time.
    let out = if let Expr::VectorSelector(vs) = arg(args, 0)? {
        ev.eval_vector_selector(vs, |t, _| t as f64 / 1000.0, true)?
    } else {
        let v = eval_vector_arg(ev, args, 0)?;
        let mut cache = LabelCache::default();
        v.iter()
            .enumerate()
            .map(|(i, vec)| {
                let t = ev.ts(i) as f64 / 1000.0;
                map_vector(vec, &mut cache, |_| t)
            })
            .collect()
    };
    for vec in &out {
        check_duplicates(vec)?;
    }
    Ok(Evaluated::Vector(out))
}

/// Prometheus' `createLabelsForAbsentFunction`: equality matchers become
/// labels, unless the same label has any other matcher.
pub(crate) fn absent_labels(e: &Expr) -> Labels {
    let vs = match e {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::default(),
    };
    let mut set: Vec<Label> = Vec::new();
    let mut empty: Vec<&str> = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        let is_eq = matches!(m.op, promql_parser::label::MatchOp::Equal);
        if is_eq && !set.iter().any(|l| l.name == m.name) {
            set.push(Label { name: m.name.clone(), value: m.value.clone() });
        } else {
            empty.push(&m.name);
        }
    }
    Labels::new(set).without(&empty)
}

pub(crate) use wasmon_storage::is_valid_label_name;

fn label_replace(ev: &Evaluator, args: &[&Expr]) -> Result<Vec<Vector>> {
    let v = eval_vector_arg(ev, args, 0)?;
    let dst = eval_string_arg(ev, args, 1)?;
    let repl = eval_string_arg(ev, args, 2)?;
    let src = eval_string_arg(ev, args, 3)?;
    let re_src = eval_string_arg(ev, args, 4)?;
    let re = Regex::new(&format!("^(?:{re_src})$"))
        .map_err(|_| QueryError::exec(format!("invalid regular expression in label_replace(): {re_src}")))?;
    if !is_valid_label_name(&dst) {
        return Err(QueryError::exec(format!("invalid destination label name in label_replace(): {dst}")));
    }
    let mut cache = LabelCache::default();
    Ok(v.iter()
        .map(|vec| {
            vec.iter()
                .map(|s| {
                    let metric = cache.get(&s.metric, |m| {
                        let value = m.get(&src).unwrap_or("");
                        match re.captures(value) {
                            None => m.clone(),
                            Some(caps) => {
                                let mut res = String::new();
                                caps.expand(&repl, &mut res);
                                m.with(&dst, &res)
                            }
                        }
                    });
                    Sample { metric, v: s.v }
                })
                .collect()
        })
        .collect())
}

fn label_join(ev: &Evaluator, args: &[&Expr]) -> Result<Vec<Vector>> {
    let v = eval_vector_arg(ev, args, 0)?;
    let dst = eval_string_arg(ev, args, 1)?;
    let sep = eval_string_arg(ev, args, 2)?;
    let mut srcs = Vec::new();
    for i in 3..args.len() {
        let s = eval_string_arg(ev, args, i)?;
        if !is_valid_label_name(&s) {
            return Err(QueryError::exec(format!("invalid source label name in label_join(): {s}")));
        }
        srcs.push(s);
    }
    if !is_valid_label_name(&dst) {
        return Err(QueryError::exec(format!("invalid destination label name in label_join(): {dst}")));
    }
    let mut cache = LabelCache::default();
    Ok(v.iter()
        .map(|vec| {
            vec.iter()
                .map(|s| {
                    let metric = cache.get(&s.metric, |m| {
                        let vals: Vec<&str> = srcs.iter().map(|n| m.get(n).unwrap_or("")).collect();
                        m.with(&dst, &vals.join(&sep))
                    });
                    Sample { metric, v: s.v }
                })
                .collect()
        })
        .collect())
}

fn date_function(ev: &Evaluator, name: &str, args: &[&Expr]) -> Result<Evaluated> {
    let f = |secs: i64| -> f64 {
        let c = Civil::from_unix(secs);
        match name {
            "days_in_month" => f64::from(c.days_in_month()),
            "day_of_month" => f64::from(c.day),
            "day_of_week" => f64::from(c.weekday),
            "day_of_year" => f64::from(c.yday),
            "hour" => f64::from(c.hour),
            "minute" => f64::from(c.minute),
            "month" => f64::from(c.month),
            _ => c.year as f64,
        }
    };
    if args.is_empty() {
        let metric: Metric = Arc::new(Labels::default());
        return Ok(Evaluated::Vector(
            (0..ev.steps()).map(|i| vec![Sample { metric: metric.clone(), v: f(ev.ts(i).div_euclid(1000)) }]).collect(),
        ));
    }
    let v = eval_vector_arg(ev, args, 0)?;
    let mut cache = LabelCache::default();
    let out: Vec<Vector> = v.iter().map(|vec| map_vector(vec, &mut cache, |x| f(x as i64))).collect();
    for vec in &out {
        check_duplicates(vec)?;
    }
    Ok(Evaluated::Vector(out))
}

/// A UTC calendar date, as Go's `time.Time` accessors report it.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    /// 0 = Sunday.
    weekday: u32,
    /// 1-based.
    yday: u32,
}

impl Civil {
    fn from_unix(secs: i64) -> Self {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        let weekday = (days + 4).rem_euclid(7) as u32;
        let mut yday = day;
        for m in 1..month {
            yday += days_in(year, m);
        }
        Civil { year, month, day, hour: (rem / 3600) as u32, minute: (rem % 3600 / 60) as u32, weekday, yday }
    }

    fn days_in_month(&self) -> u32 {
        days_in(self.year, self.month)
    }
}

fn days_in(year: i64, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// Prometheus' `quantile` over plain values (the `quantile` aggregator and
/// `quantile_over_time`).
pub(crate) fn quantile(q: f64, mut values: Vec<f64>) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    // NaN sorts first, as in Go's vectorByValueHeap.
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

fn histogram_quantile(q: f64, vec: &Vector) -> Vector {
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut groups: Vec<(Metric, Vec<(f64, f64)>)> = Vec::new();
    for s in vec {
        let Some(upper) = s.metric.get("le").and_then(parse_go_float) else { continue };
        let sig = s.metric.without(&["le"]);
        let gi = match index.get(&sig) {
            Some(&i) => i,
            None => {
                let metric = Arc::new(drop_metric_name(&sig));
                index.insert(sig, groups.len());
                groups.push((metric, Vec::new()));
                groups.len() - 1
            }
        };
        groups[gi].1.push((upper, s.v));
    }
    groups.into_iter().map(|(metric, buckets)| Sample { metric, v: bucket_quantile(q, buckets) }).collect()
}

/// Go's `strconv.ParseFloat` for bucket bounds (`+Inf`, `1e3`, ...).
fn parse_go_float(s: &str) -> Option<f64> {
    s.parse::<f64>().ok()
}

fn bucket_quantile(q: f64, mut buckets: Vec<(f64, f64)>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(Ordering::Equal));
    match buckets.last() {
        Some(b) if b.0 == f64::INFINITY => {}
        _ => return f64::NAN,
    }
    // Coalesce buckets with the same bound.
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for b in buckets {
        match merged.last_mut() {
            Some(last) if last.0 == b.0 => last.1 += b.1,
            _ => merged.push(b),
        }
    }
    // Counts must not decrease with the bound; fix up precision artifacts.
    let mut max = f64::NEG_INFINITY;
    for b in &mut merged {
        if b.1 > max {
            max = b.1;
        } else if b.1 < max {
            b.1 = max;
        }
    }
    if merged.len() < 2 {
        return f64::NAN;
    }
    let n = merged.len();
    let observations = merged[n - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let b = merged[..n - 1].iter().position(|b| b.1 >= rank).unwrap_or(n - 1);
    if b == n - 1 {
        return merged[n - 2].0;
    }
    if b == 0 && merged[0].0 <= 0.0 {
        return merged[0].0;
    }
    let mut start = 0.0;
    let end = merged[b].0;
    let mut count = merged[b].1;
    if b > 0 {
        start = merged[b - 1].0;
        count -= merged[b - 1].1;
        rank -= merged[b - 1].1;
    }
    start + (end - start) * (rank / count)
}
