//! An organization's OpenID Connect connection and the rules that make a
//! sign-in count as the invited person. Pure: no network, no storage.
//!
//! By default an ID token matches the invited work email when its `email`
//! equals it case-insensitively **and** `email_verified` is true; an
//! unverified email never matches. An organization whose issuer is its own
//! single-tenant directory may trust the email without `email_verified`
//! (Entra sends none) — never a multi-tenant issuer (`/common`,
//! `/organizations`, `/consumers`), where anyone's tenant can assert any
//! email (nOAuth). Or a stable claim is matched against a directory
//! attribute instead (Entra's `oid` against `externalId`).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde_json::{Map, Value};

use crate::store::scim::UserRecord;

/// The scopes asked for when an organization names none.
pub const DEFAULT_SCOPES: &str = "openid email profile";

/// How a sign-in is matched to the invited directory user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchRule {
    /// The ID token's verified email equals the invited work email.
    Email,
    /// The ID token's `claim` equals the directory user's `attribute`.
    Claim { claim: String, attribute: Attribute },
}

/// A directory attribute a claim can be matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribute {
    ExternalId,
    UserName,
    Id,
}

impl Attribute {
    fn name(self) -> &'static str {
        match self {
            Attribute::ExternalId => "externalId",
            Attribute::UserName => "userName",
            Attribute::Id => "id",
        }
    }

    /// The directory user's value, and whether it compares case-exactly
    /// (RFC 7643: externalId and id are caseExact, userName is not).
    fn of(self, user: &UserRecord) -> Option<(String, bool)> {
        match self {
            Attribute::ExternalId => user.external_id.clone().map(|v| (v, true)),
            Attribute::UserName => Some((user.user_name.clone(), false)),
            Attribute::Id => Some((user.id.to_string(), true)),
        }
    }
}

impl fmt::Display for MatchRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MatchRule::Email => f.write_str("email"),
            MatchRule::Claim { claim, attribute } => {
                write!(f, "claim:{claim}={}", attribute.name())
            }
        }
    }
}

impl FromStr for MatchRule {
    type Err = String;

    /// `email`, or `claim:<claim>=<externalId|userName|id>`.
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("email") {
            return Ok(MatchRule::Email);
        }
        let bad = || {
            format!(
                "`{s}` is not a matching rule: use `email` or `claim:CLAIM=ATTRIBUTE` (ATTRIBUTE is externalId, userName or id), e.g. claim:oid=externalId"
            )
        };
        let rest = s.strip_prefix("claim:").ok_or_else(bad)?;
        let (claim, attribute) = rest.split_once('=').ok_or_else(bad)?;
        let claim = claim.trim();
        if claim.is_empty()
            || !claim
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-:.".contains(c))
        {
            return Err(bad());
        }
        let attribute = match attribute.trim() {
            a if a.eq_ignore_ascii_case("externalId") => Attribute::ExternalId,
            a if a.eq_ignore_ascii_case("userName") => Attribute::UserName,
            a if a.eq_ignore_ascii_case("id") => Attribute::Id,
            _ => return Err(bad()),
        };
        Ok(MatchRule::Claim {
            claim: claim.to_string(),
            attribute,
        })
    }
}

/// Checks an issuer URL: absolute, https (http only on a loopback address,
/// for tests and development), no query or fragment. Returns it without a
/// trailing slash.
pub fn check_issuer(raw: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(raw.trim())
        .map_err(|e| format!("`{raw}` is not an absolute URL: {e}"))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "the issuer `{raw}` must not have a query or fragment"
        ));
    }
    let loopback = match url.host() {
        Some(openidconnect::url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(openidconnect::url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(openidconnect::url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(format!(
                "the issuer `{raw}` must use https (http is accepted only on a loopback address)"
            ));
        }
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// Whether the issuer serves many tenants, so that its email claims may be
/// any tenant's assertion (Microsoft's `/common`, `/organizations`,
/// `/consumers` endpoints).
pub fn is_multi_tenant(issuer: &str) -> bool {
    let path = issuer
        .split_once("://")
        .map_or(issuer, |(_, rest)| rest)
        .split_once('/')
        .map_or("", |(_, p)| p);
    path.split('/').any(|seg| {
        ["common", "organizations", "consumers", "{tenantid}"]
            .iter()
            .any(|m| seg.eq_ignore_ascii_case(m))
    })
}

/// Why a sign-in does not count as the invited person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error("the identity provider did not say the email address is verified")]
    EmailUnverified,
    #[error("the identity provider sent no email address")]
    NoEmail,
    #[error("you signed in as {signed_in}, but the invitation is for {invited}")]
    OtherEmail { signed_in: String, invited: String },
    #[error("the identity provider sent no `{0}` claim")]
    NoClaim(String),
    #[error("the `{claim}` claim does not match the directory's {attribute}")]
    OtherClaim { claim: String, attribute: String },
    #[error("the directory user of the invitation is gone")]
    NoDirectoryUser,
}

/// Whether verified ID-token `claims` are the invited person: `invited`
/// is the invitation's work email, `user` the directory user it was
/// issued to.
pub fn check_match(
    rule: &MatchRule,
    trust_email: bool,
    claims: &Map<String, Value>,
    invited: &str,
    user: Option<&UserRecord>,
) -> Result<(), Mismatch> {
    match rule {
        MatchRule::Email => {
            let email = claims
                .get("email")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .ok_or(Mismatch::NoEmail)?;
            let verified = match claims.get("email_verified") {
                Some(Value::Bool(b)) => *b,
                // Some providers send it as a string.
                Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
                Some(_) => false,
                None => trust_email,
            };
            if !verified {
                return Err(Mismatch::EmailUnverified);
            }
            if !email.eq_ignore_ascii_case(invited.trim()) {
                return Err(Mismatch::OtherEmail {
                    signed_in: email.to_string(),
                    invited: invited.to_string(),
                });
            }
            Ok(())
        }
        MatchRule::Claim { claim, attribute } => {
            let user = user.ok_or(Mismatch::NoDirectoryUser)?;
            let value = match claims.get(claim) {
                Some(Value::String(s)) if !s.is_empty() => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => return Err(Mismatch::NoClaim(claim.clone())),
            };
            let same = match attribute.of(user) {
                Some((want, true)) => want == value,
                Some((want, false)) => want.eq_ignore_ascii_case(&value),
                None => false,
            };
            if same {
                Ok(())
            } else {
                Err(Mismatch::OtherClaim {
                    claim: claim.clone(),
                    attribute: attribute.name().to_string(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Timestamp;
    use serde_json::json;
    use uuid::Uuid;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn user(external_id: Option<&str>) -> UserRecord {
        UserRecord {
            id: Uuid::nil(),
            org_id: Uuid::nil(),
            user_name: "Pat@Acme.example".into(),
            external_id: external_id.map(str::to_owned),
            display_name: None,
            active: true,
            resource: json!({}),
            password_hash: None,
            version: 1,
            created_at: Timestamp::now(),
            updated_at: Timestamp::now(),
        }
    }

    #[test]
    fn matching_rules_parse_and_print() {
        assert_eq!("email".parse::<MatchRule>().unwrap(), MatchRule::Email);
        let r: MatchRule = "claim:oid=externalId".parse().unwrap();
        assert_eq!(r.to_string(), "claim:oid=externalId");
        assert!("claim:oid".parse::<MatchRule>().is_err());
        assert!("claim:=externalId".parse::<MatchRule>().is_err());
        assert!("claim:oid=department".parse::<MatchRule>().is_err());
        assert!("phone".parse::<MatchRule>().is_err());
    }

    #[test]
    fn issuers_must_be_https_except_on_loopback() {
        assert_eq!(
            check_issuer("https://login.example.com/tenant/v2.0/").unwrap(),
            "https://login.example.com/tenant/v2.0"
        );
        assert!(check_issuer("http://127.0.0.1:9000").is_ok());
        assert!(check_issuer("http://localhost:9000").is_ok());
        assert!(check_issuer("http://[::1]:9000").is_ok());
        assert!(check_issuer("http://idp.example.com").is_err());
        assert!(check_issuer("ftp://idp.example.com").is_err());
        assert!(check_issuer("https://idp.example.com/?x=1").is_err());
        assert!(check_issuer("not a url").is_err());
    }

    #[test]
    fn entra_multi_tenant_issuers_are_recognised() {
        for multi in [
            "https://login.microsoftonline.com/common/v2.0",
            "https://login.microsoftonline.com/organizations/v2.0",
            "https://login.microsoftonline.com/consumers/v2.0",
            "https://login.microsoftonline.com/{tenantid}/v2.0",
        ] {
            assert!(is_multi_tenant(multi), "{multi}");
        }
        assert!(!is_multi_tenant(
            "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0"
        ));
        assert!(!is_multi_tenant("https://acme.okta.com"));
    }

    #[test]
    fn a_verified_email_equal_to_the_invited_one_matches_in_any_case() {
        let c = claims(json!({"email": "PAT@acme.example", "email_verified": true}));
        assert_eq!(
            check_match(&MatchRule::Email, false, &c, "pat@ACME.example", None),
            Ok(())
        );
    }

    #[test]
    fn an_unverified_email_never_matches() {
        for c in [
            json!({"email": "pat@acme.example", "email_verified": false}),
            json!({"email": "pat@acme.example", "email_verified": "false"}),
            json!({"email": "pat@acme.example"}),
        ] {
            assert_eq!(
                check_match(
                    &MatchRule::Email,
                    false,
                    &claims(c),
                    "pat@acme.example",
                    None
                ),
                Err(Mismatch::EmailUnverified)
            );
        }
        // Explicitly false stays false even where the email is trusted.
        let c = claims(json!({"email": "pat@acme.example", "email_verified": false}));
        assert_eq!(
            check_match(&MatchRule::Email, true, &c, "pat@acme.example", None),
            Err(Mismatch::EmailUnverified)
        );
    }

    #[test]
    fn a_trusted_issuers_email_without_email_verified_matches() {
        let c = claims(json!({"email": "pat@acme.example"}));
        assert_eq!(
            check_match(&MatchRule::Email, true, &c, "pat@acme.example", None),
            Ok(())
        );
    }

    #[test]
    fn someone_elses_email_or_none_does_not_match() {
        let c = claims(json!({"email": "eve@acme.example", "email_verified": true}));
        assert!(matches!(
            check_match(&MatchRule::Email, false, &c, "pat@acme.example", None),
            Err(Mismatch::OtherEmail { .. })
        ));
        let c = claims(json!({"email_verified": true}));
        assert_eq!(
            check_match(&MatchRule::Email, false, &c, "pat@acme.example", None),
            Err(Mismatch::NoEmail)
        );
    }

    #[test]
    fn a_claim_rule_compares_the_claim_with_the_directory_attribute() {
        let rule: MatchRule = "claim:oid=externalId".parse().unwrap();
        let u = user(Some("0a21f0f2-oid"));
        let ok = claims(json!({"oid": "0a21f0f2-oid", "email": "whatever@else.example"}));
        assert_eq!(
            check_match(&rule, false, &ok, "pat@acme.example", Some(&u)),
            Ok(())
        );
        let other = claims(json!({"oid": "0A21F0F2-OID"}));
        assert!(
            matches!(
                check_match(&rule, false, &other, "pat@acme.example", Some(&u)),
                Err(Mismatch::OtherClaim { .. })
            ),
            "externalId is case-exact"
        );
        assert_eq!(
            check_match(
                &rule,
                false,
                &claims(json!({})),
                "pat@acme.example",
                Some(&u)
            ),
            Err(Mismatch::NoClaim("oid".into()))
        );
        assert_eq!(
            check_match(&rule, false, &ok, "pat@acme.example", None),
            Err(Mismatch::NoDirectoryUser)
        );
        let by_name: MatchRule = "claim:upn=userName".parse().unwrap();
        let upn = claims(json!({"upn": "pat@acme.EXAMPLE"}));
        assert_eq!(check_match(&by_name, false, &upn, "x", Some(&u)), Ok(()));
    }
}
