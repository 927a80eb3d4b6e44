//! Helpers every collector uses: file reads that name the path in their error,
//! number parsing that never panics, a record of skipped lines, and family
//! constructors that derive the unit from the metric name.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use wasmon_sdk::Family;

/// Why a collector produced nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectError {
    pub message: String,
    /// The source does not exist on this machine (no PSI, no hwmon chips, no
    /// conntrack module). That is normal, so it is logged at debug level only.
    pub unavailable: bool,
}

impl CollectError {
    /// A real failure: permission denied, unreadable data.
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), unavailable: false }
    }

    /// The source is absent on this machine.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self { message: message.into(), unavailable: true }
    }

    /// An I/O error on `path`; "not found" counts as unavailable.
    pub fn io(path: &str, err: &io::Error) -> Self {
        let message = format!("{path}: {err}");
        if err.kind() == io::ErrorKind::NotFound { Self::unavailable(message) } else { Self::new(message) }
    }
}

impl fmt::Display for CollectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

pub type CollectResult<T> = Result<T, CollectError>;

/// Read a whole text file; the error names the path.
pub fn read_text(path: &str) -> CollectResult<String> {
    wasmon_sdk::fs::read_to_string(path).map_err(|e| CollectError::io(path, &e))
}

/// Read a one-value file (sysfs attribute, /proc/sys entry), trimmed.
pub fn read_value(path: &str) -> CollectResult<String> {
    wasmon_sdk::fs::read_trimmed(path).map_err(|e| CollectError::io(path, &e))
}

/// Read a one-value file that may legitimately be missing or unreadable
/// (sysfs answers EINVAL for `speed` of a down link, for example).
pub fn read_optional(path: &str) -> Option<String> {
    wasmon_sdk::fs::read_trimmed(path).ok()
}

/// Lines a parser could not read. The runner logs them once per collector and
/// scrape, so a malformed file costs one log line instead of one per line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Skipped {
    count: usize,
    first: Option<String>,
}

impl Skipped {
    /// Record a skipped line of `source`.
    pub fn line(&mut self, source: &str, line: &str) {
        self.count += 1;
        if self.first.is_none() {
            let shown: String = line.chars().take(160).collect();
            self.first = Some(format!("{source}: {shown:?}"));
        }
    }

    /// How many lines were skipped.
    pub fn count(&self) -> usize {
        self.count
    }

    /// One log line describing what was skipped, if anything was.
    pub fn summary(&self) -> Option<String> {
        let first = self.first.as_ref()?;
        Some(format!("skipped {} malformed line(s), the first in {first}", self.count))
    }
}

/// Units that node_exporter spells as the last word of a metric name. The
/// unit is only ever derived from the name, so the OpenMetrics rule "the name
/// ends in the unit" always holds.
const NAME_UNITS: &[&str] = &["seconds", "bytes", "celsius", "volts", "amps", "hertz", "ratio", "bits"];

/// The unit a metric name ends in (ignoring `_total`), or "".
pub fn unit_of(name: &str) -> &'static str {
    let base = name.strip_suffix("_total").unwrap_or(name);
    NAME_UNITS
        .iter()
        .find(|unit| base.strip_suffix(**unit).is_some_and(|rest| rest.ends_with('_')))
        .copied()
        .unwrap_or("")
}

fn with_unit(family: Family) -> Family {
    match unit_of(family.name()) {
        "" => family,
        unit => family.unit(unit),
    }
}

/// A gauge family, unit taken from its name.
pub fn gauge(name: &str, help: &str) -> Family {
    with_unit(Family::gauge(name, help))
}

/// A counter family, unit taken from its name.
pub fn counter(name: &str, help: &str) -> Family {
    with_unit(Family::counter(name, help))
}

/// An untyped family (node_exporter's vmstat and netstat families).
pub fn untyped(name: &str, help: &str) -> Family {
    with_unit(Family::untyped(name, help))
}

/// Families whose names come from file contents (meminfo keys, vmstat
/// fields), kept in name order.
#[derive(Debug, Default)]
pub struct FamilySet {
    families: BTreeMap<String, Family>,
}

impl FamilySet {
    /// The family called `name`, created by `make` on first use.
    pub fn entry(&mut self, name: &str, make: impl FnOnce() -> Family) -> &mut Family {
        self.families.entry(name.to_string()).or_insert_with(make)
    }

    pub fn into_vec(self) -> Vec<Family> {
        self.families.into_values().collect()
    }
}

/// Is `name` usable as (part of) a Prometheus metric name?
pub fn is_metric_name_part(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub fn parse_f64(text: &str) -> Option<f64> {
    text.trim().parse().ok()
}

pub fn parse_u64(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

pub fn parse_hex_u64(text: &str) -> Option<u64> {
    u64::from_str_radix(text.trim(), 16).ok()
}

/// An integer the way Go's `strconv.ParseInt(s, 0, 64)` reads it, which is
/// how node_exporter reads sysfs attributes: `0x` hex, `0o`/leading-`0` octal,
/// `0b` binary, else decimal (so `flags` = `0x1003` is 4099).
pub fn parse_int_auto(text: &str) -> Option<i64> {
    let text = text.trim();
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body) = if let Some(rest) = lower.strip_prefix("0x") {
        (16, rest.to_string())
    } else if let Some(rest) = lower.strip_prefix("0o") {
        (8, rest.to_string())
    } else if let Some(rest) = lower.strip_prefix("0b") {
        (2, rest.to_string())
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string())
    } else {
        (10, lower)
    };
    if body.is_empty() || body.starts_with(['+', '-']) {
        return None;
    }
    let magnitude = i128::from_str_radix(&body, radix).ok()?;
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_come_from_the_name() {
        assert_eq!(unit_of("node_cpu_seconds_total"), "seconds");
        assert_eq!(unit_of("node_memory_MemTotal_bytes"), "bytes");
        assert_eq!(unit_of("node_memory_HugePages_Total"), "");
        assert_eq!(unit_of("node_load1"), "");
        assert_eq!(unit_of("node_entropy_available_bits"), "bits");
        assert_eq!(unit_of("bytes"), "", "a bare unit is not a suffix");
    }

    #[test]
    fn go_style_integers() {
        assert_eq!(parse_int_auto("0x1003"), Some(4099));
        assert_eq!(parse_int_auto("0x0"), Some(0));
        assert_eq!(parse_int_auto("1500"), Some(1500));
        assert_eq!(parse_int_auto("-1"), Some(-1));
        assert_eq!(parse_int_auto("010"), Some(8));
        assert_eq!(parse_int_auto("0"), Some(0));
        assert_eq!(parse_int_auto(""), None);
        assert_eq!(parse_int_auto("0x"), None);
        assert_eq!(parse_int_auto("--1"), None);
        assert_eq!(parse_int_auto("up"), None);
    }

    #[test]
    fn skipped_lines_are_summarised() {
        let mut skipped = Skipped::default();
        assert_eq!(skipped.summary(), None);
        skipped.line("/proc/x", "bad line");
        skipped.line("/proc/x", "another");
        assert_eq!(skipped.count(), 2);
        let summary = skipped.summary().expect("summary");
        assert!(summary.contains("2 malformed") && summary.contains("bad line"), "{summary}");
    }
}
