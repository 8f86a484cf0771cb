//! What the in-process examples (`import`, `membership`, `separate`) share:
//! their database, a fresh SQLite file in a temporary directory unless
//! `--pg` names a PostgreSQL database.

use std::sync::Arc;

use onramp::config::Config;
use onramp::store::Store;

/// The database arguments of an in-process example.
#[derive(Debug, clap::Args)]
pub struct DbArgs {
    /// A PostgreSQL database URL to run on (default: a fresh SQLite file).
    #[arg(long)]
    pub pg: Option<String>,
}

/// The default configuration pointed at the example's database; the
/// temporary directory holds the SQLite file and lives as long as it.
pub struct Db {
    pub config: Config,
    _dir: tempfile::TempDir,
}

impl DbArgs {
    pub fn db(&self) -> anyhow::Result<Db> {
        let dir = tempfile::tempdir()?;
        let mut config = Config::defaults();
        config.database.url = self
            .pg
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}/bench.db", dir.path().display()));
        Ok(Db { config, _dir: dir })
    }

    /// The backend's name, for the report.
    pub fn backend(&self) -> &'static str {
        if self.pg.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    }
}

impl Db {
    /// The store, connected and migrated.
    pub async fn store(&self) -> anyhow::Result<Arc<dyn Store>> {
        let store = onramp::store::sql::connect(&self.config.database).await?;
        store.migrate().await?;
        Ok(store)
    }
}
