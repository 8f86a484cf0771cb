//! [`ScimTokenRepo`] in SQL.

use async_trait::async_trait;
use sqlx::FromRow;
use uuid::Uuid;

use super::{Exec, db_err, on_conn};
use crate::store::{ScimTokenRecord, ScimTokenRepo, StoreResult, Timestamp};

#[derive(FromRow)]
struct TokenRow {
    id: Uuid,
    org_id: Uuid,
    label: String,
    token_hash: Vec<u8>,
    prefix: String,
    created_at: Timestamp,
    last_used_at: Option<Timestamp>,
    revoked_at: Option<Timestamp>,
}

impl From<TokenRow> for ScimTokenRecord {
    fn from(r: TokenRow) -> Self {
        ScimTokenRecord {
            id: r.id,
            org_id: r.org_id,
            label: r.label,
            hash: r.token_hash,
            prefix: r.prefix,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
        }
    }
}

#[async_trait]
impl<T: Exec> ScimTokenRepo for T {
    async fn insert_scim_token(&self, t: &ScimTokenRecord) -> StoreResult<()> {
        let mut c = self.conn().await?;
        on_conn!(c, |c| {
            sqlx::query(
            "INSERT INTO scim_tokens (id, org_id, label, token_hash, prefix, created_at) VALUES ($1, $2, $3, $4, $5, $6)"
        )
        .bind(t.id)
        .bind(t.org_id)
        .bind(&t.label)
        .bind(&t.hash)
        .bind(&t.prefix)
        .bind(t.created_at)
        .execute(c)
        .await
        .map(|_| ())
        .map_err(db_err)
        })?;
        Ok(())
    }

    async fn scim_token_by_hash(&self, hash: &[u8]) -> StoreResult<Option<ScimTokenRecord>> {
        let mut c = self.conn().await?;
        let row: Option<TokenRow> = on_conn!(c, |c| {
            sqlx::query_as(
            "SELECT id, org_id, label, token_hash, prefix, created_at, last_used_at, revoked_at FROM scim_tokens WHERE token_hash = $1"
        )
        .bind(hash)
        .fetch_optional(c)
        .await
        .map_err(db_err)
        })?;
        Ok(row.map(Into::into))
    }

    async fn list_scim_tokens(&self, org_id: Uuid) -> StoreResult<Vec<ScimTokenRecord>> {
        let mut c = self.conn().await?;
        let rows: Vec<TokenRow> = on_conn!(c, |c| {
            sqlx::query_as(
            "SELECT id, org_id, label, token_hash, prefix, created_at, last_used_at, revoked_at FROM scim_tokens WHERE org_id = $1 ORDER BY created_at, id"
        )
        .bind(org_id)
        .fetch_all(c)
        .await
        .map_err(db_err)
        })?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn revoke_scim_token(&self, id: Uuid, at: Timestamp) -> StoreResult<bool> {
        let mut c = self.conn().await?;
        let done = on_conn!(c, |c| sqlx::query(
            "UPDATE scim_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL"
        )
        .bind(id)
        .bind(at)
        .execute(c)
        .await
        .map_err(db_err)?
        .rows_affected());
        Ok(done == 1)
    }

    async fn touch_scim_token(&self, id: Uuid, at: Timestamp) -> StoreResult<()> {
        let mut c = self.conn().await?;
        on_conn!(c, |c| sqlx::query(
            "UPDATE scim_tokens SET last_used_at = $2 WHERE id = $1"
        )
        .bind(id)
        .bind(at)
        .execute(c)
        .await
        .map(|_| ())
        .map_err(db_err))?;
        Ok(())
    }
}
