//! List queries and responses (RFC 7644 §3.4.2, §3.4.3; cursors RFC 9865):
//! query-string or SearchRequest body → [`ListQuery`], and the ListResponse body.
//!
//! It must never run a query or decide page sizes beyond what the client
//! asked; the server applies its own limits (`maxResults`).

use serde_json::{Map, Value, json};

use super::error::ScimError;
use super::filter::{AttrPath, Filter, parse_filter};
use super::path::parse_attribute_list;
use super::values::get_ci;
use super::{LIST_RESPONSE_URN, SEARCH_REQUEST_URN};

/// `sortOrder` (RFC 7644 §3.4.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortOrder {
    /// `ascending`, the default.
    #[default]
    Ascending,
    /// `descending`.
    Descending,
}

/// A parsed list/search request (RFC 7644 §3.4.2, §3.4.3; RFC 9865 cursors).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListQuery {
    /// `filter` (RFC 7644 §3.4.2.2).
    pub filter: Option<Filter>,
    /// `sortBy` (RFC 7644 §3.4.2.3).
    pub sort_by: Option<AttrPath>,
    /// `sortOrder` (RFC 7644 §3.4.2.3).
    pub sort_order: SortOrder,
    /// `startIndex`, 1-based; values below 1 are read as 1 (RFC 7644 §3.4.2.4).
    pub start_index: u64,
    /// `count`; negative values are read as 0 (RFC 7644 §3.4.2.4).
    pub count: Option<u64>,
    /// `attributes` (RFC 7644 §3.4.2.5).
    pub attributes: Vec<AttrPath>,
    /// `excludedAttributes` (RFC 7644 §3.4.2.5).
    pub excluded: Vec<AttrPath>,
    /// `cursor` (RFC 9865 §2); `Some("")` asks for cursor paging from the start.
    pub cursor: Option<String>,
}

fn int_param(name: &str, raw: &str) -> Result<i64, ScimError> {
    raw.trim().parse::<i64>().map_err(|_| {
        let shown: String = raw.chars().take(40).collect();
        ScimError::invalid_value(format!("'{name}' must be an integer, got '{shown}'"))
    })
}

fn int_value(name: &str, v: &Value) -> Result<i64, ScimError> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| ScimError::invalid_value(format!("'{name}' must be an integer"))),
        Value::String(s) => int_param(name, s),
        _ => Err(ScimError::invalid_value(format!(
            "'{name}' must be an integer"
        ))),
    }
}

fn sort_order(raw: &str) -> Result<SortOrder, ScimError> {
    match raw.trim() {
        s if s.eq_ignore_ascii_case("ascending") => Ok(SortOrder::Ascending),
        s if s.eq_ignore_ascii_case("descending") => Ok(SortOrder::Descending),
        _ => Err(ScimError::invalid_value(
            "'sortOrder' must be ascending or descending",
        )),
    }
}

fn sort_by(raw: &str) -> Result<AttrPath, ScimError> {
    AttrPath::parse(raw.trim())
        .map_err(|r| ScimError::invalid_value(format!("invalid 'sortBy': {r}")))
}

impl ListQuery {
    fn empty() -> Self {
        ListQuery {
            start_index: 1,
            ..ListQuery::default()
        }
    }

    fn set(&mut self, key: &str, raw: &str) -> Result<(), ScimError> {
        match key.to_ascii_lowercase().as_str() {
            "filter" => self.filter = Some(parse_filter(raw)?),
            "sortby" => self.sort_by = Some(sort_by(raw)?),
            "sortorder" => self.sort_order = sort_order(raw)?,
            "startindex" => self.start_index = int_param("startIndex", raw)?.max(1).unsigned_abs(),
            "count" => self.count = Some(int_param("count", raw)?.max(0).unsigned_abs()),
            "attributes" => self.attributes = parse_attribute_list(raw)?,
            "excludedattributes" => self.excluded = parse_attribute_list(raw)?,
            "cursor" => self.cursor = Some(raw.to_string()),
            _ => {}
        }
        Ok(())
    }

    /// From URL query pairs, names matched case-insensitively (RFC 7644 §3.4.2);
    /// unknown parameters are ignored; the last repeated parameter wins.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<ListQuery, ScimError> {
        let mut q = ListQuery::empty();
        for (k, v) in pairs {
            q.set(k, v)?;
        }
        Ok(q)
    }

    /// From a `POST /.search` body (RFC 7644 §3.4.3): `schemas` must list the
    /// SearchRequest URN; `attributes` may be an array or a comma-separated string.
    pub fn from_search_body(body: &Value) -> Result<ListQuery, ScimError> {
        let obj: &Map<String, Value> = body
            .as_object()
            .ok_or_else(|| ScimError::invalid_syntax("SearchRequest must be a JSON object"))?;
        let ok_schema = get_ci(obj, "schemas")
            .and_then(Value::as_array)
            .is_some_and(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .any(|s| s.eq_ignore_ascii_case(SEARCH_REQUEST_URN))
            });
        if !ok_schema {
            return Err(ScimError::invalid_syntax(format!(
                "'schemas' must contain {SEARCH_REQUEST_URN}"
            )));
        }
        let mut q = ListQuery::empty();
        for (k, v) in obj {
            match (k.to_ascii_lowercase().as_str(), v) {
                ("schemas", _) | (_, Value::Null) => {}
                ("startindex", v) => {
                    q.start_index = int_value("startIndex", v)?.max(1).unsigned_abs()
                }
                ("count", v) => q.count = Some(int_value("count", v)?.max(0).unsigned_abs()),
                ("attributes" | "excludedattributes", Value::Array(items)) => {
                    let mut joined = Vec::new();
                    for i in items {
                        let s = i.as_str().ok_or_else(|| {
                            ScimError::invalid_value(format!("'{k}' must list strings"))
                        })?;
                        joined.push(s);
                    }
                    q.set(k, &joined.join(","))?;
                }
                (_, Value::String(s)) => q.set(k, s)?,
                (
                    "filter" | "sortby" | "sortorder" | "attributes" | "excludedattributes"
                    | "cursor",
                    _,
                ) => {
                    return Err(ScimError::invalid_value(format!(
                        "'{k}' has the wrong type"
                    )));
                }
                _ => {}
            }
        }
        Ok(q)
    }
}

/// A ListResponse body (RFC 7644 §3.4.2): `totalResults`, `itemsPerPage`,
/// `startIndex`, `Resources`, and `nextCursor` when given (RFC 9865).
pub fn list_response(
    total: u64,
    start_index: u64,
    resources: Vec<Value>,
    next_cursor: Option<String>,
) -> Value {
    let mut body = json!({
        "schemas": [LIST_RESPONSE_URN],
        "totalResults": total,
        "itemsPerPage": resources.len(),
        "startIndex": start_index.max(1),
        "Resources": resources,
    });
    if let (Some(c), Some(o)) = (next_cursor, body.as_object_mut()) {
        o.insert("nextCursor".into(), Value::String(c));
    }
    body
}

#[cfg(test)]
mod tests {
    use super::super::error::ScimType;
    use super::*;
    use rstest::rstest;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn query_parameters_are_read_case_insensitively() {
        let q = ListQuery::from_pairs(&pairs(&[
            ("Filter", r#"userName Eq "bjensen""#),
            ("SORTBY", "name.familyName"),
            ("sortorder", "Descending"),
            ("startIndex", "11"),
            ("COUNT", "5"),
            ("attributes", "userName,emails"),
            ("excludedAttributes", "groups"),
            ("cursor", ""),
            ("unknown", "x"),
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(q.filter.is_some());
        assert_eq!(
            q.sort_by.map(|p| p.to_string()).as_deref(),
            Some("name.familyName")
        );
        assert_eq!(q.sort_order, SortOrder::Descending);
        assert_eq!((q.start_index, q.count), (11, Some(5)));
        assert_eq!(q.attributes.len(), 2);
        assert_eq!(q.excluded.len(), 1);
        assert_eq!(q.cursor.as_deref(), Some(""));
    }

    #[test]
    fn defaults_and_out_of_range_paging_are_clamped() {
        let q = ListQuery::from_pairs(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (q.start_index, q.count, q.sort_order),
            (1, None, SortOrder::Ascending)
        );
        let q = ListQuery::from_pairs(&pairs(&[("startIndex", "-4"), ("count", "-1")]))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((q.start_index, q.count), (1, Some(0)));
    }

    #[rstest]
    #[case("startIndex", "one", ScimType::InvalidValue)]
    #[case("count", "1.5", ScimType::InvalidValue)]
    #[case("sortOrder", "up", ScimType::InvalidValue)]
    #[case("sortBy", "a b", ScimType::InvalidValue)]
    #[case("filter", "userName eq", ScimType::InvalidFilter)]
    #[case("attributes", "a..b", ScimType::InvalidValue)]
    fn bad_parameters_are_rejected(#[case] k: &str, #[case] v: &str, #[case] t: ScimType) {
        let got = ListQuery::from_pairs(&pairs(&[(k, v)]))
            .err()
            .and_then(|e| e.scim_type);
        assert_eq!(got, Some(t));
    }

    #[test]
    fn search_request_body_is_parsed_per_rfc_example() {
        // RFC 7644 §3.4.3, Figure 6.
        let body = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "attributes": ["displayName", "userName"],
            "filter": "displayName sw \"smith\"",
            "startIndex": 1,
            "count": 10
        });
        let q = ListQuery::from_search_body(&body).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(q.attributes.len(), 2);
        assert_eq!(q.count, Some(10));
        assert!(q.filter.is_some());
    }

    #[test]
    fn search_request_without_its_schema_or_with_wrong_types_fails() {
        let t = ListQuery::from_search_body(&json!({"filter": "a pr"}))
            .err()
            .and_then(|e| e.scim_type);
        assert_eq!(t, Some(ScimType::InvalidSyntax));
        let body = json!({"schemas": [SEARCH_REQUEST_URN], "count": "many"});
        let t = ListQuery::from_search_body(&body)
            .err()
            .and_then(|e| e.scim_type);
        assert_eq!(t, Some(ScimType::InvalidValue));
        let body = json!({"schemas": [SEARCH_REQUEST_URN], "filter": 5});
        let t = ListQuery::from_search_body(&body)
            .err()
            .and_then(|e| e.scim_type);
        assert_eq!(t, Some(ScimType::InvalidValue));
    }

    #[test]
    fn list_response_has_rfc_fields_and_optional_cursor() {
        let body = list_response(2, 1, vec![json!({"id": "a"})], Some("next-page".into()));
        assert_eq!(
            body,
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                "totalResults": 2, "itemsPerPage": 1, "startIndex": 1,
                "Resources": [{"id": "a"}], "nextCursor": "next-page"
            })
        );
        assert!(
            list_response(0, 1, vec![], None)
                .get("nextCursor")
                .is_none()
        );
    }
}
