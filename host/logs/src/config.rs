//! Pipeline configuration (the `logs:` section the host embeds) and the
//! Prometheus-style duration and byte-size values it uses.

use crate::framing::FramingConfig;
use crate::sinks::SinkConfig;
use serde::{Deserialize, Deserializer};
use std::path::PathBuf;
use std::time::Duration;

/// One pipeline: sources → processors (supplied by the host) → sinks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    pub sources: Vec<SourceConfig>,
    pub checkpoint: CheckpointConfig,
    #[serde(default)]
    pub batch: BatchConfig,
    pub sinks: Vec<SinkConfig>,
}

/// A set of files to tail and how to frame them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Names the source in logs and metrics.
    pub name: String,
    /// Globs (`*`, `?`, `[..]`, `{a,b}`, `**`), e.g. `/var/log/pods/*/*/*.log`.
    pub include: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Where to start in a file that has no checkpoint and existed when the agent
    /// started. Files that appear later are always read from the beginning.
    #[serde(default)]
    pub start_at: StartAt,
    #[serde(default)]
    pub framing: FramingConfig,
    /// Parse namespace/pod/uid/container/restart count from
    /// `<root>/<ns>_<pod>_<uid>/<container>/<n>.log` paths.
    #[serde(default)]
    pub kubernetes_metadata: bool,
    /// How often the globs are expanded again and open files are checked for
    /// truncation, on top of inotify events (and the only mechanism where inotify fails).
    #[serde(default = "default_poll_interval")]
    pub poll_interval: PromDuration,
    /// Follow inotify events for this source's directories (new files,
    /// writes). `false`: find new files and lines by polling only, every
    /// `poll_interval`, for file systems whose events do not arrive (NFS,
    /// some FUSE and overlay mounts), like Fluent Bit's `Inotify_Watcher false`.
    #[serde(default = "default_watch")]
    pub watch: bool,
    /// How long a rotated-away or deleted file stays open after its last byte was
    /// read, for a writer that has not yet reopened its log.
    #[serde(default = "default_rotate_wait")]
    pub rotate_wait: PromDuration,
    /// How many leading bytes identify a file across restarts (with device and inode).
    #[serde(default = "default_fingerprint_bytes")]
    pub fingerprint_bytes: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartAt {
    #[default]
    Beginning,
    End,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointConfig {
    /// JSON file with read positions; written atomically (temp file, fsync, rename, fsync dir).
    pub path: PathBuf,
    /// How often acknowledged positions are written. A crash repeats at most
    /// this much; a clean shutdown always writes.
    #[serde(default = "default_checkpoint_interval")]
    pub interval: PromDuration,
}

/// How the tailer cuts batches, and how many may wait for the sinks. Memory is
/// bounded by about `(queue + 3) * max_bytes` plus one line buffer per open file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    #[serde(default = "default_batch_records")]
    pub max_records: usize,
    #[serde(default = "default_batch_bytes")]
    pub max_bytes: ByteSize,
    /// A batch that is not full is sent at the latest this long after its first record.
    #[serde(default = "default_flush_interval")]
    pub flush_interval: PromDuration,
    /// Batches waiting between the tailer and the sinks before the tailer stops reading.
    #[serde(default = "default_queue")]
    pub queue: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_records: default_batch_records(),
            max_bytes: default_batch_bytes(),
            flush_interval: default_flush_interval(),
            queue: default_queue(),
        }
    }
}

fn default_watch() -> bool {
    true
}

fn default_poll_interval() -> PromDuration {
    PromDuration(Duration::from_secs(1))
}
fn default_rotate_wait() -> PromDuration {
    PromDuration(Duration::from_secs(5))
}
fn default_fingerprint_bytes() -> usize {
    1024
}
fn default_checkpoint_interval() -> PromDuration {
    PromDuration(Duration::from_secs(1))
}
fn default_batch_records() -> usize {
    2000
}
fn default_batch_bytes() -> ByteSize {
    ByteSize(1 << 20)
}
fn default_flush_interval() -> PromDuration {
    PromDuration(Duration::from_secs(1))
}
fn default_queue() -> usize {
    4
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
}

impl PipelineConfig {
    /// Every problem at once, so `wasmon check config` can list them.
    pub fn validate(&self) -> Vec<ConfigError> {
        let mut problems = Vec::new();
        let mut bad = |field: String, message: &str| {
            problems.push(ConfigError::Invalid { field, message: message.to_string() });
        };
        if self.sources.is_empty() {
            bad("logs.sources".into(), "at least one source is needed");
        }
        if self.sinks.is_empty() {
            bad("logs.sinks".into(), "at least one sink is needed");
        }
        if self.batch.max_records == 0 || self.batch.max_bytes.0 == 0 || self.batch.queue == 0 {
            bad("logs.batch".into(), "max_records, max_bytes and queue must be positive");
        }
        for (i, s) in self.sources.iter().enumerate() {
            let at = format!("logs.sources[{i}] ({})", s.name);
            if s.include.is_empty() {
                bad(format!("{at}.include"), "at least one glob is needed");
            }
            for g in s.include.iter().chain(&s.exclude) {
                if let Err(e) = globset::GlobBuilder::new(g).literal_separator(true).build() {
                    bad(format!("{at}: glob {g:?}"), &e.to_string());
                }
                if !g.starts_with('/') {
                    bad(format!("{at}: glob {g:?}"), "must be an absolute path");
                }
            }
            if s.fingerprint_bytes == 0 {
                bad(format!("{at}.fingerprint_bytes"), "must be positive");
            }
            for e in s.framing.validate() {
                bad(format!("{at}.framing"), &e);
            }
        }
        for (i, s) in self.sinks.iter().enumerate() {
            for e in s.validate() {
                bad(format!("logs.sinks[{i}] ({})", s.name()), &e);
            }
        }
        problems
    }
}

/// A duration written the Prometheus way: `500ms`, `15s`, `1m`, `1h30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromDuration(pub Duration);

impl PromDuration {
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("invalid duration {text:?} (expected e.g. 500ms, 15s, 1m, 1h30m)");
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err(bad());
        }
        let mut total = Duration::ZERO;
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            if digits == 0 {
                return Err(bad());
            }
            let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
            rest = &rest[digits..];
            let unit = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
            let one = match &rest[..unit] {
                "ms" => Duration::from_millis(1),
                "s" => Duration::from_secs(1),
                "m" => Duration::from_secs(60),
                "h" => Duration::from_secs(3600),
                "d" => Duration::from_secs(86400),
                _ => return Err(bad()),
            };
            total += one * u32::try_from(n).map_err(|_| bad())?;
            rest = &rest[unit..];
        }
        Ok(Self(total))
    }
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A size in bytes: a plain number or `64KiB`, `1MiB`, `10MB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub usize);

impl ByteSize {
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("invalid size {text:?} (expected e.g. 65536, 64KiB, 1MiB)");
        let t = text.trim();
        let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let n: usize = t[..digits].parse().map_err(|_| bad())?;
        let mult = match t[digits..].trim() {
            "" | "B" => 1,
            "KB" | "kB" => 1000,
            "KiB" => 1 << 10,
            "MB" => 1_000_000,
            "MiB" => 1 << 20,
            "GB" => 1_000_000_000,
            "GiB" => 1 << 30,
            _ => return Err(bad()),
        };
        n.checked_mul(mult).map(Self).ok_or_else(bad)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(usize),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(Self(n)),
            Raw::Text(s) => Self::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_parse() {
        assert_eq!(PromDuration::parse("1h30m").unwrap().0, Duration::from_secs(5400));
        assert_eq!(PromDuration::parse("250ms").unwrap().0, Duration::from_millis(250));
        assert!(PromDuration::parse("5").is_err());
        assert!(PromDuration::parse("x5s").is_err());
        assert_eq!(ByteSize::parse("64KiB").unwrap().0, 65536);
        assert_eq!(ByteSize::parse("10MB").unwrap().0, 10_000_000);
        assert!(ByteSize::parse("1XB").is_err());
    }
}

#[cfg(test)]
mod example_tests {
    use super::*;

    #[test]
    fn the_example_config_loads_and_validates() {
        let text = include_str!("../config.example.yaml");
        let cfg: PipelineConfig = serde_yaml_ng::from_str(text).unwrap();
        let problems: Vec<String> = cfg.validate().iter().map(ToString::to_string).collect();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(cfg.sinks.len(), 4);
    }
}
