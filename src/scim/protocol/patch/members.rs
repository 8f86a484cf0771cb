//! Group membership operations (RFC 7644 §3.5.2, RFC 7643 §4.2 `members`)
//! turned into [`MemberChange`]s, in the shapes Entra ID and Okta send.
//!
//! Groups can have 100,000 members, so members never enter the resource JSON;
//! this module must never read or write the resource, only describe changes.

use serde_json::Value;

use super::super::error::ScimError;
use super::super::filter::{CompValue, CompareOp, Filter};
use super::super::path::PatchPath;
use super::super::values::get_ci;
use super::engine::{Engine, Mode};
use super::{MemberChange, PatchOp};

fn id_of(item: &Value) -> Result<String, ScimError> {
    match item {
        Value::String(s) if !s.is_empty() => Ok(s.clone()),
        Value::Object(o) => match get_ci(o, "value") {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            _ => Err(ScimError::invalid_value(
                "each member needs a non-empty string 'value'",
            )),
        },
        _ => Err(ScimError::invalid_value(
            "each member must be an object with a 'value'",
        )),
    }
}

/// Member ids from a `members` value: an array of `{"value": id}`, one such object, or null.
pub(in super::super) fn member_ids(value: Option<&Value>) -> Result<Vec<String>, ScimError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(id_of).collect(),
        Some(v @ Value::Object(_)) => Ok(vec![id_of(v)?]),
        Some(_) => Err(ScimError::invalid_value(
            "'members' must be an array of objects",
        )),
    }
}

/// Ids named by `value eq "id"` comparisons joined with `or` (Okta's remove shape).
fn ids_from_filter(f: &Filter, out: &mut Vec<String>) -> Result<(), ScimError> {
    match f {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value: CompValue::Str(id),
        } if path.urn.is_none() && path.same_attr("value", None) => {
            out.push(id.clone());
            Ok(())
        }
        Filter::Or(l, r) => {
            ids_from_filter(l, out)?;
            ids_from_filter(r, out)
        }
        _ => Err(ScimError::invalid_filter(
            "members can only be selected with value eq \"id\" comparisons joined by or",
        )),
    }
}

/// The most member ids one request may name, over all its operations (a
/// server limit; larger memberships are sent as several requests).
pub const MAX_MEMBERS_PER_REQUEST: usize = 10_000;

/// Records `change`, refusing a request that names too many members.
fn record(engine: &mut Engine, change: MemberChange) -> Result<(), ScimError> {
    let named = match &change {
        MemberChange::Add(ids) | MemberChange::Remove(ids) | MemberChange::ReplaceAll(ids) => {
            ids.len()
        }
        MemberChange::RemoveAll => 0,
    };
    engine.member_values += named;
    if engine.member_values > MAX_MEMBERS_PER_REQUEST {
        return Err(ScimError::invalid_value(format!(
            "a request may name at most {MAX_MEMBERS_PER_REQUEST} members; send larger changes as several requests"
        )));
    }
    engine.members.push(change);
    Ok(())
}

/// Records the member change one operation on `members` asks for.
pub(super) fn apply(
    engine: &mut Engine,
    op: PatchOp,
    path: &PatchPath,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    if path.attr.sub.is_some() || path.sub.is_some() {
        return Err(ScimError::invalid_path(
            "sub-attributes of members cannot be patched",
        ));
    }
    if engine.mode() == Mode::Create {
        return record(engine, MemberChange::ReplaceAll(member_ids(value)?));
    }
    let change = match (op, &path.filter) {
        (PatchOp::Add, None) => MemberChange::Add(member_ids(value)?),
        (PatchOp::Replace, None) => MemberChange::ReplaceAll(member_ids(value)?),
        (PatchOp::Remove, None) => match value {
            None | Some(Value::Null) => MemberChange::RemoveAll,
            v => MemberChange::Remove(member_ids(v)?),
        },
        (PatchOp::Remove, Some(f)) => {
            let mut ids = Vec::new();
            ids_from_filter(f, &mut ids)?;
            MemberChange::Remove(ids)
        }
        (_, Some(_)) => {
            return Err(ScimError::invalid_path(
                "members cannot be added or replaced through a value filter",
            ));
        }
    };
    let empty = matches!(&change, MemberChange::Add(v) | MemberChange::Remove(v) if v.is_empty());
    if empty {
        return Ok(());
    }
    record(engine, change)
}
