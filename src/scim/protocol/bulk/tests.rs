//! Tests of bulk parsing, bulkId resolution and ordering (RFC 7644 §3.7).
//!
//! Test-only code: it must never be compiled into the server.

use super::*;
use serde_json::json;

const LIMITS: BulkLimits = BulkLimits {
    max_operations: 10,
    max_payload_bytes: 1_048_576,
};

/// RFC 7644 §3.7.2: a group whose member is a user created in the same request.
fn rfc_example() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            {"method": "POST", "path": "/Groups", "bulkId": "ytrewq",
             "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                      "displayName": "Tour Guides",
                      "members": [{"type": "User", "value": "bulkId:qwerty"}]}},
            {"method": "post", "path": "/Users", "bulkId": "qwerty",
             "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "Alice"}},
            {"method": "Delete", "path": "/Users/b7c14771-226c-4d05-8860-134711653041",
             "version": "W/\"0ee8add0a938e1a\""}
        ]
    })
}

fn parsed(body: &Value) -> BulkRequest {
    parse_bulk(body, 100, &LIMITS).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn rfc_bulk_request_parses_with_methods_in_any_case() {
    let req = parsed(&rfc_example());
    let methods: Vec<_> = req
        .operations
        .iter()
        .map(|o| o.as_ref().ok().map(|o| o.method))
        .collect();
    assert_eq!(
        methods,
        [
            Some(BulkMethod::Post),
            Some(BulkMethod::Post),
            Some(BulkMethod::Delete)
        ]
    );
    let del = req.operations.get(2).and_then(|o| o.as_ref().ok());
    assert_eq!(
        del.and_then(|d| d.id.as_deref()),
        Some("b7c14771-226c-4d05-8860-134711653041")
    );
    assert_eq!(
        del.and_then(|d| d.version.as_deref()),
        Some("W/\"0ee8add0a938e1a\"")
    );
}

#[test]
fn referencing_operation_is_ordered_after_its_definition() {
    let req = parsed(&rfc_example());
    let plan = plan_order(&req.operations);
    assert_eq!(plan.order, [1, 0, 2]);
    assert!(plan.cyclic.is_empty());
}

#[test]
fn circular_references_are_reported_not_ordered() {
    let body = json!({
        "schemas": [BULK_REQUEST_URN],
        "Operations": [
            {"method": "POST", "path": "/Groups", "bulkId": "a",
             "data": {"displayName": "A", "members": [{"value": "bulkId:b"}]}},
            {"method": "POST", "path": "/Groups", "bulkId": "b",
             "data": {"displayName": "B", "members": [{"value": "bulkId:a"}]}},
            {"method": "PATCH", "path": "/Groups/bulkId:b",
             "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "add", "path": "members", "value": []}]}},
            {"method": "POST", "path": "/Users", "bulkId": "self", "data": {"userName": "bulkId:self"}},
            {"method": "POST", "path": "/Users", "bulkId": "ok", "data": {"userName": "x"}}
        ]
    });
    let plan = plan_order(&parsed(&body).operations);
    assert_eq!(plan.order, [4]);
    assert_eq!(plan.cyclic, [0, 1, 2, 3]);
}

#[test]
fn bulk_ids_are_replaced_everywhere_in_data() {
    let mut data = json!({"displayName": "Tour Guides",
        "members": [{"type": "User", "value": "bulkId:qwerty"}, {"value": "plain"}],
        "nested": {"deep": ["bulkId:qwerty"]}});
    let ids = HashMap::from([("qwerty".to_string(), "92b725cd".to_string())]);
    assert_eq!(resolve_bulk_ids(&mut data, &ids), Ok(()));
    assert_eq!(data["members"][0]["value"], "92b725cd");
    assert_eq!(data["members"][1]["value"], "plain");
    assert_eq!(data["nested"]["deep"][0], "92b725cd");
    let mut other = json!({"members": [{"value": "bulkId:missing"}]});
    let err = resolve_bulk_ids(&mut other, &ids);
    assert_eq!(err, Err(Unresolved("missing".into())));
    assert_eq!(err.err().map(|e| e.to_scim_error().status), Some(409));
    assert_eq!(
        resolve_id("bulkId:qwerty", &ids),
        Ok("92b725cd".to_string())
    );
}

#[test]
fn over_limit_payload_or_operation_count_is_413() {
    let e = parse_bulk(&rfc_example(), 2_000_000, &LIMITS).err();
    assert_eq!(e.as_ref().map(|e| e.status), Some(413));
    assert_eq!(
        e.map(|e| e.detail),
        Some("The size of the bulk operation exceeds the maxPayloadSize (1048576).".to_string())
    );
    let small = BulkLimits {
        max_operations: 2,
        ..LIMITS
    };
    let e = parse_bulk(&rfc_example(), 100, &small).err();
    assert_eq!(e.map(|e| e.status), Some(413));
}

#[test]
fn malformed_operations_become_per_operation_errors() {
    let body = json!({
        "schemas": [BULK_REQUEST_URN], "failOnErrors": 1,
        "Operations": [
            {"method": "POST", "path": "/Users", "data": {"userName": "no-bulk-id"}},
            {"method": "GET", "path": "/Users/1"},
            {"method": "PUT", "path": "/Users"  , "data": {}},
            {"method": "PATCH", "path": "/Widgets/1", "data": {}},
            {"method": "PUT", "path": "/Users/1"},
            "not an object"
        ]
    });
    let req = parsed(&body);
    assert_eq!(req.fail_on_errors, Some(1));
    assert!(req.operations.iter().all(Result::is_err));
    let first = req.operations.first().and_then(|o| o.as_ref().err());
    assert_eq!(first.and_then(|e| e.method.as_deref()), Some("POST"));
}

#[test]
fn bad_envelopes_are_invalid_syntax() {
    for body in [
        json!([]),
        json!({"Operations": []}),
        json!({"schemas": [BULK_REQUEST_URN]}),
    ] {
        let t = parse_bulk(&body, 10, &LIMITS)
            .err()
            .and_then(|e| e.scim_type);
        assert_eq!(t, Some(ScimType::InvalidSyntax), "{body}");
    }
    let body = json!({"schemas": [BULK_REQUEST_URN], "Operations": [], "failOnErrors": "x"});
    assert!(parse_bulk(&body, 10, &LIMITS).is_err());
}

#[test]
fn bulk_response_renders_rfc_shape() {
    let ok = BulkOpResult {
        method: "POST".into(),
        bulk_id: Some("qwerty".into()),
        version: Some("W/\"4weymrEsh5O6cAEK\"".into()),
        location: Some("https://example.com/v2/Users/92b725cd".into()),
        status: 201,
        response: None,
    };
    let bad = BulkOpResult::error(
        "DELETE",
        None,
        &ScimError::not_found("Resource does not exist."),
    );
    let body = bulk_response(vec![ok, bad]);
    assert_eq!(
        body,
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkResponse"],
            "Operations": [
                {"method": "POST", "bulkId": "qwerty", "version": "W/\"4weymrEsh5O6cAEK\"",
                 "location": "https://example.com/v2/Users/92b725cd", "status": "201"},
                {"method": "DELETE", "status": "404",
                 "response": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                              "status": "404", "detail": "Resource does not exist."}}
            ]
        })
    );
}

#[test]
fn a_bulk_id_used_twice_is_refused_for_the_whole_request() {
    let body = json!({
        "schemas": [BULK_REQUEST_URN],
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "q", "data": {"userName": "a"}},
            {"method": "POST", "path": "/Users", "bulkId": "other", "data": {"userName": "b"}},
            {"method": "POST", "path": "/Groups", "bulkId": "q", "data": {"displayName": "g"}},
        ]
    });
    let e = parse_bulk(&body, 10, &LIMITS).unwrap_err();
    assert_eq!(e.status, 400);
    assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
    assert!(e.detail.contains("'q'"), "{}", e.detail);
}
