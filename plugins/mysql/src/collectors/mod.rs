//! mysqld_exporter 0.14's default collectors, each a function from a SQL
//! session to metric families, named as the exporter's `--collect.*` flags.

pub mod global_status;
pub mod global_variables;
pub mod innodb_cmp;
pub mod query_response_time;
pub mod slave_status;

use crate::protocol::{ProtocolError, ResultSet, Session};
use std::collections::HashMap;
use wasmon_sdk::{Family, MetricKind};

/// Why a collector failed.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// The server refused a query, or the connection failed.
    #[error("{sql}: {source}")]
    Query {
        sql: String,
        #[source]
        source: ProtocolError,
    },
    /// The answer has a shape or value the collector cannot use.
    #[error("{sql}: {detail}")]
    Data { sql: String, detail: String },
}

/// Run `sql`, attaching it to any error.
pub fn query(session: &mut dyn Session, sql: &str) -> Result<ResultSet, CollectError> {
    session.query(sql).map_err(|source| CollectError::Query { sql: sql.to_string(), source })
}

/// A collector: the exporter's name (without `collect.`), the oldest server
/// version it runs on, and the function.
#[derive(Clone, Copy)]
pub struct Collector {
    pub name: &'static str,
    pub min_version: f64,
    pub collect: fn(&mut dyn Session, &mut Families) -> Result<(), CollectError>,
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// Every collector, in the order mysqld_exporter 0.14 sent their queries to
/// MariaDB 10.11 (captured with the general log).
pub const COLLECTORS: [Collector; 6] = [
    Collector { name: "info_schema.query_response_time", min_version: 5.5, collect: query_response_time::collect },
    Collector { name: "global_status", min_version: 5.1, collect: global_status::collect },
    Collector { name: "global_variables", min_version: 5.1, collect: global_variables::collect },
    Collector { name: "slave_status", min_version: 5.1, collect: slave_status::collect },
    Collector { name: "info_schema.innodb_cmp", min_version: 5.5, collect: innodb_cmp::collect_cmp },
    Collector { name: "info_schema.innodb_cmpmem", min_version: 5.5, collect: innodb_cmp::collect_cmpmem },
];

/// Families by name, in the order first seen. Several rows feed one family
/// (every `Com_*` status into `mysql_global_status_commands_total`).
#[derive(Debug, Default)]
pub struct Families {
    families: Vec<Family>,
    index: HashMap<String, usize>,
}

impl Families {
    /// The family `name`, created with `help` and `kind` if new.
    pub fn get(&mut self, name: &str, help: &str, kind: MetricKind) -> &mut Family {
        let next = self.families.len();
        let i = *self.index.entry(name.to_string()).or_insert(next);
        if i == next {
            self.families.push(Family::new(name, help, kind));
        }
        &mut self.families[i]
    }

    /// Add an unlabelled sample, or a labelled one with `labels`.
    pub fn add(&mut self, name: &str, help: &str, kind: MetricKind, labels: &[(&str, &str)], value: f64) {
        self.get(name, help, kind).sample(labels, value);
    }

    /// Add a whole family, replacing one of the same name.
    pub fn insert(&mut self, family: Family) {
        match self.index.get(family.name()) {
            Some(&i) => self.families[i] = family,
            None => {
                self.index.insert(family.name().to_string(), self.families.len());
                self.families.push(family);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.families.len()
    }

    pub fn is_empty(&self) -> bool {
        self.families.is_empty()
    }

    pub fn into_vec(self) -> Vec<Family> {
        self.families
    }
}

/// The value of column `index` of a row of `rs` as text, NULL being an error
/// (Go's `Scan` into a string refuses NULL).
pub(crate) fn text<'a>(
    sql: &str,
    rs: &ResultSet,
    row: &'a [Option<String>],
    index: usize,
) -> Result<&'a str, CollectError> {
    match row.get(index) {
        Some(Some(v)) => Ok(v),
        Some(None) => Err(CollectError::Data {
            sql: sql.to_string(),
            detail: format!("column {} is NULL", rs.columns.get(index).map_or("?", String::as_str)),
        }),
        None => Err(CollectError::Data {
            sql: sql.to_string(),
            detail: format!("a row has {} values, expected at least {}", row.len(), index + 1),
        }),
    }
}

/// The value of column `index` as a float, as Go's `Scan` into `float64` reads it.
pub(crate) fn float(sql: &str, rs: &ResultSet, row: &[Option<String>], index: usize) -> Result<f64, CollectError> {
    let value = text(sql, rs, row, index)?;
    crate::values::go_parse_float(value).ok_or_else(|| CollectError::Data {
        sql: sql.to_string(),
        detail: format!("column {}: {value:?} is not a number", rs.columns.get(index).map_or("?", String::as_str)),
    })
}

/// An error unless the result has exactly `n` columns (Go's `Scan` needs as
/// many destinations as columns).
pub(crate) fn expect_columns(sql: &str, rs: &ResultSet, n: usize) -> Result<(), CollectError> {
    if rs.columns.len() == n {
        Ok(())
    } else {
        Err(CollectError::Data { sql: sql.to_string(), detail: format!("{} columns, expected {n}", rs.columns.len()) })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::fmt::Write;
    use wasmon_sdk::MetricValue;

    /// A result set of non-NULL text values.
    pub fn result(columns: &[&str], rows: &[&[&str]]) -> ResultSet {
        ResultSet {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: rows.iter().map(|r| r.iter().map(|v| Some(v.to_string())).collect()).collect(),
        }
    }

    /// One line per sample: `name kind [label=value,...] value`.
    pub fn render(families: Families) -> String {
        let mut out = String::new();
        for family in families.into_vec() {
            let family = family.build();
            let kind = match family.kind {
                MetricKind::Counter => "counter",
                MetricKind::Gauge => "gauge",
                MetricKind::Unknown => "untyped",
                MetricKind::Histogram => "histogram",
                _ => "other",
            };
            for m in &family.metrics {
                let labels: Vec<String> = m.labels.iter().map(|l| format!("{}={}", l.name, l.value)).collect();
                let value = match &m.value {
                    MetricValue::Counter(v) | MetricValue::Gauge(v) => v.to_string(),
                    MetricValue::Histogram(h) => {
                        let buckets: Vec<String> =
                            h.buckets.iter().map(|b| format!("{}:{}", b.upper_bound, b.count)).collect();
                        format!("{} sum={} count={}", buckets.join(" "), h.sum, h.count)
                    }
                    other => format!("{other:?}"),
                };
                writeln!(out, "{} {kind} [{}] {value}", family.name, labels.join(",")).unwrap();
            }
        }
        out
    }
}
