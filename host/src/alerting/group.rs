//! A rule group: its rules run in order at one timestamp, each seeing the
//! samples the earlier ones stored (Prometheus' `rules.Group.Eval`).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use wasmon_query::{Engine, Value};
use wasmon_storage::{Labels, Querier, stale_nan};

use super::alert::{AlertingRule, TemplateEnv};
use super::recording::RecordingRule;
use super::rules::{GroupSpec, RuleKind, RuleSpec};
use super::{OutgoingAlert, RuleStore, duration_ms, now_ms};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RuleHealth {
    #[default]
    Unknown,
    Ok,
    Err,
}

impl RuleHealth {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Ok => "ok",
            Self::Err => "err",
        }
    }
}

/// The outcome of a rule's last evaluation.
#[derive(Debug, Clone, Default)]
pub struct RuleStatus {
    pub health: RuleHealth,
    pub last_error: Option<String>,
    /// Wall-clock ms when the last evaluation started.
    pub last_evaluation_ms: Option<i64>,
    pub evaluation_time: Duration,
}

#[derive(Debug, Clone)]
pub enum Rule {
    Recording(RecordingRule),
    Alerting(AlertingRule),
}

impl Rule {
    pub fn new(spec: RuleSpec, restored: bool) -> Self {
        match spec.kind {
            RuleKind::Recording => Self::Recording(RecordingRule::new(spec)),
            RuleKind::Alerting => Self::Alerting(AlertingRule::new(spec, restored)),
        }
    }

    pub fn spec(&self) -> &RuleSpec {
        match self {
            Self::Recording(r) => &r.spec,
            Self::Alerting(r) => &r.spec,
        }
    }

    pub fn status(&self) -> &RuleStatus {
        match self {
            Self::Recording(r) => &r.status,
            Self::Alerting(r) => &r.status,
        }
    }

    fn status_mut(&mut self) -> &mut RuleStatus {
        match self {
            Self::Recording(r) => &mut r.status,
            Self::Alerting(r) => &mut r.status,
        }
    }

    /// Prometheus matches rules across reloads by name and labels.
    fn identity(&self) -> (String, Vec<(String, String)>) {
        let s = self.spec();
        (s.name.clone(), s.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }
}

/// What one evaluation needs besides the group.
pub struct EvalContext<'a> {
    pub engine: &'a Engine,
    pub store: &'a dyn RuleStore,
    pub env: &'a TemplateEnv,
    pub resend_delay_ms: i64,
}

/// Runs `expr` as an instant query at `ts`: a vector, or a scalar as one
/// sample without labels (Prometheus' `EngineQueryFunc`).
pub(crate) fn query_samples(
    engine: &Engine,
    q: &dyn Querier,
    expr: &str,
    ts: i64,
) -> Result<Vec<(Labels, f64)>, String> {
    match engine.instant(q, expr, ts).map_err(|e| e.to_string())? {
        Value::Vector(v) => Ok(v.into_iter().map(|s| (s.labels, s.v)).collect()),
        Value::Scalar { v, .. } => Ok(vec![(Labels::default(), v)]),
        _ => Err("rule result is not a vector or scalar".into()),
    }
}

#[derive(Debug, Clone)]
pub struct Group {
    pub spec: GroupSpec,
    pub interval_ms: i64,
    pub rules: Vec<Rule>,
    /// Per rule, the series it wrote in its last successful evaluation, to
    /// mark those it no longer produces as stale.
    series_prev: Vec<HashSet<Labels>>,
    /// Series of rules removed by a reload, marked stale at the next evaluation.
    stale_series: Vec<Labels>,
    pub last_evaluation_ms: Option<i64>,
    pub evaluation_time: Duration,
    /// Restore `for` state after the second evaluation (set at start-up).
    pub should_restore: bool,
}

impl Group {
    /// `restored`: false at start-up, when `for` state is still to be read
    /// back from ALERTS_FOR_STATE.
    pub fn new(spec: GroupSpec, default_interval: Duration, restored: bool) -> Self {
        let interval = spec.interval.unwrap_or(default_interval);
        let interval_ms = duration_ms(interval).max(1);
        let rules: Vec<Rule> = spec.rules.iter().cloned().map(|r| Rule::new(r, restored)).collect();
        let n = rules.len();
        Self {
            spec,
            interval_ms,
            rules,
            series_prev: vec![HashSet::new(); n],
            stale_series: Vec::new(),
            last_evaluation_ms: None,
            evaluation_time: Duration::ZERO,
            should_restore: !restored,
        }
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn file(&self) -> &str {
        &self.spec.file
    }

    /// Evaluates every rule at `ts` ms; returns the alerts due for sending.
    pub fn eval(&mut self, ts: i64, cx: &EvalContext<'_>) -> Vec<OutgoingAlert> {
        let started = Instant::now();
        self.last_evaluation_ms = Some(now_ms());
        let limit = self.spec.limit;
        let interval = self.interval_ms;
        let mut to_send = Vec::new();
        for (i, rule) in self.rules.iter_mut().enumerate() {
            let rule_started = Instant::now();
            let wall = now_ms();
            let result = match rule {
                Rule::Recording(r) => r.eval(ts, cx.store, cx.engine, limit),
                Rule::Alerting(r) => r.eval(ts, cx.store, cx.engine, cx.env, limit),
            };
            let status_update = match result {
                Err(e) => {
                    tracing::warn!(group = %self.spec.name, rule = %rule.spec().name, error = %e, "evaluating rule failed");
                    Err(e)
                }
                Ok(samples) => {
                    if let Rule::Alerting(r) = rule {
                        to_send.extend(r.alerts_to_send(ts, cx.resend_delay_ms, interval, &cx.env.external_url));
                    }
                    let batch: Vec<(Labels, i64, f64)> = samples.into_iter().map(|(l, v)| (l, ts, v)).collect();
                    let returned: HashSet<Labels> = batch.iter().map(|(l, _, _)| l.clone()).collect();
                    let appended = cx.store.append_samples(&batch);
                    let stale: Vec<(Labels, i64, f64)> = self.series_prev[i]
                        .iter()
                        .filter(|l| !returned.contains(*l))
                        .map(|l| (l.clone(), ts, stale_nan()))
                        .collect();
                    if !stale.is_empty() {
                        // Refusals are expected when another rule now writes
                        // the series.
                        let _ = cx.store.append_samples(&stale);
                    }
                    self.series_prev[i] = returned;
                    appended
                }
            };
            let status = rule.status_mut();
            match status_update {
                Ok(()) => {
                    status.health = RuleHealth::Ok;
                    status.last_error = None;
                }
                Err(e) => {
                    status.health = RuleHealth::Err;
                    status.last_error = Some(e);
                }
            }
            status.last_evaluation_ms = Some(wall);
            status.evaluation_time = rule_started.elapsed();
        }
        if !self.stale_series.is_empty() {
            let stale: Vec<(Labels, i64, f64)> =
                self.stale_series.iter().map(|l| (l.clone(), ts, stale_nan())).collect();
            let _ = cx.store.append_samples(&stale);
            self.stale_series.clear();
        }
        self.evaluation_time = started.elapsed();
        to_send
    }

    /// Reads `for` state back after a restart (see [`AlertingRule::restore_for_state`]).
    pub fn restore_for_state(&mut self, ts: i64, q: &dyn Querier, outage_tolerance: Duration, grace_period: Duration) {
        for rule in &mut self.rules {
            if let Rule::Alerting(r) = rule {
                r.restore_for_state(ts, q, duration_ms(outage_tolerance), duration_ms(grace_period));
            }
        }
        self.should_restore = false;
    }

    /// Takes over the state of the group this one replaces on reload:
    /// alerts and written series of rules with the same name and labels
    /// (Prometheus' `CopyState`); series of rules that are gone are marked
    /// stale at the next evaluation.
    pub fn copy_state(&mut self, from: &mut Group) {
        self.last_evaluation_ms = from.last_evaluation_ms;
        self.evaluation_time = from.evaluation_time;
        let mut from_rules: Vec<Option<(Rule, HashSet<Labels>)>> =
            std::mem::take(&mut from.rules).into_iter().zip(std::mem::take(&mut from.series_prev)).map(Some).collect();
        for (i, rule) in self.rules.iter_mut().enumerate() {
            let id = rule.identity();
            let Some(slot) = from_rules.iter_mut().find(|s| s.as_ref().is_some_and(|(r, _)| r.identity() == id)) else {
                continue;
            };
            let Some((old, series)) = slot.take() else { continue };
            self.series_prev[i] = series;
            if let (Rule::Alerting(new), Rule::Alerting(old)) = (rule, old) {
                new.active = old.active;
                new.restored |= old.restored;
            }
        }
        self.stale_series = std::mem::take(&mut from.stale_series);
        for (_, series) in from_rules.into_iter().flatten() {
            self.stale_series.extend(series);
        }
        self.should_restore = false;
    }

    /// Every series this group wrote, for stale markers when it is removed.
    pub fn written_series(&self) -> Vec<Labels> {
        self.series_prev.iter().flatten().cloned().chain(self.stale_series.iter().cloned()).collect()
    }

    /// Prometheus' consistent slotting: the latest `ts <= now` with
    /// `ts ≡ offset (mod interval)`, the offset a hash of file and name so
    /// groups spread out but keep their phase across restarts.
    pub fn eval_timestamp(&self, now: i64) -> i64 {
        let offset = (group_hash(&self.spec.file, &self.spec.name) % self.interval_ms as u64) as i64;
        let adj = now - offset;
        adj - adj.rem_euclid(self.interval_ms) + offset
    }
}

/// FNV-1a over the group's identity.
fn group_hash(file: &str, name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in ["file", file, "name", name].iter().flat_map(|s| s.bytes().chain([0xff])) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::MemStore;
    use std::collections::BTreeMap;
    use wasmon_storage::is_stale_nan;

    fn spec(rules: Vec<RuleSpec>) -> GroupSpec {
        GroupSpec { name: "g".into(), file: "f.yml".into(), interval: None, limit: 0, rules }
    }

    fn rec(name: &str, expr: &str) -> RuleSpec {
        RuleSpec {
            kind: RuleKind::Recording,
            name: name.into(),
            expr: expr.into(),
            hold: Duration::ZERO,
            keep_firing_for: Duration::ZERO,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
        }
    }

    #[test]
    fn later_rules_see_earlier_output_and_stale_markers_follow() {
        let store = MemStore::new();
        let x = |job: &str| Labels::from_pairs([("__name__", "x"), ("job", job)]);
        store.append_samples(&[(x("a"), 0, 1.0), (x("b"), 0, 2.0)]).unwrap();
        let mut alert = rec("Big", "r > 1");
        alert.kind = RuleKind::Alerting;
        let mut g = Group::new(spec(vec![rec("r", "x"), alert]), Duration::from_secs(60), true);
        let engine = Engine::new(Default::default());
        let env = TemplateEnv::default();
        let cx = EvalContext { engine: &engine, store: &store, env: &env, resend_delay_ms: 60_000 };
        let sent = g.eval(0, &cx);
        assert_eq!(sent.len(), 1, "the alert fired from the recording rule's output of this cycle");
        assert_eq!(g.rules[1].status().health, RuleHealth::Ok);
        // b disappears: r{job="b"} and its ALERTS series get stale markers.
        store.append_samples(&[(x("a"), 60_000, 1.0), (x("b"), 60_000, stale_nan())]).unwrap();
        g.eval(60_000, &cx);
        let r_b = store.select(&[wasmon_storage::Matcher::equal("job", "b")], 60_000, 60_000);
        let names: Vec<_> = r_b.iter().map(|s| s.labels.metric_name().unwrap_or_default().to_string()).collect();
        assert_eq!(names, vec!["ALERTS", "ALERTS_FOR_STATE", "r", "x"]);
        assert!(r_b.iter().all(|s| is_stale_nan(s.samples[0].v)));
    }

    #[test]
    fn errors_set_health_and_last_error() {
        let store = MemStore::new();
        let x = Labels::from_pairs([("__name__", "x"), ("job", "a")]);
        let y = Labels::from_pairs([("__name__", "y"), ("job", "a")]);
        store.append_samples(&[(x, 0, 1.0), (y, 0, 1.0)]).unwrap();
        // Renaming both to `r` leaves two samples with one label set.
        let mut g = Group::new(spec(vec![rec("r", "{__name__=~\"x|y\"}")]), Duration::from_secs(60), true);
        let engine = Engine::new(Default::default());
        let env = TemplateEnv::default();
        let cx = EvalContext { engine: &engine, store: &store, env: &env, resend_delay_ms: 60_000 };
        assert_eq!(g.rules[0].status().health, RuleHealth::Unknown);
        g.eval(0, &cx);
        assert_eq!(g.rules[0].status().health, RuleHealth::Err);
        assert!(g.rules[0].status().last_error.is_some());
    }

    #[test]
    fn eval_timestamps_are_slotted() {
        let g = Group::new(spec(vec![]), Duration::from_secs(60), true);
        let a = g.eval_timestamp(1_000_000_000);
        let b = g.eval_timestamp(1_000_000_000 + 60_000);
        assert_eq!(b - a, 60_000);
        assert!(a <= 1_000_000_000 && 1_000_000_000 - a < 60_000);
        assert_eq!(g.eval_timestamp(a), a);
    }
}
