//! The plugin's config section and its validation.

use crate::collectors::{COLLECTORS, Collector};
use serde::Deserialize;
use std::time::Duration;
use wasmon_sdk::PluginError;

/// The plugin's config section (JSON from the job's `config:`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlConfig {
    /// The MySQL user to log in as. The password comes from the job's
    /// `secrets: {password: ...}`, never from here.
    pub user: String,
    /// Seconds; sent as `SET lock_wait_timeout=N` so a scrape never waits long
    /// on a metadata lock (the exporter's `--exporter.lock_wait_timeout`).
    #[serde(default = "default_lock_wait_timeout")]
    pub lock_wait_timeout: u64,
    /// Connect, read and write timeout of the TCP connection (`5s`, `500ms`).
    #[serde(default = "default_timeout")]
    pub timeout: String,
    /// Collectors on or off, by the exporter's `--collect.<name>` flag names.
    #[serde(default)]
    pub collect: CollectFlags,
}

fn default_lock_wait_timeout() -> u64 {
    2
}

fn default_timeout() -> String {
    "5s".into()
}

/// mysqld_exporter 0.14's default collectors, all on by default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectFlags {
    pub global_status: bool,
    pub global_variables: bool,
    pub slave_status: bool,
    #[serde(rename = "info_schema.innodb_cmp")]
    pub info_schema_innodb_cmp: bool,
    #[serde(rename = "info_schema.innodb_cmpmem")]
    pub info_schema_innodb_cmpmem: bool,
    #[serde(rename = "info_schema.query_response_time")]
    pub info_schema_query_response_time: bool,
}

impl Default for CollectFlags {
    fn default() -> Self {
        Self {
            global_status: true,
            global_variables: true,
            slave_status: true,
            info_schema_innodb_cmp: true,
            info_schema_innodb_cmpmem: true,
            info_schema_query_response_time: true,
        }
    }
}

impl CollectFlags {
    fn enabled(&self, name: &str) -> bool {
        match name {
            "global_status" => self.global_status,
            "global_variables" => self.global_variables,
            "slave_status" => self.slave_status,
            "info_schema.innodb_cmp" => self.info_schema_innodb_cmp,
            "info_schema.innodb_cmpmem" => self.info_schema_innodb_cmpmem,
            "info_schema.query_response_time" => self.info_schema_query_response_time,
            _ => false,
        }
    }
}

/// A checked config, ready for a scrape.
#[derive(Debug, Clone)]
pub struct Settings {
    pub user: String,
    pub lock_wait_timeout: u64,
    pub timeout: Duration,
    /// The enabled collectors, in query order.
    pub collectors: Vec<Collector>,
}

/// MySQL's own upper bound for `lock_wait_timeout` (one year).
const MAX_LOCK_WAIT_TIMEOUT: u64 = 31_536_000;

impl MysqlConfig {
    /// Parse and check a config section; every problem found is reported at once.
    pub fn load(json: &str) -> Result<Settings, PluginError> {
        wasmon_sdk::config::parse::<MysqlConfig>(json)?.settings()
    }

    /// Check every value and build the [`Settings`].
    pub fn settings(&self) -> Result<Settings, PluginError> {
        let mut problems = Vec::new();
        if self.user.is_empty() {
            problems.push("user: must not be empty".to_string());
        } else if self.user.contains('\0') {
            problems.push("user: must not contain a NUL character".to_string());
        }
        if !(1..=MAX_LOCK_WAIT_TIMEOUT).contains(&self.lock_wait_timeout) {
            problems.push(format!(
                "lock_wait_timeout: {} is outside 1..={MAX_LOCK_WAIT_TIMEOUT} seconds",
                self.lock_wait_timeout
            ));
        }
        let timeout = match parse_duration(&self.timeout) {
            Ok(d) if d.is_zero() => {
                problems.push("timeout: must be more than 0".to_string());
                Duration::ZERO
            }
            Ok(d) => d,
            Err(e) => {
                problems.push(format!("timeout: {e}"));
                Duration::ZERO
            }
        };
        if !problems.is_empty() {
            return Err(PluginError::config(problems.join("; ")));
        }
        Ok(Settings {
            user: self.user.clone(),
            lock_wait_timeout: self.lock_wait_timeout,
            timeout,
            collectors: COLLECTORS.iter().copied().filter(|c| self.collect.enabled(c.name)).collect(),
        })
    }
}

/// A Prometheus-style duration: one or more `<integer><unit>` with units
/// `ms`, `s`, `m`, `h` in decreasing order (`1m30s`, `500ms`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    const UNITS: [(&str, u64); 4] = [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];
    let bad = || format!("{text:?} is not a duration like 5s, 500ms or 1m30s");
    let mut rest = text;
    let mut total_ms: u64 = 0;
    let mut last_unit = None;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        // `ms` before `m`, so "5ms" is not read as minutes followed by "s".
        let (index, unit, factor) = [3usize, 0, 1, 2]
            .iter()
            .map(|&i| (i, UNITS[i].0, UNITS[i].1))
            .find(|(_, unit, _)| rest.starts_with(unit))
            .ok_or_else(bad)?;
        if last_unit.is_some_and(|last| index <= last) {
            return Err(bad());
        }
        last_unit = Some(index);
        rest = &rest[unit.len()..];
        total_ms = number.checked_mul(factor).and_then(|ms| total_ms.checked_add(ms)).ok_or_else(bad)?;
    }
    Ok(Duration::from_millis(total_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let s = MysqlConfig::load(r#"{"user":"exporter"}"#).unwrap();
        assert_eq!(s.user, "exporter");
        assert_eq!(s.lock_wait_timeout, 2);
        assert_eq!(s.timeout, Duration::from_secs(5));
        let names: Vec<&str> = s.collectors.iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                "info_schema.query_response_time",
                "global_status",
                "global_variables",
                "slave_status",
                "info_schema.innodb_cmp",
                "info_schema.innodb_cmpmem"
            ]
        );
    }

    #[test]
    fn collectors_switch_off_by_flag_name() {
        let s = MysqlConfig::load(r#"{"user":"u","collect":{"slave_status":false,"info_schema.innodb_cmp":false}}"#)
            .unwrap();
        let names: Vec<&str> = s.collectors.iter().map(|c| c.name).collect();
        assert!(!names.contains(&"slave_status") && !names.contains(&"info_schema.innodb_cmp"));
        assert_eq!(names.len(), 4);
    }

    #[test]
    fn mistakes_are_named() {
        let e = MysqlConfig::load("{}").unwrap_err().message;
        assert!(e.contains("missing field `user`"), "{e}");
        let e = MysqlConfig::load(r#"{"user":"u","password":"x"}"#).unwrap_err().message;
        assert!(e.contains("unknown field `password`"), "{e}");
        let e = MysqlConfig::load(r#"{"user":"u","collect":{"info_schema.processlist":true}}"#).unwrap_err().message;
        assert!(e.contains("unknown field `info_schema.processlist`"), "{e}");
        let e = MysqlConfig::load(r#"{"user":"","lock_wait_timeout":0,"timeout":"5 s"}"#).unwrap_err().message;
        assert_eq!(
            e,
            "user: must not be empty; lock_wait_timeout: 0 is outside 1..=31536000 seconds; \
             timeout: \"5 s\" is not a duration like 5s, 500ms or 1m30s"
        );
        let e = MysqlConfig::load(r#"{"user":"u","timeout":"0s"}"#).unwrap_err().message;
        assert_eq!(e, "timeout: must be more than 0");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h2m3s4ms"), Ok(Duration::from_millis(3_723_004)));
        for bad in ["", "5", "s", "1.5s", "30s1m", "5s5s", "-1s", "1d", "99999999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
