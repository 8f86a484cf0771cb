//! SCIM HTTP handlers: extract, call one service method, respond. Every
//! handler takes [`ScimAuth`], so the organization always comes from the
//! bearer token and never from the request. Errors leave as SCIM JSON
//! (RFC 7644 §3.12), rendered here and nowhere else.

use actix_web::http::StatusCode;
use actix_web::http::header::{ETAG, IF_MATCH, IF_NONE_MATCH, LOCATION};
use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde_json::{Value, json};

use super::ScimService;
use super::bulk::MAX_OPERATIONS;
use super::list::{DEFAULT_PAGE, MAX_PAGE};
use super::protocol::{
    ListQuery, ResourceType, ScimError, parse_attribute_list, resource_types_json, schemas_json,
};
use super::service::{Precondition, Projection, ScimFailure, ScimResource, etag_matches};
use crate::http::error::scim_error_response;
use crate::http::middleware::{BodyLimit, guard_scim};
use crate::http::query;
use crate::http::scim::{ScimAuth, ScimBody, scim_json, scim_not_found};

impl ResponseError for ScimFailure {
    fn status_code(&self) -> StatusCode {
        match self {
            ScimFailure::Protocol(e) => {
                StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            ScimFailure::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let e = match self {
            ScimFailure::Protocol(e) => e.clone(),
            ScimFailure::Store(e) => {
                crate::telemetry::log_internal(e);
                ScimError::internal()
            }
        };
        scim_error_response(&e)
    }
}

/// What the SCIM endpoints need beside the service.
#[derive(Debug, Clone)]
pub struct ScimSettings {
    /// `http.public_url`, for discovery documents.
    pub public_url: String,
}

/// The endpoint names under `/scim/v2`, as they are routed; requests that
/// spell them in another case or end in `/` are routed to them (several
/// SCIM clients do).
pub const ENDPOINTS: &[&str] = &[
    "Users",
    "Groups",
    "ServiceProviderConfig",
    "ResourceTypes",
    "Schemas",
    "Bulk",
    "Me",
    ".search",
];

/// Mounts `/scim/v2`.
pub fn configure(cfg: &mut web::ServiceConfig, service: &ScimService, settings: &ScimSettings) {
    cfg.app_data(web::Data::new(service.clone()))
        .app_data(web::Data::new(settings.clone()))
        .service(
            web::scope("/scim/v2")
                .wrap(from_fn(guard_scim))
                .service(
                    resource("/ServiceProviderConfig")
                        .route(web::get().to(service_provider_config)),
                )
                .service(resource("/ResourceTypes").route(web::get().to(resource_types)))
                .service(resource("/ResourceTypes/{id}").route(web::get().to(resource_type)))
                .service(resource("/Schemas").route(web::get().to(schemas)))
                .service(resource("/Schemas/{id}").route(web::get().to(schema)))
                .service(resource("/Me").route(web::route().to(me)))
                .service(resource("/.search").route(web::post().to(search_root)))
                .service(resource("/Bulk").route(web::post().to(bulk)))
                .configure(|c| resources(c, ResourceType::User))
                .configure(|c| resources(c, ResourceType::Group))
                .default_service(web::to(scim_not_found)),
        );
}

type Reply = Result<HttpResponse, ScimFailure>;

/// `/Users` or `/Groups`: list, create, search, and each resource by id.
fn resources(cfg: &mut web::ServiceConfig, rt: ResourceType) {
    let base = rt.endpoint();
    let kind = web::Data::new(rt);
    cfg.service(
        resource(base)
            .app_data(kind.clone())
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(
        resource(&format!("{base}/.search"))
            .app_data(kind.clone())
            .route(web::post().to(search)),
    )
    .service(
        resource(&format!("{base}/{{id}}"))
            .app_data(kind)
            .route(web::get().to(get))
            .route(web::put().to(replace))
            .route(web::patch().to(patch))
            .route(web::delete().to(delete)),
    );
}

/// A resource whose other methods get 405 in SCIM's error format.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    let shown: String = req.path().chars().take(200).collect();
    scim_error_response(&ScimError::new(
        405,
        None,
        format!("{} is not allowed on {shown}", req.method()),
    ))
}

fn query_pairs(req: &HttpRequest) -> Result<Vec<(String, String)>, ScimError> {
    query::pairs(req.query_string()).map_err(|e| ScimError::invalid_value(e.to_string()))
}

/// `attributes` / `excludedAttributes` from the query string (RFC 7644 §3.9).
fn projection(req: &HttpRequest) -> Result<Projection, ScimError> {
    let mut p = Projection::default();
    for (k, v) in query_pairs(req)? {
        if k.eq_ignore_ascii_case("attributes") {
            p.attributes.extend(parse_attribute_list(&v)?);
        } else if k.eq_ignore_ascii_case("excludedAttributes") {
            p.excluded.extend(parse_attribute_list(&v)?);
        }
    }
    Ok(p)
}

fn precondition(req: &HttpRequest) -> Precondition {
    Precondition {
        if_match: req
            .headers()
            .get(IF_MATCH)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    }
}

fn respond(status: u16, r: ScimResource) -> HttpResponse {
    let mut res = scim_json(status, &r.body);
    if let Ok(v) = r.etag.parse() {
        res.headers_mut().insert(ETAG, v);
    }
    if status == 201
        && let Ok(v) = r.location.parse()
    {
        res.headers_mut().insert(LOCATION, v);
    }
    res
}

/// 200, or 304 when `If-None-Match` names the current version (RFC 7644 §3.14).
fn respond_get(req: &HttpRequest, r: ScimResource) -> HttpResponse {
    let version = r
        .etag
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse::<i64>()
        .ok();
    let none_match = req
        .headers()
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    if let (Some(header), Some(v)) = (none_match, version)
        && etag_matches(header, v)
    {
        let mut res = HttpResponse::NotModified().finish();
        if let Ok(v) = r.etag.parse() {
            res.headers_mut().insert(ETAG, v);
        }
        return res;
    }
    respond(200, r)
}

type Scim = web::Data<ScimService>;
/// The resource type a route serves (set as resource data at registration).
type Kind = web::Data<ResourceType>;

async fn list(auth: ScimAuth, scim: Scim, rt: Kind, req: HttpRequest) -> Reply {
    let q = ListQuery::from_pairs(&query_pairs(&req)?)?;
    Ok(scim_json(200, &scim.list(auth.org_id(), **rt, &q).await?))
}

async fn search(auth: ScimAuth, scim: Scim, rt: Kind, body: ScimBody) -> Reply {
    let q = ListQuery::from_search_body(&body.0)?;
    Ok(scim_json(200, &scim.list(auth.org_id(), **rt, &q).await?))
}

/// `POST /.search` at the root (RFC 7644 §3.4.3): users, then groups.
async fn search_root(auth: ScimAuth, scim: Scim, body: ScimBody) -> Reply {
    let q = ListQuery::from_search_body(&body.0)?;
    Ok(scim_json(200, &scim.search_root(auth.org_id(), &q).await?))
}

async fn bulk(auth: ScimAuth, scim: Scim, limit: web::Data<BodyLimit>, body: ScimBody) -> Reply {
    let len = body.1;
    Ok(scim_json(
        200,
        &scim.bulk(auth.org_id(), &body.0, len, limit.0).await?,
    ))
}

async fn create(auth: ScimAuth, scim: Scim, rt: Kind, req: HttpRequest, body: ScimBody) -> Reply {
    let p = projection(&req)?;
    let r = scim.create(**rt, auth.org_id(), &body.0, &p).await?;
    Ok(respond(201, r))
}

async fn get(
    auth: ScimAuth,
    scim: Scim,
    rt: Kind,
    req: HttpRequest,
    id: web::Path<String>,
) -> Reply {
    let p = projection(&req)?;
    let r = scim.get(**rt, auth.org_id(), &id, &p).await?;
    Ok(respond_get(&req, r))
}

async fn replace(
    auth: ScimAuth,
    scim: Scim,
    rt: Kind,
    req: HttpRequest,
    id: web::Path<String>,
    body: ScimBody,
) -> Reply {
    let p = projection(&req)?;
    let pre = precondition(&req);
    let r = scim
        .replace(**rt, auth.org_id(), &id, &body.0, &pre, &p)
        .await?;
    Ok(respond(200, r))
}

async fn patch(
    auth: ScimAuth,
    scim: Scim,
    rt: Kind,
    req: HttpRequest,
    id: web::Path<String>,
    body: ScimBody,
) -> Reply {
    let p = projection(&req)?;
    let pre = precondition(&req);
    let r = scim
        .patch(**rt, auth.org_id(), &id, &body.0, &pre, &p)
        .await?;
    Ok(respond(200, r))
}

async fn delete(
    auth: ScimAuth,
    scim: Scim,
    rt: Kind,
    req: HttpRequest,
    id: web::Path<String>,
) -> Reply {
    scim.delete(**rt, auth.org_id(), &id, &precondition(&req))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// RFC 7643 §5; the limits SCIM has fields for are advertised, the others
/// named in the description of the bulk and patch features.
async fn service_provider_config(
    _auth: ScimAuth,
    settings: web::Data<ScimSettings>,
    limit: web::Data<BodyLimit>,
) -> Reply {
    let base = settings.public_url.as_str();
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "documentationUri": format!("{base}/"),
        "patch": {"supported": true},
        "bulk": {
            "supported": true,
            "maxOperations": MAX_OPERATIONS,
            "maxPayloadSize": limit.0
        },
        "filter": {"supported": true, "maxResults": MAX_PAGE},
        "pagination": {
            "cursor": true,
            "index": true,
            "defaultPaginationMethod": "index",
            "defaultPageSize": DEFAULT_PAGE,
            "maxPageSize": MAX_PAGE
        },
        "changePassword": {"supported": false},
        "sort": {"supported": true},
        "etag": {"supported": true},
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

fn list_of(resources: Vec<Value>) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": resources.len(),
        "itemsPerPage": resources.len(),
        "startIndex": 1,
        "Resources": resources,
    })
}

fn scim_base(settings: &ScimSettings) -> String {
    format!("{}/scim/v2", settings.public_url)
}

/// RFC 7643 §6.
async fn resource_types(_auth: ScimAuth, settings: web::Data<ScimSettings>) -> Reply {
    Ok(scim_json(
        200,
        &list_of(resource_types_json(&scim_base(&settings))),
    ))
}

async fn resource_type(
    _auth: ScimAuth,
    settings: web::Data<ScimSettings>,
    id: web::Path<String>,
) -> Reply {
    resource_types_json(&scim_base(&settings))
        .into_iter()
        .find(|r| {
            r["id"]
                .as_str()
                .is_some_and(|x| x.eq_ignore_ascii_case(&id))
        })
        .map(|r| scim_json(200, &r))
        .ok_or_else(|| ScimError::not_found(format!("no resource type {id}")).into())
}

/// RFC 7643 §7.
async fn schemas(_auth: ScimAuth, settings: web::Data<ScimSettings>) -> Reply {
    Ok(scim_json(
        200,
        &list_of(schemas_json(&scim_base(&settings))),
    ))
}

async fn schema(
    _auth: ScimAuth,
    settings: web::Data<ScimSettings>,
    id: web::Path<String>,
) -> Reply {
    schemas_json(&scim_base(&settings))
        .into_iter()
        .find(|s| s["id"].as_str().is_some_and(|x| x == id.as_str()))
        .map(|s| scim_json(200, &s))
        .ok_or_else(|| ScimError::not_found(format!("no schema {id}")).into())
}

/// `/Me` is not offered: SCIM clients here are directories, not people.
async fn me(_auth: ScimAuth) -> Reply {
    Err(ScimError::not_implemented(
        "/Me is not supported: directory tokens have no user of their own",
    )
    .into())
}
