//! Hostile plugins fail alone: each misbehaviour ends that target's scrape
//! with `up 0` and a reason, and a well-behaved job keeps its schedule.

mod common;

use common::{Agent, eventually, plugin, value};
use std::io::ErrorKind;
use std::net::TcpListener;
use std::time::Duration;

struct Case {
    job: &'static str,
    config: String,
    extra: String,
    expect_error: &'static str,
}

fn case(job: &'static str, config: &str, extra: &str, expect_error: &'static str) -> Case {
    Case { job, config: config.into(), extra: extra.into(), expect_error }
}

#[test]
fn hostile_plugins_fail_alone() {
    let hostile = plugin("wasmon_hostile");
    let example = plugin("wasmon_example_plugin");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();

    // A granted directory holding a data file and a symlink that points out.
    let data = tempfile::tempdir().unwrap();
    let granted = data.path().join("granted");
    std::fs::create_dir(&granted).unwrap();
    std::fs::write(granted.join("ok.prom"), "ok 1\n").unwrap();
    std::fs::write(data.path().join("secret.txt"), "top secret").unwrap();
    std::os::unix::fs::symlink(data.path().join("secret.txt"), granted.join("escape.prom")).unwrap();
    let granted_glob = format!("{}/*", granted.display());

    let broad_proc = r#"capabilities: {files: ["/proc/*/stat", "/proc/net/*", "/proc/stat"]}"#;
    let cases = vec![
        case("loop", "{mode: loop}", "", "timeout: wall-clock timeout"),
        case(
            "memory_bomb",
            "{mode: memory-bomb}",
            "limits: {memory: 32MiB}",
            "memory_limit: memory limit of 33554432 bytes",
        ),
        case("stack_overflow", "{mode: stack-overflow}", "", "stack_overflow"),
        case("shadow_stack", "{mode: shadow-stack-overflow}", "", "trap: wasm trap: out of bounds memory access"),
        case("huge_result_memory", "{mode: huge-result, series: 5000000}", "limits: {memory: 32MiB}", "memory_limit"),
        case(
            "huge_result_limit",
            "{mode: huge-result, series: 20000}",
            "limits: {memory: 256MiB, sample_limit: 1000}",
            "sample_limit: 20000 series returned, over sample_limit 1000",
        ),
        case("panic", "{mode: panic}", "", "panicked at"),
        case("self_mem", "{mode: read-file, path: /proc/self/mem}", broad_proc, "not in this plugin's file allowlist"),
        case(
            "self_environ",
            "{mode: read-file, path: /proc/self/environ}",
            broad_proc,
            "not in this plugin's file allowlist",
        ),
        case(
            "thread_self",
            "{mode: read-file, path: /proc/thread-self/environ}",
            broad_proc,
            "not in this plugin's file allowlist",
        ),
        case(
            "pid_1_environ",
            "{mode: read-file, path: /proc/1/environ}",
            broad_proc,
            "not in this plugin's file allowlist",
        ),
        case(
            "self_stat_via_glob",
            "{mode: read-file, path: /proc/self/stat}",
            broad_proc,
            "not in this plugin's file allowlist",
        ),
        case(
            "self_root",
            "{mode: read-file, path: /proc/self/root/etc/shadow}",
            broad_proc,
            "not in this plugin's file allowlist",
        ),
        case("dotdot", "{mode: read-file, path: /proc/net/../environ}", broad_proc, "'..' and '.' are not allowed"),
        case("etc_shadow", "{mode: read-file, path: /etc/shadow}", "", "not in this plugin's file allowlist"),
        case(
            "list_proc",
            "{mode: list-dir, path: /proc}",
            r#"capabilities: {files: ["/proc/net/*", "/proc/stat"]}"#,
            "not in this plugin's file allowlist",
        ),
        case(
            "symlink_out",
            &format!("{{mode: read-file, path: {}/escape.prom}}", granted.display()),
            &format!("capabilities: {{files: [\"{granted_glob}\"]}}"),
            "which is not in this plugin's file allowlist",
        ),
        case(
            "preopen_dotdot",
            "{mode: std-read, path: /data/../secret.txt}",
            &format!("capabilities: {{preopens: [{{host: {}, guest: /data}}]}}", granted.display()),
            "read-file",
        )
        .expect_any(),
        case(
            "preopen_symlink",
            "{mode: std-read, path: /data/escape.prom}",
            &format!("capabilities: {{preopens: [{{host: {}, guest: /data}}]}}", granted.display()),
            "escape.prom",
        ),
        case("no_preopen", "{mode: std-read, path: /etc/passwd}", "", "/etc/passwd"),
        case("connect", &format!("{{mode: connect, address: '127.0.0.1:{port}'}}"), "", "connect 127.0.0.1"),
    ];

    let mut config = String::from("global: {scrape_interval: 1s, scrape_timeout: 500ms}\nscrape_configs:\n");
    config.push_str(&format!(
        "  - job_name: control\n    plugin: {}\n    static_configs: [{{targets: [control]}}]\n    config: {{mode: ok}}\n",
        hostile.display()
    ));
    config.push_str(&format!(
        "  - job_name: example\n    plugin: {}\n    static_configs: [{{targets: [local]}}]\n    capabilities: {{files: default}}\n",
        example.display()
    ));
    config.push_str(&format!(
        "  - job_name: log_flood\n    plugin: {}\n    static_configs: [{{targets: [flood]}}]\n    config: {{mode: log-flood, millis: 200}}\n    limits: {{log_lines: 20}}\n",
        hostile.display()
    ));
    config.push_str(&format!(
        "  - job_name: env\n    plugin: {}\n    static_configs: [{{targets: [env]}}]\n    config: {{mode: env}}\n",
        hostile.display()
    ));
    for c in &cases {
        config.push_str(&format!(
            "  - job_name: {}\n    plugin: {}\n    static_configs: [{{targets: [{}]}}]\n    config: {}\n",
            c.job,
            hostile.display(),
            c.job,
            c.config
        ));
        if !c.extra.is_empty() {
            config.push_str(&format!("    {}\n", c.extra));
        }
    }

    let agent = Agent::start(&config);
    // Every hostile target reports down, with its reason.
    let targets = eventually(Duration::from_secs(60), || {
        let t = agent.targets();
        let all_scraped = t["data"]["activeTargets"].as_array()?.iter().all(|t| t["health"] != "unknown");
        all_scraped.then_some(t)
    })
    .unwrap_or_else(|| panic!("not every target was scraped:\n{}\n{}", agent.get("/api/v1/targets"), agent.log_text()));
    let by_job = |job: &str| {
        targets["data"]["activeTargets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["labels"]["job"] == job)
            .cloned()
            .unwrap_or_else(|| panic!("no target for job {job}"))
    };
    let metrics = agent.metrics();
    for c in &cases {
        let t = by_job(c.job);
        assert_eq!(t["health"], "down", "job {} should be down: {t}", c.job);
        let error = t["lastError"].as_str().unwrap_or_default();
        if c.expect_error != "*" {
            assert!(
                error.contains(c.expect_error),
                "job {}: lastError {error:?} should contain {:?}",
                c.job,
                c.expect_error
            );
        }
        assert_eq!(value(&metrics, "up", &[("job", c.job)]), Some(0.0), "up for {}", c.job);
    }
    // Nothing ever leaked: no secret content in what the agent serves or logs.
    let served = agent.get("/metrics") + &agent.get("/api/v1/targets") + &agent.log_text();
    assert!(!served.contains("top secret"), "a secret leaked");
    // The plugin never reached the listener.
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == ErrorKind::WouldBlock),
        "the plugin connected to the listener"
    );

    // The control jobs keep working and on schedule while all of this runs.
    for job in ["control", "example", "log_flood", "env"] {
        assert_eq!(value(&metrics, "up", &[("job", job)]), Some(1.0), "{job} should be up: {}", agent.log_text());
    }
    assert_eq!(value(&metrics, "hostile_env_vars", &[("what", "env")]), Some(0.0), "plugins must see no environment");
    let count = |m: &[wasmon_sdk::MetricFamily]| {
        value(m, "wasmon_target_scrapes_total", &[("job", "control"), ("result", "success")]).unwrap_or(0.0)
    };
    let before = count(&metrics);
    std::thread::sleep(Duration::from_secs(5));
    let later = agent.metrics();
    let scrapes = count(&later) - before;
    assert!(scrapes >= 3.0, "control job made only {scrapes} scrapes in 5s at a 1s interval");

    // The flood was cut to the limit and counted, not written out.
    let dropped = value(&later, "wasmon_plugin_log_lines_dropped_total", &[]).unwrap_or(0.0);
    assert!(dropped > 0.0, "flooded lines should be counted as dropped");
    let flood_lines = agent.log_text().matches("flood line").count();
    let flood_scrapes = value(&later, "wasmon_target_scrapes_total", &[("job", "log_flood")]).unwrap_or(1.0);
    assert!(
        flood_lines as f64 <= 20.0 * (flood_scrapes + 2.0),
        "{flood_lines} flood lines logged in {flood_scrapes} scrapes"
    );

    // Traps are counted by reason.
    for reason in ["timeout", "memory_limit", "stack_overflow", "panic"] {
        let n: f64 = later
            .iter()
            .filter(|f| f.name == "wasmon_plugin_traps_total")
            .flat_map(|f| &f.metrics)
            .filter(|m| m.labels.iter().any(|l| l.name == "reason" && l.value == reason))
            .map(|m| match m.value {
                wasmon_sdk::MetricValue::Counter(v) => v,
                _ => 0.0,
            })
            .sum();
        assert!(n >= 1.0, "no trap counted for reason {reason}");
    }
}

impl Case {
    /// Accept any error text (the exact wording comes from WASI's path resolution).
    fn expect_any(mut self) -> Self {
        self.expect_error = "*";
        self
    }
}
