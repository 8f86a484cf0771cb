//! The SCIM 2.0 service provider under `/scim/v2`. `protocol` is pure;
//! `handlers` are thin actix adapters.

mod bulk;
mod groups;
mod handlers;
mod list;
mod password;
pub mod protocol;
pub mod query;
mod service;
mod users;

pub use service::{
    Precondition, PreparedWrites, Projection, ScimResource, ScimService, UserChange,
    UserChangeHook, etag, etag_matches,
};

pub use handlers::configure;
