//! Registration: what happens after a person signs in with their
//! organization's provider — for an invitation (the path decided by
//! [`decide`], the new path completed in one transaction) or for a later
//! sign-in — and the pages that carry it ([`pages`]).

pub mod decide;
pub mod pages;
mod service;

pub use decide::{Path, decide};
pub use pages::RegistrationPages;
pub use service::{NewSession, RegistrationError, RegistrationService, SignedIn};
