//! Label matchers (`=`, `!=`, `=~`, `!~`) with Prometheus' semantics: regexes
//! are fully anchored, and a missing label matches as the empty string.

use crate::Labels;
use regex::Regex;

#[derive(Debug, thiserror::Error)]
pub enum MatcherError {
    #[error("invalid regex {pattern:?} for label {name:?}: {source}")]
    Regex {
        name: String,
        pattern: String,
        #[source]
        source: regex::Error,
    },
}

#[derive(Debug, Clone)]
pub enum MatchOp {
    Equal,
    NotEqual,
    /// Compiled as `^(?:pattern)$` (Prometheus 2.x: `.` does not match a newline).
    Regex(Regex),
    NotRegex(Regex),
}

#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    /// The value or the uncompiled pattern, as written.
    pub value: String,
}

impl Matcher {
    pub fn equal(name: &str, value: &str) -> Self {
        Self { name: name.into(), op: MatchOp::Equal, value: value.into() }
    }

    pub fn not_equal(name: &str, value: &str) -> Self {
        Self { name: name.into(), op: MatchOp::NotEqual, value: value.into() }
    }

    pub fn regex(name: &str, pattern: &str) -> Result<Self, MatcherError> {
        Ok(Self { name: name.into(), op: MatchOp::Regex(anchored(name, pattern)?), value: pattern.into() })
    }

    pub fn not_regex(name: &str, pattern: &str) -> Result<Self, MatcherError> {
        Ok(Self { name: name.into(), op: MatchOp::NotRegex(anchored(name, pattern)?), value: pattern.into() })
    }

    /// Does a label value (empty when the label is missing) match?
    pub fn matches_value(&self, value: &str) -> bool {
        match &self.op {
            MatchOp::Equal => value == self.value,
            MatchOp::NotEqual => value != self.value,
            MatchOp::Regex(re) => re.is_match(value),
            MatchOp::NotRegex(re) => !re.is_match(value),
        }
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.matches_value(labels.get(&self.name).unwrap_or(""))
    }

    /// True when this matcher accepts the empty string, i.e. also matches
    /// series that lack the label.
    pub fn matches_empty(&self) -> bool {
        self.matches_value("")
    }
}

/// True when every matcher accepts `labels`.
pub fn matches_all(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

fn anchored(name: &str, pattern: &str) -> Result<Regex, MatcherError> {
    Regex::new(&format!("^(?:{pattern})$")).map_err(|source| MatcherError::Regex {
        name: name.into(),
        pattern: pattern.into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regexes_are_anchored_and_missing_labels_are_empty() {
        let l = Labels::from_pairs([("job", "node-exporter")]);
        assert!(Matcher::regex("job", "node.*").unwrap().matches(&l));
        assert!(!Matcher::regex("job", "node").unwrap().matches(&l));
        assert!(Matcher::equal("env", "").matches(&l));
        assert!(Matcher::not_regex("env", ".+").unwrap().matches(&l));
        assert!(Matcher::regex("job", "(").is_err());
    }
}
