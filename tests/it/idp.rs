//! A small OpenID Connect identity provider for tests, on 127.0.0.1 and a
//! free port: discovery, JWKS, the authorization-code flow with PKCE (S256
//! only), the token endpoint (client_secret_basic or client_secret_post),
//! userinfo, RP-initiated logout (recorded only) and Back-Channel Logout
//! tokens. ID tokens are RS256, signed with one of two fixed test keys
//! (`tests/it/keys/idp-a.pem`, `idp-b.pem`).
//!
//! There is no browser and no login page: an authorization request signs in
//! the identity chosen by its `login_hint` (see [`TestIdp::add_identity`])
//! and answers at once with a redirect. Tests can tamper with the next ID
//! token, rotate keys, change the RFC 9207 `iss` parameter, and read what
//! the provider saw.
//!
//! It is no model of a complete or secure provider; it never talks to
//! anything but its clients.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::dev::ServerHandle;
use actix_web::http::header;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Url;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

/// The claim that marks a Back-Channel Logout token.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// How long an authorization code stays valid.
const CODE_LIFETIME: Duration = Duration::from_secs(60);
/// Lifetime of ID and access tokens, in seconds.
const TOKEN_LIFETIME: u64 = 300;
/// Lifetime of logout tokens, in seconds.
const LOGOUT_TOKEN_LIFETIME: u64 = 120;

/// Who signs in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    pub sub: String,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub name: Option<String>,
    /// More claims for the ID token and userinfo, e.g. `"oid"`, `"tid"`, `"groups"`.
    pub extra: Map<String, Value>,
}

impl Identity {
    /// An identity with only a subject.
    pub fn new(sub: &str) -> Identity {
        Identity {
            sub: sub.to_owned(),
            ..Identity::default()
        }
    }

    /// An identity with a subject, a verified email and a name.
    pub fn verified(sub: &str, email: &str, name: &str) -> Identity {
        Identity {
            sub: sub.to_owned(),
            email: Some(email.to_owned()),
            email_verified: Some(true),
            name: Some(name.to_owned()),
            extra: Map::new(),
        }
    }
}

/// What the authorization response says in its RFC 9207 `iss` parameter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IssMode {
    /// The issuer, as advertised.
    #[default]
    Correct,
    /// No `iss` parameter.
    Omit,
    /// A wrong value: see [`TestIdp::wrong_issuer`].
    Wrong,
}

/// One of the two fixed test keys.
struct KeyMaterial {
    kid: &'static str,
    pem: &'static str,
    /// base64url modulus and exponent, for the JWKS.
    n: String,
    e: String,
}

fn key_material() -> &'static [KeyMaterial; 2] {
    static KEYS: OnceLock<[KeyMaterial; 2]> = OnceLock::new();
    KEYS.get_or_init(|| {
        let load = |kid: &'static str, pem: &'static str| {
            use rsa::pkcs8::DecodePrivateKey;
            use rsa::traits::PublicKeyParts;
            let private = rsa::RsaPrivateKey::from_pkcs8_pem(pem).expect("test key is PKCS#8 PEM");
            let public = private.to_public_key();
            KeyMaterial {
                kid,
                pem,
                n: URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
                e: URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
            }
        };
        [
            load("idp-key-a", include_str!("keys/idp-a.pem")),
            load("idp-key-b", include_str!("keys/idp-b.pem")),
        ]
    })
}

struct Client {
    secret: String,
    redirect_uris: Vec<String>,
}

/// An authorization code waiting for the token endpoint.
struct Grant {
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    nonce: Option<String>,
    identity: Identity,
    sid: String,
    auth_time: u64,
    expires: Instant,
}

#[derive(Default)]
struct Tamper {
    claims: Map<String, Value>,
    kid: Option<String>,
    corrupt_signature: bool,
}

struct State {
    issuer: String,
    clients: HashMap<String, Client>,
    /// Keyed by the lowercased login hint; `None` is the default identity.
    identities: HashMap<Option<String>, Identity>,
    codes: HashMap<String, Grant>,
    /// Access token → userinfo claims.
    access_tokens: HashMap<String, Map<String, Value>>,
    /// Index into `key_material()` of the signing key.
    active_key: usize,
    /// Indices of the keys the JWKS publishes, in order.
    published: Vec<usize>,
    tamper: Option<Tamper>,
    jwks_fetches: usize,
    last_sid: HashMap<String, String>,
    iss_mode: IssMode,
    authorize_calls: Vec<String>,
    token_auth_methods: Vec<String>,
    end_session_calls: Vec<String>,
}

type Shared = Arc<Mutex<State>>;

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// The provider. Dropping it stops the server.
pub struct TestIdp {
    issuer: String,
    shared: Shared,
    http: reqwest::Client,
    handle: ServerHandle,
    task: JoinHandle<()>,
}

impl Drop for TestIdp {
    fn drop(&mut self) {
        // Sends the stop command; dropping the server future (abort) then
        // stops the acceptor and the worker.
        drop(self.handle.stop(false));
        self.task.abort();
    }
}

impl TestIdp {
    /// Starts on 127.0.0.1:0; issuer = "http://127.0.0.1:<port>".
    pub async fn start() -> TestIdp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind idp");
        let port = listener.local_addr().expect("idp address").port();
        let issuer = format!("http://127.0.0.1:{port}");
        let shared: Shared = Arc::new(Mutex::new(State {
            issuer: issuer.clone(),
            clients: HashMap::new(),
            identities: HashMap::new(),
            codes: HashMap::new(),
            access_tokens: HashMap::new(),
            active_key: 0,
            published: vec![0],
            tamper: None,
            jwks_fetches: 0,
            last_sid: HashMap::new(),
            iss_mode: IssMode::Correct,
            authorize_calls: Vec::new(),
            token_auth_methods: Vec::new(),
            end_session_calls: Vec::new(),
        }));
        let data = web::Data::new(shared.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route(
                    "/.well-known/openid-configuration",
                    web::get().to(discovery),
                )
                .route("/jwks", web::get().to(jwks))
                .route("/authorize", web::get().to(authorize_endpoint))
                .route("/token", web::post().to(token_endpoint))
                .route("/userinfo", web::get().to(userinfo))
                .route("/userinfo", web::post().to(userinfo))
                .route("/end_session", web::get().to(end_session_get))
                .route("/end_session", web::post().to(end_session_post))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("idp listens")
        .run();
        let handle = server.handle();
        let task = tokio::spawn(async move {
            let _ = server.await;
        });
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client");
        TestIdp {
            issuer,
            shared,
            http,
            handle,
            task,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.shared)
    }

    pub fn issuer(&self) -> String {
        self.issuer.clone()
    }

    /// The discovery document's URL.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }

    /// Registers a confidential client. Registering the same client id again
    /// replaces its secret and adds the redirect URI to those it has.
    pub fn add_client(&self, client_id: &str, client_secret: &str, redirect_uri: &str) {
        let mut st = self.state();
        let client = st
            .clients
            .entry(client_id.to_owned())
            .or_insert_with(|| Client {
                secret: String::new(),
                redirect_uris: Vec::new(),
            });
        client.secret = client_secret.to_owned();
        if !client.redirect_uris.iter().any(|u| u == redirect_uri) {
            client.redirect_uris.push(redirect_uri.to_owned());
        }
    }

    /// Who signs in when the authorization request's `login_hint` is this
    /// email (case-insensitive); `None` = the default identity, who signs
    /// in when there is no hint or no identity for it. Without either, the
    /// request is answered with `error=login_required`.
    pub fn add_identity(&self, login_hint: Option<&str>, identity: Identity) {
        self.state()
            .identities
            .insert(login_hint.map(str::to_lowercase), identity);
    }

    /// Overrides applied to the NEXT ID token the token endpoint issues
    /// (then cleared): each claim is set to the value given, or removed
    /// when the value is JSON null. `kid`, when given, goes in the header;
    /// when it names one of the two test keys (see [`TestIdp::kid_a`],
    /// [`TestIdp::kid_b`]) the token is signed with that key, otherwise
    /// with the current key. A second call before the token is issued
    /// replaces the claims and kid of the first.
    pub fn tamper_next_id_token(&self, claims: Map<String, Value>, kid: Option<&str>) {
        let mut st = self.state();
        let tamper = st.tamper.get_or_insert_with(Tamper::default);
        tamper.claims = claims;
        tamper.kid = kid.map(str::to_owned);
    }

    /// The next ID token the token endpoint issues gets a broken signature
    /// (right header and claims, one signature byte changed).
    pub fn corrupt_next_id_token_signature(&self) {
        self.state()
            .tamper
            .get_or_insert_with(Tamper::default)
            .corrupt_signature = true;
    }

    /// Switches the signing key to the other test key (A → B, or back), with
    /// a new kid; the JWKS then publishes only the new key, or the new and
    /// the old one when `keep_old`.
    pub fn rotate_keys(&self, keep_old: bool) {
        let mut st = self.state();
        let old = st.active_key;
        let new = 1 - old;
        st.active_key = new;
        st.published = if keep_old { vec![new, old] } else { vec![new] };
    }

    /// The kid of the key that signs now.
    pub fn current_kid(&self) -> String {
        key_material()[self.state().active_key].kid.to_owned()
    }

    /// The kid of test key A (the first signing key).
    pub fn kid_a() -> &'static str {
        key_material()[0].kid
    }

    /// The kid of test key B.
    pub fn kid_b() -> &'static str {
        key_material()[1].kid
    }

    /// How many times the JWKS endpoint was fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.state().jwks_fetches
    }

    /// A signed Back-Channel Logout token (typ "logout+jwt", current key):
    /// iss, aud = client_id, iat, exp (+2 min), a random jti, events
    /// {BACKCHANNEL_LOGOUT_EVENT: {}}, sub and/or sid; then `overrides`
    /// set claims, or remove them when the value is JSON null.
    pub fn logout_token(
        &self,
        client_id: &str,
        sub: Option<&str>,
        sid: Option<&str>,
        overrides: Map<String, Value>,
    ) -> String {
        let (issuer, key) = {
            let st = self.state();
            (st.issuer.clone(), st.active_key)
        };
        let now = now();
        let mut claims = Map::new();
        claims.insert("iss".into(), json!(issuer));
        claims.insert("aud".into(), json!(client_id));
        claims.insert("iat".into(), json!(now));
        claims.insert("exp".into(), json!(now + LOGOUT_TOKEN_LIFETIME));
        claims.insert("jti".into(), json!(random_token()));
        claims.insert("events".into(), json!({ BACKCHANNEL_LOGOUT_EVENT: {} }));
        if let Some(sub) = sub {
            claims.insert("sub".into(), json!(sub));
        }
        if let Some(sid) = sid {
            claims.insert("sid".into(), json!(sid));
        }
        apply_overrides(&mut claims, overrides);
        let material = &key_material()[key];
        sign(&claims, material, material.kid, Some("logout+jwt"))
    }

    /// Completes an authorization request without a browser: GETs the
    /// authorize URL and returns the redirect the provider sends back
    /// (redirect_uri?code=…&state=…&iss=…, or the error redirect). Panics
    /// when the provider answers with an error page instead (unknown client
    /// or redirect URI): see [`TestIdp::try_authorize`].
    pub async fn authorize(&self, authorize_url: &str) -> String {
        match self.try_authorize(authorize_url).await {
            Ok(location) => location,
            Err((status, body)) => {
                panic!("the IdP refused {authorize_url} with {status}: {body}")
            }
        }
    }

    /// Like [`TestIdp::authorize`], but an answer other than a redirect is
    /// returned as `Err((status, body))`.
    pub async fn try_authorize(&self, authorize_url: &str) -> Result<String, (u16, String)> {
        let response = self
            .http
            .get(authorize_url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {authorize_url}: {e}"));
        let status = response.status();
        if status == reqwest::StatusCode::FOUND {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .expect("a redirect has a Location")
                .to_str()
                .expect("Location is ASCII")
                .to_owned();
            Ok(location)
        } else {
            Err((status.as_u16(), response.text().await.unwrap_or_default()))
        }
    }

    /// The `sid` the provider put in the last ID token issued for `sub`
    /// (the identity's subject, whatever the token says after tampering).
    pub fn last_sid(&self, sub: &str) -> Option<String> {
        self.state().last_sid.get(sub).cloned()
    }

    /// What the authorization response says in its `iss` parameter (by
    /// default, the issuer).
    pub fn set_iss_parameter(&self, mode: IssMode) {
        self.state().iss_mode = mode;
    }

    /// The value sent as `iss` in `IssMode::Wrong`: the same server under
    /// another name ("http://localhost:<port>"), so only an exact
    /// comparison catches it.
    pub fn wrong_issuer(&self) -> String {
        wrong_issuer(&self.issuer)
    }

    /// Makes every authorization code issued so far expired.
    pub fn expire_codes(&self) {
        let past = Instant::now()
            .checked_sub(Duration::from_secs(1))
            .unwrap_or_else(Instant::now);
        for grant in self.state().codes.values_mut() {
            grant.expires = past;
        }
    }

    /// The full URLs of the authorization requests received, in order.
    pub fn authorize_calls(&self) -> Vec<String> {
        self.state().authorize_calls.clone()
    }

    /// For each token request with valid client credentials, in order:
    /// "client_secret_basic" or "client_secret_post".
    pub fn token_auth_methods(&self) -> Vec<String> {
        self.state().token_auth_methods.clone()
    }

    /// The full URLs of the end-session requests received (for a POST, the
    /// form body as query string), in order.
    pub fn end_session_calls(&self) -> Vec<String> {
        self.state().end_session_calls.clone()
    }
}

// ---------------------------------------------------------------------------
// Helpers

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

fn wrong_issuer(issuer: &str) -> String {
    issuer.replacen("127.0.0.1", "localhost", 1)
}

fn apply_overrides(claims: &mut Map<String, Value>, overrides: Map<String, Value>) {
    for (name, value) in overrides {
        if value.is_null() {
            claims.remove(&name);
        } else {
            claims.insert(name, value);
        }
    }
}

fn sign(claims: &Map<String, Value>, key: &KeyMaterial, kid: &str, typ: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    header.typ = typ.map(str::to_owned);
    let encoding = EncodingKey::from_rsa_pem(key.pem.as_bytes()).expect("test key");
    jsonwebtoken::encode(&header, claims, &encoding).expect("sign token")
}

fn corrupt_signature(token: &str) -> String {
    let (signed, signature) = token.rsplit_once('.').expect("a JWS has three parts");
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).expect("signature");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(bytes))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(status: actix_web::http::StatusCode, title: &str, text: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!doctype html><title>{0}</title><h1>{0}</h1><p>{1}</p>",
            html_escape(title),
            html_escape(text)
        ))
}

/// Decodes application/x-www-form-urlencoded parameters; `None` when
/// malformed or when a parameter appears twice. Empty values count as
/// absent (RFC 6749 §3.1).
fn parse_params(s: &str) -> Option<HashMap<String, String>> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(s).ok()?;
    let mut params = HashMap::new();
    for (name, value) in pairs {
        if params.contains_key(&name) {
            return None;
        }
        if !value.is_empty() {
            params.insert(name, value);
        }
    }
    Some(params)
}

/// Decodes one form-urlencoded component ('+' is a space).
fn form_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn is_pkce_string(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

// ---------------------------------------------------------------------------
// Endpoints

async fn discovery(shared: web::Data<Shared>) -> HttpResponse {
    let issuer = lock(&shared).issuer.clone();
    HttpResponse::Ok().json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "end_session_endpoint": format!("{issuer}/end_session"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            "iss", "sub", "aud", "azp", "exp", "iat", "auth_time", "nonce", "sid",
            "at_hash", "email", "email_verified", "name"
        ],
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "claims_parameter_supported": false,
        "frontchannel_logout_supported": false,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "authorization_response_iss_parameter_supported": true,
    }))
}

async fn jwks(shared: web::Data<Shared>) -> HttpResponse {
    let published = {
        let mut st = lock(&shared);
        st.jwks_fetches += 1;
        st.published.clone()
    };
    let keys: Vec<Value> = published
        .into_iter()
        .map(|i| {
            let k = &key_material()[i];
            json!({ "kty": "RSA", "use": "sig", "alg": "RS256", "kid": k.kid, "n": k.n, "e": k.e })
        })
        .collect();
    HttpResponse::Ok().json(json!({ "keys": keys }))
}

async fn authorize_endpoint(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    let mut st = lock(&shared);
    let full = format!("{}{}", st.issuer, req.uri());
    st.authorize_calls.push(full);
    authorize_response(&mut st, req.query_string())
}

fn authorize_response(st: &mut State, query: &str) -> HttpResponse {
    use actix_web::http::StatusCode;
    let bad = |text: &str| {
        page(
            StatusCode::BAD_REQUEST,
            "Invalid authorization request",
            text,
        )
    };
    let Some(params) = parse_params(query) else {
        return bad("malformed or repeated parameters");
    };
    let get = |name: &str| params.get(name).map(String::as_str);
    // Errors about the client or the redirect URI are shown, never redirected.
    let Some(client_id) = get("client_id") else {
        return bad("client_id is missing");
    };
    let Some(client) = st.clients.get(client_id) else {
        return bad("unknown client_id");
    };
    let Some(redirect_uri) = get("redirect_uri") else {
        return bad("redirect_uri is missing");
    };
    if !client.redirect_uris.iter().any(|u| u == redirect_uri) {
        return bad("redirect_uri is not registered for this client");
    }
    let Ok(mut target) = Url::parse(redirect_uri) else {
        return bad("redirect_uri is not a URL");
    };
    let iss = match st.iss_mode {
        IssMode::Correct => Some(st.issuer.clone()),
        IssMode::Omit => None,
        IssMode::Wrong => Some(wrong_issuer(&st.issuer)),
    };
    let state = get("state");
    let redirect = |target: &mut Url, pairs: &[(&str, &str)]| {
        {
            let mut q = target.query_pairs_mut();
            for (k, v) in pairs {
                q.append_pair(k, v);
            }
            if let Some(state) = state {
                q.append_pair("state", state);
            }
            if let Some(iss) = &iss {
                q.append_pair("iss", iss);
            }
        }
        HttpResponse::Found()
            .insert_header((header::LOCATION, target.as_str()))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish()
    };
    let error = |target: &mut Url, code: &str, description: &str| {
        redirect(
            target,
            &[("error", code), ("error_description", description)],
        )
    };

    if get("response_type") != Some("code") {
        return error(
            &mut target,
            "unsupported_response_type",
            "response_type must be code",
        );
    }
    if !get("scope").is_some_and(|s| s.split(' ').any(|s| s == "openid")) {
        return error(&mut target, "invalid_scope", "scope must contain openid");
    }
    if get("request").is_some() || get("request_uri").is_some() {
        return error(
            &mut target,
            "request_not_supported",
            "request objects are not supported",
        );
    }
    let Some(code_challenge) = get("code_challenge") else {
        return error(&mut target, "invalid_request", "code_challenge is required");
    };
    if get("code_challenge_method") != Some("S256") {
        return error(
            &mut target,
            "invalid_request",
            "code_challenge_method must be S256",
        );
    }
    if code_challenge.len() != 43 || URL_SAFE_NO_PAD.decode(code_challenge).is_err() {
        return error(
            &mut target,
            "invalid_request",
            "code_challenge is not a base64url SHA-256",
        );
    }
    let hint = get("login_hint").map(str::to_lowercase);
    let identity = st
        .identities
        .get(&hint)
        .or_else(|| st.identities.get(&None))
        .cloned();
    let Some(identity) = identity else {
        return error(&mut target, "login_required", "no identity to sign in");
    };
    let code = random_token();
    st.codes.insert(
        code.clone(),
        Grant {
            client_id: client_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            code_challenge: code_challenge.to_owned(),
            nonce: get("nonce").map(str::to_owned),
            identity,
            sid: random_token(),
            auth_time: now(),
            expires: Instant::now() + CODE_LIFETIME,
        },
    );
    redirect(&mut target, &[("code", &code)])
}

fn token_error(status: u16, code: &str, description: &str) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(status).expect("status");
    let mut response = HttpResponse::build(status);
    response
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"));
    if status == actix_web::http::StatusCode::UNAUTHORIZED {
        response.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"test-idp\""));
    }
    response.json(json!({ "error": code, "error_description": description }))
}

/// The client credentials in an Authorization: Basic header, each part
/// form-urldecoded (RFC 6749 §2.3.1). `Some(None)` for a malformed header.
fn basic_credentials(req: &HttpRequest) -> Option<Option<(String, String)>> {
    let value = req.headers().get(header::AUTHORIZATION)?;
    let parsed = (|| {
        let value = value.to_str().ok()?;
        let (scheme, encoded) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        Some((form_decode(id)?, form_decode(secret)?))
    })();
    Some(parsed)
}

async fn token_endpoint(
    req: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let form_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form_type {
        return token_error(400, "invalid_request", "the body must be a form");
    }
    let Some(params) = std::str::from_utf8(&body).ok().and_then(parse_params) else {
        return token_error(400, "invalid_request", "malformed or repeated parameters");
    };
    let get = |name: &str| params.get(name).map(String::as_str);

    let mut st = lock(&shared);
    // Client authentication: exactly one method.
    let (client_id, secret, method) = match basic_credentials(&req) {
        Some(_) if get("client_secret").is_some() => {
            return token_error(
                400,
                "invalid_request",
                "more than one client authentication",
            );
        }
        Some(None) => return token_error(401, "invalid_client", "malformed Basic credentials"),
        Some(Some((id, secret))) => {
            if get("client_id").is_some_and(|body_id| body_id != id) {
                return token_error(400, "invalid_request", "client_id differs from Basic");
            }
            (id, secret, "client_secret_basic")
        }
        None => match (get("client_id"), get("client_secret")) {
            (Some(id), Some(secret)) => (id.to_owned(), secret.to_owned(), "client_secret_post"),
            _ => return token_error(401, "invalid_client", "no client authentication"),
        },
    };
    if st
        .clients
        .get(&client_id)
        .is_none_or(|c| c.secret != secret)
    {
        return token_error(401, "invalid_client", "client authentication failed");
    }
    st.token_auth_methods.push(method.to_owned());

    if get("grant_type") != Some("authorization_code") {
        return token_error(400, "unsupported_grant_type", "only authorization_code");
    }
    let Some(code) = get("code") else {
        return token_error(400, "invalid_request", "code is missing");
    };
    // Single use: a code is gone once presented, whatever follows.
    let Some(grant) = st.codes.remove(code) else {
        return token_error(400, "invalid_grant", "unknown, used or expired code");
    };
    if Instant::now() >= grant.expires {
        return token_error(400, "invalid_grant", "the code has expired");
    }
    if grant.client_id != client_id {
        return token_error(
            400,
            "invalid_grant",
            "the code was issued to another client",
        );
    }
    if get("redirect_uri") != Some(grant.redirect_uri.as_str()) {
        return token_error(400, "invalid_grant", "redirect_uri does not match");
    }
    let Some(verifier) = get("code_verifier") else {
        return token_error(400, "invalid_grant", "code_verifier is missing");
    };
    if !is_pkce_string(verifier) {
        return token_error(400, "invalid_grant", "code_verifier is malformed");
    }
    if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != grant.code_challenge {
        return token_error(400, "invalid_grant", "PKCE verification failed");
    }

    let access_token = random_token();
    let now = now();
    let identity = &grant.identity;
    let mut profile = Map::new();
    profile.insert("sub".into(), json!(identity.sub));
    if let Some(email) = &identity.email {
        profile.insert("email".into(), json!(email));
    }
    if let Some(verified) = identity.email_verified {
        profile.insert("email_verified".into(), json!(verified));
    }
    if let Some(name) = &identity.name {
        profile.insert("name".into(), json!(name));
    }
    for (k, v) in &identity.extra {
        profile.insert(k.clone(), v.clone());
    }
    let digest = Sha256::digest(access_token.as_bytes());
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(st.issuer));
    claims.insert("sub".into(), json!(identity.sub));
    claims.insert("aud".into(), json!(client_id));
    claims.insert("azp".into(), json!(client_id));
    claims.insert("exp".into(), json!(now + TOKEN_LIFETIME));
    claims.insert("iat".into(), json!(now));
    claims.insert("auth_time".into(), json!(grant.auth_time));
    if let Some(nonce) = &grant.nonce {
        claims.insert("nonce".into(), json!(nonce));
    }
    claims.insert("sid".into(), json!(grant.sid));
    claims.insert(
        "at_hash".into(),
        json!(URL_SAFE_NO_PAD.encode(&digest[..16])),
    );
    for (k, v) in &profile {
        if k != "sub" {
            claims.insert(k.clone(), v.clone());
        }
    }
    let tamper = st.tamper.take().unwrap_or_default();
    apply_overrides(&mut claims, tamper.claims);
    let active = &key_material()[st.active_key];
    let (key, kid) = match tamper.kid.as_deref() {
        None => (active, active.kid),
        Some(kid) => (
            key_material()
                .iter()
                .find(|k| k.kid == kid)
                .unwrap_or(active),
            kid,
        ),
    };
    let mut id_token = sign(&claims, key, kid, Some("JWT"));
    if tamper.corrupt_signature {
        id_token = corrupt_signature(&id_token);
    }
    match claims.get("sid").and_then(Value::as_str) {
        Some(sid) => st.last_sid.insert(identity.sub.clone(), sid.to_owned()),
        None => st.last_sid.remove(&identity.sub),
    };
    st.access_tokens.insert(access_token.clone(), profile);

    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME,
            "scope": "openid email profile",
            "id_token": id_token,
        }))
}

async fn userinfo(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    let claims = token.and_then(|t| lock(&shared).access_tokens.get(&t).cloned());
    match claims {
        Some(claims) => HttpResponse::Ok().json(claims),
        None => HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\""))
            .finish(),
    }
}

fn signed_out() -> HttpResponse {
    page(
        actix_web::http::StatusCode::OK,
        "Signed out",
        "You are signed out of the test IdP.",
    )
}

async fn end_session_get(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    let mut st = lock(&shared);
    let full = format!("{}{}", st.issuer, req.uri());
    st.end_session_calls.push(full);
    signed_out()
}

async fn end_session_post(
    req: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let mut st = lock(&shared);
    let full = format!(
        "{}{}?{}",
        st.issuer,
        req.path(),
        String::from_utf8_lossy(&body)
    );
    st.end_session_calls.push(full);
    signed_out()
}
