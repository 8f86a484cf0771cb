//! Runs every seed of the fuzz corpus (`fuzz/corpus/{filter,path,patch}`)
//! through the matching parser (and PATCH through `apply_patch` on sample
//! resources), asserting each returns `Ok` or `Err` without panicking.
//!
//! Test-only code: it must never be compiled into the server.

use std::fs;
use std::path::PathBuf;

use serde_json::{Value, json};

use super::filter::parse_filter;
use super::patch::{apply_patch, parse_patch};
use super::path::parse_path;
use super::schema::ResourceType;

fn seeds(kind: &str) -> Vec<(PathBuf, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(kind);
    let mut out: Vec<(PathBuf, String)> = fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .filter_map(|p| {
                    fs::read(&p)
                        .ok()
                        .map(|b| (p, String::from_utf8_lossy(&b).into_owned()))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    assert!(
        out.len() >= 20,
        "expected a seed corpus in {}",
        dir.display()
    );
    out
}

#[test]
fn every_filter_seed_parses_or_fails_cleanly_and_round_trips() {
    for (p, text) in seeds("filter") {
        if let Ok(f) = parse_filter(&text) {
            let printed = f.to_string();
            assert_eq!(
                parse_filter(&printed).ok(),
                Some(f),
                "{} -> {printed}",
                p.display()
            );
        }
    }
}

#[test]
fn every_path_seed_parses_or_fails_cleanly_and_round_trips() {
    for (p, text) in seeds("path") {
        if let Ok(path) = parse_path(&text) {
            let printed = path.to_string();
            assert_eq!(
                parse_path(&printed).ok(),
                Some(path),
                "{} -> {printed}",
                p.display()
            );
        }
    }
}

#[test]
fn every_patch_seed_applies_or_fails_cleanly() {
    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "u1", "userName": "bjensen",
        "emails": [{"value": "b@example.com", "type": "work", "primary": true}]
    });
    let group = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "g1", "displayName": "G"});
    for (p, text) in seeds("patch") {
        let Ok(body) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let Ok(req) = parse_patch(&body) else {
            continue;
        };
        for (rt, sample) in [(ResourceType::User, &user), (ResourceType::Group, &group)] {
            let mut r = sample.clone();
            match apply_patch(&mut r, rt, &req) {
                Ok(_) => assert!(r.is_object(), "{}", p.display()),
                Err(_) => assert_eq!(
                    &r,
                    sample,
                    "{}: failed patch changed the resource",
                    p.display()
                ),
            }
        }
    }
}
