//! SCIM request plumbing: bearer-token authentication, reading JSON bodies in
//! either `application/scim+json` or `application/json`, and SCIM responses.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde_json::Value;

use super::error::SCIM_CONTENT_TYPE;
use super::limits::TenantGate;
use super::middleware::BodyLimit;
use crate::scim::ScimFailure;
use crate::scim::protocol::ScimError;
use crate::tenancy::{ScimPrincipal, TenancyService};

/// The organization whose SCIM token authenticated this request. Its place
/// among that organization's requests in progress (see [`TenantGate`]) is
/// held by the request ([`crate::work`]) until it is done; only outside a
/// request scope is it kept here.
#[derive(Debug)]
pub struct ScimAuth {
    pub principal: ScimPrincipal,
    _place: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl ScimAuth {
    pub fn org_id(&self) -> uuid::Uuid {
        self.principal.org_id
    }
}

impl FromRequest for ScimAuth {
    type Error = ScimFailure;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let header = req
            .headers()
            .get(AUTHORIZATION)
            .map(|v| v.to_str().map(str::to_owned));
        let tenancy = req.app_data::<web::Data<TenancyService>>().cloned();
        let gate = req.app_data::<web::Data<TenantGate>>().cloned();
        let body_len = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        Box::pin(async move {
            let presented = match header {
                None => {
                    return Err(ScimError::unauthorized(
                        "an Authorization: Bearer token is required",
                    )
                    .into());
                }
                Some(Err(_)) => {
                    return Err(
                        ScimError::unauthorized("the Authorization header is malformed").into(),
                    );
                }
                Some(Ok(v)) => bearer(&v).ok_or_else(|| {
                    ScimError::unauthorized("the Authorization header must be `Bearer <token>`")
                })?,
            };
            let tenancy = tenancy.ok_or_else(|| ScimFailure::Protocol(ScimError::internal()))?;
            let principal = tenancy
                .authenticate_scim(&presented)
                .await
                .map_err(|e| match e {
                    crate::tenancy::TenancyError::Store(s) => ScimFailure::Store(s),
                    other => ScimFailure::Store(crate::store::StoreError::other(other)),
                })?
                .ok_or_else(|| ScimError::unauthorized("the bearer token is not valid"))?;
            let place = match gate {
                Some(gate) => {
                    let (org_gate, permit) = gate
                        .enter(principal.org_id, gate.weight(body_len))
                        .await
                        .ok_or_else(|| {
                            ScimError::new(
                                429,
                                None,
                                "too many requests of this organization are in progress; retry shortly",
                            )
                        })?;
                    crate::work::hold(org_gate, permit)
                }
                None => None,
            };
            Ok(ScimAuth {
                principal,
                _place: place,
            })
        })
    }
}

/// The token of a `Bearer` credential (scheme case-insensitive, RFC 6750 §2.1).
fn bearer(header: &str) -> Option<String> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && !token.contains(' '))
        .then(|| token.to_string())
}

/// A SCIM request body parsed as a JSON object, within `http.body_limit`.
#[derive(Debug)]
pub struct ScimBody(pub Value, pub usize);

impl FromRequest for ScimBody {
    type Error = ScimFailure;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<web::Data<BodyLimit>>()
            .map_or(1024 * 1024, |l| l.0);
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            });
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if let Some(ct) = &content_type
                && ct != SCIM_CONTENT_TYPE
                && ct != "application/json"
            {
                return Err(ScimError::invalid_syntax(format!(
                    "unsupported Content-Type `{ct}`; send application/scim+json or application/json"
                ))
                .into());
            }
            if declared.is_some_and(|n| n > limit) {
                return Err(too_large(limit));
            }
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk
                    .map_err(|_| ScimError::invalid_syntax("the request body could not be read"))?;
                if body.len() + chunk.len() > limit {
                    return Err(too_large(limit));
                }
                body.extend_from_slice(&chunk);
            }
            if body.iter().all(u8::is_ascii_whitespace) {
                return Err(ScimError::invalid_syntax(
                    "the request body is empty; a JSON object is required",
                )
                .into());
            }
            let value: Value = serde_json::from_slice(&body).map_err(|e| {
                ScimError::invalid_syntax(format!("the request body is not valid JSON: {e}"))
            })?;
            if !value.is_object() {
                return Err(
                    ScimError::invalid_syntax("the request body must be a JSON object").into(),
                );
            }
            Ok(ScimBody(value, body.len()))
        })
    }
}

fn too_large(limit: usize) -> ScimFailure {
    ScimError::payload_too_large(format!("the request body exceeds {limit} bytes")).into()
}

/// A SCIM JSON response.
pub fn scim_json(status: u16, body: &Value) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
        .insert_header((CONTENT_TYPE, SCIM_CONTENT_TYPE))
        .body(body.to_string())
}

/// 404 for unknown paths under `/scim/v2`.
pub async fn scim_not_found(req: HttpRequest) -> HttpResponse {
    let shown: String = req.path().chars().take(200).collect();
    super::error::scim_error_response(&ScimError::not_found(format!(
        "no SCIM endpoint at {shown}"
    )))
}

#[cfg(test)]
mod tests {
    use super::bearer;

    #[test]
    fn bearer_tokens_are_read_case_insensitively_and_nothing_else_is() {
        assert_eq!(bearer("Bearer abc").as_deref(), Some("abc"));
        assert_eq!(bearer("bearer   abc ").as_deref(), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer"), None);
        assert_eq!(bearer("Bearer a b"), None);
    }
}
