//! SCIM use cases shared by users and groups: the service handle, what a
//! caller asks for (projection, preconditions) and what it gets back. Knows
//! no actix; talks to the store; every call is scoped to one organization.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use uuid::Uuid;

use super::protocol::{AttrPath, ResourceType, ScimError, project};
use crate::store::scim::{ChangeKind, UserRecord};
use crate::store::{DynStore, StoreError, Transaction};

/// The SCIM service for all organizations; each call names the org.
#[derive(Clone)]
pub struct ScimService {
    pub(super) store: DynStore,
    /// `http.public_url`, for `meta.location` and `$ref`.
    pub(super) base_url: String,
    pub(super) hook: Option<Arc<dyn UserChangeHook>>,
}

/// A change to a user, as the hook sees it.
#[derive(Debug)]
pub struct UserChange<'a> {
    pub org_id: Uuid,
    pub user_id: Uuid,
    pub kind: ChangeKind,
    /// The user after the change; `None` when it was deleted.
    pub user: Option<&'a UserRecord>,
}

/// Reacts to user changes inside the change's own transaction: what it
/// writes commits or rolls back with the change (invitations use it).
#[async_trait]
pub trait UserChangeHook: Send + Sync {
    /// Work done before the change's transaction opens, so that it is not
    /// done while the transaction holds locks (on SQLite, the one write
    /// lock): the writes the change needs, when they can be known without
    /// reading inside the transaction. `None`: call [`Self::user_changed`]
    /// in the transaction instead.
    async fn prepare(
        &self,
        _change: &UserChange<'_>,
    ) -> Result<Option<Box<dyn PreparedWrites>>, StoreError> {
        Ok(None)
    }
    async fn user_changed(
        &self,
        tx: &dyn Transaction,
        change: &UserChange<'_>,
    ) -> Result<(), StoreError>;
    /// Called after the change's transaction committed.
    fn committed(&self) {}
}

/// Writes a hook prepared before the transaction, made inside it.
#[async_trait]
pub trait PreparedWrites: Send + Sync {
    async fn write(&self, tx: &dyn Transaction) -> Result<(), StoreError>;
}

/// What the hook will do for one change: prepared writes, or a call inside
/// the transaction.
pub(super) enum HookPlan {
    Prepared(Box<dyn PreparedWrites>),
    InTransaction,
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

/// Storage failures become a generic 500 (logged once where they are mapped).
pub(super) fn internal(e: StoreError) -> ScimError {
    crate::telemetry::log_internal(&e);
    ScimError::internal()
}

impl ScimService {
    pub fn new(store: DynStore, base_url: &str) -> Self {
        ScimService {
            store,
            base_url: base_url.trim_end_matches('/').to_string(),
            hook: None,
        }
    }

    /// The same service, calling `hook` inside every user change.
    pub fn with_hook(mut self, hook: Arc<dyn UserChangeHook>) -> Self {
        self.hook = Some(hook);
        self
    }

    /// Commits a transaction in which the hook ran, then tells the hook.
    pub(super) async fn commit_with_hook(&self, tx: Box<dyn Transaction>) -> Result<(), ScimError> {
        tx.commit().await.map_err(internal)?;
        self.hook_committed();
        Ok(())
    }

    /// Tells the hook that the transaction it ran in committed.
    pub(super) fn hook_committed(&self) {
        if let Some(hook) = &self.hook {
            hook.committed();
        }
    }

    pub(super) async fn run_hook(
        &self,
        tx: &dyn Transaction,
        change: UserChange<'_>,
    ) -> Result<(), ScimError> {
        self.apply_hook(tx, HookPlan::InTransaction, change)
            .await
            .map_err(internal)
    }

    /// Asks the hook to prepare its writes for `change` before the
    /// transaction opens.
    pub(super) async fn plan_hook(&self, change: &UserChange<'_>) -> Result<HookPlan, ScimError> {
        let Some(hook) = &self.hook else {
            return Ok(HookPlan::InTransaction);
        };
        Ok(match hook.prepare(change).await.map_err(internal)? {
            Some(writes) => HookPlan::Prepared(writes),
            None => HookPlan::InTransaction,
        })
    }

    /// Runs the hook's part of `change` inside `tx`, as planned.
    pub(super) async fn apply_hook(
        &self,
        tx: &dyn Transaction,
        plan: HookPlan,
        change: UserChange<'_>,
    ) -> Result<(), StoreError> {
        match (plan, &self.hook) {
            (HookPlan::Prepared(writes), _) => writes.write(tx).await,
            (HookPlan::InTransaction, Some(hook)) => hook.user_changed(tx, &change).await,
            (HookPlan::InTransaction, None) => Ok(()),
        }
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
    ) -> Result<ScimResource, ScimError> {
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
    ) -> Result<ScimResource, ScimError> {
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
    ) -> Result<ScimResource, ScimError> {
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
    ) -> Result<ScimResource, ScimError> {
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
    ) -> Result<(), ScimError> {
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
}
