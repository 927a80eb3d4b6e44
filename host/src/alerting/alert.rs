//! Alerting rules: Prometheus' alert state machine (`rules/alerting.go`),
//! templating, the ALERTS / ALERTS_FOR_STATE samples, `for` restore and the
//! decision what to send.

use std::collections::BTreeMap;

use wasmon_query::Engine;
use wasmon_storage::{Labels, METRIC_NAME, Matcher, Querier, is_stale_nan};
use wasmon_template::{Context, QueryFn, QuerySample, Template, TemplateError};

use super::group::{RuleStatus, query_samples};
use super::rules::RuleSpec;
use super::{OutgoingAlert, generator_url};

/// Resolved alerts stay this long so that they are re-sent as resolved.
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60_000;

pub const ALERTS_METRIC: &str = "ALERTS";
pub const ALERTS_FOR_STATE_METRIC: &str = "ALERTS_FOR_STATE";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inactive => "inactive",
            Self::Pending => "pending",
            Self::Firing => "firing",
        }
    }
}

/// One alert of a rule. Times are ms since the epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Sample labels without `__name__`, plus rendered rule labels and `alertname`.
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub state: AlertState,
    pub value: f64,
    pub active_at: i64,
    pub fired_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub last_sent_at: Option<i64>,
    pub valid_until: i64,
    pub keep_firing_since: Option<i64>,
}

impl Alert {
    /// Prometheus' `needsSending`: never pending; resolved since the last
    /// send; otherwise once `resend_delay` has passed since the last send.
    pub fn needs_sending(&self, ts: i64, resend_delay: i64) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        if let Some(resolved) = self.resolved_at
            && self.last_sent_at.is_none_or(|sent| resolved > sent)
        {
            return true;
        }
        // Go's zero LastSentAt is far in the past: a first send is always due.
        self.last_sent_at.is_none_or(|sent| sent.saturating_add(resend_delay) < ts)
    }
}

/// Parses a label or annotation template; text without actions renders as
/// itself, so it needs no template (and cannot fail).
pub(crate) fn parse_template(name: &str, text: &str) -> Result<Option<Template>, TemplateError> {
    if text.contains("{{") { Template::parse(name, text).map(Some) } else { Ok(None) }
}

#[derive(Debug, Clone)]
struct Tmpl {
    name: String,
    raw: String,
    parsed: Result<Option<Template>, TemplateError>,
}

impl Tmpl {
    fn new(tmpl_name: &str, name: &str, raw: &str) -> Self {
        Self { name: name.to_string(), raw: raw.to_string(), parsed: parse_template(tmpl_name, raw) }
    }

    fn expand(&self, ctx: &Context, q: &dyn QueryFn) -> String {
        let result = match &self.parsed {
            Ok(None) => return self.raw.clone(),
            Ok(Some(t)) => t.render(ctx, q),
            Err(e) => Err(e.clone()),
        };
        result.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "expanding alert template failed");
            format!("<error expanding template: {e}>")
        })
    }
}

/// `{{ query "..." }}` in templates: an instant query at the evaluation time.
struct TemplateQuery<'a> {
    engine: &'a Engine,
    querier: &'a dyn Querier,
    ts: i64,
}

impl QueryFn for TemplateQuery<'_> {
    fn query(&self, expr: &str) -> Result<Vec<QuerySample>, String> {
        let samples = query_samples(self.engine, self.querier, expr, self.ts)?;
        Ok(samples
            .into_iter()
            .map(|(l, value)| QuerySample {
                labels: l.iter().map(|l| (l.name.clone(), l.value.clone())).collect(),
                value,
            })
            .collect())
    }
}

/// What templates see besides the sample: `$externalLabels`, `$externalURL`.
#[derive(Debug, Clone, Default)]
pub struct TemplateEnv {
    pub external_labels: BTreeMap<String, String>,
    pub external_url: String,
}

#[derive(Debug, Clone)]
pub struct AlertingRule {
    pub spec: RuleSpec,
    /// The expression as Prometheus prints it (API `query`, generator URL).
    pub query: String,
    label_tmpls: Vec<Tmpl>,
    annotation_tmpls: Vec<Tmpl>,
    /// Alerts by their label set, including resolved ones kept for re-sending.
    pub(crate) active: BTreeMap<Labels, Alert>,
    /// ALERTS samples are written only once the `for` state was restored (or
    /// restoring was not needed), as in Prometheus.
    pub(crate) restored: bool,
    pub status: RuleStatus,
}

impl AlertingRule {
    pub fn new(spec: RuleSpec, restored: bool) -> Self {
        let query = wasmon_query::format_expr(&spec.expr).unwrap_or_else(|_| spec.expr.clone());
        let tmpl_name = format!("__alert_{}", spec.name);
        let label_tmpls = spec.labels.iter().map(|(k, v)| Tmpl::new(&tmpl_name, k, v)).collect();
        let annotation_tmpls = spec.annotations.iter().map(|(k, v)| Tmpl::new(&tmpl_name, k, v)).collect();
        Self {
            spec,
            query,
            label_tmpls,
            annotation_tmpls,
            active: BTreeMap::new(),
            restored,
            status: RuleStatus::default(),
        }
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn set_restored(&mut self, restored: bool) {
        self.restored = restored;
    }

    /// Runs the rule at `ts` ms: updates alert states and returns the ALERTS
    /// and ALERTS_FOR_STATE samples to store.
    pub fn eval(
        &mut self,
        ts: i64,
        q: &dyn Querier,
        engine: &Engine,
        env: &TemplateEnv,
        limit: usize,
    ) -> Result<Vec<(Labels, f64)>, String> {
        let res = query_samples(engine, q, &self.spec.expr, ts)?;
        let tq = TemplateQuery { engine, querier: q, ts };
        let mut fresh: BTreeMap<Labels, Alert> = BTreeMap::new();
        for (metric, v) in res {
            let ctx = Context {
                labels: metric.iter().map(|l| (l.name.clone(), l.value.clone())).collect(),
                value: v,
                external_labels: env.external_labels.clone(),
                external_url: env.external_url.clone(),
            };
            // Label templates are rendered before the identity is known:
            // they are part of it.
            let mut lbs = metric.without(&[METRIC_NAME]);
            for t in &self.label_tmpls {
                lbs = lbs.with(&t.name, &t.expand(&ctx, &tq));
            }
            lbs = lbs.with("alertname", &self.spec.name);
            let annotations = self.annotation_tmpls.iter().map(|t| (t.name.clone(), t.expand(&ctx, &tq))).collect();
            if fresh.contains_key(&lbs) {
                return Err("vector contains metrics with the same labelset after applying alert labels".into());
            }
            fresh.insert(
                lbs.clone(),
                Alert {
                    labels: lbs,
                    annotations,
                    state: AlertState::Pending,
                    value: v,
                    active_at: ts,
                    fired_at: None,
                    resolved_at: None,
                    last_sent_at: None,
                    valid_until: 0,
                    keep_firing_since: None,
                },
            );
        }

        for (h, a) in &fresh {
            match self.active.get_mut(h) {
                Some(existing) if existing.state != AlertState::Inactive => {
                    existing.value = a.value;
                    existing.annotations = a.annotations.clone();
                }
                _ => {
                    self.active.insert(h.clone(), a.clone());
                }
            }
        }

        let hold = super::duration_ms(self.spec.hold);
        let keep_for = super::duration_ms(self.spec.keep_firing_for);
        let mut out = Vec::new();
        let mut num_active = 0usize;
        let mut delete = Vec::new();
        for (fp, a) in self.active.iter_mut() {
            if !fresh.contains_key(fp) {
                let mut keep_firing = false;
                if a.state == AlertState::Firing && keep_for > 0 {
                    let since = *a.keep_firing_since.get_or_insert(ts);
                    keep_firing = ts - since < keep_for;
                }
                // Pending alerts vanish at once; resolved ones after the
                // retention that lets them be re-sent as resolved.
                if a.state == AlertState::Pending || a.resolved_at.is_some_and(|r| ts - r > RESOLVED_RETENTION_MS) {
                    delete.push(fp.clone());
                }
                if a.state != AlertState::Inactive && !keep_firing {
                    a.state = AlertState::Inactive;
                    a.resolved_at = Some(ts);
                }
                if !keep_firing {
                    continue;
                }
            } else {
                a.keep_firing_since = None;
            }
            num_active += 1;
            if a.state == AlertState::Pending && ts - a.active_at >= hold {
                a.state = AlertState::Firing;
                a.fired_at = Some(ts);
            }
            if self.restored {
                out.push((synthetic_labels(&self.spec.labels, &a.labels, ALERTS_METRIC, Some(a.state)), 1.0));
                out.push((
                    synthetic_labels(&self.spec.labels, &a.labels, ALERTS_FOR_STATE_METRIC, None),
                    (a.active_at.div_euclid(1000)) as f64,
                ));
            }
        }
        for fp in delete {
            self.active.remove(&fp);
        }
        if limit > 0 && num_active > limit {
            self.active.clear();
            return Err(format!("exceeded limit of {limit} with {num_active} alerts"));
        }
        Ok(out)
    }

    /// Prometheus' `sendAlerts`: which alerts to send after an evaluation at
    /// `ts`, marking them sent. `interval` is the group's.
    pub fn alerts_to_send(
        &mut self,
        ts: i64,
        resend_delay: i64,
        interval: i64,
        external_url: &str,
    ) -> Vec<OutgoingAlert> {
        let url = generator_url(external_url, &self.query);
        let mut out = Vec::new();
        for a in self.active.values_mut() {
            if !a.needs_sending(ts, resend_delay) {
                continue;
            }
            a.last_sent_at = Some(ts);
            // Allow for two missed evaluations or failed sends.
            let delta = resend_delay.max(interval);
            a.valid_until = ts.saturating_add(4 * delta);
            out.push(OutgoingAlert {
                labels: a.labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect(),
                annotations: a.annotations.clone(),
                // Go's zero time when the alert never fired (resolved while
                // kept firing is impossible, so this is only a fallback).
                starts_at_ms: a.fired_at.unwrap_or(a.active_at),
                ends_at_ms: a.resolved_at.unwrap_or(a.valid_until),
                generator_url: url.clone(),
            });
        }
        out
    }

    /// Alerts that are pending or firing, sorted by labels.
    pub fn active_alerts(&self) -> Vec<&Alert> {
        self.active.values().filter(|a| a.state != AlertState::Inactive).collect()
    }

    /// The highest state of any alert (the rule's `state` in the API).
    pub fn state(&self) -> AlertState {
        self.active.values().map(|a| a.state).max().unwrap_or(AlertState::Inactive)
    }

    /// Prometheus' `RestoreForState` for this rule at `ts` ms: moves each
    /// active alert's ActiveAt from the ALERTS_FOR_STATE series found in
    /// `[ts - outage_tolerance, ts]`, so an outage neither resets nor
    /// shortcuts `for`.
    pub fn restore_for_state(&mut self, ts: i64, q: &dyn Querier, outage_tolerance: i64, grace_period: i64) {
        let hold = super::duration_ms(self.spec.hold);
        if hold < grace_period {
            // Restoring would make it wait at least the grace period, longer
            // than its own `for`.
            self.restored = true;
            return;
        }
        let mint = ts.saturating_sub(outage_tolerance);
        for a in self.active.values_mut() {
            let want = synthetic_labels(&self.spec.labels, &a.labels, ALERTS_FOR_STATE_METRIC, None);
            let matchers: Vec<Matcher> = want.iter().map(|l| Matcher::equal(&l.name, &l.value)).collect();
            let Some(series) = q.select(&matchers, mint, ts).into_iter().find(|s| s.labels == want) else {
                continue;
            };
            let Some(last) = series.samples.last() else { continue };
            if is_stale_nan(last.v) {
                continue;
            }
            // Seconds precision, as Prometheus stores and reads it.
            let down_at = last.t.div_euclid(1000) * 1000;
            let mut restored_active_at = (last.v as i64).saturating_mul(1000);
            let spent_pending = down_at - restored_active_at;
            let remaining = hold - spent_pending;
            if remaining <= 0 {
                // It was firing: the next evaluation fires it again.
            } else if remaining < grace_period {
                restored_active_at = ts + grace_period - hold;
            } else {
                restored_active_at += ts - down_at;
            }
            a.active_at = restored_active_at;
        }
        self.restored = true;
    }
}

/// Labels of an ALERTS / ALERTS_FOR_STATE sample: the rule's raw labels,
/// overridden by the alert's, then name, `alertname` and `alertstate`.
fn synthetic_labels(
    rule_labels: &BTreeMap<String, String>,
    alert: &Labels,
    metric: &str,
    state: Option<AlertState>,
) -> Labels {
    let mut m: BTreeMap<&str, &str> = rule_labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    for l in alert {
        m.insert(&l.name, &l.value);
    }
    m.insert(METRIC_NAME, metric);
    if let Some(s) = state {
        m.insert("alertstate", s.as_str());
    }
    Labels::from_pairs(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::rules::RuleKind;
    use crate::alerting::{MemStore, RuleStore};
    use std::time::Duration;

    fn rule(expr: &str, hold: u64, keep: u64) -> AlertingRule {
        AlertingRule::new(
            RuleSpec {
                kind: RuleKind::Alerting,
                name: "A".into(),
                expr: expr.into(),
                hold: Duration::from_secs(hold),
                keep_firing_for: Duration::from_secs(keep),
                labels: BTreeMap::from([("severity".to_string(), "page".to_string())]),
                annotations: BTreeMap::new(),
            },
            true,
        )
    }

    fn store_with(values: &[(i64, f64)]) -> MemStore {
        let s = MemStore::new();
        let l = Labels::from_pairs([("__name__", "x"), ("job", "j")]);
        let batch: Vec<_> = values.iter().map(|(t, v)| (l.clone(), *t, *v)).collect();
        s.append_samples(&batch).unwrap();
        s
    }

    fn engine() -> Engine {
        Engine::new(Default::default())
    }

    #[test]
    fn pending_then_firing_then_resolved() {
        // x = 1 for 0..=3m, then 0.
        let s = store_with(&[(0, 1.0), (60_000, 1.0), (120_000, 1.0), (180_000, 1.0), (240_000, 0.0)]);
        let mut r = rule("x > 0", 120, 0);
        let env = TemplateEnv::default();
        let e = engine();
        let out = r.eval(0, &s, &e, &env, 0).unwrap();
        assert_eq!(r.state(), AlertState::Pending);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].0.get("alertstate"), Some("pending"));
        assert_eq!(out[0].0.get("severity"), Some("page"));
        assert_eq!(out[1].0.get("__name__"), Some("ALERTS_FOR_STATE"));
        assert_eq!(out[1].1, 0.0);
        r.eval(60_000, &s, &e, &env, 0).unwrap();
        assert_eq!(r.state(), AlertState::Pending);
        let out = r.eval(120_000, &s, &e, &env, 0).unwrap();
        assert_eq!(r.state(), AlertState::Firing);
        assert_eq!(out[0].0.get("alertstate"), Some("firing"));
        let out = r.eval(240_000, &s, &e, &env, 0).unwrap();
        assert!(out.is_empty());
        assert_eq!(r.state(), AlertState::Inactive);
        assert_eq!(r.active.len(), 1, "resolved alerts are kept for re-sending");
        assert!(r.active_alerts().is_empty());
    }

    #[test]
    fn pending_alert_that_stops_is_dropped() {
        let s = store_with(&[(0, 1.0), (60_000, 0.0)]);
        let mut r = rule("x > 0", 300, 0);
        let e = engine();
        r.eval(0, &s, &e, &TemplateEnv::default(), 0).unwrap();
        r.eval(60_000, &s, &e, &TemplateEnv::default(), 0).unwrap();
        assert!(r.active.is_empty());
    }

    #[test]
    fn keep_firing_for_holds_firing() {
        let s = store_with(&[(0, 1.0), (60_000, 0.0), (120_000, 0.0), (180_000, 0.0)]);
        let mut r = rule("x > 0", 0, 120);
        let e = engine();
        let env = TemplateEnv::default();
        r.eval(0, &s, &e, &env, 0).unwrap();
        assert_eq!(r.state(), AlertState::Firing);
        r.eval(60_000, &s, &e, &env, 0).unwrap();
        assert_eq!(r.state(), AlertState::Firing);
        r.eval(120_000, &s, &e, &env, 0).unwrap();
        assert_eq!(r.state(), AlertState::Firing);
        r.eval(180_000, &s, &e, &env, 0).unwrap();
        assert_eq!(r.state(), AlertState::Inactive);
    }

    #[test]
    fn duplicate_label_sets_and_limit_are_errors() {
        let s = MemStore::new();
        let a = Labels::from_pairs([("__name__", "x"), ("job", "a")]);
        let b = Labels::from_pairs([("__name__", "y"), ("job", "a")]);
        s.append_samples(&[(a, 0, 1.0), (b, 0, 1.0)]).unwrap();
        let mut r = rule("{job=\"a\"}", 0, 0);
        let e = engine();
        let err = r.eval(0, &s, &e, &TemplateEnv::default(), 0).unwrap_err();
        assert!(err.contains("same labelset"), "{err}");
        let mut r = rule("x", 0, 0);
        assert!(r.eval(0, &s, &e, &TemplateEnv::default(), 0).is_ok());
        let c = Labels::from_pairs([("__name__", "x"), ("job", "b")]);
        s.append_samples(&[(c, 0, 1.0)]).unwrap();
        let err = r.eval(0, &s, &e, &TemplateEnv::default(), 1).unwrap_err();
        assert_eq!(err, "exceeded limit of 1 with 2 alerts");
    }

    #[test]
    fn sending_decisions() {
        let s = store_with(&[(0, 1.0), (60_000, 1.0), (120_000, 1.0), (180_000, 0.0)]);
        let mut r = rule("x > 0", 60, 0);
        let e = engine();
        let env = TemplateEnv::default();
        let resend = 60_000;
        let interval = 15_000;
        r.eval(0, &s, &e, &env, 0).unwrap();
        assert!(r.alerts_to_send(0, resend, interval, "http://x").is_empty(), "pending is never sent");
        r.eval(60_000, &s, &e, &env, 0).unwrap();
        let sent = r.alerts_to_send(60_000, resend, interval, "http://x");
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].starts_at_ms, 60_000, "startsAt is when it fired");
        assert_eq!(sent[0].ends_at_ms, 60_000 + 4 * 60_000, "endsAt = ts + 4 * max(interval, resend delay)");
        assert_eq!(sent[0].generator_url, "http://x/graph?g0.expr=x+%3E+0&g0.tab=1");
        assert_eq!(sent[0].labels.get("alertname").map(String::as_str), Some("A"));
        // Within the resend delay: nothing; exactly at it: still nothing (strictly after).
        assert!(r.alerts_to_send(90_000, resend, interval, "").is_empty());
        assert!(r.alerts_to_send(120_000, resend, interval, "").is_empty());
        assert_eq!(r.alerts_to_send(120_001, resend, interval, "").len(), 1);
        // A long group interval stretches endsAt.
        let sent = r.clone().alerts_to_send(200_000, resend, 300_000, "");
        assert_eq!(sent[0].ends_at_ms, 200_000 + 4 * 300_000);
        // Resolved: sent at once with endsAt = ResolvedAt, then every resend
        // delay while it is retained (15m).
        r.eval(180_000, &s, &e, &env, 0).unwrap();
        let sent = r.alerts_to_send(180_000, resend, interval, "");
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].ends_at_ms, 180_000);
        assert!(r.alerts_to_send(200_000, resend, interval, "").is_empty());
        assert_eq!(r.alerts_to_send(241_000, resend, interval, "").len(), 1);
        let resolved_at = 180_000;
        r.eval(resolved_at + RESOLVED_RETENTION_MS, &s, &e, &env, 0).unwrap();
        assert_eq!(r.active.len(), 1, "kept up to the retention");
        r.eval(resolved_at + RESOLVED_RETENTION_MS + 60_000, &s, &e, &env, 0).unwrap();
        assert!(r.active.is_empty(), "dropped after the retention");
    }

    #[test]
    fn restores_for_state() {
        let hold = 3600;
        let mut r = rule("x > 0", hold, 0);
        r.restored = false;
        let s = store_with(&[(0, 1.0), (10_000_000, 1.0)]);
        let e = engine();
        // First evaluation after a restart at 10000s: the alert is new.
        let now = 10_000_000;
        assert!(r.eval(now, &s, &e, &TemplateEnv::default(), 0).unwrap().is_empty(), "no ALERTS before restore");
        // Before the outage it was active since 9000s and last seen at 9600s.
        let fs = Labels::from_pairs([
            ("__name__", "ALERTS_FOR_STATE"),
            ("alertname", "A"),
            ("job", "j"),
            ("severity", "page"),
        ]);
        s.append_samples(&[(fs.clone(), 9_600_000, 9000.0)]).unwrap();
        r.restore_for_state(now, &s, 3_600_000, 600_000);
        let a = r.active.values().next().unwrap();
        // 600s spent pending, 3000s remain; the 400s outage is added.
        assert_eq!(a.active_at, 9_000_000 + 400_000);
        assert!(r.restored);

        // Close to firing: the grace period applies.
        let mut r = rule("x > 0", hold, 0);
        r.restored = false;
        r.eval(now, &s, &e, &TemplateEnv::default(), 0).unwrap();
        let s2 = store_with(&[(0, 1.0)]);
        s2.append_samples(&[(fs, 9_600_000, 6100.0)]).unwrap();
        r.restore_for_state(now, &s2, 3_600_000, 600_000);
        assert_eq!(r.active.values().next().unwrap().active_at, now + 600_000 - 3_600_000);
    }
}
