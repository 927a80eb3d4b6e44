//! nginx's time variables: `$time_local`, `$time_iso8601` (RFC 3339) and `$msec`.

pub use wasmon_sdk_logs::time::{days_from_civil, parse_rfc3339};
use wasmon_sdk_logs::time::{days_in_month, digits, parse_decimal};

/// nginx's `$time_local`, `10/Oct/2000:13:55:36 -0700`, to nanoseconds since the epoch.
pub fn parse_time_local(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 26 || b[2] != b'/' || b[6] != b'/' || b[11] != b':' || b[14] != b':' || b[17] != b':' || b[20] != b' '
    {
        return None;
    }
    let day = digits(&b[0..2])?;
    let month = match &b[3..6] {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    };
    let year = digits(&b[7..11])?;
    let (hour, minute, second) = (digits(&b[12..14])?, digits(&b[15..17])?, digits(&b[18..20])?);
    let sign = match b[21] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (oh, om) = (digits(&b[22..24])?, digits(&b[24..26])?);
    if day < 1 || day > days_in_month(year, month) || hour > 23 || minute > 59 || second > 60 || oh > 23 || om > 59 {
        return None;
    }
    let offset = sign * (oh * 3600 + om * 60);
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    seconds.checked_mul(1_000_000_000)
}

/// nginx's `$msec`, seconds with a millisecond fraction, to nanoseconds.
pub fn parse_msec(s: &str) -> Option<i64> {
    parse_decimal(s, 9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_local_values() {
        // The example of Apache's and nginx's docs; 2000-10-10T20:55:36Z is 971211336.
        assert_eq!(parse_time_local("10/Oct/2000:13:55:36 -0700"), Some(971_211_336_000_000_000));
        assert_eq!(parse_time_local("01/May/2024:14:00:00 +0200"), Some(1_714_564_800_000_000_000));
        assert_eq!(parse_time_local("29/Feb/2024:00:00:00 +0000"), Some(1_709_164_800_000_000_000));
        for bad in [
            "",
            "10/Oct/2000:13:55:36",
            "10/Okt/2000:13:55:36 -0700",
            "30/Feb/2024:00:00:00 +0000",
            "10/Oct/2000:13:55:36 0700",
        ] {
            assert_eq!(parse_time_local(bad), None, "{bad:?}");
        }
        assert_eq!(parse_msec("1714564800.123"), Some(1_714_564_800_123_000_000));
    }
}
