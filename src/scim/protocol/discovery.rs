//! Renders the discovery resources `/Schemas` (RFC 7643 §7, RFC 7644 §4) and
//! `/ResourceTypes` (RFC 7643 §6) from the static schema definitions.
//!
//! Pure rendering. This module must never read configuration or storage; the
//! caller passes the public base URL (e.g. `https://host/scim/v2`).

use serde_json::{Map, Value, json};

use super::schema::{ALL_SCHEMAS, AttrType, AttributeDef, ResourceType, SchemaDef};
use super::{RESOURCE_TYPE_URN, SCHEMA_URN};

fn attribute_json(a: &AttributeDef) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), a.name.into());
    m.insert("type".into(), a.ty.as_str().into());
    m.insert("multiValued".into(), a.multi_valued.into());
    m.insert("description".into(), a.description.into());
    m.insert("required".into(), a.required.into());
    if matches!(
        a.ty,
        AttrType::String | AttrType::Reference | AttrType::Binary
    ) {
        m.insert("caseExact".into(), a.case_exact.into());
    }
    if !a.canonical_values.is_empty() {
        m.insert("canonicalValues".into(), json!(a.canonical_values));
    }
    if a.ty == AttrType::Reference {
        m.insert("referenceTypes".into(), json!(a.reference_types));
    }
    m.insert("mutability".into(), a.mutability.as_str().into());
    m.insert("returned".into(), a.returned.as_str().into());
    if a.ty != AttrType::Complex && a.ty != AttrType::Boolean {
        m.insert("uniqueness".into(), a.uniqueness.as_str().into());
    }
    if a.ty == AttrType::Complex {
        let subs: Vec<Value> = a.sub_attributes.iter().map(attribute_json).collect();
        m.insert("subAttributes".into(), Value::Array(subs));
    }
    Value::Object(m)
}

fn base(base_url: &str) -> &str {
    base_url.trim_end_matches('/')
}

/// One schema resource as served at `/Schemas/{urn}` (RFC 7643 §7, RFC 7644 §4).
pub fn schema_json(schema: &SchemaDef, base_url: &str) -> Value {
    json!({
        "schemas": [SCHEMA_URN],
        "id": schema.id,
        "name": schema.name,
        "description": schema.description,
        "attributes": schema.attributes.iter().map(attribute_json).collect::<Vec<_>>(),
        "meta": {
            "resourceType": "Schema",
            "location": format!("{}/Schemas/{}", base(base_url), schema.id),
        }
    })
}

/// All schema resources for `/Schemas` (RFC 7643 §7, RFC 7644 §4).
pub fn schemas_json(base_url: &str) -> Vec<Value> {
    ALL_SCHEMAS
        .iter()
        .map(|s| schema_json(s, base_url))
        .collect()
}

/// One resource type as served at `/ResourceTypes/{name}` (RFC 7643 §6).
pub fn resource_type_json(rt: ResourceType, base_url: &str) -> Value {
    let ext: Vec<Value> = rt
        .extension_urns()
        .iter()
        .map(|u| json!({"schema": u, "required": false}))
        .collect();
    let description = match rt {
        ResourceType::User => "User Account",
        ResourceType::Group => "Group",
    };
    json!({
        "schemas": [RESOURCE_TYPE_URN],
        "id": rt.name(),
        "name": rt.name(),
        "endpoint": rt.endpoint(),
        "description": description,
        "schema": rt.core_schema_urn(),
        "schemaExtensions": ext,
        "meta": {
            "resourceType": "ResourceType",
            "location": format!("{}/ResourceTypes/{}", base(base_url), rt.name()),
        }
    })
}

/// All resource types for `/ResourceTypes` (RFC 7643 §6, RFC 7644 §4).
pub fn resource_types_json(base_url: &str) -> Vec<Value> {
    [ResourceType::User, ResourceType::Group]
        .into_iter()
        .map(|rt| resource_type_json(rt, base_url))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_lists_user_enterprise_and_group() {
        let all = schemas_json("https://example.com/scim/v2/");
        let ids: Vec<&str> = all.iter().filter_map(|s| s["id"].as_str()).collect();
        assert_eq!(
            ids,
            [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
                "urn:ietf:params:scim:schemas:core:2.0:Group"
            ]
        );
        assert_eq!(
            all[0]["meta"]["location"],
            "https://example.com/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User"
        );
    }

    #[test]
    fn user_schema_renders_emails_with_sub_attributes() {
        let all = schemas_json("https://x");
        let attrs = all[0]["attributes"].as_array().cloned().unwrap_or_default();
        let emails = attrs.iter().find(|a| a["name"] == "emails").cloned();
        let emails = emails.unwrap_or(Value::Null);
        assert_eq!(emails["multiValued"], true);
        assert_eq!(emails["type"], "complex");
        let subs = emails["subAttributes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let subs: Vec<&str> = subs.iter().filter_map(|s| s["name"].as_str()).collect();
        assert_eq!(subs, ["value", "display", "type", "primary"]);
        let password = attrs.iter().find(|a| a["name"] == "password").cloned();
        assert_eq!(
            password.map(|p| p["returned"].clone()),
            Some(json!("never"))
        );
    }

    #[test]
    fn resource_types_name_user_with_enterprise_extension() {
        let rts = resource_types_json("https://x/scim/v2");
        assert_eq!(rts.len(), 2);
        assert_eq!(rts[0]["endpoint"], "/Users");
        assert_eq!(
            rts[0]["schemaExtensions"][0]["schema"],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        );
        assert_eq!(
            rts[1]["schema"],
            "urn:ietf:params:scim:schemas:core:2.0:Group"
        );
        assert_eq!(
            rts[1]["meta"]["location"],
            "https://x/scim/v2/ResourceTypes/Group"
        );
    }
}
