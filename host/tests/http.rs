//! `/metrics` content negotiation and compression, health and readiness.

mod common;

use common::{Agent, eventually, plugin, value};
use std::io::Read;
use std::time::Duration;

fn agent() -> Agent {
    let agent = Agent::start(&format!(
        "global: {{scrape_interval: 1s, scrape_timeout: 1s}}\nscrape_configs:\n  - job_name: example\n    plugin: {}\n    static_configs: [{{targets: [a], labels: {{team: infra}}}}]\n    capabilities: {{files: default}}\n",
        plugin("wasmon_example_plugin").display()
    ));
    eventually(Duration::from_secs(30), || {
        (value(&agent.metrics(), "up", &[("job", "example")]) == Some(1.0)).then_some(())
    })
    .expect("example target up");
    agent
}

#[test]
fn metrics_negotiates_text_and_openmetrics_and_gzips() {
    let agent = agent();
    let client = reqwest::blocking::Client::new();
    let url = format!("{}/metrics", agent.base);

    let text = client.get(&url).send().unwrap();
    assert_eq!(text.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    let body = text.text().unwrap();
    assert!(
        body.contains("example_uptime_seconds{greeting=\"hello\",instance=\"a\",job=\"example\",team=\"infra\"}"),
        "{body}"
    );
    assert!(!body.contains("# EOF"));

    let om = client
        .get(&url)
        .header("Accept", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")
        .send()
        .unwrap();
    assert_eq!(om.headers()["content-type"], "application/openmetrics-text; version=1.0.0; charset=utf-8");
    let om_body = om.text().unwrap();
    assert!(om_body.ends_with("# EOF\n"));
    assert!(om_body.contains("# TYPE wasmon_target_scrapes counter"), "counters lose _total in OpenMetrics TYPE lines");
    wasmon_sdk::text::parse_with(&om_body, wasmon_sdk::text::Format::OpenMetrics).expect("valid OpenMetrics");

    let gz = client.get(&url).header("Accept-Encoding", "gzip").send().unwrap();
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    let compressed = gz.bytes().unwrap();
    let mut plain = String::new();
    flate2::read::GzDecoder::new(&compressed[..]).read_to_string(&mut plain).unwrap();
    assert!(plain.contains("example_load1"));
    assert!(compressed.len() < plain.len());
}

#[test]
fn health_readiness_and_targets() {
    let agent = agent();
    assert_eq!(agent.get("/-/healthy"), "wasmon is Healthy.\n");
    assert_eq!(agent.get("/-/ready"), "wasmon is Ready.\n");
    let targets = agent.targets();
    assert_eq!(targets["status"], "success");
    let t = &targets["data"]["activeTargets"][0];
    assert_eq!(t["labels"]["job"], "example");
    assert_eq!(t["health"], "up");
    assert_eq!(t["scrapeInterval"], "1s");
    let page = agent.get("/");
    assert!(page.contains("example (1/1 up, 0 dropped)") && page.contains("<td>up</td>"), "{page}");
    // Synthetic series as Prometheus writes them.
    let m = agent.metrics();
    assert!(value(&m, "scrape_duration_seconds", &[("job", "example")]).unwrap() > 0.0);
    assert_eq!(value(&m, "scrape_samples_scraped", &[("job", "example")]), Some(2.0));
    assert!(value(&m, "wasmon_plugin_memory_high_water_bytes", &[]).unwrap() > 0.0);
}
