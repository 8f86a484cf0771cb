//! Invitations: issued in the same transaction as the SCIM change that calls
//! for one (through [`crate::scim::UserChangeHook`]), mailed through the
//! durable outbox, resent or revoked by admins, voided by deprovisioning.
//! Knows no HTTP.

pub mod email;
pub mod join;
pub mod outbox;
mod service;

pub use service::{InvitationError, InvitationService, InvitationView};
