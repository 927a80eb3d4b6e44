//! Aggregation operators, step by step, following Prometheus 2.42's
//! `aggregation()` (incremental mean, Welford variance, heap-based topk).

use std::collections::HashMap;
use std::sync::Arc;

use promql_parser::parser::token::{
    T_AVG, T_BOTTOMK, T_COUNT, T_COUNT_VALUES, T_GROUP, T_MAX, T_MIN, T_QUANTILE, T_STDDEV, T_STDVAR, T_SUM, T_TOPK,
};
use promql_parser::parser::{AggregateExpr, LabelModifier};
use wasmon_storage::{Labels, METRIC_NAME};

use crate::error::{QueryError, Result};
use crate::eval::Evaluator;
use crate::functions::{is_valid_label_name, quantile};
use crate::value::{Evaluated, LabelCache, Metric, Sample, Vector, format_float_go, go_quote};

struct Grouping {
    without: bool,
    /// Sorted, deduplicated.
    labels: Vec<String>,
}

impl Grouping {
    fn key(&self, m: &Labels) -> Labels {
        if self.without {
            let mut drop: Vec<&str> = self.labels.iter().map(String::as_str).collect();
            drop.push(METRIC_NAME);
            m.without(&drop)
        } else if self.labels.is_empty() {
            Labels::default()
        } else {
            let keep: Vec<&str> = self.labels.iter().map(String::as_str).collect();
            m.only(&keep)
        }
    }
}

enum Param {
    None,
    Scalar(Vec<f64>),
    String(String),
}

pub(crate) fn eval(ev: &Evaluator, agg: &AggregateExpr) -> Result<Evaluated> {
    let op = agg.op.id();
    // Prometheus evaluates the parameter before the aggregated expression.
    let param = match &agg.param {
        Some(p) if op == T_COUNT_VALUES => Param::String(ev.eval(p)?.into_string()?),
        Some(p) => Param::Scalar(ev.eval(p)?.into_scalar()?),
        None => Param::None,
    };
    let input = ev.eval(&agg.expr)?.into_vector()?;
    let (without, names) = match &agg.modifier {
        None => (false, Vec::new()),
        Some(LabelModifier::Include(l)) => (false, l.labels.clone()),
        Some(LabelModifier::Exclude(l)) => (true, l.labels.clone()),
    };
    let mut labels = names;
    labels.sort();
    labels.dedup();
    let grouping = Grouping { without, labels };
    let mut cache = LabelCache::default();
    let mut out = Vec::with_capacity(input.len());
    for (step, vec) in input.iter().enumerate() {
        ev.check_deadline()?;
        let p = match &param {
            Param::Scalar(v) => v.get(step).copied().unwrap_or(f64::NAN),
            _ => 0.0,
        };
        let result = match (&param, op) {
            (Param::String(label), _) => count_values(&grouping, label, vec)?,
            (_, T_TOPK | T_BOTTOMK) => top_bottom(&grouping, op == T_TOPK, p, vec, &mut cache)?,
            _ => simple(&grouping, op, p, vec, &mut cache)?,
        };
        out.push(result);
    }
    Ok(Evaluated::Vector(out))
}

struct Group {
    labels: Metric,
    value: f64,
    mean: f64,
    count: f64,
    values: Vec<f64>,
}

fn simple(g: &Grouping, op: u16, q: f64, vec: &Vector, cache: &mut LabelCache) -> Result<Vector> {
    let mut index: HashMap<Metric, usize> = HashMap::new();
    let mut groups: Vec<Group> = Vec::new();
    for s in vec {
        let key = cache.get(&s.metric, |m| g.key(m));
        let v = s.v;
        let Some(&gi) = index.get(&key) else {
            index.insert(key.clone(), groups.len());
            let value = match op {
                T_STDVAR | T_STDDEV => 0.0,
                T_GROUP => 1.0,
                _ => v,
            };
            let values = if op == T_QUANTILE { vec![v] } else { Vec::new() };
            groups.push(Group { labels: key, value, mean: v, count: 1.0, values });
            continue;
        };
        let grp = &mut groups[gi];
        match op {
            T_SUM => grp.value += v,
            T_AVG => {
                grp.count += 1.0;
                if grp.mean.is_infinite() {
                    // Inf - Inf would turn a correct infinite mean into NaN.
                    if v.is_infinite() && (grp.mean > 0.0) == (v > 0.0) {
                        continue;
                    }
                    if !v.is_infinite() && !v.is_nan() {
                        continue;
                    }
                }
                grp.mean += v / grp.count - grp.mean / grp.count;
            }
            T_MAX => {
                if grp.value < v || grp.value.is_nan() {
                    grp.value = v;
                }
            }
            T_MIN => {
                if grp.value > v || grp.value.is_nan() {
                    grp.value = v;
                }
            }
            T_COUNT => grp.count += 1.0,
            T_STDVAR | T_STDDEV => {
                grp.count += 1.0;
                let delta = v - grp.mean;
                grp.mean += delta / grp.count;
                grp.value += delta * (v - grp.mean);
            }
            T_QUANTILE => grp.values.push(v),
            T_GROUP => {}
            _ => return Err(QueryError::exec("unsupported aggregation operator")),
        }
    }
    Ok(groups
        .into_iter()
        .map(|grp| {
            let v = match op {
                T_AVG => grp.mean,
                T_COUNT => grp.count,
                T_STDVAR => grp.value / grp.count,
                T_STDDEV => (grp.value / grp.count).sqrt(),
                T_QUANTILE => quantile(q, grp.values),
                _ => grp.value,
            };
            Sample { metric: grp.labels, v }
        })
        .collect())
}

fn count_values(g: &Grouping, label: &str, vec: &Vector) -> Result<Vector> {
    if !is_valid_label_name(label) {
        return Err(QueryError::exec(format!("invalid label name {}", go_quote(label))));
    }
    let grouping = if g.without {
        Grouping { without: true, labels: g.labels.clone() }
    } else {
        let mut labels = g.labels.clone();
        labels.push(label.to_owned());
        labels.sort();
        labels.dedup();
        Grouping { without: false, labels }
    };
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut groups: Vec<(Labels, f64)> = Vec::new();
    for s in vec {
        let key = grouping.key(&s.metric.with(label, &format_float_go(s.v)));
        match index.get(&key) {
            Some(&i) => groups[i].1 += 1.0,
            None => {
                index.insert(key.clone(), groups.len());
                groups.push((key, 1.0));
            }
        }
    }
    Ok(groups.into_iter().map(|(l, v)| Sample { metric: Arc::new(l), v }).collect())
}

/// Go's `vectorByValueHeap.Less` (topk) and `vectorByReverseValueHeap.Less`
/// (bottomk): NaN always counts as the least element.
fn heap_less(top: bool, a: f64, b: f64) -> bool {
    if a.is_nan() {
        return true;
    }
    if top { a < b } else { a > b }
}

fn heap_up(h: &mut [Sample], mut j: usize, top: bool) {
    while j > 0 {
        let i = (j - 1) / 2;
        if !heap_less(top, h[j].v, h[i].v) {
            break;
        }
        h.swap(i, j);
        j = i;
    }
}

fn heap_down(h: &mut [Sample], i0: usize, top: bool) -> bool {
    let n = h.len();
    let mut i = i0;
    loop {
        let j1 = 2 * i + 1;
        if j1 >= n {
            break;
        }
        let mut j = j1;
        let j2 = j1 + 1;
        if j2 < n && heap_less(top, h[j2].v, h[j1].v) {
            j = j2;
        }
        if !heap_less(top, h[j].v, h[i].v) {
            break;
        }
        h.swap(i, j);
        i = j;
    }
    i > i0
}

fn top_bottom(g: &Grouping, top: bool, k: f64, vec: &Vector, cache: &mut LabelCache) -> Result<Vector> {
    if !(k >= i64::MIN as f64 && k <= i64::MAX as f64) {
        return Err(QueryError::exec(format!("Scalar value {} overflows int64", format_go_v(k))));
    }
    let k = k as i64;
    if k < 1 {
        return Ok(Vec::new());
    }
    let k = usize::try_from(k).unwrap_or(usize::MAX);
    let mut index: HashMap<Metric, usize> = HashMap::new();
    let mut heaps: Vec<Vec<Sample>> = Vec::new();
    for s in vec {
        let key = cache.get(&s.metric, |m| g.key(m));
        let Some(&gi) = index.get(&key) else {
            index.insert(key, heaps.len());
            heaps.push(vec![s.clone()]);
            continue;
        };
        let h = &mut heaps[gi];
        if h.len() < k {
            h.push(s.clone());
            let last = h.len() - 1;
            heap_up(h, last, top);
        } else {
            let root = h[0].v;
            let better = if top { root < s.v } else { root > s.v };
            if better || (root.is_nan() && !s.v.is_nan()) {
                h[0] = s.clone();
                if k > 1 && !heap_down(h, 0, top) {
                    heap_up(h, 0, top);
                }
            }
        }
    }
    let mut out = Vec::new();
    for mut h in heaps {
        // Best first, NaN last, as Prometheus' reversed heap sort.
        h.sort_by(|a, b| crate::functions::cmp_nan_last(a.v, b.v, top));
        out.extend(h);
    }
    Ok(out)
}

/// Go's `%v` for a float64, enough for the huge values that overflow int64.
fn format_go_v(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let s = format!("{v:e}");
    match s.split_once('e') {
        Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e:0>2}"),
        Some((m, e)) => format!("{m}e-{:0>2}", &e[1..]),
        None => s,
    }
}
