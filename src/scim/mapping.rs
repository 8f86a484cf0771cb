//! What a directory's user attributes mean to onramp (the default mapping;
//! admin-configurable mappings come later): the work email is the `work`
//! email, else the primary one, else userName when it is an email address;
//! the display name is `displayName`, else `name.formatted`, else given and
//! family name. Pure.

use serde_json::Value;

/// Why a provisioned user gets no invitation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unusable {
    NoEmail,
    DomainNotAllowed(String),
}

impl Unusable {
    pub fn reason(&self) -> String {
        match self {
            Unusable::NoEmail => "no usable work email: the directory sent no work or primary email, and userName is not an email address".into(),
            Unusable::DomainNotAllowed(d) => format!("the email domain {d} is not one of the organization's domains"),
        }
    }
}

/// The work email of a SCIM user document, checked against the
/// organization's domains (none: any domain).
pub fn work_email(resource: &Value, allowed_domains: &[String]) -> Result<String, Unusable> {
    let emails = resource.get("emails").and_then(Value::as_array);
    fn value_of(e: &Value) -> Option<&str> {
        e.get("value")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|v| is_email(v))
    }
    let by_type = emails.and_then(|list| {
        list.iter()
            .filter(|e| {
                e.get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.eq_ignore_ascii_case("work"))
            })
            .find_map(value_of)
    });
    let primary = || {
        emails.and_then(|list| {
            list.iter()
                .filter(|e| e.get("primary").and_then(Value::as_bool) == Some(true))
                .find_map(value_of)
        })
    };
    let user_name = || {
        resource
            .get("userName")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|v| is_email(v))
    };
    let email = by_type
        .or_else(primary)
        .or_else(user_name)
        .ok_or(Unusable::NoEmail)?;
    let domain = email
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .unwrap_or_default();
    if !allowed_domains.is_empty() && !allowed_domains.iter().any(|d| d == &domain) {
        return Err(Unusable::DomainNotAllowed(domain));
    }
    Ok(email.to_string())
}

/// `displayName`, else `name.formatted`, else given + family name.
pub fn display_name(resource: &Value) -> Option<String> {
    let text = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    text(resource.get("displayName"))
        .or_else(|| text(resource.pointer("/name/formatted")))
        .or_else(|| {
            let given = text(resource.pointer("/name/givenName"));
            let family = text(resource.pointer("/name/familyName"));
            match (given, family) {
                (Some(g), Some(f)) => Some(format!("{g} {f}")),
                (g, f) => g.or(f),
            }
        })
}

/// A plausible mailbox: one `@`, a local part, a dotted domain, no spaces or
/// angle brackets, at most 254 characters.
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    s.len() <= 254
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>(),;:\"[]\\".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_work_email_wins_over_primary_and_user_name() {
        let u = json!({"userName": "u@a.example", "emails": [
            {"type": "home", "primary": true, "value": "home@b.example"},
            {"type": "Work", "value": "work@a.example"}
        ]});
        assert_eq!(work_email(&u, &[]), Ok("work@a.example".into()));
    }

    #[test]
    fn the_primary_email_is_used_when_there_is_no_work_email() {
        let u = json!({"userName": "u@a.example", "emails": [{"type": "other", "primary": true, "value": "p@a.example"}]});
        assert_eq!(work_email(&u, &[]), Ok("p@a.example".into()));
    }

    #[test]
    fn user_name_is_used_when_it_is_an_email_and_nothing_else_is() {
        assert_eq!(
            work_email(&json!({"userName": "u@a.example"}), &[]),
            Ok("u@a.example".into())
        );
        assert_eq!(
            work_email(&json!({"userName": "jdoe"}), &[]),
            Err(Unusable::NoEmail)
        );
        assert_eq!(
            work_email(
                &json!({"userName": "jdoe", "emails": [{"type": "work", "value": "not an email"}]}),
                &[]
            ),
            Err(Unusable::NoEmail)
        );
    }

    #[test]
    fn the_domain_must_be_one_of_the_organizations() {
        let u = json!({"userName": "u@Other.example"});
        let allowed = vec!["acme.example".to_string()];
        assert_eq!(
            work_email(&u, &allowed),
            Err(Unusable::DomainNotAllowed("other.example".into()))
        );
        assert_eq!(
            work_email(&json!({"userName": "u@ACME.example"}), &allowed),
            Ok("u@ACME.example".into())
        );
    }

    #[test]
    fn malformed_addresses_are_not_emails() {
        for bad in [
            "a@b",
            "@b.example",
            "a@@b.example",
            "a b@c.example",
            "a@.example",
            "<a@b.example>",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
        assert!(is_email("first.last+tag@sub.example.co"));
    }
}
