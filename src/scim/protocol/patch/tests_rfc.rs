//! PATCH behaviour against the examples and rules of RFC 7644 §3.5.2.
//!
//! Test-only code: it must never be compiled into the server.

use super::super::error::ScimType;
use super::*;
use serde_json::json;

pub(super) fn user() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "userName": "bjensen@example.com",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "meta": {"resourceType": "User", "created": "2010-01-23T04:56:22Z"}
    })
}

pub(super) fn group() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": "abf4dd94-a4c0-4f67-89c9-76b03340cb9b",
        "displayName": "Tour Guides"
    })
}

pub(super) fn ops(list: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": list})
}

pub(super) fn run(
    resource: &mut Value,
    rt: ResourceType,
    body: Value,
) -> Result<PatchOutcome, ScimError> {
    let req = parse_patch(&body)?;
    apply_patch(resource, rt, &req)
}

pub(super) fn ok(resource: &mut Value, rt: ResourceType, list: Value) -> PatchOutcome {
    run(resource, rt, ops(list)).unwrap_or_else(|e| panic!("{e}"))
}

pub(super) fn err_type(resource: &mut Value, rt: ResourceType, list: Value) -> Option<ScimType> {
    run(resource, rt, ops(list)).err().and_then(|e| e.scim_type)
}

#[test]
fn pathless_add_appends_emails_and_sets_nick_name() {
    // RFC 7644 §3.5.2.1, second example.
    let mut u = user();
    ok(
        &mut u,
        ResourceType::User,
        json!([{"op": "add", "value": {
        "emails": [{"value": "babs@jensen.org", "type": "home"}, {"value": "b@new.example", "type": "other"}],
        "nickName": "Babs"}}]),
    );
    assert_eq!(u["nickName"], "Babs");
    assert_eq!(
        u["emails"].as_array().map(Vec::len),
        Some(3),
        "duplicate home email not added twice"
    );
}

#[test]
fn add_with_path_sets_simple_and_sub_attributes() {
    let mut u = user();
    ok(
        &mut u,
        ResourceType::User,
        json!([
            {"op": "add", "path": "title", "value": "Tour Guide"},
            {"op": "add", "path": "name.middleName", "value": "Jane"}
        ]),
    );
    assert_eq!(u["title"], "Tour Guide");
    assert_eq!(
        u["name"],
        json!({"givenName": "Barbara", "familyName": "Jensen", "middleName": "Jane"})
    );
}

#[test]
fn replace_of_complex_attribute_merges_sub_attributes() {
    let mut u = user();
    ok(
        &mut u,
        ResourceType::User,
        json!([{"op": "replace", "path": "name", "value": {"givenName": "Babs"}}]),
    );
    assert_eq!(
        u["name"],
        json!({"givenName": "Babs", "familyName": "Jensen"})
    );
}

#[test]
fn replace_of_multi_valued_attribute_without_filter_replaces_all_values() {
    let mut u = user();
    ok(
        &mut u,
        ResourceType::User,
        json!([{"op": "replace", "path": "emails", "value": [{"value": "only@example.com"}]}]),
    );
    assert_eq!(u["emails"], json!([{"value": "only@example.com"}]));
}

#[test]
fn pathless_replace_sets_each_attribute() {
    // RFC 7644 §3.5.2.3, last example.
    let mut u = user();
    ok(
        &mut u,
        ResourceType::User,
        json!([{"op": "replace", "value": {
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true},
                   {"value": "babs@jensen.org", "type": "home"}],
        "nickName": "Babs"}}]),
    );
    assert_eq!(u["nickName"], "Babs");
    assert_eq!(u["emails"], user()["emails"]);
}

#[test]
fn replace_through_filter_updates_only_matching_values() {
    let mut u = user();
    ok(
        &mut u,
        ResourceType::User,
        json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "new@example.com"}]),
    );
    assert_eq!(u["emails"][0]["value"], "new@example.com");
    assert_eq!(u["emails"][1]["value"], "babs@jensen.org");
}

#[test]
fn replace_of_selected_value_object_keeps_the_filter_attributes() {
    // RFC 7644 §3.5.2.3: addresses[type eq "work"] replaced by an object.
    let mut u = user();
    ok(
        &mut u,
        ResourceType::User,
        json!([
            {"op": "add", "path": "addresses", "value": [{"type": "work", "streetAddress": "old", "locality": "x"}]},
            {"op": "replace", "path": "addresses[type eq \"work\"]", "value": {
                "streetAddress": "911 Universal City Plaza", "locality": "Hollywood", "region": "CA",
                "postalCode": "91608", "country": "US", "formatted": "911 Universal City Plaza\nHollywood, CA 91608 US",
                "primary": true}},
            {"op": "replace", "path": "addresses[type eq \"work\"].streetAddress", "value": "1010 Broadway Ave"}
        ]),
    );
    let a = &u["addresses"][0];
    assert_eq!(a["type"], "work");
    assert_eq!(a["streetAddress"], "1010 Broadway Ave");
    assert_eq!(a["primary"], true);
}

#[test]
fn remove_through_filter_removes_matching_values() {
    // RFC 7644 §3.5.2.2.
    let mut u = user();
    ok(
        &mut u,
        ResourceType::User,
        json!([{"op": "remove", "path": "emails[type eq \"work\" and value ew \"example.com\"]"}]),
    );
    assert_eq!(
        u["emails"],
        json!([{"value": "babs@jensen.org", "type": "home"}])
    );
    ok(
        &mut u,
        ResourceType::User,
        json!([{"op": "remove", "path": "emails[type eq \"home\"]"}]),
    );
    assert!(
        u.get("emails").is_none(),
        "empty multi-valued attribute is unassigned"
    );
}

#[test]
fn remove_of_sub_attribute_through_filter_keeps_the_value() {
    let mut u = user();
    ok(
        &mut u,
        ResourceType::User,
        json!([{"op": "remove", "path": "emails[type eq \"work\"].primary"}]),
    );
    assert_eq!(
        u["emails"][0],
        json!({"value": "bjensen@example.com", "type": "work"})
    );
}

#[test]
fn remove_of_simple_and_sub_attributes() {
    let mut u = user();
    ok(
        &mut u,
        ResourceType::User,
        json!([
            {"op": "remove", "path": "name.givenName"},
            {"op": "remove", "path": "active"},
            {"op": "remove", "path": "nickName"}
        ]),
    );
    assert_eq!(u["name"], json!({"familyName": "Jensen"}));
    assert!(u.get("active").is_none());
}

#[test]
fn remove_without_path_is_no_target() {
    let t = parse_patch(&ops(json!([{"op": "remove"}])))
        .err()
        .and_then(|e| e.scim_type);
    assert_eq!(t, Some(ScimType::NoTarget));
}

#[test]
fn removing_required_user_name_is_invalid_value() {
    let mut u = user();
    assert_eq!(
        err_type(
            &mut u,
            ResourceType::User,
            json!([{"op": "remove", "path": "userName"}])
        ),
        Some(ScimType::InvalidValue)
    );
    assert_eq!(
        err_type(
            &mut u,
            ResourceType::User,
            json!([{"op": "replace", "path": "userName", "value": null}])
        ),
        Some(ScimType::InvalidValue)
    );
}

#[test]
fn read_only_attributes_are_mutability_errors() {
    let mut u = user();
    for op in [
        json!({"op": "replace", "path": "id", "value": "other"}),
        json!({"op": "replace", "path": "meta.created", "value": "2020-01-01T00:00:00Z"}),
        json!({"op": "add", "path": "groups", "value": [{"value": "g1"}]}),
        json!({"op": "replace", "value": {"meta": {"version": "x"}}}),
        json!({"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.displayName", "value": "x"}),
    ] {
        assert_eq!(
            err_type(&mut u, ResourceType::User, json!([op])),
            Some(ScimType::Mutability),
            "{op}"
        );
    }
    assert_eq!(u, user());
}

#[test]
fn unknown_attributes_of_known_schemas_are_invalid_path() {
    let mut u = user();
    for op in [
        json!({"op": "replace", "path": "nosuch", "value": "x"}),
        json!({"op": "replace", "path": "name.nosuch", "value": "x"}),
        json!({"op": "add", "value": {"nosuch": 1}}),
        json!({"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:nosuch", "value": "x"}),
        json!({"op": "replace", "path": "emails[nosuch eq \"x\"].value", "value": "x"}),
        json!({"op": "replace", "path": "name[givenName eq \"x\"]", "value": "x"}),
        json!({"op": "replace", "path": "emails[type eq \"work\"].nosuch", "value": "x"}),
    ] {
        assert_eq!(
            err_type(&mut u, ResourceType::User, json!([op])),
            Some(ScimType::InvalidPath),
            "{op}"
        );
    }
}

#[test]
fn a_failing_operation_leaves_the_resource_unchanged() {
    let mut u = user();
    let r = run(
        &mut u,
        ResourceType::User,
        ops(json!([
            {"op": "replace", "path": "title", "value": "Boss"},
            {"op": "replace", "path": "active", "value": "maybe"}
        ])),
    );
    assert_eq!(
        r.err().and_then(|e| e.scim_type),
        Some(ScimType::InvalidValue)
    );
    assert_eq!(u, user());
}

#[test]
fn envelope_errors_are_invalid_syntax() {
    for body in [
        json!({"Operations": [{"op": "add", "path": "title", "value": "x"}]}),
        ops(json!([])),
        ops(json!([{"op": "copy", "path": "title"}])),
        ops(json!([{"path": "title"}])),
        ops(json!("nope")),
        json!("nope"),
    ] {
        let t = parse_patch(&body).err().and_then(|e| e.scim_type);
        assert_eq!(t, Some(ScimType::InvalidSyntax), "{body}");
    }
}

#[test]
fn operations_key_and_op_are_read_in_any_case() {
    let body = json!({"schemas": [PATCH_OP_URN], "operations": [{"OP": "Replace", "Path": "title", "Value": "x"}]});
    let req = parse_patch(&body).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(req.operations.first().map(|o| o.op), Some(PatchOp::Replace));
}

#[test]
fn add_without_value_is_invalid_value() {
    let t = parse_patch(&ops(json!([{"op": "add", "path": "title"}])))
        .err()
        .and_then(|e| e.scim_type);
    assert_eq!(t, Some(ScimType::InvalidValue));
    let t = parse_patch(&ops(json!([{"op": "add", "value": "x"}])))
        .err()
        .and_then(|e| e.scim_type);
    assert_eq!(t, Some(ScimType::InvalidValue));
}

#[test]
fn setting_a_new_primary_clears_the_others() {
    let mut u = user();
    ok(
        &mut u,
        ResourceType::User,
        json!([{"op": "add", "path": "emails", "value": [{"value": "n@x.org", "type": "other", "primary": true}]}]),
    );
    let flags: Vec<Value> = u["emails"]
        .as_array()
        .map(|a| a.iter().map(|e| e["primary"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(flags, [json!(false), Value::Null, json!(true)]);
    ok(
        &mut u,
        ResourceType::User,
        json!([{"op": "replace", "path": "emails[type eq \"home\"].primary", "value": true}]),
    );
    assert_eq!(u["emails"][1]["primary"], true);
    assert_eq!(u["emails"][2]["primary"], false);
}

#[test]
fn password_goes_to_the_outcome_not_the_json() {
    let mut u = user();
    let out = ok(
        &mut u,
        ResourceType::User,
        json!([{"op": "replace", "path": "password", "value": "t1meMa$heen"}]),
    );
    assert_eq!(out.password.as_deref(), Some("t1meMa$heen"));
    assert!(out.changed);
    assert!(u.get("password").is_none());
    let out = ok(
        &mut u,
        ResourceType::User,
        json!([{"op": "replace", "value": {"Password": "x2"}}]),
    );
    assert_eq!(out.password.as_deref(), Some("x2"));
}

#[test]
fn replacing_with_the_same_value_is_not_a_change() {
    let mut u = user();
    let out = ok(
        &mut u,
        ResourceType::User,
        json!([{"op": "replace", "path": "active", "value": true}]),
    );
    assert!(!out.changed);
    let out = ok(
        &mut u,
        ResourceType::User,
        json!([{"op": "replace", "path": "active", "value": false}]),
    );
    assert!(out.changed);
}

#[test]
fn attribute_names_are_stored_in_schema_spelling() {
    let mut u = user();
    ok(
        &mut u,
        ResourceType::User,
        json!([
            {"op": "replace", "path": "USERNAME", "value": "new"},
            {"op": "add", "path": "Name.GivenName", "value": "B"},
            {"op": "add", "value": {"DisplayName": "Babs", "PHONENUMBERS": [{"Value": "555", "TYPE": "work"}]}}
        ]),
    );
    assert_eq!(u["userName"], "new");
    assert_eq!(u["name"]["givenName"], "B");
    assert_eq!(u["displayName"], "Babs");
    assert_eq!(u["phoneNumbers"], json!([{"value": "555", "type": "work"}]));
    assert!(u.get("USERNAME").is_none() && u.get("DisplayName").is_none());
}

#[test]
fn filter_that_matches_nothing_and_describes_nothing_is_no_target() {
    let mut u = user();
    let t = err_type(
        &mut u,
        ResourceType::User,
        json!([{"op": "replace", "path": "emails[type ne \"work\" and type ne \"home\"].value", "value": "x"}]),
    );
    assert_eq!(t, Some(ScimType::NoTarget));
}

#[test]
fn rfc_add_member_to_group_is_a_member_change() {
    let mut g = group();
    let out = ok(
        &mut g,
        ResourceType::Group,
        json!([{"op": "add", "path": "members", "value": [{
        "display": "Babs Jensen",
        "$ref": "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646",
        "value": "2819c223-7f76-453a-919d-413861904646"}]}]),
    );
    assert_eq!(
        out.members,
        [MemberChange::Add(vec![
            "2819c223-7f76-453a-919d-413861904646".into()
        ])]
    );
    assert!(g.get("members").is_none());
    assert!(out.changed);
}

#[test]
fn rfc_member_removals_and_replacement() {
    let mut g = group();
    let out = ok(
        &mut g,
        ResourceType::Group,
        json!([
            {"op": "remove", "path": "members[value eq \"2819c223-7f76-...413861904646\"]"},
            {"op": "remove", "path": "members[value eq \"a\" or value eq \"b\"]"},
            {"op": "remove", "path": "members"},
            {"op": "replace", "path": "members", "value": [{"value": "c"}, {"value": "d"}]},
            {"op": "replace", "path": "members", "value": []}
        ]),
    );
    assert_eq!(
        out.members,
        [
            MemberChange::Remove(vec!["2819c223-7f76-...413861904646".into()]),
            MemberChange::Remove(vec!["a".into(), "b".into()]),
            MemberChange::RemoveAll,
            MemberChange::ReplaceAll(vec!["c".into(), "d".into()]),
            MemberChange::ReplaceAll(vec![]),
        ]
    );
}

#[test]
fn unsupported_member_shapes_are_rejected() {
    let mut g = group();
    let cases = [
        (
            json!({"op": "remove", "path": "members[display eq \"x\"]"}),
            ScimType::InvalidFilter,
        ),
        (
            json!({"op": "remove", "path": "members[value eq \"a\" and type eq \"User\"]"}),
            ScimType::InvalidFilter,
        ),
        (
            json!({"op": "replace", "path": "members[value eq \"a\"]", "value": {"value": "b"}}),
            ScimType::InvalidPath,
        ),
        (
            json!({"op": "replace", "path": "members.value", "value": "b"}),
            ScimType::InvalidPath,
        ),
        (
            json!({"op": "remove", "path": "members[value eq \"a\"].display"}),
            ScimType::InvalidPath,
        ),
        (
            json!({"op": "add", "path": "members", "value": [{"display": "no value"}]}),
            ScimType::InvalidValue,
        ),
        (
            json!({"op": "add", "path": "members", "value": "id"}),
            ScimType::InvalidValue,
        ),
    ];
    for (op, t) in cases {
        assert_eq!(
            err_type(&mut g, ResourceType::Group, json!([op])),
            Some(t),
            "{op}"
        );
    }
}

#[test]
fn custom_extension_attributes_round_trip_under_their_urn() {
    let mut u = user();
    ok(
        &mut u,
        ResourceType::User,
        json!([
            {"op": "add", "path": "urn:ietf:params:scim:schemas:extension:custom:2.0:User:foo", "value": "bar"},
            {"op": "add", "value": {"urn:ietf:params:scim:schemas:extension:custom:2.0:User:shoeSize": 42}}
        ]),
    );
    let key = "urn:ietf:params:scim:schemas:extension:custom:2.0:User";
    assert_eq!(u[key], json!({"foo": "bar", "shoeSize": 42}));
    assert_eq!(
        u["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:User", key])
    );
    ok(
        &mut u,
        ResourceType::User,
        json!([
            {"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:custom:2.0:User:foo"},
            {"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:custom:2.0:User:shoeSize"}
        ]),
    );
    assert!(u.get(key).is_none());
    assert_eq!(
        u["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:User"])
    );
}
