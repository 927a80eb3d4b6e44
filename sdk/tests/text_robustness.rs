//! Property tests: the parser never panics, whatever it is given, and its errors point
//! inside the input.

use proptest::prelude::*;
use wasmon_sdk::text::{self, Format, ParseError};
use wasmon_sdk::{
    Bucket, HistogramValue, Label, Metric, MetricFamily, MetricKind, MetricValue, Quantile, SummaryValue,
};

const NGINX: &str = include_str!("fixtures/nginx_exporter_sample.prom");
const ETCD: &str = include_str!("fixtures/etcd_sample.prom");

/// Pieces of exposition syntax, so that random text reaches deep into the parser.
const TOKENS: &[&str] = &[
    "# TYPE ",
    "# HELP ",
    "# UNIT ",
    "# EOF",
    "# ",
    "#",
    "\n",
    "\r\n",
    "\r",
    " ",
    "\t",
    "{",
    "}",
    "=",
    "\"",
    "\\",
    "\\n",
    "\\\"",
    ",",
    "x",
    "x_total",
    "x_bucket",
    "x_sum",
    "x_count",
    "x_created",
    "x_info",
    "x_gsum",
    "le",
    "quantile",
    "counter",
    "gauge",
    "histogram",
    "summary",
    "untyped",
    "unknown",
    "info",
    "stateset",
    "gaugehistogram",
    "+Inf",
    "-Inf",
    "NaN",
    "1",
    "0.5",
    "1e+06",
    "-3",
    "1700000000.123",
    "é",
    "✓",
    "\u{0}",
    "\u{feff}",
    "a",
    ":",
    "9",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..80).prop_map(|tokens| tokens.concat())
}

/// Valid expositions to mutate: every kind of family in both formats, and real captures.
fn payloads() -> Vec<String> {
    let families = {
        let mut requests =
            wasmon_sdk::Family::counter("requests_total", "Requests \"served\".\nSecond line \\ backslash.");
        requests.sample(&[("code", "200"), ("path", "/é\"\\\n")], 1027.0);
        requests.sample(&[("code", "500")], f64::NAN);
        let mut up = wasmon_sdk::Family::gauge("up", "").unit("bool");
        up.sample(&[], 1.0);
        let mut info = wasmon_sdk::Family::info("build_info", "Build.");
        info.sample(&[("version", "1")], 1.0);
        let histogram = MetricFamily {
            name: "rpc_seconds".into(),
            help: "Latency.".into(),
            unit: "seconds".into(),
            kind: MetricKind::Histogram,
            metrics: vec![Metric {
                labels: vec![Label { name: "m".into(), value: "get".into() }],
                value: MetricValue::Histogram(HistogramValue {
                    buckets: vec![Bucket { upper_bound: 0.1, count: 3 }, Bucket { upper_bound: 1e6, count: 5 }],
                    sum: 2.5,
                    count: 6,
                }),
                timestamp_ms: Some(1_700_000_000_123),
            }],
        };
        let summary = MetricFamily {
            name: "gc_seconds".into(),
            help: String::new(),
            unit: String::new(),
            kind: MetricKind::Summary,
            metrics: vec![Metric {
                labels: Vec::new(),
                value: MetricValue::Summary(SummaryValue {
                    quantiles: vec![
                        Quantile { quantile: 0.5, value: 1e-5 },
                        Quantile { quantile: 1.0, value: f64::INFINITY },
                    ],
                    sum: 0.25,
                    count: 3,
                }),
                timestamp_ms: None,
            }],
        };
        vec![requests.build(), up.build(), info.build(), histogram, summary]
    };
    let openmetrics =
        text::encode(&families, Format::OpenMetrics).replace("1027 ", "1027 # {trace_id=\"abc\"} 1 1700000000.5 ");
    let etcd_head: String = ETCD.lines().take(120).flat_map(|l| [l, "\n"]).collect();
    vec![text::encode(&families, Format::Prometheus), openmetrics, NGINX.to_string(), etcd_head]
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize),
    Insert(usize, char),
    Replace(usize, char),
    Truncate(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let interesting = prop_oneof![
        prop::sample::select(vec![
            '#', ' ', '\n', '\r', '{', '}', '=', '"', '\\', ',', '_', '.', 'e', '-', '+', '0', 'é'
        ]),
        any::<char>(),
    ];
    prop_oneof![
        any::<usize>().prop_map(Mutation::Delete),
        (any::<usize>(), interesting.clone()).prop_map(|(at, c)| Mutation::Insert(at, c)),
        (any::<usize>(), interesting).prop_map(|(at, c)| Mutation::Replace(at, c)),
        any::<usize>().prop_map(Mutation::Truncate),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
    ]
}

/// Apply a mutation at character (not byte) positions, so that the result is valid UTF-8
/// but may cut a multi-byte character's neighbours anywhere.
fn mutate(text: &str, mutation: &Mutation) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
    match *mutation {
        Mutation::Delete(i) if !chars.is_empty() => {
            chars.remove(at(i, chars.len()));
        }
        Mutation::Insert(i, c) => chars.insert(at(i, chars.len() + 1), c),
        Mutation::Replace(i, c) if !chars.is_empty() => {
            let i = at(i, chars.len());
            chars[i] = c;
        }
        Mutation::Truncate(i) => chars.truncate(at(i, chars.len() + 1)),
        Mutation::DuplicateLine(i) | Mutation::SwapLines(i, _) => {
            let mut lines: Vec<String> = chars.iter().collect::<String>().split('\n').map(str::to_string).collect();
            let n = lines.len();
            match *mutation {
                Mutation::SwapLines(a, b) => lines.swap(at(a, n), at(b, n)),
                _ => {
                    let line = lines[at(i, n)].clone();
                    lines.insert(at(i, n), line);
                }
            }
            return lines.join("\n");
        }
        _ => {}
    }
    chars.into_iter().collect()
}

/// An error must name a real line and a column within it (or just past its end).
fn check_position(text: &str, error: &ParseError) -> Result<(), TestCaseError> {
    let lines: Vec<&str> = text.split('\n').collect();
    prop_assert!(error.line >= 1 && error.line <= lines.len(), "line out of range: {error}");
    let line = lines[error.line - 1];
    let width = line.strip_suffix('\r').unwrap_or(line).chars().count();
    prop_assert!(error.column >= 1 && error.column <= width + 1, "column out of range: {error} in {line:?}");
    prop_assert!(!error.message.is_empty());
    Ok(())
}

fn parse_every_way(text: &str) -> Result<(), TestCaseError> {
    for result in
        [text::parse(text), text::parse_with(text, Format::Prometheus), text::parse_with(text, Format::OpenMetrics)]
    {
        if let Err(error) = result {
            check_position(text, &error)?;
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings(text in any::<String>()) {
        parse_every_way(&text)?;
    }

    #[test]
    fn arbitrary_bytes_as_lossy_utf8(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        parse_every_way(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn token_soups(text in token_soup()) {
        parse_every_way(&text)?;
    }

    #[test]
    fn mutated_valid_payloads(payload in prop::sample::select(payloads()), mutations in prop::collection::vec(mutation(), 1..5)) {
        let text = mutations.iter().fold(payload, |text, m| mutate(&text, m));
        parse_every_way(&text)?;
    }
}

#[test]
fn the_unmutated_payloads_parse() {
    for payload in payloads() {
        if let Err(e) = text::parse(&payload) {
            panic!("{e}\nin:\n{payload}");
        }
    }
}
