//! File-based discovery, target relabeling and native scraping, compared
//! with a real Prometheus (Debian's 2.42) given the very same
//! `scrape_configs`: both discover the same file, relabel, scrape the same
//! in-process exporters, and must end with the same targets, the same
//! dropped targets and the same stored series.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Agent, FakeExporter, eventually};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use wasmon_test_servers::prometheus::Prometheus;

const BODY: &str = "# HELP requests_total Requests.
# TYPE requests_total counter
requests_total{code=\"200\",job=\"inner\"} 10
requests_total{code=\"500\",noise=\"x\"} 2
# TYPE temperature gauge
temperature{room=\"a\"} 21.5
dropped_metric 1
# TYPE rpc_seconds histogram
rpc_seconds_bucket{le=\"0.1\"} 1
rpc_seconds_bucket{le=\"+Inf\"} 3
rpc_seconds_sum 0.5
rpc_seconds_count 3
";

/// An exporter whose body depends on the path and echoes the `team` param.
fn exporter() -> FakeExporter {
    FakeExporter::start(|target, _headers| {
        let team = target.split("team=").nth(1).unwrap_or("none").split('&').next().unwrap_or("").to_string();
        let mut body = if target.starts_with("/other") { "other_path 1\n".to_string() } else { BODY.to_string() };
        body.push_str(&format!("param_echo{{team=\"{team}\"}} 1\n"));
        (200, vec![("Content-Type".into(), "text/plain; version=0.0.4".into())], body.into_bytes())
    })
}

fn scrape_config(targets_file: &std::path::Path) -> String {
    format!(
        r#"scrape_configs:
  - job_name: files
    scrape_interval: 1s
    scrape_timeout: 1s
    file_sd_configs:
      - files: ['{dir}/*.json']
        refresh_interval: 1s
    relabel_configs:
      - source_labels: [team]
        regex: skip
        action: drop
      - source_labels: [team]
        target_label: team_lower
        action: lowercase
      - source_labels: [__address__]
        regex: '127\.0\.0\.1:(\d+)'
        target_label: port
        replacement: 'p$1'
      - source_labels: [env]
        regex: test
        target_label: __metrics_path__
        replacement: /other
      - source_labels: [__address__]
        modulus: 4
        target_label: shard
        action: hashmod
      - regex: 'env'
        replacement: environment
        action: labelmap
      - source_labels: [team]
        target_label: __param_team
      - regex: 'team|env'
        action: labeldrop
      - source_labels: [environment]
        regex: 'nothing-matches'
        action: drop
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: dropped_metric
        action: drop
      - regex: noise
        action: labeldrop
"#,
        dir = targets_file.parent().unwrap().display()
    )
}

fn write_targets(file: &std::path::Path, a: &str, b: Option<&str>) {
    let mut groups = vec![
        serde_json::json!({"targets": [a], "labels": {"team": "Web", "env": "prod"}}),
        serde_json::json!({"targets": [a], "labels": {"team": "db", "env": "test"}}),
        serde_json::json!({"targets": ["localhost:1"], "labels": {"team": "skip"}}),
    ];
    if let Some(b) = b {
        groups.push(serde_json::json!({"targets": [b], "labels": {"team": "Web", "env": "prod"}}));
    }
    // Written by rename, as a deploy tool would.
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_string(&groups).unwrap()).unwrap();
    std::fs::rename(&tmp, file).unwrap();
}

fn get_json(base: &str, path: &str) -> Value {
    let text = reqwest::blocking::get(format!("{base}{path}")).and_then(|r| r.text()).expect("GET");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
}

/// Active targets as (labels, scrape URL), dropped targets as their discovered labels.
fn target_sets(base: &str) -> (BTreeSet<(String, String)>, BTreeSet<String>) {
    let t = get_json(base, "/api/v1/targets");
    let active = t["data"]["activeTargets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["labels"].to_string(), t["scrapeUrl"].as_str().unwrap_or_default().to_string()))
        .collect();
    let dropped = t["data"]["droppedTargets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let labels: BTreeMap<String, String> = serde_json::from_value(t["discoveredLabels"].clone()).unwrap();
            serde_json::to_string(&labels).unwrap()
        })
        .collect();
    (active, dropped)
}

/// The series of `query` at the server's now: labels → value.
fn series(base: &str, query: &str) -> BTreeMap<String, String> {
    let q = form_urlencoded::Serializer::new(String::new()).append_pair("query", query).finish();
    let v = get_json(base, &format!("/api/v1/query?{q}"));
    assert_eq!(v["status"], "success", "{v}");
    v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let labels: BTreeMap<String, String> = serde_json::from_value(s["metric"].clone()).unwrap();
            (serde_json::to_string(&labels).unwrap(), s["value"][1].as_str().unwrap().to_string())
        })
        .collect()
}

const SCRAPED: &str =
    r#"{job="files",__name__=~"requests_total|temperature|rpc_seconds_.*|param_echo|other_path|dropped_metric|up"}"#;

#[test]
fn file_sd_relabeling_and_native_scrapes_match_prometheus() {
    let (a, b) = (exporter(), exporter());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets.json");
    write_targets(&file, &a.addr, Some(&b.addr));
    let scrape = scrape_config(&file);
    let prometheus = Prometheus::start(&scrape, &[]);
    let prom = format!("http://{}", prometheus.addr);
    let agent = Agent::start(&format!("global: {{scrape_interval: 1s, scrape_timeout: 1s}}\n{scrape}"));

    // Both see the two targets at A, the one at B, and the dropped one.
    let settled = |base: &str| {
        eventually(Duration::from_secs(30), || {
            let (active, dropped) = target_sets(base);
            (active.len() == 3 && dropped.len() == 1).then_some((active, dropped))
        })
        .unwrap_or_else(|| panic!("{base}: targets did not settle: {:?}", target_sets(base)))
    };
    let ours = settled(&agent.base);
    let theirs = settled(&prom);
    assert_eq!(ours.0, theirs.0, "active targets (labels, scrapeUrl) differ");
    assert_eq!(ours.1, theirs.1, "dropped targets' discovered labels differ");

    // The same series with the same values, after both scraped a few times.
    let same_series = || {
        eventually(Duration::from_secs(30), || {
            let (o, t) = (series(&agent.base, SCRAPED), series(&prom, SCRAPED));
            (o.len() >= 10 && o == t).then_some(o)
        })
    };
    let stored = same_series().unwrap_or_else(|| {
        panic!("stored series differ:\nours   {:?}\ntheirs {:?}", series(&agent.base, SCRAPED), series(&prom, SCRAPED))
    });
    assert!(stored.keys().any(|k| k.contains("\"exported_job\":\"inner\"")), "{stored:?}");
    assert!(stored.keys().any(|k| k.contains("\"team\":\"Web\"") && k.contains("param_echo")), "{stored:?}");
    assert!(!stored.keys().any(|k| k.contains("dropped_metric") || k.contains("noise")), "{stored:?}");

    // The dropped target says why, in the API and on the page.
    let targets = agent.targets();
    let reason = targets["data"]["droppedTargets"][0]["dropReason"].as_str().unwrap().to_string();
    assert_eq!(reason, "relabel_configs[0] (action drop on [team] regex \"skip\")");
    let page = eventually(Duration::from_secs(10), || {
        let page = agent.get("/");
        page.contains("files (3/3 up, 1 dropped)").then_some(page)
    })
    .unwrap_or_else(|| panic!("page: {}", agent.get("/")));
    assert!(page.contains("relabel_configs[0] (action drop on [team] regex &quot;skip&quot;)"), "{page}");

    // B leaves the file: both drop its target, and its series end (stale).
    write_targets(&file, &a.addr, None);
    let gone = |base: &str| {
        eventually(Duration::from_secs(30), || (target_sets(base).0.len() == 2).then_some(()))
            .unwrap_or_else(|| panic!("{base}: B's target did not go"));
    };
    gone(&agent.base);
    gone(&prom);
    let b_up = format!("up{{job=\"files\",instance=\"{}\"}}", b.addr);
    for base in [&agent.base, &prom] {
        eventually(Duration::from_secs(20), || series(base, &b_up).is_empty().then_some(()))
            .unwrap_or_else(|| panic!("{base}: B's up series is not stale: {:?}", series(base, &b_up)));
    }
    assert_eq!(same_series().map(|s| s.len()), Some(series(&prom, SCRAPED).len()));

    // A broken edit keeps the last good targets and shows the error.
    std::fs::write(&file, "[{\"targets\": [\"x:1\"], \"labls\": {}}]").unwrap();
    let error = eventually(Duration::from_secs(30), || {
        let page = agent.get("/");
        page.contains("unknown field `labls`").then_some(page)
    })
    .unwrap_or_else(|| panic!("the file error is not shown: {}", agent.get("/")));
    assert!(error.contains("targets.json"), "{error}");
    assert_eq!(target_sets(&agent.base).0.len(), 2, "targets kept");
    drop(prometheus);
}

#[test]
fn targets_command_prints_active_and_dropped_with_reasons() {
    let a = exporter();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets.json");
    write_targets(&file, &a.addr, None);
    let config = dir.path().join("wasmon.yaml");
    std::fs::write(&config, scrape_config(&file)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wasmon"))
        .args(["targets", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("job files (native scrape): 2 active, 1 dropped"), "{text}");
    assert!(text.contains(&format!("active   http://{}/other?team=db", a.addr)), "{text}");
    assert!(
        text.contains("dropped  localhost:1  by relabel_configs[0] (action drop on [team] regex \"skip\")"),
        "{text}"
    );
}
