//! The pages of registration and sign-in: "Continue with SSO" from the
//! invitation (`/join/continue`), the provider's callback (`/sso/callback`),
//! the path's steps (`/join/register`, `/join/start-over`), later sign-ins
//! (`/login`), who is signed in (`/account`), signing out (`/logout`,
//! `/signed-out`), and the provider's back-channel logout
//! (`/sso/backchannel-logout`). Thin: extract, one use case, render.
//! Redirects go only to onramp's own paths or to the organization's
//! provider; every form carries a CSRF value.

use std::time::Duration;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Deserialize;
use uuid::Uuid;

use super::path_pages as steps;
use super::service::{RegistrationError, RegistrationService};
use crate::http::error::{ErrorFormat, internal, problem};
use crate::http::limits::{RateLimiter, client_key};
use crate::http::middleware::{guard_pages, guard_problems};
use crate::http::pages::{
    csrf_sent, form_expired, message, message_leading_to, page_opening_forms_to_providers,
    too_many_requests, with_csrf, with_page_headers,
};
use crate::invitations::InvitationService;
use crate::oidc::{CallbackQuery, SsoError, SsoService};
use crate::store::DynStore;

const SSO_COOKIE: &str = "onramp_sso";
const SESSION_COOKIE: &str = "onramp_session";
/// The invitation pages' join session.
pub(super) const JOIN_COOKIE: &str = "onramp_join";
/// Binds a registration in progress to the browser that signed in for it.
pub(super) const REGISTRATION_COOKIE: &str = "onramp_reg";

/// What the pages need.
#[derive(Clone)]
pub struct RegistrationPages {
    pub registration: RegistrationService,
    pub sso: SsoService,
    pub invitations: InvitationService,
    pub store: DynStore,
    /// The public URL is https: cookies are `Secure`.
    pub secure: bool,
    limits: std::sync::Arc<RateLimiter>,
}

impl RegistrationPages {
    pub fn new(
        registration: RegistrationService,
        sso: SsoService,
        invitations: InvitationService,
        store: DynStore,
        secure: bool,
        sign_ins_per_minute: u32,
    ) -> Self {
        RegistrationPages {
            registration,
            sso,
            invitations,
            store,
            secure,
            limits: std::sync::Arc::new(RateLimiter::new(
                sign_ins_per_minute,
                Duration::from_secs(60),
            )),
        }
    }
}

/// A failure on these pages: a page that says what went wrong and what to
/// do next.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("the form expired or was not sent from this site")]
    Forbidden,
    #[error("too many requests")]
    TooMany,
    #[error(transparent)]
    Registration(#[from] RegistrationError),
    #[error(transparent)]
    Sso(#[from] SsoError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }

    fn error_response(&self) -> HttpResponse {
        use RegistrationError as R;
        let again = "Open the link in your invitation email again to start over.";
        match self {
            PageError::Forbidden => form_expired(),
            PageError::TooMany => too_many_requests(),
            PageError::Registration(R::NoInvitation) => message(
                StatusCode::GONE,
                "This invitation is no longer valid",
                &[
                    "It expired, was withdrawn, or was already used. Ask your organization's administrator for a new one.",
                ],
                true,
            ),
            PageError::Registration(R::Mismatch(m)) => message(
                StatusCode::FORBIDDEN,
                "That sign-in is not the invited person",
                &[
                    &format!("We could not match your sign-in to this invitation: {m}."),
                    "Sign out of your organization's sign-in page, then open the link in your invitation email again and sign in as the invited person.",
                ],
                false,
            ),
            PageError::Registration(R::IdentityTaken) => message_leading_to(
                StatusCode::CONFLICT,
                "This sign-in is already linked to an account",
                &[
                    "Your organization sign-in is already linked to another account on the platform, so it cannot be used for this invitation. Sign in instead, or contact your organization's administrator.",
                ],
                "/login",
                "Sign in",
            ),
            PageError::Registration(R::AccountTaken) => message(
                StatusCode::CONFLICT,
                "An account with this email appeared meanwhile",
                &[again],
                false,
            ),
            PageError::Registration(R::AlreadyAccepted) => message_leading_to(
                StatusCode::CONFLICT,
                "This invitation was accepted meanwhile",
                &["The invitation was completed in another browser or window."],
                "/login",
                "Sign in",
            ),
            PageError::Registration(R::NotSignedIn) => message(
                StatusCode::BAD_REQUEST,
                "Sign in with your organization first",
                &[again],
                false,
            ),
            PageError::Registration(R::NotRegistered) => message(
                StatusCode::FORBIDDEN,
                "No account uses this sign-in yet",
                &[
                    "To join, open the link in the invitation email your organization sent you. If you cannot find it, ask for a new one.",
                ],
                true,
            ),
            PageError::Registration(R::Suspended) => message(
                StatusCode::FORBIDDEN,
                "Your access is suspended",
                &[
                    "Your organization has suspended your access. Contact your organization's administrator.",
                ],
                false,
            ),
            PageError::Registration(R::OutOfTurn) => message(
                StatusCode::CONFLICT,
                "This step is already done",
                &[
                    "It was done in another window, or is not due yet. Open /join/register to see where you are.",
                ],
                false,
            ),
            PageError::Registration(R::OtherBrowser) => message(
                StatusCode::CONFLICT,
                "This registration continues in another browser",
                &[
                    "You (or someone with your invitation link) signed in for it in another browser or window, and it goes on there. To continue here instead, open your invitation link again and sign in.",
                ],
                false,
            ),
            PageError::Registration(R::AccountChanged) => message(
                StatusCode::CONFLICT,
                "The account on your work email changed meanwhile",
                &[again],
                false,
            ),
            PageError::Registration(R::Invalid(why)) => message(
                StatusCode::BAD_REQUEST,
                "Please check what you entered",
                &[why, "Go back, correct it and submit again."],
                false,
            ),
            PageError::Sso(SsoError::StaleSignIn) => message(
                StatusCode::BAD_REQUEST,
                "This sign-in has expired",
                &[
                    "Sign-ins must be finished within ten minutes, in the browser that started them, and can be used once. Start again from your invitation link or from /login.",
                ],
                false,
            ),
            PageError::Sso(SsoError::NotConfigured) => message(
                StatusCode::CONFLICT,
                "Single sign-on is not set up yet",
                &[
                    "Your organization has not connected its sign-in to this platform yet. Contact your organization's administrator; your invitation stays valid.",
                ],
                false,
            ),
            PageError::Sso(
                e @ (SsoError::Provider(_) | SsoError::WrongIssuer(_) | SsoError::Oidc(_)),
            ) => {
                tracing::warn!(error = %e, "a sign-in failed");
                message(
                    StatusCode::BAD_GATEWAY,
                    "Your organization's sign-in did not work",
                    &[
                        &format!("{e}."),
                        "Try again in a moment. If it keeps failing, contact your organization's administrator.",
                    ],
                    false,
                )
            }
            PageError::Registration(R::Store(e)) | PageError::Store(e) => {
                crate::telemetry::log_internal(e);
                internal(ErrorFormat::Page)
            }
            PageError::Sso(e) => {
                crate::telemetry::log_internal(e);
                internal(ErrorFormat::Page)
            }
        }
    }
}

pub(super) type Page = Result<HttpResponse, PageError>;

/// The routes: registration's steps under `/join` (mount before the
/// invitation pages' `/join` scope, whose `/join/{token}` would take them),
/// the callback, sign-in, account, sign-out, and the back-channel logout.
pub fn configure(cfg: &mut web::ServiceConfig, pages: &RegistrationPages) {
    cfg.app_data(web::Data::new(pages.clone()));
    let page = |path: &str| web::resource(path.to_string()).wrap(from_fn(guard_pages));
    cfg.service(page("/join/continue").route(web::post().to(continue_sso)))
        .service(
            page("/join/register")
                .route(web::get().to(steps::register_form))
                .route(web::post().to(steps::register)),
        )
        .service(page("/join/start-over").route(web::post().to(steps::start_over)))
        .service(page("/join/prove-password").route(web::post().to(steps::prove_password)))
        .service(page("/join/send-code").route(web::post().to(steps::send_code)))
        .service(page("/join/code").route(web::post().to(steps::enter_code)))
        .service(page("/join/choose").route(web::post().to(steps::choose)))
        .service(page("/join/migrate").route(web::post().to(steps::migrate)))
        .service(page("/join/personal-email").route(web::post().to(steps::personal_email)))
        .service(page("/join/details").route(web::post().to(steps::details)))
        .service(page("/join/finish").route(web::post().to(steps::finish_separate)))
        .service(page("/join/deregister/start").route(web::post().to(steps::start_deregister)))
        .service(page("/join/deregister").route(web::post().to(steps::deregister)))
        .service(page("/join/orders.csv").route(web::get().to(steps::orders_csv)))
        .service(page("/sso/callback").route(web::get().to(callback)))
        .service(
            page("/login")
                .route(web::get().to(login_form))
                .route(web::post().to(login)),
        )
        .service(page("/account").route(web::get().to(account)))
        .service(page("/logout").route(web::post().to(logout)))
        .service(page("/signed-out").route(web::get().to(signed_out)));
    cfg.service(
        web::resource("/sso/backchannel-logout")
            .wrap(from_fn(guard_problems))
            .route(web::post().to(backchannel_logout)),
    );
}

pub(super) fn cookie<'a>(
    pages: &RegistrationPages,
    name: &'a str,
    value: String,
    path: &'a str,
    max_age: Duration,
    same_site: SameSite,
) -> Cookie<'a> {
    Cookie::build(name, value)
        .path(path)
        .http_only(true)
        .secure(pages.secure)
        .same_site(same_site)
        .max_age(actix_web::cookie::time::Duration::seconds(
            max_age.as_secs() as i64,
        ))
        .finish()
}

pub(super) fn expired<'a>(pages: &RegistrationPages, name: &'a str, path: &'a str) -> Cookie<'a> {
    cookie(
        pages,
        name,
        String::new(),
        path,
        Duration::ZERO,
        SameSite::Lax,
    )
}

pub(super) fn csrf_checked(req: &HttpRequest, form: Option<&str>) -> Result<(), PageError> {
    if csrf_sent(req, form) {
        Ok(())
    } else {
        Err(PageError::Forbidden)
    }
}

pub(super) fn see_other(location: &str) -> HttpResponse {
    with_page_headers(HttpResponse::SeeOther())
        .insert_header((LOCATION, location))
        .finish()
}

/// The invitation of the browser's join session.
pub(super) async fn joined(
    pages: &RegistrationPages,
    req: &HttpRequest,
) -> Result<(Uuid, Uuid), PageError> {
    let secret = req
        .cookie(JOIN_COOKIE)
        .ok_or(PageError::Registration(RegistrationError::NotSignedIn))?;
    pages
        .invitations
        .session_invitation(secret.value())
        .await
        .map_err(|e| match e {
            crate::invitations::InvitationError::Store(s) => PageError::Store(s),
            _ => PageError::Registration(RegistrationError::NoInvitation),
        })?
        .ok_or(PageError::Registration(RegistrationError::NoInvitation))
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: Option<String>,
}

/// "Continue with <org> SSO": off to the organization's provider, with the
/// invited email as the login hint.
async fn continue_sso(
    pages: web::Data<RegistrationPages>,
    req: HttpRequest,
    form: Option<web::Form<CsrfForm>>,
) -> Page {
    csrf_checked(&req, form.as_ref().and_then(|f| f.csrf.as_deref()))?;
    let (org_id, invitation) = joined(&pages, &req).await?;
    let email = pages
        .store
        .invitation_by_id(org_id, invitation)
        .await?
        .map(|i| i.email);
    let departure = pages
        .sso
        .depart(org_id, Some(invitation), email.as_deref())
        .await?;
    Ok(leave_for_provider(&pages, departure))
}

fn leave_for_provider(pages: &RegistrationPages, d: crate::oidc::Departure) -> HttpResponse {
    with_page_headers(HttpResponse::SeeOther())
        .cookie(cookie(
            pages,
            SSO_COOKIE,
            d.browser_secret,
            "/sso",
            Duration::from_secs(600),
            SameSite::Lax,
        ))
        .insert_header((LOCATION, d.url))
        .finish()
}

/// The provider's answer.
async fn callback(
    pages: web::Data<RegistrationPages>,
    req: HttpRequest,
    query: web::Query<CallbackQuery>,
) -> Page {
    let browser = req.cookie(SSO_COOKIE).map(|c| c.value().to_string());
    let arrival = pages.sso.arrive(&query, browser.as_deref()).await;
    // The sign-in's cookie is spent either way.
    let spent = expired(&pages, SSO_COOKIE, "/sso");
    let arrival = arrival?;
    let mut res = if arrival.invitation_id.is_some() {
        let arrived = pages.registration.arrive(&arrival).await?;
        let mut res = see_other("/join/register");
        let _ = res.add_cookie(&steps::registration_cookie(&pages, arrived.browser_secret));
        res
    } else {
        let session = pages.registration.sign_in(&arrival).await?;
        signed_in_response(&pages, session.secret, "/account")
    };
    let _ = res.add_cookie(&spent);
    Ok(res)
}

pub(super) fn signed_in_response(
    pages: &RegistrationPages,
    secret: String,
    to: &str,
) -> HttpResponse {
    let ttl = pages.registration.session_ttl().whole_seconds().max(0) as u64;
    with_page_headers(HttpResponse::SeeOther())
        .cookie(cookie(
            pages,
            SESSION_COOKIE,
            secret,
            "/",
            Duration::from_secs(ttl),
            SameSite::Lax,
        ))
        .insert_header((LOCATION, to.to_string()))
        .finish()
}

async fn login_form(pages: web::Data<RegistrationPages>, req: HttpRequest) -> HttpResponse {
    with_csrf(&req, pages.secure, |csrf| {
        page_opening_forms_to_providers(
            StatusCode::OK,
            "login.html",
            minijinja::context! { csrf, email => "" },
        )
    })
}

#[derive(Deserialize)]
struct LoginForm {
    csrf: Option<String>,
    email: Option<String>,
}

/// Home-realm discovery: the organization that owns the email's domain,
/// then straight to its provider.
async fn login(
    pages: web::Data<RegistrationPages>,
    req: HttpRequest,
    form: Option<web::Form<LoginForm>>,
) -> Page {
    let form = form.map(web::Form::into_inner);
    csrf_checked(&req, form.as_ref().and_then(|f| f.csrf.as_deref()))?;
    if !pages.limits.allow(&client_key(req.peer_addr())) {
        return Err(PageError::TooMany);
    }
    let email = form
        .and_then(|f| f.email)
        .unwrap_or_default()
        .trim()
        .to_string();
    let domain = email
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .filter(|d| crate::scim::mapping::is_email(&email) && !d.is_empty());
    let org = match domain {
        Some(d) => pages.store.org_by_domain(&d).await?,
        None => None,
    };
    let Some(org) = org else {
        return Ok(message(
            StatusCode::OK,
            "We could not find your organization",
            &[
                "No organization on this platform signs in with that email address. Check the address, or use the link in your invitation email.",
            ],
            false,
        ));
    };
    let departure = pages.sso.depart(org.id, None, Some(&email)).await?;
    Ok(leave_for_provider(&pages, departure))
}

async fn account(pages: web::Data<RegistrationPages>, req: HttpRequest) -> Page {
    let who = match req.cookie(SESSION_COOKIE) {
        Some(c) => pages.registration.signed_in(c.value()).await?,
        None => None,
    };
    let Some(who) = who else {
        return Ok(see_other("/login"));
    };
    // Its sign-out form ends at the provider's end-session endpoint.
    Ok(with_csrf(&req, pages.secure, |csrf| {
        page_opening_forms_to_providers(
            StatusCode::OK,
            "account.html",
            minijinja::context! { csrf, ..minijinja::Value::from_serialize(&who) },
        )
    }))
}

/// Ends the session here, then at the provider where it offers that.
async fn logout(
    pages: web::Data<RegistrationPages>,
    req: HttpRequest,
    form: Option<web::Form<CsrfForm>>,
) -> Page {
    csrf_checked(&req, form.as_ref().and_then(|f| f.csrf.as_deref()))?;
    let mut to = "/signed-out".to_string();
    if let Some(c) = req.cookie(SESSION_COOKIE) {
        if let Some(who) = pages.registration.signed_in(c.value()).await?
            && let Some(url) = pages
                .sso
                .logout_url(who.org_id, who.session.id_token.as_deref())
                .await
        {
            to = url;
        }
        pages.registration.sign_out(c.value()).await?;
    }
    let mut res = see_other(&to);
    let _ = res.add_cookie(&expired(&pages, SESSION_COOKIE, "/"));
    Ok(res)
}

async fn signed_out() -> HttpResponse {
    message_leading_to(
        StatusCode::OK,
        "You are signed out",
        &["You can close this window, or sign in again."],
        "/login",
        "Sign in",
    )
}

#[derive(Deserialize)]
struct LogoutTokenForm {
    logout_token: Option<String>,
}

/// OpenID Connect Back-Channel Logout 1.0 §2.8: 200 when the sessions are
/// ended, 400 with an error otherwise; never cached.
async fn backchannel_logout(
    pages: web::Data<RegistrationPages>,
    form: Option<web::Form<LogoutTokenForm>>,
) -> HttpResponse {
    let token = form
        .and_then(|f| f.into_inner().logout_token)
        .unwrap_or_default();
    let mut res = match pages.sso.backchannel_logout(&token).await {
        Ok(_) => HttpResponse::Ok().finish(),
        Err(SsoError::Store(e)) => {
            crate::telemetry::log_internal(&e);
            internal(ErrorFormat::Problem)
        }
        Err(e) => problem(StatusCode::BAD_REQUEST, "invalid_request", &e.to_string()),
    };
    res.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    res
}
