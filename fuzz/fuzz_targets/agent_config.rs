//! The agent's config loader on arbitrary text: errors, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(e) = wasmon::config::Config::parse(text, "fuzz.yaml") {
        assert!(!e.problems.is_empty());
    }
});
