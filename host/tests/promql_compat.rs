//! PromQL compatibility: the same samples are pushed by remote write into
//! wasmon and into a real Prometheus 2.42 (Debian `prometheus`); every query
//! of `promql_compat/queries.txt` then runs against both HTTP APIs, three
//! times as an instant query and once as a range query, and the answers
//! must be equal (same result type, same series, floats within 1e-9
//! relative; errors must be errors on both sides).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};
use wasmon::remote::{encode_request, proto};
use wasmon_test_servers::prometheus::Prometheus;

const STEP_MS: i64 = 15_000;
const POINTS: i64 = 200;
const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// A series and its value at sample index `i` (None: no sample).
struct SeriesDef {
    labels: Vec<(&'static str, String)>,
    value: Box<dyn Fn(i64) -> Option<f64>>,
}

fn def(labels: &[(&'static str, &str)], value: impl Fn(i64) -> Option<f64> + 'static) -> SeriesDef {
    SeriesDef { labels: labels.iter().map(|(k, v)| (*k, v.to_string())).collect(), value: Box::new(value) }
}

/// Counters with and without resets, gauges going negative, NaN and ±Inf,
/// a gap longer than the lookback, a series that ends with a stale marker,
/// classic histograms, an info metric for group_left, and label sets that
/// collide once a label is ignored.
fn dataset() -> Vec<SeriesDef> {
    let mut d = vec![
        def(
            &[
                ("__name__", "http_requests_total"),
                ("job", "api"),
                ("instance", "a:80"),
                ("method", "get"),
                ("code", "200"),
            ],
            |i| Some(10.0 * i as f64),
        ),
        def(
            &[
                ("__name__", "http_requests_total"),
                ("job", "api"),
                ("instance", "a:80"),
                ("method", "post"),
                ("code", "500"),
            ],
            |i| Some((3 * i + i % 7) as f64),
        ),
        def(
            &[
                ("__name__", "http_requests_total"),
                ("job", "api"),
                ("instance", "b:80"),
                ("method", "get"),
                ("code", "200"),
            ],
            |i| Some(if i < 100 { 5.0 * i as f64 } else { 5.0 * (i - 100) as f64 + 2.0 }),
        ),
        def(
            &[
                ("__name__", "http_requests_total"),
                ("job", "web"),
                ("instance", "c:80"),
                ("method", "get"),
                ("code", "404"),
            ],
            |i| Some(((i * i) / 10) as f64),
        ),
        def(&[("__name__", "node_memory_free_bytes"), ("job", "node"), ("instance", "a:80")], |i| {
            Some(1e9 + 1e7 * (i as f64 / 10.0).sin())
        }),
        def(&[("__name__", "node_memory_free_bytes"), ("job", "node"), ("instance", "b:80")], |i| {
            Some(2e9 - 1e6 * i as f64)
        }),
        def(&[("__name__", "temperature_celsius"), ("job", "sensors"), ("room", "kitchen")], |i| {
            Some(-5.0 + (i % 17) as f64)
        }),
        def(&[("__name__", "temperature_celsius"), ("job", "sensors"), ("room", "garage")], |i| {
            Some(-3.25 + 0.5 * (i % 9) as f64)
        }),
        def(&[("__name__", "special"), ("kind", "nan")], |i| Some(if i % 5 == 0 { f64::NAN } else { i as f64 })),
        def(&[("__name__", "special"), ("kind", "inf")], |i| Some(if i % 10 == 0 { f64::INFINITY } else { 1.0 })),
        def(&[("__name__", "special"), ("kind", "neginf")], |i| {
            Some(if i % 4 == 0 { f64::NEG_INFINITY } else { -2.0 })
        }),
        def(&[("__name__", "gappy"), ("instance", "x")], |i| (!(60..=120).contains(&i)).then_some(i as f64)),
        def(&[("__name__", "ending"), ("instance", "y")], |i| match i {
            0..100 => Some(i as f64 * 1.5),
            100 => Some(f64::from_bits(STALE_NAN)),
            _ => None,
        }),
        def(&[("__name__", "build_info"), ("job", "api"), ("instance", "a:80"), ("version", "1.2.3")], |_| Some(1.0)),
        def(&[("__name__", "build_info"), ("job", "api"), ("instance", "b:80"), ("version", "1.2.4")], |_| Some(1.0)),
        def(&[("__name__", "up"), ("job", "api"), ("instance", "a:80")], |i| {
            Some(if (i / 20) % 2 == 0 { 1.0 } else { 0.0 })
        }),
        def(&[("__name__", "up"), ("job", "api"), ("instance", "b:80")], |_| Some(1.0)),
        def(&[("__name__", "dup"), ("a", "1"), ("b", "x")], |i| Some(i as f64)),
        def(&[("__name__", "dup"), ("a", "1"), ("b", "y")], |i| Some(2.0 * i as f64)),
    ];
    for (instance, scale) in [("a:80", 1.0), ("b:80", 3.0)] {
        for (le, share) in [("0.1", 0.2), ("0.5", 0.6), ("1", 0.9), ("+Inf", 1.0)] {
            d.push(def(
                &[("__name__", "request_duration_seconds_bucket"), ("job", "api"), ("instance", instance), ("le", le)],
                move |i| Some((share * scale * 10.0 * i as f64).floor()),
            ));
        }
        d.push(def(
            &[("__name__", "request_duration_seconds_count"), ("job", "api"), ("instance", instance)],
            move |i| Some((scale * 10.0 * i as f64).floor()),
        ));
        d.push(def(
            &[("__name__", "request_duration_seconds_sum"), ("job", "api"), ("instance", instance)],
            move |i| Some(scale * 2.7 * i as f64),
        ));
    }
    d
}

fn write_request(start_ms: i64) -> proto::WriteRequest {
    let timeseries = dataset()
        .into_iter()
        .map(|d| {
            let mut labels: Vec<proto::Label> =
                d.labels.iter().map(|(k, v)| proto::Label { name: k.to_string(), value: v.clone() }).collect();
            labels.sort_by(|a, b| a.name.cmp(&b.name));
            let samples = (0..POINTS)
                .filter_map(|i| (d.value)(i).map(|value| proto::Sample { value, timestamp: start_ms + i * STEP_MS }))
                .collect();
            proto::TimeSeries { labels, samples }
        })
        .collect();
    proto::WriteRequest { timeseries, metadata: vec![] }
}

fn push(base: &str, request: &proto::WriteRequest) {
    let response = reqwest::blocking::Client::new()
        .post(format!("{base}/api/v1/write"))
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(encode_request(request))
        .send()
        .expect("remote write");
    let status = response.status();
    assert!(status.is_success(), "{base} refused the push: {status} {}", response.text().unwrap_or_default());
}

fn get(base: &str, path: &str, params: &[(&str, String)]) -> Json {
    let response = reqwest::blocking::Client::new().get(format!("{base}{path}")).query(params).send().expect("query");
    serde_json::from_str(&response.text().expect("body")).expect("JSON answer")
}

fn floats_equal(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) if x.is_finite() && y.is_finite() => {
            (x - y).abs() <= 1e-9 * x.abs().max(y.abs()) || (x - y).abs() < 1e-12
        }
        _ => false,
    }
}

fn point(p: &Json) -> (String, String) {
    (p[0].to_string(), p[1].as_str().unwrap_or_default().to_string())
}

fn points_equal(a: &[(String, String)], b: &[(String, String)]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.0 == y.0 && floats_equal(&x.1, &y.1))
}

/// Does an answer hold any data (a non-empty vector or matrix, or a scalar)?
fn has_data(answer: &Json) -> bool {
    match answer["data"]["resultType"].as_str() {
        Some("vector") | Some("matrix") => answer["data"]["result"].as_array().is_some_and(|r| !r.is_empty()),
        Some(_) => true,
        None => false,
    }
}

/// Why two API answers differ, or None when they agree.
fn compare(ours: &Json, theirs: &Json, ordered: bool) -> Option<String> {
    let status = |j: &Json| j["status"].as_str().unwrap_or("?").to_string();
    match (status(ours).as_str(), status(theirs).as_str()) {
        ("error", "error") => {
            return (ours["errorType"] != theirs["errorType"])
                .then(|| format!("errorType: ours {ours} / prometheus {theirs}"));
        }
        ("success", "success") => {}
        _ => return Some(format!("status: ours {ours} / prometheus {theirs}")),
    }
    let (a, b) = (&ours["data"], &theirs["data"]);
    if a["resultType"] != b["resultType"] {
        return Some(format!("result type: ours {} / prometheus {}", a["resultType"], b["resultType"]));
    }
    match a["resultType"].as_str() {
        Some("scalar") | Some("string") => {
            let (x, y) = (point(&a["result"]), point(&b["result"]));
            (!points_equal(std::slice::from_ref(&x), std::slice::from_ref(&y)))
                .then(|| format!("ours {x:?} / prometheus {y:?}"))
        }
        Some(kind) => {
            let key = if kind == "vector" { "value" } else { "values" };
            let series = |d: &Json| -> Vec<(String, Vec<(String, String)>)> {
                let mut v: Vec<_> = d["result"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|s| {
                        let labels: BTreeMap<String, String> = serde_json::from_value(s["metric"].clone()).unwrap();
                        let pts = if kind == "vector" {
                            vec![point(&s[key])]
                        } else {
                            s[key].as_array().unwrap().iter().map(point).collect()
                        };
                        (format!("{labels:?}"), pts)
                    })
                    .collect();
                if !ordered {
                    v.sort();
                }
                v
            };
            let (x, y) = (series(a), series(b));
            if x.len() != y.len() {
                let names = |s: &[(String, Vec<(String, String)>)]| s.iter().map(|p| p.0.clone()).collect::<Vec<_>>();
                return Some(format!(
                    "{} series / prometheus {}: ours {:?} / theirs {:?}",
                    x.len(),
                    y.len(),
                    names(&x),
                    names(&y)
                ));
            }
            for (sx, sy) in x.iter().zip(&y) {
                if sx.0 != sy.0 {
                    return Some(format!("series ours {} / prometheus {}", sx.0, sy.0));
                }
                if !points_equal(&sx.1, &sy.1) {
                    let first = sx.1.iter().zip(&sy.1).find(|(p, q)| !(p.0 == q.0 && floats_equal(&p.1, &q.1)));
                    return Some(format!(
                        "{}: {} points / prometheus {}; first difference ours {:?} / prometheus {:?}",
                        sx.0,
                        sx.1.len(),
                        sy.1.len(),
                        first.map(|f| f.0),
                        first.map(|f| f.1)
                    ));
                }
            }
            None
        }
        None => Some("no resultType".into()),
    }
}

fn seconds(ms: i64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

#[test]
fn promql_results_equal_prometheus() {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    let start = (now - 55 * 60_000) / 60_000 * 60_000;
    let end = start + (POINTS - 1) * STEP_MS;

    let prometheus = Prometheus::start("", &[]);
    let agent = common::Agent::start("web:\n  enable_remote_write_receiver: true\n");
    let request = write_request(start);
    push(&format!("http://{}", prometheus.addr), &request);
    push(&agent.base, &request);

    let theirs = format!("http://{}", prometheus.addr);
    let mid = start + 25 * 60_000;
    let instants = [start + 10 * 60_000 + 7_000, mid, end + 2 * 60_000];
    let text = include_str!("promql_compat/queries.txt");
    let queries: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.replace("$MID", &seconds(mid)))
        .collect();
    assert!(queries.len() >= 150, "the suite should have at least 150 queries, has {}", queries.len());

    let mut failures = Vec::new();
    let mut with_data = 0;
    for query in &queries {
        let ordered = query.starts_with("sort");
        let mut problem = None;
        for t in instants {
            let params = [("query", query.clone()), ("time", seconds(t))];
            let ours = get(&agent.base, "/api/v1/query", &params);
            let reference = get(&theirs, "/api/v1/query", &params);
            if let Some(why) = compare(&ours, &reference, ordered) {
                problem = Some(format!("instant at {}: {why}", seconds(t)));
                break;
            }
        }
        if problem.is_none() {
            let params = [
                ("query", query.clone()),
                ("start", seconds(start + 5 * 60_000)),
                ("end", seconds(end + 3 * 60_000)),
                ("step", "60".to_string()),
            ];
            let ours = get(&agent.base, "/api/v1/query_range", &params);
            let reference = get(&theirs, "/api/v1/query_range", &params);
            with_data += usize::from(has_data(&reference));
            if let Some(why) = compare(&ours, &reference, false) {
                problem = Some(format!("range: {why}"));
            }
        }
        if let Some(why) = problem {
            failures.push(format!("{query}\n    {why}"));
        }
    }
    let passed = queries.len() - failures.len();
    println!(
        "PromQL compatibility with Prometheus 2.42: {passed}/{} queries equal ({with_data} with data in Prometheus' range answer)",
        queries.len()
    );
    // Guard against a vacuous comparison (e.g. the push reaching neither side).
    assert!(with_data * 10 >= queries.len() * 8, "only {with_data} of {} queries returned data", queries.len());
    for f in &failures {
        println!("  differs: {f}");
    }
    assert!(
        failures.is_empty(),
        "{} of {} queries differ from Prometheus:\n{}",
        failures.len(),
        queries.len(),
        failures.join("\n")
    );
}

#[test]
fn the_comparison_sees_differences() {
    let answer = |v: &str| -> Json {
        serde_json::from_str(&format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{"a":"1"}},"value":[1,"{v}"]}}]}}}}"#
        ))
        .unwrap()
    };
    assert!(compare(&answer("1"), &answer("1.0000000000001"), false).is_none(), "within 1e-9 relative");
    assert!(compare(&answer("1"), &answer("1.001"), false).is_some());
    assert!(compare(&answer("NaN"), &answer("NaN"), false).is_none());
    assert!(compare(&answer("NaN"), &answer("1"), false).is_some());
    assert!(compare(&answer("+Inf"), &answer("-Inf"), false).is_some());
    let empty: Json =
        serde_json::from_str(r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#).unwrap();
    assert!(compare(&answer("1"), &empty, false).is_some());
    let error: Json = serde_json::from_str(r#"{"status":"error","errorType":"bad_data","error":"x"}"#).unwrap();
    assert!(compare(&answer("1"), &error, false).is_some());
}
