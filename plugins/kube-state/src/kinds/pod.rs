//! Pods: `kube_pod_*`, `kube_pod_container_*` and `kube_pod_init_container_*`.

use super::Context;
use crate::common::*;
use serde::Deserialize;
use std::collections::BTreeMap;

families!(F, SPECS {
    Info => "kube_pod_info", Gauge, "Information about pod.";
    Ips => "kube_pod_ips", Gauge, "Pod IP addresses";
    StartTime => "kube_pod_start_time", Gauge, "Start time in unix timestamp for a pod.";
    CompletionTime => "kube_pod_completion_time", Gauge, "Completion time in unix timestamp for a pod.";
    Owner => "kube_pod_owner", Gauge, "Information about the Pod's owner.";
    Labels => "kube_pod_labels", Gauge, "Kubernetes labels converted to Prometheus labels.";
    Annotations => "kube_pod_annotations", Gauge, "Kubernetes annotations converted to Prometheus labels.";
    Phase => "kube_pod_status_phase", Gauge, "The pods current phase.";
    QosClass => "kube_pod_status_qos_class", Gauge, "The pods current qosClass.";
    Ready => "kube_pod_status_ready", Gauge, "Describes whether the pod is ready to serve requests.";
    Scheduled => "kube_pod_status_scheduled", Gauge, "Describes the status of the scheduling process for the pod.";
    ContainerInfo => "kube_pod_container_info", Gauge, "Information about a container in a pod.";
    Waiting => "kube_pod_container_status_waiting", Gauge, "Describes whether the container is currently in waiting state.";
    WaitingReason => "kube_pod_container_status_waiting_reason", Gauge, "Describes the reason the container is currently in waiting state.";
    Running => "kube_pod_container_status_running", Gauge, "Describes whether the container is currently in running state.";
    StateStarted => "kube_pod_container_state_started", Gauge, "Start time in unix timestamp for a pod container.";
    Terminated => "kube_pod_container_status_terminated", Gauge, "Describes whether the container is currently in terminated state.";
    TerminatedReason => "kube_pod_container_status_terminated_reason", Gauge, "Describes the reason the container is currently in terminated state.";
    LastTerminatedReason => "kube_pod_container_status_last_terminated_reason", Gauge, "Describes the last reason the container was in terminated state.";
    LastTerminatedExitCode => "kube_pod_container_status_last_terminated_exitcode", Gauge, "Describes the exit code for the last container in terminated state.";
    LastTerminatedTimestamp => "kube_pod_container_status_last_terminated_timestamp", Gauge, "Last terminated time for a pod container in unix timestamp.";
    ContainerReady => "kube_pod_container_status_ready", Gauge, "Describes whether the containers readiness check succeeded.";
    InitializedTime => "kube_pod_status_initialized_time", Gauge, "Initialized time in unix timestamp for a pod.";
    ReadyTime => "kube_pod_status_ready_time", Gauge, "Readiness achieved time in unix timestamp for a pod.";
    ContainerReadyTime => "kube_pod_status_container_ready_time", Gauge, "Readiness achieved time in unix timestamp for a pod containers.";
    Restarts => "kube_pod_container_status_restarts_total", Counter, "The number of container restarts per container.";
    Requests => "kube_pod_container_resource_requests", Gauge, "The number of requested request resource by a container. It is recommended to use the kube_pod_resource_requests metric exposed by kube-scheduler instead, as it is more precise.";
    Limits => "kube_pod_container_resource_limits", Gauge, "The number of requested limit resource by a container. It is recommended to use the kube_pod_resource_limits metric exposed by kube-scheduler instead, as it is more precise.";
    OverheadCpu => "kube_pod_overhead_cpu_cores", Gauge, "The pod overhead in regards to cpu cores associated with running a pod.";
    OverheadMemory => "kube_pod_overhead_memory_bytes", Gauge, "The pod overhead in regards to memory associated with running a pod.";
    RuntimeClass => "kube_pod_runtimeclass_name_info", Gauge, "The runtimeclass associated with the pod.";
    Created => "kube_pod_created", Gauge, "Unix creation timestamp";
    DeletionTimestamp => "kube_pod_deletion_timestamp", Gauge, "Unix deletion timestamp";
    RestartPolicy => "kube_pod_restart_policy", Gauge, "Describes the restart policy in use by this pod.";
    InitInfo => "kube_pod_init_container_info", Gauge, "Information about an init container in a pod.";
    InitStateStarted => "kube_pod_init_container_state_started", Gauge, "Start time in unix timestamp for a pod init container.";
    InitWaiting => "kube_pod_init_container_status_waiting", Gauge, "Describes whether the init container is currently in waiting state.";
    InitWaitingReason => "kube_pod_init_container_status_waiting_reason", Gauge, "Describes the reason the init container is currently in waiting state.";
    InitRunning => "kube_pod_init_container_status_running", Gauge, "Describes whether the init container is currently in running state.";
    InitTerminated => "kube_pod_init_container_status_terminated", Gauge, "Describes whether the init container is currently in terminated state.";
    InitTerminatedReason => "kube_pod_init_container_status_terminated_reason", Gauge, "Describes the reason the init container is currently in terminated state.";
    InitLastTerminatedReason => "kube_pod_init_container_status_last_terminated_reason", Gauge, "Describes the last reason the init container was in terminated state.";
    InitLastTerminatedExitCode => "kube_pod_init_container_status_last_terminated_exitcode", Gauge, "Describes the exit code for the last init container in terminated state.";
    InitLastTerminatedTimestamp => "kube_pod_init_container_status_last_terminated_timestamp", Gauge, "Last terminated time for a pod init container in unix timestamp.";
    InitReady => "kube_pod_init_container_status_ready", Gauge, "Describes whether the init containers readiness check succeeded.";
    InitRestarts => "kube_pod_init_container_status_restarts_total", Counter, "The number of restarts for the init container.";
    InitLimits => "kube_pod_init_container_resource_limits", Gauge, "The number of requested limit resource by an init container.";
    InitRequests => "kube_pod_init_container_resource_requests", Gauge, "The number of requested request resource by an init container.";
    PvcInfo => "kube_pod_spec_volumes_persistentvolumeclaims_info", Gauge, "Information about persistentvolumeclaim volumes in a pod.";
    PvcReadonly => "kube_pod_spec_volumes_persistentvolumeclaims_readonly", Gauge, "Describes whether a persistentvolumeclaim is mounted read only.";
    StatusReason => "kube_pod_status_reason", Gauge, "The pod status reasons";
    DisruptionReason => "kube_pod_status_disruption_reason", Gauge, "The pod disruption reason";
    ScheduledTime => "kube_pod_status_scheduled_time", Gauge, "Unix timestamp when pod moved into scheduled status";
    Unschedulable => "kube_pod_status_unschedulable", Gauge, "Describes the unschedulable status for the pod.";
    UnscheduledTime => "kube_pod_status_unscheduled_time", Gauge, "Unix timestamp when pod moved into unscheduled status";
    Tolerations => "kube_pod_tolerations", Gauge, "Information about the pod tolerations";
    ServiceAccount => "kube_pod_service_account", Gauge, "The service account for a pod.";
    Scheduler => "kube_pod_scheduler", Gauge, "The scheduler for a pod.";
    ResourceClaim => "kube_pod_resourceclaim_info", Gauge, "Information about the pod's resource claims.";
});

const STATUS_REASONS: &[&str] = &["Evicted", "NodeAffinity", "NodeLost", "Shutdown", "UnexpectedAdmissionError"];
const DISRUPTION_REASONS: &[&str] = &[
    "PreemptionByScheduler",
    "DeletionByTaintManager",
    "EvictionByEvictionAPI",
    "DeletionByPodGC",
    "TerminationByKubelet",
];

/// What is kept of one pod.
#[derive(Debug)]
pub struct Pod {
    meta: Meta,
    node: Str,
    host_ip: Str,
    pod_ip: Str,
    pod_ips: Box<[Str]>,
    priority_class: Str,
    host_network: bool,
    phase: Str,
    reason: Str,
    qos: Str,
    start_time: Option<i64>,
    conditions: Box<[Condition]>,
    restart_policy: Str,
    service_account: Str,
    scheduler: Str,
    runtime_class: Option<Str>,
    overhead: Box<[ResourceValue]>,
    containers: Box<[Container]>,
    init_containers: Box<[Container]>,
    tolerations: Box<[Toleration]>,
    volumes: Box<[ClaimVolume]>,
    resource_claims: Box<[ResourceClaimRef]>,
}

#[derive(Debug)]
struct Container {
    name: Str,
    image_spec: Str,
    restart_policy: Option<Str>,
    requests: Box<[ResourceValue]>,
    limits: Box<[ResourceValue]>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerStatus {
    #[serde(default)]
    name: Str,
    #[serde(default)]
    image: Str,
    #[serde(default, rename = "imageID")]
    image_id: Str,
    #[serde(default, rename = "containerID")]
    container_id: Str,
    #[serde(default)]
    ready: bool,
    #[serde(default)]
    restart_count: i64,
    #[serde(default)]
    state: State,
    #[serde(default)]
    last_state: State,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct State {
    waiting: Option<WaitingState>,
    running: Option<RunningState>,
    terminated: Option<TerminatedState>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WaitingState {
    reason: Str,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RunningState {
    #[serde(deserialize_with = "time")]
    started_at: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct TerminatedState {
    reason: Str,
    exit_code: i64,
    #[serde(deserialize_with = "time")]
    started_at: Option<i64>,
    #[serde(deserialize_with = "time")]
    finished_at: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Toleration {
    #[serde(default)]
    key: Str,
    #[serde(default)]
    operator: Str,
    #[serde(default)]
    value: Str,
    #[serde(default)]
    effect: Str,
    #[serde(default)]
    toleration_seconds: Option<i64>,
}

#[derive(Debug)]
struct ClaimVolume {
    volume: Str,
    claim: Str,
    read_only: bool,
    ephemeral: bool,
}

#[derive(Debug)]
struct ResourceClaimRef {
    name: Str,
    claim_name: Str,
    template_name: Str,
}

// --- the parts of the JSON that are read ---------------------------------------------

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    metadata: RawMeta,
    #[serde(default)]
    spec: RawSpec,
    #[serde(default)]
    status: RawStatus,
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RawSpec {
    node_name: Str,
    priority_class_name: Str,
    host_network: bool,
    restart_policy: Str,
    service_account_name: Str,
    scheduler_name: Str,
    runtime_class_name: Option<Str>,
    #[serde(deserialize_with = "nullable")]
    overhead: BTreeMap<String, Quantity>,
    #[serde(deserialize_with = "nullable")]
    containers: Vec<RawContainer>,
    #[serde(deserialize_with = "nullable")]
    init_containers: Vec<RawContainer>,
    #[serde(deserialize_with = "nullable")]
    tolerations: Vec<Toleration>,
    #[serde(deserialize_with = "nullable")]
    volumes: Vec<RawVolume>,
    #[serde(deserialize_with = "nullable")]
    resource_claims: Vec<RawResourceClaim>,
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RawContainer {
    name: Str,
    image: Str,
    restart_policy: Option<Str>,
    resources: RawResources,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct RawResources {
    #[serde(deserialize_with = "nullable")]
    pub requests: BTreeMap<String, Quantity>,
    #[serde(deserialize_with = "nullable")]
    pub limits: BTreeMap<String, Quantity>,
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RawVolume {
    name: Str,
    persistent_volume_claim: Option<RawClaimSource>,
    ephemeral: Option<serde::de::IgnoredAny>,
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RawClaimSource {
    claim_name: Str,
    read_only: bool,
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RawResourceClaim {
    name: Str,
    resource_claim_name: Str,
    resource_claim_template_name: Str,
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RawStatus {
    phase: Str,
    reason: Str,
    #[serde(rename = "hostIP")]
    host_ip: Str,
    #[serde(rename = "podIP")]
    pod_ip: Str,
    #[serde(rename = "podIPs", deserialize_with = "nullable")]
    pod_ips: Vec<RawPodIp>,
    qos_class: Str,
    #[serde(deserialize_with = "time")]
    start_time: Option<i64>,
    #[serde(deserialize_with = "nullable")]
    conditions: Vec<Condition>,
    #[serde(deserialize_with = "nullable")]
    container_statuses: Vec<ContainerStatus>,
    #[serde(deserialize_with = "nullable")]
    init_container_statuses: Vec<ContainerStatus>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawPodIp {
    ip: Str,
}

/// Statuses are kept beside the pod, by container name, in spec order.
#[derive(Debug)]
pub struct PodState {
    pod: Pod,
    statuses: Box<[ContainerStatus]>,
    init_statuses: Box<[ContainerStatus]>,
}

fn container(c: RawContainer) -> Container {
    Container {
        name: c.name,
        image_spec: c.image,
        restart_policy: c.restart_policy,
        requests: resource_values(&c.resources.requests, ResourceContext::Container),
        limits: resource_values(&c.resources.limits, ResourceContext::Container),
    }
}

pub fn parse(text: &str, ctx: &Context) -> Result<(String, PodState), serde_json::Error> {
    let raw: Raw = serde_json::from_str(text)?;
    let key = raw.metadata.key();
    let spec = raw.spec;
    let status = raw.status;
    let name = raw.metadata.name.clone();
    let volumes = spec
        .volumes
        .into_iter()
        .filter_map(|v| match (v.persistent_volume_claim, v.ephemeral) {
            (Some(claim), _) => Some(ClaimVolume {
                volume: v.name,
                claim: claim.claim_name,
                read_only: claim.read_only,
                ephemeral: false,
            }),
            // An ephemeral volume's claim is named `<pod>-<volume>`.
            (None, Some(_)) => Some(ClaimVolume {
                claim: format!("{name}-{}", v.name).into(),
                volume: v.name,
                read_only: false,
                ephemeral: true,
            }),
            _ => None,
        })
        .collect();
    let pod = Pod {
        meta: raw.metadata.compact(ctx.labels, ctx.annotations),
        node: spec.node_name,
        host_ip: status.host_ip,
        pod_ip: status.pod_ip,
        pod_ips: status.pod_ips.into_iter().map(|ip| ip.ip).collect(),
        priority_class: spec.priority_class_name,
        host_network: spec.host_network,
        phase: status.phase,
        reason: status.reason,
        qos: status.qos_class,
        start_time: status.start_time,
        conditions: status.conditions.into(),
        restart_policy: spec.restart_policy,
        service_account: spec.service_account_name,
        scheduler: spec.scheduler_name,
        runtime_class: spec.runtime_class_name,
        overhead: resource_values(&spec.overhead, ResourceContext::Container),
        containers: spec.containers.into_iter().map(container).collect(),
        init_containers: spec.init_containers.into_iter().map(container).collect(),
        tolerations: spec.tolerations.into(),
        volumes,
        resource_claims: spec
            .resource_claims
            .into_iter()
            .map(|c| ResourceClaimRef {
                name: c.name,
                claim_name: c.resource_claim_name,
                template_name: c.resource_claim_template_name,
            })
            .collect(),
    };
    Ok((
        key,
        PodState {
            pod,
            statuses: status.container_statuses.into(),
            init_statuses: status.init_container_statuses.into(),
        },
    ))
}

/// The container families of regular or init containers.
struct ContainerFamilies {
    info: F,
    waiting: F,
    waiting_reason: F,
    running: F,
    started: F,
    terminated: F,
    terminated_reason: F,
    last_reason: F,
    last_exit_code: F,
    last_timestamp: F,
    ready: F,
    restarts: F,
    requests: F,
    limits: F,
}

const REGULAR: ContainerFamilies = ContainerFamilies {
    info: F::ContainerInfo,
    waiting: F::Waiting,
    waiting_reason: F::WaitingReason,
    running: F::Running,
    started: F::StateStarted,
    terminated: F::Terminated,
    terminated_reason: F::TerminatedReason,
    last_reason: F::LastTerminatedReason,
    last_exit_code: F::LastTerminatedExitCode,
    last_timestamp: F::LastTerminatedTimestamp,
    ready: F::ContainerReady,
    restarts: F::Restarts,
    requests: F::Requests,
    limits: F::Limits,
};

const INIT: ContainerFamilies = ContainerFamilies {
    info: F::InitInfo,
    waiting: F::InitWaiting,
    waiting_reason: F::InitWaitingReason,
    running: F::InitRunning,
    started: F::InitStateStarted,
    terminated: F::InitTerminated,
    terminated_reason: F::InitTerminatedReason,
    last_reason: F::InitLastTerminatedReason,
    last_exit_code: F::InitLastTerminatedExitCode,
    last_timestamp: F::InitLastTerminatedTimestamp,
    ready: F::InitReady,
    restarts: F::InitRestarts,
    requests: F::InitRequests,
    limits: F::InitLimits,
};

fn emit_containers(
    out: &mut Sink,
    base: &[(&'static str, &str)],
    node: &str,
    specs: &[Container],
    statuses: &[ContainerStatus],
    f: &ContainerFamilies,
    init: bool,
) {
    for cs in statuses {
        let spec = specs.iter().find(|c| c.name == cs.name);
        let image_spec = spec.map_or("", |c| &c.image_spec);
        let c = ("container", &*cs.name);
        let info = [
            c,
            ("image_spec", image_spec),
            ("image", &cs.image),
            ("image_id", &cs.image_id),
            ("container_id", &cs.container_id),
        ];
        if init {
            let policy = spec.and_then(|s| s.restart_policy.as_deref()).unwrap_or("");
            let mut labels = info.to_vec();
            labels.push(("restart_policy", policy));
            out.push(f.info as usize, base, &labels, 1.0);
        } else {
            out.push(f.info as usize, base, &info, 1.0);
        }
        let s = &cs.state;
        out.push(f.waiting as usize, base, &[c], bool_value(s.waiting.is_some()));
        if let Some(w) = &s.waiting {
            out.push(f.waiting_reason as usize, base, &[c, ("reason", &w.reason)], 1.0);
        }
        out.push(f.running as usize, base, &[c], bool_value(s.running.is_some()));
        let started = match (&s.running, &s.terminated) {
            (Some(r), _) => r.started_at,
            (None, Some(t)) => t.started_at,
            _ => None,
        };
        if let Some(t) = started {
            out.push(f.started as usize, base, &[c], t as f64);
        }
        out.push(f.terminated as usize, base, &[c], bool_value(s.terminated.is_some()));
        if let Some(t) = &s.terminated {
            out.push(f.terminated_reason as usize, base, &[c, ("reason", &t.reason)], 1.0);
        }
        if let Some(t) = &cs.last_state.terminated {
            out.push(f.last_reason as usize, base, &[c, ("reason", &t.reason)], 1.0);
            out.push(f.last_exit_code as usize, base, &[c], t.exit_code as f64);
            if let Some(at) = t.finished_at {
                out.push(f.last_timestamp as usize, base, &[c], at as f64);
            }
        }
        out.push(f.ready as usize, base, &[c], bool_value(cs.ready));
        out.push(f.restarts as usize, base, &[c], cs.restart_count as f64);
    }
    for spec in specs {
        for (family, list) in [(f.requests, &spec.requests), (f.limits, &spec.limits)] {
            for r in list.iter() {
                let labels = [("container", &*spec.name), ("node", node), ("resource", &r.resource), ("unit", r.unit)];
                out.push(family as usize, base, &labels, r.value);
            }
        }
    }
}

pub fn emit(uid: &str, s: &PodState, out: &mut Sink) {
    let p = &s.pod;
    let m = &p.meta;
    let base: &[(&'static str, &str)] = &[("namespace", &m.namespace), ("pod", &m.name), ("uid", uid)];
    let controller = m.owners.iter().find(|o| o.controller == Some(true));
    out.push(
        F::Info as usize,
        base,
        &[
            ("host_ip", &p.host_ip),
            ("pod_ip", &p.pod_ip),
            ("node", &p.node),
            ("created_by_kind", controller.map_or("<none>", |o| &o.kind)),
            ("created_by_name", controller.map_or("<none>", |o| &o.name)),
            ("priority_class", &p.priority_class),
            ("host_network", bool_label(p.host_network)),
        ],
        1.0,
    );
    for ip in p.pod_ips.iter() {
        let family = if ip.contains(':') { "6" } else { "4" };
        out.push(F::Ips as usize, base, &[("ip", ip), ("ip_family", family)], 1.0);
    }
    if let Some(t) = p.start_time {
        out.push(F::StartTime as usize, base, &[], t as f64);
    }
    let finished = s.statuses.iter().filter_map(|c| c.state.terminated.as_ref().and_then(|t| t.finished_at)).max();
    if let Some(t) = finished.filter(|&t| t > 0) {
        out.push(F::CompletionTime as usize, base, &[], t as f64);
    }
    if m.owners.is_empty() {
        out.push(F::Owner as usize, base, &owner_labels(None), 1.0);
    }
    for o in m.owners.iter() {
        out.push(F::Owner as usize, base, &owner_labels(Some(o)), 1.0);
    }
    out.push_pairs(F::Labels as usize, base, &m.labels);
    out.push_pairs(F::Annotations as usize, base, &m.annotations);
    if !p.phase.is_empty() {
        // A pod on a lost node keeps its last phase in the API; KSM reports it Unknown.
        let phase = if m.deleted.is_some() && &*p.reason == "NodeLost" { "Unknown" } else { &p.phase };
        for candidate in ["Pending", "Succeeded", "Failed", "Unknown", "Running"] {
            out.push(F::Phase as usize, base, &[("phase", candidate)], bool_value(phase == candidate));
        }
    }
    if !p.qos.is_empty() {
        for class in ["BestEffort", "Burstable", "Guaranteed"] {
            out.push(F::QosClass as usize, base, &[("qos_class", class)], bool_value(*p.qos == *class));
        }
    }
    for c in p.conditions.iter() {
        let true_at = if &*c.status == "True" { c.last_transition_time } else { None };
        match &*c.kind {
            "Ready" => {
                out.push_condition(F::Ready as usize, base, &[], "condition", &c.status);
                if let Some(t) = true_at {
                    out.push(F::ReadyTime as usize, base, &[], t as f64);
                }
            }
            "PodScheduled" => {
                out.push_condition(F::Scheduled as usize, base, &[], "condition", &c.status);
                if let Some(t) = true_at {
                    out.push(F::ScheduledTime as usize, base, &[], t as f64);
                }
                if &*c.status == "False" {
                    if c.reason.as_deref() == Some("Unschedulable") {
                        out.push(F::Unschedulable as usize, base, &[], 1.0);
                    }
                    if let Some(t) = c.last_transition_time {
                        out.push(F::UnscheduledTime as usize, base, &[], t as f64);
                    }
                }
            }
            "Initialized" => {
                if let Some(t) = true_at {
                    out.push(F::InitializedTime as usize, base, &[], t as f64);
                }
            }
            "ContainersReady" => {
                if let Some(t) = true_at {
                    out.push(F::ContainerReadyTime as usize, base, &[], t as f64);
                }
            }
            "DisruptionTarget" => {
                for reason in DISRUPTION_REASONS {
                    let on = &*c.status == "True" && c.reason.as_deref() == Some(*reason);
                    out.push(F::DisruptionReason as usize, base, &[("reason", reason)], bool_value(on));
                }
            }
            _ => {}
        }
    }
    emit_containers(out, base, &p.node, &p.containers, &s.statuses, &REGULAR, false);
    emit_containers(out, base, &p.node, &p.init_containers, &s.init_statuses, &INIT, true);
    for r in p.overhead.iter() {
        match &*r.resource {
            "cpu" => out.push(F::OverheadCpu as usize, base, &[], r.value),
            "memory" => out.push(F::OverheadMemory as usize, base, &[], r.value),
            _ => {}
        }
    }
    if let Some(class) = &p.runtime_class {
        out.push(F::RuntimeClass as usize, base, &[("runtimeclass_name", class)], 1.0);
    }
    if let Some(t) = m.created {
        out.push(F::Created as usize, base, &[], t as f64);
    }
    if let Some(t) = m.deleted {
        out.push(F::DeletionTimestamp as usize, base, &[], t as f64);
    }
    if !p.restart_policy.is_empty() {
        out.push(F::RestartPolicy as usize, base, &[("type", &p.restart_policy)], 1.0);
    }
    for v in p.volumes.iter() {
        let labels =
            [("volume", &*v.volume), ("persistentvolumeclaim", &v.claim), ("ephemeral", bool_label(v.ephemeral))];
        out.push(F::PvcInfo as usize, base, &labels, 1.0);
        out.push(F::PvcReadonly as usize, base, &labels, bool_value(v.read_only));
    }
    for reason in STATUS_REASONS {
        out.push(F::StatusReason as usize, base, &[("reason", reason)], bool_value(*p.reason == **reason));
    }
    for t in p.tolerations.iter() {
        let seconds = t.toleration_seconds.map(|s| s.to_string()).unwrap_or_default();
        let labels = [
            ("key", &*t.key),
            ("operator", &t.operator),
            ("value", &t.value),
            ("effect", &t.effect),
            ("toleration_seconds", &seconds),
        ];
        out.push(F::Tolerations as usize, base, &labels, 1.0);
    }
    if !p.service_account.is_empty() {
        out.push(F::ServiceAccount as usize, base, &[("service_account", &p.service_account)], 1.0);
    }
    if !p.scheduler.is_empty() {
        out.push(F::Scheduler as usize, base, &[("name", &p.scheduler)], 1.0);
    }
    for c in p.resource_claims.iter() {
        let labels = [
            ("claim_name", &*c.name),
            ("resourceclaim_name", &c.claim_name),
            ("resourceclaim_template_name", &c.template_name),
        ];
        out.push(F::ResourceClaim as usize, base, &labels, 1.0);
    }
}
