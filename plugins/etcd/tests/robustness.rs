//! No answer makes the JSON readers panic; inputs are built from the real answers' tokens.

use proptest::prelude::*;
use wasmon_etcd::status::{parse_health, parse_status};

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(",".to_string()),
        Just(":".to_string()),
        Just("\"header\"".to_string()),
        Just("\"member_id\"".to_string()),
        Just("\"leader\"".to_string()),
        Just("\"dbSize\"".to_string()),
        Just("\"health\"".to_string()),
        Just("\"true\"".to_string()),
        Just("\"18446744073709551616\"".to_string()),
        Just("-1".to_string()),
        Just("null".to_string()),
        "[0-9]{1,20}",
        "\"[a-z0-9]{0,6}\"",
    ]
}

proptest! {
    #[test]
    fn json_readers_never_panic(tokens in prop::collection::vec(token(), 0..30)) {
        let text = tokens.concat();
        let _ = parse_status(&text);
        let _ = parse_health(&text);
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}") {
        let _ = parse_status(&text);
        let _ = parse_health(&text);
    }

    #[test]
    fn any_ids_round_trip(member in 1u64.., leader: u64, size: u64) {
        let body = format!(r#"{{"header":{{"member_id":"{member}"}},"leader":"{leader}","dbSize":{size}}}"#);
        let status = parse_status(&body).expect("valid status");
        prop_assert_eq!((status.member_id, status.leader, status.db_size), (member, leader, size));
        prop_assert_eq!(status.is_leader(), member == leader);
    }
}
