//! SCIM lists, filters, sorting, paging and search over HTTP.

use serde_json::{Value, json};

use crate::helpers::{backends, spawn_app};
use crate::scim_crud::{entra_user, scim};

fn names(list: &Value) -> Vec<String> {
    list["Resources"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| r["userName"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn filters_find_users_by_user_name_external_id_email_and_extension_attributes() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (s, _) = scim(&app, "Acme").await;
        let (other, _) = scim(&app, "Other").await;
        for (i, dept) in ["Purchasing", "Finance", "Purchasing"].iter().enumerate() {
            let mut u = entra_user(&format!("user{i}@acme.example"));
            u["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"] =
                json!(dept);
            if i == 2 {
                u["active"] = json!(false);
            }
            assert_eq!(s.post("/Users", u).await.0, 201);
        }
        other.post("/Users", entra_user("user0@acme.example")).await;
        let cases: Vec<(&str, Vec<&str>)> = vec![
            (
                "userName eq \"USER1@acme.example\"",
                vec!["user1@acme.example"],
            ),
            (
                "externalId eq \"ext-user2@acme.example\"",
                vec!["user2@acme.example"],
            ),
            (
                "emails.value eq \"user0@acme.example\"",
                vec!["user0@acme.example"],
            ),
            (
                "emails[type eq \"work\" and value co \"user2\"]",
                vec!["user2@acme.example"],
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq \"Purchasing\"",
                vec!["user0@acme.example", "user2@acme.example"],
            ),
            ("active eq false", vec!["user2@acme.example"]),
            (
                "userName sw \"user\" and not (active eq false)",
                vec!["user0@acme.example", "user1@acme.example"],
            ),
            (
                "title pr",
                vec![
                    "user0@acme.example",
                    "user1@acme.example",
                    "user2@acme.example",
                ],
            ),
            (
                "meta.lastModified gt \"2000-01-01T00:00:00Z\"",
                vec![
                    "user0@acme.example",
                    "user1@acme.example",
                    "user2@acme.example",
                ],
            ),
            ("userName eq \"nobody@acme.example\"", vec![]),
        ];
        for (filter, want) in cases {
            let (status, list) = s
                .get(&format!("/Users?filter={}&sortBy=userName", enc(filter)))
                .await;
            assert_eq!(status, 200, "{backend:?} {filter}: {list}");
            assert_eq!(names(&list), want, "{backend:?} {filter}");
            assert_eq!(list["totalResults"], want.len(), "{backend:?} {filter}");
        }
    }
}

#[tokio::test]
async fn an_unknown_attribute_or_a_broken_filter_is_invalid_filter_never_an_empty_list() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (s, _) = scim(&app, "Acme").await;
        for filter in [
            "nosuch eq \"x\"",
            "userName eq",
            "userName xx \"a\"",
            "(userName eq \"a\"",
            "active gt true",
            &"(".repeat(500),
        ] {
            let (status, err) = s.get(&format!("/Users?filter={}", enc(filter))).await;
            assert_eq!(status, 400, "{backend:?} {filter}");
            assert_eq!(err["scimType"], "invalidFilter", "{filter}: {err}");
        }
    }
}

#[tokio::test]
async fn paging_with_start_index_count_and_cursors_walks_every_user_once() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (s, _) = scim(&app, "Acme").await;
        for i in 0..7 {
            s.post("/Users", entra_user(&format!("p{i}@acme.example")))
                .await;
        }
        let (_, only_total) = s.get("/Users?count=0").await;
        assert_eq!(only_total["totalResults"], 7);
        assert_eq!(only_total["Resources"].as_array().map_or(0, |a| a.len()), 0);

        let mut seen = Vec::new();
        let mut start = 1;
        loop {
            let (_, page) = s
                .get(&format!(
                    "/Users?startIndex={start}&count=3&sortBy=userName&sortOrder=descending"
                ))
                .await;
            assert_eq!(page["totalResults"], 7);
            let got = names(&page);
            if got.is_empty() {
                break;
            }
            seen.extend(got);
            start += 3;
        }
        let mut want: Vec<String> = (0..7).map(|i| format!("p{i}@acme.example")).rev().collect();
        assert_eq!(seen, want, "{backend:?}");

        let mut seen = Vec::new();
        let mut cursor = String::new();
        for _ in 0..10 {
            let (status, page) = s
                .get(&format!("/Users?count=3&cursor={}", enc(&cursor)))
                .await;
            assert_eq!(status, 200, "{page}");
            seen.extend(names(&page));
            match page["nextCursor"].as_str() {
                Some(c) => cursor = c.to_string(),
                None => break,
            }
        }
        seen.sort();
        want.sort();
        assert_eq!(seen, want, "{backend:?} cursor walk");
        let (status, _) = s.get("/Users?cursor=garbage").await;
        assert_eq!(status, 400);
    }
}

#[tokio::test]
async fn post_search_takes_a_search_request_body_and_projects_attributes() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (s, _) = scim(&app, "Acme").await;
        s.post("/Users", entra_user("a@acme.example")).await;
        s.post("/Groups", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Buyers"})).await;
        let req = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": "userName eq \"a@acme.example\"",
            "attributes": ["userName", "emails.value"],
        });
        let (status, list) = s.post("/Users/.search", req).await;
        assert_eq!(status, 200, "{backend:?} {list}");
        let user = &list["Resources"][0];
        assert_eq!(user["userName"], "a@acme.example");
        assert!(user.get("title").is_none(), "{user}");
        assert!(user.get("id").is_some(), "id is always returned");
        let (status, groups) = s
            .get(&format!(
                "/Groups?filter={}",
                enc("displayName eq \"buyers\"")
            ))
            .await;
        assert_eq!(
            (status, groups["totalResults"].clone()),
            (200, json!(1)),
            "{backend:?}"
        );
        let (status, all) = s
            .post(
                "/.search",
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}),
            )
            .await;
        assert_eq!(
            (status, all["totalResults"].clone()),
            (200, json!(2)),
            "{all}"
        );
    }
}
