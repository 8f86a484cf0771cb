//! The SCIM 2.0 service provider under `/scim/v2`. `protocol` is pure;
//! `handlers` are thin actix adapters; the use cases in between know no
//! actix. Changes are announced as [`events`] to the features that react
//! to them.

mod bulk;
pub mod events;
mod groups;
mod handlers;
mod list;
pub mod mapping;
pub mod protocol;
pub mod query;
mod service;
mod users;

pub use bulk::{MAX_OPERATIONS as MAX_BULK_OPERATIONS, MAX_PASSWORDS as MAX_BULK_PASSWORDS};
pub use handlers::{ENDPOINTS, ScimSettings, configure};
pub use service::{
    Precondition, Projection, ScimFailure, ScimResource, ScimResult, ScimService, etag,
    etag_matches,
};
