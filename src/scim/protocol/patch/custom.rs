//! Attributes under extension schemas this server does not know (RFC 7643
//! §3.3): kept exactly as the client sent them, so custom attributes
//! (Entra's ADSCIM group extension, `urn:...:custom:2.0:User:foo`) round-trip.
//!
//! It must never be used for the core schema or known extensions, which are
//! typed and validated by the engine.

use serde_json::{Map, Value};

use super::super::error::ScimError;
use super::super::path::PatchPath;
use super::super::values::{find_key, get_ci, is_schema_key, remove_ci};
use super::PatchOp;

/// The key a prefixed custom attribute belongs to: an extension already present, or
/// listed in `schemas`, or else (for non-object values) the URN before the last colon.
fn split_custom(res: &Map<String, Value>, key: &str) -> Option<(String, String)> {
    let mut prefixes: Vec<String> = res.keys().filter(|k| is_schema_key(k)).cloned().collect();
    if let Some(Value::Array(a)) = get_ci(res, "schemas") {
        prefixes.extend(a.iter().filter_map(Value::as_str).map(str::to_string));
    }
    prefixes.into_iter().find_map(|p| {
        let rest = key.get(p.len()..)?.strip_prefix(':')?;
        let head = key.get(..p.len())?;
        (head.eq_ignore_ascii_case(&p) && !rest.is_empty() && !rest.contains(':'))
            .then(|| (find_key(res, &p).unwrap_or(p.clone()), rest.to_string()))
    })
}

fn ensure_object<'a>(
    res: &'a mut Map<String, Value>,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    let k = find_key(res, key).unwrap_or_else(|| key.to_string());
    let slot = res.entry(k).or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
}

fn set_custom(obj: &mut Map<String, Value>, op: PatchOp, name: &str, v: &Value) {
    remove_ci(obj, name);
    if op != PatchOp::Remove && !v.is_null() {
        obj.insert(name.to_string(), v.clone());
    }
}

/// A key under a schema this server does not know: kept as sent (custom attributes round-trip).
pub(super) fn custom_key(res: &mut Map<String, Value>, op: PatchOp, key: &str, v: &Value) {
    if let Some((schema, attr)) = split_custom(res, key) {
        if let Some(obj) = ensure_object(res, &schema) {
            set_custom(obj, op, &attr, v);
        }
        return;
    }
    match v {
        Value::Object(m) if op != PatchOp::Remove => {
            if let Some(obj) = ensure_object(res, key) {
                for (k, x) in m {
                    set_custom(obj, op, k, x);
                }
            }
        }
        _ if key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
            && op != PatchOp::Remove =>
        {
            match key.rfind(':') {
                Some(i) if i > 4 => {
                    let (schema, attr) = (&key[..i], &key[i + 1..]);
                    if let Some(obj) = ensure_object(res, schema) {
                        set_custom(obj, op, attr, v);
                    }
                }
                _ => set_custom(res, op, key, v),
            }
        }
        _ => set_custom(res, op, key, v),
    }
}

/// An explicit path under an unknown schema URN: stored as given (RFC 7643 §3.3 extensions).
pub(super) fn custom_path(
    res: &mut Map<String, Value>,
    op: PatchOp,
    urn: &str,
    path: &PatchPath,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    if path.filter.is_some() {
        return Err(ScimError::invalid_path(format!(
            "value filters are not supported on attributes of unknown schema '{urn}'"
        )));
    }
    let null = Value::Null;
    let v = value.unwrap_or(&null);
    if op == PatchOp::Remove && find_key(res, urn).is_none() {
        return Ok(());
    }
    let Some(obj) = ensure_object(res, urn) else {
        return Ok(());
    };
    match &path.attr.sub {
        None => set_custom(obj, op, &path.attr.name, v),
        Some(sub) => {
            if op == PatchOp::Remove && find_key(obj, &path.attr.name).is_none() {
                return Ok(());
            }
            if let Some(inner) = ensure_object(obj, &path.attr.name) {
                set_custom(inner, op, sub, v);
            }
        }
    }
    Ok(())
}
