//! Measures what a membership change costs in a large group: one member
//! added to (and removed from) a group of N members through the SCIM
//! service, and reading that group without its members. Runs in-process on
//! a fresh SQLite database (or PostgreSQL with `--pg postgres://…/db`).
//!
//! ```sh
//! cargo run --release --example membership -- --members 100000
//! ```

#[path = "support/db.rs"]
#[allow(dead_code)] // shared: not every example uses every part
mod db;

use std::time::Instant;

use clap::Parser;
use onramp::scim::protocol::parse_attribute_list;
use onramp::scim::{Precondition, Projection, ScimService};
use onramp::tenancy::{NewOrg, TenancyService};
use serde_json::json;

#[derive(Debug, Parser)]
#[command(about = "What a membership change costs in a large group, in-process")]
struct Args {
    /// Members of the group.
    #[arg(long, default_value_t = 100_000)]
    members: usize,
    #[command(flatten)]
    db: db::DbArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let members = args.members;
    let db = args.db.db()?;
    let store = db.store().await?;
    let org = TenancyService::new(store.clone())
        .create_org(NewOrg {
            name: format!("Bench {}", uuid::Uuid::new_v4()),
            domains: vec![],
        })
        .await?;
    let scim = ScimService::new(
        store.clone(),
        "http://127.0.0.1:8080",
        onramp::secrets::password::Passwords::new(0),
    );
    let none = Projection::default();
    let no_members = Projection {
        attributes: vec![],
        excluded: parse_attribute_list("members")?,
    };

    let started = Instant::now();
    let group = scim
        .create_group(org.id, &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Everyone"}), &none)
        .await?;
    let gid = group.body["id"].as_str().unwrap_or_default().to_string();
    let mut batch = Vec::new();
    for i in 0..=members {
        let user = scim
            .create_user(org.id, &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("u{i}@bench.example")}), &none)
            .await?;
        batch.push(json!({"value": user.body["id"]}));
        if batch.len() == 1000 || i == members - 1 {
            let ops = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "add", "path": "members", "value": batch}]});
            scim.patch_group(org.id, &gid, &ops, &Precondition::default(), &no_members)
                .await?;
            batch = Vec::new();
        }
    }
    let extra = batch
        .pop()
        .map(|m| m["value"].as_str().unwrap_or_default().to_string())
        .unwrap_or_default();
    println!(
        "seeded {members} members in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    let rounds = 200;
    let mut add = Vec::with_capacity(rounds);
    let mut remove = Vec::with_capacity(rounds);
    let mut read = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        let ops = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "add", "path": "members", "value": [{"value": extra}]}]});
        scim.patch_group(org.id, &gid, &ops, &Precondition::default(), &no_members)
            .await?;
        add.push(t.elapsed().as_micros());
        let t = Instant::now();
        let ops = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "remove", "path": format!("members[value eq \"{extra}\"]")}]});
        scim.patch_group(org.id, &gid, &ops, &Precondition::default(), &no_members)
            .await?;
        remove.push(t.elapsed().as_micros());
        let t = Instant::now();
        scim.get_group(org.id, &gid, &no_members).await?;
        read.push(t.elapsed().as_micros());
    }
    let t = Instant::now();
    let full = scim.get_group(org.id, &gid, &none).await?;
    let full_read = t.elapsed();
    let listed = full.body["members"].as_array().map_or(0, |m| m.len());
    println!("backend: {}, group of {listed} members", store.backend());
    for (name, mut v) in [
        ("add one member", add),
        ("remove one member", remove),
        ("read, excludedAttributes=members", read),
    ] {
        v.sort_unstable();
        println!(
            "{name:<34} p50 {:>6} µs  p99 {:>6} µs",
            v[v.len() / 2],
            v[v.len() * 99 / 100]
        );
    }
    println!(
        "{:<34} {:>9.1} ms",
        "read with all members",
        full_read.as_secs_f64() * 1000.0
    );
    store.close().await;
    Ok(())
}
