//! `os`: `node_os_info` and `node_os_version` from os-release(5).

use super::Settings;
use crate::util::{CollectResult, Skipped, gauge, read_text};
use std::collections::BTreeMap;
use wasmon_sdk::Family;

/// os-release keys that label `node_os_info`, as node_exporter names them.
const INFO_KEYS: [(&str, &str); 12] = [
    ("build_id", "BUILD_ID"),
    ("id", "ID"),
    ("id_like", "ID_LIKE"),
    ("image_id", "IMAGE_ID"),
    ("image_version", "IMAGE_VERSION"),
    ("name", "NAME"),
    ("pretty_name", "PRETTY_NAME"),
    ("variant", "VARIANT"),
    ("variant_id", "VARIANT_ID"),
    ("version", "VERSION"),
    ("version_codename", "VERSION_CODENAME"),
    ("version_id", "VERSION_ID"),
];

/// Shell-style `KEY=value` lines; values may be quoted, and inside double
/// quotes `\"`, `\\`, `\$` and `` \` `` are escapes.
pub fn parse(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') {
            continue;
        }
        let Some((key, raw)) = line.split_once('=') else {
            continue;
        };
        out.insert(key.trim().to_string(), unquote(raw.trim()));
    }
    out
}

fn unquote(raw: &str) -> String {
    if let Some(inner) = raw.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        return inner.to_string();
    }
    let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) else {
        return raw.to_string();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match (c, chars.clone().next()) {
            ('\\', Some(next @ ('"' | '\\' | '$' | '`'))) => {
                out.push(next);
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

/// The `major.minor` number at the start of VERSION_ID (node_exporter's
/// `^[0-9]+\.?[0-9]*`), or 0.
pub fn version_number(version_id: &str) -> f64 {
    let int_end = version_id.find(|c: char| !c.is_ascii_digit()).unwrap_or(version_id.len());
    if int_end == 0 {
        return 0.0;
    }
    let mut end = int_end;
    if version_id[end..].starts_with('.') {
        end += 1;
        end += version_id[end..].find(|c: char| !c.is_ascii_digit()).unwrap_or(version_id.len() - end);
    }
    version_id[..end].trim_end_matches('.').parse().unwrap_or(0.0)
}

pub fn families(release: &BTreeMap<String, String>) -> Vec<Family> {
    let get = |key: &str| release.get(key).map(String::as_str).unwrap_or("");
    let mut info = gauge(
        "node_os_info",
        "A metric with a constant '1' value labeled by build_id, id, id_like, image_id, image_version, name, pretty_name, variant, variant_id, version, version_codename, version_id.",
    );
    let labels: Vec<(&str, &str)> = INFO_KEYS.iter().map(|(label, key)| (*label, get(key))).collect();
    info.sample(&labels, 1.0);
    let mut version = gauge("node_os_version", "Metric containing the major.minor part of the OS version.");
    version.sample(
        &[("id", get("ID")), ("id_like", get("ID_LIKE")), ("name", get("NAME"))],
        version_number(get("VERSION_ID")),
    );
    vec![info, version]
}

pub fn collect(_: &Settings, _: &mut Skipped) -> CollectResult<Vec<Family>> {
    let text = read_text("/etc/os-release").or_else(|_| read_text("/usr/lib/os-release"))?;
    Ok(families(&parse(&text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_release() {
        let text = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n\
# comment\nVERSION_CODENAME=bookworm\nID=debian\nQUOTED=\"a \\\"b\\\" c\"\nSINGLE='x y'\n";
        let release = parse(text);
        assert_eq!(release["NAME"], "Debian GNU/Linux");
        assert_eq!(release["VERSION_CODENAME"], "bookworm");
        assert_eq!(release["QUOTED"], "a \"b\" c");
        assert_eq!(release["SINGLE"], "x y");
        let families: Vec<_> = families(&release).into_iter().map(Family::build).collect();
        assert_eq!(families[0].metrics[0].labels.len(), 12);
        assert_eq!(families[1].metrics[0].value, wasmon_sdk::MetricValue::Gauge(12.0));
    }

    #[test]
    fn version_numbers() {
        assert_eq!(version_number("12"), 12.0);
        assert_eq!(version_number("22.04"), 22.04);
        assert_eq!(version_number("9.3.1"), 9.3);
        assert_eq!(version_number("39."), 39.0);
        assert_eq!(version_number("rolling"), 0.0);
        assert_eq!(version_number(""), 0.0);
    }
}
