//! [`ScimGroupRepo`] in SQL. Membership is one row per member, so adding or
//! removing members costs in proportion to the change.

use async_trait::async_trait;
use serde_json::Value;
use sqlx::FromRow;
use sqlx::types::Json;
use uuid::Uuid;

use super::exec::Exec;
use super::stmt::{Stmt, json};
use crate::store::scim::{GroupRecord, MemberKind, MemberRow, ScimGroupRepo};
use crate::store::{StoreError, StoreResult, Timestamp};

/// Ids per `IN` list or multi-row statement (well inside both backends'
/// parameter limits).
const CHUNK: usize = 500;

pub(crate) const GROUP_COLUMNS: &str = "r.id, r.org_id, r.display_name, r.external_id, r.resource, r.version, r.created_at, r.updated_at";

#[derive(FromRow)]
pub(crate) struct GroupRow {
    id: Uuid,
    org_id: Uuid,
    display_name: String,
    external_id: Option<String>,
    resource: Json<Value>,
    version: i64,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl From<GroupRow> for GroupRecord {
    fn from(r: GroupRow) -> Self {
        GroupRecord {
            id: r.id,
            org_id: r.org_id,
            display_name: r.display_name,
            external_id: r.external_id,
            resource: r.resource.0,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(FromRow)]
struct MemberSqlRow {
    group_id: Uuid,
    member_id: Uuid,
    member_type: String,
}

#[derive(FromRow)]
struct KindRow {
    id: Uuid,
    kind: String,
}

/// `<sql with {ids}>` for each chunk of `ids`, the ids bound after `first`
/// values bound by `prefix`.
fn id_lists<'a>(
    ids: &'a [Uuid],
    first: usize,
    sql: impl Fn(&str) -> String + 'a,
    prefix: impl Fn() -> Stmt + 'a,
) -> impl Iterator<Item = (usize, Stmt)> + 'a {
    ids.chunks(CHUNK).map(move |chunk| {
        let mut stmt = prefix();
        stmt.sql = sql(&Stmt::placeholders(first, chunk.len())).into();
        for id in chunk {
            stmt.push(*id);
        }
        (chunk.len(), stmt)
    })
}

#[async_trait]
impl<T: Exec> ScimGroupRepo for T {
    async fn insert_group(&self, g: &GroupRecord) -> StoreResult<()> {
        self.write(
            Stmt::new(
                "INSERT INTO scim_groups (id, org_id, display_name, display_name_lower, external_id, resource, version, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(g.id)
            .bind(g.org_id)
            .bind(&g.display_name)
            .bind(g.display_name.to_lowercase())
            .bind(&g.external_id)
            .bind(json(&g.resource)?)
            .bind(g.version)
            .bind(g.created_at)
            .bind(g.updated_at),
        )
        .await
    }

    async fn group_by_id(&self, org_id: Uuid, id: Uuid) -> StoreResult<Option<GroupRecord>> {
        let row: Option<GroupRow> = self
            .fetch_optional(
                Stmt::new(format!(
                    "SELECT {GROUP_COLUMNS} FROM scim_groups r WHERE r.org_id = $1 AND r.id = $2"
                ))
                .bind(org_id)
                .bind(id),
            )
            .await?;
        Ok(row.map(Into::into))
    }

    async fn update_group(&self, g: &GroupRecord, expected_version: i64) -> StoreResult<()> {
        self.write(
            Stmt::new(
                "UPDATE scim_groups SET display_name = $3, display_name_lower = $4, external_id = $5, resource = $6, version = $7, updated_at = $8 \
                 WHERE org_id = $1 AND id = $2 AND version = $9",
            )
            .bind(g.org_id)
            .bind(g.id)
            .bind(&g.display_name)
            .bind(g.display_name.to_lowercase())
            .bind(&g.external_id)
            .bind(json(&g.resource)?)
            .bind(g.version)
            .bind(g.updated_at)
            .bind(expected_version)
            .expect_rows(1),
        )
        .await
    }

    async fn delete_group(&self, org_id: Uuid, id: Uuid, expected_version: i64) -> StoreResult<()> {
        self.write_all(vec![
            Stmt::new("DELETE FROM scim_group_members WHERE org_id = $1 AND (member_id = $2 OR group_id = $2)")
                .bind(org_id)
                .bind(id)
                .into(),
            Stmt::new("DELETE FROM scim_groups WHERE org_id = $1 AND id = $2 AND version = $3")
                .bind(org_id)
                .bind(id)
                .bind(expected_version)
                .expect_rows(1),
        ])
        .await
    }

    async fn member_kinds(
        &self,
        org_id: Uuid,
        ids: &[Uuid],
    ) -> StoreResult<Vec<(Uuid, MemberKind)>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            // The same ids twice: once for users ($2…), once for groups.
            let list = Stmt::placeholders(2, chunk.len());
            let mut stmt = Stmt::new(format!(
                "SELECT id, 'User' AS kind FROM scim_users WHERE org_id = $1 AND id IN ({list}) \
                 UNION ALL SELECT id, 'Group' AS kind FROM scim_groups WHERE org_id = $1 AND id IN ({list})"
            ))
            .bind(org_id);
            for id in chunk {
                stmt.push(*id);
            }
            let rows: Vec<KindRow> = self.fetch_all(stmt).await?;
            out.extend(
                rows.into_iter()
                    .filter_map(|r| Some((r.id, MemberKind::parse(&r.kind)?))),
            );
        }
        Ok(out)
    }

    async fn members_among(
        &self,
        org_id: Uuid,
        group_id: Uuid,
        ids: &[Uuid],
    ) -> StoreResult<Vec<Uuid>> {
        let mut out = Vec::new();
        let lists = id_lists(
            ids,
            3,
            |list| {
                format!(
                    "SELECT member_id FROM scim_group_members WHERE org_id = $1 AND group_id = $2 AND member_id IN ({list})"
                )
            },
            || Stmt::new("").bind(org_id).bind(group_id),
        );
        for (_, stmt) in lists {
            let rows: Vec<(Uuid,)> = self.fetch_all(stmt).await?;
            out.extend(rows.into_iter().map(|(id,)| id));
        }
        Ok(out)
    }

    async fn add_members(
        &self,
        org_id: Uuid,
        group_id: Uuid,
        members: &[(Uuid, MemberKind)],
    ) -> StoreResult<()> {
        // Inserted from the member's own row, so one deleted since it was
        // read is not added (and the count check fails the change).
        let mut writes = Vec::new();
        for kind in [MemberKind::User, MemberKind::Group] {
            let ids: Vec<Uuid> = members
                .iter()
                .filter(|(_, k)| *k == kind)
                .map(|(id, _)| *id)
                .collect();
            let table = match kind {
                MemberKind::User => "scim_users",
                MemberKind::Group => "scim_groups",
            };
            let lists = id_lists(
                &ids,
                4,
                move |list| {
                    format!(
                        "INSERT INTO scim_group_members (group_id, member_id, org_id, member_type) \
                         SELECT $2, m.id, m.org_id, $3 FROM {table} m WHERE m.org_id = $1 AND m.id IN ({list}) \
                         ON CONFLICT (group_id, member_id) DO NOTHING"
                    )
                },
                || {
                    Stmt::new("")
                        .bind(org_id)
                        .bind(group_id)
                        .bind(kind.as_str())
                },
            );
            writes.extend(lists.map(|(n, stmt)| stmt.expect_rows(n as u64)));
        }
        self.write_all(writes).await
    }

    async fn remove_members(&self, org_id: Uuid, group_id: Uuid, ids: &[Uuid]) -> StoreResult<()> {
        let lists = id_lists(
            ids,
            3,
            |list| {
                format!(
                    "DELETE FROM scim_group_members WHERE org_id = $1 AND group_id = $2 AND member_id IN ({list})"
                )
            },
            || Stmt::new("").bind(org_id).bind(group_id),
        );
        let writes = lists.map(|(n, stmt)| stmt.expect_rows(n as u64)).collect();
        self.write_all(writes).await
    }

    async fn remove_all_members(&self, org_id: Uuid, group_id: Uuid) -> StoreResult<()> {
        self.write(
            Stmt::new("DELETE FROM scim_group_members WHERE org_id = $1 AND group_id = $2")
                .bind(org_id)
                .bind(group_id),
        )
        .await
    }

    async fn member_count(&self, org_id: Uuid, group_id: Uuid) -> StoreResult<u64> {
        let rows: Vec<(i64,)> = self
            .fetch_all(
                Stmt::new(
                    "SELECT COUNT(*) FROM scim_group_members WHERE org_id = $1 AND group_id = $2",
                )
                .bind(org_id)
                .bind(group_id),
            )
            .await?;
        Ok(rows.first().map_or(0, |(n,)| (*n).max(0) as u64))
    }

    async fn members_of(&self, org_id: Uuid, group_ids: &[Uuid]) -> StoreResult<Vec<MemberRow>> {
        let mut out = Vec::new();
        let lists = id_lists(
            group_ids,
            2,
            |list| {
                format!(
                    "SELECT m.group_id, m.member_id, m.member_type FROM scim_group_members m WHERE m.org_id = $1 AND m.group_id IN ({list}) ORDER BY m.group_id, m.member_id"
                )
            },
            || Stmt::new("").bind(org_id),
        );
        for (_, stmt) in lists {
            let rows: Vec<MemberSqlRow> = self.fetch_all(stmt).await?;
            for r in rows {
                let kind = MemberKind::parse(&r.member_type).ok_or_else(|| {
                    StoreError::other(std::io::Error::other(
                        "unknown member type in scim_group_members",
                    ))
                })?;
                out.push(MemberRow {
                    group_id: r.group_id,
                    member_id: r.member_id,
                    kind,
                });
            }
        }
        Ok(out)
    }
}
