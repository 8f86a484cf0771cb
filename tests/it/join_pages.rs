//! The pages a person reaches from an invitation, over HTTP: the token
//! leaves the URL for a cookie-bound session, each dead link says why, and
//! "can't find the email?" answers identically for known and unknown emails.

use onramp::secrets::token;
use onramp::store::invitations::InvitationStatus;
use onramp::store::outbox::OutboxStatus;
use onramp::store::{DynStore, Timestamp};
use reqwest::redirect::Policy;
use uuid::Uuid;

use crate::helpers::{Backend, TestApp, TestDb, spawn_app_on};
use crate::scim_crud::{entra_user, scim};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// A provisioned user's invitation and a link token for it (reissued, so the
/// test knows the token without reading mail).
async fn invited(app: &TestApp, email: &str) -> (Uuid, Uuid, String) {
    let (s, org) = scim(app, "Acme Corp").await;
    s.post("/Users", entra_user(email)).await;
    let mut inv = app
        .store
        .list_invitations(org, None, 10)
        .await
        .unwrap()
        .remove(0);
    // Stored under the plain hash, as links issued before time-ordered
    // keys were: such links keep working.
    let issued = token::issue("inv");
    inv.token_hash = Some(issued.hash);
    app.store.update_invitation(&inv).await.unwrap();
    (org, inv.id, issued.secret)
}

fn cookie_value(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers().get_all("set-cookie").iter().find_map(|v| {
        let v = v.to_str().ok()?;
        let (pair, _) = v.split_once(';').unwrap_or((v, ""));
        let (k, val) = pair.split_once('=')?;
        (k == name).then(|| val.to_string())
    })
}

async fn app() -> TestApp {
    spawn_app_on(TestDb::new(Backend::Sqlite).await, |c| {
        c.mail.outbox.enabled = false
    })
    .await
}

#[tokio::test]
async fn a_valid_link_becomes_a_session_cookie_and_a_welcome_page_without_the_token() {
    let app = app().await;
    let (_, _, tok) = invited(&app, "ann@acme.example").await;
    let c = client();
    let res = c
        .get(app.url(&format!("/join/{tok}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/join");
    assert_eq!(res.headers()["referrer-policy"], "no-referrer");
    let set = res.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("Path=/join"),
        "{set}"
    );
    let session = cookie_value(&res, "onramp_join").unwrap();
    assert!(!session.contains(&tok));
    let page = c
        .get(app.url("/join"))
        .header("cookie", format!("onramp_join={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("Acme Corp"), "{html}");
    assert!(
        html.contains("your organization&#x27;s administrator")
            || html.contains("your organization's administrator"),
        "{html}"
    );
    assert!(html.contains("expires on"), "{html}");
    assert!(html.contains("name=\"csrf\""));
    assert!(!html.contains(&tok), "the token never appears in the page");
    // Without the cookie the page asks to open the link again.
    let bare = c
        .get(app.url("/join"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        bare.contains("open the link in your invitation email again"),
        "{bare}"
    );
}

async fn set_status(
    store: &DynStore,
    org: Uuid,
    id: Uuid,
    status: InvitationStatus,
    expired: bool,
) {
    let mut inv = store.invitation_by_id(org, id).await.unwrap().unwrap();
    inv.status = status;
    if expired {
        inv.expires_at = Timestamp::from_micros(inv.created_at.micros() - 1);
    }
    store.update_invitation(&inv).await.unwrap();
}

#[tokio::test]
async fn expired_used_revoked_and_unknown_links_each_say_which() {
    let app = app().await;
    let c = client();
    let (org, id, tok) = invited(&app, "bo@acme.example").await;
    let get = |t: String| {
        let c = c.clone();
        let url = app.url(&format!("/join/{t}"));
        async move {
            let r = c.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    set_status(&app.store, org, id, InvitationStatus::Sent, true).await;
    let (st, html) = get(tok.clone()).await;
    assert_eq!(st, 410);
    assert!(
        html.contains("expired") && html.contains("/join/resend"),
        "{html}"
    );
    set_status(&app.store, org, id, InvitationStatus::Accepted, false).await;
    let (st, html) = get(tok.clone()).await;
    assert_eq!(st, 410);
    assert!(html.contains("already used"), "{html}");
    set_status(&app.store, org, id, InvitationStatus::Revoked, false).await;
    let (st, html) = get(tok.clone()).await;
    assert_eq!(st, 410);
    assert!(html.contains("no longer valid"), "{html}");
    let (st, html) = get(token::issue("inv").secret).await;
    assert_eq!(st, 404);
    assert!(html.contains("not valid"), "{html}");
    let (st, _) = get("<script>".into()).await;
    assert_eq!(st, 404);
}

async fn resend_request(app: &TestApp, c: &reqwest::Client, email: &str) -> (u16, String) {
    let form = c.get(app.url("/join/resend")).send().await.unwrap();
    let csrf = cookie_value(&form, "onramp_csrf").unwrap();
    let html = form.text().await.unwrap();
    assert!(html.contains(&format!("value=\"{csrf}\"")));
    let res = c
        .post(app.url("/join/resend"))
        .header("cookie", format!("onramp_csrf={csrf}"))
        .form(&[("csrf", csrf.as_str()), ("email", email)])
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn the_resend_page_answers_identically_for_known_and_unknown_emails() {
    let app = app().await;
    let c = client();
    let (org, id, _) = invited(&app, "cy@acme.example").await;
    let known = resend_request(&app, &c, "CY@acme.example").await;
    let unknown = resend_request(&app, &c, "nobody@acme.example").await;
    assert_eq!(known.0, 200);
    assert_eq!(known, unknown, "no enumeration");
    let mail = app.store.mail_for("invitation", id).await.unwrap();
    assert_eq!(mail.len(), 2, "a fresh link was queued for the known email");
    assert_eq!(mail[1].status, OutboxStatus::Queued);
    assert_eq!(
        app.store
            .invitation_by_id(org, id)
            .await
            .unwrap()
            .unwrap()
            .sends,
        2
    );
}

#[tokio::test]
async fn the_resend_form_needs_its_csrf_token_and_is_rate_limited() {
    let app = app().await;
    let c = client();
    let no_token = c
        .post(app.url("/join/resend"))
        .form(&[("email", "a@acme.example"), ("csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 403);
    let form = c.get(app.url("/join/resend")).send().await.unwrap();
    let csrf = cookie_value(&form, "onramp_csrf").unwrap();
    let wrong = c
        .post(app.url("/join/resend"))
        .header("cookie", format!("onramp_csrf={csrf}"))
        .form(&[
            ("csrf", token::issue("csrf").secret.as_str()),
            ("email", "a@acme.example"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 403);
    let mut statuses = Vec::new();
    for i in 0..12 {
        statuses.push(
            resend_request(&app, &c, &format!("r{i}@acme.example"))
                .await
                .0,
        );
    }
    assert!(statuses[..10].iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(statuses[11], 429, "{statuses:?}");
}
