//! `collect.slave_status`: `SHOW ALL SLAVES STATUS` (MariaDB) or
//! `SHOW SLAVE STATUS` (MySQL, Percona), one untyped family per numeric
//! column, `mysql_slave_status_<column>{master_host,master_uuid,channel_name,connection_name}`.

use super::{CollectError, Families, query};
use crate::protocol::{ResultSet, Session};
use crate::values::parse_status;
use wasmon_sdk::MetricKind;

/// Tried in this order, like the exporter: each statement plain, then with
/// the lock-free suffixes of Percona and MySQL 5.7, then plain once more.
const STATEMENTS: [&str; 2] = ["SHOW ALL SLAVES STATUS", "SHOW SLAVE STATUS"];
const SUFFIXES: [&str; 3] = [" NONBLOCKING", " NOLOCK", ""];

const LABELS: [&str; 4] = ["master_host", "master_uuid", "channel_name", "connection_name"];

pub fn collect(session: &mut dyn Session, out: &mut Families) -> Result<(), CollectError> {
    let rs = first_answer(session)?;
    families(&rs, out);
    Ok(())
}

/// The first statement the server accepts; the last error when none is.
fn first_answer(session: &mut dyn Session) -> Result<ResultSet, CollectError> {
    let mut last_error = None;
    for statement in STATEMENTS {
        match query(session, statement) {
            Ok(rs) => return Ok(rs),
            Err(e) => last_error = Some(e),
        }
        for suffix in SUFFIXES {
            match query(session, &format!("{statement}{suffix}")) {
                Ok(rs) => return Ok(rs),
                Err(e) => last_error = Some(e),
            }
        }
    }
    Err(last_error.unwrap_or_else(|| CollectError::Data {
        sql: STATEMENTS[0].to_string(),
        detail: "no statement was tried".into(),
    }))
}

/// The families of one slave status result: a row per replication channel.
pub fn families(rs: &ResultSet, out: &mut Families) {
    let column = |row: &[Option<String>], name: &str| -> String {
        rs.column(name).and_then(|i| row.get(i).cloned().flatten()).unwrap_or_default()
    };
    for row in &rs.rows {
        // MySQL and Percona name channels Channel_Name, MariaDB Connection_name.
        let label_values = [
            column(row, "Master_Host"),
            column(row, "Master_UUID"),
            column(row, "Channel_Name"),
            column(row, "Connection_name"),
        ];
        let labels: Vec<(&str, &str)> = LABELS.iter().copied().zip(label_values.iter().map(String::as_str)).collect();
        for (name, value) in rs.columns.iter().zip(row) {
            let Some(value) = value.as_deref().and_then(parse_status) else { continue };
            out.add(
                &format!("mysql_slave_status_{}", name.to_lowercase()),
                "Generic metric from SHOW SLAVE STATUS.",
                MetricKind::Unknown,
                &labels,
                value,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::tests::render;
    use crate::protocol::{ProtocolError, ServerError};

    /// Answers only `accepted`; refuses everything else with `error`, and logs every query.
    struct Picky {
        accepted: Option<&'static str>,
        error: ServerError,
        log: Vec<String>,
    }

    impl Session for Picky {
        fn query(&mut self, sql: &str) -> Result<ResultSet, ProtocolError> {
            self.log.push(sql.to_string());
            if Some(sql) == self.accepted {
                Ok(ResultSet { columns: vec!["Slave_IO_Running".into()], rows: vec![vec![Some("Yes".into())]] })
            } else {
                Err(ProtocolError::Server(self.error.clone()))
            }
        }
    }

    fn denied() -> ServerError {
        ServerError {
            code: 1227,
            state: "42000".into(),
            message:
                "Access denied; you need (at least one of) the SUPER, SLAVE MONITOR privilege(s) for this operation"
                    .into(),
        }
    }

    #[test]
    fn mariadb_answers_the_first_statement() {
        let mut s = Picky { accepted: Some("SHOW ALL SLAVES STATUS"), error: denied(), log: vec![] };
        let mut out = Families::default();
        collect(&mut s, &mut out).unwrap();
        assert_eq!(s.log, ["SHOW ALL SLAVES STATUS"]);
        assert_eq!(
            render(out),
            "mysql_slave_status_slave_io_running untyped [master_host=,master_uuid=,channel_name=,connection_name=] 1\n"
        );
    }

    #[test]
    fn mysql_falls_back_like_the_exporter() {
        let syntax = ServerError { code: 1064, state: "42000".into(), message: "syntax".into() };
        let mut s = Picky { accepted: Some("SHOW SLAVE STATUS"), error: syntax, log: vec![] };
        collect(&mut s, &mut Families::default()).unwrap();
        assert_eq!(
            s.log,
            [
                "SHOW ALL SLAVES STATUS",
                "SHOW ALL SLAVES STATUS NONBLOCKING",
                "SHOW ALL SLAVES STATUS NOLOCK",
                "SHOW ALL SLAVES STATUS",
                "SHOW SLAVE STATUS"
            ]
        );
    }

    #[test]
    fn missing_privilege_is_the_last_error() {
        let mut s = Picky { accepted: None, error: denied(), log: vec![] };
        let e = collect(&mut s, &mut Families::default()).unwrap_err().to_string();
        assert_eq!(s.log.len(), 8);
        assert!(e.starts_with("SHOW SLAVE STATUS: ERROR 1227 (42000): Access denied"), "{e}");
    }

    #[test]
    fn one_family_per_numeric_column_with_channel_labels() {
        let rs = ResultSet {
            columns: [
                "Connection_name",
                "Master_Host",
                "Slave_IO_Running",
                "Slave_SQL_Running",
                "Seconds_Behind_Master",
                "Last_Error",
                "Gtid_IO_Pos",
            ]
            .iter()
            .map(|c| c.to_string())
            .collect(),
            rows: vec![
                ["a", "10.0.0.1", "Yes", "No", "3", "", "0-1-5"].iter().map(|v| Some(v.to_string())).collect(),
                vec![
                    Some("b".into()),
                    Some("10.0.0.2".into()),
                    Some("Connecting".into()),
                    Some("Yes".into()),
                    None,
                    Some(String::new()),
                    None,
                ],
            ],
        };
        let mut out = Families::default();
        families(&rs, &mut out);
        assert_eq!(
            render(out),
            "\
mysql_slave_status_slave_io_running untyped [master_host=10.0.0.1,master_uuid=,channel_name=,connection_name=a] 1
mysql_slave_status_slave_io_running untyped [master_host=10.0.0.2,master_uuid=,channel_name=,connection_name=b] 0
mysql_slave_status_slave_sql_running untyped [master_host=10.0.0.1,master_uuid=,channel_name=,connection_name=a] 0
mysql_slave_status_slave_sql_running untyped [master_host=10.0.0.2,master_uuid=,channel_name=,connection_name=b] 1
mysql_slave_status_seconds_behind_master untyped [master_host=10.0.0.1,master_uuid=,channel_name=,connection_name=a] 3
"
        );
    }
}
