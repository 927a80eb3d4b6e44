//! Native scraping with Prometheus' scrape options, against in-process
//! exporters that check what the agent sends (credentials, params,
//! `Accept-Encoding`) and answer in the ways real ones do (gzip,
//! OpenMetrics, old timestamps, broken text, too much).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Agent, FakeExporter, eventually};
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn gzip(text: &str) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap()
}

/// Answers by path: each path is one behaviour under test.
fn exporter() -> FakeExporter {
    FakeExporter::start(|target, headers| {
        let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
        let text = |body: String| {
            (200, vec![("Content-Type".to_string(), "text/plain; version=0.0.4".to_string())], body.into_bytes())
        };
        let path = target.split('?').next().unwrap_or_default();
        let query = target.split_once('?').map(|(_, q)| q.to_string()).unwrap_or_default();
        match path {
            "/auth" => {
                // "scraper:s3cret", base64.
                if header("authorization") == "Basic c2NyYXBlcjpzM2NyZXQ=" {
                    text("authed 1\n".into())
                } else {
                    (401, vec![], b"unauthorized".to_vec())
                }
            }
            "/gzip" => {
                assert!(header("accept-encoding").contains("gzip"));
                let body = gzip("# TYPE zipped gauge\nzipped{a=\"b\"} 7\n");
                (
                    200,
                    vec![("Content-Encoding".into(), "gzip".into()), ("Content-Type".into(), "text/plain".into())],
                    body,
                )
            }
            "/openmetrics" => (
                200,
                vec![("Content-Type".into(), "application/openmetrics-text; version=1.0.0; charset=utf-8".into())],
                b"# TYPE om_events counter\nom_events_total 5\n# EOF\n".to_vec(),
            ),
            "/labels" => text("inner_job{job=\"inner\",instance=\"other\"} 1\n".into()),
            "/old" => {
                let hour_ago = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64 - 3_600_000;
                text(format!("old_sample 3 {hour_ago}\n"))
            }
            "/many" => text((0..5).map(|i| format!("many{{i=\"{i}\"}} {i}\n")).collect()),
            "/broken" => text("ok_line 1\nbroken{a=\"b\" 2\n".into()),
            "/params" => text(format!("params{{query=\"{query}\"}} 1\n")),
            _ => (404, vec![], b"not found".to_vec()),
        }
    })
}

fn job(name: &str, path: &str, addr: &str, extra: &str) -> String {
    format!("  - job_name: {name}\n    metrics_path: {path}\n    static_configs: [{{targets: ['{addr}']}}]\n{extra}")
}

fn query(agent: &Agent, q: &str) -> serde_json::Value {
    let q = form_urlencoded::Serializer::new(String::new()).append_pair("query", q).finish();
    let v: serde_json::Value = serde_json::from_str(&agent.get(&format!("/api/v1/query?{q}"))).unwrap();
    v["data"]["result"].clone()
}

fn target<'a>(targets: &'a serde_json::Value, job: &str) -> &'a serde_json::Value {
    targets["data"]["activeTargets"].as_array().unwrap().iter().find(|t| t["labels"]["job"] == job).unwrap()
}

#[test]
fn scrape_options_behave_like_prometheus() {
    let e = exporter();
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, "s3cret\n").unwrap();
    let down = format!("127.0.0.1:{}", common::free_port());
    let jobs = [
        job(
            "auth",
            "/auth",
            &e.addr,
            &format!("    basic_auth: {{username: scraper, password_file: {}}}\n", password.display()),
        ),
        job("auth-wrong", "/auth", &e.addr, "    basic_auth: {username: scraper, password: nope}\n"),
        job("gzip", "/gzip", &e.addr, ""),
        job("openmetrics", "/openmetrics", &e.addr, ""),
        job("dishonored", "/labels", &e.addr, ""),
        job("honored", "/labels", &e.addr, "    honor_labels: true\n"),
        job("old-honored", "/old", &e.addr, ""),
        job("old-ignored", "/old", &e.addr, "    honor_timestamps: false\n"),
        job("sample-limit", "/many", &e.addr, "    sample_limit: 3\n"),
        job("label-limit", "/many", &e.addr, "    label_limit: 2\n"),
        job("label-value-limit", "/labels", &e.addr, "    label_value_length_limit: 4\n"),
        job("body-limit", "/many", &e.addr, "    body_size_limit: 20B\n"),
        job("broken", "/broken", &e.addr, ""),
        job("params", "/params", &e.addr, "    params: {module: [a, b], target: 'x y'}\n"),
        job("down", "/metrics", &down, ""),
    ];
    let agent = Agent::start(&format!(
        "global: {{scrape_interval: 1s, scrape_timeout: 1s}}\nscrape_configs:\n{}",
        jobs.join("")
    ));
    let names: Vec<&str> = jobs.iter().map(|j| j.split_whitespace().nth(2).unwrap()).collect();
    agent.wait_for_scrapes(&names, 2.0);
    let targets = agent.targets();
    let health = |job: &str| target(&targets, job)["health"].as_str().unwrap().to_string();
    let error = |job: &str| target(&targets, job)["lastError"].as_str().unwrap().to_string();

    for up in
        ["auth", "gzip", "openmetrics", "dishonored", "honored", "old-honored", "old-ignored", "label-limit", "params"]
    {
        assert_eq!(health(up), "up", "{up}: {}", error(up));
    }
    assert!(error("auth-wrong").contains("401"), "{}", error("auth-wrong"));
    assert!(error("sample-limit").contains("5 series returned, over sample_limit 3"), "{}", error("sample-limit"));
    assert!(error("label-value-limit").contains("label_value_length_limit 4"), "{}", error("label-value-limit"));
    assert!(error("body-limit").contains("body_size_limit of 20 bytes exceeded"), "{}", error("body-limit"));
    assert!(error("broken").starts_with("parse_error: line 2, column"), "{}", error("broken"));
    assert!(
        error("down").starts_with("scrape_error: ") && error("down").contains("onnection refused"),
        "{}",
        error("down")
    );
    // Never a panic or a lost agent: every failing target reports up 0.
    for down in ["auth-wrong", "sample-limit", "label-value-limit", "body-limit", "broken", "down"] {
        assert_eq!(health(down), "down", "{down}");
        let up = query(&agent, &format!("up{{job=\"{down}\"}}"));
        assert_eq!(up[0]["value"][1], "0", "{down}: {up}");
    }

    let one = |q: &str| {
        eventually(Duration::from_secs(10), || {
            let r = query(&agent, q);
            (r.as_array().is_some_and(|a| a.len() == 1)).then_some(r[0].clone())
        })
        .unwrap_or_else(|| panic!("{q}: {}", query(&agent, q)))
    };
    assert_eq!(one("authed")["value"][1], "1");
    assert_eq!(one("zipped{a=\"b\"}")["value"][1], "7");
    assert_eq!(one("om_events_total")["value"][1], "5");
    // honor_labels: false keeps the scraped labels as exported_*; true lets them win.
    let dishonored = one("inner_job{job=\"dishonored\"}");
    assert_eq!(dishonored["metric"]["exported_job"], "inner");
    assert_eq!(dishonored["metric"]["exported_instance"], "other");
    let honored = one("inner_job{job=\"inner\"}");
    assert_eq!(honored["metric"]["instance"], "other");
    // An hour-old timestamp is kept (so nothing at now) unless ignored.
    assert!(query(&agent, "old_sample{job=\"old-honored\"}").as_array().unwrap().is_empty());
    assert_eq!(one("old_sample{job=\"old-ignored\"}")["value"][1], "3");
    assert_eq!(
        one("params")["metric"]["query"],
        "module=a&module=b&target=x+y",
        "repeated params in order, sorted by name"
    );
    // What the exporter saw: Prometheus' Accept header and timeout header.
    let requests = e.requests.lock().unwrap();
    let (_, headers) = requests.iter().find(|(t, _)| t.starts_with("/openmetrics")).unwrap();
    let accept = headers.iter().find(|(k, _)| k == "accept").map(|(_, v)| v.as_str()).unwrap_or_default();
    assert!(accept.starts_with("application/openmetrics-text;version=1.0.0"), "{accept}");
    assert!(headers.iter().any(|(k, v)| k == "x-prometheus-scrape-timeout-seconds" && v == "1"), "{headers:?}");
}
