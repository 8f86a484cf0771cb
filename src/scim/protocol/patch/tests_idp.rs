//! PATCH fixtures in the shapes Microsoft Entra ID and Okta really send, from
//! "Develop and plan provisioning for a SCIM endpoint", "Known issues and
//! resolutions with SCIM 2.0 protocol compliance" (aadOptscim062020) and
//! Okta's "SCIM 2.0 protocol reference".
//!
//! Test-only code: it must never be compiled into the server.

use super::super::error::ScimType;
use super::super::{GROUP_URN, USER_URN};
use super::tests_rfc::{err_type, group, ok, user};
use super::*;
use serde_json::json;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

#[test]
fn entra_replace_active_with_string_false_deactivates() {
    let mut u = user();
    ok(
        &mut u,
        ResourceType::User,
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
    );
    assert_eq!(u["active"], false);
}

#[test]
fn entra_update_user_multi_valued_properties() {
    let mut u = user();
    ok(
        &mut u,
        ResourceType::User,
        json!([
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"},
            {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"}
        ]),
    );
    assert_eq!(u["emails"][0]["value"], "updatedEmail@microsoft.com");
    assert_eq!(u["name"]["familyName"], "updatedFamilyName");
}

#[test]
fn entra_add_through_filter_creates_the_missing_work_email() {
    let mut u = json!({"schemas": [USER_URN], "id": "1", "userName": "a",
        "emails": [{"value": "home@x.org", "type": "home"}]});
    ok(
        &mut u,
        ResourceType::User,
        json!([
            {"op": "Replace", "path": "title", "value": "tester"},
            {"op": "Add", "path": "emails[type eq \"work\"].value", "value": "someone@joe.com"}
        ]),
    );
    assert_eq!(
        u["emails"][1],
        json!({"type": "work", "value": "someone@joe.com"})
    );
    ok(
        &mut u,
        ResourceType::User,
        json!([{"op": "Add", "path": "emails[type eq \"work\"].value", "value": "second@joe.com"}]),
    );
    assert_eq!(
        u["emails"].as_array().map(Vec::len),
        Some(2),
        "second add updates, not appends"
    );
}

#[test]
fn entra_address_adds_in_one_request_build_one_address() {
    let mut u = json!({"schemas": [USER_URN], "id": "1", "userName": "a"});
    ok(
        &mut u,
        ResourceType::User,
        json!([
            {"op": "Add", "path": "addresses[type eq \"work\"].streetAddress", "value": "1 Main St"},
            {"op": "Add", "path": "addresses[type eq \"work\"].locality", "value": "Redmond"},
            {"op": "Add", "path": "addresses[type eq \"work\"].postalCode", "value": "98052"},
            {"op": "Add", "path": "addresses[type eq \"work\"].country", "value": "US"},
            {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0100"}
        ]),
    );
    assert_eq!(
        u["addresses"],
        json!([{"type": "work", "streetAddress": "1 Main St",
        "locality": "Redmond", "postalCode": "98052", "country": "US"}])
    );
    assert_eq!(
        u["phoneNumbers"],
        json!([{"type": "mobile", "value": "+1 555 0100"}])
    );
}

#[test]
fn entra_manager_as_plain_id_or_object_is_normalized() {
    let mut u = user();
    ok(
        &mut u,
        ResourceType::User,
        json!([{"op": "Add",
        "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
        "value": "45619541-95de-4d5e-9872-571b5d2c5577"}]),
    );
    assert_eq!(
        u[ENTERPRISE]["manager"],
        json!({"value": "45619541-95de-4d5e-9872-571b5d2c5577"})
    );
    assert_eq!(u["schemas"], json!([USER_URN, ENTERPRISE]));
    ok(
        &mut u,
        ResourceType::User,
        json!([{"op": "Replace",
        "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
        "value": {"value": "other-manager"}}]),
    );
    assert_eq!(u[ENTERPRISE]["manager"], json!({"value": "other-manager"}));
    ok(
        &mut u,
        ResourceType::User,
        json!([{"op": "Remove",
        "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"}]),
    );
    assert!(u.get(ENTERPRISE).is_none());
    assert_eq!(u["schemas"], json!([USER_URN]));
}

#[test]
fn entra_pathless_add_with_dotted_and_urn_qualified_keys() {
    // aadOptscim062020 sends one pathless operation carrying several attributes.
    let mut u = user();
    ok(
        &mut u,
        ResourceType::User,
        json!([{"op": "add", "value": {
            "nickName": "Babs",
            "name.givenName": "Barbara Jane",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "701984",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager": "26118915-6090-4610-87e4-49d8ca9f808d"
        }}]),
    );
    assert_eq!(u["nickName"], "Babs");
    assert_eq!(u["name"]["givenName"], "Barbara Jane");
    assert_eq!(
        u[ENTERPRISE],
        json!({"employeeNumber": "701984",
        "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}})
    );
}

#[test]
fn pathless_key_naming_a_read_only_sub_attribute_is_a_mutability_error() {
    let mut u = user();
    let t = err_type(
        &mut u,
        ResourceType::User,
        json!([{"op": "add", "value": {
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.displayName": "Boss"}}]),
    );
    assert_eq!(t, Some(ScimType::Mutability));
}

#[test]
fn entra_pathless_replace_with_extension_object_and_id() {
    let mut u = user();
    ok(
        &mut u,
        ResourceType::User,
        json!([{"op": "replace", "value": {
            "id": "2819c223-7f76-453a-919d-413861904646",
            "active": false,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"Department": "Sales", "costCenter": "4130"}
        }}]),
    );
    assert_eq!(u["active"], false);
    assert_eq!(
        u[ENTERPRISE],
        json!({"department": "Sales", "costCenter": "4130"})
    );
}

#[test]
fn entra_json_encoded_roles_are_decoded() {
    let mut u = user();
    ok(
        &mut u,
        ResourceType::User,
        json!([{"op": "Add", "path": "roles",
        "value": "[{\"value\":\"Admin\",\"display\":\"Admin\",\"type\":\"WindowsAzureActiveDirectoryRole\",\"primary\":false}]"}]),
    );
    assert_eq!(
        u["roles"],
        json!([{"value": "Admin", "display": "Admin",
        "type": "WindowsAzureActiveDirectoryRole", "primary": false}])
    );
}

#[test]
fn entra_group_member_add_and_remove_with_value_arrays() {
    let mut g = group();
    let out = ok(
        &mut g,
        ResourceType::Group,
        json!([
            {"op": "Add", "path": "members", "value": [{"value": "f648f8d5-ea3e-4cf2-9e5a-e4d4bf2b9c7c"}]},
            {"op": "Remove", "path": "members", "value": [{"value": "a4d0c6b1-4c4f-4a8b-9f3e-3c5f2b1d0e9a"}]},
            {"op": "Replace", "path": "displayName", "value": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"}
        ]),
    );
    assert_eq!(
        out.members,
        [
            MemberChange::Add(vec!["f648f8d5-ea3e-4cf2-9e5a-e4d4bf2b9c7c".into()]),
            MemberChange::Remove(vec!["a4d0c6b1-4c4f-4a8b-9f3e-3c5f2b1d0e9a".into()]),
        ]
    );
    assert_eq!(
        g["displayName"],
        "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"
    );
    assert!(g.get("members").is_none());
}

#[test]
fn unknown_extension_schema_objects_are_kept_as_sent() {
    let mut g = group();
    let adscim = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group";
    ok(
        &mut g,
        ResourceType::Group,
        json!([{"op": "Add", "value": {adscim: {"description": "Sales team", "mailNickname": "sales"}}}]),
    );
    assert_eq!(
        g[adscim],
        json!({"description": "Sales team", "mailNickname": "sales"})
    );
    ok(
        &mut g,
        ResourceType::Group,
        json!([{"op": "Replace", "value": {adscim: {"description": "Sales"}}}]),
    );
    assert_eq!(
        g[adscim],
        json!({"description": "Sales", "mailNickname": "sales"})
    );
    assert_eq!(g["schemas"], json!([GROUP_URN, adscim]));
}

#[test]
fn okta_deactivates_with_pathless_replace() {
    let mut u = user();
    let out = ok(
        &mut u,
        ResourceType::User,
        json!([{"op": "replace", "value": {"active": false}}]),
    );
    assert_eq!(u["active"], false);
    assert!(out.changed);
}

#[test]
fn okta_renames_group_with_pathless_replace_carrying_its_id() {
    let mut g = group();
    let out = ok(
        &mut g,
        ResourceType::Group,
        json!([{"op": "replace", "value": {
        "id": "abf4dd94-a4c0-4f67-89c9-76b03340cb9b", "displayName": "Test SCIMv2"}}]),
    );
    assert_eq!(g["displayName"], "Test SCIMv2");
    assert!(out.members.is_empty());
    let t = err_type(
        &mut g,
        ResourceType::Group,
        json!([{"op": "replace", "value": {"id": "someone-else", "displayName": "x"}}]),
    );
    assert_eq!(t, Some(ScimType::Mutability));
}

#[test]
fn okta_removes_by_filter_then_adds_in_one_request() {
    let mut g = group();
    let out = ok(
        &mut g,
        ResourceType::Group,
        json!([
            {"op": "remove", "path": "members[value eq \"89bb1940-b905-4575-9e7f-6f887cfb368e\"]"},
            {"op": "add", "path": "members", "value": [
                {"value": "23a35c27-23d3-4c03-b4c5-6443c09e7173", "display": "test.user@okta.local"}]}
        ]),
    );
    assert_eq!(
        out.members,
        [
            MemberChange::Remove(vec!["89bb1940-b905-4575-9e7f-6f887cfb368e".into()]),
            MemberChange::Add(vec!["23a35c27-23d3-4c03-b4c5-6443c09e7173".into()]),
        ]
    );
}

#[test]
fn pathless_members_key_becomes_member_changes() {
    let mut g = group();
    let out = ok(
        &mut g,
        ResourceType::Group,
        json!([
            {"op": "replace", "value": {"members": [{"value": "cb300cb6-9702-45a9-a909-f8b7c972ab7e"}]}},
            {"op": "add", "value": {"Members": [{"value": "x"}]}}
        ]),
    );
    assert_eq!(
        out.members,
        [
            MemberChange::ReplaceAll(vec!["cb300cb6-9702-45a9-a909-f8b7c972ab7e".into()]),
            MemberChange::Add(vec!["x".into()]),
        ]
    );
    assert!(g.get("members").is_none() && g.get("Members").is_none());
}

#[test]
fn a_whole_extension_value_carrying_its_own_schemas_key_is_accepted() {
    let mut u = user();
    ok(
        &mut u,
        ResourceType::User,
        json!([{
            "op": "replace",
            "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            "value": {
                "schemas": ["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
                "department": "Finance"
            }
        }]),
    );
    let ext = &u["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"];
    assert_eq!(ext["department"], "Finance");
    assert!(ext.get("schemas").is_none());
}
