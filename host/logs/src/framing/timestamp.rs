//! RFC 3339 timestamps as written by container runtimes
//! (`2016-10-06T00:17:09.669794202Z`, or with a `+hh:mm` offset), parsed by
//! hand because it runs once per line on the hot path.

/// Nanoseconds since the Unix epoch, or `None` if `s` is not RFC 3339.
pub(crate) fn parse_rfc3339_nanos(s: &[u8]) -> Option<i64> {
    fn num(s: &[u8], from: usize, len: usize) -> Option<i64> {
        let d = s.get(from..from + len)?;
        let mut n = 0i64;
        for &c in d {
            if !c.is_ascii_digit() {
                return None;
            }
            n = n * 10 + i64::from(c - b'0');
        }
        Some(n)
    }
    if s.len() < 20 || s[4] != b'-' || s[7] != b'-' || !matches!(s[10], b'T' | b't' | b' ') || s[13] != b':' {
        return None;
    }
    if s[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(s, 0, 4)?, num(s, 5, 2)?, num(s, 8, 2)?);
    let (hour, minute, second) = (num(s, 11, 2)?, num(s, 14, 2)?, num(s, 17, 2)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0i64;
    if s.get(i) == Some(&b'.') {
        i += 1;
        let mut digits = 0;
        while let Some(c) = s.get(i).filter(|c| c.is_ascii_digit()) {
            if digits < 9 {
                nanos = nanos * 10 + i64::from(c - b'0');
            }
            digits += 1;
            i += 1;
        }
        if digits == 0 {
            return None;
        }
        for _ in digits..9 {
            nanos *= 10;
        }
    }
    let offset_secs = match s.get(i)? {
        b'Z' | b'z' if i + 1 == s.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == s.len() && s[i + 3] == b':' => {
            let off = num(s, i + 1, 2)? * 3600 + num(s, i + 4, 2)? * 60;
            if *sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86400 + hour * 3600 + minute * 60 + second - offset_secs;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Howard Hinnant's days-from-civil: days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_timestamps_parse() {
        assert_eq!(parse_rfc3339_nanos(b"1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339_nanos(b"2016-10-06T00:17:09.669794202Z"), Some(1_475_713_029_669_794_202));
        assert_eq!(parse_rfc3339_nanos(b"2016-10-06T02:17:09.5+02:00"), Some(1_475_713_029_500_000_000));
        assert_eq!(parse_rfc3339_nanos(b"2024-02-29T12:00:00.000000001Z"), Some(1_709_208_000_000_000_001));
        assert_eq!(parse_rfc3339_nanos(b"2016-10-06 00:17:09Z"), Some(1_475_713_029_000_000_000));
        assert_eq!(parse_rfc3339_nanos(b"2016-13-06T00:17:09Z"), None);
        assert_eq!(parse_rfc3339_nanos(b"2016-10-06T00:17:09"), None);
        assert_eq!(parse_rfc3339_nanos(b"2016-10-06T00:17:09.Z"), None);
    }
}
