//! The SQL implementation of every repository, for SQLite and PostgreSQL at
//! once. Each statement is written once with `$n` placeholders (both
//! backends accept them) and handed to [`exec::Exec`], which decides how it
//! travels on each backend; where the dialects differ, the code branches on
//! [`Exec::backend`] explicitly.
//!
//! Values are always bound, never spliced into SQL text.
//!
//! Transactions: [`SqlStore::begin`] refuses to open a second transaction in
//! a task that has one open (on SQLite the inner one would wait for the
//! outer one's lock forever), and so do the store's own writes: services
//! pass the open transaction down instead.

mod accounts;
mod exec;
pub(crate) mod filter;
mod groups;
mod history;
mod invitations;
mod list;
mod log;
mod open;
mod orgs;
mod outbox;
mod pg;
mod pool;
mod sqlite;
mod sso;
mod stmt;
mod tokens;
mod users;

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::{PgPool, SqlitePool};
use tokio::sync::{Mutex, MutexGuard};

use exec::{AnyRow, Exec, Reader};
use filter::Backend;
use open::{OpenGuard, OpenTransactions};
use pg::PgTx;
use sqlite::{SqliteTx, SqliteWriter};
use stmt::{Stmt, Write};

use super::{PoolState, Store, StoreError, StoreResult, Transaction};

#[doc(hidden)]
pub use filter::{FilterPlan, explain_filter};
pub use pool::connect;

/// A pool of one backend.
#[derive(Clone, Debug)]
pub(crate) enum Db {
    /// Read-only connections; writes go through the writer.
    Sqlite(SqlitePool, SqliteWriter),
    Postgres(PgPool),
}

/// The store on a connection pool: each call runs on its own.
#[derive(Clone, Debug)]
pub struct SqlStore {
    db: Db,
    open: Arc<OpenTransactions>,
}

/// An open transaction; repositories called on it share its connection.
pub struct SqlTx {
    backend: Backend,
    inner: Mutex<TxInner>,
    _open: OpenGuard,
}

enum TxInner {
    Sqlite(SqliteTx),
    Pg(PgTx),
}

fn failure(message: &str) -> StoreError {
    StoreError::other(std::io::Error::other(message.to_string()))
}

impl SqlStore {
    pub(crate) fn new(db: Db) -> Self {
        SqlStore {
            db,
            open: Arc::new(OpenTransactions::default()),
        }
    }

    /// Writes outside a transaction must not run in a task that holds one.
    fn check_not_in_transaction(&self) -> StoreResult<()> {
        if self.open.is_open_here() {
            return Err(StoreError::NestedTransaction);
        }
        Ok(())
    }
}

#[async_trait]
impl Exec for SqlStore {
    fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite(..) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    async fn write_all(&self, writes: Vec<Write>) -> StoreResult<()> {
        self.check_not_in_transaction()?;
        match &self.db {
            Db::Sqlite(_, writer) => writer.commit_writes(writes).await,
            Db::Postgres(pool) => pg::commit_writes(pool, writes).await,
        }
    }

    async fn execute(&self, s: Stmt) -> StoreResult<u64> {
        self.check_not_in_transaction()?;
        match &self.db {
            Db::Sqlite(_, writer) => writer.execute_alone(s).await,
            Db::Postgres(pool) => {
                let args = s.pg_args()?;
                sqlx::query_with(sqlx::AssertSqlSafe(s.sql.into_owned()), args)
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected())
                    .map_err(db_err)
            }
        }
    }

    async fn write_returning<R: AnyRow>(&self, s: Stmt) -> StoreResult<Vec<R>> {
        self.check_not_in_transaction()?;
        match &self.db {
            Db::Sqlite(_, writer) => writer.fetch_alone(s).await,
            Db::Postgres(pool) => fetch_pg(pool, s).await,
        }
    }

    async fn fetch_all<R: AnyRow>(&self, s: Stmt) -> StoreResult<Vec<R>> {
        match &self.db {
            Db::Sqlite(pool, _) => {
                let (sql, args) = s.into_sqlite()?;
                sqlx::query_as_with(sqlx::AssertSqlSafe(sql), args)
                    .fetch_all(pool)
                    .await
                    .map_err(db_err)
            }
            Db::Postgres(pool) => fetch_pg(pool, s).await,
        }
    }

    async fn reader(&self) -> StoreResult<Reader<'_>> {
        Ok(match &self.db {
            Db::Sqlite(p, _) => Reader::SqlitePool(p.acquire().await.map_err(db_err)?),
            Db::Postgres(p) => Reader::PgPool(p.acquire().await.map_err(db_err)?),
        })
    }
}

async fn fetch_pg<R: AnyRow>(pool: &PgPool, s: Stmt) -> StoreResult<Vec<R>> {
    let args = s.pg_args()?;
    sqlx::query_as_with(sqlx::AssertSqlSafe(s.sql.into_owned()), args)
        .fetch_all(pool)
        .await
        .map_err(db_err)
}

impl SqlTx {
    async fn lock(&self) -> MutexGuard<'_, TxInner> {
        self.inner.lock().await
    }
}

#[async_trait]
impl Exec for SqlTx {
    fn backend(&self) -> Backend {
        self.backend
    }

    async fn write_all(&self, writes: Vec<Write>) -> StoreResult<()> {
        match &mut *self.lock().await {
            TxInner::Sqlite(tx) => tx.write_all(writes),
            TxInner::Pg(tx) => tx.write_all(writes),
        }
        Ok(())
    }

    async fn execute(&self, s: Stmt) -> StoreResult<u64> {
        match &mut *self.lock().await {
            TxInner::Sqlite(tx) => tx.execute(&s).await,
            TxInner::Pg(tx) => tx.execute(&s).await,
        }
    }

    async fn write_returning<R: AnyRow>(&self, s: Stmt) -> StoreResult<Vec<R>> {
        self.fetch_all(s).await
    }

    async fn fetch_all<R: AnyRow>(&self, s: Stmt) -> StoreResult<Vec<R>> {
        match &mut *self.lock().await {
            TxInner::Sqlite(tx) => tx.fetch_all(&s).await,
            TxInner::Pg(tx) => tx.fetch_all(&s).await,
        }
    }

    async fn reader(&self) -> StoreResult<Reader<'_>> {
        let mut guard = self.lock().await;
        let sqlite = match &mut *guard {
            TxInner::Sqlite(tx) => {
                tx.conn().await?;
                true
            }
            TxInner::Pg(tx) => {
                tx.conn().await?;
                false
            }
        };
        let lost = |_| failure("the transaction lost its connection");
        if sqlite {
            MutexGuard::try_map(guard, |inner| match inner {
                TxInner::Sqlite(tx) => tx.held_conn(),
                TxInner::Pg(_) => None,
            })
            .map(Reader::SqliteTx)
            .map_err(lost)
        } else {
            MutexGuard::try_map(guard, |inner| match inner {
                TxInner::Pg(tx) => tx.begun_conn(),
                TxInner::Sqlite(_) => None,
            })
            .map(Reader::PgTx)
            .map_err(lost)
        }
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn begin(&self) -> StoreResult<Box<dyn Transaction>> {
        let open = self.open.open()?;
        let backend = Exec::backend(self);
        let inner = match &self.db {
            Db::Sqlite(_, writer) => TxInner::Sqlite(writer.begin()),
            Db::Postgres(pool) => TxInner::Pg(PgTx::new(pool.clone())),
        };
        Ok(Box::new(SqlTx {
            backend,
            inner: Mutex::new(inner),
            _open: open,
        }))
    }

    async fn ping(&self) -> StoreResult<()> {
        let _: Vec<(i32,)> = self.fetch_all(Stmt::new("SELECT 1")).await?;
        Ok(())
    }

    async fn migrate(&self) -> StoreResult<()> {
        static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
        static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");
        match &self.db {
            Db::Sqlite(_, writer) => writer.migrate(&SQLITE).await,
            Db::Postgres(p) => {
                let mut conn = p.acquire().await.map_err(db_err)?;
                POSTGRES
                    .run_direct(None, &mut *conn, false)
                    .await
                    .map_err(StoreError::other)
            }
        }
    }

    fn pool_state(&self) -> PoolState {
        let (size, idle, max) = match &self.db {
            Db::Sqlite(p, _) => (p.size(), p.num_idle(), p.options().get_max_connections()),
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
            Db::Sqlite(..) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    async fn close(&self) {
        match &self.db {
            Db::Sqlite(p, writer) => {
                writer.close().await;
                p.close().await
            }
            Db::Postgres(p) => p.close().await,
        }
    }
}

#[async_trait]
impl Transaction for SqlTx {
    async fn commit(self: Box<Self>) -> StoreResult<()> {
        let SqlTx { inner, _open, .. } = *self;
        match inner.into_inner() {
            TxInner::Sqlite(tx) => tx.commit().await,
            TxInner::Pg(tx) => tx.commit().await,
        }
    }
}

/// Marks a stale write (see `write_checks` / `onramp_expect`).
const STALE: &str = "onramp_stale";

/// Maps a sqlx error to a [`StoreError`]; constraint names come out as
/// `<table>_<columns>_key` on both backends.
pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(d) if d.message().contains(STALE) => StoreError::Stale,
        // PostgreSQL ended the transaction to break a deadlock, or to keep
        // it serializable: it lost a race, and is retried like one.
        sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("40P01" | "40001")) => {
            StoreError::Stale
        }
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
