//! The SQL implementation of every repository, for SQLite and PostgreSQL at
//! once. Each query is written once with `$n` placeholders (both backends
//! accept them) and run on whichever connection [`on_conn!`] hands it; where
//! the dialects differ, the code branches on [`AnyConn`] explicitly.
//!
//! Values are always bound, never spliced into SQL text.

mod batch;
pub(crate) mod filter;
mod groups;
mod invitations;
mod list;
mod log;
mod orgs;
mod outbox;
mod pool;
mod sqlite_tx;
mod tokens;
mod users;

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, Postgres, Sqlite, SqliteConnection};
use tokio::sync::{Mutex, MutexGuard};

use batch::Batch;
use sqlite_tx::{SqliteTx, SqliteWriter};

use super::{PoolState, Store, StoreError, StoreResult, Transaction};

pub use pool::connect;

/// A pool of one backend.
#[derive(Clone, Debug)]
pub(crate) enum Db {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// The store on a connection pool: each call runs on its own connection.
#[derive(Clone, Debug)]
pub struct SqlStore {
    db: Db,
    /// SQLite: the one connection write transactions run on (see
    /// [`sqlite_tx`]).
    writer: Option<SqliteWriter>,
}

/// An open transaction; repositories called on it share its connection.
pub struct SqlTx {
    inner: Mutex<TxInner>,
}

pub(crate) enum TxInner {
    Sqlite(SqliteTx),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

/// A borrowed connection of either backend, for [`on_conn!`].
pub(crate) enum AnyConn<'a> {
    Sqlite(&'a mut SqliteConnection),
    Pg(&'a mut PgConnection),
}

/// A connection checked out for one repository call.
pub(crate) enum ConnGuard<'a> {
    SqlitePool(PoolConnection<Sqlite>),
    PgPool(PoolConnection<Postgres>),
    Tx(MutexGuard<'a, TxInner>),
}

impl ConnGuard<'_> {
    pub(crate) fn get(&mut self) -> AnyConn<'_> {
        match self {
            ConnGuard::SqlitePool(c) => AnyConn::Sqlite(c),
            ConnGuard::PgPool(c) => AnyConn::Pg(c),
            ConnGuard::Tx(g) => match &mut **g {
                // `Exec::conn` hands out a SQLite transaction only once it
                // holds the writer; `Exec::conn_deferring` callers ask
                // `sqlite_tx` before they ask for a connection.
                TxInner::Sqlite(tx) => match tx.held_conn() {
                    Some(c) => AnyConn::Sqlite(c),
                    None => unreachable!("a SQLite transaction's connection asked for unheld"),
                },
                TxInner::Postgres(tx) => AnyConn::Pg(tx),
            },
        }
    }

    pub(crate) fn is_sqlite(&self) -> bool {
        match self {
            ConnGuard::SqlitePool(_) => true,
            ConnGuard::PgPool(_) => false,
            ConnGuard::Tx(g) => matches!(&**g, TxInner::Sqlite(_)),
        }
    }

    /// A SQLite transaction's statements waiting for the next trip, for
    /// writes whose results are not needed: they go with that trip. `None`
    /// anywhere else (run the statement as usual).
    pub(crate) fn pending_writes(&mut self) -> Option<&mut Batch> {
        self.sqlite_tx().map(|tx| &mut tx.pending)
    }

    /// The SQLite transaction, for a query sent with its pending writes
    /// ([`SqliteTx::fetch_all`]); `None` anywhere else.
    pub(crate) fn sqlite_tx(&mut self) -> Option<&mut SqliteTx> {
        match self {
            ConnGuard::Tx(g) => match &mut **g {
                TxInner::Sqlite(tx) => Some(tx),
                TxInner::Postgres(_) => None,
            },
            _ => None,
        }
    }
}

/// Something that can lend a connection: the pool or an open transaction.
#[async_trait]
pub(crate) trait Exec: Send + Sync {
    /// A connection on which every earlier write of the transaction was sent.
    async fn conn(&self) -> StoreResult<ConnGuard<'_>>;
    /// A connection that may still have writes pending: only for callers
    /// that go through [`ConnGuard::pending_writes`] (see [`batch`]).
    async fn conn_deferring(&self) -> StoreResult<ConnGuard<'_>> {
        self.conn().await
    }
}

#[async_trait]
impl Exec for SqlStore {
    async fn conn(&self) -> StoreResult<ConnGuard<'_>> {
        Ok(match &self.db {
            Db::Sqlite(p) => ConnGuard::SqlitePool(p.acquire().await.map_err(db_err)?),
            Db::Postgres(p) => ConnGuard::PgPool(p.acquire().await.map_err(db_err)?),
        })
    }
}

#[async_trait]
impl Exec for SqlTx {
    async fn conn(&self) -> StoreResult<ConnGuard<'_>> {
        let mut guard = self.inner.lock().await;
        if let TxInner::Sqlite(tx) = &mut *guard {
            tx.send().await?;
        }
        Ok(ConnGuard::Tx(guard))
    }

    async fn conn_deferring(&self) -> StoreResult<ConnGuard<'_>> {
        Ok(ConnGuard::Tx(self.inner.lock().await))
    }
}

/// Runs `$body` with `$c` bound to the `&mut` connection of whichever backend
/// `$guard` holds. The body is compiled once per backend.
macro_rules! on_conn {
    ($guard:expr, |$c:ident| $body:expr) => {
        match $guard.get() {
            $crate::store::sql::AnyConn::Sqlite($c) => $body,
            $crate::store::sql::AnyConn::Pg($c) => $body,
        }
    };
}
pub(crate) use on_conn;

/// Runs a write whose result nobody needs: in a SQLite transaction it waits
/// for the transaction's next trip (see [`batch`]); elsewhere it runs now.
/// `$guard` comes from [`Exec::conn_deferring`].
macro_rules! write_later {
    ($guard:expr, $sql:expr $(, $v:expr)* $(,)?) => {
        match $guard.pending_writes() {
            Some(batch) => {
                batch.push($sql)$(.bind($v))*;
                Ok(())
            }
            None => $crate::store::sql::on_conn!($guard, |c| sqlx::query($sql)
                $(.bind($v))*
                .execute(c)
                .await
                .map(|_| ())
                .map_err($crate::store::sql::db_err)),
        }
    };
}
pub(crate) use write_later;

impl SqlStore {
    pub(crate) fn new(db: Db, writer: Option<SqliteWriter>) -> Self {
        SqlStore { db, writer }
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn begin(&self) -> StoreResult<Box<dyn Transaction>> {
        let inner = match (&self.db, &self.writer) {
            (Db::Sqlite(_), Some(writer)) => TxInner::Sqlite(writer.begin()),
            (Db::Sqlite(_), None) => {
                return Err(StoreError::other(std::io::Error::other(
                    "SQLite store without a write connection",
                )));
            }
            (Db::Postgres(p), _) => TxInner::Postgres(p.begin().await.map_err(db_err)?),
        };
        Ok(Box::new(SqlTx {
            inner: Mutex::new(inner),
        }))
    }

    async fn ping(&self) -> StoreResult<()> {
        let mut c = self.conn().await?;
        on_conn!(c, |c| sqlx::query("SELECT 1")
            .execute(c)
            .await
            .map(|_| ())
            .map_err(db_err))?;
        Ok(())
    }

    async fn migrate(&self) -> StoreResult<()> {
        let result = match &self.db {
            Db::Sqlite(p) => sqlx::migrate!("migrations/sqlite").run(p).await,
            Db::Postgres(p) => sqlx::migrate!("migrations/postgres").run(p).await,
        };
        result.map_err(StoreError::other)
    }

    fn pool_state(&self) -> PoolState {
        let (size, idle, max) = match &self.db {
            Db::Sqlite(p) => (p.size(), p.num_idle(), p.options().get_max_connections()),
            Db::Postgres(p) => (p.size(), p.num_idle(), p.options().get_max_connections()),
        };
        PoolState {
            size,
            idle: idle as u32,
            max,
        }
    }

    fn backend(&self) -> &'static str {
        match self.db {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    async fn close(&self) {
        if let Some(w) = &self.writer {
            w.close().await;
        }
        match &self.db {
            Db::Sqlite(p) => p.close().await,
            Db::Postgres(p) => p.close().await,
        }
    }
}

#[async_trait]
impl Transaction for SqlTx {
    async fn commit(self: Box<Self>) -> StoreResult<()> {
        // The writer is released after the commit has finished.
        match self.inner.into_inner() {
            TxInner::Sqlite(tx) => tx.commit().await,
            TxInner::Postgres(tx) => tx.commit().await.map_err(db_err),
        }
    }
}

/// Maps a sqlx error to a [`StoreError`]; constraint names come out as
/// `<table>_<columns>_key` on both backends.
pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(d) if d.is_unique_violation() || d.is_foreign_key_violation() => {
            let constraint = match d.constraint() {
                Some(name) => name.to_string(),
                None => sqlite_constraint_name(d.message()),
            };
            StoreError::Conflict { constraint }
        }
        _ => StoreError::other(e),
    }
}

/// `UNIQUE constraint failed: users.org_id, users.user_name_lower` becomes
/// `users_org_id_user_name_lower_key`, PostgreSQL's default name for it.
fn sqlite_constraint_name(message: &str) -> String {
    let Some((_, cols)) = message.split_once(": ") else {
        return "foreign_key".to_string();
    };
    let mut table = "";
    let mut names = Vec::new();
    for col in cols.split(", ") {
        if let Some((t, c)) = col.split_once('.') {
            table = t;
            names.push(c);
        }
    }
    format!("{table}_{}_key", names.join("_"))
}

pub(crate) fn arc(store: SqlStore) -> Arc<dyn Store> {
    Arc::new(store)
}

#[cfg(test)]
mod tests {
    use super::sqlite_constraint_name;

    #[test]
    fn sqlite_unique_messages_become_postgres_style_constraint_names() {
        assert_eq!(
            sqlite_constraint_name("UNIQUE constraint failed: users.org_id, users.user_name_lower"),
            "users_org_id_user_name_lower_key"
        );
        assert_eq!(
            sqlite_constraint_name("UNIQUE constraint failed: organizations.slug"),
            "organizations_slug_key"
        );
    }
}
