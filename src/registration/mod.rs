//! Registration: what happens after a person signs in with their
//! organization's provider — for an invitation (the path decided by
//! [`decide`], the new path completed in one transaction) or for a later
//! sign-in; the other paths in [`steps`] (pure) and `paths` — and the pages
//! that carry it ([`pages`]).

pub mod decide;
pub mod pages;
mod path_pages;
mod paths;
mod service;
pub mod steps;

pub use decide::{Path, decide};
pub use pages::RegistrationPages;
pub use paths::{CODE_KIND, NOTICE_KIND};
pub use service::{
    Arrived, NewSession, RegistrationError, RegistrationService, SignedIn, StepView,
};
