//! The middleware every request passes through, and the one each route
//! scope wraps itself in.
//!
//! [`observe`] (the whole app): a request id (taken from a sane
//! `X-Request-Id` or made up) on every log line and response, an access log
//! line, and metrics labelled from closed sets only (known methods, route
//! templates, status codes), so no request can add label values.
//!
//! [`guard`] (each scope, in its own [`ErrorFormat`]): a declared body over
//! `http.body_limit` is refused before anything is read, and a panic in a
//! handler becomes a generic 500 (logged once, by the panic hook in
//! `telemetry`). What escapes every scope (unknown paths) is answered as a
//! problem (RFC 9457).

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

use super::error::{ErrorFormat, internal, render};
use super::metrics::Metrics;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being served, for handlers that want it.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// `http.body_limit`, for the scope guards.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

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

/// The method as a metric label: one of the methods onramp serves, else `other`.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let id = request_id(&req);
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("request", request_id = %id);
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let method = method_label(req.method());
    // For the log line only, shortened: never a metric label.
    let path: String = req.path().chars().take(200).collect();
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
            let err = Refused::Panicked {
                format: ErrorFormat::Problem,
                request_id: id.clone(),
            };
            (Err(err.into()), 500, "unmatched".to_string())
        }
    };
    let elapsed = started.elapsed();
    if let Some(m) = metrics {
        m.observe(method, &route, status, elapsed);
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

/// A scope's own guard; see the module docs.
pub async fn guard(
    format: ErrorFormat,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let limit = req
        .app_data::<web::Data<BodyLimit>>()
        .map_or(usize::MAX, |l| l.0);
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        // Refused before reading: nothing of the body is buffered.
        return Err(Refused::TooLarge { format, limit }.into());
    }
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    match AssertUnwindSafe(crate::work::within(next.call(req)))
        .catch_unwind()
        .await
    {
        Ok(result) => result.map(ServiceResponse::map_into_boxed_body),
        Err(_panic) => Err(Refused::Panicked { format, request_id }.into()),
    }
}

pub async fn guard_scim(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    guard(ErrorFormat::Scim, req, next).await
}

pub async fn guard_pages(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    guard(ErrorFormat::Page, req, next).await
}

pub async fn guard_problems(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    guard(ErrorFormat::Problem, req, next).await
}

/// What a guard refused, rendered in its scope's format.
#[derive(Debug)]
enum Refused {
    /// A declared body larger than `http.body_limit`.
    TooLarge { format: ErrorFormat, limit: usize },
    /// A handler panicked; the panic hook has logged it.
    Panicked {
        format: ErrorFormat,
        request_id: String,
    },
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::TooLarge { limit, .. } => {
                write!(f, "the request body exceeds {limit} bytes")
            }
            Refused::Panicked { .. } => f.write_str("internal error"),
        }
    }
}

impl ResponseError for Refused {
    fn status_code(&self) -> StatusCode {
        match self {
            Refused::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Refused::Panicked { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Refused::TooLarge { format, .. } => {
                render(*format, self.status_code(), &self.to_string())
            }
            Refused::Panicked { format, request_id } => {
                let mut res = internal(*format);
                if let Ok(v) = HeaderValue::from_str(request_id) {
                    res.headers_mut().insert(REQUEST_ID, v);
                }
                res
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::middleware::from_fn;
    use actix_web::test::{TestRequest, init_service, try_call_service};
    use actix_web::{App, HttpResponse, web};

    use super::{guard_problems, guard_scim, method_label, observe};

    async fn boom() -> HttpResponse {
        let items: Vec<u8> = Vec::new();
        HttpResponse::Ok().body(items[3].to_string())
    }

    #[actix_web::test]
    async fn a_panicking_handler_becomes_a_generic_500_in_its_scope_format() {
        let app = init_service(
            App::new()
                .wrap(from_fn(observe))
                .service(
                    web::scope("/scim/v2")
                        .wrap(from_fn(guard_scim))
                        .route("/boom", web::get().to(boom)),
                )
                .service(
                    web::scope("/x")
                        .wrap(from_fn(guard_problems))
                        .route("/boom", web::get().to(boom)),
                ),
        )
        .await;
        for (uri, marker) in [
            ("/x/boom", "about:blank"),
            (
                "/scim/v2/boom",
                "urn:ietf:params:scim:api:messages:2.0:Error",
            ),
        ] {
            let req = TestRequest::get()
                .uri(uri)
                .insert_header(("x-request-id", "req-1"))
                .to_request();
            let res = match try_call_service(&app, req).await {
                Err(e) => e.error_response(),
                Ok(res) => panic!(
                    "expected the panic to surface as an error, got {}",
                    res.status()
                ),
            };
            assert_eq!(res.status(), 500);
            assert_eq!(res.headers().get("x-request-id").unwrap(), "req-1");
            let body = actix_web::body::to_bytes(res.into_body()).await.unwrap();
            let text = String::from_utf8_lossy(&body);
            assert!(
                !text.contains("index out of bounds"),
                "no panic text leaks: {text}"
            );
            assert!(text.contains(marker), "{text}");
        }
        // The app keeps serving after a panic.
        let req = TestRequest::get().uri("/x/boom").to_request();
        assert!(try_call_service(&app, req).await.is_err());
    }

    #[test]
    fn only_known_methods_become_metric_labels() {
        use actix_web::http::Method;
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
        assert_eq!(
            method_label(&Method::from_bytes("X".repeat(5000).as_bytes()).unwrap()),
            "other"
        );
    }
}
