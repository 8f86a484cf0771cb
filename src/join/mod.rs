//! The pages a person reaches from an invitation: `/join/<token>` (the token
//! is swapped for a session cookie and leaves the URL), `/join` (welcome),
//! and `/join/resend` ("can't find the email?").

mod guard;
mod pages;

use std::time::Duration;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::http::AppState;
use crate::invitations::join::LinkState;
use guard::{CSRF_COOKIE, RateLimiter, csrf_ok, new_csrf};
use pages::{message, page, with_page_headers};

const SESSION_COOKIE: &str = "onramp_join";

/// Limits for `/join/resend`.
pub struct JoinLimits {
    per_client: RateLimiter,
    per_email: RateLimiter,
}

impl Default for JoinLimits {
    fn default() -> Self {
        JoinLimits {
            per_client: RateLimiter::new(10, Duration::from_secs(600)),
            per_email: RateLimiter::new(3, Duration::from_secs(3600)),
        }
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/join", web::get().to(welcome))
        .route("/join/continue", web::post().to(continue_sso))
        .route("/join/resend", web::get().to(resend_form))
        .route("/join/resend", web::post().to(resend))
        .route("/join/{token}", web::get().to(open_link));
}

fn secure(state: &AppState) -> bool {
    state
        .config
        .http
        .public_url
        .as_str()
        .starts_with("https://")
}

fn cookie<'a>(
    state: &AppState,
    name: &'a str,
    value: String,
    max_age: Duration,
    same_site: SameSite,
) -> Cookie<'a> {
    Cookie::build(name, value)
        .path("/join")
        .http_only(true)
        .secure(secure(state))
        .same_site(same_site)
        .max_age(actix_web::cookie::time::Duration::seconds(
            max_age.as_secs() as i64,
        ))
        .finish()
}

fn internal_error() -> HttpResponse {
    message(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong on our side",
        &["Please try again in a few minutes."],
        false,
    )
}

async fn open_link(state: web::Data<AppState>, token: web::Path<String>) -> HttpResponse {
    let link_state = match state.invitations.open_link(&token).await {
        Ok(s) => s,
        Err(e) => {
            crate::telemetry::log_internal(&e);
            return internal_error();
        }
    };
    match link_state {
        LinkState::Valid { session } => with_page_headers(HttpResponse::SeeOther())
            .cookie(cookie(
                &state,
                SESSION_COOKIE,
                session,
                Duration::from_secs(3600),
                SameSite::Lax,
            ))
            .insert_header((LOCATION, "/join"))
            .finish(),
        LinkState::Expired(v) => message(
            StatusCode::GONE,
            "This invitation has expired",
            &[
                &format!(
                    "Your invitation to join {} expired on {}.",
                    v.org_name, v.expires_at
                ),
                "You can get a new link sent to your work email.",
            ],
            true,
        ),
        LinkState::Used(v) => message(
            StatusCode::GONE,
            "This invitation was already used",
            &[&format!(
                "This invitation to join {} has been accepted. Sign in to the platform with {}'s single sign-on.",
                v.org_name, v.org_name
            )],
            false,
        ),
        LinkState::Revoked(v) => message(
            StatusCode::GONE,
            "This invitation is no longer valid",
            &[
                &format!("Your invitation to join {} was withdrawn.", v.org_name),
                &format!(
                    "If you think this is a mistake, contact {}.",
                    v.contact.as_deref().unwrap_or(&v.inviter)
                ),
            ],
            false,
        ),
        LinkState::Unknown => message(
            StatusCode::NOT_FOUND,
            "This invitation link is not valid",
            &[
                "The link may be incomplete, or it was replaced by a newer invitation. Use the newest email you received, or get a new link.",
            ],
            true,
        ),
    }
}

async fn welcome(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let view = match req.cookie(SESSION_COOKIE) {
        Some(c) => state.invitations.session_view(c.value()).await,
        None => Ok(None),
    };
    match view {
        Ok(Some(v)) => {
            let csrf = new_csrf();
            let mut res = page(
                StatusCode::OK,
                "welcome.html",
                minijinja::context! { csrf => &csrf, ..minijinja::Value::from_serialize(&v) },
            );
            let _ = res.add_cookie(&cookie(
                &state,
                CSRF_COOKIE,
                csrf,
                Duration::from_secs(3600),
                SameSite::Strict,
            ));
            res
        }
        Ok(None) => message(
            StatusCode::OK,
            "Open your invitation link",
            &[
                "To continue, open the link in your invitation email again. Links work for a limited time, and only in the browser where you opened them.",
            ],
            true,
        ),
        Err(e) => {
            crate::telemetry::log_internal(&e);
            internal_error()
        }
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn continue_sso(req: HttpRequest, form: Option<web::Form<CsrfForm>>) -> HttpResponse {
    let cookie = req.cookie(CSRF_COOKIE);
    if !form.is_some_and(|f| csrf_ok(cookie.as_ref().map(|c| c.value()), &f.csrf)) {
        return forbidden();
    }
    message(
        StatusCode::OK,
        "Single sign-on comes next",
        &[
            "Signing in with your organization's single sign-on is not yet available on this server. Your invitation stays valid; please come back to this link later.",
        ],
        false,
    )
}

fn forbidden() -> HttpResponse {
    message(
        StatusCode::FORBIDDEN,
        "Please try again",
        &["This form expired or was not sent from this site. Reload the page and submit it again."],
        false,
    )
}

async fn resend_form(state: web::Data<AppState>) -> HttpResponse {
    let csrf = new_csrf();
    let mut res = page(
        StatusCode::OK,
        "resend.html",
        minijinja::context! { csrf => &csrf, done => false },
    );
    let _ = res.add_cookie(&cookie(
        &state,
        CSRF_COOKIE,
        csrf,
        Duration::from_secs(3600),
        SameSite::Strict,
    ));
    res
}

#[derive(Deserialize)]
struct ResendForm {
    csrf: String,
    email: String,
}

async fn resend(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: Option<web::Form<ResendForm>>,
) -> HttpResponse {
    let cookie = req.cookie(CSRF_COOKIE);
    let Some(form) = form.filter(|f| csrf_ok(cookie.as_ref().map(|c| c.value()), &f.csrf)) else {
        return forbidden();
    };
    let limits = &state.join_limits;
    let client = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    if !limits.per_client.allow(&client) {
        return message(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests",
            &["Please wait a few minutes and try again."],
            false,
        );
    }
    // Over the per-email limit, the answer is the same, but nothing is sent.
    let email = form.email.trim().to_lowercase();
    if limits.per_email.allow(&email)
        && let Err(e) = state.invitations.resend_by_email(&email).await
    {
        crate::telemetry::log_internal(&e);
    }
    page(
        StatusCode::OK,
        "resend.html",
        minijinja::context! { done => true },
    )
}
