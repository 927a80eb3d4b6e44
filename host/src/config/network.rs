//! A job's network settings, with Prometheus' key names: `scheme`,
//! `tls_config`, `basic_auth`, `authorization`, plus `secrets` for plugins
//! that must hold a credential themselves (a MySQL password). The host reads
//! every file named here; plugins never see keys or credentials.

use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    #[default]
    Http,
    Https,
}

impl Scheme {
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// Prometheus' `tls_config`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM file of the CA(s) that sign the server's certificate. Without it
    /// the system's roots are used.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (chain) for mutual TLS.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// Name to verify the server's certificate against (and send as SNI)
    /// instead of the target's host.
    pub server_name: Option<String>,
    /// Accept any server certificate. For tests only.
    pub insecure_skip_verify: bool,
}

/// Prometheus' `basic_auth`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
}

/// Prometheus' `authorization`: `<type> <credentials>` in the Authorization header.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    #[serde(rename = "type", default = "bearer")]
    pub kind: String,
    pub credentials: Option<String>,
    pub credentials_file: Option<PathBuf>,
}

fn bearer() -> String {
    "Bearer".into()
}

/// Where the host reads one of a job's `secrets`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    /// A file whose content (without the trailing newline) is the secret.
    pub file: Option<PathBuf>,
    /// An environment variable of the agent.
    pub env: Option<String>,
}

/// Why a credential could not be read. Never contains the credential.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {what} from {path}: {source}")]
pub struct CredentialError {
    pub what: &'static str,
    pub path: String,
    #[source]
    pub source: std::io::Error,
}

/// Read a credential file, dropping one trailing newline (as Prometheus does
/// for `password_file` and `credentials_file`).
pub fn read_credential_file(what: &'static str, path: &Path) -> Result<String, CredentialError> {
    let text = std::fs::read_to_string(path).map_err(|source| CredentialError {
        what,
        path: path.display().to_string(),
        source,
    })?;
    let text = text.strip_suffix('\n').unwrap_or(&text);
    Ok(text.strip_suffix('\r').unwrap_or(text).to_string())
}

impl SecretSource {
    /// The secret's value, read now (a rotated file is picked up).
    pub fn read(&self) -> Result<String, CredentialError> {
        match (&self.file, &self.env) {
            (Some(file), _) => read_credential_file("secret", file),
            (None, Some(var)) => std::env::var(var).map_err(|e| CredentialError {
                what: "secret",
                path: format!("environment variable {var}"),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, e.to_string()),
            }),
            (None, None) => Err(CredentialError {
                what: "secret",
                path: "nowhere".into(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "neither file nor env is set"),
            }),
        }
    }
}

/// Problems in one job's network settings; `at` names the job.
pub fn validate(
    at: &str,
    scheme: Scheme,
    tls: Option<&TlsConfig>,
    basic_auth: Option<&BasicAuth>,
    authorization: Option<&Authorization>,
    secrets: &std::collections::BTreeMap<String, SecretSource>,
    http_granted: bool,
) -> Vec<String> {
    let mut problems = Vec::new();
    let needs_http = scheme == Scheme::Https || tls.is_some() || basic_auth.is_some() || authorization.is_some();
    if needs_http && !http_granted {
        problems.push(format!(
            "{at}: scheme, tls_config, basic_auth and authorization apply to the plugin's HTTP requests; \
             grant them with capabilities: {{http: true}}"
        ));
    }
    if let Some(tls) = tls {
        for (key, file) in [("ca_file", &tls.ca_file), ("cert_file", &tls.cert_file), ("key_file", &tls.key_file)] {
            if let Some(file) = file
                && let Err(e) = std::fs::metadata(file)
            {
                problems.push(format!("{at}: tls_config.{key} {}: {e}", file.display()));
            }
        }
        if tls.cert_file.is_some() != tls.key_file.is_some() {
            problems.push(format!("{at}: tls_config needs both cert_file and key_file for a client certificate"));
        }
    }
    if let Some(auth) = basic_auth {
        if auth.password.is_some() && auth.password_file.is_some() {
            problems.push(format!("{at}: basic_auth: set password or password_file, not both"));
        }
        if auth.username.is_empty() {
            problems.push(format!("{at}: basic_auth.username is empty"));
        }
    }
    if let Some(auth) = authorization {
        if auth.credentials.is_some() == auth.credentials_file.is_some() {
            problems.push(format!("{at}: authorization: set exactly one of credentials and credentials_file"));
        }
        if auth.kind.eq_ignore_ascii_case("basic") {
            problems.push(format!("{at}: authorization.type Basic is not allowed; use basic_auth"));
        }
    }
    if basic_auth.is_some() && authorization.is_some() {
        problems.push(format!("{at}: basic_auth and authorization are mutually exclusive"));
    }
    for (name, source) in secrets {
        if source.file.is_some() == source.env.is_some() {
            problems.push(format!("{at}: secrets.{name}: set exactly one of file and env"));
        }
        if let Some(file) = &source.file
            && let Err(e) = std::fs::metadata(file)
        {
            problems.push(format!("{at}: secrets.{name}: {}: {e}", file.display()));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn credential_files_lose_one_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret\n").unwrap();
        assert_eq!(read_credential_file("password", &path).unwrap(), "s3cret");
        std::fs::write(&path, "two\n\n").unwrap();
        assert_eq!(read_credential_file("password", &path).unwrap(), "two\n");
        let missing = read_credential_file("password", &dir.path().join("nope")).unwrap_err();
        assert!(missing.to_string().starts_with("cannot read password from "), "{missing}");
    }

    #[test]
    fn network_settings_need_the_http_capability_and_consistent_keys() {
        let tls = TlsConfig { cert_file: Some("/nonexistent.crt".into()), ..Default::default() };
        let auth = Authorization { kind: "Basic".into(), credentials: None, credentials_file: None };
        let basic = BasicAuth { username: "u".into(), password: Some("p".into()), password_file: Some("/x".into()) };
        let secrets = BTreeMap::from([("password".into(), SecretSource { file: None, env: None })]);
        let problems = validate("job", Scheme::Https, Some(&tls), Some(&basic), Some(&auth), &secrets, false);
        let all = problems.join("\n");
        for expected in [
            "grant them with capabilities: {http: true}",
            "tls_config.cert_file /nonexistent.crt",
            "needs both cert_file and key_file",
            "set password or password_file, not both",
            "set exactly one of credentials and credentials_file",
            "type Basic is not allowed",
            "mutually exclusive",
            "secrets.password: set exactly one of file and env",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in\n{all}");
        }
        assert!(validate("job", Scheme::Http, None, None, None, &BTreeMap::new(), false).is_empty());
    }
}
