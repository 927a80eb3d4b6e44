//! Recorded conversations with a server: a [`Recorder`] writes down every
//! query and its answer; a [`Replay`] answers the same queries, in the same
//! order, without a server. Golden tests replay answers captured from a real
//! MariaDB (`examples/capture.rs`).

use crate::protocol::{ProtocolError, ResultSet, ServerError, Session};
use serde::{Deserialize, Serialize};

/// One query and the server's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    pub sql: String,
    #[serde(flatten)]
    pub reply: Reply,
}

/// A result set or an ERR packet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    Result(ResultSet),
    Error { code: u16, state: String, message: String },
}

/// Passes queries on to `inner` and records them with their answers.
/// Connection failures are passed on but not recorded.
pub struct Recorder<'a> {
    pub inner: &'a mut dyn Session,
    pub exchanges: Vec<Exchange>,
}

impl Session for Recorder<'_> {
    fn query(&mut self, sql: &str) -> Result<ResultSet, ProtocolError> {
        let answer = self.inner.query(sql);
        let reply = match &answer {
            Ok(rs) => Some(Reply::Result(rs.clone())),
            Err(ProtocolError::Server(e)) => {
                Some(Reply::Error { code: e.code, state: e.state.clone(), message: e.message.clone() })
            }
            Err(_) => None,
        };
        if let Some(reply) = reply {
            self.exchanges.push(Exchange { sql: sql.to_string(), reply });
        }
        answer
    }
}

/// Answers queries from a recording, strictly in recorded order: a query
/// that differs from the next recorded one is an error, so a replay also
/// checks that the same queries are sent in the same order.
#[derive(Debug)]
pub struct Replay {
    exchanges: Vec<Exchange>,
    next: usize,
}

impl Replay {
    pub fn new(exchanges: Vec<Exchange>) -> Self {
        Self { exchanges, next: 0 }
    }

    /// Parse a recording written by [`to_json`].
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text).map(Self::new)
    }

    /// The recorded queries not asked for (yet).
    pub fn unused(&self) -> &[Exchange] {
        &self.exchanges[self.next..]
    }
}

impl Session for Replay {
    fn query(&mut self, sql: &str) -> Result<ResultSet, ProtocolError> {
        let Some(exchange) = self.exchanges.get(self.next) else {
            return Err(ProtocolError::Broken(format!("replay: no recorded answer left for {sql:?}")));
        };
        if exchange.sql != sql {
            return Err(ProtocolError::Broken(format!(
                "replay: query {} should be {:?}, got {sql:?}",
                self.next + 1,
                exchange.sql
            )));
        }
        self.next += 1;
        match &exchange.reply {
            Reply::Result(rs) => Ok(rs.clone()),
            Reply::Error { code, state, message } => {
                Err(ProtocolError::Server(ServerError { code: *code, state: state.clone(), message: message.clone() }))
            }
        }
    }
}

/// A recording as JSON, one row per line so diffs stay readable.
pub fn to_json(exchanges: &[Exchange]) -> String {
    let mut out = String::from("[\n");
    for (i, exchange) in exchanges.iter().enumerate() {
        out.push_str(&format!("  {{\"sql\": {}", json(&exchange.sql)));
        match &exchange.reply {
            Reply::Result(rs) => {
                out.push_str(&format!(",\n   \"result\": {{\"columns\": {},\n    \"rows\": [", json(&rs.columns)));
                for (j, row) in rs.rows.iter().enumerate() {
                    out.push_str(if j == 0 { "\n      " } else { ",\n      " });
                    out.push_str(&json(row.as_slice()));
                }
                out.push_str(if rs.rows.is_empty() { "]}}" } else { "\n    ]}}" });
            }
            Reply::Error { code, state, message } => {
                out.push_str(&format!(
                    ",\n   \"error\": {{\"code\": {code}, \"state\": {}, \"message\": {}}}}}",
                    json(state),
                    json(message)
                ));
            }
        }
        out.push_str(if i + 1 < exchanges.len() { ",\n" } else { "\n" });
    }
    out.push_str("]\n");
    out
}

/// Compact JSON of a value that always serializes (strings and lists of them).
fn json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recording() -> Vec<Exchange> {
        vec![
            Exchange { sql: "SET lock_wait_timeout=2".into(), reply: Reply::Result(ResultSet::default()) },
            Exchange {
                sql: "SHOW GLOBAL STATUS".into(),
                reply: Reply::Result(ResultSet {
                    columns: vec!["Variable_name".into(), "Value".into()],
                    rows: vec![vec![Some("Uptime".into()), Some("5".into())], vec![Some("Rpl".into()), None]],
                }),
            },
            Exchange {
                sql: "SHOW ALL SLAVES STATUS".into(),
                reply: Reply::Error { code: 1227, state: "42000".into(), message: "Access \"denied\"".into() },
            },
        ]
    }

    #[test]
    fn json_round_trip() {
        let text = to_json(&recording());
        let back: Vec<Exchange> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, recording());
        assert!(text.contains("\n      [\"Uptime\",\"5\"],\n      [\"Rpl\",null]\n"), "{text}");
    }

    #[test]
    fn replay_checks_order() {
        let mut replay = Replay::new(recording());
        assert!(replay.query("SET lock_wait_timeout=2").is_ok());
        let e = replay.query("SHOW GLOBAL VARIABLES").unwrap_err().to_string();
        assert!(e.contains("query 2 should be \"SHOW GLOBAL STATUS\""), "{e}");
        assert_eq!(replay.unused().len(), 2);
    }
}
