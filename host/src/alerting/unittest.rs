//! `wasmon test rules`: promtool's rule unit tests (cmd/promtool/unittest.go
//! in Prometheus 2.42), with the same evaluation loop, comparisons and
//! output.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use wasmon_query::{Engine, EngineOptions};
use wasmon_storage::{Labels, stale_nan};

use super::alert::{AlertState, TemplateEnv};
use super::group::{EvalContext, Group, Rule};
use super::rules::{RuleFileError, expand_glob, load_rule_file};
use super::{MemStore, RuleStore, format_float_e, go_labels_string};
use crate::config::PromDuration;

/// Why a test file could not run; failed expectations are reported as text.
#[derive(Debug, thiserror::Error)]
pub enum UnitTestError {
    #[error("{0}")]
    Yaml(String),
    #[error(transparent)]
    Rules(#[from] RuleFileError),
    #[error("{0}")]
    Input(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    #[serde(default)]
    rule_files: Vec<String>,
    #[serde(default)]
    evaluation_interval: Option<PromDuration>,
    #[serde(default)]
    group_eval_order: Vec<String>,
    #[serde(default)]
    tests: Vec<TestGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestGroup {
    #[serde(default)]
    interval: Option<PromDuration>,
    #[serde(default)]
    input_series: Vec<InputSeries>,
    #[serde(default)]
    alert_rule_test: Vec<AlertTest>,
    #[serde(default)]
    promql_expr_test: Vec<PromqlTest>,
    #[serde(default)]
    external_labels: BTreeMap<String, String>,
    #[serde(default)]
    external_url: String,
    #[serde(default)]
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputSeries {
    series: String,
    #[serde(default)]
    values: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertTest {
    #[serde(default)]
    eval_time: PromDuration,
    #[serde(default)]
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<ExpAlert>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpAlert {
    #[serde(default)]
    exp_labels: BTreeMap<String, String>,
    #[serde(default)]
    exp_annotations: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PromqlTest {
    expr: String,
    #[serde(default)]
    eval_time: PromDuration,
    #[serde(default)]
    exp_samples: Vec<ExpSample>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpSample {
    #[serde(default)]
    labels: String,
    #[serde(default)]
    value: f64,
}

type Map = BTreeMap<String, String>;

/// `wasmon test rules FILE...`: prints like promtool; false if any failed.
pub fn test_rules_command(files: &[PathBuf]) -> bool {
    let mut ok = true;
    for f in files {
        println!("Unit Testing:  {}", f.display());
        let errs = match run_test_file(f) {
            Ok(errs) => errs,
            Err(e) => vec![e.to_string()],
        };
        if errs.is_empty() {
            println!("  SUCCESS");
        } else {
            eprintln!("  FAILED:");
            for e in &errs {
                eprintln!("{e}");
                println!();
            }
            ok = false;
        }
        println!();
    }
    ok
}

/// Runs every test group of one file; returns the failures as promtool
/// words them (empty: passed).
pub fn run_test_file(path: &Path) -> Result<Vec<String>, UnitTestError> {
    let text = std::fs::read_to_string(path).map_err(|e| UnitTestError::Input(format!("{}: {e}", path.display())))?;
    let file: TestFile = serde_yaml_ng::from_str(&text).map_err(|e| UnitTestError::Yaml(e.to_string()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut rule_files = Vec::new();
    for rf in &file.rule_files {
        let matched: Vec<PathBuf> = expand_glob(rf, Some(base))?.into_iter().filter(|p| p.exists()).collect();
        if matched.is_empty() {
            eprintln!("  WARNING: no file match pattern {}", base.join(rf).display());
        }
        rule_files.extend(matched);
    }
    let eval_interval =
        file.evaluation_interval.map(|d| d.0).filter(|d| !d.is_zero()).unwrap_or(Duration::from_secs(60));
    let mut order: HashMap<String, usize> = HashMap::new();
    for (i, g) in file.group_eval_order.iter().enumerate() {
        if order.insert(g.clone(), i).is_some() {
            return Ok(vec![format!("group name repeated in evaluation order: {g}")]);
        }
    }
    let mut errs = Vec::new();
    for tg in &file.tests {
        errs.extend(run_group_test(tg, eval_interval, &order, &rule_files)?);
    }
    Ok(errs)
}

fn ms(d: Duration) -> i64 {
    super::duration_ms(d)
}

fn run_group_test(
    tg: &TestGroup,
    eval_interval: Duration,
    order: &HashMap<String, usize>,
    rule_files: &[PathBuf],
) -> Result<Vec<String>, UnitTestError> {
    let interval = tg.interval.map(|d| d.0).filter(|d| !d.is_zero()).unwrap_or(eval_interval);
    // Input samples, each series in time order, appended as time passes.
    let mut inputs: Vec<(Labels, Vec<(i64, f64)>)> = Vec::new();
    for s in &tg.input_series {
        let labels = parse_metric(&s.series).map_err(UnitTestError::Input)?;
        let values = expand_values(&s.values).map_err(UnitTestError::Input)?;
        let samples =
            values.into_iter().enumerate().filter_map(|(i, v)| v.map(|v| (i as i64 * ms(interval), v))).collect();
        inputs.push((labels, samples));
    }
    let mut groups: Vec<(usize, usize, Group)> = Vec::new();
    for f in rule_files {
        for spec in load_rule_file(f)? {
            let idx = order.get(&spec.name).copied().unwrap_or(0);
            let n = groups.len();
            // The default group interval is the series interval, as promtool passes it.
            groups.push((idx, n, Group::new(spec, interval, true)));
        }
    }
    groups.sort_by_key(|(idx, n, _)| (*idx, *n));
    let mut groups: Vec<Group> = groups.into_iter().map(|(_, _, g)| g).collect();

    let store = MemStore::new();
    let engine = Engine::new(EngineOptions::default());
    let env = TemplateEnv { external_labels: tg.external_labels.clone(), external_url: tg.external_url.clone() };
    let cx = EvalContext { engine: &engine, store: &store, env: &env, resend_delay_ms: 60_000 };

    let maxt = tg
        .alert_rule_test
        .iter()
        .map(|a| ms(a.eval_time.0))
        .chain(tg.promql_expr_test.iter().map(|p| ms(p.eval_time.0)))
        .max()
        .unwrap_or(0);
    let mut alert_times: Vec<i64> = Vec::new();
    for a in &tg.alert_rule_test {
        if a.alertname.is_empty() {
            let in_group = if tg.name.is_empty() { String::new() } else { format!(" (in TestGroup {})", tg.name) };
            return Ok(vec![format!(
                "an item under alert_rule_test misses required attribute alertname at eval_time {}{in_group}",
                model_duration(ms(a.eval_time.0))
            )]);
        }
        alert_times.push(ms(a.eval_time.0));
    }
    alert_times.sort();
    alert_times.dedup();

    let step = ms(eval_interval).max(1);
    let mut loaded = vec![0usize; inputs.len()];
    let mut errs = Vec::new();
    let mut curr = 0;
    let mut ts = 0i64;
    while ts <= maxt {
        let mut batch = Vec::new();
        for (i, (labels, samples)) in inputs.iter().enumerate() {
            while loaded[i] < samples.len() && samples[loaded[i]].0 <= ts {
                let (t, v) = samples[loaded[i]];
                batch.push((labels.clone(), t, v));
                loaded[i] += 1;
            }
        }
        if let Err(e) = store.append_samples(&batch) {
            return Ok(vec![e]);
        }
        let mut eval_errs = Vec::new();
        for g in &mut groups {
            g.eval(ts, &cx);
            for r in &g.rules {
                if let Some(e) = &r.status().last_error {
                    eval_errs.push(format!("    rule: {}, time: {}, err: {e}", r.spec().name, go_duration(ts)));
                }
            }
        }
        if !eval_errs.is_empty() {
            errs.extend(eval_errs);
            return Ok(errs);
        }
        while curr < alert_times.len() && ts <= alert_times[curr] && alert_times[curr] < ts + step {
            let t = alert_times[curr];
            for case in tg.alert_rule_test.iter().filter(|a| ms(a.eval_time.0) == t) {
                let mut got: Vec<(Map, Map)> = Vec::new();
                for g in &groups {
                    for r in &g.rules {
                        if let Rule::Alerting(ar) = r
                            && ar.name() == case.alertname
                        {
                            for a in ar.active_alerts() {
                                if a.state == AlertState::Firing {
                                    let l = a.labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect();
                                    got.push((l, a.annotations.clone()));
                                }
                            }
                        }
                    }
                }
                let mut exp: Vec<(Map, Map)> = case
                    .exp_alerts
                    .iter()
                    .map(|a| {
                        let mut l = a.exp_labels.clone();
                        l.insert("alertname".into(), case.alertname.clone());
                        (l, a.exp_annotations.clone())
                    })
                    .collect();
                got.sort();
                exp.sort();
                if exp != got {
                    let name = if tg.name.is_empty() { String::new() } else { format!("    name: {},\n", tg.name) };
                    errs.push(format!(
                        "{name}    alertname: {}, time: {}, \n        exp:{}, \n        got:{}",
                        case.alertname,
                        model_duration(t),
                        indent(&alerts_string(&exp), "            "),
                        indent(&alerts_string(&got), "            "),
                    ));
                }
            }
            curr += 1;
        }
        ts += step;
    }

    'cases: for case in &tg.promql_expr_test {
        let t = ms(case.eval_time.0);
        let got = match super::group::query_samples(&engine, &store, &case.expr, t) {
            Ok(v) => v,
            Err(e) => {
                errs.push(format!("    expr: {}, time: {}, err: {e}", super::go_quote(&case.expr), model_duration(t)));
                continue;
            }
        };
        let mut got: Vec<(Labels, f64)> = got;
        let mut exp: Vec<(Labels, f64)> = Vec::new();
        for s in &case.exp_samples {
            match parse_metric(&s.labels) {
                Ok(l) => exp.push((l, s.value)),
                Err(e) => {
                    errs.push(format!(
                        "    expr: {}, time: {}, err: labels {}: {e}",
                        super::go_quote(&case.expr),
                        model_duration(t),
                        super::go_quote(&s.labels)
                    ));
                    continue 'cases;
                }
            }
        }
        got.sort_by(|a, b| a.0.cmp(&b.0));
        exp.sort_by(|a, b| a.0.cmp(&b.0));
        // Go's reflect.DeepEqual: NaN never equals, stale markers included.
        let same = got.len() == exp.len() && got.iter().zip(&exp).all(|(g, e)| g.0 == e.0 && g.1 == e.1);
        if !same {
            errs.push(format!(
                "    expr: {}, time: {},\n        exp: {}\n        got: {}",
                super::go_quote(&case.expr),
                model_duration(t),
                samples_string(&exp),
                samples_string(&got)
            ));
        }
    }
    Ok(errs)
}

fn labels_string(l: &Labels) -> String {
    go_labels_string(l.iter().map(|l| (l.name.as_str(), l.value.as_str())))
}

fn map_string(m: &Map) -> String {
    go_labels_string(m.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

fn samples_string(s: &[(Labels, f64)]) -> String {
    if s.is_empty() {
        return "nil".into();
    }
    s.iter().map(|(l, v)| format!("{} {}", labels_string(l), format_float_e(*v, true))).collect::<Vec<_>>().join(", ")
}

fn alerts_string(la: &[(Map, Map)]) -> String {
    if la.is_empty() {
        return "[]".into();
    }
    let one = |(l, a): &(Map, Map)| format!("Labels:{}\nAnnotations:{}", map_string(l), map_string(a));
    let mut s = format!("[\n0:{}", indent(&format!("\n{}", one(&la[0])), "  "));
    for (i, x) in la.iter().enumerate().skip(1) {
        s.push_str(&format!(",\n{i}:{}", indent(&format!("\n{}", one(x)), "  ")));
    }
    s.push_str("\n]");
    s
}

fn indent(s: &str, prefix: &str) -> String {
    s.split('\n').collect::<Vec<_>>().join(&format!("\n{prefix}"))
}

/// Prometheus' `model.Duration.String()`.
fn model_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut rest = ms;
    let mut out = String::new();
    for (unit, mult, exact) in [
        ("y", 365 * 86_400_000, true),
        ("w", 7 * 86_400_000, true),
        ("d", 86_400_000, false),
        ("h", 3_600_000, false),
        ("m", 60_000, false),
        ("s", 1000, false),
        ("ms", 1, false),
    ] {
        if exact && rest % mult != 0 {
            continue;
        }
        let v = rest / mult;
        if v > 0 {
            out.push_str(&format!("{v}{unit}"));
            rest -= v * mult;
        }
    }
    out
}

/// Go's `time.Duration.String()` for whole milliseconds.
fn go_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, m) = (ms / 3_600_000, (ms / 60_000) % 60);
    let s = (ms % 60_000) as f64 / 1000.0;
    let secs = format!("{s}s");
    match (h, m) {
        (0, 0) => secs,
        (0, m) => format!("{m}m{secs}"),
        (h, m) => format!("{h}h{m}m{secs}"),
    }
}

/// A series in PromQL's notation: `name{a="b", ...}`, `{__name__="x"}` or `name`.
pub(crate) fn parse_metric(text: &str) -> Result<Labels, String> {
    let t = text.trim();
    let (name, rest) = match t.find('{') {
        Some(i) => (t[..i].trim(), &t[i..]),
        None => (t, ""),
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    if !name.is_empty() {
        if !super::rules::is_valid_metric_name(name) {
            return Err(format!("invalid metric name {name:?}"));
        }
        pairs.push(("__name__".into(), name.into()));
    }
    if !rest.is_empty() {
        let inner = rest.strip_prefix('{').and_then(|r| r.trim_end().strip_suffix('}')).ok_or("unclosed braces")?;
        let mut chars = inner.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
                chars.next();
            }
            if chars.peek().is_none() {
                break;
            }
            let mut key = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_ascii_alphanumeric() || c == '_' {
                    key.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            if key.is_empty() || chars.next() != Some('=') {
                return Err(format!("unexpected character in label matchers of {t:?}"));
            }
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            let quote =
                chars.next().filter(|c| matches!(c, '"' | '\'' | '`')).ok_or("expected a quoted label value")?;
            let mut value = String::new();
            loop {
                match chars.next() {
                    None => return Err("unterminated quoted string".into()),
                    Some(c) if c == quote => break,
                    Some('\\') if quote != '`' => match chars.next() {
                        Some('n') => value.push('\n'),
                        Some('t') => value.push('\t'),
                        Some('r') => value.push('\r'),
                        Some(c) => value.push(c),
                        None => return Err("unterminated quoted string".into()),
                    },
                    Some(c) => value.push(c),
                }
            }
            pairs.push((key, value));
        }
    }
    Ok(Labels::from_pairs(pairs))
}

/// promtool's expanding notation: `1 2 _ stale`, `1+2x3` (1 3 5 7),
/// `1-1x3`, `5x2` (5 5 5), `_x3` (three gaps). `None` is a gap.
pub(crate) fn expand_values(text: &str) -> Result<Vec<Option<f64>>, String> {
    let mut out = Vec::new();
    for word in text.split_whitespace() {
        if word == "_" {
            out.push(None);
            continue;
        }
        if word == "stale" {
            out.push(Some(stale_nan()));
            continue;
        }
        if let Some(n) = word.strip_prefix("_x") {
            let n: usize = n.parse().map_err(|_| format!("invalid series value {word:?}"))?;
            out.extend(std::iter::repeat_n(None, n));
            continue;
        }
        let bad = || format!("invalid series value {word:?}");
        let (head, times) = match word.rfind('x') {
            Some(i) => (&word[..i], Some(word[i + 1..].parse::<u64>().map_err(|_| bad())?)),
            None => (word, None),
        };
        // The step starts at a sign that is not the leading one or part of an exponent.
        let b = head.as_bytes();
        let split = (1..b.len()).find(|&i| (b[i] == b'+' || b[i] == b'-') && !matches!(b[i - 1], b'e' | b'E'));
        let (start, delta) = match split {
            Some(i) => (parse_go_float(&head[..i]).ok_or_else(bad)?, Some(parse_go_float(&head[i..]).ok_or_else(bad)?)),
            None => (parse_go_float(head).ok_or_else(bad)?, None),
        };
        match (delta, times) {
            (None, None) => out.push(Some(start)),
            (None, Some(n)) => out.extend(std::iter::repeat_n(Some(start), n as usize + 1)),
            (Some(d), Some(n)) => {
                let mut v = start;
                out.push(Some(v));
                for _ in 0..n {
                    v += d;
                    out.push(Some(v));
                }
            }
            (Some(_), None) => return Err(bad()),
        }
    }
    Ok(out)
}

fn parse_go_float(s: &str) -> Option<f64> {
    if s.is_empty() || s.contains(['x', 'X']) {
        return None;
    }
    s.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmon_storage::is_stale_nan;

    #[test]
    fn expands_series_notation() {
        let v = expand_values("0+10x3 _ stale 1-1x2 5x1 _x2 -2").unwrap();
        let shown: Vec<String> = v
            .iter()
            .map(|x| match x {
                None => "_".into(),
                Some(v) if is_stale_nan(*v) => "stale".into(),
                Some(v) => v.to_string(),
            })
            .collect();
        assert_eq!(shown, ["0", "10", "20", "30", "_", "stale", "1", "0", "-1", "5", "5", "_", "_", "-2"]);
        assert!(expand_values("1+").is_err());
        assert_eq!(expand_values("1e+3x1").unwrap(), vec![Some(1000.0), Some(1000.0)]);
    }

    #[test]
    fn parses_metrics() {
        let l = parse_metric("up{job=\"a\", instance='b'}").unwrap();
        assert_eq!(l.to_string(), "up{instance=\"b\", job=\"a\"}");
        assert!(parse_metric("{}").unwrap().is_empty());
        assert!(parse_metric("up{job=a}").is_err());
    }

    #[test]
    fn durations_print_like_go() {
        assert_eq!(model_duration(300_000), "5m");
        assert_eq!(model_duration(5_400_000), "1h30m");
        assert_eq!(go_duration(60_000), "1m0s");
        assert_eq!(go_duration(3_660_000), "1h1m0s");
    }
}
