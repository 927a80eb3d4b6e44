//! Turning a config into running jobs: load each plugin once, ask it what it
//! needs, check its config section, and build each job's sandbox.

use crate::config::{CapabilitiesConfig, Config, FileGrant};
use crate::runtime::model::Capability;
use crate::runtime::{LoadedPlugin, Runtime, Sandbox};
use crate::scheduler::{Job, TargetSpec};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

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
pub fn build_jobs(runtime: &Runtime, config: &Config) -> Result<Vec<Job>, Vec<String>> {
    let mut problems = Vec::new();
    let mut loaded: HashMap<PathBuf, PluginEntry> = HashMap::new();
    let mut jobs = Vec::new();
    for job in &config.scrape_configs {
        let at = format!("job {:?}", job.job_name);
        let path = match crate::plugins::resolve(&job.plugin, &config.plugins.directories) {
            Ok(p) => p,
            Err(e) => {
                problems.push(format!("{at}: {e}"));
                continue;
            }
        };
        let entry = match loaded.get(&path) {
            Some(entry) => entry.clone(),
            None => match load_plugin(runtime, &job.plugin, &path) {
                Ok(entry) => {
                    tracing::info!(plugin = %job.plugin, path = %path.display(), version = %entry.info.version,
                        cache = ?entry.plugin.cache, "plugin loaded");
                    loaded.insert(path.clone(), entry.clone());
                    entry
                }
                Err(e) => {
                    problems.push(format!("{at}: {e}"));
                    continue;
                }
            },
        };
        let timeout = job.timeout(&config.global);
        let sandbox =
            match Sandbox::for_job(runtime.paths(), &job.capabilities, &job.limits, timeout, &entry.requested_globs())
                .map_err(|e| e.to_string())
                .and_then(|sandbox| sandbox.with_network(job, timeout))
            {
                Ok(s) => s,
                Err(e) => {
                    problems.push(format!("{at}: {e}"));
                    continue;
                }
            };
        warn_ungranted(&job.job_name, &entry, &job.capabilities);
        let config_json = match job.plugin_config_json() {
            Ok(c) => c,
            Err(e) => {
                problems.push(format!("{at}: {e}"));
                continue;
            }
        };
        let check = entry.plugin.check_config(&Sandbox::locked_down(runtime.paths(), LOAD_CALL_TIMEOUT), &config_json);
        if let Err(failure) = check.result {
            problems.push(format!("{at}: plugin {} rejected its config section: {}", job.plugin, failure.message));
            continue;
        }
        let targets = job
            .static_configs
            .iter()
            .flat_map(|sc| sc.targets.iter().map(move |t| TargetSpec::new(&job.job_name, t, &sc.labels)))
            .collect();
        jobs.push(Job {
            name: job.job_name.clone(),
            plugin: entry.plugin.clone(),
            sandbox,
            config_json: config_json.into(),
            interval: job.interval(&config.global),
            timeout,
            sample_limit: job.limits.sample_limit,
            params: job.params.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            targets,
        });
    }
    if problems.is_empty() { Ok(jobs) } else { Err(problems) }
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
