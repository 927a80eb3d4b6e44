//! etcd's JSON answers: `GET /health` and the v3 gateway's `POST /v3/maintenance/status`.
//!
//! The gateway writes 64-bit integers as JSON strings (`"dbSize":"20480"`) and leaves out
//! fields whose value is zero or false, so both spellings are read and a missing field is 0.

use serde::{Deserialize, Deserializer};
use std::fmt;

/// `/v3/maintenance/status` of one member (etcd 3.4's `StatusResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Status {
    pub cluster_id: u64,
    pub member_id: u64,
    pub revision: u64,
    pub version: String,
    pub db_size: u64,
    pub db_size_in_use: u64,
    /// Member id of the leader; 0 when there is none.
    pub leader: u64,
    pub raft_index: u64,
    pub raft_term: u64,
    pub raft_applied_index: u64,
    pub is_learner: bool,
    /// Alarm and other errors the member reports (`"etcdserver: mvcc: database space exceeded"`).
    pub errors: Vec<String>,
}

impl Status {
    /// True when this member is the leader.
    pub fn is_leader(&self) -> bool {
        self.leader != 0 && self.leader == self.member_id
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawHeader {
    #[serde(deserialize_with = "uint")]
    cluster_id: u64,
    #[serde(deserialize_with = "uint")]
    member_id: u64,
    #[serde(deserialize_with = "uint")]
    revision: u64,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawStatus {
    header: RawHeader,
    version: String,
    #[serde(deserialize_with = "uint")]
    db_size: u64,
    #[serde(deserialize_with = "uint")]
    db_size_in_use: u64,
    #[serde(deserialize_with = "uint")]
    leader: u64,
    #[serde(deserialize_with = "uint")]
    raft_index: u64,
    #[serde(deserialize_with = "uint")]
    raft_term: u64,
    #[serde(deserialize_with = "uint")]
    raft_applied_index: u64,
    is_learner: bool,
    errors: Vec<String>,
}

/// A 64-bit unsigned integer written as a JSON string or number.
fn uint<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Uint {
        Number(u64),
        Text(String),
    }
    match Uint::deserialize(deserializer)? {
        Uint::Number(n) => Ok(n),
        Uint::Text(s) => s.parse().map_err(|_| serde::de::Error::custom(format!("{s:?} is not an unsigned integer"))),
    }
}

/// Why a JSON answer could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError(pub String);

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for JsonError {}

/// Parse the body of `POST /v3/maintenance/status`.
pub fn parse_status(body: &str) -> Result<Status, JsonError> {
    let raw: RawStatus =
        serde_json::from_str(body).map_err(|e| JsonError(format!("invalid maintenance status JSON: {e}")))?;
    if raw.header.member_id == 0 {
        return Err(JsonError(format!("maintenance status without header.member_id: {:?}", excerpt(body))));
    }
    Ok(Status {
        cluster_id: raw.header.cluster_id,
        member_id: raw.header.member_id,
        revision: raw.header.revision,
        version: raw.version,
        db_size: raw.db_size,
        db_size_in_use: raw.db_size_in_use,
        leader: raw.leader,
        raft_index: raw.raft_index,
        raft_term: raw.raft_term,
        raft_applied_index: raw.raft_applied_index,
        is_learner: raw.is_learner,
        errors: raw.errors,
    })
}

/// Parse the body of `GET /health`: `{"health":"true"}` (etcd 3.4 may add `"reason"`).
/// Returns whether the member says it is healthy.
pub fn parse_health(body: &str) -> Result<bool, JsonError> {
    #[derive(Deserialize)]
    struct Health {
        health: serde_json::Value,
    }
    let health: Health = serde_json::from_str(body).map_err(|e| JsonError(format!("invalid /health JSON: {e}")))?;
    match health.health {
        serde_json::Value::String(s) => Ok(s == "true"),
        serde_json::Value::Bool(b) => Ok(b),
        other => Err(JsonError(format!("/health: unexpected \"health\" value {other}"))),
    }
}

/// The start of untrusted text, for error messages.
fn excerpt(text: &str) -> String {
    text.chars().take(100).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const STATUS: &str = r#"{"header":{"cluster_id":"14443903163313418560","member_id":"11417610130673999598","revision":"4","raft_term":"2"},"version":"3.4.23","dbSize":"20480","leader":"11417610130673999598","raftIndex":"9","raftTerm":"2","raftAppliedIndex":"9","dbSizeInUse":"16384"}"#;

    #[test]
    fn parses_a_status() {
        let s = parse_status(STATUS).unwrap();
        assert_eq!(
            s,
            Status {
                cluster_id: 14443903163313418560,
                member_id: 11417610130673999598,
                revision: 4,
                version: "3.4.23".into(),
                db_size: 20480,
                db_size_in_use: 16384,
                leader: 11417610130673999598,
                raft_index: 9,
                raft_term: 2,
                raft_applied_index: 9,
                is_learner: false,
                errors: vec![],
            }
        );
        assert!(s.is_leader());
    }

    #[test]
    fn missing_fields_are_zero_and_numbers_are_accepted() {
        let s =
            parse_status(r#"{"header":{"member_id":7},"raftIndex":12,"isLearner":true,"errors":["NOSPACE"]}"#).unwrap();
        assert_eq!((s.member_id, s.raft_index, s.leader, s.db_size), (7, 12, 0, 0));
        assert!(s.is_learner && !s.is_leader());
        assert_eq!(s.errors, ["NOSPACE"]);
    }

    #[test]
    fn bad_status_is_an_error() {
        for (body, expected) in [
            ("", "invalid maintenance status JSON"),
            ("<html>", "invalid maintenance status JSON"),
            (r#"{"header":{"member_id":"-1"}}"#, "\"-1\" is not an unsigned integer"),
            (r#"{"header":{"member_id":"1"},"dbSize":"18446744073709551616"}"#, "is not an unsigned integer"),
            (r#"{"error":"etcdserver: no leader","code":14}"#, "without header.member_id"),
        ] {
            let err = parse_status(body).unwrap_err().to_string();
            assert!(err.contains(expected), "{body}: {err}");
        }
    }

    #[test]
    fn parses_health() {
        assert!(parse_health(r#"{"health":"true"}"#).unwrap());
        assert!(!parse_health(r#"{"health":"false","reason":"RAFT NO LEADER"}"#).unwrap());
        assert!(parse_health(r#"{"health":true}"#).unwrap());
        assert!(parse_health(r#"{"health":1}"#).is_err());
        assert!(parse_health("ok").is_err());
    }
}
