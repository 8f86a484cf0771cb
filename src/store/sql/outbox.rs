//! [`OutboxRepo`] in SQL: leases make several workers (in one process or
//! many, on one database) share the queue without sending a row twice; on
//! PostgreSQL `FOR UPDATE SKIP LOCKED` keeps claimers from waiting on each other.

use async_trait::async_trait;
use sqlx::FromRow;
use uuid::Uuid;

use super::exec::Exec;
use super::filter::Backend;
use super::stmt::Stmt;
use crate::store::outbox::{Delivered, OutboxRecord, OutboxRepo, OutboxStatus};
use crate::store::{StoreError, StoreResult, Timestamp};

#[derive(FromRow)]
struct OutboxRow {
    id: Uuid,
    org_id: Uuid,
    kind: String,
    ref_id: Option<Uuid>,
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
            kind: r.kind,
            ref_id: r.ref_id,
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

const COLUMNS: &str = "id, org_id, kind, ref_id, message_id, to_address, to_name, subject, body_text, body_html, status, attempts, next_attempt_at, last_error, created_at, sent_at";

#[async_trait]
impl<T: Exec> OutboxRepo for T {
    async fn enqueue_mail(&self, m: &OutboxRecord) -> StoreResult<()> {
        self.write(
            Stmt::new(
                "INSERT INTO mail_outbox (id, org_id, kind, ref_id, message_id, to_address, to_name, subject, body_text, body_html, status, attempts, next_attempt_at, last_error, created_at, sent_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
            )
            .bind(m.id)
            .bind(m.org_id)
            .bind(&m.kind)
            .bind(m.ref_id)
            .bind(&m.message_id)
            .bind(&m.to_address)
            .bind(&m.to_name)
            .bind(&m.subject)
            .bind(&m.body_text)
            .bind(&m.body_html)
            .bind(m.status.as_str())
            .bind(m.attempts)
            .bind(m.next_attempt_at)
            .bind(&m.last_error)
            .bind(m.created_at)
            .bind(m.sent_at),
        )
        .await
    }

    async fn claim_mail(
        &self,
        owner: Uuid,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
    ) -> StoreResult<Vec<OutboxRecord>> {
        let sqlite = self.backend() == Backend::Sqlite;
        let lock = if sqlite {
            ""
        } else {
            " FOR UPDATE SKIP LOCKED"
        };
        let status = by_key(sqlite, "status");
        let leased = by_key(sqlite, "leased_until");
        // Written in, not bound: SQLite re-prepares a statement whose
        // `LIMIT ?` is re-bound.
        let limit = limit.max(0);
        let rows: Vec<OutboxRow> = self
            .write_returning(
                Stmt::new(format!(
                    "UPDATE mail_outbox SET leased_until = $3, lease_owner = $1, attempts = attempts + 1 \
                     WHERE id IN (SELECT id FROM mail_outbox WHERE status = 'queued' AND next_attempt_at <= $2 \
                                  AND (leased_until IS NULL OR leased_until < $2) ORDER BY next_attempt_at LIMIT {limit}{lock}) \
                       AND {status} = 'queued' AND ({leased} IS NULL OR {leased} < $2) \
                     RETURNING {COLUMNS}"
                ))
                .bind(owner)
                .bind(now)
                .bind(lease_until),
            )
            .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn mark_mails_sent(
        &self,
        ids: &[Uuid],
        owner: Uuid,
        at: Timestamp,
    ) -> StoreResult<Vec<Delivered>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let status = by_key(self.backend() == Backend::Sqlite, "status");
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let mut stmt = Stmt::new(format!(
                "UPDATE mail_outbox SET status = 'sent', leased_until = NULL, body_text = NULL, body_html = NULL, last_error = NULL, sent_at = $1 \
                 WHERE {status} = 'queued' AND lease_owner = $2 AND id IN ({}) RETURNING kind, ref_id",
                Stmt::placeholders(3, chunk.len())
            ))
            .bind(at)
            .bind(owner);
            for id in chunk {
                stmt.push(*id);
            }
            out.extend(self.write_returning::<Delivered>(stmt).await?);
        }
        Ok(out)
    }

    async fn retry_mail(
        &self,
        id: Uuid,
        owner: Uuid,
        next: Timestamp,
        error: &str,
    ) -> StoreResult<bool> {
        let n = self
            .execute(
                Stmt::new(
                    "UPDATE mail_outbox SET next_attempt_at = $3, leased_until = NULL, last_error = $4 \
                     WHERE id = $1 AND lease_owner = $2 AND status = 'queued'",
                )
                .bind(id)
                .bind(owner)
                .bind(next)
                .bind(error),
            )
            .await?;
        Ok(n == 1)
    }

    async fn fail_mail(&self, id: Uuid, owner: Uuid, error: &str) -> StoreResult<bool> {
        let n = self
            .execute(
                Stmt::new(
                    "UPDATE mail_outbox SET status = 'failed', leased_until = NULL, last_error = $3, body_text = NULL, body_html = NULL \
                     WHERE id = $1 AND lease_owner = $2 AND status = 'queued'",
                )
                .bind(id)
                .bind(owner)
                .bind(error),
            )
            .await?;
        Ok(n == 1)
    }

    async fn cancel_mail(&self, kind: &str, ref_id: Uuid) -> StoreResult<()> {
        self.write(
            Stmt::new(
                "UPDATE mail_outbox SET status = 'cancelled', body_text = NULL, body_html = NULL \
                 WHERE kind = $1 AND ref_id = $2 AND status = 'queued'",
            )
            .bind(kind)
            .bind(ref_id)
            .ordered(),
        )
        .await
    }

    async fn mail_for(&self, kind: &str, ref_id: Uuid) -> StoreResult<Vec<OutboxRecord>> {
        let rows: Vec<OutboxRow> = self
            .fetch_all(
                Stmt::new(format!(
                    "SELECT {COLUMNS} FROM mail_outbox WHERE kind = $1 AND ref_id = $2 ORDER BY created_at, id"
                ))
                .bind(kind)
                .bind(ref_id),
            )
            .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn queued_mail_count(&self) -> StoreResult<u64> {
        let rows: Vec<(i64,)> = self
            .fetch_all(Stmt::new(
                "SELECT COUNT(*) FROM mail_outbox WHERE status = 'queued'",
            ))
            .await?;
        Ok(rows.first().map_or(0, |(n,)| (*n).max(0) as u64))
    }
}

/// `column` as a filter that SQLite must not answer from an index on it.
///
/// Statements that pick rows by primary key also re-check their status. On
/// `status = 'queued'` SQLite's planner would rather walk the status index,
/// which holds the whole backlog, than look up the few ids; a unary `+`
/// keeps the term off the index (PostgreSQL plans these right as they are).
fn by_key(sqlite: bool, column: &'static str) -> String {
    if sqlite {
        format!("+{column}")
    } else {
        column.to_string()
    }
}
