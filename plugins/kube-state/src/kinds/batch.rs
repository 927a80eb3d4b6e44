//! Jobs and CronJobs.

use super::Context;
use crate::common::*;
use crate::cron::Schedule;
use serde::Deserialize;

#[derive(Deserialize)]
struct Raw<S, T> {
    #[serde(default)]
    metadata: RawMeta,
    #[serde(default)]
    spec: S,
    #[serde(default)]
    status: T,
}

fn opt(out: &mut Sink, family: usize, base: &[(&'static str, &str)], value: Option<i64>) {
    if let Some(v) = value {
        out.push(family, base, &[], v as f64);
    }
}

// --- Jobs ----------------------------------------------------------------------------

pub mod job {
    use super::*;
    families!(F, SPECS {
        Annotations => "kube_job_annotations", Gauge, "Kubernetes annotations converted to Prometheus labels.";
        Info => "kube_job_info", Gauge, "Information about job.";
        Labels => "kube_job_labels", Gauge, "Kubernetes labels converted to Prometheus labels.";
        Owner => "kube_job_owner", Gauge, "Information about the Job's owner.";
        Parallelism => "kube_job_spec_parallelism", Gauge, "The maximum desired number of pods the job should run at any given time.";
        Completions => "kube_job_spec_completions", Gauge, "The desired number of successfully finished pods the job should be run with.";
        ActiveDeadline => "kube_job_spec_active_deadline_seconds", Gauge, "The duration in seconds relative to the startTime that the job may be active before the system tries to terminate it.";
        Active => "kube_job_status_active", Gauge, "The number of actively running pods.";
        Succeeded => "kube_job_status_succeeded", Gauge, "The number of pods which reached Phase Succeeded.";
        StatusFailed => "kube_job_status_failed", Gauge, "The number of pods which reached Phase Failed and the reason for failure.";
        StartTime => "kube_job_status_start_time", Gauge, "StartTime represents time when the job was acknowledged by the Job Manager.";
        CompletionTime => "kube_job_status_completion_time", Gauge, "CompletionTime represents time when the job was completed.";
        Complete => "kube_job_complete", Gauge, "The job has completed its execution.";
        Failed => "kube_job_failed", Gauge, "The job has failed its execution.";
        Created => "kube_job_created", Gauge, "Unix creation timestamp";
        Suspended => "kube_job_status_suspended", Gauge, "The number of pods which reached Phase Suspended.";
        Ready => "kube_job_status_ready", Gauge, "The number of ready pods that belong to this job.";
    });
}

/// Reasons KSM splits `kube_job_status_failed` by.
const JOB_FAILURE_REASONS: &[&str] = &["BackoffLimitExceeded", "DeadlineExceeded", "Evicted"];

#[derive(Debug)]
pub struct Job {
    meta: Meta,
    spec: JobSpec,
    status: JobStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct JobSpec {
    parallelism: Option<i64>,
    completions: Option<i64>,
    active_deadline_seconds: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct JobStatus {
    active: i64,
    succeeded: i64,
    failed: i64,
    ready: Option<i64>,
    #[serde(deserialize_with = "time")]
    start_time: Option<i64>,
    #[serde(deserialize_with = "time")]
    completion_time: Option<i64>,
    #[serde(deserialize_with = "nullable")]
    conditions: Vec<Condition>,
}

pub fn parse_job(text: &str, ctx: &Context) -> Result<(String, Job), serde_json::Error> {
    let raw: Raw<JobSpec, JobStatus> = serde_json::from_str(text)?;
    let key = raw.metadata.key();
    Ok((key, Job { meta: raw.metadata.compact(ctx.labels, ctx.annotations), spec: raw.spec, status: raw.status }))
}

pub fn emit_job(_uid: &str, j: &Job, out: &mut Sink) {
    use job::F;
    let m = &j.meta;
    let base: &[(&'static str, &str)] = &[("namespace", &m.namespace), ("job_name", &m.name)];
    let s = &j.status;
    out.push_pairs(F::Annotations as usize, base, &m.annotations);
    out.push(F::Info as usize, base, &[], 1.0);
    out.push_pairs(F::Labels as usize, base, &m.labels);
    if m.owners.is_empty() {
        out.push(F::Owner as usize, base, &owner_labels(None), 1.0);
    }
    for o in m.owners.iter() {
        out.push(F::Owner as usize, base, &owner_labels(Some(o)), 1.0);
    }
    opt(out, F::Parallelism as usize, base, j.spec.parallelism);
    opt(out, F::Completions as usize, base, j.spec.completions);
    opt(out, F::ActiveDeadline as usize, base, j.spec.active_deadline_seconds);
    out.push(F::Active as usize, base, &[], s.active as f64);
    out.push(F::Succeeded as usize, base, &[], s.succeeded as f64);
    if s.failed == 0 {
        out.push(F::StatusFailed as usize, base, &[], 0.0);
    } else {
        for c in s.conditions.iter().filter(|c| &*c.kind == "Failed") {
            let reason = c.reason.as_deref().unwrap_or("");
            let known = JOB_FAILURE_REASONS.contains(&reason);
            for r in JOB_FAILURE_REASONS {
                let v = if reason == *r { s.failed as f64 } else { 0.0 };
                out.push(F::StatusFailed as usize, base, &[("reason", r)], v);
            }
            if !known {
                out.push(F::StatusFailed as usize, base, &[("reason", "")], s.failed as f64);
            }
        }
    }
    opt(out, F::StartTime as usize, base, s.start_time);
    opt(out, F::CompletionTime as usize, base, s.completion_time);
    for c in s.conditions.iter() {
        match &*c.kind {
            "Complete" => out.push_condition(F::Complete as usize, base, &[], "condition", &c.status),
            "Failed" => out.push_condition(F::Failed as usize, base, &[], "condition", &c.status),
            "Suspended" => out.push(F::Suspended as usize, base, &[], bool_value(&*c.status == "True")),
            _ => {}
        }
    }
    opt(out, F::Created as usize, base, m.created);
    opt(out, F::Ready as usize, base, s.ready);
}

// --- CronJobs ------------------------------------------------------------------------

pub mod cronjob {
    use super::*;
    families!(F, SPECS {
        Annotations => "kube_cronjob_annotations", Gauge, "Kubernetes annotations converted to Prometheus labels.";
        Info => "kube_cronjob_info", Gauge, "Info about cronjob.";
        Labels => "kube_cronjob_labels", Gauge, "Kubernetes labels converted to Prometheus labels.";
        Created => "kube_cronjob_created", Gauge, "Unix creation timestamp";
        NextScheduleTime => "kube_cronjob_next_schedule_time", Gauge, "Next time the cronjob should be scheduled. The time after lastScheduleTime, or after the cron job's creation time if it's never been scheduled. Use this to determine if the job is delayed.";
        ScheduleInvalid => "kube_cronjob_schedule_invalid", Gauge, "Whether the cronjob schedule cannot be parsed.";
        Active => "kube_cronjob_status_active", Gauge, "Active holds pointers to currently running jobs.";
        LastScheduleTime => "kube_cronjob_status_last_schedule_time", Gauge, "LastScheduleTime keeps information of when was the last time the job was successfully scheduled.";
        LastSuccessfulTime => "kube_cronjob_status_last_successful_time", Gauge, "LastSuccessfulTime keeps information of when was the last time the job was completed successfully.";
        Suspend => "kube_cronjob_spec_suspend", Gauge, "Suspend flag tells the controller to suspend subsequent executions.";
        StartingDeadline => "kube_cronjob_spec_starting_deadline_seconds", Gauge, "Deadline in seconds for starting the job if it misses scheduled time for any reason.";
        ResourceVersion => "kube_cronjob_metadata_resource_version", Gauge, "Resource version representing a specific version of the cronjob.";
        SuccessfulHistoryLimit => "kube_cronjob_spec_successful_job_history_limit", Gauge, "Successful job history limit tells the controller how many completed jobs should be preserved.";
        FailedHistoryLimit => "kube_cronjob_spec_failed_job_history_limit", Gauge, "Failed job history limit tells the controller how many failed jobs should be preserved.";
    });
}

#[derive(Debug)]
pub struct CronJob {
    meta: Meta,
    spec: CronJobSpec,
    active: i64,
    last_schedule: Option<i64>,
    last_successful: Option<i64>,
    /// `None` when the schedule does not parse; `Some(None)` when it has
    /// no next run we can compute (no run within five years, or a time zone).
    next: Result<Option<i64>, ()>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct CronJobSpec {
    schedule: Str,
    concurrency_policy: Str,
    time_zone: Option<Str>,
    suspend: bool,
    starting_deadline_seconds: Option<i64>,
    successful_jobs_history_limit: Option<i64>,
    failed_jobs_history_limit: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct CronJobStatus {
    #[serde(deserialize_with = "nullable")]
    active: Vec<serde::de::IgnoredAny>,
    #[serde(deserialize_with = "time")]
    last_schedule_time: Option<i64>,
    #[serde(deserialize_with = "time")]
    last_successful_time: Option<i64>,
}

pub fn parse_cronjob(text: &str, ctx: &Context) -> Result<(String, CronJob), serde_json::Error> {
    let raw: Raw<CronJobSpec, CronJobStatus> = serde_json::from_str(text)?;
    let key = raw.metadata.key();
    let spec = raw.spec;
    let utc = matches!(spec.time_zone.as_deref(), None | Some("UTC") | Some("Etc/UTC"));
    let next = match Schedule::parse(&spec.schedule) {
        Err(_) => Err(()),
        Ok(_) if !utc => Ok(None),
        Ok(s) => Ok(raw.status.last_schedule_time.or(raw.metadata.creation_timestamp).and_then(|t| s.next_after(t))),
    };
    let cronjob = CronJob {
        meta: raw.metadata.compact(ctx.labels, ctx.annotations),
        spec,
        active: raw.status.active.len() as i64,
        last_schedule: raw.status.last_schedule_time,
        last_successful: raw.status.last_successful_time,
        next,
    };
    Ok((key, cronjob))
}

pub fn emit_cronjob(_uid: &str, c: &CronJob, out: &mut Sink) {
    use cronjob::F;
    let m = &c.meta;
    let base: &[(&'static str, &str)] = &[("namespace", &m.namespace), ("cronjob", &m.name)];
    out.push_pairs(F::Annotations as usize, base, &m.annotations);
    let labels = [
        ("schedule", &*c.spec.schedule),
        ("concurrency_policy", &c.spec.concurrency_policy),
        ("timezone", c.spec.time_zone.as_deref().unwrap_or("local")),
    ];
    out.push(F::Info as usize, base, &labels, 1.0);
    out.push_pairs(F::Labels as usize, base, &m.labels);
    opt(out, F::Created as usize, base, m.created);
    if !c.spec.suspend
        && let Ok(Some(next)) = c.next
    {
        out.push(F::NextScheduleTime as usize, base, &[], next as f64);
    }
    out.push(F::ScheduleInvalid as usize, base, &[], bool_value(c.next.is_err()));
    out.push(F::Active as usize, base, &[], c.active as f64);
    opt(out, F::LastScheduleTime as usize, base, c.last_schedule);
    opt(out, F::LastSuccessfulTime as usize, base, c.last_successful);
    out.push(F::Suspend as usize, base, &[], bool_value(c.spec.suspend));
    opt(out, F::StartingDeadline as usize, base, c.spec.starting_deadline_seconds);
    if let Ok(v) = m.resource_version.parse::<f64>() {
        out.push(F::ResourceVersion as usize, base, &[], v);
    }
    opt(out, F::SuccessfulHistoryLimit as usize, base, c.spec.successful_jobs_history_limit);
    opt(out, F::FailedHistoryLimit as usize, base, c.spec.failed_jobs_history_limit);
}
