//! Just enough of the TZif format (RFC 8536, `/etc/localtime`) to tell the
//! zone's abbreviation and UTC offset now, which is what Go's
//! `time.Now().Zone()` reports to node_exporter.
//!
//! Limitation, on purpose: past the last transition in the file, the footer's
//! POSIX TZ rule is only used when it has no daylight-saving part (`UTC0`,
//! `JST-9`); for a DST rule the last transition's type is kept. zic's "fat"
//! files (Debian, Ubuntu, RHEL) list transitions up to 2037, so this only
//! matters for "slim" files on zones with DST.

/// A zone as seen at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    pub abbreviation: String,
    pub offset_seconds: i64,
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let slice = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(slice)
    }

    fn be_u32(&mut self) -> Option<u32> {
        self.take(4)?.try_into().ok().map(u32::from_be_bytes)
    }
}

struct Header {
    version: u8,
    isutcnt: usize,
    isstdcnt: usize,
    leapcnt: usize,
    timecnt: usize,
    typecnt: usize,
    charcnt: usize,
}

fn header(r: &mut Reader<'_>) -> Option<Header> {
    if r.take(4)? != b"TZif" {
        return None;
    }
    let version = r.take(1)?[0];
    r.take(15)?;
    // No table can have more entries than the file has bytes; bounding the
    // counts so keeps every size computed from them far from overflow, even
    // with wasm32's 32-bit usize.
    let limit = r.data.len();
    let mut count = || r.be_u32().and_then(|n| usize::try_from(n).ok()).filter(|&n| n <= limit);
    Some(Header {
        version,
        isutcnt: count()?,
        isstdcnt: count()?,
        leapcnt: count()?,
        timecnt: count()?,
        typecnt: count()?,
        charcnt: count()?,
    })
}

/// The zone in effect at `now` (Unix seconds), or `None` if `data` is not a
/// TZif file this reader understands.
pub fn zone_at(data: &[u8], now: i64) -> Option<Zone> {
    let mut r = Reader { data, pos: 0 };
    let mut h = header(&mut r)?;
    let mut time_size = 4;
    if h.version >= b'2' {
        // Skip the 32-bit block; the 64-bit one after it is authoritative.
        let v1_len = h.timecnt * 5 + h.typecnt * 6 + h.charcnt + h.leapcnt * 8 + h.isstdcnt + h.isutcnt;
        r.take(v1_len)?;
        h = header(&mut r)?;
        time_size = 8;
    }
    let times: Vec<i64> = r
        .take(h.timecnt * time_size)?
        .chunks(time_size)
        .map(|c| match c.len() {
            8 => i64::from_be_bytes(c.try_into().unwrap_or([0; 8])),
            _ => i64::from(i32::from_be_bytes(c.try_into().unwrap_or([0; 4]))),
        })
        .collect();
    let indices = r.take(h.timecnt)?.to_vec();
    let types: Vec<(i64, usize)> = r
        .take(h.typecnt * 6)?
        .chunks(6)
        .map(|t| (i64::from(i32::from_be_bytes([t[0], t[1], t[2], t[3]])), usize::from(t[5])))
        .collect();
    let chars = r.take(h.charcnt)?;
    let footer = if time_size == 8 {
        r.take(h.leapcnt * 12 + h.isstdcnt + h.isutcnt)?;
        footer_rule(&r.data[r.pos..])
    } else {
        None
    };

    let abbreviation_at = |start: usize| {
        let rest = chars.get(start..).unwrap_or_default();
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        String::from_utf8_lossy(&rest[..end]).into_owned()
    };
    let zone_of_type = |index: usize| {
        types.get(index).map(|&(offset, abbr)| Zone { abbreviation: abbreviation_at(abbr), offset_seconds: offset })
    };

    let past_last = times.last().is_none_or(|&last| now >= last);
    if past_last && let Some(zone) = footer {
        return Some(zone);
    }
    match times.iter().rposition(|&t| t <= now) {
        Some(i) => zone_of_type(usize::from(*indices.get(i)?)),
        // Before the first transition (or none at all): the first type.
        None => zone_of_type(0),
    }
}

/// The footer's POSIX TZ string, when it names a single fixed offset.
fn footer_rule(rest: &[u8]) -> Option<Zone> {
    let text = std::str::from_utf8(rest).ok()?;
    let rule = text.strip_prefix('\n')?.split('\n').next()?;
    let (abbreviation, after_name) = if let Some(quoted) = rule.strip_prefix('<') {
        let (name, after) = quoted.split_once('>')?;
        (name, after)
    } else {
        let end = rule.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rule.len());
        rule.split_at(end)
    };
    if abbreviation.is_empty() {
        return None;
    }
    let offset_end =
        after_name.find(|c: char| !(c.is_ascii_digit() || matches!(c, '+' | '-' | ':'))).unwrap_or(after_name.len());
    if offset_end != after_name.len() {
        return None; // a daylight-saving part follows
    }
    // POSIX offsets are west-positive: "JST-9" is UTC+9.
    Some(Zone { abbreviation: abbreviation.to_string(), offset_seconds: posix_offset(after_name)?.checked_neg()? })
}

fn posix_offset(text: &str) -> Option<i64> {
    let (sign, digits) = match text.as_bytes().first()? {
        b'-' => (-1, &text[1..]),
        b'+' => (1, &text[1..]),
        _ => (1, text),
    };
    let mut parts = digits.split(':').map(|p| p.parse::<i64>().ok());
    let hours = parts.next()??;
    let minutes = parts.next().flatten().unwrap_or(0);
    let seconds = parts.next().flatten().unwrap_or(0);
    // Checked: the footer is file content, and a silly hour count must not
    // overflow. Real offsets are within ±25 hours.
    let total = hours.checked_mul(3600)?.checked_add(minutes.checked_mul(60)?)?.checked_add(seconds)?;
    Some(sign * total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TZif v2 file: `types` as (offset, isdst, abbreviation index),
    /// transitions as (time, type index).
    fn build(transitions: &[(i64, u8)], types: &[(i32, u8)], chars: &[u8], footer: &str) -> Vec<u8> {
        let header = |out: &mut Vec<u8>| {
            out.extend_from_slice(b"TZif2");
            out.extend_from_slice(&[0; 15]);
            for n in [0, 0, 0, transitions.len(), types.len(), chars.len()] {
                out.extend_from_slice(&(n as u32).to_be_bytes());
            }
        };
        let mut out = Vec::new();
        header(&mut out);
        for (t, _) in transitions {
            out.extend_from_slice(&(*t as i32).to_be_bytes());
        }
        let body = |out: &mut Vec<u8>| {
            out.extend(transitions.iter().map(|(_, i)| *i));
            for (offset, abbr) in types {
                out.extend_from_slice(&offset.to_be_bytes());
                out.extend_from_slice(&[0, *abbr]);
            }
            out.extend_from_slice(chars);
        };
        body(&mut out);
        header(&mut out);
        for (t, _) in transitions {
            out.extend_from_slice(&t.to_be_bytes());
        }
        body(&mut out);
        out.extend_from_slice(format!("\n{footer}\n").as_bytes());
        out
    }

    #[test]
    fn utc_without_transitions() {
        let data = build(&[], &[(0, 0)], b"UTC\0", "UTC0");
        assert_eq!(zone_at(&data, 1_700_000_000), Some(Zone { abbreviation: "UTC".into(), offset_seconds: 0 }));
    }

    #[test]
    fn transitions_pick_the_type_in_force() {
        // CET/CEST-like: winter at t=0, summer from t=100, winter from t=200.
        let data =
            build(&[(0, 0), (100, 1), (200, 0)], &[(3600, 0), (7200, 4)], b"CET\0CEST\0", "CET-1CEST,M3.5.0,M10.5.0/3");
        assert_eq!(zone_at(&data, 150).map(|z| z.offset_seconds), Some(7200));
        assert_eq!(zone_at(&data, 150).map(|z| z.abbreviation), Some("CEST".into()));
        assert_eq!(zone_at(&data, 250).map(|z| z.offset_seconds), Some(3600));
    }

    #[test]
    fn fixed_footer_after_the_last_transition() {
        let data = build(&[(0, 0)], &[(32400, 0)], b"JST\0", "JST-9");
        assert_eq!(zone_at(&data, 10), Some(Zone { abbreviation: "JST".into(), offset_seconds: 32400 }));
        let quoted = build(&[], &[(0, 0)], b"X\0", "<+0530>-5:30");
        assert_eq!(zone_at(&quoted, 10).map(|z| z.offset_seconds), Some(19800));
    }

    #[test]
    fn garbage_is_rejected() {
        assert_eq!(zone_at(b"not a zone file", 0), None);
        assert_eq!(zone_at(b"TZif2", 0), None);
    }
}
