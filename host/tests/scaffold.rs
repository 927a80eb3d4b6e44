//! `wasmon plugin new`: the generated crate builds for wasm32-wasip2, passes
//! its own `cargo test`, runs under `wasmon plugin test` and is scraped by a
//! running agent that finds it dropped into its plugin directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::wasmon;

/// `cargo ARGS` in the generated crate. The target dir is fixed (not in the
/// temp dir), so the SDK and its dependencies compile once and later runs
/// only rebuild the little plugin crate. `--offline`: the crate starts from
/// the workspace's lock file, so everything it needs is in cargo's cache
/// already.
fn cargo(krate: &Path, args: &[&str]) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(args)
        .arg("--offline")
        .current_dir(krate)
        .env("CARGO_TARGET_DIR", common::target_dir().join("scaffold"))
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "cargo {args:?} in the generated crate failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn new_plugin_builds_tests_and_loads() {
    let dir = tempfile::tempdir().unwrap();
    let parent = dir.path().to_str().unwrap();
    let (ok, stdout, stderr) = wasmon(&["plugin", "new", "demo-exporter", "--dir", parent]);
    assert!(ok, "{stderr}");
    let krate = dir.path().join("demo-exporter");
    assert!(stdout.contains(&format!("created plugin crate {}", krate.display())), "{stdout}");
    for file in ["Cargo.toml", "Cargo.lock", "src/lib.rs", "README.md", "config.example.yaml", ".gitignore"] {
        assert!(krate.join(file).is_file(), "{file} missing");
    }
    let (again, _, stderr) = wasmon(&["plugin", "new", "demo-exporter", "--dir", parent]);
    assert!(!again && stderr.contains("already exists"), "must not overwrite: {stderr}");
    let (bad, _, stderr) = wasmon(&["plugin", "new", "Demo", "--dir", parent]);
    assert!(!bad && stderr.contains("invalid plugin name \"Demo\""), "{stderr}");

    cargo(&krate, &["build", "--release", "--target", "wasm32-wasip2"]);
    cargo(&krate, &["test"]);

    let wasm = common::target_dir().join("scaffold/wasm32-wasip2/release/demo_exporter.wasm");
    let (ok, stdout, stderr) =
        wasmon(&["plugin", "test", wasm.to_str().unwrap(), "--config", "{include_blocked: true}"]);
    assert!(ok, "plugin test failed: {stderr}");
    let families = wasmon_sdk::text::parse(&stdout).unwrap_or_else(|e| panic!("{e}:\n{stdout}"));
    let kinds: Vec<_> = families.iter().map(|f| (f.name.as_str(), f.kind)).collect();
    use wasmon_sdk::MetricKind::{Counter, Gauge};
    assert_eq!(
        kinds,
        [
            ("demo_exporter_procs_running", Gauge),
            ("demo_exporter_forks_total", Counter),
            ("demo_exporter_procs_blocked", Gauge)
        ],
        "{stdout}"
    );
    // `plugin test` itself is a process, started since boot.
    assert!(common::value(&families, "demo_exporter_forks_total", &[]).is_some_and(|v| v >= 1.0), "{stdout}");

    // Drop it into a running agent's plugin directory: the job that names it
    // waits for the file, and scrapes it once it is there.
    let plugin_dir = dir.path().join("plugins");
    std::fs::create_dir(&plugin_dir).unwrap();
    let config = std::fs::read_to_string(krate.join("config.example.yaml")).unwrap();
    let config = format!(
        "global: {{scrape_interval: 1s, scrape_timeout: 1s}}\nplugins: {{directories: [{}]}}\n{config}",
        plugin_dir.display()
    );
    let agent = common::Agent::start(&config);
    // Copy, then rename: the agent never sees a half-written component.
    let partial = plugin_dir.join("demo-exporter.partial");
    std::fs::copy(&wasm, &partial).unwrap();
    std::fs::rename(&partial, plugin_dir.join("demo-exporter.wasm")).unwrap();
    let metrics = common::eventually(std::time::Duration::from_secs(120), || {
        let m = agent.metrics();
        common::value(&m, "demo_exporter_procs_running", &[("job", "demo-exporter")]).map(|_| m)
    })
    .unwrap_or_else(|| panic!("no demo_exporter_procs_running in /metrics:\n{}", agent.log_text()));
    assert_eq!(common::value(&metrics, "up", &[("job", "demo-exporter")]), Some(1.0), "{}", agent.log_text());
    assert!(common::value(&metrics, "demo_exporter_forks_total", &[("job", "demo-exporter")]).is_some());
}
