//! The server under test: the release `onramp` binary started as a child
//! process in a temporary directory, on a fresh SQLite file or a fresh
//! PostgreSQL database, with an organization and a SCIM token made by the
//! same binary's CLI (or whatever set-up a bench asks for: `examples/signin`
//! makes an organization with a domain and an SSO connection). Also the
//! process facts read from `/proc` (RSS, CPU ticks) and the server's own
//! latency histogram from `/metrics`.
//!
//! It must never talk to anything but 127.0.0.1 and the given PostgreSQL URL,
//! and must never leave the child running or the bench database behind on a
//! normal exit.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sqlx::Connection;

/// Which database the server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A running server and everything needed to clean it up.
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The SCIM bearer token.
    pub token: String,
    db_url: String,
    pg: Option<PgDatabase>,
    log: PathBuf,
    dir: tempfile::TempDir,
}

struct PgDatabase {
    admin_url: String,
    name: String,
}

impl Server {
    /// Creates the database, an organization and its token, starts the
    /// server and waits until `/healthz` answers.
    pub async fn start(
        bin: &Path,
        backend: Backend,
        pg_url: &str,
        extra_env: &[(String, String)],
    ) -> Result<Server> {
        Server::start_with(bin, backend, pg_url, extra_env, |server| {
            server.tenant(bin, "Bench Corp")
        })
        .await
    }

    /// As [`Server::start`], with the organization made by `setup`, which
    /// runs the binary's CLI ([`Server::cli`]) before the server starts and
    /// returns the SCIM token the load uses.
    pub async fn start_with(
        bin: &Path,
        backend: Backend,
        pg_url: &str,
        extra_env: &[(String, String)],
        setup: impl FnOnce(&Server) -> Result<String>,
    ) -> Result<Server> {
        let dir = tempfile::tempdir().context("temp dir")?;
        let (db_url, pg) = match backend {
            Backend::Sqlite => (format!("sqlite://{}/onramp.db", dir.path().display()), None),
            Backend::Postgres => {
                let name = format!("onramp_bench_{}", uuid::Uuid::new_v4().simple());
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
                    Some(PgDatabase {
                        admin_url: pg_url.to_string(),
                        name,
                    }),
                )
            }
        };
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = dir.path().join("server.log");
        let mut server = Server {
            child: None,
            base: format!("http://127.0.0.1:{port}"),
            token: String::new(),
            db_url,
            pg,
            log,
            dir,
        };
        let booted = match setup(&server) {
            Ok(token) => {
                server.token = token;
                server.boot(bin, port, extra_env).await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = booted {
            server.stop().await;
            return Err(e);
        }
        Ok(server)
    }

    async fn boot(&mut self, bin: &Path, port: u16, extra_env: &[(String, String)]) -> Result<()> {
        let mut cmd = self.command(bin);
        cmd.env("ONRAMP_HTTP__BIND", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(File::create(&self.log)?);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        self.child = Some(
            cmd.spawn()
                .with_context(|| format!("cannot run {}", bin.display()))?,
        );

        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            self.check_alive().context("the server exited at start")?;
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

    /// The binary, run in the temporary directory (where its key file and
    /// mail folder are) against the run's database, with the server's
    /// public URL.
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

    /// The temporary directory the server runs in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Where the folder transport writes mail (unless the run moved it).
    pub fn mail_dir(&self) -> PathBuf {
        self.dir.path().join("data/mail")
    }

    /// Another organization and its SCIM token (a second tenant).
    pub fn tenant(&self, bin: &Path, name: &str) -> Result<String> {
        let org = self.cli(bin, &["org", "create", "--name", name])?;
        let org: serde_json::Value = serde_json::from_str(&org).context("org create output")?;
        let org_id = org["id"].as_str().context("org create printed no id")?;
        Ok(self
            .cli(bin, &["scim-token", "create", "--org", org_id])?
            .trim()
            .to_string())
    }

    /// Runs one CLI command of the binary against the run's database; its
    /// standard output.
    pub fn cli(&self, bin: &Path, args: &[&str]) -> Result<String> {
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
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
        if let Some(pg) = self.pg.take()
            && let Ok(mut conn) = sqlx::PgConnection::connect(&pg.admin_url).await
        {
            let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", pg.name);
            if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
                .execute(&mut conn)
                .await
            {
                eprintln!("could not drop the bench database {}: {e}", pg.name);
            }
            conn.close().await.ok();
        }
    }
}

impl Drop for Server {
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

/// `VmRSS` of a process in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// utime + stime of a process, in clock ticks, and its command name.
fn proc_ticks(stat_path: &str) -> Option<(String, u64)> {
    let stat = std::fs::read_to_string(stat_path).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_string();
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    // After the comm: state is field 3, utime field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}

/// CPU ticks of one process.
pub fn cpu_ticks(pid: u32) -> u64 {
    proc_ticks(&format!("/proc/{pid}/stat")).map_or(0, |(_, t)| t)
}

/// CPU ticks of this process (the load generator).
pub fn own_cpu_ticks() -> u64 {
    proc_ticks("/proc/self/stat").map_or(0, |(_, t)| t)
}

/// CPU ticks of all `postgres` processes on the machine (the local server).
pub fn postgres_cpu_ticks() -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| proc_ticks(&format!("{}/stat", e.path().display())))
        .filter(|(comm, _)| comm == "postgres")
        .map(|(_, t)| t)
        .sum()
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 if unknown).
pub fn clock_ticks_per_sec() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Waits (up to 10 minutes) until the server's outbox holds no queued mail,
/// so that a measurement does not share the machine with the delivery of the
/// invitations the previous one caused (`onramp_mail_outbox_queued`).
pub async fn wait_for_mail_queue(client: &reqwest::Client, base: &str) {
    let started = Instant::now();
    let mut waited = false;
    while started.elapsed() < Duration::from_secs(600) {
        let queued = match client.get(format!("{base}/metrics")).send().await {
            Ok(res) => res.text().await.ok().and_then(|text| {
                text.lines()
                    .find_map(|l| l.strip_prefix("onramp_mail_outbox_queued "))
                    .and_then(|v| v.trim().parse::<u64>().ok())
            }),
            Err(_) => None,
        };
        match queued {
            Some(0) | None => break,
            Some(_) => {
                waited = true;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    if waited {
        eprintln!(
            "(waited {:.1} s for the invitation mail of the previous step to go out)",
            started.elapsed().as_secs_f64()
        );
    }
}

/// Sum and count of `onramp_http_request_duration_seconds` over all routes
/// except the operational ones (`/metrics`, `/healthz`, `/readyz`).
pub async fn server_latency(client: &reqwest::Client, base: &str) -> (f64, f64) {
    let Ok(res) = client.get(format!("{base}/metrics")).send().await else {
        return (0.0, 0.0);
    };
    let Ok(text) = res.text().await else {
        return (0.0, 0.0);
    };
    let (mut sum, mut count) = (0.0, 0.0);
    for line in text.lines() {
        let is_sum = line.starts_with("onramp_http_request_duration_seconds_sum");
        let is_count = line.starts_with("onramp_http_request_duration_seconds_count");
        if !(is_sum || is_count)
            || line.contains("/metrics")
            || line.contains("/healthz")
            || line.contains("/readyz")
        {
            continue;
        }
        let value: f64 = line
            .rsplit_once('}')
            .map_or(line, |(_, v)| v)
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        if is_sum {
            sum += value;
        } else {
            count += value;
        }
    }
    (sum, count)
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_is_replaced_in_the_url() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "b"),
            "postgres://postgres@127.0.0.1:5432/b"
        );
        assert_eq!(
            with_database("postgres://u@h/postgres?sslmode=disable", "b"),
            "postgres://u@h/b?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "b"), "postgres://u@h/b");
    }
}
