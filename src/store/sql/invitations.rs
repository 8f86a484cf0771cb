//! [`InvitationRepo`] in SQL.

use async_trait::async_trait;
use sqlx::FromRow;
use uuid::Uuid;

use super::exec::Exec;
use super::stmt::{Arg, Stmt, Write};
use crate::store::invitations::{
    InvitationRecord, InvitationRepo, InvitationStatus, MAX_EXTRA_LINKS, MAX_JOIN_SESSIONS,
};
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

const COLUMNS: &str = "i.id, i.org_id, i.user_id, i.email, i.recipient_name, i.token_hash, i.status, i.reason, i.sends, i.created_at, i.updated_at, i.expires_at, i.sent_at, i.accepted_at";

/// Ids per `IN` list.
const CHUNK: usize = 500;

/// Invitations by a condition on `invitations i`.
async fn select<T: Exec + ?Sized>(
    exec: &T,
    rest: &str,
    args: Vec<Arg>,
) -> StoreResult<Vec<InvitationRecord>> {
    let mut stmt = Stmt::new(format!("SELECT {COLUMNS} FROM invitations i {rest}"));
    for a in args {
        stmt.push(a);
    }
    let rows: Vec<InvitationRow> = exec.fetch_all(stmt).await?;
    convert(rows)
}

#[async_trait]
impl<T: Exec> InvitationRepo for T {
    async fn insert_invitation(&self, i: &InvitationRecord) -> StoreResult<()> {
        self.write(
            Stmt::new(
                "INSERT INTO invitations (id, org_id, user_id, email, email_lower, recipient_name, token_hash, status, reason, sends, created_at, updated_at, expires_at, sent_at, accepted_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            )
            .bind(i.id)
            .bind(i.org_id)
            .bind(i.user_id)
            .bind(&i.email)
            .bind(i.email.to_lowercase())
            .bind(&i.recipient_name)
            .bind(&i.token_hash)
            .bind(i.status.as_str())
            .bind(&i.reason)
            .bind(i.sends)
            .bind(i.created_at)
            .bind(i.updated_at)
            .bind(i.expires_at)
            .bind(i.sent_at)
            .bind(i.accepted_at),
        )
        .await
    }

    async fn update_invitation(&self, i: &InvitationRecord) -> StoreResult<()> {
        self.write(
            Stmt::new(
                "UPDATE invitations SET email = $3, email_lower = $4, recipient_name = $5, token_hash = $6, status = $7, reason = $8, sends = $9, \
                 updated_at = $10, expires_at = $11, sent_at = $12, accepted_at = $13 WHERE org_id = $1 AND id = $2",
            )
            .bind(i.org_id)
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
            .expect_rows(1)
            .in_order(),
        )
        .await
    }

    async fn invitation_by_id(
        &self,
        org_id: Uuid,
        id: Uuid,
    ) -> StoreResult<Option<InvitationRecord>> {
        Ok(select(
            self,
            "WHERE i.org_id = $1 AND i.id = $2",
            vec![org_id.into(), id.into()],
        )
        .await?
        .pop())
    }

    async fn invitation_by_token_hash(&self, hash: &[u8]) -> StoreResult<Option<InvitationRecord>> {
        let own = select(self, "WHERE i.token_hash = $1", vec![hash.into()])
            .await?
            .pop();
        if own.is_some() {
            return Ok(own);
        }
        Ok(select(
            self,
            "JOIN invitation_links l ON l.invitation_id = i.id WHERE l.token_hash = $1",
            vec![hash.into()],
        )
        .await?
        .pop())
    }

    async fn invitations_of_user(
        &self,
        org_id: Uuid,
        user_id: Uuid,
    ) -> StoreResult<Vec<InvitationRecord>> {
        select(
            self,
            "WHERE i.org_id = $1 AND i.user_id = $2 ORDER BY i.created_at DESC, i.id DESC",
            vec![org_id.into(), user_id.into()],
        )
        .await
    }

    async fn list_invitations(
        &self,
        org_id: Uuid,
        status: Option<InvitationStatus>,
        limit: i64,
    ) -> StoreResult<Vec<InvitationRecord>> {
        select(
            self,
            "WHERE i.org_id = $1 AND ($2 IS NULL OR i.status = $2) ORDER BY i.created_at DESC, i.id DESC LIMIT $3",
            vec![
                org_id.into(),
                status.map(|s| s.as_str()).into(),
                limit.into(),
            ],
        )
        .await
    }

    async fn invitations_by_email(&self, email: &str) -> StoreResult<Vec<InvitationRecord>> {
        select(
            self,
            "WHERE i.email_lower = $1 ORDER BY i.created_at DESC, i.id DESC LIMIT 20",
            vec![email.to_lowercase().into()],
        )
        .await
    }

    async fn void_live_invitations(
        &self,
        org_id: Uuid,
        user_id: Uuid,
        reason: &str,
        at: Timestamp,
    ) -> StoreResult<()> {
        // Mail first, then the invitations: the lock order the outbox
        // worker follows too.
        const LIVE: &str = "SELECT id FROM invitations WHERE org_id = $1 AND user_id = $2 AND status IN ('pending', 'sent')";
        self.write_all(vec![
            Stmt::new(format!(
                "UPDATE mail_outbox SET status = 'cancelled', body_text = NULL, body_html = NULL \
                 WHERE kind = 'invitation' AND status = 'queued' AND ref_id IN ({LIVE})"
            ))
            .bind(org_id)
            .bind(user_id)
            .ordered(),
            Stmt::new(format!(
                "DELETE FROM invitation_links WHERE invitation_id IN ({LIVE})"
            ))
            .bind(org_id)
            .bind(user_id)
            .into(),
            Stmt::new(
                "UPDATE invitations SET status = 'revoked', reason = $3, updated_at = $4 \
                 WHERE org_id = $1 AND user_id = $2 AND status IN ('pending', 'sent')",
            )
            .bind(org_id)
            .bind(user_id)
            .bind(reason)
            .bind(at)
            .ordered(),
        ])
        .await
    }

    async fn add_invitation_link(
        &self,
        invitation_id: Uuid,
        token_hash: &[u8],
        at: Timestamp,
    ) -> StoreResult<()> {
        self.write_all(vec![
            Stmt::new(
                "INSERT INTO invitation_links (token_hash, invitation_id, created_at) VALUES ($1, $2, $3)",
            )
            .bind(token_hash)
            .bind(invitation_id)
            .bind(at)
            .into(),
            Stmt::new(
                "DELETE FROM invitation_links WHERE invitation_id = $1 AND token_hash NOT IN \
                 (SELECT token_hash FROM invitation_links WHERE invitation_id = $1 ORDER BY created_at DESC, token_hash LIMIT $2)",
            )
            .bind(invitation_id)
            .bind(MAX_EXTRA_LINKS)
            .into(),
        ])
        .await
    }

    async fn accept_invitation(&self, org_id: Uuid, id: Uuid, at: Timestamp) -> StoreResult<()> {
        self.write(
            Stmt::new(
                "UPDATE invitations SET status = 'accepted', accepted_at = $3, updated_at = $3 \
                 WHERE org_id = $1 AND id = $2 AND status IN ('pending', 'sent') AND expires_at > $3",
            )
            .bind(org_id)
            .bind(id)
            .bind(at)
            .expect_rows(1)
            .in_order(),
        )
        .await
    }

    async fn drop_invitation_links(&self, invitation_id: Uuid) -> StoreResult<()> {
        self.write(
            Stmt::new("DELETE FROM invitation_links WHERE invitation_id = $1").bind(invitation_id),
        )
        .await
    }

    async fn mark_invitations_sent(&self, ids: &[Uuid], at: Timestamp) -> StoreResult<()> {
        // By id, not by status: a filter on status would let either
        // database walk the status index (every pending invitation).
        let writes: Vec<Write> = ids
            .chunks(CHUNK)
            .map(|chunk| {
                let status = if self.backend() == super::filter::Backend::Sqlite {
                    "+status"
                } else {
                    "status"
                };
                let mut stmt = Stmt::new(format!(
                    "UPDATE invitations SET status = 'sent', sent_at = $1, updated_at = $1 WHERE {status} = 'pending' AND id IN ({})",
                    Stmt::placeholders(2, chunk.len())
                ))
                .bind(at);
                for id in chunk {
                    stmt.push(*id);
                }
                stmt.into()
            })
            .collect();
        self.write_all(writes).await
    }

    async fn insert_join_session(
        &self,
        id_hash: &[u8],
        invitation_id: Uuid,
        created_at: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        self.write_all(vec![
            Stmt::new(
                "INSERT INTO join_sessions (id_hash, invitation_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(id_hash)
            .bind(invitation_id)
            .bind(created_at)
            .bind(expires_at)
            .into(),
            Stmt::new(
                "DELETE FROM join_sessions WHERE invitation_id = $1 AND id_hash NOT IN \
                 (SELECT id_hash FROM join_sessions WHERE invitation_id = $1 ORDER BY created_at DESC, id_hash LIMIT $2)",
            )
            .bind(invitation_id)
            .bind(MAX_JOIN_SESSIONS)
            .into(),
        ])
        .await
    }

    async fn join_session(
        &self,
        id_hash: &[u8],
        now: Timestamp,
    ) -> StoreResult<Option<(Uuid, Uuid)>> {
        self.fetch_optional(
            Stmt::new(
                "SELECT i.org_id, s.invitation_id FROM join_sessions s JOIN invitations i ON i.id = s.invitation_id \
                 WHERE s.id_hash = $1 AND s.expires_at > $2",
            )
            .bind(id_hash)
            .bind(now),
        )
        .await
    }

    async fn purge_join_sessions(&self, now: Timestamp, limit: i64) -> StoreResult<u64> {
        self.execute(
            Stmt::new(
                "DELETE FROM join_sessions WHERE id_hash IN \
                 (SELECT id_hash FROM join_sessions WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2)",
            )
            .bind(now)
            .bind(limit),
        )
        .await
    }
}
