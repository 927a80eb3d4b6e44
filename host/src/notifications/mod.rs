//! Where alerts go once rules fire, and the running alerting setup: the rule
//! manager over the store, Alertmanagers' v2 API, and the built-in notifier
//! (crate `wasmon-notify`) for setups without an Alertmanager.

pub mod alertmanager;

use crate::alerting::{AlertSink, GroupSpec, OutgoingAlert, RuleManager, RuleManagerOptions};
use crate::config::Config;
use crate::telemetry::Telemetry;
use alertmanager::AlertmanagerNotifier;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Sends every alert to each configured destination.
struct FanOut(Vec<Arc<dyn AlertSink>>);

impl AlertSink for FanOut {
    fn send(&self, alerts: Vec<OutgoingAlert>) {
        if let Some((last, rest)) = self.0.split_last() {
            for sink in rest {
                sink.send(alerts.clone());
            }
            last.send(alerts);
        }
    }
}

/// The built-in notifier as a sink: Prometheus adds external labels in its
/// notifier, so this does too.
struct BuiltinSink {
    notifier: wasmon_notify::Notifier,
    external_labels: BTreeMap<String, String>,
}

fn utc(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl AlertSink for BuiltinSink {
    fn send(&self, alerts: Vec<OutgoingAlert>) {
        let alerts = alerts
            .into_iter()
            .map(|a| {
                let mut labels = a.labels;
                for (k, v) in &self.external_labels {
                    labels.entry(k.clone()).or_insert_with(|| v.clone());
                }
                wasmon_notify::Alert {
                    labels,
                    annotations: a.annotations,
                    starts_at: utc(a.starts_at_ms),
                    ends_at: Some(utc(a.ends_at_ms)),
                    generator_url: a.generator_url,
                }
            })
            .collect();
        self.notifier.push(alerts);
    }
}

/// The built-in notifier's config from the agent config's `notifier:`
/// section (Alertmanager's format), validated.
pub fn builtin_config(config: &Config, external_url: &str) -> Result<Option<wasmon_notify::Config>, String> {
    let Some(section) = &config.notifier else { return Ok(None) };
    let text = serde_yaml_ng::to_string(section).map_err(|e| format!("notifier: {e}"))?;
    let mut parsed = wasmon_notify::Config::from_yaml(&text).map_err(|e| format!("notifier: {e}"))?;
    parsed.validate().map_err(|e| format!("notifier: {}", e.problems().join("; ")))?;
    parsed.external_url = external_url.to_string();
    Ok(Some(parsed))
}

/// Every rule group the config asks for: `rule_files` and `plugin_rules`.
pub fn load_rules(config: &Config, config_dir: Option<&std::path::Path>) -> Result<Vec<GroupSpec>, String> {
    let mut groups = crate::alerting::load_rule_files(&config.rule_files, config_dir).map_err(|e| e.to_string())?;
    for plugin in &config.plugin_rules {
        let (name, text) = crate::plugins::plugin_rules(plugin, &config.plugins.directories)?;
        groups.extend(crate::alerting::parse_rules(&name, &text).map_err(|problems| problems.join("\n"))?);
    }
    Ok(groups)
}

/// The running alerting setup.
pub struct Alerting {
    pub manager: RuleManager,
    pub builtin: Option<wasmon_notify::Notifier>,
    config: Config,
    config_dir: Option<PathBuf>,
    telemetry: Arc<Telemetry>,
}

impl Alerting {
    /// Start the rule manager and the notifiers; `None` when there are no
    /// rules and no notifier to run. Must be called inside the runtime.
    pub fn start(
        config: &Config,
        config_dir: Option<PathBuf>,
        db: Arc<wasmon_storage::Db>,
        telemetry: Arc<Telemetry>,
        external_url: &str,
    ) -> Result<Option<Arc<Self>>, String> {
        let groups = load_rules(config, config_dir.as_deref())?;
        let builtin_config = builtin_config(config, external_url)?;
        if groups.is_empty() && builtin_config.is_none() {
            return Ok(None);
        }
        let mut sinks: Vec<Arc<dyn AlertSink>> = Vec::new();
        if let Some(am) = AlertmanagerNotifier::new(
            &config.alerting.alertmanagers,
            &config.global.external_labels,
            telemetry.clone(),
        )? {
            am.start();
            sinks.push(Arc::new(am));
        }
        let builtin = match builtin_config {
            Some(c) => {
                let notifier =
                    wasmon_notify::Notifier::new(c, &db.dir().join("notifier")).map_err(|e| e.to_string())?;
                notifier.start();
                sinks.push(Arc::new(BuiltinSink {
                    notifier: notifier.clone(),
                    external_labels: config.global.external_labels.clone(),
                }));
                spawn_notifier_metrics(notifier.clone(), telemetry.clone());
                Some(notifier)
            }
            None => None,
        };
        let options = RuleManagerOptions {
            default_interval: config.global.evaluation_interval.0,
            external_labels: config.global.external_labels.clone(),
            external_url: external_url.to_string(),
            ..Default::default()
        };
        let manager = RuleManager::new(db, Arc::new(FanOut(sinks)), options).map_err(|e| e.to_string())?;
        tracing::info!(
            groups = groups.len(),
            rules = groups.iter().map(|g| g.rules.len()).sum::<usize>(),
            "rules loaded"
        );
        manager.update(groups);
        Ok(Some(Arc::new(Self { manager, builtin, config: config.clone(), config_dir, telemetry })))
    }

    /// Re-read the rule files (and the notifier section); a broken file keeps
    /// the running rules and returns the problem. Blocks briefly.
    pub fn reload(&self) -> Result<(), String> {
        let result = load_rules(&self.config, self.config_dir.as_deref()).map(|groups| {
            let count = groups.len();
            self.manager.update(groups);
            count
        });
        let (label, value) = match &result {
            Ok(groups) => {
                tracing::info!(groups, "rules reloaded");
                ("success", 1.0)
            }
            Err(e) => {
                tracing::error!(error = %e, "rule reload failed; the previous rules keep running");
                ("failure", 0.0)
            }
        };
        self.telemetry.set(
            "wasmon_rules_last_reload_successful",
            "Whether the last rule reload succeeded (1) or not (0).",
            &[],
            value,
        );
        self.telemetry.inc("wasmon_rules_reloads_total", "Rule reloads, by result.", &[("result", label)], 1.0);
        result.map(|_| ())
    }

    /// The files whose changes trigger a reload.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        self.config
            .rule_files
            .iter()
            .map(|p| {
                let p = PathBuf::from(p);
                match (&self.config_dir, p.is_relative()) {
                    (Some(dir), true) => dir.join(p),
                    _ => p,
                }
            })
            .collect()
    }
}

/// Export the built-in notifier's counters as agent metrics.
fn spawn_notifier_metrics(notifier: wasmon_notify::Notifier, telemetry: Arc<Telemetry>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            let stats = notifier.stats();
            for (receiver, r) in &stats.receivers {
                telemetry.set_counter(
                    "wasmon_notifier_notifications_total",
                    "Notifications the built-in notifier delivered, by receiver.",
                    &[("receiver", receiver)],
                    r.notifications_sent as f64,
                );
                telemetry.set_counter(
                    "wasmon_notifier_notifications_failed_total",
                    "Failed notification attempts of the built-in notifier (each retried), by receiver.",
                    &[("receiver", receiver)],
                    r.notifications_failed as f64,
                );
            }
            telemetry.set(
                "wasmon_notifier_alerts",
                "Firing alerts the built-in notifier holds.",
                &[],
                stats.alerts_firing as f64,
            );
            telemetry.set(
                "wasmon_notifier_silences",
                "Active silences of the built-in notifier.",
                &[],
                stats.silences_active as f64,
            );
        }
    });
}
