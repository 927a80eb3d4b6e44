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

/// Sends every alert to each configured destination. The Alertmanager
/// sink can be swapped by a config reload.
struct FanOut {
    alertmanagers: std::sync::RwLock<Option<Arc<AlertmanagerNotifier>>>,
    builtin: Option<Arc<BuiltinSink>>,
}

impl AlertSink for FanOut {
    fn send(&self, alerts: Vec<OutgoingAlert>) {
        let am = self.alertmanagers.read().unwrap_or_else(|p| p.into_inner()).clone();
        match (am, &self.builtin) {
            (Some(am), Some(builtin)) => {
                am.send(alerts.clone());
                builtin.send(alerts);
            }
            (Some(am), None) => am.send(alerts),
            (None, Some(builtin)) => builtin.send(alerts),
            (None, None) => {}
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
    sinks: Arc<FanOut>,
    /// The Alertmanager queue's task, replaced when its config changes.
    alertmanager_task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    config: std::sync::Mutex<Config>,
    config_dir: Option<PathBuf>,
    telemetry: Arc<Telemetry>,
}

/// What of the alerting config a reload can apply in place.
fn alertmanager_settings(config: &Config) -> String {
    format!("{:?} {:?}", config.alerting.alertmanagers, config.global.external_labels)
}

impl Alerting {
    /// Start the rule manager and the notifiers (always, so a reload can
    /// add rules later). Must be called inside the runtime.
    pub fn start(
        config: &Config,
        config_dir: Option<PathBuf>,
        db: Arc<wasmon_storage::Db>,
        telemetry: Arc<Telemetry>,
        external_url: &str,
    ) -> Result<Option<Arc<Self>>, String> {
        let groups = load_rules(config, config_dir.as_deref())?;
        let builtin_config = builtin_config(config, external_url)?;
        let (alertmanagers, alertmanager_task) = match AlertmanagerNotifier::new(
            &config.alerting.alertmanagers,
            &config.global.external_labels,
            telemetry.clone(),
        )? {
            Some(am) => {
                let task = am.start();
                (Some(Arc::new(am)), Some(task))
            }
            None => (None, None),
        };
        let (builtin, builtin_sink) = match builtin_config {
            Some(c) => {
                let notifier =
                    wasmon_notify::Notifier::new(c, &db.dir().join("notifier")).map_err(|e| e.to_string())?;
                notifier.start();
                spawn_notifier_metrics(notifier.clone(), telemetry.clone());
                let sink = Arc::new(BuiltinSink {
                    notifier: notifier.clone(),
                    external_labels: config.global.external_labels.clone(),
                });
                (Some(notifier), Some(sink))
            }
            None => (None, None),
        };
        let sinks = Arc::new(FanOut { alertmanagers: std::sync::RwLock::new(alertmanagers), builtin: builtin_sink });
        let options = RuleManagerOptions {
            default_interval: config.global.evaluation_interval.0,
            external_labels: config.global.external_labels.clone(),
            external_url: external_url.to_string(),
            ..Default::default()
        };
        let manager = RuleManager::new(db, sinks.clone(), options).map_err(|e| e.to_string())?;
        tracing::info!(
            groups = groups.len(),
            rules = groups.iter().map(|g| g.rules.len()).sum::<usize>(),
            "rules loaded"
        );
        manager.update(groups);
        Ok(Some(Arc::new(Self {
            manager,
            builtin,
            sinks,
            alertmanager_task: std::sync::Mutex::new(alertmanager_task),
            config: std::sync::Mutex::new(config.clone()),
            config_dir,
            telemetry,
        })))
    }

    /// Check everything of `config` that `apply_config` would apply,
    /// without applying it: the rule files, the Alertmanager section.
    /// Returns the rules, and notes on what needs a restart.
    pub fn prepare(&self, config: &Config, external_url: &str) -> Result<PreparedAlerting, String> {
        let groups = load_rules(config, self.config_dir.as_deref())?;
        let current = self.config.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut notes = Vec::new();
        if format!("{:?}", builtin_config(config, external_url)?)
            != format!("{:?}", builtin_config(&current, external_url)?)
        {
            notes.push("notifier: changes to the built-in notifier take effect after a restart".to_string());
        }
        let alertmanagers = if alertmanager_settings(config) != alertmanager_settings(&current) {
            Some(AlertmanagerNotifier::new(
                &config.alerting.alertmanagers,
                &config.global.external_labels,
                self.telemetry.clone(),
            )?)
        } else {
            None
        };
        if config.global.evaluation_interval != current.global.evaluation_interval {
            notes.push("global.evaluation_interval: takes effect for rule groups after a restart".to_string());
        }
        Ok(PreparedAlerting { groups, alertmanagers, notes })
    }

    /// Switch to a prepared config: new rules (alerts that stay keep their
    /// state), a new Alertmanager queue if its section changed.
    pub fn apply_config(&self, config: &Config, prepared: PreparedAlerting) {
        let count = prepared.groups.len();
        self.manager.update(prepared.groups);
        if let Some(alertmanagers) = prepared.alertmanagers {
            let task = alertmanagers.as_ref().map(|am| am.start());
            let new = alertmanagers.map(Arc::new);
            *self.sinks.alertmanagers.write().unwrap_or_else(|p| p.into_inner()) = new;
            let old = std::mem::replace(&mut *self.alertmanager_task.lock().unwrap_or_else(|p| p.into_inner()), task);
            if let Some(old) = old {
                old.abort();
            }
            tracing::info!("alertmanagers reconfigured");
        }
        *self.config.lock().unwrap_or_else(|p| p.into_inner()) = config.clone();
        self.count_reload(&Ok(count));
    }

    fn count_reload(&self, result: &Result<usize, String>) {
        let (label, value) = match result {
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
    }

    /// The files whose changes trigger a reload.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        let config = self.config.lock().unwrap_or_else(|p| p.into_inner()).clone();
        config
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

/// A config's alerting part, checked and ready to apply.
pub struct PreparedAlerting {
    groups: Vec<GroupSpec>,
    /// `Some` when the Alertmanager section changed (`Some(None)`: removed).
    alertmanagers: Option<Option<AlertmanagerNotifier>>,
    /// What this reload cannot apply.
    pub notes: Vec<String>,
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
