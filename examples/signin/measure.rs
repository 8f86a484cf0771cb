//! What the sign-in benchmark measures around each phase — the server's
//! user and system CPU (`/proc/<pid>/stat`), this program's, PostgreSQL's,
//! and the rest of the machine's (`/proc/stat`) — and the report: the
//! markdown table, the per-request breakdown and the verdict.
//!
//! It must never change what is measured: snapshots are taken outside the
//! timed part of each phase.

use std::fmt::Write as _;
use std::time::Instant;

use crate::run::Outcome;
use crate::server::{self, Backend};

/// The target, in milliseconds of server CPU per sign-in.
pub const TARGET_MS: f64 = 2.0;

/// Process counters at the start of a phase.
pub struct Snapshot {
    at: Instant,
    /// utime and stime of the server.
    server: (u64, u64),
    own: u64,
    postgres: u64,
    /// Every process on the machine.
    machine: u64,
}

/// The machine's busy time (all but idle and iowait), in clock ticks.
fn machine_busy_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpu = stat.lines().next().unwrap_or_default();
    // cpu user nice system idle iowait irq softirq steal ...
    cpu.split_whitespace()
        .skip(1)
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, f)| f.parse::<u64>().unwrap_or(0))
        .sum()
}

/// utime and stime of a process, in clock ticks.
fn user_system_ticks(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_comm = stat.rfind(')').map_or("", |i| &stat[i + 1..]);
    let fields: Vec<u64> = after_comm
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    match fields[..] {
        [user, system] => (user, system),
        _ => (0, 0),
    }
}

pub struct Meter {
    pub pid: u32,
    pub backend: Backend,
    pub ticks_per_ms: f64,
}

impl Meter {
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            at: Instant::now(),
            server: user_system_ticks(self.pid),
            own: server::own_cpu_ticks(),
            postgres: match self.backend {
                Backend::Postgres => server::postgres_cpu_ticks(),
                Backend::Sqlite => 0,
            },
            machine: machine_busy_ticks(),
        }
    }

    pub fn row(&self, phase: &str, c: usize, before: &Snapshot, out: &mut Outcome) -> Row {
        let after = self.snapshot();
        let ops = out.ops.max(1) as f64;
        let each = |a: u64, b: u64| a.saturating_sub(b) as f64 / self.ticks_per_ms / ops;
        let wall = after.at.duration_since(before.at).as_secs_f64();
        let user = each(after.server.0, before.server.0);
        let system = each(after.server.1, before.server.1);
        let ours = |s: &Snapshot| s.server.0 + s.server.1 + s.own + s.postgres;
        let others = after
            .machine
            .saturating_sub(before.machine)
            .saturating_sub(ours(&after).saturating_sub(ours(before)));
        Row {
            phase: phase.to_string(),
            c,
            ops: out.ops,
            wall_s: wall,
            per_s: out.ops as f64 / out.elapsed.as_secs_f64().max(1e-9),
            p50_ms: out.percentile_ms(50.0),
            p99_ms: out.percentile_ms(99.0),
            callback_ms: None,
            server_ms: (user, system),
            server_pct: (user + system) * ops / 10.0 / wall,
            own_ms: each(after.own, before.own),
            postgres_ms: (self.backend == Backend::Postgres)
                .then(|| each(after.postgres, before.postgres)),
            others_pct: others as f64 / self.ticks_per_ms / 10.0 / wall,
        }
    }
}

/// One line of the results table.
pub struct Row {
    pub phase: String,
    pub c: usize,
    pub ops: u64,
    pub wall_s: f64,
    pub per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// p50 and p99 of the callback request alone.
    pub callback_ms: Option<(f64, f64)>,
    /// User and system time, each.
    pub server_ms: (f64, f64),
    /// Of one core.
    pub server_pct: f64,
    /// This process: the load driver and the provider.
    pub own_ms: f64,
    pub postgres_ms: Option<f64>,
    /// The rest of the machine, of one core.
    pub others_pct: f64,
}

/// The table, the breakdown and the verdict.
pub fn report(backend: Backend, users: usize, signins: usize, c: usize, rows: &[Row]) -> String {
    let nproc = std::thread::available_parallelism().map_or(0, usize::from);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default();
    let db = match backend {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL (same machine)",
    };
    let mut t = String::new();
    let _ = writeln!(
        t,
        "\n## Sign-in: {db}, {} people, {} sign-ins at c={}\n\n\
         {nproc} cores ({cpu}), shared by the server, this program (load and provider){}.\n",
        users,
        signins,
        c,
        if backend == Backend::Postgres {
            " and PostgreSQL"
        } else {
            ""
        },
    );
    t.push_str(
        "| phase | count | c | wall s | per s | p50 ms | p99 ms | callback p50 / p99 ms | server CPU ms each (user + system) | server CPU % of a core | PostgreSQL CPU ms each | load + provider CPU ms each |\n\
         |---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    for r in rows {
        let callback = r.callback_ms.map_or("–".to_string(), |(p50, p99)| {
            format!("{p50:.2} / {p99:.2}")
        });
        let pg = r
            .postgres_ms
            .map_or("–".to_string(), |ms| format!("{ms:.2}"));
        let (user, system) = r.server_ms;
        let _ = writeln!(
            t,
            "| {} | {} | {} | {:.1} | {:.0} | {:.2} | {:.2} | {callback} | {:.2} ({user:.2} + {system:.2}) | {:.0} | {pg} | {:.2} |",
            r.phase,
            r.ops,
            r.c,
            r.wall_s,
            r.per_s,
            r.p50_ms,
            r.p99_ms,
            user + system,
            r.server_pct,
            r.own_ms
        );
    }
    let cpu_of = |phase: &str| {
        rows.iter()
            .find(|r| r.phase == phase)
            .map(|r| r.server_ms.0 + r.server_ms.1)
    };
    let Some(measured) = rows.iter().find(|r| r.phase == "sign-in") else {
        return t;
    };
    let sign_in = measured.server_ms.0 + measured.server_ms.1;
    if let (Some(page), Some(departure)) = (
        cpu_of("… only GET /login"),
        cpu_of("… only GET + POST /login"),
    ) {
        let _ = writeln!(
            t,
            "\nBy difference, server CPU per request of a sign-in: GET /login {page:.2} ms, \
             POST /login {:.2} ms, GET /sso/callback {:.2} ms.",
            departure - page,
            sign_in - departure
        );
    }
    // Other work on the machine makes the server's CPU per request grow.
    let _ = writeln!(
        t,
        "\nThe rest of the machine used {:.0} % of a core during the sign-ins{}.",
        measured.others_pct,
        if measured.others_pct > 5.0 {
            ": not a quiet machine, the numbers are not this program's alone"
        } else {
            ""
        }
    );
    let verdict = if sign_in <= TARGET_MS {
        "met"
    } else {
        "MISSED"
    };
    let _ = write!(
        t,
        "\nServer CPU per completed sign-in: {sign_in:.2} ms (target ≤ {TARGET_MS} ms) → {verdict}"
    );
    if let Some(pg) = measured.postgres_ms {
        let _ = write!(t, "; with PostgreSQL's own CPU: {:.2} ms", sign_in + pg);
    }
    t.push('\n');
    t
}
