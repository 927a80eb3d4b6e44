//! Turning a config into running jobs: load each plugin once, ask it what it
//! needs, check its config section, and build each job's sandbox.

use crate::config::{CapabilitiesConfig, Config, FileGrant, ScrapeConfig};
use crate::relabel::Relabeler;
use crate::runtime::model::Capability;
use crate::runtime::{LoadedPlugin, Runtime, Sandbox};
use crate::scheduler::{Collector, Job, JobDiscovery, LabelLimits};
use crate::scrape::NativeScraper;
use crate::targets::{JobDefaults, TargetRelabeling};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use wasmon_discovery::file::FileSdSpec;
use wasmon_discovery::{ADDRESS_LABEL, LabelSet, TargetGroup};

/// Time allowed for `describe` and `check-config` at load time.
const LOAD_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A plugin as loaded at start-up, with what it asked for.
#[derive(Clone)]
pub struct PluginEntry {
    pub plugin: LoadedPlugin,
    pub info: crate::runtime::model::PluginInfo,
}

impl PluginEntry {
    pub fn requested_globs(&self) -> Vec<String> {
        self.info
            .capabilities
            .iter()
            .flat_map(|c| match c {
                Capability::ReadFiles(globs) => globs.clone(),
                _ => Vec::new(),
            })
            .collect()
    }
}

/// Load the plugin at `path` and call `describe`.
pub fn load_plugin(runtime: &Runtime, name: &str, path: &std::path::Path) -> Result<PluginEntry, String> {
    let plugin = runtime.load(name, path).map_err(|e| e.to_string())?;
    let outcome = plugin.describe(&Sandbox::locked_down(runtime.paths(), LOAD_CALL_TIMEOUT));
    let info = outcome.result.map_err(|f| format!("plugin {name}: describe failed: {f}"))?;
    Ok(PluginEntry { plugin, info })
}

/// Build every job of `config`, collecting all problems instead of stopping
/// at the first.
pub fn build_jobs(
    runtime: &Runtime,
    config: &Config,
    telemetry: &Arc<crate::telemetry::Telemetry>,
) -> Result<Vec<Job>, Vec<String>> {
    let mut problems = Vec::new();
    let mut loaded: HashMap<PathBuf, PluginEntry> = HashMap::new();
    let mut jobs = Vec::new();
    for job in &config.scrape_configs {
        let at = format!("job {:?}", job.job_name);
        let timeout = job.timeout(&config.global);
        let collector = match &job.plugin {
            None => match NativeScraper::new(job, timeout) {
                Ok(scraper) => Collector::Native(Arc::new(scraper)),
                Err(e) => {
                    problems.push(format!("{at}: {e}"));
                    continue;
                }
            },
            Some(plugin_name) if job.kubernetes.is_some() => {
                match kube_state_collector(runtime, config, job, plugin_name, telemetry) {
                    Ok(collector) => collector,
                    Err(e) => {
                        problems.push(format!("{at}: {e}"));
                        continue;
                    }
                }
            }
            Some(plugin_name) => match plugin_collector(runtime, config, job, plugin_name, &mut loaded) {
                Ok(collector) => collector,
                Err(e) => {
                    problems.push(format!("{at}: {e}"));
                    continue;
                }
            },
        };
        match job_from_config(config, job, collector) {
            Ok(built) => jobs.push(built),
            Err(e) => problems.push(format!("{at}: {e}")),
        }
    }
    if problems.is_empty() { Ok(jobs) } else { Err(problems) }
}

/// Load (once per path) and check the plugin of `job`, and build its sandbox.
fn plugin_collector(
    runtime: &Runtime,
    config: &Config,
    job: &ScrapeConfig,
    plugin_name: &str,
    loaded: &mut HashMap<PathBuf, PluginEntry>,
) -> Result<Collector, String> {
    let path = crate::plugins::resolve(plugin_name, &config.plugins.directories).map_err(|e| e.to_string())?;
    let entry = match loaded.get(&path) {
        Some(entry) => entry.clone(),
        None => {
            let entry = load_plugin(runtime, plugin_name, &path)?;
            tracing::info!(plugin = %plugin_name, path = %path.display(), version = %entry.info.version,
                cache = ?entry.plugin.cache, "plugin loaded");
            loaded.insert(path.clone(), entry.clone());
            entry
        }
    };
    let timeout = job.timeout(&config.global);
    let sandbox = Sandbox::for_job(runtime.paths(), &job.capabilities, &job.limits, timeout, &entry.requested_globs())
        .map_err(|e| e.to_string())
        .and_then(|sandbox| sandbox.with_network(job, timeout))?;
    warn_ungranted(&job.job_name, &entry, &job.capabilities);
    let config_json = job.plugin_config_json()?;
    let check = entry.plugin.check_config(&Sandbox::locked_down(runtime.paths(), LOAD_CALL_TIMEOUT), &config_json);
    if let Err(failure) = check.result {
        return Err(format!("plugin {plugin_name} rejected its config section: {}", failure.message));
    }
    Ok(Collector::Plugin { plugin: entry.plugin.clone(), sandbox: Arc::new(sandbox), config_json: config_json.into() })
}

/// Load a kube-state plugin and check its config section.
fn kube_state_collector(
    runtime: &Runtime,
    config: &Config,
    job: &ScrapeConfig,
    plugin_name: &str,
    telemetry: &Arc<crate::telemetry::Telemetry>,
) -> Result<Collector, String> {
    let path = crate::plugins::resolve(plugin_name, &config.plugins.directories).map_err(|e| e.to_string())?;
    let plugin = runtime.load_kube_state(plugin_name, &path).map_err(|e| e.to_string())?;
    let timeout = job.timeout(&config.global).max(crate::runtime::kube_state::DEFAULT_CALL_TIMEOUT);
    let mut limits = job.limits.clone();
    // The instance holds the cluster's objects: more room than one scrape needs.
    if limits.memory == crate::config::LimitsConfig::default().memory {
        limits.memory = crate::config::ByteSize(512 << 20);
    }
    let sandbox =
        Sandbox::for_job(runtime.paths(), &crate::config::CapabilitiesConfig::default(), &limits, timeout, &[])
            .map_err(|e| e.to_string())?;
    let config_json = job.plugin_config_json()?;
    crate::kube_state::KubeStateJob::check_config(&plugin, &sandbox, &config_json)
        .map_err(|e| format!("plugin {plugin_name} rejected its config section: {e}"))?;
    tracing::info!(plugin = %plugin_name, path = %path.display(), "kube-state plugin loaded");
    let api = job.kubernetes.clone().unwrap_or_else(|| unreachable!("checked by the caller"));
    Ok(Collector::KubeState(Arc::new(crate::kube_state::KubeStateJob::new(
        &job.job_name,
        plugin,
        sandbox,
        config_json,
        api,
        telemetry.clone(),
    ))))
}

/// The name a kube-state job's agent campaigns and reports under.
fn kube_state_identity(job: &ScrapeConfig) -> String {
    job.kubernetes
        .as_ref()
        .and_then(|k| k.leader_election.as_ref())
        .and_then(|le| le.identity.clone())
        .unwrap_or_else(crate::kube_state::identity)
}

/// Everything of a job besides its collector: target sources, relabeling,
/// limits.
fn job_from_config(config: &Config, job: &ScrapeConfig, collector: Collector) -> Result<Job, String> {
    let metric_relabel =
        Relabeler::new(&job.metric_relabel_configs).map_err(|e| format!("metric_relabel_configs{e}"))?;
    Ok(Job {
        name: job.job_name.clone(),
        collector,
        interval: job.interval(&config.global),
        timeout: job.timeout(&config.global),
        sample_limit: job.series_limit(),
        label_limits: LabelLimits {
            count: job.label_limit,
            name_length: job.label_name_length_limit,
            value_length: job.label_value_length_limit,
        },
        honor_labels: job.honor_labels,
        honor_timestamps: job.honor_timestamps,
        metric_relabel,
        discovery: discovery_of(config, job)?,
    })
}

/// Where a job's targets come from and how they are relabeled; all that
/// `wasmon targets` needs, without loading plugins.
pub fn discovery_of(config: &Config, job: &ScrapeConfig) -> Result<JobDiscovery, String> {
    let interval = job.interval(&config.global);
    let timeout = job.timeout(&config.global);
    let preset: Vec<_> = if job.use_prometheus_io_annotations {
        job.kubernetes_sd_configs.first().map(|k| crate::targets::annotation_preset(&k.role)).unwrap_or_default()
    } else {
        Vec::new()
    };
    let relabeling = TargetRelabeling::new(&job.relabel_configs, &preset).map_err(|e| format!("relabel_configs{e}"))?;
    let static_groups = job
        .static_configs
        .iter()
        .enumerate()
        .map(|(i, sc)| TargetGroup {
            source: i.to_string(),
            targets: sc.targets.iter().map(|t| LabelSet::from([(ADDRESS_LABEL.to_string(), t.clone())])).collect(),
            labels: sc.labels.clone(),
        })
        .collect();
    // A kube-state job reports as one target: this agent.
    let static_groups = if job.kubernetes.is_some() && job.static_configs.is_empty() {
        vec![TargetGroup {
            source: "kube-state".into(),
            targets: vec![LabelSet::from([(ADDRESS_LABEL.to_string(), kube_state_identity(job))])],
            labels: LabelSet::new(),
        }]
    } else {
        static_groups
    };
    let file_sd = job
        .file_sd_configs
        .iter()
        .map(|f| FileSdSpec { files: f.files.clone(), refresh_interval: f.refresh_interval.0 })
        .collect();
    let kubernetes_sd =
        job.kubernetes_sd_configs.iter().map(|k| crate::kubernetes::KubernetesSd { config: k.clone() }).collect();
    Ok(JobDiscovery {
        defaults: JobDefaults {
            job: job.job_name.clone(),
            scheme: job.scheme,
            metrics_path: job.metrics_path.clone(),
            interval,
            timeout,
            params: job.param_pairs(),
            add_default_port: job.plugin.is_none(),
        },
        relabeling,
        static_groups,
        file_sd,
        kubernetes_sd,
    })
}

fn warn_ungranted(job: &str, entry: &PluginEntry, caps: &CapabilitiesConfig) {
    for capability in &entry.info.capabilities {
        let missing = match capability {
            Capability::ReadFiles(_) => caps.files == FileGrant::None,
            Capability::FsStats => !caps.fs_stats,
            Capability::Clock => !caps.clock,
            Capability::Tcp => !caps.tcp,
            Capability::Http => !caps.http,
        };
        if missing {
            tracing::warn!(job, plugin = %entry.info.name, capability = ?capability,
                "plugin asks for a capability this job does not grant; what needs it will fail");
        }
    }
}
