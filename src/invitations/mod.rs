//! Invitations: issued in the same transaction as the SCIM change that calls
//! for one (a [`crate::scim::events::Subscriber`], its rule in [`rule`]),
//! mailed through the durable outbox, resent or revoked by administrators,
//! voided by deprovisioning; and the pages a person reaches from the link.

mod completion;
pub mod join;
pub mod pages;
pub mod rule;
mod service;
mod subscriber;

pub use completion::InvitationMailCompletion;
pub use service::{InvitationError, InvitationService, InvitationView};

/// The outbox kind of invitation mail.
pub const MAIL_KIND: &str = "invitation";
