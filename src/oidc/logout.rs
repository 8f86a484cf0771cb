//! OpenID Connect Back-Channel Logout 1.0 (§2.4, §2.6): a provider posts a
//! `logout_token` to end a person's sessions. `openidconnect` has no type for
//! it, so it is verified here with `jsonwebtoken` against the provider's
//! keys: signature, `iss`, `aud`, `iat`, `exp`, the back-channel `events`
//! member, `sub` or `sid`, no `nonce`, and a `jti` (whose replay the caller
//! refuses). Pure but for the keys it is given.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::{Map, Value};

/// The event member a logout token must carry.
pub const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// What a valid logout token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutToken {
    pub issuer: String,
    pub subject: Option<String>,
    pub sid: Option<String>,
    pub jti: String,
    /// Seconds since the epoch; the jti is remembered until then.
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogoutTokenError {
    #[error("malformed: {0}")]
    Malformed(String),
    #[error("signed with a key the provider does not publish")]
    UnknownKey,
    #[error("not valid: {0}")]
    Invalid(String),
}

/// The `iss` and `aud` a token claims, read before it is verified, to find
/// which organization's provider must verify it.
pub fn unverified_issuer_and_audience(
    token: &str,
) -> Result<(String, Vec<String>), LogoutTokenError> {
    let part = token
        .split('.')
        .nth(1)
        .ok_or_else(|| LogoutTokenError::Malformed("not a JWT".into()))?;
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|e| LogoutTokenError::Malformed(e.to_string()))?;
    let claims: Map<String, Value> =
        serde_json::from_slice(&bytes).map_err(|e| LogoutTokenError::Malformed(e.to_string()))?;
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or_else(|| LogoutTokenError::Malformed("no iss".into()))?
        .to_string();
    let aud = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => return Err(LogoutTokenError::Malformed("no aud".into())),
    };
    Ok((iss, aud))
}

/// Verifies `token` as a logout token from `issuer` for `client_id`,
/// against the provider's JWK Set document `keys`.
pub fn verify(
    token: &str,
    issuer: &str,
    client_id: &str,
    keys: &Value,
) -> Result<LogoutToken, LogoutTokenError> {
    let header = decode_header(token).map_err(|e| LogoutTokenError::Malformed(e.to_string()))?;
    if !matches!(
        header.alg,
        Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512
            | Algorithm::ES256
            | Algorithm::ES384
            | Algorithm::EdDSA
    ) {
        return Err(LogoutTokenError::Invalid(format!(
            "signed with {:?}, not an asymmetric algorithm",
            header.alg
        )));
    }
    let set: JwkSet = serde_json::from_value(keys.clone())
        .map_err(|e| LogoutTokenError::Malformed(format!("the key set: {e}")))?;
    let jwk = match &header.kid {
        Some(kid) => set.find(kid),
        // Without a kid, the provider must have one key.
        None if set.keys.len() == 1 => set.keys.first(),
        None => None,
    }
    .ok_or(LogoutTokenError::UnknownKey)?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| LogoutTokenError::Invalid(e.to_string()))?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[client_id]);
    validation.set_required_spec_claims(&["iss", "aud", "iat", "exp"]);
    validation.leeway = 60;
    let data = decode::<Map<String, Value>>(token, &key, &validation)
        .map_err(|e| LogoutTokenError::Invalid(e.to_string()))?;
    let claims = data.claims;
    let events = claims
        .get("events")
        .and_then(Value::as_object)
        .ok_or_else(|| LogoutTokenError::Invalid("no events claim".into()))?;
    if !events.get(BACKCHANNEL_EVENT).is_some_and(Value::is_object) {
        return Err(LogoutTokenError::Invalid(
            "the events claim has no back-channel logout event".into(),
        ));
    }
    if claims.contains_key("nonce") {
        return Err(LogoutTokenError::Invalid(
            "a logout token must not carry a nonce".into(),
        ));
    }
    let text = |k: &str| {
        claims
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let (subject, sid) = (text("sub"), text("sid"));
    if subject.is_none() && sid.is_none() {
        return Err(LogoutTokenError::Invalid("neither sub nor sid".into()));
    }
    let jti = text("jti").ok_or_else(|| LogoutTokenError::Invalid("no jti".into()))?;
    let expires_at = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
    Ok(LogoutToken {
        issuer: issuer.to_string(),
        subject,
        sid,
        jti,
        expires_at,
    })
}
