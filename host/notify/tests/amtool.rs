//! End to end with the real amtool 0.25 (Debian package prometheus-alertmanager)
//! against our router: alerts, silences (add, query, expire) and status.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::process::Command;

const AMTOOL: &str = "/usr/bin/amtool";

struct Am {
    url: String,
    home: std::path::PathBuf,
}

impl Am {
    /// Runs amtool; returns (success, stdout, stderr).
    async fn run(&self, args: &[&str]) -> (bool, String, String) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let (url, home) = (self.url.clone(), self.home.clone());
        tokio::task::spawn_blocking(move || {
            let out = Command::new(AMTOOL)
                .arg(format!("--alertmanager.url={url}"))
                .args(&args)
                // No user or system amtool config may change the flags.
                .env("HOME", &home)
                .env_remove("XDG_CONFIG_HOME")
                .output()
                .expect("run amtool");
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
        .await
        .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amtool_silences_and_alerts() {
    assert!(
        std::path::Path::new(AMTOOL).exists(),
        "{AMTOOL} is missing: install the Debian package prometheus-alertmanager (apt-get install prometheus-alertmanager)"
    );
    let (_hook, addr) = Hook::start().await;
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let yaml = format!(
        "route:\n  receiver: web\n  group_by: [alertname]\n  {TIMINGS}\n  routes:\n    - matchers: ['severity=\"page\"']\n      receiver: pager\nreceivers:\n  - name: web\n    webhook_configs: [{{url: 'http://{addr}/web'}}]\n  - name: pager\n    webhook_configs: [{{url: 'http://{addr}/pager'}}]\n"
    );
    let n = notifier(&yaml, dir.path());
    let api = serve(n.router()).await;
    let url = format!("http://{api}");
    let am = Am { url, home: home.path().to_path_buf() };

    // Alerts, posted by amtool itself.
    let (ok, _, err) =
        am.run(&["alert", "add", "alertname=Foo", "severity=page", "--annotation=summary=foo is down"]).await;
    assert!(ok, "alert add: {err}");
    let (ok, _, err) = am.run(&["alert", "add", "alertname=Bar", "--annotation=summary=bar is slow"]).await;
    assert!(ok, "alert add: {err}");
    let (ok, out, err) = am.run(&["alert", "query"]).await;
    assert!(ok, "alert query: {err}");
    assert!(out.contains("Foo") && out.contains("Bar") && out.contains("foo is down"), "{out}");
    assert!(!err.contains("different"), "version warning: {err}");

    // Silence Foo.
    let (ok, out, err) = am.run(&["silence", "add", "alertname=Foo", "--comment=x", "--duration=1h"]).await;
    assert!(ok, "silence add: {err}");
    let id = out.trim().to_string();
    assert_eq!(id.len(), 36, "silence id: {out:?}");
    let (ok, out, err) = am.run(&["silence", "query"]).await;
    assert!(ok, "silence query: {err}");
    assert!(out.contains(&id) && out.contains("alertname=\"Foo\""), "{out}");
    let (ok, out, _) = am.run(&["silence", "query", "-q", "alertname=Foo"]).await;
    assert!(ok);
    assert_eq!(out.trim(), id);
    let (ok, out, _) = am.run(&["silence", "query", "-q", "alertname=Other"]).await;
    assert!(ok);
    assert_eq!(out.trim(), "");
    let (ok, out, err) = am.run(&["silence", "query", "-o", "json"]).await;
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["id"], id.as_str());
    assert_eq!(v[0]["status"]["state"], "active");
    assert_eq!(v[0]["comment"], "x");

    // A silenced alert leaves the default (active) query and shows up with -s.
    let (_, out, _) = am.run(&["alert", "query"]).await;
    assert!(out.contains("Bar") && !out.contains("Foo"), "{out}");
    let (_, out, _) = am.run(&["alert", "query", "-s"]).await;
    assert!(out.contains("Foo") && !out.contains("Bar"), "{out}");
    let (ok, out, err) = am.run(&["alert", "query", "-a", "-s", "-o", "json", "alertname=Foo"]).await;
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["status"]["state"], "suppressed");
    assert_eq!(v[0]["status"]["silencedBy"][0], id.as_str());
    assert_eq!(v[0]["receivers"][0]["name"], "pager");
    let (ok, out, _) = am.run(&["alert", "query", "-a", "-s", "-r", "pag.*", "-o", "extended"]).await;
    assert!(ok);
    assert!(out.contains("Foo") && !out.contains("Bar"), "{out}");

    // Expire it.
    let (ok, _, err) = am.run(&["silence", "expire", &id]).await;
    assert!(ok, "silence expire: {err}");
    let (_, out, _) = am.run(&["silence", "query", "-q"]).await;
    assert_eq!(out.trim(), "");
    let (_, out, _) = am.run(&["silence", "query", "-q", "--expired"]).await;
    assert_eq!(out.trim(), id);
    let (_, out, _) = am.run(&["alert", "query"]).await;
    assert!(out.contains("Foo") && out.contains("Bar"), "{out}");

    // Status: amtool parses our config with Alertmanager's own loader.
    let (ok, out, err) = am.run(&["config", "routes"]).await;
    assert!(ok, "config routes: {err}");
    assert!(out.contains("web") && out.contains("pager"), "{out}");
    let (ok, out, err) = am.run(&["config", "routes", "test", "severity=page"]).await;
    assert!(ok, "config routes test: {err}");
    assert_eq!(out.trim(), "pager");
    let (ok, out, err) = am.run(&["cluster", "show"]).await;
    assert!(ok, "cluster show: {err}");
    assert!(out.contains("disabled"), "{out}");
}
