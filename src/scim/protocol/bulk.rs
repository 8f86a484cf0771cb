//! Bulk requests (RFC 7644 §3.7): parse and check limits, resolve `bulkId:`
//! references, order operations so a reference runs after its definition
//! (cycles reported, §3.7.1–3.7.2), and render the BulkResponse.
//!
//! It must never execute an operation: the server runs each one through its
//! usual service calls, in the order [`plan_order`] gives.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value, json};

use super::error::{ScimError, ScimType};
use super::schema::ResourceType;
use super::values::get_ci;
use super::{BULK_REQUEST_URN, BULK_RESPONSE_URN};

/// The prefix of a bulk reference inside data or a path (RFC 7644 §3.7.2).
pub const BULK_ID_PREFIX: &str = "bulkId:";

/// Server limits advertised in ServiceProviderConfig `bulk` (RFC 7643 §5, RFC 7644 §3.7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkLimits {
    /// `maxOperations`.
    pub max_operations: usize,
    /// `maxPayloadSize` in bytes.
    pub max_payload_bytes: usize,
}

/// The HTTP method of one bulk operation (RFC 7644 §3.7), read case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkMethod {
    /// Create.
    Post,
    /// Replace.
    Put,
    /// Modify.
    Patch,
    /// Delete.
    Delete,
}

impl BulkMethod {
    /// The method name as the BulkResponse spells it (RFC 7644 §3.7.3).
    pub fn as_str(self) -> &'static str {
        match self {
            BulkMethod::Post => "POST",
            BulkMethod::Put => "PUT",
            BulkMethod::Patch => "PATCH",
            BulkMethod::Delete => "DELETE",
        }
    }
}

/// One valid bulk operation (RFC 7644 §3.7).
#[derive(Debug, Clone, PartialEq)]
pub struct BulkOperation {
    /// The method.
    pub method: BulkMethod,
    /// `bulkId`, required for POST (RFC 7644 §3.7).
    pub bulk_id: Option<String>,
    /// `version`, an ETag for If-Match semantics (RFC 7644 §3.7, §3.14).
    pub version: Option<String>,
    /// The resource type named by `path`.
    pub resource: ResourceType,
    /// The resource id from `path` (`/Users/{id}`), possibly `bulkId:x`; `None` for POST.
    pub id: Option<String>,
    /// `data`: the resource (POST/PUT) or PatchOp body (PATCH).
    pub data: Option<Value>,
}

/// A bulk operation that could not be read; reported in the response, not fatal (RFC 7644 §3.7.3).
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidBulkOp {
    /// The `method` as sent, if any.
    pub method: Option<String>,
    /// The `bulkId` as sent, if any.
    pub bulk_id: Option<String>,
    /// Why it is invalid.
    pub error: ScimError,
}

/// One entry of a bulk request: a valid operation or the reason it is not (RFC 7644 §3.7).
pub type BulkEntry = Result<BulkOperation, InvalidBulkOp>;

/// A parsed BulkRequest (RFC 7644 §3.7).
#[derive(Debug, Clone, PartialEq)]
pub struct BulkRequest {
    /// `failOnErrors` (RFC 7644 §3.7.3).
    pub fail_on_errors: Option<u64>,
    /// The operations, in request order.
    pub operations: Vec<BulkEntry>,
}

fn too_large(detail: String) -> ScimError {
    ScimError::payload_too_large(detail)
}

fn parse_target(
    method: BulkMethod,
    path: &str,
) -> Result<(ResourceType, Option<String>), ScimError> {
    let trimmed = path.trim().trim_start_matches('/');
    let (kind, id) = match trimmed.split_once('/') {
        Some((k, id)) => (k, Some(id)),
        None => (trimmed, None),
    };
    let rt = if kind.eq_ignore_ascii_case("Users") {
        ResourceType::User
    } else if kind.eq_ignore_ascii_case("Groups") {
        ResourceType::Group
    } else {
        return Err(ScimError::invalid_path(format!(
            "unsupported bulk path '{path}'"
        )));
    };
    match (method, id) {
        (BulkMethod::Post, None) => Ok((rt, None)),
        (BulkMethod::Post, Some(_)) => Err(ScimError::invalid_path(
            "POST must target /Users or /Groups",
        )),
        (_, Some(id)) if !id.is_empty() && !id.contains('/') => Ok((rt, Some(id.to_string()))),
        _ => Err(ScimError::invalid_path(format!(
            "{} needs a path like /Users/{{id}}",
            method.as_str()
        ))),
    }
}

fn parse_entry(v: &Value) -> BulkEntry {
    let obj = v.as_object();
    let text = |k: &str| {
        obj.and_then(|o| get_ci(o, k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let method_raw = text("method");
    let bulk_id = text("bulkId");
    let fail = |error: ScimError| InvalidBulkOp {
        method: method_raw.clone(),
        bulk_id: bulk_id.clone(),
        error,
    };
    let Some(obj) = obj else {
        return Err(fail(ScimError::invalid_syntax(
            "each bulk operation must be an object",
        )));
    };
    let method = match method_raw
        .as_deref()
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        Some("POST") => BulkMethod::Post,
        Some("PUT") => BulkMethod::Put,
        Some("PATCH") => BulkMethod::Patch,
        Some("DELETE") => BulkMethod::Delete,
        _ => {
            return Err(fail(ScimError::invalid_value(
                "'method' must be POST, PUT, PATCH or DELETE",
            )));
        }
    };
    if method == BulkMethod::Post && bulk_id.as_deref().is_none_or(str::is_empty) {
        return Err(fail(ScimError::invalid_value(
            "POST operations require a 'bulkId'",
        )));
    }
    let Some(path) = text("path") else {
        return Err(fail(ScimError::invalid_path(
            "each bulk operation needs a 'path'",
        )));
    };
    let (resource, id) = parse_target(method, &path).map_err(&fail)?;
    let data = get_ci(obj, "data").filter(|d| !d.is_null()).cloned();
    if method != BulkMethod::Delete && !data.as_ref().is_some_and(Value::is_object) {
        return Err(fail(ScimError::invalid_syntax(format!(
            "{} operations need a 'data' object",
            method.as_str()
        ))));
    }
    Ok(BulkOperation {
        method,
        bulk_id,
        version: text("version"),
        resource,
        id,
        data,
    })
}

/// Parses a BulkRequest (RFC 7644 §3.7). `payload_len` is the body size in bytes;
/// exceeding `maxPayloadSize` or `maxOperations` is 413 (RFC 7644 §3.7.4). A bad
/// envelope is `invalidSyntax`; a bad operation becomes an [`InvalidBulkOp`] entry.
pub fn parse_bulk(
    body: &Value,
    payload_len: usize,
    limits: &BulkLimits,
) -> Result<BulkRequest, ScimError> {
    if payload_len > limits.max_payload_bytes {
        return Err(too_large(format!(
            "The size of the bulk operation exceeds the maxPayloadSize ({}).",
            limits.max_payload_bytes
        )));
    }
    let obj: &Map<String, Value> = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("BulkRequest must be a JSON object"))?;
    let ok_schema = get_ci(obj, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .any(|s| s.eq_ignore_ascii_case(BULK_REQUEST_URN))
        });
    if !ok_schema {
        return Err(ScimError::invalid_syntax(format!(
            "'schemas' must contain {BULK_REQUEST_URN}"
        )));
    }
    let ops = get_ci(obj, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::invalid_syntax("'Operations' must be an array"))?;
    if ops.len() > limits.max_operations {
        return Err(too_large(format!(
            "The number of operations exceeds the maxOperations ({}).",
            limits.max_operations
        )));
    }
    let fail_on_errors = match get_ci(obj, "failOnErrors") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().filter(|n| *n >= 1).ok_or_else(|| {
            ScimError::invalid_value("'failOnErrors' must be a positive integer")
        })?),
    };
    let operations: Vec<BulkEntry> = ops.iter().map(parse_entry).collect();
    // A bulkId names one operation in the request (RFC 7644 §3.7): with two,
    // a `bulkId:` reference could mean either.
    let mut seen = std::collections::HashSet::new();
    for id in operations.iter().filter_map(|op| match op {
        Ok(op) => op.bulk_id.as_deref(),
        Err(invalid) => invalid.bulk_id.as_deref(),
    }) {
        if !seen.insert(id) {
            let shown: String = id.chars().take(80).collect();
            return Err(ScimError::invalid_value(format!(
                "bulkId '{shown}' is used by more than one operation; each must be unique within the request"
            )));
        }
    }
    Ok(BulkRequest {
        fail_on_errors,
        operations,
    })
}

/// A `bulkId` that no earlier operation defined (RFC 7644 §3.7.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bulkId '{0}' could not be resolved")]
pub struct Unresolved(pub String);

impl Unresolved {
    /// The error to report for the operation (RFC 7644 §3.7.2: 409 with `invalidValue`).
    pub fn to_scim_error(&self) -> ScimError {
        ScimError::new(409, Some(ScimType::InvalidValue), self.to_string())
    }
}

/// Replaces one `bulkId:x` string (e.g. a path id) with the id it was given (RFC 7644 §3.7.2).
pub fn resolve_id(id: &str, resolved: &HashMap<String, String>) -> Result<String, Unresolved> {
    match id.strip_prefix(BULK_ID_PREFIX) {
        None => Ok(id.to_string()),
        Some(b) => resolved
            .get(b)
            .cloned()
            .ok_or_else(|| Unresolved(b.to_string())),
    }
}

/// Replaces every string `"bulkId:x"` anywhere in `data` (members' `value` included)
/// with the resource id created for `x` (RFC 7644 §3.7.2). Iterative: no recursion limit.
pub fn resolve_bulk_ids(
    data: &mut Value,
    resolved: &HashMap<String, String>,
) -> Result<(), Unresolved> {
    let mut stack: Vec<&mut Value> = vec![data];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) if s.starts_with(BULK_ID_PREFIX) => *s = resolve_id(s, resolved)?,
            Value::Array(items) => stack.extend(items.iter_mut()),
            Value::Object(m) => stack.extend(m.values_mut()),
            _ => {}
        }
    }
    Ok(())
}

/// Every `bulkId` an operation refers to, in its path or data (RFC 7644 §3.7.2).
pub fn references(op: &BulkOperation) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let Some(b) = op
        .id
        .as_deref()
        .and_then(|id| id.strip_prefix(BULK_ID_PREFIX))
    {
        out.insert(b.to_string());
    }
    let mut stack: Vec<&Value> = op.data.iter().collect();
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) => {
                if let Some(b) = s.strip_prefix(BULK_ID_PREFIX) {
                    out.insert(b.to_string());
                }
            }
            Value::Array(items) => stack.extend(items.iter()),
            Value::Object(m) => stack.extend(m.values()),
            _ => {}
        }
    }
    out
}

/// The order to run a bulk request in (RFC 7644 §3.7.1–3.7.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BulkPlan {
    /// Indices to run, in order: request order, except that an operation using
    /// `bulkId:x` comes after the POST defining `x`.
    pub order: Vec<usize>,
    /// Indices that can never run because their references form a cycle (or wait on one).
    pub cyclic: Vec<usize>,
}

/// Orders operations so each reference follows its definition (RFC 7644 §3.7.2);
/// references to undefined bulkIds do not constrain the order (they fail when
/// resolved); operations caught in a cycle are listed in `cyclic` (RFC 7644 §3.7.1).
pub fn plan_order(ops: &[BulkEntry]) -> BulkPlan {
    let mut defined: HashMap<&str, usize> = HashMap::new();
    for (i, e) in ops.iter().enumerate() {
        if let Ok(op) = e
            && op.method == BulkMethod::Post
            && let Some(b) = op.bulk_id.as_deref()
        {
            defined.entry(b).or_insert(i);
        }
    }
    let deps: Vec<BTreeSet<usize>> = ops
        .iter()
        .map(|e| match e {
            Ok(op) => references(op)
                .iter()
                .filter_map(|r| defined.get(r.as_str()).copied())
                .collect(),
            Err(_) => BTreeSet::new(),
        })
        .collect();
    let mut done = vec![false; ops.len()];
    let mut plan = BulkPlan::default();
    loop {
        let next = (0..ops.len()).find(|&i| {
            !done.get(i).copied().unwrap_or(true)
                && deps.get(i).is_some_and(|d| {
                    d.iter()
                        .all(|&j| j != i && done.get(j).copied().unwrap_or(false))
                })
        });
        match next {
            Some(i) => {
                if let Some(d) = done.get_mut(i) {
                    *d = true;
                }
                plan.order.push(i);
            }
            None => break,
        }
    }
    plan.cyclic = (0..ops.len())
        .filter(|i| !done.get(*i).copied().unwrap_or(true))
        .collect();
    plan
}

/// The result of one bulk operation (RFC 7644 §3.7.3).
#[derive(Debug, Clone, PartialEq)]
pub struct BulkOpResult {
    /// `method` as sent.
    pub method: String,
    /// `bulkId`, echoed for POST.
    pub bulk_id: Option<String>,
    /// `version` (ETag) of the resulting resource.
    pub version: Option<String>,
    /// `location` of the resource.
    pub location: Option<String>,
    /// HTTP status of the operation.
    pub status: u16,
    /// `response`: the error body for failures (or the resource, if the server chooses).
    pub response: Option<Value>,
}

impl BulkOpResult {
    /// A failed operation carrying its SCIM error as `response` (RFC 7644 §3.7.3).
    pub fn error(method: &str, bulk_id: Option<String>, err: &ScimError) -> Self {
        BulkOpResult {
            method: method.to_string(),
            bulk_id,
            version: None,
            location: None,
            status: err.status,
            response: Some(err.to_json()),
        }
    }
}

/// The BulkResponse body (RFC 7644 §3.7.3); `status` is a string as in the RFC examples.
pub fn bulk_response(results: Vec<BulkOpResult>) -> Value {
    let ops: Vec<Value> = results
        .into_iter()
        .map(|r| {
            let mut m = Map::new();
            m.insert("method".into(), Value::String(r.method));
            let optional = [
                ("bulkId", r.bulk_id),
                ("version", r.version),
                ("location", r.location),
            ];
            for (k, v) in optional {
                if let Some(v) = v {
                    m.insert(k.into(), Value::String(v));
                }
            }
            m.insert("status".into(), Value::String(r.status.to_string()));
            if let Some(resp) = r.response {
                m.insert("response".into(), resp);
            }
            Value::Object(m)
        })
        .collect();
    json!({"schemas": [BULK_RESPONSE_URN], "Operations": ops})
}

#[cfg(test)]
mod tests;
