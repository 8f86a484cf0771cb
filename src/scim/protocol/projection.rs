//! Response projection: `attributes` / `excludedAttributes` (RFC 7644
//! §3.4.2.5, §3.9) combined with each attribute's `returned` characteristic
//! (RFC 7643 §2.2, §7).
//!
//! It only removes data from a copy. It must never add attributes, never
//! return `password` (`returned: never`) and never drop `id` or `schemas`.

use serde_json::{Map, Value};

use super::GROUP_URN;
use super::filter::AttrPath;
use super::schema::{AttributeDef, ResourceType, Returned, Usage, find, resolve};
use super::schema_defs::COMMON;
use super::values::is_schema_key;

/// One parsed selection: a whole schema, or an attribute (and sub-attribute) in a scope.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sel {
    Schema(String),
    Attr {
        /// `None` for the core schema, else the lower-cased extension URN.
        scope: Option<String>,
        name: String,
        sub: Option<String>,
        /// An unknown `urn:...:Name` may also name a whole unknown extension.
        alt_schema: Option<String>,
    },
}

fn lower(s: &str) -> String {
    s.to_ascii_lowercase()
}

fn classify(rt: ResourceType, p: &AttrPath) -> Sel {
    if let Some(u) = &p.urn {
        let full = format!("{u}:{}", p.name);
        if rt.extension(&full).is_some() || rt.core_schema_urn().eq_ignore_ascii_case(&full) {
            return Sel::Schema(lower(&full));
        }
        if !rt.knows_schema(u) {
            return Sel::Attr {
                scope: Some(lower(u)),
                name: lower(&p.name),
                sub: p.sub.as_deref().map(lower),
                alt_schema: p.sub.is_none().then(|| lower(&full)),
            };
        }
    }
    match resolve(rt, p, Usage::Parameter) {
        Ok(r) => Sel::Attr {
            scope: r.in_extension.then(|| lower(r.schema)),
            name: lower(r.attr.name),
            sub: r.sub.map(|s| lower(s.name)),
            alt_schema: None,
        },
        Err(_) => Sel::Attr {
            scope: p.urn.as_deref().map(lower),
            name: lower(&p.name),
            sub: p.sub.as_deref().map(lower),
            alt_schema: None,
        },
    }
}

impl Sel {
    fn schema_matches(&self, key: &str) -> bool {
        match self {
            Sel::Schema(s) => *s == lower(key),
            Sel::Attr { alt_schema, .. } => alt_schema.as_deref() == Some(lower(key).as_str()),
        }
    }

    /// `None`: not about this attribute; `Some(None)`: the whole attribute; `Some(Some(sub))`.
    fn attr_matches(&self, scope: Option<&str>, name: &str) -> Option<Option<&str>> {
        match self {
            Sel::Attr {
                scope: s,
                name: n,
                sub,
                ..
            } => (s.as_deref() == scope.map(lower).as_deref() && *n == lower(name))
                .then_some(sub.as_deref()),
            Sel::Schema(_) => None,
        }
    }
}

fn keep_subs(v: &Value, subs: &[&str], keep: bool) -> Option<Value> {
    let filter_obj = |o: &Map<String, Value>| -> Map<String, Value> {
        o.iter()
            .filter(|(k, _)| subs.contains(&lower(k).as_str()) == keep)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let out = match v {
        Value::Object(o) => Value::Object(filter_obj(o)),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .filter_map(|i| match i {
                    Value::Object(o) => Some(Value::Object(filter_obj(o)))
                        .filter(|v| v.as_object().is_some_and(|o| !o.is_empty())),
                    other => (!keep).then(|| other.clone()),
                })
                .collect(),
        ),
        other => other.clone(),
    };
    let empty = match &out {
        Value::Object(o) => o.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    };
    (!empty).then_some(out)
}

struct Projector {
    attributes: Vec<Sel>,
    excluded: Vec<Sel>,
}

impl Projector {
    fn decide(
        &self,
        scope: Option<&str>,
        key: &str,
        v: &Value,
        def: Option<&AttributeDef>,
    ) -> Option<Value> {
        let returned = def.map_or(Returned::Default, |d| d.returned);
        match returned {
            Returned::Never => return None,
            Returned::Always => return Some(v.clone()),
            _ => {}
        }
        let whole_schema =
            |sels: &[Sel]| scope.is_some_and(|s| sels.iter().any(|x| x.schema_matches(s)));
        if !self.attributes.is_empty() {
            if whole_schema(&self.attributes) {
                return Some(v.clone());
            }
            let hits: Vec<Option<&str>> = self
                .attributes
                .iter()
                .filter_map(|s| s.attr_matches(scope, key))
                .collect();
            if hits.is_empty() {
                return None;
            }
            if hits.iter().any(Option::is_none) {
                return Some(v.clone());
            }
            let subs: Vec<&str> = hits.into_iter().flatten().collect();
            return keep_subs(v, &subs, true);
        }
        if returned == Returned::Request || whole_schema(&self.excluded) {
            return None;
        }
        let hits: Vec<Option<&str>> = self
            .excluded
            .iter()
            .filter_map(|s| s.attr_matches(scope, key))
            .collect();
        if hits.iter().any(Option::is_none) {
            return None;
        }
        let subs: Vec<&str> = hits.into_iter().flatten().collect();
        if subs.is_empty() {
            Some(v.clone())
        } else {
            keep_subs(v, &subs, false)
        }
    }
}

/// Projects a resource for a response (RFC 7644 §3.4.2.5, RFC 7643 §2.2 `returned`):
/// `always` attributes (`id`) and `schemas` are kept, `never` (`password`) dropped,
/// `request` only when named, `default` unless excluded. Sub-attribute and
/// URN-qualified names work; an extension left empty is dropped.
pub fn project(
    resource: &Value,
    rt: ResourceType,
    attributes: &[AttrPath],
    excluded: &[AttrPath],
) -> Value {
    let Some(obj) = resource.as_object() else {
        return resource.clone();
    };
    let p = Projector {
        attributes: attributes.iter().map(|a| classify(rt, a)).collect(),
        excluded: excluded.iter().map(|a| classify(rt, a)).collect(),
    };
    let core = rt.core_schema();
    let mut out = Map::new();
    for (k, v) in obj {
        if k.eq_ignore_ascii_case("schemas") {
            out.insert(k.clone(), v.clone());
        } else if is_schema_key(k) {
            let ext = rt.extension(k);
            let Some(inner) = v.as_object() else {
                if let Some(x) = p.decide(Some(k), k, v, None) {
                    out.insert(k.clone(), x);
                }
                continue;
            };
            let kept: Map<String, Value> = inner
                .iter()
                .filter_map(|(ak, av)| {
                    let def = ext.and_then(|e| find(e.attributes, ak));
                    p.decide(Some(k), ak, av, def).map(|x| (ak.clone(), x))
                })
                .collect();
            if !kept.is_empty() {
                out.insert(k.clone(), Value::Object(kept));
            }
        } else {
            let def = find(COMMON, k).or_else(|| find(core.attributes, k));
            if let Some(x) = p.decide(None, k, v, def) {
                out.insert(k.clone(), x);
            }
        }
    }
    Value::Object(out)
}

fn names_members(p: &AttrPath) -> bool {
    let full_group = p
        .urn
        .as_deref()
        .is_some_and(|u| format!("{u}:{}", p.name).eq_ignore_ascii_case(GROUP_URN));
    full_group
        || (p.name.eq_ignore_ascii_case("members")
            && p.urn
                .as_deref()
                .is_none_or(|u| u.eq_ignore_ascii_case(GROUP_URN)))
}

/// Whether a Group response needs its members loaded (RFC 7644 §3.4.2.5): with
/// `attributes`, only if `members` (or a sub-attribute) is named; otherwise
/// unless `excludedAttributes` names `members` itself.
pub fn wants_members(attributes: &[AttrPath], excluded: &[AttrPath]) -> bool {
    if !attributes.is_empty() {
        return attributes.iter().any(names_members);
    }
    !excluded.iter().any(|p| {
        p.sub.is_none()
            && p.name.eq_ignore_ascii_case("members")
            && p.urn
                .as_deref()
                .is_none_or(|u| u.eq_ignore_ascii_case(GROUP_URN))
    })
}

#[cfg(test)]
mod tests {
    use super::super::path::parse_attribute_list;
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    fn user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
                        "urn:example:custom:2.0:User"],
            "id": "2819c223",
            "externalId": "bjensen",
            "userName": "bjensen@example.com",
            "password": "should-never-be-here",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "b@example.com", "type": "work", "primary": true},
                       {"value": "b@home.example", "type": "home"}],
            "meta": {"resourceType": "User", "version": "W/\"a\""},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":
                {"department": "Tour", "manager": {"value": "m1", "displayName": "Boss"}},
            "urn:example:custom:2.0:User": {"shoeSize": 42}
        })
    }

    fn list(s: &str) -> Vec<AttrPath> {
        parse_attribute_list(s).unwrap_or_default()
    }

    fn keys(v: &Value) -> Vec<String> {
        v.as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    }

    #[test]
    fn default_projection_drops_password_only() {
        let out = project(&user(), ResourceType::User, &[], &[]);
        let mut expected = user();
        if let Some(o) = expected.as_object_mut() {
            o.remove("password");
        }
        assert_eq!(out, expected);
    }

    #[test]
    fn attributes_keep_id_and_schemas_plus_named_ones() {
        let out = project(
            &user(),
            ResourceType::User,
            &list("userName,name.givenName"),
            &[],
        );
        assert_eq!(keys(&out), ["id", "name", "schemas", "userName"]);
        assert_eq!(out["name"], json!({"givenName": "Barbara"}));
    }

    #[test]
    fn sub_attribute_of_multi_valued_attribute_projects_each_element() {
        let out = project(&user(), ResourceType::User, &list("emails.value"), &[]);
        assert_eq!(
            out["emails"],
            json!([{"value": "b@example.com"}, {"value": "b@home.example"}])
        );
    }

    #[rstest]
    #[case("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", json!({"department": "Tour"}))]
    #[case("department", json!({"department": "Tour"}))]
    #[case("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value", json!({"manager": {"value": "m1"}}))]
    #[case("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", json!({"department": "Tour", "manager": {"value": "m1", "displayName": "Boss"}}))]
    fn urn_qualified_attributes_select_inside_the_extension(
        #[case] attrs: &str,
        #[case] ext: Value,
    ) {
        let out = project(&user(), ResourceType::User, &list(attrs), &[]);
        assert_eq!(
            out["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            ext
        );
    }

    #[test]
    fn excluded_attributes_remove_attributes_and_sub_attributes() {
        let out = project(
            &user(),
            ResourceType::User,
            &[],
            &list("emails,name.familyName,id,password"),
        );
        assert!(out.get("emails").is_none());
        assert_eq!(out["name"], json!({"givenName": "Barbara"}));
        assert_eq!(out["id"], "2819c223", "id is always returned");
    }

    #[test]
    fn extension_left_empty_is_dropped() {
        let ex = list(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
        );
        let out = project(&user(), ResourceType::User, &[], &ex);
        assert!(
            out.get("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
                .is_none()
        );
        let out = project(&user(), ResourceType::User, &list("userName"), &[]);
        assert!(out.get("urn:example:custom:2.0:User").is_none());
    }

    #[test]
    fn custom_extension_can_be_named_whole_or_by_attribute() {
        let whole = project(
            &user(),
            ResourceType::User,
            &list("urn:example:custom:2.0:User"),
            &[],
        );
        assert_eq!(
            whole["urn:example:custom:2.0:User"],
            json!({"shoeSize": 42})
        );
        let one = project(
            &user(),
            ResourceType::User,
            &list("urn:example:custom:2.0:User:shoeSize"),
            &[],
        );
        assert_eq!(one["urn:example:custom:2.0:User"], json!({"shoeSize": 42}));
    }

    #[rstest]
    #[case("", "", true)]
    #[case("", "members", false)]
    #[case("", "Members", false)]
    #[case("", "members.display", true)]
    #[case("displayName", "", false)]
    #[case("displayName,members", "", true)]
    #[case("members.value", "", true)]
    #[case("urn:ietf:params:scim:schemas:core:2.0:Group:members", "", true)]
    fn wants_members_follows_attributes_and_exclusions(
        #[case] a: &str,
        #[case] e: &str,
        #[case] wanted: bool,
    ) {
        assert_eq!(wants_members(&list(a), &list(e)), wanted);
    }

    #[test]
    fn group_members_are_projected_like_any_attribute() {
        let g = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "g1",
            "displayName": "Tour", "members": [{"value": "u1", "display": "B"}]});
        let out = project(&g, ResourceType::Group, &[], &list("members"));
        assert_eq!(keys(&out), ["displayName", "id", "schemas"]);
    }
}
