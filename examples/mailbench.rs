//! Invitation mail throughput: provisions N users through SCIM against the
//! release server and measures until a local SMTP server has accepted the
//! last invitation; then provisions N more with `auto_invite` off to compare
//! provisioning throughput with and without invitations.
//!
//! ```sh
//! cargo build --release && cargo run --release --example mailbench -- --users 10000
//! ```
//! `--server-env KEY=VALUE` (repeatable) adds to the server's environment,
//! `--pg URL` runs it on PostgreSQL, `--bin` names another server binary.
//! Traffic stays on 127.0.0.1; every loop is bounded.

#[path = "support/args.rs"]
mod args;

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Debug, Parser)]
#[command(about = "Invitation mail throughput against the release onramp binary")]
struct Args {
    /// Users provisioned with invitations on, then as many with them off.
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// How long to wait for the last mail (a server run with its outbox
    /// worker off, to see what queuing alone costs, never delivers).
    #[arg(long, default_value_t = 600)]
    mail_wait_secs: u64,
    /// A PostgreSQL database URL (default: SQLite in a temporary folder).
    #[arg(long)]
    pg: Option<String>,
    /// The server binary.
    #[arg(long, default_value = "target/release/onramp")]
    bin: PathBuf,
    /// Extra environment for the server, KEY=VALUE (repeatable).
    #[arg(long = "server-env", value_parser = args::parse_kv)]
    server_env: Vec<(String, String)>,
}

/// A minimal SMTP server that accepts everything and counts messages.
async fn smtp_sink(count: Arc<AtomicUsize>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut lines = BufReader::new(r).lines();
                if w.write_all(b"220 sink ESMTP\r\n").await.is_err() {
                    return;
                }
                let mut in_data = false;
                while let Ok(Some(line)) = lines.next_line().await {
                    let reply: &[u8] = if in_data {
                        if line == "." {
                            in_data = false;
                            count.fetch_add(1, Ordering::Relaxed);
                            b"250 queued\r\n"
                        } else {
                            continue;
                        }
                    } else {
                        let cmd = line.get(..4).unwrap_or("").to_ascii_uppercase();
                        match cmd.as_str() {
                            "EHLO" => b"250-sink\r\n250 PIPELINING\r\n",
                            "DATA" => {
                                in_data = true;
                                b"354 go ahead\r\n"
                            }
                            "QUIT" => {
                                let _ = w.write_all(b"221 bye\r\n").await;
                                return;
                            }
                            _ => b"250 ok\r\n",
                        }
                    };
                    if w.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(bin: &Path, env: &[(String, String)], args: &[&str]) -> String {
    let out = Command::new(bin)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run onramp");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn user(name: &str) -> String {
    serde_json::json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "externalId": name, "userName": name, "active": true, "displayName": "Bench User",
        "emails": [{"primary": true, "type": "work", "value": name}],
        "name": {"givenName": "Bench", "familyName": "User", "formatted": "Bench User"},
        "title": "Buyer",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Purchasing", "employeeNumber": "1"}
    })
    .to_string()
}

/// POSTs `n` users at concurrency 32; returns the elapsed time.
async fn provision(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    prefix: &str,
    n: usize,
) -> Duration {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (client, next) = (client.clone(), next.clone());
            let (url, token, prefix) = (
                format!("{base}/scim/v2/Users"),
                token.to_string(),
                prefix.to_string(),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return;
                    }
                    let res = client
                        .post(&url)
                        .bearer_auth(&token)
                        .header("content-type", "application/scim+json")
                        .body(user(&format!("{prefix}{i}@bench.example")))
                        .send()
                        .await
                        .expect("request");
                    assert_eq!(res.status(), 201, "create failed");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    started.elapsed()
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let (n, mail_wait, bin) = (args.users, args.mail_wait_secs, args.bin.as_path());
    let dir = tempfile::tempdir().expect("tmp");
    let count = Arc::new(AtomicUsize::new(0));
    let smtp_port = smtp_sink(count.clone()).await;
    let http_port = StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut env: Vec<(String, String)> = [
        (
            "ONRAMP_DATABASE__URL",
            args.pg
                .clone()
                .unwrap_or_else(|| format!("sqlite://{}/bench.db", dir.path().display())),
        ),
        ("ONRAMP_HTTP__BIND", format!("127.0.0.1:{http_port}")),
        ("ONRAMP_LOG__LEVEL", "warn".to_string()),
        ("ONRAMP_MAIL__TRANSPORT", "smtp".to_string()),
        ("ONRAMP_MAIL__SMTP__HOST", "127.0.0.1".to_string()),
        ("ONRAMP_MAIL__SMTP__PORT", smtp_port.to_string()),
        ("ONRAMP_MAIL__SMTP__TLS", "none".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    env.extend(args.server_env.iter().cloned());
    let org: serde_json::Value =
        serde_json::from_str(&run(bin, &env, &["org", "create", "--name", "Mail Bench"])).unwrap();
    let org_id = org["id"].as_str().unwrap().to_string();
    let token = run(bin, &env, &["scim-token", "create", "--org", &org_id]);
    let _server = Server(
        Command::new(bin)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("server"),
    );
    let base = format!("http://127.0.0.1:{http_port}");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    for _ in 0..400 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    let started = Instant::now();
    let with_invites = provision(&client, &base, &token, "on", n).await;
    let deadline = Instant::now() + Duration::from_secs(mail_wait);
    while count.load(Ordering::Relaxed) < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let total = started.elapsed();
    let delivered = count.load(Ordering::Relaxed);

    run(
        bin,
        &env,
        &["org", "set", &org_id, "--auto-invite", "false"],
    );
    // A change made by another process reaches the server's organization
    // cache within http.tenancy_cache_ms (2 s by default).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let without = provision(&client, &base, &token, "off", n).await;

    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!("| measure | value |");
    println!("| --- | --- |");
    println!("| users provisioned (c=32) | {n} |");
    println!("| invitation mails accepted by SMTP | {delivered} |");
    println!(
        "| first POST → last mail accepted | {:.2} s |",
        total.as_secs_f64()
    );
    println!(
        "| mails/s end to end | {:.0} |",
        delivered as f64 / total.as_secs_f64()
    );
    println!(
        "| W1 with invitations on | {:.0} users/s |",
        rate(with_invites)
    );
    println!("| W1 with invitations off | {:.0} users/s |", rate(without));
    println!(
        "| provisioning slowdown from invitations | {:.1} % |",
        (1.0 - rate(with_invites) / rate(without)) * 100.0
    );
}
