//! `loadavg`: the 1, 5 and 15 minute load averages from `/proc/loadavg`.

use super::Settings;
use crate::util::{CollectError, CollectResult, Skipped, gauge, parse_f64, read_text};
use wasmon_sdk::Family;

/// The three load averages, or `None` when the file does not start with them.
pub fn parse(text: &str) -> Option<[f64; 3]> {
    let mut fields = text.split_whitespace().map(parse_f64);
    Some([fields.next()??, fields.next()??, fields.next()??])
}

pub fn families(loads: [f64; 3]) -> Vec<Family> {
    [("node_load1", "1m load average."), ("node_load5", "5m load average."), ("node_load15", "15m load average.")]
        .iter()
        .zip(loads)
        .map(|((name, help), value)| {
            let mut family = gauge(name, help);
            family.sample(&[], value);
            family
        })
        .collect()
}

pub fn collect(_: &Settings, _: &mut Skipped) -> CollectResult<Vec<Family>> {
    let text = read_text("/proc/loadavg")?;
    let loads = parse(&text).ok_or_else(|| CollectError::new(format!("/proc/loadavg: unexpected content {text:?}")))?;
    Ok(families(loads))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_averages() {
        assert_eq!(parse("0.15 0.58 0.45 1/123 4567\n"), Some([0.15, 0.58, 0.45]));
        assert_eq!(parse("0.15 x 0.45"), None);
        assert_eq!(parse(""), None);
        let names: Vec<_> = families([1.0, 2.0, 3.0]).into_iter().map(|f| f.build().name).collect();
        assert_eq!(names, ["node_load1", "node_load5", "node_load15"]);
    }
}
