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

    const CI: ValueKind = ValueKind::Text { case_exact: false };
    const EXACT: ValueKind = ValueKind::Text { case_exact: true };

    fn convert(rt: ResourceType, text: &str) -> Result<Cond, ScimError> {
        to_cond(rt, &parse_filter(text)?)
    }

    fn ok(rt: ResourceType, text: &str) -> Cond {
        convert(rt, text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn json(path: &[&str]) -> Field {
        Field::Json {
            path: path.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn cmp(field: Field, kind: ValueKind, op: Op, v: &str) -> Cond {
        Cond::Compare {
            field,
            kind,
            op,
            value: Literal::Text(v.into()),
        }
    }

    fn at(text: &str) -> Literal {
        let t = OffsetDateTime::parse(text, &Rfc3339).expect("test dateTime");
        Literal::DateTime(Timestamp::from_offset(t))
    }

    fn elem(sub: &str, kind: ValueKind, op: Op, v: Literal) -> ElemCond {
        ElemCond::Compare {
            sub: Some(sub.into()),
            kind,
            op,
            value: v,
        }
    }

    fn any(multi: Multi, e: ElemCond) -> Cond {
        Cond::Any {
            multi,
            elem: Some(Box::new(e)),
        }
    }

    fn email_value(op: Op, v: &str) -> Cond {
        any(
            Multi::Emails,
            elem("value", CI, op, Literal::Text(v.into())),
        )
    }

    fn employee(op: Op) -> Cond {
        cmp(json(&["userType"]), CI, op, "Employee")
    }

    fn work_example_com() -> ElemCond {
        ElemCond::And(vec![
            elem("type", CI, Op::Eq, Literal::Text("work".into())),
            elem("value", CI, Op::Co, Literal::Text("@example.com".into())),
        ])
    }

    /// The filter examples of RFC 7644 §3.4.2.2 that apply to Users.
    #[rstest]
    #[case::username_eq(
        r#"userName eq "bjensen""#,
        cmp(Field::UserName, CI, Op::Eq, "bjensen")
    )]
    #[case::family_name_co(
        r#"name.familyName co "O'Malley""#,
        cmp(json(&["name", "familyName"]), CI, Op::Co, "O'Malley")
    )]
    #[case::username_sw(r#"userName sw "J""#, cmp(Field::UserName, CI, Op::Sw, "J"))]
    #[case::urn_qualified(
        r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
        cmp(Field::UserName, CI, Op::Sw, "J")
    )]
    #[case::title_pr("title pr", Cond::Present(json(&["title"])))]
    #[case::last_modified_gt(
        r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
        Cond::Compare { field: Field::LastModified, kind: ValueKind::DateTime, op: Op::Gt, value: at("2011-05-13T04:42:34Z") }
    )]
    #[case::last_modified_ge(
        r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
        Cond::Compare { field: Field::LastModified, kind: ValueKind::DateTime, op: Op::Ge, value: at("2011-05-13T04:42:34Z") }
    )]
    #[case::last_modified_lt(
        r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
        Cond::Compare { field: Field::LastModified, kind: ValueKind::DateTime, op: Op::Lt, value: at("2011-05-13T04:42:34Z") }
    )]
    #[case::last_modified_le(
        r#"meta.lastModified le "2011-05-13T04:42:34+02:00""#,
        Cond::Compare { field: Field::LastModified, kind: ValueKind::DateTime, op: Op::Le, value: at("2011-05-13T02:42:34Z") }
    )]
    #[case::pr_and(
        r#"title pr and userType eq "Employee""#,
        Cond::And(vec![Cond::Present(json(&["title"])), employee(Op::Eq)])
    )]
    #[case::pr_or(
        r#"title pr or userType eq "Intern""#,
        Cond::Or(vec![Cond::Present(json(&["title"])), cmp(json(&["userType"]), CI, Op::Eq, "Intern")])
    )]
    #[case::schemas_eq(
        r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
        Cond::Any {
            multi: Multi::Json { path: vec!["schemas".into()] },
            elem: Some(Box::new(ElemCond::Compare { sub: None, kind: CI, op: Op::Eq, value: Literal::Text(ENTERPRISE_USER_URN.into()) })),
        }
    )]
    #[case::emails_or(
        r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
        Cond::And(vec![employee(Op::Eq), Cond::Or(vec![email_value(Op::Co, "example.com"), email_value(Op::Co, "example.org")])])
    )]
    #[case::ne_and_not(
        r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
        Cond::And(vec![
            employee(Op::Ne),
            Cond::Not(Box::new(Cond::Or(vec![email_value(Op::Co, "example.com"), email_value(Op::Co, "example.org")]))),
        ])
    )]
    #[case::emails_type(
        r#"userType eq "Employee" and (emails.type eq "work")"#,
        Cond::And(vec![employee(Op::Eq), any(Multi::Emails, elem("type", CI, Op::Eq, Literal::Text("work".into())))])
    )]
    #[case::value_path(
        r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
        Cond::And(vec![employee(Op::Eq), any(Multi::Emails, work_example_com())])
    )]
    #[case::value_paths_or(
        r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
        Cond::Or(vec![
            any(Multi::Emails, work_example_com()),
            any(Multi::Json { path: vec!["ims".into()] }, ElemCond::And(vec![
                elem("type", CI, Op::Eq, Literal::Text("xmpp".into())),
                elem("value", CI, Op::Co, Literal::Text("@foo.com".into())),
            ])),
        ])
    )]
    fn rfc_user_filter_examples_convert_to_conditions(#[case] text: &str, #[case] expected: Cond) {
        assert_eq!(ok(User, text), expected);
    }

    #[rstest]
    #[case::case_insensitive_names(
        "USERNAME EQ \"x\"",
        User,
        cmp(Field::UserName, CI, Op::Eq, "x")
    )]
    #[case::external_id_is_case_exact(
        r#"externalId eq "X""#,
        User,
        cmp(Field::ExternalId, EXACT, Op::Eq, "X")
    )]
    #[case::enterprise_attribute(
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "Sales""#,
        User,
        cmp(json(&[ENTERPRISE_USER_URN, "department"]), CI, Op::Eq, "Sales")
    )]
    #[case::unqualified_extension_sub_attribute(
        r#"manager.value eq "42""#,
        User,
        cmp(json(&[ENTERPRISE_USER_URN, "manager", "value"]), CI, Op::Eq, "42")
    )]
    #[case::active(
        "active eq false",
        User,
        Cond::Compare { field: Field::Active, kind: ValueKind::Bool, op: Op::Eq, value: Literal::Bool(false) }
    )]
    #[case::group_display_name_is_case_insensitive(
        r#"displayName eq "Admins""#,
        Group,
        cmp(Field::DisplayName, CI, Op::Eq, "Admins")
    )]
    #[case::id_that_is_not_a_uuid_never_matches(r#"id eq "bjensen""#, User, Cond::Const(false))]
    #[case::id_ne_a_non_uuid_always_matches(r#"id ne "bjensen""#, Group, Cond::Const(true))]
    #[case::member_that_is_not_a_uuid_never_matches(
        r#"members.value eq "x""#,
        Group,
        Cond::Const(false)
    )]
    #[case::resource_type_is_a_constant(r#"meta.resourceType eq "User""#, User, Cond::Const(true))]
    #[case::resource_type_of_another_type(
        r#"meta.resourceType eq "User""#,
        Group,
        Cond::Const(false)
    )]
    #[case::emails_pr("emails pr", User, Cond::Any { multi: Multi::Emails, elem: None })]
    #[case::members_pr("members pr", Group, Cond::Any { multi: Multi::Members, elem: None })]
    #[case::multi_valued_ne_means_no_element_equals(
        r#"emails.type ne "work""#,
        User,
        Cond::Not(Box::new(any(Multi::Emails, elem("type", CI, Op::Eq, Literal::Text("work".into())))))
    )]
    #[case::groups_display(
        r#"groups[display eq "Admins"]"#,
        User,
        any(Multi::Groups, elem("display", CI, Op::Eq, Literal::Text("Admins".into())))
    )]
    #[case::singular_complex_value_path(
        r#"name[givenName eq "Babs" or familyName pr]"#,
        User,
        Cond::Or(vec![cmp(json(&["name", "givenName"]), CI, Op::Eq, "Babs"), Cond::Present(json(&["name", "familyName"]))])
    )]
    #[case::element_not(
        r#"emails[not (primary eq true)]"#,
        User,
        any(
            Multi::Emails,
            ElemCond::Not(Box::new(elem(
                "primary",
                ValueKind::Bool,
                Op::Eq,
                Literal::Bool(true)
            )))
        )
    )]
    fn filters_map_to_columns_rows_and_json_keys(
        #[case] text: &str,
        #[case] rt: ResourceType,
        #[case] expected: Cond,
    ) {
        assert_eq!(ok(rt, text), expected);
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
    #[case(User, "userName", Field::UserName, CI)]
    #[case(User, "meta.lastModified", Field::LastModified, ValueKind::DateTime)]
    #[case(User, "emails", Field::PrimaryEmail, CI)]
    #[case(User, "emails.value", Field::PrimaryEmail, CI)]
    #[case(User, "name.familyName", json(&["name", "familyName"]), CI)]
    #[case(Group, "DISPLAYNAME", Field::DisplayName, CI)]
    fn sort_by_maps_to_a_key(
        #[case] rt: ResourceType,
        #[case] by: &str,
        #[case] field: Field,
        #[case] kind: ValueKind,
    ) {
        let path = AttrPath::parse(by).expect("path");
        assert_eq!(sort_key(rt, &path), Ok(SortKey { field, kind }));
    }

    #[rstest]
    #[case(User, "nosuch")]
    #[case(User, "phoneNumbers")]
    #[case(User, "name")]
    #[case(User, "password")]
    #[case(User, "meta.resourceType")]
    #[case(Group, "members")]
    fn unsortable_sort_by_is_an_invalid_value(#[case] rt: ResourceType, #[case] by: &str) {
        let path = AttrPath::parse(by).expect("path");
        let e = sort_key(rt, &path).expect_err(by);
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue), "{by}: {e}");
    }
}
