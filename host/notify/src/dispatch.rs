//! The notifier's state and Alertmanager's dispatch rules: the alert store,
//! aggregation groups and their timers, muting (silences and inhibition) and
//! the notification log that decides whether a flush is worth sending.

use crate::config::{Compiled, Config};
use crate::model::{Alert, AlertError, LabelSet, alert_order, fingerprint, fmt_fingerprint, fmt_labels};
use crate::silence::Silences;
use crate::webhook::{MessageInput, NotifyAlert, message};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use tokio::task::AbortHandle;
use tokio::time::Instant;

/// Resolved alerts stay in the store this long so that Prometheus' re-sends
/// of a resolved alert (for 15 minutes) still merge with the original.
const RESOLVED_KEEP: chrono::Duration = chrono::Duration::minutes(15);
/// Notification-log entries outlive any sane repeat interval, like Alertmanager's retention.
const NFLOG_KEEP: chrono::Duration = chrono::Duration::days(5);

/// An alert as the store keeps it: `ends_at` always set.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Stored {
    pub fp: u64,
    pub labels: LabelSet,
    pub annotations: LabelSet,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub generator_url: String,
    pub updated_at: DateTime<Utc>,
    /// `ends_at` came from `resolve_timeout`, not from the client.
    pub timeout: bool,
}

impl Stored {
    pub fn resolved(&self, now: DateTime<Utc>) -> bool {
        self.ends_at <= now
    }
}

/// Alertmanager's `Alert.Merge`, `new` being the younger update.
fn merge(old: &Stored, new: Stored, now: DateTime<Utc>) -> Stored {
    let mut res = new.clone();
    if old.starts_at < new.starts_at {
        res.starts_at = old.starts_at;
    }
    if new.resolved(now) {
        if old.resolved(now) && old.ends_at > new.ends_at {
            res.ends_at = old.ends_at;
        }
    } else if old.ends_at > new.ends_at && !old.timeout {
        res.ends_at = old.ends_at;
        res.timeout = false;
    }
    res
}

/// (route id, fingerprint of the group labels).
pub(crate) type GroupId = (usize, u64);
/// (receiver, index of the webhook config, group key).
pub(crate) type LogKey = (String, usize, String);

struct Group {
    key: String,
    labels: LabelSet,
    receiver: String,
    group_wait: std::time::Duration,
    group_interval: std::time::Duration,
    repeat_interval: std::time::Duration,
    alerts: BTreeMap<u64, Stored>,
    next_flush: Instant,
    has_flushed: bool,
}

struct LogEntry {
    firing: BTreeSet<u64>,
    resolved: BTreeSet<u64>,
    at: DateTime<Utc>,
}

/// One webhook message waiting to be delivered.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub key: LogKey,
    pub generation: u64,
    pub flush: u64,
    pub receiver: String,
    pub url: String,
    pub body: Bytes,
    pub alerts: usize,
    firing: BTreeSet<u64>,
    resolved: BTreeSet<u64>,
}

struct PendingFlush {
    group: GroupId,
    remaining: usize,
    /// Resolved alerts of the flush, deleted from the group once every
    /// message of the flush got through (unless they changed meanwhile).
    resolved: Vec<(u64, DateTime<Utc>)>,
}

/// Per-receiver counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiverStats {
    pub notifications_sent: u64,
    pub notifications_failed: u64,
}

/// Firing source alerts per inhibit rule (fingerprint, labels), by fingerprint.
pub(crate) struct Sources(Vec<Vec<(u64, LabelSet)>>);

/// An alert with its current status, for the API.
pub(crate) struct AlertView {
    pub alert: Stored,
    pub receivers: Vec<String>,
    pub silenced_by: Vec<String>,
    pub inhibited_by: Vec<String>,
}

pub(crate) struct State {
    pub config: Config,
    pub cfg: Arc<Compiled>,
    pub alerts: HashMap<u64, Stored>,
    groups: HashMap<GroupId, Group>,
    log: HashMap<LogKey, LogEntry>,
    pub silences: Silences,
    /// Silences changed but could not be written yet.
    pub silences_dirty: bool,
    /// Message in flight per log key: (generation, flush id, task).
    inflight: HashMap<LogKey, (u64, u64, AbortHandle)>,
    flushes: HashMap<u64, PendingFlush>,
    next_id: u64,
    pub per_receiver: BTreeMap<String, ReceiverStats>,
}

impl State {
    pub fn new(config: Config, cfg: Compiled, silences: Silences) -> Self {
        State {
            config,
            cfg: Arc::new(cfg),
            alerts: HashMap::new(),
            groups: HashMap::new(),
            log: HashMap::new(),
            silences,
            silences_dirty: false,
            inflight: HashMap::new(),
            flushes: HashMap::new(),
            next_id: 0,
            per_receiver: BTreeMap::new(),
        }
    }

    /// New config: groups are rebuilt from the stored alerts (Alertmanager
    /// does the same on reload); the notification log is kept, so unchanged
    /// groups are not notified again.
    pub fn reload(&mut self, config: Config, cfg: Compiled, inst: Instant) {
        self.config = config;
        self.cfg = Arc::new(cfg);
        self.groups.clear();
        self.flushes.clear();
        let now = crate::model::now();
        let alerts: Vec<Stored> = self.alerts.values().cloned().collect();
        for a in &alerts {
            self.route(a, now, inst);
        }
    }

    /// Stores one alert (merged with the one it updates) and adds it to its groups.
    pub fn ingest(&mut self, alert: Alert, now: DateTime<Utc>, inst: Instant) -> Result<(), Vec<AlertError>> {
        let problems = alert.validate();
        if !problems.is_empty() {
            return Err(problems);
        }
        let resolve_timeout =
            chrono::Duration::from_std(self.cfg.resolve_timeout).unwrap_or(chrono::Duration::minutes(5));
        let fp = fingerprint(&alert.labels);
        let mut new = Stored {
            fp,
            ends_at: alert.ends_at.unwrap_or_else(|| now.checked_add_signed(resolve_timeout).unwrap_or(now)),
            timeout: alert.ends_at.is_none(),
            labels: alert.labels,
            annotations: alert.annotations,
            starts_at: alert.starts_at,
            generator_url: alert.generator_url,
            updated_at: now,
        };
        if let Some(old) = self.alerts.get(&fp) {
            // Alertmanager merges only updates that overlap the stored alert's activity.
            let overlaps = (new.ends_at > old.starts_at && new.ends_at < old.ends_at)
                || (new.starts_at > old.starts_at && new.starts_at < old.ends_at);
            if overlaps {
                new = merge(old, new, now);
            }
        }
        self.alerts.insert(fp, new.clone());
        self.route(&new, now, inst);
        Ok(())
    }

    fn route(&mut self, a: &Stored, now: DateTime<Utc>, inst: Instant) {
        let cfg = Arc::clone(&self.cfg);
        let mut routes = Vec::new();
        cfg.root.matches(&a.labels, &mut routes);
        for r in routes {
            let labels = r.group_labels(&a.labels);
            let id = (r.id, fingerprint(&labels));
            let group = self.groups.entry(id).or_insert_with(|| Group {
                key: format!("{}:{}", r.key, fmt_labels(&labels)),
                labels,
                receiver: r.receiver.clone(),
                group_wait: r.group_wait,
                group_interval: r.group_interval,
                repeat_interval: r.repeat_interval,
                alerts: BTreeMap::new(),
                next_flush: inst + r.group_wait,
                has_flushed: false,
            });
            group.alerts.insert(a.fp, a.clone());
            // An alert that has been firing longer than group_wait (e.g. after a
            // restart) need not wait again: Alertmanager flushes such groups at once.
            let waited = chrono::Duration::from_std(group.group_wait)
                .ok()
                .and_then(|w| a.starts_at.checked_add_signed(w))
                .is_some_and(|t| t < now);
            if !group.has_flushed && waited {
                group.next_flush = inst;
            }
        }
    }

    /// Receivers of the routes an alert goes to.
    pub fn receivers_for(&self, labels: &LabelSet) -> Vec<String> {
        let mut routes = Vec::new();
        self.cfg.root.matches(labels, &mut routes);
        let mut out: Vec<String> = Vec::new();
        for r in routes {
            if !out.contains(&r.receiver) {
                out.push(r.receiver.clone());
            }
        }
        out
    }

    /// Firing alerts matching each inhibit rule's source side, computed once
    /// per tick or request instead of once per target alert.
    pub fn sources(&self, now: DateTime<Utc>) -> Sources {
        use crate::matcher::matches_all;
        let per_rule = self
            .cfg
            .inhibit_rules
            .iter()
            .map(|rule| {
                let mut v: Vec<(u64, LabelSet)> = self
                    .alerts
                    .values()
                    .filter(|s| !s.resolved(now) && matches_all(&rule.source, &s.labels))
                    .map(|s| (s.fp, s.labels.clone()))
                    .collect();
                v.sort_by_key(|(fp, _)| *fp);
                v
            })
            .collect();
        Sources(per_rule)
    }

    /// Fingerprint of the firing alert that inhibits `labels` (the first match,
    /// as Alertmanager reports it), empty if none.
    pub fn inhibited_by(&self, sources: &Sources, labels: &LabelSet) -> Vec<String> {
        use crate::matcher::matches_all;
        for (rule, sources) in self.cfg.inhibit_rules.iter().zip(&sources.0) {
            if !matches_all(&rule.target, labels) {
                continue;
            }
            // An alert matching both sides must not be muted by others that do too,
            // or two such alerts would mute each other.
            let two_sided = matches_all(&rule.source, labels);
            let found = sources.iter().find(|(_, s)| {
                rule.equal.iter().all(|n| s.get(n) == labels.get(n)) && !(two_sided && matches_all(&rule.target, s))
            });
            if let Some((fp, _)) = found {
                return vec![fmt_fingerprint(*fp)];
            }
        }
        Vec::new()
    }

    fn muted(&self, sources: &Sources, labels: &LabelSet, now: DateTime<Utc>) -> bool {
        !self.inhibited_by(sources, labels).is_empty() || !self.silences.mutes(labels, now).is_empty()
    }

    pub fn view(&self, sources: &Sources, a: &Stored, now: DateTime<Utc>) -> AlertView {
        AlertView {
            alert: a.clone(),
            receivers: self.receivers_for(&a.labels),
            silenced_by: self.silences.mutes(&a.labels, now),
            inhibited_by: self.inhibited_by(sources, &a.labels),
        }
    }

    /// Flushes every group whose timer is due and returns the messages to send
    /// and when to look again.
    pub fn tick(&mut self, now: DateTime<Utc>, inst: Instant) -> (Vec<Job>, Option<Instant>) {
        let due: Vec<GroupId> = self.groups.iter().filter(|(_, g)| g.next_flush <= inst).map(|(id, _)| *id).collect();
        let mut jobs = Vec::new();
        if due.is_empty() {
            return (jobs, self.groups.values().map(|g| g.next_flush).min());
        }
        let sources = self.sources(now);
        for id in due {
            self.flush(id, &sources, now, inst, &mut jobs);
        }
        let next = self.groups.values().map(|g| g.next_flush).min();
        (jobs, next)
    }

    fn flush(&mut self, id: GroupId, sources: &Sources, now: DateTime<Utc>, inst: Instant, jobs: &mut Vec<Job>) {
        let Some(group) = self.groups.get_mut(&id) else { return };
        if group.alerts.is_empty() {
            self.groups.remove(&id);
            return;
        }
        group.has_flushed = true;
        group.next_flush = inst + group.group_interval;
        let mut alerts: Vec<(NotifyAlert, DateTime<Utc>)> = group
            .alerts
            .values()
            .map(|s| {
                let resolved = s.resolved(now);
                let n = NotifyAlert {
                    fp: s.fp,
                    labels: s.labels.clone(),
                    annotations: s.annotations.clone(),
                    starts_at: s.starts_at,
                    ends_at: resolved.then_some(s.ends_at),
                    generator_url: s.generator_url.clone(),
                };
                (n, s.updated_at)
            })
            .collect();
        alerts.sort_by(|a, b| alert_order(&a.0.labels, &b.0.labels));
        let resolved_ids: Vec<(u64, DateTime<Utc>)> =
            alerts.iter().filter(|(a, _)| a.resolved()).map(|(a, u)| (a.fp, *u)).collect();
        let (key, labels, receiver, repeat) =
            (group.key.clone(), group.labels.clone(), group.receiver.clone(), group.repeat_interval);
        // Muted alerts (silenced or inhibited) drop out entirely, resolved ones
        // included: there is no resolved notice for an alert muted when it resolves.
        let kept: Vec<&NotifyAlert> =
            alerts.iter().map(|(a, _)| a).filter(|a| !self.muted(sources, &a.labels, now)).collect();
        let flush_id = self.next_id;
        self.next_id += 1;
        let mut pending = 0;
        if !kept.is_empty() {
            let firing: BTreeSet<u64> = kept.iter().filter(|a| !a.resolved()).map(|a| a.fp).collect();
            let resolved: BTreeSet<u64> = kept.iter().filter(|a| a.resolved()).map(|a| a.fp).collect();
            let hooks = self.cfg.receivers.get(&receiver).cloned().unwrap_or_default();
            for (i, hook) in hooks.iter().enumerate() {
                let log_key = (receiver.clone(), i, key.clone());
                if !needs_update(self.log.get(&log_key), &firing, &resolved, hook.send_resolved, repeat, now) {
                    continue;
                }
                let sent: Vec<&NotifyAlert> =
                    kept.iter().copied().filter(|a| hook.send_resolved || !a.resolved()).collect();
                if sent.is_empty() {
                    // Nothing to tell this receiver, but the log must learn that the
                    // firing alerts are gone so they count as new if they come back.
                    self.log.insert(log_key, LogEntry { firing: firing.clone(), resolved: resolved.clone(), at: now });
                    continue;
                }
                let input = MessageInput {
                    receiver: &receiver,
                    group_labels: &labels,
                    group_key: &key,
                    external_url: &self.cfg.external_url,
                    max_alerts: hook.max_alerts,
                };
                let generation = self.next_id;
                self.next_id += 1;
                jobs.push(Job {
                    key: log_key,
                    generation,
                    flush: flush_id,
                    receiver: receiver.clone(),
                    url: hook.url.clone(),
                    body: message(&input, &sent),
                    alerts: sent.len(),
                    firing: firing.clone(),
                    resolved: resolved.clone(),
                });
                pending += 1;
            }
        }
        if pending == 0 {
            self.delete_resolved(id, &resolved_ids);
        } else {
            self.flushes.insert(flush_id, PendingFlush { group: id, remaining: pending, resolved: resolved_ids });
        }
    }

    fn delete_resolved(&mut self, id: GroupId, resolved: &[(u64, DateTime<Utc>)]) {
        let Some(group) = self.groups.get_mut(&id) else { return };
        for (fp, updated) in resolved {
            // Only if the alert did not fire again (or change) meanwhile.
            if group.alerts.get(fp).is_some_and(|a| a.updated_at == *updated) {
                group.alerts.remove(fp);
            }
        }
    }

    /// Records a job as in flight; returns the handle of the job it supersedes.
    pub fn start_job(&mut self, job: &Job, handle: AbortHandle) -> Option<AbortHandle> {
        let (_, old_flush, old) = self.inflight.insert(job.key.clone(), (job.generation, job.flush, handle))?;
        // The superseded job's flush can no longer complete; its resolved
        // alerts stay in the group and go out with the newer message.
        if old_flush != job.flush {
            self.flushes.remove(&old_flush);
        }
        Some(old)
    }

    pub fn job_succeeded(&mut self, job: &Job, now: DateTime<Utc>) {
        if self.inflight.get(&job.key).is_some_and(|(g, _, _)| *g == job.generation) {
            self.inflight.remove(&job.key);
        }
        self.per_receiver.entry(job.receiver.clone()).or_default().notifications_sent += 1;
        self.log
            .insert(job.key.clone(), LogEntry { firing: job.firing.clone(), resolved: job.resolved.clone(), at: now });
        let done = match self.flushes.get_mut(&job.flush) {
            Some(f) => {
                f.remaining = f.remaining.saturating_sub(1);
                f.remaining == 0
            }
            None => false,
        };
        if done && let Some(f) = self.flushes.remove(&job.flush) {
            self.delete_resolved(f.group, &f.resolved);
        }
    }

    pub fn job_failed(&mut self, job: &Job, give_up: bool) {
        self.per_receiver.entry(job.receiver.clone()).or_default().notifications_failed += 1;
        if give_up {
            if self.inflight.get(&job.key).is_some_and(|(g, _, _)| *g == job.generation) {
                self.inflight.remove(&job.key);
            }
            self.flushes.remove(&job.flush);
        }
    }

    pub fn abort_all(&mut self) {
        for (_, (_, _, h)) in self.inflight.drain() {
            h.abort();
        }
        self.flushes.clear();
    }

    /// Periodic clean-up; returns true if silences changed and should be written.
    pub fn maintain(&mut self, now: DateTime<Utc>) -> bool {
        self.alerts.retain(|_, a| a.ends_at.checked_add_signed(RESOLVED_KEEP).is_none_or(|t| t > now));
        self.log.retain(|_, e| e.at + NFLOG_KEEP > now);
        self.silences.gc(now)
    }

    pub fn groups_count(&self) -> usize {
        self.groups.len()
    }
}

/// Alertmanager's `DedupStage.needsUpdate`.
fn needs_update(
    entry: Option<&LogEntry>,
    firing: &BTreeSet<u64>,
    resolved: &BTreeSet<u64>,
    send_resolved: bool,
    repeat: std::time::Duration,
    now: DateTime<Utc>,
) -> bool {
    let Some(e) = entry else {
        // Never notified: only worth it if something fires.
        return !firing.is_empty();
    };
    if !firing.is_subset(&e.firing) {
        return true;
    }
    if firing.is_empty() {
        // Everything resolved: tell the receiver, unless it never heard of
        // the alerts (they fired and resolved between two flushes).
        return !e.firing.is_empty();
    }
    if send_resolved && !resolved.is_subset(&e.resolved) {
        return true;
    }
    chrono::Duration::from_std(repeat).ok().and_then(|r| now.checked_sub_signed(r)).is_some_and(|t| e.at < t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[u64]) -> BTreeSet<u64> {
        v.iter().copied().collect()
    }

    #[test]
    fn dedup_rules() {
        let now = crate::model::now();
        let hour = std::time::Duration::from_secs(3600);
        let entry = |f: &[u64], r: &[u64], ago: i64| LogEntry {
            firing: set(f),
            resolved: set(r),
            at: now - chrono::Duration::seconds(ago),
        };
        // Never notified: only if something fires.
        assert!(needs_update(None, &set(&[1]), &set(&[]), true, hour, now));
        assert!(!needs_update(None, &set(&[]), &set(&[1]), true, hour, now));
        // A new firing alert, or one that resolved.
        assert!(needs_update(Some(&entry(&[1], &[], 1)), &set(&[1, 2]), &set(&[]), true, hour, now));
        assert!(needs_update(Some(&entry(&[1, 2], &[], 1)), &set(&[1]), &set(&[2]), true, hour, now));
        assert!(!needs_update(Some(&entry(&[1, 2], &[], 1)), &set(&[1]), &set(&[2]), false, hour, now));
        // All resolved: always, so the log forgets them; unless nobody heard of them.
        assert!(needs_update(Some(&entry(&[1], &[], 1)), &set(&[]), &set(&[1]), false, hour, now));
        assert!(!needs_update(Some(&entry(&[], &[1], 1)), &set(&[]), &set(&[2]), true, hour, now));
        // Unchanged: only after the repeat interval.
        assert!(!needs_update(Some(&entry(&[1], &[], 10)), &set(&[1]), &set(&[]), true, hour, now));
        assert!(needs_update(Some(&entry(&[1], &[], 3601)), &set(&[1]), &set(&[]), true, hour, now));
    }

    fn stored(start: i64, end: i64, updated: i64, timeout: bool, base: DateTime<Utc>) -> Stored {
        let s = |x: i64| base + chrono::Duration::seconds(x);
        Stored {
            fp: 1,
            labels: LabelSet::new(),
            annotations: LabelSet::new(),
            starts_at: s(start),
            ends_at: s(end),
            generator_url: String::new(),
            updated_at: s(updated),
            timeout,
        }
    }

    #[test]
    fn merge_rules() {
        let now = crate::model::now();
        // Earliest start wins; a later explicit end is kept over a timeout end.
        let old = stored(-100, 600, -10, false, now);
        let new = stored(-50, 300, 0, true, now);
        let m = merge(&old, new, now);
        assert_eq!((m.starts_at, m.ends_at), (old.starts_at, old.ends_at));
        // A resolving update wins over a later timeout end.
        let old = stored(-100, 300, -10, true, now);
        let new = stored(-100, -1, 0, false, now);
        assert_eq!(merge(&old, new.clone(), now).ends_at, new.ends_at);
    }
}
