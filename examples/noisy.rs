//! The noisy-neighbour benchmark of issue #9: can one tenant's most
//! expensive requests slow another tenant down?
//!
//! It starts the release server (as `examples/bench` does: a temporary
//! directory, a free 127.0.0.1 port, a fresh SQLite file or PostgreSQL
//! database), makes two organizations, and measures tenant B's Entra-like
//! load — W1 creates and W2 `userName eq` probes, half of B's tasks each —
//! first alone, then while tenant A sends, at full concurrency, the most
//! expensive requests the limits allow:
//!
//! - the largest PATCH: every multi-valued attribute replaced with its
//!   maximum number of values, then merged with itself again, then removed
//!   by value list (three operations per attribute);
//! - the largest create: a user with every multi-valued attribute full;
//! - Bulk at its limits: as many creates as fit the body limit (up to
//!   1,000), some with passwords (the most allowed per request);
//! - passwords: creates carrying a password (a slow hash each).
//!
//! It prints B's throughput and p99 alone and beside A, B's 5xx count, what A
//! got (by status), and the server's peak RSS, with the targets: B keeps at
//! least 70 % of its throughput, p99 under 100 ms, no 5xx for B, RSS under
//! 250 MB. Traffic stays on 127.0.0.1 (and `--pg-url`); every loop is bounded.
//!
//! ```sh
//! cargo build --release && cargo build --release --example noisy
//! target/release/examples/noisy --secs 60
//! target/release/examples/noisy --backend postgres --secs 60
//! ```

#[path = "bench/run.rs"]
#[allow(dead_code)]
mod run;
#[path = "bench/server.rs"]
#[allow(dead_code)]
mod server;
#[path = "bench/workloads.rs"]
#[allow(dead_code)]
mod workloads;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde_json::{Value, json};

use run::Outcome;
use server::{Backend, Server, rss_kib};
use workloads::{Ctx, Population};

#[derive(Debug, Parser)]
#[command(
    about = "Noisy-neighbour benchmark: tenant A's most expensive requests beside tenant B's load"
)]
struct Args {
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    backend: Backend,
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pg_url: String,
    /// How long B runs beside A, in seconds (and alone, before).
    #[arg(long, default_value_t = 60)]
    secs: u64,
    /// B's tasks (half create, half probe).
    #[arg(long, default_value_t = 32)]
    b_concurrency: usize,
    /// A's tasks.
    #[arg(long, default_value_t = 32)]
    a_concurrency: usize,
    /// Users B has before the measurements (what the probes look up).
    #[arg(long, default_value_t = 5_000)]
    seed_users: usize,
    /// The server binary (default: target/release/onramp beside this example).
    #[arg(long)]
    bin: Option<PathBuf>,
}

const SCIM: &str = "application/scim+json";
const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const MULTI: &[&str] = &[
    "emails",
    "phoneNumbers",
    "addresses",
    "roles",
    "entitlements",
    "x509Certificates",
    "ims",
    "photos",
];
/// What the server allows (see its ServiceProviderConfig).
const MAX_VALUES: usize = 100;
const MAX_BULK_PASSWORDS: usize = 20;

fn values(attr: &str, n: usize, tag: &str) -> Value {
    let pad = "x".repeat(40);
    Value::Array(
        (0..n)
            .map(|i| match attr {
                "emails" => {
                    json!({"value": format!("{tag}{i}{pad}@noisy.example"), "type": "other"})
                }
                "addresses" => {
                    json!({"streetAddress": format!("{i} {pad} St {tag}"), "type": "work"})
                }
                _ => json!({"value": format!("{attr}-{tag}-{i}-{pad}")}),
            })
            .collect(),
    )
}

fn full_user(name: &str, tag: &str) -> Value {
    let mut u = json!({"schemas": [USER], "userName": name, "active": true});
    for attr in MULTI {
        u[attr] = values(attr, MAX_VALUES, tag);
    }
    u
}

fn biggest_patch(tag: &str) -> Value {
    let mut ops = Vec::new();
    for attr in MULTI {
        let v = values(attr, MAX_VALUES, tag);
        ops.push(json!({"op": "replace", "path": attr, "value": v}));
        ops.push(json!({"op": "add", "path": attr, "value": v}));
        ops.push(json!({"op": "remove", "path": attr, "value": v}));
        ops.push(json!({"op": "add", "path": attr, "value": v}));
    }
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

/// As many creates as fit `limit` bytes, up to 1,000; the first ones with
/// passwords.
fn biggest_bulk(tag: &str, limit: usize) -> String {
    let mut ops = Vec::new();
    let mut size = 200;
    for i in 0..1000 {
        let mut data = json!({"schemas": [USER], "userName": format!("bulk-{tag}-{i}@noisy.example"),
            "emails": [{"value": format!("bulk-{tag}-{i}@noisy.example"), "type": "work", "primary": true}]});
        if i < MAX_BULK_PASSWORDS {
            data["password"] = json!(format!("a long enough password {tag} {i}"));
        }
        let op =
            json!({"method": "POST", "path": "/Users", "bulkId": format!("b{i}"), "data": data});
        size += op.to_string().len() + 1;
        if size > limit {
            break;
        }
        ops.push(op);
    }
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops})
        .to_string()
}

/// What A got, by status.
#[derive(Default)]
struct Tally(Mutex<BTreeMap<String, u64>>);

impl Tally {
    fn add(&self, kind: &str, status: u16) {
        *self
            .0
            .lock()
            .expect("tally")
            .entry(format!("{kind} {status}"))
            .or_default() += 1;
    }
}

/// Tenant A: `tasks` loops of the most expensive requests until `stop`.
async fn hammer(ctx: Arc<Ctx>, tasks: usize, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    let mut handles = Vec::new();
    let seq = Arc::new(AtomicU64::new(0));
    for t in 0..tasks {
        let (ctx, stop, tally, seq) = (ctx.clone(), stop.clone(), tally.clone(), seq.clone());
        handles.push(tokio::spawn(async move {
            let mut target: Option<String> = None;
            while !stop.load(Ordering::Relaxed) {
                let n = seq.fetch_add(1, Ordering::Relaxed);
                let tag = format!("a{t}n{n}");
                let users = format!("{}/scim/v2/Users", ctx.base);
                let (kind, req) = match (n % 4, &target) {
                    (0, _) | (1, None) => (
                        "create-full",
                        ctx.client
                            .post(&users)
                            .body(full_user(&format!("{tag}@noisy.example"), &tag).to_string()),
                    ),
                    (1, Some(id)) => (
                        "patch-full",
                        ctx.client
                            .patch(format!("{users}/{id}"))
                            .body(biggest_patch(&tag).to_string()),
                    ),
                    (2, _) => (
                        "bulk-limit",
                        ctx.client
                            .post(format!("{}/scim/v2/Bulk", ctx.base))
                            .body(biggest_bulk(&tag, 1024 * 1024)),
                    ),
                    _ => {
                        let mut u = json!({"schemas": [USER], "userName": format!("pw-{tag}@noisy.example")});
                        u["password"] = json!(format!("correct horse battery staple {tag}"));
                        ("create-password", ctx.client.post(&users).body(u.to_string()))
                    }
                };
                let res = req
                    .header(reqwest::header::AUTHORIZATION, &ctx.auth)
                    .header(reqwest::header::CONTENT_TYPE, SCIM)
                    .send()
                    .await;
                match res {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let body: Value = r.json().await.unwrap_or(Value::Null);
                        if kind == "create-full" && status == 201 {
                            target = body["id"].as_str().map(str::to_owned);
                        }
                        tally.add(kind, status);
                    }
                    Err(_) => tally.add(kind, 0),
                }
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
}

/// B's load for `secs`: half its tasks create, half probe.
async fn tenant_b(
    ctx: &Arc<Ctx>,
    pop: &Population,
    c: usize,
    secs: u64,
    round: u64,
) -> (Outcome, Outcome) {
    let ctx = Arc::new(Ctx {
        client: ctx.client.clone(),
        base: ctx.base.clone(),
        auth: ctx.auth.clone(),
        limit: Duration::from_secs(secs),
    });
    // More than B can do in `secs` (the time limit ends each).
    let most = secs as usize * 20_000;
    let prefix = format!("b{round}");
    let creates = workloads::w1_create(&ctx, &prefix, most, (c / 2).max(1));
    let probes = workloads::w2_probe(
        &ctx,
        workloads::names_of(pop),
        most * 4,
        (c / 2).max(1),
        round,
    );
    let ((created, _), probed) = tokio::join!(creates, probes);
    (created, probed)
}

fn fivexx(o: &Outcome) -> usize {
    o.error_samples
        .iter()
        .filter(|e| e.contains("HTTP 5"))
        .count()
}

struct Line {
    name: String,
    per_s: f64,
    p99: f64,
    errors: u64,
}

fn line(name: &str, o: &mut Outcome) -> Line {
    Line {
        name: name.to_string(),
        per_s: o.ops as f64 / o.elapsed.as_secs_f64().max(1e-9),
        p99: o.percentile_ms(99.0),
        errors: o.errors,
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let bin = match &args.bin {
        Some(b) => std::fs::canonicalize(b)?,
        None => {
            let exe = std::env::current_exe()?;
            let bin = exe
                .parent()
                .and_then(|e| e.parent())
                .map(|p| p.join("onramp"))
                .context("target directory")?;
            if !bin.exists() {
                bail!("{} does not exist: cargo build --release", bin.display());
            }
            bin
        }
    };
    let mut srv = Server::start(&bin, args.backend, &args.pg_url, &[]).await?;
    let result = run(&args, &bin, &mut srv).await;
    srv.stop().await;
    result
}

async fn run(args: &Args, bin: &std::path::Path, srv: &mut Server) -> Result<()> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(120))
        .build()?;
    let b = Arc::new(Ctx {
        client: client.clone(),
        base: srv.base.clone(),
        auth: format!("Bearer {}", srv.token),
        limit: Duration::from_secs(600),
    });
    let a_token = srv.tenant(bin, "Noisy Corp")?;
    let a = Arc::new(Ctx {
        client: client.clone(),
        base: srv.base.clone(),
        auth: format!("Bearer {a_token}"),
        limit: Duration::from_secs(600),
    });
    let pid = srv.pid().context("server pid")?;

    eprintln!("seeding {} users for tenant B…", args.seed_users);
    let (seeded, pop) = workloads::w1_create(&b, "seed", args.seed_users, 16).await;
    if seeded.errors > 0 {
        bail!("seeding failed: {:?}", seeded.error_samples);
    }
    let pop: Population = Arc::new(pop);
    server::wait_for_mail_queue(&client, &srv.base).await;

    eprintln!("tenant B alone for {} s…", args.secs);
    let (mut c0, mut p0) = tenant_b(&b, &pop, args.b_concurrency, args.secs, 1).await;
    server::wait_for_mail_queue(&client, &srv.base).await;
    let rss_before = rss_kib(pid).unwrap_or(0);

    eprintln!("tenant B beside tenant A for {} s…", args.secs);
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Some(kib) = rss_kib(pid) {
                    peak.fetch_max(kib, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let noise = tokio::spawn(hammer(
        a.clone(),
        args.a_concurrency,
        stop.clone(),
        tally.clone(),
    ));
    // A gets going first.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    let (mut c1, mut p1) = tenant_b(&b, &pop, args.b_concurrency, args.secs, 2).await;
    let beside = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let _ = noise.await;
    let _ = sampler.await;
    srv.check_alive()?;

    let lines = [
        line("B creates, alone", &mut c0),
        line("B probes, alone", &mut p0),
        line("B creates, beside A", &mut c1),
        line("B probes, beside A", &mut p1),
    ];
    println!(
        "\n## Noisy neighbour ({:?}, {} s each, B c={}, A c={})\n",
        args.backend, args.secs, args.b_concurrency, args.a_concurrency
    );
    println!("| measurement | ops/s | p99 ms | errors |");
    println!("|---|--:|--:|--:|");
    for l in &lines {
        println!(
            "| {} | {:.0} | {:.2} | {} |",
            l.name, l.per_s, l.p99, l.errors
        );
    }
    let kept = |alone: &Line, beside: &Line| 100.0 * beside.per_s / alone.per_s.max(1e-9);
    let b5xx = fivexx(&c1) + fivexx(&p1);
    let b_errors = c1.errors + p1.errors;
    println!(
        "\nTenant A's requests over {:.0} s (kind, status: count):",
        beside.as_secs_f64()
    );
    for (k, n) in tally.0.lock().expect("tally").iter() {
        println!("- {k}: {n}");
    }
    let peak_mib = peak.load(Ordering::Relaxed) as f64 / 1024.0;
    println!(
        "\nServer RSS: {:.1} MiB before A, peak {:.1} MiB ({:.0} MB) while A ran.",
        rss_before as f64 / 1024.0,
        peak_mib,
        peak_mib * 1.048576
    );
    println!("\n### Targets");
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let kc = kept(&lines[0], &lines[2]);
    let kp = kept(&lines[1], &lines[3]);
    println!(
        "- B keeps ≥ 70 % of its creates: {kc:.0} % → {}",
        verdict(kc >= 70.0)
    );
    println!(
        "- B keeps ≥ 70 % of its probes: {kp:.0} % → {}",
        verdict(kp >= 70.0)
    );
    let p99 = lines[2].p99.max(lines[3].p99);
    println!(
        "- B's p99 under 100 ms beside A: {p99:.1} ms → {}",
        verdict(p99 < 100.0)
    );
    println!(
        "- no 5xx for B: {b5xx} (errors of any kind: {b_errors}) → {}",
        verdict(b5xx == 0 && b_errors == 0)
    );
    println!(
        "- RSS under 250 MB: {:.0} MB → {}",
        peak_mib * 1.048576,
        verdict(peak_mib * 1.048576 < 250.0)
    );
    if b_errors > 0 {
        println!(
            "\nB's error samples: {:?} {:?}",
            c1.error_samples, p1.error_samples
        );
    }
    Ok(())
}
