//! SCIM error values and their RFC 7644 §3.12 JSON form.
//!
//! Every fallible function in `protocol` returns [`ScimError`]. This module
//! must never log, never look at HTTP or storage types, and never put internal
//! causes (database messages, stack traces) into `detail`.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::fmt;

use super::ERROR_URN;

/// The `scimType` error keywords of RFC 7644 §3.12, Table 9.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ScimType {
    /// The filter syntax was invalid or the attribute/comparison is not supported (RFC 7644 §3.12).
    InvalidFilter,
    /// The filter yields too many results for the server (RFC 7644 §3.12).
    TooMany,
    /// A value would violate a uniqueness constraint (RFC 7644 §3.12).
    Uniqueness,
    /// The request tried to modify an immutable or read-only attribute (RFC 7644 §3.12).
    Mutability,
    /// The request body structure was invalid (RFC 7644 §3.12).
    InvalidSyntax,
    /// The `path` attribute was invalid or malformed (RFC 7644 §3.12).
    InvalidPath,
    /// The path did not yield an attribute or value that could be operated on (RFC 7644 §3.12).
    NoTarget,
    /// A required value was missing or a value is incompatible with the attribute (RFC 7644 §3.12).
    InvalidValue,
    /// The specified SCIM protocol version is not supported (RFC 7644 §3.12).
    InvalidVers,
    /// The request cannot be completed because of sensitive information in the URI (RFC 7644 §3.12).
    Sensitive,
}

impl ScimType {
    /// The keyword exactly as RFC 7644 §3.12 spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidVers => "invalidVers",
            ScimType::Sensitive => "sensitive",
        }
    }
}

impl fmt::Display for ScimType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A SCIM error response (RFC 7644 §3.12): HTTP status, optional `scimType`, human-readable detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ScimError {
    /// HTTP status code (RFC 7644 §3.12 `status`).
    pub status: u16,
    /// The `scimType` keyword, for 400/409/413-style errors (RFC 7644 §3.12).
    pub scim_type: Option<ScimType>,
    /// Human-readable explanation, safe to show to the client (RFC 7644 §3.12 `detail`).
    pub detail: String,
}

impl fmt::Display for ScimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scim_type {
            Some(t) => write!(f, "{} {}: {}", self.status, t, self.detail),
            None => write!(f, "{}: {}", self.status, self.detail),
        }
    }
}

impl ScimError {
    /// Builds an error from its parts (RFC 7644 §3.12).
    pub fn new(status: u16, scim_type: Option<ScimType>, detail: impl Into<String>) -> Self {
        ScimError {
            status,
            scim_type,
            detail: detail.into(),
        }
    }

    fn bad(t: ScimType, detail: impl Into<String>) -> Self {
        Self::new(400, Some(t), detail)
    }

    /// 400 `invalidFilter` (RFC 7644 §3.12, §3.4.2.2).
    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::InvalidFilter, detail)
    }
    /// 400 `invalidSyntax` (RFC 7644 §3.12).
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::InvalidSyntax, detail)
    }
    /// 400 `invalidPath` (RFC 7644 §3.12, §3.5.2).
    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::InvalidPath, detail)
    }
    /// 400 `noTarget` (RFC 7644 §3.12, §3.5.2).
    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::NoTarget, detail)
    }
    /// 400 `invalidValue` (RFC 7644 §3.12).
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::InvalidValue, detail)
    }
    /// 400 `mutability` (RFC 7644 §3.12, RFC 7643 §2.2).
    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::Mutability, detail)
    }
    /// 400 `invalidVers` (RFC 7644 §3.12, §3.13).
    pub fn invalid_vers(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::InvalidVers, detail)
    }
    /// 403 `sensitive` (RFC 7644 §3.12, §7.5.2).
    pub fn sensitive(detail: impl Into<String>) -> Self {
        Self::new(403, Some(ScimType::Sensitive), detail)
    }
    /// 409 `uniqueness` (RFC 7644 §3.12, §3.3).
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self::new(409, Some(ScimType::Uniqueness), detail)
    }
    /// 400 `tooMany`: the filter would return more results than allowed (RFC 7644 §3.12).
    pub fn too_many(detail: impl Into<String>) -> Self {
        Self::bad(ScimType::TooMany, detail)
    }
    /// 404 Not Found (RFC 7644 §3.12).
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, None, detail)
    }
    /// 409 Conflict without a `scimType` (RFC 7644 §3.12).
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(409, None, detail)
    }
    /// 412 Precondition Failed, e.g. an `If-Match` ETag mismatch (RFC 7644 §3.12, §3.14).
    pub fn precondition_failed(detail: impl Into<String>) -> Self {
        Self::new(412, None, detail)
    }
    /// 401 Unauthorized (RFC 7644 §3.12, §2).
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(401, None, detail)
    }
    /// 403 Forbidden (RFC 7644 §3.12).
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(403, None, detail)
    }
    /// 413 Payload Too Large, e.g. a bulk request over its limits (RFC 7644 §3.12, §3.7.4).
    pub fn payload_too_large(detail: impl Into<String>) -> Self {
        Self::new(413, None, detail)
    }
    /// 501 Not Implemented (RFC 7644 §3.12).
    pub fn not_implemented(detail: impl Into<String>) -> Self {
        Self::new(501, None, detail)
    }
    /// 500 Internal Server Error with a generic detail that reveals nothing (RFC 7644 §3.12).
    pub fn internal() -> Self {
        Self::new(500, None, "An internal error occurred.")
    }

    /// The RFC 7644 §3.12 error body; `status` is a JSON string as the RFC shows it.
    pub fn to_json(&self) -> Value {
        let mut body = json!({
            "schemas": [ERROR_URN],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let (Some(t), Some(obj)) = (self.scim_type, body.as_object_mut()) {
            obj.insert("scimType".into(), Value::String(t.as_str().into()));
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn error_body_has_status_as_string_and_scim_type() {
        let e = ScimError::invalid_filter("bad at column 3");
        assert_eq!(
            e.to_json(),
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": "400",
                "scimType": "invalidFilter",
                "detail": "bad at column 3"
            })
        );
    }

    #[test]
    fn not_found_has_no_scim_type() {
        let v = ScimError::not_found("User 1 not found").to_json();
        assert_eq!(v["status"], "404");
        assert!(v.get("scimType").is_none());
    }

    #[rstest]
    #[case(ScimError::invalid_syntax("x"), 400, Some("invalidSyntax"))]
    #[case(ScimError::invalid_path("x"), 400, Some("invalidPath"))]
    #[case(ScimError::no_target("x"), 400, Some("noTarget"))]
    #[case(ScimError::invalid_value("x"), 400, Some("invalidValue"))]
    #[case(ScimError::mutability("x"), 400, Some("mutability"))]
    #[case(ScimError::uniqueness("x"), 409, Some("uniqueness"))]
    #[case(ScimError::too_many("x"), 400, Some("tooMany"))]
    #[case(ScimError::invalid_vers("x"), 400, Some("invalidVers"))]
    #[case(ScimError::sensitive("x"), 403, Some("sensitive"))]
    #[case(ScimError::conflict("x"), 409, None)]
    #[case(ScimError::precondition_failed("x"), 412, None)]
    #[case(ScimError::unauthorized("x"), 401, None)]
    #[case(ScimError::forbidden("x"), 403, None)]
    #[case(ScimError::payload_too_large("x"), 413, None)]
    #[case(ScimError::not_implemented("x"), 501, None)]
    #[case(ScimError::internal(), 500, None)]
    fn constructors_set_status_and_type(
        #[case] e: ScimError,
        #[case] status: u16,
        #[case] t: Option<&str>,
    ) {
        assert_eq!(e.status, status);
        assert_eq!(e.scim_type.map(ScimType::as_str), t);
        let v = e.to_json();
        assert_eq!(v["status"], status.to_string());
        assert_eq!(v.get("scimType").and_then(Value::as_str), t);
    }

    #[test]
    fn scim_type_serializes_to_rfc_keyword() {
        let s = serde_json::to_string(&ScimType::InvalidVers).unwrap_or_default();
        assert_eq!(s, "\"invalidVers\"");
    }

    #[test]
    fn internal_error_detail_is_generic() {
        assert_eq!(ScimError::internal().detail, "An internal error occurred.");
    }
}
