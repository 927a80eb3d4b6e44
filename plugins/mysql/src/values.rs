//! How mysqld_exporter turns the text the server sends into numbers and
//! metric names, reproduced so the same server gives the same samples.

/// A status or variable value as a number, as mysqld_exporter's `parseStatus`
/// reads it: `yes`/`on` are 1 and `no`/`off`/`disabled` 0 (any case), and so
/// are the replication and Galera states `connecting` (0), `primary` (1),
/// `non-primary` and `disconnected` (0); certificate dates
/// (`Jan 02 15:04:05 2026 GMT`) and `2006-01-02 15:04:05` timestamps are
/// Unix seconds; anything else must be a number as Go's `strconv.ParseFloat`
/// reads it. `None` means "skip".
pub fn parse_status(value: &str) -> Option<f64> {
    match value.to_lowercase().as_str() {
        "yes" | "on" | "primary" => return Some(1.0),
        "no" | "off" | "disabled" | "connecting" | "non-primary" | "disconnected" => return Some(0.0),
        _ => {}
    }
    if let Some(seconds) = parse_certificate_date(value).or_else(|| parse_datetime(value)) {
        return Some(seconds as f64);
    }
    // The exporter also special-cases binlog-style names (`mysql-bin.000042`)
    // but then parses the whole text, which fails for them just like the
    // plain parse below; so no extra case is needed.
    go_parse_float(value)
}

const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];

/// Go's `time.Parse("Jan 02 15:04:05 2006 MST", s)` as Unix seconds: the
/// format of `Ssl_server_not_after`. Zone abbreviations count as UTC (the
/// exporter's own zone decides otherwise, which on servers is UTC), except
/// `GMT+N`/`GMT-N`.
pub fn parse_certificate_date(s: &str) -> Option<i64> {
    let month_name = s.get(..3)?.to_ascii_lowercase();
    let month = MONTHS.iter().position(|m| *m == month_name)? as u32 + 1;
    let rest = s[3..].strip_prefix(' ')?;
    let (day, rest) = fixed_digits(rest, 2)?;
    let rest = rest.strip_prefix(' ')?;
    let (hms, rest) = clock(rest)?;
    let rest = rest.strip_prefix(' ')?;
    let (year, rest) = fixed_digits(rest, 4)?;
    let rest = rest.strip_prefix(' ')?;
    let offset = zone_offset(rest)?;
    Some(unix_seconds(year as i64, month, day, hms)? - offset)
}

/// Go's `time.Parse("2006-01-02 15:04:05", s)` as Unix seconds (UTC).
pub fn parse_datetime(s: &str) -> Option<i64> {
    let (year, rest) = fixed_digits(s, 4)?;
    let (month, rest) = fixed_digits(rest.strip_prefix('-')?, 2)?;
    let (day, rest) = fixed_digits(rest.strip_prefix('-')?, 2)?;
    let (hms, rest) = clock(rest.strip_prefix(' ')?)?;
    rest.is_empty().then_some(())?;
    unix_seconds(year as i64, month, day, hms)
}

/// Exactly `n` ASCII digits.
fn fixed_digits(s: &str, n: usize) -> Option<(u32, &str)> {
    let digits = s.get(..n)?;
    digits.bytes().all(|b| b.is_ascii_digit()).then_some(())?;
    Some((digits.parse().ok()?, &s[n..]))
}

/// `15:04:05` as Go reads it: a one- or two-digit hour, two-digit minute and
/// second, then an optional fraction (ignored, Unix seconds truncate).
fn clock(s: &str) -> Option<((u32, u32, u32), &str)> {
    let hour_len = s.bytes().take_while(u8::is_ascii_digit).count();
    if !(1..=2).contains(&hour_len) {
        return None;
    }
    let hour: u32 = s[..hour_len].parse().ok()?;
    let (minute, rest) = fixed_digits(s[hour_len..].strip_prefix(':')?, 2)?;
    let (second, mut rest) = fixed_digits(rest.strip_prefix(':')?, 2)?;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            rest = &fraction[digits..];
        }
    }
    (hour < 24 && minute < 60 && second < 60).then_some(((hour, minute, second), rest))
}

/// Seconds east of UTC for a zone abbreviation as Go's parser accepts it.
fn zone_offset(zone: &str) -> Option<i64> {
    if let Some(hours) = zone.strip_prefix("GMT").filter(|h| !h.is_empty()) {
        let sign = match hours.as_bytes()[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let n: i64 = hours[1..].parse().ok().filter(|n| (0..=23).contains(n))?;
        return Some(sign * n * 3600);
    }
    let upper = zone.bytes().take_while(u8::is_ascii_uppercase).count();
    let known = matches!(zone, "ChST" | "MeST");
    let valid = known
        || (upper == zone.len()
            && match upper {
                3 => true,
                4 => zone.ends_with('T') || zone.starts_with("WITA"),
                5 => zone.ends_with('T'),
                _ => false,
            });
    valid.then_some(0)
}

/// Seconds since 1970-01-01 UTC, or `None` for a day the month lacks.
fn unix_seconds(year: i64, month: u32, day: u32, (h, m, s): (u32, u32, u32)) -> Option<i64> {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if month == 0 || month > 12 || day == 0 || day > days_in_month[month as usize - 1] {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(month) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + i64::from(h) * 3600 + i64::from(m) * 60 + i64::from(s))
}

/// `strconv.ParseFloat(s, 64)`, for the inputs a server sends: decimal
/// numbers with optional sign, fraction and exponent, and `Inf`/`NaN`
/// spellings. Out-of-range numbers are errors in Go, so they are `None` here.
pub fn go_parse_float(s: &str) -> Option<f64> {
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let special = ["inf", "infinity", "nan"].iter().any(|w| unsigned.eq_ignore_ascii_case(w));
    if special {
        // Go accepts a sign before Inf but not before NaN.
        if unsigned.eq_ignore_ascii_case("nan") && unsigned.len() != s.len() {
            return None;
        }
        return s.parse().ok();
    }
    // Rust also accepts these forms; Go's decimal syntax is digits, an
    // optional fraction and an optional exponent, nothing else.
    let decimal = unsigned.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    if !decimal || unsigned.is_empty() {
        return None;
    }
    let value: f64 = s.parse().ok()?;
    value.is_finite().then_some(value)
}

/// A variable or column name as a metric name part: every character outside
/// `[a-zA-Z0-9_]` becomes `_`, then all is lower case (`validPrometheusName`).
pub fn metric_name_part(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c.to_ascii_lowercase() } else { '_' }).collect()
}

/// The leading `major.minor` of a version string as a number (`10.11.19-MariaDB`
/// gives 10.11, and, as in the exporter, `5.10` gives 5.1). When there is none
/// the exporter assumes a new server: 999.
pub fn version_number(version: &str) -> f64 {
    let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
    let major = digits(version);
    let parsed = (major > 0)
        .then(|| version[major..].strip_prefix('.'))
        .flatten()
        .and_then(|rest| {
            let minor = digits(rest);
            (minor > 0).then(|| version[..major + 1 + minor].parse::<f64>().ok()).flatten()
        })
        .unwrap_or(0.0);
    if parsed == 0.0 { 999.0 } else { parsed }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_words_in_any_case() {
        for one in ["ON", "on", "Yes", "YES", "Primary"] {
            assert_eq!(parse_status(one), Some(1.0), "{one}");
        }
        for zero in ["OFF", "No", "NO", "DISABLED", "Connecting", "NON-PRIMARY", "non-Primary", "Disconnected"] {
            assert_eq!(parse_status(zero), Some(0.0), "{zero}");
        }
        assert_eq!(parse_status("AUTH_MASTER"), None);
    }

    #[test]
    fn dates_become_unix_seconds() {
        // `date -u -d '2030-04-10 12:34:56' +%s` = 1902054896.
        assert_eq!(parse_status("Apr 10 12:34:56 2030 GMT"), Some(1_902_054_896.0));
        assert_eq!(parse_status("apr 10 12:34:56 2030 UTC"), Some(1_902_054_896.0));
        assert_eq!(parse_status("Apr 10 15:34:56 2030 GMT+3"), Some(1_902_054_896.0));
        assert_eq!(parse_status("2030-04-10 12:34:56"), Some(1_902_054_896.0));
        assert_eq!(parse_status("2030-04-10 12:34:56.789"), Some(1_902_054_896.0));
        assert_eq!(parse_status("1970-01-01 0:00:00"), Some(0.0));
        assert_eq!(parse_status("2024-02-29 00:00:00"), Some(1_709_164_800.0));
        for bad in [
            "2023-02-29 00:00:00",
            "2030-04-10 24:00:00",
            "2030-04-10 12:34",
            "2030-04-10T12:34:56",
            "Apr  1 12:34:56 2030 GMT",
            "Apr 10 12:34:56 2030 gmt",
            "Apr 10 12:34:56 2030",
            "Foo 10 12:34:56 2030 GMT",
        ] {
            assert_eq!(parse_status(bad), None, "{bad}");
        }
    }

    #[test]
    fn numbers_as_go_reads_them() {
        assert_eq!(parse_status("42"), Some(42.0));
        assert_eq!(parse_status("-1.5e3"), Some(-1500.0));
        assert_eq!(parse_status("0.000100"), Some(0.0001));
        assert_eq!(parse_status("18446744073709551615"), Some(18446744073709551615.0));
        assert_eq!(parse_status(".5"), Some(0.5));
        assert_eq!(parse_status("5."), Some(5.0));
        assert_eq!(parse_status("+Inf").map(f64::is_infinite), Some(true));
        assert!(parse_status("NaN").is_some_and(f64::is_nan));
        assert_eq!(parse_status("-nan"), None);
        assert_eq!(parse_status("1e400"), None, "out of range is an error in Go");
        for text in ["", " 1", "1 ", "0x10", "1_000", "mysql-bin.000042", "10.11.19", "REPEATABLE-READ", "e5"] {
            assert_eq!(parse_status(text), None, "{text:?}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(metric_name_part("Innodb_buffer_pool_pages_data"), "innodb_buffer_pool_pages_data");
        assert_eq!(metric_name_part("Ssl_cipher-list.x"), "ssl_cipher_list_x");
        assert_eq!(metric_name_part("Größe"), "gr__e");
    }

    #[test]
    fn versions() {
        assert_eq!(version_number("10.11.19-MariaDB-0+deb12u1"), 10.11);
        assert_eq!(version_number("8.0.36"), 8.0);
        assert_eq!(version_number("5.10.1"), 5.1);
        assert_eq!(version_number("garbage"), 999.0);
        assert_eq!(version_number("10"), 999.0);
        assert_eq!(version_number("0.0"), 999.0);
    }
}
