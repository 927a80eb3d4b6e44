//! `filefd`: allocated and maximum file handles from `/proc/sys/fs/file-nr`.

use super::Settings;
use crate::util::{CollectError, CollectResult, Skipped, gauge, parse_f64, read_text};
use wasmon_sdk::Family;

/// `allocated unused maximum` → (allocated, maximum).
pub fn parse(text: &str) -> Option<(f64, f64)> {
    let fields: Vec<f64> = text.split_whitespace().map(parse_f64).collect::<Option<_>>()?;
    match fields[..] {
        [allocated, _unused, maximum] => Some((allocated, maximum)),
        _ => None,
    }
}

pub fn collect(_: &Settings, _: &mut Skipped) -> CollectResult<Vec<Family>> {
    const PATH: &str = "/proc/sys/fs/file-nr";
    let text = read_text(PATH)?;
    let (allocated, maximum) =
        parse(&text).ok_or_else(|| CollectError::new(format!("{PATH}: unexpected content {text:?}")))?;
    let mut allocated_family = gauge("node_filefd_allocated", "File descriptor statistics: allocated.");
    allocated_family.sample(&[], allocated);
    let mut maximum_family = gauge("node_filefd_maximum", "File descriptor statistics: maximum.");
    maximum_family.sample(&[], maximum);
    Ok(vec![allocated_family, maximum_family])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_columns() {
        assert_eq!(parse("450\t0\t2466170\n"), Some((450.0, 2_466_170.0)));
        assert_eq!(parse("450 0"), None);
        assert_eq!(parse("a b c"), None);
    }
}
