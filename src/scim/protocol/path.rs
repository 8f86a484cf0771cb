//! PATCH paths (RFC 7644 §3.5.2 ABNF `PATH = attrPath / valuePath [subAttr]`)
//! and the comma-separated attribute lists of `attributes` /
//! `excludedAttributes` (RFC 7644 §3.4.2.5).
//!
//! Parsing only. This module must never resolve names against a schema (the
//! caller does that) and never panic on any input.

use std::fmt;

use super::error::ScimError;
use super::filter::{AttrPath, Filter, MAX_FILTER_LEN, parse_filter};

/// A parsed PATCH `path` (RFC 7644 §3.5.2): `attr`, `attr[filter]` or `attr[filter].sub`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    /// The attribute (possibly URN-qualified, possibly with a sub-attribute when there is no filter).
    pub attr: AttrPath,
    /// The value selection filter in brackets (RFC 7644 §3.5.2 `valuePath`).
    pub filter: Option<Filter>,
    /// The sub-attribute after the brackets (RFC 7644 §3.5.2 `[subAttr]`).
    pub sub: Option<String>,
}

impl fmt::Display for PatchPath {
    /// Canonical text that [`parse_path`] reads back to the same value (RFC 7644 §3.5.2).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.attr)?;
        if let Some(flt) = &self.filter {
            write!(f, "[{flt}]")?;
        }
        if let Some(s) = &self.sub {
            write!(f, ".{s}")?;
        }
        Ok(())
    }
}

/// Byte index of the `]` closing the bracket opened just before `from`, skipping quoted strings.
fn closing_bracket(text: &str, from: usize) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in text.get(from..)?.char_indices() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' => quote = Some(c),
                ']' => return Some(from + i),
                _ => {}
            },
        }
    }
    None
}

fn bad(text: &str, reason: impl fmt::Display) -> ScimError {
    let shown: String = text.chars().take(80).collect();
    ScimError::invalid_path(format!("invalid path '{shown}': {reason}"))
}

/// Parses a PATCH operation path (RFC 7644 §3.5.2); every error is `invalidPath`.
pub fn parse_path(text: &str) -> Result<PatchPath, ScimError> {
    if text.len() > MAX_FILTER_LEN {
        return Err(bad(text, "too long"));
    }
    let text = text.trim();
    let Some(open) = text.find('[') else {
        let attr = AttrPath::parse(text).map_err(|r| bad(text, r))?;
        return Ok(PatchPath {
            attr,
            filter: None,
            sub: None,
        });
    };
    let attr = AttrPath::parse(&text[..open]).map_err(|r| bad(text, r))?;
    if attr.sub.is_some() {
        return Err(bad(
            text,
            "a value filter must follow a multi-valued attribute, not a sub-attribute",
        ));
    }
    let close = closing_bracket(text, open + 1).ok_or_else(|| bad(text, "missing ']'"))?;
    let inner = &text[open + 1..close];
    let filter = parse_filter(inner).map_err(|e| bad(text, e.detail))?;
    let rest = &text[close + 1..];
    let sub = if rest.is_empty() {
        None
    } else {
        let name = rest
            .strip_prefix('.')
            .ok_or_else(|| bad(text, "expected '.subAttribute' or the end after ']'"))?;
        let p = AttrPath::parse(name).map_err(|r| bad(text, r))?;
        if p.urn.is_some() || p.sub.is_some() {
            return Err(bad(text, "expected a single sub-attribute name after ']'"));
        }
        Some(p.name)
    };
    Ok(PatchPath {
        attr,
        filter: Some(filter),
        sub,
    })
}

/// Parses `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5): comma-separated
/// attribute paths; empty entries are skipped; a malformed name is `invalidValue`.
pub fn parse_attribute_list(text: &str) -> Result<Vec<AttrPath>, ScimError> {
    if text.len() > MAX_FILTER_LEN {
        return Err(ScimError::invalid_value("attribute list is too long"));
    }
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            AttrPath::parse(s)
                .map_err(|r| ScimError::invalid_value(format!("invalid attribute list: {r}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::error::ScimType;
    use super::super::filter::{CompValue, CompareOp};
    use super::*;
    use proptest::prelude::*;
    use rstest::rstest;

    #[rstest]
    #[case("members")]
    #[case("name.familyName")]
    #[case(r#"addresses[type eq "work"]"#)]
    #[case(r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#)]
    #[case(r#"members[value eq "2819c223-7f76-453a-919d-413861904646"].displayName"#)]
    #[case(r#"emails[type eq "work"].value"#)]
    #[case(r#"emails[type eq "work" and value ew "]"].value"#)]
    #[case("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber")]
    #[case("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value")]
    #[case(r#"roles[primary eq true].value"#)]
    #[case(r#"members[value eq "a" or value eq "b"]"#)]
    fn rfc_and_idp_paths_parse_and_round_trip(#[case] text: &str) {
        let p = parse_path(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(parse_path(&p.to_string()).ok(), Some(p));
    }

    #[test]
    fn value_path_with_sub_attribute_splits_into_three_parts() {
        let p = parse_path(r#"emails[type eq "work"].value"#).ok();
        let expected = PatchPath {
            attr: AttrPath::new("emails"),
            filter: Some(Filter::Compare {
                path: AttrPath::new("type"),
                op: CompareOp::Eq,
                value: CompValue::Str("work".into()),
            }),
            sub: Some("value".into()),
        };
        assert_eq!(p, Some(expected));
    }

    #[rstest]
    #[case("")]
    #[case("emails[")]
    #[case(r#"emails[type eq "work""#)]
    #[case(r#"emails[type eq "work"]value"#)]
    #[case(r#"emails[type eq "work"].value.x"#)]
    #[case(r#"emails[type eq]"#)]
    #[case(r#"name.givenName[type eq "x"]"#)]
    #[case("a b")]
    #[case("émails")]
    #[case(r#"emails[type eq "work"]]"#)]
    fn malformed_paths_are_invalid_path(#[case] text: &str) {
        let t = parse_path(text).err().and_then(|e| e.scim_type);
        assert_eq!(t, Some(ScimType::InvalidPath), "{text}");
    }

    #[test]
    fn attribute_lists_split_on_commas_and_skip_blanks() {
        let l = parse_attribute_list(" userName, name.givenName ,,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department")
            .unwrap_or_default();
        let shown: Vec<String> = l.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "userName",
                "name.givenName",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"
            ]
        );
        assert!(parse_attribute_list("").is_ok_and(|l| l.is_empty()));
        let e = parse_attribute_list("a..b").err().and_then(|e| e.scim_type);
        assert_eq!(e, Some(ScimType::InvalidValue));
    }

    fn patch_path() -> impl Strategy<Value = PatchPath> {
        let plain = super::super::filter::tests::attr_path().prop_map(|attr| PatchPath {
            attr,
            filter: None,
            sub: None,
        });
        let valued = (
            super::super::filter::tests::attr_path(),
            super::super::filter::tests::value_filter(),
            proptest::option::of(super::super::filter::tests::attr_name()),
        )
            .prop_map(|(mut attr, f, sub)| {
                attr.sub = None;
                PatchPath {
                    attr,
                    filter: Some(f),
                    sub,
                }
            });
        prop_oneof![plain, valued]
    }

    proptest! {
        #[test]
        fn printed_paths_parse_back_to_the_same_value(p in patch_path()) {
            let text = p.to_string();
            let back = parse_path(&text);
            prop_assert_eq!(back.as_ref().ok(), Some(&p), "{} -> {:?}", text, back);
        }

        #[test]
        fn path_parser_never_panics(text in r#"[a-zA-Z\[\]."' :=0-9\\é-]{0,48}"#) {
            let _ = parse_path(&text);
        }
    }
}
