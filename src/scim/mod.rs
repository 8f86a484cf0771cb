//! The SCIM 2.0 service provider under `/scim/v2`. `protocol` is pure;
//! `handlers` are thin actix adapters.

mod handlers;
pub mod protocol;
pub mod query;

pub use handlers::configure;
