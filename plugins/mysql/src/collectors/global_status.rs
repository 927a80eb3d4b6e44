//! `collect.global_status`: `SHOW GLOBAL STATUS`.
//!
//! Most variables become untyped `mysql_global_status_<name>`; six groups are
//! folded into labelled families (`Com_select` → `commands_total{command="select"}`).

use super::{CollectError, Families, expect_columns, query, text};
use crate::protocol::{ResultSet, Session};
use crate::values::{go_parse_float, metric_name_part, parse_status};
use wasmon_sdk::MetricKind;

pub const QUERY: &str = "SHOW GLOBAL STATUS";

const PREFIX: &str = "mysql_global_status_";

/// Status prefixes folded into one family each, with the label for the rest of the name.
const GROUPS: [(&str, &str, &str, &str); 6] = [
    ("com", "commands_total", "command", "Total number of executed MySQL commands."),
    ("handler", "handlers_total", "handler", "Total number of executed MySQL handlers."),
    ("connection_errors", "connection_errors_total", "error", "Total number of MySQL connection errors."),
    (
        "innodb_buffer_pool_pages",
        "buffer_pool_page_changes_total",
        "operation",
        "Innodb buffer pool page state changes.",
    ),
    ("innodb_rows", "innodb_row_ops_total", "operation", "Total number of MySQL InnoDB row operations."),
    (
        "performance_schema",
        "performance_schema_lost_total",
        "instrumentation",
        "Total number of MySQL instrumentations that could not be loaded or created due to memory constraints.",
    ),
];

pub fn collect(session: &mut dyn Session, out: &mut Families) -> Result<(), CollectError> {
    let rs = query(session, QUERY)?;
    families(&rs, out)
}

/// The families of one `SHOW GLOBAL STATUS` result.
pub fn families(rs: &ResultSet, out: &mut Families) -> Result<(), CollectError> {
    expect_columns(QUERY, rs, 2)?;
    let mut galera = Galera::default();
    for row in &rs.rows {
        let name = metric_name_part(text(QUERY, rs, row, 0)?);
        let Some(raw) = &row[1] else { continue };
        let Some(value) = parse_status(raw) else {
            galera.remember(&name, raw);
            continue;
        };
        let group =
            GROUPS.iter().find_map(|g| name.strip_prefix(g.0).and_then(|r| r.strip_prefix('_')).map(|r| (g, r)));
        let Some((&(prefix, family, label, help), rest)) = group else {
            out.add(
                &format!("{PREFIX}{name}"),
                "Generic metric from SHOW GLOBAL STATUS.",
                MetricKind::Unknown,
                &[],
                value,
            );
            continue;
        };
        if prefix == "innodb_buffer_pool_pages" {
            match rest {
                "data" | "free" | "misc" | "old" => {
                    let help = "Innodb buffer pool pages by state.";
                    out.add(&format!("{PREFIX}buffer_pool_pages"), help, MetricKind::Gauge, &[("state", rest)], value);
                    continue;
                }
                "dirty" => {
                    let help = "Innodb buffer pool dirty pages.";
                    out.add(&format!("{PREFIX}buffer_pool_dirty_pages"), help, MetricKind::Gauge, &[], value);
                    continue;
                }
                // The sum of the states above; the exporter leaves it out.
                "total" => continue,
                _ => {}
            }
        }
        out.add(&format!("{PREFIX}{family}"), help, MetricKind::Counter, &[(label, rest)], value);
    }
    galera.families(out);
    Ok(())
}

/// Galera's text status values, reported as info and latency gauges.
#[derive(Debug, Default)]
struct Galera {
    local_state_uuid: String,
    cluster_state_uuid: String,
    provider_version: String,
    evs_repl_latency: String,
}

impl Galera {
    fn remember(&mut self, name: &str, raw: &str) {
        let slot = match name {
            "wsrep_local_state_uuid" => &mut self.local_state_uuid,
            "wsrep_cluster_state_uuid" => &mut self.cluster_state_uuid,
            "wsrep_provider_version" => &mut self.provider_version,
            "wsrep_evs_repl_latency" => &mut self.evs_repl_latency,
            _ => return,
        };
        *slot = raw.to_string();
    }

    fn families(&self, out: &mut Families) {
        if !self.local_state_uuid.is_empty() {
            out.add(
                "mysql_galera_status_info",
                "PXC/Galera status information.",
                MetricKind::Gauge,
                &[
                    ("wsrep_local_state_uuid", &self.local_state_uuid),
                    ("wsrep_cluster_state_uuid", &self.cluster_state_uuid),
                    ("wsrep_provider_version", &self.provider_version),
                ],
                1.0,
            );
        }
        // `min/avg/max/stdev/sample_size`, all five numbers or nothing.
        let parts: Vec<&str> = self.evs_repl_latency.split('/').collect();
        let numbers: Option<Vec<f64>> = parts.iter().map(|p| go_parse_float(p)).collect();
        if let Some(numbers) = numbers.filter(|n| n.len() == 5) {
            let names = [
                ("min_seconds", "PXC/Galera group communication latency. Min value."),
                ("avg_seconds", "PXC/Galera group communication latency. Avg value."),
                ("max_seconds", "PXC/Galera group communication latency. Max value."),
                ("stdev", "PXC/Galera group communication latency. Standard Deviation."),
                ("sample_size", "PXC/Galera group communication latency. Sample Size."),
            ];
            for ((name, help), value) in names.iter().zip(numbers) {
                out.add(&format!("mysql_galera_evs_repl_latency_{name}"), help, MetricKind::Gauge, &[], value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::tests::{render, result};

    #[test]
    fn groups_and_generic_values() {
        let rs = result(
            &["Variable_name", "Value"],
            &[
                &["Aborted_clients", "3"],
                &["Com_select", "12"],
                &["Com_stmt_execute", "1"],
                &["Compression", "OFF"],
                &["Connection_errors_accept", "0"],
                &["Handler_read_first", "7"],
                &["Innodb_buffer_pool_pages_data", "296"],
                &["Innodb_buffer_pool_pages_dirty", "2"],
                &["Innodb_buffer_pool_pages_total", "8112"],
                &["Innodb_buffer_pool_pages_flushed", "40"],
                &["Innodb_rows_read", "9"],
                &["Performance_schema_accounts_lost", "0"],
                &["Rpl_status", "AUTH_MASTER"],
                &["Ssl_version", ""],
            ],
        );
        let mut out = Families::default();
        families(&rs, &mut out).unwrap();
        assert_eq!(
            render(out),
            "\
mysql_global_status_aborted_clients untyped [] 3
mysql_global_status_commands_total counter [command=select] 12
mysql_global_status_commands_total counter [command=stmt_execute] 1
mysql_global_status_compression untyped [] 0
mysql_global_status_connection_errors_total counter [error=accept] 0
mysql_global_status_handlers_total counter [handler=read_first] 7
mysql_global_status_buffer_pool_pages gauge [state=data] 296
mysql_global_status_buffer_pool_dirty_pages gauge [] 2
mysql_global_status_buffer_pool_page_changes_total counter [operation=flushed] 40
mysql_global_status_innodb_row_ops_total counter [operation=read] 9
mysql_global_status_performance_schema_lost_total counter [instrumentation=accounts_lost] 0
"
        );
    }

    #[test]
    fn galera_text_values() {
        let rs = result(
            &["Variable_name", "Value"],
            &[
                &["wsrep_local_state_uuid", "a1-b2"],
                &["wsrep_cluster_state_uuid", "c3"],
                &["wsrep_provider_version", "26.4.9(r1)"],
                &["wsrep_evs_repl_latency", "0.0001/0.0002/0.0003/0.00004/12"],
                &["wsrep_cluster_status", "Primary"],
            ],
        );
        let mut out = Families::default();
        families(&rs, &mut out).unwrap();
        assert_eq!(
            render(out),
            "\
mysql_global_status_wsrep_cluster_status untyped [] 1
mysql_galera_status_info gauge [wsrep_local_state_uuid=a1-b2,wsrep_cluster_state_uuid=c3,wsrep_provider_version=26.4.9(r1)] 1
mysql_galera_evs_repl_latency_min_seconds gauge [] 0.0001
mysql_galera_evs_repl_latency_avg_seconds gauge [] 0.0002
mysql_galera_evs_repl_latency_max_seconds gauge [] 0.0003
mysql_galera_evs_repl_latency_stdev gauge [] 0.00004
mysql_galera_evs_repl_latency_sample_size gauge [] 12
"
        );
    }

    #[test]
    fn wrong_shape_is_an_error() {
        let e = families(&result(&["a"], &[]), &mut Families::default()).unwrap_err();
        assert_eq!(e.to_string(), "SHOW GLOBAL STATUS: 1 columns, expected 2");
    }
}
