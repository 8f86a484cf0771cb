//! SCIM PATCH (RFC 7644 §3.5.2): parse a PatchOp body, then apply it to a
//! resource held as JSON, schema-aware and tolerant of what Microsoft Entra ID
//! and Okta really send.
//!
//! Parse first, then apply: `apply_patch` works on a copy and only swaps it in
//! when every operation succeeded. This module must never store anything,
//! never hash passwords (it hands the cleartext to the caller) and never keep
//! group members in the resource JSON (it reports [`MemberChange`]s instead).

mod custom;
mod engine;
mod members;
mod multi;
#[cfg(test)]
mod tests_idp;
#[cfg(test)]
mod tests_rfc;

pub(super) use engine::{Engine, Mode};
pub use members::MAX_MEMBERS_PER_REQUEST;
pub use multi::MAX_VALUES;

use serde_json::Value;

use super::PATCH_OP_URN;
use super::error::ScimError;
use super::path::{PatchPath, parse_path};
use super::schema::ResourceType;
use super::values::get_ci;

/// Most operations accepted in one PATCH request (a server limit, RFC 7644 §3.5.2).
pub const MAX_OPERATIONS: usize = 1000;

/// The `op` of a PATCH operation (RFC 7644 §3.5.2), read case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchOp {
    /// `add` (RFC 7644 §3.5.2.1).
    Add,
    /// `remove` (RFC 7644 §3.5.2.2).
    Remove,
    /// `replace` (RFC 7644 §3.5.2.3).
    Replace,
}

/// One parsed PATCH operation (RFC 7644 §3.5.2).
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOperation {
    /// The operation.
    pub op: PatchOp,
    /// The target; `None` means the resource itself (RFC 7644 §3.5.2.1, §3.5.2.3).
    pub path: Option<PatchPath>,
    /// The value, required for `add` and `replace`.
    pub value: Option<Value>,
}

/// A parsed PatchOp request body (RFC 7644 §3.5.2).
#[derive(Debug, Clone, PartialEq)]
pub struct PatchRequest {
    /// The operations, applied in order.
    pub operations: Vec<PatchOperation>,
}

/// An incremental change to a group's members, for the server to apply (RFC 7644 §3.5.2, RFC 7643 §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    /// Add these member ids (`members.value`).
    Add(Vec<String>),
    /// Remove these member ids.
    Remove(Vec<String>),
    /// Remove every member.
    RemoveAll,
    /// Replace the member list with exactly these ids (possibly none).
    ReplaceAll(Vec<String>),
}

/// What applying a PATCH produced besides the new resource JSON (RFC 7644 §3.5.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PatchOutcome {
    /// Member changes, in request order (Groups only).
    pub members: Vec<MemberChange>,
    /// A new cleartext password to hash, if one was set (RFC 7643 §4.1.1 `password`).
    pub password: Option<String>,
    /// Whether anything changed (resource JSON, members or password).
    pub changed: bool,
}

fn parse_op(i: usize, v: &Value) -> Result<PatchOperation, ScimError> {
    let obj = v
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax(format!("Operations[{i}] is not an object")))?;
    let op = match get_ci(obj, "op").and_then(Value::as_str) {
        Some(s) if s.eq_ignore_ascii_case("add") => PatchOp::Add,
        Some(s) if s.eq_ignore_ascii_case("remove") => PatchOp::Remove,
        Some(s) if s.eq_ignore_ascii_case("replace") => PatchOp::Replace,
        Some(s) => {
            let shown: String = s.chars().take(40).collect();
            return Err(ScimError::invalid_syntax(format!(
                "Operations[{i}].op '{shown}' is not add, remove or replace"
            )));
        }
        None => {
            return Err(ScimError::invalid_syntax(format!(
                "Operations[{i}] has no 'op'"
            )));
        }
    };
    let path = match get_ci(obj, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(parse_path(s)?),
        Some(_) => {
            return Err(ScimError::invalid_path(format!(
                "Operations[{i}].path is not a string"
            )));
        }
    };
    let value = get_ci(obj, "value").cloned();
    match op {
        PatchOp::Remove if path.is_none() => {
            return Err(ScimError::no_target(format!(
                "Operations[{i}]: remove requires a path"
            )));
        }
        PatchOp::Add | PatchOp::Replace if value.is_none() => {
            return Err(ScimError::invalid_value(format!(
                "Operations[{i}]: {} requires a value",
                if op == PatchOp::Add { "add" } else { "replace" }
            )));
        }
        PatchOp::Add | PatchOp::Replace
            if path.is_none() && !value.as_ref().is_some_and(Value::is_object) =>
        {
            return Err(ScimError::invalid_value(format!(
                "Operations[{i}]: without a path the value must be an object"
            )));
        }
        _ => {}
    }
    Ok(PatchOperation { op, path, value })
}

/// Parses a PatchOp body (RFC 7644 §3.5.2): `schemas` must list the PatchOp URN,
/// `Operations` (any case) must be a non-empty array; `op` is read in any case.
pub fn parse_patch(body: &Value) -> Result<PatchRequest, ScimError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("PATCH body must be a JSON object"))?;
    let has_urn = get_ci(obj, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .any(|s| s.eq_ignore_ascii_case(PATCH_OP_URN))
        });
    if !has_urn {
        return Err(ScimError::invalid_syntax(format!(
            "'schemas' must contain {PATCH_OP_URN}"
        )));
    }
    let ops = get_ci(obj, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::invalid_syntax("'Operations' must be an array"))?;
    if ops.is_empty() {
        return Err(ScimError::invalid_syntax("'Operations' must not be empty"));
    }
    if ops.len() > MAX_OPERATIONS {
        return Err(ScimError::invalid_value(format!(
            "more than {MAX_OPERATIONS} operations in one request"
        )));
    }
    let operations = ops
        .iter()
        .enumerate()
        .map(|(i, v)| parse_op(i, v))
        .collect::<Result<_, _>>()?;
    Ok(PatchRequest { operations })
}

/// Applies a parsed PATCH to `resource` (RFC 7644 §3.5.2). On error the
/// resource is left exactly as it was. Group members are never written into
/// the JSON; they come back as [`PatchOutcome::members`].
pub fn apply_patch(
    resource: &mut Value,
    rt: ResourceType,
    req: &PatchRequest,
) -> Result<PatchOutcome, ScimError> {
    let Some(original) = resource.as_object() else {
        return Err(ScimError::internal());
    };
    let mut work = original.clone();
    let mut engine = Engine::new(rt, Mode::Patch);
    for op in &req.operations {
        engine.apply(&mut work, op)?;
    }
    engine.finish(&mut work);
    let json_changed = &work != original;
    let outcome = PatchOutcome {
        changed: json_changed || !engine.members.is_empty() || engine.password.is_some(),
        members: engine.members,
        password: engine.password,
    };
    *resource = Value::Object(work);
    Ok(outcome)
}
