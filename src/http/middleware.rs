//! The middleware every request passes through: a request id (taken from a
//! sane `X-Request-Id` or made up) on every log line and response, an access
//! log line, metrics by route template, and a panic in a handler turned into
//! a generic 500 (logged once, by the panic hook in `telemetry`).

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpResponse, ResponseError, web};
use futures_util::FutureExt;
use tracing::Instrument;
use uuid::Uuid;

use super::AppState;
use super::error::{json_error, scim_error_response};
use crate::scim::protocol::ScimError;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being served, for handlers that want it.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn request_id(req: &ServiceRequest) -> String {
    req.headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| Uuid::new_v4().to_string())
}

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let id = request_id(&req);
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("request", request_id = %id);
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let method = req.method().to_string();
    let path = req.path().to_owned();
    let started = Instant::now();

    // The request cannot be cloned before routing, so failures that escape
    // the app leave as errors and actix renders them with `error_response`.
    let outcome = AssertUnwindSafe(next.call(req))
        .catch_unwind()
        .instrument(span.clone())
        .await;
    let (result, status, route) = match outcome {
        Ok(Ok(res)) => {
            let mut res = res.map_into_boxed_body();
            if let Ok(v) = HeaderValue::from_str(&id) {
                res.headers_mut().insert(REQUEST_ID, v);
            }
            let route = res
                .request()
                .match_pattern()
                .unwrap_or_else(|| "unmatched".to_string());
            let status = res.status().as_u16();
            (Ok(res), status, route)
        }
        Ok(Err(err)) => {
            let status = err.as_response_error().status_code().as_u16();
            (Err(err), status, "unmatched".to_string())
        }
        Err(_panic) => {
            let err = HandlerPanicked {
                scim: path.starts_with("/scim/"),
                request_id: id.clone(),
            };
            (Err(err.into()), 500, "unmatched".to_string())
        }
    };
    let elapsed = started.elapsed();
    if let Some(state) = state {
        state.metrics.observe(&method, &route, status, elapsed);
    }
    span.in_scope(|| {
        tracing::info!(
            method = %method,
            path = %path,
            route = %route,
            status,
            latency_us = elapsed.as_micros() as u64,
            "request"
        )
    });
    result
}

/// A handler panicked; the panic hook has logged it. The client gets a
/// generic 500 in the format of the endpoint it called.
#[derive(Debug)]
struct HandlerPanicked {
    scim: bool,
    request_id: String,
}

impl std::fmt::Display for HandlerPanicked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("internal error")
    }
}

impl ResponseError for HandlerPanicked {
    fn status_code(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = if self.scim {
            scim_error_response(&ScimError::internal())
        } else {
            json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
        };
        if let Ok(v) = HeaderValue::from_str(&self.request_id) {
            res.headers_mut().insert(REQUEST_ID, v);
        }
        res
    }
}
