//! SCIM filters (RFC 7644 §3.4.2.2) and `sortBy` (§3.4.2.3) → storage-neutral
//! conditions ([`crate::store::query`]), through the schema: attribute names
//! resolve case-insensitively (with or without their schema URN), each value
//! is type-checked against its attribute, and every attribute lands on the
//! column, email/membership row or JSON key that stores it.
//!
//! Pure: no I/O, no SQL. It must never accept an attribute it cannot resolve
//! (that is `invalidFilter`, never an empty result), never let a wrongly typed
//! value through, and never let a `returned: never` attribute be filtered.

use serde_json::Number;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::scim::protocol::{
    AttrPath, AttrType, AttributeDef, CompValue, CompareOp, Filter, Mutability, Resolved,
    ResourceType, Returned, ScimError, Uniqueness, Usage, resolve,
};
use crate::store::Timestamp;
use crate::store::query::{Cond, ElemCond, Field, Literal, Multi, Op, SortKey, ValueKind};

/// `schemas` is not a schema attribute, but filters may test it (RFC 7644 §3.4.2.2 examples).
static SCHEMAS: AttributeDef = AttributeDef {
    name: "schemas",
    ty: AttrType::Reference,
    multi_valued: true,
    required: true,
    case_exact: false,
    mutability: Mutability::ReadOnly,
    returned: Returned::Always,
    uniqueness: Uniqueness::None,
    sub_attributes: &[],
    canonical_values: &[],
    reference_types: &["uri"],
    description: "The schema URNs of the resource.",
};

/// Converts a parsed filter for `rt` into a condition (RFC 7644 §3.4.2.2).
/// Unknown attributes and ill-typed comparisons are `invalidFilter`.
pub fn to_cond(rt: ResourceType, filter: &Filter) -> Result<Cond, ScimError> {
    match filter {
        Filter::And(l, r) => Ok(Cond::and(vec![to_cond(rt, l)?, to_cond(rt, r)?])),
        Filter::Or(l, r) => Ok(Cond::or(vec![to_cond(rt, l)?, to_cond(rt, r)?])),
        Filter::Not(inner) => Ok(Cond::negate(to_cond(rt, inner)?)),
        Filter::Present(path) => present(rt, path),
        Filter::Compare { path, op, value } => compare(rt, path, *op, value),
        Filter::ValuePath { attr, filter } => value_path(rt, attr, filter),
    }
}

/// As [`to_cond`], for a search across resource types (RFC 7644 §3.4.3): a
/// comparison on an attribute `rt` lacks but another type has is a value
/// `rt` does not have (false; its negation true), not an error.
pub fn to_cond_across(rt: ResourceType, filter: &Filter) -> Result<Cond, ScimError> {
    let other = match rt {
        ResourceType::User => ResourceType::Group,
        ResourceType::Group => ResourceType::User,
    };
    match filter {
        Filter::And(l, r) => Ok(Cond::and(vec![
            to_cond_across(rt, l)?,
            to_cond_across(rt, r)?,
        ])),
        Filter::Or(l, r) => Ok(Cond::or(vec![
            to_cond_across(rt, l)?,
            to_cond_across(rt, r)?,
        ])),
        Filter::Not(inner) => Ok(Cond::negate(to_cond_across(rt, inner)?)),
        leaf => match to_cond(rt, leaf) {
            Ok(c) => Ok(c),
            Err(_) if to_cond(other, leaf).is_ok() => Ok(Cond::Const(false)),
            Err(e) => Err(e),
        },
    }
}

/// The key `sortBy` names (RFC 7644 §3.4.2.3). Unknown or unsortable
/// attributes are `invalidValue`; `emails` sorts by the primary (or first) value.
pub fn sort_key(rt: ResourceType, attr: &AttrPath) -> Result<SortKey, ScimError> {
    let bad = |why: &str| ScimError::invalid_value(format!("cannot sort by '{attr}': {why}"));
    let r = resolve(rt, attr, Usage::Parameter)?;
    if r.target().returned == Returned::Never {
        return Err(bad("it is never returned"));
    }
    if r.attr.multi_valued {
        let value = r.sub.is_none_or(|s| s.name == "value");
        return if rt == ResourceType::User && r.attr.name == "emails" && value {
            Ok(SortKey {
                field: Field::PrimaryEmail,
                kind: ValueKind::Text { case_exact: false },
            })
        } else {
            Err(bad("sorting supports emails and singular attributes only"))
        };
    }
    match target(rt, &r)? {
        Target::Single { field, def } => {
            let kind = kind_of(def).ok_or_else(|| bad("it is complex"))?;
            Ok(SortKey { field, kind })
        }
        _ => Err(bad("it has no sortable value")),
    }
}

/// Where a resolved singular attribute lives.
enum Target {
    /// A scalar value.
    Single {
        field: Field,
        def: &'static AttributeDef,
    },
    /// A singular complex attribute named without a sub-attribute (`name`).
    Complex { field: Field },
    /// `meta.resourceType`: the same for every resource of a type.
    ResourceType,
    /// `meta` itself: always present.
    Meta,
}

fn bad_filter(detail: String) -> ScimError {
    ScimError::invalid_filter(detail)
}

fn json_path(r: &Resolved) -> Vec<String> {
    let mut path = Vec::with_capacity(3);
    if r.in_extension {
        path.push(r.schema.to_string());
    }
    path.push(r.attr.name.to_string());
    if let Some(s) = r.sub {
        path.push(s.name.to_string());
    }
    path
}

fn target(rt: ResourceType, r: &Resolved) -> Result<Target, ScimError> {
    let name = r.attr.name;
    if !r.in_extension && name == "meta" {
        return match r.sub.map(|s| s.name) {
            None => Ok(Target::Meta),
            Some("resourceType") => Ok(Target::ResourceType),
            Some(sub @ ("created" | "lastModified")) => Ok(Target::Single {
                field: if sub == "created" {
                    Field::Created
                } else {
                    Field::LastModified
                },
                def: r.target(),
            }),
            Some(sub) => Err(bad_filter(format!("'meta.{sub}' cannot be filtered"))),
        };
    }
    let column = match (rt, r.in_extension, name, r.sub) {
        (_, false, "id", None) => Some(Field::Id),
        (_, false, "externalId", None) => Some(Field::ExternalId),
        (_, false, "displayName", None) => Some(Field::DisplayName),
        (ResourceType::User, false, "userName", None) => Some(Field::UserName),
        (ResourceType::User, false, "active", None) => Some(Field::Active),
        _ => None,
    };
    let field = column.unwrap_or_else(|| Field::Json { path: json_path(r) });
    if r.target().ty == AttrType::Complex {
        Ok(Target::Complex { field })
    } else {
        Ok(Target::Single {
            field,
            def: r.target(),
        })
    }
}

/// Resolves a filter path, refusing attributes that are never returned.
fn resolve_filter(rt: ResourceType, path: &AttrPath) -> Result<Resolved, ScimError> {
    let r = resolve(rt, path, Usage::Filter)?;
    if r.attr.returned == Returned::Never || r.target().returned == Returned::Never {
        return Err(bad_filter(format!(
            "'{path}' is never returned and cannot be filtered"
        )));
    }
    Ok(r)
}

fn is_schemas(path: &AttrPath) -> bool {
    path.name.eq_ignore_ascii_case("schemas") && path.sub.is_none() && path.urn.is_none()
}

/// A multi-valued attribute: where it is stored and its definition.
struct MultiAttr {
    multi: Multi,
    attr: &'static AttributeDef,
}

impl MultiAttr {
    fn of(rt: ResourceType, r: &Resolved) -> MultiAttr {
        let multi = match (rt, r.in_extension, r.attr.name) {
            (ResourceType::User, false, "emails") => Multi::Emails,
            (ResourceType::User, false, "groups") => Multi::Groups,
            (ResourceType::Group, false, "members") => Multi::Members,
            _ => Multi::Json {
                path: json_path(&Resolved { sub: None, ..*r }),
            },
        };
        MultiAttr {
            multi,
            attr: r.attr,
        }
    }

    fn schemas() -> MultiAttr {
        MultiAttr {
            multi: Multi::Json {
                path: vec!["schemas".into()],
            },
            attr: &SCHEMAS,
        }
    }

    /// The element value a sub-attribute name designates: `(sub, definition)`.
    /// Without a name, a complex attribute means its `value` (RFC 7644 §3.4.2.2).
    fn sub(
        &self,
        name: Option<&str>,
    ) -> Result<(Option<String>, &'static AttributeDef), ScimError> {
        let attr = self.attr;
        if attr.sub_attributes.is_empty() {
            return match name {
                None => Ok((None, attr)),
                Some(n) if n.eq_ignore_ascii_case("value") => Ok((None, attr)),
                Some(n) => Err(bad_filter(format!(
                    "'{}' has no sub-attribute '{n}'",
                    attr.name
                ))),
            };
        }
        let wanted = name.unwrap_or("value");
        let def = attr.sub(wanted).ok_or_else(|| {
            bad_filter(format!("'{}' has no sub-attribute '{wanted}'", attr.name))
        })?;
        let refused = match self.multi {
            Multi::Groups => def.name == "$ref",
            Multi::Members => matches!(def.name, "$ref" | "display"),
            _ => false,
        };
        if refused || def.returned == Returned::Never {
            return Err(bad_filter(format!(
                "'{}.{}' cannot be filtered",
                attr.name, def.name
            )));
        }
        Ok((Some(def.name.to_string()), def))
    }
}

/// The storage kind of a scalar attribute; None for complex ones.
fn kind_of(def: &AttributeDef) -> Option<ValueKind> {
    match def.ty {
        AttrType::String | AttrType::Reference | AttrType::Binary => Some(ValueKind::Text {
            case_exact: def.case_exact,
        }),
        AttrType::Boolean => Some(ValueKind::Bool),
        AttrType::Decimal | AttrType::Integer => Some(ValueKind::Number),
        AttrType::DateTime => Some(ValueKind::DateTime),
        AttrType::Complex => None,
    }
}

fn op_of(op: CompareOp) -> Op {
    match op {
        CompareOp::Eq => Op::Eq,
        CompareOp::Ne => Op::Ne,
        CompareOp::Co => Op::Co,
        CompareOp::Sw => Op::Sw,
        CompareOp::Ew => Op::Ew,
        CompareOp::Gt => Op::Gt,
        CompareOp::Ge => Op::Ge,
        CompareOp::Lt => Op::Lt,
        CompareOp::Le => Op::Le,
    }
}

fn number(n: &Number) -> Option<f64> {
    n.as_f64().filter(|f| f.is_finite())
}

/// Type-checks `name op value` against the attribute's kind (RFC 7644 §3.4.2.2).
fn literal(
    name: &str,
    kind: ValueKind,
    op: CompareOp,
    value: &CompValue,
) -> Result<Literal, ScimError> {
    let o = op.as_str();
    if *value == CompValue::Null {
        return Err(bad_filter(format!(
            "'{name} {o} null' is not supported: use '{name} pr' or 'not ({name} pr)'"
        )));
    }
    let type_name = match kind {
        ValueKind::Text { .. } => "string",
        ValueKind::Bool => "boolean",
        ValueKind::Number => "number",
        ValueKind::DateTime => "dateTime",
    };
    if op_of(op).is_substring() && !matches!(kind, ValueKind::Text { .. }) {
        return Err(bad_filter(format!(
            "'{o}' applies to strings only, and '{name}' is a {type_name}"
        )));
    }
    if kind == ValueKind::Bool && op_of(op).is_ordering() {
        return Err(bad_filter(format!(
            "'{o}' does not apply to boolean '{name}': use eq or ne"
        )));
    }
    let mismatch = || {
        bad_filter(format!(
            "'{name}' is a {type_name} and cannot be compared with {value}"
        ))
    };
    match (kind, value) {
        (ValueKind::Text { .. }, CompValue::Str(s)) => Ok(Literal::Text(s.clone())),
        (ValueKind::Bool, CompValue::Bool(b)) => Ok(Literal::Bool(*b)),
        (ValueKind::Number, CompValue::Num(n)) => number(n).map(Literal::Number).ok_or_else(mismatch),
        (ValueKind::DateTime, CompValue::Str(s)) => OffsetDateTime::parse(s, &Rfc3339)
            .map(|t| Literal::DateTime(Timestamp::from_offset(t)))
            .map_err(|_| {
                bad_filter(format!(
                    "'{name}' is a dateTime and {value} is not one (RFC 3339, e.g. \"2011-05-13T04:42:34Z\")"
                ))
            }),
        _ => Err(mismatch()),
    }
}

/// `id`, `members.value` and `groups.value` are UUIDs: an `eq`/`ne` with any
/// other text is decided without asking the store.
fn uuid_decided(op: Op, value: &Literal) -> Option<Cond> {
    match (op, value) {
        (Op::Eq | Op::Ne, Literal::Text(s)) if Uuid::parse_str(s).is_err() => {
            Some(Cond::Const(op == Op::Ne))
        }
        _ => None,
    }
}

fn compare(
    rt: ResourceType,
    path: &AttrPath,
    op: CompareOp,
    value: &CompValue,
) -> Result<Cond, ScimError> {
    if is_schemas(path) {
        return compare_multi(&MultiAttr::schemas(), None, path, op, value);
    }
    let r = resolve_filter(rt, path)?;
    if r.attr.multi_valued {
        let sub = r.sub.map(|s| s.name);
        return compare_multi(&MultiAttr::of(rt, &r), sub, path, op, value);
    }
    match target(rt, &r)? {
        Target::Single { field, def } => {
            let kind = kind_of(def).ok_or_else(|| bad_filter(format!("'{path}' is complex")))?;
            let value = literal(&path.to_string(), kind, op, value)?;
            let op = op_of(op);
            if field == Field::Id
                && let Some(c) = uuid_decided(op, &value)
            {
                return Ok(c);
            }
            Ok(Cond::Compare {
                field,
                kind,
                op,
                value,
            })
        }
        Target::ResourceType => {
            let Literal::Text(v) = literal(
                &path.to_string(),
                ValueKind::Text { case_exact: true },
                op,
                value,
            )?
            else {
                return Err(bad_filter(format!("'{path}' is a string")));
            };
            let name = rt.name();
            let holds = match op_of(op) {
                Op::Eq => name == v,
                Op::Ne => name != v,
                Op::Co => name.contains(&v),
                Op::Sw => name.starts_with(&v),
                Op::Ew => name.ends_with(&v),
                Op::Gt => name > v.as_str(),
                Op::Ge => name >= v.as_str(),
                Op::Lt => name < v.as_str(),
                Op::Le => name <= v.as_str(),
            };
            Ok(Cond::Const(holds))
        }
        Target::Complex { .. } | Target::Meta => Err(bad_filter(format!(
            "'{path}' is complex: compare one of its sub-attributes"
        ))),
    }
}

/// `attr[.sub] op value` on a multi-valued attribute: some element matches.
/// `ne` means no element is equal (so resources without the attribute match).
fn compare_multi(
    m: &MultiAttr,
    sub: Option<&str>,
    path: &AttrPath,
    op: CompareOp,
    value: &CompValue,
) -> Result<Cond, ScimError> {
    let (sub, def) = m.sub(sub)?;
    let kind = kind_of(def).ok_or_else(|| bad_filter(format!("'{path}' is complex")))?;
    let value = literal(&path.to_string(), kind, op, value)?;
    let op = op_of(op);
    let by_id =
        matches!(m.multi, Multi::Members | Multi::Groups) && sub.as_deref() == Some("value");
    if by_id && let Some(c) = uuid_decided(op, &value) {
        return Ok(c);
    }
    let elem_op = if op == Op::Ne { Op::Eq } else { op };
    let any = Cond::Any {
        multi: m.multi.clone(),
        elem: Some(Box::new(ElemCond::Compare {
            sub,
            kind,
            op: elem_op,
            value,
        })),
    };
    Ok(if op == Op::Ne { Cond::negate(any) } else { any })
}

fn present(rt: ResourceType, path: &AttrPath) -> Result<Cond, ScimError> {
    if is_schemas(path) {
        return Ok(Cond::Any {
            multi: MultiAttr::schemas().multi,
            elem: None,
        });
    }
    let r = resolve_filter(rt, path)?;
    if r.attr.multi_valued {
        let m = MultiAttr::of(rt, &r);
        let elem = match r.sub {
            None => None,
            Some(s) => {
                let (sub, _) = m.sub(Some(s.name))?;
                Some(Box::new(ElemCond::Present { sub }))
            }
        };
        return Ok(Cond::Any {
            multi: m.multi,
            elem,
        });
    }
    Ok(match target(rt, &r)? {
        Target::Single { field, .. } | Target::Complex { field } => Cond::Present(field),
        Target::ResourceType | Target::Meta => Cond::Const(true),
    })
}

fn value_path(rt: ResourceType, attr: &AttrPath, filter: &Filter) -> Result<Cond, ScimError> {
    let m = if is_schemas(attr) {
        MultiAttr::schemas()
    } else {
        let r = resolve_filter(rt, attr)?;
        if r.sub.is_some() {
            return Err(bad_filter(format!(
                "'{attr}': a value filter applies to an attribute, not a sub-attribute"
            )));
        }
        if !r.attr.multi_valued {
            if r.attr.ty != AttrType::Complex {
                return Err(bad_filter(format!(
                    "'{attr}' is neither multi-valued nor complex: it takes no value filter"
                )));
            }
            // A singular complex attribute: `name[givenName eq "x"]` is `name.givenName eq "x"`.
            return to_cond(rt, &prefixed(attr, filter)?);
        }
        MultiAttr::of(rt, &r)
    };
    let elem = elem_cond(&m, filter)?;
    Ok(Cond::Any {
        multi: m.multi,
        elem: Some(Box::new(elem)),
    })
}

/// Rewrites the paths of a value filter on a singular complex attribute as sub-attribute paths.
fn prefixed(attr: &AttrPath, f: &Filter) -> Result<Filter, ScimError> {
    let sub_path = |p: &AttrPath| -> Result<AttrPath, ScimError> {
        if p.urn.is_some() || p.sub.is_some() {
            return Err(bad_filter(format!(
                "'{p}' inside '{attr}[…]' must be a plain sub-attribute name"
            )));
        }
        Ok(AttrPath {
            urn: attr.urn.clone(),
            name: attr.name.clone(),
            sub: Some(p.name.clone()),
        })
    };
    Ok(match f {
        Filter::And(l, r) => {
            Filter::And(Box::new(prefixed(attr, l)?), Box::new(prefixed(attr, r)?))
        }
        Filter::Or(l, r) => Filter::Or(Box::new(prefixed(attr, l)?), Box::new(prefixed(attr, r)?)),
        Filter::Not(inner) => Filter::Not(Box::new(prefixed(attr, inner)?)),
        Filter::Present(p) => Filter::Present(sub_path(p)?),
        Filter::Compare { path, op, value } => Filter::Compare {
            path: sub_path(path)?,
            op: *op,
            value: value.clone(),
        },
        Filter::ValuePath { .. } => {
            return Err(bad_filter(format!(
                "value filters cannot be nested inside '{attr}[…]'"
            )));
        }
    })
}

fn elem_sub_name<'p>(m: &MultiAttr, p: &'p AttrPath) -> Result<&'p str, ScimError> {
    if p.urn.is_some() || p.sub.is_some() {
        return Err(bad_filter(format!(
            "'{p}' inside '{}[…]' must be a plain sub-attribute name",
            m.attr.name
        )));
    }
    Ok(&p.name)
}

/// The filter inside `attr[…]`, on one element (RFC 7644 §3.4.2.2 `valFilter`).
fn elem_cond(m: &MultiAttr, f: &Filter) -> Result<ElemCond, ScimError> {
    Ok(match f {
        Filter::And(l, r) => ElemCond::And(vec![elem_cond(m, l)?, elem_cond(m, r)?]),
        Filter::Or(l, r) => ElemCond::Or(vec![elem_cond(m, l)?, elem_cond(m, r)?]),
        Filter::Not(inner) => ElemCond::Not(Box::new(elem_cond(m, inner)?)),
        Filter::Present(p) => ElemCond::Present {
            sub: m.sub(Some(elem_sub_name(m, p)?))?.0,
        },
        Filter::Compare { path, op, value } => {
            let (sub, def) = m.sub(Some(elem_sub_name(m, path)?))?;
            let name = format!("{}.{}", m.attr.name, def.name);
            let kind = kind_of(def).ok_or_else(|| bad_filter(format!("'{name}' is complex")))?;
            let value = literal(&name, kind, *op, value)?;
            ElemCond::Compare {
                sub,
                kind,
                op: op_of(*op),
                value,
            }
        }
        Filter::ValuePath { .. } => {
            return Err(bad_filter(format!(
                "value filters cannot be nested inside '{}[…]'",
                m.attr.name
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::protocol::{ENTERPRISE_USER_URN, ScimType, parse_filter};
    use ResourceType::{Group, User};
    use rstest::rstest;

    fn convert(rt: ResourceType, text: &str) -> Result<Cond, ScimError> {
        to_cond(rt, &parse_filter(text)?)
    }

    /// One line per condition: `$` marks JSON paths, `ent:` the enterprise URN.
    fn show(c: &Cond) -> String {
        let list = |v: &[Cond], sep: &str| v.iter().map(show).collect::<Vec<_>>().join(sep);
        match c {
            Cond::Const(b) => b.to_string(),
            Cond::And(v) => format!("({})", list(v, " and ")),
            Cond::Or(v) => format!("({})", list(v, " or ")),
            Cond::Not(c) => format!("not {}", show(c)),
            Cond::Compare {
                field,
                kind,
                op,
                value,
            } => {
                format!("{} {}", field_s(field), cmp_s(*kind, *op, value))
            }
            Cond::Present(f) => format!("{} pr", field_s(f)),
            Cond::Any { multi, elem } => {
                let m = match multi {
                    Multi::Json { path } => format!("${}", path.join("/")),
                    other => format!("{other:?}").to_lowercase(),
                };
                format!("{m}[{}]", elem.as_deref().map_or("*".into(), elem_s))
            }
        }
    }

    fn elem_s(e: &ElemCond) -> String {
        let list = |v: &[ElemCond], sep: &str| v.iter().map(elem_s).collect::<Vec<_>>().join(sep);
        match e {
            ElemCond::And(v) => format!("({})", list(v, " and ")),
            ElemCond::Or(v) => format!("({})", list(v, " or ")),
            ElemCond::Not(e) => format!("not {}", elem_s(e)),
            ElemCond::Compare {
                sub,
                kind,
                op,
                value,
            } => {
                format!(
                    "{} {}",
                    sub.as_deref().unwrap_or("."),
                    cmp_s(*kind, *op, value)
                )
            }
            ElemCond::Present { sub } => format!("{} pr", sub.as_deref().unwrap_or(".")),
        }
    }

    fn field_s(f: &Field) -> String {
        match f {
            Field::Json { path } => {
                format!("${}", path.join("/")).replace(ENTERPRISE_USER_URN, "ent:")
            }
            other => format!("{other:?}"),
        }
    }

    fn cmp_s(kind: ValueKind, op: Op, value: &Literal) -> String {
        let kind = match kind {
            ValueKind::Text { case_exact: false } => "ci".to_string(),
            ValueKind::Text { case_exact: true } => "exact".to_string(),
            other => format!("{other:?}").to_lowercase(),
        };
        let value = match value {
            Literal::Text(s) => format!("{s:?}"),
            Literal::Bool(b) => b.to_string(),
            Literal::Number(n) => n.to_string(),
            Literal::DateTime(t) => t.rfc3339(),
            Literal::Null => "null".into(),
        };
        format!("{kind} {} {value}", format!("{op:?}").to_lowercase())
    }

    /// The filter examples of RFC 7644 §3.4.2.2 that apply to Users.
    #[rstest]
    #[case(r#"userName eq "bjensen""#, r#"UserName ci eq "bjensen""#)]
    #[case(
        r#"name.familyName co "O'Malley""#,
        r#"$name/familyName ci co "O'Malley""#
    )]
    #[case(r#"userName sw "J""#, r#"UserName ci sw "J""#)]
    #[case(
        r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
        r#"UserName ci sw "J""#
    )]
    #[case("title pr", "$title pr")]
    #[case(
        r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
        "LastModified datetime gt 2011-05-13T04:42:34Z"
    )]
    #[case(
        r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
        "LastModified datetime ge 2011-05-13T04:42:34Z"
    )]
    #[case(
        r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
        "LastModified datetime lt 2011-05-13T04:42:34Z"
    )]
    #[case(
        r#"meta.lastModified le "2011-05-13T04:42:34+02:00""#,
        "LastModified datetime le 2011-05-13T02:42:34Z"
    )]
    #[case(
        r#"title pr and userType eq "Employee""#,
        r#"($title pr and $userType ci eq "Employee")"#
    )]
    #[case(
        r#"title pr or userType eq "Intern""#,
        r#"($title pr or $userType ci eq "Intern")"#
    )]
    #[case(
        r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
        r#"$schemas[. ci eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]"#
    )]
    #[case(
        r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
        r#"($userType ci eq "Employee" and (emails[value ci co "example.com"] or emails[value ci co "example.org"]))"#
    )]
    #[case(
        r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
        r#"($userType ci ne "Employee" and not (emails[value ci co "example.com"] or emails[value ci co "example.org"]))"#
    )]
    #[case(
        r#"userType eq "Employee" and (emails.type eq "work")"#,
        r#"($userType ci eq "Employee" and emails[type ci eq "work"])"#
    )]
    #[case(
        r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
        r#"($userType ci eq "Employee" and emails[(type ci eq "work" and value ci co "@example.com")])"#
    )]
    #[case(
        r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
        r#"(emails[(type ci eq "work" and value ci co "@example.com")] or $ims[(type ci eq "xmpp" and value ci co "@foo.com")])"#
    )]
    fn rfc_user_filter_examples_convert_to_conditions(#[case] text: &str, #[case] expected: &str) {
        assert_eq!(show(&convert(User, text).expect(text)), expected);
    }

    #[rstest]
    #[case::names_are_case_insensitive(User, r#"USERNAME EQ "x""#, r#"UserName ci eq "x""#)]
    #[case::external_id_is_case_exact(User, r#"externalId eq "X""#, r#"ExternalId exact eq "X""#)]
    #[case::extension_urn(
        User,
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "S""#,
        r#"$ent:/department ci eq "S""#
    )]
    #[case::unqualified_extension_sub(
        User,
        r#"manager.value eq "4""#,
        r#"$ent:/manager/value ci eq "4""#
    )]
    #[case::booleans(User, "active eq false", "Active bool eq false")]
    #[case::group_display_name_is_case_insensitive(
        Group,
        r#"displayName eq "A""#,
        r#"DisplayName ci eq "A""#
    )]
    #[case::non_uuid_id_never_matches(User, r#"id eq "bjensen""#, "false")]
    #[case::ne_a_non_uuid_id_always_matches(Group, r#"id ne "bjensen""#, "true")]
    #[case::non_uuid_member_never_matches(Group, r#"members.value eq "x""#, "false")]
    #[case::resource_type_is_a_constant(User, r#"meta.resourceType eq "User""#, "true")]
    #[case::resource_type_of_another_type(Group, r#"meta.resourceType eq "User""#, "false")]
    #[case::emails_pr(User, "emails pr", "emails[*]")]
    #[case::members_pr(Group, "members pr", "members[*]")]
    #[case::multi_valued_ne_means_no_element_equals(
        User,
        r#"emails.type ne "work""#,
        r#"not emails[type ci eq "work"]"#
    )]
    #[case::groups_display(User, r#"groups[display eq "A"]"#, r#"groups[display ci eq "A"]"#)]
    #[case::singular_complex_value_path(
        User,
        r#"name[givenName eq "B" or familyName pr]"#,
        r#"($name/givenName ci eq "B" or $name/familyName pr)"#
    )]
    #[case::element_not(
        User,
        "emails[not (primary eq true)]",
        "emails[not primary bool eq true]"
    )]
    #[case::double_negation(User, "not (not (title pr))", "$title pr")]
    fn filters_map_to_columns_rows_and_json_keys(
        #[case] rt: ResourceType,
        #[case] text: &str,
        #[case] expected: &str,
    ) {
        assert_eq!(show(&convert(rt, text).expect(text)), expected);
    }

    #[rstest]
    #[case::unknown_attribute(User, r#"nosuch eq "x""#, "unknown attribute")]
    #[case::unknown_sub_attribute(User, "name.nosuch pr", "unknown sub-attribute")]
    #[case::unknown_element_attribute(User, r#"emails[nosuch eq "x"]"#, "no sub-attribute")]
    #[case::unknown_schema(User, r#"urn:example:nosuch:2.0:User:x eq "x""#, "unknown schema")]
    #[case::user_attribute_on_groups(Group, r#"userName eq "x""#, "unknown attribute")]
    #[case::ordering_on_a_boolean(User, "active gt true", "use eq or ne")]
    #[case::boolean_for_a_string(User, "userName eq true", "is a string")]
    #[case::string_for_a_boolean(User, r#"active eq "true""#, "is a boolean")]
    #[case::unparseable_date_time(User, r#"meta.lastModified gt "yesterday""#, "RFC 3339")]
    #[case::substring_of_a_date_time(User, r#"meta.created co "2011""#, "strings only")]
    #[case::null_literal(User, "title eq null", "pr")]
    #[case::complex_without_sub_attribute(User, r#"name eq "Babs""#, "complex")]
    #[case::password(User, r#"password eq "secret""#, "never returned")]
    #[case::meta_location(User, r#"meta.location eq "x""#, "cannot be filtered")]
    #[case::group_ref(User, r#"groups.$ref eq "x""#, "cannot be filtered")]
    #[case::member_display(Group, r#"members.display eq "x""#, "cannot be filtered")]
    #[case::complex_multi_without_value(User, r#"addresses eq "x""#, "no sub-attribute 'value'")]
    #[case::value_filter_on_a_simple_attribute(
        User,
        r#"title[value eq "x"]"#,
        "neither multi-valued nor complex"
    )]
    fn bad_filters_are_invalid_filter_errors(
        #[case] rt: ResourceType,
        #[case] text: &str,
        #[case] detail: &str,
    ) {
        let e = convert(rt, text).expect_err(text);
        assert_eq!(e.scim_type, Some(ScimType::InvalidFilter), "{text}: {e}");
        assert!(e.detail.contains(detail), "{text}: {}", e.detail);
    }

    #[rstest]
    #[case(User, "userName", "UserName ci")]
    #[case(User, "meta.lastModified", "LastModified datetime")]
    #[case(User, "emails", "PrimaryEmail ci")]
    #[case(User, "emails.value", "PrimaryEmail ci")]
    #[case(User, "name.familyName", "$name/familyName ci")]
    #[case(Group, "DISPLAYNAME", "DisplayName ci")]
    fn sort_by_maps_to_a_key(#[case] rt: ResourceType, #[case] by: &str, #[case] expected: &str) {
        let key = sort_key(rt, &AttrPath::parse(by).expect("path")).expect(by);
        let shown = cmp_s(key.kind, Op::Eq, &Literal::Null);
        assert_eq!(
            format!(
                "{} {}",
                field_s(&key.field),
                shown.trim_end_matches(" eq null")
            ),
            expected
        );
    }

    #[rstest]
    #[case(User, "nosuch")]
    #[case(User, "phoneNumbers")]
    #[case(User, "name")]
    #[case(User, "password")]
    #[case(User, "meta.resourceType")]
    #[case(Group, "members")]
    fn unsortable_sort_by_is_an_invalid_value(#[case] rt: ResourceType, #[case] by: &str) {
        let e = sort_key(rt, &AttrPath::parse(by).expect("path")).expect_err(by);
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue), "{by}: {e}");
    }
}
