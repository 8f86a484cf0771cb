//! The one place errors become HTTP responses. SCIM errors are RFC 7644 §3.12
//! JSON; internal errors are logged once with their cause chain and answered
//! with a generic message.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use actix_web::{HttpResponse, ResponseError};

use crate::scim::protocol::ScimError;
use crate::store::StoreError;
use crate::tenancy::TenancyError;

pub const SCIM_CONTENT_TYPE: &str = "application/scim+json";

/// A SCIM error on its way out.
#[derive(Debug)]
pub struct ScimFailure(pub ScimError);

impl fmt::Display for ScimFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<ScimError> for ScimFailure {
    fn from(e: ScimError) -> Self {
        ScimFailure(e)
    }
}

impl From<StoreError> for ScimFailure {
    fn from(e: StoreError) -> Self {
        log_internal(&e);
        ScimFailure(ScimError::internal())
    }
}

impl From<TenancyError> for ScimFailure {
    fn from(e: TenancyError) -> Self {
        log_internal(&e);
        ScimFailure(ScimError::internal())
    }
}

impl ResponseError for ScimFailure {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        scim_error_response(&self.0)
    }
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

/// A plain JSON error for the non-SCIM endpoints.
pub fn json_error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({ "error": code, "message": message }))
}

pub use crate::telemetry::log_internal;
