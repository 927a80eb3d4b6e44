//! Leader election on a `coordination.k8s.io/v1` Lease with client-go's
//! semantics, so a wasmon Deployment can share a lease protocol with
//! anything else that speaks it: `holderIdentity`, `leaseDurationSeconds`,
//! `acquireTime`, `renewTime`, `leaseTransitions`.
//!
//! Expiry is judged by *local* time since this elector last saw the record
//! change (client-go's `observedTime`), never by comparing the holder's
//! timestamps with our clock, so clock skew between nodes does not matter.
//! Writes use the lease's resourceVersion: a concurrent writer gets a 409
//! Conflict and simply tries again on the next round.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::PostParams;
use kube::{Api, Client};
use std::time::Duration;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderElectionConfig {
    pub namespace: String,
    /// The Lease's name.
    pub name: String,
    /// Unique per candidate (the pod name).
    pub identity: String,
    /// How long a lease is good for without renewal (client-go default 15 s).
    pub lease_duration: Duration,
    /// A leader that cannot renew for this long steps down (default 10 s);
    /// shorter than `lease_duration`, so it steps down before anyone else
    /// may take over.
    pub renew_deadline: Duration,
    /// Time between attempts (default 2 s).
    pub retry_period: Duration,
}

impl LeaderElectionConfig {
    pub fn new(namespace: &str, name: &str, identity: &str) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.identity.is_empty() {
            return Err("leader election identity must not be empty".into());
        }
        if self.lease_duration <= self.renew_deadline {
            return Err("lease_duration must be greater than renew_deadline".into());
        }
        if self.renew_deadline <= self.retry_period {
            return Err("renew_deadline must be greater than retry_period".into());
        }
        if self.lease_duration.as_secs() < 1 {
            return Err("lease_duration must be at least 1s (leaseDurationSeconds is whole seconds)".into());
        }
        Ok(())
    }
}

/// A running candidate. Dropping it stops it *without* releasing the lease
/// (as a crash would); [`LeaderElector::shutdown`] releases it so another
/// candidate takes over at once.
#[derive(Debug)]
pub struct LeaderElector {
    is_leader: watch::Receiver<bool>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for LeaderElector {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl LeaderElector {
    /// Start campaigning. Errors only for an invalid config.
    pub fn start(client: Client, config: LeaderElectionConfig) -> Result<Self, String> {
        config.validate()?;
        let (tx, rx) = watch::channel(false);
        let (stop_tx, stop_rx) = oneshot::channel();
        let api: Api<Lease> = Api::namespaced(client, &config.namespace);
        let task = tokio::spawn(campaign(Candidate::new(api, config), tx, stop_rx));
        Ok(Self { is_leader: rx, stop: Some(stop_tx), task: Some(task) })
    }

    /// `true` while this candidate holds the lease.
    pub fn is_leader(&self) -> watch::Receiver<bool> {
        self.is_leader.clone()
    }

    pub fn leading(&self) -> bool {
        *self.is_leader.borrow()
    }

    /// Stop; if leading, release the lease (holder cleared) first.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

struct Candidate {
    api: Api<Lease>,
    config: LeaderElectionConfig,
    /// The last record seen and when (local monotonic time) it changed.
    observed: Option<(LeaseSpec, Instant)>,
}

fn now_micro() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

impl Candidate {
    fn new(api: Api<Lease>, config: LeaderElectionConfig) -> Self {
        Self { api, config, observed: None }
    }

    fn duration_secs(&self) -> i32 {
        i32::try_from(self.config.lease_duration.as_secs()).unwrap_or(i32::MAX)
    }

    fn observe(&mut self, spec: &LeaseSpec) {
        if self.observed.as_ref().map(|(s, _)| s) != Some(spec) {
            self.observed = Some((spec.clone(), Instant::now()));
        }
    }

    /// One round: take the lease if free or expired, renew it if ours.
    async fn try_acquire_or_renew(&mut self) -> bool {
        let me = self.config.identity.clone();
        let current = match self.api.get_opt(&self.config.name).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(lease = %self.config.name, error = %e, "reading the leader lease failed");
                return false;
            }
        };
        let Some(mut lease) = current else {
            let now = now_micro();
            let spec = LeaseSpec {
                holder_identity: Some(me),
                lease_duration_seconds: Some(self.duration_secs()),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(0),
                ..Default::default()
            };
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(spec.clone()),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => {
                    self.observed = Some((spec, Instant::now()));
                    true
                }
                Err(e) => {
                    if !is_status(&e, 409) {
                        tracing::warn!(lease = %self.config.name, error = %e, "creating the leader lease failed");
                    }
                    false
                }
            };
        };
        let old = lease.spec.clone().unwrap_or_default();
        self.observe(&old);
        let holder = old.holder_identity.clone().unwrap_or_default();
        let ours = holder == me;
        let observed_at = self.observed.as_ref().map_or_else(Instant::now, |(_, t)| *t);
        let held_for = Duration::from_secs(u64::try_from(old.lease_duration_seconds.unwrap_or(0)).unwrap_or(0));
        if !holder.is_empty() && !ours && observed_at + held_for > Instant::now() {
            return false;
        }
        let now = now_micro();
        let spec = LeaseSpec {
            holder_identity: Some(me),
            lease_duration_seconds: Some(self.duration_secs()),
            acquire_time: if ours { old.acquire_time.clone() } else { Some(now.clone()) },
            renew_time: Some(now),
            lease_transitions: Some(old.lease_transitions.unwrap_or(0) + i32::from(!ours)),
            ..old
        };
        lease.spec = Some(spec.clone());
        match self.api.replace(&self.config.name, &PostParams::default(), &lease).await {
            Ok(_) => {
                self.observed = Some((spec, Instant::now()));
                true
            }
            Err(e) => {
                // 409: someone else wrote first; the next round re-reads.
                if !is_status(&e, 409) {
                    tracing::warn!(lease = %self.config.name, error = %e, "updating the leader lease failed");
                }
                false
            }
        }
    }

    /// Give the lease up (client-go's `release`): clear the holder so the
    /// next candidate need not wait for expiry.
    async fn release(&mut self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.config.name).await else { return };
        let old = lease.spec.clone().unwrap_or_default();
        if old.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        let now = now_micro();
        lease.spec = Some(LeaseSpec {
            holder_identity: Some(String::new()),
            lease_duration_seconds: Some(1),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            ..old
        });
        if let Err(e) = self.api.replace(&self.config.name, &PostParams::default(), &lease).await {
            tracing::warn!(lease = %self.config.name, error = %e, "releasing the leader lease failed");
        }
    }
}

/// Sleep `d` with up to 20% jitter (client-go's `JitterUntil(.., 1.2)`),
/// spreading candidates' attempts apart.
fn jittered(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |t| t.subsec_nanos());
    d + d.mul_f64(f64::from(nanos % 1000) / 5000.0)
}

async fn campaign(mut c: Candidate, tx: watch::Sender<bool>, mut stop: oneshot::Receiver<()>) {
    let mut last_renew = Instant::now();
    loop {
        let leading = *tx.borrow();
        let ok = tokio::select! {
            ok = c.try_acquire_or_renew() => ok,
            _ = &mut stop => break,
        };
        match (leading, ok) {
            (false, true) => {
                tracing::info!(lease = %c.config.name, identity = %c.config.identity, "became leader");
                last_renew = Instant::now();
                tx.send_replace(true);
            }
            (true, true) => last_renew = Instant::now(),
            (true, false) if last_renew.elapsed() >= c.config.renew_deadline => {
                tracing::warn!(lease = %c.config.name, identity = %c.config.identity,
                    "could not renew the leader lease within the renew deadline; stepping down");
                tx.send_replace(false);
            }
            _ => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(jittered(c.config.retry_period)) => {}
            _ = &mut stop => break,
        }
    }
    if *tx.borrow() {
        tx.send_replace(false);
        c.release().await;
    }
}
