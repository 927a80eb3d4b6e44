//! Prometheus' number/time helpers (template/template.go and
//! prometheus/common helpers/templates), with Go's conversions.

use crate::gofmt::{float_v, format_float, go_quote};
use crate::value::Value;

/// `%.4g`.
fn g4(v: f64) -> String {
    format_float(v, b'g', 4)
}

/// strconv.ParseFloat(s, 64), with Go's error texts.
pub(crate) fn parse_go_float(s: &str) -> Result<f64, String> {
    let syntax = || format!("strconv.ParseFloat: parsing {}: invalid syntax", go_quote(s, false));
    let range = || format!("strconv.ParseFloat: parsing {}: value out of range", go_quote(s, false));
    let (neg, body, signed) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..], true),
        Some(b'+') => (false, &s[1..], true),
        _ => (false, s, false),
    };
    let lower = body.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Ok(if neg { f64::NEG_INFINITY } else { f64::INFINITY });
    }
    if lower == "nan" && !signed {
        return Ok(f64::NAN);
    }
    if body.is_empty() || body.starts_with(['+', '-']) || !underscores_ok(body) {
        return Err(syntax());
    }
    let clean = body.replace('_', "");
    let v = if let Some(hex) = clean.strip_prefix("0x").or_else(|| clean.strip_prefix("0X")) {
        parse_hex_float(hex).ok_or_else(syntax)?
    } else {
        if !clean.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-')) {
            return Err(syntax());
        }
        clean.parse::<f64>().map_err(|_| syntax())?
    };
    if v.is_infinite() {
        return Err(range());
    }
    Ok(if neg { -v } else { v })
}

/// Underscores only between digits, as Go's underscoreOK requires.
fn underscores_ok(s: &str) -> bool {
    let b = s.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c == b'_' {
            let prev_ok = i > 0 && (b[i - 1].is_ascii_hexdigit() || matches!(b[i - 1], b'x' | b'X'));
            let next_ok = b.get(i + 1).is_some_and(u8::is_ascii_hexdigit);
            if !prev_ok || !next_ok {
                return false;
            }
        }
    }
    true
}

/// Hex mantissa with a mandatory binary exponent: `1.8p3`.
fn parse_hex_float(s: &str) -> Option<f64> {
    let (mant, exp) = s.split_once(['p', 'P'])?;
    let exp: i64 = exp.parse().ok()?;
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut m: u64 = 0;
    let mut e2: i64 = exp;
    for c in int.chars() {
        let d = c.to_digit(16)?;
        if m >> 60 == 0 {
            m = m * 16 + u64::from(d);
        } else {
            e2 += 4;
        }
    }
    for c in frac.chars() {
        let d = c.to_digit(16)?;
        if m >> 60 == 0 {
            m = m * 16 + u64::from(d);
            e2 -= 4;
        }
    }
    let e2 = e2.clamp(-2200, 2200) as i32;
    // Two steps keep 2^e2 representable for subnormal and huge results.
    let half = e2 / 2;
    Some((m as f64) * 2f64.powi(half) * 2f64.powi(e2 - half))
}

/// ConvertToFloat of prometheus/common helpers/templates.
pub(crate) fn convert_to_float(v: &Value) -> Result<f64, String> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::Str(s) => parse_go_float(s),
        other => Err(format!("can't convert {} to float", other.type_name())),
    }
}

pub(crate) fn humanize(mut v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
        return format!("{}{prefix}", g4(v));
    }
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}", g4(v))
}

pub(crate) fn humanize1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", g4(v))
}

pub(crate) fn humanize_duration(mut v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    if v == 0.0 {
        return format!("{}s", g4(v));
    }
    if v.abs() >= 1.0 {
        let mut sign = "";
        if v < 0.0 {
            sign = "-";
            v = -v;
        }
        // Go's int64 conversion; Rust's `as` saturates where Go's is undefined.
        let d = v as i64;
        let (seconds, minutes, hours, days) = (d % 60, (d / 60) % 60, (d / 3600) % 24, d / 86400);
        if days != 0 {
            return format!("{sign}{days}d {hours}h {minutes}m {seconds}s");
        }
        if hours != 0 {
            return format!("{sign}{hours}h {minutes}m {seconds}s");
        }
        if minutes != 0 {
            return format!("{sign}{minutes}m {seconds}s");
        }
        return format!("{sign}{}s", g4(v));
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", g4(v))
}

pub(crate) fn humanize_percentage(v: f64) -> String {
    format!("{}%", g4(v * 100.0))
}

/// 2^63: the first float beyond int64.
pub(crate) const TWO_63: f64 = 9_223_372_036_854_775_808.0;

pub(crate) const NAN_OR_INF: &str = "value is NaN or Inf";

/// FloatToTime: Unix seconds to nanoseconds, truncated to milliseconds as
/// model.TimeFromUnixNano does.
pub(crate) fn float_to_time(v: f64) -> Result<i64, String> {
    if v.is_nan() || v.is_infinite() {
        return Err(NAN_OR_INF.into());
    }
    let ts = v * 1e9;
    // 2^63 itself overflows int64 too; Go's check lets it through by rounding.
    if !(-TWO_63..TWO_63).contains(&ts) {
        return Err(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            float_v(v)
        ));
    }
    let ms = (ts as i64) / 1_000_000;
    Ok(ms * 1_000_000)
}

pub(crate) fn humanize_timestamp(v: f64) -> Result<String, String> {
    match float_to_time(v) {
        Ok(t) => Ok(time_string(t)),
        Err(e) if e == NAN_OR_INF => Ok(g4(v)),
        Err(e) => Err(e),
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// time.Time.String() in UTC: "2006-01-02 15:04:05.999999999 -0700 MST".
pub(crate) fn time_string(nanos: i64) -> String {
    let secs = nanos.div_euclid(1_000_000_000);
    let ns = nanos.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut s = format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", sod / 3600, sod % 3600 / 60, sod % 60);
    if ns != 0 {
        let frac = format!("{ns:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push_str(" +0000 UTC");
    s
}

/// model.ParseDuration, returned as seconds like Prometheus' parseDuration.
pub(crate) fn parse_duration(s: &str) -> Result<f64, String> {
    match s {
        "0" => return Ok(0.0),
        "" => return Err("empty duration string".into()),
        _ => {}
    }
    let invalid = || format!("not a valid duration string: {}", go_quote(s, false));
    const UNITS: &[(&str, u64, u32)] = &[
        ("y", 365 * 24 * 3_600_000_000_000, 1),
        ("w", 7 * 24 * 3_600_000_000_000, 2),
        ("d", 24 * 3_600_000_000_000, 3),
        ("h", 3_600_000_000_000, 4),
        ("m", 60_000_000_000, 5),
        ("s", 1_000_000_000, 6),
        ("ms", 1_000_000, 7),
    ];
    let mut rest = s;
    let mut dur: u64 = 0;
    let mut last_pos = 0;
    while !rest.is_empty() {
        let n = rest.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return Err(invalid());
        }
        let v: u64 = rest[..n].parse().map_err(|_| invalid())?;
        rest = &rest[n..];
        let u = rest.bytes().take_while(|b| !b.is_ascii_digit()).count();
        if u == 0 {
            return Err(invalid());
        }
        let unit = &rest[..u];
        rest = &rest[u..];
        let Some(&(_, mult, pos)) = UNITS.iter().find(|x| x.0 == unit) else {
            return Err(format!("unknown unit {} in duration {}", go_quote(unit, false), go_quote(s, false)));
        };
        if pos <= last_pos {
            return Err(invalid());
        }
        last_pos = pos;
        if v > (1u64 << 63) / mult {
            return Err("duration out of range".into());
        }
        dur = dur.saturating_add(v * mult);
        if dur > (1u64 << 63) - 1 {
            return Err("duration out of range".into());
        }
    }
    Ok(dur as f64 / 1e9)
}
