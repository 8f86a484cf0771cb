//! The OpenID Connect relying party, per organization, on the `openidconnect`
//! crate: discovery and the provider's keys (cached per issuer; an ID token
//! signed with a key not yet known makes one key refresh, at most every 30
//! seconds per issuer, so key rotation needs no restart), the authorization
//! URL (code flow, PKCE S256, state, nonce, login hint), and the code
//! exchange with the ID token verified: signature, `iss`, `aud`, `azp`,
//! `exp`, `iat`, `nonce`.
//!
//! HTTP goes through one `reqwest` client that follows no redirects and
//! gives up after 10 seconds. Knows no storage and no actix.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreJsonWebKeySet};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, LoginHint, LogoutRequest, Nonce,
    PkceCodeChallenge, PkceCodeVerifier, PostLogoutRedirectUrl, ProviderMetadataWithLogout,
    RedirectUrl, Scope, SignatureVerificationError, TokenResponse,
};
use serde_json::{Map, Value};

/// How long discovered metadata is trusted.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// At most one key refresh per issuer this often.
const KEY_REFRESH_EVERY: Duration = Duration::from_secs(30);
/// How far an ID token's `iat` may be from now.
const IAT_SKEW: i64 = 300;

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// What went wrong talking to a provider, or with what it sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    #[error("discovery failed: {0}")]
    Discovery(String),
    #[error("fetching the provider's keys failed: {0}")]
    Keys(String),
    #[error("the provider refused the code: {0}")]
    Exchange(String),
    #[error("the ID token is not valid: {0}")]
    Token(String),
    #[error("the connection is misconfigured: {0}")]
    Config(String),
}

/// What onramp needs of a connection to talk to its provider.
#[derive(Clone)]
pub struct ProviderSettings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: secrecy::SecretString,
    pub scopes: Vec<String>,
}

/// A sign-in the provider vouched for, with every claim of its ID token.
#[derive(Debug, Clone)]
pub struct VerifiedIdentity {
    pub issuer: String,
    pub subject: String,
    /// The provider's session id (for back-channel logout), if it sent one.
    pub sid: Option<String>,
    pub claims: Map<String, Value>,
    /// The ID token itself (the hint for RP-initiated logout).
    pub id_token: String,
}

impl VerifiedIdentity {
    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }
}

/// What a new sign-in carries to the provider, and keeps to check its answer.
pub struct AuthorizeRequest {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// What `onramp sso check` found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckReport {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: Option<String>,
    pub jwks_uri: String,
    pub end_session_endpoint: Option<String>,
    pub keys: Vec<String>,
    pub signing_algorithms: Vec<String>,
    pub scopes_supported: Vec<String>,
}

struct Provider {
    metadata: ProviderMetadataWithLogout,
    discovered: Instant,
    /// When the keys were last fetched again after discovery (discovery's
    /// own fetch does not count: a rotation right after it still refreshes).
    keys_refreshed: Option<Instant>,
}

/// Providers by issuer, shared by the whole process.
#[derive(Clone)]
pub struct OidcClients {
    http: reqwest::Client,
    providers: Arc<Mutex<HashMap<String, Arc<Provider>>>>,
    /// Serializes discovery and key refreshes per issuer (rare, bounded),
    /// so a slow provider delays only its own organizations.
    refreshing: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl OidcClients {
    pub fn new() -> Result<OidcClients, OidcError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| OidcError::Config(e.to_string()))?;
        Ok(OidcClients {
            http,
            providers: Arc::new(Mutex::new(HashMap::new())),
            refreshing: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// The lock that serializes fetches from one issuer.
    fn fetch_lock(&self, issuer: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.refreshing.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 1024 {
            map.retain(|_, l| Arc::strong_count(l) > 1);
        }
        map.entry(issuer.to_string()).or_default().clone()
    }

    fn cached(&self, issuer: &str) -> Option<Arc<Provider>> {
        let map = self.providers.lock().unwrap_or_else(|p| p.into_inner());
        map.get(issuer)
            .filter(|p| p.discovered.elapsed() < METADATA_TTL)
            .cloned()
    }

    fn store(&self, issuer: &str, p: Arc<Provider>) {
        let mut map = self.providers.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 1024 {
            map.retain(|_, p| p.discovered.elapsed() < METADATA_TTL);
        }
        map.insert(issuer.to_string(), p);
    }

    async fn discover(&self, issuer: &str) -> Result<ProviderMetadataWithLogout, OidcError> {
        let url = IssuerUrl::new(issuer.to_string())
            .map_err(|e| OidcError::Config(format!("issuer {issuer}: {e}")))?;
        ProviderMetadataWithLogout::discover_async(url, &self.http)
            .await
            .map_err(|e| OidcError::Discovery(describe(&e)))
    }

    /// The provider's metadata and keys, from the cache or discovered.
    async fn provider(&self, issuer: &str) -> Result<Arc<Provider>, OidcError> {
        if let Some(p) = self.cached(issuer) {
            return Ok(p);
        }
        let lock = self.fetch_lock(issuer);
        let _one = lock.lock().await;
        if let Some(p) = self.cached(issuer) {
            return Ok(p);
        }
        let metadata = self.discover(issuer).await?;
        let now = Instant::now();
        let p = Arc::new(Provider {
            metadata,
            discovered: now,
            keys_refreshed: None,
        });
        self.store(issuer, p.clone());
        Ok(p)
    }

    /// Fetches the provider's keys again, unless that was done less than
    /// [`KEY_REFRESH_EVERY`] ago; returns whether they were fetched.
    async fn refresh_keys(&self, issuer: &str) -> Result<bool, OidcError> {
        let lock = self.fetch_lock(issuer);
        let _one = lock.lock().await;
        let current = self.provider_unlocked(issuer)?;
        if current
            .keys_refreshed
            .is_some_and(|t| t.elapsed() < KEY_REFRESH_EVERY)
        {
            return Ok(false);
        }
        let keys = CoreJsonWebKeySet::fetch_async(current.metadata.jwks_uri(), &self.http)
            .await
            .map_err(|e| OidcError::Keys(describe(&e)))?;
        let metadata = current.metadata.clone().set_jwks(keys);
        self.store(
            issuer,
            Arc::new(Provider {
                metadata,
                discovered: current.discovered,
                keys_refreshed: Some(Instant::now()),
            }),
        );
        Ok(true)
    }

    fn provider_unlocked(&self, issuer: &str) -> Result<Arc<Provider>, OidcError> {
        let map = self.providers.lock().unwrap_or_else(|p| p.into_inner());
        map.get(issuer)
            .cloned()
            .ok_or_else(|| OidcError::Discovery("not discovered yet".into()))
    }

    fn client(p: &Provider, s: &ProviderSettings, redirect: &str) -> Result<Client, OidcError> {
        use secrecy::ExposeSecret;
        let redirect = RedirectUrl::new(redirect.to_string())
            .map_err(|e| OidcError::Config(format!("redirect URI: {e}")))?;
        Ok(Client::from_provider_metadata(
            p.metadata.clone(),
            ClientId::new(s.client_id.clone()),
            Some(ClientSecret::new(
                s.client_secret.expose_secret().to_string(),
            )),
        )
        .set_redirect_uri(redirect))
    }

    /// Where to send the browser: the authorization-code flow with PKCE
    /// (S256), a fresh `state` and `nonce`, and `login_hint`.
    pub async fn authorize(
        &self,
        s: &ProviderSettings,
        redirect: &str,
        login_hint: Option<&str>,
    ) -> Result<AuthorizeRequest, OidcError> {
        let p = self.provider(&s.issuer).await?;
        let client = Self::client(&p, s, redirect)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in s.scopes.iter().filter(|s| s.as_str() != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        if let Some(hint) = login_hint {
            request = request.set_login_hint(LoginHint::new(hint.to_string()));
        }
        let (url, state, nonce) = request.url();
        Ok(AuthorizeRequest {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Exchanges the code and verifies the ID token it brings.
    pub async fn finish(
        &self,
        s: &ProviderSettings,
        redirect: &str,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
    ) -> Result<VerifiedIdentity, OidcError> {
        let p = self.provider(&s.issuer).await?;
        let client = Self::client(&p, s, redirect)?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| OidcError::Config(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()))
            .request_async(&self.http)
            .await
            .map_err(|e| OidcError::Exchange(describe(&e)))?;
        let id_token = response
            .id_token()
            .ok_or_else(|| OidcError::Token("the provider sent no ID token".into()))?
            .clone();
        let nonce = Nonce::new(nonce.to_string());
        let verify = |client: &Client| {
            let verifier = client
                .id_token_verifier()
                .set_issue_time_verifier_fn(|iat| {
                    let skew = (chrono_now() - iat.timestamp()).abs();
                    if skew > IAT_SKEW {
                        Err(format!("issued {skew} s away from now"))
                    } else {
                        Ok(())
                    }
                });
            id_token.claims(&verifier, &nonce).map(|c| {
                (
                    c.issuer().to_string(),
                    c.subject().to_string(),
                    c.audiences().len(),
                )
            })
        };
        let verified = match verify(&client) {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) if self.refresh_keys(&s.issuer).await? => {
                // Signed with a key we do not know yet: the provider rotated.
                let p = self.provider_unlocked(&s.issuer)?;
                verify(&Self::client(&p, s, redirect)?)
            }
            other => other,
        };
        let (issuer, subject, audiences) = verified.map_err(|e| OidcError::Token(describe(&e)))?;
        let raw = id_token.to_string();
        let claims = payload(&raw)?;
        // OpenID Connect Core §3.1.3.7 (4, 5): `azp` must be us when present,
        // and present when the token has several audiences.
        match claims.get("azp").and_then(Value::as_str) {
            Some(azp) if azp != s.client_id => {
                return Err(OidcError::Token(format!("issued to another party ({azp})")));
            }
            None if audiences > 1 => {
                return Err(OidcError::Token(
                    "several audiences and no authorized party".into(),
                ));
            }
            _ => {}
        }
        Ok(VerifiedIdentity {
            sid: claims.get("sid").and_then(Value::as_str).map(str::to_owned),
            issuer,
            subject,
            claims,
            id_token: raw,
        })
    }

    /// The provider's end-session URL for RP-initiated logout, if it has one.
    pub async fn end_session_url(
        &self,
        s: &ProviderSettings,
        id_token_hint: Option<&str>,
        post_logout_redirect: &str,
    ) -> Option<String> {
        let p = self.provider(&s.issuer).await.ok()?;
        let endpoint = p
            .metadata
            .additional_metadata()
            .end_session_endpoint
            .clone()?;
        let mut request =
            LogoutRequest::from(endpoint).set_client_id(ClientId::new(s.client_id.clone()));
        if let Ok(url) = PostLogoutRedirectUrl::new(post_logout_redirect.to_string()) {
            request = request.set_post_logout_redirect_uri(url);
        }
        let mut url = request.http_get_url();
        if let Some(hint) = id_token_hint {
            url.query_pairs_mut().append_pair("id_token_hint", hint);
        }
        Some(url.to_string())
    }

    /// The provider's keys as a JWK Set document (for logout tokens), with
    /// one refresh when `refresh` (a key was not found).
    pub async fn keys_json(&self, issuer: &str, refresh: bool) -> Result<Value, OidcError> {
        if refresh {
            self.provider(issuer).await?;
            self.refresh_keys(issuer).await?;
        }
        let p = self.provider(issuer).await?;
        serde_json::to_value(p.metadata.jwks()).map_err(|e| OidcError::Keys(e.to_string()))
    }

    /// Discovery and keys, fetched now (not from the cache): what `onramp
    /// sso check` reports.
    pub async fn check(&self, issuer: &str) -> Result<CheckReport, OidcError> {
        let metadata = self.discover(issuer).await?;
        let keys = metadata
            .jwks()
            .keys()
            .iter()
            .map(|k| {
                serde_json::to_value(k)
                    .ok()
                    .and_then(|v| {
                        Some(format!(
                            "{} {}",
                            v.get("kty")?.as_str()?,
                            v.get("kid").and_then(Value::as_str).unwrap_or("(no kid)")
                        ))
                    })
                    .unwrap_or_else(|| "(unreadable key)".into())
            })
            .collect::<Vec<_>>();
        if keys.is_empty() {
            return Err(OidcError::Keys(format!(
                "the key set at {} holds no keys",
                metadata.jwks_uri().as_str()
            )));
        }
        let to_strings = |v: Option<&Vec<Scope>>| {
            v.map(|s| s.iter().map(|x| x.as_str().to_string()).collect())
                .unwrap_or_default()
        };
        Ok(CheckReport {
            issuer: metadata.issuer().as_str().to_string(),
            authorization_endpoint: metadata.authorization_endpoint().as_str().to_string(),
            token_endpoint: metadata.token_endpoint().map(|u| u.as_str().to_string()),
            jwks_uri: metadata.jwks_uri().as_str().to_string(),
            end_session_endpoint: metadata
                .additional_metadata()
                .end_session_endpoint
                .as_ref()
                .map(|u| u.as_str().to_string()),
            keys,
            signing_algorithms: metadata
                .id_token_signing_alg_values_supported()
                .iter()
                .map(|a| {
                    serde_json::to_value(a)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                })
                .collect(),
            scopes_supported: to_strings(metadata.scopes_supported()),
        })
    }
}

fn chrono_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The claims of a JWT whose signature has been verified.
fn payload(jwt: &str) -> Result<Map<String, Value>, OidcError> {
    let part = jwt
        .split('.')
        .nth(1)
        .ok_or_else(|| OidcError::Token("malformed".into()))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|e| OidcError::Token(format!("malformed payload: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| OidcError::Token(format!("malformed payload: {e}")))
}

/// An error and its causes, on one line (no secrets are in them).
fn describe(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
