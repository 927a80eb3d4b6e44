//! The public API as the HTTP layer uses it: result shapes, error kinds,
//! limits, and robustness against arbitrary query text.

use std::time::Duration;

use proptest::prelude::*;
use wasmon_query::{Engine, EngineOptions, QueryError, Value};
use wasmon_storage::testing::VecStore;
use wasmon_storage::{Labels, stale_nan};

fn store() -> VecStore {
    let mut s = VecStore::default();
    for (job, step) in [("a", 1.0), ("b", 2.0)] {
        let l = Labels::from_pairs([("__name__", "up_total"), ("job", job)]);
        for i in 0..20 {
            s.push(&l, i * 15_000, i as f64 * step);
        }
    }
    let g = Labels::from_pairs([("__name__", "gauge")]);
    s.push(&g, 0, 1.0);
    s.push(&g, 15_000, stale_nan());
    s
}

fn engine() -> Engine {
    Engine::new(EngineOptions::default())
}

#[test]
fn instant_results_have_prometheus_shapes() {
    let s = store();
    let e = engine();
    assert_eq!(e.instant(&s, "1 + 1", 5_000).unwrap(), Value::Scalar { t: 5_000, v: 2.0 });
    assert_eq!(e.instant(&s, "\"x\"", 5_000).unwrap(), Value::String { t: 5_000, v: "x".into() });
    let Value::Vector(v) = e.instant(&s, "up_total", 40_000).unwrap() else { panic!("not a vector") };
    assert_eq!(v.len(), 2);
    assert!(v.iter().all(|s| s.t == 40_000));
    let Value::Matrix(m) = e.instant(&s, "up_total{job=\"a\"}[30s]", 45_000).unwrap() else { panic!("not a matrix") };
    let ts: Vec<i64> = m[0].samples.iter().map(|p| p.t).collect();
    assert_eq!(ts, [15_000, 30_000, 45_000]);
    assert_eq!(e.instant(&s, "gauge", 20_000).unwrap(), Value::Vector(vec![]));
}

#[test]
fn range_results_are_sorted_matrices() {
    let s = store();
    let e = engine();
    let Value::Matrix(m) = e.range(&s, "sum by (job) (rate(up_total[1m]))", 60_000, 120_000, 30_000).unwrap() else {
        panic!("not a matrix")
    };
    let jobs: Vec<&str> = m.iter().map(|s| s.labels.get("job").unwrap()).collect();
    assert_eq!(jobs, ["a", "b"]);
    assert_eq!(m[0].samples.len(), 3);
    let Value::Matrix(m) = e.range(&s, "time()", 0, 60_000, 30_000).unwrap() else { panic!("not a matrix") };
    assert_eq!(m.len(), 1);
    assert!(m[0].labels.is_empty());
    assert_eq!(m[0].samples.iter().map(|p| p.v).collect::<Vec<_>>(), [0.0, 30.0, 60.0]);
}

#[test]
fn errors_map_to_prometheus_error_types() {
    let s = store();
    let e = engine();
    let parse = e.instant(&s, "sum(", 0).unwrap_err();
    assert!(matches!(parse, QueryError::Parse(_)));
    assert_eq!((parse.error_type(), parse.http_status()), ("bad_data", 400));

    let exec = e.instant(&s, "up_total + on() up_total", 30_000).unwrap_err();
    assert!(matches!(exec, QueryError::Execution(_)), "{exec:?}");
    assert_eq!((exec.error_type(), exec.http_status()), ("execution", 422));
    assert!(exec.to_string().contains("many-to-many matching not allowed"), "{exec}");

    let range = e.range(&s, "up_total[5m]", 0, 60_000, 15_000).unwrap_err();
    assert_eq!(
        range.to_string(),
        "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector"
    );
    assert_eq!(range.error_type(), "bad_data");

    let res = e.range(&s, "up_total", 0, 11_001_000, 1_000).unwrap_err();
    assert_eq!(
        res.to_string(),
        "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"
    );
    assert!(e.range(&s, "up_total", 0, 11_000_000, 1_000).is_ok());
    assert_eq!(e.range(&s, "up_total", 0, 60_000, 0).unwrap_err().error_type(), "bad_data");
    assert_eq!(e.range(&s, "up_total", 60_000, 0, 1).unwrap_err().error_type(), "bad_data");
    assert_eq!(e.range(&s, "up_total", i64::MIN, i64::MAX, 1).unwrap_err().error_type(), "bad_data");
}

#[test]
fn limits_are_enforced() {
    let s = store();
    let small = Engine::new(EngineOptions { max_samples: 5, ..EngineOptions::default() });
    let err = small.instant(&s, "up_total[10m]", 300_000).unwrap_err();
    assert_eq!(err, QueryError::TooManySamples);
    assert_eq!(err.error_type(), "execution");

    let hurried = Engine::new(EngineOptions { timeout: Duration::from_nanos(1), ..EngineOptions::default() });
    std::thread::sleep(Duration::from_millis(1));
    let err = hurried.range(&s, "rate(up_total[1m])", 0, 10_000_000, 1_000).unwrap_err();
    assert_eq!(err, QueryError::Timeout);
    assert_eq!(err.error_type(), "timeout");
}

#[test]
fn only_prometheus_2_42_functions_are_accepted() {
    let s = store();
    let e = engine();
    assert!(e.instant(&s, "holt_winters(up_total[5m], 0.5, 0.5)", 300_000).is_ok());
    for q in ["double_exponential_smoothing(up_total[5m], 0.5, 0.5)", "sort_by_label(up_total)", "limitk(1, up_total)"]
    {
        assert!(matches!(e.instant(&s, q, 0), Err(QueryError::Parse(_))), "{q}");
    }
    // The rename must not touch string literals.
    let Value::Vector(v) = e.instant(&s, r#"label_replace(vector(1), "x", "holt_winters(", "", "")"#, 0).unwrap()
    else {
        panic!("not a vector")
    };
    assert_eq!(v[0].labels.get("x"), Some("holt_winters("));
}

#[test]
fn lookback_delta_is_configurable() {
    let s = store();
    let short = Engine::new(EngineOptions { lookback_delta: Duration::from_secs(10), ..EngineOptions::default() });
    let Value::Vector(v) = short.instant(&s, "up_total", 300_000).unwrap() else { panic!("not a vector") };
    assert!(v.is_empty());
    let Value::Vector(v) = short.instant(&s, "up_total", 290_000).unwrap() else { panic!("not a vector") };
    assert_eq!(v.len(), 2);
}

fn token() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "up_total",
        "gauge",
        "{",
        "}",
        "(",
        ")",
        "[",
        "]",
        "[5m]",
        "[1m:10s]",
        ",",
        "job",
        "=",
        "=~",
        "!=",
        "\"a\"",
        "\".*\"",
        "\"(\"",
        "+",
        "-",
        "*",
        "/",
        "%",
        "^",
        "==",
        "bool",
        ">",
        "and",
        "or",
        "unless",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "by",
        "without",
        "sum",
        "topk",
        "quantile",
        "count_values",
        "rate",
        "abs",
        "histogram_quantile",
        "label_replace",
        "label_join",
        "absent",
        "scalar",
        "vector",
        "time",
        "offset",
        "@",
        "start()",
        "end()",
        "1",
        "0",
        "-1",
        "NaN",
        "Inf",
        "1e308",
        "0.5",
        "1h",
        "-5m",
        "9999999999999",
        ":",
        "holt_winters",
        "round",
        "clamp",
        "sort",
        "predict_linear",
        "timestamp",
        "day_of_week",
        "count_over_time",
        "stddev",
        "le",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Any query text yields a value or an error, never a panic.
    #[test]
    fn arbitrary_queries_never_panic(tokens in prop::collection::vec(token(), 1..14), t in -1_000_000i64..1_000_000) {
        let q = tokens.join(" ");
        let s = store();
        let e = engine();
        let _ = e.instant(&s, &q, t);
        let _ = e.range(&s, &q, t, t + 120_000, 30_000);
    }

    #[test]
    fn arbitrary_bytes_never_panic(q in ".{0,40}") {
        let s = store();
        let _ = engine().instant(&s, &q, 0);
    }
}
