//! The agent's YAML config: structure, defaults, loading and validation.
//!
//! Keys follow Prometheus where the concept is the same (`global`,
//! `scrape_configs`, `job_name`, `static_configs`, `scrape_interval`); the
//! wasm-specific parts (`plugin`, `config`, `capabilities`, `limits`) sit
//! beside them in each job.

mod alerting;
mod duration;
mod logs;
mod network;
mod scrape;

pub use alerting::{AlertingConfig, AlertmanagerConfig, AlertmanagerTargets};
pub use duration::{ByteSize, PromDuration};
pub use logs::{LogProcessorConfig, LogProcessorLimitsConfig, LogsConfig, LogsKubernetesConfig, NativeProcessor};
pub use network::{Authorization, BasicAuth, CredentialError, Scheme, SecretSource, TlsConfig, read_credential_file};
pub use scrape::{
    CapabilitiesConfig, FileGrant, FileSdConfig, KubernetesApiConfig, KubernetesSdConfig, LeaderElectionConfig,
    LimitsConfig, ParamValues, Preopen, ScrapeConfig, StaticConfig,
};
pub use wasmon_storage::{is_valid_label_name, is_valid_metric_name};

use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The config `wasmon run` uses when no file is given: monitor this machine
/// with the bundled node plugin.
pub const EMBEDDED_DEFAULT: &str = include_str!("embedded_default.yaml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub global: GlobalConfig,
    #[serde(default)]
    pub paths: PathsConfig,
    #[serde(default)]
    pub web: WebConfig,
    #[serde(default)]
    pub plugins: PluginsConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub scrape_configs: Vec<ScrapeConfig>,
    /// Endpoints the store's samples are sent to (Prometheus' `remote_write`).
    #[serde(default)]
    pub remote_write: Vec<RemoteWriteConfig>,
    /// Prometheus rule files (globs allowed), evaluated by the agent.
    #[serde(default)]
    pub rule_files: Vec<String>,
    /// Turn on the alert rules a plugin ships (`plugins/<name>/rules.yaml`
    /// for bundled plugins, `<name>.rules.yaml` beside a drop-in `.wasm`).
    #[serde(default)]
    pub plugin_rules: Vec<String>,
    #[serde(default)]
    pub alerting: AlertingConfig,
    /// The built-in notifier, in Alertmanager's own config format (`route`,
    /// `receivers`, `inhibit_rules`), for setups without an Alertmanager.
    #[serde(default)]
    pub notifier: Option<serde_yaml_ng::Value>,
    /// Node-level log collection (see `host/logs`); off when absent.
    #[serde(default)]
    pub logs: Option<LogsConfig>,
}

/// `storage.tsdb`: the embedded store. Keys mirror Prometheus' flags
/// (`--storage.tsdb.path`, `--storage.tsdb.retention.time`, `.size`).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub tsdb: TsdbConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TsdbConfig {
    /// Keep scraped samples locally and serve the query API.
    pub enabled: bool,
    /// Data directory (WAL and blocks), relative to the working directory.
    pub path: PathBuf,
    pub retention: RetentionConfig,
    /// How often the WAL is fsynced: a crash (power loss, `kill -9`) loses at
    /// most the samples of this last interval. `0s` syncs on every commit.
    pub wal_fsync_interval: PromDuration,
}

impl Default for TsdbConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            path: "data".into(),
            retention: RetentionConfig::default(),
            wal_fsync_interval: PromDuration(Duration::from_secs(1)),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Blocks older than this are deleted (Prometheus' default, 15d).
    pub time: PromDuration,
    /// Oldest blocks are deleted while the store is bigger than this; 0 = no limit.
    pub size: ByteSize,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self { time: PromDuration(Duration::from_secs(15 * 86_400)), size: ByteSize(0) }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalConfig {
    pub scrape_interval: PromDuration,
    pub scrape_timeout: PromDuration,
    /// How often rule groups are evaluated unless they set `interval`.
    pub evaluation_interval: PromDuration,
    /// Added to alerts sent out and to remote-written series, like Prometheus.
    pub external_labels: BTreeMap<String, String>,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        Self {
            scrape_interval: PromDuration(Duration::from_secs(15)),
            scrape_timeout: PromDuration(Duration::from_secs(10)),
            evaluation_interval: PromDuration(Duration::from_secs(60)),
            external_labels: BTreeMap::new(),
        }
    }
}

/// Where the host's `/proc`, `/sys` and root filesystem are, like
/// node_exporter's `--path.procfs`, `--path.sysfs` and `--path.rootfs`. In a
/// container these are the host's mounts, e.g. `/host/proc`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PathsConfig {
    pub procfs: PathBuf,
    pub sysfs: PathBuf,
    pub rootfs: PathBuf,
}

impl Default for PathsConfig {
    fn default() -> Self {
        Self { procfs: "/proc".into(), sysfs: "/sys".into(), rootfs: "/".into() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    pub listen_address: String,
    /// The URL users reach the agent at (alert `generatorURL`s, templates'
    /// `$externalURL`); default `http://<listen_address>`.
    pub external_url: Option<String>,
    /// Accept samples on `POST /api/v1/write` (Prometheus'
    /// `--web.enable-remote-write-receiver`).
    pub enable_remote_write_receiver: bool,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self { listen_address: "127.0.0.1:9101".into(), external_url: None, enable_remote_write_receiver: false }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    /// Extra directories searched for `<name>.wasm`, before the built-in ones.
    pub directories: Vec<PathBuf>,
    /// Where compiled components are cached. Default: `$XDG_CACHE_HOME/wasmon`
    /// or `~/.cache/wasmon`.
    pub cache_directory: Option<PathBuf>,
    /// Load only plugins whose `FILE.wasm.sig` verifies under one of
    /// `trusted_keys` (see `crate::signing`).
    pub require_signatures: bool,
    /// Ed25519 public keys (SPKI PEM files, relative to the working
    /// directory) that plugins may be signed with.
    pub trusted_keys: Vec<PathBuf>,
}

/// One `remote_write` endpoint, with Prometheus' keys plus `buffer_limit`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteWriteConfig {
    /// `http://` or `https://` URL of the receiver, e.g. `.../api/v1/write`.
    pub url: String,
    /// Names the queue in metrics (`remote` label) and its position file;
    /// defaults to a hash of the URL.
    pub name: Option<String>,
    #[serde(default = "default_remote_timeout")]
    pub remote_timeout: PromDuration,
    /// Extra request headers; the remote-write protocol headers cannot be set.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub write_relabel_configs: Vec<RelabelConfig>,
    pub tls_config: Option<TlsConfig>,
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    #[serde(default)]
    pub queue_config: QueueConfig,
    /// WAL bytes this queue may fall behind (and keep from truncation) while
    /// the receiver is unreachable; beyond it the oldest samples are dropped
    /// and counted. `0` = no limit.
    #[serde(default = "default_buffer_limit")]
    pub buffer_limit: ByteSize,
}

fn default_remote_timeout() -> PromDuration {
    PromDuration(Duration::from_secs(30))
}

fn default_buffer_limit() -> ByteSize {
    ByteSize(512 << 20)
}

impl RemoteWriteConfig {
    /// `name`, or a short hash of the URL (stable across restarts, so the
    /// queue finds its position again).
    pub fn queue_name(&self) -> String {
        use sha2::Digest;
        match &self.name {
            Some(name) => name.clone(),
            None => hex::encode(&sha2::Sha256::digest(self.url.as_bytes())[..3]),
        }
    }
}

/// Prometheus' remote-write `queue_config` (same defaults). Shards start
/// at `min_shards` and grow up to `max_shards` while the queue lags.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Samples buffered per shard before reading the WAL pauses.
    pub capacity: usize,
    pub max_shards: usize,
    pub min_shards: usize,
    pub max_samples_per_send: usize,
    /// Longest a sample waits in a shard for its batch to fill.
    pub batch_send_deadline: PromDuration,
    pub min_backoff: PromDuration,
    pub max_backoff: PromDuration,
    pub retry_on_http_429: bool,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            capacity: 10_000,
            max_shards: 50,
            min_shards: 1,
            max_samples_per_send: 2_000,
            batch_send_deadline: PromDuration(Duration::from_secs(5)),
            min_backoff: PromDuration(Duration::from_millis(30)),
            max_backoff: PromDuration(Duration::from_secs(5)),
            retry_on_http_429: true,
        }
    }
}

/// One relabeling step, as in Prometheus' `relabel_configs` (same defaults:
/// separator `;`, regex `(.*)` anchored at both ends, replacement `$1`,
/// action `replace`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelabelConfig {
    #[serde(default)]
    pub source_labels: Vec<String>,
    #[serde(default = "default_separator")]
    pub separator: String,
    #[serde(default = "default_relabel_regex")]
    pub regex: String,
    #[serde(default)]
    pub target_label: String,
    #[serde(default = "default_replacement")]
    pub replacement: String,
    /// For `hashmod`: the target label gets md5(source values) mod this.
    #[serde(default)]
    pub modulus: u64,
    #[serde(default)]
    pub action: RelabelAction,
}

fn default_separator() -> String {
    ";".into()
}

fn default_relabel_regex() -> String {
    "(.*)".into()
}

fn default_replacement() -> String {
    "$1".into()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RelabelAction {
    #[default]
    Replace,
    Keep,
    Drop,
    LabelDrop,
    LabelKeep,
    LabelMap,
    Lowercase,
    Uppercase,
    KeepEqual,
    DropEqual,
    HashMod,
}

/// Headers the remote-write protocol (or the HTTP client) owns; like
/// Prometheus, `headers` may not set them.
const RESERVED_REMOTE_HEADERS: [&str; 13] = [
    "host",
    "content-encoding",
    "content-length",
    "content-type",
    "user-agent",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "www-authenticate",
    "accept-encoding",
    "x-prometheus-remote-write-version",
    "transfer-encoding",
];

/// Problems of the `remote_write` section, each with its line.
fn validate_remote_write(config: &Config, text: &str, report: &mut dyn FnMut(Option<usize>, String)) {
    if !config.remote_write.is_empty() && !config.storage.tsdb.enabled {
        report(
            locate(text, "remote_write:"),
            "remote_write sends from the store's WAL; it needs storage.tsdb.enabled: true".into(),
        );
    }
    let mut names = HashSet::new();
    for (index, rw) in config.remote_write.iter().enumerate() {
        let line = locate(text, &rw.url).or_else(|| locate(text, "remote_write:"));
        let name = rw.queue_name();
        let at = format!("remote_write[{index}] ({name})");
        let scheme = match rw.url.parse::<http::Uri>() {
            Ok(uri) if uri.host().is_some() && uri.scheme_str() == Some("http") => Some(Scheme::Http),
            Ok(uri) if uri.host().is_some() && uri.scheme_str() == Some("https") => Some(Scheme::Https),
            _ => {
                report(line, format!("{at}: url {:?} is not an http:// or https:// URL", rw.url));
                None
            }
        };
        if name.is_empty() {
            report(line, format!("{at}: name is empty"));
        }
        if !names.insert(name.clone()) {
            report(line, format!("{at}: name {name:?} is used by an earlier remote_write; names must be unique"));
        }
        if rw.remote_timeout.0.is_zero() {
            report(line, format!("{at}: remote_timeout must be greater than 0"));
        }
        for (header, value) in &rw.headers {
            let lower = header.to_ascii_lowercase();
            if RESERVED_REMOTE_HEADERS.contains(&lower.as_str()) {
                report(
                    line,
                    format!("{at}: headers: {header} is set by the remote-write protocol and cannot be changed"),
                );
            } else if lower == "authorization" && (rw.basic_auth.is_some() || rw.authorization.is_some()) {
                report(line, format!("{at}: headers: authorization conflicts with basic_auth/authorization"));
            } else if http::HeaderName::from_bytes(header.as_bytes()).is_err()
                || http::HeaderValue::from_str(value).is_err()
            {
                report(line, format!("{at}: headers: {header:?} is not a valid header name and value"));
            }
        }
        let q = &rw.queue_config;
        if q.capacity == 0 || q.max_samples_per_send == 0 {
            report(line, format!("{at}: queue_config.capacity and max_samples_per_send must be greater than 0"));
        }
        if q.min_shards == 0 || q.max_shards < q.min_shards {
            report(line, format!("{at}: queue_config needs 1 <= min_shards <= max_shards"));
        }
        if q.batch_send_deadline.0.is_zero() {
            report(line, format!("{at}: queue_config.batch_send_deadline must be greater than 0"));
        }
        if q.min_backoff.0.is_zero() || q.min_backoff > q.max_backoff {
            report(line, format!("{at}: queue_config needs 0 < min_backoff <= max_backoff"));
        }
        if let Err(e) = crate::relabel::Relabeler::new(&rw.write_relabel_configs) {
            report(line, format!("{at}: write_relabel_configs{e}"));
        }
        if let Some(scheme) = scheme {
            let secrets = BTreeMap::new();
            for problem in network::validate(
                &at,
                scheme,
                rw.tls_config.as_ref(),
                rw.basic_auth.as_ref(),
                rw.authorization.as_ref(),
                &secrets,
                true,
            ) {
                report(line, problem);
            }
        }
    }
}

/// One problem found in a config file, with where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigProblem {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{}:{l}:{c}: {}", self.file, self.message),
            (Some(l), None) => write!(f, "{}:{l}: {}", self.file, self.message),
            _ => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// Every problem found in one config file.
#[derive(Debug, thiserror::Error)]
#[error("{}", .problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError {
    pub problems: Vec<ConfigProblem>,
}

impl Config {
    /// Read and validate a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            problems: vec![ConfigProblem {
                file: name.clone(),
                line: None,
                column: None,
                message: format!("cannot read: {e}"),
            }],
        })?;
        Self::parse(&text, &name)
    }

    /// Parse and validate config text; `name` is used in messages.
    pub fn parse(text: &str, name: &str) -> Result<Config, ConfigError> {
        let config: Config = serde_yaml_ng::from_str(text).map_err(|e| {
            let loc = e.location();
            ConfigError {
                problems: vec![ConfigProblem {
                    file: name.into(),
                    line: loc.as_ref().map(|l| l.line()),
                    column: loc.as_ref().map(|l| l.column()),
                    message: e.to_string().split(" at line ").next().unwrap_or_default().to_string(),
                }],
            }
        })?;
        let mut config = config;
        // As Prometheus: an unset global timeout is the default capped at the
        // global interval, so `global: {scrape_interval: 1s}` alone is valid.
        let timeout_set = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text)
            .ok()
            .and_then(|v| v.get("global").map(|g| g.get("scrape_timeout").is_some()))
            .unwrap_or(false);
        if !timeout_set {
            config.global.scrape_timeout =
                PromDuration(config.global.scrape_timeout.0.min(config.global.scrape_interval.0));
        }
        let problems = config.validate(text, name);
        if problems.is_empty() { Ok(config) } else { Err(ConfigError { problems }) }
    }

    /// Check everything that serde cannot, collecting every problem.
    fn validate(&self, text: &str, name: &str) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        let mut report = |line: Option<usize>, message: String| {
            problems.push(ConfigProblem { file: name.into(), line, column: None, message });
        };
        if self.web.listen_address.parse::<SocketAddr>().is_err() {
            report(
                locate(text, "listen_address:"),
                format!("web.listen_address {:?} is not an address like 127.0.0.1:9101", self.web.listen_address),
            );
        }
        if self.storage.tsdb.enabled && self.storage.tsdb.path.as_os_str().is_empty() {
            report(locate(text, "path:"), "storage.tsdb.path is empty; name a data directory".into());
        }
        if self.storage.tsdb.retention.time.0.is_zero() {
            report(locate(text, "time:"), "storage.tsdb.retention.time must be greater than 0".into());
        }
        if self.global.evaluation_interval.0.is_zero() {
            report(locate(text, "evaluation_interval:"), "global.evaluation_interval must be greater than 0".into());
        }
        for name in self.global.external_labels.keys() {
            if !is_valid_label_name(name) || name.starts_with("__") {
                report(
                    locate(text, "external_labels:"),
                    format!("global.external_labels: invalid label name {name:?}"),
                );
            }
        }
        for (i, am) in self.alerting.alertmanagers.iter().enumerate() {
            for problem in am.problems(&format!("alerting.alertmanagers[{i}]")) {
                report(locate(text, "alertmanagers:"), problem);
            }
            for problem in network::validate(
                &format!("alerting.alertmanagers[{i}]"),
                am.scheme,
                am.tls_config.as_ref(),
                am.basic_auth.as_ref(),
                am.authorization.as_ref(),
                &BTreeMap::new(),
                true,
            ) {
                report(locate(text, "alertmanagers:"), problem);
            }
        }
        for pattern in &self.rule_files {
            if let Err(e) = globset::Glob::new(pattern) {
                report(locate(text, "rule_files:"), format!("rule_files: invalid glob {pattern:?}: {e}"));
            }
        }
        if let Some(section) = &self.notifier {
            let checked = serde_yaml_ng::to_string(section)
                .map_err(|e| vec![e.to_string()])
                .and_then(|text| wasmon_notify::Config::from_yaml(&text).map_err(|e| e.problems()))
                .and_then(|c| c.validate().map_err(|e| e.problems()));
            if let Err(problems) = checked {
                for problem in problems {
                    report(locate(text, "notifier:"), format!("notifier: {problem}"));
                }
            }
        }
        if let Some(url) = &self.web.external_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            report(
                locate(text, "external_url:"),
                format!("web.external_url {url:?} must start with http:// or https://"),
            );
        }
        if self.global.scrape_timeout > self.global.scrape_interval {
            report(
                locate(text, "scrape_timeout:"),
                "global.scrape_timeout is longer than global.scrape_interval".into(),
            );
        }
        for problem in crate::signing::config_problems(&self.plugins) {
            report(locate(text, "trusted_keys:").or_else(|| locate(text, "require_signatures:")), problem);
        }
        scrape::validate_jobs(self, text, &mut report);
        validate_remote_write(self, text, &mut report);
        logs::validate(self, text, &mut report);
        problems
    }
}

/// The 1-based line of the first occurrence of `needle`, for messages.
fn locate(text: &str, needle: &str) -> Option<usize> {
    text.lines().position(|l| l.contains(needle)).map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_valid() {
        let config = Config::parse(EMBEDDED_DEFAULT, "embedded").expect("embedded default");
        assert_eq!(config.scrape_configs[0].plugin.as_deref(), Some("node"));
        assert_eq!(config.scrape_configs[0].capabilities.files, FileGrant::PluginDefault);
    }

    #[test]
    fn reports_syntax_errors_with_line_and_column() {
        let err = Config::parse("global:\n  scrape_interval: 15s\n  bogus_key: 1\n", "c.yaml").unwrap_err();
        assert_eq!(err.problems.len(), 1);
        let p = &err.problems[0];
        assert_eq!(p.line, Some(3), "{p}");
        assert!(p.message.contains("unknown field `bogus_key`"), "{p}");
        assert!(p.to_string().starts_with("c.yaml:3:"), "{p}");
    }

    #[test]
    fn default_global_timeout_is_capped_at_a_short_global_interval_as_in_prometheus() {
        let config = Config::parse("global: {scrape_interval: 2s}\n", "c.yaml").expect("valid");
        assert_eq!(config.global.scrape_timeout.0, Duration::from_secs(2));
        let err = Config::parse("global: {scrape_interval: 2s, scrape_timeout: 3s}\n", "c.yaml").unwrap_err();
        assert!(err.to_string().contains("global.scrape_timeout is longer"), "{err}");
    }

    #[test]
    fn default_timeout_is_capped_at_a_short_interval_as_in_prometheus() {
        let text = "scrape_configs:\n  - job_name: a\n    plugin: node\n    scrape_interval: 1s\n    static_configs: [{targets: [x]}]\n";
        let config = Config::parse(text, "c.yaml").expect("valid: timeout defaults to the interval");
        assert_eq!(config.scrape_configs[0].timeout(&config.global), Duration::from_secs(1));
    }

    #[test]
    fn reports_all_semantic_problems_at_once() {
        let text = "\
scrape_configs:
  - job_name: a
    plugin: node
    scrape_interval: 5s
    scrape_timeout: 10s
    static_configs: [{targets: [x, x]}]
  - job_name: a
    plugin: ''
    static_configs: [{targets: []}]
    limits: {memory: 10KiB}
    capabilities: {files: [relative/path]}
";
        let err = Config::parse(text, "c.yaml").unwrap_err();
        let all = err.to_string();
        for expected in [
            "c.yaml:2: scrape_configs[0] (job \"a\"): scrape_timeout 10s is longer than scrape_interval 5s",
            "listed twice",
            "job_name is used by an earlier job",
            "plugin is empty",
            "no targets",
            "limits.memory must be between",
            "must be an absolute path",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
        assert_eq!(err.problems.len(), 7, "{all}");
    }

    #[test]
    fn bad_durations_name_the_value() {
        let err = Config::parse("global: {scrape_interval: 15 seconds}\n", "c.yaml").unwrap_err();
        assert!(err.to_string().contains("invalid duration \"15 seconds\""), "{err}");
    }

    #[test]
    fn remote_write_defaults_follow_prometheus() {
        let config = Config::parse("remote_write:\n  - url: http://127.0.0.1:9090/api/v1/write\n", "c.yaml").unwrap();
        let rw = &config.remote_write[0];
        assert_eq!(rw.remote_timeout, PromDuration(Duration::from_secs(30)));
        assert_eq!(rw.buffer_limit, ByteSize(512 << 20));
        let q = &rw.queue_config;
        assert_eq!((q.capacity, q.min_shards, q.max_shards, q.max_samples_per_send), (10_000, 1, 50, 2_000));
        assert_eq!(q.batch_send_deadline, PromDuration(Duration::from_secs(5)));
        assert_eq!((q.min_backoff.0, q.max_backoff.0), (Duration::from_millis(30), Duration::from_secs(5)));
        assert!(q.retry_on_http_429);
        assert_eq!(rw.queue_name().len(), 6, "default name is a short hash of the url");
    }

    #[test]
    fn remote_write_problems_are_all_reported_with_lines() {
        let text = "\
remote_write:
  - url: ftp://x
    name: a
  - url: http://127.0.0.1:1/w
    name: a
    remote_timeout: 0s
    headers: {Content-Type: text/plain}
    queue_config: {min_shards: 3, max_shards: 2, min_backoff: 10s}
    write_relabel_configs: [{regex: '(', action: keep}]
    basic_auth: {username: u}
    authorization: {credentials: t}
";
        let err = Config::parse(text, "c.yaml").unwrap_err();
        let all = err.to_string();
        for expected in [
            "c.yaml:2: remote_write[0] (a): url \"ftp://x\" is not an http:// or https:// URL",
            "c.yaml:4: remote_write[1] (a): name \"a\" is used by an earlier remote_write",
            "remote_timeout must be greater than 0",
            "headers: Content-Type is set by the remote-write protocol",
            "min_shards <= max_shards",
            "min_backoff <= max_backoff",
            "write_relabel_configs[0]: invalid regex",
            "basic_auth and authorization are mutually exclusive",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
        let err =
            Config::parse("storage: {tsdb: {enabled: false}}\nremote_write: [{url: 'http://a/'}]\n", "c").unwrap_err();
        assert!(err.to_string().contains("needs storage.tsdb.enabled"), "{err}");
        assert!(Config::parse("remote_write: [{url: 'http://a/', bogus: 1}]\n", "c").is_err());
    }

    #[test]
    fn label_and_metric_names() {
        assert!(is_valid_label_name("job"));
        assert!(!is_valid_label_name("1job"));
        assert!(!is_valid_label_name("a-b"));
        assert!(is_valid_metric_name("node:cpu:rate5m"));
        assert!(!is_valid_metric_name("node cpu"));
        assert!(!is_valid_metric_name(""));
    }
}
