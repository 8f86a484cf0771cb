//! Organizations and their SCIM bearer tokens: creating them, and turning a
//! presented token into the organization it belongs to. Knows no HTTP.

mod cache;
mod service;

pub use service::{NewOrg, OrgCache, ScimPrincipal, TenancyError, TenancyService};
