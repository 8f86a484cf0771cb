//! In-memory evaluation of a value filter against ONE element of a
//! multi-valued attribute (RFC 7644 §3.4.2.2 semantics, §3.5.2 value selection).
//!
//! Used only by PATCH to select elements. It must never be used to filter
//! lists of resources (the server compiles those to SQL) and never panic.

use super::ast::{AttrPath, CompValue, CompareOp, Filter};
use serde_json::Value;
use std::cmp::Ordering;

fn get_ci<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

fn push_flat<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(items) => out.extend(items.iter()),
        other => out.push(other),
    }
}

/// The values `path` designates inside `element` (multi-valued results flattened).
fn lookup<'a>(element: &'a Value, path: &AttrPath) -> Vec<&'a Value> {
    let mut out = Vec::new();
    if !element.is_object() {
        // A simple multi-valued attribute's element is its own "value" (RFC 7643 §2.4).
        if path.sub.is_none() && path.name.eq_ignore_ascii_case("value") {
            out.push(element);
        }
        return out;
    }
    let Some(top) = get_ci(element, &path.name) else {
        return out;
    };
    match &path.sub {
        None => push_flat(top, &mut out),
        Some(sub) => {
            let mut tops = Vec::new();
            push_flat(top, &mut tops);
            for t in tops {
                if let Some(v) = get_ci(t, sub) {
                    push_flat(v, &mut out);
                }
            }
        }
    }
    out
}

fn fold(s: &str, exact: bool) -> String {
    if exact {
        s.to_string()
    } else {
        s.to_lowercase()
    }
}

fn num_cmp(a: &serde_json::Number, b: &serde_json::Number) -> Option<Ordering> {
    match (a.as_i64(), b.as_i64()) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

fn compare_one(actual: &Value, op: CompareOp, expected: &CompValue, exact: bool) -> bool {
    match (actual, expected) {
        (Value::String(a), CompValue::Str(e)) => {
            let (a, e) = (fold(a, exact), fold(e, exact));
            match op {
                CompareOp::Eq => a == e,
                CompareOp::Ne => a != e,
                CompareOp::Co => a.contains(&e),
                CompareOp::Sw => a.starts_with(&e),
                CompareOp::Ew => a.ends_with(&e),
                CompareOp::Gt => a > e,
                CompareOp::Ge => a >= e,
                CompareOp::Lt => a < e,
                CompareOp::Le => a <= e,
            }
        }
        (Value::Number(a), CompValue::Num(e)) => {
            let Some(ord) = num_cmp(a, e) else {
                return false;
            };
            match op {
                CompareOp::Eq => ord == Ordering::Equal,
                CompareOp::Ne => ord != Ordering::Equal,
                CompareOp::Gt => ord == Ordering::Greater,
                CompareOp::Ge => ord != Ordering::Less,
                CompareOp::Lt => ord == Ordering::Less,
                CompareOp::Le => ord != Ordering::Greater,
                CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
            }
        }
        (Value::Bool(a), CompValue::Bool(e)) => match op {
            CompareOp::Eq => a == e,
            CompareOp::Ne => a != e,
            _ => false,
        },
        (Value::Null, CompValue::Null) => op == CompareOp::Eq,
        _ => op == CompareOp::Ne,
    }
}

fn eval(f: &Filter, element: &Value, case_exact: &dyn Fn(&AttrPath) -> bool) -> bool {
    match f {
        Filter::Present(p) => lookup(element, p).iter().any(|v| {
            !v.is_null() && v.as_str() != Some("") && v.as_array().is_none_or(|a| !a.is_empty())
        }),
        Filter::Compare { path, op, value } => {
            let values = lookup(element, path);
            let exact = case_exact(path);
            let equal = || {
                if *value == CompValue::Null {
                    values.is_empty() || values.iter().any(|v| v.is_null())
                } else {
                    values
                        .iter()
                        .any(|v| compare_one(v, CompareOp::Eq, value, exact))
                }
            };
            match op {
                CompareOp::Eq => equal(),
                CompareOp::Ne => !equal(),
                _ => values.iter().any(|v| compare_one(v, *op, value, exact)),
            }
        }
        Filter::And(l, r) => eval(l, element, case_exact) && eval(r, element, case_exact),
        Filter::Or(l, r) => eval(l, element, case_exact) || eval(r, element, case_exact),
        Filter::Not(inner) => !eval(inner, element, case_exact),
        Filter::ValuePath { attr, filter } => lookup(element, attr)
            .iter()
            .any(|v| eval(filter, v, case_exact)),
    }
}

/// Whether one element of a multi-valued attribute satisfies a value filter
/// (RFC 7644 §3.4.2.2 operator semantics; strings compare case-insensitively
/// unless `case_exact` says the attribute is `caseExact`, RFC 7643 §2.2).
pub fn matches(filter: &Filter, element: &Value, case_exact: impl Fn(&AttrPath) -> bool) -> bool {
    eval(filter, element, &case_exact)
}
