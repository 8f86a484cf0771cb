//! How errors look on the wire, one rendering per kind of route:
//!
//! - under `/scim/v2`: SCIM errors, RFC 7644 §3.12 JSON as
//!   `application/scim+json` (401s carry `WWW-Authenticate`);
//! - machine endpoints outside SCIM (health, metrics, unknown paths, the
//!   admin API to come): problem details, RFC 9457 `application/problem+json`;
//! - pages for people: HTML (see [`super::pages`]).
//!
//! Each feature's error type implements actix's `ResponseError` with one of
//! these; internal causes are logged once, where they are rendered, and
//! never shown.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use serde_json::json;

use crate::scim::protocol::ScimError;

pub const SCIM_CONTENT_TYPE: &str = "application/scim+json";
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// Which rendering a route scope uses for the errors that escape it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorFormat {
    Scim,
    Problem,
    Page,
}

/// Renders a SCIM error; 401s carry `WWW-Authenticate` (RFC 6750 §3).
pub fn scim_error_response(e: &ScimError) -> HttpResponse {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut res = HttpResponse::build(status)
        .insert_header((CONTENT_TYPE, SCIM_CONTENT_TYPE))
        .body(e.to_json().to_string());
    if status == StatusCode::UNAUTHORIZED {
        res.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"onramp-scim\", error=\"invalid_token\""),
        );
    }
    res
}

/// An RFC 9457 problem: `title` names the kind of problem, `detail` this
/// occurrence.
pub fn problem(status: StatusCode, title: &str, detail: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((CONTENT_TYPE, PROBLEM_CONTENT_TYPE))
        .body(
            json!({
                "type": "about:blank",
                "title": title,
                "status": status.as_u16(),
                "detail": detail,
            })
            .to_string(),
        )
}

/// A failure of `status` with `detail`, in `format`.
pub fn render(format: ErrorFormat, status: StatusCode, detail: &str) -> HttpResponse {
    match format {
        ErrorFormat::Scim => scim_error_response(&ScimError::new(status.as_u16(), None, detail)),
        ErrorFormat::Problem => {
            problem(status, status.canonical_reason().unwrap_or("Error"), detail)
        }
        ErrorFormat::Page => super::pages::message(
            status,
            status.canonical_reason().unwrap_or("Something went wrong"),
            &[detail],
            false,
        ),
    }
}

/// The generic answer to an internal failure (the cause is logged, not shown).
pub fn internal(format: ErrorFormat) -> HttpResponse {
    match format {
        ErrorFormat::Scim => scim_error_response(&ScimError::internal()),
        ErrorFormat::Problem => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            "internal error",
        ),
        ErrorFormat::Page => super::pages::message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong on our side",
            &["Please try again in a few minutes."],
            false,
        ),
    }
}

pub use crate::telemetry::log_internal;
