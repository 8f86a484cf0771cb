//! The sign-in benchmark: the release server's CPU per completed sign-in
//! through the organization's OpenID Connect provider (target: ≤ 2 ms), and
//! per registration from an invitation (reported, no target).
//!
//! It starts the test provider of the integration tests (`tests/it/idp.rs`)
//! in this process, so that the provider's CPU (an RS256 signature per ID
//! token) is not the server's, and `target/release/onramp` as a child on a
//! fresh SQLite file or PostgreSQL database (`examples/signin/stack.rs`),
//! with an organization owning `acme.example` and connected to the provider.
//! Then:
//!
//! 1. `--users` people are provisioned by SCIM; their invitation links are
//!    read from the mail folder, and each registers once: link → `/join` →
//!    "Continue" → provider → callback → `/join/register` → `/account`
//!    (the server's CPU per registration is reported, measured as in 3);
//! 2. `--warmup` sign-ins, not measured (connections, caches);
//! 3. `--signins` sign-ins, spread over the people, `--concurrency` at a
//!    time, each from a new cookie jar: `GET /login`, `POST /login`, the
//!    provider's authorization (in-process), `GET /sso/callback` (code
//!    exchange with the provider, ID token verified, session made) → 303
//!    `/account`. The server's CPU (utime + stime from `/proc/<pid>/stat`)
//!    over the phase, divided by the sign-ins, is the measurement;
//! 4. every session made in 3 is checked at `/account` (not measured);
//! 5. where the CPU goes, by difference: as many sign-ins again that stop
//!    after `GET /login`, and as many that stop at the provider's door
//!    (after `POST /login`); the rest of a sign-in is the callback.
//!
//! Other work on the machine makes the server's CPU per sign-in grow (more
//! context switches, colder caches): the report says how much CPU the rest
//! of the machine used during the sign-ins; measure on a quiet machine.
//!
//! `POST /login` is limited per client address (30 in 10 minutes, or
//! `security.sign_ins_per_client_per_minute`), so the sign-ins come from
//! many loopback addresses, [`phases::SIGNINS_PER_ADDRESS`] each (127.1.x.y).
//!
//! A run in which anything fails (any request, any session) exits with
//! status 1 and prints no table. Every loop is bounded in count and in time
//! (`--max-secs` per phase); all traffic stays on 127.0.0.1 (and the
//! PostgreSQL URL).
//!
//! ```sh
//! cargo build --release
//! cargo run --release --example signin
//! cargo run --release --example signin -- --database postgres postgres://postgres@127.0.0.1:5432/postgres
//! ```

#[path = "signin/browser.rs"]
mod browser;
#[path = "signin/flows.rs"]
mod flows;
#[path = "../tests/it/idp.rs"]
mod idp;
#[path = "signin/measure.rs"]
mod measure;
#[path = "signin/phases.rs"]
mod phases;
#[path = "bench/run.rs"]
#[allow(dead_code)] // shared with examples/bench
mod run;
#[path = "bench/server.rs"]
#[allow(dead_code)] // shared with examples/bench
mod server;
#[path = "signin/stack.rs"]
mod stack;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;

use idp::TestIdp;
use measure::{Meter, Row};
use phases::{Ctx, Sources, Upto};
use run::{Outcome, percentile_us};
use server::{Backend, Server};

const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/postgres";

#[derive(Debug, Parser)]
#[command(about = "Server CPU per completed SSO sign-in, against the release onramp binary")]
struct Args {
    /// People provisioned by SCIM and registered once each.
    #[arg(long, default_value_t = 300)]
    users: usize,
    /// Sign-ins measured, spread over the people.
    #[arg(long, default_value_t = 5000)]
    signins: usize,
    /// Registrations and sign-ins in flight.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Sign-ins before the measured ones (not measured).
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    /// `sqlite`, or `postgres` and its administrative URL (a database is
    /// created for the run and dropped after it).
    #[arg(long, num_args = 1..=2, value_names = ["KIND", "URL"], default_value = "sqlite")]
    database: Vec<String>,
    /// Time limit of one phase, in seconds.
    #[arg(long, default_value_t = 300)]
    max_secs: u64,
    /// The server binary (default: target/release/onramp beside this example).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Record the server with `perf record` during the measured sign-ins
    /// (perf's own cost then shows in the server's CPU).
    #[arg(long, value_name = "FILE")]
    perf: Option<PathBuf>,
}

impl Args {
    fn backend(&self) -> Result<(Backend, String)> {
        match self.database.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            ["sqlite"] => Ok((Backend::Sqlite, String::new())),
            ["postgres"] => Ok((Backend::Postgres, DEFAULT_PG.to_string())),
            ["postgres", url] => Ok((Backend::Postgres, url.to_string())),
            _ => bail!("--database takes `sqlite`, or `postgres` and an optional URL"),
        }
    }
}

fn server_binary(args: &Args) -> Result<PathBuf> {
    if let Some(bin) = &args.bin {
        // The server runs in a temporary directory: make the path absolute.
        return std::fs::canonicalize(bin).with_context(|| format!("{}", bin.display()));
    }
    // target/release/examples/signin -> target/release/onramp
    let exe = std::env::current_exe()?;
    let bin = exe
        .parent()
        .and_then(|examples| examples.parent())
        .map(|profile| profile.join("onramp"))
        .context("cannot locate the target directory")?;
    if !bin.exists() {
        bail!(
            "{} does not exist: run `cargo build --release` first",
            bin.display()
        );
    }
    Ok(bin)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let (backend, pg_url) = args.backend()?;
    if args.users == 0 || args.concurrency == 0 {
        bail!("--users and --concurrency must be at least 1");
    }
    let bin = server_binary(&args)?;
    let idp = TestIdp::start().await;
    let mut stack = stack::start(&bin, backend, &pg_url, &idp.issuer()).await?;
    idp.add_client(
        stack::CLIENT_ID,
        stack::CLIENT_SECRET,
        &format!("{}/sso/callback", stack.base),
    );
    let pid = stack.pid().context("server pid")?;
    eprintln!(
        "server pid {pid} at {}, provider at {}",
        stack.base,
        idp.issuer()
    );
    let result = run(&args, backend, idp, &mut stack).await;
    let alive = stack.check_alive();
    stack.stop().await;
    let rows = result?;
    alive?;

    println!(
        "{}",
        measure::report(backend, args.users, args.signins, args.concurrency, &rows)
    );
    Ok(())
}

async fn run(args: &Args, backend: Backend, idp: TestIdp, stack: &mut Server) -> Result<Vec<Row>> {
    let meter = Meter {
        pid: stack.pid().context("server pid")?,
        backend,
        ticks_per_ms: server::clock_ticks_per_sec() / 1000.0,
    };
    let c = args.concurrency;
    let ctx = Arc::new(Ctx {
        base: stack.base.clone(),
        idp,
        people: phases::people(args.users),
        // The warm-up, the sign-ins, and the departures of the breakdown.
        sources: Sources::new(args.warmup + 2 * args.signins)?,
        plain: phases::client(None)?,
        limit: Duration::from_secs(args.max_secs),
    });
    let mut rows = Vec::new();

    eprintln!("provisioning {} people by SCIM…", args.users);
    let out = phases::provision(&ctx, &stack.token, c).await;
    fail_on_errors("provisioning", &out)?;
    let links = phases::invitation_links(&ctx, &stack.mail_dir(), args.users).await?;

    eprintln!("registering {} people…", args.users);
    server::wait_for_mail_queue(&ctx.plain, &ctx.base).await;
    let before = meter.snapshot();
    let mut out = phases::register_all(&ctx, links, c).await;
    rows.push(meter.row("registration", c, &before, &mut out));
    fail_on_errors("registration", &out)?;
    stack.check_alive()?;

    eprintln!("{} sign-ins to warm up…", args.warmup);
    let (out, _, _) = phases::sign_ins(&ctx, 0, args.warmup, c).await;
    fail_on_errors("warm-up", &out)?;

    eprintln!("{} sign-ins, measured…", args.signins);
    server::wait_for_mail_queue(&ctx.plain, &ctx.base).await;
    let perf = match &args.perf {
        Some(file) => Some(start_perf(file, meter.pid)?),
        None => None,
    };
    let before = meter.snapshot();
    let (mut out, mut callbacks, sessions) =
        phases::sign_ins(&ctx, args.warmup, args.signins, c).await;
    let mut row = meter.row("sign-in", c, &before, &mut out);
    if let Some(perf) = perf {
        stop_perf(perf);
    }
    row.callback_ms = Some((
        f64::from(percentile_us(&mut callbacks, 50.0)) / 1000.0,
        f64::from(percentile_us(&mut callbacks, 99.0)) / 1000.0,
    ));
    rows.push(row);
    fail_on_errors("sign-in", &out)?;
    stack.check_alive()?;

    eprintln!("checking the {} sessions at /account…", sessions.len());
    let out = phases::check_sessions(&ctx, sessions, c).await;
    fail_on_errors("session check", &out)?;

    eprintln!(
        "the breakdown: {} sign-in pages, {} departures…",
        args.signins, args.signins
    );
    for (phase, upto) in [
        ("… only GET /login", Upto::Page),
        ("… only GET + POST /login", Upto::Departure),
    ] {
        server::wait_for_mail_queue(&ctx.plain, &ctx.base).await;
        let before = meter.snapshot();
        let first = args.warmup + args.signins;
        let mut out = phases::partial_sign_ins(&ctx, first, args.signins, c, upto).await;
        rows.push(meter.row(phase, c, &before, &mut out));
        fail_on_errors(phase, &out)?;
    }
    Ok(rows)
}

fn fail_on_errors(phase: &str, out: &Outcome) -> Result<()> {
    if out.errors > 0 || out.timed_out {
        bail!(
            "{phase}: {} errors{}; first: {:#?}",
            out.errors,
            if out.timed_out {
                ", time limit reached"
            } else {
                ""
            },
            out.error_samples
        );
    }
    Ok(())
}

/// `perf record` of the server, until [`stop_perf`].
fn start_perf(file: &Path, pid: u32) -> Result<Child> {
    let child = Command::new("perf")
        // The release binary has no frame pointers: unwind with DWARF.
        .args(["record", "--call-graph", "dwarf", "-F", "499", "-p"])
        .arg(pid.to_string())
        .arg("-o")
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot run perf")?;
    // perf attaches before the measured phase starts.
    std::thread::sleep(Duration::from_millis(500));
    Ok(child)
}

fn stop_perf(mut perf: Child) {
    let _ = Command::new("kill")
        .args(["-INT", &perf.id().to_string()])
        .status();
    let _ = perf.wait();
}
