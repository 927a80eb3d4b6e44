//! The processor: config (patterns compiled and checked at load time), and
//! named captures to attributes for one record.

use regex::bytes::{Regex, RegexBuilder};
use serde::Deserialize;
use wasmon_sdk_logs::LogRecord;

/// Compiled programs above this size are refused: a pattern like `\w{1000}{1000}`
/// would otherwise take the instance's whole memory budget.
const REGEX_SIZE_LIMIT: usize = 4 << 20;

/// The plugin's config section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegexConfig {
    /// One pattern; shorthand for `patterns: [PATTERN]`.
    #[serde(default)]
    pub pattern: Option<String>,
    /// Patterns tried in order; the first that matches wins.
    #[serde(default)]
    pub patterns: Vec<PatternConfig>,
    /// What the patterns run on: `body`, or the name of an attribute (the record's
    /// own, or one set by an earlier processor).
    #[serde(default = "default_field")]
    pub field: String,
    /// Prepended to every capture name.
    #[serde(default)]
    pub prefix: String,
    /// A capture with this name becomes the body instead of an attribute.
    #[serde(default)]
    pub body_group: Option<String>,
    /// What happens to a record no pattern matches.
    #[serde(default)]
    pub on_no_match: OnNoMatch,
    /// Set to `true` on unmatched records with `on_no_match: mark`.
    #[serde(default = "default_no_match_attribute")]
    pub no_match_attribute: String,
    /// If set, receives the name of the pattern that matched.
    #[serde(default)]
    pub pattern_attribute: Option<String>,
}

/// One entry of `patterns`: the regex alone, or with a name for metrics and
/// `pattern_attribute`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternConfig {
    Plain(String),
    Named(NamedPattern),
}

impl<'de> Deserialize<'de> for PatternConfig {
    /// By hand rather than `#[serde(untagged)]`, whose only error is "data did not match
    /// any variant": a typo in a key should be named.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(Self::Plain(s)),
            v @ serde_json::Value::Object(_) => serde_json::from_value(v).map(Self::Named).map_err(D::Error::custom),
            other => Err(D::Error::custom(format!("a pattern is a string or {{name, pattern}}, not {other}"))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedPattern {
    pub name: String,
    pub pattern: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnNoMatch {
    /// Pass the record on unchanged.
    #[default]
    Keep,
    /// Leave the record out of the batch.
    Drop,
    /// Pass it on with `no_match_attribute: "true"`.
    Mark,
}

fn default_field() -> String {
    "body".into()
}

fn default_no_match_attribute() -> String {
    "regex.no_match".into()
}

/// Everything wrong with a config section, all at once.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid logs-regex config: {0}")]
    Json(#[source] serde_json::Error),
    #[error("invalid logs-regex config:\n{}", .0.join("\n"))]
    Invalid(Vec<String>),
}

/// A compiled pattern.
#[derive(Debug, Clone)]
struct Pattern {
    name: String,
    regex: Regex,
    /// `(group index, attribute name)` of the named groups except `body_group`.
    groups: Vec<(usize, String)>,
    body_group: Option<usize>,
}

/// What happened to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Pattern `index` matched.
    Matched(usize),
    /// Nothing matched (or `field` is absent); the record was kept, dropped or marked.
    NoMatch,
}

/// Counts since the instance started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Per pattern, in config order.
    pub matched: Vec<u64>,
    pub unmatched: u64,
    pub dropped: u64,
}

#[derive(Debug, Clone)]
pub struct RegexProcessor {
    cfg: RegexConfig,
    patterns: Vec<Pattern>,
    pub stats: Stats,
}

impl RegexConfig {
    /// The JSON section the host passes.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let text = text.trim();
        if text.is_empty() || text == "null" {
            return Err(ConfigError::Invalid(vec!["`pattern` or `patterns` is required".into()]));
        }
        serde_json::from_str(text).map_err(ConfigError::Json)
    }
}

impl RegexProcessor {
    /// Parses and compiles the config section; every problem is reported, each with
    /// the position of the pattern it concerns (`patterns[2]`).
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        Self::new(RegexConfig::from_json(text)?)
    }

    pub fn new(cfg: RegexConfig) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let mut sources: Vec<(String, String, String)> = Vec::new(); // (position, name, regex)
        if let Some(p) = &cfg.pattern {
            // Named like an unnamed `patterns` entry: by its index.
            sources.push(("pattern".into(), "0".into(), p.clone()));
        }
        for (i, p) in cfg.patterns.iter().enumerate() {
            let (name, regex) = match p {
                PatternConfig::Plain(r) => (format!("{i}"), r.clone()),
                PatternConfig::Named(n) => (n.name.clone(), n.pattern.clone()),
            };
            sources.push((format!("patterns[{i}]"), name, regex));
        }
        if sources.is_empty() {
            problems.push("`pattern` or `patterns` is required".into());
        }
        if cfg.pattern.is_some() && !cfg.patterns.is_empty() {
            problems.push("give `pattern` or `patterns`, not both".into());
        }
        if cfg.field.is_empty() {
            problems.push("field: must be `body` or an attribute name".into());
        }
        if cfg.on_no_match == OnNoMatch::Mark && cfg.no_match_attribute.is_empty() {
            problems.push("no_match_attribute: must not be empty with on_no_match: mark".into());
        }
        if cfg.pattern_attribute.as_deref() == Some("") {
            problems.push("pattern_attribute: must not be empty (leave it out to not record the pattern)".into());
        }
        let mut names_seen = std::collections::HashSet::new();
        for (_, name, _) in &sources {
            if name.is_empty() || !names_seen.insert(name.clone()) {
                problems.push(format!("pattern name {name:?} is empty or used twice"));
            }
        }

        let mut patterns = Vec::with_capacity(sources.len());
        for (position, name, source) in sources {
            let regex = match RegexBuilder::new(&source).size_limit(REGEX_SIZE_LIMIT).build() {
                Ok(r) => r,
                Err(e) => {
                    problems.push(format!("{position}: {}", indent_error(&e)));
                    continue;
                }
            };
            let mut groups = Vec::new();
            let mut body_group = None;
            for (index, group) in regex.capture_names().enumerate() {
                let Some(group) = group else { continue };
                if cfg.body_group.as_deref() == Some(group) {
                    body_group = Some(index);
                } else {
                    groups.push((index, format!("{}{group}", cfg.prefix)));
                }
            }
            if groups.is_empty() && body_group.is_none() {
                problems.push(format!(
                    "{position}: {source:?} has no named capture group; write one as (?P<name>...) or (?<name>...)"
                ));
                continue;
            }
            patterns.push(Pattern { name, regex, groups, body_group });
        }
        if !problems.is_empty() {
            return Err(ConfigError::Invalid(problems));
        }
        let stats = Stats { matched: vec![0; patterns.len()], ..Stats::default() };
        Ok(Self { cfg, patterns, stats })
    }

    /// Pattern names in config order (`patterns[i].name`, or `i` for an unnamed one).
    pub fn pattern_names(&self) -> impl Iterator<Item = &str> {
        self.patterns.iter().map(|p| p.name.as_str())
    }

    pub fn process_batch(&mut self, batch: Vec<LogRecord>) -> Vec<LogRecord> {
        let mut out = Vec::with_capacity(batch.len());
        for mut record in batch {
            let outcome = self.process(&mut record);
            if outcome == Outcome::NoMatch && self.cfg.on_no_match == OnNoMatch::Drop {
                continue;
            }
            out.push(record);
        }
        out
    }

    /// Applies the patterns to one record. With `on_no_match: drop` the caller
    /// leaves out records that come back `NoMatch` (as `process_batch` does).
    pub fn process(&mut self, record: &mut LogRecord) -> Outcome {
        let outcome = self.apply(record);
        match outcome {
            Outcome::Matched(i) => self.stats.matched[i] += 1,
            Outcome::NoMatch => {
                self.stats.unmatched += 1;
                match self.cfg.on_no_match {
                    OnNoMatch::Keep => {}
                    OnNoMatch::Drop => self.stats.dropped += 1,
                    OnNoMatch::Mark => {
                        record.set_attribute(self.cfg.no_match_attribute.clone(), "true");
                    }
                }
            }
        }
        outcome
    }

    fn apply(&self, record: &mut LogRecord) -> Outcome {
        let haystack: Vec<u8> = if self.cfg.field == "body" {
            std::mem::take(&mut record.body)
        } else {
            match record.attribute(&self.cfg.field) {
                Some(v) => v.as_bytes().to_vec(),
                None => return Outcome::NoMatch,
            }
        };
        // A body that is not UTF-8 is matched as its lossy text, so that one Latin-1
        // byte does not make `.` fail on a whole line; the body then stays as it was.
        let lossy_input = std::str::from_utf8(&haystack).is_err();
        let text = if lossy_input { String::from_utf8_lossy(&haystack).into_owned().into_bytes() } else { Vec::new() };
        let subject: &[u8] = if lossy_input { &text } else { &haystack };
        let mut outcome = Outcome::NoMatch;
        let mut new_body = None;
        for (index, pattern) in self.patterns.iter().enumerate() {
            let Some(caps) = pattern.regex.captures(subject) else { continue };
            let mut lossy = lossy_input;
            for (group, name) in &pattern.groups {
                if let Some(m) = caps.get(*group) {
                    let value = match std::str::from_utf8(m.as_bytes()) {
                        Ok(s) => s.to_owned(),
                        Err(_) => {
                            lossy = true;
                            String::from_utf8_lossy(m.as_bytes()).into_owned()
                        }
                    };
                    record.set_attribute(name.clone(), value);
                }
            }
            // The body is replaced only when nothing was lost to U+FFFD: the original
            // body still holds those bytes then.
            if let Some(m) = pattern.body_group.and_then(|g| caps.get(g))
                && !lossy
            {
                new_body = Some(m.as_bytes().to_vec());
            }
            if let Some(attr) = &self.cfg.pattern_attribute {
                record.set_attribute(attr.clone(), pattern.name.clone());
            }
            outcome = Outcome::Matched(index);
            break;
        }
        if self.cfg.field == "body" {
            record.body = new_body.unwrap_or(haystack);
        } else if let Some(body) = new_body {
            record.body = body;
        }
        outcome
    }
}

/// The regex crate's multi-line error (pattern, caret, message) indented under
/// the position it belongs to.
fn indent_error(e: &regex::Error) -> String {
    e.to_string().lines().collect::<Vec<_>>().join("\n    ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn processor(cfg: &str) -> RegexProcessor {
        RegexProcessor::from_json(cfg).unwrap()
    }

    fn attrs(r: &LogRecord) -> Vec<(&str, &str)> {
        r.attributes.iter().collect()
    }

    #[test]
    fn named_groups_become_attributes() {
        let mut p = processor(r#"{"pattern":"^(?P<level>[A-Z]+) \\[(?P<thread>[^\\]]+)\\] (?P<msg>.*)$"}"#);
        let mut r = LogRecord::new(0, 1, "WARN [main-7] cache miss for key=42");
        assert_eq!(p.process(&mut r), Outcome::Matched(0));
        assert_eq!(attrs(&r), vec![("level", "WARN"), ("msg", "cache miss for key=42"), ("thread", "main-7")]);
        assert_eq!(r.body, b"WARN [main-7] cache miss for key=42");
    }

    #[test]
    fn first_matching_pattern_wins_and_is_named() {
        let cfg = r#"{"patterns":[
            {"name":"kv","pattern":"^(?P<k>\\w+)=(?P<v>\\w+)$"},
            "^(?P<word>\\w+)$",
            {"name":"any","pattern":"(?P<all>.+)"}],
          "pattern_attribute":"regex.pattern","prefix":"p."}"#;
        let mut p = processor(cfg);
        let mut a = LogRecord::new(0, 0, "a=b");
        let mut b = LogRecord::new(0, 0, "hello");
        let mut c = LogRecord::new(0, 0, "two words");
        assert_eq!(p.process(&mut a), Outcome::Matched(0));
        assert_eq!(p.process(&mut b), Outcome::Matched(1));
        assert_eq!(p.process(&mut c), Outcome::Matched(2));
        assert_eq!(attrs(&a), vec![("p.k", "a"), ("p.v", "b"), ("regex.pattern", "kv")]);
        assert_eq!(attrs(&b), vec![("p.word", "hello"), ("regex.pattern", "1")]);
        assert_eq!(attrs(&c), vec![("p.all", "two words"), ("regex.pattern", "any")]);
        assert_eq!(p.stats.matched, vec![1, 1, 1]);
        assert_eq!(p.pattern_names().collect::<Vec<_>>(), vec!["kv", "1", "any"]);
    }

    #[test]
    fn optional_group_that_did_not_take_part_is_absent() {
        let mut p = processor(r#"{"pattern":"^(?P<a>x)(?P<b>y)?"}"#);
        let mut r = LogRecord::new(0, 0, "xz");
        p.process(&mut r);
        assert_eq!(attrs(&r), vec![("a", "x")]);
        let mut r = LogRecord::new(0, 0, "x");
        let mut p = processor(r#"{"pattern":"^(?P<a>x)(?P<b>y?)"}"#);
        p.process(&mut r);
        assert_eq!(attrs(&r), vec![("a", "x"), ("b", "")], "an empty match is a value");
    }

    #[test]
    fn on_no_match_keep_drop_mark() {
        let batch = || vec![LogRecord::new(0, 0, "match 1"), LogRecord::new(0, 0, "nope")];
        let mut keep = processor(r#"{"pattern":"match (?P<n>\\d)"}"#);
        let out = keep.process_batch(batch());
        assert_eq!(out.len(), 2);
        assert!(out[1].attributes.is_empty());
        let mut drop = processor(r#"{"pattern":"match (?P<n>\\d)","on_no_match":"drop"}"#);
        let out = drop.process_batch(batch());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].attribute("n"), Some("1"));
        assert_eq!((drop.stats.unmatched, drop.stats.dropped), (1, 1));
        let mut mark = processor(r#"{"pattern":"match (?P<n>\\d)","on_no_match":"mark"}"#);
        let out = mark.process_batch(batch());
        assert_eq!(attrs(&out[1]), vec![("regex.no_match", "true")]);
        assert_eq!(out[0].attribute("regex.no_match"), None);
    }

    #[test]
    fn body_group_and_field() {
        let mut p = processor(r#"{"pattern":"^(?P<ts>\\S+) (?P<message>.*)$","body_group":"message"}"#);
        let mut r = LogRecord::new(0, 0, "12:00:01 started");
        p.process(&mut r);
        assert_eq!(r.body, b"started");
        assert_eq!(attrs(&r), vec![("ts", "12:00:01")]);

        let mut p = processor(r#"{"pattern":"^(?P<user>[a-z]+)@(?P<domain>.+)$","field":"email"}"#);
        let mut r = LogRecord::new(0, 0, "body stays");
        r.set_attribute("email", "bob@example.org");
        assert_eq!(p.process(&mut r), Outcome::Matched(0));
        assert_eq!(r.attribute("domain"), Some("example.org"));
        assert_eq!(r.body, b"body stays");
        let mut r = LogRecord::new(0, 0, "no email attribute");
        assert_eq!(p.process(&mut r), Outcome::NoMatch);
    }

    #[test]
    fn invalid_utf8_body_is_matched_as_lossy_text_and_kept() {
        let mut p = processor(r#"{"pattern":"^(?P<word>\\w+)(?P<rest>.*)$","body_group":"rest"}"#);
        let mut r = LogRecord::new(0, 0, &b"caf\xe9 ok"[..]);
        assert_eq!(p.process(&mut r), Outcome::Matched(0));
        assert_eq!(attrs(&r), vec![("word", "caf")]);
        assert_eq!(r.body, b"caf\xe9 ok", "not replaced by `rest`: that would lose the byte");
        // A byte-level pattern sees U+FFFD's three bytes, never half of one in a value.
        let mut p = processor(r#"{"pattern":"(?-u)^(?P<word>[^ ]+) (?P<rest>.*)$"}"#);
        let mut r = LogRecord::new(0, 0, &b"caf\xe9 ok"[..]);
        assert_eq!(p.process(&mut r), Outcome::Matched(0));
        assert_eq!(attrs(&r), vec![("rest", "ok"), ("word", "caf\u{FFFD}")]);
        assert_eq!(r.body, b"caf\xe9 ok");
    }

    #[test]
    fn config_errors_name_the_pattern_position() {
        let err = RegexProcessor::from_json(
            r#"{"patterns":["(?P<ok>a)", "(unclosed", {"name":"n","pattern":"no groups (here)"}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("patterns[1]: regex parse error:"), "{err}");
        assert!(err.contains("unclosed group"), "{err}");
        assert!(err.contains("patterns[2]: \"no groups (here)\" has no named capture group"), "{err}");
        assert!(!err.contains("patterns[0]"), "{err}");

        let err = RegexProcessor::from_json("{}").unwrap_err().to_string();
        assert!(err.contains("`pattern` or `patterns` is required"), "{err}");
        let err =
            RegexProcessor::from_json(r#"{"pattern":"(?P<a>.)","on_no_match":"ignore"}"#).unwrap_err().to_string();
        assert!(err.contains("unknown variant `ignore`"), "{err}");
        let err = RegexProcessor::from_json(r#"{"pattern":"(?P<a>.)","patterns":["(?P<b>.)","(?P<c>.)"]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not both"), "{err}");
        let err =
            RegexProcessor::from_json(r#"{"patterns":[{"name":"a","patern":"(?P<a>.)"}]}"#).unwrap_err().to_string();
        assert!(err.contains("unknown field `patern`, expected `name` or `pattern`"), "{err}");
        let err = RegexProcessor::from_json(r#"{"patterns":[42]}"#).unwrap_err().to_string();
        assert!(err.contains("a pattern is a string or {name, pattern}, not 42"), "{err}");
        let err = RegexProcessor::from_json(r#"{"pattern":"(?P<a>\\w{1000}){1000}"}"#).unwrap_err().to_string();
        assert!(err.contains("pattern: "), "{err}");
    }
}
