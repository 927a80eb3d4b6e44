//! Kubernetes for scrape jobs: the API client from a job's settings, and
//! `kubernetes_sd_configs` entries turned into running discovery.

use crate::config::{Authorization, KubernetesSdConfig, TlsConfig};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmon_discovery::kubernetes::{self as kube_sd, ClientConfig, NamespaceDiscovery, Role, Selector};
use wasmon_discovery::{GroupSender, TargetGroup};

/// Wait before retrying a client that could not be built (a kubeconfig not
/// there yet, an in-cluster token not mounted yet).
const CLIENT_RETRY: Duration = Duration::from_secs(10);

/// The client settings of `kubernetes_sd_configs` or a kube-state job's
/// `kubernetes:` section, in the discovery crate's terms.
pub fn client_config(
    api_server: Option<&String>,
    kubeconfig_file: Option<&PathBuf>,
    tls: Option<&TlsConfig>,
    authorization: Option<&Authorization>,
    bearer_token_file: Option<&PathBuf>,
) -> ClientConfig {
    ClientConfig {
        api_server: api_server.cloned(),
        kubeconfig_file: kubeconfig_file.cloned(),
        ca_file: tls.and_then(|t| t.ca_file.clone()),
        cert_file: tls.and_then(|t| t.cert_file.clone()),
        key_file: tls.and_then(|t| t.key_file.clone()),
        insecure_skip_verify: tls.is_some_and(|t| t.insecure_skip_verify),
        bearer_token_file: bearer_token_file
            .cloned()
            .or_else(|| authorization.and_then(|a| a.credentials_file.clone())),
    }
}

/// `$NAME` and `${NAME}` replaced by the agent's environment, so a
/// DaemonSet's `spec.nodeName=$NODE_NAME` selector names its own node.
/// Unset variables become empty, as in a shell.
pub fn expand_env(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, tail) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], &braced[end + 1..]),
                None => ("", after),
            }
        } else {
            let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        if name.is_empty() {
            out.push('$');
            rest = after;
        } else {
            out.push_str(&std::env::var(name).unwrap_or_default());
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

/// One `kubernetes_sd_configs` entry, ready to run.
#[derive(Debug, Clone)]
pub struct KubernetesSd {
    pub config: KubernetesSdConfig,
}

impl KubernetesSd {
    /// The discovery crate's form of the entry (config validation has
    /// checked the role names).
    pub fn sd_config(&self) -> Result<kube_sd::KubernetesSdConfig, String> {
        let role = |name: &str| Role::parse(name).ok_or_else(|| format!("unknown role {name:?}"));
        let mut sd = kube_sd::KubernetesSdConfig::new(role(&self.config.role)?);
        sd.namespaces = NamespaceDiscovery {
            names: self.config.namespaces.names.clone(),
            own_namespace: self.config.namespaces.own_namespace,
        };
        sd.selectors = self
            .config
            .selectors
            .iter()
            .map(|s| {
                Ok(Selector {
                    role: role(&s.role)?,
                    label: s.label.as_deref().map(expand_env),
                    field: s.field.as_deref().map(expand_env),
                })
            })
            .collect::<Result<_, String>>()?;
        sd.attach_node_metadata = self.config.attach_metadata.node;
        sd.validate().map_err(|e| e.to_string())?;
        Ok(sd)
    }

    fn client_config(&self) -> ClientConfig {
        let c = &self.config;
        client_config(
            c.api_server.as_ref(),
            c.kubeconfig_file.as_ref(),
            c.tls_config.as_ref(),
            c.authorization.as_ref(),
            c.bearer_token_file.as_ref(),
        )
    }

    /// Watch until the receiver goes away. Problems go to `errors` (shown
    /// in the targets view) and are retried; a config the discovery crate
    /// refuses stops this entry only.
    pub async fn run(self, tx: GroupSender, errors: Arc<Mutex<Vec<String>>>) {
        let role = self.config.role.clone();
        let set_error = |e: Option<String>| {
            let mut errors = errors.lock().unwrap_or_else(|p| p.into_inner());
            errors.retain(|x| !x.starts_with(&format!("kubernetes_sd_configs role {role}:")));
            if let Some(e) = e {
                tracing::warn!(role = %role, error = %e, "kubernetes discovery");
                errors.push(format!("kubernetes_sd_configs role {role}: {e}"));
            }
        };
        let sd = match self.sd_config() {
            Ok(sd) => sd,
            Err(e) => return set_error(Some(e)),
        };
        let client = loop {
            match kube_sd::build_client(&self.client_config()).await {
                Ok(client) => break client,
                Err(e) => {
                    set_error(Some(e.to_string()));
                    tokio::time::sleep(CLIENT_RETRY).await;
                }
            }
        };
        set_error(None);
        if let Err(e) = kube_sd::run(client, sd, tx).await {
            set_error(Some(e.to_string()));
        }
    }

    /// The groups discovery sends within `wait` of starting (for `wasmon
    /// targets`), and the errors it hit.
    pub async fn first_groups(self, wait: Duration) -> (Vec<TargetGroup>, Vec<String>) {
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let task = tokio::spawn(self.run(tx, errors.clone()));
        let mut groups = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        // After the first answer, a short quiet period means the initial
        // lists are in.
        let mut quiet_until = deadline;
        while let Ok(Some(batch)) = tokio::time::timeout_at(quiet_until.min(deadline), rx.recv()).await {
            groups.extend(batch);
            quiet_until = tokio::time::Instant::now() + Duration::from_millis(500);
        }
        task.abort();
        let errors = errors.lock().unwrap_or_else(|p| p.into_inner()).clone();
        (groups, errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_expand_the_environment() {
        // Unset on purpose: a name no environment has.
        let name = "WASMON_TEST_NODE_NAME_EXPAND";
        assert_eq!(expand_env(&format!("spec.nodeName=${name}")), "spec.nodeName=");
        assert_eq!(expand_env("a=$"), "a=$");
        assert_eq!(expand_env("plain"), "plain");
        assert_eq!(expand_env("${HOME}/x"), format!("{}/x", std::env::var("HOME").unwrap_or_default()));
        assert_eq!(expand_env("x=${UNCLOSED"), "x=${UNCLOSED");
    }
}
