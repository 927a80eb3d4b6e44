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

#[test]
fn check_config_rejects_bad_sections_with_the_plugins_message() {
    let rt = Runtime::new(PathsConfig::default(), &common::cache_dir()).unwrap();
    let plugin = rt.load("hostile", &common::plugin("wasmon_hostile")).unwrap();
    let sandbox = Sandbox::locked_down(&PathsConfig::default(), Duration::from_secs(5));
    let err = plugin.check_config(&sandbox, r#"{"mood":"ok"}"#).result.unwrap_err();
    assert_eq!(err.reason, FailureReason::PluginError);
    assert!(err.message.contains("unknown field `mood`"), "{}", err.message);
}
