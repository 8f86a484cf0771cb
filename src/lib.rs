//! onramp: brings a company's employees from its corporate directory (SCIM
//! 2.0) into a business-buying platform — an invitation by mail for every
//! provisioned person, registration by corporate SSO.
//!
//! The crate is the server's library; `main.rs` is only the CLI around it.

pub mod accounts;
pub mod cli;
pub mod config;
pub mod housekeeping;
pub mod http;
pub mod invitations;
pub mod mail;
pub mod oidc;
pub mod registration;
pub mod scim;
pub mod secrets;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tenancy;
pub mod work;
