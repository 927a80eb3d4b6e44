//! `collect.info_schema.query_response_time`: the response-time histograms of
//! Percona's and MariaDB's `QUERY_RESPONSE_TIME` plugin, when
//! `query_response_time_stats` is on. Without the plugin the collector does
//! nothing and is not an error.

use super::{CollectError, Families, query, text};
use crate::protocol::{ResultSet, Session};
use crate::values::go_parse_float;
use wasmon_sdk::Family;

pub const CHECK_QUERY: &str = "SELECT @@query_response_time_stats";

/// Upper case: with lower-case table names Percona's read/write split
/// returned the totals (a server bug the exporter works around).
const TABLES: [(&str, &str, &str); 3] = [
    (
        "SELECT TIME, COUNT, TOTAL FROM INFORMATION_SCHEMA.QUERY_RESPONSE_TIME",
        "mysql_info_schema_query_response_time_seconds",
        "The number of all queries by duration they took to execute.",
    ),
    (
        "SELECT TIME, COUNT, TOTAL FROM INFORMATION_SCHEMA.QUERY_RESPONSE_TIME_READ",
        "mysql_info_schema_read_query_response_time_seconds",
        "The number of read queries by duration they took to execute.",
    ),
    (
        "SELECT TIME, COUNT, TOTAL FROM INFORMATION_SCHEMA.QUERY_RESPONSE_TIME_WRITE",
        "mysql_info_schema_write_query_response_time_seconds",
        "The number of write queries by duration they took to execute.",
    ),
];

pub fn collect(session: &mut dyn Session, out: &mut Families) -> Result<(), CollectError> {
    // The exporter reads the flag as a small integer; an error, NULL or a
    // word means "not available" and is only worth a debug line.
    let enabled = match session.query(CHECK_QUERY) {
        Ok(rs) => rs.rows.first().and_then(|r| r.first().cloned().flatten()).and_then(|v| v.parse::<u8>().ok()),
        Err(e) => {
            wasmon_sdk::log::debug(&format!("query response time distribution is not available: {e}"));
            return Ok(());
        }
    };
    match enabled {
        None => {
            wasmon_sdk::log::debug("query response time distribution is not available");
            return Ok(());
        }
        Some(0) => return Ok(()),
        Some(_) => {}
    }
    for (i, (sql, name, help)) in TABLES.iter().enumerate() {
        let result = query(session, sql).and_then(|rs| histogram(sql, &rs, name, help));
        match result {
            Ok(family) => out.insert(family),
            // The read/write tables exist only in Percona Server 5.6/5.7.
            Err(e) if i > 0 => wasmon_sdk::log::debug(&format!("{e}")),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One histogram from `(TIME, COUNT, TOTAL)` rows: TIME is a bucket's upper
/// bound in seconds, COUNT its queries, TOTAL their summed time. The last
/// row, `TOO LONG`, counts towards the total only.
pub fn histogram(sql: &str, rs: &ResultSet, name: &str, help: &str) -> Result<Family, CollectError> {
    let number = |s: &str| go_parse_float(s.trim()).unwrap_or(0.0);
    let mut count: u64 = 0;
    let mut sum = 0.0;
    let mut buckets: Vec<(f64, u64)> = Vec::new();
    for row in &rs.rows {
        let upper = number(text(sql, rs, row, 0)?);
        let raw = text(sql, rs, row, 1)?;
        let n: u64 = raw.parse().map_err(|_| CollectError::Data {
            sql: sql.to_string(),
            detail: format!("column COUNT: {raw:?} is not an unsigned integer"),
        })?;
        count = count.saturating_add(n);
        sum += number(text(sql, rs, row, 2)?);
        if upper == 0.0 {
            continue;
        }
        match buckets.iter_mut().find(|(b, _)| *b == upper) {
            Some(bucket) => bucket.1 = count,
            None => buckets.push((upper, count)),
        }
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut family = Family::histogram(name, help);
    family.histogram_sample(&[], &buckets, sum, count);
    Ok(family)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::tests::{render, result};
    use crate::protocol::{ProtocolError, ServerError};

    struct Answers(Vec<(&'static str, Result<ResultSet, u16>)>, Vec<String>);

    impl Session for Answers {
        fn query(&mut self, sql: &str) -> Result<ResultSet, ProtocolError> {
            self.1.push(sql.to_string());
            match self.0.iter().find(|(q, _)| *q == sql) {
                Some((_, Ok(rs))) => Ok(rs.clone()),
                Some((_, Err(code))) => {
                    Err(ProtocolError::Server(ServerError { code: *code, state: "HY000".into(), message: "no".into() }))
                }
                None => Err(ProtocolError::Server(ServerError {
                    code: 1109,
                    state: "42S02".into(),
                    message: format!("Unknown table in {sql}"),
                })),
            }
        }
    }

    fn distribution() -> ResultSet {
        result(
            &["TIME", "COUNT", "TOTAL"],
            &[
                &["      0.000001", "0", "      0.000000"],
                &["      0.000010", "17", "      0.000094"],
                &["      0.000100", "3", "      0.000140"],
                &["TOO LONG", "1", "TOO LONG"],
            ],
        )
    }

    #[test]
    fn absent_plugin_is_not_an_error() {
        let mut s = Answers(vec![(CHECK_QUERY, Err(1193))], vec![]);
        let mut out = Families::default();
        collect(&mut s, &mut out).unwrap();
        assert!(out.is_empty());
        assert_eq!(s.1, [CHECK_QUERY]);
    }

    #[test]
    fn switched_off_sends_nothing_more() {
        let mut s = Answers(vec![(CHECK_QUERY, Ok(result(&["@@query_response_time_stats"], &[&["0"]])))], vec![]);
        let mut out = Families::default();
        collect(&mut s, &mut out).unwrap();
        assert!(out.is_empty());
        assert_eq!(s.1.len(), 1);
    }

    #[test]
    fn cumulative_buckets_and_the_too_long_row() {
        let mut s = Answers(
            vec![
                (CHECK_QUERY, Ok(result(&["@@query_response_time_stats"], &[&["1"]]))),
                (TABLES[0].0, Ok(distribution())),
            ],
            vec![],
        );
        let mut out = Families::default();
        collect(&mut s, &mut out).unwrap();
        assert_eq!(s.1.len(), 4, "all three tables are asked for");
        assert_eq!(
            render(out),
            "mysql_info_schema_query_response_time_seconds histogram [] 0.000001:0 0.00001:17 0.0001:20 sum=0.000234 count=21\n"
        );
    }

    #[test]
    fn the_main_table_must_answer() {
        let mut s = Answers(vec![(CHECK_QUERY, Ok(result(&["@@query_response_time_stats"], &[&["1"]])))], vec![]);
        let e = collect(&mut s, &mut Families::default()).unwrap_err().to_string();
        assert!(e.contains("QUERY_RESPONSE_TIME: ERROR 1109"), "{e}");
    }
}
