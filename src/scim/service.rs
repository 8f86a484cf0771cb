//! SCIM use cases shared by users and groups: the service handle, what a
//! caller asks for (projection, preconditions), what it gets back, and what
//! can go wrong. Knows no actix; talks to the store; every call is scoped to
//! one organization.
//!
//! Writes read the resource outside any transaction, work out the new one
//! (normalizing, applying PATCH, hashing a password) with no lock held, and
//! then write it in a transaction that only writes, with a check that the
//! resource is still at the version read. On SQLite that transaction is
//! committed with others in one trip; on PostgreSQL it is one statement. A
//! lost race is retried from the read, or answered 412 when the client
//! named the version it expected (`If-Match`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use uuid::Uuid;

use super::events::{Change, Reactions, Subscriber, count_delta, kinds};
use super::protocol::{AttrPath, ResourceType, ScimError, project};
use crate::secrets::password::{PasswordError, Passwords};
use crate::store::{DynStore, StoreError, Timestamp, Transaction};

/// How often a write that lost a race is tried again before it gives up
/// with 412. Writes of one resource queue in the process (see
/// [`ResourceLocks`]), so races are with other instances only.
pub(super) const ATTEMPTS: usize = 8;

/// Writes of one resource in this process, one at a time: they would
/// otherwise all read the same version and all but one fail their version
/// check. Writes of different resources never wait for each other, and
/// nothing here waits for the database's lock. A write that must wait for
/// another gives its place at its organization's gate back meanwhile (see
/// [`crate::work`]: the one it waits for may be taking its place again).
#[derive(Clone, Default)]
pub(super) struct ResourceLocks(Arc<Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>>);

impl ResourceLocks {
    pub(super) async fn lock(&self, id: Uuid) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
            if map.len() > 4096 {
                map.retain(|_, m| Arc::strong_count(m) > 1);
            }
            map.entry(id).or_default().clone()
        };
        match lock.clone().try_lock_owned() {
            Ok(turn) => turn,
            Err(_) => crate::work::waiting(lock.lock_owned()).await,
        }
    }
}

/// A short random pause before attempt `attempt + 1` of a write that lost
/// a race to another instance (up to ~2^attempt ms), so racers spread out.
pub(super) async fn pause(attempt: usize) {
    let ceiling = 1u64 << attempt.min(6);
    let ms = rand::random_range(0..=ceiling);
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}

/// What went wrong in a SCIM call.
#[derive(Debug, thiserror::Error)]
pub enum ScimFailure {
    /// The request cannot be served as sent: rendered as it is (RFC 7644 §3.12).
    #[error(transparent)]
    Protocol(#[from] ScimError),
    /// The store failed: rendered as a generic 500; the cause is for logs.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<PasswordError> for ScimFailure {
    fn from(e: PasswordError) -> Self {
        match e {
            PasswordError::Length => ScimError::invalid_value(e.to_string()).into(),
            PasswordError::Hashing => {
                StoreError::other(std::io::Error::other("password hashing failed")).into()
            }
        }
    }
}

impl ScimFailure {
    /// The error as the client sees it (RFC 7644 §3.12). This is where SCIM
    /// failures become responses: a storage failure is logged here, once,
    /// with its cause, and the client gets a generic 500.
    pub fn into_scim(self) -> ScimError {
        match self {
            ScimFailure::Protocol(e) => e,
            ScimFailure::Store(e) => {
                crate::telemetry::log_internal(&e);
                ScimError::internal()
            }
        }
    }
}

pub type ScimResult<T> = Result<T, ScimFailure>;

/// The SCIM service for all organizations; each call names the org.
#[derive(Clone)]
pub struct ScimService {
    pub(super) store: DynStore,
    /// `http.public_url`, for `meta.location` and `$ref`.
    pub(super) base_url: String,
    pub(super) subscribers: Vec<Arc<dyn Subscriber>>,
    pub(super) passwords: Passwords,
    pub(super) locks: ResourceLocks,
}

/// Which attributes to return (RFC 7644 §3.4.2.5).
#[derive(Debug, Clone, Default)]
pub struct Projection {
    pub attributes: Vec<AttrPath>,
    pub excluded: Vec<AttrPath>,
}

impl Projection {
    pub fn apply(&self, doc: &Value, rt: ResourceType) -> Value {
        project(doc, rt, &self.attributes, &self.excluded)
    }
}

/// A resource as returned: its JSON (already projected), ETag and location.
#[derive(Debug, Clone)]
pub struct ScimResource {
    pub body: Value,
    pub etag: String,
    pub location: String,
}

/// `If-Match` as sent (RFC 7232 §3.1): `*` or a list of entity tags.
#[derive(Debug, Clone, Default)]
pub struct Precondition {
    pub if_match: Option<String>,
}

impl Precondition {
    /// 412 unless the stored version satisfies `If-Match`.
    pub(super) fn check(&self, version: i64) -> Result<(), ScimError> {
        let Some(header) = &self.if_match else {
            return Ok(());
        };
        if etag_matches(header, version) {
            Ok(())
        } else {
            Err(ScimError::precondition_failed(
                "the resource has changed since the version given in If-Match",
            ))
        }
    }

    /// What a write that found the resource changed since it was read
    /// does: try again (reading it anew), unless the client pinned the
    /// version it read, or it has tried often enough.
    pub(super) async fn on_stale(&self, attempt: usize) -> Result<(), ScimError> {
        if self.if_match.as_deref().is_some_and(|h| h.trim() != "*") || attempt + 1 >= ATTEMPTS {
            return Err(ScimError::precondition_failed(
                "the resource was changed concurrently; read it again and retry",
            ));
        }
        pause(attempt).await;
        Ok(())
    }
}

/// The weak ETag of a version: `W/"7"`.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// Whether an `If-Match`/`If-None-Match` header value names `version` (weak
/// comparison, RFC 7232 §2.3.2).
pub fn etag_matches(header: &str, version: i64) -> bool {
    let want = version.to_string();
    header.split(',').map(str::trim).any(|tag| {
        tag == "*" || {
            let tag = tag.strip_prefix("W/").unwrap_or(tag);
            tag.trim_matches('"') == want
        }
    })
}

/// Parses a resource id; anything that is not one of ours is simply absent.
pub(super) fn parse_id(id: &str, rt: ResourceType) -> Result<Uuid, ScimError> {
    Uuid::parse_str(id).map_err(|_| not_found(rt, id))
}

pub(super) fn not_found(rt: ResourceType, id: &str) -> ScimError {
    let shown: String = id.chars().take(80).collect();
    ScimError::not_found(format!("{} {shown} not found", rt.name()))
}

impl ScimService {
    pub fn new(store: DynStore, base_url: &str, passwords: Passwords) -> Self {
        ScimService {
            store,
            base_url: base_url.trim_end_matches('/').to_string(),
            subscribers: Vec::new(),
            passwords,
            locks: ResourceLocks::default(),
        }
    }

    /// The same service, telling `subscriber` of every change.
    pub fn with_subscriber(mut self, subscriber: Arc<dyn Subscriber>) -> Self {
        self.subscribers.push(subscriber);
        self
    }

    /// Every subscriber's reaction to `change`, read before its transaction.
    pub(super) async fn react(&self, change: &Change<'_>) -> Result<Reactions, StoreError> {
        Reactions::plan(&self.subscribers, &*self.store, change).await
    }

    /// Hashes a password sent by the directory, in the organization's turn.
    pub(super) async fn hash_password(
        &self,
        org_id: Uuid,
        password: Option<String>,
    ) -> ScimResult<Option<String>> {
        match password {
            Some(p) => Ok(Some(self.passwords.hash(org_id, p).await?)),
            None => Ok(None),
        }
    }

    /// Runs `attempt` (read, compute, write) until it does not lose a race
    /// to another writer: a `Stale` failure is tried again after a short
    /// random pause, unless the client pinned the version (`If-Match`), and
    /// at most [`ATTEMPTS`] times; then it is 412.
    pub(super) async fn retrying<T>(
        &self,
        pre: &Precondition,
        mut attempt: impl AsyncFnMut() -> ScimResult<T>,
    ) -> ScimResult<T> {
        for n in 0..ATTEMPTS {
            match attempt().await {
                Err(ScimFailure::Store(StoreError::Stale)) => pre.on_stale(n).await?,
                done => return done,
            }
        }
        Err(ScimError::precondition_failed("the resource was changed concurrently; retry").into())
    }

    /// Commits one change of a `rt` resource in a transaction that only
    /// writes: `write` (the resource itself), the change-log rows of its
    /// events at `at`, and the subscribers' reactions, planned first with no
    /// lock held; then tells the reactions it committed.
    pub(super) async fn commit_change(
        &self,
        rt: ResourceType,
        change: &Change<'_>,
        at: Timestamp,
        write: impl AsyncFnOnce(&dyn Transaction) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let reactions = self.react(change).await?;
        let tx = self.store.begin().await?;
        write(&*tx).await?;
        tx.record_change(
            change.org_id,
            rt.name(),
            change.resource_id,
            &kinds(change.events),
            at,
            count_delta(change.events),
        )
        .await?;
        reactions.write(&*tx).await?;
        tx.commit().await?;
        reactions.committed();
        Ok(())
    }

    pub(super) fn location(&self, rt: ResourceType, id: Uuid) -> String {
        format!(
            "{}/scim/v2/{}/{id}",
            self.base_url,
            rt.endpoint().trim_start_matches('/')
        )
    }
}

/// One entry point per operation for either resource type, so handlers and
/// Bulk dispatch in one place.
impl ScimService {
    pub async fn create(
        &self,
        rt: ResourceType,
        org_id: Uuid,
        body: &Value,
        projection: &Projection,
    ) -> ScimResult<ScimResource> {
        match rt {
            ResourceType::User => self.create_user(org_id, body, projection).await,
            ResourceType::Group => self.create_group(org_id, body, projection).await,
        }
    }

    pub async fn get(
        &self,
        rt: ResourceType,
        org_id: Uuid,
        id: &str,
        projection: &Projection,
    ) -> ScimResult<ScimResource> {
        match rt {
            ResourceType::User => self.get_user(org_id, id, projection).await,
            ResourceType::Group => self.get_group(org_id, id, projection).await,
        }
    }

    pub async fn replace(
        &self,
        rt: ResourceType,
        org_id: Uuid,
        id: &str,
        body: &Value,
        pre: &Precondition,
        projection: &Projection,
    ) -> ScimResult<ScimResource> {
        match rt {
            ResourceType::User => self.replace_user(org_id, id, body, pre, projection).await,
            ResourceType::Group => self.replace_group(org_id, id, body, pre, projection).await,
        }
    }

    pub async fn patch(
        &self,
        rt: ResourceType,
        org_id: Uuid,
        id: &str,
        body: &Value,
        pre: &Precondition,
        projection: &Projection,
    ) -> ScimResult<ScimResource> {
        match rt {
            ResourceType::User => self.patch_user(org_id, id, body, pre, projection).await,
            ResourceType::Group => self.patch_group(org_id, id, body, pre, projection).await,
        }
    }

    pub async fn delete(
        &self,
        rt: ResourceType,
        org_id: Uuid,
        id: &str,
        pre: &Precondition,
    ) -> ScimResult<()> {
        match rt {
            ResourceType::User => self.delete_user(org_id, id, pre).await,
            ResourceType::Group => self.delete_group(org_id, id, pre).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_match_weakly_and_star_matches_anything() {
        assert!(etag_matches("W/\"3\"", 3));
        assert!(etag_matches("\"3\"", 3));
        assert!(etag_matches("W/\"1\", W/\"3\"", 3));
        assert!(etag_matches("*", 9));
        assert!(!etag_matches("W/\"2\"", 3));
        assert_eq!(etag(5), "W/\"5\"");
    }

    #[tokio::test]
    async fn a_lost_race_is_retried_unless_the_client_pinned_the_version() {
        let free = Precondition::default();
        assert!(free.on_stale(0).await.is_ok());
        assert_eq!(free.on_stale(ATTEMPTS - 1).await.unwrap_err().status, 412);
        let star = Precondition {
            if_match: Some("*".into()),
        };
        assert!(star.on_stale(0).await.is_ok());
        let pinned = Precondition {
            if_match: Some("W/\"3\"".into()),
        };
        assert_eq!(pinned.on_stale(0).await.unwrap_err().status, 412);
    }

    /// A request of `weight` units at `gate`, running `work` with its place.
    fn request<T: Send + 'static>(
        gate: &std::sync::Arc<tokio::sync::Semaphore>,
        weight: u32,
        work: impl Future<Output = T> + Send + 'static,
    ) -> tokio::task::JoinHandle<T> {
        let gate = gate.clone();
        tokio::spawn(crate::work::within(async move {
            let place = gate.clone().acquire_many_owned(weight).await.unwrap();
            assert!(crate::work::hold(gate, place).is_none());
            work.await
        }))
    }

    /// An organization with `places` places: X (one unit) writes a user and
    /// waits for its commit, its place given back; Y, weighing `y_weight`,
    /// takes it and waits for the same user. X must get its place again to
    /// finish and let Y in.
    async fn the_holder_of_a_resource_can_finish(places: usize, y_weight: u32) {
        use std::sync::Arc;
        use tokio::sync::{Semaphore, oneshot};
        let gate = Arc::new(Semaphore::new(places));
        let locks = ResourceLocks::default();
        let user = Uuid::now_v7();
        let (commit, committed) = oneshot::channel::<()>();
        let (waiting_for_commit, is_waiting) = oneshot::channel::<()>();
        let x = request(&gate, 1, {
            let locks = locks.clone();
            async move {
                let _turn = locks.lock(user).await;
                crate::work::waiting_for_commit(async {
                    waiting_for_commit.send(()).unwrap();
                    committed.await.unwrap();
                })
                .await;
            }
        });
        is_waiting.await.unwrap();
        let (entered, has_entered) = oneshot::channel::<()>();
        let y = request(&gate, y_weight, async move {
            entered.send(()).unwrap();
            let _turn = locks.lock(user).await;
            crate::work::holds_place()
        });
        // Y holds the place until it has to wait for the user's lock.
        has_entered.await.unwrap();
        let given_back = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while gate.available_permits() == 0 {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        })
        .await;
        assert!(given_back.is_ok(), "Y gives its place back to wait");
        commit.send(()).unwrap();
        let done = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            x.await.unwrap();
            y.await.unwrap()
        })
        .await;
        assert_eq!(done.ok(), Some(true), "both finish; Y with its place");
        assert_eq!(gate.available_permits(), places);
    }

    #[tokio::test]
    async fn a_write_waiting_for_a_resource_gives_its_place_back_so_the_holder_can_finish() {
        the_holder_of_a_resource_can_finish(1, 1).await;
    }

    #[tokio::test]
    async fn a_heavy_request_waiting_for_a_resource_gives_its_whole_place_back_too() {
        // A Bulk request at the body limit weighs the organization's whole share.
        the_holder_of_a_resource_can_finish(16, 16).await;
    }
}
