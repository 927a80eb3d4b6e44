//! Hot reload while scrapes run: drop-in plugins (added, replaced, corrupted,
//! removed) and config changes (file edit, SIGHUP, `POST /-/reload`, a
//! broken file), each checked in the API and, after the agent stops, in the
//! raw samples of the store: no gap and no staleness marker where the
//! series should continue, markers where it should end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// Replace `to` atomically with `from`'s bytes, as an operator should
/// (`cp` to a temp name, then `mv`).
fn install(from: &Path, to: &Path) {
    let tmp = to.with_extension("tmp");
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, to).unwrap();
}

/// One series' raw samples: (ms, value), `None` for a staleness marker.
type Samples = Vec<(i64, Option<f64>)>;

/// Raw samples of `selector` from the stopped agent's store, per series.
fn dump(data: &Path, selector: &str) -> Vec<(String, Samples)> {
    let out = Command::new(env!("CARGO_BIN_EXE_wasmon"))
        .args(["tsdb", "dump", data.to_str().unwrap(), "--match", selector])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut series: Vec<(String, Samples)> = Vec::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let mut parts = line.rsplitn(3, ' ');
        let t: i64 = parts.next().unwrap().parse().unwrap();
        let v = parts.next().unwrap();
        let labels = parts.next().unwrap().to_string();
        let v = if v == "stale" { None } else { Some(v.parse().unwrap()) };
        match series.last_mut() {
            Some((l, samples)) if *l == labels => samples.push((t, v)),
            _ => series.push((labels, vec![(t, v)])),
        }
    }
    series
}

/// The longest time between two samples of a series, in ms.
fn longest_gap(samples: &[(i64, Option<f64>)]) -> i64 {
    samples.windows(2).map(|w| w[1].0 - w[0].0).max().unwrap_or(0)
}

fn plugin_statuses(agent: &common::Agent) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(&agent.get("/api/v1/plugins")).unwrap();
    v["data"].as_array().unwrap().clone()
}

fn target<'a>(targets: &'a serde_json::Value, job: &str) -> Option<&'a serde_json::Value> {
    targets["data"]["activeTargets"].as_array()?.iter().find(|t| t["labels"]["job"] == job)
}

fn post_reload(agent: &common::Agent) -> (u16, String) {
    let r = reqwest::blocking::Client::new().post(format!("{}/-/reload", agent.base)).send().unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

#[test]
fn drop_in_plugins_are_added_replaced_kept_when_broken_and_stopped_when_removed() {
    let plugins = tempfile::tempdir().unwrap();
    let demo = plugins.path().join("demo.wasm");
    let config = format!(
        "plugins:\n  directories: [{dir}]\n\
         scrape_configs:\n\
         \x20 - job_name: demo\n    plugin: demo\n    scrape_interval: 1s\n    static_configs: [{{targets: [here]}}]\n    capabilities: {{files: default, fs_stats: true}}\n\
         \x20 - job_name: steady\n    plugin: {example}\n    scrape_interval: 1s\n    static_configs: [{{targets: [there]}}]\n    capabilities: {{files: default}}\n",
        dir = plugins.path().display(),
        example = common::plugin("wasmon_example_plugin").display(),
    );
    let mut agent = common::Agent::start(&config);

    // No demo.wasm yet: the agent runs, the job waits and says why.
    let waiting = common::eventually(WAIT, || {
        let t = agent.targets();
        let error = target(&t, "demo")?["lastError"].as_str()?.to_string();
        (!error.is_empty()).then_some(error)
    })
    .expect("the waiting job reports");
    assert!(waiting.contains("plugin demo unavailable") && waiting.contains("not found"), "{waiting}");
    assert!(agent.get("/").contains("plugin demo unavailable"), "the page shows the waiting job");

    // Added: picked up from the directory, no restart.
    install(&common::plugin("wasmon_example_plugin"), &demo);
    common::eventually(WAIT, || {
        let m = agent.metrics();
        let up = common::value(&m, "up", &[("job", "demo")])?;
        (up == 1.0 && common::value(&m, "example_uptime_seconds", &[("job", "demo")]).is_some()).then_some(())
    })
    .unwrap_or_else(|| panic!("the dropped-in plugin never scraped:\n{}", agent.log_text()));
    let status = plugin_statuses(&agent);
    let entry = status.iter().find(|p| p["path"] == demo.display().to_string()).expect("listed");
    assert_eq!(entry["world"], "exporter");
    let first_sha = entry["sha256"].as_str().unwrap().to_string();

    // Replaced: the next scrapes use the new version (the node plugin).
    install(&common::plugin("wasmon_node"), &demo);
    common::eventually(WAIT, || {
        let m = agent.metrics();
        common::value(&m, "node_boot_time_seconds", &[("job", "demo")]).map(|_| ())
    })
    .unwrap_or_else(|| panic!("the replacement never scraped:\n{}", agent.log_text()));
    let status = plugin_statuses(&agent);
    let entry = status.iter().find(|p| p["path"] == demo.display().to_string()).unwrap();
    let node_sha = entry["sha256"].as_str().unwrap().to_string();
    assert_ne!(node_sha, first_sha);

    // Broken: a file that is no component never replaces the working one.
    std::fs::write(plugins.path().join("junk.tmp"), b"\0asm\x0d\0\x01\0garbage").unwrap();
    std::fs::rename(plugins.path().join("junk.tmp"), &demo).unwrap();
    let error = common::eventually(WAIT, || {
        let status = plugin_statuses(&agent);
        let entry = status.iter().find(|p| p["path"] == demo.display().to_string())?.clone();
        let error = entry["error"].as_str()?.to_string();
        Some((error, entry))
    })
    .expect("the broken file is reported");
    assert_eq!(error.1["sha256"], node_sha.as_str(), "the previous version keeps running");
    assert!(agent.get("/").contains("running the previous version"));
    let scrapes_before = common::value(&agent.metrics(), "wasmon_target_scrapes_total", &[("job", "demo")]).unwrap();
    common::eventually(WAIT, || {
        let m = agent.metrics();
        let n = common::value(&m, "wasmon_target_scrapes_total", &[("job", "demo"), ("result", "success")])?;
        (n >= scrapes_before + 3.0 && common::value(&m, "node_boot_time_seconds", &[("job", "demo")]).is_some())
            .then_some(())
    })
    .expect("the working version keeps scraping");

    // A new file that implements none of our worlds is rejected by name.
    std::fs::write(plugins.path().join("other.wasm"), b"not wasm at all").unwrap();
    let other = common::eventually(WAIT, || {
        let status = plugin_statuses(&agent);
        status.iter().find(|p| p["path"].as_str().is_some_and(|p| p.ends_with("other.wasm")))?["error"]
            .as_str()
            .map(String::from)
    })
    .expect("the junk file is reported");
    assert!(other.contains("other.wasm"), "{other}");

    // Removed: the job stops collecting and says why; the other job goes on.
    std::fs::remove_file(&demo).unwrap();
    let gone = common::eventually(WAIT, || {
        let t = agent.targets();
        let demo = target(&t, "demo")?;
        let error = demo["lastError"].as_str()?;
        (demo["health"] == "down" && error.contains("unavailable")).then(|| error.to_string())
    })
    .expect("the removed plugin's job reports");
    assert!(gone.contains("plugin demo"), "{gone}");
    let steady = agent.targets();
    assert_eq!(target(&steady, "steady").unwrap()["health"], "up");

    agent.stop();
    // The demo target's `up` ran through every change without a gap or a
    // staleness marker: the loops were handed over, not restarted.
    let series = dump(&agent.data, "up{job=\"demo\"}");
    assert_eq!(series.len(), 1, "{series:?}");
    let samples = &series[0].1;
    assert!(samples.iter().all(|(_, v)| v.is_some()), "no staleness marker: {samples:?}");
    assert!(longest_gap(samples) <= 2_500, "a scrape every 1s throughout: longest gap {} ms", longest_gap(samples));
    assert!(samples.iter().any(|(_, v)| *v == Some(0.0)) && samples.iter().any(|(_, v)| *v == Some(1.0)));
}

const ALWAYS_FIRING: &str = "groups:\n  - name: g\n    rules:\n      - alert: Always\n        expr: vector(1)\n";

#[test]
fn config_reload_keeps_unchanged_jobs_replaces_changed_ones_and_refuses_a_broken_file() {
    let rules = tempfile::tempdir().unwrap();
    let rule_file = rules.path().join("rules.yaml");
    std::fs::write(&rule_file, ALWAYS_FIRING).unwrap();
    let example = common::plugin("wasmon_example_plugin");
    let job = |name: &str, labels: &str| {
        format!(
            "  - job_name: {name}\n    plugin: {}\n    scrape_interval: 1s\n    static_configs: [{{targets: [t], labels: {{{labels}}}}}]\n    capabilities: {{files: default}}\n",
            example.display()
        )
    };
    let head = format!("global:\n  evaluation_interval: 1s\nrule_files: [{}]\nscrape_configs:\n", rule_file.display());
    let mut agent =
        common::Agent::start(&format!("{head}{}{}{}", job("kept", ""), job("changed", "v: one"), job("removed", "")));
    agent.wait_for_scrapes(&["kept", "changed", "removed"], 2.0);
    let firing = common::eventually(WAIT, || {
        let a: serde_json::Value = serde_json::from_str(&agent.get("/api/v1/alerts")).ok()?;
        a["data"]["alerts"].as_array()?.iter().find(|a| a["state"] == "firing").map(|a| a["activeAt"].clone())
    })
    .expect("the alert fires");

    // Edit the file: the watch reloads it.
    std::fs::write(agent.config_file(), format!("{head}{}{}", job("kept", ""), job("changed", "v: two"))).unwrap();
    common::eventually(WAIT, || {
        let t = agent.targets();
        (target(&t, "changed")?["labels"]["v"] == "two" && target(&t, "removed").is_none()).then_some(())
    })
    .unwrap_or_else(|| panic!("the edited config was not applied:\n{}", agent.log_text()));
    let log = agent.log_text();
    assert!(log.contains("reload applied"), "{log}");
    assert!(log.contains("replaced [\"changed\"]") && log.contains("stopped [\"removed\"]"), "{log}");
    let alerts: serde_json::Value = serde_json::from_str(&agent.get("/api/v1/alerts")).unwrap();
    let kept = alerts["data"]["alerts"].as_array().unwrap().iter().find(|a| a["state"] == "firing").unwrap();
    assert_eq!(kept["activeAt"], firing, "alert state survives the reload");

    // A broken file is refused, with where and why; everything keeps running.
    std::fs::write(agent.config_file(), format!("{head}  - job_name: [oops\n")).unwrap();
    let (status, body) = post_reload(&agent);
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("failed to reload config") && body.contains("wasmon.yaml"), "{body}");
    let m = agent.metrics();
    assert_eq!(common::value(&m, "wasmon_config_last_reload_successful", &[]), Some(0.0));
    assert!(agent.get("/").contains("config reload refused"), "the page shows the refusal");
    let before = common::value(&m, "wasmon_target_scrapes_total", &[("job", "kept")]).unwrap();
    common::eventually(WAIT, || {
        let n = common::value(&agent.metrics(), "wasmon_target_scrapes_total", &[("job", "kept")])?;
        (n >= before + 2.0).then_some(())
    })
    .expect("the old config keeps scraping");

    // A config that parses but does not build (a bad relabel regex) is refused too.
    let bad_relabel =
        format!("{head}{}    relabel_configs: [{{source_labels: [job], regex: '(', action: keep}}]\n", job("kept", ""));
    std::fs::write(agent.config_file(), bad_relabel).unwrap();
    let (status, body) = post_reload(&agent);
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("job \"kept\""), "{body}");
    assert!(target(&agent.targets(), "changed").is_some(), "the running config stays");

    // SIGHUP reloads a fixed file.
    std::fs::write(agent.config_file(), format!("{head}{}{}", job("kept", ""), job("changed", "v: three"))).unwrap();
    let _ = Command::new("kill").arg("-HUP").arg(agent.child.id().to_string()).status();
    common::eventually(WAIT, || {
        let m = agent.metrics();
        let ok = common::value(&m, "wasmon_config_last_reload_successful", &[])? == 1.0;
        (ok && target(&agent.targets(), "changed")?["labels"]["v"] == "three").then_some(())
    })
    .expect("the fixed file is applied");

    agent.stop();
    // The unchanged job and the changed one (same target, new labels are a
    // new series) scraped throughout; the removed job's series ended with a
    // staleness marker.
    let kept = dump(&agent.data, "up{job=\"kept\"}");
    assert_eq!(kept.len(), 1);
    assert!(kept[0].1.iter().all(|(_, v)| v.is_some()));
    assert!(longest_gap(&kept[0].1) <= 2_500, "kept: longest gap {} ms", longest_gap(&kept[0].1));
    let removed = dump(&agent.data, "up{job=\"removed\"}");
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].1.last().unwrap().1, None, "the removed job's series end stale");
    let changed = dump(&agent.data, "up{job=\"changed\"}");
    let one = changed.iter().find(|(l, _)| l.contains("v=\"one\"")).expect("v=one series");
    assert_eq!(one.1.last().unwrap().1, None, "a series the new version no longer has ends stale");
}

#[test]
fn a_plugin_refused_for_its_signature_loads_once_signed() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    let key = dir.path().join("release.pem");
    let wasmon = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_wasmon")).args(args).output().unwrap();
        assert!(out.status.success(), "wasmon {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    wasmon(&["plugin", "keygen", "--out", key.to_str().unwrap()]);
    let demo = plugins.join("demo.wasm");
    install(&common::plugin("wasmon_example_plugin"), &demo);
    let config = format!(
        "plugins:\n  directories: [{}]\n  require_signatures: true\n  trusted_keys: [{}]\n\
         scrape_configs:\n  - job_name: demo\n    plugin: demo\n    scrape_interval: 1s\n    static_configs: [{{targets: [here]}}]\n    capabilities: {{files: default}}\n",
        plugins.display(),
        dir.path().join("release.pub.pem").display()
    );
    let agent = common::Agent::start(&config);
    let refused = common::eventually(WAIT, || {
        let error = target(&agent.targets(), "demo")?["lastError"].as_str()?.to_string();
        (!error.is_empty()).then_some(error)
    })
    .expect("the unsigned plugin is refused");
    assert!(refused.contains("signature"), "{refused}");

    // Signing it is a change the agent sees: the job starts scraping.
    wasmon(&["plugin", "sign", "--key", key.to_str().unwrap(), demo.to_str().unwrap()]);
    common::eventually(WAIT, || {
        let m = agent.metrics();
        (common::value(&m, "up", &[("job", "demo")])? == 1.0).then_some(())
    })
    .unwrap_or_else(|| panic!("the signed plugin never loaded:\n{}", agent.log_text()));
}

#[test]
fn a_reload_that_changes_the_logs_pipeline_neither_loses_nor_repeats_lines() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().display().to_string();
    let logs = |max_records: usize| {
        format!(
            "global: {{scrape_interval: 1s, scrape_timeout: 1s}}\nlogs:\n  sources:\n    - name: app\n      include: ['{root}/app.log']\n      poll_interval: 200ms\n      framing: {{format: plain}}\n  checkpoint: {{path: '{root}/checkpoint.json', interval: 200ms}}\n  batch: {{max_records: {max_records}, flush_interval: 100ms}}\n  sinks:\n    - {{type: file, name: out, path: '{root}/out.jsonl'}}\n"
        )
    };
    let log_file = dir.path().join("app.log");
    let write_lines = |from: usize, to: usize| {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&log_file).unwrap();
        for i in from..to {
            writeln!(f, "line {i:05}").unwrap();
        }
    };
    let delivered = || -> Vec<usize> {
        let text = std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                let body = v["body"].as_str()?.to_string();
                body.strip_prefix("line ")?.parse().ok()
            })
            .collect()
    };
    write_lines(0, 500);
    let agent = common::Agent::start(&logs(100));
    common::eventually(WAIT, || (delivered().len() >= 500).then_some(()))
        .unwrap_or_else(|| panic!("first lines not delivered:\n{}", agent.log_text()));

    // Change the pipeline while lines keep coming: it stops, writes its
    // checkpoint, and the new one resumes from there.
    write_lines(500, 1000);
    std::fs::write(agent.config_file(), logs(37)).unwrap();
    let (status, body) = post_reload(&agent);
    assert_eq!(status, 200, "{body}");
    write_lines(1000, 1500);
    common::eventually(WAIT, || (delivered().len() >= 1500).then_some(()))
        .unwrap_or_else(|| panic!("lines after the reload not delivered:\n{}", agent.log_text()));
    std::thread::sleep(Duration::from_millis(500));
    let mut seen = delivered();
    assert_eq!(seen.len(), 1500, "no line twice");
    seen.sort_unstable();
    assert_eq!(seen, (0..1500).collect::<Vec<_>>(), "every line once");

    // A logs section that does not load is refused; the pipeline keeps going.
    std::fs::write(
        agent.config_file(),
        logs(37).replace("  sinks:", "  processors: [{plugin: no-such-processor}]\n  sinks:"),
    )
    .unwrap();
    let (status, body) = post_reload(&agent);
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("no-such-processor"), "{body}");
    write_lines(1500, 1600);
    common::eventually(WAIT, || (delivered().len() >= 1600).then_some(()))
        .unwrap_or_else(|| panic!("the old pipeline stopped:\n{}", agent.log_text()));
}
