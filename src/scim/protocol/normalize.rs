//! Normalization of POST/PUT bodies (RFC 7644 §3.3, §3.5.1): canonical
//! attribute names, typed values, one primary, read-only attributes dropped,
//! password and group members split out.
//!
//! It must never keep `id`, `meta` or `groups` sent by a client, never keep a
//! password in the JSON and never put group members in the JSON.

use serde_json::{Map, Value};

use super::error::ScimError;
use super::patch::{Engine, MemberChange, Mode, PatchOp};
use super::schema::ResourceType;

/// A POST/PUT body made ready to store (RFC 7644 §3.3, §3.5.1).
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    /// The resource JSON with canonical names, without read-only attributes, password or members.
    pub resource: Value,
    /// A cleartext password to hash, if one was sent (RFC 7643 §4.1.1).
    pub password: Option<String>,
    /// Member ids, when the body had `members` (Groups, RFC 7643 §4.2); `None` when absent.
    pub members: Option<Vec<String>>,
}

/// Normalizes a POST/PUT body for `rt` (RFC 7644 §3.3, §3.5.1). Wrong value types
/// are `invalidValue`; `userName` (User) or `displayName` (Group) is required.
/// Attributes of unknown extension schemas are kept as sent; unknown core
/// attributes are ignored.
pub fn normalize_resource(body: &Value, rt: ResourceType) -> Result<Normalized, ScimError> {
    if !body.is_object() {
        return Err(ScimError::invalid_syntax(
            "the resource must be a JSON object",
        ));
    }
    let mut res = Map::new();
    let mut engine = Engine::new(rt, Mode::Create);
    engine.pathless(&mut res, PatchOp::Replace, body)?;
    engine.finish(&mut res);
    let required = match rt {
        ResourceType::User => "userName",
        ResourceType::Group => "displayName",
    };
    match res.get(required) {
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        _ => {
            return Err(ScimError::invalid_value(format!(
                "'{required}' is required"
            )));
        }
    }
    let members = engine.members.iter().rev().find_map(|c| match c {
        MemberChange::ReplaceAll(ids) => Some(ids.clone()),
        _ => None,
    });
    Ok(Normalized {
        resource: Value::Object(res),
        password: engine.password,
        members,
    })
}

#[cfg(test)]
mod tests {
    use super::super::error::ScimType;
    use super::*;
    use serde_json::json;

    fn norm(body: Value, rt: ResourceType) -> Result<Normalized, ScimError> {
        normalize_resource(&body, rt)
    }

    /// Entra ID's create-user body (Develop and plan provisioning for a SCIM endpoint).
    #[test]
    fn entra_create_user_is_canonicalized() {
        let body = json!({
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
            "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
            "active": true,
            "emails": [{"primary": true, "type": "work", "value": "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"}],
            "meta": {"resourceType": "User"},
            "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
            "roles": []
        });
        let n = norm(body, ResourceType::User).unwrap_or_else(|e| panic!("{e}"));
        assert!(n.resource.get("meta").is_none());
        assert_eq!(n.resource["name"]["givenName"], "givenName");
        assert_eq!(n.resource["emails"][0]["primary"], true);
        assert!(n.resource.get("roles").is_none());
        assert_eq!(
            n.resource["schemas"],
            json!(["urn:ietf:params:scim:schemas:core:2.0:User"])
        );
    }

    #[test]
    fn names_are_canonicalized_and_boolean_strings_coerced() {
        let body = json!({"UserName": "bjensen", "ACTIVE": "False", "Name": {"GivenName": "Barbara"},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"Manager": "boss-id", "department": "Tour"}});
        let n = norm(body, ResourceType::User).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            n.resource,
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
                "userName": "bjensen",
                "active": false,
                "name": {"givenName": "Barbara"},
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":
                    {"manager": {"value": "boss-id"}, "department": "Tour"}
            })
        );
    }

    #[test]
    fn read_only_attributes_are_stripped_and_password_extracted() {
        let body = json!({"userName": "a", "id": "client-chosen", "groups": [{"value": "g"}],
            "meta": {"created": "x"}, "password": "t1meMa$heen"});
        let n = norm(body, ResourceType::User).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n.password.as_deref(), Some("t1meMa$heen"));
        for k in ["id", "groups", "meta", "password"] {
            assert!(n.resource.get(k).is_none(), "{k}");
        }
    }

    #[test]
    fn group_members_are_extracted_not_stored() {
        let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Tour Guides", "members": [{"value": "u1", "display": "Babs"}, {"value": "u2"}]});
        let n = norm(body, ResourceType::Group).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n.members, Some(vec!["u1".to_string(), "u2".to_string()]));
        assert!(n.resource.get("members").is_none());
        let n = norm(json!({"displayName": "g"}), ResourceType::Group).ok();
        assert_eq!(n.and_then(|n| n.members), None);
    }

    #[test]
    fn several_primaries_collapse_to_one() {
        let body = json!({"userName": "a", "emails": [
            {"value": "a@x", "primary": true}, {"value": "b@x", "primary": "true"}]});
        let n = norm(body, ResourceType::User).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n.resource["emails"][0]["primary"], false);
        assert_eq!(n.resource["emails"][1]["primary"], true);
    }

    #[test]
    fn json_encoded_roles_are_decoded_on_create() {
        let body = json!({"userName": "a", "roles": "[{\"value\":\"Admin\",\"primary\":false}]"});
        let n = norm(body, ResourceType::User).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            n.resource["roles"],
            json!([{"value": "Admin", "primary": false}])
        );
    }

    #[test]
    fn unknown_extension_objects_are_kept_as_sent() {
        let body = json!({"displayName": "g",
            "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group": {"description": "x", "Nested": {"A": 1}}});
        let n = norm(body, ResourceType::Group).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            n.resource["http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
            json!({"description": "x", "Nested": {"A": 1}})
        );
        assert_eq!(
            n.resource["schemas"],
            json!([
                "urn:ietf:params:scim:schemas:core:2.0:Group",
                "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
            ])
        );
    }

    #[rstest::rstest]
    #[case(json!({"userName": "a", "active": "maybe"}))]
    #[case(json!({"userName": 5}))]
    #[case(json!({"userName": "a", "emails": [{"value": 7}]}))]
    #[case(json!({"userName": "a", "name": "Barbara"}))]
    #[case(json!({"userName": "a", "emails": [{"value": "a@b", "nosuch": 1}]}))]
    #[case(json!({"active": true}))]
    #[case(json!({"userName": "  "}))]
    fn wrong_types_and_missing_user_name_are_invalid_value(#[case] body: Value) {
        let t = norm(body, ResourceType::User)
            .err()
            .and_then(|e| e.scim_type);
        assert_eq!(t, Some(ScimType::InvalidValue));
    }

    #[test]
    fn group_without_display_name_is_invalid_value() {
        let t = norm(json!({"members": []}), ResourceType::Group)
            .err()
            .and_then(|e| e.scim_type);
        assert_eq!(t, Some(ScimType::InvalidValue));
        let t = norm(json!([1]), ResourceType::Group)
            .err()
            .and_then(|e| e.scim_type);
        assert_eq!(t, Some(ScimType::InvalidSyntax));
    }
}
