//! Pure SCIM 2.0 protocol code (RFC 7643, RFC 7644): parsing and applying,
//! never I/O. Imports no actix, sqlx or tokio.

pub mod error;

pub use error::{ScimError, ScimType};
