//! Storage: one trait per aggregate, gathered in [`Store`], and the
//! storage-neutral types they exchange. Only this module knows sqlx; nothing
//! above it sees a database type or a raw database message.
//!
//! A [`Store`] runs each call on its own; [`Store::begin`] opens a
//! [`Transaction`] that offers the same repositories and commits as one unit
//! (dropping it rolls back). Services own transactions.

pub mod accounts;
pub mod history;
pub mod invitations;
mod orgs;
pub mod outbox;
pub mod query;
pub mod scim;
pub mod sql;
pub mod sso;
mod time;
mod tokens;

use std::sync::Arc;

use async_trait::async_trait;

pub use accounts::AccountRepo;
pub use history::HistoryRepo;
pub use invitations::InvitationRepo;
pub use orgs::{OrgRepo, OrgSettings, Organization};
pub use outbox::OutboxRepo;
pub use scim::{ScimGroupRepo, ScimListRepo, ScimLogRepo, ScimUserRepo};
pub use sso::SsoRepo;
pub use time::Timestamp;
pub use tokens::{ScimTokenRecord, ScimTokenRepo};

/// Everything a repository call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness or foreign-key constraint refused the write. `constraint`
    /// names it as `<table>_<columns>_key` on both backends.
    #[error("conflict on {constraint}")]
    Conflict { constraint: String },
    /// A write made on what was read earlier found it changed (a version
    /// check failed): read again and retry, or report the conflict.
    #[error("a row changed since it was read")]
    Stale,
    /// A transaction was opened, or the store written, in a task that
    /// already has a transaction open: pass that transaction down instead
    /// (on SQLite the second would wait for the first forever).
    #[error("a transaction is already open in this task: pass it down instead of opening another")]
    NestedTransaction,
    /// Anything else: the database is unreachable, a query failed. The cause
    /// is for logs, never for users.
    #[error("storage failure: {0}")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    pub fn other(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Other(Box::new(e))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// All repositories, available both on the store and inside a transaction.
pub trait Repos:
    OrgRepo
    + ScimTokenRepo
    + ScimUserRepo
    + ScimGroupRepo
    + ScimListRepo
    + ScimLogRepo
    + InvitationRepo
    + OutboxRepo
    + SsoRepo
    + AccountRepo
    + HistoryRepo
    + Send
    + Sync
{
}
impl<T> Repos for T where
    T: OrgRepo
        + ScimTokenRepo
        + ScimUserRepo
        + ScimGroupRepo
        + ScimListRepo
        + ScimLogRepo
        + InvitationRepo
        + OutboxRepo
        + SsoRepo
        + AccountRepo
        + HistoryRepo
        + Send
        + Sync
{
}

/// Connection pool numbers for `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolState {
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

/// The whole storage: repositories plus transactions and housekeeping.
///
/// Writes made on the store itself each commit on their own. Writes made in
/// a [`Transaction`] commit together; the backend may hold them back until
/// the transaction needs an answer or commits, so a constraint or version
/// check they break may be reported by a later call or by `commit`.
#[async_trait]
pub trait Store: Repos {
    /// Opens a transaction. It takes no lock until it first reads; one that
    /// only writes is committed in one trip (with others, on SQLite). Fails
    /// with [`StoreError::NestedTransaction`] in a task that has one open.
    async fn begin(&self) -> StoreResult<Box<dyn Transaction>>;
    /// Succeeds when the database answers a trivial query.
    async fn ping(&self) -> StoreResult<()>;
    /// Applies pending migrations.
    async fn migrate(&self) -> StoreResult<()>;
    fn pool_state(&self) -> PoolState;
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Closes the pool, waiting for connections in use to be returned.
    async fn close(&self);
}

/// A unit of work: commit applies every write made through it, drop discards them.
#[async_trait]
pub trait Transaction: Repos {
    async fn commit(self: Box<Self>) -> StoreResult<()>;
}

pub type DynStore = Arc<dyn Store>;
