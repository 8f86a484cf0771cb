//! Single sign-on with each organization's identity provider (OpenID
//! Connect): the connection and its matching rule ([`connection`], pure),
//! the relying party on the `openidconnect` crate ([`client`]), back-channel
//! logout tokens ([`logout`]), and the use cases ([`SsoService`]). Produces a
//! [`VerifiedIdentity`]; what it means for an account is `registration`'s
//! business.

pub mod client;
pub mod connection;
pub mod logout;
mod service;

pub use client::{CheckReport, OidcError, VerifiedIdentity};
pub use connection::{MatchRule, Mismatch, check_match};
pub use service::{
    Arrival, CallbackQuery, ConnectionView, Departure, SetConnection, SsoError, SsoService,
};
