//! Secrets shared by every feature: random tokens stored only as hashes
//! (SCIM tokens, invitation links, sessions, one-time codes), CSRF values
//! for forms, and password hashing with a bound on how many hashes run at
//! once. Knows no HTTP and no storage.

pub mod csrf;
pub mod password;
pub mod sealed;
pub mod token;
