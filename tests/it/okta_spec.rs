//! Okta's "SCIM 2.0 Spec Test" replayed step by step against onramp, with
//! Okta's headers (`application/scim+json; charset=utf-8`, its User-Agent)
//! and the request shapes its provisioning sends. Each assertion mirrors one
//! the suite makes.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, backends, spawn_app};

struct Okta<'a> {
    app: &'a TestApp,
    token: String,
}

impl Okta<'_> {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .app
            .client
            .request(method, self.app.url(&format!("/scim/v2{path}")))
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Accept", "application/scim+json")
            .header("Accept-Charset", "utf-8")
            .header("User-Agent", "OKTA SCIM Integration");
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/scim+json; charset=utf-8")
                .body(b.to_string());
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }
}

fn okta_user(email: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": email,
        "name": {"givenName": "Okta", "familyName": "Tester"},
        "emails": [{"primary": true, "value": email, "type": "work"}],
        "displayName": "Okta Tester",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq",
        "active": true
    })
}

fn is_number(v: &Value) -> bool {
    v.as_u64().is_some()
}

#[tokio::test]
async fn okta_scim_2_spec_test_passes_every_step() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (_, token) = app.org_with_token("Okta Org").await;
        let okta = Okta { app: &app, token };
        use reqwest::Method as M;

        // The suite expects at least one user to exist already.
        let (st, _) = okta
            .call(M::POST, "/Users", Some(okta_user("existing@okta.example")))
            .await;
        assert_eq!(st, 201);

        // Required Test: Test Users endpoint.
        let (st, list) = okta.call(M::GET, "/Users?count=1&startIndex=1", None).await;
        assert_eq!(st, 200, "{backend:?}");
        assert!(
            list["schemas"]
                .as_array()
                .unwrap()
                .contains(&json!("urn:ietf:params:scim:api:messages:2.0:ListResponse"))
        );
        assert!(
            is_number(&list["itemsPerPage"])
                && is_number(&list["startIndex"])
                && is_number(&list["totalResults"])
        );
        let first = &list["Resources"][0];
        for field in ["id", "userName", "active"] {
            assert!(!first[field].is_null(), "{field}");
        }
        assert!(!first["name"]["familyName"].is_null() && !first["name"]["givenName"].is_null());
        assert!(!first["emails"][0]["value"].is_null());

        // Required Test: get a user by id.
        let id = first["id"].as_str().unwrap().to_string();
        let (st, u) = okta.call(M::GET, &format!("/Users/{id}"), None).await;
        assert_eq!((st, u["id"].as_str()), (200, Some(id.as_str())));

        // Required Test: a filter on a userName that does not exist is an empty list.
        let (st, list) = okta
            .call(
                M::GET,
                "/Users?filter=userName%20eq%20%22nobody-here%40okta.example%22",
                None,
            )
            .await;
        assert_eq!((st, list["totalResults"].clone()), (200, json!(0)));

        // Required Test: an unknown id is a 404 in SCIM's error format.
        let (st, err) = okta
            .call(M::GET, &format!("/Users/{}", Uuid::new_v4()), None)
            .await;
        assert_eq!(st, 404);
        assert!(
            err["schemas"]
                .as_array()
                .unwrap()
                .contains(&json!("urn:ietf:params:scim:api:messages:2.0:Error"))
        );
        assert!(err["detail"].as_str().is_some_and(|d| !d.is_empty()));

        // Make sure the random user does not exist yet, then create it.
        let email = format!("{}@okta.example", Uuid::new_v4().simple());
        let filter = format!(
            "/Users?filter=userName%20eq%20%22{}%22",
            email.replace('@', "%40")
        );
        assert_eq!(okta.call(M::GET, &filter, None).await.1["totalResults"], 0);
        let (st, created) = okta.call(M::POST, "/Users", Some(okta_user(&email))).await;
        assert_eq!(st, 201, "{created}");
        assert_eq!(created["active"], true);
        assert_eq!(created["userName"], email.as_str());
        assert_eq!(created["name"]["familyName"], "Tester");
        assert!(created.get("password").is_none());
        let new_id = created["id"].as_str().unwrap().to_string();

        // Verify the user was created; it is found by its userName.
        let (st, got) = okta.call(M::GET, &format!("/Users/{new_id}"), None).await;
        assert_eq!((st, got["userName"].as_str()), (200, Some(email.as_str())));
        assert_eq!(okta.call(M::GET, &filter, None).await.1["totalResults"], 1);

        // Expect a 409 when the same user is created again.
        let (st, err) = okta.call(M::POST, "/Users", Some(okta_user(&email))).await;
        assert_eq!((st, err["scimType"].clone()), (409, json!("uniqueness")));

        // Username case sensitivity check: the upper-cased name still finds it.
        let upper = format!(
            "/Users?filter=userName%20eq%20%22{}%22",
            email.to_uppercase().replace('@', "%40")
        );
        assert_eq!(okta.call(M::GET, &upper, None).await.1["totalResults"], 1);

        // Okta updates a profile with PUT of the whole user.
        let mut changed = okta_user(&email);
        changed["id"] = json!(new_id);
        changed["name"]["givenName"] = json!("Changed");
        let (st, put) = okta
            .call(M::PUT, &format!("/Users/{new_id}"), Some(changed))
            .await;
        assert_eq!(
            (st, put["name"]["givenName"].clone()),
            (200, json!("Changed"))
        );

        // Deactivation: a pathless PATCH replace of active.
        let deactivate = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "value": {"active": false}}]});
        let (st, off) = okta
            .call(M::PATCH, &format!("/Users/{new_id}"), Some(deactivate))
            .await;
        assert_eq!((st, off["active"].clone()), (200, json!(false)));
        // Reactivation.
        let reactivate = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "value": {"active": true}}]});
        let (st, on) = okta
            .call(M::PATCH, &format!("/Users/{new_id}"), Some(reactivate))
            .await;
        assert_eq!((st, on["active"].clone()), (200, json!(true)));

        // Groups: push a group, rename it, manage members by filter.
        let (st, g) = okta
            .call(M::POST, "/Groups", Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Okta Group", "members": []})))
            .await;
        assert_eq!(st, 201);
        let gid = g["id"].as_str().unwrap().to_string();
        let (st, list) = okta
            .call(
                M::GET,
                "/Groups?filter=displayName%20eq%20%22Okta%20Group%22&startIndex=1&count=100",
                None,
            )
            .await;
        assert_eq!((st, list["totalResults"].clone()), (200, json!(1)));
        let ops = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
            {"op": "add", "path": "members", "value": [{"value": new_id, "display": email}]}
        ]});
        let (st, g2) = okta
            .call(M::PATCH, &format!("/Groups/{gid}"), Some(ops))
            .await;
        assert_eq!(
            (st, g2["members"][0]["value"].as_str()),
            (200, Some(new_id.as_str()))
        );
        let ops = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
            {"op": "remove", "path": format!("members[value eq \"{new_id}\"]")}
        ]});
        let (st, g3) = okta
            .call(M::PATCH, &format!("/Groups/{gid}"), Some(ops))
            .await;
        assert_eq!(st, 200);
        assert!(
            g3.get("members")
                .is_none_or(|m| m.as_array().is_some_and(|a| a.is_empty()))
        );
        assert_eq!(
            okta.call(M::DELETE, &format!("/Groups/{gid}"), None)
                .await
                .0,
            204
        );
    }
}
