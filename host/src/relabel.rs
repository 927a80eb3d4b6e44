//! Prometheus' relabeling, for `relabel_configs` (targets),
//! `metric_relabel_configs` (scraped series) and `write_relabel_configs`
//! (remote-written series). Regexes are anchored at both ends, `$1`/`${name}`
//! in `replacement` and `target_label` expand capture groups, and a label set
//! left empty (or hit by `drop`/`keep`/`keepequal`/`dropequal`) is dropped.

use crate::config::{RelabelAction, RelabelConfig, is_valid_label_name};
use std::collections::BTreeMap;
use wasmon_storage::{Labels, MatchOp, Matcher};

/// A compiled list of relabeling steps.
#[derive(Debug, Clone, Default)]
pub struct Relabeler {
    steps: Vec<Step>,
}

#[derive(Debug, Clone)]
struct Step {
    config: RelabelConfig,
    /// Holds the anchored regex (`^(?:regex)$`) the store's matchers compile.
    regex: Matcher,
}

/// `target_label` of `replace` (and `replacement` of `labelmap`) may hold
/// `$1`/`${1}` templates: Prometheus' `relabelTargetLegacy` regex.
fn is_valid_target_template(target: &str) -> bool {
    const LEGACY_TARGET: &str = r"(?:(?:[a-zA-Z_]|\$(?:\{[0-9A-Za-z_]+\}|[0-9A-Za-z_]+))+[0-9A-Za-z_]*)+";
    Matcher::regex("target_label", LEGACY_TARGET).is_ok_and(|m| m.matches_value(target))
}

impl Relabeler {
    /// Compiles and checks `configs` the way Prometheus validates them. The
    /// error starts with `[index]: ` so callers can prefix the key.
    pub fn new(configs: &[RelabelConfig]) -> Result<Self, String> {
        let mut steps = Vec::with_capacity(configs.len());
        for (i, c) in configs.iter().enumerate() {
            let fail = |m: String| format!("[{i}]: {m}");
            // Prometheus compiles `^(?s:regex)$`: `.` also matches a newline.
            let regex = Matcher::regex("regex", &format!("(?s:{})", c.regex)).map_err(|e| fail(e.to_string()))?;
            for name in &c.source_labels {
                if !is_valid_label_name(name) {
                    return Err(fail(format!("source label {name:?} is not a valid label name")));
                }
            }
            let needs_target = matches!(
                c.action,
                RelabelAction::Replace
                    | RelabelAction::Lowercase
                    | RelabelAction::Uppercase
                    | RelabelAction::KeepEqual
                    | RelabelAction::DropEqual
                    | RelabelAction::HashMod
            );
            if c.action == RelabelAction::HashMod && c.modulus == 0 {
                return Err(fail("action hashmod needs a modulus greater than 0".into()));
            }
            if needs_target && c.target_label.is_empty() {
                return Err(fail(format!("action {:?} needs target_label", c.action)));
            }
            let templated = c.action == RelabelAction::Replace && c.target_label.contains('$');
            if templated && !is_valid_target_template(&c.target_label) {
                return Err(fail(format!("target_label {:?} is not a valid label name template", c.target_label)));
            }
            if needs_target && !templated && !is_valid_label_name(&c.target_label) {
                return Err(fail(format!("target_label {:?} is not a valid label name", c.target_label)));
            }
            let equal_or_case = matches!(
                c.action,
                RelabelAction::Lowercase
                    | RelabelAction::Uppercase
                    | RelabelAction::KeepEqual
                    | RelabelAction::DropEqual
            );
            if equal_or_case && c.replacement != "$1" {
                return Err(fail(format!("action {:?} can not set replacement", c.action)));
            }
            if matches!(c.action, RelabelAction::KeepEqual | RelabelAction::DropEqual)
                && (c.regex != "(.*)" || c.modulus != 0 || c.separator != ";")
            {
                return Err(fail(format!("action {:?} takes only source_labels and target_label", c.action)));
            }
            if c.action == RelabelAction::LabelMap && !is_valid_target_template(&c.replacement) {
                return Err(fail(format!("replacement {:?} is not a valid label name template", c.replacement)));
            }
            if matches!(c.action, RelabelAction::LabelDrop | RelabelAction::LabelKeep)
                && (!c.source_labels.is_empty()
                    || !c.target_label.is_empty()
                    || c.separator != ";"
                    || c.modulus != 0
                    || c.replacement != "$1")
            {
                return Err(fail(format!("action {:?} takes only regex, no other fields", c.action)));
            }
            steps.push(Step { config: c.clone(), regex });
        }
        Ok(Self { steps })
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The relabeled labels, or `None` when the series is dropped.
    pub fn apply(&self, labels: &Labels) -> Option<Labels> {
        if self.steps.is_empty() {
            return Some(labels.clone());
        }
        let mut set: BTreeMap<String, String> = labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect();
        self.apply_map(&mut set).ok()?;
        let out = Labels::from_pairs(set);
        (!out.is_empty()).then_some(out)
    }

    /// Relabel `set` in place. `Err(step)` names the step (its index in
    /// the config) that dropped it, for the targets view's "why dropped".
    /// A set left empty counts as dropped by the step that emptied it.
    pub fn apply_map(&self, set: &mut BTreeMap<String, String>) -> Result<(), usize> {
        for (index, step) in self.steps.iter().enumerate() {
            if !step.apply(set) || set.is_empty() {
                return Err(index);
            }
        }
        Ok(())
    }

    /// The config of step `index`, for messages.
    pub fn step_config(&self, index: usize) -> Option<&RelabelConfig> {
        self.steps.get(index).map(|s| &s.config)
    }
}

impl Step {
    /// Apply this step; false when it drops the set.
    fn apply(&self, set: &mut BTreeMap<String, String>) -> bool {
        let MatchOp::Regex(re) = &self.regex.op else { return true };
        let c = &self.config;
        let value = |set: &BTreeMap<String, String>| {
            c.source_labels.iter().map(|n| set.get(n).map_or("", String::as_str)).collect::<Vec<_>>().join(&c.separator)
        };
        let target_value = |set: &BTreeMap<String, String>| set.get(&c.target_label).cloned().unwrap_or_default();
        match c.action {
            RelabelAction::Drop => return !re.is_match(&value(set)),
            RelabelAction::Keep => return re.is_match(&value(set)),
            RelabelAction::DropEqual => return target_value(set) != value(set),
            RelabelAction::KeepEqual => return target_value(set) == value(set),
            RelabelAction::Replace => {
                let v = value(set);
                let Some(caps) = re.captures(&v) else { return true };
                let mut target = String::new();
                caps.expand(&c.target_label, &mut target);
                if !is_valid_label_name(&target) {
                    return true;
                }
                let mut out = String::new();
                caps.expand(&c.replacement, &mut out);
                if out.is_empty() {
                    set.remove(&target);
                } else {
                    set.insert(target, out);
                }
            }
            RelabelAction::Lowercase => {
                let v = value(set).to_lowercase();
                set.insert(c.target_label.clone(), v);
            }
            RelabelAction::Uppercase => {
                let v = value(set).to_uppercase();
                set.insert(c.target_label.clone(), v);
            }
            RelabelAction::LabelMap => {
                let mut added = Vec::new();
                for (name, v) in set.iter() {
                    if let Some(caps) = re.captures(name) {
                        let mut target = String::new();
                        caps.expand(&c.replacement, &mut target);
                        added.push((target, v.clone()));
                    }
                }
                set.extend(added);
            }
            RelabelAction::HashMod => {
                // Prometheus: the last 8 bytes of the md5 digest, big-endian, mod modulus.
                use md5::Digest;
                let digest = md5::Md5::digest(value(set).as_bytes());
                let mut tail = [0u8; 8];
                tail.copy_from_slice(&digest[8..16]);
                let hashed = u64::from_be_bytes(tail) % c.modulus;
                set.insert(c.target_label.clone(), hashed.to_string());
            }
            RelabelAction::LabelDrop => set.retain(|name, _| !re.is_match(name)),
            RelabelAction::LabelKeep => set.retain(|name, _| re.is_match(name)),
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(yaml: &str) -> Relabeler {
        let configs: Vec<RelabelConfig> = serde_yaml_ng::from_str(yaml).unwrap();
        Relabeler::new(&configs).unwrap()
    }

    fn lbls(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().map(|(n, v)| (*n, *v)))
    }

    /// Prometheus' own case (model/relabel/relabel_test.go): "baz" mod 1000 is 976.
    #[test]
    fn hashmod_matches_prometheus() {
        let r = steps("[{source_labels: [c], target_label: d, action: hashmod, modulus: 1000}]");
        let out = r.apply(&lbls(&[("a", "foo"), ("b", "bar"), ("c", "baz")])).unwrap();
        assert_eq!(out.get("d"), Some("976"));
        let configs: Vec<RelabelConfig> =
            serde_yaml_ng::from_str("[{source_labels: [c], target_label: d, action: hashmod}]").unwrap();
        assert!(Relabeler::new(&configs).unwrap_err().contains("modulus"));
    }

    #[test]
    fn keep_and_drop_match_the_joined_source_values_anchored() {
        let r = steps("[{source_labels: [__name__], regex: 'node_.*', action: keep}]");
        assert!(r.apply(&lbls(&[("__name__", "node_load1")])).is_some());
        // Anchored: a prefix match is not enough.
        assert!(r.apply(&lbls(&[("__name__", "xnode_load1")])).is_none());
        let r = steps("[{source_labels: [job, instance], separator: '@', regex: 'a@b:1', action: drop}]");
        assert!(r.apply(&lbls(&[("job", "a"), ("instance", "b:1")])).is_none());
        assert!(r.apply(&lbls(&[("job", "a"), ("instance", "b:2")])).is_some());
    }

    #[test]
    fn replace_expands_groups_and_deletes_on_empty_result() {
        let r = steps(
            "[{source_labels: [instance], regex: '([^:]+):(\\d+)', target_label: host, replacement: '${1}'},
              {source_labels: [instance], regex: '.*:(\\d+)', target_label: 'port_$1', replacement: yes},
              {source_labels: [missing], target_label: job}]",
        );
        let out = r.apply(&lbls(&[("__name__", "up"), ("instance", "web:9100"), ("job", "n")])).unwrap();
        assert_eq!(out.get("host"), Some("web"));
        assert_eq!(out.get("port_9100"), Some("yes"));
        // Default regex (.*) on an empty value: $1 is empty, so job goes.
        assert_eq!(out.get("job"), None);
    }

    #[test]
    fn labeldrop_labelkeep_labelmap_and_case() {
        let base = lbls(&[("__name__", "up"), ("tmp_a", "1"), ("tmp_b", "2"), ("job", "n")]);
        let out = steps("[{regex: 'tmp_.*', action: labeldrop}]").apply(&base).unwrap();
        assert_eq!(out, lbls(&[("__name__", "up"), ("job", "n")]));
        let out = steps("[{regex: '__name__|job', action: labelkeep}]").apply(&base).unwrap();
        assert_eq!(out, lbls(&[("__name__", "up"), ("job", "n")]));
        let out = steps("[{regex: 'tmp_(.)', replacement: 'x_$1', action: labelmap}]").apply(&base).unwrap();
        assert_eq!((out.get("x_a"), out.get("tmp_a")), (Some("1"), Some("1")));
        let out = steps("[{source_labels: [job], target_label: job_upper, action: uppercase}]").apply(&base).unwrap();
        assert_eq!(out.get("job_upper"), Some("N"));
        assert!(steps("[{regex: '.*', action: labeldrop}]").apply(&base).is_none(), "empty label set is dropped");
    }

    #[test]
    fn invalid_configs_are_rejected_with_their_index() {
        let bad = |yaml: &str| {
            let configs: Vec<RelabelConfig> = serde_yaml_ng::from_str(yaml).unwrap();
            Relabeler::new(&configs).unwrap_err()
        };
        assert!(bad("[{action: keep}, {regex: '(', action: keep}]").starts_with("[1]: "));
        assert!(bad("[{source_labels: [a]}]").contains("needs target_label"));
        assert!(bad("[{source_labels: [a], regex: x, action: labeldrop}]").contains("only regex"));
        assert!(bad("[{source_labels: ['1x'], action: keep}]").contains("not a valid label name"));
        assert!(serde_yaml_ng::from_str::<Vec<RelabelConfig>>("[{action: hashmodx}]").is_err());
    }
}
