//! No page makes the stub_status parser panic; pages built from the real page's tokens get
//! past its first checks.

use proptest::prelude::*;
use wasmon_nginx::parse::parse;

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Active".to_string()),
        Just("connections:".to_string()),
        Just("server accepts handled requests".to_string()),
        Just("Reading:".to_string()),
        Just("Writing:".to_string()),
        Just("Waiting:".to_string()),
        Just("18446744073709551616".to_string()),
        Just("-1".to_string()),
        Just("é".to_string()),
        "[0-9]{1,20}",
        ".{0,6}",
    ]
}

fn page() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::collection::vec(token(), 0..8).prop_map(|t| t.join(" ")), 0..7)
        .prop_map(|lines| lines.join("\n"))
}

proptest! {
    #[test]
    fn parse_never_panics(text in page()) {
        if let Err(e) = parse(&text) {
            prop_assert!(e.to_string().starts_with("stub_status line "));
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}") {
        let _ = parse(&text);
    }

    #[test]
    fn valid_pages_round_trip(v in prop::array::uniform7(any::<u64>())) {
        let text = format!(
            "Active connections: {} \nserver accepts handled requests\n {} {} {} \nReading: {} Writing: {} Waiting: {} \n",
            v[0], v[1], v[2], v[3], v[4], v[5], v[6]
        );
        let s = parse(&text).expect("valid page");
        prop_assert_eq!([s.active, s.accepted, s.handled, s.requests, s.reading, s.writing, s.waiting], v);
    }
}
