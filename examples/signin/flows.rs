//! What a person does, request by request: registering from the invitation
//! link, signing in later from `/login`, and looking at `/account`. Each
//! step checks what the server answered and fails with the step's name; the
//! provider's part runs in this process ([`TestIdp::try_authorize`]).

use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::browser::Browser;
use crate::idp::TestIdp;

const SESSION_COOKIE: &str = "onramp_session";

/// Sends the browser to the provider's authorization URL and returns the
/// callback URL it redirects back to, with a code.
async fn at_provider(idp: &TestIdp, authorize_url: &str, step: &str) -> Result<String> {
    let back = idp
        .try_authorize(authorize_url)
        .await
        .map_err(|(status, body)| {
            anyhow::anyhow!("{step}: the provider answered {status}: {body}")
        })?;
    if !back.contains("code=") {
        bail!("{step}: the provider sent back no code: {back}");
    }
    Ok(back)
}

/// The invitation link → `/join` → "Continue" → the provider → the
/// callback → `/join/register` → the form sent → `/account` with a session.
/// Returns the session cookie.
pub async fn register(b: &mut Browser, idp: &TestIdp, link: &str, name: &str) -> Result<String> {
    let to = b
        .get(link)
        .await?
        .see_other("the invitation link")?
        .to_string();
    if to != "/join" {
        bail!("the invitation link led to {to}, not /join");
    }
    let csrf = b.get("/join").await?.csrf("the welcome page")?;
    let continued = b.post("/join/continue", &[("csrf", &csrf)]).await?;
    let authorize = continued.see_other("continue with SSO")?;
    let callback = at_provider(idp, authorize, "registration").await?;
    let back = b.get(&callback).await?;
    let to = back.see_other("the callback of a registration")?;
    if to != "/join/register" {
        bail!("the callback of a registration led to {to}, not /join/register");
    }
    let csrf = b
        .get("/join/register")
        .await?
        .csrf("the registration form")?;
    let done = b
        .post("/join/register", &[("csrf", &csrf), ("name", name)])
        .await?;
    let to = done.see_other("the registration form sent")?;
    if to != "/account" {
        bail!("the registration led to {to}, not /account");
    }
    b.cookie(SESSION_COOKIE)
        .map(str::to_owned)
        .context("the registration set no session cookie")
}

/// A completed later sign-in.
pub struct SignedIn {
    pub session: String,
    /// How long the callback request alone took, in microseconds.
    pub callback_us: u32,
}

/// The sign-in page: its CSRF value.
pub async fn login_page(b: &mut Browser) -> Result<String> {
    b.get("/login").await?.csrf("the sign-in page")
}

/// The sign-in form sent with the work email: the provider's authorization
/// URL the server sends the browser to.
pub async fn leave_for_provider(b: &mut Browser, csrf: &str, email: &str) -> Result<String> {
    let sent = b
        .post("/login", &[("csrf", csrf), ("email", email)])
        .await?;
    Ok(sent.see_other("the sign-in form sent")?.to_string())
}

/// `/login` → the form sent with the work email → the provider → the
/// callback → `/account` with a new session.
pub async fn sign_in(b: &mut Browser, idp: &TestIdp, email: &str) -> Result<SignedIn> {
    let csrf = login_page(b).await?;
    let authorize = leave_for_provider(b, &csrf, email).await?;
    let callback = at_provider(idp, &authorize, "sign-in").await?;
    let started = Instant::now();
    let back = b.get(&callback).await?;
    let callback_us = started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
    let to = back.see_other("the callback of a sign-in")?;
    if to != "/account" {
        bail!("the callback of a sign-in led to {to}, not /account");
    }
    let session = b
        .cookie(SESSION_COOKIE)
        .map(str::to_owned)
        .context("the sign-in set no session cookie")?;
    Ok(SignedIn {
        session,
        callback_us,
    })
}

/// The account page of `session` shows `email`.
pub async fn check_account(b: &mut Browser, session: &str, email: &str) -> Result<()> {
    b.set_cookie(SESSION_COOKIE, session);
    let page = b.get("/account").await?;
    if page.status != 200 || !page.body.contains(email) {
        bail!("/account of {email}'s session answered {}", page.status);
    }
    Ok(())
}
