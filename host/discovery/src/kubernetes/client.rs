//! Building a `kube::Client` from [`ClientConfig`].

use super::config::ClientConfig;
use kube::config::{KubeConfigOptions, Kubeconfig};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("api_server {url:?} is not a valid URL: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("api_server and kubeconfig_file cannot be used together")]
    Conflicting,
    #[error("kubeconfig {path}: {source}")]
    Kubeconfig {
        path: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("in-cluster config (no api_server or kubeconfig_file given): {0}")]
    InCluster(#[source] kube::config::InClusterError),
    #[error("{path}: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("creating the Kubernetes client: {0}")]
    Client(#[source] kube::Error),
}

/// A `kube::Config` for these settings, without connecting.
pub async fn kube_config(cfg: &ClientConfig) -> Result<kube::Config, ClientError> {
    let mut config = match (&cfg.api_server, &cfg.kubeconfig_file) {
        (Some(_), Some(_)) => return Err(ClientError::Conflicting),
        (Some(url), None) => {
            let uri = url
                .parse::<http::Uri>()
                .map_err(|e| ClientError::BadUrl { url: url.clone(), reason: e.to_string() })?;
            if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
                return Err(ClientError::BadUrl {
                    url: url.clone(),
                    reason: "expected http://host:port or https://host:port".into(),
                });
            }
            kube::Config::new(uri)
        }
        (None, Some(path)) => {
            let err = |source| ClientError::Kubeconfig { path: path.display().to_string(), source };
            let kubeconfig = Kubeconfig::read_from(path).map_err(err)?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.map_err(err)?
        }
        (None, None) => kube::Config::incluster().map_err(ClientError::InCluster)?,
    };
    if let Some(ca) = &cfg.ca_file {
        let pem = std::fs::read(ca).map_err(|source| ClientError::File { path: ca.display().to_string(), source })?;
        let certs = pem_certs(&pem).map_err(|reason| ClientError::File {
            path: ca.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, reason),
        })?;
        config.root_cert = Some(certs);
        config.root_cert_file = Some(ca.clone());
    }
    if let Some(cert) = &cfg.cert_file {
        config.auth_info.client_certificate = Some(cert.display().to_string());
    }
    if let Some(key) = &cfg.key_file {
        config.auth_info.client_key = Some(key.display().to_string());
    }
    if let Some(token) = &cfg.bearer_token_file {
        // Read now so a typo fails at start, not on the first request.
        let text = std::fs::read_to_string(token)
            .map_err(|source| ClientError::File { path: token.display().to_string(), source })?;
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(ClientError::File {
                path: token.display().to_string(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, "the bearer token file is empty"),
            });
        }
        if trimmed.len() == text.len() {
            // kube re-reads the file, so rotated service-account tokens work.
            config.auth_info.token_file = Some(token.display().to_string());
        } else {
            // kube sends the file as is, and a trailing newline is not a valid
            // header value: use the trimmed text (without rotation).
            tracing::warn!(path = %token.display(), "bearer token file has surrounding whitespace; using it trimmed, and it will not be re-read");
            config.auth_info.token = Some(trimmed.to_string().into());
        }
    }
    if cfg.insecure_skip_verify {
        config.accept_invalid_certs = true;
    }
    Ok(config)
}

/// The DER certificates in a PEM bundle (what `kube::Config::root_cert` holds).
fn pem_certs(pem: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let certs: Result<Vec<Vec<u8>>, _> =
        CertificateDer::pem_slice_iter(pem).map(|c| c.map(|c| c.as_ref().to_vec())).collect();
    match certs {
        Ok(c) if c.is_empty() => Err("no PEM certificate found".into()),
        Ok(c) => Ok(c),
        Err(e) => Err(format!("{e:?}")),
    }
}

/// Connect settings into a client (no request is made yet).
pub async fn build_client(cfg: &ClientConfig) -> Result<kube::Client, ClientError> {
    let config = kube_config(cfg).await?;
    kube::Client::try_from(config).map_err(ClientError::Client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bad_urls_are_rejected() {
        for url in ["not a url", "ftp://x:1", "/just/a/path"] {
            let cfg = ClientConfig { api_server: Some(url.into()), ..Default::default() };
            assert!(matches!(kube_config(&cfg).await, Err(ClientError::BadUrl { .. })), "{url}");
        }
        let cfg = ClientConfig {
            api_server: Some("http://127.0.0.1:1".into()),
            kubeconfig_file: Some("/nonexistent".into()),
            ..Default::default()
        };
        assert!(matches!(kube_config(&cfg).await, Err(ClientError::Conflicting)));
    }

    #[test]
    fn pem_bundle_decodes() {
        let pem = b"-----BEGIN CERTIFICATE-----\nAAEC\nAw==\n-----END CERTIFICATE-----\n";
        assert_eq!(pem_certs(pem), Ok(vec![vec![0, 1, 2, 3]]));
        assert!(pem_certs(b"garbage").is_err());
    }
}
