//! [`OutboxRepo`] in SQL: leases make several workers (in one process or
//! many, on one database) share the queue without sending a row twice; on
//! PostgreSQL `FOR UPDATE SKIP LOCKED` keeps claimers from waiting on each other.

use async_trait::async_trait;
use sqlx::FromRow;
use uuid::Uuid;

use super::{Exec, db_err, on_conn, write_later};
use crate::store::invitations::{OutboxRecord, OutboxRepo, OutboxStatus};
use crate::store::{StoreError, StoreResult, Timestamp};

#[derive(FromRow)]
struct OutboxRow {
    id: Uuid,
    org_id: Uuid,
    invitation_id: Option<Uuid>,
    message_id: String,
    to_address: String,
    to_name: Option<String>,
    subject: Option<String>,
    body_text: Option<String>,
    body_html: Option<String>,
    status: String,
    attempts: i32,
    next_attempt_at: Timestamp,
    last_error: Option<String>,
    created_at: Timestamp,
    sent_at: Option<Timestamp>,
}

impl TryFrom<OutboxRow> for OutboxRecord {
    type Error = StoreError;
    fn try_from(r: OutboxRow) -> Result<Self, StoreError> {
        let status = OutboxStatus::parse(&r.status).ok_or_else(|| {
            StoreError::other(std::io::Error::other(format!(
                "unknown outbox status {}",
                r.status
            )))
        })?;
        Ok(OutboxRecord {
            id: r.id,
            org_id: r.org_id,
            invitation_id: r.invitation_id,
            message_id: r.message_id,
            to_address: r.to_address,
            to_name: r.to_name,
            subject: r.subject,
            body_text: r.body_text,
            body_html: r.body_html,
            status,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            last_error: r.last_error,
            created_at: r.created_at,
            sent_at: r.sent_at,
        })
    }
}

const COLUMNS: &str = "id, org_id, invitation_id, message_id, to_address, to_name, subject, body_text, body_html, status, attempts, next_attempt_at, last_error, created_at, sent_at";

#[async_trait]
impl<T: Exec> OutboxRepo for T {
    async fn enqueue_mail(&self, m: &OutboxRecord) -> StoreResult<()> {
        let mut c = self.conn_deferring().await?;
        write_later!(
            c,
            "INSERT INTO mail_outbox (id, org_id, invitation_id, message_id, to_address, to_name, subject, body_text, body_html, status, attempts, next_attempt_at, last_error, created_at, sent_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            m.id,
            m.org_id,
            m.invitation_id,
            &m.message_id,
            &m.to_address,
            &m.to_name,
            &m.subject,
            &m.body_text,
            &m.body_html,
            m.status.as_str(),
            m.attempts,
            m.next_attempt_at,
            &m.last_error,
            m.created_at,
            m.sent_at,
        )
    }

    async fn claim_mail(
        &self,
        owner: Uuid,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
    ) -> StoreResult<Vec<OutboxRecord>> {
        let mut c = self.conn_deferring().await?;
        let lock = if c.is_sqlite() {
            ""
        } else {
            " FOR UPDATE SKIP LOCKED"
        };
        let status = by_key(&mut c, "status");
        let leased = by_key(&mut c, "leased_until");
        // Written in, not bound: SQLite re-prepares a statement whose
        // `LIMIT ?` is re-bound.
        let limit = limit.max(0);
        let sql = format!(
            "UPDATE mail_outbox SET leased_until = $3, lease_owner = $1, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM mail_outbox WHERE status = 'queued' AND next_attempt_at <= $2 \
                          AND (leased_until IS NULL OR leased_until < $2) ORDER BY next_attempt_at LIMIT {limit}{lock}) \
               AND {status} = 'queued' AND ({leased} IS NULL OR {leased} < $2) \
             RETURNING {COLUMNS}"
        );
        let rows: Vec<OutboxRow> = match c.sqlite_tx() {
            // With the transaction's BEGIN: one trip.
            Some(tx) => {
                tx.pending
                    .push(&sql)
                    .bind(owner)
                    .bind(now)
                    .bind(lease_until);
                tx.fetch_all().await?
            }
            None => on_conn!(c, |c| sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(owner)
                .bind(now)
                .bind(lease_until)
                .fetch_all(c)
                .await
                .map_err(db_err))?,
        };
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn mark_mail_sent(&self, id: Uuid, owner: Uuid, at: Timestamp) -> StoreResult<bool> {
        let mut c = self.conn().await?;
        let n = on_conn!(c, |c| {
            sqlx::query(
            "UPDATE mail_outbox SET status = 'sent', sent_at = $3, leased_until = NULL, body_text = NULL, body_html = NULL, last_error = NULL \
             WHERE id = $1 AND lease_owner = $2 AND status = 'queued'"
        )
        .bind(id)
        .bind(owner)
        .bind(at)
        .execute(c)
        .await
        .map(|r| r.rows_affected())
        .map_err(db_err)
        })?;
        Ok(n == 1)
    }

    async fn mark_mails_sent(&self, ids: &[Uuid], owner: Uuid, at: Timestamp) -> StoreResult<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut c = self.conn_deferring().await?;
        let status = by_key(&mut c, "status");
        let mark = format!(
            "UPDATE mail_outbox SET status = 'sent', leased_until = NULL, body_text = NULL, body_html = NULL, last_error = NULL, sent_at = $1 \
             WHERE {status} = 'queued' AND lease_owner = $2 AND id IN ({}) RETURNING invitation_id",
            placeholders(3, ids.len())
        );
        let marked: Vec<Option<Uuid>> = match c.sqlite_tx() {
            // With the transaction's BEGIN: one trip.
            Some(tx) => {
                let mut q = tx.pending.push(&mark).bind(at).bind(owner);
                for id in ids {
                    q = q.bind(*id);
                }
                let rows: Vec<(Option<Uuid>,)> = tx.fetch_all().await?;
                rows.into_iter().map(|(id,)| id).collect()
            }
            None => on_conn!(c, |c| {
                let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(mark.clone()))
                    .bind(at)
                    .bind(owner);
                for id in ids {
                    q = q.bind(*id);
                }
                q.fetch_all(c).await.map_err(db_err)
            })?,
        };
        // The invitations of exactly the messages marked here, by id: a
        // filter on invitation status would let either database walk the
        // status index (every pending invitation) instead.
        let invitations: Vec<Uuid> = marked.iter().flatten().copied().collect();
        if !invitations.is_empty() {
            let sent = format!(
                "UPDATE invitations SET status = 'sent', sent_at = $1, updated_at = $1 WHERE {status} = 'pending' AND id IN ({})",
                placeholders(2, invitations.len())
            );
            match c.pending_writes() {
                // Goes with the COMMIT.
                Some(batch) => {
                    let mut q = batch.push(&sent).bind(at);
                    for id in &invitations {
                        q = q.bind(*id);
                    }
                }
                None => on_conn!(c, |c| {
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sent.clone())).bind(at);
                    for id in &invitations {
                        q = q.bind(*id);
                    }
                    q.execute(c).await.map(|_| ()).map_err(db_err)
                })?,
            }
        }
        Ok(marked.len() as u64)
    }

    async fn retry_mail(
        &self,
        id: Uuid,
        owner: Uuid,
        next: Timestamp,
        error: &str,
    ) -> StoreResult<bool> {
        let mut c = self.conn().await?;
        let n = on_conn!(c, |c| sqlx::query(
            "UPDATE mail_outbox SET next_attempt_at = $3, leased_until = NULL, last_error = $4 \
             WHERE id = $1 AND lease_owner = $2 AND status = 'queued'"
        )
        .bind(id)
        .bind(owner)
        .bind(next)
        .bind(error)
        .execute(c)
        .await
        .map(|r| r.rows_affected())
        .map_err(db_err))?;
        Ok(n == 1)
    }

    async fn fail_mail(&self, id: Uuid, owner: Uuid, error: &str) -> StoreResult<bool> {
        let mut c = self.conn().await?;
        let n = on_conn!(c, |c| {
            sqlx::query(
            "UPDATE mail_outbox SET status = 'failed', leased_until = NULL, last_error = $3, body_text = NULL, body_html = NULL \
             WHERE id = $1 AND lease_owner = $2 AND status = 'queued'"
        )
        .bind(id)
        .bind(owner)
        .bind(error)
        .execute(c)
        .await
        .map(|r| r.rows_affected())
        .map_err(db_err)
        })?;
        Ok(n == 1)
    }

    async fn cancel_mail_for_invitation(&self, invitation_id: Uuid) -> StoreResult<u64> {
        let mut c = self.conn().await?;
        on_conn!(c, |c| {
            sqlx::query(
            "UPDATE mail_outbox SET status = 'cancelled', body_text = NULL, body_html = NULL WHERE invitation_id = $1 AND status = 'queued'"
        )
        .bind(invitation_id)
        .execute(c)
        .await
        .map(|r| r.rows_affected())
        .map_err(db_err)
        })
    }

    async fn mail_for_invitation(&self, invitation_id: Uuid) -> StoreResult<Vec<OutboxRecord>> {
        let mut c = self.conn().await?;
        let rows: Vec<OutboxRow> = on_conn!(c, |c| sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM mail_outbox WHERE invitation_id = $1 ORDER BY created_at, id"
        )))
        .bind(invitation_id)
        .fetch_all(c)
        .await
        .map_err(db_err))?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn queued_mail_count(&self) -> StoreResult<u64> {
        let mut c = self.conn().await?;
        let n: i64 = on_conn!(c, |c| sqlx::query_scalar(
            "SELECT COUNT(*) FROM mail_outbox WHERE status = 'queued'"
        )
        .fetch_one(c)
        .await
        .map_err(db_err))?;
        Ok(n.max(0) as u64)
    }
}

/// `$from, $from+1, …`: `n` placeholders for an `IN` list.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `column` as a filter that SQLite must not answer from an index on it.
///
/// Statements that pick rows by primary key also re-check their status. On
/// `status = 'queued'` SQLite's planner would rather walk the status index,
/// which holds the whole backlog, than look up the few ids; a unary `+`
/// keeps the term off the index (PostgreSQL plans these right as they are).
fn by_key(c: &mut super::ConnGuard<'_>, column: &'static str) -> String {
    if c.is_sqlite() {
        format!("+{column}")
    } else {
        column.to_string()
    }
}
