//! From discovered target groups to the targets a job scrapes: Prometheus'
//! `PopulateLabels` (job defaults as `__`-labels, `relabel_configs`, the
//! address check, `instance` defaulting, dropping `__meta_*`), keeping for
//! every dropped target the step that dropped it, which is what the targets
//! view shows when someone asks why their targets are 0/0.

use crate::config::{PromDuration, RelabelAction, RelabelConfig, Scheme};
use crate::relabel::Relabeler;
use crate::scheduler::TargetSpec;
use std::collections::BTreeMap;
use std::time::Duration;
use wasmon_discovery::{ADDRESS_LABEL, LabelSet, TargetGroup};

/// What a job adds to every target before relabeling, as `__` labels that
/// relabeling may change (Prometheus' `__scheme__`, `__metrics_path__`, ...).
#[derive(Debug, Clone)]
pub struct JobDefaults {
    pub job: String,
    pub scheme: Scheme,
    pub metrics_path: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub params: Vec<(String, String)>,
    /// Add the scheme's port to an address without one (native scrapes,
    /// like Prometheus 2.x); a plugin's target address is its own business.
    pub add_default_port: bool,
}

/// Why a discovered target is not scraped.
#[derive(Debug, Clone, PartialEq)]
pub enum DropReason {
    /// `relabel_configs[step]` (an action such as `keep` or `drop`) dropped it.
    Relabeled { step: usize, rule: String },
    /// The ready-made `prometheus.io` annotation rules dropped it.
    Annotations { rule: String },
    /// After relabeling the target had no (valid) `__address__`.
    Address(String),
    /// `__scrape_interval__` / `__scrape_timeout__` did not parse or did not fit.
    Settings(String),
}

impl std::fmt::Display for DropReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DropReason::Relabeled { step, rule } => write!(f, "relabel_configs[{step}] ({rule})"),
            DropReason::Annotations { rule } => write!(f, "use_prometheus_io_annotations ({rule})"),
            DropReason::Address(why) | DropReason::Settings(why) => f.write_str(why),
        }
    }
}

/// A discovered target that is not scraped, and why.
#[derive(Debug, Clone)]
pub struct DroppedTarget {
    pub discovered: LabelSet,
    pub reason: DropReason,
}

/// A compact description of a relabel step for messages: its action and
/// what it looks at.
fn describe_step(c: &RelabelConfig) -> String {
    let action = format!("{:?}", c.action).to_lowercase();
    match c.action {
        RelabelAction::Keep | RelabelAction::Drop => {
            format!("action {action} on [{}] regex {:?}", c.source_labels.join(", "), c.regex)
        }
        _ => format!("action {action} on [{}] target {:?}", c.source_labels.join(", "), c.target_label),
    }
}

/// A job's target relabeling: the annotation preset (if any) then the
/// job's own `relabel_configs`, each compiled once.
#[derive(Debug, Clone, Default)]
pub struct TargetRelabeling {
    preset: Relabeler,
    configured: Relabeler,
}

impl TargetRelabeling {
    pub fn new(configured: &[RelabelConfig], preset: &[RelabelConfig]) -> Result<Self, String> {
        Ok(Self { preset: Relabeler::new(preset)?, configured: Relabeler::new(configured)? })
    }
}

/// Turn one discovered label set into a target, or say why not.
pub fn populate(
    discovered: &LabelSet,
    defaults: &JobDefaults,
    relabeling: &TargetRelabeling,
) -> Result<TargetSpec, DroppedTarget> {
    let mut set = discovered.clone();
    let mut put_default = |name: &str, value: String| {
        set.entry(name.to_string()).or_insert(value);
    };
    put_default("job", defaults.job.clone());
    put_default("__scheme__", scheme_name(defaults.scheme).into());
    put_default("__metrics_path__", defaults.metrics_path.clone());
    put_default("__scrape_interval__", PromDuration(defaults.interval).to_string());
    put_default("__scrape_timeout__", PromDuration(defaults.timeout).to_string());
    for (name, value) in &defaults.params {
        // Only the first value of a repeated parameter becomes a label.
        put_default(&format!("__param_{name}"), value.clone());
    }
    let discovered_full = set.clone();
    let dropped = |reason| DroppedTarget { discovered: discovered_full.clone(), reason };

    if let Err(step) = relabeling.preset.apply_map(&mut set) {
        let rule = relabeling.preset.step_config(step).map(describe_step).unwrap_or_default();
        return Err(dropped(DropReason::Annotations { rule }));
    }
    if let Err(step) = relabeling.configured.apply_map(&mut set) {
        let rule = relabeling.configured.step_config(step).map(describe_step).unwrap_or_default();
        return Err(dropped(DropReason::Relabeled { step, rule }));
    }

    let scheme = match set.get("__scheme__").map(String::as_str) {
        Some("https") => Scheme::Https,
        Some("http") | None => Scheme::Http,
        Some(other) => return Err(dropped(DropReason::Settings(format!("invalid __scheme__ {other:?}")))),
    };
    let Some(address) = set.get(ADDRESS_LABEL).filter(|a| !a.is_empty()).cloned() else {
        return Err(dropped(DropReason::Address("no __address__ after relabeling".into())));
    };
    let address = if defaults.add_default_port {
        check_address(&address, scheme).map_err(|e| dropped(DropReason::Address(e)))?
    } else {
        address
    };
    let duration = |name: &str, fallback: Duration| -> Result<Duration, DroppedTarget> {
        match set.get(name) {
            None => Ok(fallback),
            Some(text) => PromDuration::parse(text)
                .map(|d| d.0)
                .map_err(|e| dropped(DropReason::Settings(format!("invalid {name} {text:?}: {e}")))),
        }
    };
    let interval = duration("__scrape_interval__", defaults.interval)?;
    let timeout = duration("__scrape_timeout__", defaults.timeout)?;
    if interval.is_zero() || timeout.is_zero() || timeout > interval {
        return Err(dropped(DropReason::Settings(format!(
            "scrape timeout {} must be positive and no longer than the interval {}",
            PromDuration(timeout),
            PromDuration(interval)
        ))));
    }
    let metrics_path = set.get("__metrics_path__").cloned().unwrap_or_else(|| defaults.metrics_path.clone());
    // Relabeling may set `__param_x`; it replaces the first value of `x`
    // and keeps any further ones (Prometheus' `URL()`).
    let mut params: Vec<(String, String)> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (name, value) in &defaults.params {
        if seen.insert(name.clone()) {
            let v = set.get(&format!("__param_{name}")).cloned().unwrap_or_else(|| value.clone());
            params.push((name.clone(), v));
        } else {
            params.push((name.clone(), value.clone()));
        }
    }
    for (label, value) in &set {
        if let Some(name) = label.strip_prefix("__param_")
            && !seen.contains(name)
        {
            params.push((name.to_string(), value.clone()));
        }
    }

    let mut labels: BTreeMap<String, String> =
        set.iter().filter(|(k, _)| !k.starts_with("__")).map(|(k, v)| (k.clone(), v.clone())).collect();
    if labels.get("instance").is_none_or(|v| v.is_empty()) {
        labels.insert("instance".into(), address.clone());
    }
    Ok(TargetSpec { address, labels, discovered: discovered_full, scheme, metrics_path, params, interval, timeout })
}

fn scheme_name(scheme: Scheme) -> &'static str {
    match scheme {
        Scheme::Http => "http",
        Scheme::Https => "https",
    }
}

/// Prometheus 2.x checks the address and adds the scheme's default port
/// when there is none.
fn check_address(address: &str, scheme: Scheme) -> Result<String, String> {
    if address.contains('/') || address.contains(char::is_whitespace) {
        return Err(format!("__address__ {address:?} is not a host:port"));
    }
    let has_port = if address.starts_with('[') { address.contains("]:") } else { address.matches(':').count() == 1 };
    let with_port = if has_port {
        address.to_string()
    } else if address.contains(':') && !address.starts_with('[') {
        // A bare IPv6 address.
        format!("[{address}]:{}", scheme.default_port())
    } else {
        format!("{address}:{}", scheme.default_port())
    };
    match with_port.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(with_port),
        _ => Err(format!("__address__ {address:?} is not a host:port")),
    }
}

/// The ready-made rules for the `prometheus.io/*` annotation convention,
/// for a Kubernetes role: keep only annotated objects, then take scheme,
/// path and port from the annotations (as the example config that ships
/// with Prometheus does), and give targets `namespace` and `pod`/`service`
/// labels.
pub fn annotation_preset(role: &str) -> Vec<RelabelConfig> {
    let object = match role {
        "pod" => "pod",
        "service" | "endpoints" | "endpointslice" => "service",
        _ => return Vec::new(),
    };
    let annotation = |name: &str| format!("__meta_kubernetes_{object}_annotation_prometheus_io_{name}");
    let step = |yaml: String| -> RelabelConfig {
        serde_yaml_ng::from_str(&yaml).unwrap_or_else(|e| unreachable!("built-in relabel rule {yaml}: {e}"))
    };
    let mut rules = vec![
        step(format!("{{source_labels: [{}], regex: 'true', action: keep}}", annotation("scrape"))),
        step(format!(
            "{{source_labels: [{}], regex: '(https?)', target_label: __scheme__, action: replace}}",
            annotation("scheme")
        )),
        step(format!(
            "{{source_labels: [{}], regex: '(.+)', target_label: __metrics_path__, action: replace}}",
            annotation("path")
        )),
        step(format!(
            "{{source_labels: [__address__, {}], regex: '(.+?)(?::\\d+)?;(\\d+)', replacement: '$1:$2', target_label: __address__, action: replace}}",
            annotation("port")
        )),
        step("{source_labels: [__meta_kubernetes_namespace], target_label: namespace, action: replace}".into()),
    ];
    if object == "pod" {
        rules.push(step("{source_labels: [__meta_kubernetes_pod_name], target_label: pod, action: replace}".into()));
    } else {
        rules.push(step(
            "{source_labels: [__meta_kubernetes_service_name], target_label: service, action: replace}".into(),
        ));
        if role != "service" {
            rules
                .push(step("{source_labels: [__meta_kubernetes_pod_name], target_label: pod, action: replace}".into()));
        }
    }
    rules
}

/// The current targets of one job, rebuilt as target groups arrive.
#[derive(Debug, Default)]
pub struct JobTargets {
    /// Each group's relabeled targets, by (provider index, source): a
    /// change to one pod relabels that pod's group only.
    groups: BTreeMap<(usize, String), Vec<Result<TargetSpec, DroppedTarget>>>,
    pub active: BTreeMap<TargetId, TargetSpec>,
    pub dropped: Vec<DroppedTarget>,
}

/// Identity of a target within its job: its final labels and scrape URL.
pub type TargetId = u64;

impl JobTargets {
    /// Replace the groups `provider` sent (one source each; an empty group
    /// removes its source) and recompute the job's targets.
    pub fn update(
        &mut self,
        provider: usize,
        groups: Vec<TargetGroup>,
        defaults: &JobDefaults,
        relabeling: &TargetRelabeling,
    ) {
        for group in groups {
            let key = (provider, group.source.clone());
            if group.targets.is_empty() {
                self.groups.remove(&key);
            } else {
                let populated = group.merged_targets().map(|d| populate(&d, defaults, relabeling)).collect();
                self.groups.insert(key, populated);
            }
        }
        let mut active = BTreeMap::new();
        let mut dropped = Vec::new();
        for result in self.groups.values().flatten() {
            match result {
                // Two discovered targets ending identical are one target.
                Ok(spec) => {
                    active.insert(spec.id(), spec.clone());
                }
                Err(d) => dropped.push(d.clone()),
            }
        }
        self.active = active;
        self.dropped = dropped;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> JobDefaults {
        JobDefaults {
            job: "web".into(),
            scheme: Scheme::Http,
            metrics_path: "/metrics".into(),
            interval: Duration::from_secs(15),
            timeout: Duration::from_secs(10),
            params: vec![("module".into(), "a".into()), ("module".into(), "b".into())],
            add_default_port: true,
        }
    }

    fn rules(yaml: &str) -> TargetRelabeling {
        TargetRelabeling::new(&serde_yaml_ng::from_str::<Vec<RelabelConfig>>(yaml).unwrap(), &[]).unwrap()
    }

    fn set(pairs: &[(&str, &str)]) -> LabelSet {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_become_target_settings_and_meta_labels_go() {
        let spec = populate(
            &set(&[("__address__", "10.0.0.1:8080"), ("__meta_x", "y"), ("team", "db")]),
            &defaults(),
            &TargetRelabeling::default(),
        )
        .unwrap();
        assert_eq!(spec.labels, set(&[("instance", "10.0.0.1:8080"), ("job", "web"), ("team", "db")]));
        assert_eq!(spec.discovered["__metrics_path__"], "/metrics");
        assert_eq!(spec.discovered["__param_module"], "a");
        assert_eq!(spec.discovered["__meta_x"], "y");
        assert_eq!(spec.params, vec![("module".into(), "a".into()), ("module".into(), "b".into())]);
        assert_eq!(spec.url(), "http://10.0.0.1:8080/metrics?module=a&module=b");
    }

    #[test]
    fn relabeling_sets_scheme_path_params_and_interval() {
        let r = rules(
            "[{target_label: __scheme__, replacement: https},
              {target_label: __metrics_path__, replacement: /probe},
              {target_label: __param_module, replacement: c},
              {target_label: __param_target, replacement: 'x y'},
              {target_label: __scrape_interval__, replacement: 1m},
              {target_label: __scrape_timeout__, replacement: 30s},
              {source_labels: [__address__], target_label: instance}]",
        );
        let spec = populate(&set(&[("__address__", "h")]), &defaults(), &r).unwrap();
        assert_eq!(spec.address, "h:443", "default port of the scheme");
        assert_eq!(spec.labels["instance"], "h");
        assert_eq!(spec.url(), "https://h:443/probe?module=c&module=b&target=x+y");
        assert_eq!((spec.interval, spec.timeout), (Duration::from_secs(60), Duration::from_secs(30)));
    }

    #[test]
    fn every_drop_says_which_step() {
        let r = rules(
            "[{source_labels: [team], regex: db, action: keep},
              {source_labels: [env], regex: test, action: drop}]",
        );
        let drop = |labels: &[(&str, &str)]| populate(&set(labels), &defaults(), &r).unwrap_err();
        let d = drop(&[("__address__", "a:1"), ("team", "web")]);
        assert_eq!(d.reason.to_string(), "relabel_configs[0] (action keep on [team] regex \"db\")");
        assert_eq!(d.discovered["team"], "web");
        let d = drop(&[("__address__", "a:1"), ("team", "db"), ("env", "test")]);
        assert!(matches!(d.reason, DropReason::Relabeled { step: 1, .. }), "{:?}", d.reason);
        let d = drop(&[("team", "db")]);
        assert_eq!(d.reason.to_string(), "no __address__ after relabeling");
        let d = drop(&[("__address__", "http://a:1/x"), ("team", "db")]);
        assert!(d.reason.to_string().contains("is not a host:port"));
        let r = rules("[{target_label: __scrape_timeout__, replacement: 1m}]");
        let d = populate(&set(&[("__address__", "a:1")]), &defaults(), &r).unwrap_err();
        assert!(d.reason.to_string().contains("no longer than the interval"), "{}", d.reason);
    }

    #[test]
    fn addresses_get_the_default_port_like_prometheus_2() {
        assert_eq!(check_address("a", Scheme::Http).unwrap(), "a:80");
        assert_eq!(check_address("a:9100", Scheme::Https).unwrap(), "a:9100");
        assert_eq!(check_address("[::1]:9", Scheme::Http).unwrap(), "[::1]:9");
        assert_eq!(check_address("::1", Scheme::Https).unwrap(), "[::1]:443");
        assert!(check_address("a:b", Scheme::Http).is_err());
        assert!(check_address(":80", Scheme::Http).is_err());
    }

    #[test]
    fn annotation_preset_follows_the_prometheus_io_convention() {
        let r = TargetRelabeling::new(&[], &annotation_preset("pod")).unwrap();
        let pod = |scrape: &str| {
            set(&[
                ("__address__", "10.1.2.3:8080"),
                ("__meta_kubernetes_namespace", "shop"),
                ("__meta_kubernetes_pod_name", "cart-1"),
                ("__meta_kubernetes_pod_annotation_prometheus_io_scrape", scrape),
                ("__meta_kubernetes_pod_annotation_prometheus_io_port", "9102"),
                ("__meta_kubernetes_pod_annotation_prometheus_io_path", "/stats"),
            ])
        };
        let spec = populate(&pod("true"), &defaults(), &r).unwrap();
        assert_eq!(spec.url(), "http://10.1.2.3:9102/stats?module=a&module=b");
        assert_eq!((spec.labels["namespace"].as_str(), spec.labels["pod"].as_str()), ("shop", "cart-1"));
        let d = populate(&pod("false"), &defaults(), &r).unwrap_err();
        assert!(d.reason.to_string().starts_with("use_prometheus_io_annotations (action keep"), "{}", d.reason);
        assert!(annotation_preset("node").is_empty());
        assert_eq!(annotation_preset("endpoints").len(), 7);
    }

    #[test]
    fn groups_are_replaced_by_source_and_removed_when_empty() {
        let mut job = JobTargets::default();
        let group = |source: &str, addrs: &[&str]| TargetGroup {
            source: source.into(),
            targets: addrs.iter().map(|a| set(&[("__address__", a)])).collect(),
            labels: set(&[("g", source)]),
        };
        let r = rules("[{source_labels: [__address__], regex: 'skip:.*', action: drop}]");
        job.update(0, vec![group("a", &["x:1", "y:1"]), group("b", &["skip:1"])], &defaults(), &r);
        assert_eq!((job.active.len(), job.dropped.len()), (2, 1));
        job.update(0, vec![group("a", &["x:2"])], &defaults(), &r);
        let addrs: Vec<&str> = job.active.values().map(|t| t.address.as_str()).collect();
        assert_eq!(addrs, vec!["x:2"]);
        job.update(0, vec![group("b", &[])], &defaults(), &r);
        assert!(job.dropped.is_empty());
        // Another provider's group with the same source name is separate.
        job.update(1, vec![group("a", &["z:1"])], &defaults(), &r);
        assert_eq!(job.active.len(), 2);
    }
}
