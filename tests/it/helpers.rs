//! Spawning the app and fresh databases for tests.

use std::time::Duration;

use onramp::config::Config;
use onramp::startup::Application;
use onramp::store::{self, DynStore};
use onramp::tenancy::{NewOrg, TenancyService};
use sqlx::Connection;
use uuid::Uuid;

pub const PG_ENV: &str = "POSTGRES_TEST_URL";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// SQLite always; PostgreSQL too when `POSTGRES_TEST_URL` asks for it.
pub fn backends() -> Vec<Backend> {
    let mut b = vec![Backend::Sqlite];
    if std::env::var(PG_ENV).is_ok_and(|v| !v.is_empty()) {
        b.push(Backend::Postgres);
    }
    b
}

/// A database that exists for one test and is removed with it.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}/onramp.db", dir.path().display());
                TestDb {
                    url,
                    _dir: Some(dir),
                    pg_name: None,
                }
            }
            Backend::Postgres => {
                let admin = admin_url();
                let name = format!("onramp_t_{}", Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .unwrap_or_else(|e| {
                        panic!("{PG_ENV} is set but PostgreSQL at {admin} is unreachable: {e}")
                    });
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                conn.close().await.ok();
                let url = with_database(&admin, &name);
                TestDb {
                    url,
                    _dir: None,
                    pg_name: Some(name),
                }
            }
        }
    }

    /// The same database for a second app instance; dropping it removes nothing.
    pub fn shared(&self) -> TestDb {
        TestDb {
            url: self.url.clone(),
            _dir: None,
            pg_name: None,
        }
    }

    pub fn config(&self) -> Config {
        let mut c = Config::defaults();
        c.http.bind = "127.0.0.1:0".parse().expect("addr");
        c.database.url = self.url.clone();
        c.database.max_connections = 4;
        // A fixed sealing key: no key file written, and every instance on
        // the database opens what another sealed.
        c.sso.secret_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
            .to_string()
            .into();
        c
    }

    /// Runs SQL on the database over a connection of its own (setting up
    /// fault-injecting triggers, reading what the store does not offer).
    pub async fn execute(&self, sqlite: &str, postgres: &str) {
        if self.url.starts_with("sqlite:") {
            let mut c = sqlx::SqliteConnection::connect(&self.url)
                .await
                .expect("connect");
            sqlx::raw_sql(sqlx::AssertSqlSafe(sqlite.to_string()))
                .execute(&mut c)
                .await
                .expect("run SQL on SQLite");
        } else {
            let mut c = sqlx::PgConnection::connect(&self.url)
                .await
                .expect("connect");
            sqlx::raw_sql(sqlx::AssertSqlSafe(postgres.to_string()))
                .execute(&mut c)
                .await
                .expect("run SQL on PostgreSQL");
        }
    }

    /// The single integer a query (the same on both backends) returns.
    pub async fn count(&self, sql: &str) -> i64 {
        if self.url.starts_with("sqlite:") {
            let mut c = sqlx::SqliteConnection::connect(&self.url)
                .await
                .expect("connect");
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
                .fetch_one(&mut c)
                .await
                .expect("count on SQLite")
        } else {
            let mut c = sqlx::PgConnection::connect(&self.url)
                .await
                .expect("connect");
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
                .fetch_one(&mut c)
                .await
                .expect("count on PostgreSQL")
        }
    }

    pub async fn store(&self) -> DynStore {
        let store = store::sql::connect(&self.config().database)
            .await
            .expect("connect");
        store.migrate().await.expect("migrate");
        store
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        let admin = admin_url();
        // Drop runs outside any async context we can rely on: use a thread
        // with its own runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("rt");
            rt.block_on(async move {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            });
        })
        .join();
    }
}

fn admin_url() -> String {
    std::env::var(PG_ENV).expect("POSTGRES_TEST_URL")
}

/// `postgres://u@h:5432/postgres` with the database replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// A running app on a fresh database.
#[allow(dead_code)] // not every test binary module uses every part
pub struct TestApp {
    pub address: String,
    /// Where `/metrics` is served when `metrics.bind` gives it a listener.
    pub metrics_port: Option<u16>,
    pub client: reqwest::Client,
    pub store: DynStore,
    pub tenancy: TenancyService,
    /// Every service of the running app.
    pub services: onramp::startup::Services,
    pub db: TestDb,
    pub mail_dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    let db = TestDb::new(backend).await;
    spawn_app_on(db, |_| {}).await
}

pub async fn spawn_app_on(db: TestDb, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = db.config();
    let mail_dir = tempfile::tempdir().expect("mail dir");
    config.mail.dir = mail_dir.path().to_path_buf();
    config.mail.outbox.poll_interval_ms = 50;
    tweak(&mut config);
    let app = Application::build(config).await.expect("app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let metrics_port = app.metrics_port();
    let store = app.services().store.clone();
    let tenancy = app.services().tenancy.clone();
    let services = app.services().clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async move {
        let _ = rx.await;
    }));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let test_app = TestApp {
        address,
        metrics_port,
        client,
        tenancy,
        services,
        store,
        db,
        mail_dir,
        shutdown: Some(tx),
        server: Some(server),
    };
    test_app.wait_ready().await;
    test_app
}

#[allow(dead_code)]
impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// The body of `GET path`, whatever the status.
    pub async fn get_text(&self, path: &str) -> String {
        let res = self.client.get(self.url(path)).send().await.expect("GET");
        res.text().await.expect("body")
    }

    async fn wait_ready(&self) {
        for _ in 0..200 {
            if let Ok(r) = self.client.get(self.url("/healthz")).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the app never became healthy");
    }

    /// Creates an organization and a SCIM token for it.
    pub async fn org_with_token(&self, name: &str) -> (Uuid, String) {
        let org = self
            .tenancy
            .create_org(NewOrg {
                name: name.into(),
                domains: vec![],
            })
            .await
            .expect("org");
        let token = self
            .tenancy
            .create_scim_token(org.id, None)
            .await
            .expect("token");
        (org.id, token.token)
    }

    /// Asks the server to stop and waits for it.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.server.take() {
            Some(h) => h.await.expect("server task"),
            None => Ok(()),
        }
    }

    /// Triggers shutdown without waiting.
    pub fn begin_shutdown(&mut self) -> Option<tokio::task::JoinHandle<anyhow::Result<()>>> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.server.take()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

#[test]
fn database_names_replace_the_admin_database() {
    assert_eq!(
        with_database("postgres://p@h:5432/postgres", "x"),
        "postgres://p@h:5432/x"
    );
    assert_eq!(
        with_database("postgres://p@h:5432", "x"),
        "postgres://p@h:5432/x"
    );
    assert_eq!(
        with_database("postgres://p@h/db?sslmode=disable", "x"),
        "postgres://p@h/x?sslmode=disable"
    );
}

/// Waits until `check` holds (every 10 ms, at most 10 s); panics naming `what`.
#[allow(dead_code)]
pub async fn poll<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}
