//! [`ScimGroupRepo`] in SQL. Membership is one row per member, so adding or
//! removing members costs in proportion to the change.

use async_trait::async_trait;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{FromRow, QueryBuilder};
use uuid::Uuid;

use super::{AnyConn, Exec, db_err, on_conn};
use crate::store::scim::{GroupRecord, MemberKind, MemberRow, ScimGroupRepo};
use crate::store::{StoreError, StoreResult, Timestamp};

/// Rows per multi-row INSERT or IN list (well under SQLite's variable limit).
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

#[async_trait]
impl<T: Exec> ScimGroupRepo for T {
    async fn insert_group(&self, g: &GroupRecord) -> StoreResult<()> {
        let mut c = self.conn().await?;
        on_conn!(c, |c| {
            sqlx::query(
            "INSERT INTO scim_groups (id, org_id, display_name, display_name_lower, external_id, resource, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        )
        .bind(g.id)
        .bind(g.org_id)
        .bind(&g.display_name)
        .bind(g.display_name.to_lowercase())
        .bind(&g.external_id)
        .bind(Json(&g.resource))
        .bind(g.version)
        .bind(g.created_at)
        .bind(g.updated_at)
        .execute(c)
        .await
        .map(|_| ())
        .map_err(db_err)
        })
    }

    async fn group_by_id(&self, org_id: Uuid, id: Uuid) -> StoreResult<Option<GroupRecord>> {
        fetch_group(self, org_id, id, false).await
    }

    async fn group_for_update(&self, org_id: Uuid, id: Uuid) -> StoreResult<Option<GroupRecord>> {
        fetch_group(self, org_id, id, true).await
    }

    async fn update_group(&self, g: &GroupRecord, expected_version: i64) -> StoreResult<bool> {
        let mut c = self.conn().await?;
        let n = on_conn!(c, |c| {
            sqlx::query(
            "UPDATE scim_groups SET display_name = $3, display_name_lower = $4, external_id = $5, resource = $6, version = $7, updated_at = $8 \
             WHERE org_id = $1 AND id = $2 AND version = $9"
        )
        .bind(g.org_id)
        .bind(g.id)
        .bind(&g.display_name)
        .bind(g.display_name.to_lowercase())
        .bind(&g.external_id)
        .bind(Json(&g.resource))
        .bind(g.version)
        .bind(g.updated_at)
        .bind(expected_version)
        .execute(c)
        .await
        .map(|r| r.rows_affected())
        .map_err(db_err)
        })?;
        Ok(n == 1)
    }

    async fn delete_group(&self, org_id: Uuid, id: Uuid) -> StoreResult<bool> {
        let mut c = self.conn().await?;
        on_conn!(c, |c| {
            sqlx::query("DELETE FROM scim_group_members WHERE org_id = $1 AND member_id = $2")
                .bind(org_id)
                .bind(id)
                .execute(&mut *c)
                .await
                .map_err(db_err)?;
            let n = sqlx::query("DELETE FROM scim_groups WHERE org_id = $1 AND id = $2")
                .bind(org_id)
                .bind(id)
                .execute(&mut *c)
                .await
                .map_err(db_err)?
                .rows_affected();
            Ok(n == 1)
        })
    }

    async fn member_kinds(
        &self,
        org_id: Uuid,
        ids: &[Uuid],
    ) -> StoreResult<Vec<(Uuid, MemberKind)>> {
        let mut out = Vec::with_capacity(ids.len());
        let mut c = self.conn().await?;
        for chunk in ids.chunks(CHUNK) {
            let rows: Vec<KindRow> = on_conn!(c, |c| {
                let mut qb =
                    QueryBuilder::new("SELECT id, 'User' AS kind FROM scim_users WHERE org_id = ");
                qb.push_bind(org_id).push(" AND id IN (");
                let mut list = qb.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                qb.push(") UNION ALL SELECT id, 'Group' AS kind FROM scim_groups WHERE org_id = ");
                qb.push_bind(org_id).push(" AND id IN (");
                let mut list = qb.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                qb.push(")");
                qb.build_query_as()
                    .fetch_all(&mut *c)
                    .await
                    .map_err(db_err)?
            });
            out.extend(
                rows.into_iter()
                    .filter_map(|r| Some((r.id, MemberKind::parse(&r.kind)?))),
            );
        }
        Ok(out)
    }

    async fn add_members(
        &self,
        org_id: Uuid,
        group_id: Uuid,
        members: &[(Uuid, MemberKind)],
    ) -> StoreResult<u64> {
        let mut added = 0;
        let mut c = self.conn().await?;
        for chunk in members.chunks(CHUNK) {
            added += on_conn!(c, |c| {
                let mut qb = QueryBuilder::new(
                    "INSERT INTO scim_group_members (group_id, member_id, org_id, member_type) ",
                );
                qb.push_values(chunk, |mut b, (id, kind)| {
                    b.push_bind(group_id)
                        .push_bind(*id)
                        .push_bind(org_id)
                        .push_bind(kind.as_str());
                });
                qb.push(" ON CONFLICT (group_id, member_id) DO NOTHING");
                qb.build()
                    .execute(&mut *c)
                    .await
                    .map_err(db_err)?
                    .rows_affected()
            });
        }
        Ok(added)
    }

    async fn remove_members(&self, org_id: Uuid, group_id: Uuid, ids: &[Uuid]) -> StoreResult<u64> {
        let mut removed = 0;
        let mut c = self.conn().await?;
        for chunk in ids.chunks(CHUNK) {
            removed += on_conn!(c, |c| {
                let mut qb = QueryBuilder::new("DELETE FROM scim_group_members WHERE org_id = ");
                qb.push_bind(org_id)
                    .push(" AND group_id = ")
                    .push_bind(group_id)
                    .push(" AND member_id IN (");
                let mut list = qb.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                qb.push(")");
                qb.build()
                    .execute(&mut *c)
                    .await
                    .map_err(db_err)?
                    .rows_affected()
            });
        }
        Ok(removed)
    }

    async fn remove_all_members(&self, org_id: Uuid, group_id: Uuid) -> StoreResult<u64> {
        let mut c = self.conn().await?;
        on_conn!(c, |c| sqlx::query(
            "DELETE FROM scim_group_members WHERE org_id = $1 AND group_id = $2"
        )
        .bind(org_id)
        .bind(group_id)
        .execute(c)
        .await
        .map(|r| r.rows_affected())
        .map_err(db_err))
    }

    async fn members_of(&self, org_id: Uuid, group_ids: &[Uuid]) -> StoreResult<Vec<MemberRow>> {
        let mut out = Vec::new();
        let mut c = self.conn().await?;
        for chunk in group_ids.chunks(CHUNK) {
            let rows: Vec<MemberSqlRow> = on_conn!(c, |c| {
                let mut qb = QueryBuilder::new(
                    "SELECT m.group_id, m.member_id, m.member_type FROM scim_group_members m WHERE m.org_id = ",
                );
                qb.push_bind(org_id).push(" AND m.group_id IN (");
                let mut list = qb.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                qb.push(") ORDER BY m.group_id, m.member_id");
                qb.build_query_as()
                    .fetch_all(&mut *c)
                    .await
                    .map_err(db_err)?
            });
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

/// One group of the organization; `lock` holds its row until the
/// transaction ends (PostgreSQL `FOR UPDATE`; SQLite transactions here begin
/// IMMEDIATE and already hold the write lock).
async fn fetch_group<T: Exec + ?Sized>(
    store: &T,
    org_id: Uuid,
    id: Uuid,
    lock: bool,
) -> StoreResult<Option<GroupRecord>> {
    let mut c = store.conn().await?;
    let lock = match c.get() {
        AnyConn::Pg(_) if lock => " FOR UPDATE",
        _ => "",
    };
    let sql = format!(
        "SELECT {GROUP_COLUMNS} FROM scim_groups r WHERE r.org_id = $1 AND r.id = $2{lock}"
    );
    let row: Option<GroupRow> = on_conn!(c, |c| sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(org_id)
        .bind(id)
        .fetch_optional(c)
        .await
        .map_err(db_err))?;
    Ok(row.map(Into::into))
}
