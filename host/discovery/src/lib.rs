//! Service discovery: providers that turn files and the Kubernetes API into
//! Prometheus-style target groups, each target a label set with
//! `__address__` and the provider's `__meta_*` labels.
//!
//! A provider sends the groups it knows as they change. Each group is named
//! by its `source`; a group arriving again replaces the earlier one with the
//! same source, and a group with no targets removes it (Prometheus'
//! `targetgroup.Group` semantics). Relabeling and scraping are the host's
//! business; this crate only discovers.

pub mod file;
pub mod kubernetes;

use std::collections::BTreeMap;

/// A label set: name to value, sorted by name.
pub type LabelSet = BTreeMap<String, String>;

/// The label holding a target's `host:port`.
pub const ADDRESS_LABEL: &str = "__address__";

/// Targets from one source (one file entry, one pod, one Endpoints object)
/// and the labels they share.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetGroup {
    /// Unique within its provider, stable across updates.
    pub source: String,
    /// One label set per target; each has at least `__address__`.
    pub targets: Vec<LabelSet>,
    /// Labels every target of the group gets unless it sets them itself.
    pub labels: LabelSet,
}

impl TargetGroup {
    /// Each target's full label set: the group's labels overlaid with the
    /// target's own, as Prometheus merges them before relabeling.
    pub fn merged_targets(&self) -> impl Iterator<Item = LabelSet> + '_ {
        self.targets.iter().map(|target| {
            let mut all = self.labels.clone();
            all.extend(target.iter().map(|(k, v)| (k.clone(), v.clone())));
            all
        })
    }
}

/// Where a provider sends its updates: every changed group, whole.
pub type GroupSender = tokio::sync::mpsc::Sender<Vec<TargetGroup>>;
