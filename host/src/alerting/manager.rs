//! The rule manager: one tokio task per group evaluating on its interval at
//! slotted timestamps, reloads that keep alert state, `for` restore at
//! start-up, and snapshots for the HTTP API.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::watch;
use wasmon_query::{Engine, EngineOptions};
use wasmon_storage::{Labels, stale_nan};

use super::alert::{Alert, AlertState, TemplateEnv};
use super::group::{EvalContext, Group, Rule, RuleStatus};
use super::rules::{GroupSpec, RuleSpec};
use super::{AlertSink, RuleStore, duration_ms, now_ms};

#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error("the rule manager must be created inside a tokio runtime")]
    NoRuntime,
}

/// Prometheus' rule manager flags and the parts of the config rules see.
#[derive(Debug, Clone)]
pub struct RuleManagerOptions {
    /// `global.evaluation_interval`: groups without their own `interval`.
    pub default_interval: Duration,
    /// `--rules.alert.resend-delay`.
    pub resend_delay: Duration,
    /// `--rules.alert.for-outage-tolerance`.
    pub outage_tolerance: Duration,
    /// `--rules.alert.for-grace-period`.
    pub for_grace_period: Duration,
    pub external_labels: BTreeMap<String, String>,
    /// `--web.external-url`, for `$externalURL` and generator URLs.
    pub external_url: String,
    pub engine: EngineOptions,
}

impl Default for RuleManagerOptions {
    fn default() -> Self {
        Self {
            default_interval: Duration::from_secs(60),
            resend_delay: Duration::from_secs(60),
            outage_tolerance: Duration::from_secs(3600),
            for_grace_period: Duration::from_secs(600),
            external_labels: BTreeMap::new(),
            external_url: String::new(),
            engine: EngineOptions::default(),
        }
    }
}

/// A rule as the API shows it.
#[derive(Debug, Clone)]
pub struct RuleSnapshot {
    pub spec: RuleSpec,
    /// The expression as Prometheus prints it.
    pub query: String,
    /// Alerting rules: the highest alert state.
    pub state: AlertState,
    /// Alerting rules: pending and firing alerts, sorted by labels.
    pub alerts: Vec<Alert>,
    pub status: RuleStatus,
}

/// A group as the API shows it.
#[derive(Debug, Clone)]
pub struct GroupSnapshot {
    pub name: String,
    pub file: String,
    pub interval: Duration,
    pub limit: usize,
    pub rules: Vec<RuleSnapshot>,
    pub evaluation_time: Duration,
    pub last_evaluation_ms: Option<i64>,
}

impl Group {
    pub fn snapshot(&self) -> GroupSnapshot {
        GroupSnapshot {
            name: self.spec.name.clone(),
            file: self.spec.file.clone(),
            interval: Duration::from_millis(self.interval_ms.max(0) as u64),
            limit: self.spec.limit,
            rules: self
                .rules
                .iter()
                .map(|r| match r {
                    Rule::Recording(r) => RuleSnapshot {
                        spec: r.spec.clone(),
                        query: r.query.clone(),
                        state: AlertState::Inactive,
                        alerts: Vec::new(),
                        status: r.status.clone(),
                    },
                    Rule::Alerting(r) => RuleSnapshot {
                        spec: r.spec.clone(),
                        query: r.query.clone(),
                        state: r.state(),
                        alerts: r.active_alerts().into_iter().cloned().collect(),
                        status: r.status.clone(),
                    },
                })
                .collect(),
            evaluation_time: self.evaluation_time,
            last_evaluation_ms: self.last_evaluation_ms,
        }
    }
}

struct Inner {
    store: Arc<dyn RuleStore>,
    sink: Arc<dyn AlertSink>,
    opts: RuleManagerOptions,
    engine: Engine,
    env: TemplateEnv,
    runtime: tokio::runtime::Handle,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    groups: Vec<Entry>,
    /// Set after the first `update`: groups added later do not restore.
    restored: bool,
}

struct Entry {
    spec: GroupSpec,
    group: Arc<Mutex<Group>>,
    snapshot: Arc<RwLock<Arc<GroupSnapshot>>>,
    stop: watch::Sender<bool>,
}

impl Entry {
    fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

/// Owns the rule groups and runs them. Dropping it stops every group.
pub struct RuleManager {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RuleManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleManager").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl RuleManager {
    /// Must be called inside a tokio runtime; group tasks run on it.
    pub fn new(
        store: Arc<dyn RuleStore>,
        sink: Arc<dyn AlertSink>,
        opts: RuleManagerOptions,
    ) -> Result<Self, ManagerError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ManagerError::NoRuntime)?;
        let engine = Engine::new(opts.engine.clone());
        let env =
            TemplateEnv { external_labels: opts.external_labels.clone(), external_url: opts.external_url.clone() };
        Ok(Self {
            inner: Arc::new(Inner { store, sink, opts, engine, env, runtime, state: Mutex::new(State::default()) }),
        })
    }

    /// Replaces the running groups with `groups` (Prometheus' `Update`).
    /// Unchanged groups keep running untouched; a changed group is restarted
    /// with the alerts and series of rules with the same name and labels; a
    /// removed group's series are marked stale. The first call at start-up
    /// restores `for` state from ALERTS_FOR_STATE. Blocks while a replaced
    /// group finishes its current evaluation.
    pub fn update(&self, groups: Vec<GroupSpec>) {
        let mut st = lock(&self.inner.state);
        let first = !st.restored;
        let mut old: HashMap<(String, String), Entry> =
            st.groups.drain(..).map(|e| ((e.spec.file.clone(), e.spec.name.clone()), e)).collect();
        let mut next = Vec::with_capacity(groups.len());
        for spec in groups {
            let key = (spec.file.clone(), spec.name.clone());
            let prev = old.remove(&key);
            if let Some(e) = prev {
                if e.spec == spec {
                    next.push(e);
                    continue;
                }
                e.stop();
                let mut g = Group::new(spec.clone(), self.inner.opts.default_interval, true);
                g.copy_state(&mut lock(&e.group));
                next.push(self.start(spec, g));
            } else {
                let g = Group::new(spec.clone(), self.inner.opts.default_interval, !first);
                next.push(self.start(spec, g));
            }
        }
        for (_, e) in old {
            e.stop();
            let store = self.inner.store.clone();
            let group = e.group.clone();
            // The group's series end now rather than fading out over the
            // lookback window.
            self.inner.runtime.spawn_blocking(move || {
                let g = lock(&group);
                let ts = now_ms();
                let stale: Vec<(Labels, i64, f64)> =
                    g.written_series().into_iter().map(|l| (l, ts, stale_nan())).collect();
                let _ = store.append_samples(&stale);
            });
        }
        st.groups = next;
        st.restored = true;
    }

    fn start(&self, spec: GroupSpec, group: Group) -> Entry {
        let snapshot = Arc::new(RwLock::new(Arc::new(group.snapshot())));
        let group = Arc::new(Mutex::new(group));
        let (stop, rx) = watch::channel(false);
        self.inner.runtime.spawn(run_group(self.inner.clone(), group.clone(), snapshot.clone(), rx));
        Entry { spec, group, snapshot, stop }
    }

    /// The state of every group as of its last evaluation, in load order.
    pub fn groups_snapshot(&self) -> Vec<Arc<GroupSnapshot>> {
        let st = lock(&self.inner.state);
        st.groups.iter().map(|e| e.snapshot.read().unwrap_or_else(|p| p.into_inner()).clone()).collect()
    }

    /// Stops every group (also done on drop).
    pub fn stop(&self) {
        let mut st = lock(&self.inner.state);
        for e in st.groups.drain(..) {
            e.stop();
        }
    }
}

impl Drop for RuleManager {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn run_group(
    inner: Arc<Inner>,
    group: Arc<Mutex<Group>>,
    snapshot: Arc<RwLock<Arc<GroupSnapshot>>>,
    mut stop: watch::Receiver<bool>,
) {
    let (interval, mut ts) = {
        let g = lock(&group);
        (g.interval_ms, g.eval_timestamp(now_ms()) + g.interval_ms)
    };
    let mut evaluations = 0u32;
    loop {
        let wait = ts - now_ms();
        if wait > 0 {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
                _ = stop.changed() => return,
            }
        }
        if *stop.borrow() {
            return;
        }
        evaluations = evaluations.saturating_add(1);
        let (inner2, group2, snapshot2, stop2) = (inner.clone(), group.clone(), snapshot.clone(), stop.clone());
        let done = tokio::task::spawn_blocking(move || {
            let mut g = lock(&group2);
            // Checked under the lock: a reload may have taken this group's
            // state while we waited for it.
            if *stop2.borrow() {
                return;
            }
            let cx = EvalContext {
                engine: &inner2.engine,
                store: &*inner2.store,
                env: &inner2.env,
                resend_delay_ms: duration_ms(inner2.opts.resend_delay),
            };
            let alerts = g.eval(ts, &cx);
            if !alerts.is_empty() {
                inner2.sink.send(alerts);
            }
            // Like Prometheus, restore after the second evaluation: by then
            // recording rules the alerts depend on have fresh values.
            if g.should_restore && evaluations >= 2 {
                g.restore_for_state(
                    now_ms(),
                    &*inner2.store,
                    inner2.opts.outage_tolerance,
                    inner2.opts.for_grace_period,
                );
            }
            *snapshot2.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(g.snapshot());
        })
        .await;
        if let Err(e) = done {
            tracing::error!(error = %e, "rule group evaluation task failed");
        }
        // Skip slots missed while evaluating took too long.
        let now = now_ms();
        let steps = ((now - ts) / interval).max(1);
        ts += steps * interval;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::rules::parse_rules;
    use crate::alerting::{MemStore, OutgoingAlert};

    #[derive(Default)]
    struct Collect(Mutex<Vec<OutgoingAlert>>);
    impl AlertSink for Collect {
        fn send(&self, alerts: Vec<OutgoingAlert>) {
            lock(&self.0).extend(alerts);
        }
    }

    const RULES: &str = "groups:\n- name: g\n  interval: 100ms\n  rules:\n  - record: r\n    expr: vector(1)\n  - alert: Always\n    expr: r > 0\n";

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_groups_and_keeps_state_across_reloads() {
        let store = Arc::new(MemStore::new());
        let sink = Arc::new(Collect::default());
        let m = RuleManager::new(store.clone(), sink.clone(), RuleManagerOptions::default()).unwrap();
        m.update(parse_rules("f.yml", RULES).unwrap());
        tokio::time::sleep(Duration::from_millis(450)).await;
        let snap = m.groups_snapshot();
        assert_eq!(snap.len(), 1);
        assert!(snap[0].last_evaluation_ms.is_some());
        let alert = &snap[0].rules[1];
        assert_eq!(alert.state, AlertState::Firing);
        let active_at = alert.alerts[0].active_at;
        assert!(!lock(&sink.0).is_empty(), "firing alerts are sent");

        // A reload changing another rule keeps the alert's ActiveAt.
        let changed = RULES.replace("vector(1)", "vector(2)");
        m.update(parse_rules("f.yml", &changed).unwrap());
        tokio::time::sleep(Duration::from_millis(250)).await;
        let snap = m.groups_snapshot();
        assert_eq!(snap[0].rules[1].alerts[0].active_at, active_at);
        m.update(Vec::new());
        assert!(m.groups_snapshot().is_empty());
    }
}
