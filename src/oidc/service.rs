//! SSO use cases: an organization's connection (set, show, check), starting
//! a sign-in (server-side state bound to the browser), the provider's
//! answer (state, `iss`, code, ID token), RP-initiated and back-channel
//! logout. Knows no actix.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::client::{CheckReport, OidcClients, OidcError, ProviderSettings, VerifiedIdentity};
use super::connection::{DEFAULT_SCOPES, MatchRule, check_issuer, is_multi_tenant};
use super::logout::{self, LogoutTokenError};
use crate::secrets::sealed::SealingKey;
use crate::secrets::token;
use crate::store::sso::{LoginState, SsoConnectionRecord};
use crate::store::{DynStore, StoreError, Timestamp};

/// How long a sign-in may take between leaving for the provider and coming back.
const LOGIN_TTL: time::Duration = time::Duration::minutes(10);

#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    #[error("{0}")]
    Invalid(String),
    #[error("this organization has no single sign-on connection")]
    NotConfigured,
    #[error("this sign-in was already used, has expired, or was started in another browser")]
    StaleSignIn,
    #[error("the identity provider answered: {0}")]
    Provider(String),
    #[error("the identity provider's answer names another issuer ({0})")]
    WrongIssuer(String),
    #[error(transparent)]
    Oidc(#[from] OidcError),
    #[error("the client secret cannot be read: {0}")]
    Secret(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an admin sets.
#[derive(Debug, Clone)]
pub struct SetConnection {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: SecretString,
    pub match_rule: String,
    pub trust_email: bool,
    pub scopes: Option<String>,
}

/// A connection as shown (the secret never is).
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionView {
    pub org_id: Uuid,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: &'static str,
    pub scopes: String,
    #[serde(rename = "match")]
    pub match_rule: String,
    pub trust_email: bool,
    pub redirect_uri: String,
    pub backchannel_logout_uri: String,
    pub updated_at: Timestamp,
}

/// A sign-in on its way to the provider: where to send the browser, and
/// the cookie value that binds the sign-in to it.
pub struct Departure {
    pub url: String,
    pub browser_secret: String,
}

/// The provider's answer as it arrived at the callback.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// A sign-in the provider vouched for, and what it was for.
pub struct Arrival {
    pub org_id: Uuid,
    pub invitation_id: Option<Uuid>,
    pub identity: VerifiedIdentity,
    pub match_rule: MatchRule,
    pub trust_email: bool,
}

#[derive(Clone)]
pub struct SsoService {
    store: DynStore,
    clients: OidcClients,
    key: Arc<SealingKey>,
    public_url: String,
}

impl SsoService {
    pub fn new(
        store: DynStore,
        key: Arc<SealingKey>,
        public_url: &str,
    ) -> Result<SsoService, SsoError> {
        Ok(SsoService {
            store,
            clients: OidcClients::new()?,
            key,
            public_url: public_url.trim_end_matches('/').to_string(),
        })
    }

    pub fn redirect_uri(&self) -> String {
        format!("{}/sso/callback", self.public_url)
    }

    pub fn backchannel_logout_uri(&self) -> String {
        format!("{}/sso/backchannel-logout", self.public_url)
    }

    pub fn signed_out_uri(&self) -> String {
        format!("{}/signed-out", self.public_url)
    }

    /// Sets the organization's connection (replacing one there was).
    pub async fn set_connection(
        &self,
        org_id: Uuid,
        set: SetConnection,
    ) -> Result<ConnectionView, SsoError> {
        let issuer = check_issuer(&set.issuer).map_err(SsoError::Invalid)?;
        let rule: MatchRule = set.match_rule.parse().map_err(SsoError::Invalid)?;
        if set.trust_email && is_multi_tenant(&issuer) {
            return Err(SsoError::Invalid(format!(
                "--trust-email is refused for the multi-tenant issuer {issuer}: any tenant of it can assert any email. Use a tenant-specific issuer, or match a stable claim (--match claim:oid=externalId)"
            )));
        }
        let client_id = set.client_id.trim().to_string();
        if client_id.is_empty() || client_id.len() > 512 {
            return Err(SsoError::Invalid(
                "the client id must have 1 to 512 characters".into(),
            ));
        }
        let secret = set.client_secret.expose_secret().trim().to_string();
        if secret.is_empty() || secret.len() > 4096 {
            return Err(SsoError::Invalid(
                "the client secret must have 1 to 4096 characters".into(),
            ));
        }
        let scopes = normalize_scopes(set.scopes.as_deref().unwrap_or(DEFAULT_SCOPES))?;
        if self.store.org_by_id(org_id).await?.is_none() {
            return Err(SsoError::Invalid(format!(
                "no organization with id {org_id}"
            )));
        }
        let record = SsoConnectionRecord {
            org_id,
            issuer,
            client_id,
            client_secret_sealed: self
                .key
                .seal(org_id.as_bytes(), secret.as_bytes())
                .map_err(|e| SsoError::Secret(e.to_string()))?,
            scopes,
            match_rule: rule.to_string(),
            trust_email: set.trust_email,
            updated_at: Timestamp::now(),
        };
        self.store.put_sso_connection(&record).await?;
        Ok(self.view(&record))
    }

    pub async fn connection(&self, org_id: Uuid) -> Result<Option<ConnectionView>, SsoError> {
        Ok(self
            .store
            .sso_connection(org_id)
            .await?
            .map(|r| self.view(&r)))
    }

    fn view(&self, r: &SsoConnectionRecord) -> ConnectionView {
        ConnectionView {
            org_id: r.org_id,
            issuer: r.issuer.clone(),
            client_id: r.client_id.clone(),
            client_secret: "[redacted]",
            scopes: r.scopes.clone(),
            match_rule: r.match_rule.clone(),
            trust_email: r.trust_email,
            redirect_uri: self.redirect_uri(),
            backchannel_logout_uri: self.backchannel_logout_uri(),
            updated_at: r.updated_at,
        }
    }

    async fn record(&self, org_id: Uuid) -> Result<SsoConnectionRecord, SsoError> {
        self.store
            .sso_connection(org_id)
            .await?
            .ok_or(SsoError::NotConfigured)
    }

    fn settings(&self, r: &SsoConnectionRecord) -> Result<ProviderSettings, SsoError> {
        let secret = self
            .key
            .open(r.org_id.as_bytes(), &r.client_secret_sealed)
            .map_err(|e| SsoError::Secret(e.to_string()))?;
        Ok(ProviderSettings {
            issuer: r.issuer.clone(),
            client_id: r.client_id.clone(),
            client_secret: SecretString::from(
                String::from_utf8(secret).map_err(|e| SsoError::Secret(e.to_string()))?,
            ),
            scopes: r.scopes.split_whitespace().map(str::to_owned).collect(),
        })
    }

    /// Discovery and keys, fetched now; also that the secret opens.
    pub async fn check(&self, org_id: Uuid) -> Result<CheckReport, SsoError> {
        let r = self.record(org_id).await?;
        self.settings(&r)?;
        Ok(self.clients.check(&r.issuer).await?)
    }

    /// Starts a sign-in at the organization's provider: for `invitation`
    /// (a registration) or none (a later sign-in).
    pub async fn depart(
        &self,
        org_id: Uuid,
        invitation: Option<Uuid>,
        login_hint: Option<&str>,
    ) -> Result<Departure, SsoError> {
        let r = self.record(org_id).await?;
        let settings = self.settings(&r)?;
        let request = self
            .clients
            .authorize(&settings, &self.redirect_uri(), login_hint)
            .await?;
        let browser = token::issue("sso");
        let now = Timestamp::now();
        self.store
            .insert_login_state(&LoginState {
                state_hash: token::hash(&request.state),
                browser_hash: browser.hash,
                org_id,
                invitation_id: invitation,
                nonce: request.nonce,
                pkce_verifier: request.pkce_verifier,
                created_at: now,
                expires_at: now.plus(LOGIN_TTL),
            })
            .await?;
        Ok(Departure {
            url: request.url,
            browser_secret: browser.secret,
        })
    }

    /// The provider's answer: the sign-in it belongs to (once; from this
    /// browser; in time), the `iss` it names, the code exchanged and the
    /// ID token verified.
    pub async fn arrive(
        &self,
        q: &CallbackQuery,
        browser_secret: Option<&str>,
    ) -> Result<Arrival, SsoError> {
        let state = q
            .state
            .as_deref()
            .filter(|s| !s.is_empty() && s.len() <= 512);
        let Some(state) = state else {
            return Err(SsoError::StaleSignIn);
        };
        let login = self
            .store
            .take_login_state(&token::hash(state))
            .await?
            .ok_or(SsoError::StaleSignIn)?;
        let same_browser = browser_secret.is_some_and(|b| {
            token::well_formed("sso", b) && bool::from(token::hash(b).ct_eq(&login.browser_hash))
        });
        if !same_browser || login.expires_at <= Timestamp::now() {
            return Err(SsoError::StaleSignIn);
        }
        if let Some(error) = &q.error {
            let why: String = q
                .error_description
                .as_deref()
                .unwrap_or(error)
                .chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect();
            return Err(SsoError::Provider(why));
        }
        let r = self.record(login.org_id).await?;
        // RFC 9207: an `iss` in the answer must be the provider we sent the
        // person to (a mix-up attack otherwise).
        if let Some(iss) = &q.iss
            && iss.trim_end_matches('/') != r.issuer
        {
            return Err(SsoError::WrongIssuer(iss.chars().take(200).collect()));
        }
        let code = q
            .code
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| SsoError::Provider("no code".into()))?;
        let settings = self.settings(&r)?;
        let identity = self
            .clients
            .finish(
                &settings,
                &self.redirect_uri(),
                code,
                &login.pkce_verifier,
                &login.nonce,
            )
            .await?;
        Ok(Arrival {
            org_id: login.org_id,
            invitation_id: login.invitation_id,
            identity,
            match_rule: r.match_rule.parse().map_err(SsoError::Invalid)?,
            trust_email: r.trust_email,
        })
    }

    /// Where to send a browser that signed out, when the provider offers
    /// RP-initiated logout.
    pub async fn logout_url(&self, org_id: Uuid, id_token_hint: Option<&str>) -> Option<String> {
        let r = self.record(org_id).await.ok()?;
        let settings = self.settings(&r).ok()?;
        self.clients
            .end_session_url(&settings, id_token_hint, &self.signed_out_uri())
            .await
    }

    /// A back-channel logout: verifies the token against the provider of
    /// the organization(s) it names, refuses one seen before, and ends the
    /// sessions it names; returns how many.
    pub async fn backchannel_logout(&self, token: &str) -> Result<u64, SsoError> {
        if token.len() > 16 * 1024 {
            return Err(SsoError::Invalid("the logout token is too long".into()));
        }
        let bad = |e: LogoutTokenError| SsoError::Invalid(format!("the logout token is {e}"));
        let (issuer, audiences) = logout::unverified_issuer_and_audience(token).map_err(bad)?;
        let mut connection = None;
        for aud in &audiences {
            if let Some(c) = self
                .store
                .sso_connections_of(issuer.trim_end_matches('/'), aud)
                .await?
                .into_iter()
                .next()
            {
                connection = Some(c);
                break;
            }
        }
        let c = connection.ok_or_else(|| {
            SsoError::Invalid("the logout token names no connection of this server".into())
        })?;
        let keys = self.clients.keys_json(&c.issuer, false).await?;
        let verified = match logout::verify(token, &issuer, &c.client_id, &keys) {
            Err(LogoutTokenError::UnknownKey) => {
                let keys = self.clients.keys_json(&c.issuer, true).await?;
                logout::verify(token, &issuer, &c.client_id, &keys)
            }
            other => other,
        }
        .map_err(bad)?;
        let seen_key = token::hash(&format!("{}\n{}", verified.issuer, verified.jti));
        let until = Timestamp::from_micros(verified.expires_at.max(0) * 1_000_000)
            .max(Timestamp::now().plus(time::Duration::minutes(10)));
        // Remembering the token and ending the sessions commit together: a
        // failure leaves the provider's retry welcome.
        let tx = self.store.begin().await?;
        if !tx.first_sight_of_logout_token(&seen_key, until).await? {
            return Err(SsoError::Invalid(
                "the logout token was already used".into(),
            ));
        }
        let ended = tx
            .delete_sessions_by_logout(
                c.org_id,
                &c.issuer,
                verified.subject.as_deref(),
                verified.sid.as_deref(),
            )
            .await?;
        tx.commit().await?;
        Ok(ended)
    }
}

/// `openid` first, then the others, each once.
fn normalize_scopes(raw: &str) -> Result<String, SsoError> {
    let mut out = vec!["openid".to_string()];
    for s in raw.split_whitespace() {
        if !s
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
        {
            return Err(SsoError::Invalid(format!("`{s}` is not a scope")));
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    }
    Ok(out.join(" "))
}

#[cfg(test)]
mod tests {
    use super::normalize_scopes;

    #[test]
    fn scopes_always_start_with_openid_once() {
        assert_eq!(
            normalize_scopes("email profile").unwrap(),
            "openid email profile"
        );
        assert_eq!(
            normalize_scopes("openid email openid").unwrap(),
            "openid email"
        );
        assert!(normalize_scopes("email \"x\"").is_err());
    }
}
