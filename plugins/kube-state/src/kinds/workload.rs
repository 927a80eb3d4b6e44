//! Deployments, ReplicaSets, DaemonSets and StatefulSets.

use super::Context;
use crate::common::*;
use serde::Deserialize;

/// An object whose `spec` and `status` are read into `S` and `T`.
#[derive(Deserialize)]
struct Raw<S, T> {
    #[serde(default)]
    metadata: RawMeta,
    #[serde(default)]
    spec: S,
    #[serde(default)]
    status: T,
}

fn read<S: for<'de> Deserialize<'de> + Default, T: for<'de> Deserialize<'de> + Default>(
    text: &str,
    ctx: &Context,
) -> Result<(String, Meta, S, T), serde_json::Error> {
    let raw: Raw<S, T> = serde_json::from_str(text)?;
    let key = raw.metadata.key();
    Ok((key, raw.metadata.compact(ctx.labels, ctx.annotations), raw.spec, raw.status))
}

fn opt(out: &mut Sink, family: usize, base: &[(&'static str, &str)], value: Option<i64>) {
    if let Some(v) = value {
        out.push(family, base, &[], v as f64);
    }
}

// --- Deployments ---------------------------------------------------------------------

pub mod deployment {
    use super::*;
    families!(F, SPECS {
        Annotations => "kube_deployment_annotations", Gauge, "Kubernetes annotations converted to Prometheus labels.";
        StatusReplicas => "kube_deployment_status_replicas", Gauge, "The number of replicas per deployment.";
        StatusReplicasReady => "kube_deployment_status_replicas_ready", Gauge, "The number of ready replicas per deployment.";
        StatusReplicasAvailable => "kube_deployment_status_replicas_available", Gauge, "The number of available replicas per deployment.";
        StatusReplicasUnavailable => "kube_deployment_status_replicas_unavailable", Gauge, "The number of unavailable replicas per deployment.";
        StatusReplicasUpdated => "kube_deployment_status_replicas_updated", Gauge, "The number of updated replicas per deployment.";
        StatusTerminatingReplicas => "kube_deployment_status_terminating_replicas", Gauge, "The number of terminating replicas per deployment.";
        ObservedGeneration => "kube_deployment_status_observed_generation", Gauge, "The generation observed by the deployment controller.";
        Condition => "kube_deployment_status_condition", Gauge, "The current status conditions of a deployment.";
        SpecReplicas => "kube_deployment_spec_replicas", Gauge, "Number of desired pods for a deployment.";
        SpecPaused => "kube_deployment_spec_paused", Gauge, "Whether the deployment is paused and will not be processed by the deployment controller.";
        MaxUnavailable => "kube_deployment_spec_strategy_rollingupdate_max_unavailable", Gauge, "Maximum number of unavailable replicas during a rolling update of a deployment.";
        MaxSurge => "kube_deployment_spec_strategy_rollingupdate_max_surge", Gauge, "Maximum number of replicas that can be scheduled above the desired number of replicas during a rolling update of a deployment.";
        MetadataGeneration => "kube_deployment_metadata_generation", Gauge, "Sequence number representing a specific generation of the desired state.";
        Labels => "kube_deployment_labels", Gauge, "Kubernetes labels converted to Prometheus labels.";
        Created => "kube_deployment_created", Gauge, "Unix creation timestamp";
        DeletionTimestamp => "kube_deployment_deletion_timestamp", Gauge, "Unix deletion timestamp";
        Owner => "kube_deployment_owner", Gauge, "Information about the Deployment's owner.";
    });
}

#[derive(Debug)]
pub struct Deployment {
    meta: Meta,
    spec: DeploymentSpec,
    status: DeploymentStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct DeploymentSpec {
    replicas: Option<i64>,
    paused: bool,
    strategy: Strategy,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Strategy {
    rolling_update: Option<RollingUpdate>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RollingUpdate {
    max_unavailable: Option<IntOrString>,
    max_surge: Option<IntOrString>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct DeploymentStatus {
    replicas: i64,
    ready_replicas: i64,
    available_replicas: i64,
    unavailable_replicas: i64,
    updated_replicas: i64,
    terminating_replicas: Option<i64>,
    observed_generation: i64,
    #[serde(deserialize_with = "nullable")]
    conditions: Vec<Condition>,
}

pub fn parse_deployment(text: &str, ctx: &Context) -> Result<(String, Deployment), serde_json::Error> {
    let (key, meta, spec, status) = read(text, ctx)?;
    Ok((key, Deployment { meta, spec, status }))
}

pub fn emit_deployment(_uid: &str, d: &Deployment, out: &mut Sink) {
    use deployment::F;
    let m = &d.meta;
    let base: &[(&'static str, &str)] = &[("namespace", &m.namespace), ("deployment", &m.name)];
    let s = &d.status;
    out.push_pairs(F::Annotations as usize, base, &m.annotations);
    out.push(F::StatusReplicas as usize, base, &[], s.replicas as f64);
    out.push(F::StatusReplicasReady as usize, base, &[], s.ready_replicas as f64);
    out.push(F::StatusReplicasAvailable as usize, base, &[], s.available_replicas as f64);
    out.push(F::StatusReplicasUnavailable as usize, base, &[], s.unavailable_replicas as f64);
    out.push(F::StatusReplicasUpdated as usize, base, &[], s.updated_replicas as f64);
    opt(out, F::StatusTerminatingReplicas as usize, base, s.terminating_replicas);
    out.push(F::ObservedGeneration as usize, base, &[], s.observed_generation as f64);
    for c in &s.conditions {
        let reason = c.reason.as_deref().unwrap_or("");
        out.push_condition(
            F::Condition as usize,
            base,
            &[("reason", reason), ("condition", &c.kind)],
            "status",
            &c.status,
        );
    }
    opt(out, F::SpecReplicas as usize, base, d.spec.replicas);
    out.push(F::SpecPaused as usize, base, &[], bool_value(d.spec.paused));
    if let Some(ru) = &d.spec.strategy.rolling_update {
        let replicas = d.spec.replicas.unwrap_or(1);
        if let Some(v) = ru.max_unavailable.as_ref().and_then(|v| v.scaled(replicas, false)) {
            out.push(F::MaxUnavailable as usize, base, &[], v);
        }
        if let Some(v) = ru.max_surge.as_ref().and_then(|v| v.scaled(replicas, true)) {
            out.push(F::MaxSurge as usize, base, &[], v);
        }
    }
    opt(out, F::MetadataGeneration as usize, base, m.generation);
    out.push_pairs(F::Labels as usize, base, &m.labels);
    opt(out, F::Created as usize, base, m.created);
    opt(out, F::DeletionTimestamp as usize, base, m.deleted);
    if m.owners.is_empty() {
        out.push(F::Owner as usize, base, &owner_labels(None)[..2], 1.0);
    }
    for o in m.owners.iter() {
        out.push(F::Owner as usize, base, &owner_labels(Some(o))[..2], 1.0);
    }
}

// --- ReplicaSets ---------------------------------------------------------------------

pub mod replicaset {
    use super::*;
    families!(F, SPECS {
        Annotations => "kube_replicaset_annotations", Gauge, "Kubernetes annotations converted to Prometheus labels.";
        StatusReplicas => "kube_replicaset_status_replicas", Gauge, "The number of replicas per ReplicaSet.";
        FullyLabeledReplicas => "kube_replicaset_status_fully_labeled_replicas", Gauge, "The number of fully labeled replicas per ReplicaSet.";
        ReadyReplicas => "kube_replicaset_status_ready_replicas", Gauge, "The number of ready replicas per ReplicaSet.";
        TerminatingReplicas => "kube_replicaset_status_terminating_replicas", Gauge, "The number of terminating replicas per ReplicaSet.";
        ObservedGeneration => "kube_replicaset_status_observed_generation", Gauge, "The generation observed by the ReplicaSet controller.";
        SpecReplicas => "kube_replicaset_spec_replicas", Gauge, "Number of desired pods for a ReplicaSet.";
        MetadataGeneration => "kube_replicaset_metadata_generation", Gauge, "Sequence number representing a specific generation of the desired state.";
        Labels => "kube_replicaset_labels", Gauge, "Kubernetes labels converted to Prometheus labels.";
        Created => "kube_replicaset_created", Gauge, "Unix creation timestamp";
        Owner => "kube_replicaset_owner", Gauge, "Information about the ReplicaSet's owner.";
    });
}

#[derive(Debug)]
pub struct ReplicaSet {
    meta: Meta,
    spec: ReplicasSpec,
    status: ReplicaSetStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ReplicasSpec {
    replicas: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ReplicaSetStatus {
    replicas: i64,
    fully_labeled_replicas: i64,
    ready_replicas: i64,
    terminating_replicas: Option<i64>,
    observed_generation: i64,
}

pub fn parse_replicaset(text: &str, ctx: &Context) -> Result<(String, ReplicaSet), serde_json::Error> {
    let (key, meta, spec, status) = read(text, ctx)?;
    Ok((key, ReplicaSet { meta, spec, status }))
}

pub fn emit_replicaset(_uid: &str, r: &ReplicaSet, out: &mut Sink) {
    use replicaset::F;
    let m = &r.meta;
    let base: &[(&'static str, &str)] = &[("namespace", &m.namespace), ("replicaset", &m.name)];
    let s = &r.status;
    out.push_pairs(F::Annotations as usize, base, &m.annotations);
    out.push(F::StatusReplicas as usize, base, &[], s.replicas as f64);
    out.push(F::FullyLabeledReplicas as usize, base, &[], s.fully_labeled_replicas as f64);
    out.push(F::ReadyReplicas as usize, base, &[], s.ready_replicas as f64);
    opt(out, F::TerminatingReplicas as usize, base, s.terminating_replicas);
    out.push(F::ObservedGeneration as usize, base, &[], s.observed_generation as f64);
    opt(out, F::SpecReplicas as usize, base, r.spec.replicas);
    opt(out, F::MetadataGeneration as usize, base, m.generation);
    out.push_pairs(F::Labels as usize, base, &m.labels);
    opt(out, F::Created as usize, base, m.created);
    if m.owners.is_empty() {
        out.push(F::Owner as usize, base, &owner_labels(None), 1.0);
    }
    for o in m.owners.iter() {
        out.push(F::Owner as usize, base, &owner_labels(Some(o)), 1.0);
    }
}

// --- DaemonSets ----------------------------------------------------------------------

pub mod daemonset {
    use super::*;
    families!(F, SPECS {
        Annotations => "kube_daemonset_annotations", Gauge, "Kubernetes annotations converted to Prometheus labels.";
        Created => "kube_daemonset_created", Gauge, "Unix creation timestamp";
        CurrentNumberScheduled => "kube_daemonset_status_current_number_scheduled", Gauge, "The number of nodes running at least one daemon pod and are supposed to.";
        DesiredNumberScheduled => "kube_daemonset_status_desired_number_scheduled", Gauge, "The number of nodes that should be running the daemon pod.";
        NumberAvailable => "kube_daemonset_status_number_available", Gauge, "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available";
        NumberMisscheduled => "kube_daemonset_status_number_misscheduled", Gauge, "The number of nodes running a daemon pod but are not supposed to.";
        NumberReady => "kube_daemonset_status_number_ready", Gauge, "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.";
        NumberUnavailable => "kube_daemonset_status_number_unavailable", Gauge, "The number of nodes that should be running the daemon pod and have none of the daemon pod running and available";
        ObservedGeneration => "kube_daemonset_status_observed_generation", Gauge, "The most recent generation observed by the daemon set controller.";
        UpdatedNumberScheduled => "kube_daemonset_status_updated_number_scheduled", Gauge, "The total number of nodes that are running updated daemon pod";
        MetadataGeneration => "kube_daemonset_metadata_generation", Gauge, "Sequence number representing a specific generation of the desired state.";
        Labels => "kube_daemonset_labels", Gauge, "Kubernetes labels converted to Prometheus labels.";
        DeletionTimestamp => "kube_daemonset_deletion_timestamp", Gauge, "Unix deletion timestamp";
    });
}

#[derive(Debug)]
pub struct DaemonSet {
    meta: Meta,
    status: DaemonSetStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct DaemonSetStatus {
    current_number_scheduled: i64,
    desired_number_scheduled: i64,
    number_available: i64,
    number_misscheduled: i64,
    number_ready: i64,
    number_unavailable: i64,
    observed_generation: i64,
    updated_number_scheduled: i64,
}

pub fn parse_daemonset(text: &str, ctx: &Context) -> Result<(String, DaemonSet), serde_json::Error> {
    let (key, meta, _spec, status): (_, _, serde::de::IgnoredAny, _) = read_ignored(text, ctx)?;
    Ok((key, DaemonSet { meta, status }))
}

fn read_ignored<T: for<'de> Deserialize<'de> + Default>(
    text: &str,
    ctx: &Context,
) -> Result<(String, Meta, serde::de::IgnoredAny, T), serde_json::Error> {
    #[derive(Deserialize)]
    struct R<T> {
        #[serde(default)]
        metadata: RawMeta,
        #[serde(default)]
        status: T,
    }
    let raw: R<T> = serde_json::from_str(text)?;
    let key = raw.metadata.key();
    Ok((key, raw.metadata.compact(ctx.labels, ctx.annotations), serde::de::IgnoredAny, raw.status))
}

pub fn emit_daemonset(_uid: &str, d: &DaemonSet, out: &mut Sink) {
    use daemonset::F;
    let m = &d.meta;
    let base: &[(&'static str, &str)] = &[("namespace", &m.namespace), ("daemonset", &m.name)];
    let s = &d.status;
    out.push_pairs(F::Annotations as usize, base, &m.annotations);
    opt(out, F::Created as usize, base, m.created);
    out.push(F::CurrentNumberScheduled as usize, base, &[], s.current_number_scheduled as f64);
    out.push(F::DesiredNumberScheduled as usize, base, &[], s.desired_number_scheduled as f64);
    out.push(F::NumberAvailable as usize, base, &[], s.number_available as f64);
    out.push(F::NumberMisscheduled as usize, base, &[], s.number_misscheduled as f64);
    out.push(F::NumberReady as usize, base, &[], s.number_ready as f64);
    out.push(F::NumberUnavailable as usize, base, &[], s.number_unavailable as f64);
    out.push(F::ObservedGeneration as usize, base, &[], s.observed_generation as f64);
    out.push(F::UpdatedNumberScheduled as usize, base, &[], s.updated_number_scheduled as f64);
    opt(out, F::MetadataGeneration as usize, base, m.generation);
    out.push_pairs(F::Labels as usize, base, &m.labels);
    opt(out, F::DeletionTimestamp as usize, base, m.deleted);
}

// --- StatefulSets --------------------------------------------------------------------

pub mod statefulset {
    use super::*;
    families!(F, SPECS {
        Annotations => "kube_statefulset_annotations", Gauge, "Kubernetes annotations converted to Prometheus labels.";
        StatusReplicas => "kube_statefulset_status_replicas", Gauge, "The number of replicas per StatefulSet.";
        ReplicasCurrent => "kube_statefulset_status_replicas_current", Gauge, "The number of current replicas per StatefulSet.";
        ReplicasReady => "kube_statefulset_status_replicas_ready", Gauge, "The number of ready replicas per StatefulSet.";
        ReplicasAvailable => "kube_statefulset_status_replicas_available", Gauge, "The number of available replicas per StatefulSet.";
        ReplicasUpdated => "kube_statefulset_status_replicas_updated", Gauge, "The number of updated replicas per StatefulSet.";
        ObservedGeneration => "kube_statefulset_status_observed_generation", Gauge, "The generation observed by the StatefulSet controller.";
        Replicas => "kube_statefulset_replicas", Gauge, "Number of desired pods for a StatefulSet.";
        OrdinalsStart => "kube_statefulset_ordinals_start", Gauge, "Start ordinal of the StatefulSet.";
        MetadataGeneration => "kube_statefulset_metadata_generation", Gauge, "Sequence number representing a specific generation of the desired state for the StatefulSet.";
        RetentionPolicy => "kube_statefulset_persistentvolumeclaim_retention_policy", Gauge, "Count of retention policy for StatefulSet template PVCs";
        Created => "kube_statefulset_created", Gauge, "Unix creation timestamp";
        Labels => "kube_statefulset_labels", Gauge, "Kubernetes labels converted to Prometheus labels.";
        CurrentRevision => "kube_statefulset_status_current_revision", Gauge, "Indicates the version of the StatefulSet used to generate Pods in the sequence [0,currentReplicas).";
        UpdateRevision => "kube_statefulset_status_update_revision", Gauge, "Indicates the version of the StatefulSet used to generate Pods in the sequence [replicas-updatedReplicas,replicas)";
        DeletionTimestamp => "kube_statefulset_deletion_timestamp", Gauge, "Unix deletion timestamp";
    });
}

#[derive(Debug)]
pub struct StatefulSet {
    meta: Meta,
    spec: StatefulSetSpec,
    status: StatefulSetStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct StatefulSetSpec {
    replicas: Option<i64>,
    ordinals: Option<Ordinals>,
    persistent_volume_claim_retention_policy: Option<RetentionPolicy>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Ordinals {
    start: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RetentionPolicy {
    when_deleted: Str,
    when_scaled: Str,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct StatefulSetStatus {
    replicas: i64,
    current_replicas: i64,
    ready_replicas: i64,
    available_replicas: i64,
    updated_replicas: i64,
    observed_generation: Option<i64>,
    current_revision: Str,
    update_revision: Str,
}

pub fn parse_statefulset(text: &str, ctx: &Context) -> Result<(String, StatefulSet), serde_json::Error> {
    let (key, meta, spec, status) = read(text, ctx)?;
    Ok((key, StatefulSet { meta, spec, status }))
}

pub fn emit_statefulset(_uid: &str, st: &StatefulSet, out: &mut Sink) {
    use statefulset::F;
    let m = &st.meta;
    let base: &[(&'static str, &str)] = &[("namespace", &m.namespace), ("statefulset", &m.name)];
    let s = &st.status;
    out.push_pairs(F::Annotations as usize, base, &m.annotations);
    out.push(F::StatusReplicas as usize, base, &[], s.replicas as f64);
    out.push(F::ReplicasCurrent as usize, base, &[], s.current_replicas as f64);
    out.push(F::ReplicasReady as usize, base, &[], s.ready_replicas as f64);
    out.push(F::ReplicasAvailable as usize, base, &[], s.available_replicas as f64);
    out.push(F::ReplicasUpdated as usize, base, &[], s.updated_replicas as f64);
    opt(out, F::ObservedGeneration as usize, base, s.observed_generation);
    opt(out, F::Replicas as usize, base, st.spec.replicas);
    opt(out, F::OrdinalsStart as usize, base, st.spec.ordinals.as_ref().map(|o| o.start));
    opt(out, F::MetadataGeneration as usize, base, m.generation);
    if let Some(p) = &st.spec.persistent_volume_claim_retention_policy {
        let labels = [("when_deleted", &*p.when_deleted), ("when_scaled", &p.when_scaled)];
        out.push(F::RetentionPolicy as usize, base, &labels, 1.0);
    }
    opt(out, F::Created as usize, base, m.created);
    out.push_pairs(F::Labels as usize, base, &m.labels);
    out.push(F::CurrentRevision as usize, base, &[("revision", &s.current_revision)], 1.0);
    out.push(F::UpdateRevision as usize, base, &[("revision", &s.update_revision)], 1.0);
    opt(out, F::DeletionTimestamp as usize, base, m.deleted);
}
