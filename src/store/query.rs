//! Storage-neutral query conditions: what a list of users or groups is
//! filtered and sorted by, in terms of the stored resource (its indexed
//! columns, its JSON document, its emails and memberships) rather than SCIM
//! text.
//!
//! `scim::query` builds these from a SCIM filter through the schema; each
//! backend compiles them (`store::sql::filter`). This module is plain data: it
//! must never know SQL, sqlx or the SCIM protocol types, and never hold a
//! value that was not type-checked by its producer.
//!
//! Semantics every backend keeps:
//! - a comparison on an absent value is false, so `Not` and `Op::Ne` hold for
//!   resources without the attribute;
//! - `Text { case_exact: false }` compares case-insensitively (the compiler
//!   lower-cases the literal);
//! - `Present` means "has a non-empty value" (RFC 7644 §3.4.2.2 `pr`).

use crate::store::Timestamp;

/// The kind of resource a condition applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    User,
    Group,
}

/// A single value of a resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Field {
    /// The resource id (a UUID).
    Id,
    /// A user's userName (stored with a lower-cased copy).
    UserName,
    /// externalId, compared exactly.
    ExternalId,
    /// displayName (for groups stored with a lower-cased copy).
    DisplayName,
    /// A user's active flag.
    Active,
    /// meta.created.
    Created,
    /// meta.lastModified.
    LastModified,
    /// A user's primary email value, or the first one when none is primary
    /// (what `sortBy=emails` sorts by, RFC 7644 §3.4.2.3).
    PrimaryEmail,
    /// A value inside the stored JSON document, by keys from its root in the
    /// canonical attribute spelling, e.g. `["name", "familyName"]` or
    /// `["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "department"]`.
    Json { path: Vec<String> },
}

/// How values of a field compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueKind {
    Text { case_exact: bool },
    Bool,
    Number,
    DateTime,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Eq,
    Ne,
    /// Contains (text).
    Co,
    /// Starts with (text).
    Sw,
    /// Ends with (text).
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    /// Whether the operator is a substring test, which only applies to text.
    pub fn is_substring(self) -> bool {
        matches!(self, Op::Co | Op::Sw | Op::Ew)
    }

    /// Whether the operator is an ordering comparison.
    pub fn is_ordering(self) -> bool {
        matches!(self, Op::Gt | Op::Ge | Op::Lt | Op::Le)
    }
}

/// A value compared against, already of the field's kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Text(String),
    Bool(bool),
    Number(f64),
    DateTime(Timestamp),
    /// Never produced by the SCIM layer (`eq null` is refused); compiles to false.
    Null,
}

/// A multi-valued attribute of a resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Multi {
    /// A user's emails (their own rows: `value`, `type`, `primary`, `display`).
    Emails,
    /// A group's members (`value` is the member id, `type` is `User`/`Group`).
    Members,
    /// A user's groups, derived from memberships (`value` is the group id,
    /// `display` the group's displayName, `type` always `direct`).
    Groups,
    /// An array inside the JSON document, by keys from its root.
    Json { path: Vec<String> },
}

/// A condition on one resource.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    Const(bool),
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    Compare {
        field: Field,
        kind: ValueKind,
        op: Op,
        value: Literal,
    },
    /// The field has a non-empty value.
    Present(Field),
    /// Some element of a multi-valued attribute satisfies `elem` (None: the
    /// attribute has at least one element).
    Any {
        multi: Multi,
        elem: Option<Box<ElemCond>>,
    },
}

/// A condition on one element of a multi-valued attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum ElemCond {
    And(Vec<ElemCond>),
    Or(Vec<ElemCond>),
    Not(Box<ElemCond>),
    Compare {
        /// The sub-attribute, canonical spelling; None is the element itself
        /// (arrays of plain values such as `schemas`).
        sub: Option<String>,
        kind: ValueKind,
        op: Op,
        value: Literal,
    },
    Present {
        sub: Option<String>,
    },
}

/// What a list is sorted by (direction and the `id` tie-breaker are the
/// caller's).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SortKey {
    pub field: Field,
    pub kind: ValueKind,
}

impl Cond {
    /// Conjunction, flattening nested `And`s and folding constants.
    pub fn and(items: Vec<Cond>) -> Cond {
        let mut out = Vec::with_capacity(items.len());
        for c in items {
            match c {
                Cond::Const(true) => {}
                Cond::Const(false) => return Cond::Const(false),
                Cond::And(inner) => out.extend(inner),
                other => out.push(other),
            }
        }
        match out.len() {
            0 => Cond::Const(true),
            1 => out.pop().unwrap_or(Cond::Const(true)),
            _ => Cond::And(out),
        }
    }

    /// Disjunction, flattening nested `Or`s and folding constants.
    pub fn or(items: Vec<Cond>) -> Cond {
        let mut out = Vec::with_capacity(items.len());
        for c in items {
            match c {
                Cond::Const(false) => {}
                Cond::Const(true) => return Cond::Const(true),
                Cond::Or(inner) => out.extend(inner),
                other => out.push(other),
            }
        }
        match out.len() {
            0 => Cond::Const(false),
            1 => out.pop().unwrap_or(Cond::Const(false)),
            _ => Cond::Or(out),
        }
    }

    /// Negation, folding constants and double negation.
    pub fn negate(c: Cond) -> Cond {
        match c {
            Cond::Const(b) => Cond::Const(!b),
            Cond::Not(inner) => *inner,
            other => Cond::Not(Box::new(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(f: Field) -> Cond {
        Cond::Present(f)
    }

    #[test]
    fn and_flattens_and_folds_constants() {
        let c = Cond::and(vec![
            Cond::Const(true),
            Cond::And(vec![p(Field::Id), p(Field::UserName)]),
            p(Field::Active),
        ]);
        assert_eq!(
            c,
            Cond::And(vec![p(Field::Id), p(Field::UserName), p(Field::Active)])
        );
        assert_eq!(
            Cond::and(vec![p(Field::Id), Cond::Const(false)]),
            Cond::Const(false)
        );
        assert_eq!(Cond::and(vec![]), Cond::Const(true));
    }

    #[test]
    fn or_flattens_and_folds_constants() {
        assert_eq!(
            Cond::or(vec![Cond::Const(false), p(Field::Id)]),
            p(Field::Id)
        );
        assert_eq!(
            Cond::or(vec![p(Field::Id), Cond::Const(true)]),
            Cond::Const(true)
        );
        assert_eq!(Cond::or(vec![]), Cond::Const(false));
    }

    #[test]
    fn negate_folds_constants_and_double_negation() {
        assert_eq!(Cond::negate(Cond::Const(true)), Cond::Const(false));
        assert_eq!(Cond::negate(Cond::negate(p(Field::Id))), p(Field::Id));
    }
}
