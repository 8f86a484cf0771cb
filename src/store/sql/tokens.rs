//! [`ScimTokenRepo`] in SQL.

use async_trait::async_trait;
use sqlx::FromRow;
use uuid::Uuid;

use super::exec::Exec;
use super::stmt::Stmt;
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

const TOKEN_COLUMNS: &str =
    "id, org_id, label, token_hash, prefix, created_at, last_used_at, revoked_at";

#[async_trait]
impl<T: Exec> ScimTokenRepo for T {
    async fn insert_scim_token(&self, t: &ScimTokenRecord) -> StoreResult<()> {
        self.write(
            Stmt::new(
                "INSERT INTO scim_tokens (id, org_id, label, token_hash, prefix, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(t.id)
            .bind(t.org_id)
            .bind(&t.label)
            .bind(t.hash.clone())
            .bind(&t.prefix)
            .bind(t.created_at),
        )
        .await
    }

    async fn scim_token_by_hash(&self, hash: &[u8]) -> StoreResult<Option<ScimTokenRecord>> {
        let row: Option<TokenRow> = self
            .fetch_optional(
                Stmt::new(format!(
                    "SELECT {TOKEN_COLUMNS} FROM scim_tokens WHERE token_hash = $1"
                ))
                .bind(hash),
            )
            .await?;
        Ok(row.map(Into::into))
    }

    async fn list_scim_tokens(&self, org_id: Uuid) -> StoreResult<Vec<ScimTokenRecord>> {
        let rows: Vec<TokenRow> = self
            .fetch_all(
                Stmt::new(format!(
                    "SELECT {TOKEN_COLUMNS} FROM scim_tokens WHERE org_id = $1 ORDER BY created_at, id"
                ))
                .bind(org_id),
            )
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn revoke_scim_token(&self, org_id: Uuid, id: Uuid, at: Timestamp) -> StoreResult<bool> {
        let n = self
            .execute(
                Stmt::new(
                    "UPDATE scim_tokens SET revoked_at = $3 WHERE org_id = $1 AND id = $2 AND revoked_at IS NULL",
                )
                .bind(org_id)
                .bind(id)
                .bind(at),
            )
            .await?;
        Ok(n == 1)
    }

    async fn touch_scim_token(&self, id: Uuid, at: Timestamp) -> StoreResult<()> {
        self.write(
            Stmt::new("UPDATE scim_tokens SET last_used_at = $2 WHERE id = $1")
                .bind(id)
                .bind(at),
        )
        .await
    }
}
