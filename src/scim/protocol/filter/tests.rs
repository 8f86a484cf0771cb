//! Tests of the filter parser, printer and matcher (RFC 7644 §3.4.2.2).
//!
//! Test-only code: it must never be compiled into the server.

use super::*;
use proptest::prelude::*;
use rstest::rstest;
use serde_json::json;

fn ok(text: &str) -> Filter {
    parse_filter(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn cmp(path: &str, op: CompareOp, v: CompValue) -> Filter {
    Filter::Compare {
        path: AttrPath::parse(path).unwrap_or_else(|e| panic!("{e}")),
        op,
        value: v,
    }
}

fn s(v: &str) -> CompValue {
    CompValue::Str(v.into())
}

/// Every example filter of RFC 7644 §3.4.2.2, plus what Entra ID and Okta send.
#[rstest]
#[case(r#"userName eq "bjensen""#)]
#[case(r#"name.familyName co "O'Malley""#)]
#[case(r#"userName sw "J""#)]
#[case(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#)]
#[case("title pr")]
#[case(r#"meta.lastModified gt "2011-05-13T04:42:34Z""#)]
#[case(r#"meta.lastModified ge "2011-05-13T04:42:34Z""#)]
#[case(r#"meta.lastModified lt "2011-05-13T04:42:34Z""#)]
#[case(r#"meta.lastModified le "2011-05-13T04:42:34Z""#)]
#[case(r#"title pr and userType eq "Employee""#)]
#[case(r#"title pr or userType eq "Intern""#)]
#[case(r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#)]
#[case(r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#)]
#[case(
    r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#
)]
#[case(r#"userType eq "Employee" and (emails.type eq "work")"#)]
#[case(r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#)]
#[case(r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#)]
#[case(r#"userName eq "Test_User_dfeef4c5-5681-4387-b016-bdf221e82081""#)]
#[case(r#"externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef""#)]
#[case(r#"displayName eq "Group 1""#)]
#[case(r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#)]
#[case(r#"id eq "2819c223-7f76-453a-919d-413861904646" and members[value eq "x"]"#)]
#[case(r#"userName EQ "a" AND NOT (active Eq False) Or title PR"#)]
#[case("active eq TRUE and x eq NULL and n ge -1.5e3")]
fn rfc_and_idp_filters_parse_and_round_trip(#[case] text: &str) {
    let f = ok(text);
    let printed = f.to_string();
    assert_eq!(ok(&printed), f, "{printed}");
}

#[test]
fn and_binds_tighter_than_or() {
    let f = ok(r#"a eq "1" or b eq "2" and c eq "3""#);
    let expected = Filter::Or(
        Box::new(cmp("a", CompareOp::Eq, s("1"))),
        Box::new(Filter::And(
            Box::new(cmp("b", CompareOp::Eq, s("2"))),
            Box::new(cmp("c", CompareOp::Eq, s("3"))),
        )),
    );
    assert_eq!(f, expected);
}

#[test]
fn not_applies_to_its_parenthesised_group_only() {
    let f = ok(r#"not (a pr) and b pr"#);
    assert!(matches!(f, Filter::And(l, _) if matches!(*l, Filter::Not(_))));
}

#[test]
fn printing_adds_parentheses_where_grouping_matters() {
    let f = ok(r#"(a pr or b pr) and (c pr or d pr)"#);
    assert_eq!(f.to_string(), "(a pr or b pr) and (c pr or d pr)");
    assert_eq!(
        ok("a pr and (b pr and c pr)").to_string(),
        "a pr and (b pr and c pr)"
    );
    assert_eq!(ok("((a pr))").to_string(), "a pr");
}

#[test]
fn string_values_print_with_json_escapes() {
    let f = ok(r#"a eq "quote\" back\\ tab\t é""#);
    assert_eq!(f.to_string(), r#"a eq "quote\" back\\ tab\t é""#);
}

#[test]
fn value_path_with_trailing_sub_attribute_is_read_as_conjunction() {
    let f = ok(r#"emails[type eq "work"].value eq "a@b.c""#);
    let expected = ok(r#"emails[type eq "work" and value eq "a@b.c"]"#);
    assert_eq!(f, expected);
}

#[rstest]
#[case("", "empty")]
#[case(r#"userName eq"#, "column 12: expected a value")]
#[case(r#"userName foo "x""#, "column 10: expected an operator")]
#[case(r#"userName eq "x" junk"#, "column 17: expected 'and', 'or'")]
#[case(r#"(userName eq "x""#, "expected ')'")]
#[case(r#"emails[type eq "work""#, "expected ']'")]
#[case(r#"emails[type[value eq "x"]]"#, "cannot be nested")]
#[case(r#"a.b.c eq "x""#, "more than one sub-attribute")]
#[case(r#"userName eq "x" and"#, "found end of filter")]
#[case(r#"userName eq 'x"#, "unterminated string")]
#[case("userName eq \"\\q\"", "invalid escape")]
#[case("userName eq 12e", "not a valid number")]
#[case("userName ~ 1", "unexpected character")]
#[case("not userName pr", "expected an operator")]
fn malformed_filters_are_invalid_filter_with_position(#[case] text: &str, #[case] needle: &str) {
    let e = parse_filter(text)
        .err()
        .unwrap_or_else(|| panic!("accepted {text}"));
    assert_eq!(
        e.scim_type,
        Some(super::super::error::ScimType::InvalidFilter)
    );
    assert!(e.detail.contains(needle), "{}", e.detail);
}

#[test]
fn deep_nesting_is_rejected_without_stack_overflow() {
    let deep = format!("{}a pr{}", "(".repeat(4000), ")".repeat(4000));
    let e = parse_filter(&deep)
        .err()
        .map(|e| e.detail)
        .unwrap_or_default();
    assert!(e.contains("nesting deeper than 32"), "{e}");
    let nots = format!("{}a pr{}", "not (".repeat(1500), ")".repeat(1500));
    assert!(parse_filter(&nots).is_err());
    let ok_depth = format!("{}a pr{}", "(".repeat(32), ")".repeat(32));
    assert!(parse_filter(&ok_depth).is_ok());
}

#[test]
fn too_many_comparisons_and_too_long_text_are_rejected() {
    let many = vec!["a pr"; 201].join(" or ");
    let e = parse_filter(&many)
        .err()
        .map(|e| e.detail)
        .unwrap_or_default();
    assert!(e.contains("more than 200"), "{e}");
    assert!(parse_filter(&vec!["a pr"; 200].join(" and ")).is_ok());
    let long = format!("a eq \"{}\"", "x".repeat(9000));
    assert!(parse_filter(&long).is_err());
}

#[test]
fn non_ascii_input_never_panics_and_reports_char_columns() {
    let e = parse_filter("é eq 1")
        .err()
        .map(|e| e.detail)
        .unwrap_or_default();
    assert!(e.contains("column 1"), "{e}");
    assert!(parse_filter(r#"name eq "日本語""#).is_ok());
}

fn never_exact(_: &AttrPath) -> bool {
    false
}

#[rstest]
#[case(r#"type eq "WORK""#, true)]
#[case(r#"type eq "home""#, false)]
#[case(r#"type ne "home""#, true)]
#[case(r#"value co "EXAMPLE""#, true)]
#[case(r#"value sw "bjensen@""#, true)]
#[case(r#"value ew ".org""#, false)]
#[case("primary eq true", true)]
#[case("primary eq false", false)]
#[case("display pr", false)]
#[case("display eq null", true)]
#[case(r#"type eq "work" and primary eq true"#, true)]
#[case(r#"type eq "home" or primary eq true"#, true)]
#[case(r#"not (type eq "work")"#, false)]
#[case(r#"value gt "a""#, true)]
#[case("weight ge 2", true)]
#[case("weight lt 2.5", true)]
#[case("weight gt 3", false)]
fn matches_evaluates_one_element(#[case] text: &str, #[case] expected: bool) {
    let element =
        json!({"type": "work", "value": "bjensen@example.com", "primary": true, "weight": 2});
    assert_eq!(
        matches(&ok(text), &element, never_exact),
        expected,
        "{text}"
    );
}

#[test]
fn matches_respects_case_exact_attributes() {
    let f = ok(r#"value eq "ABC""#);
    let el = json!({"value": "abc"});
    assert!(matches(&f, &el, never_exact));
    assert!(!matches(&f, &el, |_| true));
}

#[test]
fn matches_treats_a_primitive_element_as_its_value() {
    assert!(matches(&ok(r#"value eq "x""#), &json!("x"), never_exact));
}

const URNS: &[&str] = &[
    "urn:ietf:params:scim:schemas:core:2.0:User",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    "urn:example:custom:1.0",
];

pub(crate) fn attr_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z][a-zA-Z0-9_-]{0,7}",
        Just("$ref".to_string()),
        Just("not".to_string()),
        Just("and".to_string()),
        Just("pr".to_string()),
    ]
}

pub(crate) fn attr_path() -> impl Strategy<Value = AttrPath> {
    (
        proptest::option::weighted(0.2, proptest::sample::select(URNS)),
        attr_name(),
        proptest::option::weighted(0.3, attr_name()),
    )
        .prop_map(|(urn, name, sub)| AttrPath {
            urn: urn.map(str::to_string),
            name,
            sub,
        })
}

fn comp_value() -> impl Strategy<Value = CompValue> {
    prop_oneof![
        any::<String>().prop_map(CompValue::Str),
        any::<i64>().prop_map(|n| CompValue::Num(n.into())),
        // Short decimals: serde_json (without float_roundtrip) reads these back exactly.
        (any::<i32>(), 0i32..6).prop_filter_map("finite", |(m, e)| {
            serde_json::Number::from_f64(f64::from(m) / 10f64.powi(e)).map(CompValue::Num)
        }),
        any::<bool>().prop_map(CompValue::Bool),
        Just(CompValue::Null),
    ]
}

fn op() -> impl Strategy<Value = CompareOp> {
    proptest::sample::select(vec![
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Co,
        CompareOp::Sw,
        CompareOp::Ew,
        CompareOp::Gt,
        CompareOp::Ge,
        CompareOp::Lt,
        CompareOp::Le,
    ])
}

fn leaf() -> impl Strategy<Value = Filter> {
    prop_oneof![
        (attr_path(), op(), comp_value()).prop_map(|(path, op, value)| Filter::Compare {
            path,
            op,
            value
        }),
        attr_path().prop_map(Filter::Present),
    ]
}

fn logical(inner: BoxedStrategy<Filter>) -> impl Strategy<Value = Filter> {
    prop_oneof![
        (inner.clone(), inner.clone()).prop_map(|(l, r)| Filter::And(Box::new(l), Box::new(r))),
        (inner.clone(), inner.clone()).prop_map(|(l, r)| Filter::Or(Box::new(l), Box::new(r))),
        inner.prop_map(|f| Filter::Not(Box::new(f))),
    ]
}

/// Filters without value paths: what may appear inside `[...]`.
pub(crate) fn value_filter() -> BoxedStrategy<Filter> {
    leaf()
        .prop_recursive(4, 24, 2, |inner| logical(inner.boxed()))
        .boxed()
}

fn any_filter() -> BoxedStrategy<Filter> {
    let leaves = prop_oneof![
        3 => leaf(),
        1 => (attr_path(), value_filter()).prop_map(|(attr, f)| Filter::ValuePath { attr, filter: Box::new(f) }),
    ];
    leaves
        .prop_recursive(4, 24, 2, |inner| logical(inner.boxed()))
        .boxed()
}

proptest! {
    #[test]
    fn printed_filters_parse_back_to_the_same_ast(f in any_filter()) {
        let text = f.to_string();
        let back = parse_filter(&text);
        prop_assert_eq!(back.as_ref().ok(), Some(&f), "{} -> {:?}", text, back);
    }

    #[test]
    fn parser_never_panics_on_arbitrary_text(text in "\\PC{0,64}") {
        let _ = parse_filter(&text);
    }

    #[test]
    fn parser_never_panics_on_filter_like_text(text in r#"[a-z\[\]()" .:\\0-9-]{0,64}"#) {
        let _ = parse_filter(&text);
    }
}
