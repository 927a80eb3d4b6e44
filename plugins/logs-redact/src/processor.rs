//! The processor: config, and masking of the body and chosen attributes.

use crate::patterns::{BUILTINS, builtin};
use regex::bytes::{Regex, RegexBuilder};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use wasmon_sdk_logs::LogRecord;

const REGEX_SIZE_LIMIT: usize = 4 << 20;

/// The plugin's config section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactConfig {
    /// Built-in patterns to use, by name. Default: all but `ipv4`.
    #[serde(default = "default_builtins")]
    pub builtin: Vec<String>,
    /// Patterns of your own, tried after the built-ins.
    #[serde(default)]
    pub custom: Vec<CustomPattern>,
    #[serde(default)]
    pub replacement: Replacement,
    /// Mixed into every hash with `replacement: hash`, so that a hash cannot be
    /// matched against a list of hashed e-mail addresses.
    #[serde(default)]
    pub hash_salt: String,
    /// Redact the body.
    #[serde(default = "default_true")]
    pub body: bool,
    /// Attributes to redact as well (the record's own, e.g. set by logs-json).
    #[serde(default)]
    pub attributes: Vec<String>,
}

impl Default for RedactConfig {
    fn default() -> Self {
        Self {
            builtin: default_builtins(),
            custom: Vec::new(),
            replacement: Replacement::default(),
            hash_salt: String::new(),
            body: true,
            attributes: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomPattern {
    pub name: String,
    /// A regex; if it has a group named `secret`, only that group is replaced.
    pub pattern: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Replacement {
    /// `[REDACTED:<name>]`.
    #[default]
    Mask,
    /// `[REDACTED:<name>:<16 hex digits>]`: the first 8 bytes of SHA-256(salt ‖ value),
    /// so equal values can still be told apart and correlated.
    Hash,
}

fn default_builtins() -> Vec<String> {
    BUILTINS.iter().filter(|b| b.default_on).map(|b| b.name.to_string()).collect()
}

fn default_true() -> bool {
    true
}

/// Everything wrong with a config section, all at once.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid logs-redact config: {0}")]
    Json(#[source] serde_json::Error),
    #[error("invalid logs-redact config:\n{}", .0.join("\n"))]
    Invalid(Vec<String>),
}

#[derive(Debug, Clone)]
struct Pattern {
    name: String,
    regex: Regex,
    /// The `secret` group, when only part of a match is to be replaced.
    secret: Option<usize>,
    check: Option<fn(&[u8]) -> bool>,
}

#[derive(Debug, Clone)]
pub struct Redactor {
    cfg: RedactConfig,
    patterns: Vec<Pattern>,
    /// Redactions per pattern since the instance started, in `pattern_names` order.
    pub counts: Vec<u64>,
}

impl RedactConfig {
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let text = text.trim();
        if text.is_empty() || text == "null" {
            return Ok(Self::default());
        }
        serde_json::from_str(text).map_err(ConfigError::Json)
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'.')
}

impl Redactor {
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        Self::new(RedactConfig::from_json(text)?)
    }

    pub fn new(cfg: RedactConfig) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let mut patterns = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, name) in cfg.builtin.iter().enumerate() {
            let Some(b) = builtin(name) else {
                let known: Vec<&str> = BUILTINS.iter().map(|b| b.name).collect();
                problems
                    .push(format!("builtin[{i}]: unknown pattern {name:?}; the built-ins are {}", known.join(", ")));
                continue;
            };
            if !seen.insert(name.clone()) {
                problems.push(format!("builtin[{i}]: {name:?} is listed twice"));
                continue;
            }
            match compile(b.regex) {
                Ok((regex, secret)) => patterns.push(Pattern { name: name.clone(), regex, secret, check: b.check }),
                Err(e) => problems.push(format!("builtin[{i}]: {e}")),
            }
        }
        // Built-ins keep their precedence among themselves whatever order they are listed in.
        patterns.sort_by_key(|p| BUILTINS.iter().position(|b| b.name == p.name));
        for (i, c) in cfg.custom.iter().enumerate() {
            if !valid_name(&c.name) {
                problems.push(format!("custom[{i}]: name {:?} must be letters, digits, '_', '-' or '.'", c.name));
            } else if !seen.insert(c.name.clone()) {
                problems.push(format!("custom[{i}]: name {:?} is already used", c.name));
            }
            match compile(&c.pattern) {
                Ok((regex, secret)) => patterns.push(Pattern { name: c.name.clone(), regex, secret, check: None }),
                Err(e) => problems.push(format!("custom[{i}] ({}): {e}", c.name)),
            }
        }
        for (i, a) in cfg.attributes.iter().enumerate() {
            if a.is_empty() {
                problems.push(format!("attributes[{i}]: empty attribute name"));
            }
        }
        if !cfg.body && cfg.attributes.is_empty() {
            problems.push("body: false and no attributes: nothing would be redacted".into());
        }
        if !problems.is_empty() {
            return Err(ConfigError::Invalid(problems));
        }
        let counts = vec![0; patterns.len()];
        Ok(Self { cfg, patterns, counts })
    }

    /// Pattern names, in the order of `counts`.
    pub fn pattern_names(&self) -> impl Iterator<Item = &str> {
        self.patterns.iter().map(|p| p.name.as_str())
    }

    pub fn process_batch(&mut self, mut batch: Vec<LogRecord>) -> Vec<LogRecord> {
        for r in &mut batch {
            self.process(r);
        }
        batch
    }

    /// Redacts one record in place; returns how many values were masked.
    pub fn process(&mut self, record: &mut LogRecord) -> u64 {
        let mut n = 0;
        if self.cfg.body
            && let Some(new) = self.redact(&record.body, &mut n)
        {
            record.body = new;
        }
        for i in 0..self.cfg.attributes.len() {
            let name = self.cfg.attributes[i].clone();
            let Some(value) = record.attribute(&name) else { continue };
            let mut count = 0;
            if let Some(new) = self.redact(value.as_bytes(), &mut count) {
                // Replacements are ASCII and matches of UTF-8 text end on character
                // boundaries, except for a custom `(?-u)` pattern that splits one.
                let text =
                    String::from_utf8(new).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                record.set_attribute(name, text);
            }
            n += count;
        }
        n
    }

    /// `input` with every match replaced, or `None` if nothing matched.
    pub fn redact(&mut self, input: &[u8], count: &mut u64) -> Option<Vec<u8>> {
        // (start, end, pattern) of every candidate, then the leftmost, longest,
        // highest-precedence ones that do not overlap.
        let mut spans: Vec<(usize, usize, usize)> = Vec::new();
        for (i, p) in self.patterns.iter().enumerate() {
            match p.secret {
                Some(g) => {
                    for caps in p.regex.captures_iter(input) {
                        let Some(m) = caps.get(g).or_else(|| caps.get(0)) else { continue };
                        if p.check.is_none_or(|check| check(m.as_bytes())) && !m.is_empty() {
                            spans.push((m.start(), m.end(), i));
                        }
                    }
                }
                None => {
                    for m in p.regex.find_iter(input) {
                        if p.check.is_none_or(|check| check(m.as_bytes())) && !m.is_empty() {
                            spans.push((m.start(), m.end(), i));
                        }
                    }
                }
            }
        }
        if spans.is_empty() {
            return None;
        }
        spans.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
        let mut out = Vec::with_capacity(input.len());
        let mut pos = 0;
        for (start, end, i) in spans {
            if start < pos {
                continue;
            }
            out.extend_from_slice(&input[pos..start]);
            self.replacement(&mut out, i, &input[start..end]);
            self.counts[i] += 1;
            *count += 1;
            pos = end;
        }
        out.extend_from_slice(&input[pos..]);
        Some(out)
    }

    fn replacement(&self, out: &mut Vec<u8>, pattern: usize, value: &[u8]) {
        let name = &self.patterns[pattern].name;
        match self.cfg.replacement {
            Replacement::Mask => out.extend_from_slice(format!("[REDACTED:{name}]").as_bytes()),
            Replacement::Hash => {
                let mut h = Sha256::new();
                h.update(self.cfg.hash_salt.as_bytes());
                h.update(value);
                let digest = h.finalize();
                let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
                out.extend_from_slice(format!("[REDACTED:{name}:{hex}]").as_bytes());
            }
        }
    }
}

/// A pattern and the index of its `secret` group, if it has one.
fn compile(pattern: &str) -> Result<(Regex, Option<usize>), String> {
    let regex = RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| e.to_string().lines().collect::<Vec<_>>().join("\n    "))?;
    if regex.is_match(b"") {
        return Err(format!("{pattern:?} matches the empty string, so it would redact nothing or everything"));
    }
    let secret = regex.capture_names().position(|n| n == Some("secret"));
    Ok((regex, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redact(cfg: &str, text: &str) -> String {
        let mut r = Redactor::from_json(cfg).unwrap();
        let mut n = 0;
        r.redact(text.as_bytes(), &mut n).map(|v| String::from_utf8(v).unwrap()).unwrap_or_else(|| text.to_string())
    }

    #[test]
    fn each_builtin() {
        let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        assert_eq!(redact("{}", &format!("token {jwt} end")), "token [REDACTED:jwt] end");
        assert_eq!(redact("{}", &format!("Authorization: Bearer {jwt}")), "Authorization: Bearer [REDACTED:jwt]");
        assert_eq!(redact("{}", "Authorization: bearer abc123DEF456ghi"), "Authorization: bearer [REDACTED:bearer]");
        assert_eq!(redact("{}", "key AKIAIOSFODNN7EXAMPLE used"), "key [REDACTED:api_key] used");
        assert_eq!(redact("{}", "GET /x?api_key=s3cr3tvalue&page=2"), "GET /x?api_key=[REDACTED:api_key]&page=2");
        assert_eq!(
            redact("{}", r#"{"password": "hunter22", "user": "bob"}"#),
            r#"{"password": "[REDACTED:api_key]", "user": "bob"}"#
        );
        assert_eq!(redact("{}", "mail from Jane.Doe+tag@mail.example.co.uk ok"), "mail from [REDACTED:email] ok");
        assert_eq!(redact("{}", "to josé@exämple.org."), "to [REDACTED:email].");
        assert_eq!(
            redact("{}", "DB_PASSWORD=hunter22 MYSQL_ROOT_PASSWORD: 's3cr3t'"),
            "DB_PASSWORD=[REDACTED:api_key] MYSQL_ROOT_PASSWORD: '[REDACTED:api_key]'"
        );
        assert_eq!(redact("{}", "card 4111 1111 1111 1111 exp 12/27"), "card [REDACTED:credit_card] exp 12/27");
        assert_eq!(redact("{}", "client 10.1.2.3"), "client 10.1.2.3", "ipv4 is off by default");
        assert_eq!(
            redact(r#"{"builtin":["ipv4"]}"#, "client 10.1.2.3, not 999.1.1.1"),
            "client [REDACTED:ipv4], not 999.1.1.1"
        );
    }

    #[test]
    fn lookalikes_are_left_alone() {
        for text in [
            "order 4111111111111112 shipped", // Luhn fails
            "ts=1714564800123 took=17ms",     // ms timestamp
            "user@localhost",                 // no TLD
            "bearer of bad news",             // too short to be a token
            "version 1.2.3.4",
            "password reset requested", // no value
        ] {
            assert_eq!(redact("{}", text), text);
        }
    }

    #[test]
    fn hash_replacement_is_stable_and_salted() {
        let a = redact(r#"{"replacement":"hash"}"#, "from bob@example.org");
        let b = redact(r#"{"replacement":"hash"}"#, "to bob@example.org");
        let c = redact(r#"{"replacement":"hash","hash_salt":"pepper"}"#, "to bob@example.org");
        // `printf %s bob@example.org | sha256sum` and `printf %s pepperbob@example.org | sha256sum`.
        assert_eq!(a, "from [REDACTED:email:686b5e4cf4f963ad]");
        assert_eq!(b, "to [REDACTED:email:686b5e4cf4f963ad]");
        assert_eq!(c, "to [REDACTED:email:d0ff1a0327dd9dbf]");
    }

    #[test]
    fn custom_patterns_and_secret_group() {
        let cfg = r#"{"builtin":[],"custom":[{"name":"employee","pattern":"EMP-\\d{6}"},{"name":"session","pattern":"sid=(?P<secret>[0-9a-f]+)"}]}"#;
        assert_eq!(
            redact(cfg, "EMP-123456 logged in with sid=deadbeef;"),
            "[REDACTED:employee] logged in with sid=[REDACTED:session];"
        );
    }

    #[test]
    fn counts_and_attributes() {
        let mut r = Redactor::from_json(r#"{"attributes":["user.email","missing"]}"#).unwrap();
        let mut rec = LogRecord::new(0, 0, "a@example.com b@example.com 4111111111111111");
        rec.set_attribute("user.email", "c@example.com");
        rec.set_attribute("other", "d@example.com");
        assert_eq!(r.process(&mut rec), 4);
        assert_eq!(rec.body, b"[REDACTED:email] [REDACTED:email] [REDACTED:credit_card]");
        assert_eq!(rec.attribute("user.email"), Some("[REDACTED:email]"));
        assert_eq!(rec.attribute("other"), Some("d@example.com"), "only the listed attributes");
        let counts: Vec<(&str, u64)> = r.pattern_names().zip(r.counts.iter().copied()).collect();
        assert_eq!(counts, vec![("jwt", 0), ("bearer", 0), ("api_key", 0), ("email", 3), ("credit_card", 1)]);
    }

    #[test]
    fn invalid_utf8_bytes_outside_matches_are_kept() {
        let mut r = Redactor::from_json("{}").unwrap();
        let mut rec = LogRecord::new(0, 0, &b"\xff\xfe mail a@example.com \xc3"[..]);
        r.process(&mut rec);
        assert_eq!(rec.body, b"\xff\xfe mail [REDACTED:email] \xc3");
        // An address with a bad byte in it is masked whole.
        let mut rec = LogRecord::new(0, 0, &b"mail caf\xe9@example.org"[..]);
        r.process(&mut rec);
        assert_eq!(rec.body, b"mail [REDACTED:email]");
    }

    #[test]
    fn config_errors() {
        let err = Redactor::from_json(
            r#"{"builtin":["email","phone","email"],"custom":[{"name":"a b","pattern":"x"},{"name":"email","pattern":"y"},{"name":"c","pattern":"(x"},{"name":"d","pattern":"x*"}],"body":false}"#,
        )
        .unwrap_err()
        .to_string();
        for want in [
            "builtin[1]: unknown pattern \"phone\"; the built-ins are jwt, bearer, api_key, email, credit_card, ipv4",
            "builtin[2]: \"email\" is listed twice",
            "custom[0]: name \"a b\" must be letters",
            "custom[1]: name \"email\" is already used",
            "custom[2] (c): regex parse error:",
            "custom[3] (d): \"x*\" matches the empty string",
            "body: false and no attributes",
        ] {
            assert!(err.contains(want), "missing {want:?} in {err}");
        }
    }
}
