//! Measures the separate path's commit on accounts of different sizes: the
//! whole path through the real server over HTTP (the in-process test
//! provider of `tests/it/idp.rs` signs people in), and the time of its last
//! request — the work email's code, which verifies it and commits the one
//! transaction that moves the old account's login to the personal email
//! and creates the business account. A move re-points the login and copies
//! nothing, so an account with 100,000 orders should take about as long as
//! one with a single order.
//!
//! ```sh
//! cargo run --release --example separate -- [--orders 1,100000] [--rounds 5] [--pg postgres://…/db]
//! ```

#[path = "support/db.rs"]
#[allow(dead_code)] // shared: not every example uses every part
mod db;
#[path = "../tests/it/idp.rs"]
mod idp;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use clap::Parser;
use onramp::accounts::import::Importer;
use onramp::oidc::SetConnection;
use onramp::secrets::password::Passwords;
use onramp::secrets::token;
use onramp::startup::Application;
use onramp::store::DynStore;
use onramp::tenancy::NewOrg;
use serde_json::json;
use uuid::Uuid;

const PUBLIC: &str = "http://127.0.0.1:8080";
const PASSWORD: &str = "old-account-password";

/// A browser without redirects, keeping cookies by name.
struct Browser {
    base: String,
    http: reqwest::Client,
    jar: HashMap<String, String>,
}

struct Answer {
    status: u16,
    location: Option<String>,
}

impl Browser {
    fn new(base: &str) -> Browser {
        Browser {
            base: base.to_string(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            jar: HashMap::new(),
        }
    }

    fn url(&self, target: &str) -> String {
        match target.strip_prefix(PUBLIC) {
            Some(rest) => format!("{}{rest}", self.base),
            None if target.starts_with('/') => format!("{}{target}", self.base),
            None => target.to_string(),
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> anyhow::Result<Answer> {
        let cookies: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let res = req.header("cookie", cookies.join("; ")).send().await?;
        for c in res.headers().get_all("set-cookie") {
            let c = c.to_str()?;
            let (k, v) = c
                .split(';')
                .next()
                .unwrap_or("")
                .split_once('=')
                .unwrap_or(("", ""));
            if v.is_empty() || c.contains("Max-Age=0") {
                self.jar.remove(k);
            } else {
                self.jar.insert(k.to_string(), v.to_string());
            }
        }
        let status = res.status().as_u16();
        let location = res
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let _ = res.bytes().await?;
        Ok(Answer { status, location })
    }

    async fn get(&mut self, target: &str) -> anyhow::Result<Answer> {
        let req = self.http.get(self.url(target));
        self.send(req).await
    }

    async fn submit(&mut self, path: &str, fields: &[(&str, &str)]) -> anyhow::Result<Answer> {
        let csrf = self.jar.get("onramp_csrf").cloned().unwrap_or_default();
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        let req = self.http.post(self.url(path)).form(&form);
        let a = self.send(req).await?;
        anyhow::ensure!(a.status == 303, "{path} answered {}", a.status);
        Ok(a)
    }
}

/// The newest code mailed for the invitation to `to` (the outbox keeps it).
async fn code(store: &DynStore, inv: Uuid, to: &str) -> anyhow::Result<String> {
    let mail = store.mail_for("code", inv).await?;
    let m = mail
        .iter()
        .rev()
        .find(|m| m.to_address.eq_ignore_ascii_case(to))
        .ok_or_else(|| anyhow::anyhow!("no code to {to}"))?;
    m.body_text
        .as_deref()
        .unwrap_or("")
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 6 && l.chars().all(|c| c.is_ascii_digit()))
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no code in the mail"))
}

#[derive(Debug, Parser)]
#[command(about = "Separate's last request on accounts with many orders, in-process")]
struct Args {
    /// Orders of the account, one measurement per size.
    #[arg(long, value_delimiter = ',', default_value = "1,100000")]
    orders: Vec<usize>,
    /// Separations measured per size.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    #[command(flatten)]
    db: db::DbArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (sizes, rounds) = (args.orders.clone(), args.rounds);
    let db = args.db.db()?;
    let mut config = db.config.clone();
    config.http.bind = "127.0.0.1:0".parse()?;
    config.mail.outbox.enabled = false;
    config.sso.secret_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
        .to_string()
        .into();
    config.log.level = "warn".into();
    let app = Application::build(config).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let services = app.services().clone();
    let store = services.store.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async move {
        let _ = stopped.await;
    }));

    let idp = idp::TestIdp::start().await;
    idp.add_client("onramp", "bench-secret", &format!("{PUBLIC}/sso/callback"));
    let org = services
        .tenancy
        .create_org(NewOrg {
            name: "Bench Corp".into(),
            domains: vec!["bench.example".into()],
        })
        .await?;
    let scim_token = services
        .tenancy
        .create_scim_token(org.id, None)
        .await?
        .token;
    services
        .sso
        .set_connection(
            org.id,
            SetConnection {
                issuer: idp.issuer(),
                client_id: "onramp".into(),
                client_secret: "bench-secret".to_string().into(),
                match_rule: "email".into(),
                trust_email: false,
                scopes: None,
            },
        )
        .await?;
    let http = reqwest::Client::new();
    let importer = Importer::new(store.clone(), Passwords::new(0));

    println!(
        "separate's last request (the work email's code: verify, then commit) on {}",
        args.db.backend()
    );
    println!(
        "{:>9}  {:>9}  {:>9}  {:>9}",
        "orders", "median", "min", "max"
    );
    let mut n = 0;
    for &orders in &sizes {
        let mut times = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            n += 1;
            let email = format!("person{n}@bench.example");
            let personal = format!("person{n}@home.example");
            // The old account, with `orders` orders, one of them personal.
            let list: Vec<_> = (0..orders)
                .map(|i| {
                    json!({"id": format!("O-{i:07}"), "date": "2025-03-02", "total": "19.90", "currency": "USD",
                           "purpose": if i == 0 { "personal" } else { "business" }, "summary": "item"})
                })
                .collect();
            let line = json!({"email": email, "name": "Old", "kind": "personal", "password": PASSWORD, "orders": list});
            importer
                .run(std::io::Cursor::new(format!("{line}\n")), |_| {})
                .await?;
            // Provisioned, invited; a link issued for this run.
            let res = http
                .post(format!("{base}/scim/v2/Users"))
                .bearer_auth(&scim_token)
                .header("content-type", "application/scim+json")
                .body(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": email, "active": true,
                             "emails": [{"type": "work", "primary": true, "value": email}]}).to_string())
                .send()
                .await?;
            anyhow::ensure!(
                res.status().as_u16() == 201,
                "SCIM create: {}",
                res.status()
            );
            let user: serde_json::Value = res.json().await?;
            let user_id: Uuid = user["id"].as_str().unwrap_or_default().parse()?;
            let mut inv = store.invitations_of_user(org.id, user_id).await?.remove(0);
            let issued = token::issue("inv");
            inv.token_hash = Some(issued.hash);
            store.update_invitation(&inv).await?;
            idp.add_identity(
                Some(&email),
                idp::Identity::verified(&format!("sub-{n}"), &email, "Old"),
            );

            let mut b = Browser::new(&base);
            b.get(&format!("/join/{}", issued.secret)).await?;
            b.get("/join").await?;
            let go = b.submit("/join/continue", &[]).await?;
            let callback = idp.authorize(go.location.as_deref().unwrap_or("")).await;
            let back = b.get(&callback).await?;
            anyhow::ensure!(
                back.location.as_deref() == Some("/join/register"),
                "sign-in failed"
            );
            b.get("/join/register").await?;
            b.submit("/join/prove-password", &[("password", PASSWORD)])
                .await?;
            b.submit("/join/choose", &[("choice", "separate")]).await?;
            b.submit("/join/personal-email", &[("email", &personal)])
                .await?;
            let c = code(&store, inv.id, &personal).await?;
            b.submit("/join/code", &[("purpose", "personal_email"), ("code", &c)])
                .await?;
            b.submit("/join/details", &[("name", "New Business")])
                .await?;
            let c = code(&store, inv.id, &email).await?;
            let started = Instant::now();
            let done = b
                .submit("/join/code", &[("purpose", "work_email"), ("code", &c)])
                .await?;
            times.push(started.elapsed());
            anyhow::ensure!(
                done.location.as_deref() == Some("/account"),
                "separate did not finish"
            );
            let moved = store
                .account_by_email(&personal)
                .await?
                .ok_or_else(|| anyhow::anyhow!("the old account did not move"))?;
            anyhow::ensure!(
                store.history_counts(moved.id).await?.orders == orders as u64,
                "orders were lost or copied"
            );
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{:>9}  {:>7.2}ms  {:>7.2}ms  {:>7.2}ms",
            orders,
            ms(times[times.len() / 2]),
            ms(times[0]),
            ms(times[times.len() - 1])
        );
    }
    let _ = stop.send(());
    let _ = server.await;
    Ok(())
}
