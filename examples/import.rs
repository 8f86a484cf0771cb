//! Measures `onramp accounts import`: accounts with their orders, payment
//! methods and addresses per second, through the same importer the CLI
//! runs, in-process on a fresh SQLite database (or PostgreSQL with
//! `--pg postgres://…/db`). The accounts come with `password_hash` (an
//! argon2 PHC string), as an export from a platform would carry them:
//! plain passwords cost ~20 ms of a core each to hash, whatever the store.
//! Then the same file again (an import is safe to repeat).
//!
//! ```sh
//! cargo run --release --example import -- --accounts 100000 --orders 5
//! ```

#[path = "support/db.rs"]
#[allow(dead_code)] // shared: not every example uses every part
mod db;

use std::time::Instant;

use clap::Parser;
use onramp::accounts::import::{ImportEvent, Importer};
use onramp::secrets::password::Passwords;

// The allocator of the `onramp` binary, whose `accounts import` this measures.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A valid argon2id hash (of "x"), as an export would carry.
const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$wY9+Aw6sPZ3y0V9Ka4o2F7w8m5cN6sB8nC2d5dOq4xA";

fn file(accounts: usize, orders: usize) -> String {
    let mut out = String::with_capacity(accounts * (300 + orders * 120));
    for i in 0..accounts {
        let kind = if i % 10 == 0 { "business" } else { "personal" };
        out.push_str(&format!(
            r#"{{"email": "person{i}@bench.example", "name": "Person {i}", "kind": "{kind}", "password_hash": "{HASH}", "phone": "+1555{:07}", "orders": ["#,
            i % 10_000_000
        ));
        for o in 0..orders {
            if o > 0 {
                out.push_str(", ");
            }
            let purpose = if (i + o) % 3 == 0 {
                "personal"
            } else {
                "business"
            };
            out.push_str(&format!(
                r#"{{"id": "O-{i}-{o}", "date": "2025-0{}-1{}", "total": "{}.{:02}", "currency": "USD", "purpose": "{purpose}", "summary": "Item {o} of order"}}"#,
                1 + o % 9,
                o % 10,
                10 + o,
                i % 100
            ));
        }
        out.push_str(r#"], "payment_methods": [{"brand": "visa", "last4": "4242", "expires": "2028-04"}], "addresses": [{"name": "Person", "line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}]}"#);
        out.push('\n');
    }
    out
}

#[derive(Debug, Parser)]
#[command(about = "Accounts imported per second, in-process")]
struct Args {
    /// Accounts in the file.
    #[arg(long, default_value_t = 100_000)]
    accounts: usize,
    /// Orders per account.
    #[arg(long, default_value_t = 5)]
    orders: usize,
    #[command(flatten)]
    db: db::DbArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (accounts, orders) = (args.accounts, args.orders);
    let db = args.db.db()?;
    let store = db.store().await?;
    let text = file(accounts, orders);
    println!(
        "{accounts} accounts, {orders} orders each, 1 payment method and 1 address each ({:.1} MiB of JSON Lines) on {}",
        text.len() as f64 / (1 << 20) as f64,
        args.db.backend()
    );
    for round in ["first import", "the same file again"] {
        let importer = Importer::new(store.clone(), Passwords::new(0));
        let started = Instant::now();
        let report = importer
            .run(std::io::Cursor::new(text.as_bytes()), |e| {
                if let ImportEvent::Refused { line, reason } = e {
                    eprintln!("line {line}: {reason}");
                }
            })
            .await?;
        let secs = started.elapsed().as_secs_f64();
        anyhow::ensure!(report.failed == 0, "lines were refused");
        println!(
            "{round:>20}: {:>7.2} s  {:>9.0} accounts/s  {:>10.0} orders/s",
            secs,
            report.accounts as f64 / secs,
            report.orders as f64 / secs
        );
    }
    store.close().await;
    Ok(())
}
