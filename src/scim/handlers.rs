//! SCIM HTTP handlers: extract, call one service method, respond. Every
//! handler takes [`ScimAuth`], so the organization always comes from the
//! bearer token and never from the request.

use actix_web::http::header::{ETAG, IF_MATCH, IF_NONE_MATCH, LOCATION};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::list::MAX_PAGE;
use super::protocol::{
    ListQuery, ResourceType, ScimError, list_response, parse_attribute_list, resource_types_json,
    schemas_json,
};
use super::service::{Precondition, Projection, ScimResource, etag_matches};
use crate::http::AppState;
use crate::http::error::ScimFailure;
use crate::http::scim::{ScimAuth, ScimBody, scim_json, scim_not_found};

/// Mounts `/scim/v2`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/scim/v2")
            .service(
                resource("/ServiceProviderConfig").route(web::get().to(service_provider_config)),
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
    let e = ScimError {
        status: 405,
        scim_type: None,
        detail: format!("{} is not allowed on {}", req.method(), req.path()),
    };
    crate::http::error::scim_error_response(&e)
}

/// `attributes` / `excludedAttributes` from the query string (RFC 7644 §3.9).
fn projection(req: &HttpRequest) -> Result<Projection, ScimError> {
    let pairs = query_pairs(req)?;
    let mut p = Projection::default();
    for (k, v) in pairs {
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

fn query_pairs(req: &HttpRequest) -> Result<Vec<(String, String)>, ScimError> {
    serde_urlencoded::from_str(req.query_string())
        .map_err(|_| ScimError::invalid_value("the query string is malformed"))
}

/// The resource type a route serves (set as resource data at registration).
type Kind = web::Data<ResourceType>;

async fn list(auth: ScimAuth, state: web::Data<AppState>, rt: Kind, req: HttpRequest) -> Reply {
    let q = ListQuery::from_pairs(&query_pairs(&req)?)?;
    Ok(scim_json(
        200,
        &state.scim.list(auth.0.org_id, **rt, &q).await?,
    ))
}

async fn search(auth: ScimAuth, state: web::Data<AppState>, rt: Kind, body: ScimBody) -> Reply {
    let q = ListQuery::from_search_body(&body.0)?;
    Ok(scim_json(
        200,
        &state.scim.list(auth.0.org_id, **rt, &q).await?,
    ))
}

/// `POST /.search` at the root (RFC 7644 §3.4.3): users, then groups. A
/// filter must make sense for both types (an attribute either lacks is a 400).
async fn search_root(auth: ScimAuth, state: web::Data<AppState>, body: ScimBody) -> Reply {
    let q = ListQuery::from_search_body(&body.0)?;
    if q.cursor.is_some() {
        return Err(ScimError::invalid_value(
            "cursors are offered per resource type: search /Users or /Groups",
        )
        .into());
    }
    let want = q.count.unwrap_or(super::list::DEFAULT_PAGE).min(MAX_PAGE);
    let skip = q.start_index.saturating_sub(1);
    // Fetch enough of each type to cover the window, then cut it.
    let mut window = q.clone();
    window.start_index = 1;
    window.count = Some((skip + want).min(MAX_PAGE * 2));
    let users = state
        .scim
        .list(auth.0.org_id, ResourceType::User, &window)
        .await?;
    let groups = state
        .scim
        .list(auth.0.org_id, ResourceType::Group, &window)
        .await?;
    let total =
        users["totalResults"].as_u64().unwrap_or(0) + groups["totalResults"].as_u64().unwrap_or(0);
    let all: Vec<Value> = [users, groups]
        .into_iter()
        .flat_map(|l| l["Resources"].as_array().cloned().unwrap_or_default())
        .skip(skip as usize)
        .take(want as usize)
        .collect();
    Ok(scim_json(
        200,
        &list_response(total, q.start_index.max(1), all, None),
    ))
}

async fn bulk(auth: ScimAuth, state: web::Data<AppState>, body: ScimBody) -> Reply {
    let limit = state.config.http.body_limit;
    let len = body.1;
    Ok(scim_json(
        200,
        &state.scim.bulk(auth.0.org_id, &body.0, len, limit).await?,
    ))
}

async fn create(
    auth: ScimAuth,
    state: web::Data<AppState>,
    rt: Kind,
    req: HttpRequest,
    body: ScimBody,
) -> Reply {
    let p = projection(&req)?;
    let r = state.scim.create(**rt, auth.0.org_id, &body.0, &p).await?;
    Ok(respond(201, r))
}

async fn get(
    auth: ScimAuth,
    state: web::Data<AppState>,
    rt: Kind,
    req: HttpRequest,
    id: web::Path<String>,
) -> Reply {
    let p = projection(&req)?;
    let r = state.scim.get(**rt, auth.0.org_id, &id, &p).await?;
    Ok(respond_get(&req, r))
}

async fn replace(
    auth: ScimAuth,
    state: web::Data<AppState>,
    rt: Kind,
    req: HttpRequest,
    id: web::Path<String>,
    body: ScimBody,
) -> Reply {
    let p = projection(&req)?;
    let pre = precondition(&req);
    let r = state
        .scim
        .replace(**rt, auth.0.org_id, &id, &body.0, &pre, &p)
        .await?;
    Ok(respond(200, r))
}

async fn patch(
    auth: ScimAuth,
    state: web::Data<AppState>,
    rt: Kind,
    req: HttpRequest,
    id: web::Path<String>,
    body: ScimBody,
) -> Reply {
    let p = projection(&req)?;
    let pre = precondition(&req);
    let r = state
        .scim
        .patch(**rt, auth.0.org_id, &id, &body.0, &pre, &p)
        .await?;
    Ok(respond(200, r))
}

async fn delete(
    auth: ScimAuth,
    state: web::Data<AppState>,
    rt: Kind,
    req: HttpRequest,
    id: web::Path<String>,
) -> Reply {
    state
        .scim
        .delete(**rt, auth.0.org_id, &id, &precondition(&req))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// RFC 7643 §5.
async fn service_provider_config(_auth: ScimAuth, state: web::Data<AppState>) -> Reply {
    let base = state.config.http.public_url.as_str();
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "documentationUri": format!("{base}/"),
        "patch": {"supported": true},
        "bulk": {
            "supported": true,
            "maxOperations": super::bulk::MAX_OPERATIONS,
            "maxPayloadSize": state.config.http.body_limit
        },
        "filter": {"supported": true, "maxResults": MAX_PAGE},
        "pagination": {
            "cursor": true,
            "index": true,
            "defaultPaginationMethod": "index",
            "defaultPageSize": super::list::DEFAULT_PAGE,
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

/// RFC 7643 §6.
async fn resource_types(_auth: ScimAuth, state: web::Data<AppState>) -> Reply {
    let base = format!("{}/scim/v2", state.config.http.public_url.as_str());
    Ok(scim_json(200, &list_of(resource_types_json(&base))))
}

async fn resource_type(
    _auth: ScimAuth,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Reply {
    let base = format!("{}/scim/v2", state.config.http.public_url.as_str());
    resource_types_json(&base)
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
async fn schemas(_auth: ScimAuth, state: web::Data<AppState>) -> Reply {
    let base = format!("{}/scim/v2", state.config.http.public_url.as_str());
    Ok(scim_json(200, &list_of(schemas_json(&base))))
}

async fn schema(_auth: ScimAuth, state: web::Data<AppState>, id: web::Path<String>) -> Reply {
    let base = format!("{}/scim/v2", state.config.http.public_url.as_str());
    schemas_json(&base)
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
