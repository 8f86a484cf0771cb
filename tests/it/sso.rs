//! Registration and sign-in through an organization's OpenID provider, over
//! HTTP against the in-process test provider (`idp.rs`): the invitation's
//! "Continue" leaves for the provider (PKCE, state, nonce, login hint), the
//! callback's every check refuses what it must, the new path completes in
//! one transaction, sessions end on sign-out, deprovisioning and
//! back-channel logout, and later sign-ins find the account by identity.

use std::collections::HashMap;

use onramp::oidc::SetConnection;
use onramp::secrets::token;
use onramp::store::DynStore;
use onramp::store::accounts::{AccountKind, AccountRecord};
use onramp::store::invitations::InvitationStatus;
use onramp::tenancy::NewOrg;
use reqwest::Url;
use reqwest::redirect::Policy;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::helpers::{Backend, TestApp, TestDb, backends, spawn_app_on};
use crate::idp::{Identity, IssMode, TestIdp};
use crate::scim_crud::{Scim, entra_user};

/// The app's configured public URL: what the provider redirects back to.
pub const PUBLIC: &str = "http://127.0.0.1:8080";
const CLIENT_ID: &str = "onramp-acme";
const CLIENT_SECRET: &str = "s3cret: with spaces+/%";

/// What a request answered.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
    pub set_cookies: Vec<String>,
}

/// A browser without redirects: keeps cookies by name, sends them all to
/// the app, and sends what is addressed to the public URL to the app.
pub struct Browser<'a> {
    app: &'a TestApp,
    http: reqwest::Client,
    pub jar: HashMap<String, String>,
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Browser {
            app,
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            jar: HashMap::new(),
        }
    }

    fn to_app(&self, target: &str) -> String {
        if let Some(rest) = target.strip_prefix(PUBLIC) {
            self.app.url(rest)
        } else if target.starts_with('/') {
            self.app.url(target)
        } else {
            target.to_string()
        }
    }

    fn cookie_header(&self) -> String {
        self.jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn answer(&mut self, res: reqwest::Response) -> Answer {
        let status = res.status().as_u16();
        let location = res
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string());
        let set_cookies: Vec<String> = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        for c in &set_cookies {
            let pair = c.split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() || c.contains("Max-Age=0") {
                self.jar.remove(k);
            } else {
                self.jar.insert(k.to_string(), v.to_string());
            }
        }
        Answer {
            status,
            location,
            body: res.text().await.unwrap_or_default(),
            set_cookies,
        }
    }

    pub async fn get(&mut self, target: &str) -> Answer {
        let res = self
            .http
            .get(self.to_app(target))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.answer(res).await
    }

    pub async fn post(&mut self, target: &str, form: &[(&str, &str)]) -> Answer {
        let res = self
            .http
            .post(self.to_app(target))
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.answer(res).await
    }

    pub fn csrf(&self) -> String {
        self.jar.get("onramp_csrf").cloned().unwrap_or_default()
    }

    /// POSTs a form with the browser's CSRF value.
    pub async fn submit(&mut self, target: &str, fields: &[(&str, &str)]) -> Answer {
        let csrf = self.csrf();
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        self.post(target, &form).await
    }
}

/// An app, a provider, and an organization connected to it.
pub struct Fixture {
    pub app: TestApp,
    pub idp: TestIdp,
    pub org: Uuid,
    pub token: String,
}

impl Fixture {
    pub async fn new(backend: Backend) -> Fixture {
        Self::with(backend, "email", false).await
    }

    pub async fn with(backend: Backend, match_rule: &str, trust_email: bool) -> Fixture {
        let app = spawn_app_on(TestDb::new(backend).await, |c| {
            c.mail.outbox.enabled = false;
        })
        .await;
        let idp = TestIdp::start().await;
        idp.add_client(CLIENT_ID, CLIENT_SECRET, &format!("{PUBLIC}/sso/callback"));
        let org = app
            .tenancy
            .create_org(NewOrg {
                name: "Acme Corp".into(),
                domains: vec!["acme.example".into()],
            })
            .await
            .unwrap();
        let token = app
            .tenancy
            .create_scim_token(org.id, None)
            .await
            .unwrap()
            .token;
        app.services
            .sso
            .set_connection(
                org.id,
                SetConnection {
                    issuer: idp.issuer(),
                    client_id: CLIENT_ID.into(),
                    client_secret: CLIENT_SECRET.to_string().into(),
                    match_rule: match_rule.into(),
                    trust_email,
                    scopes: None,
                },
            )
            .await
            .unwrap();
        Fixture {
            app,
            idp,
            org: org.id,
            token,
        }
    }

    pub fn scim(&self) -> Scim<'_> {
        Scim {
            app: &self.app,
            token: self.token.clone(),
        }
    }

    pub fn store(&self) -> &DynStore {
        &self.app.store
    }

    /// Provisions `email` and returns the directory user's id, the
    /// invitation's id and a link token for it.
    pub async fn invite(&self, email: &str) -> (Uuid, Uuid, String) {
        let (status, user) = self.scim().post("/Users", entra_user(email)).await;
        assert_eq!(status, 201, "{user}");
        let user_id: Uuid = user["id"].as_str().unwrap().parse().unwrap();
        let mut inv = self
            .store()
            .invitations_of_user(self.org, user_id)
            .await
            .unwrap()
            .remove(0);
        let issued = token::issue("inv");
        inv.token_hash = Some(issued.hash);
        self.store().update_invitation(&inv).await.unwrap();
        (user_id, inv.id, issued.secret)
    }

    /// Opens the link, continues to the provider and returns the browser
    /// with the provider's redirect to the callback (not yet followed).
    pub async fn leave_for_provider(&self, b: &mut Browser<'_>, link: &str) -> String {
        let opened = b.get(&format!("/join/{link}")).await;
        assert_eq!(opened.status, 303, "{opened:?}");
        let welcome = b.get("/join").await;
        assert_eq!(welcome.status, 200, "{}", welcome.body);
        let go = b.submit("/join/continue", &[]).await;
        assert_eq!(go.status, 303, "{}", go.body);
        let authorize = go.location.unwrap();
        assert!(authorize.starts_with(&self.idp.issuer()), "{authorize}");
        authorize
    }

    /// Through the provider and back: the callback's answer.
    pub async fn sign_in_for(&self, b: &mut Browser<'_>, link: &str) -> Answer {
        let authorize = self.leave_for_provider(b, link).await;
        let callback = self.idp.authorize(&authorize).await;
        b.get(&callback).await
    }

    /// The whole new path for `email` signing in as `sub`; returns the
    /// account's id.
    pub async fn register(&self, b: &mut Browser<'_>, email: &str, sub: &str) -> Uuid {
        self.idp
            .add_identity(Some(email), Identity::verified(sub, email, "Pat Doe"));
        let (_, _, link) = self.invite(email).await;
        let back = self.sign_in_for(b, &link).await;
        assert_eq!(back.status, 303, "{}", back.body);
        assert_eq!(back.location.as_deref(), Some("/join/register"));
        let form = b.get("/join/register").await;
        assert_eq!(form.status, 200, "{}", form.body);
        let done = b.submit("/join/register", &[("name", "Pat Doe")]).await;
        assert_eq!(done.status, 303, "{}", done.body);
        assert_eq!(done.location.as_deref(), Some("/account"));
        self.store()
            .account_by_email(email)
            .await
            .unwrap()
            .expect("the account exists")
            .id
    }
}

pub fn claims(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test]
async fn the_new_path_ends_signed_in_with_the_account_bound_joined_and_the_invitation_accepted() {
    for backend in backends() {
        let fx = Fixture::new(backend).await;
        let mut b = Browser::new(&fx.app);
        let email = "Pat.Doe@acme.example";
        fx.idp.add_identity(
            Some(email),
            Identity::verified("sub-pat", "pat.doe@ACME.example", "Pat D."),
        );
        let (user_id, inv_id, link) = fx.invite(email).await;
        let authorize = fx.leave_for_provider(&mut b, &link).await;
        // The authorization request: code flow, PKCE S256, state, nonce,
        // the invited email as the hint, our fixed redirect URI.
        assert_eq!(query_param(&authorize, "response_type").unwrap(), "code");
        assert_eq!(
            query_param(&authorize, "code_challenge_method").unwrap(),
            "S256"
        );
        assert!(query_param(&authorize, "state").unwrap().len() >= 16);
        assert!(query_param(&authorize, "nonce").unwrap().len() >= 16);
        assert_eq!(query_param(&authorize, "login_hint").unwrap(), email);
        assert_eq!(
            query_param(&authorize, "redirect_uri").unwrap(),
            format!("{PUBLIC}/sso/callback")
        );
        let sso_cookie = b
            .jar
            .get("onramp_sso")
            .cloned()
            .expect("the sign-in is bound to the browser");
        assert!(!authorize.contains(&sso_cookie));
        let callback = fx.idp.authorize(&authorize).await;
        let back = b.get(&callback).await;
        assert_eq!(back.status, 303, "{backend:?}: {}", back.body);
        assert_eq!(back.location.as_deref(), Some("/join/register"));
        assert!(
            !b.jar.contains_key("onramp_sso"),
            "the sign-in cookie is spent"
        );

        let form = b.get("/join/register").await;
        assert_eq!(form.status, 200);
        assert!(
            form.body.contains("value=\"Barbara Jensen\""),
            "name from the directory: {}",
            form.body
        );
        assert!(
            !form.body.contains("type=\"password\""),
            "no passwords unless the org allows them"
        );
        let done = b.submit("/join/register", &[("name", "  Pat Doe  ")]).await;
        assert_eq!(done.status, 303, "{}", done.body);
        assert_eq!(done.location.as_deref(), Some("/account"));
        let session = done
            .set_cookies
            .iter()
            .find(|c| c.starts_with("onramp_session="))
            .expect("a session cookie");
        assert!(
            session.contains("HttpOnly")
                && session.contains("SameSite=Lax")
                && session.contains("Path=/"),
            "{session}"
        );
        assert!(
            !session.contains("Secure"),
            "not Secure on an http public URL"
        );

        let account = b.get("/account").await;
        assert_eq!(account.status, 200);
        assert!(
            account.body.contains("Pat Doe") && account.body.contains("Acme Corp"),
            "{}",
            account.body
        );
        assert!(
            account
                .body
                .contains(&fx.idp.issuer().replace('/', "&#x2f;")),
            "{}",
            account.body
        );

        let store = fx.store();
        let a = store
            .account_by_email("pat.doe@acme.example")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(a.kind, AccountKind::Business);
        assert_eq!(a.name, "Pat Doe");
        assert_eq!(a.email, email);
        assert!(a.password_hash.is_none());
        let m = store.membership(a.id).await.unwrap().unwrap();
        assert_eq!((m.org_id, m.user_id), (fx.org, Some(user_id)));
        assert_eq!(
            store
                .identity_account(&fx.idp.issuer(), "sub-pat")
                .await
                .unwrap()
                .map(|x| x.0),
            Some(a.id)
        );
        let inv = store
            .invitation_by_id(fx.org, inv_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(inv.status, InvitationStatus::Accepted);
        assert!(inv.accepted_at.is_some());
        assert!(
            store.registration(inv_id).await.unwrap().is_none(),
            "progress is gone"
        );
        let audit = store.audit_events(fx.org, 10).await.unwrap();
        assert!(
            audit
                .iter()
                .any(|e| e.action == "registration.completed" && e.account_id == Some(a.id)),
            "{audit:?}"
        );

        // The link now says it was used; the form cannot run twice.
        let mut other = Browser::new(&fx.app);
        let used = other.get(&format!("/join/{link}")).await;
        assert_eq!(used.status, 410, "{}", used.body);
        let again = b.submit("/join/register", &[("name", "Pat")]).await;
        assert_ne!(again.status, 303, "{}", again.body);
        assert_eq!(fx.app.db.count("SELECT COUNT(*) FROM accounts").await, 1);
    }
}

#[tokio::test]
async fn a_callback_with_a_wrong_replayed_or_foreign_state_is_refused() {
    let fx = Fixture::new(Backend::Sqlite).await;
    let email = "sam@acme.example";
    fx.idp
        .add_identity(Some(email), Identity::verified("sub-sam", email, "Sam"));
    let (_, inv_id, link) = fx.invite(email).await;
    let mut b = Browser::new(&fx.app);
    let authorize = fx.leave_for_provider(&mut b, &link).await;
    let callback = fx.idp.authorize(&authorize).await;

    // A state this server never issued.
    let state = query_param(&callback, "state").unwrap();
    let forged = callback.replace(&state, "forged-state-value-000000000000");
    let wrong = b.get(&forged).await;
    assert_eq!(wrong.status, 400, "{}", wrong.body);
    assert!(wrong.body.contains("expired"), "{}", wrong.body);

    // The right state from another browser (no sign-in cookie).
    let mut thief = Browser::new(&fx.app);
    let foreign = thief.get(&callback).await;
    assert_eq!(foreign.status, 400, "{}", foreign.body);
    // …which spent it: the state is single use, so the owner starts again.
    let spent = b.get(&callback).await;
    assert_eq!(spent.status, 400, "{}", spent.body);
    assert!(fx.store().registration(inv_id).await.unwrap().is_none());

    // A fresh sign-in works once; its replay is refused.
    let authorize = fx.leave_for_provider(&mut b, &link).await;
    let callback = fx.idp.authorize(&authorize).await;
    let jar = b.jar.clone();
    assert_eq!(b.get(&callback).await.status, 303);
    b.jar = jar; // the replay brings the old cookie back, too
    let replay = b.get(&callback).await;
    assert_eq!(replay.status, 400, "{}", replay.body);
}

#[tokio::test]
async fn id_tokens_with_a_wrong_nonce_audience_expiry_or_signature_are_refused() {
    let fx = Fixture::new(Backend::Sqlite).await;
    let email = "kim@acme.example";
    fx.idp
        .add_identity(Some(email), Identity::verified("sub-kim", email, "Kim"));
    let (_, inv_id, link) = fx.invite(email).await;
    let t = now();
    let cases: Vec<(&str, Map<String, Value>)> = vec![
        ("wrong nonce", claims(json!({"nonce": "not-the-nonce"}))),
        ("no nonce", claims(json!({"nonce": null}))),
        (
            "wrong audience",
            claims(json!({"aud": "someone-else", "azp": null})),
        ),
        (
            "another authorized party",
            claims(json!({"azp": "someone-else"})),
        ),
        (
            "several audiences, no azp",
            claims(json!({"aud": [CLIENT_ID, "other"], "azp": null})),
        ),
        ("expired", claims(json!({"exp": t - 600, "iat": t - 900}))),
        (
            "issued in the future",
            claims(json!({"iat": t + 3600, "exp": t + 7200})),
        ),
        (
            "another issuer",
            claims(json!({"iss": fx.idp.wrong_issuer()})),
        ),
    ];
    for (case, tamper) in cases {
        let mut b = Browser::new(&fx.app);
        fx.idp.tamper_next_id_token(tamper, None);
        let back = fx.sign_in_for(&mut b, &link).await;
        assert_eq!(back.status, 502, "{case}: {}", back.body);
        assert!(
            back.body.contains("sign-in did not work"),
            "{case}: {}",
            back.body
        );
        assert!(
            fx.store().registration(inv_id).await.unwrap().is_none(),
            "{case}"
        );
    }
    let mut b = Browser::new(&fx.app);
    fx.idp.corrupt_next_id_token_signature();
    let back = fx.sign_in_for(&mut b, &link).await;
    assert_eq!(back.status, 502, "bad signature: {}", back.body);
    // Signed by a key the provider does not publish.
    fx.idp
        .tamper_next_id_token(Map::new(), Some(TestIdp::kid_b()));
    let mut b = Browser::new(&fx.app);
    let back = fx.sign_in_for(&mut b, &link).await;
    assert_eq!(back.status, 502, "unpublished key: {}", back.body);
    // And the untampered sign-in still works.
    let mut b = Browser::new(&fx.app);
    assert_eq!(fx.sign_in_for(&mut b, &link).await.status, 303);
}

#[tokio::test]
async fn a_wrong_iss_parameter_is_refused_and_a_missing_one_is_accepted() {
    let fx = Fixture::new(Backend::Sqlite).await;
    let email = "lee@acme.example";
    fx.idp
        .add_identity(Some(email), Identity::verified("sub-lee", email, "Lee"));
    let (_, _, link) = fx.invite(email).await;
    fx.idp.set_iss_parameter(IssMode::Wrong);
    let mut b = Browser::new(&fx.app);
    let back = fx.sign_in_for(&mut b, &link).await;
    assert_eq!(back.status, 502, "{}", back.body);
    assert!(back.body.contains("another issuer"), "{}", back.body);
    fx.idp.set_iss_parameter(IssMode::Omit);
    let mut b = Browser::new(&fx.app);
    assert_eq!(fx.sign_in_for(&mut b, &link).await.status, 303);
}

#[tokio::test]
async fn an_unverified_or_other_email_never_matches_the_invitation() {
    let fx = Fixture::new(Backend::Sqlite).await;
    let email = "ada@acme.example";
    let (_, inv_id, link) = fx.invite(email).await;
    let cases = [
        (
            "unverified",
            Identity {
                email_verified: Some(false),
                ..Identity::verified("sub-1", email, "Ada")
            },
        ),
        (
            "no email_verified claim",
            Identity {
                email_verified: None,
                ..Identity::verified("sub-2", email, "Ada")
            },
        ),
        (
            "someone else's email",
            Identity::verified("sub-3", "eve@acme.example", "Eve"),
        ),
        ("no email", Identity::new("sub-4")),
    ];
    for (case, identity) in cases {
        fx.idp.add_identity(Some(email), identity);
        let mut b = Browser::new(&fx.app);
        let back = fx.sign_in_for(&mut b, &link).await;
        assert_eq!(back.status, 403, "{case}: {}", back.body);
        assert!(
            back.body.contains("not the invited person"),
            "{case}: {}",
            back.body
        );
        assert!(
            fx.store().registration(inv_id).await.unwrap().is_none(),
            "{case}"
        );
    }
    assert_eq!(fx.app.db.count("SELECT COUNT(*) FROM accounts").await, 0);
}

#[tokio::test]
async fn trust_email_accepts_a_provider_without_email_verified() {
    let fx = Fixture::with(Backend::Sqlite, "email", true).await;
    let email = "entra@acme.example";
    let (_, _, link) = fx.invite(email).await;
    fx.idp.add_identity(
        Some(email),
        Identity {
            email_verified: None,
            ..Identity::verified("entra-oid-sub", email, "Entra Person")
        },
    );
    let mut b = Browser::new(&fx.app);
    assert_eq!(fx.sign_in_for(&mut b, &link).await.status, 303);
    // An explicit "false" is still refused, trusted or not.
    let (_, _, link2) = fx.invite("entra2@acme.example").await;
    fx.idp.add_identity(
        Some("entra2@acme.example"),
        Identity {
            email_verified: Some(false),
            ..Identity::verified("entra-2", "entra2@acme.example", "E2")
        },
    );
    let mut b = Browser::new(&fx.app);
    assert_eq!(fx.sign_in_for(&mut b, &link2).await.status, 403);
}

#[tokio::test]
async fn a_stable_claim_can_match_a_scim_attribute_instead_of_the_email() {
    let fx = Fixture::with(Backend::Sqlite, "claim:oid=externalId", false).await;
    let email = "oid@acme.example";
    let (_, _, link) = fx.invite(email).await;
    // entra_user's externalId is "ext-<userName>"; the email is not verified.
    let mut id = Identity::new("sub-oid");
    id.email = Some("whatever@elsewhere.example".into());
    id.extra.insert("oid".into(), json!(format!("ext-{email}")));
    fx.idp.add_identity(Some(email), id);
    let mut b = Browser::new(&fx.app);
    let back = fx.sign_in_for(&mut b, &link).await;
    assert_eq!(back.status, 303, "{}", back.body);
    // Another person's oid does not match.
    let (_, _, link2) = fx.invite("oid2@acme.example").await;
    let mut id = Identity::new("sub-oid-2");
    id.extra.insert("oid".into(), json!("ext-oid@acme.example"));
    fx.idp.add_identity(Some("oid2@acme.example"), id);
    let mut b = Browser::new(&fx.app);
    assert_eq!(fx.sign_in_for(&mut b, &link2).await.status, 403);
}

#[tokio::test]
async fn an_identity_already_bound_to_an_account_cannot_register_again() {
    for backend in backends() {
        let fx = Fixture::new(backend).await;
        let mut b = Browser::new(&fx.app);
        fx.register(&mut b, "first@acme.example", "shared-sub")
            .await;
        // A second invitation, signed in with the same (iss, sub).
        let second = "second@acme.example";
        fx.idp.add_identity(
            Some(second),
            Identity::verified("shared-sub", second, "Two"),
        );
        let (_, _, link) = fx.invite(second).await;
        let mut b2 = Browser::new(&fx.app);
        let back = fx.sign_in_for(&mut b2, &link).await;
        assert_eq!(back.status, 409, "{backend:?}: {}", back.body);
        assert!(back.body.contains("already linked"), "{}", back.body);
        assert_eq!(fx.app.db.count("SELECT COUNT(*) FROM accounts").await, 1);
    }
}

#[tokio::test]
async fn two_browsers_finishing_one_invitation_make_one_account() {
    for backend in backends() {
        let fx = Fixture::new(backend).await;
        let email = "twice@acme.example";
        fx.idp
            .add_identity(Some(email), Identity::verified("sub-twice", email, "Twice"));
        let (_, _, link) = fx.invite(email).await;
        let mut one = Browser::new(&fx.app);
        let mut two = Browser::new(&fx.app);
        assert_eq!(fx.sign_in_for(&mut one, &link).await.status, 303);
        assert_eq!(fx.sign_in_for(&mut two, &link).await.status, 303);
        // The registration goes on where the last sign-in was; the first
        // browser is told so.
        let elsewhere = one.get("/join/register").await;
        assert_eq!(elsewhere.status, 409, "{}", elsewhere.body);
        assert!(
            elsewhere.body.contains("continues in another browser"),
            "{}",
            elsewhere.body
        );
        assert_eq!(two.get("/join/register").await.status, 200);
        // Two tabs of that browser send the form at once: one wins.
        let csrf = two.csrf();
        let f1 = [("csrf", csrf.as_str()), ("name", "One")];
        let f2 = [("csrf", csrf.as_str()), ("name", "Two")];
        let mut tab = Browser::new(&fx.app);
        tab.jar = two.jar.clone();
        let (a, b) = tokio::join!(
            two.post("/join/register", &f1),
            tab.post("/join/register", &f2)
        );
        let mut statuses = [a.status, b.status];
        statuses.sort();
        assert_eq!(statuses[0], 303, "{backend:?}: {a:?} {b:?}");
        assert!(
            [400, 409, 410].contains(&statuses[1]),
            "{backend:?}: {a:?} {b:?}"
        );
        let loser = if a.status == 303 { &b } else { &a };
        assert!(
            loser.body.contains("accepted meanwhile")
                || loser.body.contains("Sign in with your organization first")
                || loser.body.contains("no longer valid"),
            "a clear page: {}",
            loser.body
        );
        assert_eq!(fx.app.db.count("SELECT COUNT(*) FROM accounts").await, 1);
        assert_eq!(fx.app.db.count("SELECT COUNT(*) FROM memberships").await, 1);
        assert_eq!(
            fx.app.db.count("SELECT COUNT(*) FROM sso_identities").await,
            1
        );
    }
}

#[tokio::test]
async fn the_provider_rotating_its_keys_needs_no_restart() {
    let fx = Fixture::new(Backend::Sqlite).await;
    let mut b = Browser::new(&fx.app);
    fx.register(&mut b, "rot@acme.example", "sub-rot").await;
    let fetched = fx.idp.jwks_fetches();
    fx.idp.rotate_keys(false);
    // A later sign-in, its token signed with the new key.
    let mut b = Browser::new(&fx.app);
    let form = b.get("/login").await;
    assert_eq!(form.status, 200);
    let go = b.submit("/login", &[("email", "rot@acme.example")]).await;
    assert_eq!(go.status, 303, "{}", go.body);
    let callback = fx.idp.authorize(go.location.as_deref().unwrap()).await;
    let back = b.get(&callback).await;
    assert_eq!(back.status, 303, "{}", back.body);
    assert_eq!(back.location.as_deref(), Some("/account"));
    assert_eq!(fx.idp.jwks_fetches(), fetched + 1, "one refresh");
    // A token under an unknown kid makes no second fetch within the rate limit.
    fx.idp.tamper_next_id_token(Map::new(), Some("no-such-kid"));
    let go = b.submit("/login", &[("email", "rot@acme.example")]).await;
    let callback = fx.idp.authorize(go.location.as_deref().unwrap()).await;
    assert_eq!(b.get(&callback).await.status, 502);
    assert_eq!(fx.idp.jwks_fetches(), fetched + 1, "rate-limited refresh");
}

#[tokio::test]
async fn login_finds_the_organization_by_domain_and_signs_the_account_in() {
    let fx = Fixture::new(Backend::Sqlite).await;
    let mut b = Browser::new(&fx.app);
    let account = fx.register(&mut b, "back@acme.example", "sub-back").await;
    let mut b = Browser::new(&fx.app);
    assert_eq!(b.get("/account").await.location.as_deref(), Some("/login"));
    let form = b.get("/login").await;
    assert!(form.body.contains("name=\"csrf\""));
    let unknown = b
        .submit("/login", &[("email", "who@nowhere.example")])
        .await;
    assert_eq!(unknown.status, 200);
    assert!(
        unknown.body.contains("could not find your organization"),
        "{}",
        unknown.body
    );
    let no_csrf = b.post("/login", &[("email", "back@acme.example")]).await;
    assert_eq!(no_csrf.status, 403);
    let go = b.submit("/login", &[("email", "Back@ACME.example")]).await;
    assert_eq!(go.status, 303);
    let authorize = go.location.unwrap();
    assert_eq!(
        query_param(&authorize, "login_hint").unwrap(),
        "Back@ACME.example"
    );
    let callback = fx.idp.authorize(&authorize).await;
    let back = b.get(&callback).await;
    assert_eq!(back.location.as_deref(), Some("/account"), "{}", back.body);
    let page = b.get("/account").await;
    assert!(page.body.contains("back@acme.example"), "{}", page.body);
    let audit = fx.store().audit_events(fx.org, 10).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "session.signed_in" && e.account_id == Some(account))
    );

    // Someone with a valid identity at the provider but no account here.
    fx.idp.add_identity(
        Some("stranger@acme.example"),
        Identity::verified("sub-x", "stranger@acme.example", "X"),
    );
    let mut s = Browser::new(&fx.app);
    s.get("/login").await;
    let go = s
        .submit("/login", &[("email", "stranger@acme.example")])
        .await;
    let callback = fx.idp.authorize(go.location.as_deref().unwrap()).await;
    let refused = s.get(&callback).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(!s.jar.contains_key("onramp_session"));
}

#[tokio::test]
async fn a_person_the_directory_deactivates_is_signed_out_and_refused_until_reactivated() {
    for backend in backends() {
        let fx = Fixture::new(backend).await;
        let mut b = Browser::new(&fx.app);
        let email = "gone@acme.example";
        fx.register(&mut b, email, "sub-gone").await;
        assert_eq!(b.get("/account").await.status, 200);
        let user = fx
            .store()
            .membership(
                fx.store()
                    .account_by_email(email)
                    .await
                    .unwrap()
                    .unwrap()
                    .id,
            )
            .await
            .unwrap()
            .unwrap()
            .user_id
            .unwrap();
        let off = json!([{"op": "replace", "path": "active", "value": false}]);
        let (st, _) = fx.scim().patch(&format!("/Users/{user}"), off).await;
        assert_eq!(st, 200);
        let after = b.get("/account").await;
        assert_eq!(
            after.location.as_deref(),
            Some("/login"),
            "{backend:?}: the session ended at once"
        );
        assert_eq!(fx.app.db.count("SELECT COUNT(*) FROM sessions").await, 0);
        // A new sign-in is refused.
        let go = b.submit("/login", &[("email", email)]).await;
        let callback = fx.idp.authorize(go.location.as_deref().unwrap()).await;
        let refused = b.get(&callback).await;
        assert_eq!(refused.status, 403, "{}", refused.body);
        assert!(refused.body.contains("suspended"), "{}", refused.body);
        // Reactivated: allowed again.
        let on = json!([{"op": "replace", "path": "active", "value": true}]);
        assert_eq!(fx.scim().patch(&format!("/Users/{user}"), on).await.0, 200);
        let go = b.submit("/login", &[("email", email)]).await;
        let callback = fx.idp.authorize(go.location.as_deref().unwrap()).await;
        assert_eq!(b.get(&callback).await.location.as_deref(), Some("/account"));
        // Deleted from the directory: signed out and refused for good.
        assert_eq!(fx.scim().delete(&format!("/Users/{user}")).await, 204);
        assert_eq!(b.get("/account").await.location.as_deref(), Some("/login"));
        let go = b.submit("/login", &[("email", email)]).await;
        let callback = fx.idp.authorize(go.location.as_deref().unwrap()).await;
        assert_eq!(b.get(&callback).await.status, 403);
    }
}

#[tokio::test]
async fn logout_ends_the_session_and_continues_at_the_providers_end_session_endpoint() {
    let fx = Fixture::new(Backend::Sqlite).await;
    let mut b = Browser::new(&fx.app);
    fx.register(&mut b, "out@acme.example", "sub-out").await;
    let page = b.get("/account").await;
    assert!(page.body.contains("action=\"/logout\""));
    let forged = b.post("/logout", &[("csrf", "csrf_forged")]).await;
    assert_eq!(forged.status, 403);
    assert_eq!(
        b.get("/account").await.status,
        200,
        "a forged logout changes nothing"
    );
    let out = b.submit("/logout", &[]).await;
    assert_eq!(out.status, 303);
    let to = out.location.unwrap();
    assert!(to.starts_with(&fx.idp.issuer()), "{to}");
    assert_eq!(
        query_param(&to, "post_logout_redirect_uri").unwrap(),
        format!("{PUBLIC}/signed-out")
    );
    assert!(query_param(&to, "id_token_hint").is_some());
    assert!(!b.jar.contains_key("onramp_session"));
    assert_eq!(fx.app.db.count("SELECT COUNT(*) FROM sessions").await, 0);
    assert_eq!(b.get("/signed-out").await.status, 200);
}

#[tokio::test]
async fn backchannel_logout_ends_the_sessions_once_and_only_for_this_client() {
    for backend in backends() {
        let fx = Fixture::new(backend).await;
        let mut b = Browser::new(&fx.app);
        fx.register(&mut b, "bc@acme.example", "sub-bc").await;
        let sid = fx.idp.last_sid("sub-bc").unwrap();
        let http = reqwest::Client::new();
        let post = |token: String| {
            let http = http.clone();
            let url = fx.app.url("/sso/backchannel-logout");
            async move {
                let res = http
                    .post(url)
                    .form(&[("logout_token", token)])
                    .send()
                    .await
                    .unwrap();
                (
                    res.status().as_u16(),
                    res.headers()
                        .get("cache-control")
                        .map(|v| v.to_str().unwrap().to_string()),
                    res.text().await.unwrap(),
                )
            }
        };
        // Another client's token: refused, the session stays.
        let wrong_aud = fx
            .idp
            .logout_token("another-client", Some("sub-bc"), None, Map::new());
        let (st, _, body) = post(wrong_aud).await;
        assert_eq!(st, 400, "{body}");
        // Hostile shapes: a nonce, no events, neither sub nor sid, garbage.
        for (case, token) in [
            (
                "nonce",
                fx.idp.logout_token(
                    CLIENT_ID,
                    Some("sub-bc"),
                    None,
                    claims(json!({"nonce": "n"})),
                ),
            ),
            (
                "no events",
                fx.idp.logout_token(
                    CLIENT_ID,
                    Some("sub-bc"),
                    None,
                    claims(json!({"events": null})),
                ),
            ),
            (
                "no sub or sid",
                fx.idp.logout_token(CLIENT_ID, None, None, Map::new()),
            ),
            (
                "expired",
                fx.idp.logout_token(
                    CLIENT_ID,
                    Some("sub-bc"),
                    None,
                    claims(json!({"iat": now() - 3600, "exp": now() - 1800})),
                ),
            ),
            ("garbage", "a.b.c".to_string()),
            ("empty", String::new()),
        ] {
            let (st, _, body) = post(token).await;
            assert_eq!(st, 400, "{case}: {body}");
        }
        assert_eq!(
            b.get("/account").await.status,
            200,
            "{backend:?}: still signed in"
        );
        // The real one: 200, no-store, the session is gone.
        let token = fx
            .idp
            .logout_token(CLIENT_ID, Some("sub-bc"), Some(&sid), Map::new());
        let (st, cache, body) = post(token.clone()).await;
        assert_eq!(st, 200, "{body}");
        assert_eq!(cache.as_deref(), Some("no-store"));
        assert_eq!(b.get("/account").await.location.as_deref(), Some("/login"));
        // Replayed: refused.
        let (st, _, body) = post(token).await;
        assert_eq!(st, 400, "{body}");
        assert!(body.contains("already used"), "{body}");
    }
}

#[tokio::test]
async fn a_password_is_offered_and_hashed_only_where_the_organization_allows_it() {
    let fx = Fixture::new(Backend::Sqlite).await;
    fx.app
        .tenancy
        .update_settings(fx.org, |s| s.passwords_allowed = true)
        .await
        .unwrap();
    let email = "pw@acme.example";
    fx.idp
        .add_identity(Some(email), Identity::verified("sub-pw", email, "Pw"));
    let (_, _, link) = fx.invite(email).await;
    let mut b = Browser::new(&fx.app);
    assert_eq!(fx.sign_in_for(&mut b, &link).await.status, 303);
    let form = b.get("/join/register").await;
    assert!(form.body.contains("type=\"password\""), "{}", form.body);
    let differ = b
        .submit(
            "/join/register",
            &[
                ("name", "Pw"),
                ("password", "correct horse"),
                ("password_again", "correct horsf"),
            ],
        )
        .await;
    assert_eq!(differ.status, 400);
    assert!(differ.body.contains("differ"), "{}", differ.body);
    let short = b
        .submit(
            "/join/register",
            &[
                ("name", "Pw"),
                ("password", "short"),
                ("password_again", "short"),
            ],
        )
        .await;
    assert_eq!(short.status, 400, "{}", short.body);
    let empty_name = b.submit("/join/register", &[("name", "   ")]).await;
    assert_eq!(empty_name.status, 400);
    let done = b
        .submit(
            "/join/register",
            &[
                ("name", "Pw"),
                ("password", "correct horse"),
                ("password_again", "correct horse"),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let a: AccountRecord = fx.store().account_by_email(email).await.unwrap().unwrap();
    let hash = a.password_hash.unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains("correct horse"));
}

#[tokio::test]
async fn registration_steps_need_the_invitation_and_the_sign_in() {
    let fx = Fixture::new(Backend::Sqlite).await;
    let mut b = Browser::new(&fx.app);
    // No join session at all.
    b.get("/login").await; // a CSRF cookie
    let st = b.submit("/join/continue", &[]).await;
    assert_eq!(st.status, 400, "{}", st.body);
    let reg = b.get("/join/register").await;
    assert_eq!(reg.status, 400, "{}", reg.body);
    // A join session but no sign-in yet: the form sends back to /join.
    let email = "early@acme.example";
    let (_, _, link) = fx.invite(email).await;
    assert_eq!(b.get(&format!("/join/{link}")).await.status, 303);
    let reg = b.get("/join/register").await;
    assert_eq!(reg.location.as_deref(), Some("/join"), "{}", reg.body);
    let post = b.submit("/join/register", &[("name", "X")]).await;
    assert_eq!(post.status, 400, "{}", post.body);
    // An organization without a connection says so.
    let other = fx
        .app
        .tenancy
        .create_org(NewOrg {
            name: "NoSso".into(),
            domains: vec!["nosso.example".into()],
        })
        .await
        .unwrap();
    let token = fx
        .app
        .tenancy
        .create_scim_token(other.id, None)
        .await
        .unwrap()
        .token;
    let s = Scim {
        app: &fx.app,
        token,
    };
    let (_, u) = s.post("/Users", entra_user("x@nosso.example")).await;
    let uid: Uuid = u["id"].as_str().unwrap().parse().unwrap();
    let mut inv = fx
        .store()
        .invitations_of_user(other.id, uid)
        .await
        .unwrap()
        .remove(0);
    let issued = token::issue("inv");
    inv.token_hash = Some(issued.hash);
    fx.store().update_invitation(&inv).await.unwrap();
    let mut b = Browser::new(&fx.app);
    b.get(&format!("/join/{}", issued.secret)).await;
    b.get("/join").await;
    let go = b.submit("/join/continue", &[]).await;
    assert_eq!(go.status, 409, "{}", go.body);
    assert!(go.body.contains("not set up"), "{}", go.body);
}

#[tokio::test]
async fn provider_errors_come_back_as_pages_not_failures() {
    let fx = Fixture::new(Backend::Sqlite).await;
    let email = "err@acme.example";
    let (_, _, link) = fx.invite(email).await;
    // No identity for the hint and no default: the provider answers
    // error=login_required.
    let mut b = Browser::new(&fx.app);
    let back = fx.sign_in_for(&mut b, &link).await;
    assert_eq!(back.status, 502, "{}", back.body);
    assert!(back.body.contains("did not work"), "{}", back.body);
    assert!(!back.body.contains("<script"), "{}", back.body);
    // A callback with no parameters at all.
    let bare = b.get("/sso/callback").await;
    assert_eq!(bare.status, 400, "{}", bare.body);
    // An expired code (the provider refuses the exchange).
    fx.idp
        .add_identity(Some(email), Identity::verified("sub-err", email, "Err"));
    let authorize = fx.leave_for_provider(&mut b, &link).await;
    let callback = fx.idp.authorize(&authorize).await;
    fx.idp.expire_codes();
    let back = b.get(&callback).await;
    assert_eq!(back.status, 502, "{}", back.body);
}

#[tokio::test]
async fn sign_ins_are_rate_limited_per_client() {
    let app = spawn_app_on(TestDb::new(Backend::Sqlite).await, |c| {
        c.mail.outbox.enabled = false;
        c.security.sign_ins_per_client_per_minute = 3;
    })
    .await;
    let mut b = Browser::new(&app);
    b.get("/login").await;
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(
                b.submit("/login", &[("email", "x@nowhere.example")])
                    .await
                    .status,
            );
        }
        v
    };
    assert_eq!(statuses, [200, 200, 200, 429]);
}
