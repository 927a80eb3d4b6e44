//! Joins lines that belong to one event (a stack trace) by a pattern, with the
//! semantics Filebeat made familiar: a line "continues" when
//! `pattern.is_match(line) != negate`; with `match: after` continuation lines
//! are appended to the line before them, with `match: before` they are
//! prepended to the next line that does not continue.

use crate::config::{ByteSize, PromDuration};
use serde::Deserialize;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultilineConfig {
    /// A regular expression (Rust `regex` syntax), e.g. `^\s+(at |\.\.\. )|^Caused by:`.
    pub pattern: String,
    #[serde(default)]
    pub negate: bool,
    #[serde(rename = "match", default)]
    pub match_: MultilineMatch,
    /// An event with no new line for this long is sent as it is (the last stack trace of a burst).
    #[serde(default = "default_flush_timeout")]
    pub flush_timeout: PromDuration,
    /// An event reaching either limit is sent, and the following lines start a new one.
    #[serde(default = "default_max_lines")]
    pub max_lines: usize,
    #[serde(default = "default_max_bytes")]
    pub max_bytes: ByteSize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MultilineMatch {
    #[default]
    After,
    Before,
}

fn default_flush_timeout() -> PromDuration {
    PromDuration(Duration::from_secs(5))
}
fn default_max_lines() -> usize {
    500
}
fn default_max_bytes() -> ByteSize {
    ByteSize(1 << 20)
}

#[derive(Debug)]
pub(crate) struct CompiledMultiline {
    pub regex: regex::Regex,
    pub negate: bool,
    pub match_: MultilineMatch,
    pub flush_timeout: Duration,
    pub max_lines: usize,
    pub max_bytes: usize,
}

impl MultilineConfig {
    pub(crate) fn compile(&self) -> Result<CompiledMultiline, String> {
        let regex = regex::Regex::new(&self.pattern).map_err(|e| format!("multiline.pattern: {e}"))?;
        if self.max_lines == 0 || self.max_bytes.0 == 0 {
            return Err("multiline.max_lines and multiline.max_bytes must be positive".into());
        }
        Ok(CompiledMultiline {
            regex,
            negate: self.negate,
            match_: self.match_,
            flush_timeout: self.flush_timeout.0,
            max_lines: self.max_lines,
            max_bytes: self.max_bytes.0,
        })
    }
}

/// An event being assembled.
#[derive(Debug)]
pub(crate) struct Event {
    pub body: String,
    pub lines: usize,
    pub start: u64,
    pub end: u64,
    pub timestamp_ns: i64,
    pub deadline: Instant,
}

impl CompiledMultiline {
    pub fn continues(&self, line: &str) -> bool {
        self.regex.is_match(line) != self.negate
    }

    /// Whether `line` fits into `event` under the limits.
    pub fn fits(&self, event: &Event, line: &str) -> bool {
        event.lines < self.max_lines && event.body.len() + 1 + line.len() <= self.max_bytes
    }
}
