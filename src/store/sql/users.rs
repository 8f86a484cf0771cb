//! [`ScimUserRepo`] in SQL.

use async_trait::async_trait;
use serde_json::Value;
use sqlx::FromRow;
use sqlx::types::Json;
use uuid::Uuid;

use super::exec::Exec;
use super::stmt::{Stmt, Write, json};
use crate::store::scim::{EmailRow, ScimUserRepo, UserGroupRow, UserRecord};
use crate::store::{StoreResult, Timestamp};

pub(crate) const USER_COLUMNS: &str = "r.id, r.org_id, r.user_name, r.external_id, r.display_name, r.active, r.resource, r.password_hash, r.version, r.created_at, r.updated_at";

/// Rows per multi-row statement (a user has at most a few hundred emails;
/// this keeps every statement far inside both backends' parameter limits).
const CHUNK: usize = 500;

#[derive(FromRow)]
pub(crate) struct UserRow {
    id: Uuid,
    org_id: Uuid,
    user_name: String,
    external_id: Option<String>,
    display_name: Option<String>,
    active: bool,
    resource: Json<Value>,
    password_hash: Option<String>,
    version: i64,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl From<UserRow> for UserRecord {
    fn from(r: UserRow) -> Self {
        UserRecord {
            id: r.id,
            org_id: r.org_id,
            user_name: r.user_name,
            external_id: r.external_id,
            display_name: r.display_name,
            active: r.active,
            resource: r.resource.0,
            password_hash: r.password_hash,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(FromRow)]
struct UserGroupSqlRow {
    user_id: Uuid,
    group_id: Uuid,
    display: String,
}

/// The statements writing a user's email rows (after its old ones are gone).
fn email_inserts(u: &UserRecord, emails: &[EmailRow]) -> Vec<Write> {
    emails
        .chunks(CHUNK)
        .enumerate()
        .map(|(c, chunk)| {
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let p = 3 + 6 * i;
                    format!(
                        "($1, $2, ${p}, ${}, ${}, ${}, ${}, ${})",
                        p + 1,
                        p + 2,
                        p + 3,
                        p + 4,
                        p + 5
                    )
                })
                .collect();
            let mut stmt = Stmt::new(format!(
                "INSERT INTO scim_user_emails (user_id, org_id, position, value, value_lower, type, is_primary, display) VALUES {}",
                rows.join(", ")
            ))
            .bind(u.id)
            .bind(u.org_id);
            for (i, e) in chunk.iter().enumerate() {
                stmt.push((c * CHUNK + i) as i32);
                stmt.push(&e.value);
                stmt.push(e.value.to_lowercase());
                stmt.push(&e.kind);
                stmt.push(e.primary);
                stmt.push(&e.display);
            }
            stmt.into()
        })
        .collect()
}

#[async_trait]
impl<T: Exec> ScimUserRepo for T {
    async fn insert_user(&self, u: &UserRecord, emails: &[EmailRow]) -> StoreResult<()> {
        let mut writes = vec![
            Stmt::new(
                "INSERT INTO scim_users (id, org_id, user_name, user_name_lower, external_id, display_name, active, resource, password_hash, version, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(u.id)
            .bind(u.org_id)
            .bind(&u.user_name)
            .bind(u.user_name.to_lowercase())
            .bind(&u.external_id)
            .bind(&u.display_name)
            .bind(u.active)
            .bind(json(&u.resource)?)
            .bind(&u.password_hash)
            .bind(u.version)
            .bind(u.created_at)
            .bind(u.updated_at)
            .into(),
        ];
        writes.extend(email_inserts(u, emails));
        self.write_all(writes).await
    }

    async fn user_by_id(&self, org_id: Uuid, id: Uuid) -> StoreResult<Option<UserRecord>> {
        let row: Option<UserRow> = self
            .fetch_optional(
                Stmt::new(format!(
                    "SELECT {USER_COLUMNS} FROM scim_users r WHERE r.org_id = $1 AND r.id = $2"
                ))
                .bind(org_id)
                .bind(id),
            )
            .await?;
        Ok(row.map(Into::into))
    }

    async fn update_user(
        &self,
        u: &UserRecord,
        emails: &[EmailRow],
        expected_version: i64,
    ) -> StoreResult<()> {
        let mut writes = vec![
            Stmt::new(
                "UPDATE scim_users SET user_name = $3, user_name_lower = $4, external_id = $5, display_name = $6, active = $7, \
                 resource = $8, password_hash = $9, version = $10, updated_at = $11 \
                 WHERE org_id = $1 AND id = $2 AND version = $12",
            )
            .bind(u.org_id)
            .bind(u.id)
            .bind(&u.user_name)
            .bind(u.user_name.to_lowercase())
            .bind(&u.external_id)
            .bind(&u.display_name)
            .bind(u.active)
            .bind(json(&u.resource)?)
            .bind(&u.password_hash)
            .bind(u.version)
            .bind(u.updated_at)
            .bind(expected_version)
            .expect_rows(1),
            Stmt::new("DELETE FROM scim_user_emails WHERE user_id = $1")
                .bind(u.id)
                .into(),
        ];
        writes.extend(email_inserts(u, emails));
        self.write_all(writes).await
    }

    async fn delete_user(&self, org_id: Uuid, id: Uuid, expected_version: i64) -> StoreResult<()> {
        self.write_all(vec![
            Stmt::new("DELETE FROM scim_group_members WHERE org_id = $1 AND member_id = $2")
                .bind(org_id)
                .bind(id)
                .into(),
            Stmt::new("DELETE FROM scim_users WHERE org_id = $1 AND id = $2 AND version = $3")
                .bind(org_id)
                .bind(id)
                .bind(expected_version)
                .expect_rows(1),
        ])
        .await
    }

    async fn groups_of_users(
        &self,
        org_id: Uuid,
        user_ids: &[Uuid],
    ) -> StoreResult<Vec<UserGroupRow>> {
        let mut out = Vec::new();
        for chunk in user_ids.chunks(CHUNK) {
            let mut stmt = Stmt::new(format!(
                "SELECT m.member_id AS user_id, g.id AS group_id, g.display_name AS display \
                 FROM scim_group_members m JOIN scim_groups g ON g.id = m.group_id \
                 WHERE m.org_id = $1 AND m.member_id IN ({}) ORDER BY g.display_name_lower, g.id",
                Stmt::placeholders(2, chunk.len())
            ))
            .bind(org_id);
            for id in chunk {
                stmt.push(*id);
            }
            let rows: Vec<UserGroupSqlRow> = self.fetch_all(stmt).await?;
            out.extend(rows.into_iter().map(|r| UserGroupRow {
                user_id: r.user_id,
                group_id: r.group_id,
                display: r.display,
            }));
        }
        Ok(out)
    }
}
