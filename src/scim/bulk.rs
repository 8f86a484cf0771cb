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
use super::service::{Precondition, Projection, ScimResource, ScimService};

/// Most operations in one request (advertised as `bulk.maxOperations`).
pub const MAX_OPERATIONS: usize = 1000;

impl ScimService {
    pub async fn bulk(
        &self,
        org_id: Uuid,
        body: &Value,
        payload_len: usize,
        max_payload: usize,
    ) -> Result<Value, ScimError> {
        let limits = BulkLimits {
            max_operations: MAX_OPERATIONS,
            max_payload_bytes: max_payload,
        };
        let request = parse_bulk(body, payload_len, &limits)?;
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
                    Err(e) => BulkOpResult::error(op.method.as_str(), op.bulk_id.clone(), &e),
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
    ) -> Result<ScimResource, ScimError> {
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
