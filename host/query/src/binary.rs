//! Binary operators: scalar/scalar, vector/scalar and vector/vector with
//! Prometheus' label matching (on/ignoring, group_left/group_right).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use promql_parser::parser::token::{
    T_ADD, T_ATAN2, T_DIV, T_EQLC, T_GTE, T_GTR, T_LAND, T_LOR, T_LSS, T_LTE, T_LUNLESS, T_MOD, T_MUL, T_NEQ, T_POW,
    T_SUB,
};
use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};
use wasmon_storage::{Labels, METRIC_NAME};

use crate::error::{QueryError, Result};
use crate::eval::Evaluator;
use crate::value::{
    Evaluated, LabelCache, Metric, Sample, Vector, check_duplicates, drop_metric_name, go_labels_string,
};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Card {
    OneToOne,
    ManyToOne,
    OneToMany,
    ManyToMany,
}

struct Matching {
    card: Card,
    on: bool,
    labels: Vec<String>,
    include: Vec<String>,
}

impl Matching {
    fn from_expr(b: &BinaryExpr) -> Self {
        let Some(m) = &b.modifier else {
            return Self { card: Card::OneToOne, on: false, labels: Vec::new(), include: Vec::new() };
        };
        let (card, include) = match &m.card {
            VectorMatchCardinality::OneToOne => (Card::OneToOne, Vec::new()),
            VectorMatchCardinality::ManyToOne(l) => (Card::ManyToOne, l.labels.clone()),
            VectorMatchCardinality::OneToMany(l) => (Card::OneToMany, l.labels.clone()),
            VectorMatchCardinality::ManyToMany => (Card::ManyToMany, Vec::new()),
        };
        let (on, labels) = match &m.matching {
            None => (false, Vec::new()),
            Some(LabelModifier::Include(l)) => (true, l.labels.clone()),
            Some(LabelModifier::Exclude(l)) => (false, l.labels.clone()),
        };
        Self { card, on, labels, include }
    }

    /// The labels two samples must share to match.
    fn signature(&self, m: &Labels) -> Labels {
        let names: Vec<&str> = self.labels.iter().map(String::as_str).collect();
        if self.on {
            m.only(&names)
        } else {
            let mut drop = names;
            drop.push(METRIC_NAME);
            m.without(&drop)
        }
    }
}

fn is_comparison(op: u16) -> bool {
    matches!(op, T_EQLC | T_NEQ | T_GTR | T_LSS | T_GTE | T_LTE)
}

fn drops_metric_name(op: u16) -> bool {
    matches!(op, T_ADD | T_SUB | T_MUL | T_DIV | T_POW | T_MOD | T_ATAN2)
}

/// Prometheus' `vectorElemBinop`: the value, and whether a comparison kept it.
fn elem_binop(op: u16, l: f64, r: f64) -> Result<(f64, bool)> {
    Ok(match op {
        T_ADD => (l + r, true),
        T_SUB => (l - r, true),
        T_MUL => (l * r, true),
        T_DIV => (l / r, true),
        T_POW => (l.powf(r), true),
        T_MOD => (l % r, true),
        T_ATAN2 => (l.atan2(r), true),
        T_EQLC => (l, l == r),
        T_NEQ => (l, l != r),
        T_GTR => (l, l > r),
        T_LSS => (l, l < r),
        T_GTE => (l, l >= r),
        T_LTE => (l, l <= r),
        _ => return Err(QueryError::exec("operator not allowed here")),
    })
}

fn scalar_binop(op: u16, l: f64, r: f64) -> Result<f64> {
    let (v, keep) = elem_binop(op, l, r)?;
    Ok(if is_comparison(op) { if keep { 1.0 } else { 0.0 } } else { v })
}

pub(crate) fn eval(ev: &Evaluator, b: &BinaryExpr) -> Result<Evaluated> {
    let op = b.op.id();
    let lhs = ev.eval(&b.lhs)?;
    let rhs = ev.eval(&b.rhs)?;
    let return_bool = b.return_bool();
    match (lhs, rhs) {
        (Evaluated::Scalar(l), Evaluated::Scalar(r)) => {
            let v: Result<Vec<f64>> = l.iter().zip(&r).map(|(&a, &b)| scalar_binop(op, a, b)).collect();
            Ok(Evaluated::Scalar(v?))
        }
        (Evaluated::Vector(l), Evaluated::Scalar(r)) => vector_scalar(ev, op, l, &r, false, return_bool),
        (Evaluated::Scalar(l), Evaluated::Vector(r)) => vector_scalar(ev, op, r, &l, true, return_bool),
        (Evaluated::Vector(l), Evaluated::Vector(r)) => vector_vector(ev, op, b, l, r, return_bool),
        _ => Err(QueryError::exec("binary expression must contain only scalar and instant vector types")),
    }
}

fn vector_scalar(
    ev: &Evaluator,
    op: u16,
    vec: Vec<Vector>,
    scalar: &[f64],
    swap: bool,
    return_bool: bool,
) -> Result<Evaluated> {
    let mut cache = LabelCache::default();
    let drop = drops_metric_name(op) || return_bool;
    let mut out = Vec::with_capacity(vec.len());
    for (step, samples) in vec.iter().enumerate() {
        ev.check_deadline()?;
        let sv = scalar.get(step).copied().unwrap_or(f64::NAN);
        let mut res = Vec::with_capacity(samples.len());
        for s in samples {
            let (l, r) = if swap { (sv, s.v) } else { (s.v, sv) };
            let (mut value, mut keep) = elem_binop(op, l, r)?;
            // A comparison always yields the vector element's value.
            if is_comparison(op) && swap {
                value = r;
            }
            if return_bool {
                value = if keep { 1.0 } else { 0.0 };
                keep = true;
            }
            if keep {
                let metric = if drop { cache.drop_name(&s.metric) } else { s.metric.clone() };
                res.push(Sample { metric, v: value });
            }
        }
        check_duplicates(&res)?;
        out.push(res);
    }
    Ok(Evaluated::Vector(out))
}

fn vector_vector(
    ev: &Evaluator,
    op: u16,
    b: &BinaryExpr,
    lhs: Vec<Vector>,
    rhs: Vec<Vector>,
    return_bool: bool,
) -> Result<Evaluated> {
    let matching = Matching::from_expr(b);
    let mut lsig = LabelCache::default();
    let mut rsig = LabelCache::default();
    let mut results: HashMap<(usize, usize), Metric> = HashMap::new();
    let mut out = Vec::with_capacity(lhs.len());
    for (l, r) in lhs.iter().zip(&rhs) {
        ev.check_deadline()?;
        let ls: Vec<Metric> = l.iter().map(|s| lsig.get(&s.metric, |m| matching.signature(m))).collect();
        let rs: Vec<Metric> = r.iter().map(|s| rsig.get(&s.metric, |m| matching.signature(m))).collect();
        let res = match op {
            T_LAND => {
                if l.is_empty() || r.is_empty() {
                    Vec::new()
                } else {
                    let right: HashSet<&Labels> = rs.iter().map(|m| &**m).collect();
                    l.iter().zip(&ls).filter(|(_, sig)| right.contains(&***sig)).map(|(s, _)| s.clone()).collect()
                }
            }
            T_LOR => {
                if l.is_empty() {
                    r.clone()
                } else if r.is_empty() {
                    l.clone()
                } else {
                    let left: HashSet<&Labels> = ls.iter().map(|m| &**m).collect();
                    let mut v = l.clone();
                    v.extend(r.iter().zip(&rs).filter(|(_, sig)| !left.contains(&***sig)).map(|(s, _)| s.clone()));
                    v
                }
            }
            T_LUNLESS => {
                if l.is_empty() || r.is_empty() {
                    l.clone()
                } else {
                    let right: HashSet<&Labels> = rs.iter().map(|m| &**m).collect();
                    l.iter().zip(&ls).filter(|(_, sig)| !right.contains(&***sig)).map(|(s, _)| s.clone()).collect()
                }
            }
            _ => binop_step(op, &matching, return_bool, (l, &ls), (r, &rs), &mut results)?,
        };
        check_duplicates(&res)?;
        out.push(res);
    }
    Ok(Evaluated::Vector(out))
}

type Side<'a> = (&'a Vector, &'a Vec<Metric>);

/// Prometheus' `VectorBinop` for one step.
fn binop_step(
    op: u16,
    matching: &Matching,
    return_bool: bool,
    lhs: Side,
    rhs: Side,
    results: &mut HashMap<(usize, usize), Metric>,
) -> Result<Vector> {
    if matching.card == Card::ManyToMany {
        return Err(QueryError::exec("many-to-many only allowed for set operators"));
    }
    if lhs.0.is_empty() || rhs.0.is_empty() {
        return Ok(Vec::new());
    }
    // The "one" side goes right; one-to-many swaps sides and swaps back for
    // the values.
    let ((lv, lsig), (rv, rsig)) = if matching.card == Card::OneToMany { (rhs, lhs) } else { (lhs, rhs) };
    let mut right: HashMap<&Labels, &Sample> = HashMap::with_capacity(rv.len());
    for (s, sig) in rv.iter().zip(rsig) {
        if let Some(dup) = right.get(&**sig) {
            let side = if matching.card == Card::OneToMany { "left" } else { "right" };
            return Err(QueryError::exec(format!(
                "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                go_labels_string(&match_labels(&s.metric, matching)),
                go_labels_string(&s.metric),
                go_labels_string(&dup.metric),
            )));
        }
        right.insert(sig, s);
    }
    let mut matched: HashMap<&Labels, HashSet<Metric>> = HashMap::new();
    let mut out = Vec::new();
    for (ls, sig) in lv.iter().zip(lsig) {
        let Some(rs) = right.get(&**sig) else { continue };
        let (a, b) = if matching.card == Card::OneToMany { (rs.v, ls.v) } else { (ls.v, rs.v) };
        let (mut value, keep) = elem_binop(op, a, b)?;
        if return_bool {
            value = if keep { 1.0 } else { 0.0 };
        } else if !keep {
            continue;
        }
        let key = (Arc::as_ptr(&ls.metric) as usize, Arc::as_ptr(&rs.metric) as usize);
        let mut metric =
            results.entry(key).or_insert_with(|| Arc::new(result_metric(&ls.metric, &rs.metric, op, matching))).clone();
        if return_bool && metric.get(METRIC_NAME).is_some() {
            metric = Arc::new(drop_metric_name(&metric));
        }
        match matched.get_mut(&**sig) {
            Some(inserted) => {
                if matching.card == Card::OneToOne {
                    return Err(QueryError::exec(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                    ));
                }
                if !inserted.insert(metric.clone()) {
                    return Err(QueryError::exec(
                        "multiple matches for labels: grouping labels must ensure unique results",
                    ));
                }
            }
            None => {
                let mut set = HashSet::new();
                if matching.card != Card::OneToOne {
                    set.insert(metric.clone());
                }
                matched.insert(sig, set);
            }
        }
        out.push(Sample { metric, v: value });
    }
    Ok(out)
}

/// Prometheus' `Labels.MatchLabels`, for error messages.
fn match_labels(m: &Labels, matching: &Matching) -> Labels {
    let names: Vec<&str> = matching.labels.iter().map(String::as_str).collect();
    if matching.on {
        m.only(&names)
    } else {
        let mut drop = names;
        drop.push(METRIC_NAME);
        m.without(&drop)
    }
}

/// Prometheus' `resultMetric`: the many side's labels, trimmed for one-to-one
/// matching, plus `group_x` labels copied from the one side.
fn result_metric(lhs: &Labels, rhs: &Labels, op: u16, matching: &Matching) -> Labels {
    let mut l = if drops_metric_name(op) { drop_metric_name(lhs) } else { lhs.clone() };
    if matching.card == Card::OneToOne {
        let names: Vec<&str> = matching.labels.iter().map(String::as_str).collect();
        l = if matching.on { l.only(&names) } else { l.without(&names) };
    }
    for name in &matching.include {
        l = l.with(name, rhs.get(name).unwrap_or(""));
    }
    l
}
