//! Rule files (Prometheus' `rulefmt`): parsing, validation with promtool's
//! messages and positions, loading many files and globs, and
//! `wasmon check rules`.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::outline::{Node, outline};
use crate::config::PromDuration;

/// Why rule files could not be loaded. `Invalid` carries every problem of a
/// file, each already prefixed with the file name like promtool prints it.
#[derive(Debug, thiserror::Error)]
pub enum RuleFileError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", .problems.join("\n"))]
    Invalid { path: String, problems: Vec<String> },
    #[error("invalid rule file pattern {pattern:?}: {message}")]
    Pattern { pattern: String, message: String },
}

/// A validated rule group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSpec {
    pub name: String,
    /// The file as it was named when loading (Prometheus' `file` in the API).
    pub file: String,
    /// `None`: the global evaluation interval.
    pub interval: Option<Duration>,
    /// 0 = no limit.
    pub limit: usize,
    pub rules: Vec<RuleSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    Recording,
    Alerting,
}

/// A validated rule: `name` is `record` or `alert`.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    pub kind: RuleKind,
    pub name: String,
    pub expr: String,
    pub hold: Duration,
    pub keep_firing_for: Duration,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    groups: Option<Vec<RawGroup>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    rules: Option<Vec<RawRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    record: Option<String>,
    #[serde(default)]
    alert: Option<String>,
    #[serde(default)]
    expr: Option<String>,
    #[serde(default, rename = "for")]
    hold: Option<String>,
    #[serde(default)]
    keep_firing_for: Option<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, Option<String>>>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, Option<String>>>,
}

pub use wasmon_storage::{is_valid_label_name, is_valid_metric_name};

/// Prometheus' `model.Duration` in YAML: the same grammar as our config.
fn parse_duration(text: &str) -> Result<Duration, String> {
    PromDuration::parse(text).map(|d| d.0).map_err(|_| format!("not a valid duration string: {text:?}"))
}

/// Parses and validates one rule file's text. `file` prefixes every message,
/// as in `promtool check rules`. Returns the groups or every problem found.
pub fn parse_rules(file: &str, text: &str) -> Result<Vec<GroupSpec>, Vec<String>> {
    // An empty document is an empty rule file, as in Prometheus (io.EOF is ignored).
    let raw: RawFile = if text.trim().is_empty() || is_comment_only(text) {
        RawFile { groups: None }
    } else {
        serde_yaml_ng::from_str(text).map_err(|e| vec![format!("{file}: {}", yaml_error(&e))])?
    };
    let root = outline(text);
    let group_nodes = root.as_ref().and_then(|r| r.get("groups"));
    let raw_groups = raw.groups.unwrap_or_default();

    // Durations are decoded with the YAML in Prometheus, so a bad one is a
    // decode error that hides everything else.
    for g in &raw_groups {
        let rules = g.rules.iter().flatten();
        let durations = g.interval.iter().chain(rules.flat_map(|r| r.hold.iter().chain(r.keep_firing_for.iter())));
        for d in durations {
            if let Err(e) = parse_duration(d) {
                return Err(vec![format!("{file}: {e}")]);
            }
        }
    }

    let mut errs = Vec::new();
    let mut seen = HashSet::new();
    let mut groups = Vec::new();
    for (j, g) in raw_groups.into_iter().enumerate() {
        let gnode = group_nodes.and_then(|n| n.item(j));
        let (gl, gc) = Node::pos(gnode);
        let name = g.name.unwrap_or_default();
        if name.is_empty() {
            errs.push(format!("{file}: {gl}:{gc}: Groupname must not be empty"));
        }
        if !seen.insert(name.clone()) {
            errs.push(format!("{file}: {gl}:{gc}: groupname: \"{name}\" is repeated in the same file"));
        }
        let mut rules = Vec::new();
        for (i, r) in g.rules.unwrap_or_default().into_iter().enumerate() {
            let rnode = gnode.and_then(|n| n.get("rules")).and_then(|n| n.item(i));
            match validate_rule(r, rnode) {
                Ok(rule) => rules.push(rule),
                Err((rule_name, problems)) => {
                    for (pos, msg) in problems {
                        errs.push(format!("{file}: {pos}group {:?}, rule {}, {:?}: {msg}", name, i + 1, rule_name));
                    }
                }
            }
        }
        let interval = g.interval.as_deref().map(parse_duration).transpose().unwrap_or(None).filter(|d| !d.is_zero());
        groups.push(GroupSpec {
            name,
            file: file.to_string(),
            interval,
            limit: usize::try_from(g.limit.unwrap_or(0)).unwrap_or(0),
            rules,
        });
    }
    if errs.is_empty() { Ok(groups) } else { Err(errs) }
}

fn is_comment_only(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---"
    })
}

fn yaml_error(e: &serde_yaml_ng::Error) -> String {
    let text = e.to_string();
    let message = text.split(" at line ").next().unwrap_or_default().to_string();
    match e.location() {
        Some(loc) => format!("{}:{}: {message}", loc.line(), loc.column()),
        None => message,
    }
}

type Problems = Vec<(String, String)>;

/// Prometheus' `RuleNode.Validate`, in its order. Problems come with their
/// position prefix (`"L:C: "`, `"L:C: L:C: "` or empty).
fn validate_rule(r: RawRule, node: Option<&Node>) -> Result<RuleSpec, (String, Problems)> {
    let pos = |key: &str| {
        let (l, c) = Node::pos(node.and_then(|n| n.get(key)));
        format!("{l}:{c}: ")
    };
    let record = r.record.unwrap_or_default();
    let alert = r.alert.unwrap_or_default();
    let expr = r.expr.unwrap_or_default();
    let hold = r.hold.as_deref().and_then(|d| parse_duration(d).ok()).unwrap_or_default();
    let keep = r.keep_firing_for.as_deref().and_then(|d| parse_duration(d).ok()).unwrap_or_default();
    let labels: BTreeMap<String, String> =
        r.labels.unwrap_or_default().into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect();
    let annotations: BTreeMap<String, String> =
        r.annotations.unwrap_or_default().into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect();
    let mut problems: Problems = Vec::new();

    if !record.is_empty() && !alert.is_empty() {
        problems.push((
            format!("{}{}", pos("record"), pos("alert")),
            "only one of 'record' and 'alert' must be set".into(),
        ));
    }
    if record.is_empty() && alert.is_empty() {
        problems.push((pos("record"), "one of 'record' or 'alert' must be set".into()));
    }
    if expr.is_empty() {
        problems.push((pos("expr"), "field 'expr' must be set in rule".into()));
    } else if let Err(e) = wasmon_query::check_expr(&expr) {
        problems.push((pos("expr"), format!("could not parse expression: {e}")));
    }
    if !record.is_empty() {
        if !annotations.is_empty() {
            problems.push((pos("record"), "invalid field 'annotations' in recording rule".into()));
        }
        if !hold.is_zero() {
            problems.push((pos("record"), "invalid field 'for' in recording rule".into()));
        }
        if !keep.is_zero() {
            problems.push((pos("record"), "invalid field 'keep_firing_for' in recording rule".into()));
        }
        if !is_valid_metric_name(&record) {
            problems.push((pos("record"), format!("invalid recording rule name: {record}")));
        }
    }
    for k in labels.keys() {
        if !is_valid_label_name(k) || k == "__name__" {
            problems.push((String::new(), format!("invalid label name: {k}")));
        }
    }
    for k in annotations.keys() {
        if !is_valid_label_name(k) {
            problems.push((String::new(), format!("invalid annotation name: {k}")));
        }
    }
    if !alert.is_empty() {
        let tmpl_name = format!("__alert_{alert}");
        for (what, map) in [("label", &labels), ("annotation", &annotations)] {
            for (k, v) in map {
                if let Err(e) = super::alert::parse_template(&tmpl_name, v) {
                    problems.push((String::new(), format!("{what} {k:?}: {e}")));
                }
            }
        }
    }
    let name = if alert.is_empty() { record.clone() } else { alert.clone() };
    if !problems.is_empty() {
        return Err((name, problems));
    }
    let kind = if alert.is_empty() { RuleKind::Recording } else { RuleKind::Alerting };
    Ok(RuleSpec { kind, name, expr, hold, keep_firing_for: keep, labels, annotations })
}

/// Reads and validates one rule file.
pub fn load_rule_file(path: &Path) -> Result<Vec<GroupSpec>, RuleFileError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| RuleFileError::Io { path: name.clone(), source })?;
    parse_rules(&name, &text).map_err(|problems| RuleFileError::Invalid { path: name, problems })
}

/// Loads `rule_files` entries like Prometheus: each is a path or a glob
/// (`*`, `?`, `[...]` in any component; `**` is not special), relative paths
/// resolved against `base`. A glob that matches nothing is not an error.
/// Group names must be unique per file only.
pub fn load_rule_files(patterns: &[String], base: Option<&Path>) -> Result<Vec<GroupSpec>, RuleFileError> {
    let mut groups = Vec::new();
    let mut seen = HashSet::new();
    for pattern in patterns {
        for path in expand_glob(pattern, base)? {
            if seen.insert(path.clone()) {
                groups.extend(load_rule_file(&path)?);
            }
        }
    }
    Ok(groups)
}

fn has_meta(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Go's `filepath.Glob`: sorted matches; a pattern without metacharacters
/// is returned as is (missing files fail later, when read).
pub fn expand_glob(pattern: &str, base: Option<&Path>) -> Result<Vec<PathBuf>, RuleFileError> {
    let full = match base {
        Some(b) if Path::new(pattern).is_relative() => b.join(pattern),
        _ => PathBuf::from(pattern),
    };
    let text = full.to_string_lossy().to_string();
    if !has_meta(&text) {
        return Ok(vec![full]);
    }
    let bad = |message: String| RuleFileError::Pattern { pattern: pattern.to_string(), message };
    let mut current: Vec<PathBuf> = vec![if full.is_absolute() { PathBuf::from("/") } else { PathBuf::new() }];
    for comp in full.components() {
        let part = comp.as_os_str().to_string_lossy().to_string();
        if matches!(comp, std::path::Component::RootDir | std::path::Component::Prefix(_)) {
            continue;
        }
        if !has_meta(&part) {
            current = current.into_iter().map(|p| p.join(&part)).collect();
            continue;
        }
        let matcher = globset::GlobBuilder::new(&part)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| bad(e.to_string()))?
            .compile_matcher();
        let mut next = Vec::new();
        for dir in current {
            let read_from = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir.clone() };
            let Ok(entries) = std::fs::read_dir(&read_from) else { continue };
            let mut names: Vec<String> =
                entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().to_string()).collect();
            names.sort();
            for n in names {
                if matcher.is_match(&n) {
                    next.push(dir.join(n));
                }
            }
        }
        current = next;
    }
    current.retain(|p| p.exists());
    current.sort();
    Ok(current)
}

/// Recording rules with the same name and labels in one file: promtool's
/// `duplicate-rules` lint.
fn duplicate_rules(groups: &[GroupSpec]) -> Vec<(String, BTreeMap<String, String>)> {
    let mut all: Vec<(String, BTreeMap<String, String>)> =
        groups.iter().flat_map(|g| g.rules.iter().map(|r| (r.name.clone(), r.labels.clone()))).collect();
    all.sort();
    let mut dups: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    for w in all.windows(2) {
        if w[0] == w[1] && dups.last() != Some(&w[1]) {
            dups.push(w[1].clone());
        }
    }
    dups
}

/// `wasmon check rules FILE...`, printing like `promtool check rules`.
/// Returns false when any file has errors (lint findings only count with
/// `lint_fatal`).
pub fn check_rules_command(files: &[PathBuf], lint_fatal: bool) -> bool {
    let mut failed = false;
    let mut has_errors = false;
    for f in files {
        println!("Checking {}", f.display());
        let result = load_rule_file(f);
        let (errors, lint) = match result {
            Ok(groups) => {
                let dups = duplicate_rules(&groups);
                if dups.is_empty() {
                    let n: usize = groups.iter().map(|g| g.rules.len()).sum();
                    println!("  SUCCESS: {n} rules found");
                    println!();
                    continue;
                }
                let mut msg = format!("lint error {} duplicate rule(s) found.\n", dups.len());
                for (metric, labels) in &dups {
                    msg.push_str(&format!("Metric: {metric}\nLabel(s):\n"));
                    for (k, v) in labels {
                        msg.push_str(&format!("\t{k}: {v}\n"));
                    }
                }
                msg.push_str("Might cause inconsistency while recording expressions");
                (vec![msg], true)
            }
            Err(RuleFileError::Invalid { problems, .. }) => (problems, false),
            Err(e) => (vec![e.to_string()], false),
        };
        eprintln!("  FAILED:");
        for e in &errors {
            eprintln!("{e}");
        }
        failed = true;
        has_errors |= !lint;
        println!();
    }
    !(failed && (has_errors || lint_fatal))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_promtool_positions() {
        let text = "groups:\n  - name: g\n    rules:\n      - record: job:up:sum\n        expr: sum by (job) (up\n        for: 5m\n  - name: g\n    rules: []\n";
        let errs = parse_rules("bad.yml", text).unwrap_err();
        assert!(errs[0].starts_with("bad.yml: 5:15: group \"g\", rule 1, \"job:up:sum\": could not parse expression"));
        assert_eq!(
            errs[1],
            "bad.yml: 4:17: group \"g\", rule 1, \"job:up:sum\": invalid field 'for' in recording rule"
        );
        assert_eq!(errs[2], "bad.yml: 7:5: groupname: \"g\" is repeated in the same file");
    }

    #[test]
    fn missing_nodes_are_at_zero() {
        let text = "groups:\n- name: g\n  rules:\n  - expr: up\n  - record: 'a b'\n    alert: x\n    expr: up\n";
        let errs = parse_rules("f", text).unwrap_err();
        assert_eq!(errs[0], "f: 0:0: group \"g\", rule 1, \"\": one of 'record' or 'alert' must be set");
        assert_eq!(errs[1], "f: 5:13: 6:12: group \"g\", rule 2, \"x\": only one of 'record' and 'alert' must be set");
        assert_eq!(errs[2], "f: 5:13: group \"g\", rule 2, \"x\": invalid recording rule name: a b");
    }

    #[test]
    fn yaml_and_duration_errors_stop_early() {
        let errs = parse_rules("f", "groups:\n- name: g\n  rulez: []\n").unwrap_err();
        assert!(errs[0].starts_with("f: 3:3: ") && errs[0].contains("unknown field `rulez`"), "{errs:?}");
        let errs =
            parse_rules("f", "groups:\n- name: g\n  rules:\n  - alert: a\n    expr: up\n    for: -5m\n").unwrap_err();
        assert_eq!(errs, vec!["f: not a valid duration string: \"-5m\"".to_string()]);
        assert_eq!(parse_rules("f", "").unwrap(), vec![]);
    }

    #[test]
    fn names() {
        assert!(is_valid_metric_name("job:up:sum"));
        assert!(!is_valid_metric_name("0up"));
        assert!(is_valid_label_name("_a1"));
        assert!(!is_valid_label_name("a:b"));
    }
}
