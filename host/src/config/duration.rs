//! Prometheus-style durations (`15s`, `1m30s`, `2h`) and byte sizes (`64MiB`).

use serde::{Deserialize, Deserializer, de};
use std::fmt;
use std::time::Duration;

/// A duration written the Prometheus way: one or more `<int><unit>` parts,
/// units `ms`, `s`, `m`, `h`, `d`, `w`, `y`, largest first.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PromDuration(pub Duration);

impl PromDuration {
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("empty duration".into());
        }
        if text == "0" {
            return Ok(Self(Duration::ZERO));
        }
        const UNITS: [(&str, u64); 7] = [
            ("y", 365 * 86_400_000),
            ("w", 7 * 86_400_000),
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("ms", 1),
            ("m", 60_000),
            ("s", 1000),
        ];
        let mut rest = text;
        let mut total_ms: u64 = 0;
        let mut last_rank = usize::MAX;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(format!("invalid duration {text:?}: expected a number at {rest:?}"));
            }
            let number: u64 =
                rest[..digits].parse().map_err(|_| format!("invalid duration {text:?}: number too large"))?;
            rest = &rest[digits..];
            let (rank, (unit, factor)) = UNITS
                .iter()
                .enumerate()
                .find(|(_, (u, _))| rest.starts_with(u) && !(*u == "m" && rest.starts_with("ms")))
                .ok_or_else(|| format!("invalid duration {text:?}: unknown unit, use ms, s, m, h, d, w or y"))?;
            // "ms" sits before "m" in UNITS only for prefix matching; order by size.
            let size_rank = match *unit {
                "y" => 0,
                "w" => 1,
                "d" => 2,
                "h" => 3,
                "m" => 4,
                "s" => 5,
                _ => 6,
            };
            let _ = rank;
            if last_rank != usize::MAX && size_rank <= last_rank {
                return Err(format!("invalid duration {text:?}: units must go from largest to smallest, each once"));
            }
            last_rank = size_rank;
            total_ms = number
                .checked_mul(*factor)
                .and_then(|v| total_ms.checked_add(v))
                .ok_or_else(|| format!("invalid duration {text:?}: too large"))?;
            rest = &rest[unit.len()..];
        }
        Ok(Self(Duration::from_millis(total_ms)))
    }
}

impl fmt::Display for PromDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0.as_millis() as u64;
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, factor) in
            [("w", 7 * 86_400_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)]
        {
            if ms >= factor {
                write!(f, "{}{unit}", ms / factor)?;
                ms %= factor;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for PromDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        PromDuration::parse(&text).map_err(de::Error::custom)
    }
}

/// A byte size: a plain integer or one with a unit (`KiB`, `MiB`, `GiB`, `KB`, `MB`, `GB`, `B`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("invalid size {text:?}: expected a number, e.g. 64MiB"));
        }
        let number: u64 = text[..digits].parse().map_err(|_| format!("invalid size {text:?}: too large"))?;
        let factor: u64 = match text[digits..].trim() {
            "" | "B" => 1,
            "KB" | "kB" => 1000,
            "MB" => 1000 * 1000,
            "GB" => 1000 * 1000 * 1000,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            other => {
                return Err(format!(
                    "invalid size {text:?}: unknown unit {other:?}, use B, KiB, MiB, GiB, KB, MB or GB"
                ));
            }
        };
        number.checked_mul(factor).map(Self).ok_or_else(|| format!("invalid size {text:?}: too large"))
    }
}

impl fmt::Debug for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}B", self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(Self(n)),
            Raw::Text(t) => ByteSize::parse(&t).map_err(de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_durations() {
        assert_eq!(PromDuration::parse("15s").unwrap().0, Duration::from_secs(15));
        assert_eq!(PromDuration::parse("1m30s").unwrap().0, Duration::from_secs(90));
        assert_eq!(PromDuration::parse("500ms").unwrap().0, Duration::from_millis(500));
        assert_eq!(PromDuration::parse("2h").unwrap().0, Duration::from_secs(7200));
        assert_eq!(PromDuration::parse("1d").unwrap().0, Duration::from_secs(86400));
        assert_eq!(PromDuration::parse("0").unwrap().0, Duration::ZERO);
        assert_eq!(PromDuration::parse("1m500ms").unwrap().0, Duration::from_millis(60_500));
    }

    #[test]
    fn rejects_bad_durations() {
        for bad in ["", "15", "s", "1.5s", "15x", "30s1m", "1s1s", "-1s"] {
            assert!(PromDuration::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn formats_round_trip() {
        for text in ["15s", "1m30s", "500ms", "2h", "1w"] {
            assert_eq!(PromDuration::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn parses_byte_sizes() {
        assert_eq!(ByteSize::parse("64MiB").unwrap().0, 64 << 20);
        assert_eq!(ByteSize::parse("1000").unwrap().0, 1000);
        assert_eq!(ByteSize::parse("2 GB").unwrap().0, 2_000_000_000);
        assert!(ByteSize::parse("12 parsecs").is_err());
        assert!(ByteSize::parse("MiB").is_err());
    }

    proptest::proptest! {
        #[test]
        fn durations_round_trip_and_never_panic(ms in 0u64..10_000_000_000, junk in "\\PC{0,12}") {
            let d = PromDuration(Duration::from_millis(ms));
            proptest::prop_assert_eq!(PromDuration::parse(&d.to_string()), Ok(d));
            let _ = PromDuration::parse(&junk);
            let _ = ByteSize::parse(&junk);
        }
    }
}
