//! The attribute-level engine behind PATCH (RFC 7644 §3.5.2) and resource
//! normalization (RFC 7644 §3.3, §3.5.1): resolves each target against the
//! schema, enforces mutability, and writes canonical, typed JSON.
//!
//! It works on a scratch copy owned by its caller and must never be handed the
//! live resource; it never stores group members or passwords in the JSON.

use serde_json::{Map, Value};

use super::super::error::ScimError;
use super::super::filter::AttrPath;
use super::super::path::PatchPath;
use super::super::schema::{
    AttrType, Mutability, Resolved, ResourceType, SchemaDef, Usage, resolve,
};
use super::super::values::{
    canonicalize_key, coerce_attr, coerce_simple, find_key, get_ci, is_schema_key, remove_ci,
    sync_schemas,
};
use super::custom::{custom_key, custom_path};
use super::{MemberChange, PatchOp, PatchOperation, members, multi};

/// How strictly the engine treats what it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in super::super) enum Mode {
    /// PATCH: read-only targets and unknown attributes are errors (RFC 7644 §3.5.2).
    Patch,
    /// POST/PUT bodies: read-only attributes are dropped, unknown core attributes ignored (RFC 7644 §3.3).
    Create,
}

/// Applies operations to a scratch resource and collects side outputs.
pub(in super::super) struct Engine {
    rt: ResourceType,
    mode: Mode,
    /// Member changes, in order (Groups).
    pub members: Vec<MemberChange>,
    /// Member ids named so far, over all operations.
    pub member_values: usize,
    /// The last cleartext password set.
    pub password: Option<String>,
}

fn path_of(attr: AttrPath) -> PatchPath {
    PatchPath {
        attr,
        filter: None,
        sub: None,
    }
}

fn key_path(key: &str) -> Result<AttrPath, ScimError> {
    AttrPath::parse(key)
        .map_err(|r| ScimError::invalid_path(format!("invalid attribute name: {r}")))
}

impl Engine {
    pub(in super::super) fn new(rt: ResourceType, mode: Mode) -> Self {
        Engine {
            rt,
            mode,
            members: Vec::new(),
            member_values: 0,
            password: None,
        }
    }

    /// Applies one operation (RFC 7644 §3.5.2).
    pub(in super::super) fn apply(
        &mut self,
        res: &mut Map<String, Value>,
        op: &PatchOperation,
    ) -> Result<(), ScimError> {
        match &op.path {
            Some(p) => self.at_path(res, op.op, p, op.value.as_ref()),
            None => self.pathless(res, op.op, op.value.as_ref().unwrap_or(&Value::Null)),
        }
    }

    /// Final clean-up: no password in the JSON, `schemas` in step (RFC 7643 §3).
    pub(in super::super) fn finish(&self, res: &mut Map<String, Value>) {
        remove_ci(res, "password");
        sync_schemas(res, self.rt);
    }

    /// A pathless add/replace: each key of the value object is a target (RFC 7644 §3.5.2.1, §3.5.2.3).
    pub(in super::super) fn pathless(
        &mut self,
        res: &mut Map<String, Value>,
        op: PatchOp,
        value: &Value,
    ) -> Result<(), ScimError> {
        let Value::Object(m) = value else {
            return Err(ScimError::invalid_value(
                "without a path the value must be an object",
            ));
        };
        for (k, v) in m {
            self.key(res, op, k, v)?;
        }
        Ok(())
    }

    fn key(
        &mut self,
        res: &mut Map<String, Value>,
        op: PatchOp,
        key: &str,
        v: &Value,
    ) -> Result<(), ScimError> {
        if key.eq_ignore_ascii_case("schemas") {
            if self.mode == Mode::Create && v.is_array() {
                res.insert("schemas".into(), v.clone());
            }
            return Ok(());
        }
        if is_schema_key(key) {
            return self.schema_key(res, op, key, v);
        }
        match key_path(key) {
            Ok(attr) => self.at_path(res, op, &path_of(attr), Some(v)),
            Err(_) if self.mode == Mode::Create => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn schema_key(
        &mut self,
        res: &mut Map<String, Value>,
        op: PatchOp,
        key: &str,
        v: &Value,
    ) -> Result<(), ScimError> {
        if let Some(ext) = self.rt.extension(key) {
            return self.whole_extension(res, op, ext, Some(v));
        }
        if key.eq_ignore_ascii_case(self.rt.core_schema_urn()) {
            return match v {
                Value::Object(m) => m.iter().try_for_each(|(k, x)| {
                    if is_schema_key(k) {
                        Err(ScimError::invalid_path(format!(
                            "unexpected '{k}' inside the core schema"
                        )))
                    } else {
                        self.key(res, op, k, x)
                    }
                }),
                _ => Err(ScimError::invalid_value(format!(
                    "'{key}' must be an object"
                ))),
            };
        }
        if let Ok(attr) = AttrPath::parse(key)
            && attr.urn.as_deref().is_some_and(|u| self.rt.knows_schema(u))
        {
            return self.at_path(res, op, &path_of(attr), Some(v));
        }
        custom_key(res, op, key, v);
        Ok(())
    }

    fn whole_extension(
        &mut self,
        res: &mut Map<String, Value>,
        op: PatchOp,
        ext: &'static SchemaDef,
        v: Option<&Value>,
    ) -> Result<(), ScimError> {
        match (op, v) {
            (PatchOp::Remove, _) | (_, Some(Value::Null)) => {
                remove_ci(res, ext.id);
                Ok(())
            }
            (_, Some(Value::Object(m))) => m.iter().try_for_each(|(k, x)| {
                // Clients that model an extension as its own resource send
                // its `schemas` inside it; it carries nothing to store.
                if k.eq_ignore_ascii_case("schemas") {
                    return Ok(());
                }
                let mut attr = key_path(k)?;
                attr.urn = Some(ext.id.to_string());
                self.at_path(res, op, &path_of(attr), Some(x))
            }),
            _ => Err(ScimError::invalid_value(format!(
                "'{}' must be an object",
                ext.id
            ))),
        }
    }

    /// Applies an operation at an explicit path (RFC 7644 §3.5.2).
    fn at_path(
        &mut self,
        res: &mut Map<String, Value>,
        op: PatchOp,
        path: &PatchPath,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        if let Some(u) = &path.attr.urn {
            let full = format!("{u}:{}", path.attr.name);
            if path.attr.sub.is_none() && path.filter.is_none() {
                if let Some(ext) = self.rt.extension(&full) {
                    return self.whole_extension(res, op, ext, value);
                }
                if !self.rt.knows_schema(&full) && find_key(res, &full).is_some() {
                    custom_key(res, op, &full, value.unwrap_or(&Value::Null));
                    return Ok(());
                }
            }
            if !self.rt.knows_schema(u) {
                return custom_path(res, op, u, path, value);
            }
        }
        let r = match resolve(self.rt, &path.attr, Usage::Path) {
            Ok(r) => r,
            Err(_) if self.mode == Mode::Create => return Ok(()),
            Err(e) => return Err(e),
        };
        if self.rt == ResourceType::Group && r.attr.name == "members" {
            return members::apply(self, op, path, value);
        }
        if self.rt == ResourceType::User && r.attr.name == "password" {
            return self.set_password(op, path, value);
        }
        if !self.writable(res, &r, op, value)? {
            return Ok(());
        }
        let Some(container) = container(res, &r, op) else {
            return Ok(());
        };
        if r.attr.multi_valued {
            multi::apply(container, r.attr, op, path, r.sub, value)
        } else {
            single(container, &r, op, path, value)
        }
    }

    pub(super) fn mode(&self) -> Mode {
        self.mode
    }

    fn set_password(
        &mut self,
        op: PatchOp,
        path: &PatchPath,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        if path.filter.is_some() || path.attr.sub.is_some() {
            return Err(ScimError::invalid_path("'password' has no sub-attributes"));
        }
        match (op, value) {
            (PatchOp::Remove, _) | (_, None | Some(Value::Null)) => Ok(()),
            (_, Some(Value::String(s))) => {
                self.password = Some(s.clone());
                Ok(())
            }
            _ => Err(ScimError::invalid_value("'password' must be a string")),
        }
    }

    /// Mutability (RFC 7643 §2.2, RFC 7644 §3.5.2): `Ok(false)` means "skip silently".
    fn writable(
        &self,
        res: &Map<String, Value>,
        r: &Resolved,
        op: PatchOp,
        value: Option<&Value>,
    ) -> Result<bool, ScimError> {
        let read_only = r.attr.mutability == Mutability::ReadOnly
            || r.sub.is_some_and(|s| s.mutability == Mutability::ReadOnly);
        if !read_only {
            return Ok(true);
        }
        if self.mode == Mode::Create {
            return Ok(false);
        }
        if r.attr.name == "id" && r.sub.is_none() && op != PatchOp::Remove {
            let current = get_ci(res, "id");
            if current.is_none() || current == value {
                return Ok(false);
            }
        }
        Err(ScimError::mutability(format!(
            "'{}' is read-only",
            r.canonical_path()
        )))
    }
}

/// The object holding the attribute: the resource, or its extension object (RFC 7643 §3.3).
fn container<'a>(
    res: &'a mut Map<String, Value>,
    r: &Resolved,
    op: PatchOp,
) -> Option<&'a mut Map<String, Value>> {
    if !r.in_extension {
        return Some(res);
    }
    let exists = canonicalize_key(res, r.schema);
    if !exists && op == PatchOp::Remove {
        return None;
    }
    let slot = res
        .entry(r.schema.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        if op == PatchOp::Remove {
            return None;
        }
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
}

fn required_error(r: &Resolved) -> ScimError {
    ScimError::invalid_value(format!(
        "'{}' is required and cannot be removed",
        r.attr.name
    ))
}

/// A single-valued attribute, simple or complex (RFC 7644 §3.5.2.1–3).
fn single(
    container: &mut Map<String, Value>,
    r: &Resolved,
    op: PatchOp,
    path: &PatchPath,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    if path.filter.is_some() {
        return Err(ScimError::invalid_path(format!(
            "'{}' is single-valued; value filters apply to multi-valued attributes",
            r.attr.name
        )));
    }
    let key = r.attr.name;
    canonicalize_key(container, key);
    let null = Value::Null;
    let value = value.unwrap_or(&null);
    match r.sub {
        Some(sub) => {
            let v = if op == PatchOp::Remove {
                Value::Null
            } else {
                coerce_simple(sub, value)?
            };
            if v.is_null() {
                if let Some(Value::Object(o)) = container.get_mut(key) {
                    remove_ci(o, sub.name);
                    if o.is_empty() {
                        container.remove(key);
                    }
                }
            } else {
                let slot = container
                    .entry(key.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                if let Value::Object(o) = slot {
                    remove_ci(o, sub.name);
                    o.insert(sub.name.to_string(), v);
                }
            }
        }
        None => {
            let v = if op == PatchOp::Remove {
                Value::Null
            } else {
                coerce_attr(r.attr, value)?
            };
            match v {
                Value::Null => {
                    if r.attr.required {
                        return Err(required_error(r));
                    }
                    container.remove(key);
                }
                Value::Object(m) if r.attr.ty == AttrType::Complex => {
                    // Complex replace/add merges sub-attributes (RFC 7644 §3.5.2.1, §3.5.2.3).
                    let slot = container
                        .entry(key.to_string())
                        .or_insert_with(|| Value::Object(Map::new()));
                    if !slot.is_object() {
                        *slot = Value::Object(Map::new());
                    }
                    if let Value::Object(o) = slot {
                        o.extend(m);
                    }
                }
                other => {
                    container.insert(key.to_string(), other);
                }
            }
        }
    }
    Ok(())
}
