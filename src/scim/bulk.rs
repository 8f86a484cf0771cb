//! Bulk (RFC 7644 §3.7): operations run in request order, except that one
//! using `bulkId:x` runs after the POST that defines `x`. Each operation is
//! its own transaction, exactly as if sent alone; `failOnErrors` stops the
//! run after that many failures.

use std::collections::HashMap;

use serde_json::Value;
use uuid::Uuid;

use super::protocol::{
    BulkLimits, BulkMethod, BulkOpResult, BulkOperation, ScimError, bulk_response, parse_bulk,
    plan_order, resolve_bulk_ids, resolve_id,
};
use super::service::{Precondition, Projection, ScimResource, ScimResult, ScimService};

/// Most operations in one request (advertised as `bulk.maxOperations`).
pub const MAX_OPERATIONS: usize = 1000;
/// Most operations of one request that set a password: each is a slow hash
/// (~20 ms of a core and 19 MiB), so this bounds a request's cost.
pub const MAX_PASSWORDS: usize = 20;

/// Whether an operation sets a password (in a resource, or by PATCH).
fn sets_password(op: &BulkOperation) -> bool {
    let Some(Value::Object(data)) = &op.data else {
        return false;
    };
    let key = |o: &serde_json::Map<String, Value>, name: &str| {
        o.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let has_key = |o: &serde_json::Map<String, Value>| key(o, "password").is_some();
    if has_key(data) {
        return true;
    }
    let ops = key(data, "Operations");
    let ops = ops.as_ref().and_then(Value::as_array);
    ops.is_some_and(|ops| {
        ops.iter().any(|o| {
            let path = o
                .get("path")
                .and_then(Value::as_str)
                .is_some_and(|p| p.trim().eq_ignore_ascii_case("password"));
            let value = o
                .get("value")
                .and_then(Value::as_object)
                .is_some_and(has_key);
            path || value
        })
    })
}

impl ScimService {
    pub async fn bulk(
        &self,
        org_id: Uuid,
        body: &Value,
        payload_len: usize,
        max_payload: usize,
    ) -> ScimResult<Value> {
        let limits = BulkLimits {
            max_operations: MAX_OPERATIONS,
            max_payload_bytes: max_payload,
        };
        let request = parse_bulk(body, payload_len, &limits)?;
        let passwords = request
            .operations
            .iter()
            .filter(|op| op.as_ref().is_ok_and(sets_password))
            .count();
        if passwords > MAX_PASSWORDS {
            return Err(ScimError::invalid_value(format!(
                "at most {MAX_PASSWORDS} operations of one Bulk request may set a password ({passwords} do); send them in several requests"
            ))
            .into());
        }
        let plan = plan_order(&request.operations);
        let mut results = Vec::with_capacity(request.operations.len());
        let mut ids: HashMap<String, String> = HashMap::new();
        let mut failures = 0u64;
        for index in plan.order {
            if request.fail_on_errors.is_some_and(|max| failures >= max) {
                break;
            }
            let result = match &request.operations[index] {
                Err(invalid) => BulkOpResult::error(
                    invalid.method.as_deref().unwrap_or(""),
                    invalid.bulk_id.clone(),
                    &invalid.error,
                ),
                Ok(op) => match self.bulk_one(org_id, op, &ids).await {
                    Ok(done) => {
                        if let (Some(bulk_id), BulkMethod::Post) = (&op.bulk_id, op.method) {
                            let id = done
                                .location
                                .rsplit('/')
                                .next()
                                .unwrap_or_default()
                                .to_string();
                            ids.insert(bulk_id.clone(), id);
                        }
                        let status = match op.method {
                            BulkMethod::Post => 201,
                            BulkMethod::Delete => 204,
                            _ => 200,
                        };
                        BulkOpResult {
                            method: op.method.as_str().to_string(),
                            bulk_id: op.bulk_id.clone(),
                            version: (!done.etag.is_empty()).then(|| done.etag.clone()),
                            location: Some(done.location),
                            status,
                            response: None,
                        }
                    }
                    Err(e) => {
                        BulkOpResult::error(op.method.as_str(), op.bulk_id.clone(), &e.into_scim())
                    }
                },
            };
            if result.status >= 400 {
                failures += 1;
            }
            results.push(result);
        }
        for index in plan.cyclic {
            if let Ok(op) = &request.operations[index] {
                let e = ScimError::conflict("the operation's bulkId references form a cycle");
                results.push(BulkOpResult::error(
                    op.method.as_str(),
                    op.bulk_id.clone(),
                    &e,
                ));
            }
        }
        Ok(bulk_response(results))
    }

    async fn bulk_one(
        &self,
        org_id: Uuid,
        op: &BulkOperation,
        ids: &HashMap<String, String>,
    ) -> ScimResult<ScimResource> {
        let mut data = op.data.clone().unwrap_or(Value::Null);
        resolve_bulk_ids(&mut data, ids).map_err(|u| u.to_scim_error())?;
        let id = op
            .id
            .as_deref()
            .map(|id| resolve_id(id, ids).map_err(|u| u.to_scim_error()))
            .transpose()?;
        let pre = Precondition {
            if_match: op.version.clone(),
        };
        // Bulk responses carry locations, not bodies: skip rendering members.
        let projection = Projection {
            attributes: Vec::new(),
            excluded: vec![super::protocol::AttrPath {
                urn: None,
                name: "members".into(),
                sub: None,
            }],
        };
        let need_id = || {
            id.clone()
                .ok_or_else(|| ScimError::invalid_path("the operation needs a resource id"))
        };
        let rt = op.resource;
        match op.method {
            BulkMethod::Post => self.create(rt, org_id, &data, &projection).await,
            BulkMethod::Put => {
                self.replace(rt, org_id, &need_id()?, &data, &pre, &projection)
                    .await
            }
            BulkMethod::Patch => {
                self.patch(rt, org_id, &need_id()?, &data, &pre, &projection)
                    .await
            }
            BulkMethod::Delete => {
                let id = need_id()?;
                self.delete(rt, org_id, &id, &pre).await?;
                Ok(ScimResource {
                    body: Value::Null,
                    etag: String::new(),
                    location: self.location(rt, Uuid::parse_str(&id).unwrap_or_default()),
                })
            }
        }
    }
}
