//! The phases of the sign-in benchmark, each a pool of tasks over the
//! people (`bench/run.rs`): provisioning by SCIM, reading the invitation
//! links, registering, signing in (whole, or stopping early for the
//! breakdown), and checking the sessions made.
//!
//! Nothing here retries; a failed step is an error of its operation.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::browser::{self, Browser};
use crate::flows;
use crate::idp::{Identity, TestIdp};
use crate::run::{Done, Outcome, drive};
use crate::server;
use crate::stack;

/// Sign-ins started from one source address: fewer than the 30 in ten
/// minutes that `POST /login` allows one client (the strictest limit the
/// server has had).
pub const SIGNINS_PER_ADDRESS: usize = 25;

/// A person in the directory, who registers once and signs in many times.
pub struct Person {
    email: String,
    name: String,
}

pub fn people(n: usize) -> Vec<Person> {
    (0..n)
        .map(|i| Person {
            email: format!("person{i}@{}", stack::DOMAIN),
            name: format!("Person {i}"),
        })
        .collect()
}

/// The client every browser shares, sending from `from` (or any address).
pub fn client(from: Option<IpAddr>) -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true)
        .local_address(from)
        .timeout(Duration::from_secs(60))
        .build()?)
}

/// One client per source address, enough for `logins` sign-ins.
pub struct Sources(Vec<reqwest::Client>);

impl Sources {
    pub fn new(logins: usize) -> Result<Sources> {
        let addresses = logins.div_ceil(SIGNINS_PER_ADDRESS).max(1);
        if addresses > 250 * 256 {
            bail!("too many sign-ins for the loopback addresses 127.1.x.y");
        }
        let clients = (0..addresses)
            .map(|j| {
                let ip = Ipv4Addr::new(127, 1, (j / 250) as u8, (j % 250 + 1) as u8);
                client(Some(IpAddr::V4(ip)))
            })
            .collect::<Result<_>>()?;
        Ok(Sources(clients))
    }

    /// The client of the `k`-th sign-in of the run.
    fn for_login(&self, k: usize) -> reqwest::Client {
        self.0[(k / SIGNINS_PER_ADDRESS).min(self.0.len() - 1)].clone()
    }
}

/// What the phases share.
pub struct Ctx {
    pub base: String,
    pub idp: TestIdp,
    pub people: Vec<Person>,
    pub sources: Sources,
    pub plain: reqwest::Client,
    pub limit: Duration,
}

/// SCIM `POST /Users` for every person (each one invited by mail).
pub async fn provision(ctx: &Arc<Ctx>, token: &str, c: usize) -> Outcome {
    let (ctx, auth) = (ctx.clone(), format!("Bearer {token}"));
    let n = ctx.people.len();
    drive(n, c, ctx.limit, move |i| {
        let (ctx, auth) = (ctx.clone(), auth.clone());
        async move {
            let p = &ctx.people[i];
            let user = serde_json::json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": p.email,
                "externalId": format!("ext-{i}"),
                "active": true,
                "displayName": p.name,
                "name": {"givenName": "Person", "familyName": i.to_string()},
                "emails": [{"primary": true, "type": "work", "value": p.email}],
            });
            let res = ctx
                .plain
                .post(format!("{}/scim/v2/Users", ctx.base))
                .header(reqwest::header::AUTHORIZATION, &auth)
                .header(reqwest::header::CONTENT_TYPE, "application/scim+json")
                .body(user.to_string())
                .send()
                .await;
            match res {
                Ok(r) if r.status() == 201 => Done::ok(1),
                Ok(r) => Done::failed(1, format!("POST /Users {}: {}", p.email, r.status())),
                Err(e) => Done::failed(1, format!("POST /Users {}: {e}", p.email)),
            }
        }
    })
    .await
}

/// Each person's invitation link, once every mail is in the folder (waits
/// up to a minute after the outbox is empty).
pub async fn invitation_links(ctx: &Ctx, dir: &Path, n: usize) -> Result<Vec<String>> {
    server::wait_for_mail_queue(&ctx.plain, &ctx.base).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut links = browser::invitation_links(dir, &ctx.base).unwrap_or_default();
        let found: Option<Vec<String>> =
            ctx.people.iter().map(|p| links.remove(&p.email)).collect();
        if let Some(found) = found {
            return Ok(found);
        }
        if Instant::now() > deadline {
            bail!(
                "the invitation mail of {n} people did not all arrive in {}",
                dir.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every person registers from their link; the provider knows each by
/// their email (the login hint), with a verified email.
pub async fn register_all(ctx: &Arc<Ctx>, links: Vec<String>, c: usize) -> Outcome {
    for (i, p) in ctx.people.iter().enumerate() {
        let id = Identity::verified(&format!("sub-{i}"), &p.email, &p.name);
        ctx.idp.add_identity(Some(&p.email), id);
    }
    let (ctx, links) = (ctx.clone(), Arc::new(links));
    drive(links.len(), c, ctx.limit, move |i| {
        let (ctx, links) = (ctx.clone(), links.clone());
        async move {
            let p = &ctx.people[i];
            let mut b = Browser::new(ctx.plain.clone(), &ctx.base);
            match flows::register(&mut b, &ctx.idp, &links[i], &p.name).await {
                Ok(_) => Done::ok(7),
                Err(e) => Done::failed(7, format!("{}: {e:#}", p.email)),
            }
        }
    })
    .await
}

/// `n` sign-ins, the `first`-th to the `first + n - 1`-th of the run, each
/// from a new cookie jar; with the callback timings and the sessions made
/// (person, cookie).
pub async fn sign_ins(
    ctx: &Arc<Ctx>,
    first: usize,
    n: usize,
    c: usize,
) -> (Outcome, Vec<u32>, Vec<(usize, String)>) {
    let made = Arc::new(Mutex::new((Vec::with_capacity(n), Vec::with_capacity(n))));
    let (ctx2, made2) = (ctx.clone(), made.clone());
    let out = drive(n, c, ctx.limit, move |i| {
        let (ctx, made) = (ctx2.clone(), made2.clone());
        async move {
            let who = i % ctx.people.len();
            let email = &ctx.people[who].email;
            let mut b = Browser::new(ctx.sources.for_login(first + i), &ctx.base);
            match flows::sign_in(&mut b, &ctx.idp, email).await {
                Ok(done) => {
                    let mut made = made.lock().expect("sessions");
                    made.0.push(done.callback_us);
                    made.1.push((who, done.session));
                    Done::ok(3)
                }
                Err(e) => Done::failed(3, format!("{email}: {e:#}")),
            }
        }
    })
    .await;
    let (callbacks, sessions) = std::mem::take(&mut *made.lock().expect("sessions"));
    (out, callbacks, sessions)
}

/// Where a partial sign-in stops.
#[derive(Clone, Copy)]
pub enum Upto {
    /// After `GET /login`.
    Page,
    /// After `POST /login`, at the provider's door.
    Departure,
}

/// `n` sign-ins that stop early (the `first`-th on of the run, for their
/// source addresses).
pub async fn partial_sign_ins(
    ctx: &Arc<Ctx>,
    first: usize,
    n: usize,
    c: usize,
    upto: Upto,
) -> Outcome {
    let ctx = ctx.clone();
    drive(n, c, ctx.limit, move |i| {
        let ctx = ctx.clone();
        async move {
            let email = &ctx.people[i % ctx.people.len()].email;
            let mut b = Browser::new(ctx.sources.for_login(first + i), &ctx.base);
            let done = async {
                let csrf = flows::login_page(&mut b).await?;
                if let Upto::Departure = upto {
                    flows::leave_for_provider(&mut b, &csrf, email).await?;
                }
                anyhow::Ok(())
            }
            .await;
            let requests = match upto {
                Upto::Page => 1,
                Upto::Departure => 2,
            };
            match done {
                Ok(()) => Done::ok(requests),
                Err(e) => Done::failed(requests, format!("{email}: {e:#}")),
            }
        }
    })
    .await
}

/// Every session shows its person's account.
pub async fn check_sessions(ctx: &Arc<Ctx>, sessions: Vec<(usize, String)>, c: usize) -> Outcome {
    let (ctx, sessions) = (ctx.clone(), Arc::new(sessions));
    drive(sessions.len(), c, ctx.limit, move |i| {
        let (ctx, sessions) = (ctx.clone(), sessions.clone());
        async move {
            let (who, session) = &sessions[i];
            let email = &ctx.people[*who].email;
            let mut b = Browser::new(ctx.plain.clone(), &ctx.base);
            match flows::check_account(&mut b, session, email).await {
                Ok(()) => Done::ok(1),
                Err(e) => Done::failed(1, format!("{e:#}")),
            }
        }
    })
    .await
}
