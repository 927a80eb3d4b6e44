//! The runtime in-process: component cache, backoff after traps, and the
//! instance being fresh for every call.

mod common;

use std::sync::Arc;
use std::time::Duration;
use wasmon::config::{CapabilitiesConfig, LimitsConfig, PathsConfig};
use wasmon::runtime::{CacheOutcome, FailureReason, Runtime, Sandbox};
use wasmon::scheduler::{Job, LatestScrapes, TargetLoop, TargetSpec};
use wasmon::telemetry::Telemetry;

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().thread_stack_size(8 << 20).build().expect("tokio runtime")
}

#[test]
fn compiled_components_are_cached_across_runtimes() {
    let cache = tempfile::tempdir().unwrap();
    let path = common::plugin("wasmon_example_plugin");
    let first = Runtime::new(PathsConfig::default(), cache.path()).unwrap();
    assert_eq!(first.load("example", &path).unwrap().cache, CacheOutcome::Miss);
    drop(first);
    // A new runtime (a restart) loads the artifact instead of compiling.
    let second = Runtime::new(PathsConfig::default(), cache.path()).unwrap();
    let loaded = second.load("example", &path).unwrap();
    assert_eq!(loaded.cache, CacheOutcome::Hit);
    let artifacts: Vec<_> = std::fs::read_dir(cache.path()).unwrap().collect();
    assert_eq!(artifacts.len(), 1, "one artifact per component and engine");
    // And the cached component works.
    let sandbox = Sandbox::for_job(
        &PathsConfig::default(),
        &CapabilitiesConfig { files: wasmon::config::FileGrant::PluginDefault, ..Default::default() },
        &LimitsConfig::default(),
        Duration::from_secs(5),
        &["/proc/uptime".into(), "/proc/loadavg".into()],
    )
    .unwrap();
    let target = wasmon::runtime::model::Target { address: "x".into(), labels: vec![], params: vec![] };
    let families = loaded.collect(&sandbox, &target, "{}").result.expect("collect");
    assert_eq!(families.len(), 2);
}

#[test]
fn a_corrupt_cache_entry_is_recompiled() {
    let cache = tempfile::tempdir().unwrap();
    let path = common::plugin("wasmon_example_plugin");
    let rt = Runtime::new(PathsConfig::default(), cache.path()).unwrap();
    rt.load("example", &path).unwrap();
    for entry in std::fs::read_dir(cache.path()).unwrap() {
        std::fs::write(entry.unwrap().path(), b"not a compiled component").unwrap();
    }
    let rt = Runtime::new(PathsConfig::default(), cache.path()).unwrap();
    assert_eq!(rt.load("example", &path).unwrap().cache, CacheOutcome::Miss);
}

#[test]
fn trapping_targets_back_off_and_recover_state_per_call() {
    let rt = Runtime::new(PathsConfig::default(), &common::cache_dir()).unwrap();
    let plugin = rt.load("hostile", &common::plugin("wasmon_hostile")).unwrap();
    let timeout = Duration::from_millis(200);
    let sandbox = Sandbox::for_job(
        &PathsConfig::default(),
        &CapabilitiesConfig::default(),
        &LimitsConfig::default(),
        timeout,
        &[],
    )
    .unwrap();
    let job =
        Arc::new(Job::for_plugin("loop", plugin, sandbox, r#"{"mode":"loop"}"#, Duration::from_secs(60), timeout));
    let latest = Arc::new(LatestScrapes::default());
    let telemetry = Arc::new(Telemetry::default());
    let target = TargetSpec::new("loop", "t1", &Default::default());
    let mut looper = TargetLoop::new(job, target, latest.clone(), telemetry.clone());
    let traps =
        || telemetry.value("wasmon_plugin_traps_total", &[("plugin", "hostile"), ("reason", "timeout")]).unwrap_or(0.0);
    let rt_tokio = tokio_rt();
    // First trap: the next attempt runs as scheduled.
    rt_tokio.block_on(looper.scrape_once());
    assert_eq!(traps(), 1.0);
    rt_tokio.block_on(looper.scrape_once());
    assert_eq!(traps(), 2.0);
    // Second trap in a row: back off for an interval; the plugin is not called.
    rt_tokio.block_on(looper.scrape_once());
    assert_eq!(traps(), 2.0, "a backing-off target must not call the plugin");
    assert_eq!(telemetry.value("wasmon_plugin_scrapes_skipped_total", &[("plugin", "hostile")]), Some(1.0));
    let snapshot = latest.get("loop", "t1").unwrap();
    let error = snapshot.last_error.clone().unwrap();
    assert!(error.contains("backing off") && error.contains("timeout"), "{error}");
    let up = snapshot.families.iter().find(|f| f.name == "up").unwrap();
    assert_eq!(up.metrics[0].value, wasmon::runtime::model::MetricValue::Gauge(0.0));
}

#[test]
fn every_call_gets_a_fresh_instance() {
    // The memory bomb fills its instance to the cap; the next call on the same
    // plugin starts from a fresh, small instance and succeeds.
    let rt = Runtime::new(PathsConfig::default(), &common::cache_dir()).unwrap();
    let plugin = rt.load("hostile", &common::plugin("wasmon_hostile")).unwrap();
    let limits = LimitsConfig { memory: wasmon::config::ByteSize(16 << 20), ..Default::default() };
    let sandbox =
        Sandbox::for_job(&PathsConfig::default(), &CapabilitiesConfig::default(), &limits, Duration::from_secs(5), &[])
            .unwrap();
    let target = wasmon::runtime::model::Target { address: "x".into(), labels: vec![], params: vec![] };
    let bomb = plugin.collect(&sandbox, &target, r#"{"mode":"memory-bomb"}"#);
    assert_eq!(bomb.result.unwrap_err().reason, FailureReason::MemoryLimit);
    assert!(bomb.report.memory_high_water <= 16 << 20);
    let ok = plugin.collect(&sandbox, &target, r#"{"mode":"ok"}"#);
    assert!(ok.result.is_ok());
    assert!(ok.report.memory_high_water < 4 << 20, "fresh instance, small memory: {}", ok.report.memory_high_water);
}

/// A loopback HTTP server answering every request `200` with `name` as the body.
fn named_http_server(name: &'static str) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let address = listener.local_addr().expect("its address").to_string();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ =
                write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{name}", name.len());
        }
    });
    address
}

/// After a collect, the job instantiates its next instance ahead of time; the
/// next collect takes it, aimed at that call's own target (the spare was made
/// before anyone knew it), and a call that trapped leaves none behind.
#[test]
fn the_instance_made_ahead_serves_the_next_call_on_its_own_target() {
    use wasmon::runtime::model::Target;
    let rt = Runtime::new(PathsConfig::default(), &common::cache_dir()).unwrap();
    let plugin = rt.load("hostile", &common::plugin("wasmon_hostile")).unwrap();
    let caps = CapabilitiesConfig { http: true, ..Default::default() };
    let timeout = Duration::from_secs(5);
    let limits = LimitsConfig { memory: wasmon::config::ByteSize(16 << 20), ..Default::default() };
    let mut sandbox = Sandbox::for_job(&PathsConfig::default(), &caps, &limits, timeout, &[]).unwrap();
    let egress = wasmon::runtime::HttpEgress::new(wasmon::config::Scheme::Http, None, None, None, timeout).unwrap();
    sandbox.http = Some(Arc::new(egress));
    let (first, second) = (named_http_server("first"), named_http_server("second"));
    let target = |address: &str| Target { address: address.into(), labels: vec![], params: vec![] };
    let get = |url: &str| format!(r#"{{"mode":"http-get","url":"http://{url}/"}}"#);
    let body_of = |families: &[wasmon::runtime::model::MetricFamily]| {
        families[0].metrics[0].labels.iter().find(|l| l.name == "body").map(|l| l.value.clone())
    };
    let wait_for_spare = |sandbox: &Sandbox| {
        for _ in 0..500 {
            if sandbox.spare.is_ready() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("no instance was made ahead");
    };
    tokio_rt().block_on(async {
        assert!(!sandbox.spare.is_ready(), "nothing is made before the first call");
        let one = plugin.collect_async(&sandbox, &target(&first), &get(&first)).await;
        assert_eq!(body_of(&one.result.expect("first call")).as_deref(), Some("first"));
        wait_for_spare(&sandbox);
        // The instance made ahead reaches the second call's target, and only it.
        let two = plugin.collect_async(&sandbox, &target(&second), &get(&second)).await;
        assert_eq!(body_of(&two.result.expect("second call")).as_deref(), Some("second"));
        wait_for_spare(&sandbox);
        let elsewhere = plugin.collect_async(&sandbox, &target(&second), &get(&first)).await;
        let message = elsewhere.result.unwrap_err().message.to_lowercase();
        assert!(message.contains("denied"), "{message}");
        // A trap leaves no spare behind: the next call instantiates on its own.
        wait_for_spare(&sandbox);
        let bomb = plugin.collect_async(&sandbox, &target(&first), r#"{"mode":"memory-bomb"}"#).await;
        assert_eq!(bomb.result.unwrap_err().reason, FailureReason::MemoryLimit);
        assert!(!sandbox.spare.is_ready(), "no instance is made after a trap");
        let after = plugin.collect_async(&sandbox, &target(&first), r#"{"mode":"ok"}"#).await;
        assert!(after.result.is_ok());
        assert!(after.report.memory_high_water < 4 << 20, "a fresh instance: {}", after.report.memory_high_water);
        // A job that goes (a reload, a removed job) takes its spare with it: the
        // agent keeps at most 16, so forty jobs in turn each get theirs.
        for round in 0..40 {
            let job = Sandbox::for_job(&PathsConfig::default(), &caps, &limits, timeout, &[]).unwrap();
            assert!(plugin.collect_async(&job, &target(&first), r#"{"mode":"ok"}"#).await.result.is_ok(), "{round}");
            wait_for_spare(&job);
        }
    });
}

#[test]
fn check_config_rejects_bad_sections_with_the_plugins_message() {
    let rt = Runtime::new(PathsConfig::default(), &common::cache_dir()).unwrap();
    let plugin = rt.load("hostile", &common::plugin("wasmon_hostile")).unwrap();
    let sandbox = Sandbox::locked_down(&PathsConfig::default(), Duration::from_secs(5));
    let err = plugin.check_config(&sandbox, r#"{"mood":"ok"}"#).result.unwrap_err();
    assert_eq!(err.reason, FailureReason::PluginError);
    assert!(err.message.contains("unknown field `mood`"), "{}", err.message);
}
