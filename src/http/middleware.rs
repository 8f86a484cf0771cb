//! The middleware every request passes through: a request id (taken from a
//! sane `X-Request-Id` or made up) on every log line and response, an access
//! log line, metrics by route template, and a panic in a handler turned into
//! a generic 500 (logged once, by the panic hook in `telemetry`).

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_LENGTH, HeaderName, HeaderValue};
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
    let limit = state
        .as_ref()
        .map_or(usize::MAX, |s| s.config.http.body_limit);
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        // Refused before routing or reading: nothing of the body is buffered.
        return Err(TooLarge {
            scim: path.starts_with("/scim/"),
            limit,
        }
        .into());
    }

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

/// A declared body larger than `http.body_limit`.
#[derive(Debug)]
struct TooLarge {
    scim: bool,
    limit: usize,
}

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the request body exceeds {} bytes", self.limit)
    }
}

impl ResponseError for TooLarge {
    fn status_code(&self) -> StatusCode {
        StatusCode::PAYLOAD_TOO_LARGE
    }

    fn error_response(&self) -> HttpResponse {
        if self.scim {
            scim_error_response(&ScimError::payload_too_large(self.to_string()))
        } else {
            json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                &self.to_string(),
            )
        }
    }
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
            json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            )
        };
        if let Ok(v) = HeaderValue::from_str(&self.request_id) {
            res.headers_mut().insert(REQUEST_ID, v);
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use actix_web::middleware::from_fn;
    use actix_web::test::{TestRequest, init_service, try_call_service};
    use actix_web::{App, HttpResponse, web};

    use super::observe;

    async fn boom() -> HttpResponse {
        let items: Vec<u8> = Vec::new();
        HttpResponse::Ok().body(items[3].to_string())
    }

    #[actix_web::test]
    async fn a_panicking_handler_becomes_a_generic_500_with_the_request_id() {
        let app = init_service(
            App::new()
                .wrap(from_fn(observe))
                .route("/boom", web::get().to(boom))
                .route("/scim/v2/boom", web::get().to(boom)),
        )
        .await;
        for (uri, scim) in [("/boom", false), ("/scim/v2/boom", true)] {
            let req = TestRequest::get()
                .uri(uri)
                .insert_header(("x-request-id", "req-1"))
                .to_request();
            let err = match try_call_service(&app, req).await {
                Err(e) => e,
                Ok(res) => panic!(
                    "expected the panic to surface as an error, got {}",
                    res.status()
                ),
            };
            let res = err.error_response();
            assert_eq!(res.status(), 500);
            assert_eq!(res.headers().get("x-request-id").unwrap(), "req-1");
            let body = actix_web::body::to_bytes(res.into_body()).await.unwrap();
            let text = String::from_utf8_lossy(&body);
            assert!(
                !text.contains("index out of bounds"),
                "no panic text leaks: {text}"
            );
            assert_eq!(
                text.contains("urn:ietf:params:scim:api:messages:2.0:Error"),
                scim,
                "{text}"
            );
        }
        // The app keeps serving after a panic.
        let req = TestRequest::get().uri("/boom").to_request();
        assert!(try_call_service(&app, req).await.is_err());
    }
}
