//! Turning a config into running jobs: load each plugin once, ask it what it
//! needs, check its config section, and build each job's sandbox.

use crate::config::{CapabilitiesConfig, Config, FileGrant, ScrapeConfig};
use crate::plugin_registry::{Component, Loaded, PluginRegistry};
use crate::relabel::Relabeler;
use crate::runtime::model::Capability;
use crate::runtime::{LoadedPlugin, Runtime, Sandbox};
use crate::scheduler::{Collector, Job, JobDiscovery, LabelLimits};
use crate::scrape::NativeScraper;
use crate::targets::{JobDefaults, TargetRelabeling};
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
    describe_plugin(runtime, name, plugin)
}

/// [`load_plugin`] from bytes the caller read (and checked).
pub fn load_plugin_bytes(
    runtime: &Runtime,
    name: &str,
    path: &std::path::Path,
    wasm: &[u8],
) -> Result<PluginEntry, String> {
    let plugin = runtime.load_bytes(name, path, wasm).map_err(|e| e.to_string())?;
    describe_plugin(runtime, name, plugin)
}

fn describe_plugin(runtime: &Runtime, name: &str, plugin: LoadedPlugin) -> Result<PluginEntry, String> {
    let outcome = plugin.describe(&Sandbox::locked_down(runtime.paths(), LOAD_CALL_TIMEOUT));
    let info = outcome.result.map_err(|f| format!("plugin {name}: describe failed: {f}"))?;
    Ok(PluginEntry { plugin, info })
}

/// What to do with a job whose plugin file is missing or does not load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingPlugin {
    /// A problem of the config (`wasmon check config`).
    Fail,
    /// The running agent: the job waits, failing each scrape with the
    /// reason, until a reload finds a version that loads.
    Wait,
}

/// Build every job of `config`, collecting all problems instead of stopping
/// at the first.
pub fn build_jobs(
    runtime: &Runtime,
    config: &Config,
    telemetry: &Arc<crate::telemetry::Telemetry>,
) -> Result<Vec<Job>, Vec<String>> {
    let registry = PluginRegistry::default();
    build_versioned_jobs(runtime, config, telemetry, &registry, MissingPlugin::Fail)
        .map(|jobs| jobs.into_iter().map(|(job, _)| job).collect())
}

/// Build every job of `config` with plugins from `registry`, each with a
/// fingerprint of its config and its plugin's version: equal fingerprints
/// mean the running job can be left alone on reload.
pub fn build_versioned_jobs(
    runtime: &Runtime,
    config: &Config,
    telemetry: &Arc<crate::telemetry::Telemetry>,
    registry: &PluginRegistry,
    missing: MissingPlugin,
) -> Result<Vec<(Job, u64)>, Vec<String>> {
    let mut problems = Vec::new();
    let mut jobs = Vec::new();
    for job in &config.scrape_configs {
        let at = format!("job {:?}", job.job_name);
        let timeout = job.timeout(&config.global);
        let built = match &job.plugin {
            None => NativeScraper::new(job, timeout)
                .map(|scraper| (Collector::Native(Arc::new(scraper)), String::from("native")))
                .map_err(|e| e.to_string()),
            Some(plugin_name) => match plugin_component(runtime, config, registry, plugin_name) {
                Ok(loaded) if job.kubernetes.is_some() => {
                    kube_state_collector(runtime, config, job, plugin_name, &loaded, telemetry)
                        .map(|c| (c, loaded.sha256.clone()))
                }
                Ok(loaded) => {
                    plugin_collector(runtime, config, job, plugin_name, &loaded).map(|c| (c, loaded.sha256.clone()))
                }
                Err(reason) if missing == MissingPlugin::Wait => {
                    tracing::error!(job = %job.job_name, plugin = %plugin_name, %reason,
                        "plugin unavailable; the job waits for it");
                    let reason = format!("plugin {plugin_name} unavailable: {reason}");
                    Ok((Collector::Unavailable { plugin: plugin_name.clone(), reason: reason.clone() }, reason))
                }
                Err(reason) => Err(reason),
            },
        };
        let (collector, version) = match built {
            Ok(built) => built,
            Err(e) => {
                problems.push(format!("{at}: {e}"));
                continue;
            }
        };
        match job_from_config(config, job, collector) {
            Ok(built) => jobs.push((built, job_fingerprint(config, job, &version))),
            Err(e) => problems.push(format!("{at}: {e}")),
        }
    }
    if problems.is_empty() { Ok(jobs) } else { Err(problems) }
}

/// Everything a job is built from, hashed: its section, the global
/// section, the plugin settings and the plugin version.
fn job_fingerprint(config: &Config, job: &ScrapeConfig, version: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    format!("{job:?}").hash(&mut h);
    format!("{:?}", config.global).hash(&mut h);
    format!("{:?}", config.plugins).hash(&mut h);
    version.hash(&mut h);
    // Never 0: the scheduler reads 0 as "always replace".
    h.finish().max(1)
}

/// The plugin a job names, from the registry (loaded once per version).
fn plugin_component(
    runtime: &Runtime,
    config: &Config,
    registry: &PluginRegistry,
    plugin_name: &str,
) -> Result<Loaded, String> {
    let path = crate::plugins::resolve(plugin_name, &config.plugins.directories)?;
    let (loaded, rejected) = registry.get(runtime, plugin_name, &path, &config.plugins)?;
    if let Some(rejected) = rejected {
        tracing::warn!(plugin = %plugin_name, %rejected, running = %loaded.sha256,
            "running the previous version of the plugin");
    }
    Ok(loaded)
}

/// Check the job's config section with its exporter and build its sandbox.
fn plugin_collector(
    runtime: &Runtime,
    config: &Config,
    job: &ScrapeConfig,
    plugin_name: &str,
    loaded: &Loaded,
) -> Result<Collector, String> {
    let Component::Exporter(entry) = &loaded.component else {
        return Err(format!(
            "plugin {plugin_name} is a `{}` component; a job without `kubernetes:` needs an exporter",
            loaded.component.world()
        ));
    };
    let timeout = job.timeout(&config.global);
    let sandbox = Sandbox::for_job(runtime.paths(), &job.capabilities, &job.limits, timeout, &entry.requested_globs())
        .map_err(|e| e.to_string())
        .and_then(|sandbox| sandbox.with_network(job, timeout))?;
    warn_ungranted(&job.job_name, entry, &job.capabilities);
    let config_json = job.plugin_config_json()?;
    let check = entry.plugin.check_config(&Sandbox::locked_down(runtime.paths(), LOAD_CALL_TIMEOUT), &config_json);
    if let Err(failure) = check.result {
        return Err(format!("plugin {plugin_name} rejected its config section: {}", failure.message));
    }
    Ok(Collector::Plugin { plugin: entry.plugin.clone(), sandbox: Arc::new(sandbox), config_json: config_json.into() })
}

/// Check a kube-state job's config section with its plugin.
fn kube_state_collector(
    runtime: &Runtime,
    config: &Config,
    job: &ScrapeConfig,
    plugin_name: &str,
    loaded: &Loaded,
    telemetry: &Arc<crate::telemetry::Telemetry>,
) -> Result<Collector, String> {
    let Component::KubeState(plugin) = &loaded.component else {
        return Err(format!(
            "plugin {plugin_name} is a `{}` component; a job with `kubernetes:` needs a kube-state one",
            loaded.component.world()
        ));
    };
    let plugin = plugin.clone();
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
    let api = job.kubernetes.clone().unwrap_or_else(|| unreachable!("checked by the caller"));
    Ok(Collector::KubeState(Arc::new(
        crate::kube_state::KubeStateJob::new(&job.job_name, plugin, sandbox, config_json, api, telemetry.clone())
            .with_output_limit(job.body_size_limit.0),
    )))
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
