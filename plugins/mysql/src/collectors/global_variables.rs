//! `collect.global_variables`: `SHOW GLOBAL VARIABLES`.
//!
//! Every numeric (or `ON`/`OFF`) variable becomes a gauge
//! `mysql_global_variables_<name>`; a few text variables become info-style
//! families: `mysql_version_info`, `mysql_transaction_isolation` and, on
//! Galera (and on MariaDB, which always has `wsrep_cluster_name`),
//! `mysql_galera_variables_info` and `mysql_galera_gcache_size_bytes`.

use super::{CollectError, Families, expect_columns, query, text};
use crate::protocol::{ResultSet, Session};
use crate::values::{metric_name_part, parse_status};
use wasmon_sdk::MetricKind;

pub const QUERY: &str = "SHOW GLOBAL VARIABLES";

pub fn collect(session: &mut dyn Session, out: &mut Families) -> Result<(), CollectError> {
    let rs = query(session, QUERY)?;
    families(&rs, out)
}

/// Text variables the exporter keeps (only when they are not numbers).
#[derive(Debug, Default)]
struct TextItems {
    innodb_version: String,
    version: String,
    version_comment: String,
    wsrep_cluster_name: String,
    wsrep_provider_options: String,
    tx_isolation: String,
    transaction_isolation: String,
}

impl TextItems {
    fn slot(&mut self, name: &str) -> Option<&mut String> {
        Some(match name {
            "innodb_version" => &mut self.innodb_version,
            "version" => &mut self.version,
            "version_comment" => &mut self.version_comment,
            "wsrep_cluster_name" => &mut self.wsrep_cluster_name,
            "wsrep_provider_options" => &mut self.wsrep_provider_options,
            "tx_isolation" => &mut self.tx_isolation,
            "transaction_isolation" => &mut self.transaction_isolation,
            _ => return None,
        })
    }
}

/// The families of one `SHOW GLOBAL VARIABLES` result.
pub fn families(rs: &ResultSet, out: &mut Families) -> Result<(), CollectError> {
    expect_columns(QUERY, rs, 2)?;
    let mut items = TextItems::default();
    for row in &rs.rows {
        let name = metric_name_part(text(QUERY, rs, row, 0)?);
        let Some(raw) = &row[1] else { continue };
        if let Some(value) = parse_status(raw) {
            out.add(
                &format!("mysql_global_variables_{name}"),
                "Generic gauge metric from SHOW GLOBAL VARIABLES.",
                MetricKind::Gauge,
                &[],
                value,
            );
        } else if let Some(slot) = items.slot(&name) {
            *slot = raw.clone();
        }
    }

    out.add(
        "mysql_version_info",
        "MySQL version and distribution.",
        MetricKind::Gauge,
        &[
            ("innodb_version", &items.innodb_version),
            ("version", &items.version),
            ("version_comment", &items.version_comment),
        ],
        1.0,
    );
    // MySQL 8 and MariaDB 11 call it transaction_isolation, older servers tx_isolation.
    let level = if items.transaction_isolation.is_empty() { &items.tx_isolation } else { &items.transaction_isolation };
    if !level.is_empty() {
        out.add(
            "mysql_transaction_isolation",
            "MySQL transaction isolation.",
            MetricKind::Gauge,
            &[("level", level)],
            1.0,
        );
    }
    if !items.wsrep_cluster_name.is_empty() {
        out.add(
            "mysql_galera_variables_info",
            "PXC/Galera variables information.",
            MetricKind::Gauge,
            &[("wsrep_cluster_name", &items.wsrep_cluster_name)],
            1.0,
        );
    }
    if !items.wsrep_provider_options.is_empty() {
        out.add(
            "mysql_galera_gcache_size_bytes",
            "PXC/Galera gcache size.",
            MetricKind::Gauge,
            &[],
            gcache_size_bytes(&items.wsrep_provider_options),
        );
    }
    Ok(())
}

/// `gcache.size = <digits>[M|G];` in `wsrep_provider_options`, in bytes; 0
/// when absent. Like the exporter's regular expression, the `.` matches any
/// character and other suffixes (`K`) do not match.
pub fn gcache_size_bytes(options: &str) -> f64 {
    let bytes = options.as_bytes();
    for start in 0..bytes.len() {
        let rest = &bytes[start..];
        if !(rest.starts_with(b"gcache") && rest.len() > 6 && rest[7..].starts_with(b"size = ")) {
            continue;
        }
        let number = &rest[14..];
        let digits = number.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            continue;
        }
        let (unit, after) = match number.get(digits) {
            Some(b'M') => (1024.0 * 1024.0, digits + 1),
            Some(b'G') => (1024.0 * 1024.0 * 1024.0, digits + 1),
            _ => (1.0, digits),
        };
        if number.get(after) != Some(&b';') {
            continue;
        }
        let value: f64 = std::str::from_utf8(&number[..digits]).ok().and_then(|d| d.parse().ok()).unwrap_or(0.0);
        return value * unit;
    }
    0.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::tests::{render, result};

    #[test]
    fn numbers_words_and_info_families() {
        let rs = result(
            &["Variable_name", "Value"],
            &[
                &["autocommit", "ON"],
                &["big_tables", "OFF"],
                &["innodb_buffer_pool_size", "134217728"],
                &["long_query_time", "10.000000"],
                &["log_bin_basename", ""],
                &["tx_isolation", "REPEATABLE-READ"],
                &["version", "10.11.19-MariaDB-0+deb12u1"],
                &["version_comment", "Debian 12"],
                &["wsrep_cluster_name", "my_wsrep_cluster"],
                &["wsrep_provider_options", ""],
            ],
        );
        let mut out = Families::default();
        families(&rs, &mut out).unwrap();
        assert_eq!(
            render(out),
            "\
mysql_global_variables_autocommit gauge [] 1
mysql_global_variables_big_tables gauge [] 0
mysql_global_variables_innodb_buffer_pool_size gauge [] 134217728
mysql_global_variables_long_query_time gauge [] 10
mysql_version_info gauge [innodb_version=,version=10.11.19-MariaDB-0+deb12u1,version_comment=Debian 12] 1
mysql_transaction_isolation gauge [level=REPEATABLE-READ] 1
mysql_galera_variables_info gauge [wsrep_cluster_name=my_wsrep_cluster] 1
"
        );
    }

    #[test]
    fn transaction_isolation_wins_over_tx_isolation() {
        let rs = result(
            &["Variable_name", "Value"],
            &[&["transaction_isolation", "READ-COMMITTED"], &["tx_isolation", "SERIALIZABLE"]],
        );
        let mut out = Families::default();
        families(&rs, &mut out).unwrap();
        assert!(render(out).contains("mysql_transaction_isolation gauge [level=READ-COMMITTED] 1"));
    }

    #[test]
    fn gcache_size() {
        assert_eq!(gcache_size_bytes("base_port = 4567; gcache.size = 128M; gcache.page_size = 128M;"), 134217728.0);
        assert_eq!(gcache_size_bytes("gcache.size = 2G;"), 2147483648.0);
        assert_eq!(gcache_size_bytes("gcache_size = 1000;"), 1000.0);
        assert_eq!(gcache_size_bytes("gcache.size = 10K; gcache.size = 5;"), 5.0);
        assert_eq!(gcache_size_bytes("gcache.dir = /var; gcache.size"), 0.0);
        assert_eq!(gcache_size_bytes(""), 0.0);
    }
}
