//! Server-rendered pages (minijinja templates built into the binary), with
//! the headers every page for people carries: no referrer (the URL may have
//! held a token), no caching, no framing, nothing loaded from other hosts.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use minijinja::Environment;
use serde::Serialize;

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
        ] {
            env.add_template(name, source)
                .expect("built-in page templates parse");
        }
        env
    })
}

/// Renders a page; a template error becomes a plain 500 page (logged).
pub fn page(status: StatusCode, template: &str, ctx: impl Serialize) -> HttpResponse {
    let (status, body) = match env().get_template(template).and_then(|t| t.render(ctx)) {
        Ok(html) => (status, html),
        Err(e) => {
            crate::telemetry::log_internal(&e);
            (StatusCode::INTERNAL_SERVER_ERROR, "<!doctype html><title>Error</title><p>Something went wrong on our side. Please try again later.</p>".to_string())
        }
    };
    with_page_headers(HttpResponse::build(status))
        .content_type("text/html; charset=utf-8")
        .body(body)
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

pub fn with_page_headers(mut b: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    b.insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ));
    b
}
