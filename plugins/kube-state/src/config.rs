//! The kube-state plugin's config section.

use crate::kinds::Kind;
use serde::Deserialize;
use std::collections::BTreeMap;
use wasmon_sdk::PluginError;

/// The plugin's section of a job (`config:`); every key is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubeStateConfig {
    /// Kinds to watch, by plural name as KSM's `--resources`; all when absent.
    pub resources: Option<Vec<String>>,
    /// kind -> label names (or `*`) exported in `kube_<kind>_labels`, as
    /// KSM's `--metric-labels-allowlist`; kind `*` means every kind.
    pub metric_labels_allowlist: BTreeMap<String, Vec<String>>,
    /// kind -> annotation names (or `*`) for `kube_<kind>_annotations`.
    pub metric_annotations_allowlist: BTreeMap<String, Vec<String>>,
}

/// Which keys of one kind an allowlist lets through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowlist {
    All,
    Names(Vec<String>),
}

impl Allowlist {
    pub fn allows(&self, key: &str) -> bool {
        match self {
            Allowlist::All => true,
            Allowlist::Names(names) => names.iter().any(|n| n == key),
        }
    }
}

/// The config, checked and resolved per kind.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub kinds: Vec<Kind>,
    labels: BTreeMap<Kind, Allowlist>,
    annotations: BTreeMap<Kind, Allowlist>,
}

impl Resolved {
    pub fn labels(&self, kind: Kind) -> Option<&Allowlist> {
        self.labels.get(&kind)
    }
    pub fn annotations(&self, kind: Kind) -> Option<&Allowlist> {
        self.annotations.get(&kind)
    }
}

impl KubeStateConfig {
    /// Parse and validate the section (JSON text from the host), reporting
    /// every problem at once.
    pub fn parse(config: &str) -> Result<Resolved, PluginError> {
        let config: Self = wasmon_sdk::config::parse(config)?;
        let mut problems = Vec::new();
        let kinds = match &config.resources {
            None => Kind::ALL.to_vec(),
            Some(names) => {
                let mut kinds = Vec::new();
                for name in names {
                    match Kind::from_plural(name) {
                        Some(k) if kinds.contains(&k) => problems.push(format!("resources: {name:?} is listed twice")),
                        Some(k) => kinds.push(k),
                        None => problems.push(format!("resources: unknown kind {name:?} (known: {})", Kind::known())),
                    }
                }
                if names.is_empty() {
                    problems.push("resources: empty list; leave the key out to watch every kind".into());
                }
                kinds
            }
        };
        let labels = resolve_allowlist("metric_labels_allowlist", &config.metric_labels_allowlist, &mut problems);
        let annotations =
            resolve_allowlist("metric_annotations_allowlist", &config.metric_annotations_allowlist, &mut problems);
        if problems.is_empty() {
            Ok(Resolved { kinds, labels, annotations })
        } else {
            Err(PluginError::config(problems.join("; ")))
        }
    }
}

fn resolve_allowlist(
    key: &str,
    map: &BTreeMap<String, Vec<String>>,
    problems: &mut Vec<String>,
) -> BTreeMap<Kind, Allowlist> {
    let mut out = BTreeMap::new();
    let resolve = |names: &Vec<String>, problems: &mut Vec<String>, kind: &str| {
        if names.iter().any(|n| n == "*") {
            return Allowlist::All;
        }
        for n in names {
            if n.is_empty() {
                problems.push(format!("{key}.{kind}: empty name"));
            }
        }
        Allowlist::Names(names.clone())
    };
    // `*` first, so that a kind named explicitly overrides it.
    if let Some(names) = map.get("*") {
        let list = resolve(names, problems, "*");
        for kind in Kind::ALL {
            out.insert(kind, list.clone());
        }
    }
    for (kind_name, names) in map {
        if kind_name == "*" {
            continue;
        }
        match Kind::from_plural(kind_name) {
            Some(kind) => {
                let list = resolve(names, problems, kind_name);
                out.insert(kind, list);
            }
            None => problems.push(format!("{key}: unknown kind {kind_name:?} (known: *, {})", Kind::known())),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_watch_everything_with_no_allowlists() {
        let c = KubeStateConfig::parse("{}").unwrap();
        assert_eq!(c.kinds, Kind::ALL.to_vec());
        assert!(c.labels(Kind::Pod).is_none());
        assert!(KubeStateConfig::parse("").is_ok());
    }

    #[test]
    fn allowlists_resolve_per_kind() {
        let c = KubeStateConfig::parse(
            r#"{"resources":["pods","nodes"],"metric_labels_allowlist":{"*":["app"],"pods":["*"]},
                "metric_annotations_allowlist":{"nodes":["a","b"]}}"#,
        )
        .unwrap();
        assert_eq!(c.kinds, [Kind::Pod, Kind::Node]);
        assert_eq!(c.labels(Kind::Pod), Some(&Allowlist::All));
        assert_eq!(c.labels(Kind::Node), Some(&Allowlist::Names(vec!["app".into()])));
        assert!(c.annotations(Kind::Pod).is_none());
        assert!(c.annotations(Kind::Node).unwrap().allows("b"));
    }

    #[test]
    fn every_problem_is_reported() {
        let err = KubeStateConfig::parse(
            r#"{"resources":["pods","pod","pods"],"metric_labels_allowlist":{"widgets":["x"]}}"#,
        )
        .unwrap_err();
        assert_eq!(err.kind, wasmon_sdk::ErrorKind::Config);
        for want in ["unknown kind \"pod\"", "listed twice", "metric_labels_allowlist: unknown kind \"widgets\""] {
            assert!(err.message.contains(want), "{want}: {}", err.message);
        }
        let err = KubeStateConfig::parse(r#"{"resource":["pods"]}"#).unwrap_err();
        assert!(err.message.contains("unknown field `resource`"), "{}", err.message);
    }
}
