//! Fuzzes the SCIM filter parser (RFC 7644 §3.4.2.2): it must never panic,
//! and whatever it accepts must print to text that it accepts again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onramp::scim::protocol::filter::parse_filter;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(filter) = parse_filter(text) {
        let printed = filter.to_string();
        assert!(parse_filter(&printed).is_ok(), "printed filter does not re-parse: {printed}");
    }
});
