//! [`InvitationRepo`] in SQL.

use async_trait::async_trait;
use sqlx::FromRow;
use uuid::Uuid;

use super::{Exec, db_err, on_conn, write_later};
use crate::store::invitations::{InvitationRecord, InvitationRepo, InvitationStatus};
use crate::store::{StoreError, StoreResult, Timestamp};

#[derive(FromRow)]
struct InvitationRow {
    id: Uuid,
    org_id: Uuid,
    user_id: Uuid,
    email: String,
    recipient_name: Option<String>,
    token_hash: Option<Vec<u8>>,
    status: String,
    reason: Option<String>,
    sends: i32,
    created_at: Timestamp,
    updated_at: Timestamp,
    expires_at: Timestamp,
    sent_at: Option<Timestamp>,
    accepted_at: Option<Timestamp>,
}

impl TryFrom<InvitationRow> for InvitationRecord {
    type Error = StoreError;
    fn try_from(r: InvitationRow) -> Result<Self, StoreError> {
        let status = InvitationStatus::parse(&r.status).ok_or_else(|| {
            StoreError::other(std::io::Error::other(format!(
                "unknown invitation status {}",
                r.status
            )))
        })?;
        Ok(InvitationRecord {
            id: r.id,
            org_id: r.org_id,
            user_id: r.user_id,
            email: r.email,
            recipient_name: r.recipient_name,
            token_hash: r.token_hash,
            status,
            reason: r.reason,
            sends: r.sends,
            created_at: r.created_at,
            updated_at: r.updated_at,
            expires_at: r.expires_at,
            sent_at: r.sent_at,
            accepted_at: r.accepted_at,
        })
    }
}

fn convert(rows: Vec<InvitationRow>) -> StoreResult<Vec<InvitationRecord>> {
    rows.into_iter().map(TryInto::try_into).collect()
}

const SELECT: &str = "SELECT id, org_id, user_id, email, recipient_name, token_hash, status, reason, sends, created_at, updated_at, expires_at, sent_at, accepted_at FROM invitations";

#[async_trait]
impl<T: Exec> InvitationRepo for T {
    async fn insert_invitation(&self, i: &InvitationRecord) -> StoreResult<()> {
        let mut c = self.conn_deferring().await?;
        write_later!(
            c,
            "INSERT INTO invitations (id, org_id, user_id, email, email_lower, recipient_name, token_hash, status, reason, sends, created_at, updated_at, expires_at, sent_at, accepted_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            i.id,
            i.org_id,
            i.user_id,
            &i.email,
            i.email.to_lowercase(),
            &i.recipient_name,
            &i.token_hash,
            i.status.as_str(),
            &i.reason,
            i.sends,
            i.created_at,
            i.updated_at,
            i.expires_at,
            i.sent_at,
            i.accepted_at,
        )
    }

    async fn update_invitation(&self, i: &InvitationRecord) -> StoreResult<()> {
        let mut c = self.conn().await?;
        on_conn!(c, |c| {
            sqlx::query(
            "UPDATE invitations SET email = $2, email_lower = $3, recipient_name = $4, token_hash = $5, status = $6, reason = $7, sends = $8, \
             updated_at = $9, expires_at = $10, sent_at = $11, accepted_at = $12 WHERE id = $1"
        )
        .bind(i.id)
        .bind(&i.email)
        .bind(i.email.to_lowercase())
        .bind(&i.recipient_name)
        .bind(&i.token_hash)
        .bind(i.status.as_str())
        .bind(&i.reason)
        .bind(i.sends)
        .bind(i.updated_at)
        .bind(i.expires_at)
        .bind(i.sent_at)
        .bind(i.accepted_at)
        .execute(c)
        .await
        .map(|_| ())
        .map_err(db_err)
        })
    }

    async fn invitation_by_id(&self, id: Uuid) -> StoreResult<Option<InvitationRecord>> {
        let mut c = self.conn().await?;
        let rows: Vec<InvitationRow> = on_conn!(c, |c| sqlx::query_as(sqlx::AssertSqlSafe(
            format!("{SELECT} WHERE id = $1")
        ))
        .bind(id)
        .fetch_all(c)
        .await
        .map_err(db_err))?;
        Ok(convert(rows)?.pop())
    }

    async fn invitation_by_token_hash(&self, hash: &[u8]) -> StoreResult<Option<InvitationRecord>> {
        let mut c = self.conn().await?;
        let rows: Vec<InvitationRow> = on_conn!(c, |c| sqlx::query_as(sqlx::AssertSqlSafe(
            format!("{SELECT} WHERE token_hash = $1")
        ))
        .bind(hash)
        .fetch_all(c)
        .await
        .map_err(db_err))?;
        Ok(convert(rows)?.pop())
    }

    async fn invitations_of_user(
        &self,
        org_id: Uuid,
        user_id: Uuid,
    ) -> StoreResult<Vec<InvitationRecord>> {
        let mut c = self.conn().await?;
        let rows: Vec<InvitationRow> =
            on_conn!(c, |c| sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{SELECT} WHERE org_id = $1 AND user_id = $2 ORDER BY created_at DESC, id DESC"
            )))
            .bind(org_id)
            .bind(user_id)
            .fetch_all(c)
            .await
            .map_err(db_err))?;
        convert(rows)
    }

    async fn list_invitations(
        &self,
        org_id: Uuid,
        status: Option<InvitationStatus>,
        limit: i64,
    ) -> StoreResult<Vec<InvitationRecord>> {
        let mut c = self.conn().await?;
        let rows: Vec<InvitationRow> = on_conn!(c, |c| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT} WHERE org_id = $1 AND ($2 IS NULL OR status = $2) ORDER BY created_at DESC, id DESC LIMIT $3"
        )))
        .bind(org_id)
        .bind(status.map(|s| s.as_str()))
        .bind(limit)
        .fetch_all(c)
        .await
        .map_err(db_err)
        })?;
        convert(rows)
    }

    async fn invitations_by_email(&self, email: &str) -> StoreResult<Vec<InvitationRecord>> {
        let mut c = self.conn().await?;
        let rows: Vec<InvitationRow> = on_conn!(c, |c| sqlx::query_as(sqlx::AssertSqlSafe(
            format!("{SELECT} WHERE email_lower = $1 ORDER BY created_at DESC, id DESC LIMIT 20")
        ))
        .bind(email.to_lowercase())
        .fetch_all(c)
        .await
        .map_err(db_err))?;
        convert(rows)
    }

    async fn insert_join_session(
        &self,
        id_hash: &[u8],
        invitation_id: Uuid,
        created_at: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        let mut c = self.conn().await?;
        on_conn!(c, |c| {
            sqlx::query(
            "INSERT INTO join_sessions (id_hash, invitation_id, created_at, expires_at) VALUES ($1, $2, $3, $4)"
        )
        .bind(id_hash)
        .bind(invitation_id)
        .bind(created_at)
        .bind(expires_at)
        .execute(c)
        .await
        .map(|_| ())
        .map_err(db_err)
        })
    }

    async fn join_session(&self, id_hash: &[u8], now: Timestamp) -> StoreResult<Option<Uuid>> {
        let mut c = self.conn().await?;
        on_conn!(c, |c| sqlx::query_scalar(
            "SELECT invitation_id FROM join_sessions WHERE id_hash = $1 AND expires_at > $2"
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(c)
        .await
        .map_err(db_err))
    }
}
