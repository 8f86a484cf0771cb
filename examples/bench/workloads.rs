//! The workloads of issue #3, as Microsoft Entra ID sends them: create (W1),
//! `userName eq` probes (W2), PATCH (W3), full list walks with index and
//! cursor paging (W4), the probe-then-create-or-patch cycle (W5), and seeding
//! through `POST /Bulk` or plain POSTs.
//!
//! Every response is checked: any non-2xx, transport error or wrong answer
//! (a probe that does not find exactly the expected user, a walk that does not
//! see every user once) is an error. Nothing here retries.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_TYPE, LOCATION};
use serde::Deserialize;

use crate::run::{Done, Outcome, drive, mix};

const SCIM_JSON: &str = "application/scim+json";
const DOMAIN: &str = "bench.example";

/// What every workload needs: one shared client (with its connection pool),
/// where the server is, the bearer header, and the time limit per measurement.
pub struct Ctx {
    pub client: reqwest::Client,
    pub base: String,
    pub auth: String,
    pub limit: Duration,
}

impl Ctx {
    fn users_url(&self) -> String {
        format!("{}/scim/v2/Users", self.base)
    }
}

/// A user known to exist on the server.
pub struct PopUser {
    pub id: String,
    pub user_name: String,
    active: AtomicBool,
}

impl Clone for PopUser {
    fn clone(&self) -> PopUser {
        PopUser {
            id: self.id.clone(),
            user_name: self.user_name.clone(),
            active: AtomicBool::new(self.active.load(Ordering::Relaxed)),
        }
    }
}

impl PopUser {
    fn new(id: String, user_name: String) -> PopUser {
        PopUser {
            id,
            user_name,
            active: AtomicBool::new(true),
        }
    }

    /// Flips the recorded `active` and returns the new value as Entra spells it.
    fn toggle_active(&self) -> &'static str {
        if self.active.fetch_xor(true, Ordering::Relaxed) {
            "False"
        } else {
            "True"
        }
    }
}

/// The users known to exist, shared by the workloads.
pub type Population = Arc<Vec<PopUser>>;

/// `<key>@bench.example`.
pub fn user_name(key: &str) -> String {
    format!("{key}@{DOMAIN}")
}

/// An Entra-like User: core + enterprise schemas.
fn user_body(key: &str, n: usize) -> String {
    let name = user_name(key);
    let cc = n % 100;
    format!(
        r#"{{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],"externalId":"ext-{key}","userName":"{name}","active":true,"displayName":"Given{n} Family{n}","emails":[{{"primary":true,"type":"work","value":"{name}"}}],"name":{{"givenName":"Given{n}","familyName":"Family{n}","formatted":"Given{n} Family{n}"}},"title":"Buyer","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{{"department":"Purchasing","employeeNumber":"{n}","costCenter":"CC-{cc}"}}}}"#
    )
}

/// Entra's PATCH: `active` as a string, and the work email through a filtered path.
fn patch_body(active: &str, email: &str) -> String {
    format!(
        r#"{{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{{"op":"Replace","path":"active","value":"{active}"}},{{"op":"Add","path":"emails[type eq \"work\"].value","value":"{email}"}}]}}"#
    )
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn probe_url(ctx: &Ctx, user_name: &str) -> String {
    format!(
        "{}?filter={}",
        ctx.users_url(),
        encode(&format!("userName eq \"{user_name}\""))
    )
}

/// Sends; a non-2xx becomes an error carrying the status and the body's start.
async fn call(req: reqwest::RequestBuilder) -> Result<reqwest::Response, String> {
    let res = req.send().await.map_err(|e| format!("transport: {e}"))?;
    if res.status().is_success() {
        return Ok(res);
    }
    let status = res.status();
    let body = res.text().await.unwrap_or_default();
    let cut: String = body.chars().take(300).collect();
    Err(format!("HTTP {status}: {cut}"))
}

async fn json<T: for<'de> Deserialize<'de>>(res: reqwest::Response) -> Result<T, String> {
    let bytes = res.bytes().await.map_err(|e| format!("body: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("response JSON: {e}"))
}

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListPage {
    total_results: u64,
    #[serde(rename = "Resources", default)]
    resources: Vec<IdOnly>,
    #[serde(default)]
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListHead {
    total_results: u64,
}

fn post_user(ctx: &Ctx, body: String) -> reqwest::RequestBuilder {
    ctx.client
        .post(ctx.users_url())
        .header(reqwest::header::AUTHORIZATION, &ctx.auth)
        .header(CONTENT_TYPE, SCIM_JSON)
        .body(body)
}

/// Creates one user; returns its id from `Location`.
async fn create(ctx: &Ctx, key: &str, n: usize) -> Result<String, String> {
    let res = call(post_user(ctx, user_body(key, n))).await?;
    let id = res
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|l| l.rsplit('/').next())
        .map(str::to_string);
    res.bytes().await.map_err(|e| format!("body: {e}"))?;
    id.ok_or_else(|| "201 without Location".to_string())
}

async fn patch(ctx: &Ctx, user: &PopUser, tag: &str) -> Result<(), String> {
    let body = patch_body(user.toggle_active(), &format!("{tag}.{}", user.user_name));
    let res = call(
        ctx.client
            .patch(format!("{}/{}", ctx.users_url(), user.id))
            .header(reqwest::header::AUTHORIZATION, &ctx.auth)
            .header(CONTENT_TYPE, SCIM_JSON)
            .body(body),
    )
    .await?;
    res.bytes().await.map_err(|e| format!("body: {e}"))?;
    Ok(())
}

async fn probe(ctx: &Ctx, user_name: &str) -> Result<ListPage, String> {
    let res = call(
        ctx.client
            .get(probe_url(ctx, user_name))
            .header(reqwest::header::AUTHORIZATION, &ctx.auth),
    )
    .await?;
    json(res).await
}

/// How many users the server holds.
pub async fn users_in_db(ctx: &Ctx) -> Result<u64, String> {
    let res = call(
        ctx.client
            .get(format!("{}?count=0", ctx.users_url()))
            .header(reqwest::header::AUTHORIZATION, &ctx.auth),
    )
    .await?;
    Ok(json::<ListHead>(res).await?.total_results)
}

fn collect(keys: Vec<OnceLock<(String, String)>>) -> Vec<PopUser> {
    keys.into_iter()
        .filter_map(OnceLock::into_inner)
        .map(|(id, name)| PopUser::new(id, name))
        .collect()
}

/// W1: creates `n` users named `<prefix>-<i>@bench.example`.
pub async fn w1_create(
    ctx: &Arc<Ctx>,
    prefix: &str,
    n: usize,
    c: usize,
) -> (Outcome, Vec<PopUser>) {
    let made: Arc<Vec<OnceLock<(String, String)>>> =
        Arc::new((0..n).map(|_| OnceLock::new()).collect());
    let (ctx2, made2, prefix) = (ctx.clone(), made.clone(), prefix.to_string());
    let out = drive(n, c, ctx.limit, move |i| {
        let (ctx, made) = (ctx2.clone(), made2.clone());
        let key = format!("{prefix}-{i}");
        async move {
            match create(&ctx, &key, i).await {
                Ok(id) => {
                    let _ = made[i].set((id, user_name(&key)));
                    Done::ok(1)
                }
                Err(e) => Done::failed(1, e),
            }
        }
    })
    .await;
    let made = Arc::try_unwrap(made).unwrap_or_default();
    (out, collect(made))
}

/// Chooses which existing userName probe `i` asks for.
pub type Names = Arc<dyn Fn(u64) -> String + Send + Sync>;

/// Names drawn from a population.
pub fn names_of(pop: &Population) -> Names {
    let pop = pop.clone();
    Arc::new(move |r| pop[(r % pop.len() as u64) as usize].user_name.clone())
}

/// Names of seeded users `<prefix>-0 .. <prefix>-<count-1>`.
pub fn seeded_names(prefix: &str, count: usize) -> Names {
    let prefix = prefix.to_string();
    Arc::new(move |r| user_name(&format!("{prefix}-{}", r % count as u64)))
}

/// W2: `n` probes `userName eq "<existing>"`; each must find exactly one user.
pub async fn w2_probe(ctx: &Arc<Ctx>, names: Names, n: usize, c: usize, seed: u64) -> Outcome {
    let ctx2 = ctx.clone();
    drive(n, c, ctx.limit, move |i| {
        let ctx = ctx2.clone();
        let name = names(mix(i as u64, seed));
        async move {
            match probe(&ctx, &name).await {
                Ok(page) if page.total_results == 1 => Done::ok(1),
                Ok(page) => Done::failed(
                    1,
                    format!("probe for {name} found {} users", page.total_results),
                ),
                Err(e) => Done::failed(1, e),
            }
        }
    })
    .await
}

/// W3: `n` PATCHes of random existing users (active toggled, work email replaced).
pub async fn w3_patch(ctx: &Arc<Ctx>, pop: &Population, n: usize, c: usize, seed: u64) -> Outcome {
    let (ctx2, pop) = (ctx.clone(), pop.clone());
    drive(n, c, ctx.limit, move |i| {
        let (ctx, pop) = (ctx2.clone(), pop.clone());
        async move {
            let user = &pop[(mix(i as u64, seed) % pop.len() as u64) as usize];
            match patch(&ctx, user, &format!("p{seed}-{i}")).await {
                Ok(()) => Done::ok(1),
                Err(e) => Done::failed(1, e),
            }
        }
    })
    .await
}

/// How W4 pages.
#[derive(Debug, Clone, Copy)]
pub enum Paging {
    /// `startIndex` = 1, 101, 201, …
    Index,
    /// `cursor=` then each `nextCursor` (RFC 9865).
    Cursor,
}

/// W4: one sequential walk over every user, `page` per request. Returns the
/// outcome (one op per page) and `totalResults`.
pub async fn w4_walk(ctx: &Ctx, paging: Paging, page: u64) -> (Outcome, u64) {
    let mut out = Outcome::default();
    let mut seen: HashSet<String> = HashSet::new();
    let mut total = 0u64;
    let mut cursor = Some(String::new());
    let mut start_index = 1u64;
    let start = Instant::now();
    // Bounded even if the server never stops paging.
    for pages in 0..1_000_000u64 {
        if start.elapsed() > ctx.limit {
            out.timed_out = true;
            break;
        }
        let url = match paging {
            Paging::Index => format!("{}?count={page}&startIndex={start_index}", ctx.users_url()),
            Paging::Cursor => format!(
                "{}?count={page}&cursor={}",
                ctx.users_url(),
                encode(cursor.as_deref().unwrap_or_default())
            ),
        };
        let t = Instant::now();
        let got = match call(
            ctx.client
                .get(url)
                .header(reqwest::header::AUTHORIZATION, &ctx.auth),
        )
        .await
        {
            Ok(res) => json::<ListPage>(res).await,
            Err(e) => Err(e),
        };
        out.latencies_us
            .push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
        out.ops += 1;
        out.requests += 1;
        let got = match got {
            Ok(p) => p,
            Err(e) => {
                out.record_error(e);
                break;
            }
        };
        if pages == 0 {
            total = got.total_results;
        }
        let n = got.resources.len() as u64;
        seen.extend(got.resources.into_iter().map(|r| r.id));
        let more = match paging {
            Paging::Index => {
                start_index += n;
                n > 0 && start_index <= total
            }
            Paging::Cursor => {
                cursor = got.next_cursor;
                cursor.is_some()
            }
        };
        if !more {
            break;
        }
    }
    out.elapsed = start.elapsed();
    if !out.timed_out && seen.len() as u64 != total {
        out.record_error(format!(
            "{paging:?} walk saw {} distinct users of totalResults {total}",
            seen.len()
        ));
    }
    (out, total)
}

/// W5: for each of `n` users, probe `userName eq`, then PATCH the one found or
/// create the one missing. Even-numbered users exist, odd ones are new.
pub async fn w5_cycle(
    ctx: &Arc<Ctx>,
    pop: &Population,
    prefix: &str,
    n: usize,
    c: usize,
    seed: u64,
) -> (Outcome, Vec<PopUser>) {
    let made: Arc<Vec<OnceLock<(String, String)>>> =
        Arc::new((0..n).map(|_| OnceLock::new()).collect());
    let (ctx2, pop, made2, prefix) = (ctx.clone(), pop.clone(), made.clone(), prefix.to_string());
    let out = drive(n, c, ctx.limit, move |i| {
        let (ctx, pop, made) = (ctx2.clone(), pop.clone(), made2.clone());
        let existing = (i % 2 == 0 && !pop.is_empty())
            .then(|| (mix(i as u64, seed) % pop.len() as u64) as usize);
        let key = format!("{prefix}-{i}");
        async move {
            let name = existing.map_or_else(|| user_name(&key), |u| pop[u].user_name.clone());
            let found = match probe(&ctx, &name).await {
                Ok(page) => page,
                Err(e) => return Done::failed(1, e),
            };
            match (existing, found.total_results) {
                (Some(u), 1) => match patch(&ctx, &pop[u], &format!("c{seed}-{i}")).await {
                    Ok(()) => Done::ok(2),
                    Err(e) => Done::failed(2, e),
                },
                (None, 0) => match create(&ctx, &key, i).await {
                    Ok(id) => {
                        let _ = made[i].set((id, name));
                        Done::ok(2)
                    }
                    Err(e) => Done::failed(2, e),
                },
                (_, total) => Done::failed(
                    1,
                    format!(
                        "probe for {name} found {total} users, expected {}",
                        u8::from(existing.is_some())
                    ),
                ),
            }
        }
    })
    .await;
    let made = Arc::try_unwrap(made).unwrap_or_default();
    (out, collect(made))
}

/// How seeding creates users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SeedMode {
    /// `POST /scim/v2/Bulk`, up to `--bulk-ops` operations per request.
    Bulk,
    /// One `POST /scim/v2/Users` per user.
    Post,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BulkOpResult {
    status: String,
    #[serde(default)]
    location: Option<String>,
    #[serde(default)]
    bulk_id: Option<String>,
}

#[derive(Deserialize)]
struct BulkResult {
    #[serde(rename = "Operations", default)]
    operations: Vec<BulkOpResult>,
}

fn bulk_body(prefix: &str, range: std::ops::Range<usize>) -> String {
    let mut body = String::with_capacity(range.len() * 800 + 200);
    body.push_str(
        r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"Operations":["#,
    );
    for (k, i) in range.enumerate() {
        if k > 0 {
            body.push(',');
        }
        let _ = write!(
            body,
            r#"{{"method":"POST","path":"/Users","bulkId":"b{i}","data":{}}}"#,
            user_body(&format!("{prefix}-{i}"), i)
        );
    }
    body.push_str("]}");
    body
}

/// Creates users `<prefix>-<from> .. <prefix>-<to-1>`. One op is one Bulk
/// request (or one POST); `keep` returns the created users.
#[allow(clippy::too_many_arguments)]
pub async fn seed(
    ctx: &Arc<Ctx>,
    prefix: &str,
    from: usize,
    to: usize,
    mode: SeedMode,
    c: usize,
    bulk_ops: usize,
    keep: bool,
) -> (Outcome, Vec<PopUser>) {
    let n = to.saturating_sub(from);
    let made: Arc<Vec<OnceLock<(String, String)>>> = Arc::new(if keep {
        (0..n).map(|_| OnceLock::new()).collect()
    } else {
        Vec::new()
    });
    let (ctx2, made2, prefix) = (ctx.clone(), made.clone(), prefix.to_string());
    let bulk_ops = bulk_ops.max(1);
    let ops = match mode {
        SeedMode::Bulk => n.div_ceil(bulk_ops),
        SeedMode::Post => n,
    };
    let out = drive(ops, c, ctx.limit, move |op| {
        let (ctx, made, prefix) = (ctx2.clone(), made2.clone(), prefix.clone());
        async move {
            if mode == SeedMode::Post {
                let i = from + op;
                let key = format!("{prefix}-{i}");
                return match create(&ctx, &key, i).await {
                    Ok(id) => {
                        if keep {
                            let _ = made[op].set((id, user_name(&key)));
                        }
                        Done::ok(1)
                    }
                    Err(e) => Done::failed(1, e),
                };
            }
            let range = from + op * bulk_ops..(from + (op + 1) * bulk_ops).min(to);
            let expected = range.len();
            let res = call(
                ctx.client
                    .post(format!("{}/scim/v2/Bulk", ctx.base))
                    .header(reqwest::header::AUTHORIZATION, &ctx.auth)
                    .header(CONTENT_TYPE, SCIM_JSON)
                    .body(bulk_body(&prefix, range)),
            )
            .await;
            let result = match res {
                Ok(res) => json::<BulkResult>(res).await,
                Err(e) => Err(e),
            };
            let result = match result {
                Ok(r) => r,
                Err(e) => return Done::failed(1, e),
            };
            let mut failed = 0;
            let mut first = None;
            for r in &result.operations {
                if !r.status.starts_with('2') {
                    failed += 1;
                    first.get_or_insert_with(|| format!("{} {:?}", r.status, r.bulk_id));
                    continue;
                }
                if keep
                    && let (Some(b), Some(loc)) = (&r.bulk_id, &r.location)
                    && let Some(i) = b.strip_prefix('b').and_then(|s| s.parse::<usize>().ok())
                    && let Some(slot) = made.get(i - from)
                {
                    let id = loc.rsplit('/').next().unwrap_or_default().to_string();
                    let _ = slot.set((id, user_name(&format!("{prefix}-{i}"))));
                }
            }
            if failed > 0 || result.operations.len() != expected {
                return Done::failed(
                    1,
                    format!(
                        "bulk: {failed} of {} operations failed ({} answered), first {first:?}",
                        expected,
                        result.operations.len()
                    ),
                );
            }
            Done::ok(1)
        }
    })
    .await;
    let mut out = out;
    if mode == SeedMode::Bulk {
        // Report users, not requests: one op per user created.
        out.ops = (out.ops as usize * bulk_ops).min(n) as u64;
    }
    let made = Arc::try_unwrap(made).unwrap_or_default();
    (out, collect(made))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_valid_json() {
        let u: serde_json::Value = serde_json::from_str(&user_body("a-1", 1)).unwrap();
        assert_eq!(u["userName"], "a-1@bench.example");
        assert_eq!(u["emails"][0]["value"], "a-1@bench.example");
        let p: serde_json::Value = serde_json::from_str(&patch_body("False", "x@y")).unwrap();
        assert_eq!(p["Operations"][1]["path"], "emails[type eq \"work\"].value");
        let b: serde_json::Value = serde_json::from_str(&bulk_body("s", 5..8)).unwrap();
        assert_eq!(b["Operations"].as_array().unwrap().len(), 3);
        assert_eq!(b["Operations"][2]["bulkId"], "b7");
    }

    #[test]
    fn filters_are_percent_encoded() {
        assert_eq!(
            encode("userName eq \"a+b@x.example\""),
            "userName%20eq%20%22a%2Bb%40x.example%22"
        );
    }
}
