//! The one way repositories reach the database, on the pool or inside a
//! transaction, on either backend:
//!
//! - [`Exec::write`]: a write whose result nobody waits for. The backend
//!   decides when it is sent (with the next trip, or at commit; on the pool,
//!   at once and as its own transaction); a version check rides with it.
//! - [`Exec::execute`] / [`Exec::write_returning`]: a write whose answer is
//!   needed (rows changed, rows returned), sent after every earlier write.
//! - [`Exec::fetch_all`]: a query, sent after every earlier write.
//! - [`Exec::reader`]: a connection to read on, for queries built with
//!   sqlx's `QueryBuilder` (lists, filters). On SQLite the pool is opened
//!   read-only, so a write smuggled through it fails at once.
//!
//! On SQLite every write goes through the process's one writer (see
//! [`super::sqlite`]); on PostgreSQL writes are combined into few statements
//! (see [`super::pg`]).

use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{FromRow, PgConnection, Postgres, Sqlite, SqliteConnection};
use tokio::sync::MappedMutexGuard;

use super::filter::Backend;
use super::stmt::{Stmt, Write};
use crate::store::StoreResult;

/// Rows either backend can decode.
pub(crate) trait AnyRow:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}
impl<T> AnyRow for T where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

/// Something repositories run statements on: the store (its pool) or an
/// open transaction.
#[async_trait]
pub(crate) trait Exec: Send + Sync {
    fn backend(&self) -> Backend;
    /// Queues writes that stand or fall together (on the store, they commit
    /// as one transaction); see the module docs for when they are sent.
    async fn write_all(&self, writes: Vec<Write>) -> StoreResult<()>;
    /// Queues one write.
    async fn write(&self, w: impl Into<Write> + Send + 'async_trait) -> StoreResult<()> {
        self.write_all(vec![w.into()]).await
    }
    /// Runs a statement that changes rows, after every earlier write;
    /// returns how many it changed.
    async fn execute(&self, s: Stmt) -> StoreResult<u64>;
    /// Runs a write with `RETURNING`, after every earlier write; returns
    /// its rows.
    async fn write_returning<R: AnyRow>(&self, s: Stmt) -> StoreResult<Vec<R>>;
    /// Runs a query, after every earlier write; returns its rows. On the
    /// store (outside a transaction) it reads from the pool, which SQLite
    /// opens read-only.
    async fn fetch_all<R: AnyRow>(&self, s: Stmt) -> StoreResult<Vec<R>>;
    /// A connection to read on, after every earlier write.
    async fn reader(&self) -> StoreResult<Reader<'_>>;

    /// The first row, if any.
    async fn fetch_optional<R: AnyRow>(&self, s: Stmt) -> StoreResult<Option<R>> {
        Ok(self.fetch_all(s).await?.into_iter().next())
    }
}

/// A connection lent for reading.
pub(crate) enum Reader<'a> {
    SqlitePool(PoolConnection<Sqlite>),
    PgPool(PoolConnection<Postgres>),
    SqliteTx(MappedMutexGuard<'a, SqliteConnection>),
    PgTx(MappedMutexGuard<'a, PgConnection>),
}

/// A borrowed connection of either backend, for [`on_conn!`].
pub(crate) enum AnyConn<'a> {
    Sqlite(&'a mut SqliteConnection),
    Pg(&'a mut PgConnection),
}

impl Reader<'_> {
    pub(crate) fn get(&mut self) -> AnyConn<'_> {
        match self {
            Reader::SqlitePool(c) => AnyConn::Sqlite(c),
            Reader::PgPool(c) => AnyConn::Pg(c),
            Reader::SqliteTx(c) => AnyConn::Sqlite(c),
            Reader::PgTx(c) => AnyConn::Pg(c),
        }
    }
}

/// Runs `$body` with `$c` bound to the `&mut` connection of whichever backend
/// the [`Reader`] `$reader` holds. The body is compiled once per backend.
macro_rules! on_conn {
    ($reader:expr, |$c:ident| $body:expr) => {
        match $reader.get() {
            $crate::store::sql::exec::AnyConn::Sqlite($c) => $body,
            $crate::store::sql::exec::AnyConn::Pg($c) => $body,
        }
    };
}
pub(crate) use on_conn;
