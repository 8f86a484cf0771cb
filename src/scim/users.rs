//! User use cases: create, read, replace, patch, delete. Each write is one
//! transaction that also records the change (the hook invitations react to)
//! and keeps the organization's user count.

use serde_json::{Value, json};
use uuid::Uuid;

use super::password;
use super::protocol::{ResourceType, ScimError, apply_patch, normalize_resource, parse_patch};
use super::service::{
    Precondition, Projection, ScimResource, ScimService, UserChange, etag, internal, not_found,
    parse_id,
};
use crate::store::scim::{ChangeKind, EmailRow, UserGroupRow, UserRecord};
use crate::store::{StoreError, Timestamp, Transaction};

const RT: ResourceType = ResourceType::User;

impl ScimService {
    pub async fn create_user(
        &self,
        org_id: Uuid,
        body: &Value,
        projection: &Projection,
    ) -> Result<ScimResource, ScimError> {
        let normalized = normalize_resource(body, RT)?;
        let password_hash = match normalized.password {
            Some(p) => Some(password::hash(p).await?),
            None => None,
        };
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
        let change = UserChange {
            org_id,
            user_id: record.id,
            kind: ChangeKind::Created,
            user: Some(&record),
        };
        // The invitation (its token, its mail) is made before the write lock.
        let plan = self.plan_hook(&change).await?;
        // On SQLite these writes all travel with the COMMIT, so a taken
        // userName may be reported by any of them.
        let tx = self.store.begin().await.map_err(internal)?;
        let written = async {
            tx.insert_user(&record, &emails_of(&record.resource))
                .await?;
            tx.record_change(org_id, RT.name(), record.id, ChangeKind::Created, now, 1)
                .await?;
            self.apply_hook(&*tx, plan, change).await?;
            tx.commit().await
        };
        written
            .await
            .map_err(|e| user_conflict(e, &record.user_name))?;
        self.hook_committed();
        Ok(self.user_resource(&record, &[], projection))
    }

    pub async fn get_user(
        &self,
        org_id: Uuid,
        id: &str,
        projection: &Projection,
    ) -> Result<ScimResource, ScimError> {
        let uid = parse_id(id, RT)?;
        let record = self
            .store
            .user_by_id(org_id, uid)
            .await
            .map_err(internal)?
            .ok_or_else(|| not_found(RT, id))?;
        let groups = self
            .store
            .groups_of_users(org_id, &[uid])
            .await
            .map_err(internal)?;
        Ok(self.user_resource(&record, &groups, projection))
    }

    pub async fn replace_user(
        &self,
        org_id: Uuid,
        id: &str,
        body: &Value,
        pre: &Precondition,
        projection: &Projection,
    ) -> Result<ScimResource, ScimError> {
        let uid = parse_id(id, RT)?;
        let normalized = normalize_resource(body, RT)?;
        let new_hash = match normalized.password {
            Some(p) => Some(password::hash(p).await?),
            None => None,
        };
        let tx = self.store.begin().await.map_err(internal)?;
        let current = load(&*tx, org_id, uid, id).await?;
        pre.check(current.version)?;
        let record = record_from(
            uid,
            org_id,
            normalized.resource,
            new_hash.or_else(|| current.password_hash.clone()),
            current.version + 1,
            current.created_at,
            Timestamp::now(),
        )?;
        self.write_user_update(tx, &current, record, projection)
            .await
    }

    pub async fn patch_user(
        &self,
        org_id: Uuid,
        id: &str,
        body: &Value,
        pre: &Precondition,
        projection: &Projection,
    ) -> Result<ScimResource, ScimError> {
        let uid = parse_id(id, RT)?;
        let request = parse_patch(body)?;
        let tx = self.store.begin().await.map_err(internal)?;
        let current = load(&*tx, org_id, uid, id).await?;
        pre.check(current.version)?;
        let mut doc = current.resource.clone();
        let outcome = apply_patch(&mut doc, RT, &request)?;
        let new_hash = match outcome.password {
            Some(p) => Some(password::hash(p).await?),
            None => None,
        };
        if !outcome.changed && new_hash.is_none() {
            drop(tx);
            let groups = self
                .store
                .groups_of_users(org_id, &[uid])
                .await
                .map_err(internal)?;
            return Ok(self.user_resource(&current, &groups, projection));
        }
        let record = record_from(
            uid,
            org_id,
            doc,
            new_hash.or_else(|| current.password_hash.clone()),
            current.version + 1,
            current.created_at,
            Timestamp::now(),
        )?;
        self.write_user_update(tx, &current, record, projection)
            .await
    }

    pub async fn delete_user(
        &self,
        org_id: Uuid,
        id: &str,
        pre: &Precondition,
    ) -> Result<(), ScimError> {
        let uid = parse_id(id, RT)?;
        let tx = self.store.begin().await.map_err(internal)?;
        let current = load(&*tx, org_id, uid, id).await?;
        pre.check(current.version)?;
        if !tx.delete_user(org_id, uid).await.map_err(internal)? {
            return Err(not_found(RT, id));
        }
        let now = Timestamp::now();
        tx.record_change(org_id, RT.name(), uid, ChangeKind::Deleted, now, -1)
            .await
            .map_err(internal)?;
        let change = UserChange {
            org_id,
            user_id: uid,
            kind: ChangeKind::Deleted,
            user: None,
        };
        self.run_hook(&*tx, change).await?;
        self.commit_with_hook(tx).await
    }

    async fn write_user_update(
        &self,
        tx: Box<dyn Transaction>,
        current: &UserRecord,
        record: UserRecord,
        projection: &Projection,
    ) -> Result<ScimResource, ScimError> {
        let written = tx
            .update_user(&record, &emails_of(&record.resource), current.version)
            .await
            .map_err(|e| user_conflict(e, &record.user_name))?;
        if !written {
            return Err(ScimError::precondition_failed(
                "the resource was changed concurrently; retry",
            ));
        }
        let kind = match (current.active, record.active) {
            (false, true) => ChangeKind::Activated,
            (true, false) => ChangeKind::Deactivated,
            _ => ChangeKind::Updated,
        };
        tx.record_change(
            record.org_id,
            RT.name(),
            record.id,
            kind,
            record.updated_at,
            0,
        )
        .await
        .map_err(internal)?;
        let change = UserChange {
            org_id: record.org_id,
            user_id: record.id,
            kind,
            user: Some(&record),
        };
        self.run_hook(&*tx, change).await?;
        let groups = tx
            .groups_of_users(record.org_id, &[record.id])
            .await
            .map_err(internal)?;
        self.commit_with_hook(tx).await?;
        Ok(self.user_resource(&record, &groups, projection))
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

async fn load(
    tx: &dyn Transaction,
    org_id: Uuid,
    uid: Uuid,
    id: &str,
) -> Result<UserRecord, ScimError> {
    tx.user_for_update(org_id, uid)
        .await
        .map_err(internal)?
        .ok_or_else(|| not_found(RT, id))
}

fn user_conflict(e: StoreError, user_name: &str) -> ScimError {
    match e {
        StoreError::Conflict { constraint } if constraint.contains("user_name") => {
            ScimError::uniqueness(format!(
                "userName {user_name:?} is already taken in this organization"
            ))
        }
        other => internal(other),
    }
}

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
