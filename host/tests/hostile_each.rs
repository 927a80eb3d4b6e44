//! Each hostile behaviour on its own: an agent runs the hostile job next to a
//! well-behaved one; the hostile target reports `up 0` with its reason, the
//! other stays up, and nothing secret leaks. `isolation.rs` runs them all at
//! once and checks the schedule.

mod common;

use common::{Agent, eventually, plugin, value};
use std::time::Duration;

/// Run `config` (the hostile plugin's section) with `extra` job keys and
/// return the hostile target's last error.
fn fails_alone(config: &str, extra: &str) -> String {
    let hostile = plugin("wasmon_hostile");
    let mut yaml = format!(
        "global: {{scrape_interval: 1s, scrape_timeout: 500ms}}\nscrape_configs:\n\
         \x20 - job_name: control\n    plugin: {h}\n    static_configs: [{{targets: [control]}}]\n    config: {{mode: ok}}\n\
         \x20 - job_name: hostile\n    plugin: {h}\n    static_configs: [{{targets: [hostile]}}]\n    config: {config}\n",
        h = hostile.display()
    );
    if !extra.is_empty() {
        yaml.push_str(&format!("    {extra}\n"));
    }
    let agent = Agent::start(&yaml);
    let metrics = eventually(Duration::from_secs(30), || {
        let m = agent.metrics();
        let control = value(&m, "wasmon_target_scrapes_total", &[("job", "control"), ("result", "success")])?;
        let hostile = value(&m, "wasmon_target_scrapes_total", &[("job", "hostile")])?;
        (control >= 2.0 && hostile >= 1.0).then_some(m)
    })
    .unwrap_or_else(|| panic!("targets not scraped:\n{}\n{}", agent.get("/api/v1/targets"), agent.log_text()));
    assert_eq!(value(&metrics, "up", &[("job", "hostile")]), Some(0.0), "hostile target should be down");
    assert_eq!(value(&metrics, "up", &[("job", "control")]), Some(1.0), "control target should be up");
    let served = agent.get("/metrics") + &agent.get("/api/v1/targets") + &agent.log_text();
    for secret in ["WASMON_TEST_SECRET_VALUE", "root:$"] {
        assert!(!served.contains(secret), "{secret} leaked");
    }
    agent.last_error("hostile")
}

macro_rules! hostile {
    ($name:ident, $config:expr, $extra:expr, $expect:expr) => {
        #[test]
        fn $name() {
            let error = fails_alone($config, $extra);
            assert!(error.contains($expect), "lastError {error:?} should contain {:?}", $expect);
        }
    };
}

const BROAD_PROC: &str = r#"capabilities: {files: ["/proc/*/stat", "/proc/net/*", "/proc/stat", "/proc/**/environ"]}"#;

hostile!(infinite_loop, "{mode: loop}", "", "timeout: wall-clock timeout of 500ms");
hostile!(cpu_limit, "{mode: loop}", "limits: {cpu: 100ms}", "cpu_limit: CPU time limit of 100ms");
hostile!(memory_bomb, "{mode: memory-bomb}", "limits: {memory: 16MiB}", "memory_limit: memory limit of 16777216 bytes");
hostile!(stack_overflow, "{mode: stack-overflow}", "", "stack_overflow: wasm trap: call stack exhausted");
hostile!(shadow_stack_overflow, "{mode: shadow-stack-overflow}", "", "out of bounds memory access");
hostile!(huge_result, "{mode: huge-result, series: 5000000}", "limits: {memory: 32MiB}", "memory_limit");
hostile!(
    huge_result_over_sample_limit,
    "{mode: huge-result, series: 5000}",
    "limits: {sample_limit: 100}",
    "sample_limit: 5000 series returned"
);
hostile!(panic, "{mode: panic}", "", "hostile plugin panicked on purpose");
hostile!(
    read_proc_self_mem,
    "{mode: read-file, path: /proc/self/mem}",
    BROAD_PROC,
    "/proc/self/mem: not in this plugin's file allowlist"
);
hostile!(
    read_proc_self_environ,
    "{mode: read-file, path: /proc/self/environ}",
    BROAD_PROC,
    "not in this plugin's file allowlist"
);
hostile!(
    read_thread_self,
    "{mode: read-file, path: /proc/thread-self/environ}",
    BROAD_PROC,
    "not in this plugin's file allowlist"
);
hostile!(read_other_pid, "{mode: read-file, path: /proc/1/environ}", BROAD_PROC, "not in this plugin's file allowlist");
hostile!(
    read_self_root,
    "{mode: read-file, path: /proc/self/root/etc/shadow}",
    BROAD_PROC,
    "not in this plugin's file allowlist"
);
hostile!(
    read_dotdot,
    "{mode: read-file, path: /proc/net/../../etc/shadow}",
    BROAD_PROC,
    "'..' and '.' are not allowed"
);
hostile!(
    read_etc_shadow,
    "{mode: read-file, path: /etc/shadow}",
    "",
    "/etc/shadow: not in this plugin's file allowlist"
);
hostile!(std_fs_without_preopen, "{mode: std-read, path: /etc/passwd}", "", "/etc/passwd");
hostile!(open_socket, "{mode: connect, address: '127.0.0.1:9'}", "", "connect 127.0.0.1:9");

#[test]
fn symlink_out_of_a_granted_directory() {
    let dir = tempfile::tempdir().unwrap();
    let granted = dir.path().join("granted");
    std::fs::create_dir(&granted).unwrap();
    std::fs::write(dir.path().join("secret"), "WASMON_TEST_SECRET_VALUE").unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret"), granted.join("link.prom")).unwrap();
    let g = granted.display();
    // Through the host's file interface...
    let error = fails_alone(
        &format!("{{mode: read-file, path: {g}/link.prom}}"),
        &format!("capabilities: {{files: [\"{g}/*\"]}}"),
    );
    assert!(error.contains("which is not in this plugin's file allowlist"), "{error}");
    // ...and through a WASI preopen of the same directory.
    let error = fails_alone(
        "{mode: std-read, path: /data/link.prom}",
        &format!("capabilities: {{preopens: [{{host: {g}, guest: /data}}]}}"),
    );
    assert!(error.contains("/data/link.prom"), "{error}");
    let error = fails_alone(
        "{mode: std-read, path: /data/../secret}",
        &format!("capabilities: {{preopens: [{{host: {g}, guest: /data}}]}}"),
    );
    assert!(error.contains("permission_denied") || error.contains("plugin_error"), "{error}");
}
