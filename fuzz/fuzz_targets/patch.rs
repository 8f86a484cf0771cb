//! Fuzzes PATCH parsing and application (RFC 7644 §3.5.2) on a sample User
//! and Group: never a panic, and a failed PATCH leaves the resource unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onramp::scim::protocol::patch::{apply_patch, parse_patch};
use onramp::scim::protocol::schema::ResourceType;
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(req) = parse_patch(&body) else {
        return;
    };
    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "u1", "userName": "bjensen",
        "emails": [{"value": "b@example.com", "type": "work", "primary": true}]
    });
    let group = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "g1", "displayName": "G"});
    for (rt, sample) in [(ResourceType::User, &user), (ResourceType::Group, &group)] {
        let mut resource = sample.clone();
        if apply_patch(&mut resource, rt, &req).is_err() {
            assert_eq!(&resource, sample, "a failed PATCH changed the resource");
        }
    }
});
