//! Timestamps of logfmt lines: RFC 3339 (`2024-05-01T12:00:00.123456789Z`, what Go's
//! `time.RFC3339Nano` and go-kit's `log.DefaultTimestampUTC` write) or Unix time.

use serde::Deserialize;
use wasmon_sdk_logs::time::parse_decimal;
pub use wasmon_sdk_logs::time::parse_rfc3339;

/// How the value of `timestamp_key` is read. The names and rules are logs-json's, so
/// both plugins are configured alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestampFormat {
    /// RFC 3339, or else a number read by its magnitude as seconds (below 1e11),
    /// milliseconds (below 1e14), microseconds (below 1e17) or nanoseconds.
    #[default]
    Auto,
    /// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`; `t` or a space may stand for `T`, `z` for `Z`.
    Rfc3339,
    /// Seconds since the epoch, with an optional fraction (`1714564800.25`).
    UnixSeconds,
    UnixMillis,
    UnixMicros,
    UnixNanos,
}

impl TimestampFormat {
    /// The name in the config.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Rfc3339 => "rfc3339",
            Self::UnixSeconds => "unix_seconds",
            Self::UnixMillis => "unix_millis",
            Self::UnixMicros => "unix_micros",
            Self::UnixNanos => "unix_nanos",
        }
    }

    /// Nanoseconds since the epoch, or `None` when the text does not have this format
    /// or lies outside what an `i64` of nanoseconds holds (years 1678 to 2262).
    pub fn parse(self, text: &str) -> Option<i64> {
        match self {
            Self::Auto => parse_rfc3339(text).or_else(|| {
                let int = text.strip_prefix('-').unwrap_or(text);
                let digits = int.split('.').next().unwrap_or_default().len();
                let scale = match digits {
                    0..=11 => 9,
                    12..=14 => 6,
                    15..=17 => 3,
                    _ => 0,
                };
                parse_decimal(text, scale)
            }),
            Self::Rfc3339 => parse_rfc3339(text),
            Self::UnixSeconds => parse_decimal(text, 9),
            Self::UnixMillis => parse_decimal(text, 6),
            Self::UnixMicros => parse_decimal(text, 3),
            Self::UnixNanos => parse_decimal(text, 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_values() {
        use TimestampFormat::*;
        assert_eq!(UnixSeconds.parse("1714564800"), Some(1_714_564_800_000_000_000));
        assert_eq!(UnixSeconds.parse("1714564800.25"), Some(1_714_564_800_250_000_000));
        assert_eq!(UnixMillis.parse("1714564800123"), Some(1_714_564_800_123_000_000));
        assert_eq!(UnixMicros.parse("1714564800123456"), Some(1_714_564_800_123_456_000));
        assert_eq!(UnixNanos.parse("1714564800123456789"), Some(1_714_564_800_123_456_789));
        assert_eq!(UnixSeconds.parse("-1.5"), Some(-1_500_000_000));
        for bad in ["", "1.", ".5", "1e9", "abc", "99999999999999999999"] {
            assert_eq!(UnixSeconds.parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn auto_by_magnitude() {
        use TimestampFormat::Auto;
        assert_eq!(Auto.parse("2024-05-01T12:00:00Z"), Some(1_714_564_800_000_000_000));
        assert_eq!(Auto.parse("1714564800.5"), Some(1_714_564_800_500_000_000));
        assert_eq!(Auto.parse("1714564800123"), Some(1_714_564_800_123_000_000));
        assert_eq!(Auto.parse("1714564800123456"), Some(1_714_564_800_123_456_000));
        assert_eq!(Auto.parse("1714564800123456789"), Some(1_714_564_800_123_456_789));
        assert_eq!(Auto.parse("yesterday"), None);
    }
}
