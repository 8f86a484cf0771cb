//! [`ScimUserRepo`] in SQL. Writes of several statements are meant to run
//! inside a transaction (the service opens one).

use async_trait::async_trait;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{FromRow, QueryBuilder};
use uuid::Uuid;

use super::{AnyConn, Exec, db_err, on_conn};
use crate::store::scim::{EmailRow, ScimUserRepo, UserGroupRow, UserRecord};
use crate::store::{StoreResult, Timestamp};

pub(crate) const USER_COLUMNS: &str = "r.id, r.org_id, r.user_name, r.external_id, r.display_name, r.active, r.resource, r.password_hash, r.version, r.created_at, r.updated_at";

const INSERT_USER: &str = "INSERT INTO scim_users (id, org_id, user_name, user_name_lower, external_id, display_name, active, resource, password_hash, version, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

/// The email rows of a user inserted by [`INSERT_USER`] in the same SQLite
/// batch: they reuse its `$1` (id) and `$2` (org), then take six parameters
/// each from `$13` on (position, value, lowercased value, type, primary,
/// display). `n` is at least 1.
fn sqlite_email_values(n: usize) -> String {
    let rows: Vec<String> = (0..n)
        .map(|i| {
            let p = 13 + 6 * i;
            format!(
                "($1, $2, ${}, ${}, ${}, ${}, ${}, ${})",
                p,
                p + 1,
                p + 2,
                p + 3,
                p + 4,
                p + 5
            )
        })
        .collect();
    format!(
        "INSERT INTO scim_user_emails (user_id, org_id, position, value, value_lower, type, is_primary, display) VALUES {}",
        rows.join(", ")
    )
}

/// Binds [`INSERT_USER`]'s twelve values to a query or a batch.
macro_rules! bind_user {
    ($q:expr, $u:expr) => {
        $q.bind($u.id)
            .bind($u.org_id)
            .bind(&$u.user_name)
            .bind($u.user_name.to_lowercase())
            .bind(&$u.external_id)
            .bind(&$u.display_name)
            .bind($u.active)
            .bind(Json(&$u.resource))
            .bind(&$u.password_hash)
            .bind($u.version)
            .bind($u.created_at)
            .bind($u.updated_at)
    };
}

/// Binds the six values of email number `$i` (see [`sqlite_email_values`]).
macro_rules! bind_email {
    ($q:expr, $i:expr, $e:expr) => {
        $q.bind($i as i32)
            .bind(&$e.value)
            .bind($e.value.to_lowercase())
            .bind(&$e.kind)
            .bind($e.primary)
            .bind(&$e.display)
    };
}

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

#[async_trait]
impl<T: Exec> ScimUserRepo for T {
    async fn insert_user(&self, u: &UserRecord, emails: &[EmailRow]) -> StoreResult<()> {
        let mut c = self.conn_deferring().await?;
        // SQLite takes the user and its emails as one batch: one trip to its
        // thread. PostgreSQL cannot batch bound statements.
        let batched = !emails.is_empty() && c.is_sqlite();
        let sql = if batched {
            format!("{INSERT_USER}; {}", sqlite_email_values(emails.len()))
        } else {
            INSERT_USER.to_string()
        };
        // In a SQLite transaction the batch waits for the transaction's next
        // trip (often its COMMIT).
        if let Some(batch) = c.pending_writes() {
            let mut q = bind_user!(batch.push(&sql), u);
            for (i, e) in emails.iter().enumerate() {
                q = bind_email!(q, i, e);
            }
            return Ok(());
        }
        on_conn!(c, |c| {
            let mut q = bind_user!(sqlx::query(sqlx::AssertSqlSafe(sql)), u);
            if batched {
                for (i, e) in emails.iter().enumerate() {
                    q = bind_email!(q, i, e);
                }
            }
            q.execute(&mut *c).await.map_err(db_err)?;
            Ok::<_, crate::store::StoreError>(())
        })?;
        if batched {
            return Ok(());
        }
        write_emails(&mut c, u, emails, false).await
    }

    async fn user_by_id(&self, org_id: Uuid, id: Uuid) -> StoreResult<Option<UserRecord>> {
        fetch_user(self, org_id, id, false).await
    }

    async fn user_for_update(&self, org_id: Uuid, id: Uuid) -> StoreResult<Option<UserRecord>> {
        fetch_user(self, org_id, id, true).await
    }

    async fn update_user(
        &self,
        u: &UserRecord,
        emails: &[EmailRow],
        expected_version: i64,
    ) -> StoreResult<bool> {
        let mut c = self.conn().await?;
        let updated = on_conn!(c, |c| {
            let n = sqlx::query(
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
            .bind(Json(&u.resource))
            .bind(&u.password_hash)
            .bind(u.version)
            .bind(u.updated_at)
            .bind(expected_version)
            .execute(&mut *c)
            .await
            .map_err(db_err)?
            .rows_affected();
            Ok::<_, crate::store::StoreError>(n == 1)
        })?;
        if !updated {
            return Ok(false);
        }
        write_emails(&mut c, u, emails, true).await?;
        Ok(true)
    }

    async fn delete_user(&self, org_id: Uuid, id: Uuid) -> StoreResult<bool> {
        let mut c = self.conn().await?;
        on_conn!(c, |c| {
            sqlx::query("DELETE FROM scim_group_members WHERE org_id = $1 AND member_id = $2")
                .bind(org_id)
                .bind(id)
                .execute(&mut *c)
                .await
                .map_err(db_err)?;
            let n = sqlx::query("DELETE FROM scim_users WHERE org_id = $1 AND id = $2")
                .bind(org_id)
                .bind(id)
                .execute(&mut *c)
                .await
                .map_err(db_err)?
                .rows_affected();
            Ok(n == 1)
        })
    }

    async fn groups_of_users(
        &self,
        org_id: Uuid,
        user_ids: &[Uuid],
    ) -> StoreResult<Vec<UserGroupRow>> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = self.conn().await?;
        let rows: Vec<UserGroupSqlRow> = on_conn!(c, |c| {
            let mut qb = QueryBuilder::new(
                "SELECT m.member_id AS user_id, g.id AS group_id, g.display_name AS display \
                 FROM scim_group_members m JOIN scim_groups g ON g.id = m.group_id WHERE m.org_id = ",
            );
            qb.push_bind(org_id).push(" AND m.member_id IN (");
            let mut list = qb.separated(", ");
            for id in user_ids {
                list.push_bind(*id);
            }
            qb.push(") ORDER BY g.display_name_lower, g.id");
            qb.build_query_as()
                .fetch_all(&mut *c)
                .await
                .map_err(db_err)?
        });
        Ok(rows
            .into_iter()
            .map(|r| UserGroupRow {
                user_id: r.user_id,
                group_id: r.group_id,
                display: r.display,
            })
            .collect())
    }
}

/// Replaces (or, for a new user, writes) the user's email rows.
async fn write_emails(
    c: &mut super::ConnGuard<'_>,
    u: &UserRecord,
    emails: &[EmailRow],
    replace: bool,
) -> StoreResult<()> {
    on_conn!(c, |c| {
        if replace {
            sqlx::query("DELETE FROM scim_user_emails WHERE user_id = $1")
                .bind(u.id)
                .execute(&mut *c)
                .await
                .map_err(db_err)?;
        }
        if !emails.is_empty() {
            let mut qb = QueryBuilder::new(
                "INSERT INTO scim_user_emails (user_id, org_id, position, value, value_lower, type, is_primary, display) ",
            );
            qb.push_values(emails.iter().enumerate(), |mut b, (i, e)| {
                b.push_bind(u.id)
                    .push_bind(u.org_id)
                    .push_bind(i as i32)
                    .push_bind(e.value.clone())
                    .push_bind(e.value.to_lowercase())
                    .push_bind(e.kind.clone())
                    .push_bind(e.primary)
                    .push_bind(e.display.clone());
            });
            qb.build().execute(&mut *c).await.map_err(db_err)?;
        }
        Ok(())
    })
}

/// One user of the organization; `lock` holds its row until the
/// transaction ends (PostgreSQL `FOR UPDATE`; SQLite transactions here begin
/// IMMEDIATE and already hold the write lock).
async fn fetch_user<T: Exec + ?Sized>(
    store: &T,
    org_id: Uuid,
    id: Uuid,
    lock: bool,
) -> StoreResult<Option<UserRecord>> {
    let mut c = store.conn().await?;
    let lock = match c.get() {
        AnyConn::Pg(_) if lock => " FOR UPDATE",
        _ => "",
    };
    let sql =
        format!("SELECT {USER_COLUMNS} FROM scim_users r WHERE r.org_id = $1 AND r.id = $2{lock}");
    let row: Option<UserRow> = on_conn!(c, |c| sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
        .bind(org_id)
        .bind(id)
        .fetch_optional(c)
        .await
        .map_err(db_err))?;
    Ok(row.map(Into::into))
}
