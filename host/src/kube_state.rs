//! kube-state jobs: the host runs the watches a kube-state plugin asks for
//! (through the discovery crate's object feed), applies every batch of
//! object changes to the job's one long-lived plugin instance, and answers
//! scrapes from that instance's `collect`.
//!
//! With `leader_election`, only the agent holding the Lease watches and
//! reports; the others stand by with `up 1` and no series, and take over
//! (after a fresh re-list) when the lease moves to them.

use crate::config::KubernetesApiConfig;
use crate::runtime::kube_state::{Change, CollectedText, KubeStateInstance, LoadedKubeState, ObjectEvent, Resource};
use crate::runtime::model::MetricFamily;
use crate::runtime::{CallFailure, CallOutcome, FailureReason, Sandbox};
use crate::telemetry::Telemetry;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use wasmon_discovery::kubernetes::{self as kube_sd, FeedOptions, FeedResource, LeaderElectionConfig, LeaderElector};

/// Wait after a failed start (client, init, trapped instance) before the next.
const RESTART_BACKOFF: Duration = Duration::from_secs(5);

/// One kube-state job's plugin, instance and feed state.
pub struct KubeStateJob {
    pub job: String,
    plugin: LoadedKubeState,
    sandbox: Sandbox,
    config_json: String,
    api: KubernetesApiConfig,
    /// The live instance; `None` while standing by or restarting.
    instance: Arc<Mutex<Option<KubeStateInstance>>>,
    /// Why there is no instance, for the scrape's error.
    status: Arc<Mutex<String>>,
    telemetry: Arc<Telemetry>,
    /// Most bytes of text one `collect` may write (the job's
    /// `body_size_limit`, or the instance's memory limit).
    output_limit: usize,
}

impl std::fmt::Debug for KubeStateJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeStateJob").field("job", &self.job).finish_non_exhaustive()
    }
}

/// The object feed's watches for the kinds a kube-state plugin's `init`
/// asked for (with `rbac::feed_rules`, also what its service account needs).
pub fn feed_resources(resources: &[Resource]) -> Vec<FeedResource> {
    resources.iter().map(|r| FeedResource::new(&r.group, &r.version, &r.plural, &r.kind, r.namespaced)).collect()
}

/// The agent's name as a lease candidate and kube-state target:
/// `$POD_NAME` in a cluster, else the host name.
pub fn identity() -> String {
    std::env::var("POD_NAME")
        .ok()
        .filter(|n| !n.is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_string()))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "wasmon".into())
}

impl KubeStateJob {
    pub fn new(
        job: &str,
        plugin: LoadedKubeState,
        sandbox: Sandbox,
        config_json: String,
        api: KubernetesApiConfig,
        telemetry: Arc<Telemetry>,
    ) -> Self {
        let sandbox_memory = sandbox.memory_bytes;
        Self {
            job: job.into(),
            plugin,
            sandbox,
            config_json,
            api,
            instance: Arc::default(),
            status: Arc::new(Mutex::new("starting".into())),
            telemetry,
            output_limit: usize::try_from(sandbox_memory).unwrap_or(usize::MAX),
        }
    }

    /// Cap one `collect`'s text at `bytes` (0: the instance's memory limit),
    /// as `body_size_limit` caps a scraped body.
    pub fn with_output_limit(mut self, bytes: u64) -> Self {
        if bytes > 0 {
            self.output_limit = self.output_limit.min(usize::try_from(bytes).unwrap_or(usize::MAX));
        }
        self
    }

    pub fn plugin_name(&self) -> &str {
        &self.plugin.name
    }

    /// Check the plugin's config section on a throwaway instance.
    pub fn check_config(plugin: &LoadedKubeState, sandbox: &Sandbox, config: &str) -> Result<(), String> {
        let mut instance = plugin.instantiate(sandbox).map_err(|f| f.to_string())?;
        instance.check_config(config).result.map_err(|f| f.message)?;
        instance.init(config).result.map(|_| ()).map_err(|f| f.message)
    }

    /// Answer a scrape from the instance's state. Standing by (not the
    /// leader, or restarting) is a successful scrape with no series.
    pub fn collect(&self) -> CallOutcome<Vec<MetricFamily>> {
        let CallOutcome { result, report } = self.collect_text();
        let result = result.and_then(|text| {
            let families = text.families();
            self.recycle(text);
            families
        });
        CallOutcome { result, report }
    }

    /// Give a collect's text back to the instance once it has been read, so
    /// the next collect writes into the same memory.
    pub fn recycle(&self, text: CollectedText) {
        let mut guard = self.instance.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(instance) = guard.as_mut() {
            instance.recycle(text.into_buffer());
        }
    }

    /// [`collect`](Self::collect) as the plugin wrote it, before it is read
    /// into families.
    pub fn collect_text(&self) -> CallOutcome<CollectedText> {
        let mut guard = self.instance.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_mut() {
            Some(instance) => {
                let outcome = instance.collect_text(self.output_limit);
                if instance.is_poisoned() {
                    *guard = None;
                }
                outcome
            }
            None => {
                let status = self.status.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let report = Default::default();
                if status.starts_with("standby") {
                    CallOutcome { result: Ok(CollectedText::default()), report }
                } else {
                    CallOutcome {
                        result: Err(CallFailure { reason: FailureReason::PluginError, message: status }),
                        report,
                    }
                }
            }
        }
    }

    fn set_status(&self, status: impl Into<String>) {
        *self.status.lock().unwrap_or_else(|p| p.into_inner()) = status.into();
    }

    fn set_leader_gauge(&self, leading: bool) {
        self.telemetry.set(
            "wasmon_kube_state_leader",
            "1 while this agent holds the job's leader lease and reports its kube-state series.",
            &[("job", &self.job)],
            if leading { 1.0 } else { 0.0 },
        );
    }

    /// Run until dropped: elect, start, feed, and start again after a trap.
    pub async fn run(self: Arc<Self>) {
        let client_config = crate::kubernetes::client_config(
            self.api.api_server.as_ref(),
            self.api.kubeconfig_file.as_ref(),
            self.api.tls_config.as_ref(),
            self.api.authorization.as_ref(),
            self.api.bearer_token_file.as_ref(),
        );
        let client = loop {
            match kube_sd::build_client(&client_config).await {
                Ok(c) => break c,
                Err(e) => {
                    self.set_status(format!("kubernetes client: {e}"));
                    tracing::warn!(job = %self.job, error = %e, "kube-state: cannot build the Kubernetes client");
                    tokio::time::sleep(RESTART_BACKOFF).await;
                }
            }
        };
        // Without leader election the agent always leads; the sender is
        // kept so the channel never reports a change.
        let (_always_leading, always_rx) = watch::channel(true);
        let (_elector, mut leading) = match &self.api.leader_election {
            Some(le) => {
                let namespace = le
                    .lease_namespace
                    .clone()
                    .or_else(|| std::env::var("POD_NAMESPACE").ok().filter(|n| !n.is_empty()))
                    .unwrap_or_else(|| "default".into());
                let mut config = LeaderElectionConfig::new(
                    &namespace,
                    &le.lease_name,
                    &le.identity.clone().unwrap_or_else(identity),
                );
                config.lease_duration = le.lease_duration.0;
                config.renew_deadline = le.renew_deadline.0;
                config.retry_period = le.retry_period.0;
                match LeaderElector::start(client.clone(), config) {
                    Ok(elector) => {
                        let rx = elector.is_leader();
                        (Some(elector), rx)
                    }
                    Err(e) => {
                        self.set_status(format!("leader_election: {e}"));
                        return;
                    }
                }
            }
            None => (None, always_rx),
        };
        loop {
            // Stand by until we lead.
            self.set_leader_gauge(*leading.borrow());
            while !*leading.borrow_and_update() {
                self.set_status("standby: another agent holds the lease");
                self.set_leader_gauge(false);
                if leading.changed().await.is_err() {
                    return;
                }
            }
            self.set_leader_gauge(true);
            match self.serve(&client, &mut leading).await {
                Ok(()) => tracing::info!(job = %self.job, "kube-state: lost the lease; standing by"),
                Err(e) => {
                    tracing::warn!(job = %self.job, error = %e, "kube-state: restarting the plugin instance");
                    self.set_status(e);
                    tokio::time::sleep(RESTART_BACKOFF).await;
                }
            }
            *self.instance.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
    }

    /// Start an instance and feed it while we lead. `Ok` when leadership
    /// ends, `Err` when the instance failed.
    async fn serve(self: &Arc<Self>, client: &kube::Client, leading: &mut watch::Receiver<bool>) -> Result<(), String> {
        let (resources, instance) = {
            let this = self.clone();
            tokio::task::spawn_blocking(move || -> Result<(Vec<Resource>, KubeStateInstance), String> {
                let mut instance = this.plugin.instantiate(&this.sandbox).map_err(|f| format!("instantiate: {f}"))?;
                let resources = instance.init(&this.config_json).result.map_err(|f| format!("init: {f}"))?;
                Ok((resources, instance))
            })
            .await
            .map_err(|e| format!("init task: {e}"))??
        };
        *self.instance.lock().unwrap_or_else(|p| p.into_inner()) = Some(instance);
        let feed_resources = feed_resources(&resources);
        let options = FeedOptions {
            namespaces: (!self.api.namespaces.is_empty()).then(|| self.api.namespaces.clone()),
            ..Default::default()
        };
        let (tx, mut rx) = mpsc::channel(16);
        let feed = tokio::spawn(kube_sd::watch_objects(client.clone(), feed_resources, options, tx));
        let _abort_feed = AbortOnDrop(feed);
        tracing::info!(job = %self.job, plugin = %self.plugin.name, kinds = resources.len(), "kube-state: watching");
        loop {
            tokio::select! {
                batch = rx.recv() => {
                    let Some(batch) = batch else { return Err("the object feed ended".into()) };
                    self.apply(batch).await?;
                }
                changed = leading.changed() => {
                    if changed.is_err() || !*leading.borrow() {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Apply one batch on a blocking thread.
    async fn apply(self: &Arc<Self>, batch: Vec<kube_sd::ObjectEvent>) -> Result<(), String> {
        let events: Vec<ObjectEvent> = batch
            .into_iter()
            .map(|e| match e {
                kube_sd::ObjectEvent::Applied { resource, object } => {
                    ObjectEvent { change: Change::Applied, resource, object }
                }
                kube_sd::ObjectEvent::Deleted { resource, object } => {
                    ObjectEvent { change: Change::Deleted, resource, object }
                }
            })
            .collect();
        let count = events.len();
        let this = self.clone();
        let started = Instant::now();
        let outcome = tokio::task::spawn_blocking(move || {
            let mut guard = this.instance.lock().unwrap_or_else(|p| p.into_inner());
            let instance = guard.as_mut().ok_or_else(|| "no instance".to_string())?;
            let outcome = instance.apply(&events);
            Ok::<_, String>((outcome, instance.is_poisoned()))
        })
        .await
        .map_err(|e| format!("apply task: {e}"))??;
        let (outcome, poisoned) = outcome;
        self.telemetry.inc(
            "wasmon_kube_state_events_total",
            "Object changes applied to kube-state plugin instances.",
            &[("job", &self.job)],
            count as f64,
        );
        self.telemetry.observe(
            "wasmon_kube_state_apply_duration_seconds",
            "Time of one apply call of a kube-state plugin.",
            &[("job", &self.job)],
            started.elapsed().as_secs_f64(),
        );
        self.telemetry.set_max(
            "wasmon_plugin_memory_high_water_bytes",
            "Highest linear memory a plugin instance reached, in bytes.",
            &[("plugin", &self.plugin.name)],
            outcome.report.memory_high_water as f64,
        );
        match outcome.result {
            Ok(()) => Ok(()),
            // The plugin said some objects were bad; it logged which, and
            // kept the rest.
            Err(f) if !poisoned && f.reason == FailureReason::PluginError => {
                tracing::warn!(job = %self.job, error = %f, "kube-state: plugin refused part of a batch");
                Ok(())
            }
            Err(f) => Err(format!("apply: {f}")),
        }
    }
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
