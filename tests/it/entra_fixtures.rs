//! What Microsoft Entra ID really sends, over HTTP: the provisioning
//! cycle's probe, capitalised attribute names from its validator, pathless
//! replaces with dotted and URN-qualified keys, manager as a plain id,
//! several adds building one address, and its group schema URI.

use serde_json::json;

use crate::helpers::{backends, spawn_app};
use crate::scim_crud::{entra_user, scim};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

#[tokio::test]
async fn entra_provisioning_cycle_probes_creates_and_updates_a_user() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (s, _) = scim(&app, "Contoso").await;
        // Probe: filter on userName, expect an empty list (never a 4xx, never a duplicate later).
        let (st, probe) = s
            .get("/Users?filter=userName+eq+%22Test_User_00aa00aa%40contoso.com%22")
            .await;
        assert_eq!(
            (st, probe["totalResults"].clone()),
            (200, json!(0)),
            "{backend:?}"
        );
        // Microsoft's validator capitalises attribute names.
        let (st, created) = s
            .post("/Users", json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
                "UserName": "Test_User_00aa00aa@contoso.com",
                "Active": true,
                "DisplayName": "Test User",
                "Emails": [{"Primary": true, "Type": "work", "Value": "Test_User_00aa00aa@contoso.com"}],
                "ExternalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
                "Name": {"FamilyName": "User", "GivenName": "Test"}
            }))
            .await;
        assert_eq!(st, 201, "{created}");
        assert_eq!(created["userName"], "Test_User_00aa00aa@contoso.com");
        assert_eq!(created["name"]["givenName"], "Test");
        assert!(
            created.get("UserName").is_none(),
            "stored under canonical names: {created}"
        );
        let id = created["id"].as_str().unwrap().to_string();
        let (_, probe) = s
            .get("/Users?filter=userName+eq+%22test_user_00aa00aa%40CONTOSO.com%22")
            .await;
        assert_eq!(probe["totalResults"], 1);

        // A manager to point at.
        let (_, manager) = s.post("/Users", entra_user("boss@contoso.com")).await;
        let manager_id = manager["id"].as_str().unwrap();

        let (st, patched) = s
            .patch(
                &format!("/Users/{id}"),
                json!([
                    {"op": "Replace", "value": {"name.givenName": "Testy", format!("{ENTERPRISE}:employeeNumber"): "42"}},
                    {"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": manager_id},
                    {"op": "Add", "path": "addresses[type eq \"work\"].streetAddress", "value": "1 Microsoft Way"},
                    {"op": "Add", "path": "addresses[type eq \"work\"].locality", "value": "Redmond"},
                    {"op": "Add", "path": "addresses[type eq \"work\"].postalCode", "value": "98052"},
                    {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "testy@contoso.com"},
                    {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0100"}
                ]),
            )
            .await;
        assert_eq!(st, 200, "{backend:?} {patched}");
        assert_eq!(patched["name"]["givenName"], "Testy");
        assert_eq!(patched[ENTERPRISE]["employeeNumber"], "42");
        assert_eq!(patched[ENTERPRISE]["manager"]["value"], manager_id);
        let addresses = patched["addresses"].as_array().unwrap();
        assert_eq!(
            addresses.len(),
            1,
            "one address built from three adds: {patched}"
        );
        assert_eq!(addresses[0]["locality"], "Redmond");
        assert_eq!(patched["emails"][0]["value"], "testy@contoso.com");
        assert_eq!(patched["phoneNumbers"][0]["value"], "+1 555 0100");
        // The new work email is what filters find.
        let (_, found) = s
            .get("/Users?filter=emails.value+eq+%22testy%40contoso.com%22")
            .await;
        assert_eq!(found["totalResults"], 1);
    }
}

#[tokio::test]
async fn entra_groups_with_the_adscim_schema_uri_and_member_removal_by_value_array() {
    for backend in backends() {
        let app = spawn_app(backend).await;
        let (s, _) = scim(&app, "Contoso").await;
        let (_, a) = s.post("/Users", entra_user("a@contoso.com")).await;
        let (_, b) = s.post("/Users", entra_user("b@contoso.com")).await;
        let (a, b) = (
            a["id"].as_str().unwrap().to_string(),
            b["id"].as_str().unwrap().to_string(),
        );
        let (st, g) = s
            .post("/Groups", json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group", "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
                "externalId": "8aa1a0c0-c4c3-4bc0-a4a5-2ef676900159",
                "displayName": "Group1DisplayName",
                "meta": {"resourceType": "Group"}
            }))
            .await;
        assert_eq!(st, 201, "{backend:?} {g}");
        let path = format!("/Groups/{}", g["id"].as_str().unwrap());
        let (st, _) = s
            .patch(
                &path,
                json!([{"op": "Add", "path": "members", "value": [{"value": a}, {"value": b}]}]),
            )
            .await;
        assert_eq!(st, 200);
        let (st, g) = s
            .patch(
                &path,
                json!([{"op": "Remove", "path": "members", "value": [{"value": a}]}]),
            )
            .await;
        assert_eq!(st, 200, "{g}");
        assert_eq!(g["members"].as_array().unwrap().len(), 1);
        assert_eq!(g["members"][0]["value"], b.as_str());
        // Entra's group probe.
        let (st, found) = s
            .get("/Groups?filter=displayName+eq+%22Group1DisplayName%22&excludedAttributes=members")
            .await;
        assert_eq!((st, found["totalResults"].clone()), (200, json!(1)));
        assert!(found["Resources"][0].get("members").is_none());
        let (_, by_member) = s
            .get(&format!("/Groups?filter=members.value+eq+%22{b}%22"))
            .await;
        assert_eq!(by_member["totalResults"], 1);
    }
}
