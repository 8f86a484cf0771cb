//! The pages a person reaches from an invitation: `/join/<token>` (the token
//! is swapped for a session cookie and leaves the URL), `/join` (welcome),
//! and `/join/resend` ("can't find the email?"); what follows the welcome
//! is registration's (`/join/continue`, mounted before this scope). Thin: extract, call the
//! use case in [`super::join`], render; errors leave as HTML pages.

use std::sync::Arc;
use std::time::Duration;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Deserialize;

use super::InvitationService;
use super::join::LinkState;
use super::service::InvitationError;
use crate::http::error::{ErrorFormat, internal};
use crate::http::limits::{RateLimiter, client_key};
use crate::http::middleware::guard_pages;
use crate::http::pages::{
    csrf_sent, form_expired, message, page, page_opening_forms_to_providers, too_many_requests,
    with_csrf, with_page_headers,
};

const SESSION_COOKIE: &str = "onramp_join";

/// What the pages need: the use cases, whether cookies are `Secure`, and
/// the rate limits of the public form.
#[derive(Clone)]
pub struct JoinPages {
    pub invitations: InvitationService,
    /// The public URL is https: cookies are `Secure`.
    pub secure: bool,
    limits: Arc<JoinLimits>,
}

impl JoinPages {
    pub fn new(invitations: InvitationService, secure: bool) -> Self {
        JoinPages {
            invitations,
            secure,
            limits: Arc::new(JoinLimits::default()),
        }
    }
}

/// Limits for `/join/resend`.
struct JoinLimits {
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

/// A failure on these pages: an HTML page that says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("the form expired or was not sent from this site")]
    Forbidden,
    #[error("too many requests")]
    TooMany,
    #[error(transparent)]
    Invitation(#[from] InvitationError),
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::Forbidden => StatusCode::FORBIDDEN,
            PageError::TooMany => StatusCode::TOO_MANY_REQUESTS,
            PageError::Invitation(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            PageError::Forbidden => form_expired(),
            PageError::TooMany => too_many_requests(),
            PageError::Invitation(e) => {
                crate::telemetry::log_internal(e);
                internal(ErrorFormat::Page)
            }
        }
    }
}

type Page = Result<HttpResponse, PageError>;

pub fn configure(cfg: &mut web::ServiceConfig, pages: &JoinPages) {
    cfg.app_data(web::Data::new(pages.clone())).service(
        web::scope("/join")
            .wrap(from_fn(guard_pages))
            .route("", web::get().to(welcome))
            .route("/resend", web::get().to(resend_form))
            .route("/resend", web::post().to(resend))
            .route("/{token}", web::get().to(open_link)),
    );
}

fn cookie<'a>(
    pages: &JoinPages,
    name: &'a str,
    value: String,
    max_age: Duration,
    same_site: SameSite,
) -> Cookie<'a> {
    Cookie::build(name, value)
        .path("/join")
        .http_only(true)
        .secure(pages.secure)
        .same_site(same_site)
        .max_age(actix_web::cookie::time::Duration::seconds(
            max_age.as_secs() as i64,
        ))
        .finish()
}

fn csrf_checked(req: &HttpRequest, form: Option<&str>) -> Result<(), PageError> {
    if csrf_sent(req, form) {
        Ok(())
    } else {
        Err(PageError::Forbidden)
    }
}

async fn open_link(pages: web::Data<JoinPages>, token: web::Path<String>) -> Page {
    Ok(match pages.invitations.open_link(&token).await? {
        LinkState::Valid { session } => with_page_headers(HttpResponse::SeeOther())
            .cookie(cookie(
                &pages,
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
    })
}

async fn welcome(pages: web::Data<JoinPages>, req: HttpRequest) -> Page {
    let view = match req.cookie(SESSION_COOKIE) {
        Some(c) => pages.invitations.session_view(c.value()).await?,
        None => None,
    };
    Ok(match view {
        Some(v) => with_csrf(&req, pages.secure, |csrf| {
            page_opening_forms_to_providers(
                StatusCode::OK,
                "welcome.html",
                minijinja::context! { csrf => csrf, ..minijinja::Value::from_serialize(&v) },
            )
        }),
        None => message(
            StatusCode::OK,
            "Open your invitation link",
            &[
                "To continue, open the link in your invitation email again. Links work for a limited time, and only in the browser where you opened them.",
            ],
            true,
        ),
    })
}

async fn resend_form(pages: web::Data<JoinPages>, req: HttpRequest) -> HttpResponse {
    with_csrf(&req, pages.secure, |csrf| {
        page(
            StatusCode::OK,
            "resend.html",
            minijinja::context! { csrf => csrf, done => false },
        )
    })
}

#[derive(Deserialize)]
struct ResendForm {
    csrf: String,
    email: String,
}

async fn resend(
    pages: web::Data<JoinPages>,
    req: HttpRequest,
    form: Option<web::Form<ResendForm>>,
) -> Page {
    let form = form.map(web::Form::into_inner);
    csrf_checked(&req, form.as_ref().map(|f| f.csrf.as_str()))?;
    let form = form.ok_or(PageError::Forbidden)?;
    if !pages.limits.per_client.allow(&client_key(req.peer_addr())) {
        return Err(PageError::TooMany);
    }
    // Over the per-email limit, the answer is the same, but nothing is sent.
    let email = form.email.trim().to_lowercase();
    if pages.limits.per_email.allow(&email)
        && let Err(e) = pages.invitations.resend_by_email(&email).await
    {
        // The answer must not differ for any email: log, answer the same.
        crate::telemetry::log_internal(&e);
    }
    Ok(page(
        StatusCode::OK,
        "resend.html",
        minijinja::context! { done => true },
    ))
}
