//! The pure SCIM 2.0 protocol layer (RFC 7643 schemas, RFC 7644 protocol):
//! errors, schemas and discovery, filters, PATCH paths and operations,
//! projection, list queries and bulk requests.
//!
//! Everything here turns text and JSON into typed values or a [`ScimError`],
//! and applies PATCH to a resource held in memory. It must never import a web
//! framework, a database driver or an async runtime, and never perform I/O.
//! Siblings are referred to with `super::` so the folder can move as a whole.

pub mod bulk;
pub mod discovery;
pub mod error;
pub mod filter;
pub mod list;
pub mod normalize;
pub mod patch;
pub mod path;
pub mod projection;
pub mod schema;
mod schema_defs;
mod values;

#[cfg(test)]
mod fuzz_seeds;

pub use bulk::{
    BulkEntry, BulkLimits, BulkMethod, BulkOpResult, BulkOperation, BulkPlan, BulkRequest,
    InvalidBulkOp, Unresolved, bulk_response, parse_bulk, plan_order, resolve_bulk_ids, resolve_id,
};
pub use discovery::{resource_types_json, schemas_json};
pub use error::{ScimError, ScimType};
pub use filter::{AttrPath, CompValue, CompareOp, Filter, matches, parse_filter};
pub use list::{ListQuery, SortOrder, list_response};
pub use normalize::{Normalized, normalize_resource};
pub use patch::{
    MAX_MEMBERS_PER_REQUEST, MAX_VALUES, MemberChange, PatchOp, PatchOperation, PatchOutcome,
    PatchRequest, apply_patch, parse_patch,
};
pub use path::{PatchPath, parse_attribute_list, parse_path};
pub use projection::{project, wants_members};
pub use schema::{
    AttrType, AttributeDef, Mutability, Resolved, ResourceType, Returned, Uniqueness, Usage,
    resolve,
};

/// Core User schema URN (RFC 7643 §4.1).
pub const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// Enterprise User extension URN (RFC 7643 §4.3).
pub const ENTERPRISE_USER_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// Core Group schema URN (RFC 7643 §4.2).
pub const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// Schema resource URN for `/Schemas` entries (RFC 7643 §7).
pub const SCHEMA_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
/// ResourceType resource URN for `/ResourceTypes` entries (RFC 7643 §6).
pub const RESOURCE_TYPE_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
/// ServiceProviderConfig URN (RFC 7643 §5).
pub const SERVICE_PROVIDER_CONFIG_URN: &str =
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
/// ListResponse message URN (RFC 7644 §3.4.2).
pub const LIST_RESPONSE_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// SearchRequest message URN (RFC 7644 §3.4.3).
pub const SEARCH_REQUEST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
/// PatchOp message URN (RFC 7644 §3.5.2).
pub const PATCH_OP_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// BulkRequest message URN (RFC 7644 §3.7).
pub const BULK_REQUEST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
/// BulkResponse message URN (RFC 7644 §3.7).
pub const BULK_RESPONSE_URN: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";
/// Error message URN (RFC 7644 §3.12).
pub const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
