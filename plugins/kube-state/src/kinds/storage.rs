//! PersistentVolumes and PersistentVolumeClaims.

use super::Context;
use crate::common::*;
use serde::Deserialize;
use std::collections::BTreeMap;

fn opt(out: &mut Sink, family: usize, base: &[(&'static str, &str)], value: Option<i64>) {
    if let Some(v) = value {
        out.push(family, base, &[], v as f64);
    }
}

// --- PersistentVolumes ---------------------------------------------------------------

pub mod pv {
    use super::*;
    families!(F, SPECS {
        Annotations => "kube_persistentvolume_annotations", Gauge, "Kubernetes annotations converted to Prometheus labels.";
        CapacityBytes => "kube_persistentvolume_capacity_bytes", Gauge, "Persistentvolume capacity in bytes.";
        Phase => "kube_persistentvolume_status_phase", Gauge, "The phase indicates if a volume is available, bound to a claim, or released by a claim.";
        ClaimRef => "kube_persistentvolume_claim_ref", Gauge, "Information about the Persistent Volume Claim Reference.";
        Labels => "kube_persistentvolume_labels", Gauge, "Kubernetes labels converted to Prometheus labels.";
        Info => "kube_persistentvolume_info", Gauge, "Information about persistentvolume.";
        Created => "kube_persistentvolume_created", Gauge, "Unix creation timestamp";
        DeletionTimestamp => "kube_persistentvolume_deletion_timestamp", Gauge, "Unix deletion timestamp";
        VolumeMode => "kube_persistentvolume_volume_mode", Gauge, "Volume Mode information for the PersistentVolume.";
        AccessMode => "kube_persistentvolume_access_mode", Gauge, "The access mode(s) specified by the persistent volume.";
    });
}

/// `kube_persistentvolume_info`'s labels after `persistentvolume`, in KSM's order.
const PV_INFO_LABELS: [&str; 20] = [
    "storageclass",
    "gce_persistent_disk_name",
    "ebs_volume_id",
    "azure_disk_name",
    "fc_wwids",
    "fc_lun",
    "fc_target_wwns",
    "iscsi_target_portal",
    "iscsi_iqn",
    "iscsi_lun",
    "iscsi_initiator_name",
    "nfs_server",
    "nfs_path",
    "csi_driver",
    "csi_volume_handle",
    "local_path",
    "local_fs",
    "host_path",
    "host_path_type",
    "reclaim_policy",
];

#[derive(Debug)]
pub struct PersistentVolume {
    meta: Meta,
    capacity: Option<f64>,
    phase: Str,
    claim: Option<(Str, Str)>,
    info: Box<[Str]>,
    volume_mode: Str,
    access_modes: Box<[Str]>,
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct PvSpec {
    #[serde(deserialize_with = "nullable")]
    capacity: BTreeMap<String, Quantity>,
    claim_ref: Option<ClaimRef>,
    storage_class_name: Str,
    persistent_volume_reclaim_policy: Str,
    volume_mode: Option<Str>,
    #[serde(deserialize_with = "nullable")]
    access_modes: Box<[Str]>,
    gce_persistent_disk: Option<Gce>,
    aws_elastic_block_store: Option<Ebs>,
    azure_disk: Option<Azure>,
    fc: Option<Fc>,
    iscsi: Option<Iscsi>,
    nfs: Option<Nfs>,
    csi: Option<Csi>,
    local: Option<Local>,
    host_path: Option<HostPath>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct ClaimRef {
    namespace: Str,
    name: Str,
}
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Gce {
    pd_name: Str,
}
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Ebs {
    #[serde(rename = "volumeID")]
    volume_id: Str,
}
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Azure {
    disk_name: Str,
}
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Fc {
    #[serde(rename = "wwids", deserialize_with = "nullable")]
    wwids: Vec<String>,
    lun: Option<i64>,
    #[serde(rename = "targetWWNs", deserialize_with = "nullable")]
    target_wwns: Vec<String>,
}
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Iscsi {
    target_portal: Str,
    iqn: Str,
    lun: i64,
    initiator_name: Option<Str>,
}
#[derive(Default, Deserialize)]
#[serde(default)]
struct Nfs {
    server: Str,
    path: Str,
}
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Csi {
    driver: Str,
    volume_handle: Str,
}
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Local {
    path: Str,
    fs_type: Option<Str>,
}
#[derive(Default, Deserialize)]
#[serde(default)]
struct HostPath {
    path: Str,
    #[serde(rename = "type")]
    kind: Option<Str>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct PvStatus {
    phase: Str,
}

pub fn parse_pv(text: &str, ctx: &Context) -> Result<(String, PersistentVolume), serde_json::Error> {
    #[derive(Deserialize)]
    struct Raw {
        #[serde(default)]
        metadata: RawMeta,
        #[serde(default)]
        spec: PvSpec,
        #[serde(default)]
        status: PvStatus,
    }
    let raw: Raw = serde_json::from_str(text)?;
    let key = raw.metadata.key();
    let s = raw.spec;
    let mut info: Vec<Str> = vec![Str::default(); PV_INFO_LABELS.len()];
    info[0] = s.storage_class_name;
    if let Some(g) = s.gce_persistent_disk {
        info[1] = g.pd_name;
    }
    if let Some(e) = s.aws_elastic_block_store {
        info[2] = e.volume_id;
    }
    if let Some(a) = s.azure_disk {
        info[3] = a.disk_name;
    }
    if let Some(fc) = s.fc {
        info[4] = fc.wwids.join(",").into();
        info[5] = fc.lun.map(|l| l.to_string()).unwrap_or_default().into();
        info[6] = fc.target_wwns.join(",").into();
    }
    if let Some(i) = s.iscsi {
        info[7] = i.target_portal;
        info[8] = i.iqn;
        info[9] = i.lun.to_string().into();
        info[10] = i.initiator_name.unwrap_or_default();
    }
    if let Some(n) = s.nfs {
        info[11] = n.server;
        info[12] = n.path;
    }
    if let Some(c) = s.csi {
        info[13] = c.driver;
        info[14] = c.volume_handle;
    }
    if let Some(l) = s.local {
        info[15] = l.path;
        info[16] = l.fs_type.unwrap_or_default();
    }
    if let Some(h) = s.host_path {
        info[17] = h.path;
        info[18] = h.kind.unwrap_or_default();
    }
    info[19] = s.persistent_volume_reclaim_policy;
    let pv = PersistentVolume {
        meta: raw.metadata.compact(ctx.labels, ctx.annotations),
        capacity: s.capacity.get("storage").map(|q| q.value()),
        phase: raw.status.phase,
        claim: s.claim_ref.map(|c| (c.namespace, c.name)),
        info: info.into(),
        volume_mode: s.volume_mode.unwrap_or_else(|| "Filesystem".into()),
        access_modes: s.access_modes,
    };
    Ok((key, pv))
}

pub fn emit_pv(_uid: &str, p: &PersistentVolume, out: &mut Sink) {
    use pv::F;
    let m = &p.meta;
    let base: &[(&'static str, &str)] = &[("persistentvolume", &m.name)];
    out.push_pairs(F::Annotations as usize, base, &m.annotations);
    if let Some(c) = p.capacity {
        out.push(F::CapacityBytes as usize, base, &[], c);
    }
    if !p.phase.is_empty() {
        for phase in ["Pending", "Available", "Bound", "Released", "Failed"] {
            out.push(F::Phase as usize, base, &[("phase", phase)], bool_value(*p.phase == *phase));
        }
    }
    if let Some((ns, name)) = &p.claim {
        out.push(F::ClaimRef as usize, base, &[("claim_namespace", ns), ("name", name)], 1.0);
    }
    out.push_pairs(F::Labels as usize, base, &m.labels);
    let info: Vec<(&'static str, &str)> = PV_INFO_LABELS.iter().zip(p.info.iter()).map(|(k, v)| (*k, &**v)).collect();
    out.push(F::Info as usize, base, &info, 1.0);
    opt(out, F::Created as usize, base, m.created);
    opt(out, F::DeletionTimestamp as usize, base, m.deleted);
    out.push(F::VolumeMode as usize, base, &[("volumemode", &p.volume_mode)], 1.0);
    for mode in p.access_modes.iter() {
        out.push(F::AccessMode as usize, base, &[("access_mode", mode)], 1.0);
    }
}

// --- PersistentVolumeClaims ----------------------------------------------------------

pub mod pvc {
    use super::*;
    families!(F, SPECS {
        Annotations => "kube_persistentvolumeclaim_annotations", Gauge, "Kubernetes annotations converted to Prometheus labels.";
        AccessMode => "kube_persistentvolumeclaim_access_mode", Gauge, "The access mode(s) specified by the persistent volume claim.";
        Info => "kube_persistentvolumeclaim_info", Gauge, "Information about persistent volume claim.";
        Labels => "kube_persistentvolumeclaim_labels", Gauge, "Kubernetes labels converted to Prometheus labels.";
        RequestsStorage => "kube_persistentvolumeclaim_resource_requests_storage_bytes", Gauge, "The capacity of storage requested by the persistent volume claim.";
        Condition => "kube_persistentvolumeclaim_status_condition", Gauge, "Information about status of different conditions of persistent volume claim.";
        Phase => "kube_persistentvolumeclaim_status_phase", Gauge, "The phase the persistent volume claim is currently in.";
        Created => "kube_persistentvolumeclaim_created", Gauge, "Unix creation timestamp";
        DeletionTimestamp => "kube_persistentvolumeclaim_deletion_timestamp", Gauge, "Unix deletion timestamp";
    });
}

#[derive(Debug)]
pub struct PersistentVolumeClaim {
    meta: Meta,
    access_modes: Box<[Str]>,
    storage_class: Str,
    volume_name: Str,
    volume_mode: Str,
    request: Option<f64>,
    conditions: Box<[(Str, Str)]>,
    phase: Str,
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct PvcSpec {
    #[serde(deserialize_with = "nullable")]
    access_modes: Box<[Str]>,
    storage_class_name: Option<Str>,
    volume_name: Str,
    volume_mode: Option<Str>,
    resources: super::pod::RawResources,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct PvcStatus {
    phase: Str,
    #[serde(deserialize_with = "nullable")]
    conditions: Vec<Condition>,
}

pub fn parse_pvc(text: &str, ctx: &Context) -> Result<(String, PersistentVolumeClaim), serde_json::Error> {
    #[derive(Deserialize)]
    struct Raw {
        #[serde(default)]
        metadata: RawMeta,
        #[serde(default)]
        spec: PvcSpec,
        #[serde(default)]
        status: PvcStatus,
    }
    let raw: Raw = serde_json::from_str(text)?;
    let key = raw.metadata.key();
    let s = raw.spec;
    // The beta annotation still names the class on old claims.
    let storage_class = s
        .storage_class_name
        .or_else(|| raw.metadata.annotations.get("volume.beta.kubernetes.io/storage-class").map(|s| s.as_str().into()))
        .unwrap_or_default();
    let pvc = PersistentVolumeClaim {
        meta: raw.metadata.compact(ctx.labels, ctx.annotations),
        access_modes: s.access_modes,
        storage_class,
        volume_name: s.volume_name,
        volume_mode: s.volume_mode.unwrap_or_default(),
        request: s.resources.requests.get("storage").map(|q| q.value()),
        conditions: raw.status.conditions.into_iter().map(|c| (c.kind, c.status)).collect(),
        phase: raw.status.phase,
    };
    Ok((key, pvc))
}

pub fn emit_pvc(_uid: &str, p: &PersistentVolumeClaim, out: &mut Sink) {
    use pvc::F;
    let m = &p.meta;
    let base: &[(&'static str, &str)] = &[("namespace", &m.namespace), ("persistentvolumeclaim", &m.name)];
    out.push_pairs(F::Annotations as usize, base, &m.annotations);
    for mode in p.access_modes.iter() {
        out.push(F::AccessMode as usize, base, &[("access_mode", mode)], 1.0);
    }
    let info = [("storageclass", &*p.storage_class), ("volumename", &p.volume_name), ("volumemode", &p.volume_mode)];
    out.push(F::Info as usize, base, &info, 1.0);
    out.push_pairs(F::Labels as usize, base, &m.labels);
    if let Some(r) = p.request {
        out.push(F::RequestsStorage as usize, base, &[], r);
    }
    for (kind, status) in p.conditions.iter() {
        out.push_condition(F::Condition as usize, base, &[("condition", kind)], "status", status);
    }
    if !p.phase.is_empty() {
        for phase in ["Lost", "Bound", "Pending"] {
            out.push(F::Phase as usize, base, &[("phase", phase)], bool_value(*p.phase == *phase));
        }
    }
    opt(out, F::Created as usize, base, m.created);
    opt(out, F::DeletionTimestamp as usize, base, m.deleted);
}
