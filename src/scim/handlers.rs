//! SCIM HTTP handlers: extract, call one service, respond.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::http::AppState;
use crate::http::error::ScimFailure;
use crate::http::scim::{ScimAuth, scim_json, scim_not_found};
use crate::scim::protocol::ScimError;

/// Mounts `/scim/v2`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/scim/v2")
            .route(
                "/ServiceProviderConfig",
                web::get().to(service_provider_config),
            )
            .route("/Me", web::route().to(me))
            .default_service(web::to(scim_not_found)),
    );
}

/// RFC 7643 §5.
async fn service_provider_config(
    _auth: ScimAuth,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ScimFailure> {
    let base = state.config.http.public_url.as_str();
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "documentationUri": format!("{base}/"),
        "patch": {"supported": false},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": false, "maxResults": 0},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": false},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication with a per-organization bearer token (onramp scim-token create)",
            "primary": true
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base}/scim/v2/ServiceProviderConfig")
        }
    });
    Ok(scim_json(200, &body))
}

/// `/Me` is not offered: SCIM clients here are directories, not people.
async fn me(_auth: ScimAuth) -> Result<HttpResponse, ScimFailure> {
    Err(ScimError::not_implemented(
        "/Me is not supported: directory tokens have no user of their own",
    )
    .into())
}
