//! The server under test for the sign-in benchmark: the release `onramp`
//! binary as a child process in a temporary directory, on a fresh SQLite
//! file or a fresh PostgreSQL database, with an organization that owns
//! [`DOMAIN`], a SCIM token, and an SSO connection to the given issuer, all
//! made by the binary's own CLI before it serves.
//!
//! `examples/bench/server.rs` starts the server the same way, but makes an
//! organization without a domain and keeps its CLI to itself; the process
//! facts (`/proc`) and the mail-queue wait are taken from there.
//!
//! It must never talk to anything but 127.0.0.1 and the given PostgreSQL
//! URL, and must never leave the child running or the database behind on a
//! normal exit.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sqlx::Connection;

use crate::server::Backend;

/// The email domain the organization owns (home-realm discovery at `/login`).
pub const DOMAIN: &str = "acme.example";
/// The organization's client at the provider.
pub const CLIENT_ID: &str = "onramp-signin-bench";
pub const CLIENT_SECRET: &str = "signin bench secret";

/// A running server and everything needed to clean it up.
pub struct Stack {
    child: Option<Child>,
    /// `http://127.0.0.1:<port>`, also the server's public URL.
    pub base: String,
    /// The SCIM bearer token of the organization.
    pub scim_token: String,
    db_url: String,
    /// The administrative URL and the database made for this run.
    pg: Option<(String, String)>,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl Stack {
    /// Creates the database and the organization, connects it to `issuer`,
    /// starts the server and waits until `/healthz` answers.
    pub async fn start(bin: &Path, backend: Backend, pg_url: &str, issuer: &str) -> Result<Stack> {
        let dir = tempfile::tempdir().context("temp dir")?;
        let (db_url, pg) = match backend {
            Backend::Sqlite => (format!("sqlite://{}/onramp.db", dir.path().display()), None),
            Backend::Postgres => {
                let name = format!("onramp_signin_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(pg_url)
                    .await
                    .with_context(|| format!("cannot connect to PostgreSQL at {pg_url}"))?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .context("CREATE DATABASE")?;
                conn.close().await.ok();
                (
                    with_database(pg_url, &name),
                    Some((pg_url.to_string(), name)),
                )
            }
        };
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut stack = Stack {
            child: None,
            base: format!("http://127.0.0.1:{port}"),
            scim_token: String::new(),
            db_url,
            pg,
            log: dir.path().join("server.log"),
            dir,
        };
        if let Err(e) = stack.boot(bin, issuer).await {
            stack.stop().await;
            return Err(e);
        }
        Ok(stack)
    }

    async fn boot(&mut self, bin: &Path, issuer: &str) -> Result<()> {
        let org = self.cli(
            bin,
            &["org", "create", "--name", "Acme Corp", "--domain", DOMAIN],
        )?;
        let org: serde_json::Value = serde_json::from_str(&org).context("org create output")?;
        let org = org["id"].as_str().context("org create printed no id")?;
        self.scim_token = self
            .cli(bin, &["scim-token", "create", "--org", org])?
            .trim()
            .to_string();
        let secret_file = self.dir.path().join("client-secret");
        std::fs::write(&secret_file, CLIENT_SECRET)?;
        let secret_file = secret_file.display().to_string();
        let sso = [
            "sso",
            "set",
            "--org",
            org,
            "--issuer",
            issuer,
            "--client-id",
            CLIENT_ID,
            "--client-secret-file",
            &secret_file,
        ];
        self.cli(bin, &sso)?;

        let port = self.base.rsplit(':').next().unwrap_or_default();
        let mut cmd = self.command(bin);
        cmd.env("ONRAMP_HTTP__BIND", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(File::create(&self.log)?);
        self.child = Some(
            cmd.spawn()
                .with_context(|| format!("cannot run {}", bin.display()))?,
        );

        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            self.check_alive()?;
            if let Ok(res) = client.get(format!("{}/healthz", self.base)).send().await
                && res.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the server did not answer /healthz in 60 s:\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The binary, run in the temporary directory (where the key that seals
    /// client secrets, `data/secret.key`, and the mail folder are) against
    /// the run's database.
    fn command(&self, bin: &Path) -> Command {
        let mut cmd = Command::new(bin);
        cmd.current_dir(self.dir.path())
            .env_remove("RUST_LOG")
            .env("ONRAMP_DATABASE__URL", &self.db_url)
            .env("ONRAMP_HTTP__PUBLIC_URL", &self.base)
            .env("ONRAMP_LOG__LEVEL", "warn")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs one CLI command; its standard output.
    fn cli(&self, bin: &Path, args: &[&str]) -> Result<String> {
        let out = self
            .command(bin)
            .args(args)
            .output()
            .with_context(|| format!("cannot run {}", bin.display()))?;
        if !out.status.success() {
            bail!(
                "`onramp {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// Where the folder transport writes the invitation mail.
    pub fn mail_dir(&self) -> PathBuf {
        self.dir.path().join("data/mail")
    }

    /// The server's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Fails if the server has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(child) = self.child.as_mut()
            && let Some(status) = child.try_wait()?
        {
            bail!("the server exited ({status}):\n{}", self.log_tail());
        }
        Ok(())
    }

    /// The last lines the server wrote to stderr.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// SIGTERM, wait (bounded), SIGKILL if needed; then drop the PostgreSQL database.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if !matches!(child.try_wait(), Ok(Some(_))) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if let Some((admin_url, name)) = self.pg.take()
            && let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await
        {
            let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
                .execute(&mut conn)
                .await
            {
                eprintln!("could not drop the bench database {name}: {e}");
            }
            conn.close().await.ok();
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // Only reached without `stop` on an early error or a panic.
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `postgres://u@h:5432/postgres?x` with the database replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    match base[after_scheme..].find('/') {
        Some(slash) => format!("{}/{name}{query}", &base[..after_scheme + slash]),
        None => format!("{base}/{name}{query}"),
    }
}
