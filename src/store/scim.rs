//! SCIM users and groups as stored: the resource's JSON document plus the
//! columns that filters, sorting and uniqueness need, which the service
//! derives from the document. Every call is scoped to one organization.

use async_trait::async_trait;
use serde_json::Value;
use uuid::Uuid;

use super::{StoreResult, Timestamp};

/// A stored SCIM user.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    pub id: Uuid,
    pub org_id: Uuid,
    pub user_name: String,
    pub external_id: Option<String>,
    pub display_name: Option<String>,
    pub active: bool,
    /// The document, without id, meta, groups and password.
    pub resource: Value,
    pub password_hash: Option<String>,
    /// Bumped on every write; the ETag.
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One of a user's emails, as indexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailRow {
    pub value: String,
    pub kind: Option<String>,
    pub primary: bool,
    pub display: Option<String>,
}

/// A stored SCIM group (members are kept apart).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRecord {
    pub id: Uuid,
    pub org_id: Uuid,
    pub display_name: String,
    pub external_id: Option<String>,
    /// The document, without id, meta and members.
    pub resource: Value,
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What a group member is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    User,
    Group,
}

impl MemberKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberKind::User => "User",
            MemberKind::Group => "Group",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "User" => Some(MemberKind::User),
            "Group" => Some(MemberKind::Group),
            _ => None,
        }
    }
}

/// A member as listed: which group, who, and what kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    pub group_id: Uuid,
    pub member_id: Uuid,
    pub kind: MemberKind,
}

/// A group a user belongs to (directly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserGroupRow {
    pub user_id: Uuid,
    pub group_id: Uuid,
    pub display: String,
}

/// Kinds of change recorded in the change log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Created,
    Updated,
    Activated,
    Deactivated,
    Deleted,
    EmailChanged,
    MembersChanged,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Created => "created",
            ChangeKind::Updated => "updated",
            ChangeKind::Activated => "activated",
            ChangeKind::Deactivated => "deactivated",
            ChangeKind::Deleted => "deleted",
            ChangeKind::EmailChanged => "email_changed",
            ChangeKind::MembersChanged => "members_changed",
        }
    }
}

/// A change-log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEvent {
    pub seq: i64,
    pub org_id: Uuid,
    pub resource_type: String,
    pub resource_id: Uuid,
    pub kind: String,
    pub at: Timestamp,
}

#[async_trait]
pub trait ScimUserRepo {
    /// Inserts a user and its emails. A taken userName is a `Conflict` on
    /// `scim_users_org_id_user_name_lower_key` (in a transaction, reported
    /// by a later call or by commit).
    async fn insert_user(&self, user: &UserRecord, emails: &[EmailRow]) -> StoreResult<()>;
    async fn user_by_id(&self, org_id: Uuid, id: Uuid) -> StoreResult<Option<UserRecord>>;
    /// Writes `user` (and its emails) over the stored one, provided the
    /// stored one is still at `expected_version`; else the write fails as
    /// [`StoreError::Stale`](super::StoreError::Stale) (in a transaction, by
    /// a later call or by commit).
    async fn update_user(
        &self,
        user: &UserRecord,
        emails: &[EmailRow],
        expected_version: i64,
    ) -> StoreResult<()>;
    /// Deletes the user at `expected_version` and its memberships; `Stale`
    /// when it changed or is gone.
    async fn delete_user(&self, org_id: Uuid, id: Uuid, expected_version: i64) -> StoreResult<()>;
    /// The groups the given users belong to.
    async fn groups_of_users(
        &self,
        org_id: Uuid,
        user_ids: &[Uuid],
    ) -> StoreResult<Vec<UserGroupRow>>;
}

#[async_trait]
pub trait ScimGroupRepo {
    async fn insert_group(&self, group: &GroupRecord) -> StoreResult<()>;
    async fn group_by_id(&self, org_id: Uuid, id: Uuid) -> StoreResult<Option<GroupRecord>>;
    /// Writes `group` over the stored one if it is still at
    /// `expected_version`; else `Stale`. Every change of a group's members
    /// goes with one, so the version also guards what was read of them.
    async fn update_group(&self, group: &GroupRecord, expected_version: i64) -> StoreResult<()>;
    /// Deletes the group at `expected_version`, its members and its own
    /// memberships in other groups; `Stale` when it changed or is gone.
    async fn delete_group(&self, org_id: Uuid, id: Uuid, expected_version: i64) -> StoreResult<()>;
    /// Which of `ids` exist in the organization, and as what.
    async fn member_kinds(
        &self,
        org_id: Uuid,
        ids: &[Uuid],
    ) -> StoreResult<Vec<(Uuid, MemberKind)>>;
    /// Which of `ids` are members of the group.
    async fn members_among(
        &self,
        org_id: Uuid,
        group_id: Uuid,
        ids: &[Uuid],
    ) -> StoreResult<Vec<Uuid>>;
    /// Adds members that are not members yet and still exist in the
    /// organization as the kind given; `Stale` unless every one of them was
    /// added (one was deleted, or became a member, since it was read).
    async fn add_members(
        &self,
        org_id: Uuid,
        group_id: Uuid,
        members: &[(Uuid, MemberKind)],
    ) -> StoreResult<()>;
    /// Removes members; `Stale` unless every one of them was a member.
    async fn remove_members(&self, org_id: Uuid, group_id: Uuid, ids: &[Uuid]) -> StoreResult<()>;
    async fn remove_all_members(&self, org_id: Uuid, group_id: Uuid) -> StoreResult<()>;
    /// How many members the group has.
    async fn member_count(&self, org_id: Uuid, group_id: Uuid) -> StoreResult<u64>;
    /// Members of the given groups.
    async fn members_of(&self, org_id: Uuid, group_ids: &[Uuid]) -> StoreResult<Vec<MemberRow>>;
}

#[async_trait]
pub trait ScimLogRepo {
    /// Records a change (several kinds of one change in the order given)
    /// and adds `count_delta` to the organization's count of
    /// `resource_type` (+1 for a creation, -1 for a deletion, else 0).
    async fn record_change(
        &self,
        org_id: Uuid,
        resource_type: &str,
        resource_id: Uuid,
        kinds: &[ChangeKind],
        at: Timestamp,
        count_delta: i64,
    ) -> StoreResult<()>;
    /// Change-log entries after `after_seq`, oldest first.
    async fn changes_since(
        &self,
        org_id: Uuid,
        after_seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<ChangeEvent>>;
    async fn resource_count(&self, org_id: Uuid, resource_type: &str) -> StoreResult<u64>;
}

/// What a list asks for: filter, order, and a window (offset or keyset).
#[derive(Debug, Clone, Default)]
pub struct ListSpec {
    pub filter: Option<super::query::Cond>,
    pub sort: Option<super::query::SortKey>,
    pub descending: bool,
    /// Rows to skip (startIndex - 1, or a cursor's offset).
    pub offset: u64,
    pub limit: u64,
    /// Keyset paging by id: only resources with a greater id (ignores `sort`).
    pub after_id: Option<Uuid>,
}

#[async_trait]
pub trait ScimListRepo {
    /// A page of users and the groups they belong to.
    async fn list_users(
        &self,
        org_id: Uuid,
        spec: &ListSpec,
    ) -> StoreResult<(Vec<UserRecord>, Vec<UserGroupRow>)>;
    async fn list_groups(&self, org_id: Uuid, spec: &ListSpec) -> StoreResult<Vec<GroupRecord>>;
    /// How many resources of `resource` match `filter`.
    async fn count_matching(
        &self,
        org_id: Uuid,
        resource: super::query::Resource,
        filter: &super::query::Cond,
    ) -> StoreResult<u64>;
}
