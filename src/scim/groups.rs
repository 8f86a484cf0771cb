//! Group use cases. Members are applied as changes (add, remove, replace)
//! against the membership table, never by rewriting a member list, so one
//! member more costs the same in a group of ten or of 100,000. A change
//! reads the members it names, works out exactly which rows to add and
//! remove, and writes them with the group's version check (every member
//! change bumps the version, so the check also covers what was read).

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};
use uuid::Uuid;

use super::events::{Change, DirectoryEvent};
use super::protocol::{
    MemberChange, ResourceType, ScimError, apply_patch, normalize_resource, parse_patch,
    wants_members,
};
use super::service::{
    Precondition, Projection, ScimResource, ScimResult, ScimService, etag, not_found, parse_id,
};
use crate::store::scim::{GroupRecord, MemberKind, MemberRow};
use crate::store::{StoreError, Timestamp};

const RT: ResourceType = ResourceType::Group;

/// What a change does to a group's members, worked out against the store.
#[derive(Debug, Default)]
struct MemberPlan {
    /// Every member goes first (a replace).
    clear: bool,
    add: Vec<(Uuid, MemberKind)>,
    remove: Vec<Uuid>,
    /// Whether the membership ends up different.
    changed: bool,
}

impl ScimService {
    pub async fn create_group(
        &self,
        org_id: Uuid,
        body: &Value,
        projection: &Projection,
    ) -> ScimResult<ScimResource> {
        let normalized = normalize_resource(body, RT)?;
        let now = Timestamp::now();
        let record = group_from(Uuid::now_v7(), org_id, normalized.resource, 1, now, now)?;
        let changes = match normalized.members {
            Some(ids) if !ids.is_empty() => vec![MemberChange::ReplaceAll(ids)],
            _ => Vec::new(),
        };
        // A member deleted meanwhile fails the write: read them again.
        self.retrying(&Precondition::default(), async || {
            let plan = self.member_plan(org_id, record.id, &changes, true).await?;
            let mut events = vec![DirectoryEvent::GroupCreated];
            if plan.changed {
                events.push(DirectoryEvent::MembershipChanged);
            }
            self.write_group(&record, None, &plan, &events).await?;
            let members = self
                .members_if_wanted(org_id, record.id, projection)
                .await?;
            Ok(self.group_resource(&record, &members, projection))
        })
        .await
    }

    pub async fn get_group(
        &self,
        org_id: Uuid,
        id: &str,
        projection: &Projection,
    ) -> ScimResult<ScimResource> {
        let gid = parse_id(id, RT)?;
        let record = self
            .store
            .group_by_id(org_id, gid)
            .await?
            .ok_or_else(|| not_found(RT, id))?;
        let members = self.members_if_wanted(org_id, gid, projection).await?;
        Ok(self.group_resource(&record, &members, projection))
    }

    pub async fn replace_group(
        &self,
        org_id: Uuid,
        id: &str,
        body: &Value,
        pre: &Precondition,
        projection: &Projection,
    ) -> ScimResult<ScimResource> {
        let normalized = normalize_resource(body, RT)?;
        // PUT replaces the whole resource: absent members means no members.
        let changes = vec![MemberChange::ReplaceAll(
            normalized.members.unwrap_or_default(),
        )];
        self.edit_group(org_id, id, pre, projection, |_| {
            Ok((normalized.resource.clone(), true, changes.clone()))
        })
        .await
    }

    pub async fn patch_group(
        &self,
        org_id: Uuid,
        id: &str,
        body: &Value,
        pre: &Precondition,
        projection: &Projection,
    ) -> ScimResult<ScimResource> {
        let request = parse_patch(body)?;
        self.edit_group(org_id, id, pre, projection, |current| {
            let mut doc = current.resource.clone();
            let outcome = apply_patch(&mut doc, RT, &request)?;
            let doc_changed = doc != current.resource;
            Ok((doc, doc_changed, outcome.members))
        })
        .await
    }

    /// Replace or patch: `edit` gives the new document, whether it differs,
    /// and the member changes asked for.
    async fn edit_group(
        &self,
        org_id: Uuid,
        id: &str,
        pre: &Precondition,
        projection: &Projection,
        edit: impl Fn(&GroupRecord) -> Result<(Value, bool, Vec<MemberChange>), ScimError>,
    ) -> ScimResult<ScimResource> {
        let gid = parse_id(id, RT)?;
        let _turn = self.locks.lock(gid).await;
        self.retrying(pre, async || {
            let current = self.read_group(org_id, gid, id, pre).await?;
            let (doc, doc_changed, changes) = edit(&current)?;
            let plan = self.member_plan(org_id, gid, &changes, false).await?;
            if !doc_changed && !plan.changed {
                let members = self.members_if_wanted(org_id, gid, projection).await?;
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
            let mut events = vec![DirectoryEvent::GroupUpdated];
            if plan.changed {
                events.push(DirectoryEvent::MembershipChanged);
            }
            self.write_group(&record, Some(current.version), &plan, &events)
                .await?;
            let members = self.members_if_wanted(org_id, gid, projection).await?;
            Ok(self.group_resource(&record, &members, projection))
        })
        .await
    }

    pub async fn delete_group(&self, org_id: Uuid, id: &str, pre: &Precondition) -> ScimResult<()> {
        let gid = parse_id(id, RT)?;
        let _turn = self.locks.lock(gid).await;
        self.retrying(pre, async || {
            let current = self.read_group(org_id, gid, id, pre).await?;
            let events = [DirectoryEvent::GroupDeleted];
            let change = GroupChange::of(&current, &events, &MemberPlan::default());
            self.commit_change(RT, &change.change(), Timestamp::now(), async |tx| {
                tx.delete_group(org_id, gid, current.version).await
            })
            .await?;
            Ok(())
        })
        .await
    }

    /// The stored group, if it satisfies the precondition.
    async fn read_group(
        &self,
        org_id: Uuid,
        gid: Uuid,
        id: &str,
        pre: &Precondition,
    ) -> ScimResult<GroupRecord> {
        let current = self
            .store
            .group_by_id(org_id, gid)
            .await?
            .ok_or_else(|| not_found(RT, id))?;
        pre.check(current.version)?;
        Ok(current)
    }

    /// Writes a created (`expected` None) or changed group and its member
    /// changes as one change (see [`ScimService::commit_change`]).
    async fn write_group(
        &self,
        record: &GroupRecord,
        expected: Option<i64>,
        plan: &MemberPlan,
        events: &[DirectoryEvent],
    ) -> Result<(), StoreError> {
        let change = GroupChange::of(record, events, plan);
        let (org_id, gid) = (record.org_id, record.id);
        self.commit_change(RT, &change.change(), record.updated_at, async |tx| {
            match expected {
                None => tx.insert_group(record).await?,
                Some(v) => tx.update_group(record, v).await?,
            }
            if plan.clear {
                tx.remove_all_members(org_id, gid).await?;
            }
            if !plan.remove.is_empty() {
                tx.remove_members(org_id, gid, &plan.remove).await?;
            }
            if !plan.add.is_empty() {
                tx.add_members(org_id, gid, &plan.add).await?;
            }
            Ok(())
        })
        .await
    }

    /// Works the member changes a request asks for out against the store:
    /// which rows to add and remove. Every id named must be a user or group
    /// of this organization (never another's) and not the group itself.
    async fn member_plan(
        &self,
        org_id: Uuid,
        gid: Uuid,
        changes: &[MemberChange],
        new_group: bool,
    ) -> ScimResult<MemberPlan> {
        if changes.is_empty() {
            return Ok(MemberPlan::default());
        }
        // The final membership of every id named, replaying the changes.
        let mut wanted: HashMap<Uuid, bool> = HashMap::new();
        let mut clear = false;
        for change in changes {
            match change {
                MemberChange::Add(ids) => {
                    for id in parse_members(ids, gid, true)? {
                        wanted.insert(id, true);
                    }
                }
                MemberChange::Remove(ids) => {
                    // Ids that are not ours cannot be members: nothing to remove.
                    for id in parse_members(ids, gid, false)? {
                        wanted.insert(id, false);
                    }
                }
                MemberChange::RemoveAll => {
                    clear = true;
                    wanted.clear();
                }
                MemberChange::ReplaceAll(ids) => {
                    clear = true;
                    wanted.clear();
                    for id in parse_members(ids, gid, true)? {
                        wanted.insert(id, true);
                    }
                }
            }
        }
        let named: Vec<Uuid> = wanted.keys().copied().collect();
        let current: HashSet<Uuid> = if new_group {
            HashSet::new()
        } else {
            self.store
                .members_among(org_id, gid, &named)
                .await?
                .into_iter()
                .collect()
        };
        let mut to_add: Vec<Uuid> = wanted
            .iter()
            .filter(|(id, keep)| **keep && (clear || !current.contains(id)))
            .map(|(id, _)| *id)
            .collect();
        to_add.sort();
        let add = self.existing_members(org_id, &to_add).await?;
        let mut plan = MemberPlan {
            clear,
            add,
            ..MemberPlan::default()
        };
        if clear {
            // Different unless every member stays and no other is added.
            let before = if new_group {
                0
            } else {
                self.store.member_count(org_id, gid).await?
            };
            let kept = wanted.values().filter(|k| **k).count() as u64;
            let all_current = wanted
                .iter()
                .filter(|(_, keep)| **keep)
                .all(|(id, _)| current.contains(id));
            plan.changed = !(before == kept && all_current);
            if !plan.changed {
                plan = MemberPlan::default();
            }
        } else {
            plan.remove = wanted
                .iter()
                .filter(|(id, keep)| !**keep && current.contains(id))
                .map(|(id, _)| *id)
                .collect();
            plan.remove.sort();
            plan.changed = !plan.add.is_empty() || !plan.remove.is_empty();
        }
        Ok(plan)
    }

    /// The kinds of `ids`, all of which must exist in the organization.
    async fn existing_members(
        &self,
        org_id: Uuid,
        ids: &[Uuid],
    ) -> ScimResult<Vec<(Uuid, MemberKind)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let found = self.store.member_kinds(org_id, ids).await?;
        if found.len() != ids.len() {
            let known: HashSet<Uuid> = found.iter().map(|(id, _)| *id).collect();
            if let Some(missing) = ids.iter().find(|id| !known.contains(id)) {
                return Err(
                    ScimError::invalid_value(format!("member {missing} does not exist")).into(),
                );
            }
        }
        Ok(found)
    }

    async fn members_if_wanted(
        &self,
        org_id: Uuid,
        gid: Uuid,
        projection: &Projection,
    ) -> ScimResult<Vec<MemberRow>> {
        if wants_members(&projection.attributes, &projection.excluded) {
            Ok(self.store.members_of(org_id, &[gid]).await?)
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

/// The member lists a group's [`Change`] borrows.
struct GroupChange<'a> {
    org_id: Uuid,
    id: Uuid,
    events: &'a [DirectoryEvent],
    added: Vec<Uuid>,
    removed: Vec<Uuid>,
    cleared: bool,
}

impl<'a> GroupChange<'a> {
    fn of(record: &GroupRecord, events: &'a [DirectoryEvent], plan: &MemberPlan) -> Self {
        GroupChange {
            org_id: record.org_id,
            id: record.id,
            events,
            added: plan.add.iter().map(|(id, _)| *id).collect(),
            removed: plan.remove.clone(),
            cleared: plan.clear,
        }
    }

    fn change(&self) -> Change<'_> {
        Change {
            org_id: self.org_id,
            resource_id: self.id,
            events: self.events,
            before: None,
            after: None,
            members_added: &self.added,
            members_removed: &self.removed,
            members_cleared: self.cleared,
        }
    }
}

/// Member ids as sent: each must parse as one of ours (`strict`: else 400;
/// otherwise it is skipped) and not be the group itself.
fn parse_members(ids: &[String], gid: Uuid, strict: bool) -> Result<Vec<Uuid>, ScimError> {
    let mut out = Vec::with_capacity(ids.len());
    for raw in ids {
        match Uuid::parse_str(raw.trim()) {
            Ok(id) if id == gid && strict => {
                return Err(ScimError::invalid_value(
                    "a group cannot be a member of itself",
                ));
            }
            Ok(id) => out.push(id),
            Err(_) if strict => {
                let shown: String = raw.chars().take(80).collect();
                return Err(ScimError::invalid_value(format!(
                    "member {shown:?} does not exist"
                )));
            }
            Err(_) => {}
        }
    }
    Ok(out)
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
