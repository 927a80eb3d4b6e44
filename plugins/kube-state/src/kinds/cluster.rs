//! Namespaces, ResourceQuotas, HorizontalPodAutoscalers, Leases, ConfigMaps
//! and Secrets (metadata only: a Secret's data is never read).

use super::Context;
use crate::common::*;
use serde::Deserialize;
use std::collections::BTreeMap;

fn opt(out: &mut Sink, family: usize, base: &[(&'static str, &str)], value: Option<i64>) {
    if let Some(v) = value {
        out.push(family, base, &[], v as f64);
    }
}

#[derive(Deserialize)]
struct Raw<S, T> {
    #[serde(default)]
    metadata: RawMeta,
    #[serde(default)]
    spec: S,
    #[serde(default)]
    status: T,
}

// --- Namespaces ----------------------------------------------------------------------

pub mod namespace {
    use super::*;
    families!(F, SPECS {
        Annotations => "kube_namespace_annotations", Gauge, "Kubernetes annotations converted to Prometheus labels.";
        Created => "kube_namespace_created", Gauge, "Unix creation timestamp";
        Labels => "kube_namespace_labels", Gauge, "Kubernetes labels converted to Prometheus labels.";
        Condition => "kube_namespace_status_condition", Gauge, "The condition of a namespace.";
        Phase => "kube_namespace_status_phase", Gauge, "kubernetes namespace status phase.";
    });
}

#[derive(Debug)]
pub struct Namespace {
    meta: Meta,
    phase: Str,
    conditions: Box<[(Str, Str)]>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct NamespaceStatus {
    phase: Str,
    #[serde(deserialize_with = "nullable")]
    conditions: Vec<Condition>,
}

pub fn parse_namespace(text: &str, ctx: &Context) -> Result<(String, Namespace), serde_json::Error> {
    let raw: Raw<serde::de::IgnoredAny, NamespaceStatus> = serde_json::from_str(text)?;
    let key = raw.metadata.key();
    let ns = Namespace {
        meta: raw.metadata.compact(ctx.labels, ctx.annotations),
        phase: raw.status.phase,
        conditions: raw.status.conditions.into_iter().map(|c| (c.kind, c.status)).collect(),
    };
    Ok((key, ns))
}

pub fn emit_namespace(_uid: &str, n: &Namespace, out: &mut Sink) {
    use namespace::F;
    let m = &n.meta;
    let base: &[(&'static str, &str)] = &[("namespace", &m.name)];
    out.push_pairs(F::Annotations as usize, base, &m.annotations);
    opt(out, F::Created as usize, base, m.created);
    out.push_pairs(F::Labels as usize, base, &m.labels);
    for (kind, status) in n.conditions.iter() {
        out.push_condition(F::Condition as usize, base, &[("condition", kind)], "status", status);
    }
    if !n.phase.is_empty() {
        for phase in ["Active", "Terminating"] {
            out.push(F::Phase as usize, base, &[("phase", phase)], bool_value(*n.phase == *phase));
        }
    }
}

// --- ResourceQuotas ------------------------------------------------------------------

pub mod resourcequota {
    use super::*;
    families!(F, SPECS {
        Created => "kube_resourcequota_created", Gauge, "Unix creation timestamp";
        Annotations => "kube_resourcequota_annotations", Gauge, "Kubernetes annotations converted to Prometheus labels.";
        Labels => "kube_resourcequota_labels", Gauge, "Kubernetes labels converted to Prometheus labels.";
        Quota => "kube_resourcequota", Gauge, "Information about resource quota.";
    });
}

#[derive(Debug)]
pub struct ResourceQuota {
    meta: Meta,
    /// (resource, hard or used, value)
    values: Box<[(Str, &'static str, f64)]>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct QuotaStatus {
    #[serde(deserialize_with = "nullable")]
    hard: BTreeMap<String, Quantity>,
    #[serde(deserialize_with = "nullable")]
    used: BTreeMap<String, Quantity>,
}

pub fn parse_resourcequota(text: &str, ctx: &Context) -> Result<(String, ResourceQuota), serde_json::Error> {
    let raw: Raw<serde::de::IgnoredAny, QuotaStatus> = serde_json::from_str(text)?;
    let key = raw.metadata.key();
    let mut values = Vec::new();
    for (kind, list) in [("hard", &raw.status.hard), ("used", &raw.status.used)] {
        for (name, q) in list {
            // KSM: MilliValue() / 1000 for every resource.
            values.push((Str::from(name.as_str()), kind, q.cores()));
        }
    }
    Ok((key, ResourceQuota { meta: raw.metadata.compact(ctx.labels, ctx.annotations), values: values.into() }))
}

pub fn emit_resourcequota(_uid: &str, q: &ResourceQuota, out: &mut Sink) {
    use resourcequota::F;
    let m = &q.meta;
    let base: &[(&'static str, &str)] = &[("namespace", &m.namespace), ("resourcequota", &m.name)];
    opt(out, F::Created as usize, base, m.created);
    out.push_pairs(F::Annotations as usize, base, &m.annotations);
    out.push_pairs(F::Labels as usize, base, &m.labels);
    for (resource, kind, value) in q.values.iter() {
        out.push(F::Quota as usize, base, &[("resource", resource), ("type", kind)], *value);
    }
}

// --- HorizontalPodAutoscalers (autoscaling/v2) ---------------------------------------

pub mod hpa {
    use super::*;
    families!(F, SPECS {
        Info => "kube_horizontalpodautoscaler_info", Gauge, "Information about this autoscaler.";
        Annotations => "kube_horizontalpodautoscaler_annotations", Gauge, "Kubernetes annotations converted to Prometheus labels.";
        Labels => "kube_horizontalpodautoscaler_labels", Gauge, "Kubernetes labels converted to Prometheus labels.";
        MetadataGeneration => "kube_horizontalpodautoscaler_metadata_generation", Gauge, "The generation observed by the HorizontalPodAutoscaler controller.";
        SpecMaxReplicas => "kube_horizontalpodautoscaler_spec_max_replicas", Gauge, "Upper limit for the number of pods that can be set by the autoscaler; cannot be smaller than MinReplicas.";
        SpecMinReplicas => "kube_horizontalpodautoscaler_spec_min_replicas", Gauge, "Lower limit for the number of pods that can be set by the autoscaler, default 1.";
        SpecTargetMetric => "kube_horizontalpodautoscaler_spec_target_metric", Gauge, "The metric specifications used by this autoscaler when calculating the desired replica count.";
        ScaleDownTolerance => "kube_horizontalpodautoscaler_spec_behavior_scale_down_tolerance", Gauge, "The tolerance for scaling down.";
        ScaleUpTolerance => "kube_horizontalpodautoscaler_spec_behavior_scale_up_tolerance", Gauge, "The tolerance for scaling up.";
        StatusTargetMetric => "kube_horizontalpodautoscaler_status_target_metric", Gauge, "The current metric status used by this autoscaler when calculating the desired replica count.";
        Condition => "kube_horizontalpodautoscaler_status_condition", Gauge, "The condition of this autoscaler.";
        CurrentReplicas => "kube_horizontalpodautoscaler_status_current_replicas", Gauge, "Current number of replicas of pods managed by this autoscaler.";
        DesiredReplicas => "kube_horizontalpodautoscaler_status_desired_replicas", Gauge, "Desired number of replicas of pods managed by this autoscaler.";
        Created => "kube_horizontalpodautoscaler_created", Gauge, "Unix creation timestamp";
        DeletionTimestamp => "kube_horizontalpodautoscaler_deletion_timestamp", Gauge, "Unix deletion timestamp";
    });
}

/// One metric target or current value: (metric name, target type, container, value).
type MetricValue = (Str, &'static str, Str, f64);

#[derive(Debug)]
pub struct Hpa {
    meta: Meta,
    target: [Str; 3],
    max_replicas: Option<i64>,
    min_replicas: Option<i64>,
    spec_metrics: Box<[MetricValue]>,
    status_metrics: Box<[MetricValue]>,
    scale_down_tolerance: Option<f64>,
    scale_up_tolerance: Option<f64>,
    conditions: Box<[(Str, Str)]>,
    current: i64,
    desired: i64,
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct HpaSpec {
    scale_target_ref: TargetRef,
    max_replicas: Option<i64>,
    min_replicas: Option<i64>,
    #[serde(deserialize_with = "nullable")]
    metrics: Vec<MetricSpec>,
    behavior: Behavior,
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct TargetRef {
    api_version: Str,
    kind: Str,
    name: Str,
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Behavior {
    scale_up: Option<Rules>,
    scale_down: Option<Rules>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct Rules {
    tolerance: Option<Quantity>,
}

/// A metric source in spec (`target`) or status (`current`): the v2 shapes
/// `resource`, `containerResource`, `pods`, `object`, `external`.
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct MetricSpec {
    resource: Option<Source>,
    container_resource: Option<Source>,
    pods: Option<Source>,
    object: Option<Source>,
    external: Option<Source>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct Source {
    /// `resource`/`containerResource` name the resource here.
    name: Str,
    container: Str,
    /// `pods`/`object`/`external` name a metric.
    metric: Option<MetricId>,
    target: Option<Values>,
    current: Option<Values>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct MetricId {
    name: Str,
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Values {
    value: Option<Quantity>,
    average_value: Option<Quantity>,
    average_utilization: Option<f64>,
}

impl MetricSpec {
    fn source(&self) -> Option<&Source> {
        [&self.resource, &self.container_resource, &self.pods, &self.object, &self.external]
            .into_iter()
            .find_map(|s| s.as_ref())
    }
}

/// KSM's `metric_target_type` values for one target or current value.
fn metric_values(metrics: &[MetricSpec], current: bool) -> Box<[MetricValue]> {
    let mut out = Vec::new();
    for m in metrics {
        let Some(source) = m.source() else { continue };
        let name = source.metric.as_ref().map_or_else(|| source.name.clone(), |id| id.name.clone());
        let values = if current { &source.current } else { &source.target };
        let Some(v) = values else { continue };
        if let Some(q) = v.value {
            out.push((name.clone(), "value", source.container.clone(), q.0));
        }
        if let Some(q) = v.average_value {
            out.push((name.clone(), "average", source.container.clone(), q.0));
        }
        if let Some(u) = v.average_utilization {
            out.push((name.clone(), "utilization", source.container.clone(), u));
        }
    }
    out.into()
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct HpaStatus {
    current_replicas: i64,
    desired_replicas: i64,
    #[serde(deserialize_with = "nullable")]
    current_metrics: Vec<MetricSpec>,
    #[serde(deserialize_with = "nullable")]
    conditions: Vec<Condition>,
}

pub fn parse_hpa(text: &str, ctx: &Context) -> Result<(String, Hpa), serde_json::Error> {
    let raw: Raw<HpaSpec, HpaStatus> = serde_json::from_str(text)?;
    let key = raw.metadata.key();
    let s = raw.spec;
    let hpa = Hpa {
        meta: raw.metadata.compact(ctx.labels, ctx.annotations),
        target: [s.scale_target_ref.api_version, s.scale_target_ref.kind, s.scale_target_ref.name],
        max_replicas: s.max_replicas,
        min_replicas: s.min_replicas,
        spec_metrics: metric_values(&s.metrics, false),
        status_metrics: metric_values(&raw.status.current_metrics, true),
        scale_down_tolerance: s.behavior.scale_down.and_then(|r| r.tolerance).map(|q| q.0),
        scale_up_tolerance: s.behavior.scale_up.and_then(|r| r.tolerance).map(|q| q.0),
        conditions: raw.status.conditions.into_iter().map(|c| (c.kind, c.status)).collect(),
        current: raw.status.current_replicas,
        desired: raw.status.desired_replicas,
    };
    Ok((key, hpa))
}

pub fn emit_hpa(_uid: &str, h: &Hpa, out: &mut Sink) {
    use hpa::F;
    let m = &h.meta;
    let base: &[(&'static str, &str)] = &[("namespace", &m.namespace), ("horizontalpodautoscaler", &m.name)];
    let info = [
        ("scaletargetref_api_version", &*h.target[0]),
        ("scaletargetref_kind", &h.target[1]),
        ("scaletargetref_name", &h.target[2]),
    ];
    out.push(F::Info as usize, base, &info, 1.0);
    out.push_pairs(F::Annotations as usize, base, &m.annotations);
    out.push_pairs(F::Labels as usize, base, &m.labels);
    opt(out, F::MetadataGeneration as usize, base, m.generation);
    opt(out, F::SpecMaxReplicas as usize, base, h.max_replicas);
    opt(out, F::SpecMinReplicas as usize, base, h.min_replicas);
    for (family, list) in [(F::SpecTargetMetric, &h.spec_metrics), (F::StatusTargetMetric, &h.status_metrics)] {
        for (name, kind, container, value) in list.iter() {
            let labels = [("metric_name", &**name), ("metric_target_type", kind), ("container", container)];
            out.push(family as usize, base, &labels, *value);
        }
        if matches!(family, F::SpecTargetMetric) {
            if let Some(t) = h.scale_down_tolerance {
                out.push(F::ScaleDownTolerance as usize, base, &[], t);
            }
            if let Some(t) = h.scale_up_tolerance {
                out.push(F::ScaleUpTolerance as usize, base, &[], t);
            }
        }
    }
    for (kind, status) in h.conditions.iter() {
        out.push_condition(F::Condition as usize, base, &[("condition", kind)], "status", status);
    }
    out.push(F::CurrentReplicas as usize, base, &[], h.current as f64);
    out.push(F::DesiredReplicas as usize, base, &[], h.desired as f64);
    opt(out, F::Created as usize, base, m.created);
    opt(out, F::DeletionTimestamp as usize, base, m.deleted);
}

// --- Leases --------------------------------------------------------------------------

pub mod lease {
    use super::*;
    families!(F, SPECS {
        Owner => "kube_lease_owner", Gauge, "Information about the Lease's owner.";
        RenewTime => "kube_lease_renew_time", Gauge, "Kube lease renew time.";
    });
}

#[derive(Debug)]
pub struct Lease {
    meta: Meta,
    holder: Str,
    renew: Option<i64>,
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct LeaseSpec {
    holder_identity: Option<Str>,
    #[serde(deserialize_with = "time")]
    renew_time: Option<i64>,
}

pub fn parse_lease(text: &str, ctx: &Context) -> Result<(String, Lease), serde_json::Error> {
    let raw: Raw<LeaseSpec, serde::de::IgnoredAny> = serde_json::from_str(text)?;
    let key = raw.metadata.key();
    let lease = Lease {
        meta: raw.metadata.compact(ctx.labels, ctx.annotations),
        holder: raw.spec.holder_identity.unwrap_or_default(),
        renew: raw.spec.renew_time,
    };
    Ok((key, lease))
}

pub fn emit_lease(_uid: &str, l: &Lease, out: &mut Sink) {
    use lease::F;
    let m = &l.meta;
    let base: &[(&'static str, &str)] = &[("lease", &m.name)];
    if m.owners.is_empty() {
        let labels =
            [("owner_kind", ""), ("owner_name", ""), ("namespace", &*m.namespace), ("lease_holder", &l.holder)];
        out.push(F::Owner as usize, base, &labels, 1.0);
    }
    for o in m.owners.iter() {
        let labels = [
            ("owner_kind", &*o.kind),
            ("owner_name", &o.name),
            ("namespace", &m.namespace),
            ("lease_holder", &l.holder),
        ];
        out.push(F::Owner as usize, base, &labels, 1.0);
    }
    opt(out, F::RenewTime as usize, base, l.renew);
}

// --- ConfigMaps ----------------------------------------------------------------------

pub mod configmap {
    use super::*;
    families!(F, SPECS {
        Annotations => "kube_configmap_annotations", Gauge, "Kubernetes annotations converted to Prometheus labels.";
        Labels => "kube_configmap_labels", Gauge, "Kubernetes labels converted to Prometheus labels.";
        Info => "kube_configmap_info", Gauge, "Information about configmap.";
        Created => "kube_configmap_created", Gauge, "Unix creation timestamp";
        ResourceVersion => "kube_configmap_metadata_resource_version", Gauge, "Resource version representing a specific version of the configmap.";
    });
}

/// Only the object's metadata is read: `data` and `binaryData` are skipped
/// unparsed, so their contents never reach the plugin's state.
#[derive(Deserialize)]
struct MetadataOnly {
    #[serde(default)]
    metadata: RawMeta,
    #[serde(default, rename = "type")]
    kind: Str,
}

#[derive(Debug)]
pub struct ConfigMap {
    meta: Meta,
}

pub fn parse_configmap(text: &str, ctx: &Context) -> Result<(String, ConfigMap), serde_json::Error> {
    let raw: MetadataOnly = serde_json::from_str(text)?;
    let key = raw.metadata.key();
    Ok((key, ConfigMap { meta: raw.metadata.compact(ctx.labels, ctx.annotations) }))
}

pub fn emit_configmap(_uid: &str, c: &ConfigMap, out: &mut Sink) {
    use configmap::F;
    let m = &c.meta;
    let base: &[(&'static str, &str)] = &[("namespace", &m.namespace), ("configmap", &m.name)];
    out.push_pairs(F::Annotations as usize, base, &m.annotations);
    out.push_pairs(F::Labels as usize, base, &m.labels);
    out.push(F::Info as usize, base, &[], 1.0);
    opt(out, F::Created as usize, base, m.created);
    if let Ok(v) = m.resource_version.parse::<f64>() {
        out.push(F::ResourceVersion as usize, base, &[], v);
    }
}

// --- Secrets -------------------------------------------------------------------------

pub mod secret {
    use super::*;
    families!(F, SPECS {
        Annotations => "kube_secret_annotations", Gauge, "Kubernetes annotations converted to Prometheus labels.";
        Info => "kube_secret_info", Gauge, "Information about secret.";
        Type => "kube_secret_type", Gauge, "Type about secret.";
        Labels => "kube_secret_labels", Gauge, "Kubernetes labels converted to Prometheus labels.";
        Created => "kube_secret_created", Gauge, "Unix creation timestamp";
        ResourceVersion => "kube_secret_metadata_resource_version", Gauge, "Resource version representing a specific version of secret.";
        Owner => "kube_secret_owner", Gauge, "Information about the Secret's owner.";
    });
}

#[derive(Debug)]
pub struct Secret {
    meta: Meta,
    kind: Str,
}

pub fn parse_secret(text: &str, ctx: &Context) -> Result<(String, Secret), serde_json::Error> {
    let raw: MetadataOnly = serde_json::from_str(text)?;
    let key = raw.metadata.key();
    Ok((key, Secret { meta: raw.metadata.compact(ctx.labels, ctx.annotations), kind: raw.kind }))
}

pub fn emit_secret(_uid: &str, s: &Secret, out: &mut Sink) {
    use secret::F;
    let m = &s.meta;
    let base: &[(&'static str, &str)] = &[("namespace", &m.namespace), ("secret", &m.name)];
    out.push_pairs(F::Annotations as usize, base, &m.annotations);
    out.push(F::Info as usize, base, &[], 1.0);
    out.push(F::Type as usize, base, &[("type", &s.kind)], 1.0);
    out.push_pairs(F::Labels as usize, base, &m.labels);
    opt(out, F::Created as usize, base, m.created);
    if let Ok(v) = m.resource_version.parse::<f64>() {
        out.push(F::ResourceVersion as usize, base, &[], v);
    }
    if m.owners.is_empty() {
        out.push(F::Owner as usize, base, &owner_labels(None), 1.0);
    }
    for o in m.owners.iter() {
        out.push(F::Owner as usize, base, &owner_labels(Some(o)), 1.0);
    }
}
