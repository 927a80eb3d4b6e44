//! Alertmanager label matchers (`a="b"`, `a=~"x|y"`, `a!=b`, `a!~"..."`), parsed
//! the way Alertmanager 0.25's `pkg/labels` parser does so that configs and
//! amtool filters written for Alertmanager mean the same here.

use regex::Regex;
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MatcherError {
    #[error("bad matcher format: {0}")]
    BadFormat(String),
    #[error("matcher value contains unescaped double quote: {0}")]
    UnescapedQuote(String),
    #[error("invalid label name {0:?}")]
    BadName(String),
    #[error("invalid regular expression {value:?}: {reason}")]
    BadRegex { value: String, reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }

    pub fn is_regex(self) -> bool {
        matches!(self, MatchOp::Regex | MatchOp::NotRegex)
    }

    pub fn is_equal(self) -> bool {
        matches!(self, MatchOp::Equal | MatchOp::Regex)
    }

    pub fn from_flags(is_regex: bool, is_equal: bool) -> Self {
        match (is_regex, is_equal) {
            (false, true) => MatchOp::Equal,
            (false, false) => MatchOp::NotEqual,
            (true, true) => MatchOp::Regex,
            (true, false) => MatchOp::NotRegex,
        }
    }
}

/// One matcher. Regexes are anchored (`^(?:…)$`) like Alertmanager's.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    re: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name && self.op == o.op && self.value == o.value
    }
}

impl Eq for Matcher {}

impl Matcher {
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Self, MatcherError> {
        let re = if op.is_regex() {
            let re = Regex::new(&format!("^(?:{value})$"))
                .map_err(|e| MatcherError::BadRegex { value: value.to_string(), reason: e.to_string() })?;
            Some(re)
        } else {
            None
        };
        Ok(Matcher { name: name.to_string(), op, value: value.to_string(), re })
    }

    pub fn matches(&self, v: &str) -> bool {
        match (self.op, &self.re) {
            (MatchOp::Equal, _) => v == self.value,
            (MatchOp::NotEqual, _) => v != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(v),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(v),
            // Unreachable by construction; a matcher without its regex matches nothing.
            (_, None) => false,
        }
    }

    /// A missing label counts as the empty string, as in Alertmanager.
    pub fn matches_labels(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches(labels.get(&self.name).map(String::as_str).unwrap_or(""))
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}\"{}\"", self.name, self.op.as_str(), escape_value(&self.value))
    }
}

/// All matchers match (an empty list matches everything).
pub fn matches_all(ms: &[Matcher], labels: &BTreeMap<String, String>) -> bool {
    ms.iter().all(|m| m.matches_labels(labels))
}

/// `{a="b", c="d"}` the way Alertmanager prints route matchers in group keys.
pub fn format_matchers(ms: &[Matcher]) -> String {
    let parts: Vec<String> = ms.iter().map(|m| m.to_string()).collect();
    format!("{{{}}}", parts.join(","))
}

fn escape_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

/// Go's regexp `\s`: ASCII whitespace only.
fn is_go_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c')
}

/// Prometheus label names (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub fn valid_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// One matcher, e.g. `alertname="Foo"`, `job=~"a|b"` or `env!=prod`.
pub fn parse_matcher(input: &str) -> Result<Matcher, MatcherError> {
    let bad = || MatcherError::BadFormat(input.to_string());
    let s = input.trim_start_matches(is_go_space);
    // The name follows Alertmanager's parser, which also allows ':'.
    let name_len = s
        .char_indices()
        .find(|&(i, c)| {
            let ok = c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit());
            !ok
        })
        .map(|(i, _)| i)
        .unwrap_or(s.len());
    if name_len == 0 {
        return Err(bad());
    }
    let (name, rest) = s.split_at(name_len);
    let rest = rest.trim_start_matches(is_go_space);
    let (op, rest) = if let Some(r) = rest.strip_prefix("=~") {
        (MatchOp::Regex, r)
    } else if let Some(r) = rest.strip_prefix('=') {
        (MatchOp::Equal, r)
    } else if let Some(r) = rest.strip_prefix("!=") {
        (MatchOp::NotEqual, r)
    } else if let Some(r) = rest.strip_prefix("!~") {
        (MatchOp::NotRegex, r)
    } else {
        return Err(bad());
    };
    let raw_full = rest.trim_matches(is_go_space);
    let (raw, mut expect_quote) = match raw_full.strip_prefix('"') {
        Some(r) => (r, true),
        None => (raw_full, false),
    };
    let mut value = String::with_capacity(raw.len());
    let mut escaped = false;
    for (i, c) in raw.char_indices() {
        if escaped {
            escaped = false;
            match c {
                'n' => value.push('\n'),
                '"' | '\\' => value.push(c),
                // A spurious escape keeps its backslash, as Alertmanager does.
                c => {
                    value.push('\\');
                    value.push(c);
                }
            }
            continue;
        }
        match c {
            '\\' => {
                if i + 1 < raw.len() {
                    escaped = true;
                } else {
                    value.push('\\');
                }
            }
            '"' => {
                if !expect_quote || i + 1 < raw.len() {
                    return Err(MatcherError::UnescapedQuote(raw_full.to_string()));
                }
                expect_quote = false;
            }
            c => value.push(c),
        }
    }
    if expect_quote {
        return Err(MatcherError::UnescapedQuote(raw_full.to_string()));
    }
    Matcher::new(name, op, &value)
}

/// A comma-separated list, optionally in braces: `{a="b", c=~"d"}`.
pub fn parse_matchers(input: &str) -> Result<Vec<Matcher>, MatcherError> {
    let s = input.strip_prefix('{').unwrap_or(input);
    let s = s.strip_suffix('}').unwrap_or(s);
    let mut tokens = Vec::new();
    let mut token = String::new();
    let (mut in_quotes, mut escaped) = (false, false);
    for c in s.chars() {
        match c {
            ',' if !in_quotes => {
                tokens.push(std::mem::take(&mut token));
                continue;
            }
            ',' => {}
            '"' => {
                if escaped {
                    escaped = false;
                } else {
                    in_quotes = !in_quotes;
                }
            }
            '\\' => escaped = !escaped,
            _ => escaped = false,
        }
        token.push(c);
    }
    let last = token.trim_matches(is_go_space);
    if !last.is_empty() {
        tokens.push(last.to_string());
    }
    tokens.iter().map(|t| parse_matcher(t)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn parses_alertmanager_syntax() {
        let m = parse_matcher(r#"alertname="Foo""#).unwrap();
        assert_eq!((m.name.as_str(), m.op, m.value.as_str()), ("alertname", MatchOp::Equal, "Foo"));
        let m = parse_matcher(" job =~ \"a|b\" ").unwrap();
        assert_eq!((m.op, m.value.as_str()), (MatchOp::Regex, "a|b"));
        assert!(m.matches("a") && !m.matches("ab"));
        let m = parse_matcher("env!=prod").unwrap();
        assert_eq!((m.op, m.value.as_str()), (MatchOp::NotEqual, "prod"));
        let m = parse_matcher(r#"x!~"y.*""#).unwrap();
        assert!(m.matches("z") && !m.matches("yes"));
        let m = parse_matcher(r#"x="a\"b\\c\n\q""#).unwrap();
        assert_eq!(m.value, "a\"b\\c\n\\q");
        assert_eq!(m.to_string(), r#"x="a\"b\\c\n\\q""#);
        let m = parse_matcher("x=").unwrap();
        assert_eq!(m.value, "");
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(parse_matcher("foo"), Err(MatcherError::BadFormat(_))));
        assert!(matches!(parse_matcher("=foo"), Err(MatcherError::BadFormat(_))));
        assert!(matches!(parse_matcher("a-b=c"), Err(MatcherError::BadFormat(_))));
        assert!(matches!(parse_matcher(r#"a="b"#), Err(MatcherError::UnescapedQuote(_))));
        assert!(matches!(parse_matcher(r#"a="b"c""#), Err(MatcherError::UnescapedQuote(_))));
        assert!(matches!(parse_matcher(r#"a=~"(""#), Err(MatcherError::BadRegex { .. })));
        assert_eq!(parse_matcher("").unwrap_err().to_string(), "bad matcher format: ");
    }

    #[test]
    fn parses_lists() {
        let ms = parse_matchers(r#"{a="b,c", d=~"e|f"}"#).unwrap();
        assert_eq!(ms.len(), 2);
        assert_eq!(ms[0].value, "b,c");
        assert!(matches_all(&ms, &labels(&[("a", "b,c"), ("d", "f")])));
        assert!(!matches_all(&ms, &labels(&[("a", "b,c")])));
        assert_eq!(format_matchers(&ms), r#"{a="b,c",d=~"e|f"}"#);
        assert!(parse_matchers("").unwrap().is_empty());
    }

    #[test]
    fn missing_label_is_empty() {
        let m = parse_matcher(r#"a!="x""#).unwrap();
        assert!(m.matches_labels(&labels(&[])));
        let m = parse_matcher(r#"a=~".*""#).unwrap();
        assert!(m.matches_labels(&labels(&[])));
    }
}
