//! SCIM Bulk (RFC 7644 §3.7) over HTTP.

use serde_json::json;

use crate::helpers::{backends, spawn_app};
use crate::scim_crud::{entra_user, scim};

#[tokio::test]
async fn bulk_creates_a_user_and_a_group_that_references_it_by_bulk_id() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (s, _) = scim(&app, "Acme").await;
        // The group comes first but references the user: it must run second.
        let req = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "failOnErrors": 5,
            "Operations": [
                {"method": "POST", "path": "/Groups", "bulkId": "g1",
                 "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Buyers", "members": [{"type": "User", "value": "bulkId:u1"}]}},
                {"method": "POST", "path": "/Users", "bulkId": "u1", "data": entra_user("bulk@acme.example")},
                {"method": "PATCH", "path": "/Users/bulkId:u1", "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "title", "value": "Lead buyer"}]}},
                {"method": "POST", "path": "/Users", "bulkId": "dup", "data": entra_user("bulk@acme.example")},
                {"method": "DELETE", "path": "/Users/00000000-0000-0000-0000-000000000000"}
            ]
        });
        let (status, res) = s.post("/Bulk", req).await;
        assert_eq!(status, 200, "{backend:?} {res}");
        let ops = res["Operations"].as_array().unwrap();
        let by_bulk = |id: &str| ops.iter().find(|o| o["bulkId"] == id).unwrap().clone();
        assert_eq!(by_bulk("u1")["status"], "201", "{res}");
        assert_eq!(by_bulk("g1")["status"], "201", "{res}");
        assert_eq!(by_bulk("dup")["status"], "409", "{res}");
        let user_location = by_bulk("u1")["location"].as_str().unwrap().to_string();
        let user_id = user_location.rsplit('/').next().unwrap();
        let (_, user) = s.get(&format!("/Users/{user_id}")).await;
        assert_eq!(user["title"], "Lead buyer");
        assert_eq!(user["groups"][0]["display"], "Buyers");
        assert!(
            ops.iter()
                .any(|o| o["method"] == "DELETE" && o["status"] == "404"),
            "{res}"
        );
    }
}

#[tokio::test]
async fn fail_on_errors_stops_the_run_and_unknown_bulk_ids_conflict() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (s, _) = scim(&app, "Acme").await;
        let req = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "failOnErrors": 1,
            "Operations": [
                {"method": "PATCH", "path": "/Users/bulkId:nowhere", "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "title", "value": "x"}]}},
                {"method": "POST", "path": "/Users", "bulkId": "late", "data": entra_user("late@acme.example")}
            ]
        });
        let (status, res) = s.post("/Bulk", req).await;
        assert_eq!(status, 200, "{backend:?} {res}");
        let ops = res["Operations"].as_array().unwrap();
        assert_eq!(ops.len(), 1, "stopped after the first failure: {res}");
        assert_eq!(ops[0]["status"], "409");
        let (_, list) = s.get("/Users?count=0").await;
        assert_eq!(list["totalResults"], 0);
    }
}
