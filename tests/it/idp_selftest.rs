//! The test identity provider (`idp.rs`) on its own, driven by plain HTTP:
//! what it advertises, the code flow with PKCE, its refusals, and the knobs
//! tests use to make it misbehave.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::{StatusCode, Url};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::idp::{BACKCHANNEL_LOGOUT_EVENT, Identity, IssMode, TestIdp};

const CLIENT: &str = "onramp-test";
/// Characters that must be form-urlencoded in a Basic header.
const SECRET: &str = "s3cr:t +/%é";
const REDIRECT: &str = "http://127.0.0.1:9/sso/callback";

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// A provider with the test client, a default identity and one for a hint.
async fn idp() -> TestIdp {
    let idp = TestIdp::start().await;
    idp.add_client(CLIENT, SECRET, REDIRECT);
    idp.add_identity(None, Identity::new("default-sub"));
    let mut ada = Identity::verified("ada-sub", "ada@example.com", "Ada Lovelace");
    ada.extra
        .insert("oid".into(), json!("00000000-0000-0000-0000-00000000ada0"));
    idp.add_identity(Some("Ada@Example.com"), ada);
    idp
}

struct Pkce {
    verifier: String,
    challenge: String,
}

fn pkce() -> Pkce {
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    Pkce {
        verifier,
        challenge,
    }
}

/// An authorization URL; `extra` adds parameters or, with "", drops one.
fn authorize_url(idp: &TestIdp, pkce: &Pkce, extra: &[(&str, &str)]) -> String {
    let mut params: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", CLIENT),
        ("redirect_uri", REDIRECT),
        ("scope", "openid email profile"),
        ("state", "st-123"),
        ("nonce", "n-456"),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
    ];
    for (k, v) in extra {
        params.retain(|(name, _)| name != k);
        if !v.is_empty() {
            params.push((k, v));
        }
    }
    Url::parse_with_params(&format!("{}/authorize", idp.issuer()), &params)
        .expect("url")
        .to_string()
}

fn query(url: &str) -> HashMap<String, String> {
    Url::parse(url)
        .expect("redirect is a URL")
        .query_pairs()
        .into_owned()
        .collect()
}

enum Auth<'a> {
    Basic(&'a str, &'a str),
    Post(&'a str, &'a str),
}

fn form_encode(s: &str) -> String {
    serde_urlencoded::to_string([("x", s)]).expect("encode")[2..].to_owned()
}

async fn token_request(
    idp: &TestIdp,
    auth: Auth<'_>,
    params: &[(&str, &str)],
) -> reqwest::Response {
    let mut form: Vec<(&str, &str)> = params.to_vec();
    let mut request = http().post(format!("{}/token", idp.issuer()));
    match auth {
        Auth::Basic(id, secret) => {
            let credentials = format!("{}:{}", form_encode(id), form_encode(secret));
            request = request.header(
                "authorization",
                format!("Basic {}", STANDARD.encode(credentials)),
            );
        }
        Auth::Post(id, secret) => {
            form.push(("client_id", id));
            form.push(("client_secret", secret));
        }
    }
    request.form(&form).send().await.expect("token request")
}

async fn redeem(idp: &TestIdp, auth: Auth<'_>, code: &str, verifier: &str) -> reqwest::Response {
    token_request(
        idp,
        auth,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await
}

/// Runs the flow up to the code; returns the code and the PKCE verifier.
async fn code_for(idp: &TestIdp, extra: &[(&str, &str)]) -> (String, String) {
    let pkce = pkce();
    let location = idp.authorize(&authorize_url(idp, &pkce, extra)).await;
    let code = query(&location)
        .remove("code")
        .unwrap_or_else(|| panic!("no code in {location}"));
    (code, pkce.verifier)
}

/// A full flow; returns the ID token.
async fn id_token(idp: &TestIdp, extra: &[(&str, &str)]) -> String {
    let (code, verifier) = code_for(idp, extra).await;
    let response = redeem(idp, Auth::Basic(CLIENT, SECRET), &code, &verifier).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    body["id_token"].as_str().expect("id_token").to_owned()
}

async fn jwks(idp: &TestIdp) -> JwkSet {
    http()
        .get(format!("{}/jwks", idp.issuer()))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("jwks json")
}

fn kids(set: &JwkSet) -> Vec<String> {
    set.keys
        .iter()
        .map(|k| k.common.key_id.clone().expect("kid"))
        .collect()
}

/// Verifies a token's signature with the provider's JWKS, and its iss, aud
/// and exp; returns the claims.
async fn verify(idp: &TestIdp, token: &str, audience: &str) -> Result<Map<String, Value>, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("no kid")?;
    let set = jwks(idp).await;
    let jwk = set
        .find(&kid)
        .ok_or_else(|| format!("kid {kid} not in the JWKS"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[idp.issuer()]);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    validation.leeway = 0;
    jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| e.to_string())
}

/// The claims without checking anything.
fn claims(token: &str) -> Map<String, Value> {
    let payload = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64")).expect("json")
}

#[tokio::test]
async fn discovery_advertises_the_endpoints_and_capabilities() {
    let idp = idp().await;
    let issuer = idp.issuer();
    assert!(issuer.starts_with("http://127.0.0.1:"));
    let doc: Value = http()
        .get(idp.discovery_url())
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("json");
    assert_eq!(doc["issuer"], json!(issuer));
    assert_eq!(
        doc["authorization_endpoint"],
        json!(format!("{issuer}/authorize"))
    );
    assert_eq!(doc["token_endpoint"], json!(format!("{issuer}/token")));
    assert_eq!(doc["jwks_uri"], json!(format!("{issuer}/jwks")));
    assert_eq!(
        doc["end_session_endpoint"],
        json!(format!("{issuer}/end_session"))
    );
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    assert_eq!(doc["subject_types_supported"], json!(["public"]));
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["RS256"])
    );
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post"])
    );
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(doc["backchannel_logout_supported"], json!(true));
    assert_eq!(doc["backchannel_logout_session_supported"], json!(true));
    assert_eq!(
        doc["authorization_response_iss_parameter_supported"],
        json!(true)
    );
    for claim in ["sub", "email", "email_verified", "name", "sid"] {
        assert!(
            doc["claims_supported"]
                .as_array()
                .unwrap()
                .contains(&json!(claim)),
            "{claim}"
        );
    }

    let set = jwks(&idp).await;
    assert_eq!(kids(&set), vec![TestIdp::kid_a().to_owned()]);
    let raw: Value = http()
        .get(format!("{issuer}/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &raw["keys"][0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["e"], "AQAB");
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(key["n"].as_str().unwrap())
            .unwrap()
            .len(),
        256
    );
    assert_eq!(idp.jwks_fetches(), 2);
}

#[tokio::test]
async fn the_code_flow_with_pkce_issues_a_verifiable_id_token() {
    let idp = idp().await;
    let pkce = pkce();
    let url = authorize_url(&idp, &pkce, &[("login_hint", "ADA@example.COM")]);
    let location = idp.authorize(&url).await;
    assert!(location.starts_with(&format!("{REDIRECT}?")), "{location}");
    let params = query(&location);
    assert_eq!(params["state"], "st-123");
    assert_eq!(params["iss"], idp.issuer());
    assert_eq!(idp.authorize_calls(), vec![url]);

    let response = redeem(
        &idp,
        Auth::Basic(CLIENT, SECRET),
        &params["code"],
        &pkce.verifier,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_u64().unwrap() > 0);
    let access_token = body["access_token"].as_str().unwrap();
    let id_token = body["id_token"].as_str().unwrap();

    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.kid.as_deref(), Some(TestIdp::kid_a()));
    let c = verify(&idp, id_token, CLIENT)
        .await
        .expect("the ID token verifies");
    assert_eq!(c["iss"], json!(idp.issuer()));
    assert_eq!(c["aud"], json!(CLIENT));
    assert_eq!(c["azp"], json!(CLIENT));
    assert_eq!(c["sub"], "ada-sub");
    assert_eq!(c["nonce"], "n-456");
    assert_eq!(c["email"], "ada@example.com");
    assert_eq!(c["email_verified"], json!(true));
    assert_eq!(c["name"], "Ada Lovelace");
    assert_eq!(c["oid"], "00000000-0000-0000-0000-00000000ada0");
    let sid = c["sid"].as_str().expect("sid");
    assert_eq!(idp.last_sid("ada-sub").as_deref(), Some(sid));
    let iat = c["iat"].as_u64().unwrap();
    assert_eq!(c["exp"].as_u64().unwrap(), iat + 300);
    assert!(c["auth_time"].as_u64().unwrap() <= iat);
    let digest = Sha256::digest(access_token.as_bytes());
    assert_eq!(c["at_hash"], json!(URL_SAFE_NO_PAD.encode(&digest[..16])));
    assert_eq!(idp.token_auth_methods(), vec!["client_secret_basic"]);

    let info: Value = http()
        .get(format!("{}/userinfo", idp.issuer()))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["sub"], "ada-sub");
    assert_eq!(info["email"], "ada@example.com");
}

#[tokio::test]
async fn client_secret_post_works_and_no_hint_signs_in_the_default_identity() {
    let idp = idp().await;
    let (code, verifier) = code_for(&idp, &[("nonce", "")]).await;
    let response = redeem(&idp, Auth::Post(CLIENT, SECRET), &code, &verifier).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let c = verify(&idp, body["id_token"].as_str().unwrap(), CLIENT)
        .await
        .unwrap();
    assert_eq!(c["sub"], "default-sub");
    assert!(!c.contains_key("nonce"), "no nonce was sent");
    assert!(!c.contains_key("email"));
    assert!(!c.contains_key("email_verified"));
    assert_eq!(idp.token_auth_methods(), vec!["client_secret_post"]);

    // An unknown hint falls back to the default identity too.
    let token = id_token(&idp, &[("login_hint", "nobody@example.com")]).await;
    assert_eq!(claims(&token)["sub"], "default-sub");
}

async fn assert_token_error(response: reqwest::Response, status: StatusCode, error: &str) {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.expect("error json");
    assert_eq!(body["error"], error, "{body}");
}

#[tokio::test]
async fn a_wrong_pkce_verifier_is_refused_and_the_code_is_spent() {
    let idp = idp().await;
    let (code, verifier) = code_for(&idp, &[]).await;
    let wrong = pkce().verifier;
    let response = redeem(&idp, Auth::Basic(CLIENT, SECRET), &code, &wrong).await;
    assert_token_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let response = redeem(&idp, Auth::Basic(CLIENT, SECRET), &code, &verifier).await;
    assert_token_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;

    // No verifier at all.
    let (code, _) = code_for(&idp, &[]).await;
    let response = token_request(
        &idp,
        Auth::Basic(CLIENT, SECRET),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_token_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
}

#[tokio::test]
async fn a_code_works_once_and_not_after_it_expires() {
    let idp = idp().await;
    let (code, verifier) = code_for(&idp, &[]).await;
    let first = redeem(&idp, Auth::Basic(CLIENT, SECRET), &code, &verifier).await;
    assert_eq!(first.status(), StatusCode::OK);
    let again = redeem(&idp, Auth::Basic(CLIENT, SECRET), &code, &verifier).await;
    assert_token_error(again, StatusCode::BAD_REQUEST, "invalid_grant").await;

    let (code, verifier) = code_for(&idp, &[]).await;
    idp.expire_codes();
    let late = redeem(&idp, Auth::Basic(CLIENT, SECRET), &code, &verifier).await;
    assert_token_error(late, StatusCode::BAD_REQUEST, "invalid_grant").await;
}

#[tokio::test]
async fn a_code_is_bound_to_its_client_and_redirect_uri() {
    let idp = idp().await;
    idp.add_client("other", "other-secret", REDIRECT);
    let (code, verifier) = code_for(&idp, &[]).await;
    let response = redeem(&idp, Auth::Basic("other", "other-secret"), &code, &verifier).await;
    assert_token_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;

    idp.add_client(CLIENT, SECRET, "http://127.0.0.1:9/other/callback");
    let (code, verifier) = code_for(&idp, &[]).await;
    let response = token_request(
        &idp,
        Auth::Basic(CLIENT, SECRET),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:9/other/callback"),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_token_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
}

#[tokio::test]
async fn wrong_client_credentials_are_refused() {
    let idp = idp().await;
    let (code, verifier) = code_for(&idp, &[]).await;
    for auth in [
        Auth::Basic(CLIENT, "wrong"),
        Auth::Post(CLIENT, "wrong"),
        Auth::Basic("nobody", SECRET),
    ] {
        let response = redeem(&idp, auth, &code, &verifier).await;
        assert_token_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
    }
    // Unencoded secret in the Basic header: "s3cr:t +/%é" does not decode.
    let response = http()
        .post(format!("{}/token", idp.issuer()))
        .basic_auth(CLIENT, Some(SECRET))
        .form(&[("grant_type", "authorization_code"), ("code", &code)])
        .send()
        .await
        .unwrap();
    assert_token_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
    // No credentials.
    let response = token_request(
        &idp,
        Auth::Post(CLIENT, ""),
        &[("grant_type", "authorization_code")],
    )
    .await;
    assert_token_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
    assert!(idp.token_auth_methods().is_empty());

    // The code survived the failed client authentications.
    let response = redeem(&idp, Auth::Basic(CLIENT, SECRET), &code, &verifier).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn bad_authorization_requests_get_a_page_or_an_error_redirect() {
    let idp = idp().await;
    let p = pkce();
    for extra in [
        [("redirect_uri", "http://127.0.0.1:9/sso/callback/")],
        [("redirect_uri", "")],
        [("client_id", "nobody")],
    ] {
        let url = authorize_url(&idp, &p, &extra);
        let (status, body) = idp.try_authorize(&url).await.expect_err("not a redirect");
        assert_eq!(status, 400, "{url}");
        assert!(body.contains("Invalid authorization request"), "{body}");
    }

    for (extra, error) in [
        (vec![("code_challenge", "")], "invalid_request"),
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("code_challenge_method", "")], "invalid_request"),
        (vec![("scope", "email profile")], "invalid_scope"),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
    ] {
        let location = idp.authorize(&authorize_url(&idp, &p, &extra)).await;
        assert!(location.starts_with(REDIRECT), "{location}");
        let params = query(&location);
        assert_eq!(params["error"], error, "{extra:?}");
        assert_eq!(params["state"], "st-123");
        assert_eq!(params["iss"], idp.issuer());
        assert!(!params.contains_key("code"));
    }

    // Without any identity to sign in.
    let empty = TestIdp::start().await;
    empty.add_client(CLIENT, SECRET, REDIRECT);
    let location = empty.authorize(&authorize_url(&empty, &p, &[])).await;
    assert_eq!(query(&location)["error"], "login_required");
}

#[tokio::test]
async fn the_iss_parameter_can_be_omitted_or_wrong() {
    let idp = idp().await;
    let p = pkce();
    idp.set_iss_parameter(IssMode::Omit);
    let params = query(&idp.authorize(&authorize_url(&idp, &p, &[])).await);
    assert!(params.contains_key("code"));
    assert!(!params.contains_key("iss"));

    idp.set_iss_parameter(IssMode::Wrong);
    let params = query(&idp.authorize(&authorize_url(&idp, &p, &[])).await);
    assert_eq!(params["iss"], idp.wrong_issuer());
    assert_ne!(idp.wrong_issuer(), idp.issuer());

    idp.set_iss_parameter(IssMode::Correct);
    let params = query(&idp.authorize(&authorize_url(&idp, &p, &[])).await);
    assert_eq!(params["iss"], idp.issuer());
}

#[tokio::test]
async fn tampering_changes_exactly_the_next_id_token() {
    let idp = idp().await;
    let mut overrides = Map::new();
    overrides.insert("aud".into(), json!("someone-else"));
    overrides.insert("exp".into(), json!(1_000_000_000));
    overrides.insert("email_verified".into(), Value::Null);
    overrides.insert("nonce".into(), json!("wrong-nonce"));
    idp.tamper_next_id_token(overrides, None);

    let token = id_token(&idp, &[("login_hint", "ada@example.com")]).await;
    let c = claims(&token);
    assert_eq!(c["aud"], "someone-else");
    assert_eq!(c["exp"], 1_000_000_000);
    assert_eq!(c["nonce"], "wrong-nonce");
    assert!(!c.contains_key("email_verified"));
    assert_eq!(c["email"], "ada@example.com", "untouched claims stay");
    assert!(verify(&idp, &token, CLIENT).await.is_err());

    let token = id_token(&idp, &[("login_hint", "ada@example.com")]).await;
    let c = verify(&idp, &token, CLIENT)
        .await
        .expect("the next one is normal");
    assert_eq!(c["aud"], json!(CLIENT));
    assert_eq!(c["nonce"], "n-456");
    assert_eq!(c["email_verified"], json!(true));

    // The sid reported is the one in the token.
    let mut overrides = Map::new();
    overrides.insert("sid".into(), json!("fixed-sid"));
    idp.tamper_next_id_token(overrides, None);
    id_token(&idp, &[("login_hint", "ada@example.com")]).await;
    assert_eq!(idp.last_sid("ada-sub").as_deref(), Some("fixed-sid"));
}

#[tokio::test]
async fn a_tampered_kid_picks_the_key_or_names_an_unknown_one() {
    let idp = idp().await;
    idp.tamper_next_id_token(Map::new(), Some("no-such-kid"));
    let token = id_token(&idp, &[]).await;
    assert_eq!(
        jsonwebtoken::decode_header(&token).unwrap().kid.as_deref(),
        Some("no-such-kid")
    );
    assert!(
        verify(&idp, &token, CLIENT)
            .await
            .unwrap_err()
            .contains("not in the JWKS")
    );

    // Signed with key B, which the JWKS does not publish yet.
    idp.tamper_next_id_token(Map::new(), Some(TestIdp::kid_b()));
    let token = id_token(&idp, &[]).await;
    assert_eq!(
        jsonwebtoken::decode_header(&token).unwrap().kid.as_deref(),
        Some(TestIdp::kid_b())
    );
    assert!(verify(&idp, &token, CLIENT).await.is_err());
    idp.rotate_keys(true);
    verify(&idp, &token, CLIENT)
        .await
        .expect("signed with key B");

    idp.corrupt_next_id_token_signature();
    let token = id_token(&idp, &[]).await;
    let error = verify(&idp, &token, CLIENT).await.unwrap_err();
    assert!(error.contains("InvalidSignature"), "{error}");
    verify(&idp, &id_token(&idp, &[]).await, CLIENT)
        .await
        .expect("the next one is normal");
}

#[tokio::test]
async fn rotating_keys_changes_the_jwks_and_the_next_tokens_kid() {
    let idp = idp().await;
    assert_eq!(idp.jwks_fetches(), 0);
    let before = id_token(&idp, &[]).await;
    assert_eq!(kids(&jwks(&idp).await), vec![TestIdp::kid_a()]);
    assert_eq!(idp.jwks_fetches(), 1);

    idp.rotate_keys(false);
    assert_eq!(idp.current_kid(), TestIdp::kid_b());
    assert_eq!(kids(&jwks(&idp).await), vec![TestIdp::kid_b()]);
    assert_eq!(idp.jwks_fetches(), 2);
    let after = id_token(&idp, &[]).await;
    assert_eq!(
        jsonwebtoken::decode_header(&after).unwrap().kid.as_deref(),
        Some(TestIdp::kid_b())
    );
    verify(&idp, &after, CLIENT)
        .await
        .expect("new key published");
    assert!(verify(&idp, &before, CLIENT).await.is_err(), "old key gone");
    assert_eq!(idp.jwks_fetches(), 4);

    idp.rotate_keys(true);
    assert_eq!(idp.current_kid(), TestIdp::kid_a());
    assert_eq!(
        kids(&jwks(&idp).await),
        vec![TestIdp::kid_a(), TestIdp::kid_b()]
    );
    verify(&idp, &before, CLIENT).await.expect("A is back");
    verify(&idp, &after, CLIENT).await.expect("B kept");
    assert_eq!(idp.jwks_fetches(), 7);
}

#[tokio::test]
async fn logout_tokens_verify_and_carry_the_event() {
    let idp = idp().await;
    let token = idp.logout_token(CLIENT, Some("ada-sub"), Some("sid-1"), Map::new());
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    assert_eq!(header.kid.as_deref(), Some(TestIdp::kid_a()));
    let c = verify(&idp, &token, CLIENT).await.expect("verifies");
    assert_eq!(c["iss"], json!(idp.issuer()));
    assert_eq!(c["aud"], json!(CLIENT));
    assert_eq!(c["sub"], "ada-sub");
    assert_eq!(c["sid"], "sid-1");
    assert_eq!(c["events"], json!({ BACKCHANNEL_LOGOUT_EVENT: {} }));
    assert_eq!(c["exp"].as_u64().unwrap(), c["iat"].as_u64().unwrap() + 120);
    assert!(!c.contains_key("nonce"));
    let jti = c["jti"].as_str().unwrap().to_owned();
    let other = claims(&idp.logout_token(CLIENT, Some("ada-sub"), None, Map::new()));
    assert_ne!(other["jti"], json!(jti), "jti is random");
    assert!(!other.contains_key("sid"));

    let mut overrides = Map::new();
    overrides.insert("events".into(), Value::Null);
    overrides.insert("jti".into(), json!("fixed"));
    overrides.insert("nonce".into(), json!("forbidden"));
    let c = claims(&idp.logout_token(CLIENT, None, Some("sid-2"), overrides));
    assert!(!c.contains_key("events"));
    assert!(!c.contains_key("sub"));
    assert_eq!(c["jti"], "fixed");
    assert_eq!(c["nonce"], "forbidden");
}

#[tokio::test]
async fn end_session_calls_are_recorded() {
    let idp = idp().await;
    let url = format!(
        "{}/end_session?id_token_hint=abc&post_logout_redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fbye&state=s1",
        idp.issuer()
    );
    let response = http().get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains("Signed out"));
    assert_eq!(idp.end_session_calls(), vec![url]);
}

#[tokio::test]
async fn dropping_the_provider_stops_it() {
    let idp = idp().await;
    let url = idp.discovery_url();
    assert!(http().get(&url).send().await.is_ok());
    drop(idp);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let client = http();
    loop {
        if client.get(&url).send().await.is_err() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still answering");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
