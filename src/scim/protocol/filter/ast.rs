//! The filter AST of RFC 7644 §3.4.2.2 and its canonical text form.
//!
//! Plain data plus printing. This module must never evaluate filters or touch
//! storage; printing must always re-parse to the same AST.

use serde_json::Value;
use std::fmt;

/// An attribute path `[URI ":"] ATTRNAME [ "." subAttr ]` (RFC 7644 §3.10, §3.4.2.2 ABNF `attrPath`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttrPath {
    /// Schema URN prefix, when the path is fully qualified (RFC 7644 §3.10).
    pub urn: Option<String>,
    /// The attribute name, as written (RFC 7643 §2.1 `ATTRNAME`).
    pub name: String,
    /// The sub-attribute name, as written (RFC 7644 §3.10 `subAttr`).
    pub sub: Option<String>,
}

fn valid_name(s: &str) -> bool {
    if s.eq_ignore_ascii_case("$ref") {
        return true;
    }
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn valid_urn_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || ":._-$%+/;=?@!*'(),~".contains(c)
}

impl AttrPath {
    /// A plain, unqualified attribute path (RFC 7644 §3.10).
    pub fn new(name: impl Into<String>) -> Self {
        AttrPath {
            urn: None,
            name: name.into(),
            sub: None,
        }
    }

    /// Parses `[URI ":"] ATTRNAME ["." subAttr]` (RFC 7644 §3.10); the error is a reason text.
    pub fn parse(text: &str) -> Result<AttrPath, String> {
        if text.is_empty() {
            return Err("empty attribute path".into());
        }
        let is_urn = text
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("urn:"));
        let (urn, rest) = if is_urn {
            let i = text.rfind(':').unwrap_or(0);
            let (u, r) = (&text[..i], &text[i + 1..]);
            if u.len() <= 4 || !u.chars().all(valid_urn_char) {
                return Err(format!("'{text}' is not a valid schema URN"));
            }
            (Some(u.to_string()), r)
        } else {
            (None, text)
        };
        let mut parts = rest.split('.');
        let name = parts.next().unwrap_or_default();
        let sub = parts.next();
        if parts.next().is_some() {
            return Err(format!("'{text}' has more than one sub-attribute level"));
        }
        if !valid_name(name) {
            return Err(format!("'{text}' is not a valid attribute name"));
        }
        if let Some(s) = sub
            && !valid_name(s)
        {
            return Err(format!("'{text}' has an invalid sub-attribute name"));
        }
        Ok(AttrPath {
            urn,
            name: name.to_string(),
            sub: sub.map(str::to_string),
        })
    }

    /// Case-insensitive equality of name and sub-attribute, ignoring the URN (RFC 7643 §2.1).
    pub fn same_attr(&self, name: &str, sub: Option<&str>) -> bool {
        self.name.eq_ignore_ascii_case(name)
            && match (&self.sub, sub) {
                (None, None) => true,
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                _ => false,
            }
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(u) = &self.urn {
            write!(f, "{u}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(s) = &self.sub {
            write!(f, ".{s}")?;
        }
        Ok(())
    }
}

/// Comparison operators `eq ne co sw ew gt ge lt le` (RFC 7644 §3.4.2.2, Table 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// `eq` equal.
    Eq,
    /// `ne` not equal.
    Ne,
    /// `co` contains.
    Co,
    /// `sw` starts with.
    Sw,
    /// `ew` ends with.
    Ew,
    /// `gt` greater than.
    Gt,
    /// `ge` greater than or equal.
    Ge,
    /// `lt` less than.
    Lt,
    /// `le` less than or equal.
    Le,
}

impl CompareOp {
    /// The lower-case operator keyword (RFC 7644 §3.4.2.2).
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }

    /// Parses an operator keyword case-insensitively (RFC 7644 §3.4.2.2).
    pub fn parse(word: &str) -> Option<CompareOp> {
        [
            CompareOp::Eq,
            CompareOp::Ne,
            CompareOp::Co,
            CompareOp::Sw,
            CompareOp::Ew,
            CompareOp::Gt,
            CompareOp::Ge,
            CompareOp::Lt,
            CompareOp::Le,
        ]
        .into_iter()
        .find(|op| op.as_str().eq_ignore_ascii_case(word))
    }
}

/// A comparison value `false / null / true / number / string` (RFC 7644 §3.4.2.2 ABNF `compValue`).
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    /// A JSON string, unescaped.
    Str(String),
    /// A JSON number.
    Num(serde_json::Number),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
}

impl CompValue {
    /// The value as JSON (RFC 7644 §3.4.2.2).
    pub fn to_json(&self) -> Value {
        match self {
            CompValue::Str(s) => Value::String(s.clone()),
            CompValue::Num(n) => Value::Number(n.clone()),
            CompValue::Bool(b) => Value::Bool(*b),
            CompValue::Null => Value::Null,
        }
    }
}

impl fmt::Display for CompValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // JSON's own serialisation gives the escapes RFC 7644 §3.4.2.2 expects.
        write!(f, "{}", self.to_json())
    }
}

/// A parsed filter expression (RFC 7644 §3.4.2.2 ABNF `FILTER`).
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `attrPath compareOp compValue`.
    Compare {
        /// The attribute compared.
        path: AttrPath,
        /// The operator.
        op: CompareOp,
        /// The literal compared against.
        value: CompValue,
    },
    /// `attrPath pr` (present).
    Present(AttrPath),
    /// `FILTER and FILTER`.
    And(Box<Filter>, Box<Filter>),
    /// `FILTER or FILTER`.
    Or(Box<Filter>, Box<Filter>),
    /// `not ( FILTER )`.
    Not(Box<Filter>),
    /// `attrPath [ valFilter ]` (RFC 7644 §3.4.2.2 `valuePath`).
    ValuePath {
        /// The multi-valued attribute.
        attr: AttrPath,
        /// The filter applied to each of its values.
        filter: Box<Filter>,
    },
}

fn precedence(f: &Filter) -> u8 {
    match f {
        Filter::Or(..) => 1,
        Filter::And(..) => 2,
        _ => 3,
    }
}

fn write_child(f: &Filter, min: u8, out: &mut fmt::Formatter<'_>) -> fmt::Result {
    if precedence(f) < min {
        write!(out, "({f})")
    } else {
        write!(out, "{f}")
    }
}

impl fmt::Display for Filter {
    /// Canonical text (RFC 7644 §3.4.2.2): lower-case keywords, parentheses only where needed.
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Compare { path, op, value } => write!(out, "{path} {} {value}", op.as_str()),
            Filter::Present(p) => write!(out, "{p} pr"),
            Filter::Or(l, r) => {
                write_child(l, 1, out)?;
                out.write_str(" or ")?;
                write_child(r, 2, out)
            }
            Filter::And(l, r) => {
                write_child(l, 2, out)?;
                out.write_str(" and ")?;
                write_child(r, 3, out)
            }
            Filter::Not(inner) => write!(out, "not ({inner})"),
            Filter::ValuePath { attr, filter } => write!(out, "{attr}[{filter}]"),
        }
    }
}
