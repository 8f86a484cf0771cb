//! Value helpers shared by PATCH, resource normalization and projection:
//! case-insensitive key lookup, coercion of client values to the schema's
//! types (RFC 7643 §2.3), `primary` uniqueness (RFC 7643 §2.4) and keeping
//! `schemas` in step with the extension objects present (RFC 7643 §3).
//!
//! Internal to `protocol`. It must never decide PATCH semantics or mutability;
//! its callers do.

use serde_json::{Map, Value};

use super::error::ScimError;
use super::schema::{AttrType, AttributeDef, Mutability, ResourceType};

/// Finds the key of `obj` equal to `name` ignoring ASCII case (RFC 7643 §2.1).
pub(super) fn find_key(obj: &Map<String, Value>, name: &str) -> Option<String> {
    if obj.contains_key(name) {
        return Some(name.to_string());
    }
    obj.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

/// Case-insensitive lookup (RFC 7643 §2.1).
pub(super) fn get_ci<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    find_key(obj, name).and_then(|k| obj.get(&k))
}

/// Renames a key spelled in another case to `canonical`; returns whether it exists.
pub(super) fn canonicalize_key(obj: &mut Map<String, Value>, canonical: &str) -> bool {
    match find_key(obj, canonical) {
        Some(k) if k == canonical => true,
        Some(k) => {
            if let Some(v) = obj.remove(&k) {
                obj.insert(canonical.to_string(), v);
            }
            true
        }
        None => false,
    }
}

/// Removes a key case-insensitively; returns the removed value.
pub(super) fn remove_ci(obj: &mut Map<String, Value>, name: &str) -> Option<Value> {
    find_key(obj, name).and_then(|k| obj.remove(&k))
}

/// Whether a top-level key names a schema (a URN or URI), i.e. holds extension attributes (RFC 7643 §3.3).
pub(super) fn is_schema_key(key: &str) -> bool {
    key.contains(':')
}

fn wrong(name: &str, def: &AttributeDef, v: &Value) -> ScimError {
    let got = match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    let want = if def.multi_valued && def.ty == AttrType::Complex {
        "a list of objects".to_string()
    } else {
        format!("a value of type {}", def.ty.as_str())
    };
    ScimError::invalid_value(format!("attribute '{name}' expects {want}, got {got}"))
}

/// Coerces a simple (non-complex) value to the type of `def` (RFC 7643 §2.3):
/// `"True"`/`"false"` become booleans, numeric strings become numbers.
pub(super) fn coerce_simple(def: &AttributeDef, v: &Value) -> Result<Value, ScimError> {
    let name = def.name;
    match (def.ty, v) {
        (_, Value::Null) => Ok(Value::Null),
        (
            AttrType::String | AttrType::Reference | AttrType::DateTime | AttrType::Binary,
            Value::String(_),
        ) => Ok(v.clone()),
        (AttrType::Boolean, Value::Bool(_)) => Ok(v.clone()),
        (AttrType::Boolean, Value::String(s)) if s.trim().eq_ignore_ascii_case("true") => {
            Ok(Value::Bool(true))
        }
        (AttrType::Boolean, Value::String(s)) if s.trim().eq_ignore_ascii_case("false") => {
            Ok(Value::Bool(false))
        }
        (AttrType::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(v.clone()),
        (AttrType::Integer, Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(|i| Value::Number(i.into()))
            .map_err(|_| wrong(name, def, v)),
        (AttrType::Decimal, Value::Number(_)) => Ok(v.clone()),
        (AttrType::Decimal, Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| wrong(name, def, v)),
        _ => Err(wrong(name, def, v)),
    }
}

/// A JSON document sent inside a string (Entra sends `roles` this way), decoded when it is one.
fn decode_embedded_json(v: &Value) -> Option<Value> {
    let s = v.as_str()?.trim();
    if !(s.starts_with('[') || s.starts_with('{')) {
        return None;
    }
    serde_json::from_str::<Value>(s)
        .ok()
        .filter(|d| d.is_array() || d.is_object())
}

/// Coerces the value of a complex attribute (one element when multi-valued) (RFC 7643 §2.3.8).
/// Sub-attribute names are canonicalized; read-only sub-attributes are dropped; a bare
/// primitive becomes `{"value": ...}` (Entra sends `manager` as a plain id).
pub(super) fn coerce_complex(def: &AttributeDef, v: &Value) -> Result<Value, ScimError> {
    match v {
        Value::Null => Ok(Value::Null),
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, x) in m {
                let sub = def.sub(k).ok_or_else(|| {
                    ScimError::invalid_value(format!(
                        "'{k}' is not a sub-attribute of '{}'",
                        def.name
                    ))
                })?;
                if sub.mutability == Mutability::ReadOnly {
                    continue;
                }
                let cx = coerce_simple(sub, x)?;
                if !cx.is_null() {
                    out.insert(sub.name.to_string(), cx);
                }
            }
            Ok(Value::Object(out))
        }
        Value::String(_) if decode_embedded_json(v).is_some_and(|d| d.is_object()) => {
            let decoded = decode_embedded_json(v).unwrap_or(Value::Null);
            coerce_complex(def, &decoded)
        }
        Value::String(_) | Value::Number(_) | Value::Bool(_) => match def.sub("value") {
            Some(value_def) => {
                let mut out = Map::new();
                out.insert("value".into(), coerce_simple(value_def, v)?);
                Ok(Value::Object(out))
            }
            None => Err(wrong(def.name, def, v)),
        },
        Value::Array(_) => Err(wrong(def.name, def, v)),
    }
}

/// Coerces one element of a multi-valued attribute (RFC 7643 §2.4).
pub(super) fn coerce_element(def: &AttributeDef, v: &Value) -> Result<Value, ScimError> {
    if def.ty == AttrType::Complex {
        coerce_complex(def, v)
    } else {
        coerce_simple(def, v)
    }
}

/// Coerces a whole attribute value to `def` (RFC 7643 §2.3, §2.4). Multi-valued
/// attributes always come back as an array (a single value is wrapped; a
/// JSON-encoded array string is decoded); nulls inside are dropped.
pub(super) fn coerce_attr(def: &AttributeDef, v: &Value) -> Result<Value, ScimError> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    if !def.multi_valued {
        return coerce_element(def, v);
    }
    let decoded = if def.ty == AttrType::Complex {
        decode_embedded_json(v)
    } else {
        None
    };
    let v = decoded.as_ref().unwrap_or(v);
    let items: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let c = coerce_element(def, item)?;
        if !c.is_null() && c.as_object().is_none_or(|o| !o.is_empty()) {
            out.push(c);
        }
    }
    Ok(Value::Array(out))
}

fn is_primary(v: &Value) -> bool {
    v.get("primary").and_then(Value::as_bool) == Some(true)
}

/// Keeps at most one `"primary": true` in a multi-valued attribute (RFC 7643 §2.4):
/// the preferred index wins if it is primary, else the last primary value.
pub(super) fn fix_primary(items: &mut [Value], prefer: Option<usize>) {
    let trues: Vec<usize> = (0..items.len())
        .filter(|i| items.get(*i).is_some_and(is_primary))
        .collect();
    if trues.len() < 2 {
        return;
    }
    let keep = prefer
        .filter(|p| trues.contains(p))
        .or_else(|| trues.last().copied());
    for i in trues {
        if Some(i) != keep
            && let Some(Value::Object(o)) = items.get_mut(i)
        {
            o.insert("primary".into(), Value::Bool(false));
        }
    }
}

/// Drops empty extension objects and rewrites `schemas` so it lists the core
/// schema and exactly the extension objects present (RFC 7643 §3, §3.3).
pub(super) fn sync_schemas(res: &mut Map<String, Value>, rt: ResourceType) {
    let empty: Vec<String> = res
        .iter()
        .filter(|(k, v)| is_schema_key(k) && v.as_object().is_some_and(Map::is_empty))
        .map(|(k, _)| k.clone())
        .collect();
    for k in empty {
        res.remove(&k);
    }
    let mut list: Vec<String> = Vec::new();
    let push = |s: &str, list: &mut Vec<String>| {
        if !list.iter().any(|x| x.eq_ignore_ascii_case(s)) {
            list.push(s.to_string());
        }
    };
    push(rt.core_schema_urn(), &mut list);
    if let Some(Value::Array(existing)) = get_ci(res, "schemas") {
        for s in existing.iter().filter_map(Value::as_str) {
            // An extension is listed only while its object is present (RFC 7643 §3).
            if find_key(res, s).is_some() {
                push(s, &mut list);
            }
        }
    }
    let present: Vec<String> = res
        .iter()
        .filter(|(k, v)| is_schema_key(k) && v.is_object())
        .map(|(k, _)| k.clone())
        .collect();
    for k in present {
        push(&k, &mut list);
    }
    remove_ci(res, "schemas");
    res.insert(
        "schemas".into(),
        Value::Array(list.into_iter().map(Value::String).collect()),
    );
}

#[cfg(test)]
mod tests {
    use super::super::schema::{USER_SCHEMA, find};
    use super::*;
    use serde_json::json;

    fn def(name: &str) -> &'static AttributeDef {
        find(USER_SCHEMA.attributes, name).unwrap_or(&USER_SCHEMA.attributes[0])
    }

    #[test]
    fn boolean_strings_in_any_case_become_booleans() {
        assert_eq!(
            coerce_attr(def("active"), &json!("False")).ok(),
            Some(json!(false))
        );
        assert_eq!(
            coerce_attr(def("active"), &json!("TRUE")).ok(),
            Some(json!(true))
        );
        assert!(coerce_attr(def("active"), &json!("maybe")).is_err());
    }

    #[test]
    fn json_encoded_roles_are_decoded() {
        let v = json!("[{\"value\":\"Admin\",\"primary\":\"False\"}]");
        assert_eq!(
            coerce_attr(def("roles"), &v).ok(),
            Some(json!([{"value": "Admin", "primary": false}]))
        );
    }

    #[test]
    fn single_email_object_is_wrapped_and_sub_names_canonicalized() {
        let v = json!({"VALUE": "a@b.c", "Type": "work"});
        assert_eq!(
            coerce_attr(def("emails"), &v).ok(),
            Some(json!([{"value": "a@b.c", "type": "work"}]))
        );
    }

    #[test]
    fn only_the_preferred_primary_survives() {
        let mut items = vec![
            json!({"value": "a", "primary": true}),
            json!({"value": "b", "primary": true}),
            json!({"value": "c", "primary": true}),
        ];
        fix_primary(&mut items, Some(1));
        let flags: Vec<bool> = items.iter().map(is_primary).collect();
        assert_eq!(flags, [false, true, false]);
    }

    #[test]
    fn schemas_follow_extension_objects() {
        let mut res = json!({
            "schemas": ["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "urn:example:custom:2.0:User": {"foo": 1},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {}
        });
        if let Some(m) = res.as_object_mut() {
            sync_schemas(m, ResourceType::User);
        }
        assert_eq!(
            res,
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:example:custom:2.0:User"],
                "urn:example:custom:2.0:User": {"foo": 1}
            })
        );
    }
}
