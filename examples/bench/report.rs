//! Measurements around each workload (server RSS and CPU, generator CPU,
//! PostgreSQL CPU, the server's own mean latency from `/metrics`), the
//! markdown results table, the machine facts, and the targets.
//!
//! It must never change what is measured: snapshots are taken outside the
//! timed part of each workload.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use sqlx::Connection;

use crate::run::Outcome;
use crate::server::{self, Backend};
use crate::workloads::{self, Ctx};

/// Process counters before a workload.
pub struct Snapshot {
    at: Instant,
    server_ticks: u64,
    own_ticks: u64,
    pg_ticks: u64,
    lat_sum: f64,
    lat_count: f64,
}

/// One line of the results table.
pub struct Row {
    pub workload: String,
    pub c: usize,
    pub db_users: u64,
    pub ops: u64,
    pub unit: &'static str,
    pub requests: u64,
    pub wall_s: f64,
    pub ops_s: f64,
    pub req_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub server_mean_ms: f64,
    pub errors: u64,
    pub rss_mib: f64,
    pub cpu_server: f64,
    pub cpu_generator: f64,
    pub cpu_postgres: Option<f64>,
    pub timed_out: bool,
}

/// The measuring context shared by all workloads.
pub struct Bench {
    pub ctx: Arc<Ctx>,
    pub rows: Vec<Row>,
    pid: Option<u32>,
    backend: Backend,
    ticks_per_sec: f64,
}

impl Bench {
    pub fn new(ctx: Arc<Ctx>, pid: Option<u32>, backend: Backend) -> Bench {
        Bench {
            ctx,
            rows: Vec::new(),
            pid,
            backend,
            ticks_per_sec: server::clock_ticks_per_sec(),
        }
    }

    fn pg_ticks(&self) -> u64 {
        if self.backend == Backend::Postgres {
            server::postgres_cpu_ticks()
        } else {
            0
        }
    }

    pub async fn snapshot(&self) -> Snapshot {
        server::wait_for_mail_queue(&self.ctx.client, &self.ctx.base).await;
        let (lat_sum, lat_count) = server::server_latency(&self.ctx.client, &self.ctx.base).await;
        Snapshot {
            server_ticks: self.pid.map_or(0, server::cpu_ticks),
            own_ticks: server::own_cpu_ticks(),
            pg_ticks: self.pg_ticks(),
            lat_sum,
            lat_count,
            at: Instant::now(),
        }
    }

    /// Turns an outcome into a row, printing progress and error samples to stderr.
    pub async fn row(
        &mut self,
        workload: &str,
        c: usize,
        unit: &'static str,
        mut out: Outcome,
        before: Snapshot,
    ) {
        let wall = before.at.elapsed().as_secs_f64();
        let server_ticks = self.pid.map_or(0, server::cpu_ticks);
        let own_ticks = server::own_cpu_ticks();
        let pg_ticks = self.pg_ticks();
        let (lat_sum, lat_count) = server::server_latency(&self.ctx.client, &self.ctx.base).await;
        let pct = |ticks: u64| ticks as f64 / self.ticks_per_sec / wall * 100.0;
        let secs = out.elapsed.as_secs_f64().max(1e-9);
        let row = Row {
            workload: workload.to_string(),
            c,
            db_users: workloads::users_in_db(&self.ctx).await.unwrap_or(0),
            ops: out.ops,
            unit,
            requests: out.requests,
            wall_s: secs,
            ops_s: out.ops as f64 / secs,
            req_s: out.requests as f64 / secs,
            p50_ms: out.percentile_ms(50.0),
            p99_ms: out.percentile_ms(99.0),
            server_mean_ms: if lat_count > before.lat_count {
                (lat_sum - before.lat_sum) / (lat_count - before.lat_count) * 1000.0
            } else {
                0.0
            },
            errors: out.errors,
            rss_mib: self
                .pid
                .and_then(server::rss_kib)
                .map_or(0.0, |k| k as f64 / 1024.0),
            cpu_server: pct(server_ticks.saturating_sub(before.server_ticks)),
            cpu_generator: pct(own_ticks.saturating_sub(before.own_ticks)),
            cpu_postgres: (self.backend == Backend::Postgres)
                .then(|| pct(pg_ticks.saturating_sub(before.pg_ticks))),
            timed_out: out.timed_out,
        };
        eprintln!(
            "{:<28} c={:<3} {:>8} {:<7} {:>9.0}/s  p50 {:>7.2} ms  p99 {:>7.2} ms  srv {:>6.2} ms  errors {}  RSS {:.1} MiB  CPU srv {:.0}% gen {:.0}%{}{}",
            row.workload,
            row.c,
            row.ops,
            row.unit,
            row.ops_s,
            row.p50_ms,
            row.p99_ms,
            row.server_mean_ms,
            row.errors,
            row.rss_mib,
            row.cpu_server,
            row.cpu_generator,
            row.cpu_postgres
                .map(|p| format!(" pg {p:.0}%"))
                .unwrap_or_default(),
            if row.timed_out {
                "  (time limit hit)"
            } else {
                ""
            },
        );
        for e in &out.error_samples {
            eprintln!("    error: {e}");
        }
        self.rows.push(row);
    }
}

/// 10000 → "10k", 1000000 → "1M".
pub fn short(n: usize) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1000 && n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

/// The results as a markdown table.
pub fn table(rows: &[Row]) -> String {
    let mut t = String::from(
        "| workload | c | users in DB | ops | requests | ops/s | req/s | p50 ms | p99 ms | server mean ms | errors | server RSS MiB | CPU % server / generator / postgres | time s |\n\
         |---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    for r in rows {
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} {} | {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {:.1} | {:.0} / {:.0} / {} | {:.2}{} |",
            r.workload,
            r.c,
            r.db_users,
            r.ops,
            r.unit,
            r.requests,
            r.ops_s,
            r.req_s,
            r.p50_ms,
            r.p99_ms,
            r.server_mean_ms,
            r.errors,
            r.rss_mib,
            r.cpu_server,
            r.cpu_generator,
            r.cpu_postgres
                .map_or("–".to_string(), |p| format!("{p:.0}")),
            r.wall_s,
            if r.timed_out { " (limit)" } else { "" },
        );
    }
    t.push_str(
        "\nCPU % is of one core over the measurement (200 % = both cores); \
         \"server mean ms\" is from the server's own `onramp_http_request_duration_seconds`; \
         latency percentiles are per op as the generator saw them (a W5 op is a probe plus a create or PATCH).\n",
    );
    t
}

fn find<'a>(rows: &'a [Row], workload: &str, c: usize) -> Option<&'a Row> {
    rows.iter().find(|r| r.workload == workload && r.c == c)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

/// The targets checked against this run's rows.
pub fn targets(rows: &[Row], backend: Backend) -> String {
    let mut t =
        format!("### Targets (issue #3; stated for SQLite at c=32; this run: {backend:?})\n\n");
    let rate = |t: &mut String, w: &str, min: f64, unit: &str| {
        let _ = match find(rows, w, 32) {
            Some(r) => writeln!(
                t,
                "- {w} c=32 ≥ {min:.0} {unit}/s: {:.0} → {}",
                r.ops_s,
                verdict(r.ops_s >= min && r.errors == 0)
            ),
            None => writeln!(t, "- {w} c=32 ≥ {min:.0} {unit}/s: not measured"),
        };
    };
    rate(&mut t, "W1 create", 4000.0, "users");
    rate(&mut t, "W2 probe", 15000.0, "probes");
    rate(&mut t, "W3 patch", 4000.0, "patches");
    rate(&mut t, "W5 Entra cycle", 3000.0, "users");

    for c in [1, 32] {
        let scaled: Vec<&Row> = rows
            .iter()
            .filter(|r| r.workload.starts_with("W2 probe @") && r.c == c)
            .collect();
        if let (Some(first), Some(last)) = (scaled.first(), scaled.last())
            && scaled.len() > 1
        {
            let ratio = last.p50_ms / first.p50_ms.max(1e-9);
            let _ = writeln!(
                t,
                "- W2 p50 (c={c}) at {} users ({:.3} ms) within 20 % of {} users ({:.3} ms): ×{ratio:.2} → {}",
                last.db_users,
                last.p50_ms,
                first.db_users,
                first.p50_ms,
                verdict(ratio <= 1.2)
            );
        }
    }
    for r in rows
        .iter()
        .filter(|r| r.workload.starts_with("W4 walk") && r.workload.ends_with("@100k"))
    {
        let _ = writeln!(
            t,
            "- {} of {} users < 2 s: {:.2} s → {}",
            r.workload,
            r.db_users,
            r.wall_s,
            verdict(r.wall_s < 2.0 && r.errors == 0 && !r.timed_out)
        );
    }
    if let Some(rss) = rows
        .iter()
        .filter(|r| r.workload.ends_with("@100k"))
        .map(|r| r.rss_mib)
        .reduce(f64::max)
    {
        let _ = writeln!(
            t,
            "- server RSS at 100,000 users < 100 MB: max {:.1} MiB ({:.1} MB) → {}",
            rss,
            rss * 1.048_576,
            verdict(rss * 1.048_576 < 100.0)
        );
    }
    t.push_str(
        "- PostgreSQL within 2× of SQLite: compare the tables of a sqlite and a postgres run\n",
    );
    t
}

fn first_line_with(path: &str, prefix: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

/// nproc, CPU, memory, kernel, backend (and PostgreSQL's version), binary.
pub async fn machine_facts(args: &crate::Args, bin: &Path) -> String {
    let nproc = std::thread::available_parallelism().map_or(0, usize::from);
    let cpu = first_line_with("/proc/cpuinfo", "model name").unwrap_or_default();
    let mem = first_line_with("/proc/meminfo", "MemTotal").unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let backend = match args.backend {
        Backend::Sqlite => "SQLite (file in a temp dir, WAL)".to_string(),
        Backend::Postgres => {
            let version = match sqlx::PgConnection::connect(&args.pg_url).await {
                Ok(mut conn) => {
                    let v: Option<String> = sqlx::query_scalar("SHOW server_version")
                        .fetch_one(&mut conn)
                        .await
                        .ok();
                    conn.close().await.ok();
                    v.unwrap_or_default()
                }
                Err(_) => "unreachable".to_string(),
            };
            format!("PostgreSQL {version} (same machine)")
        }
    };
    let built = std::fs::metadata(bin)
        .and_then(|m| m.modified())
        .ok()
        .map(|t| time::OffsetDateTime::from(t).to_string())
        .unwrap_or_default();
    let now = time::OffsetDateTime::now_utc();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!(
        "## Machine\n\n\
         - nproc: {nproc} (server and load generator share them)\n\
         - CPU: {cpu}\n\
         - memory: {mem}\n\
         - kernel: {}\n\
         - backend: {backend}\n\
         - server: {} (built {built}), default config (2 HTTP workers, pool of 8)\n\
         - run at: {now}; load average before the run: {}\n\
         - args: users={} concurrency={:?} workloads={:?} w2_probes={} w3_patches={} w2_scale={:?} seed={:?}×{} extra server env={:?}",
        kernel.trim(),
        bin.display(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        args.users,
        args.concurrency,
        args.workloads,
        args.w2_probes,
        args.w3_patches,
        args.w2_scale,
        args.seed,
        args.seed_concurrency,
        args.server_env,
    )
}
