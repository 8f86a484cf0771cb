//! The SCIM benchmark of issue #3: how fast the release server answers what
//! Microsoft Entra ID sends, on SQLite or PostgreSQL, with the load generator
//! on the same machine.
//!
//! It starts `target/release/onramp` itself (in a temporary directory, on a
//! free 127.0.0.1 port, on a fresh SQLite file or a fresh PostgreSQL database
//! `onramp_bench_<uuid>`), creates an organization and a SCIM token with the
//! binary's own CLI, waits for `/healthz`, runs the workloads, prints a
//! markdown table and the machine facts, then stops the server and drops the
//! database. Every loop is bounded in count and in time (`--max-secs` per
//! measurement); all traffic goes to 127.0.0.1 (and to `--pg-url`).
//!
//! Workloads, each at every `--concurrency` (a fixed pool of tokio tasks
//! pulling from one atomic counter, one shared `reqwest::Client`):
//!
//! - `w1`: create `--users` users (`POST /scim/v2/Users`);
//! - `w2`: `--w2-probes` probes `GET /Users?filter=userName eq "<existing>"`;
//! - `w3`: `--w3-patches` Entra PATCHes (`active` toggled, work email replaced);
//! - `w4`: walk every user with `count=100`, by `startIndex` and by cursor
//!   (sequential: paging is a chain, so it runs once, at c=1);
//! - `w5`: the Entra cycle for `--w5-users` users, half existing, half new:
//!   probe, then PATCH or create.
//!
//! `--w2-scale 10000,100000,1000000` then tops the database up to each size
//! (`POST /Bulk`, 1,000 operations a request, or POSTs: `--seed`), prints the
//! seeding rate, and measures W2, the W4 walks (up to `--w4-max-users`) and
//! the server's RSS at each size.
//!
//! Any non-2xx, transport error or wrong answer is an error; a run with errors
//! is not a valid result and exits with status 1.
//!
//! ```sh
//! cargo build --release
//! cargo run --release --example bench -- --backend sqlite --users 20000
//! cargo run --release --example bench -- --backend postgres \
//!     --pg-url postgres://postgres@127.0.0.1:5432/postgres --users 20000
//! cargo run --release --example bench -- --workloads none --w2-scale 10000,100000,1000000
//! ```

#[path = "support/args.rs"]
mod args;
#[path = "bench/report.rs"]
mod report;
#[path = "bench/run.rs"]
mod run;
#[path = "bench/server.rs"]
#[allow(dead_code)] // shared with examples/noisy
mod server;
#[path = "bench/workloads.rs"]
mod workloads;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;

use report::Bench;
use server::{Backend, Server};
use workloads::{Ctx, Paging, Population, SeedMode};

#[derive(Debug, Parser)]
#[command(about = "SCIM load benchmark against the release onramp binary (issue #3)")]
struct Args {
    /// Database backend of the server under test.
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    backend: Backend,
    /// Users created by W1 (per concurrency level) and by W5 unless --w5-users.
    #[arg(long, default_value_t = 20_000)]
    users: usize,
    /// Concurrency levels (tasks in flight).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 32])]
    concurrency: Vec<usize>,
    /// Workloads to run (w1..w5), or `none`.
    #[arg(long, value_delimiter = ',', default_value = "w1,w2,w3,w4,w5")]
    workloads: Vec<String>,
    /// Administrative PostgreSQL URL; the bench database is created and dropped through it.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pg_url: String,
    /// W2 probes per measurement.
    #[arg(long, default_value_t = 20_000)]
    w2_probes: usize,
    /// W3 PATCHes per measurement.
    #[arg(long, default_value_t = 10_000)]
    w3_patches: usize,
    /// W5 users per measurement (default: --users).
    #[arg(long)]
    w5_users: Option<usize>,
    /// Database sizes (users) for the W2 scale check, e.g. 10000,100000,1000000.
    #[arg(long, value_delimiter = ',')]
    w2_scale: Vec<usize>,
    /// Run the W4 walks at scale sizes up to this many users.
    #[arg(long, default_value_t = 100_000)]
    w4_max_users: usize,
    /// How seeding creates users.
    #[arg(long, value_enum, default_value_t = SeedMode::Bulk)]
    seed: SeedMode,
    /// Requests in flight while seeding.
    #[arg(long, default_value_t = 4)]
    seed_concurrency: usize,
    /// Operations per Bulk request when seeding.
    #[arg(long, default_value_t = 1000)]
    bulk_ops: usize,
    /// Time limit of one measurement, in seconds (seeding gets ten times this).
    #[arg(long, default_value_t = 120)]
    max_secs: u64,
    /// The server binary (default: `onramp` next to this example's directory, i.e. target/release/onramp).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Extra environment for the server, KEY=VALUE (repeatable), e.g. ONRAMP_DATABASE__MAX_CONNECTIONS=16.
    #[arg(long = "server-env", value_parser = args::parse_kv)]
    server_env: Vec<(String, String)>,
}

fn server_binary(args: &Args) -> Result<PathBuf> {
    if let Some(bin) = &args.bin {
        // The server runs in a temporary directory: make the path absolute.
        return std::fs::canonicalize(bin).with_context(|| format!("{}", bin.display()));
    }
    // target/release/examples/bench -> target/release/onramp
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
    let known = ["w1", "w2", "w3", "w4", "w5", "none"];
    if let Some(bad) = args.workloads.iter().find(|w| !known.contains(&w.as_str())) {
        bail!("unknown workload {bad}; use w1..w5 or none");
    }
    let bin = server_binary(&args)?;
    let facts = report::machine_facts(&args, &bin).await;
    eprintln!("{facts}");
    let mut server = Server::start(&bin, args.backend, &args.pg_url, &args.server_env).await?;
    eprintln!(
        "server pid {} at {}",
        server.pid().unwrap_or_default(),
        server.base
    );
    let client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(60))
        .build()?;
    let ctx = Arc::new(Ctx {
        client,
        base: server.base.clone(),
        auth: format!("Bearer {}", server.token),
        limit: Duration::from_secs(args.max_secs),
    });
    let mut bench = Bench::new(ctx, server.pid(), args.backend);
    let result = run_all(&args, &mut bench, &mut server).await;
    let alive = server.check_alive();
    server.stop().await;
    result?;
    alive?;

    println!("{facts}\n");
    println!("{}", report::table(&bench.rows));
    println!("{}", report::targets(&bench.rows, args.backend));
    let errors: u64 = bench.rows.iter().map(|r| r.errors).sum();
    if errors > 0 {
        println!("\n**INVALID RUN: {errors} errors** (see stderr for samples)");
        std::process::exit(1);
    }
    Ok(())
}

async fn run_all(args: &Args, bench: &mut Bench, server: &mut Server) -> Result<()> {
    let has = |w: &str| args.workloads.iter().any(|x| x == w);
    let cs = &args.concurrency;
    let mut pop: Population = Arc::new(Vec::new());
    let ctx = bench.ctx.clone();

    if has("w1") {
        for &c in cs {
            let snap = bench.snapshot().await;
            let (out, made) = workloads::w1_create(&ctx, &format!("w1c{c}"), args.users, c).await;
            bench.row("W1 create", c, "users", out, snap).await;
            pop = grow(pop, made);
            server.check_alive()?;
        }
    }
    let needs_pop = has("w2") || has("w3") || has("w4") || has("w5");
    if needs_pop && pop.is_empty() {
        let snap = bench.snapshot().await;
        let (out, made) = seed(args, bench, "pop", 0, args.users, true).await;
        bench
            .row(seed_label(args), args.seed_concurrency, "users", out, snap)
            .await;
        pop = grow(pop, made);
    }
    if has("w2") {
        for &c in cs {
            let snap = bench.snapshot().await;
            let out =
                workloads::w2_probe(&ctx, workloads::names_of(&pop), args.w2_probes, c, 2).await;
            bench.row("W2 probe", c, "probes", out, snap).await;
            server.check_alive()?;
        }
    }
    if has("w3") {
        for &c in cs {
            let snap = bench.snapshot().await;
            let out = workloads::w3_patch(&ctx, &pop, args.w3_patches, c, c as u64).await;
            bench.row("W3 patch", c, "patches", out, snap).await;
            server.check_alive()?;
        }
    }
    if has("w4") {
        walks(bench, "").await;
        server.check_alive()?;
    }
    if has("w5") {
        let n = args.w5_users.unwrap_or(args.users);
        for &c in cs {
            let snap = bench.snapshot().await;
            let (out, made) =
                workloads::w5_cycle(&ctx, &pop, &format!("w5c{c}"), n, c, 5 + c as u64).await;
            bench.row("W5 Entra cycle", c, "users", out, snap).await;
            pop = grow(pop, made);
            server.check_alive()?;
        }
    }

    let mut sizes = args.w2_scale.clone();
    sizes.sort_unstable();
    let mut seeded = 0usize;
    for size in sizes {
        let have = workloads::users_in_db(&ctx)
            .await
            .map_err(anyhow::Error::msg)? as usize;
        if have < size {
            let snap = bench.snapshot().await;
            let (out, _) = seed(args, bench, "scale", seeded, seeded + size - have, false).await;
            seeded += size - have;
            bench
                .row(
                    &format!("{} to {size}", seed_label(args)),
                    args.seed_concurrency,
                    "users",
                    out,
                    snap,
                )
                .await;
            server.check_alive()?;
        }
        let names = if seeded > 0 {
            workloads::seeded_names("scale", seeded)
        } else if !pop.is_empty() {
            workloads::names_of(&pop)
        } else {
            bail!("the scale check needs users it knows the names of");
        };
        let at = format!(" @{}", report::short(size));
        for &c in cs {
            let snap = bench.snapshot().await;
            let out = workloads::w2_probe(&ctx, names.clone(), args.w2_probes, c, 7).await;
            bench
                .row(&format!("W2 probe{at}"), c, "probes", out, snap)
                .await;
            server.check_alive()?;
        }
        if size <= args.w4_max_users {
            walks(bench, &at).await;
            server.check_alive()?;
        }
    }
    Ok(())
}

/// Both W4 walks, one after the other.
async fn walks(bench: &mut Bench, at: &str) {
    for (paging, name) in [
        (Paging::Index, "W4 walk startIndex"),
        (Paging::Cursor, "W4 walk cursor"),
    ] {
        let snap = bench.snapshot().await;
        let (out, _) = workloads::w4_walk(&bench.ctx.clone(), paging, 100).await;
        bench
            .row(&format!("{name}{at}"), 1, "pages", out, snap)
            .await;
    }
}

fn seed_label(args: &Args) -> &'static str {
    match args.seed {
        SeedMode::Bulk => "seed (Bulk)",
        SeedMode::Post => "seed (POST)",
    }
}

async fn seed(
    args: &Args,
    bench: &Bench,
    prefix: &str,
    from: usize,
    to: usize,
    keep: bool,
) -> (run::Outcome, Vec<workloads::PopUser>) {
    // Seeding may take much longer than one measurement.
    let ctx = Arc::new(Ctx {
        client: bench.ctx.client.clone(),
        base: bench.ctx.base.clone(),
        auth: bench.ctx.auth.clone(),
        limit: bench.ctx.limit * 10,
    });
    eprintln!("seeding users {from}..{to} ({:?})", args.seed);
    workloads::seed(
        &ctx,
        prefix,
        from,
        to,
        args.seed,
        args.seed_concurrency,
        args.bulk_ops,
        keep,
    )
    .await
}

fn grow(pop: Population, made: Vec<workloads::PopUser>) -> Population {
    let mut all = Arc::try_unwrap(pop).unwrap_or_else(|shared| shared.to_vec());
    all.extend(made);
    Arc::new(all)
}
