//! PATCH on multi-valued attributes (RFC 7644 §3.5.2.1–3): whole-list add,
//! replace and remove; value-filter selection (`emails[type eq "work"]`);
//! sub-attribute updates; creation of the element a filter describes when
//! nothing matches (what Entra ID relies on); one `primary` at most.
//!
//! It must never touch anything but the one attribute it is given.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::super::error::ScimError;
use super::super::filter::{CompareOp, Filter, matches};
use super::super::path::PatchPath;
use super::super::schema::AttributeDef;
use super::super::values::{
    canonicalize_key, coerce_attr, coerce_complex, coerce_simple, fix_primary, remove_ci,
};
use super::PatchOp;

fn is_primary(v: &Value) -> bool {
    v.get("primary").and_then(Value::as_bool) == Some(true)
}

/// Applies `op` to the multi-valued attribute `def` inside `container`.
pub(super) fn apply(
    container: &mut Map<String, Value>,
    def: &'static AttributeDef,
    op: PatchOp,
    path: &PatchPath,
    attr_sub: Option<&'static AttributeDef>,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let key = def.name;
    canonicalize_key(container, key);
    let mut items: Vec<Value> = match container.remove(key) {
        Some(Value::Array(a)) => a,
        Some(Value::Null) | None => Vec::new(),
        Some(other) => vec![other],
    };
    let null = Value::Null;
    let value = value.unwrap_or(&null);
    let result = match (&path.filter, attr_sub) {
        (None, None) => whole(&mut items, def, op, value),
        (None, Some(sub)) => every(&mut items, sub, op, value),
        (Some(f), _) => {
            let sub = match &path.sub {
                Some(s) => Some(def.sub(s).ok_or_else(|| {
                    ScimError::invalid_path(format!("'{s}' is not a sub-attribute of '{key}'"))
                })?),
                None => None,
            };
            filtered(&mut items, def, f, sub, op, value)
        }
    };
    if !items.is_empty() {
        container.insert(key.to_string(), Value::Array(items));
    }
    result
}

/// What makes two elements the same element (RFC 7644 §3.5.2.1): the
/// `value` (case-insensitively unless the schema says caseExact) and `type`
/// when the element has a `value`, else the whole element. Two elements are
/// the same exactly when their keys are equal, so a list is merged or
/// filtered through a hash set in one pass, never element by element.
fn element_key(def: &AttributeDef, v: &Value) -> String {
    let text = |x: &Value| serde_json::to_string(x).unwrap_or_default();
    let kind = || v.get("type").map(text).unwrap_or_default();
    match v.get("value") {
        Some(Value::String(x)) => {
            let exact = def.sub("value").is_some_and(|s| s.case_exact);
            let x = if exact { x.clone() } else { x.to_lowercase() };
            format!("s\u{0}{}\u{0}{x}", kind())
        }
        Some(x) => format!("v\u{0}{}\u{0}{}", kind(), text(x)),
        None => format!("w\u{0}{}", text(v)),
    }
}

/// The most values a multi-valued attribute may hold (a server limit; the
/// request is refused with `invalidValue` above it).
pub const MAX_VALUES: usize = 100;

fn check_size(def: &AttributeDef, items: &[Value]) -> Result<(), ScimError> {
    if items.len() > MAX_VALUES {
        return Err(ScimError::invalid_value(format!(
            "'{}' may hold at most {MAX_VALUES} values",
            def.name
        )));
    }
    Ok(())
}

fn whole(
    items: &mut Vec<Value>,
    def: &AttributeDef,
    op: PatchOp,
    value: &Value,
) -> Result<(), ScimError> {
    match op {
        PatchOp::Add => {
            let mut prefer = None;
            if let Value::Array(new) = coerce_attr(def, value)? {
                check_size(def, &new)?;
                let mut index: HashMap<String, usize> = HashMap::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    index.entry(element_key(def, item)).or_insert(i);
                }
                for n in new {
                    let primary = is_primary(&n);
                    let at = match index.entry(element_key(def, &n)) {
                        Entry::Occupied(e) => {
                            let i = *e.get();
                            if let (Some(Value::Object(old)), Value::Object(m)) =
                                (items.get_mut(i), n)
                            {
                                old.extend(m);
                            }
                            i
                        }
                        Entry::Vacant(e) => {
                            items.push(n);
                            *e.insert(items.len() - 1)
                        }
                    };
                    if primary {
                        prefer = Some(at);
                    }
                    check_size(def, items)?;
                }
            }
            fix_primary(items, prefer);
        }
        PatchOp::Replace => {
            *items = match coerce_attr(def, value)? {
                Value::Array(a) => a,
                _ => Vec::new(),
            };
            check_size(def, items)?;
            fix_primary(items, None);
        }
        PatchOp::Remove => match value {
            Value::Null => items.clear(),
            v => {
                let targets = match coerce_attr(def, v)? {
                    Value::Array(a) => a,
                    _ => Vec::new(),
                };
                let keys: HashSet<String> = targets.iter().map(|t| element_key(def, t)).collect();
                items.retain(|i| !keys.contains(&element_key(def, i)));
            }
        },
    }
    Ok(())
}

fn drop_empty(items: &mut Vec<Value>) {
    items.retain(|i| i.as_object().is_none_or(|o| !o.is_empty()));
}

/// `emails.value` without a filter: every element (RFC 7644 §3.5.2).
fn every(
    items: &mut Vec<Value>,
    sub: &AttributeDef,
    op: PatchOp,
    value: &Value,
) -> Result<(), ScimError> {
    let v = if op == PatchOp::Remove {
        Value::Null
    } else {
        coerce_simple(sub, value)?
    };
    if !v.is_null() && items.is_empty() {
        items.push(Value::Object(Map::new()));
    }
    for item in items.iter_mut() {
        if let Value::Object(o) = item {
            remove_ci(o, sub.name);
            if !v.is_null() {
                o.insert(sub.name.to_string(), v.clone());
            }
        }
    }
    drop_empty(items);
    fix_primary(items, None);
    Ok(())
}

/// Every attribute named inside a value filter must be a sub-attribute (RFC 7644 §3.5.2).
fn check_filter(def: &AttributeDef, f: &Filter) -> Result<(), ScimError> {
    let check = |name: &str| {
        def.sub(name).map(|_| ()).ok_or_else(|| {
            ScimError::invalid_path(format!("'{name}' is not a sub-attribute of '{}'", def.name))
        })
    };
    match f {
        Filter::Compare { path, .. } | Filter::Present(path) => check(&path.name),
        Filter::And(l, r) | Filter::Or(l, r) => {
            check_filter(def, l)?;
            check_filter(def, r)
        }
        Filter::Not(i) => check_filter(def, i),
        Filter::ValuePath { .. } => Err(ScimError::invalid_path("value paths cannot be nested")),
    }
}

/// The element a filter of `eq` comparisons joined by `and` describes, if it describes one.
fn template(
    def: &AttributeDef,
    f: &Filter,
    out: &mut Map<String, Value>,
) -> Result<bool, ScimError> {
    match f {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value,
        } if path.sub.is_none() => {
            let Some(sub) = def.sub(&path.name) else {
                return Ok(false);
            };
            let v = coerce_simple(sub, &value.to_json())?;
            if v.is_null() {
                return Ok(false);
            }
            out.insert(sub.name.to_string(), v);
            Ok(true)
        }
        Filter::And(l, r) => Ok(template(def, l, out)? && template(def, r, out)?),
        _ => Ok(false),
    }
}

fn single_object(def: &AttributeDef, value: &Value) -> Result<Map<String, Value>, ScimError> {
    let v = match value {
        Value::Array(a) if a.len() == 1 => a.first().unwrap_or(&Value::Null),
        other => other,
    };
    match coerce_complex(def, v)? {
        Value::Object(m) => Ok(m),
        _ => Err(ScimError::invalid_value(format!(
            "a value selected in '{}' must be replaced by one object",
            def.name
        ))),
    }
}

fn filtered(
    items: &mut Vec<Value>,
    def: &'static AttributeDef,
    f: &Filter,
    sub: Option<&'static AttributeDef>,
    op: PatchOp,
    value: &Value,
) -> Result<(), ScimError> {
    check_filter(def, f)?;
    let exact = |p: &super::super::filter::AttrPath| def.sub(&p.name).is_some_and(|s| s.case_exact);
    let selected: Vec<usize> = (0..items.len())
        .filter(|i| items.get(*i).is_some_and(|el| matches(f, el, exact)))
        .collect();
    if op == PatchOp::Remove {
        match sub {
            None => {
                let mut doomed = vec![false; items.len()];
                for &i in &selected {
                    doomed[i] = true;
                }
                let mut i = 0;
                items.retain(|_| {
                    let keep = !doomed[i];
                    i += 1;
                    keep
                });
            }
            Some(s) => {
                for &i in &selected {
                    if let Some(Value::Object(o)) = items.get_mut(i) {
                        remove_ci(o, s.name);
                    }
                }
                drop_empty(items);
            }
        }
        return Ok(());
    }
    let mut tmpl = Map::new();
    let describes = template(def, f, &mut tmpl)?;
    let targets = if selected.is_empty() {
        if !describes {
            return Err(ScimError::no_target(format!(
                "no value of '{}' matches the filter, and the filter does not describe a new value",
                def.name
            )));
        }
        items.push(Value::Object(tmpl.clone()));
        check_size(def, items)?;
        vec![items.len() - 1]
    } else {
        selected
    };
    let new_sub = match sub {
        Some(s) => Some(coerce_simple(s, value)?),
        None => None,
    };
    let new_obj = match sub {
        None => Some(single_object(def, value)?),
        Some(_) => None,
    };
    for &i in &targets {
        let Some(Value::Object(o)) = items.get_mut(i) else {
            continue;
        };
        match (sub, &new_sub, &new_obj) {
            (Some(s), Some(v), _) => {
                remove_ci(o, s.name);
                if !v.is_null() {
                    o.insert(s.name.to_string(), v.clone());
                }
            }
            (None, _, Some(m)) => {
                if op == PatchOp::Replace {
                    *o = tmpl.clone();
                }
                o.extend(m.clone());
            }
            _ => {}
        }
    }
    drop_empty(items);
    let prefer = targets
        .iter()
        .rev()
        .copied()
        .find(|i| items.get(*i).is_some_and(is_primary));
    fix_primary(items, prefer);
    Ok(())
}
