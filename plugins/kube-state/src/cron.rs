//! The next run of a CronJob schedule: the standard five fields and the
//! `@hourly`-style macros, as robfig/cron (which Kubernetes and KSM use)
//! reads them, evaluated in UTC.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Timelike, Utc};

/// A parsed schedule: the allowed values of each field as bit sets.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
    /// Either day field restricted alone is ANDed; both restricted, ORed.
    dom_star: bool,
    dow_star: bool,
}

const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn field(text: &str, min: u32, max: u32, names: &[&str], name_base: u32) -> Result<(u64, bool), String> {
    let mut bits = 0u64;
    let star = text == "*" || text == "?";
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().map_err(|_| format!("bad step in {part:?}"))?),
            None => (part, 1),
        };
        if step == 0 {
            return Err(format!("zero step in {part:?}"));
        }
        let value = |s: &str| -> Result<u32, String> {
            if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
                return Ok(i as u32 + name_base);
            }
            s.parse::<u32>().map_err(|_| format!("bad value {s:?}"))
        };
        let (lo, hi) = if range == "*" || range == "?" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let v = value(range)?;
            (v, if part.contains('/') { max } else { v })
        };
        // Sunday may be written 7.
        let hi = if max == 6 && hi == 7 && lo <= 7 {
            bits |= 1;
            if lo == 7 {
                continue;
            }
            6
        } else {
            hi
        };
        if lo < min || hi > max || lo > hi {
            return Err(format!("{part:?} is outside {min}-{max}"));
        }
        let mut v = lo;
        while v <= hi {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok((bits, star))
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let expanded = match text {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            t if t.starts_with('@') => return Err(format!("unsupported descriptor {t:?}")),
            t => t,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, dom, month, dow] = fields[..] else {
            return Err(format!("expected 5 fields, found {}", fields.len()));
        };
        let (minute, _) = field(minute, 0, 59, &[], 0)?;
        let (hour, _) = field(hour, 0, 23, &[], 0)?;
        let (dom, dom_star) = field(dom, 1, 31, &[], 0)?;
        let (month, _) = field(month, 1, 12, &MONTHS, 1)?;
        let (dow, dow_star) = field(dow, 0, 6, &DAYS, 0)?;
        Ok(Self { minute, hour, dom, month, dow, dom_star, dow_star })
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        let dom = self.dom & (1 << date.day()) != 0;
        let dow = self.dow & (1 << date.weekday().num_days_from_sunday()) != 0;
        if self.dom_star || self.dow_star { dom && dow } else { dom || dow }
    }

    /// The first activation strictly after `after` (Unix seconds), within
    /// five years, as Unix seconds.
    pub fn next_after(&self, after: i64) -> Option<i64> {
        let start = DateTime::<Utc>::from_timestamp(after, 0)?.naive_utc();
        let mut t = start.with_second(0)?.with_nanosecond(0)? + Duration::minutes(1);
        let limit = start + Duration::days(5 * 366);
        while t <= limit {
            if self.month & (1 << t.month()) == 0 {
                let (y, m) = if t.month() == 12 { (t.year() + 1, 1) } else { (t.year(), t.month() + 1) };
                t = NaiveDate::from_ymd_opt(y, m, 1)?.and_hms_opt(0, 0, 0)?;
            } else if !self.day_matches(t.date()) {
                t = t.date().succ_opt()?.and_hms_opt(0, 0, 0)?;
            } else if self.hour & (1 << t.hour()) == 0 {
                t = t.with_minute(0)? + Duration::hours(1);
            } else if self.minute & (1 << t.minute()) == 0 {
                t += Duration::minutes(1);
            } else {
                return Some(t.and_utc().timestamp());
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp()
    }

    #[test]
    fn next_runs() {
        for (schedule, after, want) in [
            ("*/1 * * * *", "2019-08-30T17:01:00Z", "2019-08-30T17:02:00Z"),
            ("*/15 * * * *", "2019-08-30T17:01:30Z", "2019-08-30T17:15:00Z"),
            ("0 3 * * *", "2019-08-30T17:01:00Z", "2019-08-31T03:00:00Z"),
            ("30 2 1 * *", "2019-12-31T00:00:00Z", "2020-01-01T02:30:00Z"),
            ("0 0 * * mon", "2019-08-30T17:01:00Z", "2019-09-02T00:00:00Z"),
            ("0 0 * * 7", "2019-08-30T17:01:00Z", "2019-09-01T00:00:00Z"),
            ("@hourly", "2019-08-30T17:01:00Z", "2019-08-30T18:00:00Z"),
            ("0 0 29 2 *", "2019-03-01T00:00:00Z", "2020-02-29T00:00:00Z"),
            ("0 12 1-7 * 1", "2019-08-30T00:00:00Z", "2019-09-01T12:00:00Z"),
        ] {
            let s = Schedule::parse(schedule).unwrap();
            assert_eq!(s.next_after(at(after)), Some(at(want)), "{schedule} after {after}");
        }
    }

    #[test]
    fn bad_schedules() {
        for bad in ["", "* * * *", "61 * * * *", "*/0 * * * *", "@reboot", "a b c d e", "5-1 * * * *"] {
            assert!(Schedule::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Schedule::parse("0 0 31 2 *").unwrap().next_after(0), None);
    }
}
