//! A runner for Prometheus' promqltest DSL over `tests/testdata/*.test`:
//! `load <interval>` blocks in series notation, `clear`, and
//! `eval[_fail|_ordered] instant at <time> <expr>` / `eval range from <t> to <t>
//! step <d> <expr>` followed by the expected result.

use std::path::Path;

use wasmon_query::{Engine, EngineOptions, Value};
use wasmon_storage::testing::VecStore;
use wasmon_storage::{Labels, stale_nan};

#[derive(Debug, Clone, Copy)]
enum SeqValue {
    Value(f64),
    Stale,
    Omitted,
}

fn parse_duration_ms(s: &str) -> Result<i64, String> {
    if let Ok(v) = s.parse::<f64>() {
        return Ok((v * 1000.0).round() as i64);
    }
    let mut total = 0i64;
    let mut rest = s;
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("bad duration {s:?}"));
        }
        let n: i64 = rest[..digits].parse().map_err(|e| format!("{e}"))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let mult = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            _ => return Err(format!("bad duration unit in {s:?}")),
        };
        total += n * mult;
    }
    Ok(total)
}

fn parse_number(s: &str) -> Option<f64> {
    match s {
        "Inf" | "+Inf" | "inf" | "+inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ => s.parse::<f64>().ok().filter(|_| !s.contains(char::is_alphabetic) || s.contains(['e', 'E'])),
    }
}

/// Parses `name{a="b", ...}` at the start of `s`, returning the labels and
/// the rest of the line.
fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
    let s = s.trim_start();
    let name_end = s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')).unwrap_or(s.len());
    let mut pairs: Vec<(String, String)> = Vec::new();
    if name_end > 0 {
        pairs.push(("__name__".into(), s[..name_end].into()));
    }
    let mut rest = &s[name_end..];
    if let Some(r) = rest.strip_prefix('{') {
        rest = r;
        loop {
            rest = rest.trim_start();
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            if let Some(r) = rest.strip_prefix(',') {
                rest = r;
                continue;
            }
            let ne = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).ok_or("unterminated labels")?;
            let lname = rest[..ne].to_string();
            rest = rest[ne..].trim_start().strip_prefix('=').ok_or(format!("expected = in {s:?}"))?.trim_start();
            let quote = rest.chars().next().ok_or("missing value")?;
            if quote != '"' && quote != '\'' {
                return Err(format!("expected quoted label value in {s:?}"));
            }
            let mut value = String::new();
            let mut chars = rest[1..].char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, 't')) => value.push('\t'),
                        Some((_, c)) => value.push(c),
                        None => return Err("bad escape".into()),
                    },
                    c if c == quote => {
                        end = Some(i + 2);
                        break;
                    }
                    c => value.push(c),
                }
            }
            let end = end.ok_or("unterminated label value")?;
            rest = &rest[end..];
            pairs.push((lname, value));
        }
    }
    Ok((Labels::from_pairs(pairs), rest))
}

fn parse_values(s: &str) -> Result<Vec<SeqValue>, String> {
    let mut out = Vec::new();
    for tok in s.split_whitespace() {
        if tok == "_" {
            out.push(SeqValue::Omitted);
            continue;
        }
        if tok == "stale" {
            out.push(SeqValue::Stale);
            continue;
        }
        if let Some(n) = tok.strip_prefix("_x") {
            let n: usize = n.parse().map_err(|_| format!("bad token {tok}"))?;
            out.extend(std::iter::repeat_n(SeqValue::Omitted, n));
            continue;
        }
        if let Some(v) = parse_number(tok) {
            out.push(SeqValue::Value(v));
            continue;
        }
        // a+bxn, a-bxn, axn
        let (base, n) = tok.rsplit_once('x').ok_or(format!("bad token {tok}"))?;
        let n: usize = n.parse().map_err(|_| format!("bad repetition in {tok}"))?;
        let (a, b) = if let Some(a) = parse_number(base) {
            (a, 0.0)
        } else {
            let bytes = base.as_bytes();
            let pos = (1..bytes.len())
                .rev()
                .find(|&i| (bytes[i] == b'+' || bytes[i] == b'-') && !matches!(bytes[i - 1], b'e' | b'E'))
                .ok_or(format!("bad token {tok}"))?;
            let a = parse_number(&base[..pos]).ok_or(format!("bad start in {tok}"))?;
            let b = parse_number(&base[pos + 1..]).ok_or(format!("bad step in {tok}"))?;
            (a, if bytes[pos] == b'-' { -b } else { b })
        };
        for i in 0..=n {
            out.push(SeqValue::Value(a + b * i as f64));
        }
    }
    Ok(out)
}

fn almost_equal(a: f64, b: f64) -> bool {
    const EPSILON: f64 = 0.000001;
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let diff = (a - b).abs();
    let min_normal = f64::MIN_POSITIVE;
    if a == 0.0 || b == 0.0 || diff < min_normal {
        return diff < EPSILON * min_normal;
    }
    diff / (a.abs() + b.abs()) < EPSILON
}

enum Expected {
    Scalar(f64),
    String(String),
    Series(Labels, Vec<SeqValue>),
}

struct Eval {
    line: usize,
    expr: String,
    kind: EvalKind,
    fail: bool,
    ordered: bool,
    expected: Vec<Expected>,
    fail_message: Option<String>,
}

enum EvalKind {
    Instant(i64),
    Range { start: i64, end: i64, step: i64 },
}

fn parse_eval_header(cmd: &str, rest: &str) -> Result<(EvalKind, String), String> {
    let _ = cmd;
    if let Some(r) = rest.strip_prefix("instant at ") {
        let (t, expr) = r.trim_start().split_once(char::is_whitespace).ok_or("missing expression")?;
        return Ok((EvalKind::Instant(parse_duration_ms(t)?), expr.trim().to_string()));
    }
    if let Some(r) = rest.strip_prefix("range from ") {
        let mut it = r.splitn(6, char::is_whitespace);
        let start = parse_duration_ms(it.next().ok_or("missing start")?)?;
        if it.next() != Some("to") {
            return Err("expected 'to'".into());
        }
        let end = parse_duration_ms(it.next().ok_or("missing end")?)?;
        if it.next() != Some("step") {
            return Err("expected 'step'".into());
        }
        let step = parse_duration_ms(it.next().ok_or("missing step")?)?;
        let expr = it.next().ok_or("missing expression")?.trim().to_string();
        return Ok((EvalKind::Range { start, end, step }, expr));
    }
    Err(format!("cannot parse eval header {rest:?}"))
}

fn check_result(ev: &Eval, got: Value) -> Result<(), String> {
    match got {
        Value::Scalar { v, .. } => match ev.expected.as_slice() {
            [Expected::Scalar(e)] if almost_equal(*e, v) => Ok(()),
            _ => Err(format!("got scalar {v}")),
        },
        Value::String { v, .. } => match ev.expected.as_slice() {
            [Expected::String(e)] if *e == v => Ok(()),
            _ => Err(format!("got string {v:?}")),
        },
        Value::Vector(samples) => {
            let mut exp = Vec::new();
            for e in &ev.expected {
                match e {
                    Expected::Series(l, vals) => match vals.as_slice() {
                        [SeqValue::Value(v)] => exp.push((l.clone(), *v)),
                        _ => return Err("expected vector lines need exactly one value".into()),
                    },
                    _ => return Err(format!("expected scalar or string, got vector {samples:?}")),
                }
            }
            let show = || samples.iter().map(|s| format!("{} {}", s.labels, s.v)).collect::<Vec<_>>().join("\n    ");
            if exp.len() != samples.len() {
                return Err(format!("expected {} samples, got {}:\n    {}", exp.len(), samples.len(), show()));
            }
            for (i, (l, v)) in exp.iter().enumerate() {
                let found = if ev.ordered {
                    (samples[i].labels == *l).then_some(&samples[i])
                } else {
                    samples.iter().find(|s| s.labels == *l)
                };
                match found {
                    Some(s) if almost_equal(s.v, *v) => {}
                    Some(s) => return Err(format!("{l}: expected {v}, got {}", s.v)),
                    None => return Err(format!("missing {l} (ordered={}); got:\n    {}", ev.ordered, show())),
                }
            }
            Ok(())
        }
        Value::Matrix(series) => {
            let (start, step) = match ev.kind {
                EvalKind::Range { start, step, .. } => (start, Some(step)),
                EvalKind::Instant(_) => (0, None),
            };
            let show = || {
                series
                    .iter()
                    .map(|s| {
                        let pts: Vec<String> = s.samples.iter().map(|p| format!("{}@{}", p.v, p.t)).collect();
                        format!("{} {}", s.labels, pts.join(" "))
                    })
                    .collect::<Vec<_>>()
                    .join("\n    ")
            };
            if ev.expected.len() != series.len() {
                return Err(format!("expected {} series, got {}:\n    {}", ev.expected.len(), series.len(), show()));
            }
            for e in &ev.expected {
                let Expected::Series(l, vals) = e else { return Err("expected series, got matrix".into()) };
                let s =
                    series.iter().find(|s| s.labels == *l).ok_or_else(|| format!("missing {l}:\n    {}", show()))?;
                let want: Vec<(Option<i64>, f64)> = vals
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| match v {
                        SeqValue::Value(v) => Some((step.map(|st| start + i as i64 * st), *v)),
                        _ => None,
                    })
                    .collect();
                let ok = want.len() == s.samples.len()
                    && want
                        .iter()
                        .zip(&s.samples)
                        .all(|((t, v), p)| t.is_none_or(|t| t == p.t) && almost_equal(*v, p.v));
                if !ok {
                    return Err(format!("series {l} mismatch:\n    {}", show()));
                }
            }
            Ok(())
        }
    }
}

/// Re-runs a passing instant evaluation as a range query around its time and
/// checks that the step at that time matches: range queries share every
/// code path with instant ones but run them over many steps at once.
fn check_range_consistency(engine: &Engine, store: &VecStore, ev: &Eval, got: &Value) -> Result<(), String> {
    let EvalKind::Instant(t) = ev.kind else { return Ok(()) };
    // `@ start()` / `@ end()` legitimately depend on the query range.
    if ev.expr.contains("start()") || ev.expr.contains("end()") {
        return Ok(());
    }
    let expected: Vec<(Labels, f64)> = match got {
        Value::Vector(v) => v.iter().map(|s| (s.labels.clone(), s.v)).collect(),
        Value::Scalar { v, .. } => vec![(Labels::default(), *v)],
        _ => return Ok(()),
    };
    for (start, step) in [(t - 70_000, 35_000), (t - 3_000, 1_000), (t, 7_000)] {
        let Value::Matrix(series) =
            engine.range(store, &ev.expr, start, t + 2 * step, step).map_err(|e| format!("range query failed: {e}"))?
        else {
            return Err("range query did not return a matrix".into());
        };
        let mut at_t: Vec<(Labels, f64)> = series
            .iter()
            .filter_map(|s| s.samples.iter().find(|p| p.t == t).map(|p| (s.labels.clone(), p.v)))
            .collect();
        let mut want = expected.clone();
        at_t.sort_by(|a, b| a.0.cmp(&b.0));
        want.sort_by(|a, b| a.0.cmp(&b.0));
        let same =
            at_t.len() == want.len() && at_t.iter().zip(&want).all(|(a, b)| a.0 == b.0 && almost_equal(a.1, b.1));
        if !same {
            return Err(format!("range query (start {start}, step {step}) differs at {t}: {at_t:?} vs {want:?}"));
        }
    }
    Ok(())
}

fn run_eval(engine: &Engine, store: &VecStore, ev: &Eval) -> Result<(), String> {
    let res = match ev.kind {
        EvalKind::Instant(t) => engine.instant(store, &ev.expr, t),
        EvalKind::Range { start, end, step } => engine.range(store, &ev.expr, start, end, step),
    };
    match (res, ev.fail) {
        (Err(e), true) => match &ev.fail_message {
            Some(m) if !e.to_string().contains(m.as_str()) => Err(format!("error {e:?} lacks {m:?}")),
            _ => Ok(()),
        },
        (Ok(v), true) => Err(format!("expected error, got {v:?}")),
        (Err(e), false) => Err(format!("unexpected error: {e}")),
        (Ok(v), false) => {
            check_result(ev, v.clone())?;
            if std::env::var_os("PROMQLTEST_NO_RANGE").is_none() {
                check_range_consistency(engine, store, ev, &v)?;
            }
            Ok(())
        }
    }
}

struct Outcome {
    passed: usize,
    failures: Vec<String>,
}

fn run_file(path: &Path) -> Outcome {
    let text = std::fs::read_to_string(path).expect("read test file");
    let lines: Vec<&str> = text.lines().collect();
    let engine = Engine::new(EngineOptions::default());
    let mut store = VecStore::default();
    let mut out = Outcome { passed: 0, failures: Vec::new() };
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("?").to_string();
    let mut i = 0;
    let is_body = |l: &str| l.starts_with(' ') || l.starts_with('\t');
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            i += 1;
            continue;
        }
        let lineno = i + 1;
        i += 1;
        let mut body = Vec::new();
        while i < lines.len() && is_body(lines[i]) && !lines[i].trim().is_empty() {
            if !lines[i].trim().starts_with('#') {
                body.push(lines[i].trim());
            }
            i += 1;
        }
        let (cmd, rest) = trimmed.split_once(' ').unwrap_or((trimmed, ""));
        match cmd {
            "clear" => store = VecStore::default(),
            "load" => {
                let interval = match parse_duration_ms(rest.trim()) {
                    Ok(d) => d,
                    Err(e) => {
                        out.failures.push(format!("{name}:{lineno}: {e}"));
                        continue;
                    }
                };
                for l in body {
                    let parsed = parse_labels(l).and_then(|(labels, rest)| Ok((labels, parse_values(rest)?)));
                    match parsed {
                        Ok((labels, values)) => {
                            for (k, v) in values.iter().enumerate() {
                                let t = k as i64 * interval;
                                match v {
                                    SeqValue::Value(v) => store.push(&labels, t, *v),
                                    SeqValue::Stale => store.push(&labels, t, stale_nan()),
                                    SeqValue::Omitted => {}
                                }
                            }
                        }
                        Err(e) => out.failures.push(format!("{name}:{lineno}: load: {e}")),
                    }
                }
            }
            "eval" | "eval_fail" | "eval_ordered" | "eval_warn" => {
                let (kind, expr) = match parse_eval_header(cmd, rest) {
                    Ok(h) => h,
                    Err(e) => {
                        out.failures.push(format!("{name}:{lineno}: {e}"));
                        continue;
                    }
                };
                let mut ev = Eval {
                    line: lineno,
                    expr,
                    kind,
                    fail: cmd == "eval_fail",
                    ordered: cmd == "eval_ordered",
                    expected: Vec::new(),
                    fail_message: None,
                };
                let mut bad = None;
                for l in body {
                    if let Some(m) = l.strip_prefix("expected_fail_message ") {
                        ev.fail_message = Some(m.trim().to_string());
                        continue;
                    }
                    if let Some(q) = l.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
                        ev.expected.push(Expected::String(q.to_string()));
                        continue;
                    }
                    if let Some(v) = parse_number(l) {
                        ev.expected.push(Expected::Scalar(v));
                        continue;
                    }
                    match parse_labels(l).and_then(|(labels, rest)| Ok((labels, parse_values(rest)?))) {
                        Ok((labels, values)) => ev.expected.push(Expected::Series(labels, values)),
                        Err(e) => bad = Some(e),
                    }
                }
                let res = match bad {
                    Some(e) => Err(format!("bad expectation: {e}")),
                    None => run_eval(&engine, &store, &ev),
                };
                match res {
                    Ok(()) => out.passed += 1,
                    Err(e) => out.failures.push(format!("{name}:{}: {}\n  {e}", ev.line, ev.expr)),
                }
            }
            other => out.failures.push(format!("{name}:{lineno}: unknown command {other:?}")),
        }
    }
    out
}

#[test]
fn promqltest_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("testdata dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .collect();
    files.sort();
    let (mut passed, mut failures) = (0, Vec::new());
    for f in &files {
        let o = run_file(f);
        eprintln!("{}: {} passed, {} failed", f.display(), o.passed, o.failures.len());
        passed += o.passed;
        failures.extend(o.failures);
    }
    eprintln!("promqltest: {passed} passed, {} failed", failures.len());
    for f in &failures {
        eprintln!("FAIL {f}");
    }
    assert!(failures.is_empty(), "{} promqltest cases failed", failures.len());
}

#[test]
fn dsl_values_expand_like_prometheus() {
    let v = parse_values("0+10x2 1x1 _ _x2 stale 5-1x1").unwrap();
    let vals: Vec<String> = v
        .iter()
        .map(|v| match v {
            SeqValue::Value(x) => x.to_string(),
            SeqValue::Stale => "stale".into(),
            SeqValue::Omitted => "_".into(),
        })
        .collect();
    assert_eq!(vals, ["0", "10", "20", "1", "1", "_", "_", "_", "stale", "5", "4"]);
}
