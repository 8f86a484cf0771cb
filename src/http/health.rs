//! Liveness, readiness and metrics endpoints. `/metrics` is served here or
//! on a listener of its own (`metrics.bind`), and may require a bearer
//! token (`metrics.token`), as is usual for Prometheus endpoints.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::AUTHORIZATION;
use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use subtle::ConstantTimeEq;

use super::error::problem;
use super::metrics::Metrics;
use super::middleware::guard_problems;
use crate::store::DynStore;

/// What the health and metrics endpoints need.
#[derive(Clone)]
pub struct HealthState {
    pub store: DynStore,
    pub metrics: web::Data<Metrics>,
    /// The bearer token `/metrics` requires, if any.
    pub metrics_token: Option<SecretString>,
}

/// `/healthz`, `/readyz`, and `/metrics` when `with_metrics`.
pub fn configure(cfg: &mut web::ServiceConfig, state: &HealthState, with_metrics: bool) {
    cfg.app_data(web::Data::new(state.clone()))
        .service(
            web::resource("/healthz")
                .wrap(from_fn(guard_problems))
                .route(web::get().to(healthz)),
        )
        .service(
            web::resource("/readyz")
                .wrap(from_fn(guard_problems))
                .route(web::get().to(readyz)),
        );
    if with_metrics {
        cfg.service(
            web::resource("/metrics")
                .wrap(from_fn(guard_problems))
                .route(web::get().to(metrics)),
        );
    }
}

/// Alive: the process answers.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Ready: the database answers within two seconds.
async fn readyz(state: web::Data<HealthState>) -> HttpResponse {
    match tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => HttpResponse::Ok().json(json!({ "status": "ready", "database": "ok" })),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "Not ready",
                "the database is unreachable",
            )
        }
        Err(_) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "Not ready",
            "the database did not answer in time",
        ),
    }
}

/// Whether the request carries the metrics token (constant-time compare).
fn authorized(req: &HttpRequest, token: &SecretString) -> bool {
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().as_bytes().to_vec())
        .unwrap_or_default();
    let want = token.expose_secret().as_bytes();
    presented.len() == want.len() && bool::from(presented.ct_eq(want))
}

/// Prometheus text exposition.
async fn metrics(state: web::Data<HealthState>, req: HttpRequest) -> HttpResponse {
    if let Some(token) = &state.metrics_token
        && !authorized(&req, token)
    {
        let mut res = problem(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "/metrics requires the bearer token set in metrics.token",
        );
        res.headers_mut().insert(
            actix_web::http::header::WWW_AUTHENTICATE,
            actix_web::http::header::HeaderValue::from_static("Bearer realm=\"onramp-metrics\""),
        );
        return res;
    }
    state.metrics.set_pool(state.store.pool_state());
    match state.store.queued_mail_count().await {
        Ok(n) => state.metrics.set_mail_queued(n),
        Err(e) => tracing::warn!(error = %e, "could not count queued mail for /metrics"),
    }
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.metrics.render())
}
