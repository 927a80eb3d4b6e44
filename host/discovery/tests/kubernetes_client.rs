//! Client construction from `ClientConfig`: api_server, kubeconfig file,
//! bearer token file, and clear errors for bad settings.

mod kubernetes_common;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kubernetes_common::*;
use wasmon_discovery::kubernetes::{ClientConfig, ClientError, build_client};

#[tokio::test]
async fn bearer_token_file_is_sent() {
    let server = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret-token\n").unwrap();
    let cfg = ClientConfig { api_server: Some(server.url()), bearer_token_file: Some(token), ..Default::default() };
    let client = build_client(&cfg).await.expect("client");
    let pods: Api<Pod> = Api::all(client);
    pods.list(&Default::default()).await.expect("list");
    // The trailing newline an editor leaves is not part of the token.
    assert_eq!(server.last_authorization().as_deref(), Some("Bearer s3cret-token"));

    // A file without whitespace is handed to kube, which re-reads it.
    let exact = dir.path().join("exact");
    std::fs::write(&exact, "exact-token").unwrap();
    let cfg = ClientConfig { api_server: Some(server.url()), bearer_token_file: Some(exact), ..Default::default() };
    let pods: Api<Pod> = Api::all(build_client(&cfg).await.expect("client"));
    pods.list(&Default::default()).await.expect("list");
    assert_eq!(server.last_authorization().as_deref(), Some("Bearer exact-token"));
}

#[tokio::test]
async fn kubeconfig_file_is_used() {
    let server = fake().await;
    server.apply("pods", fixtures::pod("default", "a", "n", "10.0.0.1")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\nusers:\n- name: me\n  user:\n    token: from-kubeconfig\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: me\n    namespace: default\ncurrent-context: fake\n",
        server.url()
    );
    std::fs::write(&path, kubeconfig).unwrap();
    let cfg = ClientConfig { kubeconfig_file: Some(path), ..Default::default() };
    let client = build_client(&cfg).await.expect("client from kubeconfig");
    let pods: Api<Pod> = Api::default_namespaced(client);
    assert_eq!(pods.list(&Default::default()).await.unwrap().items.len(), 1);
    assert_eq!(server.last_authorization().as_deref(), Some("Bearer from-kubeconfig"));
}

async fn error_of(cfg: &ClientConfig) -> ClientError {
    match build_client(cfg).await {
        Ok(_) => panic!("expected {cfg:?} to fail"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn bad_settings_fail_with_the_path() {
    let missing = ClientConfig {
        api_server: Some("https://127.0.0.1:1".into()),
        bearer_token_file: Some("/nonexistent/token".into()),
        ..Default::default()
    };
    let err = error_of(&missing).await;
    assert!(matches!(err, ClientError::File { .. }));
    assert!(err.to_string().contains("/nonexistent/token"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "not a certificate").unwrap();
    let bad_ca =
        ClientConfig { api_server: Some("https://127.0.0.1:1".into()), ca_file: Some(ca), ..Default::default() };
    let err = error_of(&bad_ca).await;
    assert!(err.to_string().contains("ca.pem"), "{err}");

    let bad_kubeconfig = ClientConfig { kubeconfig_file: Some("/nonexistent/kubeconfig".into()), ..Default::default() };
    let err = error_of(&bad_kubeconfig).await;
    assert!(err.to_string().contains("/nonexistent/kubeconfig"), "{err}");
}
