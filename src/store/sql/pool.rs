//! Opening a pool from `database.url`: SQLite in WAL mode with a busy timeout
//! and foreign keys on, or PostgreSQL.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::sqlite::SqliteWriter;
use super::{Db, SqlStore, arc, db_err};
use crate::config::DatabaseConfig;
use crate::store::{Store, StoreError, StoreResult};

/// Connects to the database `config.url` names (creating a SQLite file and its
/// folder when missing). Does not migrate.
pub async fn connect(config: &DatabaseConfig) -> StoreResult<Arc<dyn Store>> {
    let acquire = Duration::from_secs(config.acquire_timeout_secs.max(1));
    let db = if config.url.starts_with("sqlite:") {
        let options = SqliteConnectOptions::from_str(&config.url)
            .map_err(db_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode: a committed write survives a crash of the
            // process; only a power loss can undo the last commits.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // Checkpoint every 8,000 WAL pages (32 MiB) instead of 1,000:
            // inserts rewrite the same B-tree pages commit after commit, and
            // a checkpoint copies only each page's latest version, so fewer
            // checkpoints copy far fewer pages (W1 with invitations: +40 %).
            .pragma("wal_autocheckpoint", "8000")
            // Statement and savepoint journals in memory, not temp files.
            .pragma("temp_store", "memory");
        let path = options.get_filename();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(StoreError::other)?;
        }
        // Every write of the process goes through this one connection (see
        // `sqlite`); it is opened first, so the file exists in WAL mode
        // before the read-only pool opens it.
        let writer = SqliteWriter::start(options.clone().connect().await.map_err(db_err)?)?;
        let pool = SqlitePoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(acquire)
            .connect_with(options.read_only(true))
            .await
            .map_err(db_err)?;
        Db::Sqlite(pool, writer)
    } else {
        let options = PgConnectOptions::from_str(&config.url).map_err(db_err)?;
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(acquire)
            .connect_with(options)
            .await
            .map_err(db_err)?;
        Db::Postgres(pool)
    };
    Ok(arc(SqlStore::new(db)))
}
