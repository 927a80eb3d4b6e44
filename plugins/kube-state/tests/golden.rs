//! Golden files: every fixture object, applied alone, gives the series in
//! `tests/golden/<fixture>.prom`. The goldens were checked by hand against
//! kube-state-metrics 2.20 semantics. After a deliberate change, regenerate
//! with `UPDATE_GOLDEN=1 cargo test -p wasmon-kube-state --test golden` and
//! review the diff.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use support::*;
use wasmon_sdk::MetricKind;

/// The config the goldens use: every label and annotation allowlisted, so
/// the `*_labels`/`*_annotations` families and the naming show.
const GOLDEN_CONFIG: &str = r#"{"metric_labels_allowlist":{"*":["*"]},"metric_annotations_allowlist":{"*":["*"]}}"#;

/// Fixture files of kinds the plugin does not watch (EndpointSlices).
fn unsupported(name: &str) -> bool {
    name.starts_with("endpointslice")
}

/// (fixture name, objects) for every fixture file.
fn fixtures() -> Vec<(String, Vec<serde_json::Value>)> {
    let mut out = Vec::new();
    for dir in fixture_dirs() {
        let mut paths: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        for path in paths {
            let name = path.file_stem().expect("stem").to_string_lossy().replace(".k3s", "");
            if !unsupported(&name) {
                out.push((name, objects(&path)));
            }
        }
    }
    out
}

#[test]
fn every_fixture_matches_its_golden() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut mismatched = Vec::new();
    for (name, objects) in fixtures() {
        let mut plugin = plugin(GOLDEN_CONFIG);
        apply_all(&mut plugin, &objects);
        let rendered = render(&mut plugin);
        let path = crate_dir().join("tests/golden").join(format!("{name}.prom"));
        if update {
            std::fs::write(&path, &rendered).expect("write golden");
            continue;
        }
        let golden = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if golden != rendered {
            eprintln!("--- {name}: rendered ---\n{rendered}");
            mismatched.push(name);
        }
    }
    assert!(mismatched.is_empty(), "output differs from tests/golden for {mismatched:?}");
}

/// Label sets where KSM 2.20's code differs from its docs and the unit
/// tests have no sample to tell: the code is followed.
const CODE_OVER_DOCS: &[(&str, &str)] = &[
    // lease.go: the family adds only the default `lease` label.
    ("kube_lease_renew_time", "lease"),
];

/// Every family in the goldens is a KSM 2.20 default family with the same
/// type and the same label names (ignoring allowlist-dynamic `label_*` /
/// `annotation_*` ones); every family the kube-prometheus rules use from the
/// kinds watched appears with samples.
#[test]
fn families_match_kube_state_metrics() {
    let reference = reference();
    let mut seen: BTreeMap<String, (MetricKind, BTreeSet<String>, usize)> = BTreeMap::new();
    for (_, objects) in fixtures() {
        let mut plugin = plugin(GOLDEN_CONFIG);
        apply_all(&mut plugin, &objects);
        for family in ksm_families(&mut plugin) {
            let entry = seen.entry(family.name.clone()).or_insert((family.kind, BTreeSet::new(), 0));
            entry.2 += family.metrics.len();
            for m in &family.metrics {
                for l in &m.labels {
                    if !(l.name.starts_with("label_") || l.name.starts_with("annotation_")) {
                        entry.1.insert(l.name.clone());
                    }
                }
            }
        }
    }
    let mut problems = Vec::new();
    for (name, (kind, labels, samples)) in &seen {
        let Some(r) = reference.get(name) else {
            problems.push(format!("{name}: not a kube-state-metrics 2.20 family"));
            continue;
        };
        if r.default != "yes" && r.default != "resource-not-default" {
            problems.push(format!("{name}: {} in KSM", r.default));
        }
        let want_type = match kind {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            other => panic!("{name}: {other:?}"),
        };
        if r.family_type != want_type {
            problems.push(format!("{name}: type {want_type}, KSM {}", r.family_type));
        }
        if *samples == 0 {
            continue;
        }
        let expected: BTreeSet<String> = match CODE_OVER_DOCS.iter().find(|(n, _)| n == name) {
            Some((_, l)) => l.split(',').map(String::from).collect(),
            None if !r.test_labels.is_empty() => r.test_labels.clone(),
            None => r.doc_labels.clone(),
        };
        if *labels != expected {
            problems.push(format!("{name}: labels {labels:?}, KSM {expected:?}"));
        }
    }
    let kinds: BTreeSet<&str> = wasmon_kube_state::kinds::Kind::ALL.iter().map(|k| k.plural()).collect();
    for name in rule_families() {
        let watched = reference.get(&name).is_some_and(|r| kinds.contains(r.kind.as_str()));
        if !watched {
            // kube_poddisruptionbudget_* and KSM's self-telemetry.
            continue;
        }
        match seen.get(&name) {
            Some((_, _, samples)) if *samples > 0 => {}
            _ => problems.push(format!("{name}: used by kube-prometheus rules, but no sample from any fixture")),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Every default family of every watched kind is implemented.
#[test]
fn every_default_family_is_implemented() {
    let implemented: BTreeSet<&str> =
        wasmon_kube_state::kinds::Kind::ALL.iter().flat_map(|k| k.specs().iter().map(|s| s.name)).collect();
    let kinds: BTreeSet<&str> = wasmon_kube_state::kinds::Kind::ALL.iter().map(|k| k.plural()).collect();
    let reference = reference();
    let missing: Vec<&String> = reference
        .iter()
        .filter(|(_, r)| r.default != "opt-in" && kinds.contains(r.kind.as_str()))
        .map(|(n, _)| n)
        .filter(|n| !implemented.contains(n.as_str()))
        .collect();
    assert!(missing.is_empty(), "not implemented: {missing:?}");
}

/// Fragments are only a transport: rendering in fragments of a few bytes
/// (a fragment per object and family) reads back as the same families as
/// one fragment per family.
#[test]
fn fragment_size_changes_nothing() {
    for (name, objects) in fixtures() {
        let mut whole = plugin(GOLDEN_CONFIG).with_fragment_bytes(usize::MAX);
        let mut tiny = plugin(GOLDEN_CONFIG).with_fragment_bytes(1);
        apply_all(&mut whole, &objects);
        apply_all(&mut tiny, &objects);
        let count = |plugin: &mut wasmon_kube_state::KubeStatePlugin| {
            let mut out = wasmon_sdk_kube::Exposition::default();
            wasmon_sdk_kube::KubeState::collect(plugin, &mut out).expect("collect");
            out.fragments().len()
        };
        if objects.len() > 1 {
            assert!(count(&mut tiny) > count(&mut whole), "{name}: fragmenting made no more fragments");
        }
        assert_eq!(render(&mut whole), render(&mut tiny), "{name}");
    }
}
