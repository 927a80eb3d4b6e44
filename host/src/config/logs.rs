//! The `logs:` section: one pipeline of `wasmon_logs` (sources, checkpoint,
//! batch, sinks) plus what the agent adds around it: the processors each
//! batch runs through (Wasm `log-processor` plugins or the native JSON
//! processor), pod labels from the Kubernetes API, and how often the
//! processors' metrics are collected.

use super::{Authorization, ByteSize, PromDuration, TlsConfig};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;
use wasmon_logs::{BatchConfig, CheckpointConfig, JsonBodyConfig, PipelineConfig, SinkConfig, SourceConfig};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsConfig {
    pub sources: Vec<SourceConfig>,
    pub checkpoint: CheckpointConfig,
    #[serde(default)]
    pub batch: BatchConfig,
    pub sinks: Vec<SinkConfig>,
    /// Run in order on every batch, between the tailer and the sinks.
    #[serde(default)]
    pub processors: Vec<LogProcessorConfig>,
    /// Add pod labels (`k8s.pod.label.<name>`) from the API server to files
    /// whose path names a pod (sources with `kubernetes_metadata: true`).
    #[serde(default)]
    pub kubernetes: Option<LogsKubernetesConfig>,
    /// How often the processors' `metrics()` are read into `/metrics` and
    /// the store (`job="logs"`). Default: `global.scrape_interval`.
    #[serde(default)]
    pub metrics_interval: Option<PromDuration>,
    /// How long `shutdown` lets the sinks finish queued batches.
    #[serde(default = "default_shutdown_grace")]
    pub shutdown_grace: PromDuration,
}

fn default_shutdown_grace() -> PromDuration {
    PromDuration(Duration::from_secs(10))
}

/// One processor: exactly one of `plugin` and `native`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogProcessorConfig {
    /// Names the processor in logs and in the `processor` label of its
    /// metrics. Default: the plugin's name, or `native_<kind>`.
    pub name: Option<String>,
    /// A `log-processor` component: `logs-json` (bundled) or a path to a `.wasm`.
    pub plugin: Option<String>,
    /// A processor built into the agent: `json`.
    pub native: Option<NativeProcessor>,
    /// The processor's own section: passed to the plugin as JSON, or the
    /// native processor's options.
    #[serde(default)]
    pub config: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    pub limits: LogProcessorLimitsConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NativeProcessor {
    /// JSON bodies to attributes, in the host (`body_field`, `prefix`, `max_depth`).
    Json,
}

/// Per-call limits of a plugin processor (one call = one batch).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogProcessorLimitsConfig {
    /// Linear memory cap of the instance (it lives as long as the pipeline).
    pub memory: ByteSize,
    /// Wall-clock time one call may take; the pipeline waits that long at most.
    pub timeout: PromDuration,
    /// CPU time one call may use; default the timeout.
    pub cpu: Option<PromDuration>,
    /// Log lines (plus stdout/stderr lines) kept per call.
    pub log_lines: usize,
}

impl Default for LogProcessorLimitsConfig {
    fn default() -> Self {
        Self { memory: ByteSize(128 << 20), timeout: PromDuration(Duration::from_secs(5)), cpu: None, log_lines: 100 }
    }
}

/// Where pod labels come from: the API server, watching only this node's pods.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsKubernetesConfig {
    /// Without it (and without `kubeconfig_file`): the in-cluster service account.
    pub api_server: Option<String>,
    pub kubeconfig_file: Option<PathBuf>,
    pub tls_config: Option<TlsConfig>,
    pub authorization: Option<Authorization>,
    pub bearer_token_file: Option<PathBuf>,
    /// The node whose pods are watched (`spec.nodeName`); `$VAR` is expanded.
    #[serde(default = "default_node_name")]
    pub node_name: String,
    /// Add every pod label as `k8s.pod.label.<name>`.
    #[serde(default = "default_true")]
    pub pod_labels: bool,
    /// Add these pod annotations as `k8s.pod.annotation.<name>` (none by default).
    #[serde(default)]
    pub pod_annotations: Vec<String>,
}

fn default_node_name() -> String {
    "$NODE_NAME".into()
}

fn default_true() -> bool {
    true
}

impl LogsConfig {
    /// The part `wasmon_logs` runs.
    pub fn pipeline(&self) -> PipelineConfig {
        PipelineConfig {
            sources: self.sources.clone(),
            checkpoint: self.checkpoint.clone(),
            batch: self.batch.clone(),
            sinks: self.sinks.clone(),
        }
    }
}

impl LogProcessorConfig {
    /// `name`, or the plugin's name, or `native_json`.
    pub fn display_name(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        match (&self.plugin, self.native) {
            (Some(plugin), _) => std::path::Path::new(plugin)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| plugin.clone()),
            (None, Some(NativeProcessor::Json)) => "native_json".into(),
            (None, None) => String::new(),
        }
    }

    /// The section as JSON text for a plugin (`{}` when absent).
    pub fn config_json(&self) -> Result<String, String> {
        match &self.config {
            None => Ok("{}".into()),
            Some(v) => serde_json::to_string(v).map_err(|e| format!("config cannot be expressed as JSON: {e}")),
        }
    }

    /// The native JSON processor's options.
    pub fn json_body_config(&self) -> Result<JsonBodyConfig, String> {
        match &self.config {
            None => Ok(JsonBodyConfig::default()),
            Some(v) => serde_yaml_ng::from_value(v.clone()).map_err(|e| e.to_string()),
        }
    }
}

/// Problems of the `logs:` section, each with its line, all at once.
pub(super) fn validate(config: &super::Config, text: &str, report: &mut dyn FnMut(Option<usize>, String)) {
    let Some(logs) = &config.logs else { return };
    let line = super::locate(text, "logs:");
    for problem in logs.pipeline().validate() {
        report(line, problem.to_string());
    }
    let mut names = std::collections::HashSet::new();
    for (i, p) in logs.processors.iter().enumerate() {
        let at = format!("logs.processors[{i}]");
        let line = p.plugin.as_deref().and_then(|n| super::locate(text, &format!("plugin: {n}"))).or(line);
        match (&p.plugin, p.native) {
            (Some(_), Some(_)) => report(line, format!("{at}: set either plugin or native, not both")),
            (None, None) => report(line, format!("{at}: needs plugin (a log-processor component) or native (json)")),
            (Some(name), None) if name.is_empty() => report(line, format!("{at}.plugin: is empty")),
            _ => {}
        }
        let name = p.display_name();
        if !name.is_empty() && !names.insert(name.clone()) {
            report(line, format!("{at}: name {name:?} is used by an earlier processor; set `name` to tell them apart"));
        }
        if p.native == Some(NativeProcessor::Json)
            && let Err(e) = p.json_body_config()
        {
            report(line, format!("{at}.config: {e}"));
        }
        if let Err(e) = p.config_json() {
            report(line, format!("{at}.config: {e}"));
        }
        let l = &p.limits;
        if l.memory.0 < (1 << 20) || l.memory.0 > crate::runtime::MAX_INSTANCE_MEMORY {
            report(line, format!("{at}.limits.memory must be between 1MiB and 4GiB"));
        }
        if l.timeout.0.is_zero() {
            report(line, format!("{at}.limits.timeout must be greater than 0"));
        }
        if l.cpu.is_some_and(|c| c.0.is_zero()) {
            report(line, format!("{at}.limits.cpu must be greater than 0"));
        }
    }
    if logs.metrics_interval.is_some_and(|d| d.0.is_zero()) {
        report(super::locate(text, "metrics_interval:"), "logs.metrics_interval must be greater than 0".into());
    }
    if let Some(k) = &logs.kubernetes {
        let line = super::locate(text, "node_name:").or(line);
        if k.node_name.trim().is_empty() {
            report(line, "logs.kubernetes.node_name is empty".into());
        }
        if k.api_server.is_some() && k.kubeconfig_file.is_some() {
            report(line, "logs.kubernetes: set api_server or kubeconfig_file, not both".into());
        }
        if !logs.sources.iter().any(|s| s.kubernetes_metadata) {
            report(
                line,
                "logs.kubernetes adds pod labels only to sources with kubernetes_metadata: true, and there is none"
                    .into(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const BASE: &str = "\
logs:
  sources: [{name: pods, include: ['/var/log/pods/*/*/*.log'], kubernetes_metadata: true}]
  checkpoint: {path: /tmp/ck.json}
  sinks: [{type: file, name: out, path: /tmp/out.jsonl}]
";

    #[test]
    fn a_logs_section_loads_with_processors() {
        let text = format!(
            "{BASE}  processors:\n    - plugin: logs-json\n      config: {{message_key: msg}}\n    - native: json\n      name: j2\n"
        );
        let config = Config::parse(&text, "c.yaml").unwrap();
        let logs = config.logs.unwrap();
        assert_eq!(logs.processors.len(), 2);
        assert_eq!(logs.processors[0].display_name(), "logs-json");
        assert_eq!(logs.processors[0].config_json().unwrap(), r#"{"message_key":"msg"}"#);
        assert_eq!(logs.processors[1].display_name(), "j2");
        assert_eq!(logs.pipeline().sources[0].name, "pods");
    }

    #[test]
    fn every_problem_names_its_key() {
        let text = format!(
            "{BASE}  processors:\n    - {{plugin: a, native: json}}\n    - {{config: {{}}}}\n    - {{native: json, config: {{bogus: 1}}}}\n    - {{plugin: b, limits: {{timeout: 0s, memory: 1KiB}}}}\n    - {{plugin: b}}\n  metrics_interval: 0s\n  kubernetes: {{node_name: ''}}\n"
        );
        let err = Config::parse(&text, "c.yaml").unwrap_err().to_string();
        for expected in [
            "logs.processors[0]: set either plugin or native, not both",
            "logs.processors[1]: needs plugin",
            "logs.processors[2].config: unknown field `bogus`",
            "logs.processors[3].limits.memory",
            "logs.processors[3].limits.timeout",
            "logs.processors[4]: name \"b\" is used by an earlier processor",
            "logs.metrics_interval",
            "logs.kubernetes.node_name is empty",
        ] {
            assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
        }
        let err = Config::parse(&format!("{BASE}  procesors: []\n"), "c.yaml").unwrap_err().to_string();
        assert!(err.contains("unknown field `procesors`"), "{err}");
        let err = Config::parse("logs:\n  sources: []\n  checkpoint: {path: /x}\n  sinks: []\n", "c.yaml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("logs.sources: at least one source is needed"), "{err}");
    }
}
