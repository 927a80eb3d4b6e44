//! The built-in notifier: Alertmanager's routing, grouping, inhibition and
//! silences for setups without an Alertmanager, delivering to webhooks.
//!
//! Semantics follow Alertmanager 0.25 (the version Debian ships and the
//! tests compare with): the same config keys, the same v2 API subset that
//! Prometheus and amtool use, and the same webhook body.
//!
//! ```yaml
//! global:
//!   resolve_timeout: 5m          # alerts without endsAt resolve this long after the last push
//! route:
//!   receiver: ops                # required at the root; children inherit unset options
//!   group_by: [alertname, cluster]   # or ['...'] for every label
//!   group_wait: 30s
//!   group_interval: 5m
//!   repeat_interval: 4h
//!   routes:
//!     - matchers: ['severity="page"', 'team=~"db|infra"']
//!       receiver: pager
//!       continue: true           # keep matching siblings
//! receivers:
//!   - name: ops
//!     webhook_configs:
//!       - url: http://127.0.0.1:5001/hook   # http only for now
//!         send_resolved: true
//!         max_alerts: 0
//!   - name: pager
//! inhibit_rules:
//!   - source_matchers: ['severity="critical"']
//!     target_matchers: ['severity="warning"']
//!     equal: [cluster]
//! ```

mod api;
pub mod config;
mod dispatch;
pub mod matcher;
pub mod model;
pub mod silence;
mod webhook;

pub use config::{Config, ConfigError, PromDuration};
pub use dispatch::ReceiverStats;
pub use matcher::{MatchOp, Matcher, MatcherError};
pub use model::{Alert, AlertError, LabelSet};
pub use silence::{Silence, SilenceError, SilenceMatcher, SilenceState};
pub use webhook::WebhookError;

use dispatch::{Job, State};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Retry backoff for a failing webhook: 1s doubling up to 1m.
const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// One delivery attempt may take this long (Alertmanager's minimum notify timeout).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often stale alerts, log entries and old silences are cleaned up.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum NotifierError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Silences(#[from] SilenceError),
    #[error("cannot create state directory {path}: {reason}")]
    StateDir { path: String, reason: String },
}

/// Counters for the host to export as metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifierStats {
    /// Alerts accepted (API and [`Notifier::push`]).
    pub alerts_received: u64,
    /// Alerts rejected as invalid.
    pub alerts_invalid: u64,
    /// Alerts currently firing.
    pub alerts_firing: u64,
    /// Aggregation groups currently alive.
    pub groups: u64,
    pub silences_active: u64,
    /// Webhook messages delivered.
    pub notifications_sent: u64,
    /// Failed delivery attempts (each retry counts).
    pub notifications_failed: u64,
    /// Messages abandoned because a newer one for the same group replaced them.
    pub notifications_superseded: u64,
    /// Failed writes of the silences file (retried at the next change or clean-up).
    pub state_write_failures: u64,
    pub receivers: BTreeMap<String, ReceiverStats>,
}

#[derive(Default)]
struct Counters {
    alerts_received: AtomicU64,
    alerts_invalid: AtomicU64,
    sent: AtomicU64,
    failed: AtomicU64,
    superseded: AtomicU64,
    write_failures: AtomicU64,
}

struct Inner {
    state: Mutex<State>,
    wake: Arc<Notify>,
    client: webhook::HttpClient,
    counters: Counters,
    started: AtomicBool,
    dispatcher: Mutex<Option<tokio::task::AbortHandle>>,
    started_at: chrono::DateTime<chrono::Utc>,
}

/// The notifier. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").finish_non_exhaustive()
    }
}

impl Notifier {
    /// Validates `config` and loads silences from `state_dir` (created if missing).
    pub fn new(config: Config, state_dir: &Path) -> Result<Self, NotifierError> {
        let compiled = config::compile(&config)?;
        std::fs::create_dir_all(state_dir)
            .map_err(|e| NotifierError::StateDir { path: state_dir.display().to_string(), reason: e.to_string() })?;
        let silences = silence::Silences::load(state_dir)?;
        let state = State::new(config, compiled, silences);
        Ok(Notifier {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                wake: Arc::new(Notify::new()),
                client: webhook::client(),
                counters: Counters::default(),
                started: AtomicBool::new(false),
                dispatcher: Mutex::new(None),
                started_at: model::now(),
            }),
        })
    }

    /// Accepts alerts (like `POST /api/v2/alerts`). Invalid ones are logged and dropped.
    pub fn push(&self, alerts: Vec<Alert>) {
        for (alert, problems) in self.ingest(alerts) {
            let problems: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
            tracing::warn!(labels = %model::fmt_labels(&alert), problems = %problems.join("; "), "dropping invalid alert");
        }
    }

    /// Ingests alerts and returns the rejected ones (labels, reasons).
    fn ingest(&self, alerts: Vec<Alert>) -> Vec<(LabelSet, Vec<AlertError>)> {
        let now = model::now();
        let inst = Instant::now();
        let mut rejected = Vec::new();
        {
            let mut st = self.inner.lock();
            for a in alerts {
                let labels = a.labels.clone();
                match st.ingest(a, now, inst) {
                    Ok(()) => {
                        self.inner.counters.alerts_received.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(problems) => {
                        self.inner.counters.alerts_invalid.fetch_add(1, Ordering::Relaxed);
                        rejected.push((labels, problems));
                    }
                }
            }
        }
        self.inner.wake.notify_one();
        rejected
    }

    /// Spawns the dispatcher on the current tokio runtime (once; later calls do nothing).
    pub fn start(&self) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::error!("notifier not started: start() must be called inside a tokio runtime");
            return;
        };
        if self.inner.started.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        let wake = Arc::clone(&self.inner.wake);
        let handle = rt.spawn(run(weak, wake));
        *lock(&self.inner.dispatcher) = Some(handle.abort_handle());
    }

    /// Stops the dispatcher and every delivery in flight.
    pub fn stop(&self) {
        if let Some(h) = lock(&self.inner.dispatcher).take() {
            h.abort();
        }
        self.inner.lock().abort_all();
        self.inner.started.store(false, Ordering::SeqCst);
    }

    /// Applies a new config. Groups are rebuilt from the current alerts; what
    /// was already notified is not notified again.
    pub fn reload(&self, config: Config) -> Result<(), NotifierError> {
        let compiled = config::compile(&config)?;
        self.inner.lock().reload(config, compiled, Instant::now());
        self.inner.wake.notify_one();
        Ok(())
    }

    /// Alertmanager's v2 API subset (alerts, silences, status, receivers).
    pub fn router(&self) -> axum::Router {
        api::router(self.clone())
    }

    pub fn stats(&self) -> NotifierStats {
        let c = &self.inner.counters;
        let now = model::now();
        let st = self.inner.lock();
        NotifierStats {
            alerts_received: c.alerts_received.load(Ordering::Relaxed),
            alerts_invalid: c.alerts_invalid.load(Ordering::Relaxed),
            alerts_firing: st.alerts.values().filter(|a| !a.resolved(now)).count() as u64,
            groups: st.groups_count() as u64,
            silences_active: st.silences.count_active(now) as u64,
            notifications_sent: c.sent.load(Ordering::Relaxed),
            notifications_failed: c.failed.load(Ordering::Relaxed),
            notifications_superseded: c.superseded.load(Ordering::Relaxed),
            state_write_failures: c.write_failures.load(Ordering::Relaxed),
            receivers: st.per_receiver.clone(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take the notifier down with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn persist_silences(&self, st: &mut State) {
        match st.silences.persist() {
            Ok(()) => st.silences_dirty = false,
            Err(e) => {
                st.silences_dirty = true;
                self.counters.write_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "silences not saved; will retry");
            }
        }
    }

    /// Flushes due groups and spawns their deliveries; returns when to run again.
    fn tick(self: &Arc<Self>, maintenance_due: bool) -> Instant {
        let now = model::now();
        let inst = Instant::now();
        let mut st = self.lock();
        if maintenance_due && (st.maintain(now) || st.silences_dirty) {
            self.persist_silences(&mut st);
        }
        let (jobs, next) = st.tick(now, inst);
        for job in jobs {
            let weak = Arc::downgrade(self);
            let client = self.client.clone();
            // Spawned under the state lock so the task cannot report back before
            // it is registered as the group's message in flight.
            let handle = tokio::spawn(deliver(weak, client, job.clone()));
            if let Some(old) = st.start_job(&job, handle.abort_handle()) {
                old.abort();
                self.counters.superseded.fetch_add(1, Ordering::Relaxed);
            }
        }
        let cap = inst + MAINTENANCE_EVERY;
        next.map_or(cap, |n| n.min(cap))
    }
}

async fn run(weak: Weak<Inner>, wake: Arc<Notify>) {
    let mut next_maintenance = Instant::now() + MAINTENANCE_EVERY;
    loop {
        let maintenance_due = Instant::now() >= next_maintenance;
        if maintenance_due {
            next_maintenance = Instant::now() + MAINTENANCE_EVERY;
        }
        let next = match weak.upgrade() {
            Some(inner) => inner.tick(maintenance_due),
            None => return,
        };
        let deadline = next.min(next_maintenance);
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {}
            _ = wake.notified() => {}
        }
    }
}

/// Sends one message until it gets through, the receiver rejects it for
/// good, or a newer message for the same group aborts this task.
async fn deliver(weak: Weak<Inner>, client: webhook::HttpClient, job: Job) {
    let mut backoff = BACKOFF_START;
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let result = webhook::post(&client, &job.url, job.body.clone(), ATTEMPT_TIMEOUT).await;
        let Some(inner) = weak.upgrade() else { return };
        match result {
            Ok(()) => {
                inner.counters.sent.fetch_add(1, Ordering::Relaxed);
                inner.lock().job_succeeded(&job, model::now());
                tracing::debug!(receiver = %job.receiver, url = %job.url, alerts = job.alerts, "notification sent");
                return;
            }
            Err(e) => {
                inner.counters.failed.fetch_add(1, Ordering::Relaxed);
                let give_up = !e.retryable();
                inner.lock().job_failed(&job, give_up);
                tracing::warn!(
                    receiver = %job.receiver,
                    url = %job.url,
                    attempt,
                    error = %e,
                    retry = !give_up,
                    "webhook notification failed"
                );
                if give_up {
                    return;
                }
            }
        }
        drop(inner);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}
