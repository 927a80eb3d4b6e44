//! The SDK's Prometheus/OpenMetrics parser on arbitrary bytes: it must never
//! panic, and what it accepts must survive encode → parse unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmon_sdk::text::{Format, encode, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(families) = parse(text) {
        let again = encode(&families, Format::Prometheus);
        let reparsed = parse(&again).expect("encoded output must parse");
        assert_eq!(reparsed.len(), families.len());
    }
});
