//! User use cases: create, read, replace, patch, delete. Each write is one
//! transaction that only writes (see `service`): the user, its change-log
//! rows and count, and what subscribers (invitations) write in reaction.

use serde_json::{Value, json};
use uuid::Uuid;

use super::events::{Change, user_events};
use super::mapping::work_email;
use super::protocol::{
    PatchRequest, ResourceType, ScimError, apply_patch, normalize_resource, parse_patch,
};
use super::service::{
    Precondition, Projection, ScimFailure, ScimResource, ScimResult, ScimService, etag, not_found,
    parse_id,
};
use crate::store::scim::{EmailRow, UserGroupRow, UserRecord};
use crate::store::{StoreError, Timestamp};

const RT: ResourceType = ResourceType::User;

/// The address invitations go to, for telling when it changed.
fn invited_address(u: &UserRecord) -> Option<String> {
    work_email(&u.resource, &[]).ok().map(|e| e.to_lowercase())
}

/// What a replace or a patch does to the stored user.
enum Edit<'a> {
    Replace(&'a Value),
    Patch(&'a PatchRequest),
}

/// A user change as subscribers see it.
fn user_change<'a>(
    org_id: Uuid,
    id: Uuid,
    events: &'a [super::events::DirectoryEvent],
    before: Option<&'a UserRecord>,
    after: Option<&'a UserRecord>,
) -> Change<'a> {
    Change {
        org_id,
        resource_id: id,
        events,
        before,
        after,
        members_added: &[],
        members_removed: &[],
        members_cleared: false,
    }
}

impl ScimService {
    pub async fn create_user(
        &self,
        org_id: Uuid,
        body: &Value,
        projection: &Projection,
    ) -> ScimResult<ScimResource> {
        let normalized = normalize_resource(body, RT)?;
        let password_hash = self.hash_password(org_id, normalized.password).await?;
        let now = Timestamp::now();
        let record = record_from(
            Uuid::now_v7(),
            org_id,
            normalized.resource,
            password_hash,
            1,
            now,
            now,
        )?;
        let events = user_events(None, Some(&record), invited_address);
        let change = user_change(org_id, record.id, &events, None, Some(&record));
        // The invitation (its token, its mail) is planned before the transaction.
        self.commit_change(RT, &change, now, async |tx| {
            tx.insert_user(&record, &emails_of(&record.resource)).await
        })
        .await
        .map_err(|e| user_conflict(e, &record.user_name))?;
        Ok(self.user_resource(&record, &[], projection))
    }

    pub async fn get_user(
        &self,
        org_id: Uuid,
        id: &str,
        projection: &Projection,
    ) -> ScimResult<ScimResource> {
        let uid = parse_id(id, RT)?;
        let record = self
            .store
            .user_by_id(org_id, uid)
            .await?
            .ok_or_else(|| not_found(RT, id))?;
        let groups = self.store.groups_of_users(org_id, &[uid]).await?;
        Ok(self.user_resource(&record, &groups, projection))
    }

    pub async fn replace_user(
        &self,
        org_id: Uuid,
        id: &str,
        body: &Value,
        pre: &Precondition,
        projection: &Projection,
    ) -> ScimResult<ScimResource> {
        self.edit_user(org_id, id, Edit::Replace(body), pre, projection)
            .await
    }

    pub async fn patch_user(
        &self,
        org_id: Uuid,
        id: &str,
        body: &Value,
        pre: &Precondition,
        projection: &Projection,
    ) -> ScimResult<ScimResource> {
        let request = parse_patch(body)?;
        self.edit_user(org_id, id, Edit::Patch(&request), pre, projection)
            .await
    }

    /// Replace or patch: read, work out the new user with no lock held,
    /// write it if the stored one is still the one read; else again.
    async fn edit_user(
        &self,
        org_id: Uuid,
        id: &str,
        edit: Edit<'_>,
        pre: &Precondition,
        projection: &Projection,
    ) -> ScimResult<ScimResource> {
        let uid = parse_id(id, RT)?;
        let _turn = self.locks.lock(uid).await;
        // A new password is hashed once, whatever the attempt.
        let mut new_hash: Option<Option<String>> = None;
        self.retrying(pre, async || {
            let current = self.read_user(org_id, uid, id, pre).await?;
            let (doc, password, changed) = match &edit {
                Edit::Replace(body) => {
                    let n = normalize_resource(body, RT)?;
                    (n.resource, n.password, true)
                }
                Edit::Patch(request) => {
                    let mut doc = current.resource.clone();
                    let outcome = apply_patch(&mut doc, RT, request)?;
                    (doc, outcome.password, outcome.changed)
                }
            };
            if new_hash.is_none() {
                new_hash = Some(self.hash_password(org_id, password).await?);
            }
            let hash = new_hash.clone().flatten();
            if !changed && hash.is_none() {
                let groups = self.store.groups_of_users(org_id, &[uid]).await?;
                return Ok(self.user_resource(&current, &groups, projection));
            }
            let record = record_from(
                uid,
                org_id,
                doc,
                hash.or_else(|| current.password_hash.clone()),
                current.version + 1,
                current.created_at,
                Timestamp::now(),
            )?;
            let events = user_events(Some(&current), Some(&record), invited_address);
            let change = user_change(org_id, uid, &events, Some(&current), Some(&record));
            self.commit_change(RT, &change, record.updated_at, async |tx| {
                tx.update_user(&record, &emails_of(&record.resource), current.version)
                    .await
            })
            .await
            .map_err(|e| user_conflict(e, &record.user_name))?;
            let groups = self.store.groups_of_users(org_id, &[uid]).await?;
            Ok(self.user_resource(&record, &groups, projection))
        })
        .await
    }

    pub async fn delete_user(&self, org_id: Uuid, id: &str, pre: &Precondition) -> ScimResult<()> {
        let uid = parse_id(id, RT)?;
        let _turn = self.locks.lock(uid).await;
        self.retrying(pre, async || {
            let current = self.read_user(org_id, uid, id, pre).await?;
            let events = user_events(Some(&current), None, invited_address);
            let change = user_change(org_id, uid, &events, Some(&current), None);
            self.commit_change(RT, &change, Timestamp::now(), async |tx| {
                tx.delete_user(org_id, uid, current.version).await
            })
            .await?;
            Ok(())
        })
        .await
    }

    /// The stored user, if it satisfies the precondition.
    async fn read_user(
        &self,
        org_id: Uuid,
        uid: Uuid,
        id: &str,
        pre: &Precondition,
    ) -> ScimResult<UserRecord> {
        let current = self
            .store
            .user_by_id(org_id, uid)
            .await?
            .ok_or_else(|| not_found(RT, id))?;
        pre.check(current.version)?;
        Ok(current)
    }

    /// The full JSON of a user (before projection).
    pub(super) fn user_document(&self, r: &UserRecord, groups: &[UserGroupRow]) -> Value {
        self.user_document_from(r, r.resource.clone(), groups)
    }

    /// As [`user_document`](Self::user_document), on `resource` taken out of
    /// the record rather than copied from it (lists build many).
    pub(super) fn user_document_from(
        &self,
        r: &UserRecord,
        resource: Value,
        groups: &[UserGroupRow],
    ) -> Value {
        let mut doc = resource;
        let location = self.location(RT, r.id);
        if let Some(obj) = doc.as_object_mut() {
            obj.insert("id".into(), Value::String(r.id.to_string()));
            if !groups.is_empty() {
                let list: Vec<Value> = groups
                    .iter()
                    .filter(|g| g.user_id == r.id)
                    .map(|g| {
                        json!({
                            "value": g.group_id.to_string(),
                            "display": g.display,
                            "type": "direct",
                            "$ref": self.location(ResourceType::Group, g.group_id),
                        })
                    })
                    .collect();
                if !list.is_empty() {
                    obj.insert("groups".into(), Value::Array(list));
                }
            }
            obj.insert(
                "meta".into(),
                json!({
                    "resourceType": "User",
                    "created": r.created_at.rfc3339(),
                    "lastModified": r.updated_at.rfc3339(),
                    "location": location,
                    "version": etag(r.version),
                }),
            );
        }
        doc
    }

    pub(super) fn user_resource(
        &self,
        r: &UserRecord,
        groups: &[UserGroupRow],
        projection: &Projection,
    ) -> ScimResource {
        let doc = self.user_document(r, groups);
        ScimResource {
            body: projection.apply(&doc, RT),
            etag: etag(r.version),
            location: self.location(RT, r.id),
        }
    }
}

/// A taken userName is 409 `uniqueness`; a lost race stays `Stale` for the
/// caller to retry; anything else is the store's failure.
fn user_conflict(e: StoreError, user_name: &str) -> ScimFailure {
    match e {
        StoreError::Conflict { constraint } if constraint == USER_NAME_KEY => {
            ScimError::uniqueness(format!(
                "userName {user_name:?} is already taken in this organization"
            ))
            .into()
        }
        other => other.into(),
    }
}

/// The constraint that keeps userNames unique per organization.
const USER_NAME_KEY: &str = "scim_users_org_id_user_name_lower_key";

/// Builds the stored record from a normalized document.
fn record_from(
    id: Uuid,
    org_id: Uuid,
    resource: Value,
    password_hash: Option<String>,
    version: i64,
    created_at: Timestamp,
    updated_at: Timestamp,
) -> Result<UserRecord, ScimError> {
    let text = |key: &str| resource.get(key).and_then(Value::as_str).map(str::to_owned);
    let user_name = text("userName")
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ScimError::invalid_value("'userName' is required"))?;
    if user_name.chars().count() > 512 {
        return Err(ScimError::invalid_value(
            "userName may have at most 512 characters",
        ));
    }
    Ok(UserRecord {
        id,
        org_id,
        user_name,
        external_id: text("externalId"),
        display_name: text("displayName"),
        active: resource
            .get("active")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        password_hash,
        version,
        created_at,
        updated_at,
        resource,
    })
}

/// The rows indexed for `emails` filters.
fn emails_of(resource: &Value) -> Vec<EmailRow> {
    let Some(list) = resource.get("emails").and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|e| {
            Some(EmailRow {
                value: e.get("value")?.as_str()?.to_string(),
                kind: e.get("type").and_then(Value::as_str).map(str::to_owned),
                primary: e.get("primary").and_then(Value::as_bool).unwrap_or(false),
                display: e.get("display").and_then(Value::as_str).map(str::to_owned),
            })
        })
        .collect()
}
