//! `scrape_configs`: jobs, their target sources and how each target is
//! collected, with Prometheus' keys where the concept is the same.

use super::network::{self, Authorization, BasicAuth, Scheme, SecretSource, TlsConfig};
use super::{ByteSize, Config, GlobalConfig, PromDuration, RelabelConfig, is_valid_label_name, locate};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

/// One job: where its targets come from (static lists, files, the
/// Kubernetes API), how they are relabeled, and what collects from each:
/// a plugin, or, without `plugin:`, the host itself scraping the target's
/// Prometheus endpoint with Prometheus' scrape options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    pub job_name: String,
    /// A bundled plugin name (`node`) or a path to a `.wasm` component;
    /// absent for targets that serve `/metrics` themselves.
    #[serde(default)]
    pub plugin: Option<String>,
    pub scrape_interval: Option<PromDuration>,
    pub scrape_timeout: Option<PromDuration>,
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    #[serde(default)]
    pub file_sd_configs: Vec<FileSdConfig>,
    #[serde(default)]
    pub kubernetes_sd_configs: Vec<KubernetesSdConfig>,
    /// Applied to each discovered target before it is scraped.
    #[serde(default)]
    pub relabel_configs: Vec<RelabelConfig>,
    /// Put the ready-made `prometheus.io/scrape|port|path|scheme`
    /// annotation rules for the job's Kubernetes role in front of
    /// `relabel_configs` (pods and services/endpoints annotated
    /// `prometheus.io/scrape: "true"` are kept, the rest dropped).
    #[serde(default)]
    pub use_prometheus_io_annotations: bool,
    /// Applied to each scraped series before it is stored.
    #[serde(default)]
    pub metric_relabel_configs: Vec<RelabelConfig>,
    /// URL parameters: added to the scrape URL, or passed to the plugin
    /// with each target. A value may be one string or a list.
    #[serde(default)]
    pub params: BTreeMap<String, ParamValues>,
    /// Path of the target's metrics endpoint (native scraping).
    #[serde(default = "default_metrics_path")]
    pub metrics_path: String,
    /// Keep the scraped `job`/`instance`/... labels on conflict instead of
    /// renaming them `exported_*`.
    #[serde(default)]
    pub honor_labels: bool,
    /// Use the timestamps the target exposes (native scraping).
    #[serde(default = "default_true")]
    pub honor_timestamps: bool,
    /// Series one scrape may return (0 = no limit); over it the scrape fails.
    #[serde(default)]
    pub sample_limit: usize,
    /// Labels one series may have (0 = no limit); over it the scrape fails.
    #[serde(default)]
    pub label_limit: usize,
    #[serde(default)]
    pub label_name_length_limit: usize,
    #[serde(default)]
    pub label_value_length_limit: usize,
    /// Largest uncompressed body a native scrape reads (0 = no limit).
    #[serde(default)]
    pub body_size_limit: ByteSize,
    /// The plugin's own section, passed to it as JSON.
    #[serde(default)]
    pub config: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub capabilities: CapabilitiesConfig,
    /// `http` or `https` for the scrape (or the plugin's requests).
    #[serde(default)]
    pub scheme: Scheme,
    /// TLS settings of HTTPS scrapes and plugin requests; keys stay in the host.
    pub tls_config: Option<TlsConfig>,
    /// Credentials the host adds to scrapes and the plugin's HTTP requests.
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    /// Credentials a plugin must hold itself (`wasmon:plugin/secrets`), by name.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretSource>,
    /// For kube-state plugins: the API server whose objects the host
    /// watches and feeds to the plugin, and the leader lease that keeps
    /// cluster-scoped kinds in one agent.
    pub kubernetes: Option<KubernetesApiConfig>,
}

/// The Kubernetes API a kube-state job watches.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesApiConfig {
    /// Without it (and without `kubeconfig_file`): the in-cluster service account.
    pub api_server: Option<String>,
    pub kubeconfig_file: Option<PathBuf>,
    pub tls_config: Option<TlsConfig>,
    pub authorization: Option<Authorization>,
    pub bearer_token_file: Option<PathBuf>,
    /// Watch only these namespaces (namespaced kinds); empty = all.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Hold a `coordination.k8s.io` Lease and collect only while holding
    /// it, so that of several replicas exactly one reports.
    pub leader_election: Option<LeaderElectionConfig>,
}

/// client-go's leader election settings, with its defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaderElectionConfig {
    pub lease_name: String,
    /// Default: the agent's own namespace (`POD_NAMESPACE`), else `default`.
    pub lease_namespace: Option<String>,
    /// Default: `$POD_NAME`, else the host name.
    pub identity: Option<String>,
    #[serde(default = "default_lease_duration")]
    pub lease_duration: PromDuration,
    #[serde(default = "default_renew_deadline")]
    pub renew_deadline: PromDuration,
    #[serde(default = "default_retry_period")]
    pub retry_period: PromDuration,
}

fn default_lease_duration() -> PromDuration {
    PromDuration(Duration::from_secs(15))
}

fn default_renew_deadline() -> PromDuration {
    PromDuration(Duration::from_secs(10))
}

fn default_retry_period() -> PromDuration {
    PromDuration(Duration::from_secs(2))
}

fn default_metrics_path() -> String {
    "/metrics".into()
}

fn default_true() -> bool {
    true
}

/// One `params` value: `module: if_mib` or `module: [if_mib, other]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamValues(pub Vec<String>);

impl<'de> Deserialize<'de> for ParamValues {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        Ok(match Raw::deserialize(d)? {
            Raw::One(v) => ParamValues(vec![v]),
            Raw::Many(v) => ParamValues(v),
        })
    }
}

/// Prometheus' `file_sd_configs` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSdConfig {
    /// JSON or YAML files; the last path element may be a glob.
    pub files: Vec<String>,
    #[serde(default = "default_file_refresh")]
    pub refresh_interval: PromDuration,
}

fn default_file_refresh() -> PromDuration {
    PromDuration(Duration::from_secs(300))
}

/// Prometheus' `kubernetes_sd_configs` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesSdConfig {
    /// `node`, `pod`, `service`, `endpoints` or `endpointslice`.
    pub role: String,
    /// The API server; without it (and without `kubeconfig_file`) the
    /// agent uses its in-cluster service account.
    pub api_server: Option<String>,
    pub kubeconfig_file: Option<PathBuf>,
    #[serde(default)]
    pub namespaces: KubernetesNamespaces,
    #[serde(default)]
    pub selectors: Vec<KubernetesSelector>,
    #[serde(default)]
    pub attach_metadata: KubernetesAttachMetadata,
    pub tls_config: Option<TlsConfig>,
    pub authorization: Option<Authorization>,
    /// Prometheus' older spelling of `authorization.credentials_file`.
    pub bearer_token_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesNamespaces {
    /// Watch the namespace the agent runs in.
    pub own_namespace: bool,
    /// Watch only these; empty (and no `own_namespace`) = all namespaces.
    pub names: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesSelector {
    pub role: String,
    pub label: Option<String>,
    /// E.g. `spec.nodeName=$NODE_NAME`: environment variables are expanded,
    /// so a DaemonSet agent watches only its own node's pods.
    pub field: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesAttachMetadata {
    /// Add the node's labels (`__meta_kubernetes_node_*`) to pod and
    /// endpoint targets.
    pub node: bool,
}

/// The Kubernetes roles Prometheus knows.
pub const KUBERNETES_ROLES: [&str; 5] = ["node", "pod", "service", "endpoints", "endpointslice"];

impl KubernetesSdConfig {
    /// What is wrong with this entry, in Prometheus' terms.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !KUBERNETES_ROLES.contains(&self.role.as_str()) {
            out.push(format!("role {:?} is not one of {}", self.role, KUBERNETES_ROLES.join(", ")));
        }
        if self.api_server.is_some() && self.kubeconfig_file.is_some() {
            out.push("set api_server or kubeconfig_file, not both".into());
        }
        if let Some(url) = &self.api_server
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            out.push(format!("api_server {url:?} must be an http:// or https:// URL"));
        }
        if self.bearer_token_file.is_some() && self.authorization.is_some() {
            out.push("set authorization or bearer_token_file, not both".into());
        }
        for selector in &self.selectors {
            if !KUBERNETES_ROLES.contains(&selector.role.as_str()) {
                out.push(format!("selectors: role {:?} is not a Kubernetes role", selector.role));
            }
        }
        if self.attach_metadata.node && !matches!(self.role.as_str(), "pod" | "endpoints" | "endpointslice") {
            out.push("attach_metadata.node works only with the pod, endpoints and endpointslice roles".into());
        }
        out
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    pub targets: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Per-call limits of a plugin instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Linear memory cap of one instance.
    pub memory: ByteSize,
    /// CPU time one call may use; defaults to the scrape timeout.
    pub cpu: Option<PromDuration>,
    /// Series one scrape may return (0 = no limit), like Prometheus' `sample_limit`.
    pub sample_limit: usize,
    /// Log lines (plus stdout/stderr lines) kept per call.
    pub log_lines: usize,
    /// Bytes of stdout/stderr kept per call.
    pub stdio_bytes: ByteSize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self { memory: ByteSize(64 << 20), cpu: None, sample_limit: 0, log_lines: 100, stdio_bytes: ByteSize(64 << 10) }
    }
}

/// What a plugin may touch. Everything is denied unless granted here.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct CapabilitiesConfig {
    /// Globs of readable files, or `default` for exactly what the plugin asks
    /// for in `describe()` (see `wasmon plugin inspect`).
    pub files: FileGrant,
    /// `statvfs` of mount points (filesystem sizes).
    pub fs_stats: bool,
    /// `adjtimex` in read-only mode (kernel clock state).
    pub clock: bool,
    /// Data directories mounted read-only into the plugin's WASI filesystem.
    pub preopens: Vec<Preopen>,
    /// TCP connections to the scrape target's address (and nowhere else).
    pub tcp: bool,
    /// HTTP(S) requests to the scrape target's authority (and nowhere else).
    pub http: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub enum FileGrant {
    #[default]
    None,
    /// What the plugin requests.
    PluginDefault,
    Globs(Vec<String>),
}

impl<'de> Deserialize<'de> for FileGrant {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            List(Vec<String>),
        }
        match Raw::deserialize(d)? {
            Raw::Word(w) if w == "default" => Ok(FileGrant::PluginDefault),
            Raw::Word(w) if w == "none" => Ok(FileGrant::None),
            Raw::Word(w) => Err(serde::de::Error::custom(format!(
                "files: expected `default`, `none` or a list of globs, got {w:?}"
            ))),
            Raw::List(globs) => Ok(FileGrant::Globs(globs)),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preopen {
    /// Directory on the host.
    pub host: PathBuf,
    /// Where the plugin sees it, e.g. `/textfile`.
    pub guest: String,
}

impl ScrapeConfig {
    pub fn interval(&self, global: &GlobalConfig) -> Duration {
        self.scrape_interval.unwrap_or(global.scrape_interval).0
    }
    /// `scrape_timeout`, or the global one capped at the job's interval
    /// (as Prometheus does, so `scrape_interval: 1s` alone is valid).
    pub fn timeout(&self, global: &GlobalConfig) -> Duration {
        match self.scrape_timeout {
            Some(t) => t.0,
            None => global.scrape_timeout.0.min(self.interval(global)),
        }
    }
    /// Series limit of one scrape: `sample_limit`, or the older
    /// `limits.sample_limit` (0 = no limit).
    pub fn series_limit(&self) -> usize {
        if self.sample_limit > 0 { self.sample_limit } else { self.limits.sample_limit }
    }
    /// `params` as flat pairs, in order.
    pub fn param_pairs(&self) -> Vec<(String, String)> {
        self.params.iter().flat_map(|(k, vs)| vs.0.iter().map(move |v| (k.clone(), v.clone()))).collect()
    }
    /// The plugin's config section as JSON text (`{}` when absent).
    pub fn plugin_config_json(&self) -> Result<String, String> {
        match &self.config {
            None => Ok("{}".into()),
            Some(v) => serde_json::to_string(v).map_err(|e| format!("config section cannot be expressed as JSON: {e}")),
        }
    }
}

/// Problems of the `scrape_configs` section, each with its line.
pub(super) fn validate_jobs(config: &Config, text: &str, report: &mut dyn FnMut(Option<usize>, String)) {
    let mut names = HashSet::new();
    for (index, job) in config.scrape_configs.iter().enumerate() {
        let line = locate(text, &format!("job_name: {}", job.job_name))
            .or_else(|| locate(text, &format!("job_name: \"{}\"", job.job_name)));
        let at = format!("scrape_configs[{index}] (job {:?})", job.job_name);
        if job.job_name.is_empty() {
            report(line, format!("{at}: job_name is empty"));
        }
        if !names.insert(job.job_name.clone()) {
            report(line, format!("{at}: job_name is used by an earlier job; job names must be unique"));
        }
        if job.plugin.as_ref().is_some_and(|p| p.trim().is_empty()) {
            report(line, format!("{at}: plugin is empty; name a bundled plugin (node) or a .wasm file"));
        }
        if !job.metrics_path.starts_with('/') {
            report(line, format!("{at}: metrics_path {:?} must start with /", job.metrics_path));
        }
        if job.sample_limit > 0 && job.limits.sample_limit > 0 {
            report(line, format!("{at}: set sample_limit or limits.sample_limit, not both"));
        }
        if job.plugin.is_none() {
            let plugin_only = [
                (job.config.is_some(), "config"),
                (
                    job.capabilities.tcp || job.capabilities.http || job.capabilities.files != FileGrant::None,
                    "capabilities",
                ),
                (!job.secrets.is_empty(), "secrets"),
            ];
            for (set, key) in plugin_only {
                if set {
                    report(
                        line,
                        format!("{at}: {key} is for plugins; this job has no plugin: and scrapes /metrics itself"),
                    );
                }
            }
        }
        for (key, steps) in
            [("relabel_configs", &job.relabel_configs), ("metric_relabel_configs", &job.metric_relabel_configs)]
        {
            if let Err(e) = crate::relabel::Relabeler::new(steps) {
                report(line, format!("{at}: {key}{e}"));
            }
        }
        for (i, sd) in job.file_sd_configs.iter().enumerate() {
            if let Err(e) = wasmon_discovery::file::check_patterns(&sd.files) {
                report(line, format!("{at}: file_sd_configs[{i}]: {e}"));
            }
        }
        for (i, sd) in job.kubernetes_sd_configs.iter().enumerate() {
            for problem in sd.problems() {
                report(line, format!("{at}: kubernetes_sd_configs[{i}]: {problem}"));
            }
        }
        if job.kubernetes.is_some() && job.plugin.is_none() {
            report(line, format!("{at}: kubernetes: is for kube-state plugin jobs; name the plugin"));
        }
        if let Some(le) = job.kubernetes.as_ref().and_then(|k| k.leader_election.as_ref())
            && !(le.retry_period < le.renew_deadline && le.renew_deadline < le.lease_duration)
        {
            report(
                line,
                format!("{at}: kubernetes.leader_election needs retry_period < renew_deadline < lease_duration"),
            );
        }
        if job.use_prometheus_io_annotations && job.kubernetes_sd_configs.is_empty() {
            report(line, format!("{at}: use_prometheus_io_annotations needs kubernetes_sd_configs"));
        }
        let interval = job.interval(&config.global);
        let timeout = job.timeout(&config.global);
        if interval.is_zero() {
            report(line, format!("{at}: scrape_interval must be greater than 0"));
        }
        if timeout.is_zero() {
            report(line, format!("{at}: scrape_timeout must be greater than 0"));
        }
        if timeout > interval {
            report(
                line,
                format!(
                    "{at}: scrape_timeout {} is longer than scrape_interval {}",
                    PromDuration(timeout),
                    PromDuration(interval)
                ),
            );
        }
        let discovers = !job.file_sd_configs.is_empty() || !job.kubernetes_sd_configs.is_empty();
        // A kube-state job (with `kubernetes:`) collects from the API's object feed, not from targets.
        if job.kubernetes.is_none() && !discovers && job.static_configs.iter().all(|s| s.targets.is_empty()) {
            report(line, format!("{at}: no targets; add static_configs: [{{targets: [...]}}] or a discovery section"));
        }
        let mut seen_targets = HashSet::new();
        for sc in &job.static_configs {
            for target in &sc.targets {
                if target.trim().is_empty() {
                    report(line, format!("{at}: empty target address"));
                } else if !seen_targets.insert(target) {
                    report(line, format!("{at}: target {target:?} is listed twice"));
                }
            }
            for label in sc.labels.keys() {
                if !is_valid_label_name(label) || label.starts_with("__") {
                    report(line, format!("{at}: invalid target label name {label:?}"));
                }
            }
        }
        let memory = job.limits.memory.0;
        if !((1 << 20)..=(4 << 30)).contains(&memory) {
            report(line, format!("{at}: limits.memory must be between 1MiB and 4GiB, got {memory} bytes"));
        }
        if let FileGrant::Globs(globs) = &job.capabilities.files {
            for glob in globs {
                if !glob.starts_with('/') {
                    report(line, format!("{at}: capabilities.files: {glob:?} must be an absolute path or glob"));
                } else if let Err(e) = globset::Glob::new(glob) {
                    report(line, format!("{at}: capabilities.files: invalid glob {glob:?}: {e}"));
                }
            }
        }
        for preopen in &job.capabilities.preopens {
            if !preopen.host.is_dir() {
                report(line, format!("{at}: capabilities.preopens: {} is not a directory", preopen.host.display()));
            }
            if !preopen.guest.starts_with('/') {
                report(line, format!("{at}: capabilities.preopens: guest path {:?} must be absolute", preopen.guest));
            }
        }
        if let Err(e) = job.plugin_config_json() {
            report(line, format!("{at}: {e}"));
        }
        for problem in network::validate(
            &at,
            job.scheme,
            job.tls_config.as_ref(),
            job.basic_auth.as_ref(),
            job.authorization.as_ref(),
            &job.secrets,
            // Native scrapes send the requests themselves.
            job.capabilities.http || job.plugin.is_none(),
        ) {
            report(line, problem);
        }
    }
}
