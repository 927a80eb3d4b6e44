//! Timestamps as log lines write them: RFC 3339 and decimal Unix times, to
//! nanoseconds since the epoch, without a date crate (the plugins stay
//! small). Shared by the log-processor plugins.

/// RFC 3339 to nanoseconds since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' {
        return None;
    }
    if b[16] != b':' {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let second = digits(&b[17..19])?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) || hour > 23 || minute > 59 {
        return None;
    }
    // A leap second (`:60`) is accepted and folded into the next second, as Go does not;
    // rejecting a real log line over it would be worse.
    if second > 60 {
        return None;
    }
    let mut rest = &b[19..];
    let mut nanos = 0i64;
    if let Some((&b'.', frac)) = rest.split_first() {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        for (i, &c) in frac[..n].iter().enumerate() {
            if i < 9 {
                nanos = nanos * 10 + i64::from(c - b'0');
            }
        }
        for _ in n..9 {
            nanos *= 10;
        }
        rest = &frac[n..];
    }
    let offset_seconds = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let h = digits(&[*h1, *h2])?;
            let m = digits(&[*m1, *m2])?;
            if h > 23 || m > 59 {
                return None;
            }
            let off = h * 3600 + m * 60;
            if *sign == b'-' { -off } else { off }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    seconds.checked_mul(1_000_000_000)?.checked_add(nanos)
}

pub fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0')))
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

pub fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A decimal number (optional sign, optional fraction) times `10^scale`, truncated
/// to an integer: `parse_decimal("1.5", 9)` is 1_500_000_000.
pub fn parse_decimal(s: &str, scale: u32) -> Option<i64> {
    let (negative, unsigned) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if int.is_empty() || !int.bytes().all(|c| c.is_ascii_digit()) || !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if unsigned.contains('.') && frac.is_empty() {
        return None;
    }
    let mut value: i64 = int.parse().ok()?;
    value = value.checked_mul(10i64.checked_pow(scale)?)?;
    let mut frac_value = 0i64;
    for (i, c) in frac.bytes().take(scale as usize).enumerate() {
        frac_value += i64::from(c - b'0') * 10i64.pow(scale - 1 - i as u32);
    }
    value = value.checked_add(frac_value)?;
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_values() {
        // 2024-05-01T12:00:00Z is 1714564800 (date -ud @1714564800).
        assert_eq!(parse_rfc3339("2024-05-01T12:00:00Z"), Some(1_714_564_800_000_000_000));
        assert_eq!(parse_rfc3339("2024-05-01T12:00:00.5Z"), Some(1_714_564_800_500_000_000));
        assert_eq!(parse_rfc3339("2024-05-01T14:00:00.000000001+02:00"), Some(1_714_564_800_000_000_001));
        assert_eq!(parse_rfc3339("2024-05-01 07:30:00-04:30"), Some(1_714_564_800_000_000_000));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), Some(-1_000_000_000));
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z"), Some(1_709_164_800_000_000_000));
        // Ten fraction digits: the tenth is below a nanosecond and dropped.
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00.1234567899Z"), Some(123_456_789));
    }

    #[test]
    fn rfc3339_rejects() {
        for bad in [
            "",
            "2024-05-01",
            "2024-05-01T12:00:00",
            "2024-13-01T12:00:00Z",
            "2023-02-29T12:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T12:00:00.Z",
            "2024-05-01T12:00:00+0200",
            "2024-05-01T12:00:00Zjunk",
            "９９９９-05-01T12:00:00Z",
            "3000-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }
}
