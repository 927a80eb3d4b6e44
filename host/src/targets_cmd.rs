//! `wasmon targets --config FILE`: run the config's discovery once, apply
//! its relabeling, and print every job's targets and every dropped target
//! with the step that dropped it, without loading plugins or scraping.

use crate::config::Config;
use crate::targets::JobTargets;
use std::path::Path;
use std::time::Duration;
use wasmon_discovery::file::FileProvider;

/// Print each job's targets; `wait` bounds how long Kubernetes discovery
/// may take for its first answer.
pub async fn run(file: &Path, wait: Duration) -> anyhow::Result<()> {
    let config = Config::load(file).map_err(|e| anyhow::anyhow!("{e}"))?;
    for job in &config.scrape_configs {
        let discovery = crate::agent::discovery_of(&config, job).map_err(anyhow::Error::msg)?;
        let mut targets = JobTargets::default();
        let mut errors = Vec::new();
        let (defaults, relabeling) = (&discovery.defaults, &discovery.relabeling);
        targets.update(0, discovery.static_groups.clone(), defaults, relabeling);
        let mut provider = 1;
        for spec in &discovery.file_sd {
            match FileProvider::new(spec) {
                Ok(mut p) => {
                    targets.update(provider, p.refresh(), defaults, relabeling);
                    let status = p.status();
                    let status = status.lock().unwrap_or_else(|p| p.into_inner());
                    errors.extend(status.files.values().filter_map(|r| r.as_ref().err().cloned()));
                }
                Err(e) => errors.push(format!("file_sd_configs: {e}")),
            }
            provider += 1;
        }
        for sd in &discovery.kubernetes_sd {
            let (groups, problems) = sd.clone().first_groups(wait).await;
            targets.update(provider, groups, defaults, relabeling);
            errors.extend(problems);
            provider += 1;
        }
        print!("{}", render(&job.job_name, job.plugin.as_deref(), &targets, &errors));
    }
    Ok(())
}

/// The terminal report of one job.
pub fn render(job: &str, plugin: Option<&str>, targets: &JobTargets, errors: &[String]) -> String {
    let collector = plugin.map(|p| format!("plugin {p}")).unwrap_or_else(|| "native scrape".into());
    let mut out =
        format!("job {job} ({collector}): {} active, {} dropped\n", targets.active.len(), targets.dropped.len());
    for error in errors {
        out.push_str(&format!("  discovery error: {error}\n"));
    }
    for t in targets.active.values() {
        let labels: Vec<String> = t.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        let endpoint = if plugin.is_some() { t.address.clone() } else { t.url() };
        out.push_str(&format!("  active   {endpoint}  {{{}}}\n", labels.join(", ")));
    }
    for d in &targets.dropped {
        let address = d.discovered.get("__address__").map(String::as_str).unwrap_or("<no address>");
        out.push_str(&format!("  dropped  {address}  by {}\n", d.reason));
    }
    out
}
