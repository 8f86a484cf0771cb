//! Server-rendered pages (minijinja templates built into the binary), with
//! the headers every page for people carries: no referrer (the URL may have
//! held a token), no caching, no framing, nothing loaded from other hosts.

use std::sync::OnceLock;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use minijinja::Environment;
use serde::Serialize;

use crate::secrets::csrf;

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in [
            (
                "layout.html",
                include_str!("../../templates/pages/layout.html"),
            ),
            (
                "welcome.html",
                include_str!("../../templates/pages/welcome.html"),
            ),
            (
                "message.html",
                include_str!("../../templates/pages/message.html"),
            ),
            (
                "resend.html",
                include_str!("../../templates/pages/resend.html"),
            ),
            (
                "login.html",
                include_str!("../../templates/pages/login.html"),
            ),
            (
                "register_new.html",
                include_str!("../../templates/pages/register_new.html"),
            ),
            (
                "register_step.html",
                include_str!("../../templates/pages/register_step.html"),
            ),
            (
                "account.html",
                include_str!("../../templates/pages/account.html"),
            ),
        ] {
            env.add_template(name, source)
                .expect("built-in page templates parse");
        }
        env
    })
}

/// Renders a page; a template error becomes a plain 500 page (logged).
pub fn page(status: StatusCode, template: &str, ctx: impl Serialize) -> HttpResponse {
    render(status, template, ctx, FormsTo::ThisSite)
}

/// Renders a page whose form leads on to another site: a POST answered by
/// a redirect to an organization's identity provider, which a page's
/// `form-action 'self'` would stop in the browser.
pub fn page_opening_forms_to_providers(
    status: StatusCode,
    template: &str,
    ctx: impl Serialize,
) -> HttpResponse {
    render(status, template, ctx, FormsTo::Providers)
}

/// Where a page's forms may lead.
#[derive(Clone, Copy)]
enum FormsTo {
    ThisSite,
    Providers,
}

fn render(status: StatusCode, template: &str, ctx: impl Serialize, forms: FormsTo) -> HttpResponse {
    let (status, body) = match env().get_template(template).and_then(|t| t.render(ctx)) {
        Ok(html) => (status, html),
        Err(e) => {
            crate::telemetry::log_internal(&e);
            (StatusCode::INTERNAL_SERVER_ERROR, "<!doctype html><title>Error</title><p>Something went wrong on our side. Please try again later.</p>".to_string())
        }
    };
    let mut b = with_page_headers(HttpResponse::build(status));
    if let FormsTo::Providers = forms {
        b.insert_header(("Content-Security-Policy", CSP_FORMS_TO_PROVIDERS));
    }
    b.content_type("text/html; charset=utf-8").body(body)
}

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const CSP_FORMS_TO_PROVIDERS: &str =
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'";

/// The cookie holding the browser's CSRF value.
pub const CSRF_COOKIE: &str = "onramp_csrf";

/// A page whose forms carry the browser's CSRF value (double submit): the
/// value of its cookie while that is well formed — so pages open in several
/// tabs all stay valid — or a fresh one, set in a `SameSite=Strict` cookie
/// for the whole site.
pub fn with_csrf(
    req: &HttpRequest,
    secure: bool,
    make: impl FnOnce(&str) -> HttpResponse,
) -> HttpResponse {
    if let Some(c) = req.cookie(CSRF_COOKIE)
        && csrf::well_formed(c.value())
    {
        return make(c.value());
    }
    let value = csrf::new_value();
    let mut res = make(&value);
    let cookie = Cookie::build(CSRF_COOKIE, value)
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::hours(12))
        .finish();
    let _ = res.add_cookie(&cookie);
    res
}

/// Whether a form's CSRF value matches the browser's cookie.
pub fn csrf_sent(req: &HttpRequest, form: Option<&str>) -> bool {
    let cookie = req.cookie(CSRF_COOKIE);
    form.is_some_and(|f| csrf::matches(cookie.as_ref().map(|c| c.value()), f))
}

/// A page that explains a situation, optionally offering a new link.
pub fn message(
    status: StatusCode,
    heading: &str,
    lines: &[&str],
    show_resend: bool,
) -> HttpResponse {
    page(
        status,
        "message.html",
        minijinja::context! { heading, lines, show_resend },
    )
}

/// A page that explains a situation and offers one way on: a button to
/// `href` (one of onramp's own paths).
pub fn message_leading_to(
    status: StatusCode,
    heading: &str,
    lines: &[&str],
    href: &str,
    label: &str,
) -> HttpResponse {
    page(
        status,
        "message.html",
        minijinja::context! { heading, lines, show_resend => false, link => minijinja::context! { href, label } },
    )
}

/// A form whose CSRF value did not match: 403, reload and send again.
pub fn form_expired() -> HttpResponse {
    message(
        StatusCode::FORBIDDEN,
        "Please try again",
        &["This form expired or was not sent from this site. Reload the page and submit it again."],
        false,
    )
}

/// A rate limit hit: 429, wait a few minutes.
pub fn too_many_requests() -> HttpResponse {
    message(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many requests",
        &["Please wait a few minutes and try again."],
        false,
    )
}

pub fn with_page_headers(mut b: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    b.insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Content-Security-Policy", CSP));
    b
}
