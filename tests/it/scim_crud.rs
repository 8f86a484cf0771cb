//! SCIM Users and Groups over HTTP: create, read, replace, patch, delete,
//! ETags, errors and tenant isolation.

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, backends, spawn_app};

pub struct Scim<'a> {
    pub app: &'a TestApp,
    pub token: String,
}

impl Scim<'_> {
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut req = self
            .app
            .client
            .request(method, self.app.url(&format!("/scim/v2{path}")))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/scim+json")
                .body(b.to_string());
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        (status, body, headers)
    }
    /// A request with a JSON body and extra headers.
    pub async fn send_with(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
        headers: &[(&str, &str)],
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut req = self
            .app
            .client
            .request(method, self.app.url(&format!("/scim/v2{path}")))
            .bearer_auth(&self.token)
            .header("content-type", "application/scim+json")
            .body(body.to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::Null),
            headers,
        )
    }
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let (s, b, _) = self.send(reqwest::Method::POST, path, Some(body)).await;
        (s, b)
    }
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let (s, b, _) = self.send(reqwest::Method::GET, path, None).await;
        (s, b)
    }
    pub async fn patch(&self, path: &str, ops: Value) -> (u16, Value) {
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
        let (s, b, _) = self.send(reqwest::Method::PATCH, path, Some(body)).await;
        (s, b)
    }
    pub async fn delete(&self, path: &str) -> u16 {
        self.send(reqwest::Method::DELETE, path, None).await.0
    }
}

pub async fn scim<'a>(app: &'a TestApp, org: &str) -> (Scim<'a>, uuid::Uuid) {
    let (org_id, token) = app.org_with_token(org).await;
    (Scim { app, token }, org_id)
}

/// A user as Microsoft Entra ID creates it.
pub fn entra_user(user_name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "externalId": format!("ext-{user_name}"),
        "userName": user_name,
        "active": true,
        "displayName": "Barbara Jensen",
        "emails": [{"primary": true, "type": "work", "value": user_name}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "Barbara Jensen", "familyName": "Jensen", "givenName": "Barbara"},
        "title": "Buyer",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Purchasing", "employeeNumber": "701984"}
    })
}

#[tokio::test]
async fn a_created_user_reads_back_with_meta_etag_and_location_and_no_password() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (s, _) = scim(&app, "Acme").await;
        let mut body = entra_user("bjensen@acme.example");
        body["password"] = json!("t1meMa$heen");
        let (status, created, headers) = s.send(reqwest::Method::POST, "/Users", Some(body)).await;
        assert_eq!(status, 201, "{backend:?} {created}");
        let id = created["id"].as_str().unwrap().to_string();
        assert_eq!(
            headers["location"],
            format!("http://127.0.0.1:8080/scim/v2/Users/{id}")
        );
        assert_eq!(headers["etag"], "W/\"1\"");
        assert_eq!(created["meta"]["resourceType"], "User");
        assert_eq!(created["meta"]["version"], "W/\"1\"");
        assert!(created.get("password").is_none());
        assert_eq!(
            created["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
            "Purchasing"
        );
        let (status, read) = s.get(&format!("/Users/{id}")).await;
        assert_eq!(status, 200);
        assert_eq!(read, created);
        let (status, _, _) = {
            let res = app
                .client
                .get(app.url(&format!("/scim/v2/Users/{id}")))
                .bearer_auth(&s.token)
                .header("if-none-match", "W/\"1\"")
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), (), ())
        };
        assert_eq!(status, 304);
    }
}

#[tokio::test]
async fn user_name_is_unique_per_org_case_insensitively_and_free_in_another_org() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (a, _) = scim(&app, "A").await;
        let (b, _) = scim(&app, "B").await;
        assert_eq!(
            a.post("/Users", entra_user("Pat@Acme.example")).await.0,
            201
        );
        let (status, err) = a.post("/Users", entra_user("pat@acme.EXAMPLE")).await;
        assert_eq!(status, 409, "{backend:?}");
        assert_eq!(err["scimType"], "uniqueness");
        assert_eq!(err["status"], "409");
        assert_eq!(
            b.post("/Users", entra_user("pat@acme.example")).await.0,
            201
        );
    }
}

#[tokio::test]
async fn another_orgs_token_cannot_see_change_or_delete_a_user() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (a, _) = scim(&app, "A").await;
        let (b, _) = scim(&app, "B").await;
        let (_, u) = a.post("/Users", entra_user("x@a.example")).await;
        let path = format!("/Users/{}", u["id"].as_str().unwrap());
        assert_eq!(b.get(&path).await.0, 404);
        assert_eq!(
            b.patch(
                &path,
                json!([{"op": "replace", "path": "active", "value": false}])
            )
            .await
            .0,
            404
        );
        assert_eq!(b.delete(&path).await, 404);
        let (status, still) = a.get(&path).await;
        assert_eq!(
            (status, still["active"].clone()),
            (200, json!(true)),
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn entra_deactivation_with_a_string_false_keeps_the_user_readable_and_logs_the_change() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (s, org) = scim(&app, "Acme").await;
        let (_, u) = s.post("/Users", entra_user("d@acme.example")).await;
        let id = u["id"].as_str().unwrap();
        let (status, patched) = s
            .patch(
                &format!("/Users/{id}"),
                json!([{"op": "Replace", "path": "active", "value": "False"}]),
            )
            .await;
        assert_eq!(status, 200, "{backend:?} {patched}");
        assert_eq!(patched["active"], false);
        assert_eq!(patched["meta"]["version"], "W/\"2\"");
        assert_eq!(s.get(&format!("/Users/{id}")).await.1["active"], false);
        let kinds: Vec<String> = app
            .store
            .changes_since(org, 0, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["created", "deactivated"]);
    }
}

#[tokio::test]
async fn patch_adds_a_work_email_through_a_filter_that_matches_nothing() {
    let app = spawn_app(Backend::Sqlite).await;
    let (s, _) = scim(&app, "Acme").await;
    let (_, u) = s.post("/Users", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "noemail"})).await;
    let id = u["id"].as_str().unwrap();
    let (status, patched) = s
        .patch(
            &format!("/Users/{id}"),
            json!([{"op": "Add", "path": "emails[type eq \"work\"].value", "value": "new@acme.example"}]),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        patched["emails"],
        json!([{"type": "work", "value": "new@acme.example"}])
    );
}

#[tokio::test]
async fn put_replaces_and_if_match_guards_against_stale_writes() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (s, _) = scim(&app, "Acme").await;
        let (_, u) = s.post("/Users", entra_user("r@acme.example")).await;
        let path = format!("/Users/{}", u["id"].as_str().unwrap());
        let replacement = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "r@acme.example", "active": true});
        let stale = app
            .client
            .put(app.url(&format!("/scim/v2{path}")))
            .bearer_auth(&s.token)
            .header("if-match", "W/\"7\"")
            .header("content-type", "application/scim+json")
            .body(replacement.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(stale.status(), 412, "{backend:?}");
        let fresh = app
            .client
            .put(app.url(&format!("/scim/v2{path}")))
            .bearer_auth(&s.token)
            .header("if-match", "W/\"1\"")
            .header("content-type", "application/scim+json")
            .body(replacement.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(fresh.status(), 200);
        let body: Value = fresh.json().await.unwrap();
        assert!(
            body.get("title").is_none(),
            "PUT replaced the whole resource: {body}"
        );
        assert_eq!(body["meta"]["version"], "W/\"2\"");
    }
}

#[tokio::test]
async fn delete_removes_the_user_and_its_group_memberships() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (s, _) = scim(&app, "Acme").await;
        let (_, u) = s.post("/Users", entra_user("gone@acme.example")).await;
        let uid = u["id"].as_str().unwrap();
        let (status, g) = s
            .post("/Groups", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Purchasing", "members": [{"value": uid}]}))
            .await;
        assert_eq!(status, 201, "{g}");
        assert_eq!(g["members"][0]["value"], uid);
        assert_eq!(
            s.get(&format!("/Users/{uid}")).await.1["groups"][0]["display"],
            "Purchasing"
        );
        assert_eq!(s.delete(&format!("/Users/{uid}")).await, 204);
        assert_eq!(s.get(&format!("/Users/{uid}")).await.0, 404);
        assert_eq!(s.delete(&format!("/Users/{uid}")).await, 404);
        let (_, g) = s
            .get(&format!("/Groups/{}", g["id"].as_str().unwrap()))
            .await;
        assert!(g.get("members").is_none(), "{backend:?}: {g}");
    }
}

#[tokio::test]
async fn lists_carry_each_users_groups_ordered_by_name() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (s, _) = scim(&app, "Acme").await;
        let (_, a) = s.post("/Users", entra_user("a@acme.example")).await;
        let (_, b) = s.post("/Users", entra_user("b@acme.example")).await;
        let (ua, ub) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
        let group = |name: &str, members: Value| json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name, "members": members});
        let (_, zeta) = s
            .post("/Groups", group("Zeta buyers", json!([{"value": ua}])))
            .await;
        let (_, alpha) = s
            .post(
                "/Groups",
                group("alpha approvers", json!([{"value": ua}, {"value": ub}])),
            )
            .await;
        let (status, page) = s.get("/Users?sortBy=userName").await;
        assert_eq!(status, 200, "{page}");
        let users = page["Resources"].as_array().unwrap();
        let groups_of = |i: usize| -> Vec<(String, String)> {
            users[i]["groups"]
                .as_array()
                .map(|gs| {
                    gs.iter()
                        .map(|g| {
                            assert_eq!(g["type"], "direct");
                            assert!(
                                g["$ref"]
                                    .as_str()
                                    .unwrap()
                                    .ends_with(g["value"].as_str().unwrap())
                            );
                            (
                                g["value"].as_str().unwrap().to_string(),
                                g["display"].as_str().unwrap().to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let id = |g: &Value| g["id"].as_str().unwrap().to_string();
        assert_eq!(
            groups_of(0),
            vec![
                (id(&alpha), "alpha approvers".to_string()),
                (id(&zeta), "Zeta buyers".to_string())
            ],
            "{backend:?}: {page}"
        );
        assert_eq!(
            groups_of(1),
            vec![(id(&alpha), "alpha approvers".to_string())]
        );
        // Projected away, groups are not returned (nor needed).
        let (_, page) = s.get("/Users?attributes=userName").await;
        assert!(page["Resources"][0].get("groups").is_none(), "{page}");
    }
}

#[tokio::test]
async fn group_membership_follows_entra_and_okta_patch_shapes() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (s, _) = scim(&app, "Acme").await;
        let mut ids = Vec::new();
        for i in 0..3 {
            ids.push(
                s.post("/Users", entra_user(&format!("m{i}@acme.example")))
                    .await
                    .1["id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        let (_, g) = s.post("/Groups", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Finance"})).await;
        let path = format!("/Groups/{}", g["id"].as_str().unwrap());
        let members = |v: &Value| -> Vec<String> {
            let mut m: Vec<String> = v["members"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|m| m["value"].as_str().unwrap().to_string())
                        .collect()
                })
                .unwrap_or_default();
            m.sort();
            m
        };
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        // Entra: Add members with a value array.
        let (st, r) = s.patch(&path, json!([{"op": "Add", "path": "members", "value": [{"value": ids[0]}, {"value": ids[1]}]}])).await;
        assert_eq!(st, 200, "{backend:?} {r}");
        assert_eq!(members(&r), sorted(vec![ids[0].clone(), ids[1].clone()]));
        // Entra: Remove on members carrying a value array.
        let (_, r) = s
            .patch(
                &path,
                json!([{"op": "Remove", "path": "members", "value": [{"value": ids[0]}]}]),
            )
            .await;
        assert_eq!(members(&r), vec![ids[1].clone()]);
        // Okta: remove by filter, then add, in one request.
        let (_, r) = s
            .patch(
                &path,
                json!([
                    {"op": "remove", "path": format!("members[value eq \"{}\"]", ids[1])},
                    {"op": "add", "path": "members", "value": [{"value": ids[2], "display": "m2"}]}
                ]),
            )
            .await;
        assert_eq!(members(&r), vec![ids[2].clone()]);
        // Okta: pathless replace carrying id and displayName renames.
        let (st, r) = s
            .patch(
                &path,
                json!([{"op": "replace", "value": {"id": g["id"], "displayName": "Finance EU"}}]),
            )
            .await;
        assert_eq!((st, r["displayName"].clone()), (200, json!("Finance EU")));
        // excludedAttributes=members never lists them.
        let (_, r) = s.get(&format!("{path}?excludedAttributes=members")).await;
        assert!(r.get("members").is_none());
        // Okta: replace members with [] empties the group.
        let (_, r) = s
            .patch(
                &path,
                json!([{"op": "replace", "path": "members", "value": []}]),
            )
            .await;
        assert!(members(&r).is_empty(), "{r}");
    }
}

#[tokio::test]
async fn a_member_from_another_org_is_refused() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (a, _) = scim(&app, "A").await;
        let (b, _) = scim(&app, "B").await;
        let foreign = b.post("/Users", entra_user("f@b.example")).await.1["id"]
            .as_str()
            .unwrap()
            .to_string();
        let (status, err) = a
            .post("/Groups", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "G", "members": [{"value": foreign}]}))
            .await;
        assert_eq!(status, 400, "{backend:?}");
        assert_eq!(err["scimType"], "invalidValue");
    }
}

#[tokio::test]
async fn bad_bodies_get_400_in_scim_format_and_store_nothing() {
    let app = spawn_app(Backend::Sqlite).await;
    let (s, org) = scim(&app, "Acme").await;
    for raw in [
        "{not json",
        "",
        "[1,2]",
        "\"text\"",
        "{\"userName\": 5}",
        "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"]}",
    ] {
        let res = app
            .client
            .post(app.url("/scim/v2/Users"))
            .bearer_auth(&s.token)
            .header("content-type", "application/scim+json")
            .body(raw.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{raw}");
        assert_eq!(res.headers()["content-type"], "application/scim+json");
        let body: Value = res.json().await.unwrap();
        assert_eq!(
            body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
            "{raw}"
        );
    }
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let res = app
        .client
        .post(app.url("/scim/v2/Users"))
        .bearer_auth(&s.token)
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(app.store.resource_count(org, "User").await.unwrap(), 0);
    assert!(
        app.store
            .changes_since(org, 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn discovery_endpoints_describe_users_groups_and_the_enterprise_extension() {
    let app = spawn_app(Backend::Sqlite).await;
    let (s, _) = scim(&app, "Acme").await;
    let (st, rts) = s.get("/ResourceTypes").await;
    assert_eq!(st, 200);
    assert_eq!(rts["totalResults"], 2);
    let (st, user_rt) = s.get("/ResourceTypes/User").await;
    assert_eq!((st, user_rt["endpoint"].clone()), (200, json!("/Users")));
    let (st, schemas) = s.get("/Schemas").await;
    assert_eq!(st, 200);
    assert!(
        schemas
            .to_string()
            .contains("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
    );
    let (st, _) = s
        .get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:Group")
        .await;
    assert_eq!(st, 200);
    let (st, cfg) = s.get("/ServiceProviderConfig").await;
    assert_eq!(
        (
            st,
            cfg["patch"]["supported"].clone(),
            cfg["etag"]["supported"].clone()
        ),
        (200, json!(true), json!(true))
    );
    assert_eq!(
        cfg["pagination"]["cursor"], true,
        "RFC 9865 cursors are advertised"
    );
    assert_eq!(cfg["pagination"]["maxPageSize"], 1000);
    assert_eq!(cfg["bulk"]["maxOperations"], 1000);
}
