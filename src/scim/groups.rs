//! Group use cases. Members are applied as changes (add, remove, replace)
//! against the membership table, never by rewriting a member list, so one
//! member more costs the same in a group of ten or of 100,000.

use std::collections::HashSet;

use serde_json::{Value, json};
use uuid::Uuid;

use super::protocol::{
    MemberChange, ResourceType, ScimError, apply_patch, normalize_resource, parse_patch,
    wants_members,
};
use super::service::{
    Precondition, Projection, ScimResource, ScimService, etag, internal, not_found, parse_id,
};
use crate::store::scim::{ChangeKind, GroupRecord, MemberKind, MemberRow};
use crate::store::{Timestamp, Transaction};

const RT: ResourceType = ResourceType::Group;

impl ScimService {
    pub async fn create_group(
        &self,
        org_id: Uuid,
        body: &Value,
        projection: &Projection,
    ) -> Result<ScimResource, ScimError> {
        let normalized = normalize_resource(body, RT)?;
        let now = Timestamp::now();
        let record = group_from(Uuid::now_v7(), org_id, normalized.resource, 1, now, now)?;
        let tx = self.store.begin().await.map_err(internal)?;
        tx.insert_group(&record).await.map_err(internal)?;
        tx.record_change(org_id, RT.name(), record.id, ChangeKind::Created, now, 1)
            .await
            .map_err(internal)?;
        if let Some(members) = normalized.members.filter(|m| !m.is_empty()) {
            let resolved = resolve_members(&*tx, org_id, record.id, &members).await?;
            tx.add_members(org_id, record.id, &resolved)
                .await
                .map_err(internal)?;
        }
        let members = self
            .members_if_wanted(&*tx, org_id, record.id, projection)
            .await?;
        tx.commit().await.map_err(internal)?;
        Ok(self.group_resource(&record, &members, projection))
    }

    pub async fn get_group(
        &self,
        org_id: Uuid,
        id: &str,
        projection: &Projection,
    ) -> Result<ScimResource, ScimError> {
        let gid = parse_id(id, RT)?;
        let record = self
            .store
            .group_by_id(org_id, gid)
            .await
            .map_err(internal)?
            .ok_or_else(|| not_found(RT, id))?;
        let members = if wants_members(&projection.attributes, &projection.excluded) {
            self.store
                .members_of(org_id, &[gid])
                .await
                .map_err(internal)?
        } else {
            Vec::new()
        };
        Ok(self.group_resource(&record, &members, projection))
    }

    pub async fn replace_group(
        &self,
        org_id: Uuid,
        id: &str,
        body: &Value,
        pre: &Precondition,
        projection: &Projection,
    ) -> Result<ScimResource, ScimError> {
        let gid = parse_id(id, RT)?;
        let normalized = normalize_resource(body, RT)?;
        let tx = self.store.begin().await.map_err(internal)?;
        let current = load(&*tx, org_id, gid, id).await?;
        pre.check(current.version)?;
        let record = group_from(
            gid,
            org_id,
            normalized.resource,
            current.version + 1,
            current.created_at,
            Timestamp::now(),
        )?;
        // PUT replaces the whole resource: absent members means no members.
        let members = normalized.members.unwrap_or_default();
        let resolved = resolve_members(&*tx, org_id, gid, &members).await?;
        tx.remove_all_members(org_id, gid).await.map_err(internal)?;
        tx.add_members(org_id, gid, &resolved)
            .await
            .map_err(internal)?;
        self.write_group_update(tx, &current, &record, true, projection)
            .await
    }

    pub async fn patch_group(
        &self,
        org_id: Uuid,
        id: &str,
        body: &Value,
        pre: &Precondition,
        projection: &Projection,
    ) -> Result<ScimResource, ScimError> {
        let gid = parse_id(id, RT)?;
        let request = parse_patch(body)?;
        let tx = self.store.begin().await.map_err(internal)?;
        let current = load(&*tx, org_id, gid, id).await?;
        pre.check(current.version)?;
        let mut doc = current.resource.clone();
        let outcome = apply_patch(&mut doc, RT, &request)?;
        let mut members_changed = false;
        for change in &outcome.members {
            let n = match change {
                MemberChange::Add(ids) => {
                    let resolved = resolve_members(&*tx, org_id, gid, ids).await?;
                    tx.add_members(org_id, gid, &resolved)
                        .await
                        .map_err(internal)?
                }
                MemberChange::Remove(ids) => {
                    // Ids that are not ours cannot be members: nothing to remove.
                    let ids: Vec<Uuid> =
                        ids.iter().filter_map(|i| Uuid::parse_str(i).ok()).collect();
                    tx.remove_members(org_id, gid, &ids)
                        .await
                        .map_err(internal)?
                }
                MemberChange::RemoveAll => {
                    tx.remove_all_members(org_id, gid).await.map_err(internal)?
                }
                MemberChange::ReplaceAll(ids) => {
                    let resolved = resolve_members(&*tx, org_id, gid, ids).await?;
                    let removed = tx.remove_all_members(org_id, gid).await.map_err(internal)?;
                    removed
                        + tx.add_members(org_id, gid, &resolved)
                            .await
                            .map_err(internal)?
                }
            };
            members_changed |= n > 0;
        }
        if !outcome.changed && !members_changed {
            let members = self
                .members_if_wanted(&*tx, org_id, gid, projection)
                .await?;
            drop(tx);
            return Ok(self.group_resource(&current, &members, projection));
        }
        let record = group_from(
            gid,
            org_id,
            doc,
            current.version + 1,
            current.created_at,
            Timestamp::now(),
        )?;
        self.write_group_update(tx, &current, &record, members_changed, projection)
            .await
    }

    pub async fn delete_group(
        &self,
        org_id: Uuid,
        id: &str,
        pre: &Precondition,
    ) -> Result<(), ScimError> {
        let gid = parse_id(id, RT)?;
        let tx = self.store.begin().await.map_err(internal)?;
        let current = load(&*tx, org_id, gid, id).await?;
        pre.check(current.version)?;
        if !tx.delete_group(org_id, gid).await.map_err(internal)? {
            return Err(not_found(RT, id));
        }
        tx.record_change(
            org_id,
            RT.name(),
            gid,
            ChangeKind::Deleted,
            Timestamp::now(),
            -1,
        )
        .await
        .map_err(internal)?;
        tx.commit().await.map_err(internal)
    }

    async fn write_group_update(
        &self,
        tx: Box<dyn Transaction>,
        current: &GroupRecord,
        record: &GroupRecord,
        members_changed: bool,
        projection: &Projection,
    ) -> Result<ScimResource, ScimError> {
        if !tx
            .update_group(record, current.version)
            .await
            .map_err(internal)?
        {
            return Err(ScimError::precondition_failed(
                "the resource was changed concurrently; retry",
            ));
        }
        let kind = if members_changed {
            ChangeKind::MembersChanged
        } else {
            ChangeKind::Updated
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
        let members = self
            .members_if_wanted(&*tx, record.org_id, record.id, projection)
            .await?;
        tx.commit().await.map_err(internal)?;
        Ok(self.group_resource(record, &members, projection))
    }

    async fn members_if_wanted(
        &self,
        tx: &dyn Transaction,
        org_id: Uuid,
        gid: Uuid,
        projection: &Projection,
    ) -> Result<Vec<MemberRow>, ScimError> {
        if wants_members(&projection.attributes, &projection.excluded) {
            tx.members_of(org_id, &[gid]).await.map_err(internal)
        } else {
            Ok(Vec::new())
        }
    }

    /// The full JSON of a group (before projection), with the given members.
    pub(super) fn group_document(&self, r: &GroupRecord, members: &[MemberRow]) -> Value {
        let mut doc = r.resource.clone();
        if let Some(obj) = doc.as_object_mut() {
            obj.insert("id".into(), Value::String(r.id.to_string()));
            let list: Vec<Value> = members
                .iter()
                .filter(|m| m.group_id == r.id)
                .map(|m| {
                    let rt = match m.kind {
                        MemberKind::User => ResourceType::User,
                        MemberKind::Group => ResourceType::Group,
                    };
                    json!({
                        "value": m.member_id.to_string(),
                        "type": m.kind.as_str(),
                        "$ref": self.location(rt, m.member_id),
                    })
                })
                .collect();
            if !list.is_empty() {
                obj.insert("members".into(), Value::Array(list));
            }
            obj.insert(
                "meta".into(),
                json!({
                    "resourceType": "Group",
                    "created": r.created_at.rfc3339(),
                    "lastModified": r.updated_at.rfc3339(),
                    "location": self.location(RT, r.id),
                    "version": etag(r.version),
                }),
            );
        }
        doc
    }

    pub(super) fn group_resource(
        &self,
        r: &GroupRecord,
        members: &[MemberRow],
        projection: &Projection,
    ) -> ScimResource {
        let doc = self.group_document(r, members);
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
    gid: Uuid,
    id: &str,
) -> Result<GroupRecord, ScimError> {
    tx.group_for_update(org_id, gid)
        .await
        .map_err(internal)?
        .ok_or_else(|| not_found(RT, id))
}

/// Checks that every member id names a user or group of this organization
/// (never another's) and is not the group itself.
async fn resolve_members(
    tx: &dyn Transaction,
    org_id: Uuid,
    gid: Uuid,
    ids: &[String],
) -> Result<Vec<(Uuid, MemberKind)>, ScimError> {
    let mut wanted = Vec::with_capacity(ids.len());
    let mut seen = HashSet::new();
    for raw in ids {
        let id = Uuid::parse_str(raw.trim())
            .map_err(|_| ScimError::invalid_value(format!("member {raw:?} does not exist")))?;
        if id == gid {
            return Err(ScimError::invalid_value(
                "a group cannot be a member of itself",
            ));
        }
        if seen.insert(id) {
            wanted.push(id);
        }
    }
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let found = tx.member_kinds(org_id, &wanted).await.map_err(internal)?;
    if found.len() != wanted.len() {
        let known: HashSet<Uuid> = found.iter().map(|(id, _)| *id).collect();
        let missing = wanted
            .iter()
            .find(|id| !known.contains(id))
            .copied()
            .unwrap_or(gid);
        return Err(ScimError::invalid_value(format!(
            "member {missing} does not exist"
        )));
    }
    Ok(found)
}

fn group_from(
    id: Uuid,
    org_id: Uuid,
    resource: Value,
    version: i64,
    created_at: Timestamp,
    updated_at: Timestamp,
) -> Result<GroupRecord, ScimError> {
    let display_name = resource
        .get("displayName")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .map(str::to_owned)
        .ok_or_else(|| ScimError::invalid_value("'displayName' is required"))?;
    Ok(GroupRecord {
        id,
        org_id,
        display_name,
        external_id: resource
            .get("externalId")
            .and_then(Value::as_str)
            .map(str::to_owned),
        resource,
        version,
        created_at,
        updated_at,
    })
}
