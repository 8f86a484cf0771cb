//! Fuzzes the PATCH path parser (RFC 7644 §3.5.2): it must never panic, and
//! whatever it accepts must print to text that it accepts again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onramp::scim::protocol::path::{parse_attribute_list, parse_path};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_attribute_list(text);
    if let Ok(path) = parse_path(text) {
        let printed = path.to_string();
        assert!(parse_path(&printed).is_ok(), "printed path does not re-parse: {printed}");
    }
});
