//! Helpers shared by the kube-state tests: fixtures, driving the plugin,
//! rendering and reading the reference tables.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use wasmon_kube_state::KubeStatePlugin;
use wasmon_kube_state::kinds::Kind;
use wasmon_sdk::MetricFamily;
use wasmon_sdk::text::{self, Format};
use wasmon_sdk_kube::{KubeState, ObjectEvent};

pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shared real-cluster fixtures (owned by tests/kube-fake) and ours.
pub fn fixture_dirs() -> [PathBuf; 2] {
    [crate_dir().join("../../tests/kube-fake/fixtures"), crate_dir().join("tests/fixtures")]
}

/// Every object of a fixture file: the object itself, or a List's items.
pub fn objects(path: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if value["kind"].as_str().is_some_and(|k| k.ends_with("List")) {
        value["items"].as_array().cloned().unwrap_or_default()
    } else {
        vec![value]
    }
}

/// The plugin kind for an object's `kind`.
pub fn kind_of(object: &serde_json::Value) -> Option<Kind> {
    let kind = object["kind"].as_str()?;
    Kind::ALL.into_iter().find(|k| k.resource().kind == kind)
}

pub fn plugin(config: &str) -> KubeStatePlugin {
    KubeStatePlugin::init(config).expect("config is valid").0
}

/// Apply objects (each to its kind's store); panics on a refused object.
pub fn apply_all(plugin: &mut KubeStatePlugin, objects: &[serde_json::Value]) {
    let events: Vec<ObjectEvent> = objects
        .iter()
        .map(|o| {
            let kind = kind_of(o).expect("a known kind");
            ObjectEvent::applied(plugin.index_of(kind).expect("kind watched"), o.to_string())
        })
        .collect();
    let problems = plugin.apply_events(&events);
    assert!(problems.is_empty(), "{problems:?}");
}

/// The families in text form, without the plugin's own `wasmon_*` families.
pub fn render(plugin: &mut KubeStatePlugin) -> String {
    text::encode(&ksm_families(plugin), Format::Prometheus)
}

pub fn ksm_families(plugin: &mut KubeStatePlugin) -> Vec<MetricFamily> {
    let mut families = plugin.collect_families().expect("collect");
    families.retain(|f| !f.name.starts_with("wasmon_"));
    families
}

/// A row of ksm_families.tsv.
#[derive(Debug)]
pub struct Reference {
    pub kind: String,
    pub family_type: String,
    /// Static label names from the docs column.
    pub doc_labels: BTreeSet<String>,
    /// Label names seen in KSM's unit tests (empty: no sample there).
    pub test_labels: BTreeSet<String>,
    pub default: String,
}

pub fn reference() -> BTreeMap<String, Reference> {
    let text = std::fs::read_to_string(crate_dir().join("tests/reference/ksm_families.tsv")).expect("ksm_families.tsv");
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.starts_with("family\t")) {
        let cols: Vec<&str> = line.split('\t').collect();
        let set = |s: &str| -> BTreeSet<String> {
            // UPPER_CASE parts name allowlist-dynamic labels.
            s.split(',')
                .filter(|l| !l.is_empty() && !l.chars().any(|c| c.is_ascii_uppercase()))
                .map(String::from)
                .collect()
        };
        out.insert(
            cols[0].to_string(),
            Reference {
                family_type: cols[1].to_string(),
                doc_labels: set(cols[2]),
                kind: cols[3].to_string(),
                default: cols[5].to_string(),
                test_labels: cols.get(6).map(|c| set(c)).unwrap_or_default(),
            },
        );
    }
    out
}

/// Families the kube-prometheus default rules use.
pub fn rule_families() -> Vec<String> {
    let text = std::fs::read_to_string(crate_dir().join("tests/reference/kube_prometheus_rule_families.txt"))
        .expect("kube_prometheus_rule_families.txt");
    text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).map(|l| l.trim().to_string()).collect()
}
