//! The notifier's configuration: a subset of Alertmanager's `alertmanager.yml`
//! with the same key names (`route`, `receivers`, `inhibit_rules`), so a file
//! written for Alertmanager works here unchanged as long as it only uses webhooks.

use crate::matcher::{MatchOp, Matcher, format_matchers, parse_matchers, valid_label_name};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot parse notifier config: {0}")]
    Parse(String),
    #[error("invalid notifier config:\n  {}", .0.join("\n  "))]
    Invalid(Vec<String>),
    #[error("invalid duration {0:?}: want e.g. 30s, 5m, 4h or 1h30m")]
    Duration(String),
}

impl ConfigError {
    /// Every problem found, each prefixed with its path (`route.routes[1].matchers[0]: ...`).
    pub fn problems(&self) -> Vec<String> {
        match self {
            ConfigError::Invalid(p) => p.clone(),
            other => vec![other.to_string()],
        }
    }
}

/// A Prometheus-style duration (`30s`, `5m`, `1h30m`, `1d`, `500ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct PromDuration(pub Duration);

impl PromDuration {
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        let err = || ConfigError::Duration(s.to_string());
        if s == "0" {
            return Ok(PromDuration(Duration::ZERO));
        }
        if s.is_empty() {
            return Err(err());
        }
        // Units must appear in this order, each at most once, like Prometheus' parser.
        const UNITS: [(&str, u64); 7] = [
            ("y", 365 * 24 * 3600 * 1000),
            ("w", 7 * 24 * 3600 * 1000),
            ("d", 24 * 3600 * 1000),
            ("h", 3600 * 1000),
            ("m", 60 * 1000),
            ("s", 1000),
            ("ms", 1),
        ];
        let mut rest = s;
        let mut next_unit = 0;
        let mut total: u64 = 0;
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            if digits == 0 {
                return Err(err());
            }
            let n: u64 = rest[..digits].parse().map_err(|_| err())?;
            rest = &rest[digits..];
            let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let Some(pos) = UNITS[next_unit..].iter().position(|(u, _)| *u == unit) else {
                return Err(err());
            };
            let (_, ms) = UNITS[next_unit + pos];
            next_unit += pos + 1;
            total = n.checked_mul(ms).and_then(|v| total.checked_add(v)).ok_or_else(err)?;
        }
        Ok(PromDuration(Duration::from_millis(total)))
    }
}

impl fmt::Display for PromDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in
            [("w", 7 * 24 * 3600 * 1000u128), ("d", 24 * 3600 * 1000), ("h", 3600 * 1000), ("m", 60_000)]
        {
            if ms >= size {
                write!(f, "{}{unit}", ms / size)?;
                ms %= size;
            }
        }
        if ms >= 1000 {
            write!(f, "{}s", ms / 1000)?;
            ms %= 1000;
        }
        if ms > 0 {
            write!(f, "{ms}ms")?;
        }
        Ok(())
    }
}

impl Serialize for PromDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        PromDuration::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The whole notifier config (Alertmanager's top-level keys).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub global: GlobalConfig,
    pub route: RouteConfig,
    #[serde(default)]
    pub receivers: Vec<ReceiverConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inhibit_rules: Vec<InhibitRuleConfig>,
    /// Alertmanager's `--web.external-url`: sent as `externalURL` in webhook
    /// bodies. Not part of the YAML (it is a flag in Alertmanager).
    #[serde(skip)]
    pub external_url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GlobalConfig {
    /// How long an alert without `endsAt` stays firing after it was last received.
    #[serde(default = "default_resolve_timeout")]
    pub resolve_timeout: PromDuration,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig { resolve_timeout: default_resolve_timeout() }
    }
}

fn default_resolve_timeout() -> PromDuration {
    PromDuration(Duration::from_secs(300))
}

/// One node of the routing tree. Unset options are inherited from the parent
/// (the root's defaults are Alertmanager's: 30s / 5m / 4h).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver: Option<String>,
    /// Label names, or `['...']` to group by every label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_wait: Option<PromDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_interval: Option<PromDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_interval: Option<PromDuration>,
    /// Alertmanager matcher strings; each may hold a comma-separated list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matchers: Vec<String>,
    /// Deprecated in Alertmanager but still accepted there, so accepted here.
    #[serde(default, rename = "match", skip_serializing_if = "BTreeMap::is_empty")]
    pub match_eq: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_re: BTreeMap<String, String>,
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhook_configs: Vec<WebhookConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// At most this many alerts per message (0: all); the rest are counted in `truncatedAlerts`.
    #[serde(default)]
    pub max_alerts: u64,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct InhibitRuleConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_matchers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_matchers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub equal: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub source_match: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub source_match_re: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub target_match: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub target_match_re: BTreeMap<String, String>,
}

impl Config {
    /// Parses and validates (all problems at once).
    pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
        let cfg: Config = serde_yaml_ng::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        compile(self).map(|_| ())
    }

    /// The config as YAML (what `GET /api/v2/status` reports as `original`).
    pub fn to_yaml(&self) -> String {
        serde_yaml_ng::to_string(self).unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GroupBy {
    All,
    Labels(Vec<String>),
}

/// A validated route with inherited options resolved.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    /// Unique per node (pre-order), used to key aggregation groups.
    pub id: usize,
    pub key: String,
    pub receiver: String,
    pub group_by: GroupBy,
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
    pub matchers: Vec<Matcher>,
    pub continue_matching: bool,
    pub routes: Vec<Route>,
}

impl Route {
    /// Alertmanager's `Route.Match`: depth-first, first matching child wins
    /// unless it has `continue`; a node with no matching child matches itself.
    pub fn matches<'a>(&'a self, labels: &crate::model::LabelSet, out: &mut Vec<&'a Route>) -> bool {
        if !crate::matcher::matches_all(&self.matchers, labels) {
            return false;
        }
        let before = out.len();
        for child in &self.routes {
            if child.matches(labels, out) && !child.continue_matching {
                break;
            }
        }
        if out.len() == before {
            out.push(self);
        }
        true
    }

    pub fn group_labels(&self, labels: &crate::model::LabelSet) -> crate::model::LabelSet {
        match &self.group_by {
            GroupBy::All => labels.clone(),
            GroupBy::Labels(names) => {
                names.iter().filter_map(|n| labels.get(n).map(|v| (n.clone(), v.clone()))).collect()
            }
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Webhook {
    pub url: String,
    pub send_resolved: bool,
    pub max_alerts: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct InhibitRule {
    pub source: Vec<Matcher>,
    pub target: Vec<Matcher>,
    pub equal: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    pub root: Route,
    pub receivers: BTreeMap<String, Vec<Webhook>>,
    pub receiver_names: Vec<String>,
    pub inhibit_rules: Vec<InhibitRule>,
    pub resolve_timeout: Duration,
    pub external_url: String,
}

/// Longer timings make no sense and would overflow timer arithmetic.
const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

struct Inherited<'a> {
    receiver: Option<&'a str>,
    group_by: GroupBy,
    group_wait: Duration,
    group_interval: Duration,
    repeat_interval: Duration,
}

pub(crate) fn compile(cfg: &Config) -> Result<Compiled, ConfigError> {
    let mut problems = Vec::new();
    let mut receivers = BTreeMap::new();
    let mut receiver_names = Vec::new();
    for (i, r) in cfg.receivers.iter().enumerate() {
        let at = format!("receivers[{i}]");
        if r.name.is_empty() {
            problems.push(format!("{at}.name: missing receiver name"));
            continue;
        }
        if receivers.contains_key(&r.name) {
            problems.push(format!("{at}.name: duplicate receiver name {:?}", r.name));
            continue;
        }
        let mut hooks = Vec::new();
        for (j, w) in r.webhook_configs.iter().enumerate() {
            if let Err(e) = check_url(&w.url) {
                problems.push(format!("{at}.webhook_configs[{j}].url: {e}"));
            }
            hooks.push(Webhook { url: w.url.clone(), send_resolved: w.send_resolved, max_alerts: w.max_alerts });
        }
        receiver_names.push(r.name.clone());
        receivers.insert(r.name.clone(), hooks);
    }
    if cfg.global.resolve_timeout.0.is_zero() {
        problems.push("global.resolve_timeout: must be greater than 0".to_string());
    }
    if cfg.global.resolve_timeout.0 > MAX_DURATION {
        problems.push("global.resolve_timeout: must be at most 10y".to_string());
    }
    let root_cfg = &cfg.route;
    if root_cfg.receiver.is_none() {
        problems.push("route.receiver: the root route must have a receiver".to_string());
    }
    if !root_cfg.matchers.is_empty() || !root_cfg.match_eq.is_empty() || !root_cfg.match_re.is_empty() {
        problems.push("route.matchers: the root route must not have any matchers".to_string());
    }
    if root_cfg.continue_matching {
        problems.push("route.continue: the root route cannot have continue".to_string());
    }
    let defaults = Inherited {
        receiver: None,
        group_by: GroupBy::Labels(Vec::new()),
        group_wait: Duration::from_secs(30),
        group_interval: Duration::from_secs(300),
        repeat_interval: Duration::from_secs(4 * 3600),
    };
    let mut next_id = 0;
    let root = compile_route(root_cfg, "route", None, &defaults, &receivers, &mut next_id, &mut problems);
    let mut inhibit_rules = Vec::new();
    for (i, r) in cfg.inhibit_rules.iter().enumerate() {
        let at = format!("inhibit_rules[{i}]");
        let source = matcher_list(
            &r.source_matchers,
            &r.source_match,
            &r.source_match_re,
            &at,
            ["source_matchers", "source_match", "source_match_re"],
            &mut problems,
        );
        let target = matcher_list(
            &r.target_matchers,
            &r.target_match,
            &r.target_match_re,
            &at,
            ["target_matchers", "target_match", "target_match_re"],
            &mut problems,
        );
        for (j, n) in r.equal.iter().enumerate() {
            if !valid_label_name(n) {
                problems.push(format!("{at}.equal[{j}]: invalid label name {n:?}"));
            }
        }
        inhibit_rules.push(InhibitRule { source, target, equal: r.equal.clone() });
    }
    if !problems.is_empty() {
        return Err(ConfigError::Invalid(problems));
    }
    Ok(Compiled {
        root,
        receivers,
        receiver_names,
        inhibit_rules,
        resolve_timeout: cfg.global.resolve_timeout.0,
        external_url: cfg.external_url.clone(),
    })
}

fn check_url(url: &str) -> Result<(), String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("invalid url {url:?}: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => return Err(format!("{url:?}: https is not supported yet (no TLS client in the notifier)")),
        _ => return Err(format!("invalid url {url:?}: want http://host:port/path")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("invalid url {url:?}: missing host"));
    }
    Ok(())
}

fn matcher_list(
    strings: &[String],
    eq: &BTreeMap<String, String>,
    re: &BTreeMap<String, String>,
    at: &str,
    keys: [&str; 3],
    problems: &mut Vec<String>,
) -> Vec<Matcher> {
    let mut out = Vec::new();
    for (j, s) in strings.iter().enumerate() {
        match parse_matchers(s) {
            Ok(ms) => out.extend(ms),
            Err(e) => problems.push(format!("{at}.{}[{j}]: {e}", keys[0])),
        }
    }
    for (key, map, op) in [(keys[1], eq, MatchOp::Equal), (keys[2], re, MatchOp::Regex)] {
        for (name, value) in map {
            if !valid_label_name(name) {
                problems.push(format!("{at}.{key}.{name}: invalid label name {name:?}"));
                continue;
            }
            match Matcher::new(name, op, value) {
                Ok(m) => out.push(m),
                Err(e) => problems.push(format!("{at}.{key}.{name}: {e}")),
            }
        }
    }
    out
}

fn compile_route(
    rc: &RouteConfig,
    at: &str,
    parent_key: Option<&str>,
    inherited: &Inherited<'_>,
    receivers: &BTreeMap<String, Vec<Webhook>>,
    next_id: &mut usize,
    problems: &mut Vec<String>,
) -> Route {
    let id = *next_id;
    *next_id += 1;
    let receiver = rc.receiver.as_deref().or(inherited.receiver);
    if let Some(r) = &rc.receiver
        && !receivers.contains_key(r)
    {
        problems.push(format!("{at}.receiver: unknown receiver {r:?}"));
    }
    let group_by = match &rc.group_by {
        None => inherited.group_by.clone(),
        Some(names) if names.iter().any(|n| n == "...") => {
            if names.len() > 1 {
                problems.push(format!("{at}.group_by: cannot have '...' and other labels at the same time"));
            }
            GroupBy::All
        }
        Some(names) => {
            let mut seen = HashSet::new();
            for (i, n) in names.iter().enumerate() {
                if !valid_label_name(n) {
                    problems.push(format!("{at}.group_by[{i}]: invalid label name {n:?}"));
                } else if !seen.insert(n) {
                    problems.push(format!("{at}.group_by[{i}]: duplicate label {n:?}"));
                }
            }
            GroupBy::Labels(names.clone())
        }
    };
    let group_wait = rc.group_wait.map_or(inherited.group_wait, |d| d.0);
    let group_interval = rc.group_interval.map_or(inherited.group_interval, |d| d.0);
    let repeat_interval = rc.repeat_interval.map_or(inherited.repeat_interval, |d| d.0);
    for (name, d) in
        [("group_wait", group_wait), ("group_interval", group_interval), ("repeat_interval", repeat_interval)]
    {
        if d > MAX_DURATION {
            problems.push(format!("{at}.{name}: must be at most 10y"));
        }
    }
    if group_interval.is_zero() {
        problems.push(format!("{at}.group_interval: must be greater than 0"));
    }
    if repeat_interval.is_zero() {
        problems.push(format!("{at}.repeat_interval: must be greater than 0"));
    }
    let mut matchers =
        matcher_list(&rc.matchers, &rc.match_eq, &rc.match_re, at, ["matchers", "match", "match_re"], problems);
    // Alertmanager sorts route matchers, which fixes the group key's spelling.
    matchers.sort_by(|a, b| (&a.name, a.op, &a.value).cmp(&(&b.name, b.op, &b.value)));
    let key = match parent_key {
        Some(p) => format!("{p}/{}", format_matchers(&matchers)),
        None => format_matchers(&matchers),
    };
    let next = Inherited { receiver, group_by: group_by.clone(), group_wait, group_interval, repeat_interval };
    let routes = rc
        .routes
        .iter()
        .enumerate()
        .map(|(i, c)| compile_route(c, &format!("{at}.routes[{i}]"), Some(&key), &next, receivers, next_id, problems))
        .collect();
    Route {
        id,
        key,
        receiver: receiver.unwrap_or_default().to_string(),
        group_by,
        group_wait,
        group_interval,
        repeat_interval,
        matchers,
        continue_matching: rc.continue_matching,
        routes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let d = |s: &str| PromDuration::parse(s).map(|d| d.0);
        assert_eq!(d("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(d("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(d("200ms").unwrap(), Duration::from_millis(200));
        assert_eq!(d("1d").unwrap(), Duration::from_secs(86400));
        assert_eq!(d("0").unwrap(), Duration::ZERO);
        for bad in ["", "5", "m", "5x", "1m1h", "1s1s", "-1s", "1.5h"] {
            assert!(d(bad).is_err(), "{bad}");
        }
        assert_eq!(PromDuration(Duration::from_secs(5400)).to_string(), "1h30m");
        assert_eq!(PromDuration(Duration::from_millis(1500)).to_string(), "1s500ms");
    }

    #[test]
    fn defaults_and_inheritance() {
        let cfg = Config::from_yaml(
            r#"
route:
  receiver: a
  group_by: ['...']
  routes:
    - matchers: ['team="x"', 'sev=~"crit|page"']
      group_wait: 1s
    - receiver: b
      match: {team: y}
      group_by: [alertname]
receivers:
  - name: a
    webhook_configs: [{url: "http://127.0.0.1:1/x"}]
  - name: b
"#,
        )
        .unwrap();
        assert!(cfg.receivers[0].webhook_configs[0].send_resolved);
        let c = compile(&cfg).unwrap();
        assert_eq!(c.root.group_wait, Duration::from_secs(30));
        assert_eq!(c.root.group_interval, Duration::from_secs(300));
        assert_eq!(c.root.repeat_interval, Duration::from_secs(14400));
        let r0 = &c.root.routes[0];
        assert_eq!((r0.receiver.as_str(), r0.group_wait, &r0.group_by), ("a", Duration::from_secs(1), &GroupBy::All));
        assert_eq!(r0.key, r#"{}/{sev=~"crit|page",team="x"}"#);
        let r1 = &c.root.routes[1];
        assert_eq!((r1.receiver.as_str(), &r1.group_by), ("b", &GroupBy::Labels(vec!["alertname".into()])));
        // The YAML we report round-trips.
        let again = Config::from_yaml(&cfg.to_yaml()).unwrap();
        assert_eq!(again, cfg);
    }

    #[test]
    fn reports_every_problem_with_its_path() {
        let err = Config::from_yaml(
            r#"
route:
  receiver: nope
  routes:
    - receiver: a
    - matchers: ['ok="1"', 'bad']
      receiver: missing
      routes:
        - matchers: ['x=~"("']
receivers:
  - name: a
    webhook_configs: [{url: "ftp://x"}]
  - name: a
inhibit_rules:
  - source_matchers: ['a="b"']
    target_matchers: ['c']
    equal: ['bad-label']
"#,
        )
        .unwrap_err();
        let p = err.problems();
        let expect = [
            "receivers[0].webhook_configs[0].url:",
            "receivers[1].name: duplicate receiver name \"a\"",
            "route.receiver: unknown receiver \"nope\"",
            "route.routes[1].receiver: unknown receiver \"missing\"",
            "route.routes[1].matchers[1]: bad matcher format: bad",
            "route.routes[1].routes[0].matchers[0]: invalid regular expression",
            "inhibit_rules[0].target_matchers[0]: bad matcher format: c",
            "inhibit_rules[0].equal[0]: invalid label name",
        ];
        for e in expect {
            assert!(p.iter().any(|x| x.starts_with(e)), "missing {e:?} in {p:#?}");
        }
        assert_eq!(p.len(), expect.len(), "{p:#?}");
    }

    #[test]
    fn rejects_unknown_keys_and_https() {
        let err = Config::from_yaml("route: {receiver: a}\nreceivers: [{name: a, slack_configs: []}]\n").unwrap_err();
        assert!(err.to_string().contains("slack_configs"), "{err}");
        let err = Config::from_yaml("route: {receiver: a, group_wait: 5}\nreceivers: [{name: a}]\n").unwrap_err();
        assert!(err.to_string().contains("invalid duration"), "{err}");
        let err =
            Config::from_yaml("route: {receiver: a}\nreceivers: [{name: a, webhook_configs: [{url: 'https://x/'}]}]\n")
                .unwrap_err();
        assert!(err.to_string().contains("https is not supported"), "{err}");
        let err =
            Config::from_yaml("route: {receiver: a, matchers: ['a=b'], continue: true}\nreceivers: [{name: a}]\n")
                .unwrap_err();
        assert_eq!(err.problems().len(), 2, "{err}");
    }
}
